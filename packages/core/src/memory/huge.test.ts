import { describe, expect, it } from 'vitest';
import { FrameAllocator, PhysicalMemory } from './physical.js';
import { HostProcess } from './process.js';
import { IommufdError } from '../uapi/errno.js';

const GIB_PAGES = 262144;

describe('MAP_HUGETLB memory', () => {
  it('backs each 1 GiB huge page with one aligned run of frames and counts them as touched', () => {
    const mem = new PhysicalMemory();
    const frames = new FrameAllocator(mem);
    const proc = new HostProcess(mem, frames);
    const va = proc.mmap(2 * 2 ** 30, { hugePageSize: 2 ** 30 });
    expect(va % BigInt(2 ** 30)).toBe(0n);
    const page = Number(va / 4096n);
    const out = new Float64Array(4);
    proc.resolvePages(page + GIB_PAGES - 2, 4, true, out);
    const first = out[0] - (GIB_PAGES - 2);
    expect(first % GIB_PAGES).toBe(0);
    expect(out[1]).toBe(out[0] + 1);
    // The second huge page is another aligned run, not necessarily adjacent.
    expect(out[2] % GIB_PAGES).toBe(0);
    expect(out[3]).toBe(out[2] + 1);
    expect(frames.framesInUse).toBe(2 * GIB_PAGES);
    expect(mem.backedBytes).toBe(2 * 2 ** 30);
    // The frames skipped for alignment are handed out later, first.
    expect(frames.alloc()).toBeLessThan(first);
  });

  it('rounds the length up to the huge page and keeps the data of a page', () => {
    const mem = new PhysicalMemory();
    const proc = new HostProcess(mem, new FrameAllocator(mem));
    const va = proc.mmap(4096, { hugePageSize: 2 << 20 });
    proc.poke(va + BigInt((2 << 20) - 8), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    expect([...proc.peek(va + BigInt((2 << 20) - 8), 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(() => proc.peek(va + BigInt(2 << 20), 1)).toThrow(IommufdError);
  });

  it('refuses an unsupported huge page size', () => {
    const mem = new PhysicalMemory();
    const proc = new HostProcess(mem, new FrameAllocator(mem));
    expect(() => proc.mmap(1 << 20, { hugePageSize: 1 << 20 })).toThrow(/MAP_HUGETLB/);
  });

  it('zeroes a run over frames written before', () => {
    const mem = new PhysicalMemory();
    const frames = new FrameAllocator(mem, 512);
    mem.write(1024 * 4096, new Uint8Array([9]));
    const run = frames.allocRun(512);
    expect(run).toBe(512);
    const got = new Uint8Array(1);
    mem.write(1024 * 4096 + 1, new Uint8Array([9]));
    const again = new FrameAllocator(mem, 1024).allocRun(512);
    mem.read(again * 4096, got);
    expect(got[0]).toBe(0);
    mem.read(again * 4096 + 1, got);
    expect(got[0]).toBe(0);
  });
});

describe('memfd_create(MFD_HUGETLB)', () => {
  const HUGE = 2 << 20;
  const rig = () => {
    const mem = new PhysicalMemory();
    const frames = new FrameAllocator(mem);
    return { frames, proc: new HostProcess(mem, frames) };
  };
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return e instanceof IommufdError ? e.code : String(e);
    }
    return 'ok';
  };

  it('is sized, truncated and mapped in whole huge pages, and not written with write(2)', () => {
    const { proc } = rig();
    expect(code(() => proc.memfd(HUGE + 4096, { hugePageSize: HUGE }))).toBe('EINVAL');
    expect(code(() => proc.memfd(HUGE, { hugePageSize: 64 << 10 }))).toBe('EINVAL');
    const fd = proc.memfd(2 * HUGE, { hugePageSize: HUGE });
    expect(code(() => proc.ftruncate(fd, HUGE / 2))).toBe('EINVAL');
    expect(code(() => proc.ftruncate(fd, HUGE))).toBe('ok');
    expect(code(() => proc.write(fd, Uint8Array.of(1)))).toBe('EINVAL');
    expect(code(() => proc.mmap(HUGE, { fd, offset: 4096 }))).toBe('EINVAL');
    // A writable mapping past the end grows the file, in huge pages.
    const va = proc.mmap(4096, { fd, offset: HUGE });
    expect(va % BigInt(HUGE)).toBe(0n);
    proc.poke(va + 8n, Uint8Array.of(7));
    expect([...proc.read(fd, 16)].length).toBe(16);
  });

  it('backs each huge page with one aligned run of frames, shared by every mapping of the file', () => {
    const { proc } = rig();
    const fd = proc.memfd(2 * HUGE, { hugePageSize: HUGE });
    const a = proc.mmap(2 * HUGE, { fd });
    const b = proc.mmap(HUGE, { fd, offset: HUGE });
    proc.poke(b + 4096n, Uint8Array.of(0x5a));
    expect([...proc.peek(a + BigInt(HUGE) + 4096n, 1)]).toEqual([0x5a]);
    const out = new Float64Array(2);
    proc.resolvePages(Number(a / 4096n) + 512, 2, true, out);
    expect(out[0] % 512).toBe(0);
    expect(out[1]).toBe(out[0] + 1);
  });
});
