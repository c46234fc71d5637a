/**
 * Page-table memory for format tests: a fresh PhysicalMemory and FrameAllocator, with an optional
 * allocation limit so that a test can make the Nth table page fail (ENOMEM rollback paths).
 */
import { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import type { PageTableMemory } from '../driver/pgtable.js';

/** A PageTableMemory for format tests, with what is behind it (see testTableMemory). */
export interface TestTableMemory {
  /** The fresh physical memory the tables live in. */
  mem: PhysicalMemory;
  /** Its frame allocator (count live frames with framesInUse). */
  frames: FrameAllocator;
  /** What to pass to PageTableFormat.alloc: allocTable / allocTables fail (-1) once the limit is reached. */
  memory: PageTableMemory;

  /** Table pages handed out so far. */
  readonly allocations: number;
}

/** `limit`: how many table pages may be allocated before allocTable returns -1. */
export function testTableMemory(limit = Number.POSITIVE_INFINITY): TestTableMemory {
  const mem = new PhysicalMemory();
  const frames = new FrameAllocator(mem);
  let allocations = 0;
  const memory: PageTableMemory = {
    mem,
    allocTable() {
      if (allocations >= limit) return -1;
      allocations++;
      return frames.alloc();
    },
    releaseTable(pfn) {
      frames.release(pfn);
    },
    allocTables(count) {
      if (allocations >= limit) return -1;
      allocations++;
      return frames.allocRun(count);
    },
    releaseTables(pfn, count) {
      for (let i = 0; i < count; i++) frames.release(pfn + i);
    },
    releaseTableRun(from, to) {
      frames.releaseRun(from, to);
    },
  };
  return {
    mem,
    frames,
    memory,
    get allocations() {
      return allocations;
    },
  };
}
