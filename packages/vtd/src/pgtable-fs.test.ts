import { describe, it, expect } from 'vitest';
import { testTableMemory } from '@ioasid/core/testing';
import fc from 'fast-check';
import { PTE_ADDR, SZ_1G, SZ_2M, SZ_4K, rawPte } from './__tests__/fixtures.js';
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
  WALK_RESERVED_BITS,
  WALK_TABLE_FAULT,
  WalkResult,
  type IoPageTable,
  type PageTableConfig,
  type PageTableMemory,
} from '@ioasid/core/driver';
import { grantBoth, PERM_PRIV_READ, PERM_PRIV_WRITE } from '@ioasid/core/driver';
import { vtdFirstStage } from './pgtable-fs.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const ADDR = PTE_ADDR;
const XD = 1n << 63n;


function alloc(cfg: Partial<PageTableConfig>, memory: PageTableMemory): IoPageTable {
  const pt = vtdFirstStage.alloc({ pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 52, ...cfg }, memory);
  if (typeof pt === 'number') throw new Error(`alloc failed: ${pt}`);
  return pt;
}

describe('vtd-fs alloc', () => {
  it('uses 4 or 5 levels and needs FL5LP for 5', () => {
    const { memory } = testTableMemory();
    expect(alloc({}, memory).levels).toBe(4);
    expect(alloc({ ias: 57 }, memory).levels).toBe(5);
    expect(alloc({ ias: 39 }, memory).levels).toBe(4);
    expect(vtdFirstStage.alloc({ pgsizeBitmap: SZ_4K, ias: 57, oas: 46, options: { fl5lp: false } }, memory)).toBe(-22);
    expect(vtdFirstStage.alloc({ pgsizeBitmap: SZ_4K, ias: 48, oas: 46, levels: 5, options: { fl5lp: false } }, memory)).toBe(-22);
    expect(vtdFirstStage.alloc({ pgsizeBitmap: SZ_4K, ias: 48, oas: 46, levels: 3 }, memory)).toBe(-22);
    expect(vtdFirstStage.alloc({ pgsizeBitmap: SZ_4K, ias: 57, oas: 46, levels: 4 }, memory)).toBe(-22);
  });

  it('drops 1G without FL1GP', () => {
    const { memory } = testTableMemory();
    const cfg: PageTableConfig = { pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 46, options: { fl1gp: false } };
    const pt = vtdFirstStage.alloc(cfg, memory) as IoPageTable;
    expect(cfg.pgsizeBitmap).toBe(SZ_4K | SZ_2M);
    expect(pt.map(0, 0, 262144, RW)).toBe(0);
    const out = new WalkResult();
    pt.walk(5, out);
    expect(out.pageShift).toBe(21);
  });
});

describe('vtd-fs PTE bits', () => {
  it('writes tables as P|RW|US|A and leaves as Linux does', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({}, memory);
    pt.map(0x10, 0x123456789, 1, RW);
    pt.map(0x11, 0x2000, 1, IOMMU_READ);
    pt.map(0x12, 0x2001, 1, RW | IOMMU_NOEXEC | IOMMU_PRIV);
    pt.map(0x13, 0x2002, 1, RW | IOMMU_MMIO);
    for (let level = 3; level >= 1; level--) expect(rawPte(mem, pt, 0x10, level) & 0xfffn).toBe(0x27n);
    expect(rawPte(mem, pt, 0x10, 0)).toBe(0x123456789000n | 0x67n);
    expect(rawPte(mem, pt, 0x11, 0)).toBe(0x2000000n | 0x25n);
    expect(rawPte(mem, pt, 0x12, 0)).toBe(XD | 0x2001000n | 0x63n);
    expect(rawPte(mem, pt, 0x13, 0)).toBe(0x2002000n | 0x7fn);
    const out = new WalkResult();
    pt.walk(0x10, out);
    expect([out.pfn, out.perm, out.dirty]).toEqual([0x123456789, grantBoth(PERM_READ | PERM_WRITE | PERM_EXEC), true]);
    pt.walk(0x11, out);
    expect(out.perm).toBe(grantBoth(PERM_READ | PERM_EXEC));
    pt.walk(0x12, out);
    // Supervisor-only (U/S clear): nothing for unprivileged requests.
    expect(out.perm).toBe(PERM_PRIV_READ | PERM_PRIV_WRITE);
  });

  it('sets G with options.global and PS on superpages', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ options: { global: true } }, memory);
    pt.map(0x40000, 0x80000, 262144 + 512, RW);
    expect(rawPte(mem, pt, 0x40000, 2)).toBe((0x80000n << 12n) | 0x1e7n);
    expect(rawPte(mem, pt, 0x80000, 1)).toBe((0xc0000n << 12n) | 0x1e7n);
  });

  it('applies RW, U/S and XD of every level on a walk', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({}, memory);
    pt.map(0, 0x5000, 1, RW);
    const l3 = rawPte(mem, pt, 0, 3);
    mem.writeU64(pt.rootPfn, 0, (l3 & ~0x6n) | XD); // PML4E: read-only, supervisor, no-exec
    const out = new WalkResult();
    expect(pt.walk(0, out)).toBe(true);
    expect(out.perm).toBe(PERM_PRIV_READ);
  });

  it('reports reserved bits in a large leaf', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({}, memory);
    pt.map(0, 0, 512, RW);
    const pde = rawPte(mem, pt, 0, 1);
    const table = Number((rawPte(mem, pt, 0, 2) & ADDR) >> 12n);
    mem.writeU64(table, 0, pde | (1n << 13n));
    const out = new WalkResult();
    expect(pt.walk(3, out)).toBe(false);
    expect(out.fault).toBe(WALK_RESERVED_BITS);
    mem.writeU64(table, 0, pde | (1n << 12n)); // PAT is allowed
    expect(pt.walk(3, out)).toBe(true);
    expect(out.pfn).toBe(3);
  });
});

describe('vtd-fs map/unmap/walk', () => {
  it('round-trips near the top of a 57-bit space', () => {
    const { memory, frames } = testTableMemory();
    const pt = alloc({ ias: 57 }, memory);
    const top = 2 ** 45;
    expect(pt.map(top - 513, 2 ** 38, 513, RW)).toBe(0);
    const out = new WalkResult();
    expect(pt.walk(top - 1, out)).toBe(true);
    expect(out.pfn).toBe(2 ** 38 + 512);
    expect(pt.walk(top, out)).toBe(false);
    expect(out.fault).toBe(WALK_ADDRESS_SIZE);
    expect(pt.unmap(top - 513, 513)).toBe(513);
    expect(frames.framesInUse).toBe(1);
  });

  it('rolls back on -ENOMEM and refuses overlaps with -EEXIST', () => {
    const { memory, frames } = testTableMemory(3);
    const pt = alloc({}, memory);
    expect(pt.map(0, 0, 10, RW)).toBe(-12);
    expect(frames.framesInUse).toBe(1);
    const { memory: m2 } = testTableMemory();
    const pt2 = alloc({}, m2);
    expect(pt2.map(5, 0, 10, RW)).toBe(0);
    expect(pt2.map(0, 0, 6, RW)).toBe(-17);
    const out = new WalkResult();
    expect(pt2.walk(0, out)).toBe(false);
  });
});

describe('vtd-fs A/D', () => {
  it('starts clean with dirty tracking and lets the hardware set A/D', () => {
    const { mem, memory } = testTableMemory();
    const pt = alloc({ dirtyTracking: true }, memory);
    pt.map(0, 0x5000, 2, RW);
    expect(rawPte(mem, pt, 0, 0)).toBe(0x5000000n | 0x27n);
    pt.markAccess!(1, true);
    expect(rawPte(mem, pt, 1, 0)).toBe(0x5001000n | 0x67n);
    const seen: number[] = [];
    pt.readAndClearDirty!(0, 2, true, (p: number) => seen.push(p));
    pt.readAndClearDirty!(0, 2, false, (p: number) => seen.push(p));
    pt.readAndClearDirty!(0, 2, false, (p: number) => seen.push(p));
    expect(seen).toEqual([1, 1]);
    expect(rawPte(mem, pt, 1, 0)).toBe(0x5001000n | 0x27n);
  });
});

describe('vtd-fs walkForeign', () => {
  it('walks a guest table through an offset stage 2', () => {
    const { mem, memory, frames } = testTableMemory();
    const pt = alloc({}, memory);
    pt.map(0x777, 0x4242, 1, IOMMU_READ);
    const OFFSET = 0x300000;
    const buf = new Uint8Array(4096);
    for (let pfn = 0x100; pfn < 0x100 + frames.framesInUse; pfn++) {
      mem.read(pfn * 4096, buf);
      mem.write((pfn + OFFSET) * 4096, buf);
      mem.zeroFrame(pfn);
    }
    const out = new WalkResult();
    expect(vtdFirstStage.walkForeign!(pt.cfg, pt.rootPfn, mem, 0x777, out, (g) => g + OFFSET)).toBe(true);
    expect([out.pfn, out.perm]).toEqual([0x4242, grantBoth(PERM_READ | PERM_EXEC)]);
    expect(vtdFirstStage.walkForeign!(pt.cfg, pt.rootPfn, mem, 0x777, out, (g) => (g === pt.rootPfn ? -1 : g))).toBe(false);
    expect([out.fault, out.tablePfn]).toEqual([WALK_TABLE_FAULT, pt.rootPfn]);
  });
});

describe('vtd-fs property', () => {
  it('matches a reference map of 4K pages', () => {
    const op = fc.record({ map: fc.boolean(), iova: fc.integer({ min: 0, max: 1500 }), n: fc.integer({ min: 1, max: 600 }), pa: fc.integer({ min: 0, max: 2 ** 40 - 1000 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 16 }), (ops) => {
        const { memory, frames } = testTableMemory();
        const pt = alloc({ pgsizeBitmap: SZ_4K }, memory);
        const ref = new Map<number, number>();
        for (const o of ops) {
          if (o.map) {
            let clash = false;
            for (let i = 0; i < o.n; i++) clash ||= ref.has(o.iova + i);
            expect(pt.map(o.iova, o.pa, o.n, RW)).toBe(clash ? -17 : 0);
            if (!clash) for (let i = 0; i < o.n; i++) ref.set(o.iova + i, o.pa + i);
          } else {
            let expected = 0;
            for (let i = 0; i < o.n; i++) if (ref.delete(o.iova + i)) expected++;
            expect(pt.unmap(o.iova, o.n)).toBe(expected);
          }
        }
        const out = new WalkResult();
        for (let p = 0; p < 2200; p++) {
          const pa = ref.get(p);
          expect(pt.walk(p, out)).toBe(pa !== undefined);
          if (pa !== undefined) expect(out.pfn).toBe(pa);
        }
        pt.unmap(0, 4096);
        expect(frames.framesInUse).toBe(1);
      }),
      { numRuns: 100 },
    );
  });
});
