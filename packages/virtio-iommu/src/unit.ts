/**
 * virtio-iommu as the host's IOMMU: the unit an L1 guest sees when its VMM (L0) exposes a
 * virtio-iommu device. The "hardware" is that device (a `VirtioIommuDevice` translating by itself);
 * the unit is Linux's driver (drivers/iommu/virtio-iommu.c): each paging domain keeps the driver's
 * mapping tree and turns map and unmap into MAP and UNMAP requests, attach into ATTACH (the device
 * detaches implicitly), and the first endpoint of a domain replays its mappings. The requests go out from
 * the domain's `attachDev` / `detachDev` hooks, which core calls only once the attach can no longer be
 * refused, so that the device never runs ahead of iommufd.
 */
import {
  ERRNO,
  IOMMU_MMIO,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_READ,
  PERM_WRITE,
  WALK_NOT_PRESENT,
  WALK_OK,
  grantBoth,
  type DecodedUnit,
  type DeviceInfo,
  type IoPageTable,
  type NormalizedCaps,
  type PageTableConfig,
  type PagingAllocFlags,
  type PagingDomainOps,
  type UnitInit,
  type UnitOps,
  type VendorError,
  type WalkResult,
} from '@ioasid/core/driver';
import { VirtioIommuDevice } from './device.js';
import { VirtioFaultCodec } from './fault-codec.js';
import { MappingStore, type Mapping } from './mappings.js';
import { answerStatus, encodeAttach, encodeDetach, encodeMap, encodeProbe, encodeUnmap, parseProperties, type ProbeProperty } from './requests.js';
import { decodeUnit, type LinuxProbe, type VirtioIommuRegisters } from './registers.js';
import {
  REQUEST_NAMES,
  VIRTIO_IOMMU_PROBE_T_RESV_MEM,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  VIRTIO_IOMMU_S_OK,
  statusErrno,
} from './spec.js';

/** The Linux page size: a granule above it cannot back a domain (viommu_domain_finalise). */
const PAGE_SIZE = 4096n;
const REQUEST_LOG_DEPTH = 256;

/** A request the driver sent and the status the device answered. */
export interface SentRequest {
  /** The request's short name (`MAP`, `ATTACH`, ...), or `type N` for an unknown type byte. */
  readonly type: string;
  /** The device-readable bytes the driver put on the request queue. */
  readonly bytes: Uint8Array;
  /** `virtio_iommu_req_tail.status` the device wrote; `VIRTIO_IOMMU_S_IOERR` (1) when the used length was 0. */
  readonly status: number;
}

/** The virtio-iommu device: what the L0 VMM runs, here translating by itself. */
function l0Device(regs: VirtioIommuRegisters, probe: LinuxProbe): VirtioIommuDevice {
  const dev = new VirtioIommuDevice({ endpoints: [], features: regs.features, config: regs.config });
  dev.negotiate(probe.negotiated);
  return dev;
}

/** The unit an L1 guest's iommufd sees on a virtio-iommu: Linux's virtio-iommu driver (viommu_probe, viommu_domain_alloc_paging, viommu_attach_dev) talking to a {@link VirtioIommuDevice} over its request queue. */
export class VirtioIommuUnit implements UnitOps {
  /** Always `'virtio-iommu'`. */
  readonly vendor = 'virtio-iommu';
  readonly name: string;
  /** The unit as decoded from its host profile. */
  readonly decoded: DecodedUnit;
  /** Capabilities in core's vocabulary: MAP/UNMAP only, so no user stage, nesting, PASID or dirty tracking. */
  readonly caps: NormalizedCaps;
  /** What viommu_probe derived from the features and configuration. */
  readonly probe: LinuxProbe;
  /** The device behind the unit. */
  readonly device: VirtioIommuDevice;
  /** The last requests the driver sent, oldest first. */
  readonly requests: SentRequest[] = [];
  private readonly domainIds = new Set<number>();
  private nextDomainHint: number;
  /** Endpoint -> the driver's domain it is attached to. */
  readonly endpointDomain = new Map<number, VirtioPagingDomain>();
  /** The event queue's fault records and the driver's line for them; no page requests. */
  readonly faults: VirtioFaultCodec = new VirtioFaultCodec({ onBlockingDomain: (ep) => this.blocking !== null && this.endpointDomain.get(ep) === this.blocking });

  constructor(init: UnitInit) {
    const d = decodeUnit(init.raw);
    if (!d.ok) throw new Error(d.error);
    this.name = init.id;
    this.decoded = init.decoded;
    this.caps = init.decoded.caps;
    this.probe = d.value.probe;
    this.device = l0Device(d.value.regs, d.value.probe);
    this.nextDomainHint = this.probe.firstDomain;
  }

  /** Sends one request synchronously (viommu_send_req_sync); returns the status. */
  send(out: Uint8Array, inLen = 4): number {
    const answer = this.device.request(out, inLen);
    // Used length 0: the driver sets IOERR.
    const status = answer.length === 0 ? 1 : answerStatus(answer);
    this.logRequest(out, status);
    return status;
  }

  /** Reserved regions each endpoint's PROBE reported (viommu_add_resv_mem). */
  readonly resvRegions = new Map<number, ProbeProperty[]>();

  /**
   * The driver meets an endpoint on probe_device; here on first use. With F_PROBE it sends PROBE
   * (viommu_probe_endpoint) with a properties buffer of exactly probe_size and keeps the RESV_MEM regions.
   */
  endpointOf(dev: DeviceInfo): number {
    const ep = dev.rid;
    if (this.device.endpoint(ep) !== undefined) return ep;
    this.device.addEndpoint({ id: ep });
    const size = this.probe.probeSize;
    if (size > 0) {
      const out = encodeProbe({ endpoint: ep });
      const answer = this.device.request(out, size + 4);
      const status = answer.length === 0 ? 1 : answerStatus(answer);
      this.logRequest(out, status);
      if (status === VIRTIO_IOMMU_S_OK) this.resvRegions.set(ep, parseProperties(answer.subarray(0, size)).filter((p) => p.type === VIRTIO_IOMMU_PROBE_T_RESV_MEM));
    }
    return ep;
  }

  private logRequest(out: Uint8Array, status: number): void {
    if (this.requests.length >= REQUEST_LOG_DEPTH) this.requests.shift();
    this.requests.push({ type: REQUEST_NAMES[out[0]] ?? `type ${out[0]}`, bytes: out, status });
  }

  /** ida_alloc_range(first_domain, last_domain): the lowest free ID; -1 when none is left. */
  private allocDomainId(): number {
    const { firstDomain, lastDomain } = this.probe;
    for (let id = this.nextDomainHint, n = 0; id <= lastDomain && n < 1 << 20; id++, n++) {
      if (!this.domainIds.has(id)) {
        this.domainIds.add(id);
        this.nextDomainHint = id + 1;
        return id;
      }
    }
    for (let id = firstDomain; id < this.nextDomainHint; id++) {
      if (!this.domainIds.has(id)) {
        this.domainIds.add(id);
        return id;
      }
    }
    return -1;
  }

  /**
   * The empty paging domain that blocks DMA. Linux's virtio-iommu has no blocked domain op, so iommu.c
   * __iommu_group_alloc_blocking_domain gives it an empty paging domain; a DETACH would instead let the
   * endpoint bypass when the device's `bypass` is set. Allocated on first use (Linux allocates one per
   * iommu group; the model shares one per unit).
   */
  private blocking: VirtioPagingDomain | null = null;

  /**
   * UnitOps.blockingDomain: the empty paging domain a bound device is parked on (iommufd_device_bind
   * claims the DMA ownership, which ATTACHes the endpoint to it). ENOSPC when domain_range has no ID
   * left for it (viommu_domain_alloc_paging's ida_alloc_range), which fails the bind.
   */
  blockingDomain(dev: DeviceInfo): VirtioPagingDomain | VendorError {
    this.endpointOf(dev);
    if (this.blocking === null) {
      const id = this.allocDomainId();
      if (id < 0) return { errno: 'ENOSPC', reason: 'no free domain ID in domain_range for the blocking domain' };
      this.blocking = new VirtioPagingDomain(this, id);
    }
    return this.blocking;
  }

  /** Returns a domain ID to the allocator (ida_free), once its domain is freed. */
  freeDomainId(id: number): void {
    this.domainIds.delete(id);
    if (id < this.nextDomainHint) this.nextDomainHint = id;
  }

  domainAllocPaging(dev: DeviceInfo, flags: PagingAllocFlags): PagingDomainOps | VendorError {
    // The first op for a device: Linux probed it (PROBE) long before any domain.
    this.endpointOf(dev);
    if (flags.nestParent) return { errno: 'EOPNOTSUPP', reason: 'virtio-iommu has MAP/UNMAP only: no stage a guest could own, so no nesting parent' };
    if (flags.dirtyTracking) return { errno: 'EOPNOTSUPP', reason: 'virtio-iommu has no dirty tracking' };
    if (flags.pasid) return { errno: 'EOPNOTSUPP', reason: 'virtio-iommu has no PASID support' };
    const granule = this.probe.pgsizeBitmap & -this.probe.pgsizeBitmap;
    if (granule > PAGE_SIZE) return { errno: 'ENODEV', reason: `granule 0x${granule.toString(16)} larger than system page size 0x${PAGE_SIZE.toString(16)}` };
    const id = this.allocDomainId();
    if (id < 0) return { errno: 'ENOSPC', reason: 'no free domain ID in domain_range' };
    return new VirtioPagingDomain(this, id);
  }

  bootLog(): string[] {
    return [`virtio_iommu ${this.name}: input address: ${this.probe.inputBits} bits`, `virtio_iommu ${this.name}: page mask: 0x${this.probe.pgsizeBitmap.toString(16)}`];
  }
}

function errnoOf(status: number): number {
  const e = statusErrno(status);
  return e === 'OK' ? 0 : -ERRNO[e];
}

/** The driver's paging domain (struct viommu_domain): its mapping tree, its ID, its endpoints. */
export class VirtioPagingDomain implements PagingDomainOps {
  /** The driver's mapping tree for this domain, seen as core's page-table interface. */
  readonly pt: VirtioDomainTable;
  /** Page sizes of the domain: the device's `page_size_mask`. */
  readonly pgsizeBitmap: bigint;
  readonly apertureStart: bigint;
  /** Last IOVA of the aperture (inclusive): `input_range.end`, or 2^64 - 1 without `VIRTIO_IOMMU_F_INPUT_RANGE`. */
  readonly apertureLast: bigint;
  readonly enforceCacheCoherency = false;
  /** Endpoint IDs attached to this domain; the first one to arrive makes the driver replay every mapping as MAP requests. */
  readonly endpoints = new Set<number>();

  constructor(
    /** The unit the domain was allocated on; attaching a device of another unit fails with EINVAL. */
    readonly unit: VirtioIommuUnit,
    /** The domain ID the driver allocated from `domain_range` and puts in ATTACH, DETACH, MAP and UNMAP. */
    readonly tag: number,
  ) {
    const p = unit.probe;
    this.pgsizeBitmap = p.pgsizeBitmap;
    this.apertureStart = p.apertureStart;
    this.apertureLast = p.apertureEnd;
    this.pt = new VirtioDomainTable(this, { pgsizeBitmap: p.pgsizeBitmap, ias: p.inputBits, oas: 64 });
  }

  /** The domain ID (the same as `tag`). */
  get id(): number {
    return this.tag;
  }

  /** The check half of viommu_attach_dev: a domain serves the virtio-iommu it was allocated on. No request goes out. */
  checkAttach(_dev: DeviceInfo, unit: UnitOps): VendorError | null {
    return unit === this.unit ? null : { errno: 'EINVAL', reason: 'the domain belongs to another virtio-iommu' };
  }

  /**
   * viommu_attach_dev: ATTACH for the endpoint (the device detaches it from its old domain, and drops that
   * domain's mappings when it was the last endpoint); the first endpoint replays the mappings
   * (viommu_replay_mappings). A refused ATTACH leaves the endpoint where it was; a failed replay leaves it
   * here, and core re-attaches the previous domain, whose first endpoint replays it in turn.
   */
  attachDev(dev: DeviceInfo, unit: UnitOps): VendorError | null {
    if (unit !== this.unit) return { errno: 'EINVAL', reason: 'the domain belongs to another virtio-iommu' };
    const ep = this.unit.endpointOf(dev);
    const old = this.unit.endpointDomain.get(ep);
    if (old === this) return null;
    const st = this.unit.send(encodeAttach({ domain: this.tag, endpoint: ep }));
    if (st !== VIRTIO_IOMMU_S_OK) return { errno: statusErrno(st) as VendorError['errno'], reason: `ATTACH of endpoint ${ep} to domain ${this.tag} failed` };
    old?.endpoints.delete(ep);
    const first = this.endpoints.size === 0;
    this.endpoints.add(ep);
    this.unit.endpointDomain.set(ep, this);
    if (first) {
      for (const m of this.pt.mappings.all()) {
        const rs = this.unit.send(encodeMap({ domain: this.tag, virtStart: m.start, virtEnd: m.end, physStart: m.phys, flags: m.flags }));
        if (rs !== VIRTIO_IOMMU_S_OK) return { errno: statusErrno(rs) as VendorError['errno'], reason: `replaying MAP 0x${m.start.toString(16)} failed` };
      }
    }
    return null;
  }

  /**
   * The endpoint leaves for blocked DMA: ATTACH to the unit's empty blocking domain. Only when no domain
   * ID is left for it does the driver fall back to DETACH (viommu_detach_dev).
   */
  detachDev(dev: DeviceInfo, unit: UnitOps): void {
    const ep = this.unit.endpointOf(dev);
    if (this.unit.endpointDomain.get(ep) !== this) return;
    const blocking = this.unit.blockingDomain(dev);
    if (blocking instanceof VirtioPagingDomain && blocking.attachDev(dev, unit) === null) return;
    this.unit.send(encodeDetach({ domain: this.tag, endpoint: ep }));
    this.endpoints.delete(ep);
    this.unit.endpointDomain.delete(ep);
  }

  /** viommu_domain_free: endpoints still attached are detached, the mappings dropped, the ID freed. */
  free(): void {
    for (const ep of [...this.endpoints]) {
      this.unit.send(encodeDetach({ domain: this.tag, endpoint: ep }));
      if (this.unit.endpointDomain.get(ep) === this) this.unit.endpointDomain.delete(ep);
    }
    this.endpoints.clear();
    this.pt.mappings.clear();
    this.unit.freeDomainId(this.tag);
  }
}

const PAGE = 4096n;

/**
 * The io-pgtable view of a virtio-iommu domain. map/unmap are viommu_map_pages /
 * viommu_unmap_pages on the driver's tree plus MAP/UNMAP requests; a walk asks the device, which
 * holds the mappings (no page-table memory is involved: the table lives in the VMM).
 */
export class VirtioDomainTable implements IoPageTable {
  /** Always `'virtio-iommu'`: there is no page-table format, the mappings live in the device. */
  readonly format = 'virtio-iommu';
  readonly rootPfn = 0;
  readonly levels = 0;
  readonly tablePages = 0;
  /** The driver's mapping tree (viommu_domain.mappings), kept even while no endpoint is attached. */
  readonly mappings = new MappingStore();

  constructor(
    private readonly domain: VirtioPagingDomain,
    /** Page sizes and address widths taken from the unit's probe (`ias` is the aperture's bit count, `oas` 64). */
    readonly cfg: Readonly<PageTableConfig>,
  ) {}

  private get unit(): VirtioIommuUnit {
    return this.domain.unit;
  }

  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    const flags = (prot & IOMMU_READ ? VIRTIO_IOMMU_MAP_F_READ : 0) | (prot & IOMMU_WRITE ? VIRTIO_IOMMU_MAP_F_WRITE : 0) | (prot & IOMMU_MMIO ? VIRTIO_IOMMU_MAP_F_MMIO : 0);
    if (flags & ~this.unit.probe.mapFlags) return -ERRNO.EINVAL;
    const start = BigInt(iovaPfn) * PAGE;
    const end = start + BigInt(npages) * PAGE - 1n;
    if (npages <= 0) return -ERRNO.EINVAL;
    if (this.mappings.overlapping(start, end).length > 0) return -ERRNO.EEXIST;
    const m: Mapping = { start, end, phys: BigInt(paPfn) * PAGE, flags };
    this.mappings.insert(m);
    if (this.domain.endpoints.size > 0) {
      const st = this.unit.send(encodeMap({ domain: this.domain.tag, virtStart: start, virtEnd: end, physStart: m.phys, flags }));
      if (st !== VIRTIO_IOMMU_S_OK) {
        this.mappings.remove(m);
        return errnoOf(st);
      }
    }
    return 0;
  }

  /**
   * viommu_del_mappings: whole mappings from `iovaPfn` on, stopping at one that starts before it;
   * fewer bytes than asked gives 0 (the removed mappings stay removed from the tree, as in Linux).
   * Otherwise one UNMAP covers what was removed, which may end past the range.
   */
  unmap(iovaPfn: number, npages: number): number {
    const start = BigInt(iovaPfn) * PAGE;
    const end = start + BigInt(npages) * PAGE - 1n;
    let unmapped = 0n;
    for (const m of this.mappings.overlapping(start, end)) {
      if (m.start < start) break;
      unmapped += m.end - m.start + 1n;
      this.mappings.remove(m);
    }
    if (unmapped < BigInt(npages) * PAGE) return 0;
    if (this.domain.endpoints.size > 0) {
      const st = this.unit.send(encodeUnmap({ domain: this.domain.tag, virtStart: start, virtEnd: start + unmapped - 1n }));
      if (st !== VIRTIO_IOMMU_S_OK) return 0;
    }
    return Number(unmapped / PAGE);
  }

  /** The device's translation of the domain's mapping (virtio_iommu_translate). */
  walk(iovaPfn: number, out: WalkResult): boolean {
    const addr = BigInt(iovaPfn) * PAGE;
    const m = this.unit.device.domain(this.domain.tag)?.mappings.lookup(addr);
    if (!m || !(m.flags & (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE)) || m.flags & VIRTIO_IOMMU_MAP_F_MMIO) {
      out.fault = WALK_NOT_PRESENT;
      return false;
    }
    out.fault = WALK_OK;
    out.level = 0;
    out.dirty = false;
    out.perm = grantBoth((m.flags & VIRTIO_IOMMU_MAP_F_READ ? PERM_READ : 0) | (m.flags & VIRTIO_IOMMU_MAP_F_WRITE ? PERM_WRITE : 0));
    out.pfn = Number((m.phys + (addr - m.start)) / PAGE);
    out.pageShift = this.leafShift(m, addr);
    return true;
  }

  /** The largest page size of the mask (up to 1 GiB) whose aligned block around `addr` the mapping covers with the same offset. */
  private leafShift(m: Mapping, addr: bigint): number {
    let best = 12;
    for (let s = 13; s <= 30; s++) {
      const size = 1n << BigInt(s);
      if (!(this.cfg.pgsizeBitmap & size)) continue;
      const base = addr & ~(size - 1n);
      if (base >= m.start && base + size - 1n <= m.end && (m.phys - m.start) % size === 0n) best = s;
    }
    return best;
  }

  free(): void {
    this.mappings.clear();
  }
}

/** The vendor's createUnit. */
export function createVirtioIommuUnit(init: UnitInit): VirtioIommuUnit {
  return new VirtioIommuUnit(init);
}

