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

class PinChunk {
  /** Frame of each pinned page, 0 while unpinned. */
  readonly frames: Float64Array;
  readonly pins: Uint32Array;
  constructor(n: number) {
    this.frames = new Float64Array(n);
    this.pins = new Uint32Array(n);
  }
}

export class IoptPages {
  /** Areas (in any IOAS) that reference these pages (the kref). */
  users = 0;
  /** Distinct pages pinned now (pages->npinned), all charged to `account`. */
  npinned = 0;
  /** The process whose RLIMIT_MEMLOCK the pins are charged to (pages->source_user / source_mm). */
  account: HostProcess;
  private readonly chunks = new Map<number, PinChunk>();

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

  /** The frame of pinned page `index`, 0 when it is not pinned. */
  frame(index: number): number {
    const c = this.chunks.get(Math.floor(index / CHUNK));
    return c === undefined ? 0 : c.frames[index % CHUNK];
  }

  /**
   * The frame behind page `index`: the pinned one, else the source's, faulted in without pinning
   * (EFAULT for a hole in the source).
   */
  sourceFrame(index: number): number {
    const f = this.frame(index);
    if (f !== 0) return f;
    const out = new Float64Array(1);
    this.resolveRun(index, 1, out, 0);
    return out[0];
  }

  /** Pin count of page `index`. */
  pinCount(index: number): number {
    const c = this.chunks.get(Math.floor(index / CHUNK));
    return c === undefined ? 0 : c.pins[index % CHUNK];
  }

  /**
   * Copies the frames of pinned pages [start, start + n) into `out`. Every page must be pinned.
   */
  framesOf(start: number, n: number, out: Float64Array, outOffset = 0): void {
    let i = 0;
    while (i < n) {
      const idx = start + i;
      const c = this.chunks.get(Math.floor(idx / CHUNK))!;
      const off = idx % CHUNK;
      const k = Math.min(n - i, CHUNK - off);
      out.set(c.frames.subarray(off, off + k), outOffset + i);
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
      const c = this.chunks.get(Math.floor(idx / CHUNK));
      let j = 0;
      while (j < k) {
        if (c !== undefined && c.pins[off + j] > 0) {
          j++;
          continue;
        }
        let run = 1;
        while (j + run < k && (c === undefined || c.pins[off + j + run] === 0)) run++;
        resolved ??= new Float64Array(n);
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
      let c = this.chunks.get(ci);
      if (c === undefined) {
        c = new PinChunk(Math.min(CHUNK, this.npages - ci * CHUNK));
        this.chunks.set(ci, c);
      }
      for (let j = 0; j < k; j++) {
        if (c.pins[off + j]++ === 0) c.frames[off + j] = resolved![i + j];
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
      const c = this.chunks.get(ci);
      const k = Math.min(n - i, CHUNK - off);
      if (c !== undefined) {
        let live = false;
        for (let j = 0; j < k; j++) {
          if (c.pins[off + j] === 0) continue;
          if (--c.pins[off + j] === 0) {
            c.frames[off + j] = 0;
            freed++;
          }
        }
        for (let j = 0; j < c.pins.length && !live; j++) live = c.pins[j] > 0;
        if (!live) this.chunks.delete(ci);
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
    for (let i = 0; i < n; i++) {
      const pfn = s.object.frame(s.firstPage + first + i, s.alloc, true);
      if (pfn < 0) throw new Errno('ENOMEM', 'out of physical memory');
      out[at + i] = pfn;
    }
  }
}
