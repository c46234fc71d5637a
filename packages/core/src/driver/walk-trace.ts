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
  /**
   * Set only in a nested domain's stage-1 trace, whose tables live in guest-physical memory: the
   * guest-physical page number of the table page. `tablePfn` is then the host-physical page stage 2
   * gave for it, or -1 when stage 2 did not translate it (the walk stopped there: `entry` 0, kind
   * 'invalid'), and `pfn` is guest-physical too.
   */
  readonly tableGpaPfn?: number;
  /** Set with `tableGpaPfn`: the stage-2 walk that translated it (null when that format has no trace). */
  readonly stage2?: readonly WalkStep[] | null;
  /**
   * Set when the entry is not a page-table entry but a descriptor the unit reads to find the table
   * (an SMMUv3 CD, an AMD-Vi GCR3 table entry): its name, e.g. 'CD 0 (TTB0)'.
   */
  readonly context?: string;
}

/** Where stage 2 puts one guest-physical page, and the walk that found it. */
export interface Stage2Lookup {
  /** The host-physical page number, or -1 when stage 2 does not grant the table read. */
  readonly pfn: number;
  /** The stage-2 walk of the page (its table's `trace`), null when the stage-2 format has no trace. */
  readonly steps: readonly WalkStep[] | null;
}

/** Translates a guest-physical page through stage 2, explaining it (for stage-1 traces). */
export type Stage2Tracer = (gpaPfn: number) => Stage2Lookup;

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
  classify(
    entry: bigint,
    level: number,
  ): {
    /** A pointer to a next-level table, a leaf mapping, or an entry the walk stops at. */
    kind: 'table' | 'leaf' | 'invalid';
    /** Page number (4 KiB units) of the next table or of the leaf's output; ignored for 'invalid'. */
    pfn: number;
    /** Level of the next table, for a table entry that skips levels. */
    nextLevel?: number;
  };

}

/** At most one step per level of the deepest format (six levels), whatever a corrupt table says. */
const MAX_STEPS = 8;

/**
 * Follows a radix tree from `rootPfn`, reading each entry with `PhysicalMemory.readU64`. Stops at a
 * leaf, an invalid entry, or a table pointer outside memory.
 */
export function traceRadix(mem: PhysicalMemory, rootPfn: number, spec: RadixTraceSpec, iovaPfn: number): WalkStep[] {
  return follow(mem, rootPfn, spec, iovaPfn, null);
}

/**
 * The trace of a guest-owned table (a nested domain's stage 1) rooted at guest-physical `rootGpaPfn`:
 * as hardware does, every table page is first translated by stage 2, and each step carries that
 * stage-2 walk. Stops where stage 2 fails, like the walk's WALK_TABLE_FAULT.
 */
export function traceRadixNested(mem: PhysicalMemory, rootGpaPfn: number, spec: RadixTraceSpec, iovaPfn: number, stage2: Stage2Tracer): WalkStep[] {
  return follow(mem, rootGpaPfn, spec, iovaPfn, stage2);
}

/**
 * Reads entry `index` of the guest-physical table page `gpaPfn` through stage 2: the step for a
 * descriptor a unit fetches before the page table (`context` names it). `classify` says what it
 * points to; a page stage 2 does not translate gives the stopping step.
 */
export function traceNestedEntry(
  mem: PhysicalMemory,
  gpaPfn: number,
  index: number,
  level: number,
  stage2: Stage2Tracer,
  context: string,
  classify: (entry: bigint) => { kind: WalkStep['kind']; pfn: number },
): WalkStep {
  const s2 = stage2(gpaPfn);
  if (s2.pfn < 0) return { level, tablePfn: -1, index, entry: 0n, kind: 'invalid', pfn: 0, tableGpaPfn: gpaPfn, stage2: s2.steps, context };
  const entry = mem.readU64(s2.pfn, index);
  const c = classify(entry);
  return { level, tablePfn: s2.pfn, index, entry, kind: c.kind, pfn: c.kind === 'invalid' ? 0 : c.pfn, tableGpaPfn: gpaPfn, stage2: s2.steps, context };
}

function follow(mem: PhysicalMemory, rootPfn: number, spec: RadixTraceSpec, iovaPfn: number, stage2: Stage2Tracer | null): WalkStep[] {
  const steps: WalkStep[] = [];
  let table = rootPfn;
  let level = spec.top;
  while (steps.length < MAX_STEPS && level >= 0) {
    const index = spec.index(iovaPfn, level);
    const page = table + Math.floor(index / 512);
    const s2 = stage2 === null ? null : stage2(page);
    if (s2 !== null && s2.pfn < 0) {
      steps.push({ level, tablePfn: -1, index, entry: 0n, kind: 'invalid', pfn: 0, tableGpaPfn: page, stage2: s2.steps });
      break;
    }
    const entry = mem.readU64(s2 === null ? page : s2.pfn, index % 512);
    const c = spec.classify(entry, level);
    const pfn = c.kind === 'invalid' ? 0 : c.pfn;
    steps.push(s2 === null ? { level, tablePfn: page, index, entry, kind: c.kind, pfn } : { level, tablePfn: s2.pfn, index, entry, kind: c.kind, pfn, tableGpaPfn: page, stage2: s2.steps });
    if (c.kind !== 'table') break;
    table = c.pfn;
    level = c.nextLevel ?? level - 1;
  }
  return steps;
}
