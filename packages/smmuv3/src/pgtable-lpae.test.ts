import { describe, it, expect } from 'vitest';
import { testTableMemory } from '@ioasid/core/testing';
import fc from 'fast-check';
import { PhysicalMemory } from '@ioasid/core';
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
  WALK_TABLE_FAULT,
  WalkResult,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
} from '@ioasid/core/driver';
import { grantBoth, PERM_PRIV_READ, PERM_PRIV_WRITE, PERM_PRIV_EXEC } from '@ioasid/core/driver';
import { LpaePageTable, armLpaeS1, armLpaeS2 } from './pgtable-lpae.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const ALL_SIZES = (1n << 12n) | (1n << 21n) | (1n << 30n) | (1n << 14n) | (1n << 25n) | (1n << 16n) | (1n << 29n) | (1n << 42n);
const ADDR48 = 0x0000fffffffff000n;

/** Table memory that fails every allocation after `limit` of them (shared helper of the kit). */
const testMemory = testTableMemory;

function alloc(format: PageTableFormat, cfg: Partial<PageTableConfig>, memory: PageTableMemory): LpaePageTable {
  const pt = format.alloc({ pgsizeBitmap: ALL_SIZES, ias: 48, oas: 48, ...cfg }, memory);
  if (typeof pt === 'number') throw new Error(`alloc failed: ${pt}`);
  return pt as LpaePageTable;
}

/** Raw descriptor at internal `level` (0 = page level) for `iovaPfn`, following table descriptors. */
function rawPte(mem: PhysicalMemory, pt: LpaePageTable, iovaPfn: number, level: number): bigint {
  const geo = pt.geometry;
  let table = pt.rootPfn;
  for (let l = geo.top; ; l--) {
    const entries = l === geo.top ? geo.rootEntries : geo.entries;
    const idx = Math.floor(iovaPfn / geo.span[l]) % entries;
    const pte = mem.readU64(table + Math.floor(idx / 512), idx % 512);
    if (l === level) return pte;
    table = Number((pte & ADDR48) >> 12n);
  }
}

describe('arm-lpae geometry', () => {
  it('derives levels and start level from granule and ias', () => {
    const { memory } = testMemory();
    const cases: [number, number, 1 | 2, number, number, number][] = [
      // granule, ias, stage, levels, root entries, concatenated tables
      [4096, 48, 1, 4, 512, 1],
      [4096, 39, 1, 3, 512, 1],
      [4096, 36, 1, 3, 64, 1],
      [4096, 40, 1, 4, 2, 1],
      [4096, 40, 2, 3, 1024, 2],
      [4096, 42, 2, 3, 4096, 8],
      [4096, 44, 2, 4, 32, 1],
      [16384, 48, 1, 4, 2, 1],
      [16384, 48, 2, 3, 4096, 2],
      [16384, 47, 2, 3, 2048, 1],
      [65536, 48, 1, 3, 64, 1],
      [65536, 42, 2, 2, 8192, 1],
      [65536, 52, 1, 3, 1024, 1],
    ];
    for (const [granule, ias, stage, levels, rootEntries, concat] of cases) {
      const pt = alloc(stage === 1 ? armLpaeS1 : armLpaeS2, { granule, ias, oas: 48 }, memory);
      expect([granule, ias, stage, pt.levels, pt.geometry.rootEntries, pt.geometry.concatenated]).toEqual([granule, ias, stage, levels, rootEntries, concat]);
      expect(pt.geometry.startLevel).toBe(4 - levels);
      expect(pt.tablePages).toBe(Math.max(1, (rootEntries * 8) / 4096));
      if (pt.tablePages > 1) expect(pt.rootPfn % pt.tablePages).toBe(0);
    }
  });

  it('lets stage 2 concatenate when asked for one level fewer, up to 16 tables', () => {
    const { memory } = testMemory();
    expect(alloc(armLpaeS2, { ias: 43, levels: 3 }, memory).geometry.concatenated).toBe(16);
    expect(armLpaeS2.alloc({ pgsizeBitmap: ALL_SIZES, ias: 44, oas: 48, levels: 3 }, memory)).toBe(-22);
    expect(armLpaeS1.alloc({ pgsizeBitmap: ALL_SIZES, ias: 40, oas: 48, levels: 3 }, memory)).toBe(-22);
    expect(alloc(armLpaeS2, { ias: 40, levels: 4 }, memory).geometry.concatenated).toBe(1);
  });

  it('restricts page sizes per granule and refuses what it cannot do', () => {
    const { memory } = testMemory();
    const sizes = (granule: number, oas = 48) => {
      const cfg: PageTableConfig = { pgsizeBitmap: ALL_SIZES, ias: 48, oas, granule };
      armLpaeS1.alloc(cfg, memory);
      return cfg.pgsizeBitmap;
    };
    expect(sizes(4096)).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(sizes(16384)).toBe((1n << 14n) | (1n << 25n));
    expect(sizes(65536)).toBe((1n << 16n) | (1n << 29n));
    expect(sizes(65536, 52)).toBe((1n << 16n) | (1n << 29n) | (1n << 42n));
    expect(armLpaeS1.alloc({ pgsizeBitmap: ALL_SIZES, ias: 48, oas: 48, granule: 8192 }, memory)).toBe(-22);
    expect(armLpaeS1.alloc({ pgsizeBitmap: ALL_SIZES, ias: 52, oas: 48, granule: 4096 }, memory)).toBe(-22);
    expect(armLpaeS1.alloc({ pgsizeBitmap: 1n << 21n, ias: 48, oas: 48, granule: 4096 }, memory)).toBe(-22);
    expect(armLpaeS1.alloc({ pgsizeBitmap: ALL_SIZES, ias: 48, oas: 48 }, testMemory(0).memory)).toBe(-12);
  });
});

describe('arm-lpae descriptor bits', () => {
  it('stage 1 leaves: AttrIndx, AP, SH, AF, nG, XN', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS1, {}, memory);
    pt.map(1, 0x12345, 1, RW | IOMMU_CACHE);
    pt.map(2, 0x12346, 1, IOMMU_READ);
    pt.map(3, 0x12347, 1, RW | IOMMU_MMIO | IOMMU_NOEXEC);
    pt.map(4, 0x12348, 1, RW | IOMMU_PRIV);
    for (let level = 3; level >= 1; level--) expect(rawPte(mem, pt, 1, level) & 0xfffn).toBe(0x3n);
    expect(rawPte(mem, pt, 1, 0)).toBe((0x12345n << 12n) | 0xf47n);
    expect(rawPte(mem, pt, 2, 0)).toBe((0x12346n << 12n) | 0xec3n);
    expect(rawPte(mem, pt, 3, 0)).toBe((3n << 53n) | (0x12347n << 12n) | 0xe4bn);
    expect(rawPte(mem, pt, 4, 0)).toBe((0x12348n << 12n) | 0xe03n);
    const out = new WalkResult();
    pt.walk(1, out);
    expect([out.pfn, out.perm, out.dirty]).toEqual([0x12345, PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV_READ | PERM_PRIV_WRITE, false]);
    pt.walk(2, out);
    expect(out.perm).toBe(grantBoth(PERM_READ | PERM_EXEC));
    pt.walk(3, out);
    expect(out.perm).toBe(grantBoth(PERM_READ | PERM_WRITE));
    // AP[1] clear: privileged only.
    pt.walk(4, out);
    expect(out.perm).toBe(PERM_PRIV_READ | PERM_PRIV_WRITE | PERM_PRIV_EXEC);
  });

  it('stage 2 leaves: S2AP, MemAttr, SH, AF, XN', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS2, { ias: 44 }, memory);
    pt.map(1, 0x12345, 1, RW | IOMMU_CACHE);
    pt.map(2, 0x12346, 1, IOMMU_READ);
    pt.map(3, 0x12347, 1, IOMMU_WRITE | IOMMU_MMIO | IOMMU_NOEXEC);
    expect(rawPte(mem, pt, 1, 0)).toBe((0x12345n << 12n) | 0x7ffn);
    expect(rawPte(mem, pt, 2, 0)).toBe((0x12346n << 12n) | 0x657n);
    expect(rawPte(mem, pt, 3, 0)).toBe((3n << 53n) | (0x12347n << 12n) | 0x687n);
    const fwb = alloc(armLpaeS2, { ias: 44, options: { s2fwb: true } }, memory);
    fwb.map(1, 0x12345, 1, RW | IOMMU_CACHE);
    expect(rawPte(mem, fwb, 1, 0)).toBe((0x12345n << 12n) | 0x7dbn);
    const out = new WalkResult();
    pt.walk(2, out);
    expect(out.perm).toBe(grantBoth(PERM_READ | PERM_EXEC));
    pt.walk(3, out);
    expect(out.perm).toBe(grantBoth(PERM_WRITE));
  });

  it('maps nothing, successfully, for a prot without read or write', () => {
    const { memory } = testMemory();
    const pt = alloc(armLpaeS1, {}, memory);
    expect(pt.map(0, 0, 1, IOMMU_CACHE)).toBe(0);
    expect(pt.walk(0, new WalkResult())).toBe(false);
  });
});

describe('arm-lpae granules and blocks', () => {
  it('uses 1G/2M blocks with 4K, 32M with 16K, 512M with 64K', () => {
    const { mem, memory } = testMemory();
    const out = new WalkResult();
    const pt4 = alloc(armLpaeS1, { granule: 4096 }, memory);
    pt4.map(0x40000, 0x80000, 262144 + 512, RW);
    // Block: type 0b01, AttrIndx NC, AP_UNPRIV, SH_OS, AF, nG.
    expect(rawPte(mem, pt4, 0x40000, 2)).toBe((0x80000n << 12n) | 0xe41n);
    expect(rawPte(mem, pt4, 0x80000, 1)).toBe((0xc0000n << 12n) | 0xe41n);
    pt4.walk(0x40005, out);
    expect([out.pfn, out.pageShift, out.level]).toEqual([0x80005, 30, 2]);

    const pt16 = alloc(armLpaeS2, { granule: 16384 }, memory);
    expect(pt16.map(8192, 16384, 8192 + 4, RW)).toBe(0);
    pt16.walk(8192 + 77, out);
    expect([out.pfn, out.pageShift]).toEqual([16384 + 77, 25]);
    pt16.walk(16384 + 3, out);
    expect([out.pfn, out.pageShift, out.level]).toEqual([16384 + 8192 + 3, 14, 0]);
    // Page: S2AP RW, MemAttr NC, SH_OS, AF.
    expect(rawPte(mem, pt16, 16384, 0)).toBe((BigInt(16384 + 8192) << 12n) | 0x6d7n);

    const pt64 = alloc(armLpaeS1, { granule: 65536 }, memory);
    expect(pt64.map(131072, 0, 131072 + 16, RW)).toBe(0);
    pt64.walk(131072 + 9, out);
    expect([out.pfn, out.pageShift, out.level]).toEqual([9, 29, 1]);
    pt64.walk(262144 + 15, out);
    expect([out.pfn, out.pageShift]).toEqual([131072 + 15, 16]);
    expect(pt64.unmap(131072, 131072 + 16)).toBe(131072 + 16);
    expect(pt64.tablePages).toBe(1);
  });

  it('rejects pfns and lengths that are not granule aligned', () => {
    const { memory } = testMemory();
    const pt16 = alloc(armLpaeS1, { granule: 16384 }, memory);
    expect(pt16.map(1, 0, 4, RW)).toBe(-22);
    expect(pt16.map(0, 2, 4, RW)).toBe(-22);
    expect(pt16.map(0, 0, 6, RW)).toBe(-22);
    const pt64 = alloc(armLpaeS2, { granule: 65536 }, memory);
    expect(pt64.map(8, 0, 16, RW)).toBe(-22);
    expect(pt64.map(16, 32, 16, RW)).toBe(0);
    expect(pt64.unmap(24, 16)).toBe(0);
    expect(pt64.unmap(16, 16)).toBe(16);
  });

  it('packs PA[51:48] into bits [15:12] with a 64K granule and 52-bit output, near the top of 52-bit input', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS1, { granule: 65536, ias: 52, oas: 52 }, memory);
    const pa = 0xabcde0000 + 2 ** 39; // PA 0x8abcde0000000: above 2^48
    const top = 2 ** 40;
    expect(pt.map(top - 32, pa, 32, RW)).toBe(0);
    const raw = rawPte(mem, pt, top - 32, 0);
    expect(raw & 0xf000n).toBe(0x8000n); // PA[51:48] = 0x8
    expect(raw & 0x0000ffffffff0000n).toBe(BigInt(pa % 2 ** 36) << 12n);
    const out = new WalkResult();
    expect(pt.walk(top - 1, out)).toBe(true);
    expect(out.pfn).toBe(pa + 31);
    expect(pt.walk(top, out)).toBe(false);
    expect(out.fault).toBe(WALK_ADDRESS_SIZE);
    // 4T block at level 1 with LPA.
    expect(pt.map(2 ** 30, 2 ** 30, 2 ** 30, RW)).toBe(0);
    pt.walk(2 ** 30 + 5, out);
    expect([out.pfn, out.pageShift]).toEqual([2 ** 30 + 5, 42]);
  });

  it('stops at a partly covered block and refuses overlaps', () => {
    const { memory } = testMemory();
    const pt = alloc(armLpaeS2, {}, memory);
    pt.map(512, 512, 512, RW);
    expect(pt.unmap(512, 100)).toBe(0);
    expect(pt.map(700, 0, 1, RW)).toBe(-17);
    expect(pt.map(0, 0, 1024, RW)).toBe(-17);
    expect(pt.unmap(0, 2048)).toBe(512);
  });
});

describe('arm-lpae rollback', () => {
  it('rolls back on -ENOMEM with multi-frame 16K tables', () => {
    for (let limit = 4; limit <= 24; limit += 4) {
      const { memory, frames } = testMemory(limit);
      const pt = alloc(armLpaeS1, { granule: 16384 }, memory);
      const before = frames.framesInUse;
      // Two leaf tables are needed: 4 (root) + 4 (L1) + 4 (L2) + 8 frames = 20 allocations at least.
      const r = pt.map(2044, 0, 8, RW);
      if (r === 0) continue;
      expect(r).toBe(-12);
      expect(frames.framesInUse).toBe(before);
      expect(pt.tablePages).toBe(before);
      expect(pt.walk(2044, new WalkResult())).toBe(false);
    }
  });
});

describe('arm-lpae dirty tracking', () => {
  it('stage 1: DBM, writable-dirty at map, AP[2] set on clear, cleared again on a write', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS1, { dirtyTracking: true }, memory);
    pt.map(0, 0x100, 2, RW);
    pt.map(2, 0x102, 1, IOMMU_READ);
    const DBM = 1n << 51n;
    expect(rawPte(mem, pt, 0, 0)).toBe(DBM | (0x100n << 12n) | 0xe43n);
    expect(rawPte(mem, pt, 2, 0)).toBe((0x102n << 12n) | 0xec3n);
    const seen: number[] = [];
    pt.readAndClearDirty!(0, 3, true, (p: number) => seen.push(p));
    expect(seen).toEqual([0, 1]);
    pt.readAndClearDirty!(0, 3, false, (p: number) => seen.push(p));
    expect(rawPte(mem, pt, 0, 0)).toBe(DBM | (0x100n << 12n) | 0xec3n);
    const out = new WalkResult();
    pt.walk(0, out);
    expect([out.dirty, out.perm & PERM_WRITE]).toEqual([false, PERM_WRITE]);
    seen.length = 0;
    pt.readAndClearDirty!(0, 3, false, (p: number) => seen.push(p));
    expect(seen).toEqual([]);
    pt.markAccess!(1, true);
    pt.markAccess!(2, true);
    expect(rawPte(mem, pt, 2, 0)).toBe((0x102n << 12n) | 0xec3n);
    pt.readAndClearDirty!(0, 3, false, (p: number) => seen.push(p));
    expect(seen).toEqual([1]);
  });

  it('stage 2: DBM with S2AP write as the dirty state', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS2, { dirtyTracking: true, ias: 40 }, memory);
    pt.map(512, 1024, 512, RW | IOMMU_CACHE);
    const DBM = 1n << 51n;
    expect(rawPte(mem, pt, 512, 1)).toBe(DBM | (1024n << 12n) | 0x7fdn);
    const seen: [number, number][] = [];
    pt.readAndClearDirty!(0, 2048, false, (p: number, n: number) => seen.push([p, n]));
    expect(seen).toEqual([[512, 512]]);
    expect(rawPte(mem, pt, 512, 1)).toBe(DBM | (1024n << 12n) | 0x77dn);
    pt.markAccess!(700, true);
    const out = new WalkResult();
    pt.walk(700, out);
    expect(out.dirty).toBe(true);
  });

  it('has no dirty state without dirty tracking', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS1, {}, memory);
    pt.map(0, 0x100, 1, RW);
    pt.markAccess!(0, true);
    expect(rawPte(mem, pt, 0, 0)).toBe((0x100n << 12n) | 0xe43n);
    const seen: number[] = [];
    pt.readAndClearDirty!(0, 1, false, (p: number) => seen.push(p));
    expect(seen).toEqual([]);
  });
});

describe('arm-lpae walkForeign', () => {
  for (const granule of [4096, 16384]) {
    it(`walks a guest stage 1 (${granule / 1024}K) whose frames stage 2 scatters`, () => {
      const { mem, memory, frames } = testMemory();
      const pt = alloc(armLpaeS1, { granule, ias: 48 }, memory);
      pt.map(2 ** 20, 2 ** 30, 8, IOMMU_READ);
      // Scatter: guest frame g lives at host frame OFFSET + 2 * g (never contiguous).
      const OFFSET = 0x200000;
      const buf = new Uint8Array(4096);
      const used = 0x100 + frames.framesInUse + 64;
      for (let pfn = 0x100; pfn < used; pfn++) {
        mem.read(pfn * 4096, buf);
        mem.write((OFFSET + 2 * pfn) * 4096, buf);
        mem.zeroFrame(pfn);
      }
      const out = new WalkResult();
      const toPhys = (g: number) => OFFSET + 2 * g;
      expect(armLpaeS1.walkForeign!(pt.cfg, pt.rootPfn, mem, 2 ** 20 + 4, out, toPhys)).toBe(true);
      expect([out.pfn, out.perm]).toEqual([2 ** 30 + 4, grantBoth(PERM_READ | PERM_EXEC)]);
      expect(armLpaeS1.walkForeign!(pt.cfg, pt.rootPfn, mem, 2 ** 21, out, toPhys)).toBe(false);
      expect(out.fault).toBe(WALK_NOT_PRESENT);
      expect(armLpaeS1.walkForeign!(pt.cfg, pt.rootPfn, mem, 2 ** 20, out, () => -1)).toBe(false);
      expect(out.fault).toBe(WALK_TABLE_FAULT);
    });
  }

  it('applies APTable and XNTable of table descriptors', () => {
    const { mem, memory } = testMemory();
    const pt = alloc(armLpaeS1, {}, memory);
    pt.map(0, 0x100, 1, RW);
    const top = rawPte(mem, pt, 0, 3);
    mem.writeU64(pt.rootPfn, 0, top | (1n << 62n) | (1n << 60n));
    const out = new WalkResult();
    pt.walk(0, out);
    // APTable read-only and UXNTable: no writes at all, no unprivileged execute.
    expect(out.perm).toBe(PERM_READ | PERM_PRIV_READ | PERM_PRIV_EXEC);
  });
});

describe('arm-lpae property', () => {
  const configs: [PageTableFormat, number][] = [
    [armLpaeS1, 4096],
    [armLpaeS2, 4096],
    [armLpaeS1, 16384],
    [armLpaeS2, 65536],
  ];
  for (const [format, granule] of configs) {
    it(`${format.id} ${granule / 1024}K matches a reference map`, () => {
      const gp = granule / 4096;
      const op = fc.record({
        map: fc.boolean(),
        iova: fc.integer({ min: 0, max: 600 }),
        n: fc.integer({ min: 1, max: 300 }),
        pa: fc.integer({ min: 0, max: 2 ** 30 }),
      });
      fc.assert(
        fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
          const { memory, frames } = testMemory();
          const pt = alloc(format, { granule, pgsizeBitmap: BigInt(granule) }, memory);
          const ref = new Map<number, number>();
          for (const o of ops) {
            const iova = o.iova * gp;
            const n = o.n * gp;
            const pa = o.pa * gp;
            if (o.map) {
              let clash = false;
              for (let i = 0; i < n; i++) clash ||= ref.has(iova + i);
              expect(pt.map(iova, pa, n, RW)).toBe(clash ? -17 : 0);
              if (!clash) for (let i = 0; i < n; i++) ref.set(iova + i, pa + i);
            } else {
              let expected = 0;
              for (let i = 0; i < n; i++) if (ref.delete(iova + i)) expected++;
              expect(pt.unmap(iova, n)).toBe(expected);
            }
          }
          const out = new WalkResult();
          for (let p = 0; p < 901 * gp; p += gp === 1 ? 1 : gp - 1) {
            const pa = ref.get(p);
            expect(pt.walk(p, out)).toBe(pa !== undefined);
            if (pa !== undefined) expect(out.pfn).toBe(pa);
          }
          pt.unmap(0, 1024 * gp);
          expect(frames.framesInUse).toBe(pt.tablePages);
          expect(pt.tablePages).toBe(pt.geometry.rootFrames);
        }),
        { numRuns: 60 },
      );
    });
  }
});
