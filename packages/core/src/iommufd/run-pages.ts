/**
 * Pages objects kept as numbers (pages.c struct iopt_pages of one run of user memory), shared by the
 * areas of every IOAS of one iommufd: what IOAS_COPY of a whole compact area makes.
 *
 * IOMMU_IOAS_COPY hands the source areas' pages objects to the destination's areas (io_pagetable.c
 * iopt_get_pages takes a reference on each, iopt_map_pages moves it into the new area). A compact
 * record (area-index.ts) has no pages object to hand over; an IoptPages made for it would be ~220 B
 * on the heap per copied area. An entry here is what that IoptPages would hold while every area that
 * references it covers all of its pages: user pages [firstPage, firstPage + npages) of one process,
 * the same pin count on every page (one per filled area referencing it, pins > 0 meaning pinned and
 * charged once), the frames one run from `frame` while pinned, and the areas referencing it (the
 * kref, `refs`). Anything that state cannot hold (an access's pins, a copy or cut of part of it,
 * frames in several runs) makes the entry an IoptPages for good (`object`), which every area
 * referencing it then shares; nothing observable changes.
 *
 * Entries live in one Float64Array (STRIDE numbers each, a free list through freed entries), so an
 * entry is no heap object for the collector to trace.
 */
import type { HostProcess } from '../memory/process.js';
import { IoptPages } from './pages.js';

/** Numbers per entry: first user page, first frame, pins, refs, meta (process index << 2 | M_OBJECT | M_WRITE). */
const STRIDE = 5;
const E_PAGE = 0;
const E_FRAME = 1;
const E_PINS = 2;
const E_REFS = 3;
const E_META = 4;
const M_WRITE = 1;
/** The entry became an IoptPages (in `objs`). */
const M_OBJECT = 2;
const M_PROC_SHIFT = 2;

export class RunPages {
  private e = new Float64Array(STRIDE * 64);
  /** The IoptPages of the entries that became one (M_OBJECT), by id: few, so not an array as long as the entries. */
  private readonly objs = new Map<number, IoptPages>();
  /** Processes whose memory the entries map (the index in meta). */
  private readonly procs: HostProcess[] = [];
  /** Ids in use, the next never used id, and the head of the free list (-1: none; a freed entry's E_PAGE links the next). */
  size = 0;
  private top = 0;
  private freeHead = -1;

  /**
   * A new entry for user pages from `firstPage` of `mm`, `writable` for write pins, pinned from `frame`
   * with `pins` pins per page (pins 0: unpinned, frame ignored), referenced by `refs` areas. Returns its id.
   */
  add(mm: HostProcess, firstPage: number, writable: boolean, frame: number, pins: number, refs: number): number {
    let p = 0;
    const procs = this.procs;
    while (p < procs.length && procs[p] !== mm) p++;
    if (p === procs.length) procs.push(mm);
    let id = this.freeHead;
    if (id >= 0) this.freeHead = this.e[id * STRIDE + E_PAGE];
    else {
      id = this.top++;
      if (id * STRIDE === this.e.length) {
        const grown = new Float64Array(this.e.length * 2);
        grown.set(this.e);
        this.e = grown;
      }
    }
    const o = id * STRIDE;
    const e = this.e;
    e[o + E_PAGE] = firstPage;
    e[o + E_FRAME] = pins > 0 ? frame : 0;
    e[o + E_PINS] = pins;
    e[o + E_REFS] = refs;
    e[o + E_META] = (p << M_PROC_SHIFT) | (writable ? M_WRITE : 0);
    this.size++;
    return id;
  }

  /** The IoptPages entry `id` became, or null while it is numbers. */
  object(id: number): IoptPages | null {
    return (this.e[id * STRIDE + E_META] & M_OBJECT) !== 0 ? this.objs.get(id)! : null;
  }

  firstPage(id: number): number {
    return this.e[id * STRIDE + E_PAGE];
  }

  /** The first frame while pinned (pins > 0). */
  frame(id: number): number {
    return this.e[id * STRIDE + E_FRAME];
  }

  /** Pins on each page: 0 when not pinned. */
  pins(id: number): number {
    return this.e[id * STRIDE + E_PINS];
  }

  /** Areas referencing the entry (the pages object's users). */
  refs(id: number): number {
    return this.e[id * STRIDE + E_REFS];
  }

  writable(id: number): boolean {
    return (this.e[id * STRIDE + E_META] & M_WRITE) !== 0;
  }

  /** The process whose memory the entry maps; its pins are charged to it. */
  process(id: number): HostProcess {
    return this.procs[this.e[id * STRIDE + E_META] >>> M_PROC_SHIFT];
  }

  /** Sets the pins of every page, and the first frame when pinned; the caller charged or uncharged them. */
  setPins(id: number, pins: number, frame: number): void {
    const o = id * STRIDE;
    this.e[o + E_PINS] = pins;
    this.e[o + E_FRAME] = pins > 0 ? frame : 0;
  }

  /** One more area references the entry (kref_get). */
  ref(id: number): void {
    this.e[id * STRIDE + E_REFS]++;
  }

  /** An area referencing the entry went away; the entry goes with its last one. */
  unref(id: number): void {
    const o = id * STRIDE;
    if (--this.e[o + E_REFS] > 0) return;
    if ((this.e[o + E_META] & M_OBJECT) !== 0) this.objs.delete(id);
    this.e[o + E_META] = 0;
    this.e[o + E_PAGE] = this.freeHead;
    this.freeHead = id;
    if (--this.size === 0) {
      // Everything gone: start over (the processes are no longer referenced either, and a table that
      // a large copy grew is not kept).
      this.procs.length = 0;
      if (this.e.length > STRIDE * 4096) this.e = new Float64Array(STRIDE * 64);
      this.top = 0;
      this.freeHead = -1;
    }
  }

  /**
   * Entry `id` as an IoptPages of `npages` pages (what its state stands for: users = refs, the pins
   * as one segment), made once and then shared by every area referencing the entry: the entry's own
   * numbers are no longer read.
   */
  toObject(id: number, npages: number): IoptPages {
    const had = this.object(id);
    if (had !== null) return had;
    const pages = this.snapshot(id, npages);
    this.objs.set(id, pages);
    this.e[id * STRIDE + E_META] |= M_OBJECT;
    return pages;
  }

  /**
   * A new IoptPages with entry `id`'s state (numbers, not yet an object) over `npages` pages: a copy to
   * read; pinning or unpinning through it changes nothing.
   */
  snapshot(id: number, npages: number): IoptPages {
    const mm = this.process(id);
    const pages = new IoptPages(npages, this.writable(id), mm, { kind: 'user', mm, firstPage: this.firstPage(id) });
    const pins = this.pins(id);
    if (pins > 0) pages.adoptPinnedRun(this.frame(id), pins);
    pages.users = this.refs(id);
    return pages;
  }
}
