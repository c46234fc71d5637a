/**
 * Pinned memory shared by the areas that map it (pages.c struct iopt_pages).
 *
 * Pinning is lazy, as in the kernel: IOAS_MAP only records where the memory comes from (a user VA
 * range or a memfd range). Pages are pinned (faulted in, resolved to a frame and charged to
 * RLIMIT_MEMLOCK) when something needs their frames: an area filling its first domain
 * (iopt_area_fill_domains, at MAP with domains attached or at attach), or an emulated-device access
 * (iopt_area_add_access). That is where EFAULT and ENOMEM appear. Each page carries a pin count:
 * one per filled area covering it, one per access pin; at zero it is unpinned and uncharged, so
 * memory no area or access still holds is given back (the kernel unpins per index range too).
 *
 * Storage is sparse (chunks of CHUNK pages) because a pages object may describe far more memory
 * than is ever pinned (a MAP of a huge, mostly unmapped VA range with no domain attached).
 */
import { Errno } from '../uapi/errno.js';
import { PAGE_SIZE, type FrameAllocator } from '../memory/physical.js';
import type { HostProcess, MemoryObject } from '../memory/process.js';

const PAGE = BigInt(PAGE_SIZE);
const CHUNK = 4096;

/** Where the pages come from (iopt_pages->type). */
export type PagesSource =
  /** IOPT_ADDRESS_USER: user memory from page `firstPage` of the process's address space. */
  | { readonly kind: 'user'; readonly mm: HostProcess; readonly firstPage: number }
  /** IOPT_ADDRESS_FILE: a memfd from page `firstPage` of the file. */
  | { readonly kind: 'file'; readonly object: MemoryObject; readonly firstPage: number; readonly alloc: FrameAllocator };

/**
 * Chunks of at most this many pages keep their frames and pin counts in plain arrays: a typed array
 * is an ArrayBuffer that every garbage collection has to track, and the commonest pages object (one
 * 4 KiB IOAS_MAP) needs one page; with a million such areas, two typed arrays each dominated GC.
 */
const SMALL = 64;
/** Scratch for resolving at most SMALL pages (pin and sourceFrame run synchronously, never nested). */
const scratch = new Float64Array(SMALL);

class PinChunk {
  /** Frame of each pinned page, 0 while unpinned. */
  readonly frames: Float64Array | number[];
  readonly pins: Uint32Array | number[];
  /** Pages of the chunk with a pin count above zero (so that unpin need not scan the chunk). */
  live = 0;
  constructor(n: number) {
    this.frames = n <= SMALL ? new Array<number>(n).fill(0) : new Float64Array(n);
    this.pins = n <= SMALL ? new Array<number>(n).fill(0) : new Uint32Array(n);
  }
}

export class IoptPages {
  /** Areas (in any IOAS) that reference these pages (the kref). */
  users = 0;
  /** Distinct pages pinned now (pages->npinned), all charged to `account`. */
  npinned = 0;
  /** The process whose RLIMIT_MEMLOCK the pins are charged to (pages->source_user / source_mm). */
  account: HostProcess;
  /** Chunk 0 (all of a pages object of at most CHUNK pages), kept out of the map. */
  private chunk0: PinChunk | undefined = undefined;
  /** Chunks 1 and up, made when first needed. */
  private chunks: Map<number, PinChunk> | null = null;

  constructor(
    /** Pages the object spans (pages->npages). */
    readonly npages: number,
    readonly writable: boolean,
    account: HostProcess,
    readonly source: PagesSource,
  ) {
    this.account = account;
  }

  /** The memfd behind a MAP_FILE, or null for user memory. */
  get file(): MemoryObject | null {
    return this.source.kind === 'file' ? this.source.object : null;
  }

  /**
   * Address of the first page: its user VA, or its byte offset in the file (pages->uptr or
   * pages->start). With the byte offset it gives the IOVA allocation hint of an IOAS_COPY.
   */
  get base(): bigint {
    return BigInt(this.source.firstPage) * PAGE;
  }

  get(): void {
    this.users++;
  }

  put(): void {
    this.users--;
  }

  private chunkAt(ci: number): PinChunk | undefined {
    return ci === 0 ? this.chunk0 : this.chunks?.get(ci);
  }

  private setChunk(ci: number, c: PinChunk | undefined): void {
    if (ci === 0) this.chunk0 = c;
    else if (c !== undefined) (this.chunks ??= new Map()).set(ci, c);
    else this.chunks?.delete(ci);
  }

  /** The frame of pinned page `index`, 0 when it is not pinned. */
  frame(index: number): number {
    const c = this.chunkAt(Math.floor(index / CHUNK));
    return c === undefined ? 0 : c.frames[index % CHUNK];
  }

  /**
   * The frame behind page `index`: the pinned one, else the source's, faulted in without pinning
   * (EFAULT for a hole in the source).
   */
  sourceFrame(index: number): number {
    const f = this.frame(index);
    if (f !== 0) return f;
    this.resolveRun(index, 1, scratch, 0);
    return scratch[0];
  }

  /** Pin count of page `index`. */
  pinCount(index: number): number {
    const c = this.chunkAt(Math.floor(index / CHUNK));
    return c === undefined ? 0 : c.pins[index % CHUNK];
  }

  /**
   * Copies the frames of pinned pages [start, start + n) into `out`. Every page must be pinned.
   */
  framesOf(start: number, n: number, out: Float64Array, outOffset = 0): void {
    let i = 0;
    while (i < n) {
      const idx = start + i;
      const c = this.chunkAt(Math.floor(idx / CHUNK))!;
      const off = idx % CHUNK;
      const k = Math.min(n - i, CHUNK - off);
      const frames = c.frames;
      if (frames instanceof Float64Array) out.set(frames.subarray(off, off + k), outOffset + i);
      else for (let j = 0; j < k; j++) out[outOffset + i + j] = frames[off + j];
      i += k;
    }
  }

  /**
   * Takes one pin on every page of [start, start + n) (pfn_reader / pin_user_pages). Pages not
   * pinned yet are faulted in and resolved; EFAULT for a hole in the source, EFAULT for a write pin
   * of a read-only mapping (check_vma_flags), ENOMEM when RLIMIT_MEMLOCK would be exceeded
   * (incr_user_locked_vm) or memory runs out. All or nothing.
   */
  pin(start: number, n: number): void {
    if (n <= 0) return;
    // Resolve every page that is not pinned yet, in runs, before changing anything.
    let fresh = 0;
    let resolved: Float64Array | null = null;
    let i = 0;
    while (i < n) {
      const idx = start + i;
      const off = idx % CHUNK;
      const k = Math.min(n - i, CHUNK - off);
      const c = this.chunkAt(Math.floor(idx / CHUNK));
      let j = 0;
      while (j < k) {
        if (c !== undefined && c.pins[off + j] > 0) {
          j++;
          continue;
        }
        let run = 1;
        while (j + run < k && (c === undefined || c.pins[off + j + run] === 0)) run++;
        resolved ??= n <= SMALL ? scratch : new Float64Array(n);
        this.resolveRun(idx + j, run, resolved, i + j);
        fresh += run;
        j += run;
      }
      i += k;
    }
    if (fresh > 0) this.account.chargePinned(fresh);
    i = 0;
    while (i < n) {
      const idx = start + i;
      const ci = Math.floor(idx / CHUNK);
      const off = idx % CHUNK;
      const k = Math.min(n - i, CHUNK - off);
      let c = this.chunkAt(ci);
      if (c === undefined) {
        c = new PinChunk(Math.min(CHUNK, this.npages - ci * CHUNK));
        this.setChunk(ci, c);
      }
      for (let j = 0; j < k; j++) {
        if (c.pins[off + j]++ === 0) {
          c.frames[off + j] = resolved![i + j];
          c.live++;
        }
      }
      i += k;
    }
    this.npinned += fresh;
  }

  /** Drops one pin on every page of [start, start + n); pages reaching zero are unpinned and uncharged. */
  unpin(start: number, n: number): void {
    let freed = 0;
    let i = 0;
    while (i < n) {
      const idx = start + i;
      const ci = Math.floor(idx / CHUNK);
      const off = idx % CHUNK;
      const c = this.chunkAt(ci);
      const k = Math.min(n - i, CHUNK - off);
      if (c !== undefined) {
        for (let j = 0; j < k; j++) {
          if (c.pins[off + j] === 0) continue;
          if (--c.pins[off + j] === 0) {
            c.frames[off + j] = 0;
            c.live--;
            freed++;
          }
        }
        if (c.live === 0) this.setChunk(ci, undefined);
      }
      i += k;
    }
    if (freed > 0) {
      this.npinned -= freed;
      this.account.unchargePinned(freed);
    }
  }

  /** Faults in pages [first, first + n) of the source into out[at..] without pinning them; throws Errno. */
  private resolveRun(first: number, n: number, out: Float64Array, at: number): void {
    const s = this.source;
    if (s.kind === 'user') {
      // pin_user_pages(FOLL_WRITE) on a read-only VMA fails with EFAULT (check_vma_flags).
      try {
        s.mm.checkPages(s.firstPage + first, n, this.writable);
      } catch (e) {
        if (e instanceof Errno && e.code === 'EPERM') throw new Errno('EFAULT', 'write pin of a read-only mapping');
        throw e;
      }
      s.mm.resolvePages(s.firstPage + first, n, this.writable, out, at);
      return;
    }
    // memfd_pin_folios: a page at or past the end of the file cannot be pinned (shmem_get_folio
    // refuses an index past i_size with EINVAL); the file may have shrunk since IOAS_MAP_FILE.
    if (s.firstPage + first + n > s.object.pages) throw new Errno('EINVAL', 'the range reaches past the end of the file');
    for (let i = 0; i < n; i++) {
      const pfn = s.object.frame(s.firstPage + first + i, s.alloc, true);
      if (pfn < 0) throw new Errno('ENOMEM', 'out of physical memory');
      out[at + i] = pfn;
    }
  }
}
