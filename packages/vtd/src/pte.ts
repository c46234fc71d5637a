/**
 * The radix engine shared by the VT-d second-stage (`vtd-ss`) and first-stage (`vtd-fs`) formats.
 *
 * Both are 4 KiB-granule, 512-entry, 64-bit-PTE trees with leaves allowed at levels 0..2 (4K, 2M, 1G)
 * and a PS bit (7) marking a leaf above level 0; they differ in the present test, the table-entry bits,
 * the leaf attribute bits and where A/D live. Those differences are plain numbers held by one class,
 * so every table is the same hidden class and the hot paths stay monomorphic.
 *
 * Hot-path rules (docs/performance.md): PTEs are read and written as two u32 halves straight out of the
 * chunk's Uint32Array; no BigInt, no allocation per PTE or per walk; runs of PTEs inside one table page
 * are written in one pass while keeping the position, never re-walking from the root per page.
 * Page numbers may exceed 2^31, so table indices come from `(pfn / 512^level) & 511` (exact for every
 * integer below 2^53) rather than from shifts.
 *
 * There is no per-table bookkeeping: whether a table page became empty after an unmap is recomputed by
 * scanning it, which keeps the memory cost of a mapping at exactly its 8-byte PTE.
 */
import type { PhysicalMemory } from '@ioasid/core';
import {
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
  type PageTableMemory,
  type WalkResult,
  type WalkStep,
  traceRadix,
  ChunkCache,
  ERRNO,
  isPfn,
} from '@ioasid/core/driver';
import { vtdTraceSpec } from './pgtable-trace.js';

export const EINVAL = ERRNO.EINVAL;
export const ENOMEM = ERRNO.ENOMEM;
export const EEXIST = ERRNO.EEXIST;
export const ERANGE = ERRNO.ERANGE;

/** 512^level: the number of 4 KiB pages one entry at `level` covers. */
export const LEVEL_SPAN: readonly number[] = [1, 512, 262144, 134217728, 68719476736, 35184372088832];

/** Second-stage bits (VT-d spec 9.8, Linux VTDSS_FMT_*). No present bit: an entry is present when R|W. */
export const SS_R = 1 << 0;
export const SS_W = 1 << 1;
export const SS_X = 1 << 2;
export const SS_PS = 1 << 7;
export const SS_A = 1 << 8;
export const SS_D = 1 << 9;
export const SS_SNP = 1 << 11;

/** First-stage bits: the IA-32e (x86-64) paging entry. XD is bit 63, i.e. bit 31 of the high word. */
export const FS_P = 1 << 0;
export const FS_RW = 1 << 1;
export const FS_US = 1 << 2;
export const FS_PWT = 1 << 3;
export const FS_PCD = 1 << 4;
export const FS_A = 1 << 5;
export const FS_D = 1 << 6;
export const FS_PS = 1 << 7;
export const FS_G = 1 << 8;
export const FS_XD_HI = 0x80000000 | 0;

/** Output address bits 51:32 of a PTE live in bits 19:0 of its high word. */
const HI_ADDR_MASK = 0xfffff;
const TWO_20 = 1048576;
const INV_2_27 = 1 / 134217728;
const NO_CHUNK = new Uint32Array(0);
/**
 * Paging-structure cache (see VtdPageTable.walk): direct-mapped, one slot per 2 MiB region of IOVA,
 * indexed by the region number's low bits. 1024 slots cover 2 GiB of IOVA in 4 KiB pages.
 */
const PSC_SLOTS = 1024;
/** The slots of a table that has not walked yet: every key empty, never written. */
const PSC_NO_KEYS = new Int32Array(PSC_SLOTS).fill(-1);
const PSC_NO_WORDS = new Int32Array(PSC_SLOTS);
const PSC_NO_CHUNKS: Uint32Array[] = new Array<Uint32Array>(PSC_SLOTS).fill(NO_CHUNK);

/** pgsize_bitmap bits of the three VT-d page sizes. */
export const SZ_4K = 1n << 12n;
export const SZ_2M = 1n << 21n;
export const SZ_1G = 1n << 30n;

/** Bit `level` set when a leaf may sit at that level (0 = 4K, 1 = 2M, 2 = 1G). */
export function leafLevelsFromBitmap(bitmap: bigint): number {
  return ((bitmap & SZ_4K) !== 0n ? 1 : 0) | ((bitmap & SZ_2M) !== 0n ? 2 : 0) | ((bitmap & SZ_1G) !== 0n ? 4 : 0);
}

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

export class VtdPageTable implements IoPageTable {
  readonly format: string;
  readonly cfg: Readonly<PageTableConfig>;
  readonly rootPfn: number;
  readonly levels: number;

  private readonly memory: PageTableMemory;
  private readonly mem: PhysicalMemory;
  private readonly chunks = new ChunkCache();
  /** The root table's chunk once it is backed (the root never moves), and its word offset. */
  private rootChunk: Uint32Array | undefined = undefined;
  // The fields the walk reads have initializers of their type: V8 then keeps them as small integers or
  // unboxed doubles (a field first defined as undefined needs a type dispatch on every load).
  private readonly rootWordBase: number = 0;
  private readonly rootChunkIndex: number = 0;
  private readonly top: number = 0;
  /** 2^(ias-12): first IOVA page number the table cannot translate. */
  private limitPfn: number = 0;
  private readonly oaLimitPfn: number;
  private readonly leafLevels: number;
  private readonly fs: boolean;
  /** Low-word bits that make an entry present: R|W for SS, P for FS. */
  private readonly presentMask: number;
  /** Low word of a non-leaf entry (before the address). */
  private readonly tableLo: number;
  private readonly accessBit: number;
  private readonly dirtyBit: number;
  private readonly writeBit: number;
  private readonly exec: boolean;
  private readonly snoop: boolean;
  private readonly forceWriteable: boolean;
  private readonly global: boolean;
  private readonly trackDirty: boolean;
  /** Hardware A/D updates are on: SS when SSADE is set in the PASID entry; FS always. */
  private hwAccessDirty: boolean;
  private pages = 1;
  private freed = false;
  /** Pages the current map() has written, so that a failure rolls back exactly them. */
  private done = 0;
  /** Set by unmapLevel when it meets a leaf the range only partly covers (the kernel stops there). */
  private stop = false;
  /**
   * Paging-structure cache of the 4-level second-stage fast walk, like the PDE cache of VT-d hardware:
   * for a 2 MiB region (key: iovaPfn / 512), where its leaf table is (chunk and word offset) and the
   * R/W/X bits the three upper levels grant (low bits of `pscWord`). It caches table pointers, never a
   * translation: the leaf PTE is still read on every walk, so a changed or cleared leaf is seen at
   * once. Only a table pointer can go stale, and table pointers change only when unmap() or free()
   * release a table (map() only fills non-present entries, and a region has a slot only if its walk
   * went through present table entries): both clear every slot once they have released a table (so
   * does map()'s rollback of a failed map). Allocated on the first walk that fills it, so a table
   * that is never walked pays nothing. "IOTLB bypassed" still holds: nothing here skips the leaf.
   */
  private pscKey: Int32Array = PSC_NO_KEYS;
  private pscWord: Int32Array = PSC_NO_WORDS;
  private pscChunk: Uint32Array[] = PSC_NO_CHUNKS;
  /** `exec` as a number (SS_X or 0), for the walk. */
  private readonly execMask: number = 0;
  /** 3 for a 4-level second-stage table (the walks the cache serves) with the cache on, else 0. */
  private pscLevels: number = 0;

  constructor(flavor: VtdFlavor, cfg: Readonly<PageTableConfig>, geo: VtdGeometry, memory: PageTableMemory, rootPfn: number) {
    this.format = flavor.format;
    this.cfg = cfg;
    this.memory = memory;
    this.mem = memory.mem;
    this.chunks.bind(memory.mem);
    this.rootWordBase = (rootPfn & 511) << 10;
    this.rootChunkIndex = Math.floor(rootPfn / 512);
    this.rootPfn = rootPfn;
    this.levels = geo.levels;
    this.top = geo.levels - 1;
    this.limitPfn = 2 ** (geo.ias - 12);
    this.oaLimitPfn = 2 ** (geo.oas - 12);
    this.leafLevels = geo.leafLevels;
    this.fs = flavor.firstStage;
    this.presentMask = flavor.firstStage ? FS_P : SS_R | SS_W;
    // Linux installs SS tables as R|W and FS tables as P|RW|US|A: permissions are decided at the leaf.
    // With SLEE, X is checked at every level too, so tables must grant it.
    this.tableLo = flavor.firstStage ? FS_P | FS_RW | FS_US | FS_A : SS_R | SS_W | (flavor.executeEnable ? SS_X : 0);
    this.accessBit = flavor.firstStage ? FS_A : SS_A;
    this.dirtyBit = flavor.firstStage ? FS_D : SS_D;
    this.writeBit = flavor.firstStage ? FS_RW : SS_W;
    this.exec = flavor.executeEnable;
    this.snoop = flavor.snoop;
    this.forceWriteable = flavor.forceWriteable;
    this.global = flavor.global;
    this.trackDirty = cfg.dirtyTracking === true;
    this.hwAccessDirty = flavor.firstStage || this.trackDirty;
    this.pscLevels = !flavor.firstStage && this.top === 3 ? 3 : 0;
    this.execMask = flavor.executeEnable ? SS_X : 0;
  }

  get tablePages(): number {
    return this.pages;
  }

  /**
   * Whether walks of a 4-level second-stage table use the paging-structure cache (on by default).
   * Off, every walk reads every level from table memory, as a walk after a PSC invalidation does.
   */
  get pagingStructureCache(): boolean {
    return this.pscLevels !== 0;
  }

  set pagingStructureCache(on: boolean) {
    this.pscFlush();
    this.pscLevels = on && !this.fs && this.top === 3 ? 3 : 0;
  }

  // ---------------------------------------------------------------- leaf attributes

  /** Low word attribute bits of a leaf for `prot`, without address and PS. */
  private leafLo(prot: number): number {
    if (this.fs) {
      // x86 cannot express write-only: P grants read. A is preset (Linux does, it saves the hardware a
      // locked update); D is preset for writable leaves unless dirty tracking wants a clean start.
      let lo = FS_P | FS_A;
      if (prot & IOMMU_WRITE) lo |= FS_RW | (this.trackDirty ? 0 : FS_D);
      if (!(prot & IOMMU_PRIV)) lo |= FS_US;
      if (prot & IOMMU_MMIO) lo |= FS_PCD | FS_PWT;
      if (this.global) lo |= FS_G;
      return lo;
    }
    // EMT/IPAT stay 0 as Linux leaves them (memory type comes from the PAT of the request / snoop).
    let lo = prot & (IOMMU_READ | IOMMU_WRITE);
    if (this.exec && !(prot & IOMMU_NOEXEC)) lo |= SS_X;
    if (this.snoop) lo |= SS_SNP;
    return lo;
  }

  private leafHi(prot: number): number {
    return this.fs && (prot & IOMMU_NOEXEC) !== 0 ? FS_XD_HI : 0;
  }

  // ---------------------------------------------------------------- map

  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    if (this.freed || !isPfn(iovaPfn) || !isPfn(paPfn) || !Number.isInteger(npages) || npages <= 0) return -EINVAL;
    // Both VT-d formats refuse a mapping that grants nothing (there is nothing to mark present).
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return -EINVAL;
    if (this.forceWriteable && (prot & IOMMU_WRITE) === 0) return -EINVAL;
    if (iovaPfn + npages > this.limitPfn || paPfn + npages > this.oaLimitPfn) return -ERANGE;
    this.done = 0;
    const r = this.mapLevel(this.rootPfn, this.top, iovaPfn, paPfn, npages, this.leafLo(prot), this.leafHi(prot));
    if (r !== 0) {
      // Everything in [iova, iova+done) is ours. On ENOMEM the page at `done` is unmapped but the path
      // to it may hold freshly allocated, still empty tables: include it so that they are pruned too.
      const end = r === -ENOMEM ? this.done + 1 : this.done;
      const pages = this.pages;
      if (end > 0) this.unmapLevel(this.rootPfn, this.top, iovaPfn, end);
      this.stop = false;
      if (this.pages !== pages) this.pscFlush();
    }
    return r;
  }

  /**
   * Maps [iova, iova+n), which lies inside the span of `table` at `level`. Leaves of the largest size
   * that alignment allows are written in runs; `this.done` counts pages written.
   */
  private mapLevel(table: number, level: number, iova: number, pa: number, n: number, lo: number, hi: number): number {
    const c = this.mem.chunkWords(table);
    const base = (table & 511) << 10;
    const pm = this.presentMask;
    if (level === 0) {
      let w = base + ((iova & 511) << 1);
      const end = w + n * 2;
      const start = w;
      let p = pa;
      let h = ((p / TWO_20) & HI_ADDR_MASK) | hi;
      for (; w < end; w += 2) {
        if ((c[w] & pm) !== 0) {
          this.done += (w - start) >> 1;
          return -EEXIST;
        }
        c[w] = (p << 12) | lo;
        c[w + 1] = h;
        p++;
        // Crossing a 4 GiB physical boundary carries into the high word.
        if ((p & HI_ADDR_MASK) === 0) h = ((p / TWO_20) & HI_ADDR_MASK) | hi;
      }
      this.done += n;
      return 0;
    }
    const span = LEVEL_SPAN[level];
    const canLeaf = ((this.leafLevels >> level) & 1) !== 0;
    let w = base + (((iova / span) & 511) << 1);
    while (n > 0) {
      const e = c[w];
      const off = iova % span;
      if (canLeaf && off === 0 && n >= span && pa % span === 0) {
        // A table here is never empty (unmap prunes them), so anything present overlaps the range.
        if ((e & pm) !== 0) return -EEXIST;
        c[w] = (pa << 12) | lo | SS_PS;
        c[w + 1] = ((pa / TWO_20) & HI_ADDR_MASK) | hi;
        this.done += span;
        iova += span;
        pa += span;
        n -= span;
        w += 2;
        continue;
      }
      let child: number;
      if ((e & pm) === 0) {
        child = this.memory.allocTable();
        if (child < 0) return -ENOMEM;
        this.pages++;
        c[w] = (child << 12) | this.tableLo;
        c[w + 1] = (child / TWO_20) & HI_ADDR_MASK;
      } else if ((e & SS_PS) !== 0) {
        return -EEXIST;
      } else {
        child = (c[w + 1] & HI_ADDR_MASK) * TWO_20 + (e >>> 12);
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
    // unmap-all passes U64_MAX-sized ranges: clip to what the table can hold.
    const n = Math.min(Math.floor(npages), this.limitPfn - Math.floor(iovaPfn));
    this.stop = false;
    const pages = this.pages;
    const removed = this.unmapLevel(this.rootPfn, this.top, Math.floor(iovaPfn), n);
    this.stop = false;
    // A released table: its pointer may sit in the paging-structure cache.
    if (this.pages !== pages) this.pscFlush();
    return removed;
  }

  private unmapLevel(table: number, level: number, iova: number, n: number): number {
    const c = this.mem.chunkIfBacked(table);
    if (c === undefined) return 0;
    const base = (table & 511) << 10;
    const pm = this.presentMask;
    if (level === 0) {
      const start = base + ((iova & 511) << 1);
      const end = start + n * 2;
      let cnt = 0;
      for (let w = start; w < end; w += 2) if ((c[w] & pm) !== 0) cnt++;
      c.fill(0, start, end);
      return cnt;
    }
    const span = LEVEL_SPAN[level];
    let w = base + (((iova / span) & 511) << 1);
    let removed = 0;
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const e = c[w];
      if ((e & pm) !== 0) {
        if ((e & SS_PS) !== 0) {
          // A huge leaf goes only as a whole (iommu unmap_pages semantics); a partial hit stops here.
          if (take !== span) {
            this.stop = true;
            return removed;
          }
          c[w] = 0;
          c[w + 1] = 0;
          removed += span;
        } else {
          const child = (c[w + 1] & HI_ADDR_MASK) * TWO_20 + (e >>> 12);
          removed += this.unmapLevel(child, level - 1, iova, take);
          if ((take === span && !this.stop) || this.tableEmpty(child)) {
            c[w] = 0;
            c[w + 1] = 0;
            this.memory.releaseTable(child);
            this.pages--;
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
    const pm = this.presentMask;
    const base = (table & 511) << 10;
    const end = base + 1024;
    for (let w = base; w < end; w += 2) if ((c[w] & pm) !== 0) return false;
    return true;
  }

  // ---------------------------------------------------------------- walk

  /** Clears the paging-structure cache (a table pointer changed or a table was released). */
  private pscFlush(): void {
    if (this.pscKey !== PSC_NO_KEYS) this.pscKey.fill(-1);
  }

  /** Remembers the leaf table of `region` (chunk `c`, word offset `base`) and the upper levels' R/W/X. */
  private pscFill(region: number, c: Uint32Array, base: number, upperPerm: number): void {
    if (this.pscKey === PSC_NO_KEYS) {
      this.pscKey = new Int32Array(PSC_SLOTS).fill(-1);
      this.pscWord = new Int32Array(PSC_SLOTS);
      this.pscChunk = new Array<Uint32Array>(PSC_SLOTS).fill(NO_CHUNK);
    }
    const s = region & (PSC_SLOTS - 1);
    this.pscKey[s] = region;
    this.pscWord[s] = base | (upperPerm & (SS_R | SS_W | SS_X));
    this.pscChunk[s] = c;
  }

  /** The leaf of a successful 4K walk: `lo`/`hiWord` the leaf PTE, `perm` the AND of every level's low word. */
  private leafOut(out: WalkResult, lo: number, hiWord: number, perm: number): true {
    const h = hiWord & HI_ADDR_MASK;
    out.pfn = h === 0 ? lo >>> 12 : h * TWO_20 + (lo >>> 12);
    const p = this.execMask !== 0 ? perm & (PERM_READ | PERM_WRITE | PERM_EXEC) : (perm & (PERM_READ | PERM_WRITE)) | ((perm & SS_R) << 2);
    // No privilege levels in the second stage: both get the same (permission.ts).
    out.perm = p | (p << 4);
    out.pageShift = 12;
    out.level = 0;
    out.dirty = (lo & SS_D) !== 0;
    out.fault = WALK_OK;
    return true;
  }

  trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, vtdTraceSpec(this.top, this.presentMask), iovaPfn);
  }

  walk(iovaPfn: number, out: WalkResult): boolean {
    // Small enough to be inlined into the caller: the paging-structure cache hit of a 4-level
    // second-stage table goes straight to the leaf table; the leaf PTE itself is read now.
    if (this.pscLevels === 3 && iovaPfn >= 0 && iovaPfn < this.limitPfn) {
      const low = iovaPfn & 0x7ffffff;
      // The 2 MiB region: iovaPfn < 2^36 here, so the region number is below 2^27.
      const region = ((((iovaPfn - low) * INV_2_27) & 511) << 18) | (low >>> 9);
      const s = region & (PSC_SLOTS - 1);
      if (this.pscKey[s] === region) {
        const v = this.pscWord[s];
        const lc = this.pscChunk[s];
        const lw = (v & 0x7fc00) + ((low & 511) << 1);
        const leaf = lc[lw];
        if ((leaf & (SS_R | SS_W)) !== 0) return this.leafOut(out, leaf, lc[lw + 1], v & leaf);
        // Not present: the full walk reports it.
      }
    }
    return this.walkTables(iovaPfn, out);
  }

  private walkTables(iovaPfn: number, out: WalkResult): boolean {
    if (!(iovaPfn >= 0 && iovaPfn < this.limitPfn)) return fault(out, WALK_ADDRESS_SIZE, this.top);
    if (this.fs) return walkFirstStage(this.chunks, this.rootPfn, this.top, this.leafLevels, iovaPfn, out, null);
    if (this.top === 3) {
      // Straight-line 4-level second-stage walk of 4K leaves, the case the DMA hot path hits. The
      // next table's chunk index ((hi << 11) | (lo >>> 21)) and word offset ((lo >>> 2) & 0x7fc00)
      // come from the PTE halves with int32 operations only, and the chunk is looked up only when
      // it changes. Anything unusual (a superpage, a missing entry, an unbacked chunk) falls through
      // to the generic walker, which reports it. A walk that reaches a leaf table fills the
      // paging-structure cache.
      const low = iovaPfn & 0x7ffffff;
      const top9 = ((iovaPfn - low) * INV_2_27) & 511;
      const region = (top9 << 18) | (low >>> 9);
      let c = this.rootChunk;
      if (c === undefined) c = this.rootChunk = this.chunks.get(this.rootPfn);
      if (c !== undefined) {
        let cur = this.rootChunkIndex;
        let w = this.rootWordBase + (top9 << 1);
        let lo = c[w];
        let perm = lo;
        if ((lo & (SS_R | SS_W)) !== 0 && (lo & SS_PS) === 0) {
          let h = c[w + 1] & HI_ADDR_MASK;
          let ci = (h << 11) | (lo >>> 21);
          if (ci !== cur) {
            c = this.chunks.getIndexed(ci, h * TWO_20 + (lo >>> 12));
            cur = ci;
          }
          if (c !== undefined) {
            w = ((lo >>> 2) & 0x7fc00) + (((low >>> 18) & 511) << 1);
            lo = c[w];
            perm &= lo;
            if ((lo & (SS_R | SS_W)) !== 0 && (lo & SS_PS) === 0) {
              h = c[w + 1] & HI_ADDR_MASK;
              ci = (h << 11) | (lo >>> 21);
              if (ci !== cur) {
                c = this.chunks.getIndexed(ci, h * TWO_20 + (lo >>> 12));
                cur = ci;
              }
              if (c !== undefined) {
                w = ((lo >>> 2) & 0x7fc00) + (((low >>> 9) & 511) << 1);
                lo = c[w];
                perm &= lo;
                if ((lo & (SS_R | SS_W)) !== 0 && (lo & SS_PS) === 0) {
                  h = c[w + 1] & HI_ADDR_MASK;
                  ci = (h << 11) | (lo >>> 21);
                  if (ci !== cur) c = this.chunks.getIndexed(ci, h * TWO_20 + (lo >>> 12));
                  if (c !== undefined) {
                    const base = (lo >>> 2) & 0x7fc00;
                    if (this.pscLevels === 3) this.pscFill(region, c, base, perm);
                    w = base + ((low & 511) << 1);
                    lo = c[w];
                    perm &= lo;
                    if ((lo & (SS_R | SS_W)) !== 0) return this.leafOut(out, lo, c[w + 1], perm);
                  }
                }
              }
            }
          }
        }
      }
    }
    return walkSecondStage(this.chunks, this.rootPfn, this.top, this.leafLevels, this.exec, iovaPfn, out, null);
  }

  // ---------------------------------------------------------------- A/D

  setDirtyTracking(enable: boolean): void {
    // SS: SSADE in the PASID entry; only a domain allocated for dirty tracking may turn it on. FS
    // hardware always maintains A/D, so there is nothing to switch.
    if (!this.fs) this.hwAccessDirty = enable && this.trackDirty;
  }

  markAccess(iovaPfn: number, write: boolean): void {
    if (!this.hwAccessDirty || this.freed || !(iovaPfn >= 0 && iovaPfn < this.limitPfn)) return;
    const mem = this.mem;
    const pm = this.presentMask;
    const a = this.accessBit;
    let table = this.rootPfn;
    for (let level = this.top; level >= 0; level--) {
      const c = mem.chunkIfBacked(table);
      if (c === undefined) return;
      const w = ((table & 511) << 10) + (((iovaPfn / LEVEL_SPAN[level]) & 511) << 1);
      const lo = c[w];
      if ((lo & pm) === 0) return;
      if (level === 0 || (lo & SS_PS) !== 0) {
        let set = a;
        if (write && (lo & this.writeBit) !== 0) set |= this.dirtyBit;
        c[w] = lo | set;
        return;
      }
      // Non-leaf entries record the access as well; an FS table entry already has A preset.
      c[w] = lo | a;
      table = (c[w + 1] & HI_ADDR_MASK) * TWO_20 + (lo >>> 12);
    }
  }

  readAndClearDirty(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    if (this.freed || !(iovaPfn >= 0) || !(npages > 0) || iovaPfn >= this.limitPfn) return;
    const n = Math.min(Math.floor(npages), this.limitPfn - Math.floor(iovaPfn));
    this.dirtyLevel(this.rootPfn, this.top, Math.floor(iovaPfn), n, noClear, onDirty);
  }

  private dirtyLevel(table: number, level: number, iova: number, n: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    const c = this.mem.chunkIfBacked(table);
    if (c === undefined) return;
    const pm = this.presentMask;
    const d = this.dirtyBit;
    const span = LEVEL_SPAN[level];
    let w = ((table & 511) << 10) + (((iova / span) & 511) << 1);
    while (n > 0) {
      const off = iova % span;
      const take = n < span - off ? n : span - off;
      const e = c[w];
      if ((e & pm) !== 0) {
        if (level === 0 || (e & SS_PS) !== 0) {
          if ((e & d) !== 0) {
            // Like iommu_dirty_bitmap_record(): the whole leaf is reported dirty.
            onDirty(iova - off, span);
            if (!noClear) c[w] = e & ~d;
          }
        } else {
          this.dirtyLevel((c[w + 1] & HI_ADDR_MASK) * TWO_20 + (e >>> 12), level - 1, iova, take, noClear, onDirty);
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
    this.pscFlush();
    this.freeLevel(this.rootPfn, this.top);
    this.memory.releaseTable(this.rootPfn);
    this.pages = 0;
    this.freed = true;
    this.limitPfn = 0;
  }

  private freeLevel(table: number, level: number): void {
    if (level === 0) return;
    const c = this.mem.chunkIfBacked(table);
    if (c === undefined) return;
    const pm = this.presentMask;
    const base = (table & 511) << 10;
    for (let w = base; w < base + 1024; w += 2) {
      const e = c[w];
      if ((e & pm) === 0 || (e & SS_PS) !== 0) continue;
      const child = (c[w + 1] & HI_ADDR_MASK) * TWO_20 + (e >>> 12);
      this.freeLevel(child, level - 1);
      c[w] = 0;
      c[w + 1] = 0;
      this.memory.releaseTable(child);
    }
  }
}

// -------------------------------------------------------------------- walkers

function fault(out: WalkResult, reason: number, level: number): boolean {
  out.fault = reason;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

/**
 * Second-stage walk. `tableToPhys` is null for a host-owned table and the stage-2 translation of a
 * table pointer for a foreign one. Effective R/W/X is the AND over all levels (the spec's rule; Linux
 * writes R|W on tables so only the leaf matters for host tables).
 */
export function walkSecondStage(
  chunks: ChunkCache,
  rootPfn: number,
  top: number,
  leafLevels: number,
  executeEnable: boolean,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: ((pfn: number) => number) | null,
): boolean {
  // Split the page number once into its low 27 bits (levels 0-2) and the rest (levels 3-4): both
  // are exact small integers, so the per-level index is a shift instead of a float division.
  const low = iovaPfn & 0x7ffffff;
  const high = (iovaPfn - low) * INV_2_27;
  let table = rootPfn;
  let level = top;
  let perm = 7;
  for (;;) {
    if (tableToPhys !== null) {
      const hpfn = tableToPhys(table);
      if (hpfn < 0) {
        out.tablePfn = table;
        return fault(out, WALK_TABLE_FAULT, level);
      }
      table = hpfn;
    }
    const c = chunks.get(table);
    if (c === undefined) return fault(out, WALK_NOT_PRESENT, level);
    const idx = level < 3 ? (low >>> (9 * level)) & 511 : (high >>> (9 * level - 27)) & 511;
    const w = ((table & 511) << 10) + (idx << 1);
    const lo = c[w];
    if ((lo & (SS_R | SS_W)) === 0) return fault(out, WALK_NOT_PRESENT, level);
    perm &= lo;
    const h = c[w + 1] & HI_ADDR_MASK;
    // Keep the common below-4-GiB case in small-integer arithmetic.
    const pfn = h === 0 ? lo >>> 12 : h * TWO_20 + (lo >>> 12);
    if (level === 0) {
      out.pfn = pfn;
      out.pageShift = 12;
    } else if ((lo & SS_PS) !== 0) {
      if (((leafLevels >> level) & 1) === 0) return fault(out, WALK_RESERVED_BITS, level);
      const mask = LEVEL_SPAN[level] - 1;
      out.pfn = pfn - (pfn & mask) + (iovaPfn & mask);
      out.pageShift = 12 + 9 * level;
    } else {
      table = pfn;
      level--;
      continue;
    }
    // Without SLEE the X bit is ignored and instruction fetches are allowed wherever reads are.
    const p = executeEnable ? perm & (PERM_READ | PERM_WRITE | PERM_EXEC) : (perm & (PERM_READ | PERM_WRITE)) | ((perm & SS_R) << 2);
    out.perm = p | (p << 4);
    out.level = level;
    out.dirty = (lo & SS_D) !== 0;
    out.fault = WALK_OK;
    return true;
  }
}

/**
 * First-stage (IA-32e) walk: RW and U/S are ANDed and XD ORed over the levels, as the CPU does. A
 * supervisor-only page (U/S clear somewhere on the path) grants only privileged requests.
 */
export function walkFirstStage(
  chunks: ChunkCache,
  rootPfn: number,
  top: number,
  leafLevels: number,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: ((pfn: number) => number) | null,
): boolean {
  let table = rootPfn;
  let level = top;
  let and = FS_RW | FS_US;
  let orHi = 0;
  for (;;) {
    if (tableToPhys !== null) {
      const hpfn = tableToPhys(table);
      if (hpfn < 0) {
        out.tablePfn = table;
        return fault(out, WALK_TABLE_FAULT, level);
      }
      table = hpfn;
    }
    const c = chunks.get(table);
    if (c === undefined) return fault(out, WALK_NOT_PRESENT, level);
    const w = ((table & 511) << 10) + (((iovaPfn / LEVEL_SPAN[level]) & 511) << 1);
    const lo = c[w];
    if ((lo & FS_P) === 0) return fault(out, WALK_NOT_PRESENT, level);
    const hi = c[w + 1];
    and &= lo;
    orHi |= hi;
    const pfn = (hi & HI_ADDR_MASK) * TWO_20 + (lo >>> 12);
    if (level === 0 || (lo & FS_PS) !== 0) {
      if (level !== 0) {
        const mask = LEVEL_SPAN[level] - 1;
        // PS is reserved in PML4E/PML5E, a 1G leaf needs FL1GP, and bits 20:13 / 29:13 of a large
        // leaf are reserved (bit 12 is PAT there).
        if (((leafLevels >> level) & 1) === 0 || (pfn & mask & ~1) !== 0) return fault(out, WALK_RESERVED_BITS, level);
        out.pfn = pfn - (pfn & mask) + (iovaPfn & mask);
      } else out.pfn = pfn;
      // Supervisor requests may use user pages; user requests get nothing from a supervisor page.
      const rwx = PERM_READ | ((and & FS_RW) !== 0 ? PERM_WRITE : 0) | ((orHi & FS_XD_HI) === 0 ? PERM_EXEC : 0);
      out.perm = (and & FS_US) === 0 ? rwx << 4 : rwx | (rwx << 4);
      out.pageShift = 12 + 9 * level;
      out.level = level;
      out.dirty = (lo & FS_D) !== 0;
      out.fault = WALK_OK;
      return true;
    }
    table = pfn;
    level--;
  }
}

/** Checks shared by both formats' walkForeign: input width and, for a walk, the IOVA range. */
export function foreignGeometry(cfg: Readonly<PageTableConfig>, firstStage: boolean): { top: number; limitPfn: number; leafLevels: number } | null {
  let levels = cfg.levels;
  if (levels === undefined) levels = firstStage ? (cfg.ias > 48 ? 5 : 4) : Math.max(3, Math.ceil((cfg.ias - 12) / 9));
  if (levels < (firstStage ? 4 : 3) || levels > 5 || cfg.ias > 12 + 9 * levels) return null;
  return { top: levels - 1, limitPfn: 2 ** (cfg.ias - 12), leafLevels: leafLevelsFromBitmap(cfg.pgsizeBitmap) | 1 };
}

const foreignChunks = new ChunkCache();

/** The chunk cache used by walkForeign, bound to the guest memory being walked. */
export function foreignChunkCache(mem: PhysicalMemory): ChunkCache {
  foreignChunks.bind(mem);
  return foreignChunks;
}

export function outOfRange(out: WalkResult, top: number): boolean {
  return fault(out, WALK_ADDRESS_SIZE, top);
}
