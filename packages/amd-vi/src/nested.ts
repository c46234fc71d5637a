/**
 * Nested translation on AMD-Vi: a guest's v2 (x86-64) table, found through the guest's GCR3 table,
 * walked over the host's v1 nest parent, from `struct iommu_hwpt_amd_guest` (the guest's 256-bit Device
 * Table Entry), as drivers/iommu/amd/nested.c builds it:
 *
 * - validate_gdte_nested(): Mode and the host table root must be zero; with V and GV set the GCR3
 *   table root must not be zero; the guest paging mode must be 4- or 5-level; GLX 3 is reserved
 *   (EINVAL each); a 5-level guest table on a host without 5-level v2 is EOPNOTSUPP.
 * - set_dte_nested(): the host builds the DTE from the parent (v1 root, Mode, IR/IW, the host domain ID)
 *   and takes from the guest DTE only PPR, GLX, GIoV, the GCR3 table root and the guest paging mode;
 *   everything else the guest wrote is ignored. GV is always set.
 * - The guest's DomainID (gDomID) maps to one host domain ID (hDomID) per vIOMMU, shared by every
 *   nested domain of that gDomID and released with the last one, so the IOTLB tag of (gDomID, PASID)
 *   never aliases between guests; a flush of the parent flushes every hDomID (domain_flush_pages_v1).
 *
 * What mainline offers of it (iommufd.c): amd_iommufd_get_viommu_size() answers for every vIOMMU type
 * (there is no AMD type in the uAPI: any type but DEFAULT gets an AMD vIOMMU), amd_iommufd_viommu_init()
 * ignores the user data and links the vIOMMU to its nest parent, and amd_viommu_ops has only `destroy`:
 * nothing calls amd_iommu_alloc_domain_nested(), so IOMMU_HWPT_ALLOC on the vIOMMU (and on the parent,
 * amd_iommu_ops having no domain_alloc_nested) is EOPNOTSUPP. The nested-translation series as posted
 * put it in amd_viommu_ops.alloc_domain_nested; the unit option `nestedOnViommu` models that.
 *
 * Mainline has no cache_invalidate_user for AMD (the hardware vIOMMU would take the guest's commands),
 * so IOMMU_HWPT_INVALIDATE on a nested domain or the vIOMMU is EOPNOTSUPP.
 */
import { readLe64Words, PERM_GRANT_ALL, WALK_CONTEXT_INVALID, WALK_OK, WALK_TABLE_FAULT, iommuCopyStructFromUser, traceNestedEntry, traceRadixNested, uapi, type DeviceInfo, type NestedDomainOps, type PageTableConfig, type PhysicalMemory, type VendorError, type Stage2Tracer, type UnitOps, type ViommuOps, type WalkResult, type WalkStep } from '@ioasid/core/driver';
import { deviceTableOf, type DteWords } from './device-table.js';
import { AMD_BLOCKED_DOMAIN } from './blocked.js';
import { decodeDte, GUEST_PGTABLE_4_LEVEL, GUEST_PGTABLE_5_LEVEL, type AmdDte } from './dte.js';
import { nestedDte, type V1TableInfo } from './dte-build.js';
import { AMD_EVENT } from './records.js';
import { AMD_IOMMU_PGSIZES_V2 } from './registers.js';
import { AMD_V2_FORMAT, walkForeignV2 } from './pgtable.js';
import { walkFail } from './pte.js';
import { amdTraceSpec } from './pgtable-trace.js';

/** `enum iommu_hwpt_data_type` value of `struct iommu_hwpt_amd_guest` (the guest's DTE) in IOMMU_HWPT_ALLOC. */
export const IOMMU_HWPT_DATA_AMD_GUEST = uapi.IOMMU_HWPT_DATA_AMD_GUEST;

function vendorError(errno: VendorError['errno'], reason: string): VendorError {
  return { errno, reason };
}

/** validate_gdte_nested(), with the host's v2 depth (amd_iommu_gpt_level). */
export function validateGuestDte(d: AmdDte, hostGuestLevels: number): VendorError | null {
  if (d.Mode !== 0 || d.HostPageTableRootPtr !== 0) return vendorError('EINVAL', 'the guest DTE sets Mode or the host table root, which belong to the host');
  if (d.V === 1 && d.GV === 1 && d.gcr3Root === 0n) return vendorError('EINVAL', 'the guest DTE has V and GV set but no GCR3 table root');
  if (d.GuestPagingMode !== GUEST_PGTABLE_4_LEVEL && d.GuestPagingMode !== GUEST_PGTABLE_5_LEVEL) return vendorError('EINVAL', `guest paging mode ${d.GuestPagingMode} is reserved (0: 4-level, 1: 5-level)`);
  if (d.GLX === 3) return vendorError('EINVAL', 'GLX 3 is reserved');
  if (d.GuestPagingMode === GUEST_PGTABLE_5_LEVEL && hostGuestLevels < 5) return vendorError('EOPNOTSUPP', 'a 5-level guest table needs a host with 5-level v2 tables (EFR GATS 1 and 5-level CPU paging: amd_iommu_gpt_level)');
  return null;
}

/** What the host takes from the guest DTE (set_dte_nested()). */
export interface GuestDteView {
  /** The guest's DomainID (gDomID), mapped to a host DomainID per vIOMMU. */
  readonly gdomId: number;
  /** DTE PPR: the device's page requests are logged. */
  readonly ppr: boolean;
  /** DTE GV: guest translation is on; clear, DMA goes through the parent table only. */
  readonly gv: boolean;
  /** DTE GIoV: requests without a PASID are translated through GCR3 table entry 0. */
  readonly giov: boolean;
  /** DTE GLX: levels of the GCR3 table minus one (0: one level, 1: two; 3 is reserved). */
  readonly glx: number;
  /** The guest-physical address of the GCR3 table's root. */
  readonly gcr3Root: bigint;
  /** Levels of the guest's v2 tables: 4, or 5 with GuestPagingMode 1. */
  readonly guestLevels: number;
}

/** The fields the host takes from a guest DTE (set_dte_nested). */
export function guestDteView(d: AmdDte): GuestDteView {
  return {
    gdomId: d.DomainID,
    ppr: d.PPR === 1,
    gv: d.GV === 1,
    giov: d.GIoV === 1,
    glx: d.GLX,
    gcr3Root: d.gcr3Root,
    guestLevels: d.GuestPagingMode === GUEST_PGTABLE_5_LEVEL ? 5 : 4,
  };
}

/** The gDomID → hDomID table of one vIOMMU (the gdomid_array xarray). */
export class GuestDomainIds {
  private readonly map = new Map<number, { hdom: number; users: number }>();

  constructor(private readonly allocTag: () => number) {}

  /** The hDomID of a gDomID, allocated on its first use; each call takes a reference. */
  get(gdom: number): number {
    const e = this.map.get(gdom);
    if (e) {
      e.users++;
      return e.hdom;
    }
    const hdom = this.allocTag();
    this.map.set(gdom, { hdom, users: 1 });
    return hdom;
  }

  /** Drops a reference taken by `get`; the last one frees the mapping. */
  put(gdom: number): void {
    const e = this.map.get(gdom);
    if (!e) return;
    if (--e.users === 0) this.map.delete(gdom);
  }

  /** Every hDomID in use. */
  hostIds(): number[] {
    return [...this.map.values()].map((e) => e.hdom);
  }

  /** The hDomID a gDomID maps to now, if any. */
  peek(gdom: number): number | undefined {
    return this.map.get(gdom)?.hdom;
  }

  /** gDomIDs mapped now. */
  get size(): number {
    return this.map.size;
  }
}

/** GCR3 table entry bits 51:12, as a page number: the next GCR3 level or the guest CR3. */
const GCR3_ADDR_PAGES = (1n << 40n) - 1n;

/** A guest-owned v2 translation nested on a v1 parent. */
export class AmdNestedDomain implements NestedDomainOps {
  readonly guestPasidTable = true;
  readonly format = AMD_V2_FORMAT;
  readonly mode: 'translate' | 'bypass';
  /** The guest DTE fields the host uses. */
  readonly view: GuestDteView;
  private readonly cfg: Readonly<PageTableConfig>;
  private freed = false;

  constructor(
    /** The v1 nest parent that translates guest-physical addresses. */
    readonly parent: NestedDomainOps['parent'],
    /** The host DomainID (hDomID) the guest's gDomID maps to. */
    readonly tag: number,
    /** The guest's DTE as given in `struct iommu_hwpt_amd_guest`. */
    readonly dte: AmdDte,
    private readonly ids: GuestDomainIds,
    private readonly parentInfo: () => V1TableInfo,
  ) {
    this.view = guestDteView(dte);
    // GV clear: no guest table, DMA is translated by the parent only.
    this.mode = this.view.gv ? 'translate' : 'bypass';
    const levels = this.view.guestLevels;
    this.cfg = Object.freeze({ pgsizeBitmap: AMD_IOMMU_PGSIZES_V2, ias: 12 + 9 * levels, oas: 52, levels });
  }

  /**
   * GCR3 table (GLX + 1 levels of 512 8-byte entries, bit 0 valid, bits 51:12 the next table or the
   * guest CR3), then the guest's v2 table. A request without a PASID uses GCR3[0] when GIoV is set and
   * the parent alone otherwise.
   */
  walkStage1(iovaPfn: number, pasid: number, mem: PhysicalMemory, out: WalkResult, tableToPhys: (gpaPfn: number) => number): boolean {
    let p = pasid;
    if (p < 0) {
      if (!this.view.giov) {
        out.pfn = iovaPfn;
        out.perm = PERM_GRANT_ALL;
        out.pageShift = 12;
        out.level = 0;
        out.dirty = false;
        out.fault = WALK_OK;
        return true;
      }
      p = 0;
    }
    const levels = this.view.glx + 1;
    if (p >= 2 ** (9 * levels)) {
      out.contextFault = AMD_EVENT.INVALID_DEVICE_REQUEST;
      return walkFail(out, WALK_CONTEXT_INVALID, 0);
    }
    let table = Number(this.view.gcr3Root >> 12n);
    for (let l = levels - 1; l >= 0; l--) {
      const phys = tableToPhys(table);
      if (phys < 0) {
        out.tablePfn = table;
        return walkFail(out, WALK_TABLE_FAULT, 0);
      }
      const e = mem.readU64(phys, Math.floor(p / 2 ** (9 * l)) % 512);
      if ((e & 1n) === 0n) {
        // No guest table for this PASID: the IOMMU logs an IO_PAGE_FAULT with GN.
        out.contextFault = AMD_EVENT.IO_PAGE_FAULT;
        return walkFail(out, WALK_CONTEXT_INVALID, 0);
      }
      table = Number((e >> 12n) & GCR3_ADDR_PAGES);
    }
    return walkForeignV2(this.cfg, table, mem, iovaPfn, out, tableToPhys);
  }

  /**
   * What walkStage1 reads: the GCR3 table entries (one per GLX level) for the PASID, then the guest's
   * v2 levels, every page through the parent. A request without a PASID and without GIoV reads nothing.
   */
  traceStage1(iovaPfn: number, pasid: number, mem: PhysicalMemory, stage2: Stage2Tracer): WalkStep[] {
    if (this.mode !== 'translate' || (pasid < 0 && !this.view.giov)) return [];
    const p = pasid < 0 ? 0 : pasid;
    const levels = this.view.glx + 1;
    if (p >= 2 ** (9 * levels)) return [];
    const steps: WalkStep[] = [];
    let table = Number(this.view.gcr3Root >> 12n);
    for (let l = levels - 1; l >= 0; l--) {
      const st = traceNestedEntry(mem, table, Math.floor(p / 2 ** (9 * l)) % 512, l, stage2, l === 0 ? `GCR3 entry of PASID ${p} (guest CR3)` : `GCR3 level ${l}`, (e) =>
        (e & 1n) === 1n ? { kind: 'table', pfn: Number((e >> 12n) & GCR3_ADDR_PAGES) } : { kind: 'invalid', pfn: 0 },
      );
      steps.push(st);
      if (st.kind !== 'table') return steps;
      table = st.pfn;
    }
    // walkForeignV2's geometry: 4 levels unless the guest asked for 5.
    const v2Levels = this.cfg.levels === 5 ? 5 : 4;
    if (!(iovaPfn >= 0 && iovaPfn < 2 ** (9 * v2Levels))) return steps;
    steps.push(...traceRadixNested(mem, table, amdTraceSpec('v2', v2Levels - 1), iovaPfn, stage2));
    return steps;
  }

  /** The host DTE of `dev` on this domain: set_dte_nested() (the DomainID is the hDomID). */
  dteFor(ats: boolean): DteWords {
    return nestedDte(this.parentInfo(), this.tag, ats, this.dte);
  }

  /**
   * nested_attach_device(): the merged DTE, written with amd_iommu_update_dte(). The device's paging
   * domain (dev_data->domain) stays as it was: the driver does not detach it here.
   */
  attachDev(dev: DeviceInfo, unit: UnitOps, pasid: number): VendorError | null {
    const table = pasid === -1 ? deviceTableOf(unit) : null;
    if (!table) return null;
    const ats = table.devData(dev).ats;
    table.update(dev, this, this.dteFor(ats), ats);
    return null;
  }

  /** The blocked domain's attach_dev: detach_device() of the device's paging domain, then the cleared DTE. */
  detachDev(dev: DeviceInfo, unit: UnitOps, pasid: number): void {
    AMD_BLOCKED_DOMAIN.attachDev(dev, unit, pasid);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.ids.put(this.view.gdomId);
  }
}

/** An AMD vIOMMU (struct amd_iommu_viommu): the nest parent and the gDomID table. */
export class AmdViommu implements ViommuOps {
  readonly eventTypes: readonly number[] = [];
  /** Empty in mainline (no alloc_domain_nested); IOMMU_HWPT_DATA_AMD_GUEST with `nestedOnViommu`. */
  readonly nestedDataTypes: readonly number[];
  /** The vIOMMU's gDomID to hDomID table. */
  readonly ids: GuestDomainIds;

  /**
   * @param allocTag - amd_iommu_pdom_id_alloc(), for the host domain IDs.
   * @param hostGuestLevels - the host's v2 depth (amd_iommu_gpt_level), for validate_gdte_nested().
   * @param parentInfo - the parent's v1 table as a DTE needs it (set_dte_nested()).
   */
  constructor(
    /** Whatever non-DEFAULT type user space asked for: mainline accepts them all. */
    readonly type: number,
    /** The v1 nest parent the vIOMMU was created on. */
    readonly parent: NestedDomainOps['parent'],
    allocTag: () => number,
    private readonly hostGuestLevels: number,
    private readonly parentInfo: () => V1TableInfo,
    /** amd_iommu_alloc_domain_nested() is hooked in, as the posted series did (mainline: not). */
    readonly nestedOnViommu: boolean,
  ) {
    this.ids = new GuestDomainIds(allocTag);
    this.nestedDataTypes = nestedOnViommu ? [IOMMU_HWPT_DATA_AMD_GUEST] : [];
  }

  /** The host domain IDs in use (what a flush of the parent also flushes: iommu_flush_pages_v1_hdom_ids). */
  hostDomainIds(): number[] {
    return this.ids.hostIds();
  }

  /**
   * amd_iommu_alloc_domain_nested() when hooked in; otherwise the vIOMMU has no alloc_domain_nested and
   * iommufd_viommu_alloc_hwpt_nested() answers EOPNOTSUPP (core already did, from `nestedDataTypes`).
   */
  allocNested(_dev: DeviceInfo, dataType: number, data: Uint8Array): NestedDomainOps | VendorError {
    if (!this.nestedOnViommu) return vendorError('EOPNOTSUPP', 'mainline amd_viommu_ops has no alloc_domain_nested');
    if (dataType !== IOMMU_HWPT_DATA_AMD_GUEST) return vendorError('EOPNOTSUPP', `data_type ${dataType} is not IOMMU_HWPT_DATA_AMD_GUEST`);
    const copy = iommuCopyStructFromUser(uapi.iommu_hwpt_amd_guest, { type: dataType, data }, IOMMU_HWPT_DATA_AMD_GUEST, 'dte');
    if (!copy.ok) return copy.error;
    const q = readLe64Words(copy.value);
    const dte = decodeDte([q[0], q[1], q[2], q[3]]);
    const bad = validateGuestDte(dte, this.hostGuestLevels);
    if (bad) return bad;
    const hdom = this.ids.get(dte.DomainID);
    return new AmdNestedDomain(this.parent, hdom, dte, this.ids, this.parentInfo);
  }

  /** amd_iommufd_viommu_destroy(): unlinked from the parent by its owner (unit.ts). */
  destroy(): void {
    this.onDestroy?.();
  }

  /** Set by the unit that links the vIOMMU to its parent. */
  onDestroy?: () => void;
}
