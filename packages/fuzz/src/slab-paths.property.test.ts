/**
 * The radix engine's slab paths (RadixPageTable's walk, its map and unmap of one leaf entry and its
 * markAccess, over the slab of table memory that holds the root) against its general paths, on every
 * format that uses the engine: VT-d first and second stage, AMD-Vi v1 (growing its top) and v2, Arm LPAE
 * stage 1 and 2 with 4K/16K/64K granules (and the 52-bit output, which has no slab path), RISC-V
 * Sv39/Sv48/Sv57 and the x4 roots. Two tables of one format in two memories that hand out the same
 * frames run the same random maps and unmaps, one with the slab paths and one without
 * (setRadixSlabPaths): every result, the table pages, every walk and the entries hardware accesses leave
 * (accessed and dirty bits) must agree, and each walk must agree with radixWalk. Then random bits of
 * entries on the walks' paths are flipped in both (reserved bits, types, addresses into other slabs or
 * outside the slabs) and the walks, hardware accesses, one-page unmaps and maps must still agree, a map
 * of the page after the last one too (the slab path maps it without a walk when the entries above its
 * leaf table read as they did).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ChunkCache,
  IOMMU_READ,
  IOMMU_WRITE,
  PhysicalMemory,
  RadixPageTable,
  WalkResult,
  radixWalk,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
} from '@ioasid/core/driver';
import { setRadixSlabPaths } from '@ioasid/core/internal';
import { vtdFirstStage, vtdSecondStage } from '@ioasid/vtd';
import { amdV1, amdV2 } from '@ioasid/amd-vi';
import { armLpaeS1, armLpaeS2 } from '@ioasid/smmuv3';
import { formats as riscvFormats } from '@ioasid/riscv-iommu';

const RW = IOMMU_READ | IOMMU_WRITE;
const sizes = (...log2: number[]): bigint => log2.reduce((a, b) => a | (1n << BigInt(b)), 0n);

interface Case {
  name: string;
  format: PageTableFormat;
  cfg: PageTableConfig;
}

const riscv = (id: string): PageTableFormat => riscvFormats.find((f) => f.id === id)!;

const CASES: Case[] = [
  { name: 'vtd-fs 4 levels, dirty tracking', format: vtdFirstStage, cfg: { pgsizeBitmap: sizes(12, 21, 30), ias: 48, oas: 52, levels: 4, dirtyTracking: true } },
  { name: 'vtd-fs 5 levels', format: vtdFirstStage, cfg: { pgsizeBitmap: sizes(12, 21), ias: 57, oas: 52, levels: 5 } },
  { name: 'vtd-ss 3 levels, dirty tracking', format: vtdSecondStage, cfg: { pgsizeBitmap: sizes(12, 21, 30), ias: 39, oas: 52, dirtyTracking: true } },
  { name: 'vtd-ss 4 levels', format: vtdSecondStage, cfg: { pgsizeBitmap: sizes(12, 21, 30), ias: 48, oas: 52 } },
  { name: 'vtd-ss 5 levels', format: vtdSecondStage, cfg: { pgsizeBitmap: sizes(12, 21, 30), ias: 57, oas: 52 } },
  { name: 'amd-v1 growing from 3 to 6 levels', format: amdV1, cfg: { pgsizeBitmap: sizes(12, 13, 14, 16, 21, 22, 30), ias: 64, oas: 52, levels: 6, options: { startLevels: 3 } } },
  { name: 'amd-v2', format: amdV2, cfg: { pgsizeBitmap: sizes(12, 21, 30), ias: 48, oas: 52 } },
  { name: 'arm-lpae-s1 4K, dirty tracking', format: armLpaeS1, cfg: { pgsizeBitmap: sizes(12, 21, 30), ias: 48, oas: 48, granule: 4096, dirtyTracking: true } },
  { name: 'arm-lpae-s1 16K', format: armLpaeS1, cfg: { pgsizeBitmap: sizes(14, 25), ias: 47, oas: 48, granule: 16384 } },
  { name: 'arm-lpae-s2 64K concatenated, dirty tracking', format: armLpaeS2, cfg: { pgsizeBitmap: sizes(16, 29), ias: 44, oas: 48, granule: 65536, levels: 2, dirtyTracking: true } },
  { name: 'arm-lpae-s1 64K 52-bit output', format: armLpaeS1, cfg: { pgsizeBitmap: sizes(16, 29), ias: 48, oas: 52, granule: 65536 } },
  { name: 'riscv-sv39', format: riscv('riscv-sv39'), cfg: { pgsizeBitmap: sizes(12, 16, 21, 30), ias: 39, oas: 56 } },
  { name: 'riscv-sv48x4', format: riscv('riscv-sv48x4'), cfg: { pgsizeBitmap: sizes(12, 21), ias: 50, oas: 56 } },
  { name: 'riscv-sv57', format: riscv('riscv-sv57'), cfg: { pgsizeBitmap: sizes(12, 21), ias: 57, oas: 56 } },
];

/**
 * Table memory whose frames come from several places, chosen per allocation by `pick`: the first slab,
 * another slab, a slab whose frames have address bits in the entry's high word for every format
 * (frame >= 2^22), and the sparse region above 128 GiB that has no slab. Two of them built from the
 * same picks hand out the same frames for the same calls. Once armed (after the root), `limit` frames
 * are handed out and then every allocation fails, so that maps meet ENOMEM at every depth. With `runs`
 * it takes runs of released leaf tables too (releaseTableRun), which the engine then hands back together.
 */
function scatteredMemory(picks: readonly number[], rootRegion: number, limit: number, runs: boolean): PageTableMemory & { arm(): void } {
  const mem = new PhysicalMemory();
  const bases = [0x100, 5 * 8192, 600 * 8192, 2 ** 33];
  const next = bases.slice();
  const free: number[][] = bases.map(() => []);
  let k = -1;
  let left = Number.POSITIVE_INFINITY;
  const memory: PageTableMemory & { arm(): void } = {
    mem,
    arm() {
      left = limit;
    },
    allocTable() {
      if (left-- <= 0) return -1;
      const r = k < 0 ? rootRegion : picks[k % picks.length];
      k++;
      const pfn = free[r].pop() ?? next[r]++;
      mem.zeroFrame(pfn);
      mem.markTouched(pfn);
      return pfn;
    },
    releaseTable(pfn) {
      mem.zeroFrame(pfn);
      free[bases.findLastIndex((b) => pfn >= b)].push(pfn);
    },
  };
  if (runs)
    memory.releaseTableRun = (from, to) => {
      const step = to >= from ? 1 : -1;
      for (let p = from; p !== to + step; p += step) memory.releaseTable(p);
    };
  return memory;
}

function alloc(c: Case, memory: PageTableMemory): RadixPageTable {
  const pt = c.format.alloc({ ...c.cfg, options: c.cfg.options === undefined ? undefined : { ...c.cfg.options } }, memory);
  if (typeof pt === 'number') throw new Error(`${c.name}: alloc failed with ${pt}`);
  if (!(pt instanceof RadixPageTable)) throw new Error(`${c.name}: not a radix table`);
  return pt;
}

function walked(out: WalkResult, ok: boolean): unknown {
  return ok ? { ok, pfn: out.pfn, perm: out.perm, pageShift: out.pageShift, level: out.level, dirty: out.dirty } : { ok, fault: out.fault, level: out.level };
}

/** Calls `f`, or the name of what it threw (a corrupted table may point anywhere). */
function attempt(f: () => number): number | string {
  try {
    return f();
  } catch (e) {
    return (e as Error).name;
  }
}

const op = fc.record({
  unmap: fc.boolean(),
  iova: fc.integer({ min: 0, max: 2 ** 26 }),
  /** 0: one granule (the one-entry paths); 1: a few pages; 2: a run across tables; 3: a huge-page-sized run. */
  size: fc.integer({ min: 0, max: 3 }),
  n: fc.integer({ min: 1, max: 1500 }),
  highIova: fc.boolean(),
  ro: fc.boolean(),
  /** An unmap of the range of an earlier map (from its start, to a table boundary past its end): whole leaf tables go. */
  again: fc.nat(),
  /**
   * Not 0: a map of one granule right after the previous map (into the leaf table that map wrote,
   * mostly; the engine skips the walk from the third such map on).
   */
  next: fc.integer({ min: 0, max: 2 }),
});

describe('radix slab paths agree with the general paths', () => {
  for (const c of CASES) {
    it(c.name, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 3 }),
          fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 6 }),
          fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 0, max: 12 })),
          fc.array(op, { minLength: 1, maxLength: 16 }),
          fc.array(fc.record({ probe: fc.nat(), step: fc.nat(), hi: fc.boolean(), bits: fc.integer({ min: 1, max: 0xffffffff }) }), { maxLength: 4 }),
          (rootRegion, picks, limit, ops, flips) => {
            // The first table also hands released leaf tables back in runs, the second one by one.
            const ma = scatteredMemory(picks, rootRegion, limit, true);
            const mb = scatteredMemory(picks, rootRegion, limit, false);
            const a = alloc(c, ma);
            const b = alloc(c, mb);
            setRadixSlabPaths(b, false);
            ma.arm();
            mb.arm();
            const g = a.layout.granulePages;
            const probes: number[] = [];
            const mapped: [number, number][] = [];
            for (const o of ops) {
              const base = (o.highIova ? Math.min(a.layout.limitPfn, 2 ** 36) / 2 : 0) + o.iova;
              let iova = base - (base % g);
              let n = o.size === 0 ? g : o.size === 1 ? o.n - (o.n % g) || g : o.size === 2 ? 2 * a.layout.span[1] + g : a.layout.span[1];
              if (o.unmap && o.again % 2 === 1 && mapped.length > 0) {
                const [i0, n0] = mapped[o.again % mapped.length];
                const t = a.layout.span[1];
                iova = i0;
                n = Math.ceil((i0 + n0) / t) * t - i0;
              }
              if (!o.unmap && o.next !== 0 && mapped.length > 0) {
                const [i0, n0] = mapped[mapped.length - 1];
                iova = i0 + n0;
                n = g;
              }
              if (!o.unmap) mapped.push([iova, n]);
              const pa = 0x10000 + (iova % 2 ** 20) - ((iova % 2 ** 20) % g);
              const ra = o.unmap ? a.unmap(iova, n) : a.map(iova, pa, n, o.ro ? IOMMU_READ : RW);
              const rb = o.unmap ? b.unmap(iova, n) : b.map(iova, pa, n, o.ro ? IOMMU_READ : RW);
              expect(ra).toBe(rb);
              expect(a.tablePages).toBe(b.tablePages);
              expect(a.levels).toBe(b.levels);
              probes.push(iova, iova + g, iova + n - g, iova + n);
            }
            // Three one-granule maps in a row after the last range: from the third on, the slab path
            // maps without a walk; they go first among the probes, so the flips below often hit their path.
            if (mapped.length > 0) {
              const [i0, n0] = mapped[mapped.length - 1];
              for (let k = 2; k >= 0; k--) {
                const q = i0 + n0 + k * g;
                probes.unshift(q);
              }
              for (let k = 0; k < 3; k++) {
                const q = i0 + n0 + k * g;
                expect(a.map(q, 0x30000 + k * g, g, RW)).toBe(b.map(q, 0x30000 + k * g, g, RW));
              }
            }
            const chunks = new ChunkCache(ma.mem);
            const oa = new WalkResult();
            const ob = new WalkResult();
            const or = new WalkResult();
            const compareWalks = (): void => {
              for (const p of probes) {
                const wa = walked(oa, a.walk(p, oa));
                expect(wa).toEqual(walked(ob, b.walk(p, ob)));
                expect(wa).toEqual(walked(or, radixWalk(a.codec, a.layout, chunks, a.rootPfn, p, or, null)));
              }
            };
            compareWalks();
            // Hardware accesses: the accessed and dirty bits each path gets (dirty tracking on).
            for (const t of [a, b]) t.setDirtyTracking(true);
            probes.forEach((p, i) => {
              a.markAccess(p, i % 2 === 0);
              b.markAccess(p, i % 2 === 0);
            });
            for (const p of probes) expect(a.trace(p).map((st) => st.entry)).toEqual(b.trace(p).map((st) => st.entry));
            compareWalks();
            if (flips.length === 0) return;
            // VT-d's paging-structure cache keeps table pointers until an invalidation, as the hardware's
            // does, so a walk after a raw write to a table may differ from radixWalk's: the flips are
            // compared without it.
            for (const t of [a, b]) if ('pagingStructureCache' in t) t.pagingStructureCache = false;
            for (const f of flips) {
              const p = probes[f.probe % 2 === 0 ? 0 : f.probe % probes.length];
              const sa = a.trace(p);
              const sb = b.trace(p);
              const i = f.step % sa.length;
              // A flipped address may lead the next trace beyond physical memory: nothing to write there.
              if (sa[i].tablePfn >= 2 ** 40) continue;
              const bits = BigInt(f.bits >>> 0) << (f.hi ? 32n : 0n);
              ma.mem.writeU64(sa[i].tablePfn, sa[i].index, sa[i].entry ^ bits);
              mb.mem.writeU64(sb[i].tablePfn, sb[i].index, sb[i].entry ^ bits);
            }
            compareWalks();
            for (const p of probes.slice(0, 8)) {
              const q = p - (p % g);
              expect(attempt(() => (a.markAccess(q, true), 0))).toBe(attempt(() => (b.markAccess(q, true), 0)));
              expect(attempt(() => a.unmap(q, g))).toBe(attempt(() => b.unmap(q, g)));
              expect(attempt(() => a.map(q, 0x10000, g, RW))).toBe(attempt(() => b.map(q, 0x10000, g, RW)));
              // The page after it: a map into the leaf table the last map reached, over the flipped entries.
              expect(attempt(() => a.map(q + g, 0x10000 + g, g, RW))).toBe(attempt(() => b.map(q + g, 0x10000 + g, g, RW)));
              expect(a.tablePages).toBe(b.tablePages);
            }
          },
        ),
        { numRuns: 12 },
      );
    });
  }
});
