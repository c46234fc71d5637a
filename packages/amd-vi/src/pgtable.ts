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
 * Table pages come from PageTableMemory; a failed map leaves the table as it was.
 */
import {
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  grantBoth,
  PERM_READ,
  PERM_WRITE,
  WALK_OK,
  WALK_TABLE_FAULT,
  WalkResult,
  type IoPageTable,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
  type PhysicalMemory,
  type WalkStep,
  traceRadix,
} from '@ioasid/core/driver';
import { amdTraceSpec } from './pgtable-trace.js';
import {
  EEXIST,
  EINVAL,
  ENOMEM,
  LEVEL_SPAN,
  WALK_ADDRESS_SIZE,
  WALK_NOT_PRESENT,
  WALK_RESERVED_BITS,
  addrHi,
  addrLo,
  isPfn,
  pte,
  pteAddrPfn,
  readPte,
  tableEmpty,
  walkFail,
  writePte,
} from './pte.js';
import { AMD_IOMMU_PGSIZES, AMD_IOMMU_PGSIZES_V2 } from './registers.js';

export const AMD_V1_FORMAT = 'amd-v1';
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

const PFN_LIMIT = 2 ** 40;

/** A decoded leaf: its size (log2 bytes), first output page number, permissions, dirty. */
interface Leaf {
  shift: number;
  basePfn: number;
  perm: number;
  dirty: boolean;
  /** Entries this leaf occupies in its table (NextLevel 7 replicas). */
  count: number;
}

const leaf: Leaf = { shift: 12, basePfn: 0, perm: 0, dirty: false, count: 1 };

/** First zero bit at or above bit 12 of the entry's address field (ffz(pte | 0xfff)). */
function firstZeroAddrBit(lo: number, hi: number): number {
  for (let b = 12; b < 32; b++) if (((lo >>> b) & 1) === 0) return b;
  for (let b = 0; b < 20; b++) if (((hi >>> b) & 1) === 0) return 32 + b;
  return 52;
}

type Flavor = 'v1' | 'v2';

/**
 * Index of `iovaPfn` in a table at `level`. The top of a 6-level v1 table decodes only IOVA bits 63:57;
 * page numbers stop below 2^52, so the quotient is already below 128 there.
 */
function indexAt(iovaPfn: number, level: number): number {
  return Math.floor(iovaPfn / LEVEL_SPAN[level]) % 512;
}

/**
 * Walks either format from `rootPfn` (a table at level `top`, 0 = the 4K-PTE table). `tableToPhys`
 * translates every table pointer (nested walks); `leafOut` receives the leaf's position.
 */
function walkTable(
  flavor: Flavor,
  mem: PhysicalMemory,
  rootPfn: number,
  top: number,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: ((pfn: number) => number) | null,
  pos?: { table: number; idx: number; level: number },
): boolean {
  let table = rootPfn;
  let level = top;
  let perm = flavor === 'v1' ? PERM_READ | PERM_WRITE : PERM_READ | PERM_WRITE | PERM_EXEC;
  for (;;) {
    const idx = indexAt(iovaPfn, level);
    readPte(mem, table, idx);
    const lo = pte.lo;
    const hi = pte.hi;
    if ((lo & 1) === 0) return walkFail(out, WALK_NOT_PRESENT, level);
    let isLeaf: boolean;
    let nextLevel = level - 1;
    if (flavor === 'v1') {
      const nl = (lo >>> V1_NL_SHIFT) & 7;
      perm &= (hi & V1_HI_IR ? PERM_READ : 0) | (hi & V1_HI_IW ? PERM_WRITE : 0);
      isLeaf = nl === 0 || nl === V1_NL_SIZE;
      if (!isLeaf) {
        // NextLevel names the level (1-based) of the next table; it must be lower than this one.
        if (nl > level) return walkFail(out, WALK_RESERVED_BITS, level);
        for (let s = nl; s < level; s++) if (indexAt(iovaPfn, s) !== 0) return walkFail(out, WALK_NOT_PRESENT, s);
        nextLevel = nl - 1;
      } else if (level === 0 || nl === 0) {
        leaf.shift = 12 + 9 * level;
        leaf.count = 1;
      } else {
        leaf.shift = 0;
      }
      if (isLeaf && nl === V1_NL_SIZE) {
        const shift = firstZeroAddrBit(lo, hi) + 1;
        // The encoded size lies between this level's default size and the level above's.
        if (shift <= 12 + 9 * level || shift >= 12 + 9 * (level + 1)) return walkFail(out, WALK_RESERVED_BITS, level);
        leaf.shift = shift;
        leaf.count = 2 ** (shift - 12 - 9 * level);
      }
    } else {
      perm &= (hi & V2_HI_NX ? ~PERM_EXEC : -1) & (lo & V2_RW ? -1 : ~PERM_WRITE);
      isLeaf = level === 0 || (lo & V2_PS) !== 0;
      if (isLeaf && level > 2) return walkFail(out, WALK_RESERVED_BITS, level);
      leaf.shift = 12 + 9 * level;
      leaf.count = 1;
    }
    if (isLeaf) {
      const pages = 2 ** (leaf.shift - 12);
      const addr = pteAddrPfn(lo, hi);
      const base = Math.floor(addr / pages) * pages;
      out.pfn = base + (iovaPfn % pages);
      out.pageShift = leaf.shift;
      out.level = level;
      // No privilege levels modelled here: both get the same grants (core's permission model).
      out.perm = perm & (PERM_READ | PERM_WRITE) ? grantBoth(perm | (flavor === 'v1' ? PERM_EXEC : 0)) : 0;
      out.dirty = (lo & (flavor === 'v1' ? V1_D : V2_D)) !== 0;
      out.fault = WALK_OK;
      if (pos) {
        pos.table = table;
        pos.idx = idx;
        pos.level = level;
      }
      return true;
    }
    let next = pteAddrPfn(lo, hi);
    if (tableToPhys) {
      next = tableToPhys(next);
      if (next < 0) {
        out.tablePfn = pteAddrPfn(lo, hi);
        return walkFail(out, WALK_TABLE_FAULT, level);
      }
    }
    table = next;
    level = nextLevel;
  }
}

interface Geometry {
  levels: number;
  ias: number;
  /** log2 sizes usable, largest first. */
  sizes: number[];
  coherent: boolean;
}

class AmdPageTable implements IoPageTable {
  readonly format: string;
  readonly cfg: Readonly<PageTableConfig>;
  readonly rootPfn: number;
  readonly levels: number;
  private pages = 1;
  private readonly top: number;
  private readonly limitPfn: number;
  private readonly mem: PhysicalMemory;
  private dirtyOn = false;
  private freed = false;
  private readonly pos = { table: 0, idx: 0, level: 0 };

  constructor(
    private readonly flavor: Flavor,
    cfg: Readonly<PageTableConfig>,
    private readonly g: Geometry,
    private readonly memory: PageTableMemory,
    root: number,
  ) {
    this.format = flavor === 'v1' ? AMD_V1_FORMAT : AMD_V2_FORMAT;
    this.cfg = cfg;
    this.rootPfn = root;
    this.levels = g.levels;
    this.top = g.levels - 1;
    this.limitPfn = 2 ** (g.ias - 12);
    this.mem = memory.mem;
  }

  get tablePages(): number {
    return this.pages;
  }

  trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, amdTraceSpec(this.flavor, this.top), iovaPfn);
  }

  walk(iovaPfn: number, out: WalkResult): boolean {
    if (!(iovaPfn >= 0 && iovaPfn < this.limitPfn)) return walkFail(out, WALK_ADDRESS_SIZE, this.top);
    return walkTable(this.flavor, this.mem, this.rootPfn, this.top, iovaPfn, out, null);
  }

  private leafBits(prot: number): { lo: number; hi: number } {
    if (this.flavor === 'v1') {
      // Table PDEs carry IR|IW (ANDed with the leaf); leaves get FC when the domain forces coherence.
      return { lo: V1_PR, hi: (prot & IOMMU_READ ? V1_HI_IR : 0) | (prot & IOMMU_WRITE ? V1_HI_IW : 0) | (this.g.coherent ? V1_HI_FC : 0) };
    }
    // set_pte_attr(): present, user (always), accessed and dirty preset, RW when writeable, NX for no-exec.
    return { lo: V2_P | V2_US | V2_A | V2_D | (prot & IOMMU_WRITE ? V2_RW : 0), hi: prot & IOMMU_NOEXEC ? V2_HI_NX : 0 };
  }

  private tableEntry(level: number, childPfn: number): { lo: number; hi: number } {
    if (this.flavor === 'v1') return { lo: V1_PR | (level << V1_NL_SHIFT) | addrLo(childPfn), hi: addrHi(childPfn) | V1_HI_IR | V1_HI_IW };
    return { lo: V2_P | V2_RW | V2_US | V2_A | addrLo(childPfn), hi: addrHi(childPfn) };
  }

  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    if (this.freed || !isPfn(iovaPfn) || !isPfn(paPfn) || !Number.isInteger(npages) || npages <= 0) return -EINVAL;
    if (iovaPfn + npages > this.limitPfn || paPfn + npages > PFN_LIMIT) return -34;
    let done = 0;
    while (done < npages) {
      const iv = iovaPfn + done;
      const pa = paPfn + done;
      const rem = npages - done;
      let shift = 12;
      for (const s of this.g.sizes) {
        const p = 2 ** (s - 12);
        if (p <= rem && iv % p === 0 && pa % p === 0) {
          shift = s;
          break;
        }
      }
      const rc = this.mapOne(iv, pa, shift, prot);
      if (rc < 0) {
        if (done) this.unmap(iovaPfn, done);
        this.prune(iv);
        return rc;
      }
      done += 2 ** (shift - 12);
    }
    return 0;
  }

  private mapOne(iv: number, pa: number, shift: number, prot: number): number {
    const L = Math.floor((shift - 12) / 9);
    const count = 2 ** (shift - 12 - 9 * L);
    let table = this.rootPfn;
    for (let level = this.top; level > L; level--) {
      const idx = indexAt(iv, level);
      readPte(this.mem, table, idx);
      if ((pte.lo & 1) === 0) {
        const child = this.memory.allocTable();
        if (child < 0) return -ENOMEM;
        this.pages++;
        const e = this.tableEntry(level, child);
        writePte(this.mem, table, idx, e.lo, e.hi);
        table = child;
        continue;
      }
      if (this.isLeafEntry(pte.lo, level)) return -EEXIST;
      table = pteAddrPfn(pte.lo, pte.hi);
    }
    const idx0 = indexAt(iv, L);
    for (let k = 0; k < count; k++) {
      readPte(this.mem, table, idx0 + k);
      if (pte.lo & 1) return -EEXIST;
    }
    const bits = this.leafBits(prot);
    let encPfn = pa;
    let nl = 0;
    if (count > 1) {
      // PAGE_SIZE_PTE(): (pa | (size - 1)) & ~(size >> 1), i.e. the low half of the size's pages set.
      encPfn = pa + 2 ** (shift - 13) - 1;
      nl = V1_NL_SIZE;
    }
    let lo = bits.lo | addrLo(encPfn);
    if (this.flavor === 'v1') lo |= nl << V1_NL_SHIFT;
    else if (L > 0) lo |= V2_PS;
    const hi = bits.hi | addrHi(encPfn);
    for (let k = 0; k < count; k++) writePte(this.mem, table, idx0 + k, lo, hi);
    return 0;
  }

  private isLeafEntry(lo: number, level: number): boolean {
    if (this.flavor === 'v1') {
      const nl = (lo >>> V1_NL_SHIFT) & 7;
      return nl === 0 || nl === V1_NL_SIZE;
    }
    return level === 0 || (lo & V2_PS) !== 0;
  }

  /** Frees the empty tables on the path to `iovaPfn`, deepest first. */
  private prune(iovaPfn: number): void {
    const path: Array<{ table: number; idx: number }> = [];
    let table = this.rootPfn;
    for (let level = this.top; level > 0; level--) {
      const idx = indexAt(iovaPfn, level);
      readPte(this.mem, table, idx);
      if ((pte.lo & 1) === 0 || this.isLeafEntry(pte.lo, level)) break;
      path.push({ table, idx });
      table = pteAddrPfn(pte.lo, pte.hi);
    }
    for (let i = path.length - 1; i >= 0; i--) {
      readPte(this.mem, path[i].table, path[i].idx);
      const child = pteAddrPfn(pte.lo, pte.hi);
      if (!tableEmpty(this.mem, child)) break;
      writePte(this.mem, path[i].table, path[i].idx, 0, 0);
      this.memory.releaseTable(child);
      this.pages--;
    }
  }

  /**
   * Visits the leaves in [iovaPfn, iovaPfn + npages): `fn(table, idx, level, leafBasePfn, pages, count)`
   * returns false to stop. Holes are skipped a whole entry at a time.
   */
  private forLeaves(iovaPfn: number, npages: number, fn: (table: number, idx: number, level: number, base: number, pages: number, count: number) => boolean): void {
    const end = Math.min(iovaPfn + npages, this.limitPfn);
    let p = iovaPfn;
    const wr = new WalkResult();
    while (p < end) {
      if (!walkTable(this.flavor, this.mem, this.rootPfn, this.top, p, wr, null, this.pos)) {
        const span = LEVEL_SPAN[wr.level];
        p = (Math.floor(p / span) + 1) * span;
        continue;
      }
      const pages = 2 ** (wr.pageShift - 12);
      const base = Math.floor(p / pages) * pages;
      const count = 2 ** (wr.pageShift - 12 - 9 * this.pos.level);
      const idx0 = this.pos.idx - (this.pos.idx % count);
      if (!fn(this.pos.table, idx0, this.pos.level, base, pages, count)) return;
      p = base + pages;
    }
  }

  unmap(iovaPfn: number, npages: number): number {
    if (this.freed || !isPfn(iovaPfn) || !Number.isInteger(npages) || npages <= 0) return 0;
    const end = iovaPfn + npages;
    let removed = 0;
    this.forLeaves(iovaPfn, npages, (table, idx0, _level, base, pages, count) => {
      // A huge page only goes whole: the kernel stops at one the range only partly covers.
      if (base < iovaPfn || base + pages > end) return false;
      for (let k = 0; k < count; k++) writePte(this.mem, table, idx0 + k, 0, 0);
      removed += pages;
      this.prune(base);
      return true;
    });
    return removed;
  }

  readAndClearDirty(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    const dbit = this.flavor === 'v1' ? V1_D : V2_D;
    const end = iovaPfn + npages;
    this.forLeaves(iovaPfn, npages, (table, idx0, _level, base, pages, count) => {
      let dirty = false;
      for (let k = 0; k < count; k++) {
        readPte(this.mem, table, idx0 + k);
        if (pte.lo & dbit) {
          dirty = true;
          if (!noClear) writePte(this.mem, table, idx0 + k, pte.lo & ~dbit, pte.hi);
        }
      }
      if (dirty) {
        const first = Math.max(base, iovaPfn);
        onDirty(first, Math.min(base + pages, end) - first);
      }
      return true;
    });
  }

  setDirtyTracking(enable: boolean): void {
    this.dirtyOn = enable;
  }

  markAccess(iovaPfn: number, write: boolean): void {
    // v1 updates A/D only when the DTE's HAD bits are set (dirty tracking on); v2 always does.
    if (this.flavor === 'v1' && !this.dirtyOn) return;
    const wr = new WalkResult();
    if (!walkTable(this.flavor, this.mem, this.rootPfn, this.top, iovaPfn, wr, null, this.pos)) return;
    readPte(this.mem, this.pos.table, this.pos.idx);
    const bits = (this.flavor === 'v1' ? V1_A : V2_A) | (write ? (this.flavor === 'v1' ? V1_D : V2_D) : 0);
    if ((pte.lo & bits) !== bits) writePte(this.mem, this.pos.table, this.pos.idx, pte.lo | bits, pte.hi);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.freeTable(this.rootPfn, this.top);
    this.pages = 0;
  }

  private freeTable(table: number, level: number): void {
    if (level > 0) {
      for (let i = 0; i < 512; i++) {
        readPte(this.mem, table, i);
        if ((pte.lo & 1) === 0 || this.isLeafEntry(pte.lo, level)) continue;
        const nl = this.flavor === 'v1' ? (pte.lo >>> V1_NL_SHIFT) & 7 : level;
        this.freeTable(pteAddrPfn(pte.lo, pte.hi), nl - 1);
      }
    }
    this.mem.zeroFrame(table);
    this.memory.releaseTable(table);
  }
}

function sizesOf(bitmap: bigint): number[] {
  const out: number[] = [];
  for (let s = 51; s >= 12; s--) if ((bitmap >> BigInt(s)) & 1n) out.push(s);
  return out;
}

/**
 * v1: `cfg.levels` 1..6 (default: enough for `cfg.ias`), `cfg.ias` ≤ 12 + 9·levels (64 at most);
 * every size of AMD_IOMMU_PGSIZES the bitmap asks for up to the table's reach.
 */
function allocV1(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
  const ias = cfg.ias;
  if (!Number.isInteger(ias) || ias < 21 || ias > 64) return -EINVAL;
  const levels = cfg.levels ?? Math.max(1, Math.ceil((ias - 12) / 9));
  if (!Number.isInteger(levels) || levels < 1 || levels > 6 || ias > Math.min(64, 12 + 9 * levels)) return -EINVAL;
  if (!Number.isInteger(cfg.oas) || cfg.oas < 32 || cfg.oas > 52) return -EINVAL;
  // Page numbers stay exact below 2^53: a 64-bit IOVA space is 2^52 pages.
  const reach = 12 + 9 * levels;
  const bitmap = cfg.pgsizeBitmap & AMD_IOMMU_PGSIZES & ((1n << BigInt(Math.min(reach, 52))) - 1n);
  if ((bitmap & (1n << 12n)) === 0n) return -EINVAL;
  const root = memory.allocTable();
  if (root < 0) return -ENOMEM;
  cfg.pgsizeBitmap = bitmap;
  const eff: Readonly<PageTableConfig> = Object.freeze({ ...cfg, pgsizeBitmap: bitmap, levels, options: Object.freeze({ ...(cfg.options ?? {}) }) });
  return new AmdPageTable('v1', eff, { levels, ias, sizes: sizesOf(bitmap), coherent: cfg.coherent === true }, memory, root);
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
  return new AmdPageTable('v2', eff, { levels, ias, sizes: sizesOf(bitmap), coherent: false }, memory, root);
}

function walkForeignV1(cfg: Readonly<PageTableConfig>, rootPfn: number, mem: PhysicalMemory, iovaPfn: number, out: WalkResult, tableToPhys: (pfn: number) => number): boolean {
  const levels = cfg.levels ?? Math.max(1, Math.ceil((cfg.ias - 12) / 9));
  if (!(iovaPfn >= 0 && iovaPfn < 2 ** (Math.min(cfg.ias, 64) - 12)) || levels < 1 || levels > 6) return walkFail(out, WALK_ADDRESS_SIZE, levels - 1);
  const root = tableToPhys(rootPfn);
  if (root < 0) {
    out.tablePfn = rootPfn;
    return walkFail(out, WALK_TABLE_FAULT, levels - 1);
  }
  return walkTable('v1', mem, root, levels - 1, iovaPfn, out, tableToPhys);
}

/** A guest v2 table in guest-physical memory: every table pointer goes through the host stage. */
export function walkForeignV2(cfg: Readonly<PageTableConfig>, rootPfn: number, mem: PhysicalMemory, iovaPfn: number, out: WalkResult, tableToPhys: (pfn: number) => number): boolean {
  const levels = cfg.levels === 5 ? 5 : 4;
  if (!(iovaPfn >= 0 && iovaPfn < 2 ** (12 + 9 * levels - 12))) return walkFail(out, WALK_ADDRESS_SIZE, levels - 1);
  const root = tableToPhys(rootPfn);
  if (root < 0) {
    out.tablePfn = rootPfn;
    return walkFail(out, WALK_TABLE_FAULT, levels - 1);
  }
  return walkTable('v2', mem, root, levels - 1, iovaPfn, out, tableToPhys);
}

export const amdV1: PageTableFormat = {
  id: AMD_V1_FORMAT,
  describe: 'AMD-Vi v1 (host): 1-6 levels up to 64-bit IOVA, 52-bit output, every power-of-two page from 4K (NextLevel 7 size encoding) except 512G, IR/IW/FC, A/D with HASup/HDSup',
  alloc: allocV1,
  walkForeign: walkForeignV1,
};

export const amdV2: PageTableFormat = {
  id: AMD_V2_FORMAT,
  describe: 'AMD-Vi v2 (guest, x86-64 long mode): 4 or 5 levels (48/57-bit), 4K/2M/1G pages, P/RW/US/A/D/PS/NX',
  alloc: allocV2,
  walkForeign: walkForeignV2,
};
