/**
 * The radix page-table engine: map, unmap, free, walk, A/D for any tree of 64-bit entries, so that a
 * format supplies only its geometry and its entry encoding (a `RadixCodec`).
 *
 * What the engine guarantees (the io-pgtable rules every format must keep, written once):
 * - map uses the largest leaf that alignment of IOVA and PA, the remaining length and the codec's leaf
 *   levels allow;
 * - map is all-or-nothing: EEXIST is found before anything is written or allocated (by a read-only
 *   pre-check, which a range inside one leaf table does not need), and a map that runs out of table memory (ENOMEM) at any level is rolled back, the
 *   tables it allocated released, so the table is exactly as it was;
 * - unmap removes a leaf above level 0 (a superpage) only when the range covers it whole; a range that
 *   covers part of one stops there and returns what it removed so far (the kernel's unmap_pages);
 * - every table keeps a count of its live entries; a table whose count drops to 0 is released at once
 *   (so no empty table is ever left behind), and `tablePages` is exact at every moment;
 * - free releases every table; a freed table maps nothing and walks fault.
 *
 * What a format may add beyond a plain tree (all optional, so that simple formats stay simple):
 * - replicated leaves: a page size between two levels' spans written as 2^k identical entries at the
 *   lower level (AMD v1 NextLevel 7, RISC-V Svnapot, Arm contiguous-style sizes), chosen like native
 *   leaves, removed only whole, dirty when any replica is;
 * - level skipping: a table entry that names the level of the table it points to (AMD v1 NextLevel),
 *   honoured by the walk (the skipped levels' IOVA bits must be zero); the engine never writes one;
 * - per-format accessed/dirty bits and a per-format invalid-leaf test (Arm's page type at level 3);
 * - hierarchical permissions: the walk hands the leaf's grant function the AND of the table entries'
 *   low words and the OR of their high words (x86 R/W, U/S and XD; Arm APTable/XNTable; AMD IR/IW).
 *
 * Levels are numbered from the leaf: level 0 holds the smallest pages, `levels - 1` is the root. Page
 * numbers are 4 KiB units whatever the granule (see pgtable.ts). A table at a level may span several
 * contiguous frames (16K/64K granules, concatenated or 16 KiB roots; see table-frames.ts).
 *
 * Hot-path rules: entries are read and written as two u32 halves straight out of PhysicalMemory's
 * chunk arrays; runs of entries inside one table are written in one pass without re-walking from the
 * root; no allocation per entry or per walk. Table indices come from multiplying by the exact
 * reciprocal of a power-of-two span, so page numbers above 2^31 stay exact.
 */
import { ERRNO } from '../uapi/errno.js';
import { SLAB_FRAME_BITS, type PhysicalMemory } from '../memory/physical.js';
import { ChunkCache, isPfn } from '../memory/chunk-cache.js';
import {
  WALK_ADDRESS_SIZE,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_RESERVED_BITS,
  WALK_TABLE_FAULT,
  type IoPageTable,
  type PageTableConfig,
  type PageTableMemory,
  type WalkResult,
} from './pgtable.js';
import { PERM_GRANT_ALL } from './permission.js';
import { traceRadix, type RadixTraceSpec, type WalkStep } from './walk-trace.js';
import { allocTableFrames, LiveCounts, MAX_TABLE_FRAMES, releaseTableFrames } from './table-frames.js';

const EINVAL = ERRNO.EINVAL;
const ENOMEM = ERRNO.ENOMEM;
const EEXIST = ERRNO.EEXIST;
const ERANGE = ERRNO.ERANGE;
/** The slab of a table without a slab walk: its length 0 turns the walk's fast path off. */
const NO_SLAB = new Uint32Array(0);
/** RadixPageTable.nextCounts when no leaf table is remembered. */
const NO_COUNTS = new Int32Array(0);
/** RadixPageTable.walkSlab64 without a slab (or of a slab not 8-byte aligned): nothing is remembered then. */
const NO_ENTRIES = new Float64Array(0);
/** RadixPageTable.nextProt (never a prot: those are >= 0) when no one-page map may skip the walk. */
const NEXT_NONE = -1;
/** RadixPageTable.nextProt once mapOne has remembered a leaf table, until map() sets the prot. */
const NEXT_READY = -2;

/** The shape of a tree, fixed when a table is allocated. */
export interface RadixGeometry {
  /** Levels in use (1..6). */
  readonly levels: number;
  /** Per level (index 0 = leaf level): log2 of the entries of a table at that level (9 for 512). */
  readonly entryBits: readonly number[];
  /** Per level: log2 of the 4 KiB pages one entry at that level covers (0, 9, 18 for 4K, 2M, 1G). */
  readonly spanShift: readonly number[];
  /** Bit `l` set when a leaf may be written at level `l`; bit 0 must be set. */
  readonly leafLevels: number;
  /**
   * Bit `l` set when a walk accepts a leaf at level `l` (default `leafLevels`): a format whose hardware
   * reads leaves the mapper never writes (AMD v1 takes NextLevel 0 at any level).
   */
  readonly walkLeafLevels?: number;
  /**
   * Per level: bit `k` (k >= 1) set when a leaf of 2^k entries' span may be written as 2^k replicated
   * entries at that level (needs `RadixCodec.replicaPfn` and `leafPages`). Absent: none.
   */
  readonly replicated?: readonly number[];
  /** Input size in bits: IOVA page numbers at or above 2^(ias-12) are refused (ERANGE) and fault. */
  readonly ias: number;
  /** Output size in bits: output page numbers at or above 2^(oas-12) are refused (ERANGE). */
  readonly oas: number;
}

/** `RadixCodec.leafBits` result: the request is valid and maps nothing (io-pgtable-arm without R or W). */
export const MAP_NOTHING = 1;
/** `RadixCodec.nextLevel` result: the entry is a leaf. */
export const NEXT_LEAF = -1;
/** `RadixCodec.nextLevel` result: the entry's next-level encoding is reserved (the walk faults). */
export const NEXT_RESERVED = -2;

/** Scratch for `RadixCodec.leafBits`: the attribute bits of a leaf, without address and type bits. */
export class LeafBits {
  /** Bits 31:0 of the leaf entry. */
  lo = 0;
  /** Bits 63:32 of the leaf entry. */
  hi = 0;
}

/**
 * The entry encoding of a format. Properties are plain numbers so that the engine's loops test bits
 * inline; the methods run once per map (leafBits) or once per walk level.
 */
export interface RadixCodec {
  /** Low-word bits any of which marks an entry present (x86 P, Arm valid, VT-d second stage R|W). */
  readonly presentMask: number;
  /**
   * A present entry above level 0 points to a table when `(lo & tableMask) === tableValue[level]`,
   * otherwise it is a leaf (x86/VT-d: PS clear; Arm: type 0b11; RISC-V: R, W and X clear).
   */
  readonly tableMask: number;
  /** Per level: the value of `lo & tableMask` that marks a table entry (see tableMask). */
  readonly tableValue: readonly number[];
  /** Per level: the non-address bits of a table entry (low and high word). */
  readonly tableLo: readonly number[];
  /** Per level: the non-address bits of a table entry's high word (bits 63:32). */
  readonly tableHi: readonly number[];
  /** Per level: the bits that make a leaf at that level (x86 PS, Arm page/block type), low word. */
  readonly leafTypeLo: readonly number[];
  /**
   * When set, a present entry that is not a table is a valid leaf only if `(lo & leafTypeMask) ===
   * leafTypeLo[level]` (or `replicaTypeLo[level]`); otherwise the walk finds it not present (Arm: a
   * block descriptor at level 3 is invalid).
   */
  readonly leafTypeMask?: number;
  /** Bit of the 64-bit entry where the output page number starts (12; RISC-V 10). */
  readonly addrShift: number;
  /** Address bits of the high word, e.g. 0xfffff for entry bits 51:32. */
  readonly addrHiMask: number;
  /**
   * Writes into `bits` the leaf attribute bits for IOMMU_* `prot` (permissions, memory type, preset
   * A/D), without address and type bits. Returns 0, or a negative errno for a `prot` the format
   * refuses (the map then fails with it and changes nothing), or MAP_NOTHING for a valid request
   * that maps nothing (the map then returns 0 after its range checks). A negative errno is returned
   * before the range checks (ERANGE), as VT-d checks the permission first. The answer must depend on
   * `prot` alone for the life of the table (options fixed when it was allocated): the engine reuses it
   * for later maps with the same `prot`.
   */
  leafBits(prot: number, bits: LeafBits): number;
  /**
   * Grant bits (permission.ts) of a leaf. `tablesLo` is the AND of the low words of the table entries
   * the walk went through (all ones when none), `tablesHi` the OR of their high words (0 when none):
   * formats whose tables restrict access hierarchically decide here, on the whole path.
   * `tablesHiAnd` is the AND of their high words (all ones when none: AMD v1 IR/IW live there).
   */
  leafGrant(lo: number, hi: number, level: number, tablesLo: number, tablesHi: number, tablesHiAnd: number): number;
  /**
   * Grant bits a table entry leaves to everything below it; the walk ANDs them (x86 R/W and U/S,
   * Arm APTable / XNTable, VT-d second-stage R/W/X). Absent: tables restrict nothing.
   */
  tableGrant?(lo: number, hi: number, level: number): number;
  /** True when a leaf at `level` with output page `pfn` has reserved bits set (the walk faults). */
  leafReserved?(lo: number, hi: number, level: number, pfn: number): boolean;
  /** The leaf is dirty (written since its dirty state was last cleared). Absent: no dirty tracking. */
  leafDirty?(lo: number, hi: number, level: number): boolean;
  /** Low word of a dirty leaf once its dirty state is cleared. */
  leafClean?(lo: number, hi: number): number;
  /** Low word of a leaf after a hardware access (accessed, and dirty for a write); `hwDirty` whether hardware updates D. */
  leafAccessed?(lo: number, hi: number, write: boolean, hwDirty: boolean, level: number): number;
  /** Low word of a table entry a walk went through with hardware A/D updates on. */
  tableAccessed?(lo: number, hi: number): number;
  /**
   * A custom address encoding (Arm FEAT_LPA keeps PA[51:48] in bits 15:12). When present, all three
   * are used instead of `addrShift` / `addrHiMask`.
   */
  encodeAddrLo?(pfn: number): number;
  /** High-word address bits for output page `pfn` (custom encoding; see encodeAddrLo). */
  encodeAddrHi?(pfn: number): number;
  /** The output page number an entry holds (custom encoding; see encodeAddrLo). */
  decodeAddr?(lo: number, hi: number): number;
  /**
   * Level skipping: for a present entry above level 0 that is not a plain table entry of this level
   * (`tableValue`), the level of the table it points to (below `level`), NEXT_LEAF, or NEXT_RESERVED.
   */
  nextLevel?(lo: number, hi: number, level: number): number;
  /**
   * Replicated leaves: the 4 KiB pages a leaf at `level` maps (the level's span for a native leaf), or
   * 0 when its size encoding is reserved (the walk faults).
   */
  leafPages?(lo: number, hi: number, level: number): number;
  /** The output page number to encode in each replica of a leaf of `pages` pages at `pfn` (AMD PAGE_SIZE_PTE). */
  replicaPfn?(pfn: number, pages: number): number;
  /** Per level: the type bits of a replicated leaf (AMD NextLevel 7), low word. */
  readonly replicaTypeLo?: readonly number[];
  /** Per level: the type bits of a replicated leaf in the high word (RISC-V Svnapot's N, bit 63). Absent: none. */
  readonly replicaTypeHi?: readonly number[];
}

/** Numbers derived once from a geometry, shared by a table and by walks of foreign tables. */
export class RadixLayout {
  /** Levels of the tree (RadixGeometry.levels). */
  readonly levels: number;
  /** Level of the root table, `levels - 1`. */
  readonly top: number;
  /** Bit `l` set when the mapper may write a leaf at level `l` (RadixGeometry.leafLevels). */
  readonly leafLevels: number;
  /** Bit `l` set when a walk accepts a leaf at level `l` (RadixGeometry.walkLeafLevels). */
  readonly walkLeafLevels: number;
  /** Per level: bit k set when a replicated leaf of 2^k entries may be written (0 when none). */
  readonly replicated: Int32Array;
  /** Any level has replicated leaves. */
  readonly hasReplicas: boolean;
  /** Per level: 4 KiB pages per entry, its reciprocal, entries - 1, frames per table. */
  readonly span: Float64Array;
  /** Per level: 1 / span, exact since spans are powers of two; indices are computed by multiplying with it. */
  readonly invSpan: Float64Array;
  /** Per level: entries per table minus one, the mask of a table index. */
  readonly entryMask: Int32Array;
  /** Per level: 4 KiB frames one table occupies (1 for up to 512 entries; more for 16K/64K granules and concatenated roots). */
  readonly tableFrames: Int32Array;
  /** Per level: log2 of the bytes a leaf there maps (WalkResult.pageShift). */
  readonly pageShift: Int32Array;
  /** First IOVA page number the tree cannot map: the smaller of 2^(ias-12) and the root's reach. */
  readonly limitPfn: number;
  /** First output page number a leaf cannot hold, 2^(oas-12). */
  readonly oaLimitPfn: number;
  /** 4 KiB pages of the smallest leaf: page numbers and lengths must be multiples of it. */
  readonly granulePages: number;

  /** Derives the numbers; a RangeError for a geometry outside the engine's limits (1..6 levels, no leaves at level 0, spans that do not chain). */
  constructor(
    /** The geometry it was derived from. */
    readonly geometry: RadixGeometry,
  ) {
    const { levels, entryBits, spanShift } = geometry;
    if (!Number.isInteger(levels) || levels < 1 || levels > 6) throw new RangeError(`radix table of ${levels} levels`);
    if ((geometry.leafLevels & 1) === 0) throw new RangeError('a radix table needs leaves at level 0');
    this.levels = levels;
    this.top = levels - 1;
    this.leafLevels = geometry.leafLevels;
    this.walkLeafLevels = geometry.walkLeafLevels ?? geometry.leafLevels;
    this.replicated = new Int32Array(levels);
    let replicas = false;
    for (let l = 0; l < levels; l++) {
      const r = geometry.replicated?.[l] ?? 0;
      // k = 0 is the native leaf; k must stay below the level's entry bits.
      if (!Number.isInteger(r) || r < 0 || (r & 1) !== 0 || r >= 2 ** entryBits[l]) throw new RangeError(`level ${l}: replicated sizes ${r}`);
      this.replicated[l] = r;
      if (r !== 0) replicas = true;
    }
    this.hasReplicas = replicas;
    this.span = new Float64Array(levels);
    this.invSpan = new Float64Array(levels);
    this.entryMask = new Int32Array(levels);
    this.tableFrames = new Int32Array(levels);
    this.pageShift = new Int32Array(levels);
    for (let l = 0; l < levels; l++) {
      const e = entryBits[l];
      if (!Number.isInteger(e) || e < 1 || e > 18) throw new RangeError(`level ${l}: 2^${e} entries`);
      if (l > 0 && spanShift[l] !== spanShift[l - 1] + entryBits[l - 1]) throw new RangeError(`level ${l}: span does not follow from the level below`);
      this.span[l] = 2 ** spanShift[l];
      this.pageShift[l] = 12 + spanShift[l];
      this.invSpan[l] = 1 / this.span[l];
      this.entryMask[l] = (1 << e) - 1;
      this.tableFrames[l] = Math.max(1, (1 << e) / 512);
      if (this.tableFrames[l] > MAX_TABLE_FRAMES) throw new RangeError(`level ${l}: a table of ${this.tableFrames[l]} frames`);
    }
    this.granulePages = this.span[0];
    this.limitPfn = Math.min(2 ** Math.max(0, geometry.ias - 12), 2 ** (spanShift[this.top] + entryBits[this.top]));
    this.oaLimitPfn = 2 ** Math.max(0, geometry.oas - 12);
  }

  /** Index of the entry for `pfn` in a table at `level`. */
  index(pfn: number, level: number): number {
    return (pfn * this.invSpan[level]) & this.entryMask[level];
  }
}

/** True when an entry in words [w, end) (step 2) has a bit of `pm` set. */
function anyPresent(c: Uint32Array, w: number, end: number, pm: number): boolean {
  for (let i = w; i < end; i += 2) if ((c[i] & pm) !== 0) return true;
  return false;
}

/** The entries in words [w, end) (step 2) with a bit of `pm` set. */
function countPresent(c: Uint32Array, w: number, end: number, pm: number): number {
  let n = 0;
  for (let i = w; i < end; i += 2) if ((c[i] & pm) !== 0) n++;
  return n;
}

/**
 * Writes entries [w, end) (word indices, step 2): low words `lo`, `lo + step`, ... (int32 adds; the
 * caller cuts the run before the address field would carry out of the low word), high words `hi`.
 */
function writeRun(c: Uint32Array, w: number, end: number, lo: number, hi: number, step: number): void {
  for (; w < end; w += 2) {
    c[w] = lo;
    c[w + 1] = hi;
    lo = (lo + step) | 0;
  }
}

function walkFault(out: WalkResult, reason: number, level: number): false {
  out.fault = reason;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

/** Whether `lo` is a table entry of `level` by its type bits (level skipping aside). */
function isTableType(codec: RadixCodec, lo: number, level: number): boolean {
  return level > 0 && (lo & codec.tableMask) === codec.tableValue[level];
}

/** A present non-table entry at `level` has the type bits of a leaf there (always, without leafTypeMask). */
function leafTypeOk(codec: RadixCodec, lo: number, level: number): boolean {
  const m = codec.leafTypeMask;
  if (m === undefined) return true;
  const t = lo & m;
  return t === codec.leafTypeLo[level] || (codec.replicaTypeLo !== undefined && t === codec.replicaTypeLo[level]);
}

/** The trace of a radix table (walk-trace.ts): the same entry selection and classification as radixWalk. */
export function radixTraceSpec(codec: RadixCodec, layout: RadixLayout): RadixTraceSpec {
  const shift = codec.addrShift;
  const hiScale = 2 ** (32 - shift);
  return {
    top: layout.top,
    index: (iovaPfn, level) => Math.floor(iovaPfn / layout.span[level]) % (layout.entryMask[level] + 1),
    classify(entry, level) {
      const lo = Number(entry & 0xffffffffn) | 0;
      const hi = Number(entry >> 32n) | 0;
      if ((lo & codec.presentMask) === 0) return { kind: 'invalid', pfn: 0 };
      const pfn = codec.decodeAddr !== undefined ? codec.decodeAddr(lo, hi) : (hi & codec.addrHiMask) * hiScale + (lo >>> shift);
      if (isTableType(codec, lo, level)) return { kind: 'table', pfn };
      if (level > 0 && codec.nextLevel !== undefined) {
        const next = codec.nextLevel(lo, hi, level);
        if (next === NEXT_RESERVED) return { kind: 'invalid', pfn: 0 };
        if (next >= 0) return { kind: 'table', pfn, nextLevel: next };
      }
      if (!leafTypeOk(codec, lo, level)) return { kind: 'invalid', pfn: 0 };
      const allowed =
        ((layout.walkLeafLevels >> level) & 1) === 1 &&
        !(codec.leafReserved?.(lo, hi, level, pfn) ?? false) &&
        (codec.leafPages === undefined || codec.leafPages(lo, hi, level) !== 0);
      return allowed ? { kind: 'leaf', pfn } : { kind: 'invalid', pfn: 0 };
    },
  };
}

/**
 * Walks a radix table: the page table's own walk (tableToPhys null) and a foreign (guest) table's.
 * The leaf's grant is decided by the codec on the whole path (leafGrant gets the AND of the table
 * entries' low words and the OR of their high words; a codec with tableGrant has those ANDed in too).
 * A leaf at a level the geometry does not allow, or one the codec finds reserved bits in, is
 * WALK_RESERVED_BITS; an entry whose leaf type is invalid at its level is WALK_NOT_PRESENT.
 */
export function radixWalk(
  codec: RadixCodec,
  layout: RadixLayout,
  chunks: ChunkCache,
  rootPfn: number,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: ((pfn: number) => number) | null,
): boolean {
  if (!(iovaPfn >= 0 && iovaPfn < layout.limitPfn)) return walkFault(out, WALK_ADDRESS_SIZE, layout.top);
  const pm = codec.presentMask;
  const tm = codec.tableMask;
  const custom = codec.decodeAddr !== undefined;
  const shift = codec.addrShift;
  const hiScale = 2 ** (32 - shift);
  const hiMask = codec.addrHiMask;
  let table = rootPfn;
  let grant = PERM_GRANT_ALL;
  let andLo = -1;
  let orHi = 0;
  let andHi = -1;
  let level = layout.top;
  for (;;) {
    const idx = (iovaPfn * layout.invSpan[level]) & layout.entryMask[level];
    // A multi-frame table: go to the frame holding the entry (a guest's frames are translated one by one).
    let frame = table + (idx >>> 9);
    if (tableToPhys !== null) {
      const h = tableToPhys(frame);
      if (h < 0) {
        out.tablePfn = frame;
        return walkFault(out, WALK_TABLE_FAULT, level);
      }
      frame = h;
    }
    const c = chunks.get(frame);
    if (c === undefined) return walkFault(out, WALK_NOT_PRESENT, level);
    const w = ((frame & 511) << 10) + ((idx & 511) << 1);
    const lo = c[w];
    if ((lo & pm) === 0) return walkFault(out, WALK_NOT_PRESENT, level);
    const hi = c[w + 1];
    const pfn = custom ? codec.decodeAddr!(lo, hi) : (hi & hiMask) * hiScale + (lo >>> shift);
    if (level > 0) {
      let next = (lo & tm) === codec.tableValue[level] ? level - 1 : NEXT_LEAF;
      if (next === NEXT_LEAF && codec.nextLevel !== undefined) {
        next = codec.nextLevel(lo, hi, level);
        if (next === NEXT_RESERVED) return walkFault(out, WALK_RESERVED_BITS, level);
        // The levels a table entry skips decode no IOVA bits: they must be zero (a leaf skips nothing).
        if (next >= 0) for (let s = next + 1; s < level; s++) if (((iovaPfn * layout.invSpan[s]) & layout.entryMask[s]) !== 0) return walkFault(out, WALK_NOT_PRESENT, s);
      }
      if (next >= 0) {
        if (codec.tableGrant !== undefined) grant &= codec.tableGrant(lo, hi, level);
        andLo &= lo;
        orHi |= hi;
        andHi &= hi;
        table = pfn;
        level = next;
        continue;
      }
    }
    return radixLeaf(codec, layout, iovaPfn, out, lo, hi, level, pfn, grant, andLo, orHi, andHi);
  }
}

/**
 * The end of a walk at a present entry that is not a table (radixWalk and the slab walk of
 * RadixPageTable share it, so that both decide a leaf alike): its type, level and reserved bits, its
 * size, and the grant the codec gives on the whole path (`grant`, `andLo`, `orHi`, `andHi` as in
 * radixWalk).
 */
function radixLeaf(
  codec: RadixCodec,
  layout: RadixLayout,
  iovaPfn: number,
  out: WalkResult,
  lo: number,
  hi: number,
  level: number,
  pfn: number,
  grant: number,
  andLo: number,
  orHi: number,
  andHi: number,
): boolean {
  if (!leafTypeOk(codec, lo, level)) return walkFault(out, WALK_NOT_PRESENT, level);
  if (((layout.walkLeafLevels >> level) & 1) === 0) return walkFault(out, WALK_RESERVED_BITS, level);
  if (codec.leafReserved !== undefined && codec.leafReserved(lo, hi, level, pfn)) return walkFault(out, WALK_RESERVED_BITS, level);
  let span = layout.span[level];
  let pageShift = layout.pageShift[level];
  if (codec.leafPages !== undefined) {
    const pages = codec.leafPages(lo, hi, level);
    if (pages === 0) return walkFault(out, WALK_RESERVED_BITS, level);
    if (pages !== span) {
      span = pages;
      pageShift = 12 + Math.round(Math.log2(pages));
    }
  }
  out.pfn = span === 1 ? pfn : pfn - (pfn % span) + (iovaPfn % span);
  out.perm = grant & codec.leafGrant(lo, hi, level, andLo, orHi, andHi);
  out.pageShift = pageShift;
  out.level = level;
  out.dirty = codec.leafDirty !== undefined && codec.leafDirty(lo, hi, level);
  out.fault = WALK_OK;
  return true;
}

/**
 * A live radix table. A format allocates one with its codec and geometry; it may extend the class to
 * add a faster walk for its common case (the engine's walk stays the reference) or format state.
 */
export class RadixPageTable implements IoPageTable {
  /** Physical memory holding the tables (memory.mem). */
  protected readonly mem: PhysicalMemory;
  /** Direct access to `mem`'s chunk arrays, for reading and writing entries as u32 halves. */
  protected readonly chunks: ChunkCache;
  /** The root's level (levels - 1); growTop raises it. */
  protected top: number;
  private curLayout: RadixLayout;
  private curRoot: number;
  /** First IOVA page number out of reach (RadixLayout.limitPfn of the current layout). */
  protected limitPfn: number;
  /** Set by free(): every later map fails with EINVAL and every walk faults. */
  protected freed = false;
  /** Hardware A/D updates are on (see setDirtyTracking). */
  protected hwDirty: boolean;

  private readonly oaLimitPfn: number;
  private readonly granule: number;
  private readonly pm: number;
  private readonly tm: number;
  private readonly custom: boolean;
  private readonly shift: number;
  private readonly hiScale: number;
  private readonly hiMask: number;
  private readonly bits = new LeafBits();
  /** Live entries of every table (the root included), by table page number. */
  private readonly live = new LiveCounts();
  private frames: number;
  /** Pages the current map has written, so that a failure rolls back exactly them. */
  private done = 0;
  /** Set by unmapLevel when it meets a leaf the range only partly covers (the kernel stops there). */
  private stop = false;
  /** The current map skipped its pre-walk (a range inside one leaf table): mapLevel checks the leaf run. */
  private scanLeaves = false;
  /**
   * The slab walk (see walk): the slab of table memory holding the root (PhysicalMemory.slabWords), or
   * NO_SLAB when the walk has no fast path (a custom address encoding, an address field below bit 10,
   * a root outside the slabs, a freed table). Every field below is a small integer.
   */
  private walkSlab: Uint32Array = NO_SLAB;
  /**
   * walkSlab as 64-bit entries (the same memory), read as doubles: what nextPathHolds compares, one load
   * and one compare per entry. Two doubles are equal exactly when their bits are, but for +0 and -0 (two
   * patterns, equal) and NaN (many patterns, equal to nothing): noteLeaf remembers no path with such an
   * entry on it.
   */
  private walkSlab64: Float64Array = NO_ENTRIES;
  /** Word offset of the root table in walkSlab. */
  private walkRoot = 0;
  /** A table entry points into walkSlab when `lo >>> walkLoShift === walkSlabLo` and `(hi & hiMask) === walkSlabHi`. */
  private walkLoShift = 0;
  private walkSlabLo = 0;
  private walkSlabHi = 0;
  /** The word offset in the slab of the table a table entry points to: `(lo >>> walkWordShift) & 0x7ffc00`. */
  private walkWordShift = 0;
  /** The codec has nextLevel (level skipping): a non-table entry above level 0 goes to radixWalk. */
  private walkSkips = false;
  /** The codec has tableGrant. */
  private walkTableGrant = false;
  /** codec.tableValue as int32s. */
  private readonly tableValues: Int32Array;
  /** First frame of walkSlab: a table at word offset w of the slab is frame `walkSlabBase + (w >>> 10)`. */
  private walkSlabBase = 0;
  /** Set by tests (setRadixSlabPaths in internal.ts): every walk, map and unmap takes the general path. */
  private generalOnly = false;
  /**
   * Leaf tables an unmap released whole are handed back to table memory at the end of the unmap, runs
   * of consecutive frames together (PageTableMemory.releaseTableRun): the memory then zeroes a run with
   * one fill. Set when the memory takes runs and a leaf table is one frame.
   */
  private readonly leafRuns: boolean;
  /** The pending run of released leaf tables: its first and last frame (consecutive, either direction), its length (0: none). */
  private runFirst = 0;
  private runLast = 0;
  private runCount = 0;
  /**
   * The leaf table the last one-entry map wrote into (see mapNext): IOVA pages [nextBase, nextBase +
   * nextSpan) are its entries, at slab word nextWord of walkSlab; its live count is nextCounts[nextCount];
   * nextProt is the prot of that map and nextLo / nextHi the leaf bits it gave (type bits included).
   * nextSpan 0: none. nextPathAt / nextPathEntry hold, for each level from 1 to the top, the entry the
   * walk to it went through and that entry's 64 bits: while they read the same, a walk for any page
   * of the table goes the same way (those entries decide it, and the table's pages share their indices
   * there), whatever else wrote to table memory. dropTable, releaseLater and free forget it all the same.
   */
  private nextBase = 0;
  private nextSpan = 0;
  private nextWord = 0;
  private nextCounts: Int32Array = NO_COUNTS;
  private nextCount = 0;
  private nextProt = NEXT_NONE;
  private nextLo = 0;
  private nextHi = 0;
  /** Per level from 1: the entry's index in walkSlab64 and what it read there (see nextBase). */
  private readonly nextPathAt = new Int32Array(5);
  private readonly nextPathEntry = new Float64Array(5);
  /** The tables a one-entry map allocates, deepest last, before any is linked. */
  private readonly fresh = new Float64Array(6);
  /** The tables (page numbers) and parent entries (slab word offsets) a one-entry unmap went through, by level. */
  private readonly pathTable = new Float64Array(6);
  private readonly pathWord = new Int32Array(6);

  /** A table over the root already allocated at `rootPfn` (see rootFor). */
  constructor(
    /** The format id it reports (IoPageTable.format), e.g. 'vtd-ss'. */
    readonly format: string,
    /** The configuration the table was allocated with. */
    readonly cfg: Readonly<PageTableConfig>,
    /** The format's entry encoding. */
    readonly codec: RadixCodec,
    geometry: RadixGeometry | RadixLayout,
    /** Where tables come from and go back to, with their accounting. */
    protected readonly memory: PageTableMemory,
    rootPfn: number,
  ) {
    const layout = geometry instanceof RadixLayout ? geometry : new RadixLayout(geometry);
    this.curLayout = layout;
    this.curRoot = rootPfn;
    this.top = layout.top;
    this.mem = memory.mem;
    this.chunks = new ChunkCache(memory.mem);
    this.limitPfn = layout.limitPfn;
    this.oaLimitPfn = layout.oaLimitPfn;
    this.granule = layout.granulePages;
    this.pm = codec.presentMask;
    this.tm = codec.tableMask;
    this.custom = codec.decodeAddr !== undefined;
    this.shift = codec.addrShift;
    this.hiScale = 2 ** (32 - codec.addrShift);
    this.hiMask = codec.addrHiMask;
    this.frames = layout.tableFrames[layout.top];
    this.live.add(rootPfn);
    this.hwDirty = cfg.dirtyTracking === true;
    this.tableValues = Int32Array.from(codec.tableValue);
    this.leafRuns = memory.releaseTableRun !== undefined && layout.tableFrames[0] === 1;
    this.walkSkips = codec.nextLevel !== undefined;
    this.walkTableGrant = codec.tableGrant !== undefined;
    this.bindWalk();
  }

  /**
   * Sets up the slab walk for the current root: the root's chunk is backed now (the first map would
   * back it), so that its slab exists and the walk's loads stay inside it.
   */
  private bindWalk(): void {
    this.walkSlab = NO_SLAB;
    this.walkSlab64 = NO_ENTRIES;
    this.nextSpan = 0;
    const shift = this.shift;
    // The walk takes the next table's word offset from the low word alone, with the slab geometry as a
    // literal (0x7ffc00 is (2^13 - 1) << 10): bits 12 + shift .. of the entry must be the frame's.
    if (this.custom || shift < 10 || shift > 12 || SLAB_FRAME_BITS !== 13 || this.freed || this.generalOnly) return;
    const root = this.curRoot;
    const si = Math.floor(root / 2 ** SLAB_FRAME_BITS);
    this.mem.chunkWords(root);
    const slab = this.mem.slabWords(si);
    if (slab === undefined) return;
    const loBits = 32 - shift - SLAB_FRAME_BITS;
    // `| 0`: the fields must hold small integers, not doubles (a double field makes the walk's index
    // arithmetic floating point).
    this.walkRoot = ((root % 2 ** SLAB_FRAME_BITS) * 1024) | 0;
    this.walkLoShift = (shift + SLAB_FRAME_BITS) | 0;
    this.walkSlabLo = si & ((1 << loBits) - 1);
    this.walkSlabHi = si >>> loBits;
    this.walkWordShift = (shift - 10) | 0;
    this.walkSlabBase = si * 2 ** SLAB_FRAME_BITS;
    this.walkSlab = slab;
    if ((slab.byteOffset & 7) === 0) this.walkSlab64 = new Float64Array(slab.buffer, slab.byteOffset, slab.length >> 1);
  }

  /**
   * Allocates the root (`rootFrames` contiguous frames, aligned) and the table; a negative errno
   * (-ENOMEM) when the root cannot be allocated.
   */
  static rootFor(memory: PageTableMemory, layout: RadixLayout): number {
    const root = allocTableFrames(memory, layout.tableFrames[layout.top]);
    return root < 0 ? -ENOMEM : root;
  }

  /** The root table's page number (a new one after growTop). */
  get rootPfn(): number {
    return this.curRoot;
  }

  get levels(): number {
    return this.curLayout.levels;
  }

  /** The layout of the current tree (a deeper one after growTop). */
  get layout(): RadixLayout {

    return this.curLayout;
  }

  get tablePages(): number {
    return this.frames;
  }

  /**
   * Adds levels above the root, as a format with a dynamic top does when a mapping needs a higher IOVA
   * (generic_pt iommu_pt.h increase_top): each new top table's entry 0 points to the table below it,
   * so every translation keeps its IOVA. `deeper` is the geometry with the new level count, equal to
   * the current one below the old top. All new tables are allocated first: 0, or -ENOMEM with the
   * table unchanged; -EINVAL when `deeper` is not deeper or the table was freed.
   */
  protected growTop(deeper: RadixLayout): number {
    const from = this.top;
    if (this.freed || deeper.levels <= this.levels) return -EINVAL;
    const tables: number[] = [];
    for (let level = from + 1; level <= deeper.top; level++) {
      const t = allocTableFrames(this.memory, deeper.tableFrames[level]);
      if (t < 0) {
        tables.forEach((pfn, i) => releaseTableFrames(this.memory, pfn, deeper.tableFrames[from + 1 + i]));
        return -ENOMEM;
      }
      tables.push(t);
    }
    let below = this.curRoot;
    for (let level = from + 1; level <= deeper.top; level++) {
      const t = tables[level - from - 1];
      // A fresh frame's chunk may not be backed yet (nothing wrote to it): back it, as mapLevel does.
      const c = this.mem.chunkWords(t);
      const w = (t & 511) << 10;
      c[w] = this.encLo(below) | this.codec.tableLo[level];
      c[w + 1] = this.encHi(below) | this.codec.tableHi[level];
      this.live.add(t);
      this.addLive(t, 1);
      this.frames += deeper.tableFrames[level];
      below = t;
    }
    this.curLayout = deeper;
    this.curRoot = below;
    this.top = deeper.top;
    this.limitPfn = deeper.limitPfn;
    this.bindWalk();
    return 0;
  }

  /**
   * Turns the slab paths (the walk's, and the map and unmap of one entry) off or on again, so that a
   * test can compare them with the general paths on the same operations.
   * @internal
   */
  setSlabPaths(on: boolean): void {
    this.generalOnly = !on;
    this.bindWalk();
  }

  /** Live entries of the table at `tablePfn`, or -1 when it is not one of this table's (for tests and checks). */
  liveEntries(tablePfn: number): number {
    return this.live.get(tablePfn);
  }

  /** Number of tables (root included) currently held. */
  get tableCount(): number {
    return this.live.size;
  }

  // ---------------------------------------------------------------- entries

  private decode(lo: number, hi: number): number {
    return this.custom ? this.codec.decodeAddr!(lo, hi) : (hi & this.hiMask) * this.hiScale + (lo >>> this.shift);
  }

  private encLo(pfn: number): number {
    return this.custom ? this.codec.encodeAddrLo!(pfn) : pfn << this.shift;
  }

  private encHi(pfn: number): number {
    return this.custom ? this.codec.encodeAddrHi!(pfn) : (pfn / this.hiScale) & this.hiMask;
  }

  private isTable(lo: number, level: number): boolean {
    return level > 0 && (lo & this.tm) === this.codec.tableValue[level];
  }

  /** The largest k of `replicas` whose 2^k-entry leaf starts at `iova` and `pa` and fits in `n`, or 0. */
  private replicaFor(replicas: number, span: number, iova: number, pa: number, n: number): number {
    for (let k = 31 - Math.clz32(replicas); k > 0; k--) {
      if (((replicas >> k) & 1) === 0) continue;
      const pages = span * 2 ** k;
      if (n >= pages && iova % pages === 0 && pa % pages === 0) return k;
    }
    return 0;
  }

  /**
   * The level of the table a present entry at `level` points to, or -1 for a leaf (a reserved
   * level-skipping encoding counts as a leaf here: the engine never writes one).
   */
  private childLevel(lo: number, hi: number, level: number): number {
    if (level === 0) return -1;
    if ((lo & this.tm) === this.codec.tableValue[level]) return level - 1;
    if (this.codec.nextLevel === undefined) return -1;
    const next = this.codec.nextLevel(lo, hi, level);
    return next >= 0 && next < level ? next : -1;
  }

  /** 4 KiB pages a present leaf at `level` maps. */
  private leafPagesOf(lo: number, hi: number, level: number): number {
    const span = this.layout.span[level];
    if (this.codec.leafPages === undefined) return span;
    const p = this.codec.leafPages(lo, hi, level);
    return p > span ? p : span;
  }

  private wordOf(table: number, pfn: number, level: number): number {
    return ((table & 511) << 10) + (((pfn * this.layout.invSpan[level]) & this.layout.entryMask[level]) << 1);
  }

  private addLive(table: number, delta: number): number {
    return this.live.change(table, delta);
  }

  // ---------------------------------------------------------------- map

  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    // One page into the leaf table of the previous one-entry maps, with their prot: mapWalk's checks
    // pass for any such page (IOVA range: the table's bounds, clipped to limitPfn; leafBits: the prot).
    const d = iovaPfn - this.nextBase;
    if (npages === 1 && prot === this.nextProt && d >= 0 && d < this.nextSpan && (d | 0) === d && paPfn >= 0 && paPfn < this.oaLimitPfn && Math.floor(paPfn) === paPfn && this.nextPathHolds()) {
      return this.mapNext(d, paPfn);
    }
    return this.mapWalk(iovaPfn, paPfn, npages, prot);
  }

  /** map() from the root: the checks, then one entry over the slab (mapOne) or the general path. */
  private mapWalk(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    if (this.freed || !isPfn(iovaPfn) || !isPfn(paPfn) || !Number.isInteger(npages) || npages <= 0) return -EINVAL;
    const g = this.granule;
    if (g !== 1 && (iovaPfn % g !== 0 || paPfn % g !== 0 || npages % g !== 0)) return -EINVAL;
    const bits = this.bits;
    const r0 = this.codec.leafBits(prot, bits);
    if (r0 < 0) return r0;
    if (iovaPfn + npages > this.limitPfn || paPfn + npages > this.oaLimitPfn) return -ERANGE;
    if (r0 === MAP_NOTHING) return 0;
    if (r0 !== 0) return -EINVAL;
    if (npages === g && this.walkSlab.length !== 0 && this.top > 0) {
      const r1 = this.mapOne(iovaPfn, paPfn, bits.lo, bits.hi);
      if (r1 === 0 && this.nextProt === NEXT_READY) this.nextProt = prot;
      if (r1 <= 0) return r1;
    }
    // A range inside one leaf table needs no pre-walk: on its single path from the root a missing table
    // means nothing is mapped below it (allocating it cannot meet EEXIST), a superpage is refused before
    // anything is allocated under it, and the leaf run is checked whole before it is written.
    const leafSpan = this.layout.span[1];
    const oneLeafTable = this.top > 0 && this.layout.replicated[0] === 0 && Math.floor(iovaPfn / leafSpan) === Math.floor((iovaPfn + npages - 1) / leafSpan);
    if (!oneLeafTable && this.anyLeaf(this.rootPfn, this.top, iovaPfn, npages)) return -EEXIST;
    this.scanLeaves = oneLeafTable;
    this.done = 0;
    const r = this.mapLevel(this.rootPfn, this.top, iovaPfn, paPfn, npages, bits.lo, bits.hi);
    if (r !== 0) {
      // ENOMEM: [iova, iova + done) is ours; tables allocated on the failing path were released on the
      // way out of mapLevel, and the unmap releases every table that becomes empty.
      if (this.done > 0) this.unmapLevel(this.rootPfn, this.top, iovaPfn, this.done);
      this.flushReleases();
      this.stop = false;
      this.tablesChanged();
    }
    return r;
  }

  /**
   * map() of one leaf entry at level 0 (`npages` is the granule) over the slab of the root, as the
   * general path would do it: the path from the root read in the slab, EEXIST for a present entry that
   * is not a table above level 0 or a present leaf, the missing tables below the first absent entry
   * allocated top down before any is linked (an allocation that fails gives back the ones before it:
   * ENOMEM with the table unchanged), then linked and the leaf written. Returns 0 or a negative errno,
   * or 1 when a table on the path lies outside the root's slab (nothing done: the general path maps).
   */
  private mapOne(iova: number, pa: number, lo: number, hi: number): number {
    const s = this.walkSlab;
    // Everything the loop reads besides the slab, in locals: the same loads on every level otherwise.
    const inv = this.curLayout.invSpan;
    const mask = this.curLayout.entryMask;
    const pm = this.pm;
    const loShift = this.walkLoShift;
    const slabLo = this.walkSlabLo;
    const slabHi = this.walkSlabHi;
    const hiMask = this.hiMask;
    let w = this.walkRoot;
    let level = this.top;
    for (;;) {
      const e = w + (((iova * inv[level]) & mask[level]) << 1);
      const elo = s[e];
      if (level === 0) {
        if ((elo & pm) !== 0) return this.mapFailed(-EEXIST);
        s[e] = (pa << this.shift) | lo | this.codec.leafTypeLo[0];
        s[e + 1] = ((pa / this.hiScale) & hiMask) | hi;
        this.live.change(this.walkSlabBase + (w >>> 10), 1);
        this.noteLeaf(iova, w, lo, hi);
        return 0;
      }
      // The table at slab word w is frame walkSlabBase + (w >>> 10) (the root's too).
      if ((elo & pm) === 0) return this.mapOneFresh(s, e, this.walkSlabBase + (w >>> 10), level, iova, pa, lo, hi);
      if ((elo & this.tm) !== this.tableValues[level]) return this.mapFailed(-EEXIST);
      if (elo >>> loShift !== slabLo || (s[e + 1] & hiMask) !== slabHi) return 1;
      w = (elo >>> this.walkWordShift) & 0x7ffc00;
      level--;
    }
  }

  /**
   * Whether the entries above the leaf table map() remembers still read as when it was reached (see
   * nextBase), level by level from 1 up to the top.
   */
  private nextPathHolds(): boolean {
    const s = this.walkSlab64;
    const at = this.nextPathAt;
    const was = this.nextPathEntry;
    const top = this.top;
    // Unrolled: the loads at constant offsets, no loop to run; each entry's two words as one double.
    if (s[at[0]] !== was[0]) return false;
    if (top === 1) return true;
    if (s[at[1]] !== was[1]) return false;
    if (top === 2) return true;
    if (s[at[2]] !== was[2]) return false;
    if (top === 3) return true;
    if (s[at[3]] !== was[3]) return false;
    return top === 4 || s[at[4]] === was[4];
  }

  /**
   * mapOne of page `pa` at entry `d` of the leaf table map() remembers (nextWord), with the leaf bits
   * of nextProt: what mapOne does at level 0 once its walk has reached that table.
   */
  private mapNext(d: number, pa: number): number {
    const s = this.walkSlab;
    const e = this.nextWord + (d << 1);
    if ((s[e] & this.pm) !== 0) return this.mapFailed(-EEXIST);
    s[e] = (pa << this.shift) | this.nextLo;
    s[e + 1] = ((pa / this.hiScale) & this.hiMask) | this.nextHi;
    this.nextCounts[this.nextCount]++;
    return 0;
  }

  /**
   * mapOne wrote page `iova` into the leaf table at slab word `w` with leaf bits `lo` / `hi`. The first
   * map into a table only notes it (a map elsewhere next, as random maps do, costs nothing more); the
   * second remembers it for the maps after it (nextProt NEXT_READY, which map() turns into the prot):
   * the entries on the path to it, read again from the root. Only for a granule of one page, where an
   * entry is one page.
   */
  private noteLeaf(iova: number, w: number, lo: number, hi: number): void {
    const base = iova - (iova & this.curLayout.entryMask[0]);
    this.nextProt = NEXT_NONE;
    if (this.granule !== 1) return;
    if (base !== this.nextBase || this.nextSpan === 0) {
      this.nextBase = base;
      // Only the table's pages the tree can map (a limit inside a leaf table's span is ERANGE past it).
      this.nextSpan = Math.min(this.curLayout.entryMask[0] + 1, this.limitPfn - base);
      return;
    }
    const s = this.walkSlab;
    const s64 = this.walkSlab64;
    // A slab not 8-byte aligned has no 64-bit view: nothing is remembered.
    if (s64.length === 0) return;
    const inv = this.curLayout.invSpan;
    const mask = this.curLayout.entryMask;
    const at = this.nextPathAt;
    const was = this.nextPathEntry;
    let t = this.walkRoot;
    for (let l = this.top; l >= 1; l--) {
      // The walk mapOne just took: every entry on it is a table entry into the slab (an even word).
      const e = t + (((iova * inv[l]) & mask[l]) << 1);
      const v = s64[e >> 1];
      if (v === 0 || v !== v) return;
      at[l - 1] = e >> 1;
      was[l - 1] = v;
      t = (s[e] >>> this.walkWordShift) & 0x7ffc00;
    }
    const table = this.walkSlabBase + (w >>> 10);
    this.nextWord = w;
    this.nextCounts = this.live.countsOf(table);
    this.nextCount = table & 511;
    this.nextLo = lo | this.codec.leafTypeLo[0];
    this.nextHi = hi;
    this.nextProt = NEXT_READY;
  }

  /** A map failed: the general path tells the subclass about tables (mapLevel's failures; its pre-walk's EEXIST does not). */
  private mapFailed(r: number): number {
    if (r === -ENOMEM || this.layout.replicated[0] === 0) this.tablesChanged();
    return r;
  }

  /** mapOne below the absent entry at word `e` of slab `s`, in `table` at `level`: the tables of levels level-1..0, then the leaf. */
  private mapOneFresh(s: Uint32Array, e: number, table: number, level: number, iova: number, pa: number, lo: number, hi: number): number {
    const layout = this.layout;
    const fresh = this.fresh;
    for (let l = level - 1; l >= 0; l--) {
      const t = allocTableFrames(this.memory, layout.tableFrames[l]);
      if (t < 0) {
        for (let k = level - 1; k > l; k--) releaseTableFrames(this.memory, fresh[k], layout.tableFrames[k]);
        return this.mapFailed(-ENOMEM);
      }
      fresh[l] = t;
    }
    const codec = this.codec;
    let child = fresh[level - 1];
    s[e] = this.encLo(child) | codec.tableLo[level];
    s[e + 1] = this.encHi(child) | codec.tableHi[level];
    this.addLive(table, 1);
    for (let l = level - 1; l >= 0; l--) {
      const t = fresh[l];
      this.frames += layout.tableFrames[l];
      this.live.add(t);
      // A fresh frame's chunk may not be backed yet: chunkWords backs it, as mapLevel does.
      const c = this.mem.chunkWords(t);
      const w = this.wordOf(t, iova, l);
      if (l > 0) {
        child = fresh[l - 1];
        c[w] = this.encLo(child) | codec.tableLo[l];
        c[w + 1] = this.encHi(child) | codec.tableHi[l];
      } else {
        c[w] = (pa << this.shift) | lo | codec.leafTypeLo[0];
        c[w + 1] = ((pa / this.hiScale) & this.hiMask) | hi;
      }
      this.addLive(t, 1);
    }
    return 0;
  }

  /** The pre-check: is anything mapped in [iova, iova + n)? Reads only. */
  private anyLeaf(table: number, level: number, iova: number, n: number): boolean {
    const c = this.chunks.get(table);
    if (c === undefined) return false;
    const pm = this.pm;
    let w = this.wordOf(table, iova, level);
    if (level === 0) {
      const end = w + (n / this.granule) * 2;
      for (; w < end; w += 2) if ((c[w] & pm) !== 0) return true;
      return false;
    }
    const span = this.layout.span[level];
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const lo = c[w];
      if ((lo & pm) !== 0) {
        if (!this.isTable(lo, level)) return true;
        if (this.anyLeaf(this.decode(lo, c[w + 1]), level - 1, iova, take)) return true;
      }
      iova += take;
      n -= take;
      w += 2;
    }
    return false;
  }

  /**
   * Maps [iova, iova + n) at level 0 (no replicated leaves) inside one leaf table: a run of entries
   * written from a template. The low word is the template plus `g << shift` per entry (int32 adds),
   * the high word is constant until the output address carries into it, so the run is cut there.
   * Its own method so that it stays small and monomorphic: mapLevel, which handles every upper
   * level, is generic and is optimized late.
   */
  private mapLeaves(table: number, iova: number, pa: number, n: number, lo: number, hi: number): number {
    const c = this.mem.chunkWords(table);
    const w = this.wordOf(table, iova, 0);
    const g = this.granule;
    const count = n / g;
    const end = w + count * 2;
    // Nothing is written unless the whole run is free, when map() skipped its pre-walk.
    if (this.scanLeaves && anyPresent(c, w, end, this.pm)) return -EEXIST;
    const l0 = lo | this.codec.leafTypeLo[0];
    if (!this.custom) {
      const shift = this.shift;
      const scale = this.hiScale;
      const step = g << shift;
      let p = pa;
      let from = w;
      while (from < end) {
        // Entries before the output page number reaches the next multiple of 2^(32 - shift).
        const room = (scale - (p % scale)) / g;
        const to = end - from <= 2 * room ? end : from + 2 * room;
        writeRun(c, from, to, (p << shift) | l0, ((p / scale) & this.hiMask) | hi, step);
        p += ((to - from) / 2) * g;
        from = to;
      }
    } else {
      const codec = this.codec;
      let p = pa;
      for (let i = w; i < end; i += 2) {
        c[i] = codec.encodeAddrLo!(p) | l0;
        c[i + 1] = codec.encodeAddrHi!(p) | hi;
        p += g;
      }
    }
    this.addLive(table, count);
    this.done += n;
    return 0;
  }

  /**
   * Maps [iova, iova + n), inside the span of `table` at `level`, with the largest leaves alignment
   * allows; leaves of one table are written in one run. `this.done` counts pages written.
   */
  private mapLevel(table: number, level: number, iova: number, pa: number, n: number, lo: number, hi: number): number {
    const layout = this.layout;
    const replicas = layout.replicated[level];
    if (level === 0 && replicas === 0) return this.mapLeaves(table, iova, pa, n, lo, hi);
    const c = this.mem.chunkWords(table);
    let w = this.wordOf(table, iova, level);
    const codec = this.codec;
    const span = layout.span[level];
    const canLeaf = ((layout.leafLevels >> level) & 1) !== 0;
    const pm = this.pm;
    while (n > 0) {
      const e = c[w];
      const off = iova % span;
      if (replicas !== 0 && off === 0) {
        const k = this.replicaFor(replicas, span, iova, pa, n);
        if (k > 0) {
          const count = 2 ** k;
          const pages = span * count;
          const rp = codec.replicaPfn!(pa, pages);
          const rlo = this.encLo(rp) | lo | codec.replicaTypeLo![level];
          const rhi = this.encHi(rp) | hi | (codec.replicaTypeHi !== undefined ? codec.replicaTypeHi[level] : 0);
          const end = w + 2 * count;
          for (let i = w; i < end; i += 2) if ((c[i] & pm) !== 0) return -EEXIST;
          for (; w < end; w += 2) {
            c[w] = rlo;
            c[w + 1] = rhi;
          }
          this.addLive(table, count);
          this.done += pages;
          iova += pages;
          pa += pages;
          n -= pages;
          continue;
        }
      }
      if (canLeaf && off === 0 && n >= span && pa % span === 0) {
        // A present entry here (a leaf, or a table, which is never empty) maps something already.
        if ((e & pm) !== 0) return -EEXIST;
        c[w] = this.encLo(pa) | lo | codec.leafTypeLo[level];
        c[w + 1] = this.encHi(pa) | hi;
        this.addLive(table, 1);
        this.done += span;
        iova += span;
        pa += span;
        n -= span;
        w += 2;
        continue;
      }
      let child: number;
      let fresh = false;
      if ((e & pm) === 0) {
        const frames = layout.tableFrames[level - 1];
        child = allocTableFrames(this.memory, frames);
        if (child < 0) return -ENOMEM;
        this.frames += frames;
        this.live.add(child);
        c[w] = this.encLo(child) | codec.tableLo[level];
        c[w + 1] = this.encHi(child) | codec.tableHi[level];
        this.addLive(table, 1);
        fresh = true;
      } else if (!this.isTable(e, level)) {
        return -EEXIST;
      } else {
        child = this.decode(e, c[w + 1]);
      }
      const take = n < span - off ? n : span - off;
      const r = level === 1 && layout.replicated[0] === 0 ? this.mapLeaves(child, iova, pa, take, lo, hi) : this.mapLevel(child, level - 1, iova, pa, take, lo, hi);
      if (r !== 0) {
        // A table allocated on the failing path that received nothing goes back at once.
        if (fresh && this.live.get(child) === 0) this.dropTable(c, w, table, child, level - 1);
        return r;
      }
      iova += take;
      pa += take;
      n -= take;
      w += 2;
    }
    return 0;
  }

  /** Clears the entry at word `w` of `table` that points to the (empty) `child` at `childLevel`, and releases it. */
  private dropTable(c: Uint32Array, w: number, table: number, child: number, childLevel: number): void {
    this.nextSpan = 0;
    // Tables go back to memory in the order they were emptied, those whose release was deferred first.
    this.flushReleases();
    c[w] = 0;
    c[w + 1] = 0;
    this.addLive(table, -1);
    this.live.delete(child);
    const frames = this.layout.tableFrames[childLevel];
    releaseTableFrames(this.memory, child, frames);
    this.frames -= frames;
  }

  // ---------------------------------------------------------------- unmap

  unmap(iovaPfn: number, npages: number): number {
    if (this.freed || !(iovaPfn >= 0) || !(npages > 0) || iovaPfn >= this.limitPfn) return 0;
    const g = this.granule;
    const iova = Math.floor(iovaPfn);
    // A range that is not granule aligned cannot be unmapped (arm_lpae_unmap_pages WARNs, returns 0).
    if (g !== 1 && iova % g !== 0) return 0;
    // unmap-all passes U64_MAX-sized ranges: clip to what the table can hold.
    let n = Math.min(Math.floor(npages), this.limitPfn - iova);
    if (g !== 1) n -= n % g;
    if (n === 0) return 0;
    if (n === g && this.walkSlab.length !== 0 && this.top > 0) {
      const r = this.unmapOne(iova);
      if (r >= 0) return r;
    }
    this.stop = false;
    const frames = this.frames;
    const removed = this.unmapLevel(this.rootPfn, this.top, iova, n);
    this.flushReleases();
    this.stop = false;
    if (this.frames !== frames) this.tablesChanged();
    return removed;
  }

  /**
   * unmap() of one leaf entry at level 0 (the granule) over the slab of the root, as unmapLevel does
   * it: nothing removed when an entry on the path is absent or a leaf above level 0 (a superpage, which
   * goes only whole) or the leaf is replicated (likewise); otherwise the entry cleared, and every table
   * on the path that it leaves empty released, from the leaf table up. Returns the pages removed, or
   * -1 when a table on the path lies outside the root's slab (nothing done: the general path unmaps).
   */
  private unmapOne(iova: number): number {
    const s = this.walkSlab;
    const pathTable = this.pathTable;
    const pathWord = this.pathWord;
    const inv = this.curLayout.invSpan;
    const mask = this.curLayout.entryMask;
    const pm = this.pm;
    let w = this.walkRoot;
    let table = this.curRoot;
    for (let level = this.top; ; level--) {
      const e = w + (((iova * inv[level]) & mask[level]) << 1);
      const elo = s[e];
      if ((elo & pm) === 0) return 0;
      if (level === 0) {
        const layout = this.curLayout;
        if (layout.hasReplicas && this.leafPagesOf(elo, s[e + 1], 0) !== layout.span[0]) return 0;
        s[e] = 0;
        s[e + 1] = 0;
        // The common case: the leaf table keeps other entries, so every table above it keeps its entry
        // too and nothing is released (unmapLevel would find every count on the way up non-zero).
        if (this.live.change(table, -1) !== 0) return this.granule;
        const frames = this.frames;
        // Release the tables this left empty, the leaf table first, as unmapLevel does on its way back
        // up; never the root. A table that keeps an entry keeps every table above it.
        for (let l = 1; l <= this.top; l++) {
          const child = l === 1 ? table : pathTable[l - 2];
          if (this.live.get(child) !== 0) break;
          this.dropTable(s, pathWord[l - 1], pathTable[l - 1], child, l - 1);
        }
        if (this.frames !== frames) this.tablesChanged();
        return this.granule;
      }
      if ((elo & this.tm) !== this.tableValues[level]) return 0;
      if (elo >>> this.walkLoShift !== this.walkSlabLo || (s[e + 1] & this.hiMask) !== this.walkSlabHi) return -1;
      pathTable[level - 1] = table;
      pathWord[level - 1] = e;
      w = (elo >>> this.walkWordShift) & 0x7ffc00;
      table = this.walkSlabBase + (w >>> 10);
    }
  }

  /**
   * Unmaps [iova, iova + n) inside one leaf table (level 0, no replicated leaves): one `fill(0)`. The
   * table's live count says how many entries were present when the range covers the whole table, so
   * only a partly covered table is scanned.
   */
  private unmapLeaves(table: number, iova: number, n: number): number {
    const c = this.chunks.get(table);
    if (c === undefined) return 0;
    const g = this.granule;
    const w = this.wordOf(table, iova, 0);
    const count = n / g;
    const end = w + count * 2;
    const cnt = count === this.layout.entryMask[0] + 1 ? this.live.get(table) : countPresent(c, w, end, this.pm);
    c.fill(0, w, end);
    if (cnt > 0) this.addLive(table, -cnt);
    return cnt * g;
  }

  private unmapLevel(table: number, level: number, iova: number, n: number): number {
    const replicas = this.layout.hasReplicas;
    if (level === 0 && !replicas) return this.unmapLeaves(table, iova, n);
    const c = this.chunks.get(table);
    if (c === undefined) return 0;
    const pm = this.pm;
    let w = this.wordOf(table, iova, level);
    const span = this.layout.span[level];
    let removed = 0;
    /** Whole leaf tables dropped without dropTable: the live count of `table` falls by this on the way out. */
    let dropped = 0;
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const e = c[w];
      if ((e & pm) !== 0) {
        if (!this.isTable(e, level)) {
          const pages = replicas ? this.leafPagesOf(e, c[w + 1], level) : span;
          if (pages !== span) {
            // A replicated leaf: all its entries go, and only when the range covers it whole.
            if (iova % pages !== 0 || n < pages) {
              this.stop = true;
              break;
            }
            const count = pages / span;
            c.fill(0, w, w + 2 * count);
            this.addLive(table, -count);
            removed += pages;
            iova += pages;
            n -= pages;
            w += 2 * count;
            continue;
          }
          // A superpage goes only as a whole (iommu unmap_pages); a partial hit stops the unmap here.
          if (take !== span) {
            this.stop = true;
            break;
          }
          c[w] = 0;
          c[w + 1] = 0;
          this.addLive(table, -1);
          removed += span;
        } else {
          const child = this.decode(e, c[w + 1]);
          if (level === 1 && !replicas && take === span) {
            // The range covers the whole leaf table: its live count is what it maps, and it goes back to
            // table memory as it is, as free() releases leaf tables (allocTable hands out zeroed frames,
            // and the host's allocator scrubs a frame it gets back): clearing its entries first would
            // zero the same 4 KiB twice. The kernel frees a table an unmap covers whole the same way.
            if (this.leafRuns) {
              // dropTable, with the release deferred to the end of the unmap (releaseLater) and the
              // parent's count changed once on the way out.
              removed += this.live.remove(child) * this.granule;
              c[w] = 0;
              c[w + 1] = 0;
              dropped++;
              this.frames--;
              this.releaseLater(child);
            } else {
              removed += this.live.get(child) * this.granule;
              this.dropTable(c, w, table, child, 0);
            }
          } else {
            removed += level === 1 && !replicas ? this.unmapLeaves(child, iova, take) : this.unmapLevel(child, level - 1, iova, take);
            if (this.live.get(child) === 0) this.dropTable(c, w, table, child, level - 1);
            if (this.stop) break;
          }
        }
      }
      iova += take;
      n -= take;
      w += 2;
    }
    if (dropped !== 0) this.addLive(table, -dropped);
    return removed;
  }

  /**
   * Queues single-frame leaf table `child` for release; a frame next to the end of the pending run, in
   * its direction (tables come back from the free list in either order), joins it.
   */
  private releaseLater(child: number): void {
    this.nextSpan = 0;
    const n = this.runCount;
    if (n !== 0) {
      const d = child - this.runLast;
      if ((d === 1 || d === -1) && (n === 1 || d === (this.runLast > this.runFirst ? 1 : -1))) {
        this.runLast = child;
        this.runCount = n + 1;
        return;
      }
      this.flushReleases();
    }
    this.runFirst = child;
    this.runLast = child;
    this.runCount = 1;
  }

  /** Hands the pending run of released leaf tables back to table memory, in the order they were released. */
  private flushReleases(): void {
    const n = this.runCount;
    if (n === 0) return;
    this.runCount = 0;
    if (n === 1) this.memory.releaseTable(this.runFirst);
    else this.memory.releaseTableRun!(this.runFirst, this.runLast);
  }

  /**
   * Called after a table was released (by unmap or a rolled-back map): a subclass that caches table
   * pointers (a paging-structure cache) drops them here.
   */
  protected tablesChanged(): void {}

  // ---------------------------------------------------------------- walk

  trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, radixTraceSpec(this.codec, this.layout), iovaPfn);
  }

  /**
   * The walk. When the root lies in a slab of table memory (PhysicalMemory.slabWords), every level is
   * read from that one flat array: per level the entry's present bit and table type, and two compares
   * that the next table lies in the same slab (the entry's address bits above the slab's frames),
   * then the next table's word offset comes from the low word. Every level is still read from table
   * memory. A missing entry is reported here as radixWalk reports it; a leaf goes to radixLeaf, the
   * end of radixWalk, so the codec decides it alike; anything else (a table in another slab or
   * outside the slabs, a level-skipping entry) is walked again by radixWalk, which reports it.
   */
  walk(iovaPfn: number, out: WalkResult): boolean {
    const s = this.walkSlab;
    if (s.length !== 0 && iovaPfn >= 0 && iovaPfn < this.limitPfn) {
      const layout = this.curLayout;
      const invSpan = layout.invSpan;
      const mask = layout.entryMask;
      const tv = this.tableValues;
      const pm = this.pm;
      const tm = this.tm;
      const hiMask = this.hiMask;
      const loShift = this.walkLoShift;
      const slabLo = this.walkSlabLo;
      const slabHi = this.walkSlabHi;
      const wordShift = this.walkWordShift;
      const tableGrant = this.walkTableGrant;
      let w = this.walkRoot;
      let level = this.top;
      let grant = PERM_GRANT_ALL;
      let andLo = -1;
      let orHi = 0;
      let andHi = -1;
      for (;;) {
        const e = w + (((iovaPfn * invSpan[level]) & mask[level]) << 1);
        const lo = s[e];
        if ((lo & pm) === 0) return walkFault(out, WALK_NOT_PRESENT, level);
        const hi = s[e + 1];
        if (level === 0 || (lo & tm) !== tv[level]) {
          if (level !== 0 && this.walkSkips) break;
          const pfn = (hi & hiMask) * this.hiScale + (lo >>> this.shift);
          return radixLeaf(this.codec, layout, iovaPfn, out, lo, hi, level, pfn, grant, andLo, orHi, andHi);
        }
        if (lo >>> loShift !== slabLo || (hi & hiMask) !== slabHi) break;
        if (tableGrant) grant &= this.codec.tableGrant!(lo, hi, level);
        andLo &= lo;
        orHi |= hi;
        andHi &= hi;
        w = (lo >>> wordShift) & 0x7ffc00;
        level--;
      }
    }
    if (this.freed) return walkFault(out, WALK_ADDRESS_SIZE, this.top);
    return radixWalk(this.codec, this.layout, this.chunks, this.rootPfn, iovaPfn, out, null);
  }

  // ---------------------------------------------------------------- A/D

  /** Turns hardware A/D updates on or off; only a table allocated with `cfg.dirtyTracking` can turn them on. */
  setDirtyTracking(enable: boolean): void {
    this.hwDirty = enable && this.cfg.dirtyTracking === true;
  }

  /** Records a hardware access to the leaf of `iovaPfn`: the codec's accessed / dirty updates, on the tables too. */
  markAccess(iovaPfn: number, write: boolean): void {
    const codec = this.codec;
    if (this.freed || codec.leafAccessed === undefined || !(iovaPfn >= 0 && iovaPfn < this.limitPfn)) return;
    const s = this.walkSlab;
    if (s.length !== 0) {
      // The walk's path over the root's slab (see walk); what it does not finish, the loop below
      // does again from the root (setting a table entry's accessed bit twice changes nothing).
      const layout = this.curLayout;
      let w = this.walkRoot;
      let level = this.top;
      for (;;) {
        const e = w + (((iovaPfn * layout.invSpan[level]) & layout.entryMask[level]) << 1);
        const lo = s[e];
        if ((lo & this.pm) === 0) return;
        if (level === 0 || (lo & this.tm) !== this.tableValues[level]) {
          if (level !== 0 && this.walkSkips) break;
          s[e] = codec.leafAccessed(lo, s[e + 1], write, this.hwDirty, level);
          return;
        }
        if (lo >>> this.walkLoShift !== this.walkSlabLo || (s[e + 1] & this.hiMask) !== this.walkSlabHi) break;
        if (codec.tableAccessed !== undefined) s[e] = codec.tableAccessed(lo, s[e + 1]);
        w = (lo >>> this.walkWordShift) & 0x7ffc00;
        level--;
      }
    }
    let table = this.rootPfn;
    for (let level = this.top; level >= 0; level--) {
      const c = this.chunks.get(table);
      if (c === undefined) return;
      const w = this.wordOf(table, iovaPfn, level);
      const lo = c[w];
      if ((lo & this.pm) === 0) return;
      const next = this.childLevel(lo, c[w + 1], level);
      if (next < 0) {
        c[w] = codec.leafAccessed(lo, c[w + 1], write, this.hwDirty, level);
        return;
      }
      if (codec.tableAccessed !== undefined) c[w] = codec.tableAccessed(lo, c[w + 1]);
      table = this.decode(lo, c[w + 1]);
      level = next + 1;
    }
  }

  /** Reports every dirty leaf in the range (whole leaves, as iommu_dirty_bitmap_record), clearing them unless `noClear`. */
  readAndClearDirty(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    if (this.freed || this.codec.leafDirty === undefined || !(iovaPfn >= 0) || !(npages > 0) || iovaPfn >= this.limitPfn) return;
    const n = Math.min(Math.floor(npages), this.limitPfn - Math.floor(iovaPfn));
    this.dirtyLevel(this.rootPfn, this.top, Math.floor(iovaPfn), n, noClear, onDirty);
  }

  private dirtyLevel(table: number, level: number, iova: number, n: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    const c = this.chunks.get(table);
    if (c === undefined) return;
    const codec = this.codec;
    const span = this.layout.span[level];
    let w = this.wordOf(table, iova, level);
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const e = c[w];
      if ((e & this.pm) !== 0) {
        if (this.isTable(e, level)) this.dirtyLevel(this.decode(e, c[w + 1]), level - 1, iova, take, noClear, onDirty);
        else {
          const pages = this.layout.hasReplicas ? this.leafPagesOf(e, c[w + 1], level) : span;
          if (pages !== span) {
            // A replicated leaf is dirty when any replica is (the hardware sets D in the one it used).
            const inGroup = Math.floor((iova % pages) / span);
            const count = pages / span;
            const w0 = w - 2 * inGroup;
            let dirty = false;
            for (let i = 0; i < count; i++) {
              const x = w0 + 2 * i;
              if (!codec.leafDirty!(c[x], c[x + 1], level)) continue;
              dirty = true;
              if (!noClear && codec.leafClean !== undefined) c[x] = codec.leafClean(c[x], c[x + 1]);
            }
            if (dirty) onDirty(iova - (iova % pages), pages);
            const adv = iova - (iova % pages) + pages - iova;
            iova += adv;
            n -= adv;
            w += 2 * (count - inGroup);
            continue;
          }
          if (codec.leafDirty!(e, c[w + 1], level)) {
            onDirty(iova - off, span);
            if (!noClear && codec.leafClean !== undefined) c[w] = codec.leafClean(e, c[w + 1]);
          }
        }
      }
      iova += take;
      n -= take;
      w += 2;
    }
  }

  // ---------------------------------------------------------------- free

  /** Releases every table page; the table maps nothing afterwards and every walk faults. */
  free(): void {
    if (this.freed) return;
    this.freeLevel(this.rootPfn, this.top);
    releaseTableFrames(this.memory, this.rootPfn, this.layout.tableFrames[this.top]);
    this.live.clear();
    this.frames = 0;
    this.freed = true;
    this.nextSpan = 0;
    this.limitPfn = 0;
    this.walkSlab = NO_SLAB;
    this.walkSlab64 = NO_ENTRIES;
    this.tablesChanged();
  }

  private freeLevel(table: number, level: number): void {
    if (level === 0) return;
    const c = this.chunks.get(table);
    if (c === undefined) return;
    const w0 = (table & 511) << 10;
    const end = w0 + (this.layout.entryMask[level] + 1) * 2;
    for (let w = w0; w < end; w += 2) {
      const e = c[w];
      if ((e & this.pm) === 0) continue;
      const next = this.childLevel(e, c[w + 1], level);
      if (next < 0) continue;
      const child = this.decode(e, c[w + 1]);
      this.freeLevel(child, next);
      c[w] = 0;
      c[w + 1] = 0;
      releaseTableFrames(this.memory, child, this.layout.tableFrames[next]);
    }
  }
}
