/**
 * The entry encodings of the VT-d formats for core's radix engine: everything the engine needs to
 * know about `vtd-ss` and `vtd-fs` entries. Both are 512-entry tables of 64-bit entries with leaves
 * at levels 0..2 (4K, 2M, 1G) and PS (bit 7) marking a leaf above level 0.
 */
import {
  ERRNO,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  type LeafBits,
  type RadixCodec,
} from '@ioasid/core/driver';
import { fsClean, fsDirty, fsLeafAccessed, ssClean, ssDirty, ssLeafAccessed } from './dirty.js';
import { FS_A, FS_D, FS_G, FS_P, FS_PCD, FS_PS, FS_PWT, FS_RW, FS_US, FS_XD_HI, HI_ADDR_MASK, SS_A, SS_PS, SS_R, SS_SNP, SS_W, SS_X } from './pte-bits.js';

const EINVAL = ERRNO.EINVAL;
const SIX = [0, 0, 0, 0, 0, 0];
const PS_ABOVE_0 = [0, SS_PS, SS_PS, SS_PS, SS_PS, SS_PS];
/** 512^level - 1: the page-number bits below a leaf at `level`. */
const LEVEL_MASK = [0, 511, 262143, 134217727, 0, 0];

/** Options of a second-stage table fixed at alloc. */
export interface VtdSsOptions {
  /** SLEE: execute requests honoured, X set on leaves not mapped IOMMU_NOEXEC, tables grant X. */
  readonly executeEnable: boolean;
  /** Force snooping (ECAP.SC): SNP on every leaf. */
  readonly snoop: boolean;
  /** The nest-parent erratum ERRATA_772415_SPR17: read-only maps are refused. */
  readonly forceWriteable: boolean;
}

/**
 * Second stage. No present bit: R|W. Linux installs tables as R|W (|X with SLEE) so permissions are
 * decided at the leaf; the walk still ANDs R/W/X over every level, as the spec says.
 */
export class VtdSsCodec implements RadixCodec {
  readonly presentMask = SS_R | SS_W;
  readonly tableMask = SS_PS;
  readonly tableValue: readonly number[] = SIX;
  readonly tableLo: readonly number[];
  readonly tableHi: readonly number[] = SIX;
  readonly leafTypeLo: readonly number[] = PS_ABOVE_0;
  readonly addrShift = 12;
  readonly addrHiMask = HI_ADDR_MASK;
  private readonly exec: boolean;
  private readonly snoop: boolean;
  private readonly forceWriteable: boolean;

  constructor(opts: VtdSsOptions) {
    this.exec = opts.executeEnable;
    this.snoop = opts.snoop;
    this.forceWriteable = opts.forceWriteable;
    const t = SS_R | SS_W | (opts.executeEnable ? SS_X : 0);
    this.tableLo = [t, t, t, t, t, t];
  }

  leafBits(prot: number, bits: LeafBits): number {
    // A mapping that grants nothing has nothing to mark present.
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return -EINVAL;
    if (this.forceWriteable && (prot & IOMMU_WRITE) === 0) return -EINVAL;
    // EMT/IPAT stay 0 as Linux leaves them (memory type comes from the PAT of the request / snoop).
    let lo = prot & (IOMMU_READ | IOMMU_WRITE);
    if (this.exec && (prot & IOMMU_NOEXEC) === 0) lo |= SS_X;
    if (this.snoop) lo |= SS_SNP;
    bits.lo = lo;
    bits.hi = 0;
    return 0;
  }

  leafGrant(lo: number, _hi: number, _level: number, tablesLo: number): number {
    return ssGrant(lo & tablesLo, this.exec);
  }

  leafDirty(lo: number): boolean {
    return ssDirty(lo);
  }

  leafClean(lo: number): number {
    return ssClean(lo);
  }

  leafAccessed(lo: number, _hi: number, write: boolean): number {
    return ssLeafAccessed(lo, write);
  }

  tableAccessed(lo: number): number {
    return lo | SS_A;
  }
}

/**
 * Second-stage grants from the AND of every level's low word. Without SLEE the X bit is ignored and
 * instruction fetches are allowed wherever reads are; no privilege levels, so both get the same.
 */
export function ssGrant(perm: number, exec: boolean): number {
  const p = exec ? perm & (PERM_READ | PERM_WRITE | PERM_EXEC) : (perm & (PERM_READ | PERM_WRITE)) | ((perm & SS_R) << 2);
  return p | (p << 4);
}

/** Options of a first-stage table fixed at alloc. */
export interface VtdFsOptions {
  /** Dirty tracking wanted: writable leaves start with D clear so that the hardware reports writes. */
  readonly trackDirty: boolean;
  /** G on every leaf. */
  readonly global: boolean;
}

/**
 * First stage (IA-32e): RW and U/S are ANDed and XD ORed over the levels, as the CPU does; a
 * supervisor-only page (U/S clear somewhere on the path) grants only privileged requests. Leaves are
 * written as Linux writes them: P|U/S|A, R/W and D for writable mappings (D left clear with dirty
 * tracking), U/S clear for IOMMU_PRIV, XD for IOMMU_NOEXEC, PCD|PWT for IOMMU_MMIO, G when global.
 */
export class VtdFsCodec implements RadixCodec {
  readonly presentMask = FS_P;
  readonly tableMask = FS_PS;
  readonly tableValue: readonly number[] = SIX;
  readonly tableLo: readonly number[] = [FS_P | FS_RW | FS_US | FS_A, FS_P | FS_RW | FS_US | FS_A, FS_P | FS_RW | FS_US | FS_A, FS_P | FS_RW | FS_US | FS_A, FS_P | FS_RW | FS_US | FS_A, FS_P | FS_RW | FS_US | FS_A];
  readonly tableHi: readonly number[] = SIX;
  readonly leafTypeLo: readonly number[] = PS_ABOVE_0;
  readonly addrShift = 12;
  readonly addrHiMask = HI_ADDR_MASK;
  private readonly trackDirty: boolean;
  private readonly global: boolean;

  constructor(opts: VtdFsOptions) {
    this.trackDirty = opts.trackDirty;
    this.global = opts.global;
  }

  leafBits(prot: number, bits: LeafBits): number {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return -EINVAL;
    // x86 cannot express write-only: P grants read. A is preset (Linux does, it saves the hardware a
    // locked update); D is preset for writable leaves unless dirty tracking wants a clean start.
    let lo = FS_P | FS_A;
    if (prot & IOMMU_WRITE) lo |= FS_RW | (this.trackDirty ? 0 : FS_D);
    if (!(prot & IOMMU_PRIV)) lo |= FS_US;
    if (prot & IOMMU_MMIO) lo |= FS_PCD | FS_PWT;
    if (this.global) lo |= FS_G;
    bits.lo = lo;
    bits.hi = (prot & IOMMU_NOEXEC) !== 0 ? FS_XD_HI : 0;
    return 0;
  }

  leafGrant(lo: number, hi: number, _level: number, tablesLo: number, tablesHi: number): number {
    const and = lo & tablesLo;
    const rwx = PERM_READ | ((and & FS_RW) !== 0 ? PERM_WRITE : 0) | (((hi | tablesHi) & FS_XD_HI) === 0 ? PERM_EXEC : 0);
    // Supervisor requests may use user pages; user requests get nothing from a supervisor page.
    return (and & FS_US) === 0 ? rwx << 4 : rwx | (rwx << 4);
  }

  /** PS is reserved in PML4E/PML5E (the geometry's leaf levels), bits 20:13 / 29:13 of a large leaf too (bit 12 is PAT). */
  leafReserved(_lo: number, _hi: number, level: number, pfn: number): boolean {
    return level !== 0 && (pfn & LEVEL_MASK[level] & ~1) !== 0;
  }

  leafDirty(lo: number): boolean {
    return fsDirty(lo);
  }

  leafClean(lo: number): number {
    return fsClean(lo);
  }

  leafAccessed(lo: number, _hi: number, write: boolean): number {
    return fsLeafAccessed(lo, write);
  }

  tableAccessed(lo: number): number {
    return lo | FS_A;
  }
}
