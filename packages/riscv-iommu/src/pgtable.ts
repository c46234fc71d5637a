/**
 * RISC-V page tables as the IOMMU walks them (the privileged architecture's Sv39/Sv48/Sv57 and the
 * hypervisor extension's Sv39x4/Sv48x4/Sv57x4, which the IOMMU specification adopts), on core's radix
 * engine: the formats supply only the entry encoding and geometry.
 *
 * PTE (64 bits): 0 V, 1 R, 2 W, 3 X, 4 U, 5 G, 6 A, 7 D, 9:8 RSW, 53:10 PPN, 60:54 reserved (60:59 for
 * software with Svrsw60t59b), 62:61 PBMT, 63 N (Svnapot). A valid entry with R = W = X = 0 points to the
 * next table; anything else is a leaf, at any level. The engine's entries are two u32 halves: the PPN
 * starts at bit 10 of the low word (`addrShift` 10) and continues in bits 21:0 of the high word.
 *
 * Walk rules (the privileged spec's translation algorithm, with the IOMMU's additions):
 * - a leaf with W and no R (xwr 010 / 110) is reserved; so are PBMT = 3, PBMT without Svpbmt, reserved
 *   bits, N at a level above 0, N at level 0 with PPN[3:0] other than 1000b, and a misaligned superpage
 *   (PPN bits below the level's span not zero): each is a page fault;
 * - a non-leaf entry with A, D or U set is a page fault (core's `nextLevel` answers NEXT_RESERVED); one with
 *   PBMT, N or reserved bits makes the leaf below grant nothing (`leafGrant` sees the path's high words),
 *   which the IOMMU reports as the same page fault; at level 0 a valid entry with R = W = X = 0 faults;
 * - A/D: the Linux driver leaves DC.tc.SADE / GADE at 0 (no hardware updating), so a leaf with A = 0,
 *   or a store to a leaf with D = 0, faults. Linux writes A on every leaf and D on every writable one.
 * - privilege (first stage): a U = 1 page serves user requests; a supervisor request may read or write it
 *   only when the process context's SUM is set and may never execute it. A U = 0 page serves supervisor
 *   requests only. Requests without a PASID are user requests.
 * - second stage: every access is checked as a user access (U must be 1), G is ignored, and the input
 *   is a guest-physical address whose root table has 2048 entries (16 KiB, 16 KiB aligned).
 * - Svnapot: a level-0 leaf with N = 1 and PPN[3:0] = 1000b translates a 64 KiB run (core's `leafPages`);
 *   the low four bits of the output page come from the IOVA.
 *
 * Map (what the table writes): Linux's leaf bits (generic_pt riscvpt_iommu_set_prot) and, when the page
 * sizes given to `alloc` include 64 KiB, Svnapot runs: a 64 KiB-aligned IOVA range of at least 64 KiB whose
 * output is 64 KiB-aligned too becomes 16 identical level-0 entries with N = 1 and PPN = the run's first page
 * with PPN[3:0] = 1000b (riscvpt_install_leaf_entry with PT_FEAT_RISCV_SVNAPOT_64K; core's replicated
 * leaves). The driver always asks for it (riscv_iommu_alloc_paging_domain: the IOMMU specification makes
 * Svnapot mandatory, so `capabilities` has no bit for it). A larger aligned leaf still wins (2 MiB and up).
 * Unmap removes a run only whole: a range covering part of one stops there, as for a superpage (core's rule
 * for every format). Mainline's generic_pt differs at the edges: an unmap starting at a run's first page
 * removes the whole run even if shorter and reports 64 KiB, one starting inside a run fails; iommufd never
 * asks either, since it unmaps what it mapped.
 */
import {
  ERRNO,
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  RadixLayout,
  RadixPageTable,
  NEXT_LEAF,
  NEXT_RESERVED,
  ChunkCache,
  radixWalk,
  type PhysicalMemory,
  grantBoth,
  pageSizesFromLog2,
  type LeafBits,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
  type RadixCodec,
} from '@ioasid/core/driver';

// Low word of a PTE.
/** PTE bit 0, V: valid. */
export const PTE_V = 1 << 0;
/** PTE bit 1, R: readable. */
export const PTE_R = 1 << 1;
/** PTE bit 2, W: writable. */
export const PTE_W = 1 << 2;
/** PTE bit 3, X: executable. */
export const PTE_X = 1 << 3;
/** PTE bit 4, U: accessible to user (and, in the second stage, to every) request. */
export const PTE_U = 1 << 4;
/** PTE bit 5, G: global mapping. */
export const PTE_G = 1 << 5;
/** PTE bit 6, A: accessed. */
export const PTE_A = 1 << 6;
/** PTE bit 7, D: dirty. */
export const PTE_D = 1 << 7;
/** PTE bits 9:8, RSW: for software. */
export const PTE_RSW = 3 << 8;
// High word of a PTE (bit n of the entry is bit n - 32 here).
/** PPN[43:22] in entry bits 53:32. */
export const PTE_HI_PPN = 0x3fffff;
/** Entry bits 60:54, reserved. */
export const PTE_HI_RESERVED = 0x7f << 22;
/** Entry bits 60:59, software-owned with Svrsw60t59b. */
export const PTE_HI_RSW60T59B = 3 << 27;
/** Entry bits 62:61, PBMT: 0 PMA, 1 NC, 2 IO, 3 reserved. */
export const PTE_HI_PBMT_SHIFT = 29;
/** PTE bits 62:61 (in the high word), PBMT. */
export const PTE_HI_PBMT = 3 << PTE_HI_PBMT_SHIFT;
/** Entry bit 63, N (Svnapot). */
export const PTE_HI_N = 1 << 31;
/** Pages of a Svnapot run: 64 KiB, the only size the specification defines (PPN[3:0] = 1000b). */
export const NAPOT_PAGES = 16;
/** The page size bit of a Svnapot run in a page-size bitmap. */
export const SZ_64K = 1n << 16n;

/** PBMT 0: the physical memory attributes apply. */
export const PBMT_PMA = 0;
/** PBMT 1: non-cacheable, idempotent, weakly ordered. */
export const PBMT_NC = 1;
/** PBMT 2: non-cacheable, non-idempotent, strongly ordered (I/O). */
export const PBMT_IO = 2;

const XWR = PTE_R | PTE_W | PTE_X;

/** The two stages: first (iosatp / PC.fsc, Sv39/48/57) and second (iohgatp, Sv39x4/48x4/57x4). */
export type Stage = 1 | 2;

/** What a table's codec depends on beyond its stage: the unit's PTE extensions and the context's SUM. */
export interface CodecOptions {
  /** capabilities.Svpbmt: PBMT 1 and 2 are legal. */
  readonly svpbmt: boolean;
  /** capabilities.Svrsw60t59b: entry bits 60:59 belong to software. */
  readonly svrsw60t59b: boolean;
  /** Process context ta.SUM (first stage only): supervisor requests may read and write U pages. */
  readonly sum: boolean;
}

/** No Svpbmt, no Svrsw60t59b, SUM clear. */
export const DEFAULT_CODEC_OPTIONS: CodecOptions = { svpbmt: false, svrsw60t59b: false, sum: false };

/** IOMMU_* prot to leaf bits, as Linux's generic_pt riscv format writes them (riscvpt_iommu_set_prot). */
function leafBits(prot: number, bits: LeafBits): number {
  let lo = PTE_V | PTE_A | PTE_U;
  if (prot & IOMMU_WRITE) lo |= PTE_W | PTE_R | PTE_D;
  if (prot & IOMMU_READ) lo |= PTE_R;
  if (!(prot & IOMMU_NOEXEC)) lo |= PTE_X;
  // No R, W or X would read back as a pointer to a table: the kernel refuses the combination.
  if ((lo & XWR) === 0) return -ERRNO.EOPNOTSUPP;
  bits.lo = lo;
  bits.hi = 0;
  return 0;
}

/** R, W (only with D: no hardware D updates) and X of a leaf, as PERM_READ/WRITE/EXEC; nothing without A. */
function accessRwx(lo: number): number {
  if ((lo & PTE_A) === 0) return 0;
  return (lo & PTE_R ? PERM_READ : 0) | (lo & PTE_W && lo & PTE_D ? PERM_WRITE : 0) | (lo & PTE_X ? PERM_EXEC : 0);
}

function hiReservedMask(o: CodecOptions): number {
  return o.svrsw60t59b ? PTE_HI_RESERVED & ~PTE_HI_RSW60T59B : PTE_HI_RESERVED;
}

/** The entry encoding of one stage with `o`: what the radix engine needs to know. */
export function makeCodec(stage: Stage, o: CodecOptions = DEFAULT_CODEC_OPTIONS): RadixCodec {
  const reservedHi = hiReservedMask(o);
  const nonLeafHi = reservedHi | PTE_HI_PBMT | PTE_HI_N;
  const levels = [0, 0, 0, 0, 0];
  return {
    presentMask: PTE_V,
    // A, D and U in the mask: an entry without R/W/X that carries them is not a table (see nextLevel).
    tableMask: XWR | PTE_A | PTE_D | PTE_U,
    tableValue: levels,
    tableLo: [PTE_V, PTE_V, PTE_V, PTE_V, PTE_V],
    tableHi: levels,
    leafTypeLo: levels,
    addrShift: 10,
    addrHiMask: PTE_HI_PPN,
    leafBits,
    leafGrant(lo: number, _hi: number, _level: number, _tablesLo: number, tablesHi: number): number {
      // A non-leaf entry on the path with PBMT, N or reserved bits is a page fault: nothing is granted.
      if ((tablesHi & nonLeafHi) !== 0) return 0;
      const rwx = accessRwx(lo);
      // The second stage checks every access as a user access and ignores G.
      if (stage === 2) return lo & PTE_U ? grantBoth(rwx) : 0;
      if (lo & PTE_U) return rwx | (o.sum ? (rwx & (PERM_READ | PERM_WRITE)) << 4 : 0);
      return rwx << 4;
    },
    leafReserved(lo: number, hi: number, level: number, pfn: number): boolean {
      const xwr = lo & XWR;
      if (xwr === 0 || xwr === PTE_W || xwr === (PTE_W | PTE_X)) return true;
      if ((hi & reservedHi) !== 0) return true;
      const pbmt = (hi & PTE_HI_PBMT) >>> PTE_HI_PBMT_SHIFT;
      if (pbmt === 3 || (pbmt !== 0 && !o.svpbmt)) return true;
      if (hi & PTE_HI_N && level > 0) return true;
      // A superpage's PPN must be aligned to its size.
      return level > 0 && pfn % 2 ** (9 * level) !== 0;
    },
    // A valid entry with R = W = X = 0 but A, D or U set is a non-leaf entry with bits it must not have.
    nextLevel(lo: number): number {
      return (lo & XWR) === 0 ? NEXT_RESERVED : NEXT_LEAF;
    },
    // Svnapot: a level-0 leaf with N maps 16 pages when PPN[3:0] = 1000b; any other N encoding faults.
    leafPages(lo: number, hi: number, level: number): number {
      if ((hi & PTE_HI_N) === 0) return 2 ** (9 * level);
      return level === 0 && ((lo >>> 10) & 0xf) === 0b1000 ? NAPOT_PAGES : 0;
    },
    // A Svnapot run's 16 entries each hold the run's first page with PPN[3:0] = 1000b (64 KiB-aligned, so
    // those bits are 0 before) and N; the layout allows runs at level 0 only (`replicated`).
    replicaPfn(pfn: number, pages: number): number {
      return pfn + pages / 2;
    },
    replicaTypeLo: levels,
    replicaTypeHi: [PTE_HI_N, 0, 0, 0, 0],
  };
}

/** One paging mode: its iosatp / iohgatp MODE encoding and geometry. */
export interface SvMode {
  /** The page-table format id core registers it under (`riscv-sv39`, `riscv-sv48x4`, ...). */
  readonly id: string;
  /** The specification's name of the mode: `Sv39`, `Sv48`, `Sv57`, `Sv39x4`, `Sv48x4`, `Sv57x4`. */
  readonly name: string;
  /** 1: first stage (iosatp, IOVA or GVA input); 2: second stage (iohgatp, guest-physical input). */
  readonly stage: Stage;
  /** iosatp.MODE (first stage) or iohgatp.MODE (second stage). */
  readonly mode: number;
  /** Levels of the walk: 3 (Sv39, Sv39x4), 4 (Sv48, Sv48x4) or 5 (Sv57, Sv57x4). */
  readonly levels: number;
  /** Input bits: 39/48/57, or 41/50/59 for the x4 (guest-physical) forms. */
  readonly ias: number;
}

/** Sv39: three levels, 39-bit IOVA. */
export const SV39: SvMode = { id: 'riscv-sv39', name: 'Sv39', stage: 1, mode: 8, levels: 3, ias: 39 };
/** Sv48: four levels, 48-bit IOVA. */
export const SV48: SvMode = { id: 'riscv-sv48', name: 'Sv48', stage: 1, mode: 9, levels: 4, ias: 48 };
/** Sv57: five levels, 57-bit IOVA. */
export const SV57: SvMode = { id: 'riscv-sv57', name: 'Sv57', stage: 1, mode: 10, levels: 5, ias: 57 };
/** Sv39x4: three levels, 41-bit guest-physical input, 16 KiB root. */
export const SV39X4: SvMode = { id: 'riscv-sv39x4', name: 'Sv39x4', stage: 2, mode: 8, levels: 3, ias: 41 };
/** Sv48x4: four levels, 50-bit guest-physical input, 16 KiB root. */
export const SV48X4: SvMode = { id: 'riscv-sv48x4', name: 'Sv48x4', stage: 2, mode: 9, levels: 4, ias: 50 };
/** Sv57x4: five levels, 59-bit guest-physical input, 16 KiB root. */
export const SV57X4: SvMode = { id: 'riscv-sv57x4', name: 'Sv57x4', stage: 2, mode: 10, levels: 5, ias: 59 };
/** Every mode the plugin has a format for. */
export const SV_MODES: readonly SvMode[] = [SV39, SV48, SV57, SV39X4, SV48X4, SV57X4];

/** The largest PA the PPN can hold: 44 bits of page number. */
export const MAX_OAS = 56;

/** Leaf sizes of a mode: 4K, 64K (Svnapot), 2M, 1G, 512G, 256T up to its root level. */
export function modePageSizes(m: SvMode): bigint {
  return pageSizesFromLog2(...Array.from({ length: m.levels }, (_, l) => 12 + 9 * l)) | SZ_64K;
}

const layouts = new Map<string, RadixLayout>();

/** The geometry of `m` with leaves where `pgsizeBitmap` allows them (4 KiB always, Svnapot runs with 64 KiB). */
export function layoutFor(m: SvMode, pgsizeBitmap: bigint, oas: number): RadixLayout {
  let leafLevels = 1;
  for (let l = 1; l < m.levels; l++) if (pgsizeBitmap & (1n << BigInt(12 + 9 * l))) leafLevels |= 1 << l;
  const napot = (pgsizeBitmap & SZ_64K) !== 0n;
  const key = `${m.id}:${leafLevels}:${oas}:${+napot}`;
  let layout = layouts.get(key);
  if (!layout) {
    // The x4 root has two more index bits: 2048 entries, four contiguous frames.
    const entryBits = Array.from({ length: m.levels }, (_, l) => (m.stage === 2 && l === m.levels - 1 ? 11 : 9));
    const spanShift = Array.from({ length: m.levels }, (_, l) => 9 * l);
    // Bit 4 at level 0: a Svnapot run is 2^4 replicated level-0 entries.
    const replicated = Array.from({ length: m.levels }, (_, l) => (l === 0 && napot ? 1 << 4 : 0));
    layout = new RadixLayout({ levels: m.levels, entryBits, spanShift, leafLevels, replicated, ias: m.ias, oas });
    layouts.set(key, layout);
  }
  return layout;
}

const codecs = new Map<string, RadixCodec>();

/** The codec for `stage` and `o`, shared by every table with the same options. */
export function codecFor(stage: Stage, o: CodecOptions): RadixCodec {
  const key = `${stage}:${+o.svpbmt}${+o.svrsw60t59b}${+o.sum}`;
  let c = codecs.get(key);
  if (!c) {
    c = makeCodec(stage, o);
    codecs.set(key, c);
  }
  return c;
}

/** Reads the codec options from `cfg.options` (`svpbmt`, `svrsw60t59b`, `sum`: booleans). */
export function codecOptionsOf(cfg: PageTableConfig): CodecOptions | null {
  const opt = cfg.options ?? {};
  for (const [k, v] of Object.entries(opt)) {
    if (k === 'stage') continue;
    if (k !== 'svpbmt' && k !== 'svrsw60t59b' && k !== 'sum') return null;
    if (typeof v !== 'boolean') return null;
  }
  return { svpbmt: opt.svpbmt === true, svrsw60t59b: opt.svrsw60t59b === true, sum: opt.sum === true };
}

const chunkCaches = new WeakMap<PhysicalMemory, ChunkCache>();
function chunkCacheOf(mem: PhysicalMemory): ChunkCache {
  let c = chunkCaches.get(mem);
  if (!c) {
    c = new ChunkCache(mem);
    chunkCaches.set(mem, c);
  }
  return c;
}

/**
 * The format of one mode. `alloc` takes any input size up to the mode's (the table is the mode's: a
 * Sv48 table translates 48 bits), an output size from 32 bits (capped at 56), and the page sizes the
 * caller allows; the x4 modes allocate their 16 KiB root as four contiguous, aligned frames.
 */
export function svFormat(m: SvMode): PageTableFormat {
  return {
    id: m.id,
    describe: `RISC-V ${m.name} ${m.stage === 1 ? 'first-stage' : 'second-stage (G-stage)'} table: ${m.levels} levels, ${m.ias}-bit ${m.stage === 1 ? 'IOVA' : 'guest-physical'} input${m.stage === 2 ? ', 16 KiB root' : ''}`,
    alloc(cfg: PageTableConfig, memory: PageTableMemory) {
      if (!(cfg.ias > 0 && cfg.ias <= m.ias) || !(cfg.oas >= 32)) return -ERRNO.EINVAL;
      if (cfg.options?.stage !== undefined && cfg.options.stage !== m.stage) return -ERRNO.EINVAL;
      const o = codecOptionsOf(cfg);
      if (o === null || (o.sum && m.stage === 2)) return -ERRNO.EINVAL;
      const oas = Math.min(cfg.oas, MAX_OAS);
      const pgsizeBitmap = cfg.pgsizeBitmap & modePageSizes(m);
      if ((pgsizeBitmap & (1n << 12n)) === 0n) return -ERRNO.EINVAL;
      const layout = layoutFor(m, pgsizeBitmap, oas);
      const root = RadixPageTable.rootFor(memory, layout);
      if (root < 0) return root;
      return new RadixPageTable(m.id, { ...cfg, pgsizeBitmap, ias: m.ias, oas }, codecFor(m.stage, o), layout, memory, root);
    },
    walkForeign(cfg, rootPfn, mem, iovaPfn, out, tableToPhys) {
      const o = codecOptionsOf(cfg) ?? DEFAULT_CODEC_OPTIONS;
      const layout = layoutFor(m, cfg.pgsizeBitmap & modePageSizes(m) | (1n << 12n), Math.min(cfg.oas, MAX_OAS));
      return radixWalk(codecFor(m.stage, o), layout, chunkCacheOf(mem), rootPfn, iovaPfn, out, tableToPhys);
    },
  };
}

/** The six page-table formats the plugin registers, one per mode. */
export const formats: readonly PageTableFormat[] = SV_MODES.map(svFormat);

/** The mode of a first-stage width (39/48/57) or second-stage width (41/50/59). */
export function modeOfWidth(stage: Stage, width: number): SvMode | undefined {
  return SV_MODES.find((m) => m.stage === stage && m.ias === width);
}
