/**
 * VMSAv8-64 long-descriptor page tables as SMMUv3 walks them: `arm-lpae-s1` (CD.TTB0, stage 1) and
 * `arm-lpae-s2` (STE.S2TTB, stage 2), the formats of Linux io-pgtable-arm.
 *
 * Granules 4K, 16K and 64K (`cfg.granule`, default 4K) resolve 9, 11 and 13 bits per level; the start
 * level follows from the input size (`levels = ceil((ias - granule_shift) / bits_per_level)`), and a
 * stage-2 table may start one level lower with up to 16 concatenated top-level tables (chosen as older
 * Linux does: start level 0 with at most 16 entries; or forced by asking for one level fewer through
 * `cfg.levels`). Blocks: 4K granule 1G and 2M; 16K 32M; 64K 512M, and 4T with a 52-bit output
 * (64K + `cfg.oas` 52 packs PA[51:48] into descriptor bits [15:12], FEAT_LPA).
 *
 * Page numbers are 4 KiB units whatever the granule; with 16K/64K a map of misaligned page numbers or
 * length is -EINVAL. A table of a 16K/64K granule spans 4/16 contiguous, size-aligned 4 KiB frames; the
 * concatenated stage-2 PGD up to 256, allocated as aligned runs (core's allocTableFrames).
 *
 * Internally levels are numbered as the rest of ioasid numbers them: 0 is the page level (Arm level
 * 3), `top` is the start level (Arm level 3 - top).
 */
import type { PhysicalMemory } from '@ioasid/core';
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  WALK_ADDRESS_SIZE,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_RESERVED_BITS,
  WALK_TABLE_FAULT,
  type IoPageTable,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
  type WalkResult,
  type WalkStep,
  traceRadix,
  ChunkCache,
  ERRNO,
  allocTableFrames,
  isPfn,
  releaseTableFrames,
} from '@ioasid/core/driver';
import { lpaeTraceSpec } from './pgtable-lpae-trace.js';

const EINVAL = ERRNO.EINVAL;
const ENOMEM = ERRNO.ENOMEM;
const EEXIST = ERRNO.EEXIST;
const ERANGE = ERRNO.ERANGE;

export const ARM_LPAE_S1_FORMAT = 'arm-lpae-s1';
export const ARM_LPAE_S2_FORMAT = 'arm-lpae-s2';

// ------------------------------------------------------------------ descriptor bits (low word)

/** bits[1:0]: 0b11 table (levels 0-2) or page (level 3), 0b01 block. */
export const LPAE_VALID = 1 << 0;
export const LPAE_TYPE_TABLE = 3;
export const LPAE_TYPE_PAGE = 3;
export const LPAE_TYPE_BLOCK = 1;
/** Stage 1: AttrIndx[2:0] at bit 2, indices into the MAIR Linux programs. */
export const LPAE_ATTRINDX_SHIFT = 2;
export const LPAE_MAIR_IDX_NC = 0;
export const LPAE_MAIR_IDX_CACHE = 1;
export const LPAE_MAIR_IDX_DEV = 2;
/** Stage 1 AP[1] (EL0 / unprivileged access) and AP[2] (read-only). */
export const LPAE_AP_UNPRIV = 1 << 6;
export const LPAE_AP_RDONLY = 1 << 7;
/** Stage 2 S2AP: read, write. */
export const LPAE_HAP_READ = 1 << 6;
export const LPAE_HAP_WRITE = 1 << 7;
/** Stage 2 MemAttr[3:0] at bit 2. */
export const LPAE_MEMATTR_OIWB = 0xf << 2;
export const LPAE_MEMATTR_NC = 0x5 << 2;
export const LPAE_MEMATTR_DEV = 0x1 << 2;
export const LPAE_MEMATTR_FWB_WB = 0x6 << 2;
/** SH[1:0] at bit 8. */
export const LPAE_SH_OS = 2 << 8;
export const LPAE_SH_IS = 3 << 8;
export const LPAE_AF = 1 << 10;
export const LPAE_NG = 1 << 11;

// ------------------------------------------------------------------ descriptor bits (high word = bits 63:32)

/** DBM, bit 51. */
export const LPAE_HI_DBM = 1 << 19;
/** PXN bit 53, UXN/XN bit 54; Linux's ARM_LPAE_PTE_XN sets both. */
export const LPAE_HI_PXN = 1 << 21;
export const LPAE_HI_UXN = 1 << 22;
export const LPAE_HI_XN = LPAE_HI_PXN | LPAE_HI_UXN;
/** Stage-1 table descriptor hierarchical controls: PXNTable 59, UXNTable 60, APTable 62:61. */
export const LPAE_HI_PXNTABLE = 1 << 27;
export const LPAE_HI_UXNTABLE = 1 << 28;
export const LPAE_HI_APTABLE_NOEL0 = 1 << 29;
export const LPAE_HI_APTABLE_RDONLY = 1 << 30;
const HI_TABLE_CONTROLS = LPAE_HI_PXNTABLE | LPAE_HI_UXNTABLE | LPAE_HI_APTABLE_NOEL0 | LPAE_HI_APTABLE_RDONLY;

/** Output address bits 47:32 in the high word. */
const HI_ADDR_MASK = 0xffff;
const TWO_20 = 1048576;
const TWO_36 = 68719476736;
/** ARM_LPAE_S2_MAX_CONCAT_PAGES. */
const S2_MAX_CONCAT = 16;

/** Everything that follows from (stage, granule, ias, oas, levels): validated once. */
export class LpaeGeometry {
  /** log2(granule) - 12: 0, 2, 4. */
  readonly g: number;
  readonly bitsPerLevel: number;
  /** Entries of a non-top table. */
  readonly entries: number;
  readonly tableFrames: number;
  readonly levels: number;
  /** Internal level of the top table (levels - 1). */
  readonly top: number;
  /** Arm start level (4 - levels). */
  readonly startLevel: number;
  readonly rootEntries: number;
  readonly rootFrames: number;
  /** Concatenated top-level tables (1 when not concatenated). */
  readonly concatenated: number;
  readonly limitPfn: number;
  readonly oaLimitPfn: number;
  /** Per internal level: 4 KiB pages one entry covers, and its exact reciprocal. */
  readonly span: Float64Array;
  readonly invSpan: Float64Array;
  /** Bit per internal level: a leaf may sit there (allowed by the architecture and the bitmap). */
  readonly leafLevels: number;
  readonly pgsizeBitmap: bigint;
  /** 64K granule with a 52-bit output: PA[51:48] in descriptor bits [15:12]. */
  readonly lpa: boolean;
  readonly ias: number;
  readonly oas: number;

  constructor(g: number, levels: number, pgdBits: number, ias: number, oas: number, leafLevels: number, pgsizeBitmap: bigint) {
    this.g = g;
    this.bitsPerLevel = 9 + g;
    this.entries = 1 << this.bitsPerLevel;
    this.tableFrames = 1 << g;
    this.levels = levels;
    this.top = levels - 1;
    this.startLevel = 4 - levels;
    this.rootEntries = 2 ** pgdBits;
    this.rootFrames = Math.max(1, (this.rootEntries * 8) / 4096);
    this.concatenated = Math.max(1, this.rootEntries / this.entries);
    this.ias = ias;
    this.oas = oas;
    this.limitPfn = 2 ** (ias - 12);
    this.oaLimitPfn = 2 ** (oas - 12);
    this.span = new Float64Array(4);
    this.invSpan = new Float64Array(4);
    for (let l = 0; l < 4; l++) {
      this.span[l] = 2 ** (g + this.bitsPerLevel * l);
      this.invSpan[l] = 1 / this.span[l];
    }
    this.leafLevels = leafLevels;
    this.pgsizeBitmap = pgsizeBitmap;
    this.lpa = g === 4 && oas > 48;
  }

  /** Entries of the table at internal level `level`. */
  entriesAt(level: number): number {
    return level === this.top ? this.rootEntries : this.entries;
  }

  /** Page number held by a table/block/page descriptor. */
  decode(lo: number, hi: number): number {
    if (this.lpa) return (hi & HI_ADDR_MASK) * TWO_20 + ((lo >>> 16) << 4) + ((lo >>> 12) & 0xf) * TWO_36;
    return (hi & HI_ADDR_MASK) * TWO_20 + (lo >>> 12);
  }

  /** Address part of a descriptor's low word for page number `pfn` (granule-aligned). */
  encodeLo(pfn: number): number {
    if (this.lpa) return ((pfn & 0xffff0) << 12) | (((pfn / TWO_36) & 0xf) << 12);
    return pfn << 12;
  }

  encodeHi(pfn: number): number {
    return (pfn / TWO_20) & HI_ADDR_MASK;
  }
}

/** Architecture block sizes per granule, as internal-level bits: 4K 2M+1G, 16K 32M, 64K 512M (+4T with LPA). */
function archLeafLevels(g: number, oas: number): number {
  if (g === 0) return 0b111;
  if (g === 2) return 0b011;
  return oas > 48 ? 0b111 : 0b011;
}

function leafBitmap(g: number, leafLevels: number): bigint {
  let m = 0n;
  for (let l = 0; l < 3; l++) if ((leafLevels >> l) & 1) m |= 1n << BigInt(12 + g + (9 + g) * l);
  return m;
}

/**
 * Validates a configuration into a geometry, or returns a negative errno. `forAlloc` restricts
 * cfg.pgsizeBitmap (alloc must keep the granule's page size); walkForeign takes the bitmap as is.
 */
export function lpaeGeometry(cfg: Readonly<PageTableConfig>, stage: 1 | 2): LpaeGeometry | number {
  const granule = cfg.granule ?? defaultGranule(cfg.pgsizeBitmap);
  const pgShift = granule === 4096 ? 12 : granule === 16384 ? 14 : granule === 65536 ? 16 : 0;
  if (pgShift === 0) return -EINVAL;
  const g = pgShift - 12;
  const bpl = pgShift - 3;
  const ias = cfg.ias;
  const maxBits = g === 4 ? 52 : 48;
  if (!Number.isInteger(ias) || ias <= pgShift || ias > maxBits) return -EINVAL;
  if (!Number.isInteger(cfg.oas) || cfg.oas < 32 || cfg.oas > 52) return -EINVAL;
  // 52-bit output needs the 64K granule (FEAT_LPA); other granules are limited to 48 bits.
  const oas = g === 4 ? cfg.oas : Math.min(cfg.oas, 48);
  const vaBits = ias - pgShift;
  const natural = Math.ceil(vaBits / bpl);
  let levels = cfg.levels ?? natural;
  if (!Number.isInteger(levels) || levels < 1 || levels > 4) return -EINVAL;
  let pgdBits = vaBits - bpl * (levels - 1);
  if (pgdBits <= 0) return -EINVAL;
  if (pgdBits > bpl) {
    // Fewer levels than the input size needs: only stage 2 can, by concatenating top-level tables.
    if (stage !== 2 || 2 ** (pgdBits - bpl) > S2_MAX_CONCAT) return -EINVAL;
  } else if (stage === 2 && cfg.levels === undefined && levels === 4 && 2 ** pgdBits <= S2_MAX_CONCAT) {
    // arm_64_lpae_alloc_pgtable_s2(): a start-level-0 PGD of at most 16 entries is concatenated
    // into the level below, saving a level of walk.
    levels--;
    pgdBits += bpl;
  }
  const arch = archLeafLevels(g, oas);
  const allowed = leafBitmap(g, arch);
  const pgsize = cfg.pgsizeBitmap & allowed;
  if ((pgsize & (1n << BigInt(pgShift))) === 0n) return -EINVAL;
  let leafLevels = 1;
  for (let l = 1; l < 3; l++) if ((pgsize & (1n << BigInt(12 + g + bpl * l))) !== 0n) leafLevels |= 1 << l;
  return new LpaeGeometry(g, levels, pgdBits, ias, oas, leafLevels, pgsize);
}

/** Linux picks the granule from the bitmap, preferring the CPU page size; we prefer 4K. */
function defaultGranule(bitmap: bigint): number {
  if (bitmap & (1n << 12n)) return 4096;
  if (bitmap & (1n << 14n)) return 16384;
  if (bitmap & (1n << 16n)) return 65536;
  return 0;
}

// ------------------------------------------------------------------ the table

export class LpaePageTable implements IoPageTable {
  readonly format: string;
  readonly cfg: Readonly<PageTableConfig>;
  readonly rootPfn: number;
  readonly levels: number;
  /** The geometry (granule, levels, concatenation) in use; e.g. for the STE S2SL0 / CD TCR fields. */
  readonly geometry: LpaeGeometry;

  private readonly memory: PageTableMemory;
  private readonly mem: PhysicalMemory;
  private readonly chunks = new ChunkCache();
  private readonly stage2: boolean;
  private readonly s2fwb: boolean;
  private readonly trackDirty: boolean;
  /**
   * HTTU: the SMMU updates AF and, with DBM, the write permission (CD.HA/HD, STE.S2HA/S2HD). Linux sets
   * HD for the life of a dirty-tracking domain (arm_smmu_set_dirty_tracking switches nothing).
   */
  private readonly hwDirty: boolean;
  private limitPfn: number;
  private frames: number;
  private freed = false;
  private done = 0;
  private stop = false;

  constructor(stage2: boolean, cfg: Readonly<PageTableConfig>, geo: LpaeGeometry, memory: PageTableMemory, rootPfn: number) {
    this.format = stage2 ? ARM_LPAE_S2_FORMAT : ARM_LPAE_S1_FORMAT;
    this.cfg = cfg;
    this.geometry = geo;
    this.memory = memory;
    this.mem = memory.mem;
    this.chunks.bind(memory.mem);
    this.rootPfn = rootPfn;
    this.levels = geo.levels;
    this.stage2 = stage2;
    this.s2fwb = cfg.options?.['s2fwb'] === true;
    this.trackDirty = cfg.dirtyTracking === true;
    this.hwDirty = this.trackDirty;
    this.limitPfn = geo.limitPfn;
    this.frames = geo.rootFrames;
  }

  /** 4 KiB frames holding table pages (a 64K-granule table counts 16). */
  get tablePages(): number {
    return this.frames;
  }

  // ---------------------------------------------------------------- frames

  private allocFrames(count: number): number {
    return allocTableFrames(this.memory, count);
  }

  private releaseFrames(base: number, count: number): void {
    releaseTableFrames(this.memory, base, count);
  }

  // ---------------------------------------------------------------- leaf attributes

  private leafLo(prot: number): number {
    let lo = LPAE_AF;
    if (!this.stage2) {
      // arm_lpae_prot_to_pte(), stage 1.
      lo |= LPAE_NG;
      if (!(prot & IOMMU_WRITE) && prot & IOMMU_READ) lo |= LPAE_AP_RDONLY;
      if (!(prot & IOMMU_PRIV)) lo |= LPAE_AP_UNPRIV;
      if (prot & IOMMU_MMIO) lo |= LPAE_MAIR_IDX_DEV << LPAE_ATTRINDX_SHIFT;
      else if (prot & IOMMU_CACHE) lo |= LPAE_MAIR_IDX_CACHE << LPAE_ATTRINDX_SHIFT;
      else lo |= LPAE_MAIR_IDX_NC << LPAE_ATTRINDX_SHIFT;
    } else {
      if (prot & IOMMU_READ) lo |= LPAE_HAP_READ;
      if (prot & IOMMU_WRITE) lo |= LPAE_HAP_WRITE;
      if (prot & IOMMU_MMIO) lo |= LPAE_MEMATTR_DEV;
      else if (prot & IOMMU_CACHE) lo |= this.s2fwb ? LPAE_MEMATTR_FWB_WB : LPAE_MEMATTR_OIWB;
      else lo |= LPAE_MEMATTR_NC;
    }
    lo |= prot & IOMMU_CACHE ? LPAE_SH_IS : LPAE_SH_OS;
    return lo;
  }

  private leafHi(prot: number): number {
    let hi = 0;
    // With HTTU HD a writable leaf carries DBM and starts writable-dirty, as Linux maps it; dirty
    // tracking then begins with a read-and-clear that makes it writable-clean.
    if (this.trackDirty && prot & IOMMU_WRITE) hi |= LPAE_HI_DBM;
    if (prot & IOMMU_NOEXEC) hi |= LPAE_HI_XN;
    return hi;
  }

  // ---------------------------------------------------------------- map

  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    if (this.freed || !isPfn(iovaPfn) || !isPfn(paPfn) || !Number.isInteger(npages) || npages <= 0) return -EINVAL;
    const gm = this.geometry.tableFrames - 1;
    if ((iovaPfn & gm) !== 0 || (paPfn & gm) !== 0 || (npages & gm) !== 0) return -EINVAL;
    if (iovaPfn + npages > this.limitPfn || paPfn + npages > this.geometry.oaLimitPfn) return -ERANGE;
    // io-pgtable-arm maps nothing, successfully, when neither read nor write is asked for.
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return 0;
    this.done = 0;
    const r = this.mapLevel(this.rootPfn, this.geometry.top, iovaPfn, paPfn, npages, this.leafLo(prot), this.leafHi(prot));
    if (r !== 0) {
      const end = r === -ENOMEM ? this.done + this.geometry.tableFrames : this.done;
      if (end > 0) this.unmapLevel(this.rootPfn, this.geometry.top, iovaPfn, end);
      this.stop = false;
    }
    return r;
  }

  private mapLevel(table: number, level: number, iova: number, pa: number, n: number, lo: number, hi: number): number {
    const geo = this.geometry;
    const c = this.mem.chunkWords(table);
    const base = (table & 511) << 10;
    if (level === 0) {
      const g = geo.g;
      const step = 1 << g;
      let w = base + (((iova >>> 0) >>> g) & (geo.entriesAt(0) - 1)) * 2;
      const end = w + (n >>> g) * 2;
      const start = w;
      let p = pa;
      lo |= LPAE_TYPE_PAGE;
      if (!geo.lpa) {
        let h = ((p / TWO_20) & HI_ADDR_MASK) | hi;
        for (; w < end; w += 2) {
          if ((c[w] & LPAE_VALID) !== 0) {
            this.done += ((w - start) >> 1) << g;
            return -EEXIST;
          }
          c[w] = (p << 12) | lo;
          c[w + 1] = h;
          p += step;
          if ((p & 0xfffff) === 0) h = ((p / TWO_20) & HI_ADDR_MASK) | hi;
        }
      } else {
        for (; w < end; w += 2) {
          if ((c[w] & LPAE_VALID) !== 0) {
            this.done += ((w - start) >> 1) << g;
            return -EEXIST;
          }
          c[w] = geo.encodeLo(p) | lo;
          c[w + 1] = geo.encodeHi(p) | hi;
          p += step;
        }
      }
      this.done += n;
      return 0;
    }
    const span = geo.span[level];
    const canLeaf = ((geo.leafLevels >> level) & 1) !== 0;
    let w = base + ((iova * geo.invSpan[level]) & (geo.entriesAt(level) - 1)) * 2;
    while (n > 0) {
      const e = c[w];
      const off = iova % span;
      if (canLeaf && off === 0 && n >= span && pa % span === 0) {
        if ((e & LPAE_VALID) !== 0) return -EEXIST;
        c[w] = geo.encodeLo(pa) | lo | LPAE_TYPE_BLOCK;
        c[w + 1] = geo.encodeHi(pa) | hi;
        this.done += span;
        iova += span;
        pa += span;
        n -= span;
        w += 2;
        continue;
      }
      let child: number;
      if ((e & LPAE_VALID) === 0) {
        child = this.allocFrames(geo.tableFrames);
        if (child < 0) return -ENOMEM;
        this.frames += geo.tableFrames;
        c[w] = geo.encodeLo(child) | LPAE_TYPE_TABLE;
        c[w + 1] = geo.encodeHi(child);
      } else if ((e & 3) === LPAE_TYPE_BLOCK) {
        return -EEXIST;
      } else {
        child = geo.decode(e, c[w + 1]);
      }
      const take = n < span - off ? n : span - off;
      const r = this.mapLevel(child, level - 1, iova, pa, take, lo, hi);
      if (r !== 0) return r;
      iova += take;
      pa += take;
      n -= take;
      w += 2;
    }
    return 0;
  }

  // ---------------------------------------------------------------- unmap

  unmap(iovaPfn: number, npages: number): number {
    if (this.freed || !(iovaPfn >= 0) || !(npages > 0) || iovaPfn >= this.limitPfn) return 0;
    const gm = this.geometry.tableFrames - 1;
    const iova = Math.floor(iovaPfn);
    // A range that is not granule aligned cannot be unmapped (arm_lpae_unmap_pages WARNs, returns 0).
    if ((iova & gm) !== 0) return 0;
    let n = Math.min(Math.floor(npages), this.limitPfn - iova);
    n -= n & gm;
    if (n === 0) return 0;
    this.stop = false;
    const removed = this.unmapLevel(this.rootPfn, this.geometry.top, iova, n);
    this.stop = false;
    return removed;
  }

  private unmapLevel(table: number, level: number, iova: number, n: number): number {
    const c = this.mem.chunkIfBacked(table);
    if (c === undefined) return 0;
    const geo = this.geometry;
    const base = (table & 511) << 10;
    if (level === 0) {
      const g = geo.g;
      const start = base + (((iova >>> 0) >>> g) & (geo.entriesAt(0) - 1)) * 2;
      const end = start + (n >>> g) * 2;
      let cnt = 0;
      for (let w = start; w < end; w += 2) if ((c[w] & LPAE_VALID) !== 0) cnt++;
      c.fill(0, start, end);
      return cnt << g;
    }
    const span = geo.span[level];
    let w = base + ((iova * geo.invSpan[level]) & (geo.entriesAt(level) - 1)) * 2;
    let removed = 0;
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const e = c[w];
      if ((e & LPAE_VALID) !== 0) {
        if ((e & 3) === LPAE_TYPE_BLOCK) {
          // Split-on-unmap is gone from Linux: a block goes whole or the unmap stops there.
          if (take !== span) {
            this.stop = true;
            return removed;
          }
          c[w] = 0;
          c[w + 1] = 0;
          removed += span;
        } else {
          const child = geo.decode(e, c[w + 1]);
          removed += this.unmapLevel(child, level - 1, iova, take);
          if ((take === span && !this.stop) || this.tableEmpty(child)) {
            c[w] = 0;
            c[w + 1] = 0;
            this.releaseFrames(child, geo.tableFrames);
            this.frames -= geo.tableFrames;
          }
          if (this.stop) return removed;
        }
      }
      iova += take;
      n -= take;
      w += 2;
    }
    return removed;
  }

  private tableEmpty(table: number): boolean {
    const c = this.mem.chunkIfBacked(table);
    if (c === undefined) return true;
    const base = (table & 511) << 10;
    const end = base + this.geometry.entries * 2;
    for (let w = base; w < end; w += 2) if ((c[w] & LPAE_VALID) !== 0) return false;
    return true;
  }

  // ---------------------------------------------------------------- walk

  trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, lpaeTraceSpec(this.geometry), iovaPfn);
  }

  walk(iovaPfn: number, out: WalkResult): boolean {
    if (!(iovaPfn >= 0 && iovaPfn < this.limitPfn)) return walkFault(out, WALK_ADDRESS_SIZE, this.geometry.top);
    return lpaeWalk(this.geometry, this.stage2, this.hwDirty, this.chunks, this.rootPfn, iovaPfn, out, null);
  }

  // ---------------------------------------------------------------- A/D

  markAccess(iovaPfn: number, write: boolean): void {
    if (this.freed || !(iovaPfn >= 0 && iovaPfn < this.limitPfn)) return;
    const geo = this.geometry;
    let table = this.rootPfn;
    for (let level = geo.top; level >= 0; level--) {
      const c = this.chunks.get(table);
      if (c === undefined) return;
      const w = ((table & 511) << 10) + ((iovaPfn * geo.invSpan[level]) & (geo.entriesAt(level) - 1)) * 2;
      const lo = c[w];
      if ((lo & LPAE_VALID) === 0) return;
      const leaf = level === 0 ? (lo & 3) === LPAE_TYPE_PAGE : (lo & 3) === LPAE_TYPE_BLOCK;
      if (leaf) {
        // HTTU: AF on any access (HA); a write through a DBM leaf makes it writable-dirty (HD).
        let v = lo | LPAE_AF;
        if (write && this.hwDirty && (c[w + 1] & LPAE_HI_DBM) !== 0) v = this.stage2 ? v | LPAE_HAP_WRITE : v & ~LPAE_AP_RDONLY;
        c[w] = v;
        return;
      }
      if (level === 0) return;
      table = geo.decode(lo, c[w + 1]);
    }
  }

  readAndClearDirty(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    if (this.freed || !(iovaPfn >= 0) || !(npages > 0) || iovaPfn >= this.limitPfn) return;
    const n = Math.min(Math.floor(npages), this.limitPfn - Math.floor(iovaPfn));
    this.dirtyLevel(this.rootPfn, this.geometry.top, Math.floor(iovaPfn), n, noClear, onDirty);
  }

  private dirtyLevel(table: number, level: number, iova: number, n: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    const c = this.chunks.get(table);
    if (c === undefined) return;
    const geo = this.geometry;
    const span = geo.span[level];
    let w = ((table & 511) << 10) + ((iova * geo.invSpan[level]) & (geo.entriesAt(level) - 1)) * 2;
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const e = c[w];
      if ((e & LPAE_VALID) !== 0) {
        if (level === 0 || (e & 3) === LPAE_TYPE_BLOCK) {
          if (level !== 0 || (e & 3) === LPAE_TYPE_PAGE) {
            // Writable-dirty: DBM set and the write permission granted (arm_lpae_read_and_clear_dirty).
            const hi = c[w + 1];
            if ((hi & LPAE_HI_DBM) !== 0 && (this.stage2 ? (e & LPAE_HAP_WRITE) !== 0 : (e & LPAE_AP_RDONLY) === 0)) {
              onDirty(iova - off, span);
              if (!noClear) c[w] = this.stage2 ? e & ~LPAE_HAP_WRITE : e | LPAE_AP_RDONLY;
            }
          }
        } else {
          this.dirtyLevel(geo.decode(e, c[w + 1]), level - 1, iova, take, noClear, onDirty);
        }
      }
      iova += take;
      n -= take;
      w += 2;
    }
  }

  // ---------------------------------------------------------------- free

  free(): void {
    if (this.freed) return;
    this.freeLevel(this.rootPfn, this.geometry.top);
    this.releaseFrames(this.rootPfn, this.geometry.rootFrames);
    this.frames = 0;
    this.freed = true;
    this.limitPfn = 0;
  }

  private freeLevel(table: number, level: number): void {
    if (level === 0) return;
    const c = this.mem.chunkIfBacked(table);
    if (c === undefined) return;
    const geo = this.geometry;
    const base = (table & 511) << 10;
    const end = base + geo.entriesAt(level) * 2;
    for (let w = base; w < end; w += 2) {
      const e = c[w];
      if ((e & 3) !== LPAE_TYPE_TABLE) continue;
      const child = geo.decode(e, c[w + 1]);
      this.freeLevel(child, level - 1);
      c[w] = 0;
      c[w + 1] = 0;
      this.releaseFrames(child, geo.tableFrames);
    }
  }
}

// ------------------------------------------------------------------ walker

function walkFault(out: WalkResult, reason: number, level: number): boolean {
  out.fault = reason;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

/**
 * One walk from the top table. Stage 1 applies the table descriptors' APTable/XNTable controls
 * hierarchically; a privileged-only page (AP[1] clear or APTable[0] set) grants only privileged requests.
 * A DBM leaf counts as writable when hardware dirty management is on.
 */
function lpaeWalk(
  geo: LpaeGeometry,
  stage2: boolean,
  hwDirty: boolean,
  chunks: ChunkCache,
  rootPfn: number,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: ((pfn: number) => number) | null,
): boolean {
  let table = rootPfn;
  let level = geo.top;
  let tableHi = 0;
  for (;;) {
    const idx = (iovaPfn * geo.invSpan[level]) & (geo.entriesAt(level) - 1);
    // A 16K/64K table or a concatenated PGD spans several frames: go to the one holding the entry
    // (a guest's frames need not be contiguous in host memory, so each is translated on its own).
    let frame = table + (idx >>> 9);
    if (tableToPhys !== null) {
      const hpfn = tableToPhys(frame);
      if (hpfn < 0) {
        out.tablePfn = frame;
        return walkFault(out, WALK_TABLE_FAULT, level);
      }
      frame = hpfn;
    }
    const c = chunks.get(frame);
    if (c === undefined) return walkFault(out, WALK_NOT_PRESENT, level);
    const w = ((frame & 511) << 10) + ((idx & 511) << 1);
    const lo = c[w];
    if ((lo & LPAE_VALID) === 0) return walkFault(out, WALK_NOT_PRESENT, level);
    const hi = c[w + 1];
    const type = lo & 3;
    if (level !== 0 && type === LPAE_TYPE_TABLE) {
      if (!stage2) tableHi |= hi & HI_TABLE_CONTROLS;
      table = geo.decode(lo, hi);
      level--;
      continue;
    }
    if (level === 0 && type !== LPAE_TYPE_PAGE) return walkFault(out, WALK_NOT_PRESENT, level);
    if (level !== 0 && ((geo.leafLevels >> level) & 1) === 0) return walkFault(out, WALK_RESERVED_BITS, level);
    const pfn = geo.decode(lo, hi);
    const mask = geo.span[level] - 1;
    out.pfn = pfn - (pfn & mask) + (iovaPfn & mask);
    const dbm = (hi & LPAE_HI_DBM) !== 0;
    let perm: number;
    let dirty: boolean;
    if (stage2) {
      // Stage 2 has no privilege levels: both get the same (permission.ts).
      let p = ((lo & LPAE_HAP_READ) !== 0 ? PERM_READ : 0) | ((lo & LPAE_HAP_WRITE) !== 0 || (dbm && hwDirty) ? PERM_WRITE : 0);
      if ((hi & LPAE_HI_UXN) === 0) p |= PERM_EXEC;
      perm = p | (p << 4);
      dirty = dbm && (lo & LPAE_HAP_WRITE) !== 0;
    } else {
      // AP[1] (or APTable[0]) decides whether unprivileged requests get anything; PXN and UXN (and
      // their table forms) take execute away from one level each. A page writable by unprivileged
      // requests is never privileged-executable (the architecture's implicit PXN).
      const userOk = (lo & LPAE_AP_UNPRIV) !== 0 && (tableHi & LPAE_HI_APTABLE_NOEL0) === 0;
      const xhi = hi | tableHi;
      const rw = PERM_READ | (((lo & LPAE_AP_RDONLY) === 0 || (dbm && hwDirty)) && (tableHi & LPAE_HI_APTABLE_RDONLY) === 0 ? PERM_WRITE : 0);
      const userRwx = userOk ? rw | ((xhi & (LPAE_HI_UXN | LPAE_HI_UXNTABLE)) === 0 ? PERM_EXEC : 0) : 0;
      const privX = (xhi & (LPAE_HI_PXN | LPAE_HI_PXNTABLE)) === 0 && (userRwx & PERM_WRITE) === 0 ? PERM_EXEC : 0;
      perm = userRwx | ((rw | privX) << 4);
      dirty = dbm && (lo & LPAE_AP_RDONLY) === 0;
    }
    out.perm = perm;
    out.pageShift = 12 + geo.g + geo.bitsPerLevel * level;
    out.level = level;
    out.dirty = dirty;
    out.fault = WALK_OK;
    return true;
  }
}

const foreignChunks = new ChunkCache();

function makeFormat(stage: 1 | 2): PageTableFormat {
  const id = stage === 1 ? ARM_LPAE_S1_FORMAT : ARM_LPAE_S2_FORMAT;
  return {
    id,
    describe:
      stage === 1
        ? 'Arm VMSAv8-64 stage 1: 4K (2M, 1G blocks), 16K (32M), 64K (512M, 4T with 52-bit PA) granules, up to 48-bit input (52 with 64K), 48/52-bit output'
        : 'Arm VMSAv8-64 stage 2: 4K (2M, 1G blocks), 16K (32M), 64K (512M, 4T with 52-bit PA) granules, up to 48-bit input (52 with 64K), up to 16 concatenated top-level tables',
    alloc(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
      const geo = lpaeGeometry(cfg, stage);
      if (typeof geo === 'number') return geo;
      const root = allocTableFrames(memory, geo.rootFrames);
      if (root < 0) return -ENOMEM;
      // io_pgtable_cfg is in/out: report the sizes (and output size) actually provided.
      cfg.pgsizeBitmap = geo.pgsizeBitmap;
      const effective: Readonly<PageTableConfig> = Object.freeze({
        ...cfg,
        pgsizeBitmap: geo.pgsizeBitmap,
        oas: geo.oas,
        levels: geo.levels,
        granule: 4096 << geo.g,
        options: Object.freeze({ ...(cfg.options ?? {}) }),
      });
      return new LpaePageTable(stage === 2, effective, geo, memory, root);
    },
    walkForeign(cfg, rootPfn, mem, iovaPfn, out, tableToPhys): boolean {
      const geo = lpaeGeometry(cfg, stage);
      if (typeof geo === 'number') return walkFault(out, WALK_ADDRESS_SIZE, 0);
      if (!(iovaPfn >= 0 && iovaPfn < geo.limitPfn)) return walkFault(out, WALK_ADDRESS_SIZE, geo.top);
      foreignChunks.bind(mem);
      return lpaeWalk(geo, stage === 2, cfg.dirtyTracking === true, foreignChunks, rootPfn, iovaPfn, out, tableToPhys);
    },
  };
}

export const armLpaeS1: PageTableFormat = makeFormat(1);
export const armLpaeS2: PageTableFormat = makeFormat(2);
