/**
 * The IOVA -> memory map of an IOAS (io_pagetable.c, pages.c): areas in a B+ tree keyed by IOVA,
 * allowed and reserved ranges, IOVA allocation, alignment raised by attached domains, and the
 * fan-out of every map and unmap into those domains.
 *
 * Addresses are bigint bytes here (the uAPI allows byte-granular IOVAs while no domain is attached);
 * domains receive 4 KiB page numbers.
 */
import * as btreeModule from 'sorted-btree';
import { fail } from '../uapi/errno.js';
import { ULONG_MAX } from '../uapi/iommufd.js';
import { PAGE_SIZE, FrameRuns } from '../memory/physical.js';
import type { HostProcess } from '../memory/process.js';
import { IoptPages, resolveUserPage, resolveUserRun } from './pages.js';
import { AreaIndex, IoptArea, SAFE, SAFE_BIG } from './area-index.js';
import { RunPages } from './run-pages.js';
import { IOMMU_READ, IOMMU_WRITE } from '../driver/pgtable.js';

const PAGE = BigInt(PAGE_SIZE);
/**
 * HPAGE_SIZE of an x86-64 kernel with transparent huge pages: iopt_alloc_iova never aligns an
 * automatically chosen IOVA to more than this.
 */
export const HPAGE_SIZE = 2n * 1024n * 1024n;

export { IoptPages };

// sorted-btree is CommonJS with an __esModule default export; Node and bundlers disagree on how a
// default import of it resolves, so take whichever shape arrives.
type BTreeCtor = typeof btreeModule.default.default;
/** The part of sorted-btree's map that the IOAS uses. */
interface SortedMap<K, V> {
  readonly size: number;
  set(key: K, value: V): boolean;
  delete(key: K): boolean;
  getPairOrNextLower(key: K): [K, V] | undefined;
  entries(lowestKey?: K): IterableIterator<[K, V]>;
  values(): IterableIterator<V>;
}
const btreeDefault = (btreeModule as unknown as { default: BTreeCtor | { default: BTreeCtor } }).default;
const BTreeImpl: BTreeCtor = 'default' in btreeDefault ? btreeDefault.default : btreeDefault;
const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** An emulated-device access attached to the IOAS (struct iommufd_access, as the iopt sees it). */
export interface IoptAccess {
  /** PAGE_SIZE for an access that pins pages, 1 for one that only reads and writes. */
  readonly iovaAlignment: bigint;
  /** ops->unmap: the access must unpin whatever it pinned in [iova, iova + length). */
  notifyUnmap(iova: bigint, length: bigint): void;
}

/** A domain (HWPT_PAGING) that mirrors this IOAS. */
export interface IoptDomain {
  /** Page sizes the domain maps; its smallest sets the IOAS alignment. */
  readonly pgsizeBitmap: bigint;
  /** Inclusive range of IOVAs the domain can translate. */
  readonly apertureStart: bigint;
  readonly apertureLast: bigint;
  /**
   * Maps [iovaPfn, iovaPfn + runs.pages) onto the frames of `runs` in order; returns 0 or a negative
   * errno, with nothing left mapped on failure. `allowHuge` is false when IOMMU_OPTION_HUGE_PAGES is 0.
   */
  mapPages(iovaPfn: number, runs: FrameRuns, prot: number, allowHuge: boolean): number;
  /** mapPages of the one page at `frame` (no run list): 0 or a negative errno, nothing mapped on failure. */
  mapPage(iovaPfn: number, frame: number, prot: number): number;
  /** Unmaps the range and invalidates every IOTLB holding it before returning. Never fails. */
  unmapPages(iovaPfn: number, npages: number): void;
}

/** A range of IOVAs in bytes, both ends inclusive (struct iommu_iova_range). */
export interface IovaRange {
  /** First IOVA of the range. */
  start: bigint;

  /** Inclusive. */
  last: bigint;
}

interface ReservedRange extends IovaRange {
  owner: object;
}

/** One element of a map request: a slice of pinned pages. */
export interface MapElement {
  pages: IoptPages;
  pageIndex: number;
  pageOffset: number;
  length: bigint;
}

export class IoPagetable {
  /** Areas starting below 2^53 (all of them once a domain is attached), by number. */
  private readonly low: AreaIndex;
  /** Areas starting at 2^53 or above (byte IOVAs of an IOAS without domains), by bigint. */
  private readonly high = new BTreeImpl(undefined, cmpBig as (a: unknown, b: unknown) => number) as unknown as SortedMap<bigint, IoptArea>;
  private reserved: ReservedRange[] = [];
  /** The reserved ranges as numbers (rounded above 2^53), for the number paths. */
  private reservedNum: number[] = [];
  private allowed: IovaRange[] = [];
  readonly domains: IoptDomain[] = [];
  private huge = true;
  /** iovaAlignment, recomputed only when a domain comes or goes or HUGE_PAGES changes. */
  private alignment: bigint | null = null;
  private alignmentNum = 0;

  constructor(
    /** The iommufd's run entries, which IOAS_COPY shares between its IOASes (run-pages.ts). */
    runs: RunPages = new RunPages(),
  ) {
    this.low = new AreaIndex(runs);
  }

  /** The run entries this IOAS's run areas reference (the iommufd's, shared by its IOASes). */
  get runs(): RunPages {
    return this.low.runs;
  }

  get areaCount(): number {
    return this.low.size + this.high.size;
  }

  /** IOMMU_OPTION_HUGE_PAGES. */
  get hugePages(): boolean {
    return this.huge;
  }

  set hugePages(enable: boolean) {
    this.huge = enable;
    this.alignment = null;
  }

  /** iova_alignment: 1 for a bare IOAS, raised by domains and by HUGE_PAGES = 0. */
  get iovaAlignment(): bigint {
    if (this.alignment !== null) return this.alignment;
    let a = this.huge ? 1n : PAGE;
    for (const d of this.domains) {
      const min = lowestBit(d.pgsizeBitmap);
      if (min > a) a = min;
    }
    for (const acc of this.accesses) if (acc.iovaAlignment > a) a = acc.iovaAlignment;
    this.alignment = a;
    this.alignmentNum = Number(a);
    return a;
  }

  /** iovaAlignment as a number (at most PAGE_SIZE once a domain is attached). */
  private get alignNum(): number {
    return this.alignment === null ? Number(this.iovaAlignment) : this.alignmentNum;
  }

  /**
   * iopt_disable_large_pages (IOMMU_OPTION_HUGE_PAGES = 0, VFIO_SET_IOMMU of VFIO_TYPE1_IOMMU):
   * refused (EINVAL) while domains hold mappings; then every area must be page aligned in IOVA,
   * length and offset into its first page (iopt_check_iova_alignment, EADDRINUSE).
   */
  disableLargePages(): void {
    if (!this.huge) return;
    if (this.domains.length > 0 && this.areaCount > 0) fail('EINVAL', 'cannot disable huge pages while domains hold mappings');
    if (this.badArea(PAGE, null) !== 0) fail('EADDRINUSE', 'an existing mapping is not page aligned');
    this.hugePages = false;
  }

  /**
   * iopt_cut_iova: splits the area holding each IOVA so that a new area starts right after it (an
   * IOVA that is already an area's last byte, or in no area, is left alone). iopt_area_split refuses
   * an area an access pins (EBUSY), a cut not aligned to the IOAS alignment in IOVA or in its pages
   * (EINVAL), and a cut through an area already mapped into domains with large pages (EINVAL).
   */
  cutIova(iovas: readonly bigint[]): void {
    for (const iova of iovas) {
      const found = this.areaAt(iova);
      if (found === undefined || found.last === iova) continue;
      // The area is replaced by its halves: it needs its identity (deleteArea).
      const a = this.areaObject(found);
      if (a.numAccesses > 0) fail('EBUSY', 'an access pins the area');
      const newStart = iova + 1n;
      const align = this.iovaAlignment;
      const startByte = newStart - a.iova + BigInt(a.pageOffset);
      if (newStart % align !== 0n || startByte % align !== 0n) fail('EINVAL', 'cut not aligned');
      if (this.domains.length > 0 && this.huge) fail('EINVAL', 'the area is mapped with large pages');
      // Both halves reference the same pages; a page-aligned cut keeps every page in exactly one
      // half, so the pins the area held are exactly the pins the halves hold.
      const rhsIndex = a.pageIndex + Number(startByte / PAGE);
      const rhsOffset = Number(startByte % PAGE);
      const lhs = new IoptArea(a.iova, iova, a.pages, a.pageIndex, a.pageOffset, a.prot);
      const rhs = new IoptArea(newStart, a.last, a.pages, rhsIndex, rhsOffset, a.prot);
      this.deleteArea(a);
      this.insertArea(lhs);
      this.insertArea(rhs);
      a.pages.get();
    }
  }

  // --- the area index ----------------------------------------------------------------------------

  /** The area with the greatest start <= iova. */
  private floorArea(iova: bigint): IoptArea | undefined {
    if (iova <= SAFE_BIG) return this.low.locate(Number(iova));
    const p = this.high.getPairOrNextLower(iova);
    return p !== undefined ? p[1] : this.low.lastArea();
  }

  private insertArea(a: IoptArea): void {
    if (a.iovaNum <= SAFE) this.low.insert(a);
    else this.high.set(a.iova, a);
  }

  private deleteArea(a: IoptArea): void {
    if (a.iovaNum <= SAFE) this.low.delete(a);
    else this.high.delete(a.iova);
  }

  // --- queries -----------------------------------------------------------------------------------

  /**
   * The areas meeting [start, last] in IOVA order. An area kept as a record in the index (see
   * area-index.ts) is given as a new IoptArea each time, which changes nothing: a pages area's over
   * its shared pages object, a compact area's as a snapshot with a pages object of its own (reading
   * it is exact; pinning or unpinning through it changes nothing). Compare areas by IOVA; areaObject
   * gives the area with an identity. Nothing may map or unmap while this runs.
   */
  *iterAreas(start = 0n, last = ULONG_MAX): IterableIterator<IoptArea> {
    if (start <= SAFE_BIG) {
      for (const a of this.low.from(Number(start))) {
        if (a.iova > last) return;
        if (a.last >= start) yield a;
      }
    } else {
      const tail = this.low.lastArea();
      if (tail !== undefined && tail.last >= start) {
        if (tail.iova > last) return;
        yield tail;
      }
    }
    const first = start > SAFE_BIG ? this.high.getPairOrNextLower(start) : undefined;
    const from = first && first[1].last >= start ? first[0] : start > SAFE_BIG ? start : SAFE_BIG;
    for (const [, a] of this.high.entries(from)) {
      if (a.iova > last) break;
      if (a.last >= start) yield a;
    }
  }

  /** First and last byte of the area firstSpan found. */
  private spanIova = 0n;
  private spanLast = 0n;
  /** forEachAreaIn's callback for firstSpan: keeps the first area's bounds and stops (made once). */
  private readonly takeSpan = (iova: bigint, last: bigint): true => {
    this.spanIova = iova;
    this.spanLast = last;
    return true;
  };

  /**
   * The bounds of the first area iterAreas(start, last) gives, in spanIova / spanLast, without making
   * a compact area an object (iopt_alloc_iova steps from hole to hole over every area it meets);
   * false when there is none.
   */
  private firstSpan(start: bigint, last: bigint): boolean {
    return this.forEachAreaIn(start, last, this.takeSpan);
  }

  /**
   * Calls `fn` for every area in IOVA order with its first 4 KiB page and its page count, and the
   * area as iterAreas gives it (an object area, or a new IoptArea over a pages area's shared pages):
   * null for a compact area or a run area whose entry is numbers (user memory that no access pins),
   * which stays a record. `fn` must not map or unmap.
   */
  forEachArea(fn: (pfn: number, npages: number, area: IoptArea | null) => void): void {
    const low = this.low;
    for (let c = 0; c < low.chunkCount; c++) {
      for (let i = 0, n = low.chunkLength(c); i < n; i++) {
        if (!low.isCompact(c, i) && low.runAt(c, i) < 0) {
          const a = low.at(c, i)!;
          fn(firstPfn(a), a.npages, a);
          continue;
        }
        const iova = low.keyAt(c, i);
        fn(Math.floor(iova / PAGE_SIZE), (low.lastAt(c, i) - iova + 1) / PAGE_SIZE, null);
      }
    }
    for (const a of this.high.values()) fn(firstPfn(a), a.npages, a);
  }

  /**
   * Calls `fn` with the first and last byte of every area that meets [start, last], in IOVA order (the
   * areas iterAreas gives), and the area as forEachArea gives it (null for a compact area, which stays
   * a record). `fn` must not map or unmap (turning a compact record into a pages area where it is, as
   * getElements does, moves nothing); it stops the walk by returning true, and then forEachAreaIn
   * returns true.
   */
  forEachAreaIn(start: bigint, last: bigint, fn: (iova: bigint, last: bigint, area: IoptArea | null) => boolean | void): boolean {
    const low = this.low;
    if (start <= SAFE_BIG) {
      const found = low.find(Number(start));
      let c = found ? low.posChunk : 0;
      let i = found ? low.posIndex : 0;
      for (; c < low.chunkCount; c++, i = 0) {
        for (const n = low.chunkLength(c); i < n; i++) {
          if (low.keyAt(c, i) > last) return false;
          if (!this.lowReaches(c, i, start)) continue;
          if (low.isCompact(c, i)) {
            if (fn(BigInt(low.keyAt(c, i)), BigInt(low.lastAt(c, i)), null) === true) return true;
          } else {
            const a = low.at(c, i)!;
            if (fn(a.iova, a.last, a) === true) return true;
          }
        }
      }
    } else {
      const c = low.chunkCount - 1;
      if (c >= 0 && this.lowReaches(c, low.chunkLength(c) - 1, start)) {
        const i = low.chunkLength(c) - 1;
        if (low.keyAt(c, i) > last) return false;
        // Reaching past 2^53 - 1, it is an object area (a compact area ends below 2^53).
        const a = low.at(c, i)!;
        if (fn(a.iova, a.last, a) === true) return true;
      }
    }
    const first = start > SAFE_BIG ? this.high.getPairOrNextLower(start) : undefined;
    const from = first && first[1].last >= start ? first[0] : start > SAFE_BIG ? start : SAFE_BIG;
    for (const [, a] of this.high.entries(from)) {
      if (a.iova > last) break;
      if (a.last >= start && fn(a.iova, a.last, a) === true) return true;
    }
    return false;
  }

  /** The area containing `iova`, if any, given as iterAreas gives it. */
  areaAt(iova: bigint): IoptArea | undefined {
    const a = this.floorArea(iova);
    return a && a.last >= iova ? a : undefined;
  }

  /**
   * The area `a` (one iterAreas or areaAt gave) as an area with an identity: an area kept as a record
   * becomes an object area for good.
   */
  areaObject(a: IoptArea): IoptArea {
    const low = this.low;
    return a.iovaNum <= SAFE && low.find(a.iovaNum) ? low.objectAt(low.posChunk, low.posIndex) : a;
  }

  /**
   * The area `a` (one iterAreas or areaAt gave) ready for an access's pins (iopt_area_add_access): its
   * pages shared, so that pinning through the returned area's pages pins the area's own. A compact
   * area becomes a pages area and a run area's entry an IoptPages (the index's sharePages); any other
   * area is returned as iterAreas gives it. Its num_accesses changes through addAccesses.
   */
  accessArea(a: IoptArea): IoptArea {
    const low = this.low;
    if (a.iovaNum > SAFE || !low.find(a.iovaNum)) return a;
    const c = low.posChunk;
    const i = low.posIndex;
    if (!low.isCompact(c, i) && low.runAt(c, i) < 0) return a;
    low.sharePages(c, i);
    return low.at(c, i)!;
  }

  /**
   * Adds `delta` to num_accesses of the area at `a`'s IOVA (an area iterAreas, areaAt or accessArea
   * gave; never a compact one) and returns the new count.
   */
  addAccesses(a: IoptArea, delta: number): number {
    const low = this.low;
    // A pages area's count is in its record (`a` is a copy of it, kept in step); an object area's is its own.
    if (a.iovaNum <= SAFE && low.find(a.iovaNum) && !low.isObject(low.posChunk, low.posIndex)) low.addAccesses(low.posChunk, low.posIndex, delta);
    return (a.numAccesses += delta);
  }

  private overlapsArea(start: bigint, last: bigint): boolean {
    // The area with the greatest start <= last (floorArea), read without making it an object.
    const low = this.low;
    if (last <= SAFE_BIG) return low.find(Number(last)) && this.lowReaches(low.posChunk, low.posIndex, start);
    const p = this.high.getPairOrNextLower(last);
    if (p !== undefined) return p[1].last >= start;
    const c = low.chunkCount - 1;
    return c >= 0 && this.lowReaches(c, low.chunkLength(c) - 1, start);
  }

  /** Whether the area at (c, i) of the low index ends at or after `x`, exactly. */
  private lowReaches(c: number, i: number, x: bigint): boolean {
    const lastNum = this.low.lastAt(c, i);
    // A number compares exactly with a bigint; only an object area can end past 2^53 - 1 (rounded).
    return lastNum <= SAFE ? lastNum >= x : this.low.at(c, i)!.last >= x;
  }

  /**
   * The first area, in IOVA order, whose IOVA, end or offset into its first page is not a multiple of
   * `align` (a power of two, at most PAGE_SIZE): 1; or, with an aperture [start, last], that lies
   * outside it: 2; 0 when there is none (iopt_check_iova_alignment and the aperture checks of
   * iopt_table_add_domain, per area in that order). Compact and run areas are read as records.
   */
  private badArea(align: bigint, aperture: IovaRange | null): 0 | 1 | 2 {
    const low = this.low;
    const alignNum = Number(align);
    const apStart = aperture === null ? 0n : aperture.start;
    const apLast = aperture === null ? ULONG_MAX : aperture.last;
    for (let c = 0; c < low.chunkCount; c++) {
      for (let i = 0, n = low.chunkLength(c); i < n; i++) {
        if (!low.isCompact(c, i) && !low.isRun(c, i)) {
          const bad = objectBad(low.at(c, i)!, align, apStart, apLast);
          if (bad !== 0) return bad;
          continue;
        }
        // A compact or run area: exact numbers below 2^53, its memory page aligned (offset 0).
        const iova = low.keyAt(c, i);
        const last = low.lastAt(c, i);
        if (notMultiple(iova, alignNum) || notMultiple(last + 1, alignNum)) return 1;
        if (iova < apStart || last > apLast) return 2;
      }
    }
    for (const a of this.high.values()) {
      const bad = objectBad(a, align, apStart, apLast);
      if (bad !== 0) return bad;
    }
    return 0;
  }

  /** overlapsArea for exact numbers (last <= 2^53 - 1): a rounded bound compares right against them. */
  private overlapsAreaNum(start: number, last: number): boolean {
    const low = this.low;
    return low.find(last) && low.lastAt(low.posChunk, low.posIndex) >= start;
  }

  private overlapsReserved(start: bigint, last: bigint): boolean {
    return this.reserved.some((r) => r.start <= last && r.last >= start);
  }

  private overlapsReservedNum(start: number, last: number): boolean {
    // Inside the gap between reserved ranges that the last check found: no overlap, no loop. The loop is
    // a function of its own, so that this check stays small enough for V8 to inline it into every IOAS
    // call that has it (the loop inlined with it took the inlining budget of IOAS_MAP's one-page path).
    return start >= this.gapStart && last <= this.gapLast ? false : this.overlapsReservedLoop(start, last);
  }

  /** overlapsReservedNum outside the gap it remembers: every reserved range checked, and the gap around [start, last] remembered. */
  private overlapsReservedLoop(start: number, last: number): boolean {
    const r = this.reservedNum;
    let gapStart = 0;
    let gapLast = Number.POSITIVE_INFINITY;
    for (let i = 0; i < r.length; i += 2) {
      if (r[i] <= last && r[i + 1] >= start) return true;
      if (r[i + 1] < start && r[i + 1] + 1 > gapStart) gapStart = r[i + 1] + 1;
      if (r[i] > last && r[i] - 1 < gapLast) gapLast = r[i] - 1;
    }
    this.gapStart = gapStart;
    this.gapLast = gapLast;
    return false;
  }

  /**
   * A range of IOVAs (numbers) that meets no reserved range: the gap around the last range
   * overlapsReservedNum found free (empty when gapStart > gapLast). Reset whenever the reserved ranges change.
   */
  // Doubles from the start (an empty gap: +Infinity to -Infinity): a gap's ends are IOVAs, past 2^31 as
  // soon as one reserved range is (the MSI window at 0xfee00000), and a field that first held small
  // integers changes the IOPT's shape when it takes one, which deoptimizes every compiled function that
  // reads an IOPT (IOAS_MAP's fast path: checkOneNum, mapUserNum).
  private gapStart = Number.POSITIVE_INFINITY;
  private gapLast = Number.NEGATIVE_INFINITY;

  /** IOAS_IOVA_RANGES: allowed ranges (or everything) minus reserved ranges. */
  usableRanges(): IovaRange[] {
    // The holes of the reserved ranges, as the kernel reports them; the allowed list only restricts
    // where IOVAs are allocated (and which reservations may be added), it does not narrow this list.
    return subtract([{ start: 0n, last: ULONG_MAX }], this.reserved);
  }

  allowedRanges(): IovaRange[] {
    return this.allowed.map((r) => ({ ...r }));
  }

  reservedRanges(): IovaRange[] {
    return this.reserved.map(({ start, last }) => ({ start, last }));
  }

  // --- allowed / reserved ------------------------------------------------------------------------

  /**
   * IOAS_ALLOW_IOVAS: replaces the allowed list atomically. The ranges are loaded one by one
   * (iommufd_ioas_load_iovas): `range(i)` reads range i (a user copy may fault there), then
   * start >= last or an overlap with an earlier range is EINVAL; finally iopt_set_allow_iova
   * refuses a range that intersects a reserved one (EADDRINUSE).
   */
  setAllowed(count: number, range: (i: number) => IovaRange): void {
    const sorted: IovaRange[] = [];
    for (let i = 0; i < count; i++) {
      const r = range(i);
      if (r.start >= r.last) fail('EINVAL', 'allowed range start must be below last');
      // Binary search for the insertion point; the neighbours tell whether it overlaps.
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid].start < r.start) lo = mid + 1;
        else hi = mid;
      }
      if ((lo > 0 && sorted[lo - 1].last >= r.start) || (lo < sorted.length && sorted[lo].start <= r.last)) fail('EINVAL', 'allowed ranges overlap');
      sorted.splice(lo, 0, { start: r.start, last: r.last });
    }
    for (const r of sorted) if (this.overlapsReserved(r.start, r.last)) fail('EADDRINUSE', 'allowed range intersects a reserved range');
    this.allowed = sorted;
  }

  /**
   * Reserves ranges on behalf of `owner` (a device's reserved regions, a domain's aperture). Fails
   * with EADDRINUSE, reserving nothing, when a range intersects a mapping or an allowed range.
   */
  addReserved(owner: object, ranges: IovaRange[]): void {
    for (const r of ranges) {
      if (this.overlapsArea(r.start, r.last)) fail('EADDRINUSE', `reserved range 0x${r.start.toString(16)}-0x${r.last.toString(16)} is mapped`);
      if (this.allowed.some((a) => a.start <= r.last && a.last >= r.start)) fail('EADDRINUSE', 'reserved range intersects an allowed range');
    }
    for (const r of ranges) this.reserved.push({ start: r.start, last: r.last, owner });
    this.setReservedNum();
  }

  removeReserved(owner: object): void {
    this.reserved = this.reserved.filter((r) => r.owner !== owner);
    this.setReservedNum();
  }

  /** reservedNum from `reserved`; the gap overlapsReservedNum knows is forgotten. */
  private setReservedNum(): void {
    this.reservedNum = rangesAsNumbers(this.reserved);
    this.gapStart = Number.POSITIVE_INFINITY;
    this.gapLast = Number.NEGATIVE_INFINITY;
  }

  // --- domains -----------------------------------------------------------------------------------

  /**
   * Checks that a domain could be added: the alignment it implies fits every area, and its aperture
   * holds every area. Throws the kernel's errno.
   */
  checkDomain(d: IoptDomain): void {
    const align = maxBig(this.iovaAlignment, lowestBit(d.pgsizeBitmap));
    if (align > PAGE) fail('EINVAL', 'domain page size is larger than PAGE_SIZE');
    const bad = this.badArea(align, { start: d.apertureStart, last: d.apertureLast });
    if (bad === 1) fail('EADDRINUSE', 'an existing mapping is not aligned for the domain');
    if (bad === 2) fail('EADDRINUSE', 'an existing mapping lies outside the domain aperture');
  }

  /**
   * iopt_table_add_domain: adds a domain and fills it with every area (iopt_fill_domain). The first
   * domain pins the pages of every area (EFAULT, ENOMEM surface here, not at MAP). On failure nothing
   * changes.
   */
  addDomain(d: IoptDomain): void {
    this.checkDomain(d);
    // Everything outside the domain's aperture becomes reserved (iopt_table_add_domain).
    const outside: IovaRange[] = [];
    if (d.apertureStart > 0n) outside.push({ start: 0n, last: d.apertureStart - 1n });
    if (d.apertureLast < ULONG_MAX) outside.push({ start: d.apertureLast + 1n, last: ULONG_MAX });
    this.addReserved(d, outside);
    const first = this.domains.length === 0;
    const low = this.low;
    // iopt_fill_domain: each area in IOVA order (the low index, then the areas past 2^53) is pinned
    // when this is the first domain and mapped into it (iopt_area_fill_domain); on a failure the areas
    // before it are taken out of the domain again (out_unfill) and the reservations dropped.
    let c = 0;
    let i = 0;
    let high = 0;
    try {
      for (; c < low.chunkCount; c++, i = 0) for (; i < low.chunkLength(c); i++) this.fillPosition(d, c, i, first);
      for (const a of this.high.values()) {
        this.fillObject(d, a, first);
        high++;
      }
    } catch (e) {
      this.unfillDomain(d, c, i, high, first);
      this.removeReserved(d);
      throw e;
    }
    this.domains.push(d);
    this.alignment = null;
  }

  /**
   * iopt_area_fill_domain of the area at (c, i) of the low index into `d`, pinning it first when `d`
   * is the first domain (then a failure leaves it unpinned). A compact area stays a record: its
   * pages are resolved and charged as pin() would (pfn_reader_user_pin: EFAULT; the charge: ENOMEM),
   * and mapped from the run of frames; frames in several runs make it an object area. A run area is
   * pinned through its entry (pinRun).
   */
  private fillPosition(d: IoptDomain, c: number, i: number, first: boolean): void {
    const low = this.low;
    if (!low.isCompact(c, i)) {
      const id = low.runAt(c, i);
      if (id < 0) this.fillObject(d, low.at(c, i)!, first);
      else this.fillRun(d, c, i, id, first);
      return;
    }
    const iova = low.keyAt(c, i);
    const npages = (low.lastAt(c, i) - iova + 1) / PAGE_SIZE;
    const mm = low.compactProcess(c, i);
    const runs = areaRuns;
    runs.clear();
    if (first) {
      resolveUserRun(mm, low.compactPage(c, i), npages, low.compactWritable(c, i), runs);
      mm.chargePinned(npages);
    } else runs.push(low.compactFrame(c, i), npages);
    const rc = d.mapPages(Math.floor(iova / PAGE_SIZE), runs, low.compactProt(c, i), this.huge);
    if (rc < 0) {
      if (first) mm.unchargePinned(npages);
      notPopulated(rc);
    }
    if (!first) return;
    if (runs.length === 1) low.setCompactFrame(c, i, runs.first[0]);
    else low.adoptPinnedRuns(c, i, runs);
  }

  /** fillPosition of a run area over entry `id`: the entry pinned once more (or for the first time), the area mapped from its run. */
  private fillRun(d: IoptDomain, c: number, i: number, id: number, first: boolean): void {
    const low = this.low;
    const iova = low.keyAt(c, i);
    const npages = (low.lastAt(c, i) - iova + 1) / PAGE_SIZE;
    const runs = areaRuns;
    runs.clear();
    if (first) this.pinRun(id, npages, runs);
    else runs.push(low.runs.frame(id), npages);
    const rc = d.mapPages(Math.floor(iova / PAGE_SIZE), runs, low.pagesProt(c, i), this.huge);
    if (rc < 0) {
      if (first) this.unpinRun(id, npages);
      notPopulated(rc);
    }
  }

  /** fillPosition of an object area. */
  private fillObject(d: IoptDomain, a: IoptArea, first: boolean): void {
    if (first) a.pages.pin(a.pageIndex, a.npages);
    const rc = mapAreaInto(d, a, this.huge);
    if (rc < 0) {
      if (first) a.pages.unpin(a.pageIndex, a.npages);
      notPopulated(rc);
    }
  }

  /**
   * Takes the areas before position (cEnd, iEnd) of the low index, then the first `highEnd` areas past
   * 2^53, out of `d` (iopt_area_unmap_domain), in IOVA order, and with `unpin` drops the pins their
   * domains held (iopt_area_unfill_domain, the last domain going; a compact area's pages have one pin
   * each, so all of them are unpinned and uncharged). Compact areas stay records.
   */
  private unfillDomain(d: IoptDomain, cEnd: number, iEnd: number, highEnd: number, unpin: boolean): void {
    const low = this.low;
    for (let c = 0; c <= cEnd && c < low.chunkCount; c++) {
      const n = c === cEnd ? iEnd : low.chunkLength(c);
      for (let i = 0; i < n; i++) {
        const id = low.isCompact(c, i) ? -1 : low.runAt(c, i);
        if (id >= 0) {
          // A run area: out of the domain, its entry's pin dropped with the last domain.
          const iova = low.keyAt(c, i);
          const npages = (low.lastAt(c, i) - iova + 1) / PAGE_SIZE;
          d.unmapPages(Math.floor(iova / PAGE_SIZE), npages);
          if (unpin) this.unpinRun(id, npages);
          continue;
        }
        if (!low.isCompact(c, i)) {
          const a = low.at(c, i)!;
          unmapAreaFrom(d, a);
          if (unpin) a.pages.unpin(a.pageIndex, a.npages);
          continue;
        }
        const iova = low.keyAt(c, i);
        const npages = (low.lastAt(c, i) - iova + 1) / PAGE_SIZE;
        d.unmapPages(Math.floor(iova / PAGE_SIZE), npages);
        if (unpin) {
          low.compactProcess(c, i).unchargePinned(npages);
          low.setCompactFrame(c, i, -1);
        }
      }
    }
    let h = 0;
    for (const a of this.high.values()) {
      if (h++ >= highEnd) break;
      unmapAreaFrom(d, a);
      if (unpin) a.pages.unpin(a.pageIndex, a.npages);
    }
  }

  /** Removes a domain, unmapping every area from it; the last domain unpins the areas' pages (iopt_unfill_domain). */
  removeDomain(d: IoptDomain): void {
    const i = this.domains.indexOf(d);
    if (i < 0) return;
    this.unfillDomain(d, this.low.chunkCount, 0, Infinity, this.domains.length === 1);
    this.domains.splice(i, 1);
    this.removeReserved(d);
    this.alignment = null;
  }

  // --- IOVA allocation ---------------------------------------------------------------------------

  /**
   * iopt_alloc_iova: the alignment is min(roundup_pow_of_two(length), lowest set bit of the address)
   * (roundup_pow_of_two(length) for address 0), capped at HPAGE_SIZE, and never below the IOAS
   * alignment (EINVAL). Candidates are the holes between reserved ranges and areas inside each
   * allowed range (or [PAGE_SIZE, ULONG_MAX - PAGE_SIZE]), each clamped to that default window; in
   * each hole the start is ALIGN(hole start, alignment) | (address % PAGE_SIZE) and must leave
   * `length` bytes before the hole's last byte (__alloc_iova_check_range). Does not return 0.
   */
  allocIova(length: bigint, uptr: bigint): bigint {
    if (length === 0n || length >= ULONG_MAX / 2n) fail('EOVERFLOW', 'length too large to allocate');
    let align = roundupPow2(length);
    if (uptr !== 0n) align = minBig(align, lowestBit(uptr));
    if (align >= HPAGE_SIZE) align = HPAGE_SIZE;
    if (align < this.iovaAlignment) fail('EINVAL', 'user address is not aligned enough for the attached domains');
    const pageOffset = uptr % PAGE;
    const lo = PAGE;
    const hi = ULONG_MAX - PAGE;
    const windows: IovaRange[] = [];
    if (this.allowed.length === 0) windows.push({ start: lo, last: hi });
    for (const w of this.allowed) {
      const start = w.start > lo ? w.start : lo;
      const last = w.last < hi ? w.last : hi;
      if (start <= last) windows.push({ start, last });
    }
    for (const w of subtract(windows, this.reserved)) {
      let cursor = w.start;
      for (;;) {
        // The hole from `cursor` to the next area (or the end of the window).
        const area = this.firstSpan(cursor, w.last);
        const areaIova = this.spanIova;
        const areaLast = this.spanLast;
        if (area && areaIova <= cursor) {
          if (areaLast >= w.last) break;
          cursor = areaLast + 1n;
          continue;
        }
        const holeLast = !area ? w.last : areaIova - 1n;
        const start = alignUp(cursor, align) | pageOffset;
        if (start < holeLast && holeLast - start >= length - 1n) return start;
        if (!area || areaLast >= w.last) break;
        cursor = areaLast + 1n;
      }
    }
    return fail('ENOSPC', 'no free IOVA range large enough');
  }

  // --- map / unmap -------------------------------------------------------------------------------

  /**
   * Inserts areas for `elements` at `iova` (fixed) or at an allocated IOVA, maps them into every
   * domain, and returns the IOVA. All or nothing.
   */
  mapElements(elements: MapElement[], iova: bigint | null, prot: number, uptrHint?: bigint): bigint {
    let length = 0n;
    for (const e of elements) length += e.length;
    iova = this.placeRange(length, iova, uptrHint ?? BigInt(elements[0].pageOffset));
    // iopt_insert_area, per element: a writable mapping of read-only pages, then the page offset.
    for (const e of elements) {
      checkWritable(prot, e.pages.writable);
      this.checkPageOffset(e.pageOffset);
    }

    const areas: IoptArea[] = [];
    let cur = iova;
    for (const e of elements) {
      areas.push(new IoptArea(cur, cur + e.length - 1n, e.pages, e.pageIndex, e.pageOffset, prot));
      cur += e.length;
    }
    // iopt_fill_domains_pages: each area pins its pages and maps them into every domain.
    for (let i = 0; i < areas.length; i++) {
      try {
        this.fillArea(areas[i]);
      } catch (e) {
        for (let j = 0; j < i; j++) this.unfillArea(areas[j]);
        throw e;
      }
    }
    // Below 2^53 each area goes into the index as a pages area, a record over its pages object (which
    // IOAS_COPY shares with the source's areas): no IoptArea is kept.
    for (const a of areas) {
      a.pages.get();
      if (a.lastNum <= SAFE) this.low.insertPages(a.iovaNum, a.lastNum, a.pages, a.pageIndex, a.pageOffset, a.prot);
      else this.insertArea(a);
    }
    return iova;
  }

  /**
   * iopt_alloc_area_pages up to the areas: the length (zero or not a multiple of the IOAS alignment:
   * EINVAL), then an allocated IOVA, or iopt_check_iova of a fixed one (alignment EINVAL, overflow
   * EOVERFLOW, reserved EINVAL, an existing area EEXIST). A fixed IOVA may lie outside the allowed
   * ranges: those only steer allocation. Returns the IOVA; changes nothing.
   */
  placeRange(length: bigint, iova: bigint | null, uptrHint: bigint): bigint {
    const align = this.iovaAlignment;
    if (length === 0n || length % align !== 0n) fail('EINVAL', `length must be a non-zero multiple of the IOAS alignment ${align}`);
    if (iova === null) return this.allocIova(length, uptrHint);
    if (iova % align !== 0n) fail('EINVAL', `iova must be a multiple of the IOAS alignment ${align}`);
    const last = iova + length - 1n;
    if (last > ULONG_MAX) fail('EOVERFLOW', 'iova + length overflows');
    if (this.overlapsReserved(iova, last)) fail('EINVAL', 'range overlaps a reserved IOVA range');
    if (this.overlapsArea(iova, last)) fail('EEXIST', 'range overlaps an existing mapping');
    return iova;
  }

  /** iopt_insert_area: the offset into the first page must be aligned like the IOVA. */
  checkPageOffset(pageOffset: number): void {
    if (pageOffset % this.alignNum !== 0) fail('EINVAL', 'user address offset is not aligned for the attached domains');
  }

  /**
   * mapElements of one element: the same checks in the same order, in numbers when the fixed range
   * lies below 2^53 (no array, no BigInt); anything else goes through mapElements.
   */
  mapOne(pages: IoptPages, pageIndex: number, pageOffset: number, length: bigint, iova: bigint | null, prot: number, uptrHint?: bigint): bigint {
    const start = iova === null || iova > SAFE_BIG ? -1 : Number(iova);
    const len = length > SAFE_BIG ? -1 : Number(length);
    // start + len - 1 <= 2^53 - 1 without rounding: start <= SAFE - len (both exact).
    if (iova === null || start < 0 || len < 0 || start > SAFE - len) {
      return this.mapElements([{ pages, pageIndex, pageOffset, length }], iova, prot, uptrHint);
    }
    this.mapOneNum(pages, pageIndex, pageOffset, len, start, prot);
    return iova;
  }

  /**
   * mapOne of a fixed range given in numbers, with start >= 0, len >= 0 and start + len - 1 <= 2^53 - 1
   * (all exact): the same checks in the same order, no BigInt.
   */
  mapOneNum(pages: IoptPages, pageIndex: number, pageOffset: number, len: number, start: number, prot: number): void {
    this.checkOneNum(pageOffset, len, start);
    // The overlap check located the area with the greatest start <= last; with no overlap it is the
    // one before `start`, so the new area goes right after it: no second search. fillArea does not
    // change the index.
    const low = this.low;
    const c = low.posChunk;
    const i = low.posIndex + 1;
    const last = start + len - 1;
    const a = new IoptArea(start, last, pages, pageIndex, pageOffset, prot);
    this.fillArea(a);
    pages.get();
    low.insertAt(c, i, a);
  }

  /**
   * mapOneNum of page-aligned user memory: [page, page + len / PAGE_SIZE) of `mm` at the fixed IOVA
   * `start` (len a non-zero multiple of PAGE_SIZE, start + len - 1 <= 2^53 - 1), without a pages object:
   * the area goes into the index as a compact record (area-index.ts) when its pages are one run of
   * frames, which holds whenever they are unpinned or a single page; otherwise it gets a pages object
   * whose pin segments are the runs just resolved. The steps and errors are
   * mapOneNum's, in the kernel's order: iopt_map_pages (iopt_alloc_area_pages: the length, alignment,
   * reserved and EEXIST checks, then the page offset, which is 0 here), then iopt_fill_domains_pages
   * (pfn_reader_user_pin faults the pages in: EFAULT; incr_user_locked_vm charges them: ENOMEM; then
   * iopt_area_fill_domain for each domain, undone on failure).
   */
  mapUserNum(mm: HostProcess, page: number, writable: boolean, len: number, start: number, prot: number): void {
    this.checkOneNum(0, len, start);
    const low = this.low;
    const c = low.posChunk;
    const i = low.posIndex + 1;
    const last = start + len - 1;
    // 4096 is PAGE_SIZE written out: an imported constant is a module-context load with a type check
    // at each use in compiled code.
    const npages = len / 4096;
    const domains = this.domains;
    if (domains.length === 0) {
      // Lazy pinning: nothing is pinned until a domain or an access needs the pages.
      low.insertCompactAt(c, i, start, last, mm, page, writable, -1, prot);
      return;
    }
    const pfn = start / 4096;
    if (npages === 1) {
      // One page (a fault handler's map): its frame, with no run list to build and read back.
      const frame = resolveUserPage(mm, page, writable);
      mm.chargePinned(1);
      for (let d = 0; d < domains.length; d++) {
        const rc = domains[d].mapPage(pfn, frame, prot);
        if (rc < 0) refused(domains, d, pfn, 1, mm, rc);
      }
      low.insertCompactAt(c, i, start, last, mm, page, writable, frame, prot);
      return;
    }
    const runs = pinRuns;
    runs.clear();
    resolveUserRun(mm, page, npages, writable, runs);
    mm.chargePinned(npages);
    const huge = this.huge;
    for (let d = 0; d < domains.length; d++) {
      const rc = domains[d].mapPages(pfn, runs, prot, huge);
      if (rc < 0) refused(domains, d, pfn, npages, mm, rc);
    }
    if (runs.length === 1) {
      low.insertCompactAt(c, i, start, last, mm, page, writable, runs.first[0], prot);
      return;
    }
    // Frames in several runs: a pages object holding them as its pin segments, as pin() builds them.
    const pages = new IoptPages(npages, writable, mm, { kind: 'user', mm, firstPage: page });
    pages.adoptPinnedRuns(runs);
    pages.get();
    low.insertAt(c, i, new IoptArea(start, last, pages, 0, 0, prot));
  }

  /**
   * mapUserNum of one page: user page `pageHi * 2^20 + pageLo` of `mm` at IOVA page
   * `iovaHi * 2^20 + iovaLo` (each a u64 address's high word and bits 31:12 of its low word, below
   * 2^21 and 2^20: small integers whatever the address, where a page number past 2^31 would be a heap
   * number allocated for the call). The steps, errors and their order are mapUserNum's for a length
   * of PAGE_SIZE at a page-aligned IOVA: io_pagetable.c iopt_alloc_area_pages (the length against the
   * IOAS alignment, EINVAL; then iopt_check_iova: the IOVA's alignment, which a page-aligned IOVA
   * passes whenever the length did, a reserved range EINVAL, an area EEXIST; iopt_insert_area's page
   * offset, 0), then iopt_fill_domains_pages (the pin: EFAULT; the charge: ENOMEM; each domain, undone
   * on failure). One call with the checks written out: a fault handler maps page after page this way.
   */
  mapUserPage(mm: HostProcess, pageHi: number, pageLo: number, writable: boolean, iovaHi: number, iovaLo: number, prot: number): void {
    // 4096 is PAGE_SIZE and 1048576 2^20 written out (an imported constant is a context load with a
    // check at each use in compiled code).
    const align = this.alignment === null ? this.alignNum : this.alignmentNum;
    // A power of two: PAGE_SIZE is a multiple of it exactly when it is at most PAGE_SIZE.
    if (align > 4096) fail('EINVAL', `length must be a non-zero multiple of the IOAS alignment ${this.iovaAlignment}`);
    const pfn = iovaHi * 1048576 + iovaLo;
    // The IOVA in bytes as a double from its first operation (`* 0.5 * 8192`, exact: powers of two): V8
    // compiles `pfn * 4096` for the small integers it saw (IOVAs below 2^31) and deoptimized this path at
    // the first IOVA from 2^31 up; so are the sums with it below (`last`, the index's record).
    const start = pfn * 0.5 * 8192;
    const last = start + 4095;
    // overlapsReservedNum's first test, here: inside the gap the last check found, no call.
    if ((start < this.gapStart || last > this.gapLast) && this.overlapsReservedNum(start, last)) fail('EINVAL', 'range overlaps a reserved IOVA range');
    const low = this.low;
    if (!low.appendsAt(start) && this.overlapsAreaNum(start, last)) fail('EEXIST', 'range overlaps an existing mapping');
    const c = low.posChunk;
    const i = low.posIndex + 1;
    const page = pageHi * 1048576 + pageLo;
    const domains = this.domains;
    if (domains.length === 0) {
      // Lazy pinning: nothing is pinned until a domain or an access needs the pages.
      low.insertCompactAt(c, i, start, last, mm, page, writable, -1, prot);
      return;
    }
    const frame = resolveUserPage(mm, page, writable);
    mm.chargePinned(1);
    for (let d = 0; d < domains.length; d++) {
      const rc = domains[d].mapPage(pfn, frame, prot);
      if (rc < 0) refused(domains, d, pfn, 1, mm, rc);
    }
    low.insertPageAt(c, i, start, mm, page, writable, frame, prot);
  }

  /**
   * placeRange and checkPageOffset of a fixed range in numbers (start + len - 1 <= 2^53 - 1, all
   * exact), in the kernel's order. Changes nothing.
   */
  checkOneNum(pageOffset: number, len: number, start: number): void {
    const align = this.alignNum;
    if (len === 0 || notMultiple(len, align)) fail('EINVAL', `length must be a non-zero multiple of the IOAS alignment ${this.iovaAlignment}`);
    if (notMultiple(start, align)) fail('EINVAL', `iova must be a multiple of the IOAS alignment ${this.iovaAlignment}`);
    const last = start + len - 1;
    if (this.overlapsReservedNum(start, last)) fail('EINVAL', 'range overlaps a reserved IOVA range');
    // Past every area (appendsAt): no overlap and the index position set, without a search.
    if (!this.low.appendsAt(start) && this.overlapsAreaNum(start, last)) fail('EEXIST', 'range overlaps an existing mapping');
    if (notMultiple(pageOffset, align)) fail('EINVAL', 'user address offset is not aligned for the attached domains');
  }

  /**
   * iopt_area_fill_domains: with domains attached, pins the area's pages (EFAULT, ENOMEM) and maps
   * them into every domain; all or nothing. Without domains nothing is pinned (lazy pinning).
   */
  private fillArea(a: IoptArea): void {
    const domains = this.domains;
    if (domains.length === 0) return;
    a.pages.pin(a.pageIndex, a.npages);
    const huge = this.huge;
    for (let i = 0; i < domains.length; i++) {
      const rc = mapAreaInto(domains[i], a, huge);
      if (rc < 0) {
        for (let j = 0; j < i; j++) unmapAreaFrom(domains[j], a);
        a.pages.unpin(a.pageIndex, a.npages);
        fail(refusedCode(rc), 'the domain refused the mapping');
      }
    }
  }

  /** iopt_area_unfill_domains: unmaps the area from every domain and drops its pins. */
  private unfillArea(a: IoptArea): void {
    const domains = this.domains;
    if (domains.length === 0) return;
    for (let d = 0; d < domains.length; d++) unmapAreaFrom(domains[d], a);
    a.pages.unpin(a.pageIndex, a.npages);
  }

  /**
   * iopt_unmap_iova_range: removes, in IOVA order, every area inside [start, last]. Meeting an area
   * that crosses either end stops with ENOENT, the areas before it already removed (the kernel does
   * not roll them back). An area an access still pins is first notified to every access of the IOAS
   * (iommufd_access_notify_unmap); an access still pinning it afterwards would make the kernel retry
   * 100 times and give up with EDEADLK, which the model returns at once. Returns the bytes unmapped
   * (0 when nothing was mapped: the caller decides whether that is an error).
   */
  unmapRange(start: bigint, last: bigint): bigint {
    let bytes = 0n;
    if (this.accesses.size === 0 && start <= SAFE_BIG) {
      if (last <= SAFE_BIG) return BigInt(this.unmapRangeNum(Number(start), Number(last)));
      // A range past 2^53 (unmap-all): the areas below 2^53 in numbers first (compact ones stay
      // records) when none of them reaches past 2^53 - 1, then the rest as below; the order is the
      // same, IOVA order.
      if (this.low.maxLast() <= SAFE) bytes = BigInt(this.unmapRangeNum(Number(start), SAFE));
    }
    for (;;) {
      const next = this.iterAreas(start, last).next();
      if (next.done) break;
      let a = next.value;
      if (a.iova < start || a.last > last) {
        this.lastUnmapped = bytes;
        fail('ENOENT', 'a mapping crosses the boundary of the range (no split)');
      }
      if (a.numAccesses > 0) {
        for (const acc of [...this.accesses]) acc.notifyUnmap(a.iova, a.length);
        // Read again (a record's count lives in the index); gone or changed: look again.
        const again = this.areaAt(a.iova);
        if (again === undefined || again.iova !== a.iova) continue;
        a = again;
        if (a.numAccesses > 0) {
          this.lastUnmapped = bytes;
          fail('EDEADLK', 'an access did not unpin the range it was told to unmap');
        }
      }
      // An area kept as a record (it ends below 2^53) goes as unmapRangeNum takes it, by position.
      const low = this.low;
      if (a.lastNum <= SAFE && low.find(a.iovaNum) && !low.isObject(low.posChunk, low.posIndex)) this.unmapRangeNum(a.iovaNum, a.lastNum);
      else this.removeArea(this.areaObject(a));
      bytes += a.length;
    }
    return bytes;
  }

  /**
   * unmapRange for a range below 2^53 without accesses, in numbers. Requires
   * 0 <= start <= last <= 2^53 - 1.
   */
  unmapRangeNum(start: number, last: number): number {
    const low = this.low;
    let bytes = 0;
    // One search; the areas are unfilled in IOVA order and taken out of the index together, before
    // returning or failing (nothing reads the index in between).
    const found = low.find(start);
    let c = low.posChunk;
    let i = low.posIndex;
    // The area at or below `start` counts only if it reaches `start`; otherwise begin after it.
    if (!found || low.lastAt(c, i) < start) i++;
    if (i >= low.chunkLength(c)) {
      c++;
      i = 0;
    }
    const c0 = c;
    const i0 = i;
    for (;; i++) {
      if (i >= low.chunkLength(c)) {
        c++;
        i = 0;
      }
      if (i >= low.chunkLength(c)) break;
      const iova = low.keyAt(c, i);
      const areaLast = low.lastAt(c, i);
      if (iova > last) break;
      if (iova < start || areaLast > last) {
        low.deleteRange(c0, i0, c, i);
        this.lastUnmapped = BigInt(bytes);
        fail('ENOENT', 'a mapping crosses the boundary of the range (no split)');
      }
      // Unfilling touches the domains and the pins, never the index, so (c, i) stays valid.
      if (low.isCompact(c, i)) {
        // iopt_area_unfill_domains of a compact area: out of every domain, then its pins dropped
        // (one per page, so every page is unpinned and uncharged).
        const domains = this.domains;
        const frame = low.compactFrame(c, i);
        const npages = (areaLast - iova + 1) / PAGE_SIZE;
        for (let d = 0; d < domains.length; d++) domains[d].unmapPages(iova / PAGE_SIZE, npages);
        if (frame >= 0) low.compactProcess(c, i).unchargePinned(npages);
      } else if (low.runAt(c, i) >= 0) {
        // A run area: out of every domain, its pin on the entry dropped; its reference goes with the
        // record (deleteRange).
        const domains = this.domains;
        const npages = (areaLast - iova + 1) / PAGE_SIZE;
        for (let d = 0; d < domains.length; d++) domains[d].unmapPages(iova / PAGE_SIZE, npages);
        if (domains.length > 0) this.unpinRun(low.runAt(c, i), npages);
      } else {
        const a = low.at(c, i)!;
        this.unfillArea(a);
        a.pages.put();
      }
      bytes += areaLast - iova + 1;
    }
    low.deleteRange(c0, i0, c, i);
    return bytes;
  }

  /** Bytes removed by the last unmapRange that failed part-way (the kernel's `unmapped`). */
  lastUnmapped = 0n;
  /** Accesses attached to this IOAS (iopt->access_list). */
  readonly accesses = new Set<IoptAccess>();

  /**
   * iopt_add_access: the access's alignment joins the IOAS alignment (iopt_calculate_iova_alignment:
   * EADDRINUSE when an existing area does not meet it).
   */
  addAccess(acc: IoptAccess): void {
    this.accesses.add(acc);
    this.alignment = null;
    if (this.badArea(this.iovaAlignment, null) !== 0) {
      this.accesses.delete(acc);
      this.alignment = null;
      fail('EADDRINUSE', 'an existing mapping is not aligned for the access');
    }
  }

  removeAccess(acc: IoptAccess): void {
    this.accesses.delete(acc);
    this.alignment = null;
  }

  /** Unmaps everything; returns the bytes unmapped (0 for an empty IOAS). */
  unmapAll(): bigint {
    return this.unmapRange(0n, ULONG_MAX);
  }

  private removeArea(a: IoptArea): void {
    this.unfillArea(a);
    this.deleteArea(a);
    a.pages.put();
  }

  /**
   * iopt_get_pages: the areas exactly covering [start, start + length) without holes, as map elements
   * (IOAS_COPY) that share the areas' pages objects; ENOENT when any byte is unmapped. A compact area
   * becomes a pages area on the way (its pages object is then shared, which a compact record cannot
   * express), a run area's entry an IoptPages; nothing else changes. The general handler's path; the
   * fast one is gatherNum / mapGatheredNum.
   */
  getElements(start: bigint, length: bigint): MapElement[] {
    const last = start + length - 1n;
    const out: MapElement[] = [];
    let expect = start;
    const low = this.low;
    this.forEachAreaIn(start, last, (iova, _last, area) => {
      if (iova > expect) fail('ENOENT', 'the source range has a hole');
      let a = area;
      if (a === null || (a.iovaNum <= SAFE && low.find(a.iovaNum) && low.isRun(low.posChunk, low.posIndex))) {
        // A compact area (below 2^53) hands its pages over by becoming a pages area where it is, a run
        // area by its entry becoming an IoptPages.
        low.find(Number(iova));
        low.sharePages(low.posChunk, low.posIndex);
        a = low.at(low.posChunk, low.posIndex)!;
      }
      const from = expect;
      const to = a.last < last ? a.last : last;
      const byteInArea = Number(from - a.iova) + a.pageOffset;
      out.push({ pages: a.pages, pageIndex: a.pageIndex + Math.floor(byteInArea / PAGE_SIZE), pageOffset: byteInArea % PAGE_SIZE, length: to - from + 1n });
      expect = to + 1n;
      return expect > last;
    });
    if (expect <= last) fail('ENOENT', 'the source range is not fully mapped');
    return out;
  }

  // --- IOAS_COPY in numbers ----------------------------------------------------------------------

  /**
   * iopt_get_pages of [start, last] (0 <= start <= last <= 2^53 - 1) in numbers, into `out`: the areas
   * exactly covering the range without holes (ENOENT at the first hole, or when the range is not
   * covered to its end), one element each. A compact area the range covers whole becomes a run area
   * (its state an entry of the iommufd's RunPages, no object), and a run area covered whole gives its
   * entry: the destination's area will reference the same entry. Any other area gives its pages
   * object (a compact area becomes a pages area for it, a run area's entry an IoptPages), as
   * getElements does. Nothing observable changes.
   */
  gatherNum(start: number, last: number, out: CopyList): void {
    const low = this.low;
    out.clear();
    let expect = start;
    const found = low.find(start);
    let c = low.posChunk;
    let i = low.posIndex;
    // The area at or below `start` counts only if it reaches `start`; otherwise begin after it.
    if (!found || low.lastAt(c, i) < start) i++;
    for (;; i++) {
      if (i >= low.chunkLength(c)) {
        c++;
        i = 0;
      }
      if (i >= low.chunkLength(c)) break;
      const key = low.keyAt(c, i);
      if (key > last) break;
      if (key > expect) fail('ENOENT', 'the source range has a hole');
      // Rounded only past 2^53 - 1, beyond `last`: the minimum is exact.
      const areaLast = low.lastAt(c, i);
      const to = areaLast < last ? areaLast : last;
      const whole = expect === key && to === areaLast;
      if (whole && low.isCompact(c, i)) out.push(low.toRun(c, i), null, 0, 0, to - expect + 1);
      else if (whole && low.isRun(c, i)) out.push(low.runIdAt(c, i), null, 0, 0, to - expect + 1);
      else {
        const pages = low.sharePages(c, i);
        const a = low.at(c, i)!;
        const byte = expect - key + a.pageOffset;
        const pageIndex = Math.floor(byte / PAGE_SIZE);
        out.push(-1, pages, a.pageIndex + pageIndex, byte - pageIndex * PAGE_SIZE, to - expect + 1);
      }
      expect = to + 1;
      if (expect > last) return;
    }
    fail('ENOENT', 'the source range is not fully mapped');
  }

  /**
   * iopt_map_pages of the elements gatherNum left in `el` (from this or another IOAS of the same
   * iommufd), `len` bytes in all, at the fixed IOVA `start` (start + len - 1 <= 2^53 - 1) or, with
   * `start` -1, at an IOVA iopt_alloc_iova picks from the address of the first copied byte in its
   * pages (user VA or file offset, iopt_alloc_area_pages' hint): mapElements' steps in numbers. In the
   * kernel's order: the length (EINVAL), the IOVA (allocated: EOVERFLOW, EINVAL, ENOSPC; fixed:
   * alignment EINVAL, reserved EINVAL, EEXIST), then per element a writable mapping of read-only pages
   * (EPERM) and its page offset (EINVAL) (iopt_insert_area); then iopt_fill_domains_pages, element by
   * element, undone on failure (EFAULT, ENOMEM); all or nothing. A run element's area references the
   * entry (a run area), any other a pages area over its pages object: no object per area. Returns the
   * IOVA, or -1 having changed nothing when the allocated IOVA lies past the number range (the caller
   * then takes the general path).
   */
  mapGatheredNum(el: CopyList, len: number, start: number, prot: number): number {
    let iova = start;
    // checkOneNum's checks with a page offset of 0 are iopt_check_iova's; placeRange allocates.
    if (iova >= 0) this.checkOneNum(0, len, iova);
    else {
      const id = el.id(0);
      const hint = id >= 0 ? BigInt(this.low.runs.firstPage(id)) * PAGE : el.pages[0]!.base + BigInt(el.pageIndex(0)) * PAGE + BigInt(el.pageOffset(0));
      const at = this.placeRange(BigInt(len), null, hint);
      if (at > BigInt(SAFE - len + 1)) return -1;
      iova = Number(at);
    }
    const rp = this.low.runs;
    const n = el.n;
    for (let k = 0; k < n; k++) {
      const id = el.id(k);
      checkWritable(prot, id >= 0 ? rp.writable(id) : el.pages[k]!.writable);
      this.checkPageOffset(el.pageOffset(k));
    }
    if (this.domains.length > 0) {
      let at = iova;
      for (let k = 0; k < n; k++) {
        try {
          this.fillElement(el, k, at, prot);
        } catch (e) {
          for (let j = 0, back = iova; j < k; j++) {
            this.unfillElement(el, j, back);
            back += el.length(j);
          }
          throw e;
        }
        at += el.length(k);
      }
    }
    // The areas go in one after the other from the place of the first (nothing is between them).
    const low = this.low;
    const found = low.find(iova);
    let c = low.posChunk;
    let i = found ? low.posIndex + 1 : 0;
    let at = iova;
    for (let k = 0; k < n; k++) {
      const id = el.id(k);
      const length = el.length(k);
      if (id >= 0) {
        rp.ref(id);
        rp.object(id)?.get();
        low.insertRunAt(c, i, at, at + length - 1, id, prot);
      } else {
        const pages = el.pages[k]!;
        pages.get();
        low.insertPagesAt(c, i, at, at + length - 1, pages, el.pageIndex(k), el.pageOffset(k), prot);
      }
      c = low.posChunk;
      i = low.posIndex + 1;
      at += length;
    }
    return iova;
  }

  /**
   * iopt_area_fill_domains of element k of `el` placed at `iova`: its pages pinned (a run entry's
   * through pinRun) and mapped into every domain, all or nothing.
   */
  private fillElement(el: CopyList, k: number, iova: number, prot: number): void {
    const domains = this.domains;
    const runs = areaRuns;
    const pfn = Math.floor(iova / PAGE_SIZE);
    const npages = el.npages(k);
    const id = el.id(k);
    // An entry that became an IoptPages (here or since gatherNum) is pinned through it.
    const pages = id >= 0 ? this.low.runs.object(id) : el.pages[k]!;
    const first = id >= 0 ? 0 : el.pageIndex(k);
    runs.clear();
    if (pages === null) this.pinRun(id, npages, runs);
    else {
      pages.pin(first, npages);
      pages.pinnedRuns(first, npages, runs);
    }
    for (let d = 0; d < domains.length; d++) {
      const rc = domains[d].mapPages(pfn, runs, prot, this.huge);
      if (rc < 0) {
        for (let j = 0; j < d; j++) domains[j].unmapPages(pfn, npages);
        if (pages === null) this.unpinRun(id, npages);
        else pages.unpin(first, npages);
        fail(refusedCode(rc), 'the domain refused the mapping');
      }
    }
  }

  /** iopt_area_unfill_domains of element k of `el` placed at `iova` (fillElement undone). */
  private unfillElement(el: CopyList, k: number, iova: number): void {
    const domains = this.domains;
    const npages = el.npages(k);
    for (let d = 0; d < domains.length; d++) domains[d].unmapPages(Math.floor(iova / PAGE_SIZE), npages);
    const id = el.id(k);
    if (id >= 0) this.unpinRun(id, npages);
    else el.pages[k]!.unpin(el.pageIndex(k), npages);
  }

  /**
   * One more pin on every page of run entry `id` (`npages` pages), whose frames are appended to `out`:
   * pages not pinned yet are faulted in and charged first (pfn_reader_user_pin: EFAULT; the charge:
   * ENOMEM; nothing changed on failure), as IoptPages.pin does. Frames in several runs, which an entry
   * cannot hold, make the entry its IoptPages (pinned as pin() would have left it).
   */
  private pinRun(id: number, npages: number, out: FrameRuns): void {
    const rp = this.low.runs;
    const pins = rp.pins(id);
    if (pins > 0) {
      rp.setPins(id, pins + 1, rp.frame(id));
      out.push(rp.frame(id), npages);
      return;
    }
    const mm = rp.process(id);
    resolveUserRun(mm, rp.firstPage(id), npages, rp.writable(id), out);
    mm.chargePinned(npages);
    if (out.length === 1) rp.setPins(id, 1, out.first[0]);
    else rp.toObject(id, npages).adoptPinnedRuns(out);
  }

  /** Drops the pin pinRun took on every page of run entry `id` (through its IoptPages if it became one); at none they are uncharged. */
  private unpinRun(id: number, npages: number): void {
    const rp = this.low.runs;
    const pages = rp.object(id);
    if (pages !== null) {
      pages.unpin(0, npages);
      return;
    }
    const pins = rp.pins(id) - 1;
    rp.setPins(id, pins, rp.frame(id));
    if (pins === 0) rp.process(id).unchargePinned(npages);
  }
}

/**
 * The elements of an IOAS_COPY in numbers (iopt_pages_list): per element a run entry, or a pages
 * object with the page index and offset of its first byte, and its length. Reused from call to call
 * (kept while small: a copy of a million areas does not keep its list).
 */
export class CopyList {
  /** Per element: run entry id (-1 for a pages object), page index, page offset, length. */
  private v = new Float64Array(4 * 64);
  /** The pages object of each element that is not a run entry (null for one that is). */
  readonly pages: (IoptPages | null)[] = [];
  n = 0;

  /** Empties the list (its references to pages objects dropped). */
  clear(): void {
    if (this.v.length > 4 * 65536) {
      this.v = new Float64Array(4 * 64);
      this.pages.length = 0;
    } else for (let k = 0; k < this.n; k++) this.pages[k] = null;
    this.n = 0;
  }

  /** Appends an element: run entry `id` (pages null, from page 0), or (id -1) `pages` from `pageIndex`, `pageOffset`. */
  push(id: number, pages: IoptPages | null, pageIndex: number, pageOffset: number, length: number): void {
    const k = this.n++;
    if (k * 4 === this.v.length) {
      const grown = new Float64Array(this.v.length * 2);
      grown.set(this.v);
      this.v = grown;
    }
    const o = k * 4;
    this.v[o] = id;
    this.v[o + 1] = pageIndex;
    this.v[o + 2] = pageOffset;
    this.v[o + 3] = length;
    if (k < this.pages.length) this.pages[k] = pages;
    else this.pages.push(pages);
  }

  /** Run entry of element k, -1 when it is a pages object. */
  id(k: number): number {
    return this.v[k * 4];
  }

  pageIndex(k: number): number {
    return this.v[k * 4 + 1];
  }

  pageOffset(k: number): number {
    return this.v[k * 4 + 2];
  }

  length(k: number): number {
    return this.v[k * 4 + 3];
  }

  /** Pages element k spans. */
  npages(k: number): number {
    return Math.ceil((this.v[k * 4 + 2] + this.v[k * 4 + 3]) / PAGE_SIZE);
  }
}

/** A domain refused an area while it was being filled at attach (iopt_fill_domain): ENOMEM or EINVAL. */
function notPopulated(rc: number): never {
  return fail(rc === -12 ? 'ENOMEM' : 'EINVAL', 'could not populate the domain');
}

/** iopt_insert_area: a writable mapping of pages pinned read-only is EPERM. */
function checkWritable(prot: number, writable: boolean): void {
  if (prot & IOMMU_WRITE && !writable) fail('EPERM', 'the pages are not writable');
}

/** The errno of a domain's mapPages refusing pages (0 or a negative errno), as iopt_area_fill_domains returns it. */
function refusedCode(rc: number): 'ENOMEM' | 'EEXIST' | 'EINVAL' {
  return rc === -12 ? 'ENOMEM' : rc === -17 ? 'EEXIST' : 'EINVAL';
}

/**
 * x % align !== 0 for an integer 0 <= x < 2^53 and a power of two `align` up to 2^31 (every IOAS
 * alignment is one, at most PAGE_SIZE): `x >>> 0` is x modulo 2^32 exactly, which keeps the bits below
 * `align`. Unlike `%` of a value past 2^31 (a double modulo, a call into the C library in compiled
 * code) or a division, this is a truncation and a mask.
 */
function notMultiple(x: number, align: number): boolean {
  return ((x >>> 0) & (align - 1)) !== 0;
}

/**
 * Domain `d` refused the pages of a new area that mapUserNum pinned ([pfn, pfn + npages), charged to
 * `mm`) with errno `rc`: the domains before it unmap them, the charge goes back (iopt_area_fill_domains'
 * undo), and the map fails.
 */
function refused(domains: readonly IoptDomain[], d: number, pfn: number, npages: number, mm: HostProcess, rc: number): never {
  for (let j = 0; j < d; j++) domains[j].unmapPages(pfn, npages);
  mm.unchargePinned(npages);
  fail(refusedCode(rc), 'the domain refused the mapping');
}

/** badArea's test of one object area. */
function objectBad(a: IoptArea, align: bigint, apStart: bigint, apLast: bigint): 0 | 1 | 2 {
  if (a.iova % align !== 0n || (a.last + 1n) % align !== 0n || BigInt(a.pageOffset) % align !== 0n) return 1;
  return a.iova < apStart || a.last > apLast ? 2 : 0;
}

/** The 4 KiB page holding the area's first byte (a domain maps only IOVAs below 2^53). */
function firstPfn(a: IoptArea): number {
  return a.iovaNum <= SAFE ? Math.floor(a.iovaNum / PAGE_SIZE) : Number(a.iova / PAGE);
}

/** Scratch for the frame runs of one area while it is mapped into a domain. */
const areaRuns = new FrameRuns();
/** Scratch for the frames mapUserNum pins. */
const pinRuns = new FrameRuns();

/** Maps a pinned area into a domain (iopt_area_fill_domain). */
function mapAreaInto(d: IoptDomain, a: IoptArea, allowHuge: boolean): number {
  areaRuns.clear();
  a.pages.pinnedRuns(a.pageIndex, a.npages, areaRuns);
  return d.mapPages(firstPfn(a), areaRuns, a.prot, allowHuge);
}

function unmapAreaFrom(d: IoptDomain, a: IoptArea): void {
  d.unmapPages(firstPfn(a), a.npages);
}

/** [start0, last0, start1, last1, ...] as numbers (rounded above 2^53). */
function rangesAsNumbers(ranges: readonly IovaRange[]): number[] {
  const out: number[] = [];
  for (const r of ranges) out.push(Number(r.start), Number(r.last));
  return out;
}

export function protFromMapFlags(writeable: boolean, readable: boolean): number {
  return (readable ? IOMMU_READ : 0) | (writeable ? IOMMU_WRITE : 0);
}

function lowestBit(v: bigint): bigint {
  if (v === 0n) return 1n;
  return v & -v;
}

function roundupPow2(v: bigint): bigint {
  let p = 1n;
  while (p < v) p <<= 1n;
  return p;
}

function alignUp(v: bigint, a: bigint): bigint {
  return ((v + a - 1n) / a) * a;
}

const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/** `ranges` minus `holes`, both inclusive; result sorted. */
function subtract(ranges: readonly IovaRange[], holes: readonly IovaRange[]): IovaRange[] {
  const sortedHoles = [...holes].sort((a, b) => cmpBig(a.start, b.start));
  const out: IovaRange[] = [];
  for (const r of ranges) {
    let cur = r.start;
    let open = true;
    for (const h of sortedHoles) {
      if (h.last < cur || h.start > r.last) continue;
      if (h.start > cur) out.push({ start: cur, last: h.start - 1n });
      if (h.last >= r.last) {
        open = false;
        break;
      }
      cur = h.last + 1n;
    }
    if (open && cur <= r.last) out.push({ start: cur, last: r.last });
  }
  return out;
}
