import { describe, expect, it } from 'vitest';
import { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import { HostProcess } from '../memory/process.js';
import { IoptPages } from './pages.js';

function userPages(npages: number): { pages: IoptPages; proc: HostProcess } {
  const mem = new PhysicalMemory();
  const proc = new HostProcess(mem, new FrameAllocator(mem));
  const va = proc.mmap(npages * 4096);
  return { pages: new IoptPages(npages, true, proc, { kind: 'user', mm: proc, firstPage: Number(va / 4096n) }), proc };
}

describe('IoptPages pin counts', () => {
  // 2 and 64 pages keep plain arrays, 65 and 5000 typed arrays (and 5000 spans two chunks).
  it.each([2, 64, 65, 5000])('pins, counts and unpins overlapping ranges of %i pages', (n) => {
    const { pages, proc } = userPages(n);
    pages.pin(0, n);
    const mid = Math.floor(n / 2);
    pages.pin(mid, n - mid);
    expect(pages.npinned).toBe(n);
    expect(proc.lockedPages).toBe(n);
    expect(pages.pinCount(mid)).toBe(2);
    const frames = new Float64Array(n);
    pages.framesOf(0, n, frames);
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
