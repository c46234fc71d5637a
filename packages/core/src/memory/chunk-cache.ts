/**
 * Small helpers every page-table walker needs: a page-number check and a cache of chunk references.
 */
import type { PhysicalMemory } from './physical.js';

const CHUNK_CACHE_SLOTS = 16;
const NO_CHUNK = new Uint32Array(0);
const INV_512 = 1 / 512;

/** True for a page number a page table can hold: an integer in [0, 2^52). */
export function isPfn(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x < 2 ** 52;
}

/**
 * Chunk references by chunk index, filled from `PhysicalMemory.chunkIfBacked`. A backed chunk is
 * never replaced or dropped, so a cached reference can never go stale; only backed chunks are cached.
 * This saves the float division and keyed load of chunkIfBacked on every level of every walk.
 */
export class ChunkCache {
  private mem: PhysicalMemory | null = null;
  private readonly tags = new Int32Array(CHUNK_CACHE_SLOTS).fill(-1);
  private readonly chunks: Uint32Array[] = new Array<Uint32Array>(CHUNK_CACHE_SLOTS).fill(NO_CHUNK);

  constructor(mem?: PhysicalMemory) {
    if (mem) this.bind(mem);
  }

  /** Points the cache at `mem`, dropping every reference when it changes. */
  bind(mem: PhysicalMemory): void {
    if (mem !== this.mem) {
      this.mem = mem;
      this.tags.fill(-1);
      this.chunks.fill(NO_CHUNK);
    }
  }

  /** The backed chunk of table frame `pfn` (< 2^40), or undefined. */
  get(pfn: number): Uint32Array | undefined {
    // pfn < 2^40, so the chunk index is below 2^31 and `| 0` truncates it exactly.
    return this.getIndexed((pfn * INV_512) | 0, pfn);
  }

  /** As get(), with the chunk index `ci` = floor(pfn / 512) already known. */
  getIndexed(ci: number, pfn: number): Uint32Array | undefined {
    const slot = ci & (CHUNK_CACHE_SLOTS - 1);
    if (this.tags[slot] === ci) return this.chunks[slot];
    const c = this.mem!.chunkIfBacked(pfn);
    if (c !== undefined) {
      this.tags[slot] = ci;
      this.chunks[slot] = c;
    }
    return c;
  }
}
