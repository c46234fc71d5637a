/**
 * The DTEs the amd_iommu driver writes, one builder per domain kind (drivers/iommu/amd/iommu.c
 * set_dte_entry() and its helpers, nested.c set_dte_nested()). Every builder starts from
 * amd_iommu_make_clear_dte(): V set and nothing else (the IVRS persistent bits it also restores are not
 * modelled: host profiles carry no IVHD device settings).
 */
import { PluginContractError } from '@ioasid/core/driver';
import { GUEST_PGTABLE_4_LEVEL, GUEST_PGTABLE_5_LEVEL, encodeDte, type DteFields } from './dte.js';
import type { DteWords } from './device-table.js';

function build(fields: DteFields): DteWords {
  const r = encodeDte({ V: 1, ...fields });
  // Every field comes from a domain, the unit's own checks or a validated guest DTE: a refusal is a bug, not input.
  if (!r.ok) throw new PluginContractError('amd-vi', `DTE: ${r.error}`);
  return r.value;
}

/** What a v1 (host) table puts in a DTE: pt_iommu_amdv1_hw_info(). */
export interface V1TableInfo {
  /** Levels in use: the DTE's Mode. */
  readonly levels: number;
  /** Byte address of the top table. */
  readonly root: bigint;
  /** The domain tracks dirty pages (DTE HAD = 3). */
  readonly dirtyTracking: boolean;
}

/**
 * amd_iommu_set_dte_v1(): translation valid, Mode = levels, the host root, IR/IW, HAD when the domain
 * tracks dirty pages; DomainID and I (ATS).
 */
export function v1DteFields(t: V1TableInfo, domainId: number, ats: boolean): DteFields {
  return { TV: 1, Mode: t.levels, hostRoot: t.root, IR: 1, IW: 1, HAD: t.dirtyTracking ? 3 : 0, DomainID: domainId & 0xffff, I: ats ? 1 : 0 };
}

/** set_dte_entry() of a v1 paging domain. */
export function v1Dte(t: V1TableInfo, domainId: number, ats: boolean): DteWords {
  return build(v1DteFields(t, domainId, ats));
}

/** A device's GCR3 table (struct gcr3_tbl_info). */
export interface Gcr3Info {
  /** Byte address of the top GCR3 table. */
  readonly root: bigint;
  /** Levels beyond the first (DTE GLX). */
  readonly glx: number;
  /** The per-device domain ID the driver allocated for it. */
  readonly domid: number;
}

/**
 * set_dte_gcr3_table(): translation valid, no host table (Mode 0), GV with the GCR3 root and GLX,
 * GIoV for a v2 domain (PASID-less DMA uses GCR3[0]), PPR when the device has IOPF on, IR/IW; the
 * per-device DomainID, I (ATS), and the guest paging mode (5-level when the v2 table is).
 */
export function gcr3Dte(g: Gcr3Info, opts: { readonly v2: boolean; readonly ppr: boolean; readonly ats: boolean; readonly fiveLevel: boolean }): DteWords {
  return build({
    TV: 1,
    PPR: opts.ppr ? 1 : 0,
    GIoV: opts.v2 ? 1 : 0,
    GV: 1,
    GLX: g.glx,
    gcr3Root: g.root,
    IR: 1,
    IW: 1,
    DomainID: g.domid & 0xffff,
    I: opts.ats ? 1 : 0,
    GuestPagingMode: opts.fiveLevel ? GUEST_PGTABLE_5_LEVEL : GUEST_PGTABLE_4_LEVEL,
  });
}

/** The guest DTE fields set_dte_nested() takes over (everything else the guest wrote is ignored). */
export interface GuestDteFields {
  /** The guest's PPR enable. */
  readonly PPR: number;
  /** GCR3 levels beyond the first. */
  readonly GLX: number;
  /** PASID-less DMA through GCR3[0]. */
  readonly GIoV: number;
  /** The guest's GCR3 table root (a guest-physical byte address). */
  readonly gcr3Root: bigint;
  /** 0: 4-level, 1: 5-level guest table. */
  readonly GuestPagingMode: number;
}

/**
 * set_dte_nested(): the parent's v1 fields with the host domain ID mapped from the guest's DomainID,
 * GV always, and from the guest DTE only PPR, GLX, GIoV, the GCR3 root and the guest paging mode.
 */
export function nestedDte(parent: V1TableInfo, hdomId: number, ats: boolean, guest: GuestDteFields): DteWords {
  return build({
    ...v1DteFields(parent, hdomId, ats),
    GV: 1,
    PPR: guest.PPR,
    GLX: guest.GLX,
    GIoV: guest.GIoV,
    gcr3Root: guest.gcr3Root,
    GuestPagingMode: guest.GuestPagingMode,
  });
}

/** get_count_order(): the smallest n with 2^n >= count (0 for 0 and 1). */
function countOrder(count: number): number {
  let n = 0;
  while (2 ** n < count) n++;
  return n;
}

/** get_gcr3_levels(): GCR3 levels beyond the first for `pasids` PASIDs (512 per 4 KiB level). */
export function gcr3Levels(pasids: number): number {
  const order = countOrder(pasids);
  return order ? Math.ceil(order / 9) - 1 : 0;
}
