/**
 * One DMAR unit (struct intel_iommu + the iommu_ops the intel-iommu driver gives it): GET_HW_INFO,
 * paging and nested domain allocation, attach compatibility, nested cache invalidation, the fault
 * record formats and the boot line.
 *
 * Where the kernel decides what (mainline drivers/iommu/intel/iommu.c, nested.c):
 * - intel_iommu_hw_info(): IOMMU_HW_INFO_TYPE_INTEL_VTD with flags (ERRATA_772415_SPR17), CAP, ECAP.
 * - intel_iommu_domain_alloc_second_stage(): NEST_PARENT needs nested_supported(), DIRTY_TRACKING
 *   needs ssads_supported(), scalable mode without SLTS has no second stage (EOPNOTSUPP each).
 * - paging_domain_alloc(): the table depth is an AGAW from SAGAW, the IOVA width min(AGAW width, MGAW),
 *   2M/1G from SLLPS; a nest parent refuses read-only mappings (ERRATA_772415_SPR17).
 * - paging_domain_compatible(): a device whose unit cannot walk the table, lacks a page size the domain
 *   uses, or cannot force snooping for a domain that does, gets EINVAL (the auto-domain loop retries).
 */
import {
  capMgaw,
  capNumFaultRegs,
  decodeCap,
  decodeEcap,
  encodeHwInfoVtd,
  hex64,
  nestedSupported,
  pasidSupported,
  sagawLevels,
  smSupported,
  ssadsSupported,
  vtdHwInfoFlags,
  type VtdCap,
  type VtdEcap,
} from './registers.js';
import { renderVtdBootLine } from './logs.js';
import { VTD_SS_FORMAT, vtdSecondStage } from './pgtable-ss.js';
import { VTD_FS_FORMAT, vtdFirstStage } from './pgtable-fs.js';
import {
  decodeHwptVtdS1InvalidateArray,
  vtdNestedAttachCheck,
  vtdNestedDomainAlloc,
  vtdS1Levels,
  type IommuHwptVtdS1,
} from './nested.js';
import { VtdFaultCodec, type VtdAttachedStage } from './fault-codec.js';
import type {
  DecodedUnit,
  DeviceInfo,
  FaultCodec,
  InvalidateResult,
  IoPageTable,
  IotlbFlush,
  NestedDomainOps,
  NormalizedCaps,
  PageTableConfig,
  PagingAllocFlags,
  PagingDomainOps,
  PageTableMemory,
  PhysicalMemory,
  Stage2Tracer,
  UnitInit,
  UnitOps,
  VendorError,
  WalkResult,
  WalkStep,
} from '@ioasid/core/driver';
import { traceRadixNested, uapi } from '@ioasid/core/driver';
import { vtdTraceSpec } from './pgtable-trace.js';

const { IOMMU_HWPT_DATA_VTD_S1, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_HW_INFO_TYPE_INTEL_VTD } = uapi;

/** The intel-iommu default: 4 KiB, then the superpages SLLPS (second stage) or FL1GP (first stage) allow. */
const SZ_4K = 1n << 12n;
const SZ_2M = 1n << 21n;
const SZ_1G = 1n << 30n;
/** Physical addresses of the simulated machine (and of every VT-d table pointer) are at most 52 bits. */
const MAX_OAS = 52;
/** DRHD register base printed when the profile does not give one: the usual first unit of a client. */
export const DEFAULT_REG_BASE = 0xfed90000n;

/**
 * Page request queue depth: prq.c allocates PRQ_SIZE = 4 KiB << PRQ_ORDER (4) = 64 KiB of 32-byte
 * descriptors, i.e. 2048 entries (kernels before ~5.11 used one 4 KiB page: 128 entries).
 */
export const VTD_PRQ_DEPTH = (4096 << 4) / 32;

/** Options of a VT-d unit (and of `VtdVendor`, which passes them to every unit it creates). */
export interface VtdUnitOptions {
  /**
   * The guest address width a paging domain aims for. Mainline sizes every paging domain with
   * iommu->agaw, the deepest table SAGAW offers (iommu_calculate_agaw with MAX_AGAW_WIDTH), which is
   * the default here; 48 prefers a 4-level table whenever SAGAW has one (what kernels before 5-level
   * support did), 57 is the same as the default.
   */
  readonly domainAddressWidth?: 48 | 57;
}

function vendorError(errno: VendorError['errno'], reason: string): VendorError {
  return { errno, reason };
}

/** The IOVA width a level count covers: 30 + 9 per level above 2 (39, 48, 57). */
function levelsWidth(levels: number): number {
  return 12 + 9 * levels;
}

/**
 * Second-stage table geometry for a unit, as paging_domain_alloc() sizes it: the deepest SAGAW table
 * (iommu->agaw), its width limited to MGAW. `domainAddressWidth` 48 asks for the shallowest table
 * that covers 48 bits instead.
 */
export function vtdSecondStageGeometry(cap: VtdCap, domainAddressWidth: 48 | 57 = 57): { levels: number; ias: number } | null {
  const levels = sagawLevels(cap);
  if (levels.length === 0) return null;
  const mgaw = capMgaw(cap);
  // width_to_agaw(): the depth the wanted width needs, at least 3 levels.
  const want = Math.max(3, Math.ceil((Math.min(domainAddressWidth, mgaw) - 12) / 9));
  // The smallest SAGAW depth that covers it, else the deepest one there is.
  const chosen = levels.find((l) => l >= want) ?? levels[levels.length - 1];
  return { levels: chosen, ias: Math.min(levelsWidth(chosen), mgaw) };
}

function superpagesSecondStage(cap: VtdCap): bigint {
  let sizes = SZ_4K;
  if (cap.SLLPS & 0x1) sizes |= SZ_2M;
  if (cap.SLLPS & 0x2) sizes |= SZ_1G;
  return sizes;
}

function superpagesFirstStage(cap: VtdCap): bigint {
  return SZ_4K | SZ_2M | (cap.FL1GP ? SZ_1G : 0n);
}

/** Second stage exists in legacy mode always, in scalable mode only with SLTS (and some SAGAW). */
function hasSecondStage(cap: VtdCap, ecap: VtdEcap): boolean {
  return cap.SAGAW !== 0 && (!smSupported(ecap) || ecap.SLTS === 1);
}

function hasFirstStage(ecap: VtdEcap): boolean {
  return smSupported(ecap) && ecap.FLTS === 1;
}

/** The view of another unit a domain needs to decide whether that unit can use it. */
interface UnitRegs {
  readonly cap: VtdCap;
  readonly ecap: VtdEcap;
}

function unitRegsOf(unit: UnitOps): UnitRegs | null {
  if (unit instanceof VtdUnit) return { cap: unit.cap, ecap: unit.ecap };
  if (unit.vendor !== 'vtd') return null;
  const regs = unit.decoded.profileRegisters;
  if (typeof regs['cap'] !== 'string' || typeof regs['ecap'] !== 'string') return null;
  return { cap: decodeCap(BigInt(regs['cap'])), ecap: decodeEcap(BigInt(regs['ecap'])) };
}

/** A paging domain (struct dmar_domain) on the second-stage format, or on the first stage when SS is absent. */
export class VtdPagingDomain implements PagingDomainOps {
  readonly pgsizeBitmap: bigint;
  readonly apertureStart = 0n;
  readonly apertureLast: bigint;
  readonly setDirtyTracking?: (enable: boolean) => VendorError | null;
  private freed = false;

  constructor(
    readonly pt: IoPageTable,
    readonly tag: number,
    readonly stage: VtdAttachedStage,
    readonly enforceCacheCoherency: boolean,
    readonly nestParent: boolean,
    readonly dirtyTracking: boolean,
    private readonly owner: VtdUnit,
  ) {
    this.pgsizeBitmap = pt.cfg.pgsizeBitmap;
    // A first-stage IOVA must be canonical: the driver keeps the aperture below bit N-1.
    const width = stage === 'fs' ? pt.cfg.ias - 1 : pt.cfg.ias;
    this.apertureLast = (1n << BigInt(width)) - 1n;
    if (dirtyTracking) {
      this.setDirtyTracking = (enable: boolean) => {
        pt.setDirtyTracking?.(enable);
        return null;
      };
    }
  }

  checkAttach(dev: DeviceInfo, unit: UnitOps): VendorError | null {
    const regs = unitRegsOf(unit);
    if (regs === null) return vendorError('EINVAL', `unit ${unit.name} is not a VT-d unit`);
    const { cap, ecap } = regs;
    if (this.stage === 'ss') {
      if (!hasSecondStage(cap, ecap)) return vendorError('EINVAL', `${unit.name} has no second-stage translation`);
      if (!sagawLevels(cap).includes(this.pt.levels)) {
        return vendorError('EINVAL', `${unit.name} cannot walk a ${this.pt.levels}-level second-stage table (SAGAW 0x${cap.SAGAW.toString(16)})`);
      }
      if (this.pt.cfg.ias > capMgaw(cap)) {
        return vendorError('EINVAL', `the domain's ${this.pt.cfg.ias}-bit IOVA space exceeds ${unit.name}'s MGAW ${capMgaw(cap)}`);
      }
      const sizes = superpagesSecondStage(cap);
      if (this.pgsizeBitmap & ~sizes) return vendorError('EINVAL', `${unit.name} lacks a superpage size the domain uses (SLLPS)`);
      if (this.dirtyTracking && !ssadsSupported(ecap)) return vendorError('EINVAL', `${unit.name} has no second-stage dirty tracking`);
      if (this.nestParent && !nestedSupported(ecap)) return vendorError('EINVAL', `${unit.name} has no nested translation`);
    } else {
      if (!hasFirstStage(ecap)) return vendorError('EINVAL', `${unit.name} has no first-stage translation`);
      if (this.pt.levels === 5 && !cap.FL5LP) return vendorError('EINVAL', `${unit.name} cannot walk a 5-level first-stage table`);
      if (this.pgsizeBitmap & ~superpagesFirstStage(cap)) return vendorError('EINVAL', `${unit.name} lacks 1G first-stage pages (FL1GP)`);
    }
    if (this.enforceCacheCoherency && (!ecap.SC || dev.noSnoop)) {
      return vendorError('EINVAL', 'the domain forces snooping, which the device or its unit cannot honour');
    }
    return null;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.pt.free();
    this.owner.noteFree(this);
  }
}

/** A user-managed first-stage table nested on a second-stage parent (IOMMU_HWPT_DATA_VTD_S1). */
export class VtdNestedDomain implements NestedDomainOps {
  readonly guestPasidTable = false;
  readonly mode = 'translate' as const;
  /** The guest's table is a first-stage table: its faults carry the first-stage reason codes. */
  readonly format = VTD_FS_FORMAT;
  private readonly cfg: Readonly<PageTableConfig>;
  private readonly rootPfn: number;

  constructor(
    readonly parent: VtdPagingDomain,
    readonly tag: number,
    readonly s1: IommuHwptVtdS1,
    private readonly owner: VtdUnit,
  ) {
    const levels = vtdS1Levels(s1);
    this.cfg = Object.freeze({
      pgsizeBitmap: superpagesFirstStage(owner.cap),
      ias: levelsWidth(levels),
      oas: Math.min(MAX_OAS, capMgaw(owner.cap)),
      levels,
      options: Object.freeze({ fl1gp: owner.cap.FL1GP === 1, fl5lp: owner.cap.FL5LP === 1 }),
    });
    // pasid_set_flptr() keeps bits 63:12 of the pointer.
    this.rootPfn = Number(BigInt.asUintN(64, s1.pgtbl_addr) >> 12n);
  }

  walkStage1(iovaPfn: number, _pasid: number, mem: PhysicalMemory, out: WalkResult, tableToPhys: (gpaPfn: number) => number): boolean {
    return vtdFirstStage.walkForeign!(this.cfg, this.rootPfn, mem, iovaPfn, out, tableToPhys);
  }

  /** The first-stage levels from FSPTPTR, each table page through the second stage (P is bit 0). */
  traceStage1(iovaPfn: number, _pasid: number, mem: PhysicalMemory, stage2: Stage2Tracer): WalkStep[] {
    return traceRadixNested(mem, this.rootPfn, vtdTraceSpec(this.cfg.levels! - 1, 1), iovaPfn, stage2);
  }

  /** intel_pasid_setup_nested(): the stage-1 request is checked against the unit at attach time. */
  checkAttach(_dev: DeviceInfo, _hasVdevice: boolean): VendorError | null {
    const r = vtdNestedAttachCheck(this.s1, { cap: this.owner.capValue, ecap: this.owner.ecapValue });
    if (!r.ok) return vendorError(r.error.errno, r.error.reason);
    return null;
  }

  /** intel_nested_cache_invalidate_user(). */
  invalidate(dataType: number, entryLen: number, entries: Uint8Array, count: number, flush: IotlbFlush): InvalidateResult {
    if (dataType !== IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) {
      return { handled: 0, error: vendorError('EINVAL', `data_type ${dataType} is not IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`) };
    }
    const r = decodeHwptVtdS1InvalidateArray(entries, entryLen, count, dataType);
    // The kernel flushes entry by entry, so what precedes a bad entry has taken effect.
    for (const e of r.entries) {
      const scope = e.scope;
      if (scope.kind === 'all') flush.flushTag(this.tag);
      else if (scope.kind === 'range') {
        const first = scope.start >> 12n;
        const last = scope.last >> 12n;
        const cap = (1n << 52n) - 1n;
        const firstPfn = Number(first > cap ? cap : first);
        const lastPfn = Number(last > cap ? cap : last);
        flush.flushStage1(this.tag, -1, firstPfn, lastPfn - firstPfn + 1);
      }
    }
    return { handled: r.processed, error: r.error ? vendorError(r.error.errno, `entry ${r.error.index}: ${r.error.reason}`) : null };
  }

  free(): void {
    this.owner.noteFree(this);
  }
}

export class VtdUnit implements UnitOps {
  readonly vendor = 'vtd';
  readonly nestedDataTypes: readonly number[] = [IOMMU_HWPT_DATA_VTD_S1];
  readonly name: string;
  readonly decoded: DecodedUnit;
  readonly caps: NormalizedCaps;
  readonly capValue: bigint;
  readonly ecapValue: bigint;
  readonly verValue: bigint;
  readonly regBase: bigint;
  readonly cap: VtdCap;
  readonly ecap: VtdEcap;
  readonly faults: FaultCodec;
  readonly faultQueueDepth: number;
  readonly pageRequestQueueDepth?: number;
  private readonly init: UnitInit;
  private readonly options: VtdUnitOptions;
  private readonly domains = new Set<VtdPagingDomain | VtdNestedDomain>();

  constructor(init: UnitInit, regs: { ver: bigint; cap: bigint; ecap: bigint; regBase?: bigint }, options: VtdUnitOptions = {}) {
    this.init = init;
    this.options = options;
    this.name = init.id;
    this.decoded = init.decoded;
    this.caps = init.decoded.caps;
    this.verValue = regs.ver;
    this.capValue = regs.cap;
    this.ecapValue = regs.ecap;
    this.regBase = regs.regBase ?? DEFAULT_REG_BASE;
    this.cap = decodeCap(regs.cap);
    this.ecap = decodeEcap(regs.ecap);
    this.faults = new VtdFaultCodec({ scalableMode: smSupported(this.ecap) });
    // cap_num_fault_regs(): the fault recording registers are the hardware's whole fault queue.
    this.faultQueueDepth = capNumFaultRegs(this.cap);
    if (this.caps.pri) this.pageRequestQueueDepth = VTD_PRQ_DEPTH;
  }

  /** Live domains of this unit (for tests and leak checks). */
  get domainCount(): number {
    return this.domains.size;
  }

  /** @internal */
  noteFree(d: VtdPagingDomain | VtdNestedDomain): void {
    this.domains.delete(d);
  }

  /** intel_iommu_hw_info(). */
  hwInfo(_dev: DeviceInfo, requestedType: number): { type: number; data: Uint8Array } | VendorError {
    if (requestedType !== 0 && requestedType !== IOMMU_HW_INFO_TYPE_INTEL_VTD) {
      return vendorError('EOPNOTSUPP', `hw_info type ${requestedType} is not IOMMU_HW_INFO_TYPE_INTEL_VTD`);
    }
    return {
      type: IOMMU_HW_INFO_TYPE_INTEL_VTD,
      data: encodeHwInfoVtd({ flags: vtdHwInfoFlags(this.capValue, this.ecapValue), cap: this.capValue, ecap: this.ecapValue }),
    };
  }

  /** intel_iommu_domain_alloc_paging_flags() on the second stage (first stage when the unit has no SS). */
  domainAllocPaging(dev: DeviceInfo, flags: PagingAllocFlags, memory: PageTableMemory): PagingDomainOps | VendorError {
    const { cap, ecap } = this;
    if (flags.nestParent && !nestedSupported(ecap)) {
      return vendorError('EOPNOTSUPP', `${this.name} has no nested translation (needs scalable mode and ECAP.NEST)`);
    }
    if (flags.dirtyTracking && !ssadsSupported(ecap)) {
      return vendorError('EOPNOTSUPP', `${this.name} has no second-stage dirty tracking (needs scalable mode, ECAP.SLADS and ECAP.SMPWCS)`);
    }
    if (flags.pasid && !pasidSupported(ecap)) {
      return vendorError('EOPNOTSUPP', `${this.name} has no PASID support (needs scalable mode and ECAP.PASID)`);
    }
    const coherent = ecap.SC === 1 && !dev.noSnoop;
    if (!hasSecondStage(cap, ecap)) {
      // Only the first stage is left: usable for a plain domain, never for nesting or SS dirty tracking.
      if (flags.nestParent || flags.dirtyTracking || !hasFirstStage(ecap)) {
        return vendorError('EOPNOTSUPP', `${this.name} has no second-stage translation (SAGAW 0 or scalable mode without SLTS)`);
      }
      return this.allocFirstStageDomain(memory);
    }
    const geo = vtdSecondStageGeometry(cap, this.options.domainAddressWidth ?? 57);
    if (geo === null) return vendorError('EOPNOTSUPP', `${this.name} reports no supported address width (SAGAW 0)`);
    const cfg: PageTableConfig = {
      pgsizeBitmap: superpagesSecondStage(cap),
      ias: geo.ias,
      oas: Math.min(MAX_OAS, this.caps.hostStage?.outputBits ?? capMgaw(cap)),
      levels: geo.levels,
      dirtyTracking: flags.dirtyTracking,
      coherent,
      // ERRATA_772415_SPR17: the driver refuses read-only mappings in every nest parent.
      options: { sagaw: cap.SAGAW, forceWriteable: flags.nestParent },
    };
    const pt = vtdSecondStage.alloc(cfg, memory);
    if (typeof pt === 'number') return this.allocError(pt, VTD_SS_FORMAT);
    const d = new VtdPagingDomain(pt, this.init.allocTag(), 'ss', coherent, flags.nestParent, flags.dirtyTracking, this);
    this.domains.add(d);
    return d;
  }

  private allocFirstStageDomain(memory: PageTableMemory): PagingDomainOps | VendorError {
    const levels = this.cap.FL5LP ? 5 : 4;
    const cfg: PageTableConfig = {
      pgsizeBitmap: superpagesFirstStage(this.cap),
      ias: levelsWidth(levels),
      oas: Math.min(MAX_OAS, capMgaw(this.cap)),
      levels,
      options: { fl1gp: this.cap.FL1GP === 1, fl5lp: this.cap.FL5LP === 1 },
    };
    const pt = vtdFirstStage.alloc(cfg, memory);
    if (typeof pt === 'number') return this.allocError(pt, VTD_FS_FORMAT);
    const d = new VtdPagingDomain(pt, this.init.allocTag(), 'fs', false, false, false, this);
    this.domains.add(d);
    return d;
  }

  private allocError(rc: number, format: string): VendorError {
    return rc === -12
      ? vendorError('ENOMEM', `no memory for the ${format} root table`)
      : vendorError('EINVAL', `the ${format} format refused the configuration of ${this.name} (${rc})`);
  }

  /** intel_iommu_domain_alloc_nested(). */
  domainAllocNested(_dev: DeviceInfo, parent: PagingDomainOps, dataType: number, data: Uint8Array): NestedDomainOps | VendorError {
    const isParent = parent instanceof VtdPagingDomain && parent.stage === 'ss' && parent.nestParent;
    const r = vtdNestedDomainAlloc({
      cap: this.capValue,
      ecap: this.ecapValue,
      flags: 0,
      dataType,
      data,
      parentIsNestParent: isParent,
    });
    if (!r.ok) return vendorError(r.error.errno, r.error.reason);
    if (dataType !== IOMMU_HWPT_DATA_VTD_S1) return vendorError('EOPNOTSUPP', `data_type ${dataType}`);
    const d = new VtdNestedDomain(parent as VtdPagingDomain, this.init.allocTag(), r.value, this);
    this.domains.add(d);
    return d;
  }

  /** `DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap ... ecap ...` (alloc_iommu()). */
  bootLog(): string[] {
    const m = /^dmar(\d+)$/.exec(this.name);
    const seq = m ? Number(m[1]) : this.init.index;
    return [renderVtdBootLine({ seq, regBase: this.regBase, ver: this.verValue, cap: this.capValue, ecap: this.ecapValue })];
  }

  toString(): string {
    return `${this.name} (VT-d ${this.caps.version}, cap ${hex64(this.capValue)}, ecap ${hex64(this.ecapValue)})`;
  }
}
