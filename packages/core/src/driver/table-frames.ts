/**
 * Tables larger than one 4 KiB frame: a 16K or 64K granule table (Arm), a concatenated stage-2 root
 * (Arm, up to 16 tables), a 16 KiB Sv39x4/Sv48x4/Sv57x4 root (RISC-V). Hardware finds entry `i` of such
 * a table at `base + 8 * i`, so its frames are physically contiguous and the run is aligned to its size.
 */
import type { PageTableMemory } from './pgtable.js';

/** Largest run a table may take: 512 frames (2 MiB), so that a run never spans two memory chunks. */
export const MAX_TABLE_FRAMES = 512;

function validRun(frames: number): boolean {
  return Number.isInteger(frames) && frames >= 1 && frames <= MAX_TABLE_FRAMES && (frames & (frames - 1)) === 0;
}

/**
 * `frames` zeroed, contiguous table frames aligned to `frames` (a power of two up to 512), or -1 when
 * memory is exhausted. Uses `memory.allocTables` when the memory provides it; otherwise assembles the
 * run from single frames (taking frames until an aligned run is complete, giving the others back), with
 * a bounded number of attempts.
 */
export function allocTableFrames(memory: PageTableMemory, frames: number): number {
  if (frames === 1) return memory.allocTable();
  if (!validRun(frames)) throw new RangeError(`table of ${frames} frames: a power of two from 1 to ${MAX_TABLE_FRAMES} is needed`);
  if (memory.allocTables) return memory.allocTables(frames);
  const got = new Set<number>();
  let base = -1;
  const budget = 64 * frames + 1024;
  for (let i = 0; i < budget && base < 0; i++) {
    const f = memory.allocTable();
    if (f < 0) break;
    got.add(f);
    const b = f - (f % frames);
    let j = 0;
    while (j < frames && got.has(b + j)) j++;
    if (j === frames) base = b;
  }
  for (const f of got) if (base < 0 || f < base || f >= base + frames) memory.releaseTable(f);
  return base;
}

/** Gives back a run from allocTableFrames. */
export function releaseTableFrames(memory: PageTableMemory, pfn: number, frames: number): void {
  if (frames === 1) memory.releaseTable(pfn);
  else if (memory.releaseTables) memory.releaseTables(pfn, frames);
  else for (let i = 0; i < frames; i++) memory.releaseTable(pfn + i);
}

const COUNT_CHUNK_FRAMES = 512;
const INV_COUNT_CHUNK = 1 / COUNT_CHUNK_FRAMES;

/**
 * Live-entry counts of a table's tables, by table page number: one Int32Array per 2 MiB of table
 * memory (tables are allocated close together), with the last chunk used kept at hand, so that a
 * count update on the map/unmap path is two array accesses and no hashing. -1 marks a page that is
 * not one of the table's tables.
 */
export class LiveCounts {
  private readonly chunks = new Map<number, Int32Array>();
  private lastIndex = -1;
  private last: Int32Array = new Int32Array(0);
  private tables = 0;

  private chunk(pfn: number, create: boolean): Int32Array | undefined {
    const ci = Math.floor(pfn * INV_COUNT_CHUNK);
    if (ci === this.lastIndex) return this.last;
    let c = this.chunks.get(ci);
    if (c === undefined) {
      if (!create) return undefined;
      c = new Int32Array(COUNT_CHUNK_FRAMES).fill(-1);
      this.chunks.set(ci, c);
    }
    this.lastIndex = ci;
    this.last = c;
    return c;
  }

  /** The count of table `pfn`, or -1 when it is not a table. */
  get(pfn: number): number {
    const c = this.chunk(pfn, false);
    return c === undefined ? -1 : c[pfn & (COUNT_CHUNK_FRAMES - 1)];
  }

  /** Registers `pfn` as a table with no live entries. */
  add(pfn: number): void {
    const c = this.chunk(pfn, true)!;
    const i = pfn & (COUNT_CHUNK_FRAMES - 1);
    if (c[i] < 0) this.tables++;
    c[i] = 0;
  }

  /** Adds `delta` to the count of table `pfn` and returns the new count. */
  change(pfn: number, delta: number): number {
    const c = this.chunk(pfn, true)!;
    const i = pfn & (COUNT_CHUNK_FRAMES - 1);
    if (c[i] < 0) {
      c[i] = 0;
      this.tables++;
    }
    return (c[i] += delta);
  }

  /**
   * The array holding the count of table `pfn`, which must be registered: its count is at index
   * `pfn & 511` until the table is forgotten (or clear() runs), so that a caller that updates one
   * table's count again and again can keep it at hand.
   */
  countsOf(pfn: number): Int32Array {
    return this.chunk(pfn, true)!;
  }

  /** Forgets table `pfn` and returns the count it had, or -1 when it was not a table. */
  remove(pfn: number): number {
    const c = this.chunk(pfn, false);
    if (c === undefined) return -1;
    const i = pfn & (COUNT_CHUNK_FRAMES - 1);
    const n = c[i];
    if (n >= 0) {
      c[i] = -1;
      this.tables--;
    }
    return n;
  }

  /** Forgets table `pfn`. */
  delete(pfn: number): void {
    const c = this.chunk(pfn, false);
    const i = pfn & (COUNT_CHUNK_FRAMES - 1);
    if (c !== undefined && c[i] >= 0) {
      c[i] = -1;
      this.tables--;
    }
  }

  /** Number of tables registered. */
  get size(): number {
    return this.tables;
  }

  /** Forgets every table. */
  clear(): void {
    this.chunks.clear();
    this.lastIndex = -1;
    this.last = new Int32Array(0);
    this.tables = 0;
  }
}
