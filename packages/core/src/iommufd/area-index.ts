/**
 * The areas of an IOAS (io_pagetable.h struct iopt_area) and the index that finds them by IOVA: an area
 * maps [iova, last] onto a run of an IoptPages, and the index keeps areas whose first byte a double
 * holds exactly in sorted chunks of numbers, so that one IOAS call searches once.
 */
import { PAGE_SIZE } from '../memory/physical.js';
import type { IoptPages } from './pages.js';

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

/**
 * The areas whose first byte is below 2^53, keyed by that byte as a number: a sorted list of sorted
 * chunks of at most 2 * CHUNK areas (a two-level B-tree). Each chunk keeps its keys in a Float64Array
 * beside its areas, so a search compares numbers in one small array instead of loading an area per
 * step. locate() leaves the position it found, and insertAt() / deleteAt() take it, so that a map or
 * an unmap call searches once.
 */
const CHUNK = 64;
const CHUNK_CAPACITY = 2 * CHUNK + 1;
export class AreaIndex {
  private chunks: IoptArea[][] = [];
  /** Keys of each chunk's areas (iovaNum), in the first chunk.length slots. */
  private keys: Float64Array[] = [];
  /** Last bytes of each chunk's areas (lastNum), beside `keys`: an overlap check loads no area. */
  private lasts: Float64Array[] = [];
  /** Key of the first area of each chunk. */
  private firsts: number[] = [];
  size = 0;
  /** Set by locate(): the chunk and index of the area found, index -1 when none is below the key. */
  posChunk = 0;
  posIndex = -1;

  /** The area with the greatest key <= k (position in posChunk / posIndex). */
  locate(k: number): IoptArea | undefined {
    return this.find(k) ? this.chunks[this.posChunk][this.posIndex] : undefined;
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
    const keys = this.keys[lo];
    let a = 0;
    let b = this.chunks[lo].length - 1;
    while (a < b) {
      const mid = (a + b + 1) >>> 1;
      if (keys[mid] <= k) a = mid;
      else b = mid - 1;
    }
    this.posChunk = lo;
    this.posIndex = a;
    return true;
  }

  /** lastNum of the area at (c, i), which must exist. */
  lastAt(c: number, i: number): number {
    return this.lasts[c][i];
  }

  /** The area at position (c, i), if any. */
  at(c: number, i: number): IoptArea | undefined {
    const chunk = this.chunks[c];
    return chunk === undefined ? undefined : chunk[i];
  }

  chunkLength(c: number): number {
    const chunk = this.chunks[c];
    return chunk === undefined ? 0 : chunk.length;
  }

  lastArea(): IoptArea | undefined {
    const chunk = this.chunks[this.chunks.length - 1];
    return chunk === undefined ? undefined : chunk[chunk.length - 1];
  }

  insert(area: IoptArea): void {
    const found = this.locate(area.iovaNum);
    this.insertAt(this.posChunk, found === undefined ? 0 : this.posIndex + 1, area);
  }

  /**
   * Inserts `area` at index i of chunk c: the place after the area locate() found for a key just
   * below the area's (index 0 of chunk 0 when it found none). Nothing may have changed the index since.
   */
  insertAt(c: number, i: number, area: IoptArea): void {
    const k = area.iovaNum;
    this.size++;
    if (this.chunks.length === 0) {
      const keys = new Float64Array(CHUNK_CAPACITY);
      const lasts = new Float64Array(CHUNK_CAPACITY);
      keys[0] = k;
      lasts[0] = area.lastNum;
      this.chunks.push([area]);
      this.keys.push(keys);
      this.lasts.push(lasts);
      this.firsts.push(k);
      return;
    }
    const chunk = this.chunks[c];
    const keys = this.keys[c];
    const lasts = this.lasts[c];
    const n = chunk.length;
    // Shifted by hand: splice() would allocate the (empty) array of removed elements on every call.
    chunk.push(area);
    if (i !== n) {
      for (let j = n; j > i; j--) chunk[j] = chunk[j - 1];
      chunk[i] = area;
      keys.copyWithin(i + 1, i, n);
      lasts.copyWithin(i + 1, i, n);
    }
    keys[i] = k;
    lasts[i] = area.lastNum;
    if (i === 0) this.firsts[c] = k;
    if (n + 1 === CHUNK_CAPACITY) {
      const tail = chunk.splice(CHUNK);
      const tailKeys = new Float64Array(CHUNK_CAPACITY);
      tailKeys.set(keys.subarray(CHUNK, n + 1));
      const tailLasts = new Float64Array(CHUNK_CAPACITY);
      tailLasts.set(lasts.subarray(CHUNK, n + 1));
      this.chunks.splice(c + 1, 0, tail);
      this.keys.splice(c + 1, 0, tailKeys);
      this.lasts.splice(c + 1, 0, tailLasts);
      this.firsts.splice(c + 1, 0, tailKeys[0]);
    }
  }

  delete(area: IoptArea): void {
    if (this.locate(area.iovaNum) === area) this.deleteAt(this.posChunk, this.posIndex);
  }

  /**
   * Removes the area at (c, i). The area after it is then at (c, i), or at (c + 1, 0) when i was the
   * chunk's last index (at (c, 0) when the chunk emptied and went away).
   */
  deleteAt(c: number, i: number): void {
    const chunk = this.chunks[c];
    this.size--;
    if (chunk.length === 1) {
      this.chunks.splice(c, 1);
      this.keys.splice(c, 1);
      this.lasts.splice(c, 1);
      this.firsts.splice(c, 1);
      return;
    }
    const n = chunk.length;
    if (i !== n - 1) {
      // By hand, as in insertAt: splice() would allocate the array of the removed area.
      for (let j = i; j < n - 1; j++) chunk[j] = chunk[j + 1];
      this.keys[c].copyWithin(i, i + 1, n);
      this.lasts[c].copyWithin(i, i + 1, n);
    }
    chunk.pop();
    if (i === 0) this.firsts[c] = this.keys[c][0];
  }

  /** Areas in key order, starting with the one at or below `k` (from the first when none is). */
  *from(k: number): IterableIterator<IoptArea> {
    this.locate(k);
    let c = this.posChunk;
    let i = this.posIndex < 0 ? 0 : this.posIndex;
    const chunks = this.chunks;
    for (; c < chunks.length; c++, i = 0) {
      const chunk = chunks[c];
      for (; i < chunk.length; i++) yield chunk[i];
    }
  }
}
