/**
 * The mock vendor's page-table format ('mock-pt'): a three-level radix table of 64-bit entries, 4 KiB
 * pages and 2 MiB blocks, 39-bit input. Deliberately simple and unlike any real format, so that core's
 * tests never depend on a real vendor's bit layout.
 *
 * Entry bits: 0 present, 1 read, 2 write, 3 exec, 4 priv, 5 accessed, 6 dirty, 7 block (level 1),
 * 12..51 output page number.
 */
import {
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  WALK_ADDRESS_SIZE,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_TABLE_FAULT,
  type IoPageTable,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
  type WalkResult,
} from '../driver/pgtable.js';
import { PhysicalMemory } from '../memory/physical.js';

const P = 1;
const R = 2;
const W = 4;
const X = 8;
const U = 16;
const A = 32;
const D = 64;
const BLOCK = 128;
const LEVELS = 3;
const IAS = 39;
const SZ_2M_PAGES = 512;

function entryPfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & 0xfffff) * 0x100000;
}

function idx(pfn: number, level: number): number {
  return Math.floor(pfn / 512 ** level) % 512;
}

class MockTable implements IoPageTable {
  readonly format = 'mock-pt';
  readonly levels = LEVELS;
  tablePages = 1;

  constructor(
    readonly cfg: PageTableConfig,
    readonly rootPfn: number,
    private readonly memory: PageTableMemory,
  ) {}

  private words(pfn: number): Uint32Array {
    return this.memory.mem.chunkWords(pfn);
  }

  private read(pfn: number, i: number): [number, number] {
    const c = this.memory.mem.chunkIfBacked(pfn);
    if (!c) return [0, 0];
    const w = PhysicalMemory.frameWordBase(pfn) + i * 2;
    return [c[w], c[w + 1]];
  }

  private write(pfn: number, i: number, lo: number, hi: number): void {
    const c = this.words(pfn);
    const w = PhysicalMemory.frameWordBase(pfn) + i * 2;
    c[w] = lo >>> 0;
    c[w + 1] = hi >>> 0;
  }

  private leafBits(prot: number): number {
    return P | (prot & IOMMU_READ ? R : 0) | (prot & IOMMU_WRITE ? W : 0) | (prot & IOMMU_NOEXEC ? 0 : X) | (prot & IOMMU_PRIV ? U : 0);
  }

  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number {
    if (npages <= 0) return -22;
    if (iovaPfn + npages > 2 ** (IAS - 12)) return -34;
    for (let i = 0; i < npages; i++) if (this.lookup(iovaPfn + i) !== null) return -17;
    const allow2M = (this.cfg.pgsizeBitmap & (1n << 21n)) !== 0n;
    const bits = this.leafBits(prot);
    let done = 0;
    while (done < npages) {
      const io = iovaPfn + done;
      const pa = paPfn + done;
      const block = allow2M && io % SZ_2M_PAGES === 0 && pa % SZ_2M_PAGES === 0 && npages - done >= SZ_2M_PAGES;
      const table = this.walkAlloc(io, block ? 1 : 0);
      if (table < 0) {
        if (done > 0) this.unmap(iovaPfn, done);
        return -12;
      }
      const i = idx(io, block ? 1 : 0);
      this.write(table, i, ((pa % 0x100000) * 4096 + (bits | (block ? BLOCK : 0))) >>> 0, Math.floor(pa / 0x100000));
      done += block ? SZ_2M_PAGES : 1;
    }
    return 0;
  }

  /** The table page holding the entry at `level` for `pfn`, allocating tables on the way. */
  private walkAlloc(pfn: number, level: number): number {
    let table = this.rootPfn;
    for (let l = LEVELS - 1; l > level; l--) {
      const i = idx(pfn, l);
      const [lo, hi] = this.read(table, i);
      if (lo & P) {
        table = entryPfn(lo, hi);
        continue;
      }
      const next = this.memory.allocTable();
      if (next < 0) return -1;
      this.tablePages++;
      this.write(table, i, ((next % 0x100000) * 4096 + P) >>> 0, Math.floor(next / 0x100000));
      table = next;
    }
    return table;
  }

  /** [table, index, level] of the leaf for `pfn`, or null. */
  private lookup(pfn: number): [number, number, number] | null {
    let table = this.rootPfn;
    for (let l = LEVELS - 1; l >= 0; l--) {
      const i = idx(pfn, l);
      const [lo, hi] = this.read(table, i);
      if (!(lo & P)) return null;
      if (l === 0 || lo & BLOCK) return [table, i, l];
      table = entryPfn(lo, hi);
    }
    return null;
  }

  unmap(iovaPfn: number, npages: number): number {
    let removed = 0;
    let p = iovaPfn;
    const end = iovaPfn + npages;
    while (p < end) {
      const leaf = this.lookup(p);
      if (!leaf) {
        p++;
        continue;
      }
      const [table, i, level] = leaf;
      const size = level === 1 ? SZ_2M_PAGES : 1;
      const base = p - (p % size);
      if (base < iovaPfn || base + size > end) {
        p = base + size;
        continue;
      }
      this.write(table, i, 0, 0);
      removed += size;
      p = base + size;
    }
    return removed;
  }

  walk(iovaPfn: number, out: WalkResult): boolean {
    return walkTable(this.memory.mem, this.rootPfn, iovaPfn, out, null);
  }

  readAndClearDirty(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void {
    let p = iovaPfn;
    const end = iovaPfn + npages;
    while (p < end) {
      const leaf = this.lookup(p);
      if (!leaf) {
        p++;
        continue;
      }
      const [table, i, level] = leaf;
      const size = level === 1 ? SZ_2M_PAGES : 1;
      const base = p - (p % size);
      const [lo, hi] = this.read(table, i);
      if (lo & D) {
        onDirty(base, size);
        if (!noClear) this.write(table, i, lo & ~D, hi);
      }
      p = base + size;
    }
  }

  markAccess(iovaPfn: number, write: boolean): void {
    const leaf = this.lookup(iovaPfn);
    if (!leaf) return;
    const [table, i] = leaf;
    const [lo, hi] = this.read(table, i);
    this.write(table, i, lo | A | (write && this.cfg.dirtyTracking ? D : 0), hi);
  }

  free(): void {
    const release = (table: number, level: number) => {
      if (level > 0) {
        for (let i = 0; i < 512; i++) {
          const [lo, hi] = this.read(table, i);
          if (lo & P && !(lo & BLOCK)) release(entryPfn(lo, hi), level - 1);
        }
      }
      this.memory.releaseTable(table);
    };
    release(this.rootPfn, LEVELS - 1);
    this.tablePages = 0;
  }
}

function walkTable(mem: PhysicalMemory, root: number, iovaPfn: number, out: WalkResult, tableToPhys: ((pfn: number) => number) | null): boolean {
  if (iovaPfn >= 2 ** (IAS - 12)) {
    out.fault = WALK_ADDRESS_SIZE;
    return false;
  }
  let table = root;
  for (let l = LEVELS - 1; l >= 0; l--) {
    if (tableToPhys) {
      const phys = tableToPhys(table);
      if (phys < 0) {
        out.fault = WALK_TABLE_FAULT;
        out.tablePfn = table;
        out.level = l;
        return false;
      }
      table = phys;
    }
    const c = mem.chunkIfBacked(table);
    const w = PhysicalMemory.frameWordBase(table) + idx(iovaPfn, l) * 2;
    const lo = c ? c[w] : 0;
    const hi = c ? c[w + 1] : 0;
    if (!(lo & P)) {
      out.fault = WALK_NOT_PRESENT;
      out.level = l;
      return false;
    }
    if (l === 0 || lo & BLOCK) {
      const size = l === 1 ? SZ_2M_PAGES : 1;
      out.pfn = entryPfn(lo, hi) + (iovaPfn % size);
      out.perm = (lo & R ? PERM_READ : 0) | (lo & W ? PERM_WRITE : 0) | (lo & X ? PERM_EXEC : 0) | (lo & U ? PERM_PRIV : 0);
      out.pageShift = l === 1 ? 21 : 12;
      out.level = l;
      out.dirty = (lo & D) !== 0;
      out.fault = WALK_OK;
      return true;
    }
    table = entryPfn(lo, hi);
  }
  out.fault = WALK_NOT_PRESENT;
  return false;
}

export const mockFormat: PageTableFormat = {
  id: 'mock-pt',
  describe: 'mock 3-level radix table: 39-bit input, 4K pages, 2M blocks',
  alloc(cfg, memory) {
    if (cfg.ias > IAS) return -22;
    const root = memory.allocTable();
    if (root < 0) return -12;
    const pgsizeBitmap = cfg.pgsizeBitmap & ((1n << 12n) | (1n << 21n));
    return new MockTable({ ...cfg, pgsizeBitmap, ias: IAS }, root, memory);
  },
  walkForeign(_cfg, rootPfn, mem, iovaPfn, out, tableToPhys) {
    return walkTable(mem, rootPfn, iovaPfn, out, tableToPhys);
  },
};

/** Writes a leaf directly into a foreign (guest-owned) mock table: used by tests to build guest stage 1. */
export function mockWriteGuestTable(mem: PhysicalMemory, allocGuestTable: () => number, root: number, iovaPfn: number, outPfn: number, prot: number, gpaToHpa: (gpa: number) => number): void {
  let table = root;
  for (let l = LEVELS - 1; l > 0; l--) {
    const hpa = gpaToHpa(table);
    const cur = mem.readU64(hpa, idx(iovaPfn, l));
    if (cur & 1n) {
      table = Number(cur >> 12n);
      continue;
    }
    const next = allocGuestTable();
    mem.writeU64(hpa, idx(iovaPfn, l), (BigInt(next) << 12n) | 1n);
    table = next;
  }
  const bits = BigInt(P | (prot & IOMMU_READ ? R : 0) | (prot & IOMMU_WRITE ? W : 0) | X);
  mem.writeU64(gpaToHpa(table), idx(iovaPfn, 0), (BigInt(outPfn) << 12n) | bits);
}
