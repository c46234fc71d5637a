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
/**
 * Marks a pages object whose one segment is kept in its own fields (seg0..seg3), not in an array:
 * every single-page IOAS_MAP has exactly one, and a million areas would otherwise carry a million
 * small arrays for the garbage collector to trace. Shared, never written.
 */
const INLINE: number[] = [];
/** The inline segment as a list, filled by list(): read-only, valid until the next list() call. */
const ONE = [0, 0, 0, 0];
/**
 * Segments built by pin() / unpin() for the window they replace: numbers [0, n) of `v`, reused from
 * call to call (emptying an array with `length = 0` would drop its storage, one allocation per call).
 */
class SegBuf {
  v: number[] = [];
  n = 0;
}
const built = new SegBuf();

export class IoptPages {
  /** Areas (in any IOAS) that reference these pages (the kref). */
  users = 0;
  /** Distinct pages pinned now (pages->npinned), all charged to `account`. */
  npinned = 0;
  /** The process whose RLIMIT_MEMLOCK the pins are charged to (pages->source_user / source_mm). */
  account: HostProcess;
  /** Pin segments, SEG numbers each, sorted by start, non-overlapping (see the file comment). */
  private segs: number[] = NO_SEGS;
  /** The one segment when `segs` is INLINE: start, len, pins, frame. */
  private seg0 = 0;
  private seg1 = 0;
  private seg2 = 0;
  private seg3 = 0;
  /**
   * The source, kept as fields rather than the record it came in (one object less per pages object:
   * a million single-page areas are a million pages objects for the garbage collector to trace).
   */
  private readonly srcMm: HostProcess | null;
  private readonly srcObject: MemoryObject | null;
  private readonly srcAlloc: FrameAllocator | null;
  private readonly srcFirst: number;

  constructor(
    /** Pages the object spans (pages->npages). */
    readonly npages: number,
    readonly writable: boolean,
    account: HostProcess,
    /** Copied: the record is not kept, and may be reused by the caller. */
    source: PagesSource,
  ) {
    this.account = account;
    this.srcFirst = source.firstPage;
    if (source.kind === 'user') {
      this.srcMm = source.mm;
      this.srcObject = null;
      this.srcAlloc = null;
    } else {
      this.srcMm = null;
      this.srcObject = source.object;
      this.srcAlloc = source.alloc;
    }
  }

  /** Where the pages come from (a new record on each call). */
  get source(): PagesSource {
    return this.srcMm !== null
      ? { kind: 'user', mm: this.srcMm, firstPage: this.srcFirst }
      : { kind: 'file', object: this.srcObject!, firstPage: this.srcFirst, alloc: this.srcAlloc! };
  }

  /** The memfd behind a MAP_FILE, or null for user memory. */
  get file(): MemoryObject | null {
    return this.srcObject;
  }

  /**
   * Address of the first page: its user VA, or its byte offset in the file (pages->uptr or
   * pages->start). With the byte offset it gives the IOVA allocation hint of an IOAS_COPY.
   */
  get base(): bigint {
    return BigInt(this.srcFirst) * PAGE;
  }

  get(): void {
    this.users++;
  }

  put(): void {
    this.users--;
  }

  /** Index (in segments) of the first segment that ends after page `index`. */
  private segAfter(index: number): number {
    const s = this.list();
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
    return this.list().length / SEG;
  }

  /** The frame of pinned page `index`, 0 when it is not pinned. */
  frame(index: number): number {
    const s = this.list();
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
    const s = this.list();
    const k = this.segAfter(index) * SEG;
    return k < s.length && s[k] <= index ? s[k + 2] : 0;
  }

  /**
   * Appends the frames of pinned pages [start, start + n) to `out` as runs (contiguous frames across
   * segments merge). Every page must be pinned.
   */
  pinnedRuns(start: number, n: number, out: FrameRuns): void {
    const s = this.list();
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
    const s = this.list();
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
    out.n = 0;
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

  /**
   * Records the state a pin() of every page left when the pages, already faulted in and charged, are
   * the frames [frame, frame + npages): one segment, `pins` pins each (one unless several areas filled
   * them). For a pages object that has no pins yet (the IOAS index turning a compact area or a shared
   * run into objects), nothing is charged again.
   */
  adoptPinnedRun(frame: number, pins = 1): void {
    this.seg0 = 0;
    this.seg1 = this.npages;
    this.seg2 = pins;
    this.seg3 = frame;
    this.segs = INLINE;
    this.npinned = this.npages;
  }

  /**
   * adoptPinnedRun for pages whose frames are `runs` in order (runs.pages === npages): the segments
   * pin() would have built, one pin each; nothing is charged.
   */
  adoptPinnedRuns(runs: FrameRuns): void {
    const out = built;
    out.n = 0;
    let cur = 0;
    for (let r = 0; r < runs.length; r++) {
      emit(out, cur, runs.count[r], 1, runs.first[r]);
      cur += runs.count[r];
    }
    this.setList(out.v, out.n);
    this.npinned = this.npages;
  }

  /** Drops one pin on every page of [start, start + n); pages reaching zero are unpinned and uncharged. */
  unpin(start: number, n: number): void {
    if (n <= 0) return;
    const s = this.list();
    const end = start + n;
    const k0 = this.segAfter(start);
    let k1 = k0;
    while (k1 * SEG < s.length && s[k1 * SEG] < end) k1++;
    if (k1 === k0) return;
    const out = built;
    out.n = 0;
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
  private replace(k0: number, k1: number, buf: SegBuf): void {
    const s = this.list();
    const out = buf.v;
    const n = buf.n;
    let from = k0 * SEG;
    let to = k1 * SEG;
    // Merge with the segment before and the one after.
    if (from > 0 && n > 0 && continues(s, from - SEG, out, 0)) {
      from -= SEG;
      out[0] = s[from];
      out[1] += s[from + 1];
      out[3] = s[from + 3];
    }
    if (to < s.length && n > 0 && continues(out, n - SEG, s, to)) {
      out[n - SEG + 1] += s[to + 1];
      to += SEG;
    }
    const del = to - from;
    if (from === 0 && to === s.length) {
      // The whole list (always so for a pages object of one segment): none, one kept inline, or an
      // exact-size copy, no slack.
      this.setList(out, n);
    } else {
      // Part of a list: a one-segment list kept inline becomes an array first (ONE is only a view).
      const list = this.segs === INLINE ? s.slice() : s;
      if (n === del) {
        for (let i = 0; i < del; i++) list[from + i] = out[i];
        this.segs = list;
      } else if (list.length - del + n < 4096 || n < 64) {
        list.splice(from, del, ...out.slice(0, n));
        this.segs = list;
      } else {
        this.segs = list.slice(0, from).concat(out.slice(0, n), list.slice(to));
      }
    }
    if (out.length > 1024) buf.v = [];
  }

  /** The segment list (see INLINE): the array itself, or the inline segment through ONE. */
  private list(): number[] {
    const s = this.segs;
    if (s !== INLINE) return s;
    ONE[0] = this.seg0;
    ONE[1] = this.seg1;
    ONE[2] = this.seg2;
    ONE[3] = this.seg3;
    return ONE;
  }

  /** Makes `out[0, n)` the whole segment list: none, one segment inline, or an exact-size copy. */
  private setList(out: readonly number[], n: number): void {
    if (n === 0) this.segs = NO_SEGS;
    else if (n === SEG) {
      this.seg0 = out[0];
      this.seg1 = out[1];
      this.seg2 = out[2];
      this.seg3 = out[3];
      this.segs = INLINE;
    } else this.segs = out.slice(0, n);
  }

  /** Faults in pages [first, first + n) of the source, appending their frames to `out`, without pinning them; throws Errno. */
  private resolveRun(first: number, n: number, out: FrameRuns): void {
    const mm = this.srcMm;
    const page = this.srcFirst + first;
    if (mm !== null) {
      resolveUserRun(mm, page, n, this.writable, out);
      return;
    }
    const object = this.srcObject!;
    // memfd_pin_folios: a page at or past the end of the file cannot be pinned (shmem_get_folio
    // refuses an index past i_size with EINVAL); the file may have shrunk since IOAS_MAP_FILE.
    if (page + n > object.pages) throw new Errno('EINVAL', 'the range reaches past the end of the file');
    if (!object.faultRuns(page, n, this.srcAlloc!, out)) throw new Errno('ENOMEM', 'out of physical memory');
  }
}

/**
 * Faults in user pages [page, page + n) of `mm` for a pin and appends their frames to `out`, without
 * pinning or charging them (the pin_user_pages part of pfn_reader_user_pin); throws Errno. A write pin
 * of a read-only VMA fails with EFAULT (check_vma_flags), a hole with EFAULT.
 */
export function resolveUserRun(mm: HostProcess, page: number, n: number, writable: boolean, out: FrameRuns): void {
  try {
    // The whole range is checked before anything is faulted in. One page lies in one VMA, which
    // resolveRuns checks the same way (EFAULT, then EPERM) before faulting it in.
    if (n !== 1) mm.checkPages(page, n, writable);
    mm.resolveRuns(page, n, writable, out);
  } catch (e) {
    if (e instanceof Errno && e.code === 'EPERM') throw new Errno('EFAULT', 'write pin of a read-only mapping');
    throw e;
  }
}

/** resolveUserRun of one page: its frame (pfn_reader_user_pin of a single page). */
export function resolveUserPage(mm: HostProcess, page: number, writable: boolean): number {
  try {
    return mm.resolvePage(page, writable);
  } catch (e) {
    if (e instanceof Errno && e.code === 'EPERM') throw new Errno('EFAULT', 'write pin of a read-only mapping');
    throw e;
  }
}

/**
 * Appends segment `s[i..]` to `out` with `delta` added to the pin count of its pages inside
 * [start, end) (the parts outside keep theirs); pages whose count reaches 0 are left out. Returns how
 * many pages were left out.
 */
function splitSegment(out: SegBuf, s: readonly number[], i: number, start: number, end: number, delta: number): number {
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
function emit(buf: SegBuf, start: number, len: number, pins: number, frame: number): void {
  if (len <= 0) return;
  const out = buf.v;
  const n = buf.n;
  if (n > 0 && out[n - 4] + out[n - 3] === start && out[n - 2] === pins && out[n - 1] + out[n - 3] === frame) {
    out[n - 3] += len;
    return;
  }
  if (n === out.length) out.push(start, len, pins, frame);
  else {
    out[n] = start;
    out[n + 1] = len;
    out[n + 2] = pins;
    out[n + 3] = frame;
  }
  buf.n = n + SEG;
}

/** Segment `b[j..]` continues segment `a[i..]`: adjacent pages, same pins, contiguous frames. */
function continues(a: readonly number[], i: number, b: readonly number[], j: number): boolean {
  return a[i] + a[i + 1] === b[j] && a[i + 2] === b[j + 2] && a[i + 3] + a[i + 1] === b[j + 3];
}
