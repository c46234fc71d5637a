/**
 * The IOTLB's key compares: a hit needs the full page number, the tag and the PASID; nothing else may
 * alias (pages 2^32 apart share a set, keys that are not int32 never hit), and the statistics counters.
 */
import { describe, expect, it } from 'vitest';
import { Iotlb } from './iotlb.js';

const out = () => ({ pfn: 0, perm: 0 });

describe('Iotlb', () => {
  it('hits only on the same page, tag and PASID, with enough permission', () => {
    const t = new Iotlb(4);
    t.insert(7, -1, 0x1234, 0x999, 1);
    const o = out();
    expect(t.hit(7, -1, 0x1234, 1, o)).toBe(true);
    expect(o).toEqual({ pfn: 0x999, perm: 1 });
    const o2 = out();
    expect(t.hit(7, -1, 0x1234, 3, o2)).toBe(false); // write not granted: the unit re-walks
    expect(o2).toEqual({ pfn: 0, perm: 0 });
    expect(t.hit(8, -1, 0x1234, 1, out())).toBe(false);
    expect(t.hit(7, 0, 0x1234, 1, out())).toBe(false);
    expect(t.hit(7, -1, 0x1235, 1, out())).toBe(false);
    // Same low 32 bits, same set: still a miss, the full page number is compared.
    expect(t.hit(7, -1, 0x1234 + 2 ** 32, 1, out())).toBe(false);
    expect(t.lookup(7, -1, 0x1234)).toBe(0x999);
    expect(t.lastPerm).toBe(1);
  });

  it('keeps page numbers above 2^32 exact', () => {
    const t = new Iotlb(4);
    const big = 2 ** 52 + 2 ** 33 + 5;
    t.insert(1, 3, big, 2 ** 40 + 1, 3);
    const o = out();
    expect(t.hit(1, 3, big, 3, o)).toBe(true);
    expect(o.pfn).toBe(2 ** 40 + 1);
    expect(t.hit(1, 3, big - 2 ** 32, 3, out())).toBe(false);
    expect(t.hit(1, 3, 5, 3, out())).toBe(false);
    t.flushRange(1, 3, big, 1);
    expect(t.hit(1, 3, big, 3, out())).toBe(false);
  });

  it('never caches a tag or PASID that is not an int32, so such keys cannot alias a stored one', () => {
    const t = new Iotlb(4);
    t.insert(1, -1, 10, 20, 1);
    t.insert(2 ** 32 + 1, -1, 10, 30, 1);
    t.insert(1, 2 ** 32 - 1, 11, 30, 1);
    expect(t.hit(2 ** 32 + 1, -1, 10, 1, out())).toBe(false);
    expect(t.hit(1, 2 ** 32 - 1, 10, 1, out())).toBe(false);
    expect(t.hit(1, 2 ** 32 - 1, 11, 1, out())).toBe(false);
    expect(t.hit(1.5, -1, 10, 1, out())).toBe(false);
    const o = out();
    expect(t.hit(1, -1, 10, 1, o)).toBe(true);
    expect(o.pfn).toBe(20);
  });

  it('counts misses always and hits only with statistics on', () => {
    const t = new Iotlb(4);
    t.insert(1, -1, 1, 2, 1);
    t.hit(1, -1, 1, 1, out());
    t.hit(1, -1, 2, 1, out());
    expect([t.hits, t.misses]).toEqual([0, 1]);
    t.statistics = true;
    expect(t.statistics).toBe(true);
    t.hit(1, -1, 1, 1, out());
    t.lookup(1, -1, 1);
    expect([t.hits, t.misses]).toEqual([2, 1]);
  });

  it('does nothing while disabled, and invalidations still apply', () => {
    const t = new Iotlb(4);
    t.insert(1, -1, 1, 2, 1);
    t.enabled = false;
    expect(t.enabled).toBe(false);
    expect(t.hit(1, -1, 1, 1, out())).toBe(false);
    expect(t.lookup(1, -1, 1)).toBe(-1);
    t.insert(1, -1, 3, 4, 1);
    t.flushTag(1);
    t.enabled = true;
    expect(t.hit(1, -1, 1, 1, out())).toBe(false);
    expect(t.hit(1, -1, 3, 1, out())).toBe(false);
    expect(t.occupancy).toBe(0);
  });

  it('flushRange for every PASID, flushTag and flushAll', () => {
    const t = new Iotlb(6);
    for (let p = 0; p < 8; p++) t.insert(1, p === 0 ? -1 : 5, 100 + p, p, 1);
    t.insert(2, -1, 200, 1, 1);
    t.flushRangeAllPasids(1, 100, 4);
    expect(t.occupancy).toBe(5);
    t.flushRange(1, 5, 0, 1 << 20); // whole-array path
    expect(t.occupancy).toBe(1);
    t.flushAll();
    expect(t.occupancy).toBe(0);
  });
  it('compares pages as two int32 words: pages and output pages around 2^31, 2^32 and 2^53, fractions and negatives', () => {
    const t = new Iotlb(4);
    const pages = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 7, 2 ** 53 - 1];
    for (const p of pages) {
      const outPfn = p === 0 ? 2 ** 31 : p + 1;
      t.flushAll();
      t.insert(3, 9, p, outPfn, 3);
      const o = out();
      expect(t.hit(3, 9, p, 1, o)).toBe(true);
      expect(o).toEqual({ pfn: outPfn, perm: 3 });
      expect(t.lookup(3, 9, p)).toBe(outPfn);
      // Pages with the same low or high word, or in the same set, miss.
      for (const q of [p + 2 ** 32, p - 2 ** 32, p ^ 1, p + 0.5, -p - 1]) if (q !== p) expect(t.hit(3, 9, q, 1, out())).toBe(false);
      t.flushRange(3, 9, p, 1);
      expect(t.hit(3, 9, p, 1, out())).toBe(false);
    }
    // What is not an integer in [0, 2^53) is not cached.
    for (const p of [-1, -(2 ** 32), 1.5, 2 ** 53, 2 ** 63 - 2 ** 32, Number.NaN]) {
      t.insert(3, 9, p, 5, 3);
      expect(t.hit(3, 9, p, 1, out())).toBe(false);
    }
    expect(t.occupancy).toBe(0);
    // A page at or above 2^53 with a live entry's low word, in its set (2^60 / 2^32 is 0 in the low 4 bits).
    t.insert(3, 9, 2048, 5, 3);
    expect(t.hit(3, 9, 2 ** 60 + 2048, 1, out())).toBe(false);
    // An emptied slot keeps its old key words: nothing may hit it, whatever the page.
    t.flushAll();
    for (const p of [2048, 2 ** 63 - 2 ** 32 + 2048, (2 ** 31 - 1) * 2 ** 32 + 2048]) expect(t.hit(3, 9, p, 1, out())).toBe(false);
  });

  it('a slot refilled with an output page on the other side of 2^31 gives the new one (the float word is written only for pages that need it)', () => {
    const t = new Iotlb(4);
    // Pages 0 and 16 share a slot of a 16-entry IOTLB (same tag); each insert replaces the entry.
    const outs = [2 ** 31, 7, 2 ** 40 + 3, 2 ** 31 - 1, 0, 2 ** 52 - 1, 9];
    outs.forEach((outPfn, i) => {
      const page = (i % 2) * 16;
      t.insert(4, -1, page, outPfn, 3);
      const o = out();
      expect(t.hit(4, -1, page, 1, o)).toBe(true);
      expect(o.pfn).toBe(outPfn);
      expect(t.lookup(4, -1, page)).toBe(outPfn);
      expect(t.hit(4, -1, 16 - page, 1, out())).toBe(false);
    });
    expect(t.occupancy).toBe(1);
  });

  it('fills a page below 2^32 to an int32 output page by the short path, the same entry as any other fill', () => {
    const t = new Iotlb(4);
    // Pages from 2^31 to 2^32 - 1 are not int32s: their low key word wraps, their high word is 0.
    for (const p of [0, 5, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 16, 2 ** 32 - 1]) {
      for (const outPfn of [0, 9, 2 ** 31 - 1]) {
        t.flushAll();
        t.insert(6, -1, p, outPfn, 3);
        const o = out();
        expect(t.hit(6, -1, p, 1, o)).toBe(true);
        expect(o).toEqual({ pfn: outPfn, perm: 3 });
        expect(t.lookup(6, -1, p)).toBe(outPfn);
        // The same low word 2^32 away, the other side of 2^31, another tag or PASID: misses.
        for (const q of [p + 2 ** 32, p - 2 ** 32, p ^ 2 ** 31, (p | 0) === p ? p + 2 ** 32 : p - 2 ** 31]) if (q !== p) expect(t.hit(6, -1, q, 1, out())).toBe(false);
        expect(t.hit(7, -1, p, 1, out())).toBe(false);
        expect(t.hit(6, 0, p, 1, out())).toBe(false);
        expect(t.occupancy).toBe(1);
        t.flushRange(6, -1, p, 1);
        expect(t.occupancy).toBe(0);
      }
    }
    // The keys insert ignores, whatever the pages: a tag or PASID that is not an int32, a disabled IOTLB.
    t.insert(2 ** 31, -1, 5, 9, 3);
    t.insert(6, 2 ** 32, 5, 9, 3);
    t.enabled = false;
    t.insert(6, -1, 5, 9, 3);
    t.enabled = true;
    expect(t.occupancy).toBe(0);
  });

  it('flushRange over the whole array finds pages above 2^32', () => {
    const t = new Iotlb(4);
    const big = 2 ** 40;
    for (let i = 0; i < 8; i++) t.insert(1, -1, big + i, i, 1);
    t.insert(1, -1, 7, 7, 1);
    t.flushRange(1, -1, big + 2, 1 << 10);
    expect(t.occupancy).toBe(3);
    expect(t.hit(1, -1, big + 1, 1, out())).toBe(true);
    expect(t.hit(1, -1, big + 2, 1, out())).toBe(false);
    expect(t.hit(1, -1, 7, 1, out())).toBe(true);
  });
});
