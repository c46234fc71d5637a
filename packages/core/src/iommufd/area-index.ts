/**
 * The areas of an IOAS (io_pagetable.h struct iopt_area) and the index that finds them by IOVA: an area
 * maps [iova, last] onto a run of an IoptPages, and the index keeps areas whose first byte a double
 * holds exactly as records in sorted chunks of a Float64Array, so that one IOAS call searches once and
 * the common area (user memory mapped by a raw IOAS_MAP) is no heap object at all (see AreaIndex).
 */
import { PAGE_SIZE, type FrameRuns } from '../memory/physical.js';
import type { HostProcess } from '../memory/process.js';
import { IoptPages } from './pages.js';
import { RunPages } from './run-pages.js';

/** Largest integer a double holds exactly: IOVAs up to here take the number paths. */
export const SAFE = Number.MAX_SAFE_INTEGER;
/** SAFE as a bigint, for comparing bigint IOVAs with it. */
export const SAFE_BIG = BigInt(SAFE);

export class IoptArea {
  /** First and last byte as numbers: exact up to 2^53 - 1 (every IOVA a domain can map), else rounded. */
  readonly iovaNum: number;
  readonly lastNum: number;
  /** Pages the area spans. */
  readonly npages: number;
  /** Pins that emulated-device accesses hold inside this area (area->num_accesses). */
  numAccesses = 0;
  private bigIova: bigint | undefined;
  private bigLast: bigint | undefined;

  constructor(
    iova: bigint | number,
    /** Inclusive. */
    last: bigint | number,
    readonly pages: IoptPages,
    /** Index into pages.frames of the page holding `iova`. */
    readonly pageIndex: number,
    /** Byte offset of `iova` inside that first page. */
    readonly pageOffset: number,
    /** IOMMU_READ | IOMMU_WRITE. */
    readonly prot: number,
  ) {
    if (typeof iova === 'bigint') {
      this.bigIova = iova;
      this.iovaNum = Number(iova);
    } else this.iovaNum = iova;
    if (typeof last === 'bigint') {
      this.bigLast = last;
      this.lastNum = Number(last);
    } else this.lastNum = last;
    const exact = this.lastNum <= SAFE;
    this.npages = Math.ceil((pageOffset + (exact ? this.lastNum - this.iovaNum + 1 : Number(this.length))) / PAGE_SIZE);
  }

  get iova(): bigint {
    return (this.bigIova ??= BigInt(this.iovaNum));
  }

  /** Inclusive. */
  get last(): bigint {
    return (this.bigLast ??= BigInt(this.lastNum));
  }

  get length(): bigint {
    return this.last - this.iova + 1n;
  }
}

/*
 * The index of the areas whose first byte is below 2^53, keyed by that byte as a number: a sorted list
 * of chunks (a two-level B-tree), each chunk a Float64Array of records of STRIDE numbers held in
 * slots [start, end) of CAP slots, so that an entry goes in or out by one copyWithin of the shorter
 * side (an unmap of the first or the last area of a chunk moves nothing).
 *
 * A record is either
 * - a compact area: [iova, last, user page, frame, meta]: page-aligned user memory [page, page + n)
 *   of one process mapped at [iova, last] whose pages, when pinned, are one run of frames from
 *   `frame` with one pin each (an area filling its domains), and that nothing else references (its
 *   pages object would be used by this area only). meta holds the prot, the write flag, the pinned
 *   flag and the index of the process in `procs`. A raw single-page IOAS_MAP makes one: the call
 *   allocates nothing, and a million such areas are no million objects for the collector to trace;
 * - a pages area: [iova, last, slot, page index, meta]: an area of an IoptPages that other areas may
 *   share (IOAS_COPY makes them: iopt_get_pages hands the source areas' pages objects to the
 *   destination's areas; an access pinning a compact area makes one too, the pins being the pages
 *   object's), the pages object in `pages[slot]`, meta -2 - (prot | pageOffset << 2 | accesses << 14)
 *   with `accesses` the area's num_accesses. The rest of its state is in the pages object, so it needs
 *   no IoptArea either;
 * - a run area: [iova, last, id, RUN, meta], a pages area whose pages object is entry `id` of the
 *   iommufd's RunPages (run-pages.ts), numbers shared by every area that references it in any IOAS:
 *   IOAS_COPY of a whole compact area makes the source and the destination run areas over one entry
 *   (each covers all of its pages, page offset 0), so that a copied area is no heap object either.
 *   meta as a pages area's. When the entry becomes an IoptPages (an access pins it, part of it is
 *   copied or cut, its frames are in several runs) the record stays, and reads as a pages area over
 *   that shared object;
 * - an object area: [iova, last, -, -, OBJECT], the IoptArea in `objects` under its iova: an area
 *   that something keeps as an object (a cut in two).
 *
 * Reading an area gives an IoptArea without changing the record (at, from, locate, lastArea): the
 * object of an object area; for a pages area a new IoptArea over its shared pages object (what is
 * done to those pages is done to the area's); for a compact area a new IoptArea with a new pages
 * object built from the record, a snapshot to read (pinning or unpinning its pages changes nothing).
 * Such IoptAreas are not the index's: compare areas by IOVA, not identity, and change numAccesses
 * through addAccesses. What needs an area with an identity (a cut in two) asks objectAt, which turns
 * the record into an object area for good (materialize). IoPagetable reads records by position wherever it needs no object: its map
 * and unmap paths, and the walks over every area (filling a domain at attach, emptying it at detach,
 * the alignment and aperture checks, IOVA allocation), which pin, unpin and map a compact area from
 * its record (setCompactFrame); only pins in several runs of frames, which a record cannot hold, make
 * one an object (adoptPinnedRuns). IOAS_COPY of a compact area makes it a pages area (sharePages).
 */
const STRIDE = 5;
const R_LAST = 1;
const R_PAGE = 2;
const R_FRAME = 3;
const R_META = 4;
/** Records a chunk holds. */
const CAP = 128;
/** meta of an object area. */
const OBJECT = -1;
/** R_FRAME (the page index of a pages area) of a run area. */
const RUN = -1;
/** meta of a pages area: PAGES_META - (prot | pageOffset << 2 | accesses * ACCESS_UNIT), so every pages area's meta is <= PAGES_META. */
const PAGES_META = -2;
/** One access of a pages area in its meta (above the prot and the page offset). */
const ACCESS_UNIT = 1 << 14;
const META_WRITE = 4;
const META_PINNED = 8;
const META_PROC_SHIFT = 4;

/** Chunks carved from one ArrayBuffer (see newChunk). */
const SLAB_CHUNKS = 8;
/** The ArrayBuffer chunks are being carved from, and the next chunk's index in it. */
let chunkSlab: ArrayBuffer | null = null;
let chunkNext = SLAB_CHUNKS;

/**
 * A new chunk: a view into an ArrayBuffer shared with up to SLAB_CHUNKS - 1 other chunks (of any
 * index), allocated when the previous one is used up. A `new Float64Array` of a chunk's 5 KiB costs
 * about 1.5 us here (a zeroed off-heap backing store, registered with the collector), a view of an
 * existing buffer a twentieth of that: an IOAS mapped page by page in IOVA order starts a chunk every
 * 128 maps. A buffer lives as long as any of its chunks (at most SLAB_CHUNKS times the chunks in use).
 */
function newChunk(): Float64Array {
  if (chunkNext === SLAB_CHUNKS) {
    chunkSlab = new ArrayBuffer(SLAB_CHUNKS * CAP * STRIDE * 8);
    chunkNext = 0;
  }
  return new Float64Array(chunkSlab!, chunkNext++ * CAP * STRIDE * 8, CAP * STRIDE);
}

/**
 * An empty array whose elements V8 stores as doubles from the start. Keys are IOVAs, past 2^31 for most
 * devices (dma-iommu hands them out down from 4 GiB or from the DMA mask): an array that held only small
 * integers changes its elements kind, and its shape, at the first such key, which deoptimizes every
 * compiled function that reads it (the IOAS_MAP fast path's appendsAt and find).
 */
function doubleArray(): number[] {
  const a = [0.5];
  a.pop();
  return a;
}

export class AreaIndex {
  private recs: Float64Array[] = [];
  /** First and past-the-last used slot of each chunk. */
  private starts: number[] = [];
  private ends: number[] = [];
  /** Key of the first area of each chunk. */
  private firsts: number[] = doubleArray();
  /** The object areas, by iova. */
  private readonly objects = new Map<number, IoptArea>();
  /** Processes whose memory compact areas map (the index in meta). */
  private readonly procs: HostProcess[] = [];
  /** The pages objects of pages areas, by slot (R_PAGE), and the free slots. */
  private readonly pages: (IoptPages | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  size = 0;

  constructor(
    /** The run entries of the iommufd (shared with its other IOASes' indexes). */
    readonly runs: RunPages = new RunPages(),
  ) {}
  /**
   * Set by find(): the chunk and the index in it (from 0) of the area found, index -1 when none is
   * below the key.
   */
  posChunk = 0;
  posIndex = -1;

  /** The area with the greatest key <= k, read as `at` reads it (position in posChunk / posIndex). */
  locate(k: number): IoptArea | undefined {
    return this.find(k) ? this.view(this.posChunk, this.posIndex) : undefined;
  }

  /**
   * Sets posChunk / posIndex to the area with the greatest key <= k; false (posIndex -1) when there is
   * none. The chunk of the previous search is tried first (an unmap right after a map at the same
   * place, or a run of calls in order, skips the search over the chunks).
   */
  find(k: number): boolean {
    const firsts = this.firsts;
    let lo = 0;
    let hi = firsts.length - 1;
    const lastChunk = hi;
    if (hi < 0 || firsts[0] > k) {
      this.posChunk = 0;
      this.posIndex = -1;
      return false;
    }
    const f = this.posChunk;
    if (f <= hi && firsts[f] <= k && (f === hi || firsts[f + 1] > k)) lo = f;
    else {
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (firsts[mid] <= k) lo = mid;
        else hi = mid - 1;
      }
    }
    const r = this.recs[lo];
    const s = this.starts[lo];
    let b = this.ends[lo] - 1;
    // At or past the last key of the last chunk (calls in increasing IOVA order, a fault handler
    // mapping page after page): no search. Only there: in another chunk the extra load would be one
    // more cache miss for a random search.
    let a = lo === lastChunk && r[b * STRIDE] <= k ? b : s;
    while (a < b) {
      const mid = (a + b + 1) >>> 1;
      if (r[mid * STRIDE] <= k) a = mid;
      else b = mid - 1;
    }
    this.posChunk = lo;
    this.posIndex = a - s;
    return true;
  }

  /**
   * find(k) for a key past the last IOVA of every area (an append: a fault handler mapping page after
   * page at increasing IOVAs): sets posChunk / posIndex to the last area (posIndex -1 in an empty
   * index) and returns true when k > maxLast(); returns false, changing nothing, otherwise. A range
   * starting at k then overlaps no area, and the area with the greatest key <= its last is the last
   * one: the overlap check needs no search.
   */
  appendsAt(k: number): boolean {
    const c = this.recs.length - 1;
    if (c < 0) {
      this.posChunk = 0;
      this.posIndex = -1;
      return true;
    }
    const e = this.ends[c] - 1;
    // STRIDE 5 and R_LAST 1 written out (a module constant is a context load with a check per use).
    if (this.recs[c][e * 5 + 1] >= k) return false;
    this.posChunk = c;
    this.posIndex = e - this.starts[c];
    return true;
  }

  /** Offset in recs[c] of the record at (c, i), which must exist. */
  private off(c: number, i: number): number {
    return (this.starts[c] + i) * STRIDE;
  }

  /** iovaNum of the area at (c, i), which must exist. */
  keyAt(c: number, i: number): number {
    return this.recs[c][this.off(c, i)];
  }

  /** lastNum of the area at (c, i), which must exist. */
  lastAt(c: number, i: number): number {
    return this.recs[c][this.off(c, i) + R_LAST];
  }

  /** Whether the area at (c, i), which must exist, is a compact record (user memory, no pages object). */
  isCompact(c: number, i: number): boolean {
    return this.recs[c][this.off(c, i) + R_META] >= 0;
  }

  /** Whether the area at (c, i), which must exist, is an object area (an IoptArea kept by the index). */
  isObject(c: number, i: number): boolean {
    return this.recs[c][this.off(c, i) + R_META] === OBJECT;
  }

  /** Whether the area at (c, i), which must exist, is a run area (its entry numbers or an object). */
  isRun(c: number, i: number): boolean {
    const r = this.recs[c];
    const o = this.off(c, i);
    return r[o + R_META] <= PAGES_META && r[o + R_FRAME] === RUN;
  }

  /** The entry of the run area at (c, i), which must exist, while it is numbers; -1 for any other area. */
  runAt(c: number, i: number): number {
    const r = this.recs[c];
    const o = this.off(c, i);
    if (r[o + R_META] > PAGES_META || r[o + R_FRAME] !== RUN) return -1;
    const id = r[o + R_PAGE];
    return this.runs.object(id) === null ? id : -1;
  }

  /** The entry of the run area at (c, i), which must be one (isRun), in whatever state. */
  runIdAt(c: number, i: number): number {
    return this.recs[c][this.off(c, i) + R_PAGE];
  }

  /** IOMMU_READ | IOMMU_WRITE of the pages or run area at (c, i). */
  pagesProt(c: number, i: number): number {
    return (PAGES_META - this.recs[c][this.off(c, i) + R_META]) & 3;
  }

  /**
   * The compact area at (c, i) becomes a run area over a new entry that holds its state (one reference,
   * one pin per page when it is pinned): what sharePages makes of it, without an object. Returns the id.
   */
  toRun(c: number, i: number): number {
    const r = this.recs[c];
    const o = this.off(c, i);
    const meta = r[o + R_META];
    const pinned = (meta & META_PINNED) !== 0;
    const id = this.runs.add(this.procs[meta >>> META_PROC_SHIFT], r[o + R_PAGE], (meta & META_WRITE) !== 0, r[o + R_FRAME], pinned ? 1 : 0, 1);
    r[o + R_PAGE] = id;
    r[o + R_FRAME] = RUN;
    r[o + R_META] = PAGES_META - (meta & 3);
    return id;
  }

  /** The first frame of the compact area at (c, i) when it is pinned, else -1. */
  compactFrame(c: number, i: number): number {
    const r = this.recs[c];
    const o = this.off(c, i);
    return (r[o + R_META] & META_PINNED) !== 0 ? r[o + R_FRAME] : -1;
  }

  /** The process whose memory the compact area at (c, i) maps (its pins are charged to it). */
  compactProcess(c: number, i: number): HostProcess {
    return this.procs[this.recs[c][this.off(c, i) + R_META] >>> META_PROC_SHIFT];
  }

  /** The first user page (of compactProcess) that the compact area at (c, i) maps. */
  compactPage(c: number, i: number): number {
    return this.recs[c][this.off(c, i) + R_PAGE];
  }

  /** Whether the compact area at (c, i) maps its memory for writing (a write pin). */
  compactWritable(c: number, i: number): boolean {
    return (this.recs[c][this.off(c, i) + R_META] & META_WRITE) !== 0;
  }

  /** IOMMU_READ | IOMMU_WRITE of the compact area at (c, i). */
  compactProt(c: number, i: number): number {
    return this.recs[c][this.off(c, i) + R_META] & 3;
  }

  /**
   * Records the pin state of the compact area at (c, i): its pages pinned as the frames from `frame`
   * with one pin each, or not pinned when `frame` is -1. The caller has charged or uncharged them.
   */
  setCompactFrame(c: number, i: number, frame: number): void {
    const r = this.recs[c];
    const o = this.off(c, i);
    r[o + R_FRAME] = frame < 0 ? 0 : frame;
    r[o + R_META] = (r[o + R_META] & ~META_PINNED) | (frame >= 0 ? META_PINNED : 0);
  }

  /**
   * The compact area at (c, i), not pinned, whose pages have just been pinned (and charged) as
   * `runs`, in several runs of frames, which a record cannot hold: it becomes an object area whose
   * pages object has those runs as its pin segments (what pin() would have built). Returns it.
   */
  adoptPinnedRuns(c: number, i: number, runs: FrameRuns): IoptArea {
    const area = this.materialize(c, i);
    area.pages.adoptPinnedRuns(runs);
    return area;
  }

  /** Chunks in the index (positions (c, i) run over c in [0, chunkCount), i in [0, chunkLength(c))). */
  get chunkCount(): number {
    return this.recs.length;
  }

  /**
   * The area at position (c, i), if any, read without changing its record (see the file comment): the
   * object of an object area, a new IoptArea over the shared pages of a pages area, a snapshot of a
   * compact area.
   */
  at(c: number, i: number): IoptArea | undefined {
    if (c >= this.recs.length || i < 0 || i >= this.ends[c] - this.starts[c]) return undefined;
    return this.view(c, i);
  }

  /** The area at position (c, i), which must exist, as an object area of the index (a record becomes one for good). */
  objectAt(c: number, i: number): IoptArea {
    return this.materialize(c, i);
  }

  chunkLength(c: number): number {
    return c < this.recs.length ? this.ends[c] - this.starts[c] : 0;
  }

  /** The last area, read as `at` reads it. */
  lastArea(): IoptArea | undefined {
    const c = this.recs.length - 1;
    return c < 0 ? undefined : this.view(c, this.ends[c] - this.starts[c] - 1);
  }

  /** lastNum of the last area, -1 when there is none. */
  maxLast(): number {
    const c = this.recs.length - 1;
    return c < 0 ? -1 : this.recs[c][(this.ends[c] - 1) * STRIDE + R_LAST];
  }

  insert(area: IoptArea): void {
    const found = this.find(area.iovaNum);
    this.insertAt(this.posChunk, found ? this.posIndex + 1 : 0, area);
  }

  /**
   * Inserts the object area `area` at index i of chunk c: the place after the area find() found for a
   * key just below the area's (index 0 of chunk 0 when it found none). Nothing may have changed the
   * index since.
   */
  insertAt(c: number, i: number, area: IoptArea): void {
    const o = this.open(c, i, area.iovaNum);
    const r = this.recs[this.posChunk];
    r[o + R_LAST] = area.lastNum;
    r[o + R_META] = OBJECT;
    this.objects.set(area.iovaNum, area);
  }

  /**
   * Inserts a compact area (see the file comment) at index i of chunk c, as insertAt: user pages
   * [page, page + (last - iova + 1) / PAGE_SIZE) of `mm`, pinned from `frame` with one pin per page
   * when `frame` >= 0, unpinned when it is -1.
   */
  insertCompactAt(c: number, i: number, iova: number, last: number, mm: HostProcess, page: number, writable: boolean, frame: number, prot: number): void {
    let p = 0;
    const procs = this.procs;
    while (p < procs.length && procs[p] !== mm) p++;
    if (p === procs.length) procs.push(mm);
    const o = this.open(c, i, iova);
    const r = this.recs[this.posChunk];
    r[o + R_LAST] = last;
    r[o + R_PAGE] = page;
    r[o + R_FRAME] = frame < 0 ? 0 : frame;
    r[o + R_META] = prot | (writable ? META_WRITE : 0) | (frame >= 0 ? META_PINNED : 0) | (p << META_PROC_SHIFT);
  }

  /**
   * insertCompactAt of the one-page area [iova, iova + PAGE_SIZE) pinned at `frame` (>= 0). The record
   * is written here when it goes right after the last used slot of its chunk (an append: a fault
   * handler mapping page after page in IOVA order) and the chunk has a free slot there, or the chunk is
   * the last one and full (a new chunk after it takes the record), for the first process of `procs`;
   * anything else takes insertCompactAt. Either way the same record in the same place: open() takes
   * that slot, or starts that chunk, for such an insert too.
   */
  insertPageAt(c: number, i: number, iova: number, mm: HostProcess, page: number, writable: boolean, frame: number, prot: number): void {
    // The record layout and flags written out: STRIDE 5, R_LAST 1, R_PAGE 2, R_FRAME 3, R_META 4,
    // CAP 128, META_WRITE 4, META_PINNED 8, process 0 (a module constant is a context load with a
    // check at each use in compiled code).
    const recs = this.recs;
    if (c < recs.length && i !== 0 && this.procs[0] === mm) {
      let e = this.ends[c];
      if (this.starts[c] + i === e) {
        if (e === 128 && i === 128 && c === recs.length - 1) {
          // open()'s append to a full last chunk: a new chunk, the record its first.
          c = this.appendChunk();
          i = 0;
          e = 0;
          this.firsts[c] = iova;
        }
        if (e < 128) {
          const r = recs[c];
          const o = e * 5;
          r[o] = iova;
          r[o + 1] = iova + 4095;
          r[o + 2] = page;
          r[o + 3] = frame;
          r[o + 4] = prot | (writable === true ? 12 : 8);
          this.ends[c] = e + 1;
          this.size++;
          this.posChunk = c;
          this.posIndex = i;
          return;
        }
      }
    }
    this.insertCompactAt(c, i, iova, iova + 4095, mm, page, writable, frame, prot);
  }

  /** An empty chunk after the last one, whose index it returns (its first key is the caller's to set). */
  private appendChunk(): number {
    this.recs.push(newChunk());
    this.starts.push(0);
    this.ends.push(0);
    this.firsts.push(0);
    return this.recs.length - 1;
  }

  /**
   * Inserts a pages area at index i of chunk c, as insertAt: [iova, last] (last <= 2^53 - 1) mapping
   * `pages` from page `pageIndex`, byte `pageOffset` of it. The caller has taken the area's reference
   * on the pages (pages.get()).
   */
  insertPagesAt(c: number, i: number, iova: number, last: number, pages: IoptPages, pageIndex: number, pageOffset: number, prot: number): void {
    const slot = this.takeSlot(pages);
    const o = this.open(c, i, iova);
    const r = this.recs[this.posChunk];
    r[o + R_LAST] = last;
    r[o + R_PAGE] = slot;
    r[o + R_FRAME] = pageIndex;
    r[o + R_META] = PAGES_META - (prot | (pageOffset << 2));
  }

  /**
   * Inserts a run area at index i of chunk c, as insertAt: [iova, last] (last <= 2^53 - 1, page
   * aligned) over all of run entry `id`, whose reference the caller has taken.
   */
  insertRunAt(c: number, i: number, iova: number, last: number, id: number, prot: number): void {
    const o = this.open(c, i, iova);
    const r = this.recs[this.posChunk];
    r[o + R_LAST] = last;
    r[o + R_PAGE] = id;
    r[o + R_FRAME] = RUN;
    r[o + R_META] = PAGES_META - prot;
  }

  /** Inserts a pages area at its place (see insertPagesAt). */
  insertPages(iova: number, last: number, pages: IoptPages, pageIndex: number, pageOffset: number, prot: number): void {
    const found = this.find(iova);
    this.insertPagesAt(this.posChunk, found ? this.posIndex + 1 : 0, iova, last, pages, pageIndex, pageOffset, prot);
  }

  /**
   * The pages object of the area at (c, i), which must exist, so that another area can share it
   * (IOAS_COPY): a compact area becomes a pages area first, with the pages object its record implies
   * (as materialize builds it); a run area's entry becomes its IoptPages (shared with every area
   * referencing it); an object area's or a pages area's own.
   */
  sharePages(c: number, i: number): IoptPages {
    const r = this.recs[c];
    const o = this.off(c, i);
    const meta = r[o + R_META];
    if (meta === OBJECT) return this.objects.get(r[o])!.pages;
    if (meta <= PAGES_META) return r[o + R_FRAME] === RUN ? this.runs.toObject(r[o + R_PAGE], (r[o + R_LAST] - r[o] + 1) / PAGE_SIZE) : this.pages[r[o + R_PAGE]]!;
    const pages = this.recordPages(r, o);
    r[o + R_PAGE] = this.takeSlot(pages);
    r[o + R_FRAME] = 0;
    r[o + R_META] = PAGES_META - (meta & 3);
    return pages;
  }

  /**
   * Adds `delta` to num_accesses of the pages area at (c, i), which must exist (an access pinning a
   * compact area makes it a pages area first, sharePages; an object area's count is its own field).
   */
  addAccesses(c: number, i: number, delta: number): void {
    const r = this.recs[c];
    const o = this.off(c, i);
    r[o + R_META] -= delta * ACCESS_UNIT;
  }

  /** A free slot of `pages` holding `p`. */
  private takeSlot(p: IoptPages): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.pages.length;
    this.pages[slot] = p;
    return slot;
  }

  /**
   * Makes room for a record with key k at index i of chunk c and writes the key; returns the record's
   * offset in recs[posChunk] (posChunk / posIndex are left at it: a split may move it to the next chunk).
   */
  private open(c: number, i: number, k: number): number {
    this.size++;
    if (this.recs.length === 0) {
      this.recs.push(newChunk());
      this.starts.push(0);
      this.ends.push(0);
      this.firsts.push(k);
      c = 0;
      i = 0;
    } else if (this.ends[c] - this.starts[c] === CAP) {
      // Full: an append to the last chunk starts a new one (areas mapped in order fill chunks whole);
      // anything else splits the chunk in halves.
      const whole = c === this.recs.length - 1 && i === CAP;
      const keep = whole ? CAP : CAP / 2;
      const old = this.recs[c];
      const s = this.starts[c];
      const tail = newChunk();
      tail.set(old.subarray((s + keep) * STRIDE, (s + CAP) * STRIDE));
      this.recs.splice(c + 1, 0, tail);
      this.starts.splice(c + 1, 0, 0);
      this.ends.splice(c + 1, 0, CAP - keep);
      this.firsts.splice(c + 1, 0, whole ? k : tail[0]);
      this.ends[c] = s + keep;
      if (i > keep) {
        c++;
        i -= keep;
      } else if (whole) {
        c++;
        i = 0;
      }
    }
    const r = this.recs[c];
    const s = this.starts[c];
    const e = this.ends[c];
    const at = s + i;
    let slot: number;
    if (e < CAP && (s === 0 || e - at <= at - s)) {
      if (at < e) r.copyWithin((at + 1) * STRIDE, at * STRIDE, e * STRIDE);
      this.ends[c] = e + 1;
      slot = at;
    } else {
      if (at > s) r.copyWithin((s - 1) * STRIDE, s * STRIDE, at * STRIDE);
      this.starts[c] = s - 1;
      slot = at - 1;
    }
    const o = slot * STRIDE;
    r[o] = k;
    if (i === 0) this.firsts[c] = k;
    this.posChunk = c;
    this.posIndex = i;
    return o;
  }

  /** Removes the object area `area` (one objectAt or insertAt gave); anything else is left alone. */
  delete(area: IoptArea): void {
    const k = area.iovaNum;
    if (this.objects.get(k) === area && this.find(k)) this.deleteAt(this.posChunk, this.posIndex);
  }

  /**
   * Removes the area at (c, i). The area after it is then at (c, i), or at (c + 1, 0) when i was the
   * chunk's last index (at (c, 0) when the chunk emptied and went away).
   */
  deleteAt(c: number, i: number): void {
    const r = this.recs[c];
    const s = this.starts[c];
    const e = this.ends[c];
    const at = s + i;
    this.forget(r, at * STRIDE);
    this.size--;
    if (e - s === 1) {
      this.dropChunks(c, 1);
      return;
    }
    // The shorter side moves by one.
    if (at - s < e - 1 - at) {
      if (at > s) r.copyWithin((s + 1) * STRIDE, s * STRIDE, at * STRIDE);
      this.starts[c] = s + 1;
    } else {
      if (at < e - 1) r.copyWithin(at * STRIDE, (at + 1) * STRIDE, e * STRIDE);
      this.ends[c] = e - 1;
    }
    if (i === 0) this.firsts[c] = r[this.starts[c] * STRIDE];
  }

  /**
   * Removes the areas from position (c0, i0) up to, not including, position (c1, i1), which is at or
   * after it: (c1, 0) with c1 = chunkCount stands for the end. The chunks emptied go in one splice
   * (removing the first chunk of many one at a time moved every chunk after it each time: quadratic
   * in chunks for an unmap of everything).
   */
  deleteRange(c0: number, i0: number, c1: number, i1: number): void {
    if (c0 === c1) {
      if (i1 - i0 === 1) this.deleteAt(c0, i0);
      else if (i1 > i0) this.cutChunk(c0, i0, i1);
      return;
    }
    // The tail of c0, every chunk strictly between, the head of c1.
    for (let c = c0; c <= c1 && c < this.recs.length; c++) {
      const from = c === c0 ? i0 : 0;
      const to = c === c1 ? i1 : this.ends[c] - this.starts[c];
      this.forgetObjects(c, from, to);
      this.size -= to - from;
    }
    let first = c0;
    if (i0 > 0) {
      this.ends[c0] = this.starts[c0] + i0;
      first = c0 + 1;
    }
    let end = c1;
    if (c1 < this.recs.length && i1 > 0) {
      if (i1 === this.ends[c1] - this.starts[c1]) end = c1 + 1;
      else {
        this.starts[c1] += i1;
        this.firsts[c1] = this.recs[c1][this.starts[c1] * STRIDE];
      }
    }
    this.dropChunks(first, end - first);
  }

  /** Removes chunks [c, c + n), whose areas are gone; the process list goes with the last area. */
  private dropChunks(c: number, n: number): void {
    if (n > 0) {
      this.recs.splice(c, n);
      this.starts.splice(c, n);
      this.ends.splice(c, n);
      this.firsts.splice(c, n);
    }
    if (this.size === 0) {
      this.procs.length = 0;
      this.pages.length = 0;
      this.freeSlots.length = 0;
    }
  }

  /** Removes areas [i0, i1) of chunk c (at least one, not only one), leaving the chunk or dropping it when emptied. */
  private cutChunk(c: number, i0: number, i1: number): void {
    const r = this.recs[c];
    const s = this.starts[c];
    const e = this.ends[c];
    this.forgetObjects(c, i0, i1);
    const n = i1 - i0;
    this.size -= n;
    if (n === e - s) {
      this.dropChunks(c, 1);
      return;
    }
    // The shorter side moves by n.
    if (i0 < e - s - i1) {
      r.copyWithin((s + n) * STRIDE, s * STRIDE, (s + i0) * STRIDE);
      this.starts[c] = s + n;
    } else {
      r.copyWithin((s + i0) * STRIDE, (s + i1) * STRIDE, e * STRIDE);
      this.ends[c] = e - n;
    }
    if (i0 === 0) this.firsts[c] = r[this.starts[c] * STRIDE];
  }

  /** Drops the objects of the object areas, and frees the slots of the pages areas, among positions [i0, i1) of chunk c. */
  private forgetObjects(c: number, i0: number, i1: number): void {
    const r = this.recs[c];
    for (let o = (this.starts[c] + i0) * STRIDE, end = (this.starts[c] + i1) * STRIDE; o < end; o += STRIDE) this.forget(r, o);
  }

  /**
   * The record at offset o of r is going away: its object leaves `objects`, its pages slot is freed,
   * its run entry loses a reference.
   */
  private forget(r: Float64Array, o: number): void {
    const meta = r[o + R_META];
    if (meta === OBJECT) this.objects.delete(r[o]);
    else if (meta <= PAGES_META) {
      if (r[o + R_FRAME] === RUN) this.runs.unref(r[o + R_PAGE]);
      else this.freeSlot(r[o + R_PAGE]);
    }
  }

  private freeSlot(slot: number): void {
    this.pages[slot] = undefined;
    this.freeSlots.push(slot);
  }

  /**
   * Areas in key order, starting with the one at or below `k` (from the first when none is), read as
   * `at` reads them. Nothing may change the index while this runs.
   */
  *from(k: number): IterableIterator<IoptArea> {
    this.find(k);
    let c = this.posChunk;
    let i = this.posIndex < 0 ? 0 : this.posIndex;
    for (; c < this.recs.length; c++, i = 0) {
      for (; i < this.ends[c] - this.starts[c]; i++) yield this.view(c, i);
    }
  }

  /** The area at (c, i), which must exist, as `at` reads it. */
  private view(c: number, i: number): IoptArea {
    const r = this.recs[c];
    const o = this.off(c, i);
    const meta = r[o + R_META];
    if (meta === OBJECT) return this.objects.get(r[o])!;
    if (meta <= PAGES_META) {
      const x = PAGES_META - meta;
      const low = x % ACCESS_UNIT;
      if (r[o + R_FRAME] === RUN) {
        // The entry's IoptPages once it is one, else a snapshot of its numbers.
        const id = r[o + R_PAGE];
        const pages = this.runs.object(id) ?? this.runs.snapshot(id, (r[o + R_LAST] - r[o] + 1) / PAGE_SIZE);
        const run = new IoptArea(r[o], r[o + R_LAST], pages, 0, 0, low & 3);
        run.numAccesses = (x - low) / ACCESS_UNIT;
        return run;
      }
      const area = new IoptArea(r[o], r[o + R_LAST], this.pages[r[o + R_PAGE]]!, r[o + R_FRAME], low >>> 2, low & 3);
      area.numAccesses = (x - low) / ACCESS_UNIT;
      return area;
    }
    return new IoptArea(r[o], r[o + R_LAST], this.recordPages(r, o), 0, 0, meta & 3);
  }

  /**
   * The pages object a compact record at offset o of r stands for: what iopt_alloc_user_pages +
   * iopt_area_fill_domains would have left, a pages object of the user range referenced by the area
   * (users 1), one pin on each page when the area is filled.
   */
  private recordPages(r: Float64Array, o: number): IoptPages {
    const meta = r[o + R_META];
    const npages = (r[o + R_LAST] - r[o] + 1) / PAGE_SIZE;
    const mm = this.procs[meta >>> META_PROC_SHIFT];
    const pages = new IoptPages(npages, (meta & META_WRITE) !== 0, mm, { kind: 'user', mm, firstPage: r[o + R_PAGE] });
    if ((meta & META_PINNED) !== 0) pages.adoptPinnedRun(r[o + R_FRAME]);
    pages.get();
    return pages;
  }

  /** The IoptArea of the record at (c, i), which must exist: a compact or pages record becomes an object area. */
  private materialize(c: number, i: number): IoptArea {
    const r = this.recs[c];
    const o = this.off(c, i);
    const meta = r[o + R_META];
    if (meta === OBJECT) return this.objects.get(r[o])!;
    // A run area's entry becomes its IoptPages first: the object area shares it.
    if (meta <= PAGES_META && r[o + R_FRAME] === RUN) this.sharePages(c, i);
    const area = this.view(c, i);
    if (meta <= PAGES_META) this.forget(r, o);
    r[o + R_META] = OBJECT;
    this.objects.set(r[o], area);
    return area;
  }
}
