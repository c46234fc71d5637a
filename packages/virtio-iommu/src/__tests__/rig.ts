/** Shared test helpers: a mock-vendor host with guest RAM, and request shorthands. */
import { createHost, type Host } from '@ioasid/core';
import { mockPlugin } from '@ioasid/core/testing';
import type { VirtioIommuDevice } from '../device.js';
import { answerStatus, encodeAttach, encodeDetach, encodeMap, encodeUnmap } from '../requests.js';
import { createVirtioIommu, type VirtioIommu, type VirtioIommuOptions } from '../vmm.js';
import { VIRTIO_IOMMU_MAP_F_READ, VIRTIO_IOMMU_MAP_F_WRITE } from '../spec.js';

export const RW = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE;
export const MSI_START = 0xfee00000n;
export const MSI_END = 0xfeefffffn;

/** Two endpoints behind one mock IOMMU: 0x10 with the x86 MSI window, 0x18 with a reserved hole too. */
export function mockHost(): Host {
  return createHost({
    plugins: [mockPlugin()],
    profile: {
      name: 'mock host',
      units: [{ id: 'mock0', vendor: 'mock', registers: {} }],
      devices: [
        { bdf: '0000:00:02.0', unit: 'mock0', group: 1, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }] },
        {
          bdf: '0000:00:03.0',
          unit: 'mock0',
          group: 2,
          reservedRegions: [
            { start: '0xfee00000', last: '0xfeefffff', type: 'msi' },
            { start: '0x40000000', last: '0x4000ffff', type: 'reserved' },
          ],
        },
      ],
    },
  });
}

/** 16 MiB of guest RAM at GPA 0 and 1 MiB at GPA 0x1_0000_0000, in the VMM's process. */
export function vmm(opts: Partial<VirtioIommuOptions> = {}): { host: Host; dev: VirtioIommu } {
  const host = mockHost();
  const low = host.process.mmap(16 << 20);
  const high = host.process.mmap(1 << 20);
  const dev = createVirtioIommu(host, {
    endpoints: { 0x10: '0000:00:02.0', 0x18: '0000:00:03.0' },
    guestRam: [
      { gpa: 0n, va: low, size: 16n << 20n },
      { gpa: 0x1_0000_0000n, va: high, size: 1n << 20n },
    ],
    ...opts,
  });
  return { host, dev };
}

export function status(dev: VirtioIommuDevice, out: Uint8Array, inLen = 4): number {
  return answerStatus(dev.request(out, inLen));
}

export const attach = (dev: VirtioIommuDevice, domain: number, endpoint: number, flags = 0, reserved = 0): number =>
  status(dev, encodeAttach({ domain, endpoint, flags, reserved }));
export const detach = (dev: VirtioIommuDevice, domain: number, endpoint: number): number => status(dev, encodeDetach({ domain, endpoint }));
export const map = (dev: VirtioIommuDevice, domain: number, virtStart: bigint, virtEnd: bigint, physStart: bigint, flags = RW): number =>
  status(dev, encodeMap({ domain, virtStart, virtEnd, physStart, flags }));
export const unmap = (dev: VirtioIommuDevice, domain: number, virtStart: bigint, virtEnd: bigint, reserved = 0): number =>
  status(dev, encodeUnmap({ domain, virtStart, virtEnd, reserved }));
