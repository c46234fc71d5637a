/**
 * The mock vendor's page-table format ('mock-pt'): a three-level radix table of 64-bit entries, 4 KiB
 * pages and 2 MiB blocks, 39-bit input. Deliberately simple and unlike any real format, so that core's
 * tests never depend on a real vendor's bit layout; built on the radix engine, as a third-party format
 * would be, so it supplies only its entry encoding.
 *
 * Entry bits: 0 present, 1 read, 2 write, 3 exec, 4 user, 5 accessed, 6 dirty, 7 block (level 1),
 * 12..51 output page number. Privilege follows x86 with SMEP: a user page (U set, every map without
 * IOMMU_PRIV) gives unprivileged requests its R/W/X and privileged ones R/W but never execute; a
 * supervisor page (IOMMU_PRIV) gives privileged requests R/W/X and unprivileged ones nothing. Leaves
 * are written with A clear; hardware sets A on every access and D on a write when dirty tracking is on.
 */
import {
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  WALK_ADDRESS_SIZE,
  type PageTableFormat,
} from '../driver/pgtable.js';
import { ChunkCache } from '../memory/chunk-cache.js';
import { LeafBits, RadixLayout, RadixPageTable, radixTraceSpec, radixWalk, type RadixCodec } from '../driver/radix.js';
import { traceRadixNested, type Stage2Tracer, type WalkStep } from '../driver/walk-trace.js';
import type { PhysicalMemory } from '../memory/physical.js';

const P = 1;
const R = 2;
const W = 4;
const X = 8;
const U = 16;
const A = 32;
const D = 64;
const BLOCK = 128;
const LEVELS = 3;
const IAS = 39;

function idx(pfn: number, level: number): number {
  return Math.floor(pfn / 512 ** level) % 512;
}

/** The mock's entry encoding: everything the radix engine needs to know about the format. */
export const mockCodec: RadixCodec = {
  presentMask: P,
  tableMask: BLOCK,
  tableValue: [0, 0, 0],
  tableLo: [P, P, P],
  tableHi: [0, 0, 0],
  leafTypeLo: [0, BLOCK, BLOCK],
  addrShift: 12,
  addrHiMask: 0xfffff,
  leafBits(prot: number, bits: LeafBits): number {
    bits.lo = P | (prot & IOMMU_READ ? R : 0) | (prot & IOMMU_WRITE ? W : 0) | (prot & IOMMU_NOEXEC ? 0 : X) | (prot & IOMMU_PRIV ? 0 : U);
    bits.hi = 0;
    return 0;
  },
  leafGrant(lo: number): number {
    const rw = (lo & R ? PERM_READ : 0) | (lo & W ? PERM_WRITE : 0);
    const x = lo & X ? PERM_EXEC : 0;
    // User page: the user gets R/W/X, the supervisor R/W (no execute, as SMEP). Supervisor page: only
    // privileged requests get anything.
    return lo & U ? rw | x | (rw << 4) : (rw | x) << 4;
  },
  leafDirty(lo: number): boolean {
    return (lo & D) !== 0;
  },
  leafClean(lo: number): number {
    return lo & ~D;
  },
  leafAccessed(lo: number, _hi: number, write: boolean, hwDirty: boolean): number {
    return lo | A | (write && hwDirty && (lo & W) !== 0 ? D : 0);
  },
};

/** The mock layout: 3 levels of 512 entries, leaves at levels 0 and 1 (4K, 2M). */
function mockLayout(leaf2M: boolean): RadixLayout {
  return new RadixLayout({ levels: LEVELS, entryBits: [9, 9, 9], spanShift: [0, 9, 18], leafLevels: leaf2M ? 3 : 1, ias: IAS, oas: 52 });
}

const LAYOUT_2M = mockLayout(true);
const LAYOUT_4K = mockLayout(false);
const foreignChunks = new ChunkCache();

/** The 'mock-pt' PageTableFormat (see the module comment for its entry bits). */
export const mockFormat: PageTableFormat = {

  id: 'mock-pt',
  describe: 'mock 3-level radix table: 39-bit input, 4K pages, 2M blocks',
  alloc(cfg, memory) {
    if (cfg.ias > IAS) return -22;
    const pgsizeBitmap = cfg.pgsizeBitmap & ((1n << 12n) | (1n << 21n));
    const layout = (pgsizeBitmap & (1n << 21n)) !== 0n ? LAYOUT_2M : LAYOUT_4K;
    const root = RadixPageTable.rootFor(memory, layout);
    if (root < 0) return root;
    return new RadixPageTable('mock-pt', { ...cfg, pgsizeBitmap, ias: IAS }, mockCodec, layout, memory, root);
  },
  walkForeign(_cfg, rootPfn, mem, iovaPfn, out, tableToPhys) {
    if (!(iovaPfn >= 0 && iovaPfn < LAYOUT_2M.limitPfn)) {
      out.fault = WALK_ADDRESS_SIZE;
      return false;
    }
    foreignChunks.bind(mem);
    return radixWalk(mockCodec, LAYOUT_2M, foreignChunks, rootPfn, iovaPfn, out, tableToPhys);
  },
};

/** The trace of a foreign (guest-owned) mock table, every table page through stage 2. */
export function mockTraceForeign(mem: PhysicalMemory, rootPfn: number, iovaPfn: number, stage2: Stage2Tracer): WalkStep[] {
  return traceRadixNested(mem, rootPfn, radixTraceSpec(mockCodec, LAYOUT_2M), iovaPfn, stage2);
}

/** Writes a leaf directly into a foreign (guest-owned) mock table: used by tests to build guest stage 1. */
export function mockWriteGuestTable(mem: PhysicalMemory, allocGuestTable: () => number, root: number, iovaPfn: number, outPfn: number, prot: number, gpaToHpa: (gpa: number) => number): void {
  let table = root;
  for (let l = LEVELS - 1; l > 0; l--) {
    const hpa = gpaToHpa(table);
    const cur = mem.readU64(hpa, idx(iovaPfn, l));
    if (cur & 1n) {
      table = Number(cur >> 12n);
      continue;
    }
    const next = allocGuestTable();
    mem.writeU64(hpa, idx(iovaPfn, l), (BigInt(next) << 12n) | 1n);
    table = next;
  }
  const bits = BigInt(P | (prot & IOMMU_READ ? R : 0) | (prot & IOMMU_WRITE ? W : 0) | X | (prot & IOMMU_PRIV ? 0 : U));
  mem.writeU64(gpaToHpa(table), idx(iovaPfn, 0), (BigInt(outPfn) << 12n) | bits);
}
