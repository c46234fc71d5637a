/**
 * The radix engine's rules, checked on the mock codec (and geometries of real formats: a 16 KiB root
 * like Sv39x4, a 16K granule like Arm) against a reference of what is mapped: largest page that fits,
 * all-or-nothing EEXIST, ENOMEM at every depth rolled back without a leaked table, superpages removed
 * only whole, live-entry counts, free with exact accounting.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, WalkResult, WALK_NOT_PRESENT, WALK_ADDRESS_SIZE } from './pgtable.js';
import { PERM_PRIV_EXEC, PERM_PRIV_READ, PERM_PRIV_WRITE, permAllowed, permFailure, grantBoth } from './permission.js';
import { NEXT_LEAF, RadixLayout, RadixPageTable, type RadixCodec, type RadixGeometry } from './radix.js';
import { allocTableFrames } from './table-frames.js';
import { mockCodec } from '../testing/mock-format.js';
import { testTableMemory } from '../testing/table-memory.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const MOCK: RadixGeometry = { levels: 3, entryBits: [9, 9, 9], spanShift: [0, 9, 18], leafLevels: 0b11, ias: 39, oas: 52 };

function table(geometry: RadixGeometry = MOCK, limit = Number.POSITIVE_INFINITY) {
  const tm = testTableMemory(limit);
  const layout = new RadixLayout(geometry);
  const root = RadixPageTable.rootFor(tm.memory, layout);
  if (root < 0) throw new Error('no root');
  const pt = new RadixPageTable('test', { pgsizeBitmap: 0n, ias: geometry.ias, oas: geometry.oas }, mockCodec, layout, tm.memory, root);
  return { pt, tm };
}

function walk(pt: RadixPageTable, pfn: number): WalkResult {
  const out = new WalkResult();
  pt.walk(pfn, out);
  return out;
}

describe('radix engine: map', () => {
  it('uses the largest leaf that alignment and length allow, 4K around it', () => {
    const { pt } = table();
    // [511, 511 + 514): one 4K page, one 2M block at 512, then one 4K page.
    expect(pt.map(511, 0x10000 - 1, 514, RW)).toBe(0);
    expect(walk(pt, 511)).toMatchObject({ pageShift: 12, level: 0, pfn: 0xffff });
    expect(walk(pt, 512)).toMatchObject({ pageShift: 21, level: 1, pfn: 0x10000 });
    expect(walk(pt, 1023)).toMatchObject({ pageShift: 21, pfn: 0x10000 + 511 });
    expect(walk(pt, 1024)).toMatchObject({ pageShift: 12, pfn: 0x10000 + 512 });
    expect(walk(pt, 1025).fault).toBe(WALK_NOT_PRESENT);
    // Misaligned PA: no block even though the IOVA is aligned.
    expect(pt.map(4096, 0x20001, 512, RW)).toBe(0);
    expect(walk(pt, 4096).pageShift).toBe(12);
  });

  it('writes a run of leaves whose output address carries into the high word, and output pages above 2^31', () => {
    const { pt } = table();
    // 4K pages only (PA misaligned for a block); the run crosses PA 4 GiB (pfn 2^20) at entry 100,
    // and a second run sits above 2^31 pages, crossing 2^32 pages.
    expect(pt.map(0, 2 ** 20 - 100, 512, RW)).toBe(0);
    expect(pt.map(1024, 2 ** 32 - 3, 600, RW)).toBe(0);
    for (const p of [0, 99, 100, 101, 511]) expect(walk(pt, p)).toMatchObject({ pageShift: 12, pfn: 2 ** 20 - 100 + p });
    for (const p of [1024, 1026, 1027, 1535, 1536, 1623]) expect(walk(pt, p)).toMatchObject({ pageShift: 12, pfn: 2 ** 32 - 3 + (p - 1024) });
    expect(pt.unmap(0, 2048)).toBe(1112);
    expect(pt.tablePages).toBe(1);
  });

  it('refuses an overlap with EEXIST before writing or allocating anything', () => {
    const { pt, tm } = table();
    expect(pt.map(700, 5000, 1, RW)).toBe(0);
    const pages = pt.tablePages;
    const allocs = tm.allocations;
    // The range starts in an empty 2M region (would allocate) and ends on the mapped page.
    expect(pt.map(0, 9000, 701, RW)).toBe(-17);
    expect(pt.tablePages).toBe(pages);
    expect(tm.allocations).toBe(allocs);
    for (const p of [0, 300, 699]) expect(walk(pt, p).fault).toBe(WALK_NOT_PRESENT);
    expect(walk(pt, 700).pfn).toBe(5000);
    // A block over part of a mapped region, and a page inside a block.
    expect(pt.map(1024, 1 << 20, 512, RW)).toBe(0);
    expect(walk(pt, 1024).pageShift).toBe(21);
    expect(pt.map(1024 - 512, 1 << 21, 1024, RW)).toBe(-17);
    expect(pt.map(1300, 1 << 21, 1, RW)).toBe(-17);
  });

  it('rolls an ENOMEM back at every depth: nothing mapped, no table leaked', () => {
    // [1, 1537) as 4K pages needs a level-1 table and 4 leaf tables: let the Kth of them fail, for
    // every K (the root and a first mapping's 2 tables take 3 allocations).
    for (let k = 0; k < 5; k++) {
      const { pt, tm } = table(MOCK, 3 + k);
      expect(pt.map(1 << 18, 77, 1, RW)).toBe(0);
      const before = { pages: pt.tablePages, inUse: tm.frames.framesInUse, tables: pt.tableCount, root: pt.liveEntries(pt.rootPfn) };
      expect(pt.map(1, 1000, 3 * 512, RW)).toBe(-12);
      expect({ pages: pt.tablePages, inUse: tm.frames.framesInUse, tables: pt.tableCount, root: pt.liveEntries(pt.rootPfn) }).toEqual(before);
      for (const p of [1, 512, 1536]) expect(walk(pt, p).fault).toBe(WALK_NOT_PRESENT);
      expect(walk(pt, 1 << 18).pfn).toBe(77);
    }
  });

  it('refuses page numbers beyond the input or output size with ERANGE, bad arguments with EINVAL', () => {
    const { pt } = table();
    expect(pt.map(2 ** 27 - 1, 0, 2, RW)).toBe(-34);
    expect(pt.map(0, 2 ** 40 - 1, 2, RW)).toBe(-34);
    expect(pt.map(-1, 0, 1, RW)).toBe(-22);
    expect(pt.map(0, 0.5, 1, RW)).toBe(-22);
    expect(pt.map(0, 0, 0, RW)).toBe(-22);
    expect(walk(pt, 2 ** 27).fault).toBe(WALK_ADDRESS_SIZE);
  });
});

describe('radix engine: unmap and free', () => {
  it('removes a superpage only whole: a partial range stops there', () => {
    const { pt } = table();
    expect(pt.map(0, 0, 1024, RW)).toBe(0);
    expect(pt.map(2048, 4096, 1, RW)).toBe(0);
    // [256, 2049) starts inside the first block: nothing removed, everything still mapped.
    expect(pt.unmap(256, 1793)).toBe(0);
    expect(walk(pt, 0).pageShift).toBe(21);
    expect(walk(pt, 600).pageShift).toBe(21);
    expect(walk(pt, 2048).pfn).toBe(4096);
    // [512, 1536) covers the second block whole, then half of nothing: removes 512 pages.
    expect(pt.unmap(512, 1024)).toBe(512);
    expect(walk(pt, 512).fault).toBe(WALK_NOT_PRESENT);
    expect(walk(pt, 0).pageShift).toBe(21);
  });

  it('keeps a live-entry count per table and releases a table the moment it empties', () => {
    const { pt, tm } = table();
    expect(pt.map(10, 100, 3, RW)).toBe(0);
    expect(pt.tablePages).toBe(3);
    expect(pt.liveEntries(pt.rootPfn)).toBe(1);
    expect(pt.unmap(11, 1)).toBe(1);
    expect(pt.tablePages).toBe(3);
    expect(pt.unmap(0, 11)).toBe(1);
    expect(pt.unmap(12, 1)).toBe(1);
    expect(pt.tablePages).toBe(1);
    expect(pt.liveEntries(pt.rootPfn)).toBe(0);
    expect(tm.frames.framesInUse).toBe(1);
    expect(pt.unmap(0, 2 ** 40)).toBe(0);
  });

  it('releases leaf tables a range covers whole by their live counts, and a table taken again maps only what it is given', () => {
    const { pt, tm } = table();
    // Three leaf tables: a full one (an unaligned output, so no 2 MiB leaf), one with 3 pages, one with a single page at its end.
    expect(pt.map(0, 4097, 512, RW)).toBe(0);
    expect(pt.map(512 + 7, 9000, 3, RW)).toBe(0);
    expect(pt.map(1024 + 511, 9100, 1, RW)).toBe(0);
    expect(pt.tablePages).toBe(5);
    // [1, 1536): the first table partly (511 of its pages), the other two whole.
    expect(pt.unmap(1, 1535)).toBe(511 + 3 + 1);
    expect(pt.tablePages).toBe(3);
    expect(walk(pt, 0).pfn).toBe(4097);
    expect(pt.unmap(0, 1536)).toBe(1);
    expect(pt.tablePages).toBe(1);
    expect(tm.frames.framesInUse).toBe(1);
    // The released frames come back as tables holding nothing but the new page.
    expect(pt.map(512 + 100, 7000, 1, RW)).toBe(0);
    expect(pt.map(1024, 7001, 1, RW)).toBe(0);
    for (const p of [0, 1, 512, 512 + 7, 512 + 8, 512 + 9, 1024 + 511, 1025]) expect(walk(pt, p).fault).toBe(WALK_NOT_PRESENT);
    expect(walk(pt, 512 + 100).pfn).toBe(7000);
    expect(walk(pt, 1024).pfn).toBe(7001);
    expect(pt.unmap(0, 2048)).toBe(2);
    expect(pt.tablePages).toBe(1);
  });

  it('hands leaf tables an unmap empties back in runs, in the order it emptied them', () => {
    const runs = table();
    const tm = testTableMemory();
    const layout = new RadixLayout(MOCK);
    // The same memory without releaseTableRun: every table goes back on its own.
    const memory = { mem: tm.mem, allocTable: () => tm.memory.allocTable(), releaseTable: (p: number) => tm.memory.releaseTable(p) };
    const one = new RadixPageTable('test', { pgsizeBitmap: 0n, ias: MOCK.ias, oas: MOCK.oas }, mockCodec, layout, memory, RadixPageTable.rootFor(memory, layout));
    const tables = (pt: RadixPageTable): number[] => [0, 1, 2, 3, 4, 5, 6, 7].map((t) => pt.trace(t * 512).at(-1)!.tablePfn);
    // Unaligned output pages: 4K leaves in 8 leaf tables. Each round hands them back in the order the
    // last one took them, so the free list reverses them every round.
    for (let round = 0; round < 3; round++) {
      for (const pt of [runs.pt, one]) expect(pt.map(0, 4097 + round, 8 * 512, RW)).toBe(0);
      expect(tables(runs.pt)).toEqual(tables(one));
      for (const pt of [runs.pt, one]) expect(pt.unmap(0, 8 * 512)).toBe(8 * 512);
      expect(runs.tm.frames.framesInUse).toBe(tm.frames.framesInUse);
      expect(runs.pt.tablePages).toBe(1);
    }
  });

  it('frees every table with exact accounting', () => {
    const { pt, tm } = table();
    expect(pt.map(0, 0, 1 << 18, RW)).toBe(0);
    expect(pt.map(1 << 18, 3, 700, RW)).toBe(0);
    expect(pt.tablePages).toBe(tm.frames.framesInUse);
    pt.free();
    expect(pt.tablePages).toBe(0);
    expect(tm.frames.framesInUse).toBe(0);
    expect(pt.map(0, 0, 1, RW)).toBe(-22);
    expect(walk(pt, 0).fault).toBe(WALK_ADDRESS_SIZE);
  });
});

describe('radix engine: tables of several frames', () => {
  it('allocates a 16 KiB root (Sv39x4-like: 2048 entries) contiguous and aligned', () => {
    const geo: RadixGeometry = { levels: 3, entryBits: [9, 9, 11], spanShift: [0, 9, 18], leafLevels: 0b11, ias: 41, oas: 52 };
    const { pt, tm } = table(geo);
    expect(pt.rootPfn % 4).toBe(0);
    expect(pt.tablePages).toBe(4);
    // The last root entry lives in the root's fourth frame.
    const last = 2 ** 29 - 1;
    expect(pt.map(last, 42, 1, RW)).toBe(0);
    expect(walk(pt, last).pfn).toBe(42);
    expect(tm.mem.readU64(pt.rootPfn + 3, 511) & 1n).toBe(1n);
    pt.free();
    expect(tm.frames.framesInUse).toBe(0);
  });

  it('maps a 16K granule (4 frames per table, 4-page leaves) and refuses misaligned pages', () => {
    const geo: RadixGeometry = { levels: 3, entryBits: [11, 11, 11], spanShift: [2, 13, 24], leafLevels: 0b11, ias: 47, oas: 48 };
    const { pt, tm } = table(geo);
    expect(pt.map(1, 0, 4, RW)).toBe(-22);
    expect(pt.map(0, 4, 6, RW)).toBe(-22);
    expect(pt.map(4, 8, 8, RW)).toBe(0);
    expect(walk(pt, 7)).toMatchObject({ pfn: 11, pageShift: 14 });
    expect(pt.map(1 << 13, 1 << 13, 1 << 13, RW)).toBe(0);
    expect(walk(pt, (1 << 13) + 5)).toMatchObject({ pfn: (1 << 13) + 5, pageShift: 25 });
    expect(pt.tablePages).toBe(12);
    expect(pt.unmap(4, 8)).toBe(8);
    expect(pt.tablePages).toBe(8);
    pt.free();
    expect(tm.frames.framesInUse).toBe(0);
  });

  it('assembles an aligned run from single frames when the memory has no allocTables', () => {
    const tm = testTableMemory();
    const single = { mem: tm.mem, allocTable: () => tm.memory.allocTable(), releaseTable: (p: number) => tm.memory.releaseTable(p) };
    tm.memory.allocTable(); // offsets the next frame from any alignment
    const run = allocTableFrames(single, 16);
    expect(run % 16).toBe(0);
    expect(tm.frames.framesInUse).toBe(17);
  });
});

describe('permission model', () => {
  it('keeps privileged and unprivileged grants apart (user page vs supervisor page)', () => {
    const { pt } = table();
    expect(pt.map(0, 0, 1, RW)).toBe(0);
    expect(pt.map(1, 1, 1, RW | IOMMU_PRIV)).toBe(0);
    const user = walk(pt, 0).perm;
    const sup = walk(pt, 1).perm;
    expect(user).toBe(PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV_READ | PERM_PRIV_WRITE);
    expect(sup).toBe(PERM_PRIV_READ | PERM_PRIV_WRITE | PERM_PRIV_EXEC);
    expect(permAllowed(user, PERM_WRITE)).toBe(true);
    expect(permAllowed(user, PERM_WRITE | PERM_PRIV)).toBe(true);
    // No privileged execute on a user page (SMEP-like), and no user access to a supervisor page.
    expect(permAllowed(user, PERM_EXEC | PERM_PRIV)).toBe(false);
    expect(permFailure(user, PERM_EXEC | PERM_PRIV)).toBe('permission-priv');
    expect(permAllowed(sup, PERM_READ)).toBe(false);
    expect(permFailure(sup, PERM_READ)).toBe('permission-priv');
    expect(permAllowed(sup, PERM_EXEC | PERM_PRIV)).toBe(true);
  });

  it('names the missing access when the privilege is not the reason', () => {
    const ro = grantBoth(PERM_READ);
    expect(permFailure(ro, PERM_WRITE)).toBe('permission-write');
    expect(permFailure(ro, PERM_EXEC | PERM_PRIV)).toBe('permission-exec');
    expect(permFailure(0, PERM_READ)).toBe('permission-read');
  });
});

describe('radix engine: nextLevel', () => {
  it('a codec whose nextLevel answers NEXT_LEAF still walks a block at any offset inside it', () => {
    // The mock's block bit (7) already says leaf; a nextLevel that confirms it must not make the walk
    // treat the levels below the block as skipped table levels.
    const codec = { ...mockCodec, nextLevel: () => NEXT_LEAF };
    const tm = testTableMemory();
    const layout = new RadixLayout(MOCK);
    const root = RadixPageTable.rootFor(tm.memory, layout);
    const pt = new RadixPageTable('test', { pgsizeBitmap: 0n, ias: 39, oas: 52 }, codec, layout, tm.memory, root);
    expect(pt.map(512, 0x40000, 512, RW)).toBe(0);
    expect(walk(pt, 512 + 7)).toMatchObject({ fault: 0, pfn: 0x40007, pageShift: 21 });
  });
});

describe('radix engine: replicated leaves and level skipping', () => {
  // The mock encoding plus REP (bit 8): a leaf of 2^k entries' span, each replica holding
  // pfn + pages/2 - 1 (the size is one more than the address's trailing ones, as AMD v1 NextLevel 7);
  // SKIP (bit 9) on a BLOCK-typed entry: a pointer straight to the level-0 table.
  const REP = 1 << 8;
  const SKIP = 1 << 9;
  const BLOCK = 128;
  const codec: RadixCodec = {
    ...mockCodec,
    replicaTypeLo: [REP, REP | BLOCK, REP | BLOCK],
    replicaPfn: (pfn, pages) => pfn + pages / 2 - 1,
    leafPages(lo, _hi, level) {
      if ((lo & REP) === 0) return 512 ** level;
      let ones = 0;
      while ((lo >>> (12 + ones)) & 1) ones++;
      return 2 ** (ones + 1);
    },
    nextLevel: (lo) => ((lo & SKIP) !== 0 ? 0 : NEXT_LEAF),
  };
  const geometry: RadixGeometry = { ...MOCK, replicated: [0b110, 0b10, 0] };

  function repTable() {
    const tm = testTableMemory();
    const layout = new RadixLayout(geometry);
    const root = RadixPageTable.rootFor(tm.memory, layout);
    return { tm, pt: new RadixPageTable('rep', { pgsizeBitmap: 0n, ias: 39, oas: 52, dirtyTracking: true }, codec, layout, tm.memory, root) };
  }

  it('writes the largest replicated size that fits, walks it, and removes it only whole', () => {
    const { pt } = repTable();
    // 16K at 0 (four level-0 replicas), then 8K, then 4K.
    expect(pt.map(0, 0x1000, 7, RW)).toBe(0);
    expect(walk(pt, 3)).toMatchObject({ pfn: 0x1003, pageShift: 14, level: 0 });
    expect(walk(pt, 5)).toMatchObject({ pfn: 0x1005, pageShift: 13 });
    expect(walk(pt, 6)).toMatchObject({ pfn: 0x1006, pageShift: 12 });
    // 4M at 1024: two level-1 replicas.
    expect(pt.map(1024, 0x10000, 1024, RW)).toBe(0);
    expect(walk(pt, 2047)).toMatchObject({ pfn: 0x10000 + 1023, pageShift: 22, level: 1 });
    expect(pt.liveEntries(pt.rootPfn)).toBe(1);
    expect(pt.unmap(1024, 512)).toBe(0);
    expect(pt.unmap(1024, 1024)).toBe(1024);
    expect(walk(pt, 1536).fault).toBe(WALK_NOT_PRESENT);
    expect(pt.unmap(1, 3)).toBe(0);
    expect(pt.unmap(0, 7)).toBe(7);
    expect(pt.tablePages).toBe(1);
  });

  it('reports a replicated leaf dirty once when any replica is dirty, and clears them all', () => {
    const { pt } = repTable();
    expect(pt.map(0, 0x1000, 4, RW)).toBe(0);
    pt.markAccess(2, true);
    const seen: number[][] = [];
    pt.readAndClearDirty(0, 4, false, (p, n) => seen.push([p, n]));
    expect(seen).toEqual([[0, 4]]);
    pt.readAndClearDirty(0, 4, false, (p, n) => seen.push([p, n]));
    expect(seen).toHaveLength(1);
  });

  it('follows a level-skipping entry when the skipped IOVA bits are zero, and frees its table', () => {
    const { pt, tm } = repTable();
    const leafTable = tm.memory.allocTable();
    tm.mem.writeU64(pt.rootPfn, 0, (BigInt(leafTable) << 12n) | BigInt(1 | BLOCK | SKIP));
    tm.mem.writeU64(leafTable, 5, (0x777n << 12n) | 3n);
    expect(walk(pt, 5)).toMatchObject({ fault: 0, pfn: 0x777, level: 0 });
    expect(walk(pt, 512 + 5)).toMatchObject({ fault: WALK_NOT_PRESENT, level: 1 });
    const inUse = tm.frames.framesInUse;
    pt.free();
    expect(tm.frames.framesInUse).toBe(inUse - 2);
  });
});

describe('radix engine: a one-page map into the leaf table of the one before', () => {
  /** The same table twice: `fast` with the slab paths, `general` without them. */
  function pair() {
    const a = table();
    const b = table();
    b.pt.setSlabPaths(false);
    return [a, b] as const;
  }
  const entries = (pt: RadixPageTable, pfns: number[]) => pfns.map((p) => pt.trace(p).map((s) => s.entry));

  it('maps page after page like the general path: entries, live counts, EEXIST, another prot', () => {
    const [a, b] = pair();
    const pages: number[] = [];
    for (let i = 0; i < 40; i++) {
      const p = 0x3f0 + i; // crosses into the next leaf table at 0x400
      pages.push(p);
      const prot = i % 7 === 6 ? IOMMU_READ : RW;
      expect(a.pt.map(p, 0x20000 + 3 * i, 1, prot)).toBe(b.pt.map(p, 0x20000 + 3 * i, 1, prot));
    }
    expect(a.pt.map(0x3f5, 0x1, 1, RW)).toBe(-17);
    expect(b.pt.map(0x3f5, 0x1, 1, RW)).toBe(-17);
    expect(entries(a.pt, pages)).toEqual(entries(b.pt, pages));
    for (const p of [0x3f0, 0x400]) {
      const leafTable = a.pt.trace(p)[2].tablePfn;
      expect(a.pt.liveEntries(leafTable)).toBe(b.pt.liveEntries(b.pt.trace(p)[2].tablePfn));
    }
    expect(a.pt.tablePages).toBe(b.pt.tablePages);
    // Bad arguments still take the general checks.
    for (const [iova, pa, n] of [[0x3f1 + 0.5, 1, 1], [0x3f8, -1, 1], [0x3f8, 2 ** 40, 1], [0x3f8, 1.5, 1]]) {
      expect(a.pt.map(iova, pa, n, RW)).toBe(b.pt.map(iova, pa, n, RW));
    }
  });

  it('forgets the leaf table once an unmap releases it', () => {
    const [a, b] = pair();
    for (const { pt } of [a, b]) {
      expect(pt.map(0x800, 0x100, 1, RW)).toBe(0);
      expect(pt.unmap(0x800, 1)).toBe(1);
      expect(pt.tablePages).toBe(1);
      // The leaf table is gone: the next page gets new tables, counted.
      expect(pt.map(0x801, 0x101, 1, RW)).toBe(0);
      expect(pt.tablePages).toBe(3);
    }
    expect(entries(a.pt, [0x800, 0x801])).toEqual(entries(b.pt, [0x800, 0x801]));
    expect(a.tm.frames.framesInUse).toBe(b.tm.frames.framesInUse);
  });

  it('walks again when an entry above the leaf table was written behind its back', () => {
    const [a, b] = pair();
    // The third map into a leaf table remembers it (the first two walk: a new table, then a note).
    for (const { pt } of [a, b]) for (let i = 0; i < 3; i++) expect(pt.map(0x1000 + i, 0x100 + i, 1, RW)).toBe(0);
    // Clear the level-1 entry that points to the leaf table, then the root entry, in both tables.
    for (const level of [1, 2]) {
      for (const { pt, tm } of [a, b]) {
        const step = pt.trace(0x1000).find((s) => s.level === level)!;
        tm.mem.writeU64(step.tablePfn, step.index, 0n);
      }
      const p = 0x1010 + level;
      expect(a.pt.map(p, 0x200 + level, 1, RW)).toBe(b.pt.map(p, 0x200 + level, 1, RW));
      expect(entries(a.pt, [p])).toEqual(entries(b.pt, [p]));
      expect(walk(a.pt, p)).toEqual(walk(b.pt, p));
      expect(a.pt.tablePages).toBe(b.pt.tablePages);
    }
  });

  it('walks again when one bit of either word of an entry above the leaf table changed, or the entry reads as NaN', () => {
    // Each entry on the path is compared as its 64 bits: a bit of the high word alone (an address bit, a
    // bit above the address) counts as much as one of the low word. An entry whose bits read as a NaN is
    // never remembered (a NaN equals nothing) and the maps after it walk.
    const bits = [0n, 1n, 7n, 12n, 31n, 32n, 40n, 51n, 52n, 62n, 63n];
    const cases: [number, bigint | 'nan'][] = [];
    for (const level of [1, 2]) {
      for (const bit of bits) cases.push([level, bit]);
      cases.push([level, 'nan']);
    }
    for (const [level, bit] of cases) {
      const [a, b] = pair();
      for (const { pt } of [a, b]) for (let i = 0; i < 3; i++) expect(pt.map(0x1000 + i, 0x100 + i, 1, RW)).toBe(0);
      for (const { pt, tm } of [a, b]) {
        const step = pt.trace(0x1000).find((s) => s.level === level)!;
        const was = tm.mem.readU64(step.tablePfn, step.index);
        tm.mem.writeU64(step.tablePfn, step.index, bit === 'nan' ? was | (0x7ffn << 52n) : was ^ (1n << bit));
      }
      for (let i = 0; i < 3; i++) {
        const p = 0x1010 + i;
        expect(a.pt.map(p, 0x200 + i, 1, RW)).toBe(b.pt.map(p, 0x200 + i, 1, RW));
        expect(entries(a.pt, [p])).toEqual(entries(b.pt, [p]));
        expect(walk(a.pt, p)).toEqual(walk(b.pt, p));
        expect(a.pt.tablePages).toBe(b.pt.tablePages);
      }
    }
  });
});
