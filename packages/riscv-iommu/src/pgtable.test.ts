/**
 * RISC-V PTEs as real bits: what map writes (compared with entries worked out by hand from the privileged
 * specification's PTE layout), and what the walk makes of entries the Linux driver never writes.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, PhysicalMemory, WALK_OK, WALK_RESERVED_BITS, WalkResult, permAllowed, type IoPageTable, type PageTableMemory } from '@ioasid/core/driver';
import { SV39, SV39X4, SV48, SV57, svFormat } from './index.js';
import { linuxPageSizes } from './probe.js';

function memory(): PageTableMemory & { frames: number } {
  const mem = new PhysicalMemory();
  let next = 0x100;
  const m = {
    mem,
    frames: 0,
    allocTable(): number {
      m.frames++;
      const pfn = next++;
      mem.chunkWords(pfn).fill(0, (pfn & 511) << 10, ((pfn & 511) + 1) << 10);
      return pfn;
    },
    releaseTable(): void {
      m.frames--;
    },
  };
  return m;
}

const ALL = (1n << 12n) | (1n << 21n) | (1n << 30n) | (1n << 39n) | (1n << 48n);

function allocSv(mode = SV39, options?: Record<string, boolean>) {
  const m = memory();
  const pt = svFormat(mode).alloc({ pgsizeBitmap: ALL, ias: mode.ias, oas: 56, ...(options ? { options } : {}) }, m);
  if (typeof pt === 'number') throw new Error(`alloc ${pt}`);
  return { pt, m };
}

/** The 64-bit entry at index `i` of the table at `pfn`. */
function entry(m: PageTableMemory, pfn: number, i: number): bigint {
  return m.mem.readU64(pfn, i);
}
function setEntry(m: PageTableMemory, pfn: number, i: number, v: bigint): void {
  m.mem.writeU64(pfn, i, v);
}

function walk(pt: IoPageTable, pfn: number): WalkResult {
  const out = new WalkResult();
  pt.walk(pfn, out);
  return out;
}

/** Follows the walk to the level-0 table of `iovaPfn` (Sv39: root index VPN[2], then VPN[1]). */
function leafTable(pt: IoPageTable, iovaPfn: number): number {
  return pt.trace!(iovaPfn).at(-1)!.tablePfn;
}

describe('first-stage PTEs as Linux writes them (riscvpt_iommu_set_prot)', () => {
  it('writes V R W X U A D and the PPN at bit 10', () => {
    const { pt, m } = allocSv();
    expect(pt.map(0x10, 0x12345, 1, IOMMU_READ | IOMMU_WRITE)).toBe(0);
    expect(pt.map(0x11, 0x12345, 1, IOMMU_READ | IOMMU_NOEXEC)).toBe(0);
    const t = leafTable(pt, 0x10);
    // 0x12345 << 10 = 0x48d1400; D A U X W R V = 0xdf; A U R V = 0x53.
    expect(entry(m, t, 0x10)).toBe(0x48d_14dfn);
    expect(entry(m, t, 0x11)).toBe(0x48d_1453n);
    // The non-leaf entries are V with the next table's PPN, nothing else.
    const root = pt.rootPfn;
    const l1 = Number(entry(m, root, 0) >> 10n);
    expect(entry(m, root, 0)).toBe((BigInt(l1) << 10n) | 1n);
    expect(entry(m, l1, 0)).toBe((BigInt(t) << 10n) | 1n);
  });

  it('refuses a prot with neither read, write nor execute (it would read back as a table pointer)', () => {
    const { pt } = allocSv();
    expect(pt.map(0x10, 0x100, 1, IOMMU_NOEXEC)).toBe(-95);
  });

  it('uses 2 MiB, 1 GiB and 512 GiB leaves and levels 3 / 4 / 5', () => {
    const { pt, m } = allocSv(SV48);
    expect(pt.levels).toBe(4);
    expect(pt.map(512, 0x40000, 512, IOMMU_READ)).toBe(0);
    const w = walk(pt, 512 + 7);
    expect([w.fault, w.pfn, w.pageShift]).toEqual([WALK_OK, 0x40007, 21]);
    expect(pt.map(2 ** 27, 2 ** 27, 2 ** 27, IOMMU_READ)).toBe(0);
    expect(walk(pt, 2 ** 27 + 5).pageShift).toBe(39);
    // The 512G leaf is at the root: index 1, PPN 2^27, A U X R V.
    expect(entry(m, pt.rootPfn, 1)).toBe((BigInt(2 ** 27) << 10n) | 0x5bn);
    expect(allocSv(SV57).pt.levels).toBe(5);
  });

  it('grants user R/W/X on U pages and nothing to a supervisor without SUM', () => {
    const { pt } = allocSv();
    pt.map(0x10, 0x100, 1, IOMMU_READ | IOMMU_WRITE);
    const g = walk(pt, 0x10).perm;
    expect([permAllowed(g, PERM_READ), permAllowed(g, PERM_WRITE), permAllowed(g, PERM_EXEC)]).toEqual([true, true, true]);
    expect(permAllowed(g, PERM_READ | PERM_PRIV)).toBe(false);
    const sum = allocSv(SV39, { sum: true }).pt;
    sum.map(0x10, 0x100, 1, IOMMU_READ | IOMMU_WRITE);
    const s = walk(sum, 0x10).perm;
    // SUM lets a supervisor read and write a U page, never execute it.
    expect([permAllowed(s, PERM_READ | PERM_PRIV), permAllowed(s, PERM_WRITE | PERM_PRIV), permAllowed(s, PERM_EXEC | PERM_PRIV)]).toEqual([true, true, false]);
  });
});

describe('the walk on entries Linux does not write', () => {
  function patched(v: bigint, level0 = true) {
    const { pt, m } = allocSv();
    pt.map(0x10, 0x100, 1, IOMMU_READ | IOMMU_WRITE);
    const t = leafTable(pt, 0x10);
    if (level0) setEntry(m, t, 0x10, v);
    return { pt, m, t };
  }

  it('a U = 0 page serves supervisor requests only', () => {
    const { pt } = patched(0x4000_0000n | 0xcfn); // PPN 0x100000, D A X W R V, no U
    const g = walk(pt, 0x10).perm;
    expect(permAllowed(g, PERM_READ)).toBe(false);
    expect([permAllowed(g, PERM_READ | PERM_PRIV), permAllowed(g, PERM_EXEC | PERM_PRIV)]).toEqual([true, true]);
  });

  it('without A nothing is granted; without D no store (DC.tc.SADE = 0)', () => {
    expect(walk(patched(0x400n << 10n | 0x9fn).pt, 0x10).perm & (PERM_READ | PERM_WRITE | PERM_EXEC)).toBe(0); // D U X W R V, no A
    const noD = walk(patched(0x400n << 10n | 0x5fn).pt, 0x10).perm; // A U X W R V, no D
    expect([permAllowed(noD, PERM_READ), permAllowed(noD, PERM_WRITE)]).toEqual([true, false]);
  });

  it('faults on W without R, reserved bits, PBMT = 3, PBMT without Svpbmt, and N above level 0', () => {
    const base = (0x400n << 10n) | 0xd1n; // D A U V
    expect(walk(patched(base | 0x4n).pt, 0x10).fault).toBe(WALK_RESERVED_BITS); // W only
    expect(walk(patched(base | 0xcn).pt, 0x10).fault).toBe(WALK_RESERVED_BITS); // W X
    expect(walk(patched(base | 0x2n | (1n << 54n)).pt, 0x10).fault).toBe(WALK_RESERVED_BITS);
    expect(walk(patched(base | 0x2n | (3n << 61n)).pt, 0x10).fault).toBe(WALK_RESERVED_BITS);
    expect(walk(patched(base | 0x2n | (1n << 61n)).pt, 0x10).fault).toBe(WALK_RESERVED_BITS);
    // With Svpbmt, NC (1) and IO (2) are fine; with Svrsw60t59b bits 60:59 belong to software.
    const pb = allocSv(SV39, { svpbmt: true, svrsw60t59b: true });
    pb.pt.map(0x10, 0x100, 1, IOMMU_READ);
    setEntry(pb.m, leafTable(pb.pt, 0x10), 0x10, base | 0x2n | (2n << 61n) | (3n << 59n));
    expect(walk(pb.pt, 0x10).fault).toBe(WALK_OK);
  });

  it('faults on a non-leaf entry with A, D, U, PBMT, N or reserved bits, and on a pointer at level 0', () => {
    for (const bit of [1n << 6n, 1n << 7n, 1n << 4n]) {
      const { pt, m } = allocSv();
      pt.map(0x10, 0x100, 1, IOMMU_READ);
      setEntry(m, pt.rootPfn, 0, entry(m, pt.rootPfn, 0) | bit);
      expect(walk(pt, 0x10).fault, `bit ${bit.toString(16)}`).toBe(WALK_RESERVED_BITS);
    }
    // High-word bits on the path: the leaf below grants nothing (the same page fault as a reserved leaf).
    for (const bit of [1n << 61n, 1n << 63n, 1n << 54n]) {
      const { pt, m } = allocSv();
      pt.map(0x10, 0x100, 1, IOMMU_READ);
      setEntry(m, pt.rootPfn, 0, entry(m, pt.rootPfn, 0) | bit);
      expect(walk(pt, 0x10).perm, `bit ${bit.toString(16)}`).toBe(0);
    }
    expect(walk(patched((0x400n << 10n) | 1n).pt, 0x10).fault).toBe(WALK_RESERVED_BITS);
  });

  it('faults on a misaligned superpage', () => {
    const { pt, m } = allocSv();
    pt.map(512, 0x40000, 512, IOMMU_READ);
    const l1 = Number(entry(m, pt.rootPfn, 0) >> 10n);
    setEntry(m, l1, 1, (0x40001n << 10n) | 0x53n);
    expect(walk(pt, 512).fault).toBe(WALK_RESERVED_BITS);
  });

  it('translates a Svnapot 64 KiB run (N = 1, PPN[3:0] = 1000b) with the IOVA low bits, and refuses other N encodings', () => {
    // PPN 0x408 = 0x400 with 1000b in the low bits: the run starts at 0x400.
    const napot = (1n << 63n) | (0x408n << 10n) | 0xd3n;
    const { pt, m, t } = patched(napot);
    for (let i = 0x10; i < 0x20; i++) setEntry(m, t, i, napot);
    expect(walk(pt, 0x10).pfn).toBe(0x400);
    expect(walk(pt, 0x1b).pfn).toBe(0x40b);
    expect(walk(patched((1n << 63n) | (0x404n << 10n) | 0xd3n).pt, 0x10).fault).toBe(WALK_RESERVED_BITS);
  });
});

describe('Svnapot runs as Linux writes them (riscvpt_install_leaf_entry, PT_FEAT_RISCV_SVNAPOT_64K)', () => {
  /** A Sv39 table with the page sizes of the Linux domain: 4K, 64K, 2M, 1G. */
  function napotSv() {
    const m = memory();
    const pt = svFormat(SV39).alloc({ pgsizeBitmap: linuxPageSizes(39), ias: 39, oas: 56 }, m);
    if (typeof pt === 'number') throw new Error(`alloc ${pt}`);
    return { pt, m };
  }
  const N = 1n << 63n;
  const bits = (e: bigint) => ({ n: e >> 63n, ppn: (e >> 10n) & ((1n << 44n) - 1n), flags: e & 0x3ffn });

  it('writes a 64 KiB-aligned 64 KiB range as 16 identical entries: N, PPN[3:0] = 1000b, D A U X W R V', () => {
    const { pt, m } = napotSv();
    expect(pt.map(0x30, 0x4560, 16, IOMMU_READ | IOMMU_WRITE)).toBe(0);
    const t = leafTable(pt, 0x30);
    // PPN 0x4560 with 1000b in its low bits is 0x4568; 0x4568 << 10 = 0x115a000; flags 0xdf; bit 63 N.
    for (let i = 0x30; i < 0x40; i++) expect(entry(m, t, i), `entry ${i}`).toBe(N | 0x115a0dfn);
    expect(bits(entry(m, t, 0x30))).toEqual({ n: 1n, ppn: 0x4568n, flags: 0xdfn });
    // The neighbours stay empty, and every page of the run translates with its own low bits.
    expect([entry(m, t, 0x2f), entry(m, t, 0x40)]).toEqual([0n, 0n]);
    for (let i = 0; i < 16; i++) {
      const w = walk(pt, 0x30 + i);
      expect([w.fault, w.pfn, w.pageShift]).toEqual([WALK_OK, 0x4560 + i, 16]);
    }
    expect(pt.tablePages).toBe(3);
  });

  it('uses runs only where IOVA and output are both 64 KiB-aligned, plain pages elsewhere, and 2 MiB leaves first', () => {
    const { pt, m } = napotSv();
    // IOVA 0x1f..0x3f (33 pages) to 0x8ff..: page 0x1f alone, then runs at 0x20 and 0x30 (output 0x900, 0x910).
    expect(pt.map(0x1f, 0x8ff, 33, IOMMU_READ)).toBe(0);
    const t = leafTable(pt, 0x1f);
    expect(bits(entry(m, t, 0x1f))).toEqual({ n: 0n, ppn: 0x8ffn, flags: 0x5bn });
    expect(bits(entry(m, t, 0x20))).toEqual({ n: 1n, ppn: 0x908n, flags: 0x5bn });
    expect(bits(entry(m, t, 0x3f))).toEqual({ n: 1n, ppn: 0x918n, flags: 0x5bn });
    // The same IOVA alignment with an output off by one page: no run, 16 plain pages.
    expect(pt.map(0x100, 0x1001, 16, IOMMU_READ)).toBe(0);
    for (let i = 0x100; i < 0x110; i++) expect(bits(entry(m, leafTable(pt, 0x100), i)).n).toBe(0n);
    // A 2 MiB-aligned 2 MiB range is one level-1 leaf, not 32 runs.
    expect(pt.map(0x200, 0x40000, 512, IOMMU_READ)).toBe(0);
    expect(walk(pt, 0x210).pageShift).toBe(21);
  });

  it('removes a run only whole: a range covering part of one stops there and changes nothing', () => {
    const { pt, m } = napotSv();
    pt.map(0x30, 0x4560, 32, IOMMU_READ);
    const t = leafTable(pt, 0x30);
    expect(pt.unmap(0x30, 1)).toBe(0);
    expect(pt.unmap(0x38, 8)).toBe(0);
    // One whole run, then a partial one: the first goes, the unmap stops at the second.
    expect(pt.unmap(0x30, 20)).toBe(16);
    for (let i = 0x30; i < 0x40; i++) expect(entry(m, t, i)).toBe(0n);
    for (let i = 0x40; i < 0x50; i++) expect(entry(m, t, i)).toBe(N | (0x4578n << 10n) | 0x5bn);
    expect(walk(pt, 0x45).pfn).toBe(0x4575);
    // The last run goes whole, and the empty tables with it.
    expect(pt.unmap(0x40, 16)).toBe(16);
    expect(pt.tablePages).toBe(1);
  });

  it('refuses a map over any page of a run (EEXIST) and writes nothing', () => {
    const { pt, m } = napotSv();
    pt.map(0x30, 0x4560, 16, IOMMU_READ);
    const t = leafTable(pt, 0x30);
    expect(pt.map(0x3f, 0x9000, 1, IOMMU_READ)).toBe(-17);
    expect(pt.map(0x20, 0x9000, 32, IOMMU_READ)).toBe(-17);
    expect(entry(m, t, 0x20)).toBe(0n);
    expect(entry(m, t, 0x3f)).toBe(N | (0x4568n << 10n) | 0x5bn);
  });

  it('writes no run when the page sizes leave 64 KiB out', () => {
    const { pt, m } = allocSv();
    pt.map(0x30, 0x4560, 16, IOMMU_READ);
    const t = leafTable(pt, 0x30);
    for (let i = 0; i < 16; i++) expect(bits(entry(m, t, 0x30 + i))).toEqual({ n: 0n, ppn: BigInt(0x4560 + i), flags: 0x5bn });
  });
});

describe('second stage (x4)', () => {
  it('has a 16 KiB, 16 KiB-aligned root and a 41-bit guest-physical input', () => {
    const { pt, m } = allocSv(SV39X4);
    expect(pt.rootPfn % 4).toBe(0);
    expect(pt.tablePages).toBe(4);
    expect(pt.cfg.ias).toBe(41);
    // GPA 0x100_0000_3000 (page 2^28 + 3) selects root entry 1024 (GPA[40:30]): the first entry of the root's third frame.
    expect(pt.map(2 ** 28 + 3, 0x777, 1, IOMMU_READ)).toBe(0);
    expect(entry(m, pt.rootPfn + 2, 0) & 1n).toBe(1n);
    expect(walk(pt, 2 ** 28 + 3).pfn).toBe(0x777);
    // The last page of the 41-bit space maps; the next one is beyond it.
    expect(pt.map(2 ** 29 - 1, 0x1, 1, IOMMU_READ)).toBe(0);
    expect(pt.map(2 ** 29, 0x1, 1, IOMMU_READ)).toBe(-34);
  });

  it('checks every access as a user access: U = 0 grants nothing', () => {
    const { pt, m } = allocSv(SV39X4);
    pt.map(0x10, 0x100, 1, IOMMU_READ | IOMMU_WRITE);
    expect(permAllowed(walk(pt, 0x10).perm, PERM_WRITE | PERM_PRIV)).toBe(true);
    setEntry(m, leafTable(pt, 0x10), 0x10, (0x100n << 10n) | 0xcfn);
    expect(walk(pt, 0x10).perm).toBe(0);
  });

  it('refuses SUM (a first-stage attribute) and input sizes beyond the mode', () => {
    const m = memory();
    expect(svFormat(SV39X4).alloc({ pgsizeBitmap: ALL, ias: 41, oas: 56, options: { sum: true } }, m)).toBe(-22);
    expect(svFormat(SV39).alloc({ pgsizeBitmap: ALL, ias: 48, oas: 56 }, m)).toBe(-22);
    expect(svFormat(SV39).alloc({ pgsizeBitmap: ALL, ias: 39, oas: 56, options: { bogus: true } }, m)).toBe(-22);
  });
});
