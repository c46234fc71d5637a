import { describe, expect, it } from 'vitest';
import { FrameAllocator, PAGE_SIZE, PhysicalMemory, SLAB_FRAME_BITS } from './physical.js';

const SLAB_FRAMES = 2 ** SLAB_FRAME_BITS;

describe('PhysicalMemory slabs', () => {
  it('backs the chunks of one slab with one array: slabWords sees what chunkWords and write put there', () => {
    const mem = new PhysicalMemory();
    expect(mem.slabWords(0)).toBeUndefined();
    // Frame 1000 is in chunk 1 of slab 0; frame 3 * 8192 + 700 in chunk 1 of slab 3.
    for (const pfn of [1000, 3 * SLAB_FRAMES + 700]) {
      const c = mem.chunkWords(pfn);
      const base = PhysicalMemory.frameWordBase(pfn);
      c[base + 6] = 0xdeadbeef;
      const slab = mem.slabWords(Math.floor(pfn / SLAB_FRAMES))!;
      expect(slab).toBeDefined();
      const w = (pfn % SLAB_FRAMES) * 1024;
      expect(slab[w + 6]).toBe(0xdeadbeef);
      slab[w + 7] = 0x12345678;
      expect(mem.readU64(pfn, 3)).toBe(0x12345678deadbeefn);
    }
    // Chunks of a slab that nothing backed yet read as zero through the slab, and still report unbacked.
    expect(mem.chunkIfBacked(2 * 512)).toBeUndefined();
    expect(mem.slabWords(0)![2 * 512 * 1024]).toBe(0);
    expect(mem.slabWords(1)).toBeUndefined();
    expect(mem.slabWords(-1)).toBeUndefined();
    expect(mem.slabWords(2 ** 40)).toBeUndefined();
  });

  it('copies whole and partial frames of a chunk at an offset inside its slab', () => {
    const mem = new PhysicalMemory();
    // Frame 513 sits 1 frame into chunk 1, which starts 2 MiB into slab 0.
    const pa = 513 * PAGE_SIZE;
    const page = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 7) & 255);
    mem.write(pa, page);
    const back = new Uint8Array(PAGE_SIZE);
    mem.read(pa, back);
    expect(back).toEqual(page);
    // A partial copy (more than the byte-by-byte limit) across two frames of the chunk.
    const part = new Uint8Array(300).fill(0x5a);
    mem.write(pa + PAGE_SIZE - 100, part);
    const got = new Uint8Array(300);
    mem.read(pa + PAGE_SIZE - 100, got);
    expect(got).toEqual(part);
    // The neighbouring frames of chunk 0 and the bytes before the write are untouched.
    const before = new Uint8Array(PAGE_SIZE - 100);
    mem.read(pa, before);
    expect(before).toEqual(page.subarray(0, PAGE_SIZE - 100));
    const prev = new Uint8Array(PAGE_SIZE);
    mem.read(512 * PAGE_SIZE - PAGE_SIZE, prev);
    expect(prev.every((b) => b === 0)).toBe(true);
    expect(mem.reservedBytes).toBe(2 * 1024 * 1024);
  });

  it('small reads (a word of DMA) take the bytes from the chunk words at any offset and length, as a view would', () => {
    const mem = new PhysicalMemory();
    const pfn = 3 * SLAB_FRAMES + 77;
    const page = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 13 + 5) & 255);
    mem.write(pfn * PAGE_SIZE, page);
    // Offsets in the first and last words of the frame (whole words and not), every length up to past the
    // byte-by-byte limit.
    for (const off of [0, 1, 2, 3, 4, 5, 4088, 4090, 4092, 4093, 4095]) {
      for (let n = 1; n <= Math.min(70, PAGE_SIZE - off); n++) {
        const out = new Uint8Array(n + 2).fill(0xee);
        mem.read(pfn * PAGE_SIZE + off, out, 1, n);
        expect([...out], `offset ${off}, ${n} bytes`).toEqual([0xee, ...page.subarray(off, off + n), 0xee]);
      }
    }
    // A few bytes across a frame boundary, one frame never written (it reads as zero).
    const edge = new Uint8Array(8);
    mem.read((pfn + 1) * PAGE_SIZE - 4, edge);
    expect([...edge]).toEqual([...page.subarray(PAGE_SIZE - 4), 0, 0, 0, 0]);
  });

  it('read and readInFrame give the bytes written, wherever the frame is: dense, sparse, never backed (random)', () => {
    const mem = new PhysicalMemory();
    // Frames in a slab, in the last dense chunk, above the dense region (a Map chunk) and one never written.
    const frames = [5 * SLAB_FRAMES + 3, 2 ** 25 - 1, 2 ** 25 + 9, 2 ** 33 + 1];
    const shadow = new Map<number, Uint8Array>();
    for (const pfn of frames.slice(0, 3)) {
      const page = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 7 + pfn) & 255);
      mem.write(pfn * PAGE_SIZE, page);
      shadow.set(pfn, page);
    }
    const byte = (pfn: number, off: number) => shadow.get(pfn)?.[off] ?? 0;
    let x = 2463534242 | 0;
    const next = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    for (let i = 0; i < 3000; i++) {
      const pfn = frames[next() % frames.length];
      // Lengths around the small-copy limit and whole pages, offsets aligned and not.
      const length = [4, 8, 12, 64, 68, 3, 1, 4096, 100, 0][next() % 10];
      const off = length === 4096 ? 0 : next() % 2 ? (next() % (4096 - length + 1)) & ~3 : next() % (4096 - length + 1);
      const out = new Uint8Array(length + 2).fill(0xee);
      if (next() % 2) mem.readInFrame(pfn, off, out, 1, length);
      else mem.read(pfn * PAGE_SIZE + off, out, 1, length);
      const want = [0xee, ...Array.from({ length }, (_, k) => byte(pfn, off + k)), 0xee];
      expect([...out], `frame ${pfn} offset ${off}, ${length} bytes`).toEqual(want);
    }
    // readInFrame of bytes that do not lie in the frame reads what read() reads there.
    const across = new Uint8Array(8);
    mem.readInFrame(frames[0], 4092, across, 0, 8);
    expect([...across]).toEqual([...shadow.get(frames[0])!.subarray(4092), 0, 0, 0, 0]);
  });

  it('zeroRun clears every written frame of a run, in stretches around frames never touched', () => {
    const mem = new PhysicalMemory();
    const page = new Uint8Array(PAGE_SIZE).fill(0xa5);
    // Frames 600, 601 and 640 written; 602..639 never touched, in the same chunk.
    for (const pfn of [600, 601, 640]) mem.write(pfn * PAGE_SIZE, page);
    const backed = mem.backedBytes;
    mem.zeroRun(590, 60);
    const got = new Uint8Array(PAGE_SIZE);
    for (const pfn of [600, 601, 620, 640]) {
      mem.read(pfn * PAGE_SIZE, got);
      expect(got.every((b) => b === 0)).toBe(true);
    }
    // Zeroing is not a write: nothing became touched.
    expect(mem.backedBytes).toBe(backed);
    // A written frame at the run's first and last position, and a single frame, are cleared too.
    mem.write(590 * PAGE_SIZE, page);
    mem.write(649 * PAGE_SIZE, page);
    mem.zeroRun(590, 60);
    mem.read(590 * PAGE_SIZE, got);
    expect(got.every((b) => b === 0)).toBe(true);
    mem.read(649 * PAGE_SIZE, got);
    expect(got.every((b) => b === 0)).toBe(true);
    mem.write(700 * PAGE_SIZE, page);
    mem.zeroFrame(700);
    mem.read(700 * PAGE_SIZE, got);
    expect(got.every((b) => b === 0)).toBe(true);
  });
});

describe('FrameAllocator.releaseRun', () => {
  it('frees a run in either direction as release of each frame in that order would, zeroed', () => {
    const page = new Uint8Array(PAGE_SIZE).fill(0x5a);
    const got = new Uint8Array(PAGE_SIZE);
    for (const [from, to] of [
      [0x100, 0x107],
      [0x107, 0x100],
    ]) {
      const mems = [new PhysicalMemory(), new PhysicalMemory()];
      const [one, run] = mems.map((m) => new FrameAllocator(m));
      for (let k = 0; k < 2; k++) {
        for (let i = 0; i < 10; i++) [one, run][k].alloc();
        // Written frames; 0x102, 0x103, 0x105, 0x106 never written.
        for (const pfn of [0x100, 0x101, 0x104, 0x107]) mems[k].write(pfn * PAGE_SIZE, page);
      }
      const step = to >= from ? 1 : -1;
      for (let p = from; p !== to + step; p += step) one.release(p);
      run.releaseRun(from, to);
      expect(run.framesInUse).toBe(2);
      expect(one.framesInUse).toBe(2);
      for (let p = 0x100; p <= 0x107; p++) {
        mems[1].read(p * PAGE_SIZE, got);
        expect(got.every((b) => b === 0)).toBe(true);
      }
      // The free list gives the same frames back in the same order.
      for (let i = 0; i < 8; i++) expect(run.alloc()).toBe(one.alloc());
    }
  });
});
