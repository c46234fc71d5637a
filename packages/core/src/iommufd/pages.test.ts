import { describe, expect, it } from 'vitest';
import { FrameAllocator, FrameRuns, PhysicalMemory } from '../memory/physical.js';
import { HostProcess } from '../memory/process.js';
import { IoptPages } from './pages.js';
import { xorshiftRandom } from '../__tests__/helpers.js';

function userPages(npages: number): { pages: IoptPages; proc: HostProcess } {
  const mem = new PhysicalMemory();
  const proc = new HostProcess(mem, new FrameAllocator(mem));
  const va = proc.mmap(npages * 4096);
  return { pages: new IoptPages(npages, true, proc, { kind: 'user', mm: proc, firstPage: Number(va / 4096n) }), proc };
}

describe('IoptPages pin counts', () => {
  it.each([2, 64, 65, 5000])('pins, counts and unpins overlapping ranges of %i pages', (n) => {
    const { pages, proc } = userPages(n);
    pages.pin(0, n);
    const mid = Math.floor(n / 2);
    pages.pin(mid, n - mid);
    expect(pages.npinned).toBe(n);
    expect(proc.lockedPages).toBe(n);
    expect(pages.pinCount(mid)).toBe(2);
    const runs = new FrameRuns();
    pages.pinnedRuns(0, n, runs);
    expect(runs.pages).toBe(n);
    const frames = new Float64Array(n);
    for (let i = 0; i < n; i++) frames[i] = runs.frameAt(i);
    for (let i = 0; i < n; i++) expect(frames[i]).toBe(pages.frame(i));
    expect(frames.every((f) => f > 0)).toBe(true);
    pages.unpin(0, n);
    expect(pages.npinned).toBe(n - mid);
    expect(pages.frame(0)).toBe(0);
    expect(pages.frame(n - 1)).toBe(frames[n - 1]);
    pages.unpin(mid, n - mid);
    expect(pages.npinned).toBe(0);
    expect(proc.lockedPages).toBe(0);
    expect(pages.pinCount(n - 1)).toBe(0);
    // Pinned again after every chunk was dropped: the same frames come back (the pages stay faulted in).
    pages.pin(n - 1, 1);
    expect(pages.frame(n - 1)).toBe(frames[n - 1]);
    expect(pages.sourceFrame(0)).toBe(frames[0]);
  });
});

describe('IoptPages pin segments', () => {
  it('keeps memory faulted in order as one segment, split and merged again by a partial pin', () => {
    const { pages, proc } = userPages(4096);
    pages.pin(0, 4096);
    expect(pages.segments).toBe(1);
    const base = pages.frame(0);
    pages.pin(100, 10);
    // [0, 100) one pin, [100, 110) two, [110, 4096) one.
    expect(pages.segments).toBe(3);
    expect(pages.pinCount(99)).toBe(1);
    expect(pages.pinCount(100)).toBe(2);
    expect(pages.pinCount(109)).toBe(2);
    expect(pages.pinCount(110)).toBe(1);
    expect(pages.frame(105)).toBe(base + 105);
    // Contiguous frames of a mapping come back as one run even across segments.
    const runs = new FrameRuns();
    pages.pinnedRuns(0, 4096, runs);
    expect(runs.length).toBe(1);
    pages.unpin(100, 10);
    expect(pages.segments).toBe(1);
    expect(proc.lockedPages).toBe(4096);
    pages.unpin(0, 4096);
    expect(pages.segments).toBe(0);
    expect(proc.lockedPages).toBe(0);
  });

  it('keeps scattered frames exact, page by page', () => {
    const { pages, proc } = userPages(64);
    // Fault pages in backwards: no two neighbours get consecutive frames.
    for (let i = 63; i >= 0; i -= 2) pages.sourceFrame(i);
    const expected = Array.from({ length: 64 }, (_, i) => pages.sourceFrame(i));
    pages.pin(0, 64);
    expect(Array.from({ length: 64 }, (_, i) => pages.frame(i))).toEqual(expected);
    pages.pin(10, 20);
    pages.unpin(0, 15);
    expect(pages.npinned).toBe(54);
    expect(proc.lockedPages).toBe(54);
    for (let i = 0; i < 64; i++) {
      expect(pages.pinCount(i)).toBe(i < 10 ? 0 : i < 15 ? 1 : i < 30 ? 2 : 1);
      expect(pages.frame(i)).toBe(i < 10 ? 0 : expected[i]);
    }
    pages.unpin(15, 49);
    pages.unpin(10, 20);
    expect(pages.npinned).toBe(0);
    expect(pages.segments).toBe(0);
  });

  it('pins across holes between pinned segments and charges only the new pages', () => {
    const { pages, proc } = userPages(100);
    pages.pin(10, 5);
    pages.pin(50, 5);
    pages.pin(0, 100);
    expect(pages.npinned).toBe(100);
    expect(proc.lockedPages).toBe(100);
    expect(pages.pinCount(12)).toBe(2);
    expect(pages.pinCount(30)).toBe(1);
    pages.unpin(0, 100);
    expect(pages.npinned).toBe(10);
    pages.unpin(10, 5);
    pages.unpin(50, 5);
    expect(proc.lockedPages).toBe(0);
  });

  it('matches a per-page model over random pins and unpins', () => {
    const n = 300;
    const { pages, proc } = userPages(n);
    const model = new Array<number>(n).fill(0);
    const rnd = xorshiftRandom(2463534242);
    const frameOf = Array.from({ length: n }, (_, i) => (rnd(3) === 0 ? pages.sourceFrame(i) : 0));
    for (let step = 0; step < 2000; step++) {
      const start = rnd(n);
      const len = 1 + rnd(Math.min(40, n - start));
      const pinned = [];
      for (let i = start; i < start + len; i++) pinned.push(model[i]);
      if (rnd(2) === 0) {
        pages.pin(start, len);
        for (let i = start; i < start + len; i++) model[i]++;
      } else {
        pages.unpin(start, len);
        for (let i = start; i < start + len; i++) if (model[i] > 0) model[i]--;
      }
      const live = model.filter((c) => c > 0).length;
      expect(pages.npinned).toBe(live);
      expect(proc.lockedPages).toBe(live);
    }
    for (let i = 0; i < n; i++) {
      expect(pages.pinCount(i)).toBe(model[i]);
      if (model[i] > 0) expect(pages.frame(i)).toBe(pages.sourceFrame(i));
      if (frameOf[i] !== 0) expect(pages.sourceFrame(i)).toBe(frameOf[i]);
    }
  });
});
