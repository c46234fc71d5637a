/**
 * Property test: the radix engine's amd-v1 / amd-v2 tables against a walker written from the AMD IOMMU
 * specification alone (the v1 PDE/PTE with NextLevel, level skipping and the NextLevel-7 size encoding
 * (a page larger than the level's default, its entry replicated);
 * the v2 x86-64 long-mode entries), over random map/unmap sequences. After every operation each sampled
 * page must walk the same in both (present or not, physical page, read/write/execute, page size), and a
 * successful map or unmap must show in the walks. A short run by default (2 seeds x 60 operations per
 * configuration); a long one: `AMD_PT_PROPERTY_SEEDS=50 AMD_PT_PROPERTY_OPS=400 npx vitest run
 * src/reference-walk.test.ts` in this package.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, PERM_EXEC, PERM_READ, PERM_WRITE, WalkResult, type IoPageTable, type PhysicalMemory } from '@ioasid/core/driver';
import { testTableMemory } from '@ioasid/core/testing';
import { AMD_IOMMU_PGSIZES, AMD_IOMMU_PGSIZES_V2 } from './registers.js';
import { amdV1, amdV2 } from './pgtable.js';

/** A walk as the specification defines it: the page, its size and the access rights, or why none. */
type RefWalk = { readonly ok: true; readonly pfn: number; readonly pageShift: number; readonly read: boolean; readonly write: boolean; readonly exec: boolean } | { readonly ok: false };

const FAIL: RefWalk = { ok: false };
const EEXIST = 17;
const ADDR = 0x000f_ffff_ffff_f000n;
const bit = (e: bigint, n: number) => ((e >> BigInt(n)) & 1n) === 1n;

/**
 * The v1 walk of spec 2.2.3 from the DTE's Mode and root: each level indexes 9 IOVA bits (the 6th, 7);
 * PR (bit 0) must be set; NextLevel (11:9) 0 ends the walk with this level's page size, 7 ends it with
 * the size encoded in the address (the lowest clear bit from 12 up is the size's top bit; larger than
 * this level's page, at most the level above's), 1 to
 * level-1 points to that level's table, the IOVA bits of any level skipped being zero; IR (61) and IW
 * (62) are ANDed over every entry; an IOVA above the Mode's reach faults.
 */
export function refWalkV1(mem: PhysicalMemory, rootPfn: number, mode: number, iovaPfn: number): RefWalk {
  const iova = BigInt(iovaPfn) << 12n;
  if (mode < 6 && iova >> BigInt(12 + 9 * mode) !== 0n) return FAIL;
  let level = mode;
  let table = rootPfn;
  let ir = true;
  let iw = true;
  for (;;) {
    const shift = 12 + 9 * (level - 1);
    const idx = Number((iova >> BigInt(shift)) & (level === 6 ? 0x7fn : 0x1ffn));
    const e = mem.readU64(table, idx);
    if (!bit(e, 0)) return FAIL;
    ir &&= bit(e, 61);
    iw &&= bit(e, 62);
    const nl = Number((e >> 9n) & 7n);
    const addr = e & ADDR;
    if (nl === 0 || nl === 7) {
      let size = shift;
      if (nl === 7) {
        let b = 12;
        while (b < 52 && bit(addr, b)) b++;
        size = b + 1;
        // A NextLevel-7 page is larger than this level's default page (the entry is replicated over it)
        // and no larger than the level above's.
        if (size <= shift || size > shift + 9) return FAIL;
      }
      const base = (addr >> BigInt(size)) << BigInt(size);
      const pa = base + (iova & ((1n << BigInt(size)) - 1n));
      if (!ir && !iw) return FAIL;
      return { ok: true, pfn: Number(pa >> 12n), pageShift: size, read: ir, write: iw, exec: true };
    }
    if (nl >= level) return FAIL;
    // Skipped levels: their IOVA bits must be zero.
    for (let l = level - 1; l > nl; l--) if ((iova >> BigInt(12 + 9 * (l - 1))) & 0x1ffn) return FAIL;
    table = Number(addr >> 12n);
    level = nl;
  }
}

/**
 * The v2 walk (x86-64 long mode, 4 or 5 levels, no sign extension on PASID 0): P (0) must be set; PS
 * (7) ends the walk with a 2M (level 2) or 1G (level 3) page, level 1 with a 4K one; RW (1) is ANDed,
 * NX (63) ORed over every entry.
 */
export function refWalkV2(mem: PhysicalMemory, rootPfn: number, levels: number, iovaPfn: number): RefWalk {
  const iova = BigInt(iovaPfn) << 12n;
  if (iova >> BigInt(12 + 9 * levels) !== 0n) return FAIL;
  let table = rootPfn;
  let rw = true;
  let nx = false;
  for (let level = levels; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const e = mem.readU64(table, Number((iova >> BigInt(shift)) & 0x1ffn));
    if (!bit(e, 0)) return FAIL;
    rw &&= bit(e, 1);
    nx ||= bit(e, 63);
    const leaf = level === 1 || bit(e, 7);
    if (leaf) {
      if (level > 3) return FAIL;
      const base = ((e & ADDR) >> BigInt(shift)) << BigInt(shift);
      const pa = base + (iova & ((1n << BigInt(shift)) - 1n));
      return { ok: true, pfn: Number(pa >> 12n), pageShift: shift, read: true, write: rw, exec: !nx };
    }
    table = Number((e & ADDR) >> 12n);
  }
  return FAIL;
}

function engineWalk(pt: IoPageTable, iovaPfn: number): RefWalk {
  const out = new WalkResult();
  if (!pt.walk(iovaPfn, out)) return FAIL;
  return { ok: true, pfn: out.pfn, pageShift: out.pageShift, read: (out.perm & PERM_READ) !== 0, write: (out.perm & PERM_WRITE) !== 0, exec: (out.perm & PERM_EXEC) !== 0 };
}

/** xorshift32: the same sequence for the same seed. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return { next, below: (n: number) => next() % n, pick: <T>(a: readonly T[]): T => a[next() % a.length] };
}

interface Config {
  readonly name: string;
  readonly format: 'v1' | 'v2';
  readonly levels: number;
  readonly startLevels?: number;
  readonly dirty?: boolean;
  readonly coherent?: boolean;
}

const CONFIGS: readonly Config[] = [
  ...[1, 2, 3, 4, 5, 6].flatMap((levels) => [
    { name: `v1 ${levels}-level`, format: 'v1' as const, levels },
    { name: `v1 ${levels}-level dirty coherent`, format: 'v1' as const, levels, dirty: true, coherent: true },
  ]),
  { name: 'v1 6-level from 3 (dynamic top)', format: 'v1', levels: 6, startLevels: 3 },
  { name: 'v1 5-level from 3 (dynamic top)', format: 'v1', levels: 5, startLevels: 3 },
  { name: 'v2 4-level', format: 'v2', levels: 4 },
  { name: 'v2 5-level', format: 'v2', levels: 5 },
];

export interface PropertyStats {
  /** Maps refused with EEXIST over an empty table (no mapping overlapped). */
  refusedOverTable: number;
  ops: number;
  maps: number;
  unmaps: number;
  walks: number;
}

/** Runs `ops` random operations on one configuration; throws on the first disagreement. */
export function runProperty(c: Config, seed: number, ops: number, stats: PropertyStats): void {
  const r = rng(seed * 7919 + c.levels * 131 + (c.format === 'v2' ? 17 : 0));
  const t = testTableMemory();
  const bitmap = c.format === 'v1' ? AMD_IOMMU_PGSIZES : AMD_IOMMU_PGSIZES_V2;
  const ias = c.format === 'v1' ? Math.min(64, 12 + 9 * c.levels) : 12 + 9 * c.levels;
  const fmt = c.format === 'v1' ? amdV1 : amdV2;
  const pt = fmt.alloc({ pgsizeBitmap: bitmap, ias, oas: 52, levels: c.levels, dirtyTracking: c.dirty, coherent: c.coherent, options: c.startLevels ? { startLevels: c.startLevels } : undefined }, t.memory);
  if (typeof pt === 'number') throw new Error(`${c.name}: alloc ${pt}`);
  const ref = (pfn: number) => (c.format === 'v1' ? refWalkV1(t.mem, pt.rootPfn, pt.levels, pfn) : refWalkV2(t.mem, pt.rootPfn, pt.levels, pfn));
  // Page sizes the table offers (bits of the bitmap within reach), as page-number shifts, small ones often.
  const shifts: number[] = [];
  for (let s = 0; 12 + s < Math.min(ias, 50); s++) if ((pt.cfg.pgsizeBitmap >> BigInt(12 + s)) & 1n) shifts.push(s);
  const small = shifts.filter((s) => s <= 9);
  // IOVA page numbers within a window around a few bases, some high (the top of the reach).
  const reachPfnBits = Math.min(ias, 52) - 12;
  const bases = [0, 2 ** Math.max(0, reachPfnBits - 1), 2 ** Math.min(30, reachPfnBits) - 2 ** 12].filter((b) => b >= 0 && b < 2 ** reachPfnBits);
  const mapped: Array<{ iova: number; pa: number; n: number }> = [];
  const check = (pfn: number) => {
    stats.walks++;
    const a = engineWalk(pt, pfn);
    const b = ref(pfn);
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${c.name} seed ${seed}: IOVA page 0x${pfn.toString(16)}: engine ${JSON.stringify(a)}, spec walk ${JSON.stringify(b)}`);
    return a;
  };
  for (let op = 0; op < ops; op++) {
    if (mapped.length > 0 && r.below(3) === 0) {
      const m = mapped.splice(r.below(mapped.length), 1)[0];
      stats.ops++;
      stats.unmaps++;
      const got = pt.unmap(m.iova, m.n);
      if (got !== m.n) throw new Error(`${c.name} seed ${seed}: unmap of ${m.n} pages at 0x${m.iova.toString(16)} gave ${got}`);
      for (const p of [m.iova, m.iova + m.n - 1, m.iova + (r.below(m.n) | 0)]) expect(check(p).ok).toBe(false);
      continue;
    }
    const s = r.below(4) === 0 ? r.pick(shifts) : r.pick(small.length ? small : shifts);
    const n = 2 ** s * (1 + r.below(3));
    const alignedIova = Math.floor((r.pick(bases) + r.below(2 ** 12)) / 2 ** s) * 2 ** s;
    if (alignedIova + n > 2 ** reachPfnBits) continue;
    // A physical page number aligned to the size, below 2^40 (52-bit addresses).
    const pa = (1 + r.below(2 ** Math.max(0, 37 - s))) * 2 ** s;
    const prot = r.pick([IOMMU_READ, IOMMU_READ | IOMMU_WRITE, IOMMU_READ | IOMMU_NOEXEC, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC]);
    stats.ops++;
    stats.maps++;
    const rc = pt.map(alignedIova, pa, n, prot);
    const overlaps = mapped.some((m) => alignedIova < m.iova + m.n && m.iova < alignedIova + n);
    if (overlaps) {
      if (rc === 0) throw new Error(`${c.name} seed ${seed}: map over a mapping succeeded`);
    } else if (rc === -EEXIST) {
      // A leaf larger than an (empty) table already in its place: the engine keeps the table (an old
      // root under a grown top, or a table emptied by unmap) and refuses; the walks below still agree.
      stats.refusedOverTable++;
    } else if (rc !== 0) throw new Error(`${c.name} seed ${seed}: map of ${n} pages at 0x${alignedIova.toString(16)} failed (${rc})`);
    if (rc === 0) mapped.push({ iova: alignedIova, pa, n });
    for (const k of [0, n - 1, r.below(n)]) {
      const w = check(alignedIova + k);
      if (rc === 0) {
        expect(w.ok && w.pfn).toBe(pa + k);
        expect(w.ok && w.read).toBe(true);
        expect(w.ok && w.write).toBe((prot & IOMMU_WRITE) !== 0);
      }
    }
    // A page next to the mapping and one of an older mapping.
    check(alignedIova + n);
    if (alignedIova > 0) check(alignedIova - 1);
    if (mapped.length) {
      const m = mapped[r.below(mapped.length)];
      const k = r.below(m.n);
      expect(check(m.iova + k)).toMatchObject({ ok: true, pfn: m.pa + k });
    }
  }
  pt.free();
}

const SEEDS = Number(process.env['AMD_PT_PROPERTY_SEEDS'] ?? 2);
const OPS = Number(process.env['AMD_PT_PROPERTY_OPS'] ?? 60);

describe('amd-v1 / amd-v2 against a walker written from the specification', () => {
  for (const c of CONFIGS) {
    it(`${c.name}: ${SEEDS} seeds x ${OPS} random map/unmap`, () => {
      const stats: PropertyStats = { ops: 0, maps: 0, unmaps: 0, walks: 0, refusedOverTable: 0 };
      for (let seed = 1; seed <= SEEDS; seed++) runProperty(c, seed, OPS, stats);
      expect(stats.ops).toBeGreaterThan(0);
      expect(stats.walks).toBeGreaterThan(stats.ops);
    });
  }

  it('the reference walker itself: NextLevel 7 sizes, skipped levels, IR/IW AND, reserved NextLevel', () => {
    const t = testTableMemory();
    const root = t.memory.allocTable();
    const l2 = t.memory.allocTable();
    const l1 = t.memory.allocTable();
    const PR = 1n;
    const IR = 1n << 61n;
    const IW = 1n << 62n;
    // Level 3 entry 0 -> level 1 table directly (level 2 skipped): IOVA bits 29:21 must be zero.
    t.mem.writeU64(root, 0, (BigInt(l1) << 12n) | (1n << 9n) | PR | IR | IW);
    // A 16K page (NextLevel 7, bit 12 set, bit 13 clear) replicated at index 4..7.
    for (let i = 4; i < 8; i++) t.mem.writeU64(l1, i, 0x40000000n | 0x1000n | (7n << 9n) | PR | IR);
    expect(refWalkV1(t.mem, root, 3, 5)).toEqual({ ok: true, pfn: 0x40001, pageShift: 14, read: true, write: false, exec: true });
    expect(refWalkV1(t.mem, root, 3, 512 + 5)).toEqual(FAIL);
    // NextLevel 3 at level 3 is reserved.
    t.mem.writeU64(root, 1, (BigInt(l2) << 12n) | (3n << 9n) | PR | IR | IW);
    expect(refWalkV1(t.mem, root, 3, 512 * 512)).toEqual(FAIL);
    // Beyond the Mode's reach.
    expect(refWalkV1(t.mem, root, 3, 2 ** 27)).toEqual(FAIL);
  });
});
