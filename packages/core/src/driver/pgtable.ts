/**
 * Page-table formats: the io-pgtable layer of ioasid. A format writes real PTE bits into simulated
 * physical memory. Formats are an open registry keyed by string id; vendor plugins contribute theirs
 * under the PAGE_TABLE_FORMAT token.
 *
 * Units: every address argument is a 4 KiB page number (a plain number, exact up to 2^53), whatever
 * the format's granule. A format with a larger granule rejects misaligned page numbers with EINVAL.
 */
import type { PageSizeBitmap } from './caps.js';
import type { PhysicalMemory } from '../memory/physical.js';
import type { WalkStep } from './walk-trace.js';

/** Protection flags, numbered as the kernel's IOMMU_READ / IOMMU_WRITE / ... */
export const IOMMU_READ = 1 << 0;
/** IOMMU_WRITE: devices may write through the mapping. */
export const IOMMU_WRITE = 1 << 1;
/** IOMMU_CACHE: DMA is cache coherent (snooped); set when the domain enforces cache coherency. */
export const IOMMU_CACHE = 1 << 2;
/** IOMMU_NOEXEC: instruction fetches through the mapping are refused (for formats with an execute-never bit). */
export const IOMMU_NOEXEC = 1 << 3;
/** IOMMU_MMIO: the mapping is device memory (Arm Device-nGnRE attributes), e.g. an MSI doorbell. */
export const IOMMU_MMIO = 1 << 4;
/** IOMMU_PRIV: only privileged (supervisor) accesses may use the mapping. */
export const IOMMU_PRIV = 1 << 5;

/**
 * Access permissions: request bits of a DMA and grant bits of a walk (see permission.ts for the model
 * of privileged and unprivileged grants).
 */
export { PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV } from './permission.js';

/** Why a walk stopped. */
export const WALK_OK = 0;
/** An entry on the path (or the leaf) is not present. */
export const WALK_NOT_PRESENT = 1;
/** The IOVA is wider than the table's input size. */
export const WALK_ADDRESS_SIZE = 2;
/** A table pointer of a foreign (guest) table could not be translated by stage 2. */
export const WALK_TABLE_FAULT = 3;
/** Reserved bits set in an entry. */
export const WALK_RESERVED_BITS = 4;
/**
 * The walk never reached a table: the context that selects it is invalid (SMMUv3 bad STE / CD /
 * SubstreamID, a disabled stream; a cleared VT-d context or PASID entry). `WalkResult.contextFault`
 * may say which check failed, in the vendor's own code. Core reports it as 'no-context'.
 */
export const WALK_CONTEXT_INVALID = 5;

/** Filled in by `walk`; callers keep one instance and reuse it so that translation never allocates. */
export class WalkResult {
  /** Output page number (4 KiB units) of the IOVA page that was walked. */
  pfn = 0;
  /**
   * Grant bits (permission.ts): PERM_READ / PERM_WRITE / PERM_EXEC for unprivileged requests and
   * PERM_PRIV_READ / PERM_PRIV_WRITE / PERM_PRIV_EXEC for privileged ones; check with permAllowed.
   */
  perm = 0;
  /** log2 of the size of the leaf mapping (12, 21, 30 for 4K, 2M, 1G...). */
  pageShift = 12;
  /** Level at which the walk ended (0 = leaf level of 4 KiB pages). */
  level = 0;
  /** WALK_* reason. */
  fault = WALK_OK;
  /** For WALK_TABLE_FAULT: the guest-physical page number of the table that did not translate. */
  tablePfn = 0;
  /**
   * For WALK_CONTEXT_INVALID: the vendor's code for the context check that failed (SMMUv3: the event
   * ID it records, e.g. C_BAD_CD), 0 when unspecified. Core copies it to FailedAccess.contextFault.
   */
  contextFault = 0;
  /** The leaf's dirty bit, when the format has one. */
  dirty = false;
}

/** The io_pgtable_cfg a table is allocated with; the format narrows it to what it provides (IoPageTable.cfg). */
export interface PageTableConfig {
  /** Page and block sizes the table may use (in); the subset the format supports (out). */
  pgsizeBitmap: PageSizeBitmap;
  /** Input address size in bits. */
  ias: number;
  /** Output address size in bits. */
  oas: number;
  /** Number of levels, when the format lets the caller choose (VT-d 3/4/5, AMD v1 1..6). */
  levels?: number;
  /** Translation granule in bytes for formats that have one (Arm: 4K, 16K, 64K). */
  granule?: number;
  /** Hardware dirty tracking of leaf entries is wanted. */
  dirtyTracking?: boolean;
  /** Entries set the snoop / cacheable attribute. */
  coherent?: boolean;
  /** Format-specific options (e.g. `{ stage: 2 }`), validated by the format. */
  options?: Readonly<Record<string, number | boolean | string>>;
}

/** Memory a page table lives in and takes its table pages from. */
export interface PageTableMemory {
  /** The physical memory the tables' frames are in. */
  readonly mem: PhysicalMemory;
  /** A zeroed frame for a table page, or -1 when memory is exhausted (the map fails with ENOMEM). */
  allocTable(): number;
  /** Gives back a frame from allocTable once the table is empty or freed. */
  releaseTable(pfn: number): void;
  /**
   * `frames` zeroed, contiguous frames aligned to `frames` (a power of two), or -1: tables larger than
   * a frame (see table-frames.ts). Optional: allocTableFrames assembles runs from allocTable without it.
   */
  allocTables?(frames: number): number;
  /** Gives back a run from allocTables. */
  releaseTables?(pfn: number, frames: number): void;
  /**
   * Gives back the frames `from`, `from ± 1`, ..., `to` (either direction, `to` included), each of them
   * from allocTable, as releaseTable of each in that order would (an unmap that empties many leaf
   * tables hands them back together). Optional: releaseTable is called for each frame without it.
   */
  releaseTableRun?(from: number, to: number): void;
}

/** A live page table (io_pgtable_ops). */
export interface IoPageTable {
  /** Id of the format that built it (PageTableFormat.id). */
  readonly format: string;
  /** The configuration the format actually provides. */
  readonly cfg: Readonly<PageTableConfig>;
  /** Page number of the top-level table. */
  readonly rootPfn: number;
  /** Levels in use. */
  readonly levels: number;
  /** Table pages currently allocated. */
  readonly tablePages: number;
  /**
   * Maps `npages` 4 KiB pages from `iovaPfn` to `paPfn` with IOMMU_* `prot`, using the largest page
   * sizes that alignment and `cfg.pgsizeBitmap` allow. Returns 0, or a negative errno with the table
   * left as it was (-ENOMEM, -EEXIST when something is already mapped there, -EINVAL, -ERANGE).
   */
  map(iovaPfn: number, paPfn: number, npages: number, prot: number): number;
  /**
   * Unmaps the range; a huge page is only removed whole, as the kernel's unmap_pages. Returns the
   * number of 4 KiB pages removed (0 when nothing was mapped).
   */
  unmap(iovaPfn: number, npages: number): number;
  /** Translates one page; true when `out.fault === WALK_OK`. Never allocates. */
  walk(iovaPfn: number, out: WalkResult): boolean;
  /**
   * Every entry the walk of `iovaPfn` reads, root first (see walk-trace.ts); for tools, not the DMA path.
   * Absent when the format cannot show its levels.
   */
  trace?(iovaPfn: number): WalkStep[];
  /**
   * Calls `onDirty(iovaPfn, npages)` for every dirty leaf in the range, clearing the dirty bits unless
   * `noClear`. Absent when the format has no dirty bits.
   */
  readAndClearDirty?(iovaPfn: number, npages: number, noClear: boolean, onDirty: (iovaPfn: number, npages: number) => void): void;
  /** Marks leaves so that the next write sets their dirty bit (e.g. Arm DBM); optional. */
  setDirtyTracking?(enable: boolean): void;
  /** Records a hardware write access to the leaf for `iovaPfn` (sets A/D bits); optional. */
  markAccess?(iovaPfn: number, write: boolean): void;
  /** Frees every table page. */
  free(): void;
}

/** io_pgtable_init_fns: one per format id. */
export interface PageTableFormat {
  /** Registry key, e.g. 'vtd-ss', 'arm-lpae-s2', 'amd-v1'; listed in UnitInit.formats. */
  readonly id: string;

  /** Sizes, widths and levels this format can ever provide, for error messages and planning. */
  readonly describe: string;
  /** Allocates an empty table, or returns a negative errno (-EINVAL for a configuration it cannot do). */
  alloc(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number;
  /**
   * Walks a table that the host does not own (a guest stage 1 in guest-physical memory). Every table
   * page number is passed through `tableToPhys` (stage 2) first; -1 from it stops the walk with
   * WALK_TABLE_FAULT. The result's pfn is a guest-physical page number.
   */
  walkForeign?(
    cfg: Readonly<PageTableConfig>,
    rootPfn: number,
    mem: PhysicalMemory,
    iovaPfn: number,
    out: WalkResult,
    tableToPhys: (pfn: number) => number,
  ): boolean;
}
