/**
 * Accessed/dirty rules of the two VT-d formats, used by their codecs (codec.ts) and by the table's
 * switch (pte.ts).
 *
 * Second stage: the hardware sets A (bit 8) on every entry a walk uses and D (bit 9) on a write
 * through a writable leaf, but only while SSADE is set in the PASID entry, i.e. for a domain
 * allocated for dirty tracking (ECAP.SLADS) with tracking switched on (intel_iommu_set_dirty_tracking).
 * First stage: the IA-32e rules, always on: A on every entry, D on a write through a leaf with R/W.
 * Reading the dirty state reports a whole leaf (iommu_dirty_bitmap_record) and clears D unless asked
 * not to (IOMMU_DIRTY_NO_CLEAR).
 */
import { FS_A, FS_D, FS_RW, SS_A, SS_D, SS_W } from './pte-bits.js';

export function ssLeafAccessed(lo: number, write: boolean): number {
  return lo | SS_A | (write && (lo & SS_W) !== 0 ? SS_D : 0);
}

export function fsLeafAccessed(lo: number, write: boolean): number {
  return lo | FS_A | (write && (lo & FS_RW) !== 0 ? FS_D : 0);
}

export function ssDirty(lo: number): boolean {
  return (lo & SS_D) !== 0;
}

export function fsDirty(lo: number): boolean {
  return (lo & FS_D) !== 0;
}

export function ssClean(lo: number): number {
  return lo & ~SS_D;
}

export function fsClean(lo: number): number {
  return lo & ~FS_D;
}

/** Whether walks update A/D: SS only with SSADE (a dirty-tracking domain, switched on); FS always. */
export function hardwareUpdatesAD(firstStage: boolean, trackingAllowed: boolean, enabled: boolean): boolean {
  return firstStage || (trackingAllowed && enabled);
}
