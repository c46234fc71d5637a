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
