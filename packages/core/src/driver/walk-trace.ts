/**
 * Walk traces: every table entry a walk reads, level by level, for tools that show a translation (the
 * web page's walk view, `PciDevice.explain`). A trace is the slow, explaining twin of `walk`: it reads
 * the same entries from simulated memory as 64-bit values and never touches the hot path or a cache.
 */
import type { PhysicalMemory } from '../memory/physical.js';

/** One entry a walk read. */
export interface WalkStep {
  /** Level of the table the entry is in (levels - 1 is the root, 0 the leaf level of 4 KiB pages). */
  readonly level: number;
  /** Page number of the table page the entry is in (a table of several pages: the page holding it). */
  readonly tablePfn: number;
  /** The entry's index in its table. */
  readonly index: number;
  /** The entry as stored (little-endian 64 bits). */
  readonly entry: bigint;
  /** What the walk made of it: a pointer to the next table, a leaf, or the end of the walk. */
  readonly kind: 'table' | 'leaf' | 'invalid';
  /** For a table entry, the next table's page number; for a leaf, the output page number; else 0. */
  readonly pfn: number;
}

/** How a radix format reads one level: which entry an IOVA page selects and what an entry is. */
export interface RadixTraceSpec {
  /** Level of the root table. */
  readonly top: number;
  /** Index of the entry `iovaPfn` selects in a table at `level` (may pass 511 for a table of several pages). */
  index(iovaPfn: number, level: number): number;
  /**
   * What `entry` at `level` is. A table entry gives the next table's page number and, for formats
   * that skip levels (AMD v1 next-level), the next table's level (default level - 1).
   */
  classify(entry: bigint, level: number): { kind: 'table' | 'leaf' | 'invalid'; pfn: number; nextLevel?: number };
}

/** At most one step per level of the deepest format (six levels), whatever a corrupt table says. */
const MAX_STEPS = 8;

/**
 * Follows a radix tree from `rootPfn`, reading each entry with `PhysicalMemory.readU64`. Stops at a
 * leaf, an invalid entry, or a table pointer outside memory.
 */
export function traceRadix(mem: PhysicalMemory, rootPfn: number, spec: RadixTraceSpec, iovaPfn: number): WalkStep[] {
  const steps: WalkStep[] = [];
  let table = rootPfn;
  let level = spec.top;
  while (steps.length < MAX_STEPS && level >= 0) {
    const index = spec.index(iovaPfn, level);
    const page = table + Math.floor(index / 512);
    const entry = mem.readU64(page, index % 512);
    const c = spec.classify(entry, level);
    steps.push({ level, tablePfn: page, index, entry, kind: c.kind, pfn: c.kind === 'invalid' ? 0 : c.pfn });
    if (c.kind !== 'table') break;
    table = c.pfn;
    level = c.nextLevel ?? level - 1;
  }
  return steps;
}
