import { describe, expect, it } from 'vitest';
import { bareFixture, xorshiftRandom } from '../__tests__/helpers.js';
import { IommufdError } from '../uapi/errno.js';
import { getIoas } from './ioas.js';
import { AreaIndex, IoptArea } from './area-index.js';
import { IoptPages } from './pages.js';

describe('IOAS area index over many chunks', () => {
  it('keeps 2,000 single-page areas in order through random maps and range unmaps, as a plain model does', () => {
    const f = bareFixture();
    const ioas = f.fd.ioas.alloc();
    const va = f.host.process.mmap(4096);
    const slots = 4000;
    const mapped = new Array<boolean>(slots).fill(false);
    const rnd = xorshiftRandom(2463534242);
    const iovaOf = (slot: number) => 0x100000n + BigInt(slot) * 4096n;
    /** Unmaps slots [slot, end): the bytes of the areas inside, ENOENT when it holds none. */
    const unmapSlots = (slot: number, end: number) => {
      let expected = 0n;
      for (let s = slot; s < end; s++) if (mapped[s]) expected += 4096n;
      let got = 0n;
      try {
        got = f.fd.ioas.unmap(ioas, iovaOf(slot), BigInt(end - slot) * 4096n);
      } catch (e) {
        expect((e as IommufdError).code).toBe('ENOENT');
      }
      expect(got).toBe(expected);
      for (let s = slot; s < end; s++) mapped[s] = false;
    };
    for (let step = 0; step < 6000; step++) {
      const slot = rnd(slots);
      if (step < 3000 || rnd(3) !== 0) {
        // Map one page: EEXIST when the slot is taken.
        let code = '';
        try {
          f.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: iovaOf(slot), readable: true });
        } catch (e) {
          code = (e as IommufdError).code;
        }
        expect(code).toBe(mapped[slot] ? 'EEXIST' : '');
        mapped[slot] = true;
      } else {
        // Unmap a range of up to 8 slots.
        unmapSlots(slot, Math.min(slots, slot + 1 + rnd(8)));
      }
    }
    const iopt = getIoas(f.fd.ctx, ioas).iopt;
    const want = mapped.flatMap((m, s) => (m ? [iovaOf(s)] : []));
    expect([...iopt.iterAreas()].map((a) => a.iova)).toEqual(want);
    expect(iopt.areaCount).toBe(want.length);
    expect(want.length).toBeGreaterThan(1000);
    // Areas right after a chunk boundary and the last one are found by address.
    for (const iova of [want[0], want[128], want[129], want[want.length - 1]]) expect(iopt.areaAt(iova + 100n)?.iova).toBe(iova);
    // Ranges of hundreds of slots: whole chunks go at once (areas kept as objects here: typed maps).
    for (let k = 0; k < 12; k++) {
      const slot = rnd(slots);
      unmapSlots(slot, Math.min(slots, slot + 100 + rnd(500)));
      const left = mapped.flatMap((m, s) => (m ? [iovaOf(s)] : []));
      expect([...iopt.iterAreas()].map((a) => a.iova)).toEqual(left);
      for (const iova of [left[0], left[left.length >> 1], left[left.length - 1]]) if (iova !== undefined) expect(iopt.areaAt(iova)?.iova).toBe(iova);
    }
    expect(f.fd.ioas.unmapAll(ioas)).toBe(BigInt(mapped.filter((m) => m).length) * 4096n);
    expect(iopt.areaCount).toBe(0);
  });
});

describe('AreaIndex records of the three kinds', () => {
  it('reads compact, pages and object areas without changing them, shares, materializes and frees as a model says', () => {
    const { host } = bareFixture();
    const mm = host.process;
    const index = new AreaIndex();
    const rnd = xorshiftRandom(2463534242);
    type Kind = 'compact' | 'pages' | 'object';
    /** What each slot (area of one page at slot * 4096) holds. */
    const model = new Map<number, { kind: Kind; pages: IoptPages | null; area: IoptArea | null; page: number; pageIndex: number; prot: number }>();
    const slots = 900;
    const pageOf = (slot: number) => (slot * 7) % 64;
    for (let step = 0; step < 3000; step++) {
      const slot = rnd(slots);
      const k = slot * 4096;
      if (model.has(slot)) {
        if (rnd(4) === 0) {
          // Out of the index (one area or a run of areas, as an unmap takes them).
          const end = Math.min(slots, slot + 1 + rnd(5));
          index.find(k);
          const c0 = index.posChunk;
          const i0 = index.posIndex;
          let n = 0;
          for (let s = slot; s < end; s++) if (model.delete(s)) n++;
          let c1 = c0;
          let i1 = i0 + n;
          while (c1 < index.chunkCount && i1 >= index.chunkLength(c1)) {
            i1 -= index.chunkLength(c1);
            c1++;
          }
          index.deleteRange(c0, i0, c1, i1);
        } else if (rnd(2) === 0) {
          // Shared (IOAS_COPY): a compact area becomes a pages area over the pages its record implies.
          expect(index.find(k)).toBe(true);
          const m = model.get(slot)!;
          const p = index.sharePages(index.posChunk, index.posIndex);
          if (m.kind === 'compact') {
            expect([p.users, p.npinned, p.npages, p.base]).toEqual([1, 0, 1, BigInt(pageOf(slot) * 4096)]);
            m.kind = 'pages';
            m.pages = p;
          } else expect(p).toBe(m.pages);
        } else {
          // Given an identity (an access's pins): the same pages object for a pages area.
          expect(index.find(k)).toBe(true);
          const m = model.get(slot)!;
          const a = index.objectAt(index.posChunk, index.posIndex);
          if (m.kind === 'object') expect(a).toBe(m.area);
          else if (m.kind === 'pages') expect(a.pages).toBe(m.pages);
          m.kind = 'object';
          m.area = a;
          m.pages = a.pages;
        }
        continue;
      }
      const r = rnd(3);
      if (r === 0) {
        const found = index.find(k);
        index.insertCompactAt(index.posChunk, found ? index.posIndex + 1 : 0, k, k + 4095, mm, pageOf(slot), true, -1, 3);
        model.set(slot, { kind: 'compact', pages: null, area: null, page: pageOf(slot), pageIndex: 0, prot: 3 });
      } else if (r === 1) {
        const pages = new IoptPages(4, true, mm, { kind: 'user', mm, firstPage: pageOf(slot) });
        pages.get();
        const pageIndex = 1 + rnd(3);
        index.insertPages(k, k + 4095, pages, pageIndex, 0, 1);
        model.set(slot, { kind: 'pages', pages, area: null, page: pageOf(slot), pageIndex, prot: 1 });
      } else {
        const pages = new IoptPages(1, true, mm, { kind: 'user', mm, firstPage: pageOf(slot) });
        pages.get();
        const area = new IoptArea(k, k + 4095, pages, 0, 0, 2);
        index.insert(area);
        model.set(slot, { kind: 'object', pages, area, page: pageOf(slot), pageIndex: 0, prot: 2 });
      }
      if (step % 500 === 0) check();
    }
    check();

    function check(): void {
      const want = [...model.keys()].sort((x, y) => x - y);
      const got = [...index.from(0)];
      expect(got.map((a) => a.iovaNum / 4096)).toEqual(want);
      expect(index.size).toBe(want.length);
      got.forEach((a, n) => {
        const m = model.get(want[n])!;
        if (m.kind === 'object') expect(a).toBe(m.area);
        else if (m.kind === 'pages') {
          expect(a.pages).toBe(m.pages);
          expect([a.pageIndex, a.prot]).toEqual([m.pageIndex, m.prot]);
        } else {
          // A snapshot: a pages object of its own, built from the record, on every read.
          expect([a.pages.users, a.pages.base, a.npages, a.prot]).toEqual([1, BigInt(m.page * 4096), 1, 3]);
          expect(index.locate(a.iovaNum)!.pages).not.toBe(a.pages);
        }
      });
      // Pages slots: one per pages area, freed ones reused.
      const slotsOf = index as unknown as { pages: (IoptPages | undefined)[]; freeSlots: number[] };
      const live = slotsOf.pages.filter((p) => p !== undefined).length;
      expect(live).toBe([...model.values()].filter((m) => m.kind === 'pages').length);
      expect(slotsOf.pages.length - slotsOf.freeSlots.length).toBe(live);
    }
  });
});

describe('AreaIndex.appendsAt', () => {
  it('answers past the last area as find does, over chunk splits and deletes, and changes nothing otherwise', () => {
    const { host } = bareFixture();
    const mm = host.process;
    const index = new AreaIndex();
    // Empty: an append at index 0 of chunk 0, as find() places it.
    index.posChunk = 3;
    expect(index.appendsAt(0)).toBe(true);
    expect([index.posChunk, index.posIndex]).toEqual([0, -1]);
    const rnd = xorshiftRandom(2463534242);
    const keys: number[] = [];
    let next = 0x10000;
    for (let step = 0; step < 1500; step++) {
      if (rnd(5) === 0 && keys.length > 0) {
        // Out of the index: an area anywhere (the last one too), so that chunks shrink and go.
        const j = rnd(keys.length);
        expect(index.find(keys[j])).toBe(true);
        index.deleteAt(index.posChunk, index.posIndex);
        keys.splice(j, 1);
        continue;
      }
      // Areas of one or two pages with gaps; an append mostly, sometimes into a gap below the last.
      const len = 4096 * (1 + rnd(2));
      let k: number;
      if (rnd(4) === 0 && keys.length > 1) {
        const j = rnd(keys.length - 1);
        k = keys[j] + 3 * 4096;
        if (k + len > keys[j + 1] || keys[j + 1] - keys[j] < 5 * 4096) continue;
      } else {
        k = next + 4096 * rnd(3);
        next = k + len;
      }
      const maxLast = index.maxLast();
      const c = index.posChunk;
      const i = index.posIndex;
      const appends = index.appendsAt(k);
      expect(appends).toBe(k > maxLast);
      if (appends) {
        // The position find() gives (the last area; index 0 of chunk 0 in an empty index).
        const at = [index.posChunk, index.posIndex];
        expect(index.find(k)).toBe(at[1] >= 0);
        expect([index.posChunk, index.posIndex]).toEqual(at);
      } else {
        expect([index.posChunk, index.posIndex]).toEqual([c, i]);
        expect(index.find(k)).toBe(true);
      }
      index.insertCompactAt(index.posChunk, index.posIndex + 1, k, k + len - 1, mm, 0, false, -1, 1);
      keys.push(k);
      keys.sort((a, b) => a - b);
    }
    expect(keys.length).toBeGreaterThan(600);
    expect(index.chunkCount).toBeGreaterThan(4);
    // Every key in order where find() puts it; appendsAt refuses each key at or below the last IOVA.
    for (const k of keys) expect(index.appendsAt(k)).toBe(false);
    expect(index.appendsAt(index.maxLast())).toBe(false);
    expect(index.appendsAt(index.maxLast() + 1)).toBe(true);
  });
});
