/**
 * A host with one device bound to /dev/iommu and attached to an IOAS that maps `length` bytes of fresh
 * user memory at `iova`: the setup of a test that translates or walks one mapping.
 */
import { createHost, type Host } from '../host/host.js';
import type { HostProfile } from '../host/profile.js';
import type { PciDevice } from '../host/device.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import type { IommuPlugin } from '../driver/plugin.js';

/** What {@link mappedDevice} set up. */
export interface MappedDevice {
  /** The host built from the options. */
  readonly host: Host;
  /** The iommufd the device is bound to. */
  readonly fd: Iommufd;
  /** The device, bound and attached to `ioas`. */
  readonly dev: PciDevice;
  /** The IOAS id holding the one mapping. */
  readonly ioas: number;
  /** The user address of the mapped memory. */
  readonly va: bigint;
}

/**
 * Builds a host, binds the device `bdf` (the profile's first device by default), allocates an IOAS, maps
 * `length` bytes of new user memory at `iova` and attaches the device to the IOAS; any failure throws.
 */
export function mappedDevice(
opts: { plugins: readonly IommuPlugin[]; profile: HostProfile; iova: bigint; length: bigint; bdf?: string }): MappedDevice {
  // These check the vendor, not the platform's MSI isolation: bind as a VMM does on a host without
  // interrupt remapping (virtio-iommu, RISC-V), with iommufd.allow_unsafe_interrupts=1.
  const host = createHost({ plugins: opts.plugins, profile: opts.profile, allowUnsafeInterrupts: true });
  const dev = host.device(opts.bdf ?? opts.profile.devices[0].bdf);
  const fd = host.openIommufd();
  dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const va = host.process.mmap(Number(opts.length));
  fd.ioas.map({ ioasId: ioas, userVa: va, length: opts.length, iova: opts.iova });
  dev.attachPt(ioas);
  return { host, fd, dev, ioas, va };
}
