import { describe, it, expect } from 'vitest';
import { testTableMemory } from '@ioasid/core/testing';
import fc from 'fast-check';
import { PTE_ADDR, SZ_1G, SZ_2M, SZ_4K, rawPte } from './__tests__/fixtures.js';
import {
  IOMMU_NOEXEC,
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
  WalkResult,
  ChunkCache,
  PhysicalMemory,
  radixWalk,
  type IoPageTable,
  type PageTableConfig,
  type PageTableMemory,
  type RadixCodec,
  type RadixLayout,
} from '@ioasid/core/driver';
import { grantBoth } from '@ioasid/core/driver';
import { vtdSecondStage } from './pgtable-ss.js';

const RW = IOMMU_READ | IOMMU_WRITE;


function alloc(cfg: Partial<PageTableConfig>, memory: PageTableMemory): IoPageTable {
  const pt = vtdSecondStage.alloc({ pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 52, ...cfg }, memory);
  if (typeof pt === 'number') throw new Error(`alloc failed: ${pt}`);
  return pt;
}

/** Raw PTE at `level` for `iovaPfn`, following the table pointers from the root. */
describe('vtd-ss alloc', () => {
  it('picks levels from ias and refuses what SAGAW or the width cannot do', () => {
    const { memory } = testTableMemory();
    expect(alloc({ ias: 39 }, memory).levels).toBe(3);
    expect(alloc({ ias: 48 }, memory).levels).toBe(4);
    expect(alloc({ ias: 57 }, memory).levels).toBe(5);
    expect(alloc({ ias: 32 }, memory).levels).toBe(3);
    expect(vtdSecondStage.alloc({ pgsizeBitmap: SZ_4K, ias: 57, oas: 46, options: { sagaw: 0x4 } }, memory)).toBe(-22);
    expect(vtdSecondStage.alloc({ pgsizeBitmap: SZ_4K, ias: 48, oas: 46, levels: 3 }, memory)).toBe(-22);
    expect(vtdSecondStage.alloc({ pgsizeBitmap: SZ_4K, ias: 48, oas: 46, levels: 6 }, memory)).toBe(-22);
    expect(vtdSecondStage.alloc({ pgsizeBitmap: SZ_2M, ias: 48, oas: 46 }, memory)).toBe(-22);
    expect(typeof vtdSecondStage.alloc({ pgsizeBitmap: SZ_4K, ias: 48, oas: 46, options: { sagaw: 0x6 } }, memory)).toBe('object');
  });

  it('restricts cfg.pgsizeBitmap in and out', () => {
    const { memory } = testTableMemory();
    const cfg: PageTableConfig = {
      pgsizeBitmap: SZ_4K | SZ_2M | (1n << 39n) | (1n << 16n),
      ias: 48,
      oas: 46,
    };
    const pt = vtdSecondStage.alloc(cfg, memory) as IoPageTable;
    expect(cfg.pgsizeBitmap).toBe(SZ_4K | SZ_2M);
    expect(pt.cfg.pgsizeBitmap).toBe(SZ_4K | SZ_2M);
    expect(pt.format).toBe('vtd-ss');
    expect(pt.tablePages).toBe(1);
  });

  it('returns -ENOMEM when even the root cannot be allocated', () => {
    const { memory } = testTableMemory(0);
    expect(vtdSecondStage.alloc({ pgsizeBitmap: SZ_4K, ias: 48, oas: 46 }, memory)).toBe(-12);
  });
});

describe('vtd-ss PTE bits', () => {
  it('writes R|W tables and R/W/SNP leaves', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ coherent: true }, memory);
    expect(pt.map(0x12345, 0x9abcd, 1, RW)).toBe(0);
    for (let level = 3; level >= 1; level--) {
      const t = rawPte(mem, pt, 0x12345, level);
      expect(t & 0xfffn).toBe(0x3n);
    }
    expect(rawPte(mem, pt, 0x12345, 0)).toBe((0x9abcdn << 12n) | 0x800n | 0x3n);
    expect(pt.map(0x12346, 0x9abce, 1, IOMMU_READ)).toBe(0);
    expect(rawPte(mem, pt, 0x12346, 0)).toBe((0x9abcen << 12n) | 0x800n | 0x1n);
  });

  it('leaves SNP, X, EMT and IPAT clear unless asked, and encodes PAs above 4 GiB', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({}, memory);
    const pa = 0x123456789; // PA 0x123456789000
    expect(pt.map(7, pa, 2, IOMMU_WRITE)).toBe(0);
    expect(rawPte(mem, pt, 7, 0)).toBe(0x123456789000n | 0x2n);
    expect(rawPte(mem, pt, 8, 0)).toBe(0x12345678a000n | 0x2n);
    const out = new WalkResult();
    expect(pt.walk(8, out)).toBe(true);
    expect(out.pfn).toBe(pa + 1);
    expect(out.perm).toBe(grantBoth(PERM_WRITE));
  });

  it('sets X only with SLEE and without IOMMU_NOEXEC', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ options: { slee: true } }, memory);
    pt.map(1, 100, 1, RW);
    pt.map(2, 101, 1, RW | IOMMU_NOEXEC);
    expect(rawPte(mem, pt, 1, 0)).toBe((100n << 12n) | 0x7n);
    expect(rawPte(mem, pt, 2, 0)).toBe((101n << 12n) | 0x3n);
    const out = new WalkResult();
    pt.walk(1, out);
    expect(out.perm).toBe(grantBoth(PERM_READ | PERM_WRITE | PERM_EXEC));
    pt.walk(2, out);
    expect(out.perm).toBe(grantBoth(PERM_READ | PERM_WRITE));
  });

  it('refuses read-only maps on a nest parent (ERRATA_772415_SPR17) and maps that grant nothing', () => {
    const { memory } = testTableMemory();
    const pt = alloc({ options: { forceWriteable: true } }, memory);
    expect(pt.map(0, 0, 1, IOMMU_READ)).toBe(-22);
    expect(pt.map(0, 0, 1, 0)).toBe(-22);
    expect(pt.map(0, 0, 1, RW)).toBe(0);
  });
});

describe('vtd-ss superpages', () => {
  it('uses 1G and 2M leaves where alignment and the bitmap allow', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({}, memory);
    const pa = 0x40000; // 1 GiB
    expect(pt.map(0x40000, pa, 262144 + 512 + 3, RW)).toBe(0);
    expect(rawPte(mem, pt, 0x40000, 2)).toBe((BigInt(pa) << 12n) | 0x80n | 0x3n);
    expect(rawPte(mem, pt, 0x80000, 1)).toBe((BigInt(pa + 262144) << 12n) | 0x80n | 0x3n);
    const out = new WalkResult();
    expect(pt.walk(0x40000 + 1234, out)).toBe(true);
    expect([out.pfn, out.pageShift, out.level]).toEqual([pa + 1234, 30, 2]);
    expect(pt.walk(0x80000 + 17, out)).toBe(true);
    expect([out.pfn, out.pageShift, out.level]).toEqual([pa + 262144 + 17, 21, 1]);
    expect(pt.walk(0x80000 + 514, out)).toBe(true);
    expect([out.pfn, out.pageShift, out.level]).toEqual([pa + 262144 + 514, 12, 0]);
  });

  it('falls back to 4K pages when PA and IOVA are not equally aligned or 2M is not allowed', () => {
    const { memory } = testTableMemory();
    const out = new WalkResult();
    const pt = alloc({}, memory);
    expect(pt.map(512, 513, 512, RW)).toBe(0);
    pt.walk(700, out);
    expect(out.pageShift).toBe(12);
    const pt4k = alloc({ pgsizeBitmap: SZ_4K }, memory);
    expect(pt4k.map(0, 0x40000, 262144, RW)).toBe(0);
    pt4k.walk(5, out);
    expect(out.pageShift).toBe(12);
    expect(pt4k.tablePages).toBe(3 + 512);
  });

  it('removes a superpage only whole and stops at a partly covered one', () => {
    const { memory } = testTableMemory();
    const pt = alloc({}, memory);
    pt.map(0, 0, 10, RW);
    pt.map(512, 1024, 512, RW);
    const out = new WalkResult();
    // The range covers the 4K pages then half of the 2M leaf: the 4K pages go, the leaf stays.
    expect(pt.unmap(0, 512 + 256)).toBe(10);
    expect(pt.walk(600, out)).toBe(true);
    expect(pt.unmap(600, 10)).toBe(0);
    expect(pt.unmap(512, 512)).toBe(512);
    expect(pt.walk(600, out)).toBe(false);
    expect(pt.tablePages).toBe(1);
  });

  it('treats PS in a PML4E as reserved', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({}, memory);
    mem.writeU64(pt.rootPfn, 1, (0x1000n << 12n) | 0x83n);
    const out = new WalkResult();
    expect(pt.walk(2 ** 27, out)).toBe(false);
    expect(out.fault).toBe(WALK_RESERVED_BITS);
  });
});

describe('vtd-ss map/unmap/walk', () => {
  it('round-trips near the top of a 57-bit space with PAs above 2^32', () => {
    const { memory } = testTableMemory();
    const pt = alloc({ ias: 57 }, memory);
    const top = 2 ** 45;
    const pa = 2 ** 39 + 12345;
    expect(pt.map(top - 3, pa, 3, RW)).toBe(0);
    expect(pt.map(top - 1, 0, 2, RW)).toBe(-34);
    const out = new WalkResult();
    for (let i = 0; i < 3; i++) {
      expect(pt.walk(top - 3 + i, out)).toBe(true);
      expect(out.pfn).toBe(pa + i);
      expect(out.fault).toBe(WALK_OK);
    }
    expect(pt.walk(top, out)).toBe(false);
    expect(out.fault).toBe(WALK_ADDRESS_SIZE);
    expect(pt.walk(top - 4, out)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    expect(pt.unmap(top - 3, 3)).toBe(3);
    expect(pt.tablePages).toBe(1);
  });

  it('walks 3-level and 4-level tables at every index bit', () => {
    const { memory } = testTableMemory();
    const out = new WalkResult();
    for (const ias of [39, 48]) {
      const pt = alloc({ ias, pgsizeBitmap: SZ_4K }, memory);
      const limit = 2 ** (ias - 12);
      const probes = [...new Set([0, 1, 511, 512, 262143, 262144, 2 ** 27 - 1, limit - 1, limit - 512, 2 ** 31 + 5])].filter((p) => p < limit);
      for (const p of probes) expect(pt.map(p, p + 7, 1, RW)).toBe(0);
      for (const p of probes) {
        expect(pt.walk(p, out)).toBe(true);
        expect(out.pfn).toBe(p + 7);
      }
      expect(pt.unmap(0, limit)).toBe(probes.length);
      expect(pt.tablePages).toBe(1);
    }
  });

  it('refuses with -EEXIST and changes nothing', () => {
    const { memory } = testTableMemory();
    const pt = alloc({}, memory);
    expect(pt.map(100, 1000, 10, RW)).toBe(0);
    const pages = pt.tablePages;
    expect(pt.map(90, 2000, 11, RW)).toBe(-17);
    expect(pt.map(109, 2000, 600, RW)).toBe(-17);
    const out = new WalkResult();
    expect(pt.walk(90, out)).toBe(false);
    expect(pt.walk(110, out)).toBe(false);
    expect(pt.walk(109, out)).toBe(true);
    expect(out.pfn).toBe(1009);
    expect(pt.tablePages).toBe(pages);
    // A 2M leaf overlapping a mapped 4K page is refused as well.
    expect(pt.map(0, 0, 1024, RW)).toBe(-17);
  });

  it('rolls back completely on -ENOMEM', () => {
    for (let limit = 1; limit <= 8; limit++) {
      const { memory, frames } = testTableMemory(limit);
      const pt = alloc({ pgsizeBitmap: SZ_4K }, memory);
      const r = pt.map(511, 5000, 2048, RW);
      // root + L3 + L2 + 5 leaf tables
      expect(r).toBe(limit >= 8 ? 0 : -12);
      if (r === 0) continue;
      const out = new WalkResult();
      for (const p of [511, 512, 1023, 1024, 2558]) expect(pt.walk(p, out)).toBe(false);
      expect(pt.tablePages).toBe(1);
      expect(frames.framesInUse).toBe(1);
    }
  });

  it('keeps other mappings when rolling back into shared tables', () => {
    const { memory, frames } = testTableMemory(4);
    const pt = alloc({ pgsizeBitmap: SZ_4K }, memory);
    expect(pt.map(0, 0, 1, RW)).toBe(0); // root + 3 tables
    expect(pt.map(256, 0, 512, RW)).toBe(-12); // pages 512.. need a 5th table
    const out = new WalkResult();
    expect(pt.walk(0, out)).toBe(true);
    expect(pt.walk(256, out)).toBe(false);
    expect(frames.framesInUse).toBe(4);
  });

  it('frees every table page', () => {
    const { memory, frames } = testTableMemory();
    const pt = alloc({}, memory);
    pt.map(0, 0, 5000, RW);
    pt.map(2 ** 30, 0, 3, RW);
    pt.free();
    expect(frames.framesInUse).toBe(0);
    expect(pt.walk(0, new WalkResult())).toBe(false);
    expect(pt.map(0, 0, 1, RW)).toBe(-22);
  });

  it('validates arguments', () => {
    const { memory } = testTableMemory();
    const pt = alloc({ oas: 39 }, memory);
    expect(pt.map(0, 0, 0, RW)).toBe(-22);
    expect(pt.map(-1, 0, 1, RW)).toBe(-22);
    expect(pt.map(0, 2 ** 27 - 1, 2, RW)).toBe(-34);
    expect(pt.unmap(0, 0)).toBe(0);
    expect(pt.unmap(5, Number.MAX_SAFE_INTEGER)).toBe(0);
  });
});

describe('vtd-ss dirty tracking (SLADS)', () => {
  it('sets A/D on hardware access and reads-and-clears D', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ dirtyTracking: true }, memory);
    pt.map(0, 0x100000, 4, RW);
    pt.map(512, 0x200000, 512, RW);
    expect(rawPte(mem, pt, 1, 0)).toBe((0x100001n << 12n) | 0x3n);
    pt.markAccess!(1, false);
    expect(rawPte(mem, pt, 1, 0)).toBe((0x100001n << 12n) | 0x100n | 0x3n);
    pt.markAccess!(1, true);
    pt.markAccess!(3, true);
    pt.markAccess!(600, true);
    expect(rawPte(mem, pt, 1, 0)).toBe((0x100001n << 12n) | 0x300n | 0x3n);
    expect(rawPte(mem, pt, 600, 1)).toBe((0x200000n << 12n) | 0x380n | 0x3n);
    const out = new WalkResult();
    pt.walk(3, out);
    expect(out.dirty).toBe(true);

    const seen: [number, number][] = [];
    pt.readAndClearDirty!(0, 2048, true, (p: number, n: number) => seen.push([p, n]));
    expect(seen).toEqual([[1, 1], [3, 1], [512, 512]]);
    seen.length = 0;
    pt.readAndClearDirty!(0, 2048, false, (p: number, n: number) => seen.push([p, n]));
    expect(seen).toEqual([[1, 1], [3, 1], [512, 512]]);
    expect(rawPte(mem, pt, 1, 0)).toBe((0x100001n << 12n) | 0x100n | 0x3n);
    seen.length = 0;
    pt.readAndClearDirty!(0, 2048, false, (p: number, n: number) => seen.push([p, n]));
    expect(seen).toEqual([]);
    pt.walk(3, out);
    expect(out.dirty).toBe(false);
  });

  it('does not touch A/D while SSADE is off or without SLADS', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ dirtyTracking: true }, memory);
    pt.map(0, 5, 1, RW);
    pt.setDirtyTracking!(false);
    pt.markAccess!(0, true);
    expect(rawPte(mem, pt, 0, 0)).toBe((5n << 12n) | 0x3n);
    pt.setDirtyTracking!(true);
    pt.markAccess!(0, true);
    expect(rawPte(mem, pt, 0, 0)).toBe((5n << 12n) | 0x303n);
    const plain = alloc({}, memory);
    plain.map(0, 5, 1, RW);
    plain.setDirtyTracking!(true);
    plain.markAccess!(0, true);
    expect(rawPte(mem, plain, 0, 0)).toBe((5n << 12n) | 0x3n);
  });

  it('does not mark a read-only page dirty on a write', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ dirtyTracking: true }, memory);
    pt.map(0, 5, 1, IOMMU_READ);
    pt.markAccess!(0, true);
    expect(rawPte(mem, pt, 0, 0)).toBe((5n << 12n) | 0x101n);
  });
});

describe('vtd-ss walkForeign', () => {
  it('walks a table whose pointers are guest-physical through tableToPhys', () => {
    const { mem, memory, frames } = testTableMemory();
    const pt = alloc({ ias: 48 }, memory);
    pt.map(0x1234567, 0x777, 3, RW);
    pt.map(0, 0x40000, 512, RW);
    // Move every table page up by OFFSET: the content still holds the old ("guest") frame numbers.
    const OFFSET = 0x100000;
    const buf = new Uint8Array(4096);
    for (let pfn = 0x100; pfn < 0x100 + frames.framesInUse; pfn++) {
      mem.read(pfn * 4096, buf);
      mem.write((pfn + OFFSET) * 4096, buf);
      mem.zeroFrame(pfn);
    }
    const cfg = pt.cfg;
    const out = new WalkResult();
    const seen: number[] = [];
    const toPhys = (g: number) => (seen.push(g), g + OFFSET);
    expect(vtdSecondStage.walkForeign!(cfg, pt.rootPfn, mem, 0x1234568, out, toPhys)).toBe(true);
    expect(out.pfn).toBe(0x778);
    expect(seen.length).toBe(4);
    expect(vtdSecondStage.walkForeign!(cfg, pt.rootPfn, mem, 100, out, toPhys)).toBe(true);
    expect([out.pfn, out.pageShift]).toEqual([0x40000 + 100, 21]);
    expect(vtdSecondStage.walkForeign!(cfg, pt.rootPfn, mem, 0x1234560, out, toPhys)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    const leafTable = seen[3];
    expect(vtdSecondStage.walkForeign!(cfg, pt.rootPfn, mem, 0x1234567, out, (g) => (g === leafTable ? -1 : g + OFFSET))).toBe(false);
    expect(out.fault).toBe(WALK_TABLE_FAULT);
    expect(out.tablePfn).toBe(leafTable);
    expect(vtdSecondStage.walkForeign!(cfg, pt.rootPfn, mem, 2 ** 36, out, toPhys)).toBe(false);
    expect(out.fault).toBe(WALK_ADDRESS_SIZE);
  });
});

describe('vtd-ss property', () => {
  type Op = { kind: 'map'; iova: number; pa: number; n: number } | { kind: 'unmap'; iova: number; n: number };
  const WINDOW = 2048;
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant('map' as const),
      iova: fc.oneof(fc.integer({ min: 0, max: WINDOW - 1 }), fc.integer({ min: 0, max: 3 }).map((i) => i * 512)),
      pa: fc.oneof(fc.integer({ min: 0, max: 2 ** 30 }), fc.integer({ min: 0, max: 2 ** 20 }).map((i) => i * 512 + 2 ** 32)),
      n: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(512), fc.integer({ min: 500, max: 1100 })),
    }),
    fc.record({
      kind: fc.constant('unmap' as const),
      iova: fc.oneof(fc.integer({ min: 0, max: WINDOW - 1 }), fc.integer({ min: 0, max: 3 }).map((i) => i * 512)),
      n: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(512), fc.integer({ min: 1, max: WINDOW })),
    }),
  );

  it('matches a reference model of leaves', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 20 }), fc.boolean(), (ops, huge) => {
        const { memory, frames } = testTableMemory();
        const pt = alloc({ pgsizeBitmap: huge ? SZ_4K | SZ_2M : SZ_4K }, memory);
        // Reference: leaves by first page: [pa, size].
        const leaves = new Map<number, [number, number]>();
        const pageOwner = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'map') {
            if (o.iova + o.n > WINDOW) continue;
            let clash = false;
            for (let i = 0; i < o.n; i++) if (pageOwner.has(o.iova + i)) clash = true;
            const r = pt.map(o.iova, o.pa, o.n, RW);
            expect(r).toBe(clash ? -17 : 0);
            if (clash) continue;
            for (let i = 0; i < o.n; ) {
              const size = huge && (o.iova + i) % 512 === 0 && (o.pa + i) % 512 === 0 && o.n - i >= 512 ? 512 : 1;
              leaves.set(o.iova + i, [o.pa + i, size]);
              for (let j = 0; j < size; j++) pageOwner.set(o.iova + i + j, o.iova + i);
              i += size;
            }
          } else {
            const end = o.iova + o.n;
            const hit = [...leaves.keys()].filter((s) => s + leaves.get(s)![1] > o.iova && s < end).sort((a, b) => a - b);
            let expected = 0;
            for (const s of hit) {
              const size = leaves.get(s)![1];
              if (s < o.iova || s + size > end) break;
              expected += size;
              leaves.delete(s);
              for (let j = 0; j < size; j++) pageOwner.delete(s + j);
            }
            expect(pt.unmap(o.iova, o.n)).toBe(expected);
          }
        }
        const out = new WalkResult();
        for (let p = 0; p < WINDOW; p++) {
          const owner = pageOwner.get(p);
          expect(pt.walk(p, out)).toBe(owner !== undefined);
          if (owner !== undefined) {
            const [pa, size] = leaves.get(owner)!;
            expect(out.pfn).toBe(pa + (p - owner));
            expect(out.pageShift).toBe(size === 512 ? 21 : 12);
          }
        }
        pt.unmap(0, WINDOW);
        expect(pt.tablePages).toBe(1);
        expect(frames.framesInUse).toBe(1);
      }),
      { numRuns: 150 },
    );
  });
});

describe('vtd-ss paging-structure cache (4-level walk)', () => {
  it('can be switched off: every walk then reads every level, with the same results', () => {
    const { memory } = testTableMemory();
    const a = alloc({ pgsizeBitmap: SZ_4K }, memory) as IoPageTable & {
      pagingStructureCache: boolean;
    };
    const out = new WalkResult();
    expect(a.pagingStructureCache).toBe(true);
    expect(a.map(0, 0x1000, 1024, RW)).toBe(0);
    expect(a.walk(600, out)).toBe(true); // fills the cache for region 1
    a.pagingStructureCache = false;
    expect(a.pagingStructureCache).toBe(false);
    // A level-2 entry rewritten behind the table's back: only a walk that reads every level sees it.
    const level1Table = Number((rawPte(memory.mem, a, 600, 2) & PTE_ADDR) >> 12n);
    memory.mem.writeU64(level1Table, 1, 0n);
    expect(a.walk(600, out)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    expect(a.walk(5, out)).toBe(true);
    expect(out.pfn).toBe(0x1005);
    a.pagingStructureCache = true;
    expect(a.walk(5, out)).toBe(true);
    expect(out.pfn).toBe(0x1005);
  });

  it('never returns a stale translation after the leaf table is unmapped, freed and reused', () => {
    const { memory } = testTableMemory();
    const a = alloc({ pgsizeBitmap: SZ_4K }, memory);
    const out = new WalkResult();
    expect(a.map(0, 0x1000, 512, RW)).toBe(0);
    expect(a.walk(5, out)).toBe(true); // fills the cache for region 0
    expect(out.pfn).toBe(0x1005);
    // A cleared leaf is seen at once (the leaf PTE is read on every walk).
    expect(a.unmap(5, 1)).toBe(1);
    expect(a.walk(5, out)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    expect(a.walk(6, out)).toBe(true);
    // The whole region goes: its leaf table is released; another table takes the frame and writes it.
    expect(a.unmap(0, 512)).toBe(511);
    const b = alloc({ pgsizeBitmap: SZ_4K }, memory);
    expect(b.map(0, 0x9000, 512, RW)).toBe(0);
    // b's tables took the released frames: a stale table pointer would read b's entries (page 0).
    for (const p of [0, 5, 6, 100]) {
      expect(a.walk(p, out)).toBe(false);
      expect(out.fault).toBe(WALK_NOT_PRESENT);
    }
    // Remapped with a 2M leaf (the level-1 entry is no longer a table pointer), then with 4K pages again.
    const h = alloc({ pgsizeBitmap: SZ_4K | SZ_2M }, memory);
    expect(h.map(0, 0x2000, 512, RW)).toBe(0);
    expect(h.walk(7, out)).toBe(true);
    expect(h.unmap(0, 512)).toBe(512);
    expect(h.map(0, 0x3000, 1, RW)).toBe(0);
    expect(h.walk(7, out)).toBe(false);
    expect(h.map(7, 0x4000, 1, RW)).toBe(0);
    expect(h.walk(7, out)).toBe(true);
    expect([out.pfn, out.pageShift]).toEqual([0x4000, 12]);
    expect(a.map(0, 0x5000, 8, RW)).toBe(0);
    expect(a.walk(5, out)).toBe(true);
    expect(out.pfn).toBe(0x5005);
    a.free();
    expect(a.walk(5, out)).toBe(false);
    expect(out.fault).toBe(WALK_ADDRESS_SIZE);
  });

  it('matches a reference model with walks between every map and unmap (property)', () => {
    // Regions 2^27 pages apart share a cache slot only through the low bits of the region number:
    // the IOVAs include aliases 1024 regions apart, and pages in every level-3 entry.
    const bases = [0, 512, 1024 * 512, 2 ** 27, 2 ** 27 + 1024 * 512, 2 ** 35];
    const op = fc.record({
      unmap: fc.boolean(),
      base: fc.constantFrom(...bases),
      off: fc.integer({ min: 0, max: 1023 }),
      n: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(512), fc.integer({ min: 500, max: 1100 })),
      pa: fc.integer({ min: 0, max: 2 ** 30 }),
    });
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 25 }),
        fc.array(fc.integer({ min: 0, max: 1100 }), {
          minLength: 1,
          maxLength: 12,
        }),
        (ops, probes) => {
          const { memory } = testTableMemory();
          const pt = alloc({ pgsizeBitmap: SZ_4K }, memory);
          const ref = new Map<number, number>();
          const out = new WalkResult();
          const check = () => {
            for (const base of bases)
              for (const d of [0, 1, 2, 511, 512, ...probes]) {
                const p = base + d;
                const want = ref.get(p);
                expect(pt.walk(p, out)).toBe(want !== undefined);
                if (want !== undefined) expect(out.pfn).toBe(want);
              }
          };
          for (const o of ops) {
            const iova = o.base + o.off;
            if (o.unmap) {
              let expected = 0;
              for (let i = 0; i < o.n; i++) if (ref.delete(iova + i)) expected++;
              expect(pt.unmap(iova, o.n)).toBe(expected);
            } else {
              let clash = false;
              for (let i = 0; i < o.n; i++) if (ref.has(iova + i)) clash = true;
              expect(pt.map(iova, o.pa, o.n, RW)).toBe(clash ? -17 : 0);
              if (!clash) for (let i = 0; i < o.n; i++) ref.set(iova + i, o.pa + i);
            }
            check();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('vtd-ss straight walks over slabs of table memory', () => {
  /**
   * Table memory whose frames come from several places: the root's slab, another slab, slabs whose
   * frames have address bits in the entry's high word (frame >= 2^20), and the sparse region above
   * 128 GiB that has no slab, chosen per allocation by `pick`.
   */
  function scatteredMemory(pick: () => number, rootRegion: number): { memory: PageTableMemory; mem: PhysicalMemory } {
    const mem = new PhysicalMemory();
    // Slab 133 has slab 5's low bits 31:25 in an entry's low word but 1 in its high word.
    const bases = [0x100, 5 * 8192, 300 * 8192, 2 ** 33, 133 * 8192];
    const next = bases.slice();
    const free: number[][] = bases.map(() => []);
    let first = true;
    const memory: PageTableMemory = {
      mem,
      allocTable() {
        const r = first ? rootRegion : pick();
        first = false;
        const pfn = free[r].pop() ?? next[r]++;
        mem.zeroFrame(pfn);
        return pfn;
      },
      releaseTable(pfn) {
        const r = bases.findLastIndex((b) => pfn >= b);
        free[r].push(pfn);
      },
    };
    return { memory, mem };
  }

  type SlabTable = IoPageTable & { pagingStructureCache: boolean; codec: RadixCodec; layout: RadixLayout };
  interface MapOp {
    iova: number;
    n: number;
    huge: boolean;
    ro: boolean;
  }

  /** Maps each op (1024 pages from a 2M boundary when huge) and returns pages at and around their edges. */
  function mapOps(pt: SlabTable, maps: readonly MapOp[]): number[] {
    const pages: number[] = [];
    for (const m of maps) {
      const iova = m.huge ? m.iova - (m.iova % 512) : m.iova;
      pt.map(iova, 0x100000 + (iova % 2 ** 20), m.huge ? 1024 : m.n, m.ro ? IOMMU_READ : RW);
      pages.push(iova, iova + 1, iova + (m.huge ? 700 : m.n - 1), iova + (m.huge ? 1024 : m.n));
    }
    return pages;
  }

  /**
   * For each page of `flip`, every entry on its path from level `top` down (to a leaf or a superpage)
   * with one bit flipped at a time (present, write, PS, address bits low and high, a high address bit):
   * every page of `pages` still walks as the engine's walk does. Each entry is restored after its bits,
   * and the whole set is walked again at the end.
   */
  function expectPathFlips(pt: SlabTable, mem: PhysicalMemory, flip: readonly number[], top: number, pages: readonly number[]): void {
    for (const page of flip) {
      let table = pt.rootPfn;
      for (let level = top; level > 0; level--) {
        const idx = Math.floor(page / 512 ** level) % 512;
        const pte = mem.readU64(table, idx);
        for (const bit of [0, 1, 7, 12, 25, 32, 52]) {
          mem.writeU64(table, idx, pte ^ (1n << BigInt(bit)));
          expectEngineWalk(pt, mem, pages);
        }
        mem.writeU64(table, idx, pte);
        if ((pte & 0x80n) !== 0n) break;
        table = Number((pte & PTE_ADDR) >> 12n);
      }
    }
    expectEngineWalk(pt, mem, pages);
  }

  /** Every page walks as the engine's walk does, with the paging-structure cache off, on and off again. */
  function expectEngineWalk(pt: SlabTable, mem: PhysicalMemory, pages: readonly number[]): void {
    const chunks = new ChunkCache(mem);
    const ours = new WalkResult();
    const ref = new WalkResult();
    for (const psc of [false, true, false]) {
      pt.pagingStructureCache = psc;
      for (const p of [...pages, ...pages]) {
        const a = pt.walk(p, ours);
        const b = radixWalk(pt.codec, pt.layout, chunks, pt.rootPfn, p, ref, null);
        expect(a).toBe(b);
        expect([ours.fault, ours.level]).toEqual([ref.fault, ref.level]);
        if (b)
          expect({ pfn: ours.pfn, perm: ours.perm, pageShift: ours.pageShift, dirty: ours.dirty }).toEqual({
            pfn: ref.pfn,
            perm: ref.perm,
            pageShift: ref.pageShift,
            dirty: ref.dirty,
          });
      }
    }
  }

  it('agree with the engine walk wherever the tables are, the paging-structure cache on and off, 4 and 5 levels', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(48, 57),
        fc.integer({ min: 0, max: 511 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 3 }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(
          fc.record({
            iova: fc.integer({ min: 0, max: 2 ** 36 - 2048 }),
            n: fc.integer({ min: 1, max: 1100 }),
            huge: fc.boolean(),
            ro: fc.boolean(),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(fc.integer({ min: 0, max: 2 ** 36 - 1 }), {
          minLength: 1,
          maxLength: 20,
        }),
        (ias, top, rootRegion, picks, maps, probes) => {
          let k = 0;
          const { memory, mem } = scatteredMemory(() => picks[k++ % picks.length], rootRegion);
          const pt = alloc({ pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias }, memory) as SlabTable;
          // 5 levels: the maps and probes also in another level-4 entry than 0 (`top`), and at the end.
          const up = ias === 57 ? top * 2 ** 36 : 0;
          const shifted = ias === 57 ? [...probes.map((p) => p + up), 2 ** 45 - 1, 2 ** 45, up + 2 ** 36 - 1] : [];
          const moved = ias === 57 ? mapOps(pt, maps.map((m) => ({ ...m, iova: m.iova + up }))) : [];
          expectEngineWalk(pt, mem, [...probes, ...shifted, ...mapOps(pt, maps), ...moved]);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('the compact walk leaves every table entry it cannot follow to the full walk', () => {
    // Every table in the root's slab (5), the case the compact walk serves; one bit of one table entry
    // on the path flipped at a time: not present, PS, a table elsewhere in the slab, in slab 5 + 128
    // (same low-word bits, high word 1), in slab 5 + 1 or above 2^32 frames.
    for (const slee of [false, true]) {
      const { memory, mem } = scatteredMemory(() => 1, 1);
      const pt = alloc({ pgsizeBitmap: SZ_4K | SZ_2M, options: { slee } }, memory) as SlabTable;
      const pages = mapOps(pt, [
        { iova: 0x3fff_0000, n: 600, huge: false, ro: false },
        { iova: 7, n: 3, huge: false, ro: true },
      ]);
      expectPathFlips(pt, mem, [0x3fff_0001, 8], 3, pages);
    }
  });

  it('the 5-level compact walk reports a missing leaf itself and leaves every other entry it cannot follow to the full walk', () => {
    // Every table in the root's slab (5). Pages below 2^30 (the compact walk's), a mapped run, the pages
    // next to it that fault (a missing leaf: reported at level 0 without a second walk; the first page
    // of the next 2 MiB region: a missing level-1 entry), a page at the last index of each level, one
    // at 2^30 - 1 and above. Then one bit of one entry on the path flipped at a time, at every level:
    // not present, PS, a table elsewhere in the slab, in slab 5 + 128 (same low-word bits, high word
    // 1), in slab 5 + 1 or above 2^32 frames.
    const { memory, mem } = scatteredMemory(() => 1, 1);
    const pt = alloc({ pgsizeBitmap: SZ_4K | SZ_2M, ias: 57 }, memory) as SlabTable;
    const mapped = mapOps(pt, [
      { iova: 0x3fff_0000, n: 600, huge: false, ro: false },
      { iova: 7, n: 3, huge: false, ro: true },
      { iova: 0x3ffc_0000, n: 512, huge: true, ro: false },
    ]);
    const probes = [6, 10, 0x3fff_0000 - 1, 0x3fff_0000 + 600, 0x3fff_fe00, 2 ** 30 - 1, 2 ** 30, 0x0800_0000];
    const pages = [...mapped, ...probes];
    expectEngineWalk(pt, mem, pages);
    const out = new WalkResult();
    expect([pt.walk(10, out), out.fault, out.level]).toEqual([false, 1, 0]);
    expect([pt.walk(0x3fff_0000 + 600, out), out.fault, out.level]).toEqual([false, 1, 0]);
    expect([pt.walk(0x0800_0000, out), out.fault, out.level]).toEqual([false, 1, 3]);
    expectPathFlips(pt, mem, [0x3fff_0001, 8, 0x3ffc_0005], 4, pages);
  });

  it.each([
    ['the compact walk below 2^30 pages', 48],
    ['the 5-level walk', 57],
  ])('%s agrees with the engine walk, with table entries rewritten behind the table', (_name, ias) => {
    const top = ias === 57 ? 4 : 3;
    // Each rewrite flips one bit of one entry on the path of a mapped page: R/W/X, PS, D, the address
    // bits inside and above the slab (the low word's bits 31:25, the high word), ignored high bits.
    const bits = [0, 1, 2, 7, 9, 11, 12, 20, 24, 25, 28, 31, 32, 33, 45, 51, 52, 62, 63];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(
          fc.record({
            iova: fc.oneof(fc.integer({ min: 0, max: 2 ** 30 + 4096 }), fc.integer({ min: 2 ** 30 - 2048, max: 2 ** 30 + 2048 })),
            n: fc.integer({ min: 1, max: 1100 }),
            huge: fc.boolean(),
            ro: fc.boolean(),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(fc.record({ page: fc.nat(), level: fc.integer({ min: 0, max: top }), bit: fc.constantFrom(...bits) }), { maxLength: 4 }),
        (rootRegion, picks, together, slee, maps, rewrites) => {
          let k = 0;
          // `together`: every table in the root's slab, the case the compact walk serves.
          const { memory, mem } = scatteredMemory(() => (together ? rootRegion : picks[k++ % picks.length]), rootRegion);
          const pt = alloc({ pgsizeBitmap: SZ_4K | SZ_2M, ias, options: { slee } }, memory) as SlabTable;
          // 5 levels: the maps also in the last level-4 entry.
          const pages = [...mapOps(pt, maps), ...(ias === 57 ? mapOps(pt, maps.map((m) => ({ ...m, iova: m.iova + 511 * 2 ** 36 }))) : [])];
          expectEngineWalk(pt, mem, pages);
          for (const r of rewrites) {
            // The entry at `level` on the path of one of the pages, if the walk gets there.
            const page = pages[r.page % pages.length];
            let table = pt.rootPfn;
            for (let level = top; level >= 0; level--) {
              if (!(page >= 0 && page < 2 ** (ias - 12))) break;
              const idx = Math.floor(page / 512 ** level) % 512;
              const pte = mem.readU64(table, idx);
              if (level === r.level) {
                mem.writeU64(table, idx, pte ^ (1n << BigInt(r.bit)));
                break;
              }
              if ((pte & 3n) === 0n || (pte & 0x80n) !== 0n) break;
              table = Number((pte & PTE_ADDR) >> 12n);
              if (table >= 2 ** 34) break;
            }
            expectEngineWalk(pt, mem, pages);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
