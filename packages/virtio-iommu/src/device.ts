/**
 * The virtio-iommu device: its state (endpoints, domains, mappings), the request handler with every
 * status and normative rule of the specification, bypass, translation and fault reports. What the
 * mappings do outside the device is a `VirtioIommuBackend`: the iommufd backend of
 * `createVirtioIommu` turns each domain into an IOAS; without one the device translates by itself
 * (an emulated IOMMU, as QEMU is for emulated devices).
 */
import {
  HEAD_SIZE,
  TAIL_SIZE,
  U64_MAX,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
  VIRTIO_IOMMU_FAULT_R_UNKNOWN,
  VIRTIO_IOMMU_F_BYPASS,
  VIRTIO_IOMMU_F_BYPASS_CONFIG,
  VIRTIO_IOMMU_F_DOMAIN_RANGE,
  VIRTIO_IOMMU_F_INPUT_RANGE,
  VIRTIO_IOMMU_F_MAP_UNMAP,
  VIRTIO_IOMMU_F_MMIO,
  VIRTIO_IOMMU_F_PROBE,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK,
  VIRTIO_IOMMU_PROBE_T_RESV_MEM,
  VIRTIO_IOMMU_RESV_MEM_T_MSI,
  VIRTIO_IOMMU_S_INVAL,
  VIRTIO_IOMMU_S_NOENT,
  VIRTIO_IOMMU_S_OK,
  VIRTIO_IOMMU_S_RANGE,
  VIRTIO_IOMMU_S_UNSUPP,
  VIRTIO_IOMMU_T_ATTACH,
  VIRTIO_IOMMU_T_DETACH,
  VIRTIO_IOMMU_T_MAP,
  VIRTIO_IOMMU_T_PROBE,
  VIRTIO_IOMMU_T_UNMAP,
  CONFIG_OFFSET,
  hasFeature,
} from './spec.js';
import { BASE_CONFIG, DEFAULT_FEATURES, checkOffered, encodeConfig, negotiateFeatures, resolveConfig, type VirtioIommuConfig, type VirtioIommuConfigInput } from './config.js';
import { MappingStore, type Mapping } from './mappings.js';
import { decodeRequest, propertySize, putProperty, type AttachRequest, type DetachRequest, type MapRequest, type ProbeProperty, type ProbeRequest, type UnmapRequest } from './requests.js';
import { encodeFault, type VirtioIommuFault } from './records.js';

/** A reserved IOVA region of an endpoint, as PROBE reports it (end inclusive). */
export interface ResvRegion {
  /** First IOVA of the region. */
  start: bigint;
  /** Last IOVA of the region (inclusive). */
  end: bigint;
  /** VIRTIO_IOMMU_RESV_MEM_T_RESERVED or _MSI. */
  subtype: number;
}

/** An endpoint behind the device, as the VMM describes it: its ID and what PROBE reports for it. */
export interface EndpointDesc {
  /** The endpoint ID (the guest's view: PCI RID or platform ID). */
  id: number;
  /** Reserved and MSI regions reported by PROBE and refused by MAP. */
  reserved?: readonly ResvRegion[];
  /** The page sizes this endpoint's host IOMMU can map; the draft PAGE_SIZE_MASK property. */
  pageSizeMask?: bigint;
}

/**
 * Where QEMU differs from the specification. Each defaults to 'spec'; `quirks: 'qemu'` selects
 * every QEMU behaviour (hw/virtio/virtio-iommu.c). See docs/vendors/virtio-iommu.md.
 */
export interface VirtioIommuQuirks {
  /** Unknown request type: 'spec' returns the buffers unwritten (used length 0); 'qemu' writes S_UNSUPP. */
  unknownRequest: 'spec' | 'qemu';
  /** UNMAP that would split a mapping: 'spec' removes nothing; 'qemu' keeps what it removed before meeting it. */
  unmapSplit: 'spec' | 'qemu';
  /** MAP: 'spec' checks granule alignment, input_range and RESV_MEM; 'qemu' checks none of them. */
  mapChecks: 'spec' | 'qemu';
  /** ATTACH with non-zero reserved bytes: 'spec' INVAL; 'qemu' ignores them. */
  attachReserved: 'spec' | 'qemu';
  /**
   * Fault flags: 'spec' sets F_READ or F_WRITE for the access of every fault with an address (the
   * fault context the flags describe); 'qemu' sets them only for a permission fault.
   */
  faultAccessFlags: 'spec' | 'qemu';
}

/** Every behaviour as the specification says (the default). */
export const SPEC_QUIRKS: Readonly<VirtioIommuQuirks> = { unknownRequest: 'spec', unmapSplit: 'spec', mapChecks: 'spec', attachReserved: 'spec', faultAccessFlags: 'spec' };
/** Every behaviour as QEMU's hw/virtio/virtio-iommu.c has it (`quirks: 'qemu'`). */
export const QEMU_QUIRKS: Readonly<VirtioIommuQuirks> = { unknownRequest: 'qemu', unmapSplit: 'qemu', mapChecks: 'qemu', attachReserved: 'qemu', faultAccessFlags: 'qemu' };

/** A domain as the device holds it: created by the first ATTACH naming its ID, destroyed with its mappings when the last endpoint leaves. */
export interface DomainState {
  /** The domain ID the driver chose. */
  readonly id: number;
  /** Created with `VIRTIO_IOMMU_ATTACH_F_BYPASS`: its endpoints get identity translation and MAP/UNMAP on it are refused. */
  readonly bypass: boolean;
  /** Endpoint IDs attached to the domain. */
  readonly endpoints: Set<number>;
  /** The domain's mappings, one per accepted MAP request. */
  readonly mappings: MappingStore;
  /** Backend data (the IOAS id of the iommufd backend). */
  handle: number;
}

/** Where an endpoint's DMA goes. */
export type EndpointTarget =
  | {
      /** Translated through a paging domain's mappings. */
      kind: 'domain';
      /** The domain the endpoint is attached to. */
      domain: DomainState;
    }
  | {
      /** Identity: unattached with bypass on, or attached to a bypass domain. */
      kind: 'bypass';
    }
  | {
      /** Every access faults: unattached with bypass off. */
      kind: 'blocked';
    };

/**
 * What the device's state changes do outside it. Every method returns a VIRTIO_IOMMU_S_* status and
 * must leave things as they were when it fails.
 */
export interface VirtioIommuBackend {
  /** A domain is being created by its first ATTACH. */
  createDomain(d: DomainState): number;
  /** The last endpoint left the domain: it and its mappings cease to exist. */
  destroyDomain(d: DomainState): void;
  /** Points the endpoint's DMA at a domain, identity (bypass) or nowhere (blocked). */
  setEndpoint(endpoint: number, target: EndpointTarget): number;
  /** A MAP was accepted: make `m` reachable through the domain; returns a `VIRTIO_IOMMU_S_*` status (OK, or the one the device answers). */
  map(d: DomainState, m: Mapping): number;
  /** An UNMAP removed `m` (a whole mapping) from the domain. */
  unmap(d: DomainState, m: Mapping): void;
}

/** The backend of a self-contained device: nothing outside it to update. */
export const NO_BACKEND: VirtioIommuBackend = {
  createDomain: () => VIRTIO_IOMMU_S_OK,
  destroyDomain: () => {},
  setEndpoint: () => VIRTIO_IOMMU_S_OK,
  map: () => VIRTIO_IOMMU_S_OK,
  unmap: () => {},
};

/** How to build a {@link VirtioIommuDevice}: its endpoints, features, configuration, deviations and backend. */
export interface VirtioIommuDeviceOptions {
  /** The endpoints behind the device at start; more may be added with `addEndpoint`. */
  endpoints: readonly EndpointDesc[];
  /** Configuration fields to present instead of {@link BASE_CONFIG}'s. */
  config?: VirtioIommuConfigInput;
  /** The offered feature bits (default: QEMU's set). */
  features?: bigint;
  /** Where to behave as QEMU rather than the specification: `'qemu'` for all, or per behaviour (default `'spec'`). */
  quirks?: Partial<VirtioIommuQuirks> | 'qemu' | 'spec';
  /** Emit the draft PAGE_SIZE_MASK property in PROBE answers (off: Linux logs it as unknown). */
  probePageSizeMask?: boolean;
  /** What the device's state changes drive outside it (default {@link NO_BACKEND}: the device translates by itself). */
  backend?: VirtioIommuBackend;
  /** Event records kept while the event queue has no buffer (then dropped and counted). */
  maxPendingEvents?: number;
}

/** The outcome of translating one access. */
export type Translation =
  | {
      /** The access goes through. */
      ok: true;
      /** Guest-physical address the access reaches. */
      pa: bigint;
      /** `VIRTIO_IOMMU_MAP_F_*` of the mapping (READ and WRITE for bypass, WRITE for an MSI region). */
      flags: number;
    }
  | {
      /** The access faults. */
      ok: false;
      /** The record the device would post on the event queue. */
      fault: VirtioIommuFault;
    };

/** Largest device-writable part `request` accepts: a PROBE answer of the largest probe_size, and slack. */
export const MAX_IN_LEN = (1 << 16) + (1 << 12);

const EMPTY = new Uint8Array(0);

function overlaps(aStart: bigint, aEnd: bigint, bStart: bigint, bEnd: bigint): boolean {
  return aStart <= bEnd && bStart <= aEnd;
}

/** The virtio-iommu device a VMM exposes: configuration and feature negotiation, the request queue's ATTACH/DETACH/MAP/UNMAP/PROBE handling with the specification's statuses, bypass, translation of endpoint accesses and fault records for the event queue. */
export class VirtioIommuDevice {
  /** The feature bits the device offers. */
  readonly features: bigint;
  /** The behaviours in effect, resolved from the options. */
  readonly quirks: Readonly<VirtioIommuQuirks>;
  private cfg: VirtioIommuConfig;
  private readonly initialBypass: number;
  private negotiated: bigint | null = null;
  private readonly endpointInfo = new Map<number, EndpointDesc>();
  /** Endpoint -> the domain it is attached to. */
  private readonly attachedTo = new Map<number, DomainState>();
  private readonly domainMap = new Map<number, DomainState>();
  private readonly backend: VirtioIommuBackend;
  private readonly probePageSizeMask: boolean;
  private readonly maxPendingEvents: number;
  private readonly pending: Uint8Array[] = [];
  /** Fault records dropped because the event queue had no buffer and the pending list was full. */
  droppedEvents = 0;
  /** Called when a fault record is ready; returns false when no event buffer took it. */
  eventSink: ((record: Uint8Array) => boolean) | null = null;

  constructor(opts: VirtioIommuDeviceOptions) {
    this.features = opts.features ?? DEFAULT_FEATURES;
    checkOffered(this.features);
    this.cfg = resolveConfig(BASE_CONFIG, opts.config);
    this.initialBypass = this.cfg.bypass;
    const q = opts.quirks;
    this.quirks = q === 'qemu' ? QEMU_QUIRKS : q === 'spec' || q === undefined ? SPEC_QUIRKS : { ...SPEC_QUIRKS, ...q };
    this.backend = opts.backend ?? NO_BACKEND;
    for (const e of opts.endpoints) this.registerEndpoint(e);
    this.probePageSizeMask = opts.probePageSizeMask ?? false;
    this.maxPendingEvents = opts.maxPendingEvents ?? 64;
  }

  // --- configuration and features ----------------------------------------------------------------

  /** struct virtio_iommu_config as the driver reads it (40 bytes, little-endian). */
  get config(): Uint8Array {
    return encodeConfig(this.cfg);
  }

  /** The configuration as values. */
  get configValues(): Readonly<VirtioIommuConfig> {
    return { ...this.cfg, input_range: { ...this.cfg.input_range }, domain_range: { ...this.cfg.domain_range } };
  }

  /** Accepts the driver's features (FEATURES_OK), or throws VirtioIommuConfigError when the device must refuse them. */
  negotiate(driverFeatures: bigint): bigint {
    this.negotiated = negotiateFeatures(this.features, driverFeatures);
    return this.negotiated;
  }

  /** The accepted features; before negotiation, every offered feature (a driver that never negotiated). */
  get driverFeatures(): bigint {
    return this.negotiated ?? this.features;
  }

  private negotiatedHas(n: number): boolean {
    return hasFeature(this.driverFeatures, n);
  }

  /**
   * A driver write to the configuration space. Only `bypass` is writable, and only with
   * BYPASS_CONFIG negotiated; bits 1-7 of the value are dropped (the device presents 0 or 1).
   * Writes elsewhere are ignored: the driver must not make them.
   */
  writeConfig(offset: number, bytes: Uint8Array): void {
    if (offset !== CONFIG_OFFSET.bypass || bytes.length !== 1) return;
    if (!hasFeature(this.driverFeatures, VIRTIO_IOMMU_F_BYPASS_CONFIG) || this.negotiated === null) return;
    const v = bytes[0] & 1;
    if (v === this.cfg.bypass) return;
    this.cfg = { ...this.cfg, bypass: v };
    for (const ep of this.endpointInfo.keys()) if (!this.attachedTo.has(ep)) this.backend.setEndpoint(ep, this.unattachedTarget());
  }

  /** Device reset: no endpoint is attached any more; `bypass` keeps its value (it is restored only on system reset). */
  reset(): void {
    for (const ep of [...this.attachedTo.keys()]) this.detachEndpoint(ep);
    this.negotiated = null;
    this.pending.length = 0;
    for (const ep of this.endpointInfo.keys()) this.backend.setEndpoint(ep, this.unattachedTarget());
  }

  /** System reset: as `reset`, and `bypass` goes back to its initial value. */
  systemReset(): void {
    this.cfg = { ...this.cfg, bypass: this.initialBypass };
    this.reset();
  }

  // --- state ---------------------------------------------------------------------------------------

  /** Adds an endpoint the device manages (a device hot-plugged behind it). */
  addEndpoint(e: EndpointDesc): void {
    this.registerEndpoint(e);
    this.backend.setEndpoint(e.id, this.unattachedTarget());
  }

  private registerEndpoint(e: EndpointDesc): void {
    if (!Number.isInteger(e.id) || e.id < 0 || e.id > 0xffff_ffff) throw new RangeError(`endpoint id ${e.id}: expected a u32`);
    if (this.endpointInfo.has(e.id)) throw new RangeError(`endpoint id ${e.id} appears twice`);
    this.endpointInfo.set(e.id, { ...e, reserved: normalizeRegions(e.reserved ?? []) });
  }

  /** IDs of every endpoint behind the device. */
  get endpoints(): number[] {
    return [...this.endpointInfo.keys()];
  }

  /** An endpoint's description (its reserved regions sorted and merged), or undefined when the device has no such endpoint. */
  endpoint(id: number): EndpointDesc | undefined {
    return this.endpointInfo.get(id);
  }

  /** The domain an endpoint is attached to, if any. */
  domainOf(endpoint: number): DomainState | undefined {
    return this.attachedTo.get(endpoint);
  }

  /** The domain with this ID, or undefined when no endpoint is attached to one with that ID. */
  domain(id: number): DomainState | undefined {
    return this.domainMap.get(id);
  }

  /** Every domain that exists now. */
  get domains(): DomainState[] {
    return [...this.domainMap.values()];
  }

  /**
   * Whether unattached endpoints bypass: BYPASS_CONFIG offered and `bypass` = 1 (even when the driver
   * did not accept the feature), or the legacy BYPASS negotiated.
   */
  get unattachedBypass(): boolean {
    if (hasFeature(this.features, VIRTIO_IOMMU_F_BYPASS_CONFIG) && this.cfg.bypass === 1) return true;
    return this.negotiated !== null && hasFeature(this.negotiated, VIRTIO_IOMMU_F_BYPASS);
  }

  /** Where an endpoint's DMA goes now. */
  targetOf(endpoint: number): EndpointTarget {
    const d = this.attachedTo.get(endpoint);
    if (d) return d.bypass ? { kind: 'bypass' } : { kind: 'domain', domain: d };
    return this.unattachedTarget();
  }

  private unattachedTarget(): EndpointTarget {
    return this.unattachedBypass ? { kind: 'bypass' } : { kind: 'blocked' };
  }

  /** Points every endpoint at its initial target (unattached: bypass or blocked). */
  start(): void {
    for (const ep of this.endpointInfo.keys()) this.backend.setEndpoint(ep, this.targetOf(ep));
  }

  // --- requests ------------------------------------------------------------------------------------

  /**
   * Handles one request: `out` is the device-readable part (head and fields), `inLen` the size of
   * the device-writable part. Returns the bytes the device wrote (their count is the used length):
   * for PROBE the properties then the tail, otherwise the tail; an empty array when the device
   * returns the buffers unwritten.
   */
  request(out: Uint8Array, inLen: number): Uint8Array {
    // Without room for a tail the device cannot answer at all.
    if (!Number.isSafeInteger(inLen) || inLen < TAIL_SIZE || inLen > MAX_IN_LEN || out.length < HEAD_SIZE) return EMPTY;
    const parsed = decodeRequest(out);
    if (!parsed.ok) {
      if (parsed.reason === 'unknown-type') return this.quirks.unknownRequest === 'qemu' ? this.answer(inLen, VIRTIO_IOMMU_S_UNSUPP) : EMPTY;
      // The fields are cut short but the tail can be found: invalid parameters.
      if (parsed.type === VIRTIO_IOMMU_T_PROBE && !hasFeature(this.features, VIRTIO_IOMMU_F_PROBE)) return EMPTY;
      return this.answer(inLen, VIRTIO_IOMMU_S_INVAL);
    }
    const r = parsed.request;
    switch (r.type) {
      case VIRTIO_IOMMU_T_ATTACH:
        return this.answer(inLen, this.attach(r));
      case VIRTIO_IOMMU_T_DETACH:
        return this.answer(inLen, this.detach(r));
      case VIRTIO_IOMMU_T_MAP:
        return this.answer(inLen, this.negotiatedHas(VIRTIO_IOMMU_F_MAP_UNMAP) ? this.map(r) : VIRTIO_IOMMU_S_UNSUPP);
      case VIRTIO_IOMMU_T_UNMAP:
        return this.answer(inLen, this.negotiatedHas(VIRTIO_IOMMU_F_MAP_UNMAP) ? this.unmap(r) : VIRTIO_IOMMU_S_UNSUPP);
      case VIRTIO_IOMMU_T_PROBE:
        // Not offered: the device leaves the buffer alone (used length 0).
        if (!hasFeature(this.features, VIRTIO_IOMMU_F_PROBE)) return EMPTY;
        if (!this.negotiatedHas(VIRTIO_IOMMU_F_PROBE)) return this.answer(inLen, VIRTIO_IOMMU_S_UNSUPP);
        return this.probe(r, inLen);
    }
  }

  /** The tail at the end of the writable part, zeroes before it (tail.reserved zero, as the device should). */
  private answer(inLen: number, status: number): Uint8Array {
    const b = new Uint8Array(inLen);
    b[inLen - TAIL_SIZE] = status;
    return b;
  }

  private domainInRange(domain: number): boolean {
    if (!hasFeature(this.features, VIRTIO_IOMMU_F_DOMAIN_RANGE)) return true;
    return domain >= this.cfg.domain_range.start && domain <= this.cfg.domain_range.end;
  }

  private attach(r: AttachRequest): number {
    // Spec ATTACH device rules, in order: reserved (MUST INVAL), unknown flags (MUST INVAL), endpoint (MUST NOENT).
    if (r.reserved !== 0 && this.quirks.attachReserved === 'spec') return VIRTIO_IOMMU_S_INVAL;
    const known = this.negotiatedHas(VIRTIO_IOMMU_F_BYPASS_CONFIG) ? VIRTIO_IOMMU_ATTACH_F_BYPASS : 0;
    if (r.flags & ~known) return VIRTIO_IOMMU_S_INVAL;
    if (!this.endpointInfo.has(r.endpoint)) return VIRTIO_IOMMU_S_NOENT;
    if (!this.domainInRange(r.domain)) return VIRTIO_IOMMU_S_RANGE;
    const bypass = (r.flags & VIRTIO_IOMMU_ATTACH_F_BYPASS) !== 0;
    const existing = this.domainMap.get(r.domain);
    if (existing && existing.bypass !== bypass) return VIRTIO_IOMMU_S_INVAL;
    const old = this.attachedTo.get(r.endpoint);
    if (old === existing && existing) return VIRTIO_IOMMU_S_OK;
    if (existing && !existing.bypass && !this.compatible(r.endpoint, existing)) return VIRTIO_IOMMU_S_UNSUPP;
    const domain: DomainState = existing ?? { id: r.domain, bypass, endpoints: new Set(), mappings: new MappingStore(), handle: 0 };
    if (!existing) {
      const st = this.backend.createDomain(domain);
      if (st !== VIRTIO_IOMMU_S_OK) return st;
    }
    // The move is atomic: the endpoint goes from its old domain to the new one in one step (the
    // implicit detach); when the backend cannot do it the endpoint stays where it was: UNSUPP.
    const st = this.backend.setEndpoint(r.endpoint, bypass ? { kind: 'bypass' } : { kind: 'domain', domain });
    if (st !== VIRTIO_IOMMU_S_OK) {
      if (!existing) this.backend.destroyDomain(domain);
      return VIRTIO_IOMMU_S_UNSUPP;
    }
    if (!existing) this.domainMap.set(domain.id, domain);
    if (old) this.leaveDomain(r.endpoint, old);
    domain.endpoints.add(r.endpoint);
    this.attachedTo.set(r.endpoint, domain);
    return VIRTIO_IOMMU_S_OK;
  }

  /**
   * PROBE properties of endpoints in one domain must be compatible: the existing mappings must not
   * overlap the newcomer's reserved regions (it could not honour them).
   */
  private compatible(endpoint: number, d: DomainState): boolean {
    const resv = this.endpointInfo.get(endpoint)?.reserved ?? [];
    return !resv.some((r) => d.mappings.overlapping(r.start, r.end).length > 0);
  }

  private leaveDomain(endpoint: number, d: DomainState): void {
    d.endpoints.delete(endpoint);
    if (d.endpoints.size === 0) {
      // The domain ceases to exist with its mappings; its ID is free again.
      this.domainMap.delete(d.id);
      this.backend.destroyDomain(d);
    }
  }

  private detachEndpoint(endpoint: number): void {
    const d = this.attachedTo.get(endpoint);
    if (!d) return;
    this.attachedTo.delete(endpoint);
    this.backend.setEndpoint(endpoint, this.unattachedTarget());
    this.leaveDomain(endpoint, d);
  }

  private detach(r: DetachRequest): number {
    // reserved is ignored (MUST); unknown endpoint MUST be NOENT; a domain mismatch MAY be INVAL.
    if (!this.endpointInfo.has(r.endpoint)) return VIRTIO_IOMMU_S_NOENT;
    const d = this.attachedTo.get(r.endpoint);
    if (!d || d.id !== r.domain) return VIRTIO_IOMMU_S_INVAL;
    this.detachEndpoint(r.endpoint);
    return VIRTIO_IOMMU_S_OK;
  }

  private get granule(): bigint {
    const m = this.cfg.page_size_mask;
    return m & -m;
  }

  private map(r: MapRequest): number {
    const knownFlags = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE | (this.negotiatedHas(VIRTIO_IOMMU_F_MMIO) ? VIRTIO_IOMMU_MAP_F_MMIO : 0);
    if (r.flags & ~knownFlags) return VIRTIO_IOMMU_S_INVAL;
    const d = this.domainMap.get(r.domain);
    if (!d) return this.domainInRange(r.domain) ? VIRTIO_IOMMU_S_NOENT : VIRTIO_IOMMU_S_RANGE;
    if (d.bypass) return VIRTIO_IOMMU_S_INVAL;
    // virt_end must be strictly greater than virt_start.
    if (r.virtEnd <= r.virtStart) return VIRTIO_IOMMU_S_INVAL;
    const size = r.virtEnd - r.virtStart + 1n;
    if (r.physStart > U64_MAX - (size - 1n)) return VIRTIO_IOMMU_S_RANGE;
    if (this.quirks.mapChecks === 'spec') {
      const g = this.granule;
      if (r.virtStart % g !== 0n || r.physStart % g !== 0n || (r.virtEnd + 1n) % g !== 0n) return VIRTIO_IOMMU_S_RANGE;
      if (hasFeature(this.features, VIRTIO_IOMMU_F_INPUT_RANGE) && (r.virtStart < this.cfg.input_range.start || r.virtEnd > this.cfg.input_range.end)) {
        return VIRTIO_IOMMU_S_RANGE;
      }
    }
    if (d.mappings.overlapping(r.virtStart, r.virtEnd).length > 0) return VIRTIO_IOMMU_S_INVAL;
    if (this.quirks.mapChecks === 'spec') {
      for (const ep of d.endpoints) {
        for (const resv of this.endpointInfo.get(ep)?.reserved ?? []) if (overlaps(r.virtStart, r.virtEnd, resv.start, resv.end)) return VIRTIO_IOMMU_S_RANGE;
      }
    }
    const m: Mapping = { start: r.virtStart, end: r.virtEnd, phys: r.physStart, flags: r.flags };
    const st = this.backend.map(d, m);
    if (st !== VIRTIO_IOMMU_S_OK) return st;
    d.mappings.insert(m);
    return VIRTIO_IOMMU_S_OK;
  }

  private unmap(r: UnmapRequest): number {
    const d = this.domainMap.get(r.domain);
    if (!d) return this.domainInRange(r.domain) ? VIRTIO_IOMMU_S_NOENT : VIRTIO_IOMMU_S_RANGE;
    if (d.bypass) return VIRTIO_IOMMU_S_INVAL;
    if (r.virtEnd < r.virtStart) return VIRTIO_IOMMU_S_INVAL;
    const hit = d.mappings.overlapping(r.virtStart, r.virtEnd);
    const whole = (m: Mapping): boolean => m.start >= r.virtStart && m.end <= r.virtEnd;
    if (this.quirks.unmapSplit === 'spec') {
      if (!hit.every(whole)) return VIRTIO_IOMMU_S_RANGE;
      for (const m of hit) this.removeMapping(d, m);
    } else {
      // QEMU: in order, remove whole mappings until one would be split.
      for (const m of hit) {
        if (!whole(m)) return VIRTIO_IOMMU_S_RANGE;
        this.removeMapping(d, m);
      }
    }
    // Reserved bytes: the device MAY report INVAL, after performing the unmap.
    return r.reserved !== 0 ? VIRTIO_IOMMU_S_INVAL : VIRTIO_IOMMU_S_OK;
  }

  private removeMapping(d: DomainState, m: Mapping): void {
    this.backend.unmap(d, m);
    d.mappings.remove(m);
  }

  private probe(r: ProbeRequest, inLen: number): Uint8Array {
    const probeSize = this.cfg.probe_size;
    // The properties area must be probe_size bytes; a smaller one gets no property and INVAL.
    if (inLen - TAIL_SIZE < probeSize) return this.answer(inLen, VIRTIO_IOMMU_S_INVAL);
    const ep = this.endpointInfo.get(r.endpoint);
    if (!ep) return this.answer(inLen, VIRTIO_IOMMU_S_NOENT);
    const props = this.properties(ep);
    const total = props.reduce((n, p) => n + propertySize(p), 0);
    // Properties that do not fit: none written, INVAL.
    if (total > probeSize) return this.answer(inLen, VIRTIO_IOMMU_S_INVAL);
    const out = this.answer(inLen, VIRTIO_IOMMU_S_OK);
    let off = 0;
    for (const p of props) off += putProperty(out, off, p);
    return out;
  }

  private properties(ep: EndpointDesc): ProbeProperty[] {
    const out: ProbeProperty[] = [];
    for (const r of ep.reserved ?? []) out.push({ type: VIRTIO_IOMMU_PROBE_T_RESV_MEM, subtype: r.subtype, start: r.start, end: r.end });
    if (this.probePageSizeMask && ep.pageSizeMask !== undefined) {
      out.push({ type: VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK, mask: ep.pageSizeMask & this.cfg.page_size_mask });
    }
    return out;
  }

  // --- translation and faults ----------------------------------------------------------------------

  /**
   * Translates one access of an endpoint as the device does (QEMU virtio_iommu_translate): bypass is
   * identity, an MSI doorbell region is identity, a RESERVED region or a missing or insufficient
   * mapping faults. Does not report the fault.
   */
  translate(endpoint: number, addr: bigint, write: boolean): Translation {
    const access = write ? VIRTIO_IOMMU_FAULT_F_WRITE : VIRTIO_IOMMU_FAULT_F_READ;
    const fault = (reason: number, permission: boolean): Translation => ({
      ok: false,
      fault: { reason, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | (permission || this.quirks.faultAccessFlags === 'spec' ? access : 0), endpoint, address: addr },
    });
    const info = this.endpointInfo.get(endpoint);
    if (!info) return fault(VIRTIO_IOMMU_FAULT_R_UNKNOWN, false);
    const target = this.targetOf(endpoint);
    if (target.kind === 'bypass') return { ok: true, pa: addr, flags: VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE };
    if (target.kind === 'blocked') return fault(VIRTIO_IOMMU_FAULT_R_DOMAIN, false);
    for (const r of info.reserved ?? []) {
      if (addr < r.start || addr > r.end) continue;
      if (r.subtype === VIRTIO_IOMMU_RESV_MEM_T_MSI) return { ok: true, pa: addr, flags: VIRTIO_IOMMU_MAP_F_WRITE };
      return fault(VIRTIO_IOMMU_FAULT_R_MAPPING, false);
    }
    const m = target.domain.mappings.lookup(addr);
    if (!m) return fault(VIRTIO_IOMMU_FAULT_R_MAPPING, false);
    const need = write ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ;
    if (!(m.flags & need)) return fault(VIRTIO_IOMMU_FAULT_R_MAPPING, true);
    return { ok: true, pa: m.phys + (addr - m.start), flags: m.flags };
  }

  /**
   * Reports a fault on the event queue as `struct virtio_iommu_fault`. Without a free event buffer
   * the record waits (up to `maxPendingEvents`, then it is dropped and counted).
   */
  reportFault(f: VirtioIommuFault): void {
    const record = encodeFault(f);
    if (this.pending.length === 0 && this.eventSink?.(record)) return;
    if (this.pending.length >= this.maxPendingEvents) {
      this.droppedEvents++;
      return;
    }
    this.pending.push(record);
  }

  /** Retries pending records (the driver added event buffers). */
  flushEvents(): void {
    while (this.pending.length > 0 && this.eventSink?.(this.pending[0])) this.pending.shift();
  }

  /** Pending fault records, oldest first, taken out of the device (for a VMM without an event queue). */
  takeEvents(): Uint8Array[] {
    return this.pending.splice(0, this.pending.length);
  }

  /** Fault records waiting for an event-queue buffer. */
  get pendingEvents(): number {
    return this.pending.length;
  }
}

/** Sorted, merged regions: the device presents no overlapping RESV_MEM and at most one MSI region. */
export function normalizeRegions(regions: readonly ResvRegion[]): ResvRegion[] {
  const sorted = [...regions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: ResvRegion[] = [];
  let msiSeen = false;
  for (const r of sorted) {
    let subtype = r.subtype;
    if (subtype === VIRTIO_IOMMU_RESV_MEM_T_MSI) {
      // A second MSI window is still reserved, just not a doorbell the driver may rely on.
      if (msiSeen) subtype = 0;
      msiSeen = true;
    }
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1n) {
      // Overlapping or adjacent regions become one; the merged region is MSI only if both were.
      out[out.length - 1] = { start: last.start, end: r.end > last.end ? r.end : last.end, subtype: last.subtype === subtype ? subtype : 0 };
    } else out.push({ start: r.start, end: r.end, subtype });
  }
  return out;
}

