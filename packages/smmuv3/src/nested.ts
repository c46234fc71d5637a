/**
 * The vSMMU (IOMMU_VIOMMU_TYPE_ARM_SMMUV3) and its nested domains built from guest STEs, with guest CMDQ
 * invalidation: the arm-smmu-v3-iommufd.c part of the driver.
 *
 * Approximations, each a choice made where the model has less state than the hardware:
 * - No configuration cache: a nested walk reads the guest CD on every IOTLB miss, so CFGI_CD / CFGI_CD_ALL are
 *   validated (vSID lookup) but have nothing to invalidate.
 * - Guest stage-1 IOTLB entries are tagged by core with the nested domain's tag, not by (VMID, ASID). Every walk
 *   records which (nested tag, PASID) used which guest ASID, and TLBI_NH_VA / TLBI_NH_ASID flush exactly those;
 *   TLBI_NH_VAA, TLBI_NH_ALL and TLBI_NSNH_ALL flush every nested domain of the vIOMMU. The Leaf and TTL hints
 *   are ignored (the model invalidates entries of any level in the range, which the architecture allows).
 * - Each accepted command is applied at once; the kernel issues them in batches and reports as handled the
 *   commands converted before a failing one even when their batch was never issued.
 * - ATC_INV is accepted after the vSID check; device TLBs are not modelled separately from the IOTLB.
 */
import type {
  DeviceInfo,
  InvalidateResult,
  IotlbFlush,
  NestedDomainOps,
  PageTableConfig,
  PageTableFormat,
  PagingDomainOps,
  PhysicalMemory,
  VendorError,
  Stage2Tracer,
  ViommuOps,
  WalkResult,
  WalkStep,
} from '@ioasid/core/driver';
import { traceNestedEntry, traceRadixNested } from '@ioasid/core/driver';
import { PERM_EXEC, PERM_READ, PERM_WRITE, WALK_CONTEXT_INVALID, WALK_NOT_PRESENT, WALK_OK, WALK_TABLE_FAULT, iommuCopyStructFromFullUserArray, iommuCopyStructFromUser, pageSizesFromLog2, uapi } from '@ioasid/core/driver';
import type { SmmuRegisters } from './registers.js';
import type { LinuxSmmuProbe } from './features.js';
import { OAS_BITS } from './registers.js';
import { tlbiCoverage, validateViommuInvalidation, decodeCommandWords } from './commands.js';
import { STE_S1DSS, STE_S1FMT, TG0_LOG2, decodeCdWords, validateNestedSte } from './ste.js';
import type { Cd, NestedSte } from './ste.js';
import { EVT_ID } from './records.js';
import { ARM_LPAE_S1_FORMAT, lpaeGeometry } from './pgtable-lpae.js';
import { lpaeTraceSpec } from './pgtable-lpae-trace.js';

const {
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  iommu_hwpt_arm_smmuv3,
  iommu_viommu_arm_smmuv3_invalidate,
} = uapi;

/**
 * The stage-2 paging domain a nested domain or a vSMMU sits on (unit.ts SmmuPagingDomain): its table
 * and its VMID. Declared here, as what this module needs, so that unit.ts (which creates vSMMUs) is the
 * only one of the two to import the other.
 */
export type SmmuNestParent = PagingDomainOps & { readonly tag: number };

/** What a vSMMU needs of the physical SMMU that creates it (unit.ts SmmuUnit). */
export interface SmmuViommuOwner {
  readonly regs: SmmuRegisters;
  readonly probe: LinuxSmmuProbe;
  allocTag(): number;
}

/** L1 CD descriptor bits 51:12: the CD leaf table's address. */
const L1CD_ADDR = 0x000ffffffffff000n;

/** Every 4 KiB page of a 64-bit space: the "whole address space" of a flush. */
const ALL_PAGES = 2 ** 52;

function err(errno: VendorError['errno'], reason: string): VendorError {
  return { errno, reason };
}

/** Page sizes of one granule, as arm_lpae_restrict_pgsizes() leaves them. */
export function granuleSizes(granuleLog2: number, oas: number): bigint {
  if (granuleLog2 === 12) return pageSizesFromLog2(12, 21, 30);
  if (granuleLog2 === 14) return pageSizesFromLog2(14, 25);
  return oas > 48 ? pageSizesFromLog2(16, 29, 42) : pageSizesFromLog2(16, 29);
}

// ---------------------------------------------------------------------------------------------
// vSMMU and nested domains
// ---------------------------------------------------------------------------------------------

/** A guest context descriptor that could not be used, and the event the SMMU would record. */
export type ContextFault = 'C_BAD_STE' | 'C_BAD_SUBSTREAMID' | 'C_BAD_CD' | 'F_STREAM_DISABLED' | 'F_CD_FETCH';

/** Stage 1 bypassed: the IOVA is the IPA, and stage 2 alone decides. */
function bypassStage1(iovaPfn: number, out: WalkResult): boolean {
  out.pfn = iovaPfn;
  out.perm = PERM_READ | PERM_WRITE | PERM_EXEC;
  out.pageShift = 12;
  out.level = 0;
  out.dirty = false;
  out.fault = WALK_OK;
  return true;
}

export class SmmuNestedDomain implements NestedDomainOps {
  readonly guestPasidTable = true;
  readonly mode: 'translate' | 'bypass' | 'abort';
  /** The guest stage 1 is a VMSAv8-64 stage-1 table: FailedAccess.format of a stage-1 failure. */
  readonly format = ARM_LPAE_S1_FORMAT;
  /**
   * Why the last walk stopped before the stage-1 table walk, when it did. The walk itself reports it as
   * WALK_CONTEXT_INVALID with the event ID in `contextFault` (F_CD_FETCH: WALK_TABLE_FAULT).
   */
  lastContextFault: ContextFault | null = null;

  constructor(
    readonly viommu: SmmuViommu,
    readonly parent: SmmuNestParent,
    readonly vste: NestedSte,
    readonly tag: number,
  ) {
    this.mode = !vste.valid || vste.cfg === 'abort' ? 'abort' : vste.cfg === 'bypass' ? 'bypass' : 'translate';
  }

  checkAttach(_dev: DeviceInfo, hasVdevice: boolean): VendorError | null {
    // arm_smmu_attach_prepare_vmaster(): a translating vSTE needs a vSID so that its events can be reported.
    if (this.mode === 'translate' && !hasVdevice) {
      return err('ENOENT', 'a nested domain with Config = S1 translate needs a vDEVICE (virtual SID) before attach');
    }
    return null;
  }

  /** A configuration error: no table is walked, and the SMMU records the event `why` (C_BAD_CD...). */
  private contextFault(out: WalkResult, why: Exclude<ContextFault, 'F_CD_FETCH'>): boolean {
    this.lastContextFault = why;
    out.fault = WALK_CONTEXT_INVALID;
    out.contextFault = EVT_ID[why];
    out.level = 0;
    return false;
  }

  /** Reads 64-byte descriptor `index` of the table at guest-physical `base`, through stage 2. */
  private readGuest(mem: PhysicalMemory, gpa: bigint, out: WalkResult, tableToPhys: (gpaPfn: number) => number, words: number): bigint[] | null {
    const gpaPfn = Number(gpa >> 12n);
    const pfn = tableToPhys(gpaPfn);
    if (pfn < 0) {
      this.lastContextFault = 'F_CD_FETCH';
      out.fault = WALK_TABLE_FAULT;
      out.tablePfn = gpaPfn;
      out.level = 0;
      return null;
    }
    const first = Number(gpa & 0xfffn) / 8;
    const dw: bigint[] = [];
    for (let i = 0; i < words; i++) dw.push(mem.readU64(pfn, first + i));
    return dw;
  }

  /** The CD of substream `ssid` (a CD table index), or null with `out` filled. */
  private fetchCd(ssid: number, mem: PhysicalMemory, out: WalkResult, tableToPhys: (gpaPfn: number) => number): Cd | null {
    const v = this.vste;
    let cdAddr: bigint;
    if (v.S1CDMax === 0 || v.S1Fmt === STE_S1FMT.LINEAR) {
      cdAddr = v.S1ContextPtr + BigInt(ssid) * 64n;
    } else if (v.S1Fmt === STE_S1FMT['4K_L2'] || v.S1Fmt === STE_S1FMT['64K_L2']) {
      // Two levels: 8-byte L1 descriptors, each pointing to 64 (4 KB) or 1024 (64 KB) CDs.
      const split = v.S1Fmt === STE_S1FMT['4K_L2'] ? 6 : 10;
      const l1 = this.readGuest(mem, v.S1ContextPtr + BigInt(ssid >>> split) * 8n, out, tableToPhys, 1);
      if (!l1) return null;
      if ((l1[0] & 1n) === 0n) {
        this.contextFault(out, 'C_BAD_SUBSTREAMID');
        return null;
      }
      cdAddr = (l1[0] & L1CD_ADDR) + BigInt(ssid & ((1 << split) - 1)) * 64n;
    } else {
      this.contextFault(out, 'C_BAD_STE');
      return null;
    }
    const dw = this.readGuest(mem, cdAddr, out, tableToPhys, 8);
    return dw ? decodeCdWords(dw) : null;
  }

  /** The CD a request selects (its SubstreamID or 0), 'bypass' (STE.S1DSS), or the configuration error it raises. */
  private substream(pasid: number): number | 'bypass' | Exclude<ContextFault, 'F_CD_FETCH'> {
    const v = this.vste;
    const cdMax = v.S1CDMax;
    if (pasid < 0) {
      // Transactions without a substream use CD 0 unless the CD table has substreams, then S1DSS decides.
      if (cdMax === 0) return 0;
      if (v.S1DSS === STE_S1DSS.SSID0) return 0;
      if (v.S1DSS === STE_S1DSS.BYPASS) return 'bypass';
      return 'F_STREAM_DISABLED';
    }
    // SSV = 1: no substreams at all, an SSID beyond 2^S1CDMax, or SSID 0 when CD 0 serves S1DSS = SSID0.
    if (cdMax === 0 || pasid >= 2 ** cdMax) return 'C_BAD_SUBSTREAMID';
    if (pasid === 0 && v.S1DSS === STE_S1DSS.SSID0) return 'C_BAD_SUBSTREAMID';
    return pasid;
  }

  walkStage1(iovaPfn: number, pasid: number, mem: PhysicalMemory, out: WalkResult, tableToPhys: (gpaPfn: number) => number): boolean {
    this.lastContextFault = null;
    if (this.mode === 'abort') return this.contextFault(out, 'C_BAD_STE');
    if (this.mode === 'bypass') return bypassStage1(iovaPfn, out);
    const ssid = this.substream(pasid);
    if (ssid === 'bypass') return bypassStage1(iovaPfn, out);
    if (typeof ssid === 'string') return this.contextFault(out, ssid);
    const cd = this.fetchCd(ssid, mem, out, tableToPhys);
    if (!cd) return false;
    const cfg = this.viommu.cdWalkConfig(cd);
    if (typeof cfg === 'string') return this.contextFault(out, 'C_BAD_CD');
    if (cd.EPD0) {
      // TTB0 walks disabled: a translation fault, not a configuration error.
      out.fault = WALK_NOT_PRESENT;
      out.level = 0;
      return false;
    }
    this.viommu.noteAsid(cd.ASID, this.tag, pasid);
    const ok = this.viommu.s1Format.walkForeign!(cfg, Number(cd.TTB0 >> 12n), mem, iovaPfn, out, tableToPhys);
    return ok;
  }

  /**
   * What walkStage1 reads, without its side effects: the L1 CD descriptor (two-level CD tables), the
   * CD (shown by dword 1, TTB0), then the stage-1 levels, each table page through stage 2. Nothing is
   * read when the STE or the SubstreamID selects no CD.
   */
  traceStage1(iovaPfn: number, pasid: number, mem: PhysicalMemory, stage2: Stage2Tracer): WalkStep[] {
    const ssid = this.mode === 'translate' ? this.substream(pasid) : 'bypass';
    if (typeof ssid !== 'number') return [];
    const v = this.vste;
    const steps: WalkStep[] = [];
    let cdAddr: bigint;
    if (v.S1CDMax === 0 || v.S1Fmt === STE_S1FMT.LINEAR) {
      cdAddr = v.S1ContextPtr + BigInt(ssid) * 64n;
    } else if (v.S1Fmt === STE_S1FMT['4K_L2'] || v.S1Fmt === STE_S1FMT['64K_L2']) {
      const split = v.S1Fmt === STE_S1FMT['4K_L2'] ? 6 : 10;
      const l1Addr = v.S1ContextPtr + BigInt(ssid >>> split) * 8n;
      const l1 = traceNestedEntry(mem, Number(l1Addr >> 12n), Number(l1Addr & 0xfffn) / 8, 1, stage2, `L1 CD descriptor ${ssid >>> split}`, (e) =>
        (e & 1n) === 1n ? { kind: 'table', pfn: Number((e & L1CD_ADDR) >> 12n) } : { kind: 'invalid', pfn: 0 },
      );
      steps.push(l1);
      if (l1.kind !== 'table') return steps;
      cdAddr = (l1.entry & L1CD_ADDR) + BigInt(ssid & ((1 << split) - 1)) * 64n;
    } else return steps;
    const page = Number(cdAddr >> 12n);
    const first = Number(cdAddr & 0xfffn) / 8;
    const s2 = stage2(page);
    if (s2.pfn < 0) {
      steps.push({ level: 0, tablePfn: -1, index: first + 1, entry: 0n, kind: 'invalid', pfn: 0, tableGpaPfn: page, stage2: s2.steps, context: `CD ${ssid}` });
      return steps;
    }
    const dw: bigint[] = [];
    for (let i = 0; i < 8; i++) dw.push(mem.readU64(s2.pfn, first + i));
    const cd = decodeCdWords(dw);
    const cfg = this.viommu.cdWalkConfig(cd);
    const why = typeof cfg === 'string' ? `: ${cfg}` : cd.EPD0 ? ': EPD0 set, TTB0 walks disabled' : '';
    const ttb0 = Number(cd.TTB0 >> 12n);
    steps.push({ level: 0, tablePfn: s2.pfn, index: first + 1, entry: dw[1], kind: why === '' ? 'table' : 'invalid', pfn: why === '' ? ttb0 : 0, tableGpaPfn: page, stage2: s2.steps, context: `CD ${ssid}, dword 1 (TTB0), ASID ${cd.ASID}${why}` });
    if (typeof cfg === 'string' || why !== '') return steps;
    const geo = lpaeGeometry(cfg, 1);
    if (typeof geo === 'number' || !(iovaPfn >= 0 && iovaPfn < geo.limitPfn)) return steps;
    steps.push(...traceRadixNested(mem, ttb0, lpaeTraceSpec(geo), iovaPfn, stage2));
    return steps;
  }

  free(): void {
    this.viommu.forgetNested(this);
  }
}

export class SmmuViommu implements ViommuOps {
  readonly type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
  readonly eventTypes: readonly number[] = [IOMMU_VEVENTQ_TYPE_ARM_SMMUV3];
  readonly nestedDataTypes: readonly number[] = [IOMMU_HWPT_DATA_ARM_SMMUV3];
  /** The VMID of the parent S2 domain, forced into every guest TLBI. */
  readonly vmid: number;
  private readonly nested = new Set<SmmuNestedDomain>();
  /** Guest ASID → nested tag → PASIDs that walked with it (see the module comment). */
  private readonly asidUsers = new Map<number, Map<number, Set<number>>>();
  private destroyed = false;

  constructor(
    readonly unit: SmmuViommuOwner,
    readonly parent: SmmuNestParent,
    readonly s1Format: PageTableFormat,
  ) {
    this.vmid = parent.tag;
  }

  allocNested(_dev: DeviceInfo, dataType: number, data: Uint8Array): NestedDomainOps | VendorError {
    if (this.destroyed) return err('EINVAL', 'vIOMMU destroyed');
    if (dataType !== IOMMU_HWPT_DATA_ARM_SMMUV3) {
      return err('EOPNOTSUPP', `data type ${dataType} is not IOMMU_HWPT_DATA_ARM_SMMUV3 (${IOMMU_HWPT_DATA_ARM_SMMUV3})`);
    }
    // arm_vsmmu_alloc_domain_nested(): iommu_copy_struct_from_user(&arg, user_data, IOMMU_HWPT_DATA_ARM_SMMUV3, ste).
    const copy = iommuCopyStructFromUser(iommu_hwpt_arm_smmuv3, { type: dataType, data }, IOMMU_HWPT_DATA_ARM_SMMUV3, 'ste');
    if (!copy.ok) return copy.error;
    const v = validateNestedSte(copy.value);
    if (!v.ok) return v.error;
    const d = new SmmuNestedDomain(this, this.parent, v.value, this.unit.allocTag());
    this.nested.add(d);
    return d;
  }

  forgetNested(d: SmmuNestedDomain): void {
    this.nested.delete(d);
    for (const users of this.asidUsers.values()) users.delete(d.tag);
  }

  noteAsid(asid: number, tag: number, pasid: number): void {
    let users = this.asidUsers.get(asid);
    if (!users) this.asidUsers.set(asid, (users = new Map()));
    let pasids = users.get(tag);
    if (!pasids) users.set(tag, (pasids = new Set()));
    pasids.add(pasid);
  }

  /**
   * The stage-1 walk configuration a CD describes, or why the SMMU would report C_BAD_CD. The checks follow the
   * architecture's ILLEGAL CD conditions that a little-endian AArch64 model can meet.
   */
  cdWalkConfig(cd: Cd): PageTableConfig | string {
    if (!cd.V) return 'CD.V is 0';
    if (!cd.AA64) return 'CD.AA64 is 0 (AArch32 tables are not modelled)';
    if (cd.ENDI) return 'CD.ENDI is 1 but the SMMU walks little-endian tables';
    const g = TG0_LOG2[cd.TG0];
    if (g === undefined) return `CD.TG0 ${cd.TG0} is reserved`;
    const idr5 = this.unit.regs.idr5;
    const supported = g === 12 ? idr5.GRAN4K : g === 14 ? idr5.GRAN16K : idr5.GRAN64K;
    if (!supported) return `CD.TG0 selects a ${1 << (g - 10)}K granule the SMMU does not implement`;
    const minT0sz = g === 16 && idr5.VAX === 1 ? 12 : 16;
    if (cd.T0SZ < minT0sz || cd.T0SZ > 39) return `CD.T0SZ ${cd.T0SZ} outside ${minT0sz}..39`;
    // The output (an IPA) is bounded by CD.IPS and by what the stage-2 parent translates.
    const ips = OAS_BITS[cd.IPS] ?? 48;
    const oas = Math.max(32, Math.min(ips, this.parent.pt.cfg.ias, 52));
    return {
      pgsizeBitmap: granuleSizes(g, oas),
      ias: 64 - cd.T0SZ,
      oas,
      granule: 1 << g,
      dirtyTracking: cd.HD === 1,
    };
  }

  invalidate(
    dataType: number,
    entryLen: number,
    entries: Uint8Array,
    count: number,
    flush: IotlbFlush,
    lookupVsid: (virtId: bigint) => DeviceInfo | undefined,
  ): InvalidateResult {
    if (dataType !== IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3) {
      return { handled: 0, error: err('EINVAL', `data type ${dataType} is not IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 (${IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3})`) };
    }
    if (!Number.isInteger(entryLen) || entryLen <= 0) return { handled: 0, error: err('EINVAL', `entry_len ${entryLen}`) };
    if (entries.byteLength < entryLen * count) {
      return { handled: 0, error: err('EINVAL', `${count} entries of ${entryLen} bytes need ${entryLen * count} bytes, got ${entries.byteLength}`) };
    }
    // arm_vsmmu_cache_invalidate(): iommu_copy_struct_from_full_user_array() copies every entry first (a shorter
    // one zero-extended, a longer one zero past 16 bytes, else E2BIG) before anything is handled.
    if (count === 0) return { handled: 0, error: null };
    const copied = iommuCopyStructFromFullUserArray(iommu_viommu_arm_smmuv3_invalidate, { type: dataType, entryLen, entryNum: count, data: entries }, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3);
    if (!copied.ok) return { handled: 0, error: copied.error };
    const cmds = copied.value;
    const caps = this.unit.probe;
    const ctx = {
      vmid: this.vmid,
      vsidToSid: (vsid: number) => lookupVsid(BigInt(vsid))?.streamId,
      strict: {
        asidBits: caps.asidBits,
        ssidBits: caps.ssidBits,
        rangeInvalidation: caps.featureNames.includes('RANGE_INV'),
        ats: caps.featureNames.includes('ATS'),
        ds: this.unit.regs.idr5.DS === 1,
      },
    };
    for (let i = 0; i < count; i++) {
      const r = validateViommuInvalidation(cmds[i], ctx);
      if (!r.ok) return { handled: i, error: err(r.error.errno, `entry ${i}: ${r.error.reason}`) };
      this.apply(r.value.cmd, flush);
    }
    return { handled: count, error: null };
  }

  /** Applies one converted (host) command to the IOTLB. */
  private apply(cmd: readonly [bigint, bigint], flush: IotlbFlush): void {
    const d = decodeCommandWords(cmd);
    if (!d.ok) return;
    const f = d.value.fields;
    switch (d.value.name) {
      case 'CMD_TLBI_NH_ALL':
        for (const n of this.nested) flush.flushTag(n.tag);
        this.asidUsers.clear();
        return;
      case 'CMD_TLBI_NH_ASID':
        this.flushAsid(f.ASID ?? 0, 0, ALL_PAGES, flush);
        return;
      case 'CMD_TLBI_NH_VA':
      case 'CMD_TLBI_NH_VAA': {
        const cov = tlbiCoverage(f);
        let iovaPfn: number;
        let npages: number;
        if (cov.kind === 'address') {
          iovaPfn = Number(cov.addr >> 12n);
          npages = 1;
        } else {
          iovaPfn = Number(cov.start >> 12n);
          npages = Number((cov.last - cov.start + 1n) >> 12n);
        }
        if (d.value.name === 'CMD_TLBI_NH_VA') this.flushAsid(f.ASID ?? 0, iovaPfn, npages, flush);
        else for (const n of this.nested) flush.flushStage1(n.tag, -1, iovaPfn, npages);
        return;
      }
      default:
        // ATC_INV, CFGI_CD, CFGI_CD_ALL: validated (vSID → SID) above; nothing cached to drop in the model.
        return;
    }
  }

  private flushAsid(asid: number, iovaPfn: number, npages: number, flush: IotlbFlush): void {
    const users = this.asidUsers.get(asid);
    if (!users) return;
    for (const [tag, pasids] of users) for (const p of pasids) flush.flushStage1(tag, p, iovaPfn, npages);
    if (iovaPfn === 0 && npages === ALL_PAGES) this.asidUsers.delete(asid);
  }

  destroy(): void {
    this.destroyed = true;
    this.nested.clear();
    this.asidUsers.clear();
  }
}
