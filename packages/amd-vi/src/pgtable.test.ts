import { describe, expect, it } from 'vitest';
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, PERM_EXEC, PERM_READ, PERM_WRITE, WALK_ADDRESS_SIZE, WALK_NOT_PRESENT, WALK_RESERVED_BITS, WALK_TABLE_FAULT, WalkResult, type IoPageTable } from '@ioasid/core/driver';
import { testTableMemory } from '@ioasid/core/testing';
import { AMD_IOMMU_PGSIZES, AMD_IOMMU_PGSIZES_V2 } from './registers.js';
import { amdV1, amdV2, walkForeignV2 } from './pgtable.js';

const RW = IOMMU_READ | IOMMU_WRITE;

function v1(levels = 4, extra: Partial<Parameters<typeof amdV1.alloc>[0]> = {}) {
  const t = testTableMemory();
  const pt = amdV1.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES, ias: Math.min(64, 12 + 9 * levels), oas: 52, levels, ...extra }, t.memory) as IoPageTable;
  if (typeof pt === 'number') throw new Error(`alloc ${pt}`);
  return { pt, mem: t.mem, t };
}

/** The raw entry the walk ended on, found by walking by hand from the root. */
function entryAt(mem: ReturnType<typeof v1>['mem'], pt: IoPageTable, iovaPfn: number, level: number): bigint {
  let table = pt.rootPfn;
  for (let l = pt.levels - 1; l > level; l--) {
    const e = mem.readU64(table, Math.floor(iovaPfn / 512 ** l) % 512);
    table = Number((e >> 12n) & ((1n << 40n) - 1n));
  }
  return mem.readU64(table, Math.floor(iovaPfn / 512 ** level) % 512);
}

describe('amd-v1', () => {
  it('writes PR, NextLevel, IR/IW and FC as real bits', () => {
    const { pt, mem } = v1(4, { coherent: true });
    expect(pt.map(0x10, 0x2345, 1, IOMMU_READ)).toBe(0);
    const leaf = entryAt(mem, pt, 0x10, 0);
    expect(leaf).toBe(0x2345000n | 1n | (1n << 60n) | (1n << 61n));
    const pde = entryAt(mem, pt, 0x10, 1);
    expect(pde & 1n).toBe(1n);
    expect((pde >> 9n) & 7n).toBe(1n); // points to the level-1 (4K PTE) table
    expect((pde >> 61n) & 3n).toBe(3n); // IR|IW on every PDE
    expect((entryAt(mem, pt, 0x10, 3) >> 9n) & 7n).toBe(3n);
  });

  it('uses the level default sizes and the NextLevel 7 size encoding, replicated', () => {
    const { pt, mem } = v1(4);
    const wr = new WalkResult();
    // 16K at level 0: four replicas, NextLevel 7, address with bit 12 set and bit 13 clear.
    expect(pt.map(0x40, 0x800, 4, RW)).toBe(0);
    for (let i = 0; i < 4; i++) {
      const e = entryAt(mem, pt, 0x40 + i, 0);
      expect((e >> 9n) & 7n).toBe(7n);
      expect((e >> 12n) & 3n).toBe(1n);
      expect(pt.walk(0x40 + i, wr)).toBe(true);
      expect([wr.pfn, wr.pageShift]).toEqual([0x800 + i, 14]);
    }
    // 2M: one level-1 entry with NextLevel 0.
    expect(pt.map(0x200, 0x40000, 512, RW)).toBe(0);
    expect((entryAt(mem, pt, 0x200, 1) >> 9n) & 7n).toBe(0n);
    expect(pt.walk(0x3ff, wr) && [wr.pfn, wr.pageShift]).toEqual([0x401ff, 21]);
    // 4M: two level-1 replicas of NextLevel 7.
    expect(pt.map(0x400, 0x80000, 1024, RW)).toBe(0);
    expect((entryAt(mem, pt, 0x600, 1) >> 9n) & 7n).toBe(7n);
    expect(pt.walk(0x7ff, wr) && [wr.pfn, wr.pageShift]).toEqual([0x803ff, 22]);
    // Unmap removes a huge page whole and only when fully covered.
    expect(pt.unmap(0x400, 512)).toBe(0);
    expect(pt.unmap(0x400, 1024)).toBe(1024);
    expect(pt.walk(0x600, wr)).toBe(false);
  });

  it('never uses 512G pages (AMD_IOMMU_PGSIZES)', () => {
    expect(AMD_IOMMU_PGSIZES & (1n << 39n)).toBe(0n);
    expect(AMD_IOMMU_PGSIZES & (1n << 38n)).toBe(1n << 38n);
  });

  it('supports 1 to 6 levels and refuses what the format cannot do', () => {
    for (let l = 1; l <= 6; l++) {
      const { pt } = v1(l);
      const top = 2 ** (Math.min(64, 12 + 9 * l) - 12) - 1;
      expect(pt.map(top, 5, 1, RW), `levels ${l}`).toBe(0);
      const wr = new WalkResult();
      expect(pt.walk(top, wr) && wr.pfn).toBe(5);
      expect(pt.walk(top + 1, wr)).toBe(false);
      expect(wr.fault).toBe(WALK_ADDRESS_SIZE);
      pt.free();
    }
    const t = testTableMemory();
    expect(amdV1.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES, ias: 64, oas: 52, levels: 7 }, t.memory)).toBe(-22);
    expect(amdV1.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES, ias: 57, oas: 52, levels: 4 }, t.memory)).toBe(-22);
    expect(amdV1.alloc({ pgsizeBitmap: 1n << 21n, ias: 48, oas: 52 }, t.memory)).toBe(-22);
  });

  it('walks skipped levels when their IOVA bits are zero, and reserved NextLevel values fault', () => {
    const { pt, mem, t } = v1(4);
    // Root (level 4) entry 0 skips straight to a level-1 table: NextLevel 1 from level 4.
    const pte = t.memory.allocTable();
    mem.writeU64(pt.rootPfn, 0, (BigInt(pte) << 12n) | (1n << 9n) | 1n | (3n << 61n));
    mem.writeU64(pte, 7, 0x1234000n | 1n | (1n << 61n));
    const wr = new WalkResult();
    expect(pt.walk(7, wr) && [wr.pfn, wr.perm & (PERM_READ | PERM_WRITE)]).toEqual([0x1234, PERM_READ]);
    // IOVA bits of a skipped level set: not present.
    expect(pt.walk(7 + 512, wr)).toBe(false);
    expect(wr.fault).toBe(WALK_NOT_PRESENT);
    // A PDE pointing to its own level or above is reserved.
    mem.writeU64(pt.rootPfn, 1, (BigInt(pte) << 12n) | (5n << 9n) | 1n);
    expect(pt.walk(512 ** 3, wr)).toBe(false);
    expect(wr.fault).toBe(WALK_RESERVED_BITS);
  });

  it('ANDs IR/IW along the walk', () => {
    const { pt, mem } = v1(3);
    expect(pt.map(1, 9, 1, RW)).toBe(0);
    const wr = new WalkResult();
    expect(pt.walk(1, wr) && wr.perm & PERM_WRITE).toBe(PERM_WRITE);
    // Clear IW in the level-2 PDE.
    const e = mem.readU64(pt.rootPfn, 0);
    mem.writeU64(pt.rootPfn, 0, e & ~(1n << 62n));
    expect(pt.walk(1, wr) && wr.perm & PERM_WRITE).toBe(0);
  });

  it('sets D in the replica a write used, and reports a large page dirty once, OR-ing the replicas', () => {
    const { pt, mem } = v1(4, { dirtyTracking: true });
    expect(pt.map(0x40, 0x800, 4, RW)).toBe(0);
    pt.markAccess!(0x42, true);
    // Hardware updates nothing while the DTE's HAD bits are clear.
    expect((entryAt(mem, pt, 0x42, 0) >> 6n) & 1n).toBe(0n);
    pt.setDirtyTracking!(true);
    pt.markAccess!(0x42, true);
    expect((entryAt(mem, pt, 0x42, 0) >> 5n) & 3n).toBe(3n);
    expect((entryAt(mem, pt, 0x40, 0) >> 6n) & 1n).toBe(0n);
    const seen: Array<[number, number]> = [];
    pt.readAndClearDirty!(0x40, 4, true, (p, n) => seen.push([p, n]));
    expect(seen).toEqual([[0x40, 4]]);
    pt.readAndClearDirty!(0x40, 4, false, () => {});
    const again: number[] = [];
    pt.readAndClearDirty!(0x40, 4, false, (p) => again.push(p));
    expect(again).toEqual([]);
  });

  it('rolls back a failed map completely (ENOMEM, EEXIST)', () => {
    const t = testTableMemory(2);
    const pt = amdV1.alloc({ pgsizeBitmap: 1n << 12n, ias: 48, oas: 52, levels: 4 }, t.memory) as IoPageTable;
    expect(pt.map(0, 1, 1, RW)).toBe(-12);
    expect(pt.tablePages).toBe(1);
    const { pt: p2 } = v1(4);
    expect(p2.map(10, 1, 1, RW)).toBe(0);
    expect(p2.map(8, 100, 4, RW)).toBe(-17);
    const wr = new WalkResult();
    expect(p2.walk(8, wr)).toBe(false);
    expect(p2.walk(10, wr) && wr.pfn).toBe(1);
  });
});

describe('amd-v2', () => {
  it('is the x86-64 format: P, RW, US, A, D, PS, NX', () => {
    const t = testTableMemory();
    const pt = amdV2.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES_V2, ias: 48, oas: 52, levels: 4 }, t.memory) as IoPageTable;
    expect(pt.map(3, 0x99, 1, IOMMU_READ | IOMMU_NOEXEC)).toBe(0);
    expect(entryAt(t.mem, pt, 3, 0)).toBe(0x99000n | 1n | 4n | 0x20n | 0x40n | (1n << 63n));
    const wr = new WalkResult();
    expect(pt.walk(3, wr) && wr.perm & (PERM_READ | PERM_WRITE | PERM_EXEC)).toBe(PERM_READ);
    expect(pt.map(512, 0x200, 512, RW)).toBe(0);
    expect((entryAt(t.mem, pt, 512, 1) >> 7n) & 1n).toBe(1n);
    expect(pt.walk(700, wr) && [wr.pfn, wr.pageShift, wr.perm & PERM_EXEC]).toEqual([0x200 + 188, 21, PERM_EXEC]);
    expect(amdV2.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES_V2, ias: 48, oas: 52, levels: 3 }, t.memory)).toBe(-22);
    const five = amdV2.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES_V2, ias: 57, oas: 52 }, t.memory) as IoPageTable;
    expect(five.levels).toBe(5);
  });

  it('walks a guest table in guest-physical memory through the host stage', () => {
    const t = testTableMemory();
    const guest = amdV2.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES_V2, ias: 48, oas: 52, levels: 4 }, t.memory) as IoPageTable;
    expect(guest.map(5, 0x77, 1, RW)).toBe(0);
    const wr = new WalkResult();
    // Identity host stage: the foreign walk finds what the table holds.
    expect(walkForeignV2(guest.cfg, guest.rootPfn, t.mem, 5, wr, (p) => p)).toBe(true);
    expect(wr.pfn).toBe(0x77);
    // The host stage refuses a table page: a table fault naming the guest page.
    expect(walkForeignV2(guest.cfg, guest.rootPfn, t.mem, 5, wr, (p) => (p === guest.rootPfn ? p : -1))).toBe(false);
    expect(wr.fault).toBe(WALK_TABLE_FAULT);
  });
});
