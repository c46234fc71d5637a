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
 * Pins are kept as segments, not per page: [start, start + len) of page indexes with the same pin
 * count whose frames are contiguous from `frame`. A 1 GiB huge page, or any memory faulted in order,
 * is one segment however many pages it spans; a single-page IOAS_MAP is one segment of four numbers.
 * Pages outside every segment are not pinned.
 */
import { Errno } from '../uapi/errno.js';
import { PAGE_SIZE, FrameRuns, type FrameAllocator } from '../memory/physical.js';
import type { HostProcess, MemoryObject } from '../memory/process.js';

const PAGE = BigInt(PAGE_SIZE);

/** Where the pages come from (iopt_pages->type). */
export type PagesSource =
  /** IOPT_ADDRESS_USER: user memory from page `firstPage` of the process's address space. */
  | { readonly kind: 'user'; readonly mm: HostProcess; readonly firstPage: number }
  /** IOPT_ADDRESS_FILE: a memfd from page `firstPage` of the file. */
  | { readonly kind: 'file'; readonly object: MemoryObject; readonly firstPage: number; readonly alloc: FrameAllocator };

/** Numbers per segment in `IoptPages.segs`: start, len, pins, frame. */
const SEG = 4;
/** Frames resolved by pin() or sourceFrame() before they are recorded (runs synchronously, never nested). */
const resolved = new FrameRuns();
/** The segment list of a pages object with nothing pinned: shared, never written (see replace). */
const NO_SEGS: number[] = [];
/** Segments built by pin() / unpin() for the window they replace. */
let built: number[] = [];

export class IoptPages {
  /** Areas (in any IOAS) that reference these pages (the kref). */
  users = 0;
  /** Distinct pages pinned now (pages->npinned), all charged to `account`. */
  npinned = 0;
  /** The process whose RLIMIT_MEMLOCK the pins are charged to (pages->source_user / source_mm). */
  account: HostProcess;
  /** Pin segments, SEG numbers each, sorted by start, non-overlapping (see the file comment). */
  private segs: number[] = NO_SEGS;
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

  /** Index (in segments) of the first segment that ends after page `index`. */
  private segAfter(index: number): number {
    const s = this.segs;
    let lo = 0;
    let hi = s.length / SEG;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid * SEG] + s[mid * SEG + 1] <= index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Segments in use (for tests and tools: how compact the pin state is). */
  get segments(): number {
    return this.segs.length / SEG;
  }

  /** The frame of pinned page `index`, 0 when it is not pinned. */
  frame(index: number): number {
    const s = this.segs;
    const k = this.segAfter(index) * SEG;
    return k < s.length && s[k] <= index ? s[k + 3] + (index - s[k]) : 0;
  }

  /**
   * The frame behind page `index`: the pinned one, else the source's, faulted in without pinning
   * (EFAULT for a hole in the source).
   */
  sourceFrame(index: number): number {
    const f = this.frame(index);
    if (f !== 0) return f;
    resolved.clear();
    this.resolveRun(index, 1, resolved);
    return resolved.first[0];
  }

  /** Pin count of page `index`. */
  pinCount(index: number): number {
    const s = this.segs;
    const k = this.segAfter(index) * SEG;
    return k < s.length && s[k] <= index ? s[k + 2] : 0;
  }

  /**
   * Appends the frames of pinned pages [start, start + n) to `out` as runs (contiguous frames across
   * segments merge). Every page must be pinned.
   */
  pinnedRuns(start: number, n: number, out: FrameRuns): void {
    const s = this.segs;
    const end = start + n;
    for (let k = this.segAfter(start) * SEG; k < s.length && s[k] < end; k += SEG) {
      const from = Math.max(start, s[k]);
      const to = Math.min(end, s[k] + s[k + 1]);
      out.push(s[k + 3] + (from - s[k]), to - from);
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
    const s = this.segs;
    const end = start + n;
    const k0 = this.segAfter(start);
    // Resolve every page that is not pinned yet (the gaps between segments), before changing anything.
    resolved.clear();
    let k1 = k0;
    let cur = start;
    while (cur < end) {
      const segStart = k1 * SEG < s.length ? s[k1 * SEG] : end;
      if (segStart > cur) this.resolveRun(cur, Math.min(segStart, end) - cur, resolved);
      if (segStart >= end) break;
      cur = segStart + s[k1 * SEG + 1];
      k1++;
    }
    const fresh = resolved.pages;
    if (fresh > 0) this.account.chargePinned(fresh);
    // Rebuild segments k0 .. k1 - 1 (those meeting the range) with one more pin, the gaps as new
    // segments of one pin taking the resolved runs in order.
    const out = built;
    out.length = 0;
    let r = 0;
    let rUsed = 0;
    cur = start;
    for (let k = k0; ; k++) {
      const segStart = k < k1 ? s[k * SEG] : end;
      while (cur < Math.min(segStart, end)) {
        const take = Math.min(resolved.count[r] - rUsed, Math.min(segStart, end) - cur);
        emit(out, cur, take, 1, resolved.first[r] + rUsed);
        cur += take;
        rUsed += take;
        if (rUsed === resolved.count[r]) {
          r++;
          rUsed = 0;
        }
      }
      if (k >= k1) break;
      splitSegment(out, s, k * SEG, start, end, 1);
      cur = Math.min(segStart + s[k * SEG + 1], end);
    }
    this.replace(k0, k1, out);
    this.npinned += fresh;
  }

  /** Drops one pin on every page of [start, start + n); pages reaching zero are unpinned and uncharged. */
  unpin(start: number, n: number): void {
    if (n <= 0) return;
    const s = this.segs;
    const end = start + n;
    const k0 = this.segAfter(start);
    let k1 = k0;
    while (k1 * SEG < s.length && s[k1 * SEG] < end) k1++;
    if (k1 === k0) return;
    const out = built;
    out.length = 0;
    let freed = 0;
    for (let k = k0; k < k1; k++) freed += splitSegment(out, s, k * SEG, start, end, -1);
    this.replace(k0, k1, out);
    if (freed > 0) {
      this.npinned -= freed;
      this.account.unchargePinned(freed);
    }
  }

  /**
   * Replaces segments [k0, k1) by `out`, merging across both edges with the neighbours where the
   * pages, frames and pin counts continue.
   */
  private replace(k0: number, k1: number, out: number[]): void {
    const s = this.segs;
    let from = k0 * SEG;
    let to = k1 * SEG;
    // Merge with the segment before and the one after.
    if (from > 0 && out.length > 0 && continues(s, from - SEG, out, 0)) {
      from -= SEG;
      out[0] = s[from];
      out[1] += s[from + 1];
      out[3] = s[from + 3];
    }
    if (to < s.length && out.length > 0 && continues(out, out.length - SEG, s, to)) {
      out[out.length - SEG + 1] += s[to + 1];
      to += SEG;
    }
    const del = to - from;
    if (from === 0 && to === s.length) {
      // The whole list (always so for a pages object of one segment): an exact-size copy, no slack.
      this.segs = out.length === 0 ? NO_SEGS : out.slice();
    } else if (out.length === del) {
      for (let i = 0; i < del; i++) s[from + i] = out[i];
    } else if (s.length - del + out.length < 4096 || out.length < 64) {
      s.splice(from, del, ...out);
    } else {
      this.segs = s.slice(0, from).concat(out, s.slice(to));
    }
    if (built.length > 1024) built = [];
  }

  /** Faults in pages [first, first + n) of the source, appending their frames to `out`, without pinning them; throws Errno. */
  private resolveRun(first: number, n: number, out: FrameRuns): void {
    const s = this.source;
    if (s.kind === 'user') {
      // pin_user_pages(FOLL_WRITE) on a read-only VMA fails with EFAULT (check_vma_flags).
      try {
        s.mm.checkPages(s.firstPage + first, n, this.writable);
      } catch (e) {
        if (e instanceof Errno && e.code === 'EPERM') throw new Errno('EFAULT', 'write pin of a read-only mapping');
        throw e;
      }
      s.mm.resolveRuns(s.firstPage + first, n, this.writable, out);
      return;
    }
    // memfd_pin_folios: a page at or past the end of the file cannot be pinned (shmem_get_folio
    // refuses an index past i_size with EINVAL); the file may have shrunk since IOAS_MAP_FILE.
    if (s.firstPage + first + n > s.object.pages) throw new Errno('EINVAL', 'the range reaches past the end of the file');
    if (!s.object.faultRuns(s.firstPage + first, n, s.alloc, out)) throw new Errno('ENOMEM', 'out of physical memory');
  }
}

/**
 * Appends segment `s[i..]` to `out` with `delta` added to the pin count of its pages inside
 * [start, end) (the parts outside keep theirs); pages whose count reaches 0 are left out. Returns how
 * many pages were left out.
 */
function splitSegment(out: number[], s: readonly number[], i: number, start: number, end: number, delta: number): number {
  const segStart = s[i];
  const segEnd = segStart + s[i + 1];
  const pins = s[i + 2];
  const frame = s[i + 3];
  if (segStart < start) emit(out, segStart, start - segStart, pins, frame);
  const from = Math.max(segStart, start);
  const to = Math.min(segEnd, end);
  const dropped = pins + delta === 0 ? to - from : 0;
  if (dropped === 0) emit(out, from, to - from, pins + delta, frame + (from - segStart));
  if (segEnd > end) emit(out, end, segEnd - end, pins, frame + (end - segStart));
  return dropped;
}

/** Appends a segment to `out`, merged into the previous one when it continues it. */
function emit(out: number[], start: number, len: number, pins: number, frame: number): void {
  if (len <= 0) return;
  const n = out.length;
  if (n > 0 && out[n - 4] + out[n - 3] === start && out[n - 2] === pins && out[n - 1] + out[n - 3] === frame) {
    out[n - 3] += len;
    return;
  }
  out.push(start, len, pins, frame);
}

/** Segment `b[j..]` continues segment `a[i..]`: adjacent pages, same pins, contiguous frames. */
function continues(a: readonly number[], i: number, b: readonly number[], j: number): boolean {
  return a[i] + a[i + 1] === b[j] && a[i + 2] === b[j + 2] && a[i + 3] + a[i + 1] === b[j + 3];
}
