/**
 * The VT-d page table: core's radix engine (map, unmap, free, A/D, rollback and accounting) with the
 * VT-d entry encodings (codec.ts), plus what is VT-d's own: the paging-structure cache of 4-level
 * second-stage walks (psc.ts) with a straight-line walk for that case, and the SSADE switch of
 * hardware A/D updates (dirty.ts).
 *
 * Hot-path rules (docs/performance.md): entries are read as two u32 halves straight out of the
 * chunk's Uint32Array; no BigInt, no allocation per walk. Page numbers may exceed 2^31, so the
 * 4-level walk splits them once into their low 27 bits and the rest rather than shifting them.
 */
import type { PhysicalMemory } from '@ioasid/core';
import {
  ChunkCache,
  ERRNO,
  RadixLayout,
  RadixPageTable,
  SLAB_FRAME_BITS,
  WALK_ADDRESS_SIZE,
  radixWalk,
  traceRadix,
  type PageTableConfig,
  type PageTableMemory,
  type RadixCodec,
  type WalkResult,
  type WalkStep,
} from '@ioasid/core/driver';
import { VtdFsCodec, VtdSsCodec, ssGrant } from './codec.js';
import { hardwareUpdatesAD } from './dirty.js';
import { PagingStructureCache } from './psc.js';
import { HI_ADDR_MASK, SS_PS, SS_R, SS_W, SS_X, leafLevelsFromBitmap } from './pte-bits.js';
import { vtdTraceSpec } from './pgtable-trace.js';

export { SZ_1G, SZ_2M, SZ_4K, leafLevelsFromBitmap } from './pte-bits.js';

export const EINVAL = ERRNO.EINVAL;
export const ENOMEM = ERRNO.ENOMEM;

const INV_2_27 = 1 / 134217728;
const SLAB_FRAMES = 2 ** SLAB_FRAME_BITS;
/** A table entry's slab index is (hi & HI_ADDR_MASK) << SLAB_HI_SHIFT | lo >>> SLAB_LO_SHIFT (frame >> SLAB_FRAME_BITS). */
const SLAB_HI_SHIFT = 20 - SLAB_FRAME_BITS;
const SLAB_LO_SHIFT = 12 + SLAB_FRAME_BITS;
/** The word offset of a table entry's frame in its slab, from the low word: (lo >>> 2) & SLAB_WORD_MASK. */
const SLAB_WORD_MASK = (SLAB_FRAMES - 1) << 10;
/** The slab of a table that is not backed: every read is undefined, which no present test passes. */
const NO_SLAB = new Uint32Array(0);
const NO_SLAB32 = new Int32Array(0);
const NO_GRANTS = new Int32Array(8);

/** What distinguishes the two VT-d formats; fixed at alloc time. */
export interface VtdFlavor {
  readonly format: string;
  readonly firstStage: boolean;
  /** SS: SLEE (execute permission honoured) sets X on executable leaves. */
  readonly executeEnable: boolean;
  /** SS: force snooping (SNP) on every leaf. */
  readonly snoop: boolean;
  /** SS: the ERRATA_772415_SPR17 rule for nest parents, read-only mappings refused. */
  readonly forceWriteable: boolean;
  /** FS: G on every leaf (global, survives PASID-selective flushes that spare globals). */
  readonly global: boolean;
}

/** The state a format's `alloc` validated, handed to the table. */
export interface VtdGeometry {
  readonly levels: number;
  /** log2 of the input size actually enforced (IOVAs at or above 2^ias fault). */
  readonly ias: number;
  readonly oas: number;
  /** leafLevelsFromBitmap() of the restricted pgsize bitmap. */
  readonly leafLevels: number;
}

const layouts = new Map<string, RadixLayout>();

/** The radix geometry of a VT-d table: 512-entry tables, `levels` deep (shared between tables). */
export function vtdLayout(levels: number, ias: number, oas: number, leafLevels: number): RadixLayout {
  const key = `${levels}:${ias}:${oas}:${leafLevels}`;
  let layout = layouts.get(key);
  if (layout === undefined) {
    const entryBits: number[] = [];
    const spanShift: number[] = [];
    for (let l = 0; l < levels; l++) {
      entryBits.push(9);
      spanShift.push(9 * l);
    }
    layout = new RadixLayout({
      levels,
      entryBits,
      spanShift,
      leafLevels,
      ias,
      oas,
    });
    layouts.set(key, layout);
  }
  return layout;
}

export class VtdPageTable extends RadixPageTable {
  private readonly fs: boolean;
  /** The table may turn hardware A/D updates on (SS: allocated for dirty tracking). */
  private readonly trackDirty: boolean;
  /** Hardware A/D updates are on: SS when SSADE is set in the PASID entry; FS always. */
  private hwAccessDirty: boolean;
  private readonly psc = new PagingStructureCache();
  /** 3 for a 4-level second-stage table (the walks the cache serves) with the cache on, else 0. */
  private pscLevels: number = 0;
  /** `executeEnable` as a number (SS_X or 0), for the walk. */
  private readonly execMask: number = 0;
  /** The grant bits (both privilege levels) of a leaf by the AND of the walk's R/W/X bits: leafOut's rule as a table, for the slab walks. */
  private readonly grants: Int32Array = NO_GRANTS;
  /** A 4-level second-stage table whose root is in a slab: walks take the straight-line paths. */
  private readonly straight: boolean = false;
  /** 1 for a 5-level second-stage table whose root is in a slab: walkStraight takes walkFive. */
  private readonly five: number = 0;
  /** walkFiveCompact serves the pages below this: min(limitPfn, 2^30 - 1) for a 5-level table (`five`), else 0 (a small integer, as `fastLimit`). */
  private readonly fiveLimit: number = 0;
  /** 1 when walk() takes walkCompact: `straight` and the paging-structure cache off. */
  private fast = 0;
  /**
   * walkCompact serves the pages below this: min(limitPfn, 2^30 - 1) while `fast`, else 0. A
   * small integer (a V8 built with 31-bit small integers keeps up to 2^30 - 1 as one), so the page
   * compares as an int32.
   */
  private fastLimit = 0;
  /** `rootSlab` as int32 words (the same memory), for walkCompact and the 5-level walks. */
  private readonly slab32: Int32Array = NO_SLAB32;
  /** `slabLo << 25` as an int32: the bits 31:25 of a table entry's low word that points into the root's slab. */
  private readonly slabTag: number = 0;
  /** The root table's slab once it is backed (the root never moves), its index and the root's word offset in it. */
  private readonly rootSlab: Uint32Array = NO_SLAB;
  private readonly rootSlabWord: number = 0;
  private readonly rootSlabIndex: number = 0;
  /** What a table entry pointing into the root's slab holds in its high word, and in its low word's bits 31:25. */
  private readonly slabHi: number = 0;
  private readonly slabLo: number = 0;
  private readonly presentBits: number;

  constructor(flavor: VtdFlavor, cfg: Readonly<PageTableConfig>, geo: VtdGeometry, memory: PageTableMemory, rootPfn: number) {
    const codec: RadixCodec = flavor.firstStage
      ? new VtdFsCodec({
          trackDirty: cfg.dirtyTracking === true,
          global: flavor.global,
        })
      : new VtdSsCodec({
          executeEnable: flavor.executeEnable,
          snoop: flavor.snoop,
          forceWriteable: flavor.forceWriteable,
        });
    super(flavor.format, cfg, codec, vtdLayout(geo.levels, geo.ias, geo.oas, geo.leafLevels), memory, rootPfn);
    this.fs = flavor.firstStage;
    this.trackDirty = cfg.dirtyTracking === true;
    this.hwAccessDirty = hardwareUpdatesAD(flavor.firstStage, this.trackDirty, this.trackDirty);
    this.pscLevels = !flavor.firstStage && this.top === 3 ? 3 : 0;
    this.execMask = flavor.executeEnable ? SS_X : 0;
    this.grants = new Int32Array(8);
    for (let rwx = 0; rwx < 8; rwx++) this.grants[rwx] = ssGrant(rwx, flavor.executeEnable);
    // `| 0` everywhere: these fields must hold small integers, not doubles (2 ** k is a double, and a
    // double field makes every compare of the walk a float compare). rootPfn < 2^40.
    this.rootSlabWord = ((rootPfn % SLAB_FRAMES) * 1024) | 0;
    this.rootSlabIndex = Math.floor(rootPfn / SLAB_FRAMES) | 0;
    if (!flavor.firstStage && this.top === 3) {
      // Back the root's chunk now (the first map would), so that the straight walk's slab is there
      // from the start and its loads never go out of bounds.
      this.mem.chunkWords(rootPfn);
      const slab = this.mem.slabWords(this.rootSlabIndex);
      // The straight walks write the slab geometry as literals (SLAB_FRAME_BITS 13).
      if (slab !== undefined && SLAB_FRAME_BITS === 13) {
        this.rootSlab = slab;
        this.slab32 = new Int32Array(slab.buffer, slab.byteOffset, slab.length);
        this.straight = true;
      }
    }
    if (!flavor.firstStage && this.top === 4) {
      // The same for the 5-level walks.
      this.mem.chunkWords(rootPfn);
      const slab = this.mem.slabWords(this.rootSlabIndex);
      if (slab !== undefined && SLAB_FRAME_BITS === 13) {
        this.rootSlab = slab;
        this.slab32 = new Int32Array(slab.buffer, slab.byteOffset, slab.length);
        this.five = 1;
        this.fiveLimit = Math.min(this.limitPfn, 2 ** 30 - 1) | 0;
      }
    }
    this.slabHi = this.rootSlabIndex >>> SLAB_HI_SHIFT;
    this.slabLo = this.rootSlabIndex & ((1 << SLAB_HI_SHIFT) - 1);
    this.slabTag = (this.slabLo << 25) | 0;
    this.presentBits = codec.presentMask;
  }

  /**
   * Whether walks of a 4-level second-stage table use the paging-structure cache (on by default).
   * Off, every walk reads every level from table memory, as a walk after a PSC invalidation does.
   */
  get pagingStructureCache(): boolean {
    return this.pscLevels !== 0;
  }

  set pagingStructureCache(on: boolean) {
    this.psc.flush();
    this.pscLevels = on && !this.fs && this.top === 3 ? 3 : 0;
    this.fast = this.straight && this.pscLevels === 0 ? 1 : 0;
    this.fastLimit = this.fast !== 0 ? Math.min(this.limitPfn, 2 ** 30 - 1) | 0 : 0;
  }

  /** A table was released: its pointer may sit in the paging-structure cache. */
  protected override tablesChanged(): void {
    this.psc.flush();
  }

  // ---------------------------------------------------------------- walk

  override trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, vtdTraceSpec(this.top, this.presentBits), iovaPfn);
  }

  /** The leaf of a successful 4K walk: `lo`/`hiWord` the leaf entry, `perm` the AND of every level's low word. */
  private leafOut(out: WalkResult, lo: number, hiWord: number, perm: number): true {
    // Literals, not the named constants: a module constant is a cell load with a hole check on every
    // use in compiled code. 0xfffff is HI_ADDR_MASK, 1 SS_R / PERM_READ, 3 R|W, 7 R|W|X, 512 SS_D.
    const h = hiWord & 0xfffff;
    out.pfn = h === 0 ? lo >>> 12 : h * 1048576 + (lo >>> 12);
    const p = this.execMask !== 0 ? perm & 7 : (perm & 3) | ((perm & 1) << 2);
    // No privilege levels in the second stage: both get the same (permission.ts).
    out.perm = p | (p << 4);
    out.pageShift = 12;
    out.level = 0;
    out.dirty = (lo & 512) !== 0;
    out.fault = 0;
    return true;
  }

  /**
   * The walk: a dispatcher, small enough to be inlined together with the walk it picks. A 4-level
   * second-stage table without the paging-structure cache takes walkCompact (the `walk` benchmark:
   * the unit's translate, walkPaging, this and walkCompact are inlined into the caller's loop); a
   * 5-level one walkFiveCompact (the fault round trip: the unit's miss inlines this and
   * walkFiveCompact with the IOTLB fill, so that a walk that finds its page makes no call); both for
   * pages below 2^30 - 1 (their limits are 0 otherwise). Anything else goes to walkStraight. What the
   * two callers inline must fit V8's budgets (460 bytes of bytecode per function, 920 in all):
   * inline-budget.test.ts checks both.
   */
  override walk(iovaPfn: number, out: WalkResult): boolean {
    if (iovaPfn >= 0) {
      if (iovaPfn < this.fastLimit) return this.walkCompact(iovaPfn, out);
      if (iovaPfn < this.fiveLimit) return this.walkFiveCompact(iovaPfn, out);
    }
    return this.walkStraight(iovaPfn, out);
  }

  /**
   * The walk of a 4-level second-stage table with the paging-structure cache off, for pages below
   * 2^30 - 1 (walk() sends those here). Its common case, 4K leaves and a present leaf, is written out
   * here whole and small, over the flat slab
   * of table memory that holds the root (PhysicalMemory.slabWords, read as int32): each table entry
   * on the path must point into that slab (its low word's bits 31:25 and its high word are those of
   * the slab, and its PS bit is clear: `((lo & 0xfe000080) ^ slabTag) | (hi ^ slabHi)` is 0), and
   * then the next table is at word `(lo >>> 2) & SLAB_WORD_MASK` of the same array. Every level is
   * still read from table memory. Anything else (the cache on, a table in another slab, a superpage,
   * a missing entry, an IOVA at or above 2^30 - 1 pages or out of range) goes to walkStraight, which
   * walks again and reports it.
   *
   * Why it is this small: a walk's leaf load usually misses the caches, and the processor overlaps
   * the next walks' loads with it only when the code between them is short; and below V8's inlining
   * limit (460 bytes of bytecode) the unit's translate inlines walk() and this walk into the caller's
   * loop, which saves the call, its frame and the checks of its arguments. So: no failure reporting here; int32
   * loads (no uint32-to-number checks); one test for the whole walk, not one per level: the slab
   * checks of the three table entries are ORed into `bad` and the R/W bits of every level ANDed into
   * `perm` (R or W in all four means each one is present), and a walk that went wrong reads words
   * elsewhere in the slab (always in bounds: the masks keep every index below its length) and is
   * thrown away; the page as an int32 (no float split); the leaf's grant from a table; fields that
   * are small integers and literals instead of module constants (a module constant is a cell load
   * with a hole check in compiled code). The literals: 3 is SS_R | SS_W, 7 R|W|X, 0xfe000080 (as
   * int32 -33554304) the slab bits of a low word with SS_PS, 0x7ffc00 SLAB_WORD_MASK (the
   * constructor checks SLAB_FRAME_BITS), 0xfffff HI_ADDR_MASK, 512 SS_D, 0 WALK_OK.
   */
  private walkCompact(iovaPfn: number, out: WalkResult): boolean {
    // Masks in locals: the compiled code is the same (they are constants), the bytecode shorter.
    const slabBits = -33554304;
    const tableWords = 0x7ffc00;
    const s = this.slab32;
    const tag = this.slabTag;
    const hiE = this.slabHi;
    let w = this.rootSlabWord + ((iovaPfn >>> 27) << 1);
    let lo = s[w];
    let perm = lo;
    let bad = ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
    w = ((lo >>> 2) & tableWords) + (((iovaPfn >>> 18) & 511) << 1);
    lo = s[w];
    perm &= lo;
    bad |= ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
    w = ((lo >>> 2) & tableWords) + (((iovaPfn >>> 9) & 511) << 1);
    lo = s[w];
    perm &= lo;
    bad |= ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
    w = ((lo >>> 2) & tableWords) + ((iovaPfn & 511) << 1);
    lo = s[w];
    perm &= lo;
    if (bad === 0 && (perm & 3) !== 0) {
      // Integer arithmetic up to 2^31 pages (8 TiB), as the compiler speculates from what it saw.
      out.pfn = (s[w + 1] & 0xfffff) * 1048576 + (lo >>> 12);
      out.perm = this.grants[perm & 7];
      out.pageShift = 12;
      out.level = 0;
      out.dirty = (lo & 512) !== 0;
      out.fault = 0;
      return true;
    }
    return this.walkStraight(iovaPfn, out);
  }


  /**
   * The walk of a 5-level second-stage table (the granite-rapids-2s preset's, the fault round trip's)
   * for pages below 2^30 - 1, in walkCompact's style: every level read from the root's slab as int32
   * words, the slab checks of the four table entries ORed into `bad` and their R/W bits ANDed into
   * `perm`, one test for all four; then the leaf decides: present, the translation; not present, the
   * walk reports it at level 0 as the engine's walk does (a page that faults next to mapped ones). The
   * page is an int32 below 2^30, so its level-4 index is 0 and its level-3 index `iovaPfn >>> 27`. A
   * table entry that is missing or not a table of the slab (a superpage, a table elsewhere) is found
   * only at the end (the walk goes on through words elsewhere in the slab, always in bounds: the masks
   * keep every index below its length) and walkFive walks again and reports it. Small enough for the
   * unit's miss to inline it (below V8's inlining limit of 460 bytes of bytecode; the operands are
   * ordered to keep the bytecode short), so that a walk that misses the IOTLB makes no call. Literals as
   * in walkCompact.
   */
  private walkFiveCompact(iovaPfn: number, out: WalkResult): boolean {
    // A local on the left of each operator and `x = x & y` rather than `x &= y`: shorter bytecode
    // (the local is the operand; no copy of the old value), the same compiled code.
    const slabBits = -33554304;
    const tableWords = 0x7ffc00;
    const s = this.slab32;
    const tag = this.slabTag;
    const hiE = this.slabHi;
    let w = this.rootSlabWord;
    let lo = s[w];
    let perm = lo;
    let bad = (tag ^ (slabBits & lo)) | (hiE ^ s[w + 1]);
    w = (tableWords & (lo >>> 2)) + ((iovaPfn >>> 27) << 1);
    lo = s[w];
    perm = perm & lo;
    bad = bad | (tag ^ (slabBits & lo)) | (hiE ^ s[w + 1]);
    w = (tableWords & (lo >>> 2)) + (((iovaPfn >>> 18) & 511) << 1);
    lo = s[w];
    perm = perm & lo;
    bad = bad | (tag ^ (slabBits & lo)) | (hiE ^ s[w + 1]);
    w = (tableWords & (lo >>> 2)) + (((iovaPfn >>> 9) & 511) << 1);
    lo = s[w];
    perm = perm & lo;
    bad = bad | (tag ^ (slabBits & lo)) | (hiE ^ s[w + 1]);
    w = (tableWords & (lo >>> 2)) + ((iovaPfn & 511) << 1);
    lo = s[w];
    if (bad === 0 && (perm & 3) !== 0) {
      // Every table entry present and in the slab: the leaf decides (1 is WALK_NOT_PRESENT).
      out.level = 0;
      if ((lo & 3) === 0) {
        out.fault = 1;
        out.perm = 0;
        out.dirty = false;
        return false;
      }
      out.pfn = (s[w + 1] & 0xfffff) * 1048576 + (lo >>> 12);
      out.perm = this.grants[perm & lo & 7];
      out.pageShift = 12;
      out.dirty = (lo & 512) !== 0;
      out.fault = 0;
      return true;
    }
    return this.walkFive(iovaPfn, out);
  }

  /**
   * The walk when walkCompact or walkFiveCompact did not finish it or did not apply: for a 5-level
   * table, walkFive; else the 4-level walk over the root's slab with the paging-structure cache off,
   * which also reports a missing entry (the level it stopped at, as the engine's walk does) and serves pages from 2^30 - 1 up to the limit. Each table entry on the
   * path must point into that slab (its low word's bits 31:25 and its high word are those of the
   * slab: two compares), and then the next table is at word `(lo >>> 2) & SLAB_WORD_MASK` of the same
   * array. Anything else (the cache on, a table in another slab, a superpage, an IOVA out of range)
   * goes to walkOther, which walks again and reports it.
   *
   * Why it is one function with literals: a walk's leaf load usually misses the caches, and the
   * processor overlaps the next walks' loads with it only when the code between them is short. Every
   * call (a leaf helper, a second walk function), and code in branches that never run, made the
   * compiled walk 2 to 3 times slower in the benchmark; a module constant is a cell load with a hole
   * check in compiled code. The literals: 3 is SS_R | SS_W, 128 SS_PS, 25 SLAB_LO_SHIFT (12 +
   * SLAB_FRAME_BITS), 0x7ffc00 SLAB_WORD_MASK (the constructor checks SLAB_FRAME_BITS), 7.45e-9
   * 2^-27, 0xfffff HI_ADDR_MASK, 512 SS_D, 0 WALK_OK.
   */
  private walkStraight(iovaPfn: number, out: WalkResult): boolean {
    if (this.fast !== 0 && iovaPfn >= 0 && iovaPfn < this.limitPfn) {
      const s = this.rootSlab;
      const hiE = this.slabHi;
      const loE = this.slabLo;
      const low = iovaPfn & 0x7ffffff;
      let w = this.rootSlabWord + ((((iovaPfn - low) * 7.450580596923828e-9) & 511) << 1);
      let lo = s[w];
      let level = 3;
      let perm = lo;
      if ((lo & 3) !== 0) {
        if ((lo & 128) !== 0 || lo >>> 25 !== loE || s[w + 1] !== hiE) return this.walkOther(iovaPfn, out);
        w = ((lo >>> 2) & 0x7ffc00) + (((low >>> 18) & 511) << 1);
        lo = s[w];
        level = 2;
        perm &= lo;
        if ((lo & 3) !== 0) {
          if ((lo & 128) !== 0 || lo >>> 25 !== loE || s[w + 1] !== hiE) return this.walkOther(iovaPfn, out);
          w = ((lo >>> 2) & 0x7ffc00) + (((low >>> 9) & 511) << 1);
          lo = s[w];
          level = 1;
          perm &= lo;
          if ((lo & 3) !== 0) {
            if ((lo & 128) !== 0 || lo >>> 25 !== loE || s[w + 1] !== hiE) return this.walkOther(iovaPfn, out);
            w = ((lo >>> 2) & 0x7ffc00) + ((low & 511) << 1);
            lo = s[w];
            level = 0;
            if ((lo & 3) !== 0) {
              const h = s[w + 1] & 0xfffff;
              out.pfn = h === 0 ? lo >>> 12 : h * 1048576 + (lo >>> 12);
              perm &= lo;
              // leafOut's permission bits, written out.
              const p = this.execMask !== 0 ? perm & 7 : (perm & 3) | ((perm & 1) << 2);
              out.perm = p | (p << 4);
              out.pageShift = 12;
              out.level = 0;
              out.dirty = (lo & 512) !== 0;
              out.fault = 0;
              return true;
            }
          }
        }
      }
      // A missing entry, reported as the engine's walk does (1 is WALK_NOT_PRESENT).
      out.fault = 1;
      out.level = level;
      out.perm = 0;
      out.dirty = false;
      return false;
    }
    if (this.five !== 0) return this.walkFive(iovaPfn, out);
    return this.walkOther(iovaPfn, out);
  }

  /**
   * The walk of a 5-level second-stage table (a 57-bit input space, as the granite-rapids-2s preset
   * has) when walkFiveCompact did not finish it (a table entry missing or not a table of the root's
   * slab, a page at or above 2^30 - 1): over the root's slab, read as int32 words (`slab32`), every level read from table memory.
   * Each level tests only what decides the walk's course, whether its entry is present (a missing entry
   * is reported as the engine's walk reports it: the level it stopped at); whether the entry points into
   * the root's slab as a table (PS clear, the slab's bits in both words) is ORed into `bad`, as in
   * walkCompact, and tested where the walk ends. A walk that went wrong (a table in another slab, a
   * superpage) reads words elsewhere in the slab (always in bounds: the masks keep every index below
   * its length), reports nothing it read there, and goes to walkOther (the engine's walk), which walks
   * again and reports it; so does an IOVA out of range. The page is split once into its low 27 bits
   * (levels 2 to 0) and the rest (levels 4 and 3, below 2^18). Literals as in walkCompact: -33554304
   * is 0xfe000080 as int32, 0x7ffc00 SLAB_WORD_MASK.
   */
  private walkFive(iovaPfn: number, out: WalkResult): boolean {
    if (iovaPfn >= 0 && iovaPfn < this.limitPfn) {
      const slabBits = -33554304;
      const tableWords = 0x7ffc00;
      const s = this.slab32;
      const tag = this.slabTag;
      const hiE = this.slabHi;
      const low = iovaPfn & 0x7ffffff;
      const up = (iovaPfn - low) * 7.450580596923828e-9;
      let w = this.rootSlabWord + (((up >>> 9) & 511) << 1);
      let lo = s[w];
      if ((lo & 3) === 0) return walkMissing(out, 4);
      let perm = lo;
      let bad = ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
      w = ((lo >>> 2) & tableWords) + ((up & 511) << 1);
      lo = s[w];
      if ((lo & 3) === 0) return bad === 0 ? walkMissing(out, 3) : this.walkOther(iovaPfn, out);
      perm &= lo;
      bad |= ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
      w = ((lo >>> 2) & tableWords) + (((low >>> 18) & 511) << 1);
      lo = s[w];
      if ((lo & 3) === 0) return bad === 0 ? walkMissing(out, 2) : this.walkOther(iovaPfn, out);
      perm &= lo;
      bad |= ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
      w = ((lo >>> 2) & tableWords) + (((low >>> 9) & 511) << 1);
      lo = s[w];
      if ((lo & 3) === 0) return bad === 0 ? walkMissing(out, 1) : this.walkOther(iovaPfn, out);
      perm &= lo;
      bad |= ((lo & slabBits) ^ tag) | (s[w + 1] ^ hiE);
      w = ((lo >>> 2) & tableWords) + ((low & 511) << 1);
      lo = s[w];
      if (bad === 0) {
        if ((lo & 3) === 0) return walkMissing(out, 0);
        const h = s[w + 1] & 0xfffff;
        out.pfn = h === 0 ? lo >>> 12 : h * 1048576 + (lo >>> 12);
        out.perm = this.grants[perm & lo & 7];
        out.pageShift = 12;
        out.level = 0;
        out.dirty = (lo & 512) !== 0;
        out.fault = 0;
        return true;
      }
    }
    return this.walkOther(iovaPfn, out);
  }

  /** Every walk walkStraight or walkFive does not finish. */
  private walkOther(iovaPfn: number, out: WalkResult): boolean {
    return this.pscLevels === 3 ? this.walkPsc(iovaPfn, out) : this.walkTables(iovaPfn, out);
  }

  /**
   * A walk with the paging-structure cache on: a hit goes straight to the leaf table; the leaf entry
   * itself is read now.
   */
  private walkPsc(iovaPfn: number, out: WalkResult): boolean {
    if (iovaPfn >= 0 && iovaPfn < this.limitPfn) {
      const low = iovaPfn & 0x7ffffff;
      // The 2 MiB region: iovaPfn < 2^36 here, so the region number is below 2^27.
      const region = ((((iovaPfn - low) * 7.450580596923828e-9) & 511) << 18) | (low >>> 9);
      const psc = this.psc;
      const s = region & 1023;
      if (psc.key[s] === region) {
        const v = psc.word[s];
        const lc = psc.slab[s];
        // Literals as in leafOut: 7.45e-9 is 2^-27, 0x7ffc00 SLAB_WORD_MASK, 3 SS_R | SS_W.
        const lw = (v & 0x7ffc00) + ((low & 511) << 1);
        const leaf = lc[lw];
        if ((leaf & 3) !== 0) return this.leafOut(out, leaf, lc[lw + 1], v & leaf);
        // Not present: the full walk reports it.
      }
    }
    return this.walkTables(iovaPfn, out);
  }

  private walkTables(iovaPfn: number, out: WalkResult): boolean {
    if (!(iovaPfn >= 0 && iovaPfn < this.limitPfn)) {
      out.fault = WALK_ADDRESS_SIZE;
      out.level = this.top;
      out.perm = 0;
      out.dirty = false;
      return false;
    }
    if (this.straight) return this.walkSlabs(iovaPfn, out);
    return super.walk(iovaPfn, out);
  }

  /**
   * The straight-line walk of a table whose tables lie in more than one slab: the same walk, with the
   * slab looked up whenever the next table is in another one ((hi << 7) | (lo >>> 25) is its index).
   */
  private walkSlabs(iovaPfn: number, out: WalkResult): boolean {
    const low = iovaPfn & 0x7ffffff;
    const top9 = ((iovaPfn - low) * INV_2_27) & 511;
    let s = this.rootSlab;
    let cur = this.rootSlabIndex;
    let w = this.rootSlabWord + (top9 << 1);
    let lo = s[w];
    let perm = lo;
    for (let level = 3; level > 0; level--) {
      if ((lo & (SS_R | SS_W)) === 0 || (lo & SS_PS) !== 0) break;
      const si = ((s[w + 1] & HI_ADDR_MASK) << SLAB_HI_SHIFT) | (lo >>> SLAB_LO_SHIFT);
      if (si !== cur) {
        s = this.mem.slabWords(si) ?? NO_SLAB;
        // A table outside the dense slabs: the engine's walk reads it.
        if (s === NO_SLAB) break;
        cur = si;
      }
      const base = (lo >>> 2) & SLAB_WORD_MASK;
      if (level === 1) {
        if (this.pscLevels === 3) this.psc.fill((top9 << 18) | (low >>> 9), s, base, perm);
        w = base + ((low & 511) << 1);
        lo = s[w];
        if ((lo & (SS_R | SS_W)) !== 0) return this.leafOut(out, lo, s[w + 1], perm & lo);
        break;
      }
      w = base + (((low >>> (9 * (level - 1))) & 511) << 1);
      lo = s[w];
      perm &= lo;
    }
    return radixWalk(this.codec, this.layout, this.chunks, this.rootPfn, iovaPfn, out, null);
  }

  // ---------------------------------------------------------------- A/D

  override setDirtyTracking(enable: boolean): void {
    // SS: SSADE in the PASID entry; only a domain allocated for dirty tracking may turn it on. FS
    // hardware always maintains A/D, so there is nothing to switch.
    this.hwAccessDirty = hardwareUpdatesAD(this.fs, this.trackDirty, enable);
    super.setDirtyTracking(enable);
  }

  override markAccess(iovaPfn: number, write: boolean): void {
    if (this.hwAccessDirty) super.markAccess(iovaPfn, write);
  }
}

/** A walk that found no present entry at `level`, reported as the engine's walk does (1 is WALK_NOT_PRESENT). */
function walkMissing(out: WalkResult, level: number): false {
  out.fault = 1;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

// -------------------------------------------------------------------- foreign walks

const ssCodecs = [new VtdSsCodec({ executeEnable: false, snoop: false, forceWriteable: false }), new VtdSsCodec({ executeEnable: true, snoop: false, forceWriteable: false })];
const fsCodec = new VtdFsCodec({ trackDirty: false, global: false });
const foreignChunks = new ChunkCache();

/**
 * Walks a guest's table (nested translation): every table pointer goes through `tableToPhys`. The
 * leaf levels are those of the configuration's page sizes (at least 4K); `maxLeafLevels` restricts
 * them further (FL1GP clear: no 1G leaves).
 */
export function walkForeignVtd(
  cfg: Readonly<PageTableConfig>,
  firstStage: boolean,
  maxLeafLevels: number,
  rootPfn: number,
  mem: PhysicalMemory,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: (pfn: number) => number,
): boolean {
  let levels = cfg.levels;
  if (levels === undefined) levels = firstStage ? (cfg.ias > 48 ? 5 : 4) : Math.max(3, Math.ceil((cfg.ias - 12) / 9));
  const valid = levels >= (firstStage ? 4 : 3) && levels <= 5 && cfg.ias <= 12 + 9 * levels;
  if (!valid || !(iovaPfn >= 0 && iovaPfn < 2 ** (cfg.ias - 12))) {
    out.fault = WALK_ADDRESS_SIZE;
    out.level = valid ? levels - 1 : 0;
    out.perm = 0;
    out.dirty = false;
    return false;
  }
  const layout = vtdLayout(levels, cfg.ias, 52, (leafLevelsFromBitmap(cfg.pgsizeBitmap) | 1) & maxLeafLevels);
  foreignChunks.bind(mem);
  const codec = firstStage ? fsCodec : ssCodecs[cfg.options?.['slee'] === true ? 1 : 0];
  return radixWalk(codec, layout, foreignChunks, rootPfn, iovaPfn, out, tableToPhys);
}
