/**
 * Page-table memory for format tests: a fresh PhysicalMemory and FrameAllocator, with an optional
 * allocation limit so that a test can make the Nth table page fail (ENOMEM rollback paths).
 */
import { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import type { PageTableMemory } from '../driver/pgtable.js';

export interface TestTableMemory {
  mem: PhysicalMemory;
  frames: FrameAllocator;
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
