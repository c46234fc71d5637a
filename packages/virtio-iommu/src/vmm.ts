/**
 * The virtio-iommu device a VMM exposes, backed by the iommufd uAPI: each endpoint is a host device
 * bound to one iommufd, each translated domain is an IOAS, and a MAP becomes IOMMU_IOAS_MAP with a
 * fixed IOVA (virt_start) at the VMM's user VA of the guest page (phys_start), so the endpoint's DMA
 * at that IOVA reaches the guest page. Bypass is one identity IOAS (IOVA = guest-physical address)
 * holding all guest RAM; an unattached endpoint that does not bypass is detached (DMA blocked).
 */
import { DmaFault, IommufdError, type Host, type Iommufd, type PciDevice } from '@ioasid/core';
import {
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_UNKNOWN,
  VIRTIO_IOMMU_RESV_MEM_T_MSI,
  VIRTIO_IOMMU_RESV_MEM_T_RESERVED,
  VIRTIO_IOMMU_S_DEVERR,
  VIRTIO_IOMMU_S_FAULT,
  VIRTIO_IOMMU_S_INVAL,
  VIRTIO_IOMMU_S_NOMEM,
  VIRTIO_IOMMU_S_OK,
  VIRTIO_IOMMU_S_RANGE,
  U64_MAX,
} from './spec.js';
import { BASE_CONFIG, VirtioIommuConfigError, type VirtioIommuConfigInput } from './config.js';
import { VirtioIommuDevice, type DomainState, type EndpointDesc, type EndpointTarget, type ResvRegion, type VirtioIommuBackend, type VirtioIommuDeviceOptions } from './device.js';
import type { Mapping } from './mappings.js';

/** One region of guest RAM: guest-physical address, the VMM's user VA in `host.process`, size in bytes. */
export interface GuestRamRegion {
  /** Guest-physical address of the region's first byte (page aligned). */
  gpa: bigint;
  /** The VMM's user virtual address of that byte in `host.process` (page aligned). */
  va: bigint;
  /** Bytes in the region (a multiple of the host page size). */
  size: bigint;
}

/** How {@link createVirtioIommu} builds the VMM's device: which host device is behind each endpoint, where guest RAM is, and the device options. */
export interface VirtioIommuOptions extends Omit<VirtioIommuDeviceOptions, 'endpoints' | 'backend' | 'config'> {
  /** Endpoint ID (the guest's view) -> BDF of the host device behind it. */
  endpoints: Readonly<Record<number, string>> | ReadonlyMap<number, string>;
  /** Guest RAM, non-overlapping: MAP's `phys_start` must fall in it, and the bypass IOAS maps all of it at IOVA = GPA. */
  guestRam: readonly GuestRamRegion[];
  /** Configuration fields that override those derived from the endpoints' host IOMMUs. */
  config?: VirtioIommuConfigInput;
  /** An open /dev/iommu to use (default: the device opens its own). */
  iommufd?: Iommufd;
}

const HOST_PAGE = 4096n;

function endpointEntries(e: VirtioIommuOptions['endpoints']): Array<[number, string]> {
  if (e instanceof Map) return [...(e as ReadonlyMap<number, string>).entries()];
  return Object.entries(e as Record<string, string>).map(([k, v]) => [Number(k), v]);
}

/** The status a failed uAPI call becomes. */
function statusOfError(e: unknown): number {
  if (!(e instanceof IommufdError)) throw e;
  switch (e.code) {
    case 'EINVAL':
      // The host refuses the IOVA: outside the aperture or in a reserved region.
      return VIRTIO_IOMMU_S_RANGE;
    case 'ENOMEM':
    case 'ENOSPC':
      return VIRTIO_IOMMU_S_NOMEM;
    case 'EFAULT':
    case 'EPERM':
      return VIRTIO_IOMMU_S_FAULT;
    case 'EEXIST':
      return VIRTIO_IOMMU_S_INVAL;
    default:
      return VIRTIO_IOMMU_S_DEVERR;
  }
}

class IommufdBackend implements VirtioIommuBackend {
  private identityIoas = 0;
  /** Mappings that have IOAS areas (MMIO and no-access mappings have none). */
  private readonly mapped = new WeakSet<Mapping>();

  constructor(
    private readonly fd: Iommufd,
    private readonly devices: ReadonlyMap<number, PciDevice>,
    private readonly ram: readonly GuestRamRegion[],
  ) {}

  createDomain(d: DomainState): number {
    if (d.bypass) return VIRTIO_IOMMU_S_OK;
    try {
      d.handle = this.fd.ioas.alloc();
      return VIRTIO_IOMMU_S_OK;
    } catch (e) {
      return statusOfError(e);
    }
  }

  destroyDomain(d: DomainState): void {
    if (d.bypass || d.handle === 0) return;
    this.fd.ioas.unmapAll(d.handle);
    this.fd.destroy(d.handle);
    d.handle = 0;
  }

  /** The IOAS that maps all guest RAM at IOVA = GPA, created on first use. */
  private identity(): number {
    if (this.identityIoas !== 0) return this.identityIoas;
    const id = this.fd.ioas.alloc();
    try {
      for (const r of this.ram) this.fd.ioas.map({ ioasId: id, userVa: r.va, length: r.size, iova: r.gpa });
    } catch (e) {
      this.fd.destroy(id);
      throw e;
    }
    this.identityIoas = id;
    return id;
  }

  setEndpoint(endpoint: number, target: EndpointTarget): number {
    const dev = this.devices.get(endpoint);
    if (!dev) return VIRTIO_IOMMU_S_DEVERR;
    try {
      if (target.kind === 'blocked') {
        if (dev.attachedPt() !== 0) dev.detachPt();
      } else {
        const ioas = target.kind === 'bypass' ? this.identity() : target.domain.handle;
        dev.attachPt(ioas);
      }
      return VIRTIO_IOMMU_S_OK;
    } catch (e) {
      return statusOfError(e);
    }
  }

  map(d: DomainState, m: Mapping): number {
    const access = m.flags & (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE);
    // MMIO (a doorbell, not RAM) and no-access mappings live only in the device: accesses fault or
    // go to the MSI controller, never through an IOAS area (QEMU does not notify MMIO maps either).
    if (m.flags & VIRTIO_IOMMU_MAP_F_MMIO || access === 0) return VIRTIO_IOMMU_S_OK;
    const pieces = ramPieces(this.ram, m.phys, m.end - m.start + 1n);
    if (!pieces) return VIRTIO_IOMMU_S_FAULT;
    let iova = m.start;
    try {
      for (const p of pieces) {
        this.fd.ioas.map({
          ioasId: d.handle,
          userVa: p.va,
          length: p.length,
          iova,
          readable: (m.flags & VIRTIO_IOMMU_MAP_F_READ) !== 0,
          writeable: (m.flags & VIRTIO_IOMMU_MAP_F_WRITE) !== 0,
        });
        iova += p.length;
      }
    } catch (e) {
      if (iova > m.start) this.fd.ioas.unmap(d.handle, m.start, iova - m.start);
      return statusOfError(e);
    }
    this.mapped.add(m);
    return VIRTIO_IOMMU_S_OK;
  }

  unmap(d: DomainState, m: Mapping): void {
    if (!this.mapped.has(m)) return;
    this.fd.ioas.unmap(d.handle, m.start, m.end - m.start + 1n);
    this.mapped.delete(m);
  }
}

/** Splits [gpa, gpa + length) into guest RAM pieces (user VA + length); null when part of it is not RAM. */
export function ramPieces(
  ram: readonly GuestRamRegion[],
  gpa: bigint,
  length: bigint,
): Array<{
  /** The VMM's user VA of the piece. */
  va: bigint;
  /** Bytes in the piece. */
  length: bigint;
}> | null {
  const out: Array<{ va: bigint; length: bigint }> = [];
  let cur = gpa;
  const end = gpa + length;
  while (cur < end) {
    const r = ram.find((x) => cur >= x.gpa && cur < x.gpa + x.size);
    if (!r) return null;
    const n = (r.gpa + r.size < end ? r.gpa + r.size : end) - cur;
    out.push({ va: r.va + (cur - r.gpa), length: n });
    cur += n;
  }
  return out;
}

function checkGuestRam(ram: readonly GuestRamRegion[]): void {
  const sorted = [...ram].sort((a, b) => (a.gpa < b.gpa ? -1 : 1));
  let prevEnd = -1n;
  for (const r of sorted) {
    if (typeof r.gpa !== 'bigint' || typeof r.va !== 'bigint' || typeof r.size !== 'bigint' || r.size <= 0n || r.gpa < 0n || r.gpa + r.size - 1n > U64_MAX) {
      throw new VirtioIommuConfigError('guestRam: expected { gpa, va, size } as bigints with size > 0');
    }
    if (r.gpa % HOST_PAGE !== 0n || r.va % HOST_PAGE !== 0n || r.size % HOST_PAGE !== 0n) throw new VirtioIommuConfigError('guestRam: gpa, va and size must be page aligned');
    if (r.gpa < prevEnd) throw new VirtioIommuConfigError('guestRam: regions overlap');
    prevEnd = r.gpa + r.size;
  }
}

/** RESV_MEM regions of a host device: its MSI window as MSI, every other reserved region as RESERVED. */
function hostReservedRegions(host: Host, dev: PciDevice): ResvRegion[] {
  const typed = host.profile.devices.find((d) => d.bdf === dev.bdf)?.reservedRegions ?? [];
  return dev.reservedRegions.map((r, i) => ({
    start: r.start,
    end: r.last,
    subtype: typed[i]?.type === 'msi' ? VIRTIO_IOMMU_RESV_MEM_T_MSI : VIRTIO_IOMMU_RESV_MEM_T_RESERVED,
  }));
}

/** The largest input width a unit's host stage translates. */
function hostInputBits(dev: PciDevice): number {
  const bits = dev.unitOps.caps.hostStage?.inputBits ?? [64];
  return Math.max(...bits);
}

/** The virtio-iommu device of a VMM whose endpoints are host devices bound to an iommufd: every domain is an IOAS, MAP is IOMMU_IOAS_MAP at the guest page's user VA, bypass is an identity IOAS of all guest RAM. Built by {@link createVirtioIommu}. */
export class VirtioIommu extends VirtioIommuDevice {
  private readonly devices: Map<number, PciDevice>;

  constructor(
    /** The host whose devices sit behind the endpoints. */
    readonly host: Host,
    /** The iommufd every endpoint's host device is bound to and every domain's IOAS lives in. */
    readonly iommufd: Iommufd,
    /** Guest RAM regions as given in the options. */
    readonly guestRam: readonly GuestRamRegion[],
    devices: Map<number, PciDevice>,
    opts: VirtioIommuDeviceOptions,
  ) {
    super(opts);
    this.devices = devices;
  }

  /** The host device behind an endpoint. */
  endpointDevice(endpoint: number): PciDevice | undefined {
    return this.devices.get(endpoint);
  }

  /**
   * Hot-plugs a host device as a new endpoint. The page-size mask the guest read at boot is frozen: a
   * device whose host IOMMU cannot map the granule is refused, as QEMU refuses it ("virtio-iommu does not
   * support frozen granule").
   */
  hotplug(endpoint: number, bdf: string): void {
    if (this.endpoint(endpoint) !== undefined) throw new VirtioIommuConfigError(`endpoint ${endpoint} exists`);
    const dev = this.host.device(bdf);
    const mask = this.configValues.page_size_mask;
    const granule = mask & -mask;
    const pageSizes = dev.unitOps.caps.hostStage?.pageSizes ?? mask;
    if ((pageSizes & mask) === 0n || ((pageSizes & mask) & -(pageSizes & mask)) !== granule) {
      throw new VirtioIommuConfigError(`virtio-iommu does not support frozen granule 0x${granule.toString(16)} (${bdf} maps 0x${pageSizes.toString(16)})`);
    }
    if (dev.devId === null) dev.bindIommufd(this.iommufd);
    else if (dev.boundIommufd !== this.iommufd) throw new VirtioIommuConfigError(`${bdf} is bound to another iommufd`);
    this.devices.set(endpoint, dev);
    this.addEndpoint({ id: endpoint, reserved: hostReservedRegions(this.host, dev), pageSizeMask: pageSizes });
  }

  /**
   * The endpoint's DMA engine: the host device's DMA through the IOMMU; an access the IOMMU refuses
   * is reported on the event queue as a virtio_iommu_fault before the DmaFault is rethrown.
   */
  dma(endpoint: number): {
    /** Reads `length` bytes at `iova` as the endpoint's DMA. */
    read(iova: bigint, length: number): Promise<Uint8Array>;
    /** Writes `data` at `iova` as the endpoint's DMA. */
    write(iova: bigint, data: Uint8Array): Promise<void>;
  } {
    const dev = this.devices.get(endpoint);
    if (!dev) throw new RangeError(`no endpoint ${endpoint}`);
    const guard = async <T>(iova: bigint, write: boolean, op: () => Promise<T>): Promise<T> => {
      try {
        return await op();
      } catch (e) {
        if (e instanceof DmaFault) this.reportDmaFault(endpoint, e.fault.addr > iova ? e.fault.addr : iova, write);
        throw e;
      }
    };
    return {
      read: (iova, length) => guard(iova, false, () => dev.dma.read(iova, length)),
      write: (iova, data) => guard(iova, true, () => dev.dma.write(iova, data)),
    };
  }

  /** Classifies a refused access with the device's own view (domain, mapping, reserved region). */
  private reportDmaFault(endpoint: number, addr: bigint, write: boolean): void {
    const t = this.translate(endpoint, addr, write);
    if (!t.ok) this.reportFault(t.fault);
    else {
      // The device would allow it but the host refused (e.g. an MMIO mapping): an internal error.
      this.reportFault({ reason: VIRTIO_IOMMU_FAULT_R_UNKNOWN, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | (write ? VIRTIO_IOMMU_FAULT_F_WRITE : VIRTIO_IOMMU_FAULT_F_READ), endpoint, address: addr });
    }
  }

  /** Reads guest-physical memory (through the VMM's mapping of guest RAM); RangeError outside RAM. */
  readGuest(gpa: bigint, length: number): Uint8Array {
    const pieces = ramPieces(this.guestRam, gpa, BigInt(length));
    if (!pieces) throw new RangeError(`guest-physical 0x${gpa.toString(16)}+${length} is not guest RAM`);
    const out = new Uint8Array(length);
    let off = 0;
    for (const p of pieces) {
      out.set(this.host.process.peek(p.va, Number(p.length)), off);
      off += Number(p.length);
    }
    return out;
  }

  /** Writes guest-physical memory (through the VMM's mapping of guest RAM); RangeError outside RAM. */
  writeGuest(gpa: bigint, bytes: Uint8Array): void {
    const pieces = ramPieces(this.guestRam, gpa, BigInt(bytes.length));
    if (!pieces) throw new RangeError(`guest-physical 0x${gpa.toString(16)}+${bytes.length} is not guest RAM`);
    let off = 0;
    for (const p of pieces) {
      this.host.process.poke(p.va, bytes.subarray(off, off + Number(p.length)));
      off += Number(p.length);
    }
  }
}

/**
 * Builds the device over an open iommufd: binds every endpoint's host device, and points each
 * endpoint at its initial target (bypass when `bypass` = 1, else blocked). The default configuration
 * is QEMU's with VFIO endpoints: the page sizes every endpoint's host IOMMU can map, the input range
 * of the narrowest host IOMMU, all 32-bit domain IDs, a 512-byte PROBE buffer, boot bypass.
 */
export function createVirtioIommu(host: Host, options: VirtioIommuOptions): VirtioIommu {
  checkGuestRam(options.guestRam);
  const fd = options.iommufd ?? host.openIommufd();
  const devices = new Map<number, PciDevice>();
  const endpoints: EndpointDesc[] = [];
  let mask = BASE_CONFIG.page_size_mask;
  let inputBits = 64;
  for (const [id, bdf] of endpointEntries(options.endpoints)) {
    const dev = host.device(bdf);
    const pageSizes = dev.unitOps.caps.hostStage?.pageSizes ?? BASE_CONFIG.page_size_mask;
    mask &= pageSizes;
    inputBits = Math.min(inputBits, hostInputBits(dev));
    devices.set(id, dev);
    endpoints.push({ id, reserved: hostReservedRegions(host, dev), pageSizeMask: pageSizes });
  }
  if (mask === 0n) throw new VirtioIommuConfigError('page_size_mask: the endpoints\' host IOMMUs have no page size in common');
  const config: VirtioIommuConfigInput = {
    page_size_mask: mask,
    input_range: { start: 0n, end: inputBits >= 64 ? U64_MAX : (1n << BigInt(inputBits)) - 1n },
    ...options.config,
  };
  const granule = (config.page_size_mask ?? mask) & -(config.page_size_mask ?? mask);
  if (granule !== 0n && granule < HOST_PAGE) throw new VirtioIommuConfigError(`page_size_mask: a ${granule}-byte granule is smaller than the host page size (IOMMU_IOAS_MAP maps whole pages)`);
  for (const dev of devices.values()) {
    if (dev.devId === null) dev.bindIommufd(fd);
    else if (dev.boundIommufd !== fd) throw new VirtioIommuConfigError(`${dev.bdf} is bound to another iommufd`);
  }
  const backend = new IommufdBackend(fd, devices, options.guestRam);
  const vdev = new VirtioIommu(host, fd, options.guestRam, devices, { ...options, endpoints, config, backend });
  vdev.start();
  return vdev;
}
