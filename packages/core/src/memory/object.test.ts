import { describe, expect, it } from 'vitest';
import { FrameAllocator, FrameRuns, PhysicalMemory } from './physical.js';
import { MemoryObject } from './process.js';

function object(pages: number): { obj: MemoryObject; frames: FrameAllocator; mem: PhysicalMemory } {
  const mem = new PhysicalMemory();
  return { obj: new MemoryObject(pages, 'anon'), frames: new FrameAllocator(mem), mem };
}

describe('MemoryObject page index', () => {
  it('faults a range in as runs of consecutive frames, touched once each', () => {
    const { obj, frames, mem } = object(2048);
    const runs = new FrameRuns();
    expect(obj.faultRuns(100, 1500, frames, runs)).toBe(true);
    expect(runs.pages).toBe(1500);
    // A fresh allocator hands out consecutive frames, so the whole range is one run.
    expect(runs.length).toBe(1);
    expect(frames.framesInUse).toBe(1500);
    expect(mem.backedBytes).toBe(1500 * 4096);
    for (const i of [100, 511, 512, 1599]) expect(obj.frame(i, frames, false)).toBe(runs.first[0] + i - 100);
    expect(obj.frame(99, frames, false)).toBe(0);
    expect(obj.frame(1600, frames, false)).toBe(0);
    // Faulting the range again takes no frame and gives the same run.
    const again = new FrameRuns();
    obj.faultRuns(100, 1500, frames, again);
    expect([again.length, again.first[0], frames.framesInUse]).toEqual([1, runs.first[0], 1500]);
  });

  it('keeps frames exact when pages are faulted in out of order', () => {
    const { obj, frames } = object(600);
    const seen = new Map<number, number>();
    for (const i of [5, 4, 3, 520, 7, 6, 511, 0]) seen.set(i, obj.frame(i, frames, true));
    // Backwards extends a run from below; a page after a gap turns the block into one frame per page.
    for (const [i, pfn] of seen) expect(obj.frame(i, frames, false)).toBe(pfn);
    const runs = new FrameRuns();
    obj.faultRuns(0, 600, frames, runs);
    expect(runs.pages).toBe(600);
    for (const [i, pfn] of seen) expect(runs.frameAt(i)).toBe(pfn);
    expect(new Set(Array.from({ length: 600 }, (_, i) => runs.frameAt(i))).size).toBe(600);
  });

  it('drops the pages past a shrunk end and faults them in fresh after growing back', () => {
    const { obj, frames } = object(1024);
    const runs = new FrameRuns();
    obj.faultRuns(0, 1024, frames, runs);
    obj.resize(700);
    expect(obj.frame(699, frames, false)).toBe(runs.first[0] + 699);
    obj.resize(1024);
    expect(obj.frame(700, frames, false)).toBe(0);
    expect(obj.frame(1023, frames, false)).toBe(0);
  });

  it('reports exhausted memory and keeps what was faulted in', () => {
    const mem = new PhysicalMemory();
    const frames = new FrameAllocator(mem, 0x100, 0x100 + 10);
    const obj = new MemoryObject(64, 'anon');
    const runs = new FrameRuns();
    expect(obj.faultRuns(0, 64, frames, runs)).toBe(false);
    expect(runs.pages).toBe(10);
    expect(obj.frame(9, frames, false)).toBe(0x100 + 9);
    expect(obj.frame(10, frames, false)).toBe(0);
  });
});
