/**
 * Nested translation on AMD-Vi: a guest's v2 (x86-64) table, found through the guest's GCR3 table,
 * walked over the host's v1 nest parent. As in mainline (drivers/iommu/amd/nested.c, iommufd.c), a
 * nested domain is allocated on an AMD vIOMMU (IOMMU_VIOMMU_TYPE_AMD) from `struct
 * iommu_hwpt_amd_guest`, the guest's 256-bit Device Table Entry:
 *
 * - validate_gdte_nested(): Mode and the host table root must be zero; with V and GV set the GCR3
 *   table root must not be zero; the guest paging mode must be 4- or 5-level; GLX 3 is reserved
 *   (EINVAL each); a 5-level guest table on a host without 5-level v2 is EOPNOTSUPP.
 * - set_dte_nested(): the host builds the DTE from the parent (v1 root, Mode, IR/IW, the host domain ID)
 *   and takes from the guest DTE only PPR, GLX, GIoV, the GCR3 table root and the guest paging mode;
 *   everything else the guest wrote is ignored. GV is always set.
 * - The guest's DomainID (gDomID) maps to one host domain ID (hDomID) per vIOMMU, shared by every
 *   nested domain of that gDomID and released with the last one, so the IOTLB tag of (gDomID, PASID)
 *   never aliases between guests.
 *
 * Mainline has no cache_invalidate_user for AMD nested domains (the hardware vIOMMU takes the guest's
 * commands), so IOMMU_HWPT_INVALIDATE on them is EOPNOTSUPP.
 */
import { readLe32, readLe64Words, PERM_GRANT_ALL, WALK_CONTEXT_INVALID, WALK_OK, WALK_TABLE_FAULT, copyStructFromUser, iommuCopyStructFromUser, traceNestedEntry, traceRadixNested, uapi, type DeviceInfo, type NestedDomainOps, type PageTableConfig, type PhysicalMemory, type VendorError, type Stage2Tracer, type UnitOps, type ViommuOps, type WalkResult, type WalkStep } from '@ioasid/core/driver';
import { deviceTableOf } from './device-table.js';
import { decodeDte, type AmdDte } from './dte.js';
import { AMD_EVENT } from './records.js';
import { AMD_IOMMU_PGSIZES_V2 } from './registers.js';
import { AMD_V2_FORMAT, walkForeignV2 } from './pgtable.js';
import { walkFail } from './pte.js';
import { amdTraceSpec } from './pgtable-trace.js';

/** IOMMU_VIOMMU_TYPE_AMD: the AMD vIOMMU type of the AMD nested-translation series. */
export const IOMMU_VIOMMU_TYPE_AMD = 3;
/** `enum iommu_hwpt_data_type` value of `struct iommu_hwpt_amd_guest` (the guest's DTE) in IOMMU_HWPT_ALLOC. */
export const IOMMU_HWPT_DATA_AMD_GUEST = uapi.IOMMU_HWPT_DATA_AMD_GUEST;
/**
 * struct iommu_viommu_amd as the AMD vIOMMU series defines it: u32 iommu_devid, viommu_devid,
 * trans_devid, out_gid; u64 out_vfmmio_mmap_offset; u32 reserved (the last member the kernel requires).
 */
export const IOMMU_VIOMMU_AMD_SIZE = 32;
/** The shortest `struct iommu_viommu_amd` accepted: up to and including `reserved`. */
export const IOMMU_VIOMMU_AMD_MIN_SIZE = 28;

/** GUEST_PGTABLE_4_LEVEL / _5_LEVEL. */
export const GUEST_PGTABLE_4_LEVEL = 0;
/** DTE GuestPagingMode 1: a five-level (57-bit) guest v2 table. */
export const GUEST_PGTABLE_5_LEVEL = 1;

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

  /** The device's DTE is now the guest's merged one, which the device table does not model: drop the v1 entry. */
  attachDev(dev: DeviceInfo, unit: UnitOps, pasid: number): VendorError | null {
    if (pasid === -1) deviceTableOf(unit)?.forget(dev, null);
    return null;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.ids.put(this.view.gdomId);
  }
}

/** An AMD vIOMMU (struct amd_iommu_viommu): the parent and the gDomID table. */
export class AmdViommu implements ViommuOps {
  readonly type = IOMMU_VIOMMU_TYPE_AMD;
  readonly eventTypes: readonly number[] = [];
  readonly nestedDataTypes: readonly number[] = [IOMMU_HWPT_DATA_AMD_GUEST];
  /** The vIOMMU's gDomID to hDomID table. */
  readonly ids: GuestDomainIds;

  constructor(
    /** The v1 nest parent the vIOMMU was created on. */
    readonly parent: NestedDomainOps['parent'],
    /** `iommu_viommu_amd.iommu_devid`: the DeviceID of the host IOMMU. */
    readonly iommuDevid: number,
    allocTag: () => number,
    private readonly hostGuestLevels: number,
  ) {
    this.ids = new GuestDomainIds(allocTag);
  }

  /** amd_iommu_alloc_domain_nested(). */
  allocNested(_dev: DeviceInfo, dataType: number, data: Uint8Array): NestedDomainOps | VendorError {
    if (dataType !== IOMMU_HWPT_DATA_AMD_GUEST) return vendorError('EOPNOTSUPP', `data_type ${dataType} is not IOMMU_HWPT_DATA_AMD_GUEST`);
    const copy = iommuCopyStructFromUser(uapi.iommu_hwpt_amd_guest, { type: dataType, data }, IOMMU_HWPT_DATA_AMD_GUEST, 'dte');
    if (!copy.ok) return copy.error;
    const q = readLe64Words(copy.value);
    const dte = decodeDte([q[0], q[1], q[2], q[3]]);
    const bad = validateGuestDte(dte, this.hostGuestLevels);
    if (bad) return bad;
    const hdom = this.ids.get(dte.DomainID);
    return new AmdNestedDomain(this.parent, hdom, dte, this.ids);
  }

  destroy(): void {}
}

/**
 * amd_iommufd_viommu_init(): the user data is required (no data is EINVAL) and copied with the
 * struct's size rules; iommu_devid names the host IOMMU.
 */
export function parseViommuAmdData(data: Uint8Array):
  | {
      /** `iommu_devid`: the DeviceID of the host IOMMU. */
      iommuDevid: number;
    }
  | VendorError {
  if (data.byteLength === 0) return vendorError('EINVAL', 'IOMMU_VIOMMU_TYPE_AMD needs struct iommu_viommu_amd');
  if (data.byteLength < IOMMU_VIOMMU_AMD_MIN_SIZE) return vendorError('EINVAL', `struct iommu_viommu_amd: ${data.byteLength} bytes is shorter than the ${IOMMU_VIOMMU_AMD_MIN_SIZE} up to reserved`);
  if (data.byteLength > IOMMU_VIOMMU_AMD_SIZE) return vendorError('EINVAL', `struct iommu_viommu_amd: ${data.byteLength} bytes is longer than the kernel's ${IOMMU_VIOMMU_AMD_SIZE}`);
  const copy = copyStructFromUser(IOMMU_VIOMMU_AMD_SIZE, data, 'iommu_viommu_amd');
  if (!copy.ok) return copy.error;
  return { iommuDevid: readLe32(copy.value, 0) & 0xffff };
}
