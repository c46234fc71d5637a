/**
 * The two AMD-Vi page-table formats, as real 64-bit entries in simulated physical memory:
 *
 * `amd-v1` (host, the DTE's Mode/Host TRP; io_pgtable.c, generic_pt amdv1.h):
 * - PR (0), A (5, with HASup), D (6, with HDSup), NextLevel (11:9), address (51:12), U (59),
 *   FC (60), IR (61), IW (62). 1 to 6 levels; the top level of a 6-level table decodes IOVA bits 63:57.
 * - A PDE's NextLevel is the level of the table it points to; a smaller value skips levels, whose
 *   IOVA bits must then be zero (the walk honours it; Linux never builds one: "No level skipping").
 * - A leaf is NextLevel 0 (the level's default size: 4K, 2M, 1G, ...) or 7 with the page size encoded
 *   in the address (PAGE_SIZE_PTE: the bits below the size's top bit set, that bit clear), the entry
 *   replicated PAGE_SIZE_PTE_COUNT times. Permissions are IR/IW ANDed along the walk.
 * - Dirty tracking: with the DTE's HAD set (setDirtyTracking), a write sets D in the replica the
 *   access used; software ORs the replicas (spec 2.2.3.2), as readAndClearDirty does.
 *
 * `amd-v2` (guest/GCR3, the x86-64 long-mode format; io_pgtable_v2.c): P, RW, US, PWT, PCD, A, D,
 * PS (2M at level 1, 1G at level 2), NX (63); 4 or 5 levels (48/57-bit). The IOMMU always sets A/D.
 *
 * Both run on core's radix engine: this module supplies the entry encodings (AmdV1Codec with level
 * skipping and replicated NextLevel-7 leaves, AmdV2Codec) and the geometries. Table pages come from
 * PageTableMemory; a failed map leaves the table as it was.
 */
import {
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  NEXT_LEAF,
  NEXT_RESERVED,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  ChunkCache,
  LeafBits,
  RadixLayout,
  RadixPageTable,
  radixWalk,
  type IoPageTable,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
  type PhysicalMemory,
  type RadixCodec,
  type WalkResult,
  type WalkStep,
  traceRadix,
} from '@ioasid/core/driver';
import { amdTraceSpec } from './pgtable-trace.js';
import { EINVAL, ENOMEM, WALK_ADDRESS_SIZE, walkFail } from './pte.js';
import { AMD_IOMMU_PGSIZES, AMD_IOMMU_PGSIZES_V2 } from './registers.js';

/** Format id of the v1 (host) page table: DTE Mode 1-6, the IOMMU's own format. */
export const AMD_V1_FORMAT = 'amd-v1';
/** Format id of the v2 (guest) page table: x86-64 long-mode format, 4 or 5 levels, rooted in a GCR3 table. */
export const AMD_V2_FORMAT = 'amd-v2';

// v1 bits: low word.
export const V1_PR = 1 << 0;
export const V1_A = 1 << 5;
export const V1_D = 1 << 6;
export const V1_NL_SHIFT = 9;
/** NextLevel 7: a page of non-default size, encoded in the address bits. */
export const V1_NL_SIZE = 7;
// v1 bits: high word (bit n of the entry is bit n-32 here).
export const V1_HI_U = 1 << 27;
export const V1_HI_FC = 1 << 28;
export const V1_HI_IR = 1 << 29;
export const V1_HI_IW = 1 << 30;

// v2 bits.
export const V2_P = 1 << 0;
export const V2_RW = 1 << 1;
export const V2_US = 1 << 2;
export const V2_PWT = 1 << 3;
export const V2_PCD = 1 << 4;
export const V2_A = 1 << 5;
export const V2_D = 1 << 6;
export const V2_PS = 1 << 7;
export const V2_HI_NX = 0x80000000 | 0;

/** Output page numbers below 2^40 (52-bit addresses) for both formats. */
const OAS = 52;
const SIX = [0, 0, 0, 0, 0, 0];
const NL_FIELD = 7 << V1_NL_SHIFT;

/** First zero bit at or above bit 12 of the entry's address field (ffz(pte | 0xfff)). */
function firstZeroAddrBit(lo: number, hi: number): number {
  for (let b = 12; b < 32; b++) if (((lo >>> b) & 1) === 0) return b;
  for (let b = 0; b < 20; b++) if (((hi >>> b) & 1) === 0) return 32 + b;
  return 52;
}

/**
 * v1 entries. A PDE's NextLevel is the (1-based) level of the table it points to: equal to this
 * entry's level for the tables Linux (and the engine) builds, smaller when it skips levels, reserved
 * when not below it. NextLevel 0 is a leaf of the level's size, 7 a leaf whose size is encoded in the
 * address (the bits below the size's top bit set, that bit clear), replicated over its entries.
 * Permissions: IR/IW ANDed along the walk; execute wherever read or write is granted.
 */
export class AmdV1Codec implements RadixCodec {
  readonly presentMask = V1_PR;
  readonly tableMask = NL_FIELD;
  readonly tableValue: readonly number[] = [0, 1 << V1_NL_SHIFT, 2 << V1_NL_SHIFT, 3 << V1_NL_SHIFT, 4 << V1_NL_SHIFT, 5 << V1_NL_SHIFT];
  readonly tableLo: readonly number[] = [V1_PR, V1_PR | (1 << V1_NL_SHIFT), V1_PR | (2 << V1_NL_SHIFT), V1_PR | (3 << V1_NL_SHIFT), V1_PR | (4 << V1_NL_SHIFT), V1_PR | (5 << V1_NL_SHIFT)];
  /** Table PDEs carry IR|IW: the leaf decides. */
  readonly tableHi: readonly number[] = [V1_HI_IR | V1_HI_IW, V1_HI_IR | V1_HI_IW, V1_HI_IR | V1_HI_IW, V1_HI_IR | V1_HI_IW, V1_HI_IR | V1_HI_IW, V1_HI_IR | V1_HI_IW];
  readonly leafTypeLo: readonly number[] = SIX;
  readonly replicaTypeLo: readonly number[] = [NL_FIELD, NL_FIELD, NL_FIELD, NL_FIELD, NL_FIELD, NL_FIELD];
  readonly addrShift = 12;
  readonly addrHiMask = 0xfffff;
  private readonly coherent: boolean;

  constructor(coherent: boolean) {
    this.coherent = coherent;
  }

  /** Leaves get FC when the domain forces coherence. */
  leafBits(prot: number, bits: LeafBits): number {
    bits.lo = V1_PR;
    bits.hi = (prot & IOMMU_READ ? V1_HI_IR : 0) | (prot & IOMMU_WRITE ? V1_HI_IW : 0) | (this.coherent ? V1_HI_FC : 0);
    return 0;
  }

  leafGrant(_lo: number, hi: number, _level: number, _tablesLo: number, _tablesHi: number, tablesHiAnd: number): number {
    const and = hi & tablesHiAnd;
    const rw = (and & V1_HI_IR ? PERM_READ : 0) | (and & V1_HI_IW ? PERM_WRITE : 0);
    // No privilege levels modelled here: both get the same grants (core's permission model).
    if (rw === 0) return 0;
    const p = rw | PERM_EXEC;
    return p | (p << 4);
  }

  nextLevel(lo: number, _hi: number, level: number): number {
    const nl = (lo >>> V1_NL_SHIFT) & 7;
    if (nl === 0 || nl === V1_NL_SIZE) return NEXT_LEAF;
    return nl > level ? NEXT_RESERVED : nl - 1;
  }

  leafPages(lo: number, hi: number, level: number): number {
    const nl = (lo >>> V1_NL_SHIFT) & 7;
    if (nl === 0) return 2 ** (9 * level);
    // A level-0 entry naming a table level is reserved.
    if (nl !== V1_NL_SIZE) return 0;
    const shift = firstZeroAddrBit(lo, hi) + 1;
    // The encoded size lies between this level's default size and the level above's.
    if (shift <= 12 + 9 * level || shift >= 12 + 9 * (level + 1)) return 0;
    return 2 ** (shift - 12);
  }

  /** PAGE_SIZE_PTE(): (pa | (size - 1)) & ~(size >> 1), i.e. the low half of the size's pages set. */
  replicaPfn(pfn: number, pages: number): number {
    return pfn + pages / 2 - 1;
  }

  leafDirty(lo: number): boolean {
    return (lo & V1_D) !== 0;
  }

  leafClean(lo: number): number {
    return lo & ~V1_D;
  }

  leafAccessed(lo: number, _hi: number, write: boolean): number {
    return lo | V1_A | (write ? V1_D : 0);
  }
}

/**
 * v2 entries (x86-64 long mode, io_pgtable_v2.c set_pte_attr()): present, user (always), accessed and
 * dirty preset, RW when writeable, NX for no-exec. RW is ANDed and NX ORed along the walk; U/S is not
 * checked. The IOMMU always sets A/D.
 */
export class AmdV2Codec implements RadixCodec {
  readonly presentMask = V2_P;
  readonly tableMask = V2_PS;
  readonly tableValue: readonly number[] = SIX;
  readonly tableLo: readonly number[] = [V2_P | V2_RW | V2_US | V2_A, V2_P | V2_RW | V2_US | V2_A, V2_P | V2_RW | V2_US | V2_A, V2_P | V2_RW | V2_US | V2_A, V2_P | V2_RW | V2_US | V2_A, V2_P | V2_RW | V2_US | V2_A];
  readonly tableHi: readonly number[] = SIX;
  readonly leafTypeLo: readonly number[] = [0, V2_PS, V2_PS, V2_PS, V2_PS, V2_PS];
  readonly addrShift = 12;
  readonly addrHiMask = 0xfffff;

  leafBits(prot: number, bits: LeafBits): number {
    bits.lo = V2_P | V2_US | V2_A | V2_D | (prot & IOMMU_WRITE ? V2_RW : 0);
    bits.hi = prot & IOMMU_NOEXEC ? V2_HI_NX : 0;
    return 0;
  }

  leafGrant(lo: number, hi: number, _level: number, tablesLo: number, tablesHi: number): number {
    const p = PERM_READ | ((lo & tablesLo & V2_RW) !== 0 ? PERM_WRITE : 0) | (((hi | tablesHi) & V2_HI_NX) === 0 ? PERM_EXEC : 0);
    return p | (p << 4);
  }

  leafDirty(lo: number): boolean {
    return (lo & V2_D) !== 0;
  }

  leafClean(lo: number): number {
    return lo & ~V2_D;
  }

  leafAccessed(lo: number, _hi: number, write: boolean): number {
    return lo | V2_A | (write ? V2_D : 0);
  }
}

const v1Codecs = [new AmdV1Codec(false), new AmdV1Codec(true)];
const v2Codec = new AmdV2Codec();
const layouts = new Map<string, RadixLayout>();

/**
 * 512-entry tables, `levels` deep. v1: a leaf of the level's size wherever the bitmap has it, the
 * sizes in between as NextLevel-7 replicas, and any NextLevel-0 leaf accepted by the walk. v2: 4K,
 * 2M, 1G.
 */
function amdLayout(flavor: 'v1' | 'v2', levels: number, ias: number, bitmap: bigint): RadixLayout {
  const key = `${flavor}:${levels}:${ias}:${bitmap}`;
  let layout = layouts.get(key);
  if (layout !== undefined) return layout;
  const entryBits: number[] = [];
  const spanShift: number[] = [];
  const replicated: number[] = [];
  let leafLevels = 0;
  for (let l = 0; l < levels; l++) {
    entryBits.push(9);
    spanShift.push(9 * l);
    if ((bitmap >> BigInt(12 + 9 * l)) & 1n) leafLevels |= 1 << l;
    let r = 0;
    if (flavor === 'v1') for (let k = 1; k < 9; k++) if ((bitmap >> BigInt(12 + 9 * l + k)) & 1n) r |= 1 << k;
    replicated.push(r);
  }
  const walkLeafLevels = flavor === 'v1' ? (1 << levels) - 1 : Math.min(7, (1 << levels) - 1);
  layout = new RadixLayout({ levels, entryBits, spanShift, leafLevels: leafLevels | 1, walkLeafLevels, replicated, ias: Math.min(ias, 64), oas: OAS });
  layouts.set(key, layout);
  return layout;
}

/** Called after a v1 table grew: the new root and level count, for the DTEs that point to it. */
export type AmdTopChange = (rootPfn: number, levels: number) => void;

/** An AMD-Vi table: core's radix engine with the v1 or v2 codec. */
export class AmdPageTable extends RadixPageTable {
  /** v1: the DTE's HAD bits (setDirtyTracking); v2 hardware always updates A/D. */
  private dirtyOn = false;
  private readonly v1: boolean;
  /** v1: the depth the table may grow to (cfg.levels); v2 never grows. */
  readonly maxLevels: number;
  /** Set by the domain: told after every growth (amd_iommu_change_top). */
  onTopChange: AmdTopChange | null = null;

  constructor(flavor: 'v1' | 'v2', cfg: Readonly<PageTableConfig>, layout: RadixLayout, memory: PageTableMemory, root: number) {
    super(flavor === 'v1' ? AMD_V1_FORMAT : AMD_V2_FORMAT, cfg, flavor === 'v1' ? v1Codecs[cfg.coherent === true ? 1 : 0] : v2Codec, layout, memory, root);
    this.v1 = flavor === 'v1';
    this.maxLevels = cfg.levels ?? layout.levels;
  }

  /**
   * v1 with a dynamic top (generic_pt amdv1, PT_FEAT_DYNAMIC_TOP): a mapping above the current reach
   * first adds the levels it needs, up to maxLevels (iommu_pt.h increase_top), then maps. An ENOMEM
   * while growing leaves the table as it was; a range beyond maxLevels is ERANGE as before.
   */
  override map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    const end = iovaPfn + npages;
    if (this.v1 && this.levels < this.maxLevels && end > this.limitPfn && Number.isInteger(iovaPfn) && iovaPfn >= 0 && Number.isInteger(paPfn) && paPfn >= 0 && Number.isInteger(npages) && npages > 0) {
      let levels = this.levels + 1;
      while (levels < this.maxLevels && v1Layout(this, levels).limitPfn < end) levels++;
      const deeper = v1Layout(this, levels);
      if (end <= deeper.limitPfn && paPfn + npages <= deeper.oaLimitPfn) {
        const rc = this.growTop(deeper);
        if (rc < 0) return rc;
        this.onTopChange?.(this.rootPfn, this.levels);
      }
    }
    return super.map(iovaPfn, paPfn, npages, prot);
  }

  /** The entries a walk of `iovaPfn` reads, from the current root (after any growth). */
  override trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, amdTraceSpec(this.v1 ? 'v1' : 'v2', this.top), iovaPfn);
  }

  override setDirtyTracking(enable: boolean): void {
    this.dirtyOn = enable;
  }

  /** v1 updates A/D only when the DTE's HAD bits are set (dirty tracking on); v2 always does. */
  override markAccess(iovaPfn: number, write: boolean): void {
    if (this.v1 && !this.dirtyOn) return;
    super.markAccess(iovaPfn, write);
  }

  /** Reports each dirty leaf once (its replicas ORed), clipped to the range asked for. */
  override readAndClearDirty(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    const end = iovaPfn + npages;
    super.readAndClearDirty(iovaPfn, npages, noClear, (base, pages) => {
      const first = Math.max(base, iovaPfn);
      onDirty(first, Math.min(base + pages, end) - first);
    });
  }
}

/** The v1 geometry of `t` at `levels` (its full IOVA width at maxLevels, the levels' reach below). */
function v1Layout(t: AmdPageTable, levels: number): RadixLayout {
  const ias = levels === t.maxLevels ? t.cfg.ias : Math.min(64, 12 + 9 * levels);
  return amdLayout('v1', levels, ias, t.cfg.pgsizeBitmap);
}

/**
 * v1: `cfg.levels` 1..6 (default: enough for `cfg.ias`), `cfg.ias` ≤ 12 + 9·levels (64 at most);
 * every size of AMD_IOMMU_PGSIZES the bitmap asks for up to the table's reach. `options.startLevels`
 * (1..levels, default levels) builds a shallower table that grows on demand up to `levels`, as
 * Linux's v1 domains do (they start at 3 levels).
 */
function allocV1(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
  const ias = cfg.ias;
  if (!Number.isInteger(ias) || ias < 21 || ias > 64) return -EINVAL;
  const levels = cfg.levels ?? Math.max(1, Math.ceil((ias - 12) / 9));
  if (!Number.isInteger(levels) || levels < 1 || levels > 6 || ias > Math.min(64, 12 + 9 * levels)) return -EINVAL;
  if (!Number.isInteger(cfg.oas) || cfg.oas < 32 || cfg.oas > 52) return -EINVAL;
  // Page numbers stay exact below 2^53: a 64-bit IOVA space is 2^52 pages.
  const start = cfg.options?.startLevels ?? levels;
  if (typeof start !== 'number' || !Number.isInteger(start) || start < 1 || start > levels) return -EINVAL;
  const reach = 12 + 9 * levels;
  const bitmap = cfg.pgsizeBitmap & AMD_IOMMU_PGSIZES & ((1n << BigInt(Math.min(reach, 52))) - 1n);
  if ((bitmap & (1n << 12n)) === 0n) return -EINVAL;
  const root = memory.allocTable();
  if (root < 0) return -ENOMEM;
  cfg.pgsizeBitmap = bitmap;
  const eff: Readonly<PageTableConfig> = Object.freeze({ ...cfg, pgsizeBitmap: bitmap, levels, options: Object.freeze({ ...(cfg.options ?? {}) }) });
  const first = start === levels ? amdLayout('v1', levels, ias, bitmap) : amdLayout('v1', start, Math.min(64, 12 + 9 * start), bitmap);
  return new AmdPageTable('v1', eff, first, memory, root);
}

/** v2: 4 levels (48-bit) or 5 (57-bit); 4K, 2M and 1G pages. */
function allocV2(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
  const levels = cfg.levels ?? (cfg.ias > 48 ? 5 : 4);
  if (levels !== 4 && levels !== 5) return -EINVAL;
  const ias = cfg.ias;
  if (!Number.isInteger(ias) || ias < 32 || ias > 12 + 9 * levels) return -EINVAL;
  if (!Number.isInteger(cfg.oas) || cfg.oas < 32 || cfg.oas > 52) return -EINVAL;
  const bitmap = cfg.pgsizeBitmap & AMD_IOMMU_PGSIZES_V2;
  if ((bitmap & (1n << 12n)) === 0n) return -EINVAL;
  const root = memory.allocTable();
  if (root < 0) return -ENOMEM;
  cfg.pgsizeBitmap = bitmap;
  const eff: Readonly<PageTableConfig> = Object.freeze({ ...cfg, pgsizeBitmap: bitmap, levels, options: Object.freeze({ ...(cfg.options ?? {}) }) });
  return new AmdPageTable('v2', eff, amdLayout('v2', levels, ias, bitmap), memory, root);
}

const foreignChunks = new ChunkCache();

/**
 * A foreign table's walk: every table page, the root first, goes through `tableToPhys`; a page the
 * host stage refuses is a table fault naming the guest page, at the level of the table being read.
 */
function walkForeign(flavor: 'v1' | 'v2', levels: number, ias: number, rootPfn: number, mem: PhysicalMemory, iovaPfn: number, out: WalkResult, tableToPhys: (pfn: number) => number): boolean {
  const layout = amdLayout(flavor, levels, ias, 1n << 12n);
  if (!(iovaPfn >= 0 && iovaPfn < layout.limitPfn)) return walkFail(out, WALK_ADDRESS_SIZE, levels - 1);
  foreignChunks.bind(mem);
  return radixWalk(flavor === 'v1' ? v1Codecs[0] : v2Codec, layout, foreignChunks, rootPfn, iovaPfn, out, tableToPhys);
}

function walkForeignV1(cfg: Readonly<PageTableConfig>, rootPfn: number, mem: PhysicalMemory, iovaPfn: number, out: WalkResult, tableToPhys: (pfn: number) => number): boolean {
  const levels = cfg.levels ?? Math.max(1, Math.ceil((cfg.ias - 12) / 9));
  if (!(iovaPfn >= 0 && iovaPfn < 2 ** (Math.min(cfg.ias, 64) - 12)) || levels < 1 || levels > 6) return walkFail(out, WALK_ADDRESS_SIZE, levels - 1);
  return walkForeign('v1', levels, Math.min(cfg.ias, 64), rootPfn, mem, iovaPfn, out, tableToPhys);
}

/** A guest v2 table in guest-physical memory: every table pointer goes through the host stage. */
export function walkForeignV2(cfg: Readonly<PageTableConfig>, rootPfn: number, mem: PhysicalMemory, iovaPfn: number, out: WalkResult, tableToPhys: (pfn: number) => number): boolean {
  const levels = cfg.levels === 5 ? 5 : 4;
  return walkForeign('v2', levels, 12 + 9 * levels, rootPfn, mem, iovaPfn, out, tableToPhys);
}

/** The v1 page-table format (io_pgtable AMD_IOMMU_V1): levels from the DTE Mode, NextLevel 7 for non-default page sizes, IR/IW/FC bits. */
export const amdV1: PageTableFormat = {
  id: AMD_V1_FORMAT,
  describe: 'AMD-Vi v1 (host): 1-6 levels up to 64-bit IOVA, 52-bit output, every power-of-two page from 4K (NextLevel 7 size encoding) except 512G, IR/IW/FC, A/D with HASup/HDSup',
  alloc: allocV1,
  walkForeign: walkForeignV1,
};

/** The v2 page-table format (io_pgtable AMD_IOMMU_V2): x86-64 long-mode entries with P/RW/US/A/D/PS/NX, 4 KiB, 2 MiB and 1 GiB pages. */
export const amdV2: PageTableFormat = {
  id: AMD_V2_FORMAT,
  describe: 'AMD-Vi v2 (guest, x86-64 long mode): 4 or 5 levels (48/57-bit), 4K/2M/1G pages, P/RW/US/A/D/PS/NX',
  alloc: allocV2,
  walkForeign: walkForeignV2,
};
