/**
 * Host physical memory: a sparse 52-bit physical address space of 4 KiB frames.
 *
 * Frames are grouped in 2 MiB chunks (512 frames) whose backing store is allocated on the first
 * write; reads of untouched memory return zeros, as a freshly scrubbed page would. Page-table walkers
 * read PTEs as two 32-bit halves straight out of a chunk's Uint32Array (see `chunkWords`), so the hot
 * path never creates BigInts or views.
 *
 * Below 128 GiB, chunks are views into slabs: one zero-filled ArrayBuffer per 32 MiB (16 chunks, 8192
 * frames), allocated when its first chunk is. A walker reads a table entry at word `(frame & 8191) <<
 * 10` of the slab (`slabWords`): the tables of a domain sit in one slab, so a walk reads every level
 * from one flat array, with no lookup of the next table's chunk. A slab of 32 MiB is mapped by the C
 * library straight from the OS (at or above its mmap threshold), so its untouched pages cost nothing
 * resident and freeing it returns them.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const FRAMES_PER_CHUNK = 512;
const CHUNK_WORDS = (FRAMES_PER_CHUNK * PAGE_SIZE) / 4;
/** Chunks below this index live in a dense array (128 GiB of physical space); the rest in a Map. */
const DENSE_CHUNKS = 1 << 16;
/**
 * log2 of the frames of a slab (8192 frames, 32 MiB, 16 chunks): frame `pfn` is at word
 * `(pfn & 8191) << 10` of `PhysicalMemory.slabWords(pfn >> 13)`.
 */
export const SLAB_FRAME_BITS = 13;
/** Chunks per slab. */
const SLAB_CHUNKS = 1 << (SLAB_FRAME_BITS - 9);
/** Slabs of the dense region. */
const DENSE_SLABS = DENSE_CHUNKS / SLAB_CHUNKS;
/** 52-bit physical addresses: the largest page frame number plus one. */
export const MAX_PFN = 2 ** 40;
/** 32-bit words of a chunk's touched bitmap (one bit per frame). */
const TOUCHED_WORDS = FRAMES_PER_CHUNK / 32;
/** The touched bitmap of a chunk every frame of which is touched: shared, never written (no bit is clear). */
const ALL_TOUCHED = new Uint32Array(TOUCHED_WORDS).fill(0xffffffff);

/**
 * Runs of physically contiguous frames, (first frame, count) pairs in order, in growable typed arrays:
 * what resolving or pinning a range of pages produces instead of one frame per page, so that a
 * 1 GiB huge page is one entry. `push` merges a run that continues the previous one. Reused (`clear`)
 * rather than reallocated.
 */
export class FrameRuns {
  /** First frame of each run (entries [0, length) are valid). */
  first = new Float64Array(16);
  /** Frames in each run. */
  count = new Float64Array(16);
  /** Runs held. */
  length = 0;
  /** Pages in all runs. */
  pages = 0;

  /** Empties the list, keeping its storage. */
  clear(): void {
    this.length = 0;
    this.pages = 0;
  }

  /** Appends a run of `count` frames from `first` (merged into the last run when it continues it). */
  push(first: number, count: number): void {
    const n = this.length;
    this.pages += count;
    if (n > 0 && this.first[n - 1] + this.count[n - 1] === first) {
      this.count[n - 1] += count;
      return;
    }
    if (n === this.first.length) {
      const f = new Float64Array(2 * n);
      f.set(this.first);
      this.first = f;
      const c = new Float64Array(2 * n);
      c.set(this.count);
      this.count = c;
    }
    this.first[n] = first;
    this.count[n] = count;
    this.length = n + 1;
  }

  /** The frame of the `index`-th page of the runs (a linear scan: for tests and small lists). */
  frameAt(index: number): number {
    for (let i = 0; i < this.length; i++) {
      if (index < this.count[i]) return this.first[i] + index;
      index -= this.count[i];
    }
    return 0;
  }
}

/** Copies of at most this many bytes inside one frame are done byte by byte rather than through a new view. */
const SMALL_COPY = 64;

export class PhysicalMemory {
  private readonly dense: (Uint32Array | undefined)[] = [];
  /** Slabs of the dense region by slab index (frame >> SLAB_FRAME_BITS); every dense chunk is a view into one. */
  private readonly slabs: (Uint32Array | undefined)[] = [];
  private readonly sparse = new Map<number, Uint32Array>();
  /**
   * Byte views of whole frames, made on a frame's first whole-page copy and kept (per chunk, 512
   * slots): a 4 KiB DMA copies through them with no new view per page.
   */
  private readonly frameViews = new Map<number, (Uint8Array | undefined)[]>();
  private allocatedChunks = 0;
  /** One bit per frame of each chunk: the frame was handed out or written. */
  private readonly touched = new Map<number, Uint32Array>();
  private touchedFrames = 0;

  /**
   * Bytes of simulated memory in use: the frames that were handed out or written. A chunk's buffer is
   * zero-filled memory the OS commits page by page on first write, so untouched frames of a chunk cost
   * nothing resident (see `reservedBytes` for the address space reserved).
   */
  get backedBytes(): number {
    return this.touchedFrames * PAGE_SIZE;
  }

  /** Bytes of the chunks backed so far, 2 MiB each (virtual size: only touched frames are resident; a slab reserves the address space of its 16 chunks at once). */
  get reservedBytes(): number {
    return this.allocatedChunks * FRAMES_PER_CHUNK * PAGE_SIZE;
  }

  /** Records that frame `pfn` holds data (a table page, a written data page). */
  markTouched(pfn: number): void {
    const ci = Math.floor(pfn / FRAMES_PER_CHUNK);
    let t = this.touched.get(ci);
    if (t === undefined) {
      t = new Uint32Array(TOUCHED_WORDS);
      this.touched.set(ci, t);
    }
    const i = pfn - ci * FRAMES_PER_CHUNK;
    const bit = 1 << (i & 31);
    if ((t[i >>> 5] & bit) === 0) {
      t[i >>> 5] |= bit;
      this.touchedFrames++;
    }
  }

  /** markTouched of [pfn, pfn + count): whole chunks at once, whole bitmap words inside a chunk. */
  markTouchedRun(pfn: number, count: number): void {
    const end = pfn + count;
    while (pfn < end) {
      const ci = Math.floor(pfn / FRAMES_PER_CHUNK);
      const chunkEnd = Math.min(end, (ci + 1) * FRAMES_PER_CHUNK);
      let t = this.touched.get(ci);
      if (t === undefined && pfn === ci * FRAMES_PER_CHUNK && chunkEnd - pfn === FRAMES_PER_CHUNK) {
        this.touched.set(ci, ALL_TOUCHED);
        this.touchedFrames += FRAMES_PER_CHUNK;
      } else if (t !== ALL_TOUCHED) {
        if (t === undefined) {
          t = new Uint32Array(TOUCHED_WORDS);
          this.touched.set(ci, t);
        }
        let i = pfn - ci * FRAMES_PER_CHUNK;
        const stop = chunkEnd - ci * FRAMES_PER_CHUNK;
        while (i < stop) {
          const w = i >>> 5;
          const hi = Math.min(stop, (w + 1) * 32);
          // Bits [i, hi) of word w.
          const span = hi - i;
          const mask = span === 32 ? 0xffffffff : ((1 << span) - 1) << (i & 31);
          const fresh = (mask & ~t[w]) >>> 0;
          if (fresh !== 0) {
            t[w] |= fresh;
            this.touchedFrames += popcount32(fresh);
          }
          i = hi;
        }
      }
      pfn = chunkEnd;
    }
  }

  /**
   * zeroFrame of [pfn, pfn + count): one fill per stretch of touched frames. A frame never touched was
   * never written (every write marks its frame; tables are written only after their frame was handed
   * out, which marks it), so it already reads as zero. Filling it anyway would make the OS commit pages
   * that nothing uses: a fresh run of user memory that shares a chunk with page tables did, 1 MiB per GiB
   * faulted in.
   */
  zeroRun(pfn: number, count: number): void {
    const end = pfn + count;
    while (pfn < end) {
      const ci = Math.floor(pfn / FRAMES_PER_CHUNK);
      const chunkEnd = Math.min(end, (ci + 1) * FRAMES_PER_CHUNK);
      const c = this.chunkIfBacked(pfn);
      const t = this.touched.get(ci);
      if (c !== undefined && t !== undefined) {
        const base = ci * FRAMES_PER_CHUNK;
        let i = pfn - base;
        const stop = chunkEnd - base;
        while (i < stop) {
          // The stretch of frames from i with the same touched state; only touched stretches are filled.
          const on = (t[i >>> 5] >>> (i & 31)) & 1;
          let j = i + 1;
          while (j < stop && ((t[j >>> 5] >>> (j & 31)) & 1) === on) j++;
          if (on === 1) c.fill(0, i << (PAGE_SHIFT - 2), j << (PAGE_SHIFT - 2));
          i = j;
        }
      }
      pfn = chunkEnd;
    }
  }

  /** Whether frame `pfn` was ever handed out or written (an untouched frame reads as zero). */
  private isTouched(pfn: number): boolean {
    const ci = Math.floor(pfn / FRAMES_PER_CHUNK);
    const t = this.touched.get(ci);
    if (t === undefined) return false;
    const i = pfn - ci * FRAMES_PER_CHUNK;
    return ((t[i >>> 5] >>> (i & 31)) & 1) === 1;
  }

  /** The chunk holding `pfn`, or undefined when it was never written. */
  chunkIfBacked(pfn: number): Uint32Array | undefined {
    // Literals (512 FRAMES_PER_CHUNK, 65536 DENSE_CHUNKS): a module constant is a load and a hole
    // check in compiled code, and this runs on every DMA page.
    const ci = Math.floor(pfn / 512);
    return ci < 65536 ? this.dense[ci] : this.sparse.get(ci);
  }

  /** The chunk holding `pfn`, allocating zeroed backing store when needed. */
  chunkWords(pfn: number): Uint32Array {
    const ci = Math.floor(pfn / FRAMES_PER_CHUNK);
    let c = ci < DENSE_CHUNKS ? this.dense[ci] : this.sparse.get(ci);
    if (c === undefined) {
      if (pfn < 0 || pfn >= MAX_PFN || !Number.isInteger(pfn)) throw new RangeError(`pfn ${pfn} outside the 52-bit physical address space`);
      if (ci < DENSE_CHUNKS) {
        const si = Math.floor(ci / SLAB_CHUNKS);
        while (this.slabs.length < si) this.slabs.push(undefined);
        let slab = this.slabs[si];
        if (slab === undefined) this.slabs[si] = slab = new Uint32Array(SLAB_CHUNKS * CHUNK_WORDS);
        const from = (ci - si * SLAB_CHUNKS) * CHUNK_WORDS;
        c = slab.subarray(from, from + CHUNK_WORDS);
        while (this.dense.length < ci) this.dense.push(undefined);
        this.dense[ci] = c;
      } else {
        c = new Uint32Array(CHUNK_WORDS);
        this.sparse.set(ci, c);
      }
      this.allocatedChunks++;
    }
    return c;
  }

  /**
   * The words of slab `si` (frames [si << SLAB_FRAME_BITS, (si + 1) << SLAB_FRAME_BITS)), or undefined
   * when no chunk of it was ever backed or it is outside the dense region. Frame `pfn` of the slab
   * starts at word `(pfn & (2^SLAB_FRAME_BITS - 1)) << 10`. Words of chunks not yet backed read as zero
   * (nothing writes them before they are backed), as unbacked memory does.
   */
  slabWords(si: number): Uint32Array | undefined {
    return si >= 0 && si < DENSE_SLABS ? this.slabs[si] : undefined;
  }

  /** Word index of the first 32-bit word of `pfn` inside its chunk. */
  static frameWordBase(pfn: number): number {
    // (pfn & (FRAMES_PER_CHUNK - 1)) << (PAGE_SHIFT - 2), as literals (see chunkIfBacked).
    return (pfn & 511) << 10;
  }

  /** Reads the 64-bit little-endian entry `index` (0..511) of frame `pfn` as a bigint. */
  readU64(pfn: number, index: number): bigint {
    const c = this.chunkIfBacked(pfn);
    if (c === undefined) return 0n;
    const w = PhysicalMemory.frameWordBase(pfn) + index * 2;
    return (BigInt(c[w + 1]) << 32n) | BigInt(c[w]);
  }

  /** Writes `value` as the 64-bit little-endian entry `index` (0..511) of frame `pfn`, at byte offset index * 8. */

  writeU64(pfn: number, index: number, value: bigint): void {
    this.markTouched(pfn);
    const c = this.chunkWords(pfn);
    const w = PhysicalMemory.frameWordBase(pfn) + index * 2;
    c[w] = Number(value & 0xffffffffn);
    c[w + 1] = Number((value >> 32n) & 0xffffffffn);
  }

  /** Zero-fills a frame (used when a page-table page is allocated or freed); an untouched frame already reads as zero (see zeroRun). */
  zeroFrame(pfn: number): void {
    const c = this.chunkIfBacked(pfn);
    if (c === undefined || !this.isTouched(pfn)) return;
    const w = PhysicalMemory.frameWordBase(pfn);
    c.fill(0, w, w + PAGE_SIZE / 4);
  }

  /** The byte view of the whole frame `pfn` of chunk `c` (made once, then reused). */
  private frameBytes(c: Uint32Array, pfn: number): Uint8Array {
    const ci = Math.floor(pfn / FRAMES_PER_CHUNK);
    let views = this.frameViews.get(ci);
    if (views === undefined) {
      views = new Array<Uint8Array | undefined>(FRAMES_PER_CHUNK).fill(undefined);
      this.frameViews.set(ci, views);
    }
    const i = pfn - ci * FRAMES_PER_CHUNK;
    let v = views[i];
    if (v === undefined) views[i] = v = new Uint8Array(c.buffer, c.byteOffset + i * PAGE_SIZE, PAGE_SIZE);
    return v;
  }

  /** Copies `length` bytes starting at physical address `pa` into `out[outOffset..]`. */
  read(pa: number, out: Uint8Array, outOffset = 0, length = out.length - outOffset): void {
    // The frame and the offset in it from one floor: `pa % PAGE_SIZE` of an address that is not an
    // int32 compiles to the x87 remainder loop.
    let pfn = Math.floor(pa / PAGE_SIZE);
    let off = pa - pfn * PAGE_SIZE;
    let done = 0;
    while (done < length) {
      const n = Math.min(PAGE_SIZE - off, length - done);
      this.readInFrame(pfn, off, out, outOffset + done, n);
      done += n;
      pfn++;
      off = 0;
    }
  }

  /**
   * Copies the `length` bytes at byte `off` of frame `pfn` into `out[outOffset..]`, bytes that lie in
   * that frame (`off + length <= PAGE_SIZE`; anything else is read() of the same bytes). read() copies
   * through it frame by frame, and a device's DMA, which translates page by page, calls it with the
   * frame it translated to.
   *
   * Its common case, a few whole words of a backed frame below 128 GiB (a DMA of a word or a
   * descriptor), is written out here small enough for the compiler to inline it into the DMA's loop:
   * one array load for the chunk and a load per 4 bytes. Literals, not the module constants (a module
   * constant, or the class's own name, is a load and a hole check in compiled code): 64 is
   * SMALL_COPY, 4096 PAGE_SIZE, 2^25 the frames of the dense chunks, 9 and 511 the frames of a chunk,
   * 10 the words of a frame. Everything else is readInFrameSlow's.
   * @internal
   */
  readInFrame(pfn: number, off: number, out: Uint8Array, outOffset: number, length: number): void {
    if (length <= 64 && ((off | length) & 3) === 0 && off >= 0 && off + length <= 4096 && pfn >= 0 && pfn < 33554432) {
      const dense = this.dense;
      const ci = pfn >>> 9;
      const c = ci < dense.length ? dense[ci] : undefined;
      if (c !== undefined) {
        let w = ((pfn & 511) << 10) + (off >>> 2);
        for (let o = outOffset, end = outOffset + length; o < end; o += 4) {
          const v = c[w++];
          out[o] = v;
          out[o + 1] = v >>> 8;
          out[o + 2] = v >>> 16;
          out[o + 3] = v >>> 24;
        }
        return;
      }
    }
    this.readInFrameSlow(pfn, off, out, outOffset, length);
  }

  /** readInFrame when its common case does not apply. */
  private readInFrameSlow(pfn: number, off: number, out: Uint8Array, outOffset: number, length: number): void {
    if (!(off >= 0 && off + length <= PAGE_SIZE)) {
      this.read(pfn * PAGE_SIZE + off, out, outOffset, length);
      return;
    }
    const c = this.chunkIfBacked(pfn);
    if (c === undefined) out.fill(0, outOffset, outOffset + length);
    else if (length === PAGE_SIZE) out.set(this.frameBytes(c, pfn), outOffset);
    else if (length <= SMALL_COPY) {
      // A few bytes (a descriptor, a DMA of a word): taken from the chunk's 32-bit words (little-endian
      // bytes), with no view and no lookup beyond the chunk's.
      const w = PhysicalMemory.frameWordBase(pfn);
      for (let i = 0; i < length; i++) {
        const b = off + i;
        out[outOffset + i] = c[w + (b >>> 2)] >>> ((b & 3) << 3);
      }
    } else out.set(new Uint8Array(c.buffer, c.byteOffset + PhysicalMemory.frameWordBase(pfn) * 4 + off, length), outOffset);
  }

  /** Copies `length` bytes of `src[srcOffset..]` to physical address `pa`. */
  write(pa: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    let done = 0;
    while (done < length) {
      const addr = pa + done;
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr - pfn * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, length - done);
      this.markTouched(pfn);
      const c = this.chunkWords(pfn);
      const from = srcOffset + done;
      if (n === PAGE_SIZE) this.frameBytes(c, pfn).set(from === 0 && src.length === PAGE_SIZE ? src : src.subarray(from, from + n));
      else if (n <= SMALL_COPY) {
        const fb = this.frameBytes(c, pfn);
        for (let i = 0; i < n; i++) fb[off + i] = src[from + i];
      } else new Uint8Array(c.buffer, c.byteOffset + PhysicalMemory.frameWordBase(pfn) * 4 + off, n).set(src.subarray(from, from + n));
      done += n;
    }
  }
}

/**
 * Hands out physical frames: page-table pages for IOMMU drivers and the frames that back user memory.
 * Frames are taken from the bottom of a region and recycled through a free list, so the page tables
 * of a workload stay dense in a few chunks.
 */
export class FrameAllocator {
  private next: number;
  private readonly free: number[] = [];
  private inUse = 0;

  constructor(
    private readonly mem: PhysicalMemory,
    /** First frame handed out; frames below are left to firmware, MMIO and fixed test addresses. */
    firstPfn = 0x100,
    private readonly limitPfn = MAX_PFN,
  ) {
    this.next = firstPfn;
  }

  /** Frames allocated and not yet released. */
  get framesInUse(): number {
    return this.inUse;
  }

  /** A zeroed frame, or -1 when physical memory is exhausted. */
  alloc(): number {
    let pfn: number;
    if (this.free.length > 0) pfn = this.free.pop()!;
    else {
      if (this.next >= this.limitPfn) return -1;
      pfn = this.next++;
    }
    this.mem.zeroFrame(pfn);
    this.mem.markTouched(pfn);
    this.inUse++;
    return pfn;
  }

  /**
   * `count` contiguous frames aligned to `count` (a power of two: a huge page, or a table larger than one frame), taken above every frame
   * handed out so far; returns the first frame or -1. The frames skipped for alignment go to the free
   * list. The run is zeroed and counted as touched chunk by chunk, not frame by frame.
   */
  allocRun(count: number): number {
    const first = Math.ceil(this.next / count) * count;
    if (first + count > this.limitPfn) return -1;
    for (let p = this.next; p < first; p++) this.free.push(p);
    this.next = first + count;
    this.mem.zeroRun(first, count);
    this.mem.markTouchedRun(first, count);
    this.inUse += count;
    return first;
  }

  /**
   * Up to `max` zeroed frames in one contiguous run, as `max` calls of `alloc` would hand them out
   * when the free list is empty (one frame from the free list otherwise): returns the first frame and
   * leaves the count in `lastCount`; -1 when physical memory is exhausted. Faulting in a large range
   * of user memory takes its frames this way, zeroed and counted as touched per run, not per frame.
   */
  allocContiguous(max: number): number {
    if (max <= 1 || this.free.length > 0) {
      const pfn = this.alloc();
      this.lastCount = pfn < 0 ? 0 : 1;
      return pfn;
    }
    const n = Math.min(max, this.limitPfn - this.next);
    if (n <= 0) {
      this.lastCount = 0;
      return -1;
    }
    const first = this.next;
    this.next += n;
    this.mem.zeroRun(first, n);
    this.mem.markTouchedRun(first, n);
    this.inUse += n;
    this.lastCount = n;
    return first;
  }

  /** Frames handed out by the last allocContiguous. */
  lastCount = 0;

  /**
   * Frees the frames `from`, `from ± 1`, ..., `to` (either direction, `to` included), as release of each
   * in that order would, with one zero fill per stretch of touched frames (zeroRun) instead of one per
   * frame.
   */
  releaseRun(from: number, to: number): void {
    const step = to >= from ? 1 : -1;
    const count = (to - from) * step + 1;
    this.mem.zeroRun(step === 1 ? from : to, count);
    for (let i = 0, p = from; i < count; i++, p += step) this.free.push(p);
    this.inUse -= count;
  }

  /** Frees frame `pfn`, zeroing it first so that the next allocation gets a clean page. */
  release(pfn: number): void {

    this.mem.zeroFrame(pfn);
    this.free.push(pfn);
    this.inUse--;
  }
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
