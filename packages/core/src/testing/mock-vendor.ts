/**
 * The mock vendor (the kernel selftest's mock driver idea): a complete IommuVendor on its own simple
 * format and record layouts, with capabilities configured through its "registers", so that core can
 * be tested without any real vendor. Register it like any plugin: `createHost({ plugins: [mockPlugin()] })`.
 *
 * Registers (all optional): pasidBits (0..20), pri, dirty, nesting, coherent, ats, cachingMode,
 * viommu (offer the mock vIOMMU type), stall (the stall model: stall-capable devices stall on faults
 * and are resumed, like SMMUv3 with STALL_MODEL = 0), faultQueueDepth, pageRequestQueueDepth.
 */
import { pageSizesFromLog2, type NormalizedCaps } from '../driver/caps.js';
import type { FaultCodec, VendorError } from '../driver/fault.js';
import type { PageTableMemory } from '../driver/pgtable.js';
import type { Result } from '../driver/result.js';
import type { DeviceInfo, IommuVendor, NestedDomainOps, PagingDomainOps, RawRegisters, UnitInit, UnitOps, ViommuOps, DecodedUnit, InvalidateResult, IotlbFlush } from '../driver/vendor.js';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '../driver/plugin.js';
import { mockFormat, mockTraceForeign } from './mock-format.js';
import type { Stage2Tracer, WalkStep } from '../driver/walk-trace.js';
import { mockDecoder } from './mock-decoder.js';
import { IOMMU_VEVENTQ_TYPE_MOCK, mockCodec } from './mock-codec.js';

export { IOMMU_VEVENTQ_TYPE_MOCK, mockCodec, MOCK_RECORD_SIZE, MOCK_RESUME_SIZE, MOCK_RESUME_OP, MOCK_RESUME_RETRY, MOCK_RESUME_ABORT } from './mock-codec.js';
import type { PhysicalMemory } from '../memory/physical.js';
import type { WalkResult, IoPageTable } from '../driver/pgtable.js';

/** Selftest-style data types (include/uapi and iommufd_test.h use 0xdead / 0xdeadbeef). */
export const IOMMU_HWPT_DATA_MOCK = 0xdead;
/** The mock's IOMMU_HWPT_INVALIDATE data_type: entries are struct mock_invalidate (MOCK_INVALIDATE_SIZE). */
export const IOMMU_HWPT_INVALIDATE_DATA_MOCK = 0xdeadbeef;
/** The mock's vIOMMU type for IOMMU_VIOMMU_ALLOC (offered when the `viommu` register is true). */
export const IOMMU_VIOMMU_TYPE_MOCK = 0xdeadbeef;
/** The mock's IOMMU_GET_HW_INFO type; its payload is MOCK_HW_INFO_SIZE bytes. */
export const IOMMU_HW_INFO_TYPE_MOCK = 0xfeedbeef;
/** The mock's hw_info payload: u32 test_reg (0xdeadbeef), u32 pasid_bits. */
export const MOCK_HW_INFO_SIZE = 8;
/** struct mock_hwpt_data: u64 root (guest page number of the stage-1 root), u32 mode (0 translate, 1 bypass, 2 abort), u32 __reserved. */
export const MOCK_HWPT_DATA_SIZE = 16;
/** struct mock_invalidate: u64 addr, u64 npages (addr 0 + npages U64_MAX = all). */
export const MOCK_INVALIDATE_SIZE = 16;

/** The mock unit's "registers": each capability it offers, set per unit in a host profile. */
export interface MockCaps {
  /** PASID width in bits, 0 to 20. */
  pasidBits: number;
  /** Page requests (PRI) are supported. */
  pri: boolean;
  /** Hardware dirty tracking (IOMMU_HWPT_ALLOC_DIRTY_TRACKING accepted). */
  dirty: boolean;
  /** Nesting: NEST_PARENT and nested HWPTs (IOMMU_HWPT_DATA_MOCK) are accepted. */
  nesting: boolean;
  /** The unit can enforce cache coherency (a no-snoop device may then bind). */
  coherent: boolean;
  /** Devices may use ATS. */
  ats: boolean;
  /** Caching mode: non-present entries may be cached (NormalizedCaps.cachingMode). */
  cachingMode: boolean;
  /** Offer IOMMU_VIOMMU_TYPE_MOCK. */
  viommu: boolean;
  /** The stall model: stall-capable devices stall on faults and are resumed. */
  stall: boolean;
  /** Fault queue depth, in records. */
  faultQueueDepth: number;
  /** Page request queue depth, in records. */
  pageRequestQueueDepth: number;
}

/** The capabilities of a mock unit whose profile gives no registers: everything on except caching mode and stall. */
export const DEFAULT_MOCK_CAPS: MockCaps = {

  pasidBits: 20,
  pri: true,
  dirty: true,
  nesting: true,
  coherent: true,
  ats: true,
  cachingMode: false,
  viommu: true,
  stall: false,
  faultQueueDepth: 256,
  pageRequestQueueDepth: 256,
};

function parseCaps(raw: RawRegisters): Result<MockCaps> {
  const caps: MockCaps = { ...DEFAULT_MOCK_CAPS };
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in caps)) return { ok: false, error: `unknown mock register '${k}' (known: ${Object.keys(caps).join(', ')})` };
    const want = typeof (DEFAULT_MOCK_CAPS as unknown as Record<string, unknown>)[k];
    if (typeof v !== want) return { ok: false, error: `${k}: expected a ${want}, got ${JSON.stringify(v)}` };
    (caps as unknown as Record<string, unknown>)[k] = v;
  }
  if (!Number.isInteger(caps.pasidBits) || caps.pasidBits < 0 || caps.pasidBits > 20) return { ok: false, error: 'pasidBits: expected an integer from 0 to 20' };
  return { ok: true, value: caps };
}

function normalized(c: MockCaps): NormalizedCaps {
  const stage = { inputBits: [39], outputBits: 52, pageSizes: pageSizesFromLog2(12, 21), accessDirty: c.dirty };
  return {
    vendor: 'mock',
    version: '1.0',
    hostStage: stage,
    userStage: c.nesting ? stage : null,
    pasidBits: c.pasidBits,
    pri: c.pri,
    stall: c.stall,
    ats: c.ats,
    nesting: c.nesting,
    dirtyTracking: c.dirty,
    coherent: c.coherent,
    cachingMode: c.cachingMode,
    rangeInvalidation: true,
    interruptRemapping: true,
    features: [],
  };
}

export class MockVendor implements IommuVendor {
  readonly id = 'mock';
  readonly name = 'Mock IOMMU';

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    const r = parseCaps(raw ?? {});
    if (!r.ok) return r;
    const caps = normalized(r.value);
    return {
      ok: true,
      value: {
        vendor: 'mock',
        caps,
        hwId: `Mock IOMMU, PASID ${r.value.pasidBits}-bit${r.value.pri ? ', PRI' : ''}${r.value.nesting ? ', nesting' : ''}${r.value.dirty ? ', dirty' : ''}${r.value.stall ? ', stall' : ''}`,
        registers: [],
        profileRegisters: { ...r.value },
      },
    };
  }

  createUnit(init: UnitInit): UnitOps {
    const r = parseCaps(init.raw);
    if (!r.ok) throw new Error(r.error);
    return new MockUnit(init, r.value);
  }
}

class MockPagingDomain implements PagingDomainOps {
  readonly apertureStart = 0n;
  readonly apertureLast = (1n << 39n) - 1n;
  constructor(
    readonly pt: IoPageTable,
    readonly tag: number,
    readonly enforceCacheCoherency: boolean,
    readonly nestParent: boolean,
    private readonly dirty: boolean,
  ) {}
  get pgsizeBitmap(): bigint {
    return this.pt.cfg.pgsizeBitmap;
  }
  checkAttach(dev: DeviceInfo, unit: UnitOps): VendorError | null {
    if (unit.vendor !== 'mock') return { errno: 'EINVAL', reason: 'not a mock IOMMU' };
    return null;
  }
  setDirtyTracking = (_enable: boolean): VendorError | null => (this.dirty ? null : { errno: 'EOPNOTSUPP', reason: 'no dirty tracking' });
  free(): void {
    this.pt.free();
  }
}

class MockNestedDomain implements NestedDomainOps {
  readonly guestPasidTable = false;
  /** The guest stage 1 is walked with the mock format. */
  readonly format = mockFormat.id;
  constructor(
    readonly parent: PagingDomainOps,
    readonly tag: number,
    private readonly root: number,
    readonly mode: 'translate' | 'bypass' | 'abort',
    private readonly needsVdevice: boolean,
  ) {}
  walkStage1(iovaPfn: number, _pasid: number, mem: PhysicalMemory, out: WalkResult, tableToPhys: (gpaPfn: number) => number): boolean {
    return mockFormat.walkForeign!(this.parent.pt.cfg, this.root, mem, iovaPfn, out, tableToPhys);
  }
  traceStage1(iovaPfn: number, _pasid: number, mem: PhysicalMemory, stage2: Stage2Tracer): WalkStep[] {
    return mockTraceForeign(mem, this.root, iovaPfn, stage2);
  }
  checkAttach(_dev: DeviceInfo, hasVdevice: boolean): VendorError | null {
    return this.needsVdevice && !hasVdevice && this.mode === 'translate' ? { errno: 'ENOENT', reason: 'a vDEVICE is needed before attach' } : null;
  }
  invalidate(dataType: number, entryLen: number, entries: Uint8Array, count: number, flush: IotlbFlush): InvalidateResult {
    return mockInvalidate(dataType, entryLen, entries, count, (a, n) => (n === -1 ? flush.flushTag(this.tag) : flush.flushStage1(this.tag, -1, a, n)));
  }
  free(): void {}
}

function mockInvalidate(dataType: number, entryLen: number, entries: Uint8Array, count: number, apply: (pfn: number, npages: number) => void): InvalidateResult {
  if (dataType !== IOMMU_HWPT_INVALIDATE_DATA_MOCK) return { handled: 0, error: { errno: 'EINVAL', reason: 'unknown invalidation data type' } };
  if (count === 0) return { handled: 0, error: null };
  if (entryLen < MOCK_INVALIDATE_SIZE) return { handled: 0, error: { errno: 'EINVAL', reason: 'entry_len too small' } };
  const dv = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
  for (let i = 0; i < count; i++) {
    const off = i * entryLen;
    for (let b = off + MOCK_INVALIDATE_SIZE; b < off + entryLen; b++) if (entries[b] !== 0) return { handled: i, error: { errno: 'E2BIG', reason: 'non-zero bytes past the entry' } };
    const addr = dv.getBigUint64(off, true);
    const npages = dv.getBigUint64(off + 8, true);
    if (addr === 0n && npages === 0xffff_ffff_ffff_ffffn) apply(0, -1);
    else if (addr % 4096n !== 0n || npages === 0n || npages > 1n << 40n) return { handled: i, error: { errno: 'EINVAL', reason: 'bad range' } };
    else apply(Number(addr / 4096n), Number(npages));
  }
  return { handled: count, error: null };
}

class MockUnit implements UnitOps {
  readonly vendor = 'mock';
  readonly caps: NormalizedCaps;
  readonly name: string;
  readonly faults: FaultCodec = mockCodec;
  readonly viommuTypes: readonly number[];
  readonly nestedDataTypes: readonly number[] = [IOMMU_HWPT_DATA_MOCK];
  readonly faultQueueDepth: number;
  readonly pageRequestQueueDepth: number;

  constructor(
    private readonly init: UnitInit,
    private readonly mc: MockCaps,
  ) {
    this.caps = init.decoded.caps;
    this.name = init.id;
    this.viommuTypes = mc.viommu ? [IOMMU_VIOMMU_TYPE_MOCK] : [];
    this.faultQueueDepth = mc.faultQueueDepth;
    this.pageRequestQueueDepth = mc.pageRequestQueueDepth;
  }

  get decoded(): DecodedUnit {
    return this.init.decoded;
  }

  hwInfo(_dev: DeviceInfo, requestedType: number): { type: number; data: Uint8Array } | VendorError {
    if (requestedType !== 0 && requestedType !== IOMMU_HW_INFO_TYPE_MOCK) return { errno: 'EOPNOTSUPP', reason: 'unsupported hw_info type' };
    const data = new Uint8Array(MOCK_HW_INFO_SIZE);
    const dv = new DataView(data.buffer);
    dv.setUint32(0, 0xdeadbeef, true);
    dv.setUint32(4, this.mc.pasidBits, true);
    return { type: IOMMU_HW_INFO_TYPE_MOCK, data };
  }

  domainAllocPaging(_dev: DeviceInfo, flags: { nestParent: boolean; dirtyTracking: boolean; pasid: boolean }, memory: PageTableMemory): PagingDomainOps | VendorError {
    if (flags.nestParent && !this.mc.nesting) return { errno: 'EOPNOTSUPP', reason: 'no nesting' };
    if (flags.dirtyTracking && !this.mc.dirty) return { errno: 'EOPNOTSUPP', reason: 'no dirty tracking' };
    if (flags.pasid && this.mc.pasidBits === 0) return { errno: 'EOPNOTSUPP', reason: 'no PASID support' };
    const pt = mockFormat.alloc({ pgsizeBitmap: pageSizesFromLog2(12, 21), ias: 39, oas: 52, dirtyTracking: flags.dirtyTracking }, memory);
    if (typeof pt === 'number') return { errno: pt === -12 ? 'ENOMEM' : 'EINVAL', reason: 'page table allocation failed' };
    return new MockPagingDomain(pt, this.init.allocTag(), this.mc.coherent, flags.nestParent, flags.dirtyTracking);
  }

  domainAllocNested(_dev: DeviceInfo, parent: PagingDomainOps, dataType: number, data: Uint8Array): NestedDomainOps | VendorError {
    return this.nested(parent, dataType, data, false);
  }

  private nested(parent: PagingDomainOps, dataType: number, data: Uint8Array, needsVdevice: boolean): NestedDomainOps | VendorError {
    if (dataType !== IOMMU_HWPT_DATA_MOCK) return { errno: 'EOPNOTSUPP', reason: 'unknown data type' };
    if (data.length < MOCK_HWPT_DATA_SIZE) return { errno: 'EINVAL', reason: 'data too short' };
    if (!(parent instanceof MockPagingDomain) || !parent.nestParent) return { errno: 'EINVAL', reason: 'parent is not a mock nesting parent' };
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const root = Number(dv.getBigUint64(0, true));
    const modeNum = dv.getUint32(8, true);
    if (dv.getUint32(12, true) !== 0) return { errno: 'EINVAL', reason: '__reserved must be 0' };
    if (modeNum > 2) return { errno: 'EINVAL', reason: 'mode must be 0, 1 or 2' };
    const mode = (['translate', 'bypass', 'abort'] as const)[modeNum];
    return new MockNestedDomain(parent, this.init.allocTag(), root, mode, needsVdevice);
  }

  viommuAlloc(type: number, parent: PagingDomainOps, _data: Uint8Array): ViommuOps | VendorError {
    if (type !== IOMMU_VIOMMU_TYPE_MOCK) return { errno: 'EOPNOTSUPP', reason: 'unknown vIOMMU type' };
    if (!(parent instanceof MockPagingDomain) || !parent.nestParent) return { errno: 'EINVAL', reason: 'parent is not a nesting parent' };
    // Guest stage-1 entries are tagged by the nested domains created on this vIOMMU.
    const nestedTags = new Set<number>();
    return {
      type,
      eventTypes: [IOMMU_VEVENTQ_TYPE_MOCK],
      nestedDataTypes: [IOMMU_HWPT_DATA_MOCK],
      allocNested: (_dev, dataType, data) => {
        const n = this.nested(parent, dataType, data, true);
        if ('tag' in n) nestedTags.add(n.tag);
        return n;
      },
      invalidate: (dataType, entryLen, entries, count, flush) =>
        mockInvalidate(dataType, entryLen, entries, count, (a, n) => {
          for (const t of nestedTags) if (n === -1) flush.flushTag(t);
          else flush.flushStage1(t, -1, a, n);
        }),
      destroy: () => nestedTags.clear(),
    };
  }

  bootLog(): string[] {
    return [`mock-iommu ${this.name}: ${this.init.decoded.hwId}`];
  }
}

/** The mock plugin: id 'mock'. */
export function mockPlugin(): IommuPlugin {
  return {
    id: 'mock',
    description: 'Mock IOMMU for testing core and plugins (the selftest mock driver idea)',
    decoder: mockDecoder,
    register(c: PluginRegistrar) {
      c.register(IOMMU_VENDOR, { useValue: new MockVendor() });
      c.register(PAGE_TABLE_FORMAT, { useValue: mockFormat });
    },
  };
}

