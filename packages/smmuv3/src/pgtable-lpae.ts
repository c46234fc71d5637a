/**
 * VMSAv8-64 long-descriptor page tables as SMMUv3 walks them: `arm-lpae-s1` (CD.TTB0, stage 1) and
 * `arm-lpae-s2` (STE.S2TTB, stage 2), the formats of Linux io-pgtable-arm.
 *
 * Granules 4K, 16K and 64K (`cfg.granule`, default 4K) resolve 9, 11 and 13 bits per level; the start
 * level follows from the input size (`levels = ceil((ias - granule_shift) / bits_per_level)`), and a
 * stage-2 table may start one level lower with up to 16 concatenated top-level tables (chosen as older
 * Linux does: start level 0 with at most 16 entries; or forced by asking for one level fewer through
 * `cfg.levels`). Blocks: 4K granule 1G and 2M; 16K 32M; 64K 512M, and 4T with a 52-bit output
 * (64K + `cfg.oas` 52 packs PA[51:48] into descriptor bits [15:12], FEAT_LPA).
 *
 * Page numbers are 4 KiB units whatever the granule; with 16K/64K a map of misaligned page numbers or
 * length is -EINVAL. A table of a 16K/64K granule spans 4/16 contiguous, size-aligned 4 KiB frames; the
 * concatenated stage-2 PGD up to 256, allocated as aligned runs (core's allocTableFrames).
 *
 * Internally levels are numbered as the rest of ioasid numbers them: 0 is the page level (Arm level
 * 3), `top` is the start level (Arm level 3 - top).
 */
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  WALK_ADDRESS_SIZE,
  type IoPageTable,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
  type RadixCodec,
  type WalkResult,
  type WalkStep,
  traceRadix,
  ChunkCache,
  ERRNO,
  LeafBits,
  MAP_NOTHING,
  RadixLayout,
  RadixPageTable,
  radixWalk,
} from '@ioasid/core/driver';
import { lpaeTraceSpec } from './pgtable-lpae-trace.js';

const EINVAL = ERRNO.EINVAL;
const ENOMEM = ERRNO.ENOMEM;

/**
 * Format id of the Arm VMSAv8-64 stage-1 page table (io-pgtable-arm ARM_64_LPAE_S1), the table a CD's TTB0 points to.
 */
export const ARM_LPAE_S1_FORMAT = 'arm-lpae-s1';
/** Format id of the Arm VMSAv8-64 stage-2 page table (io-pgtable-arm ARM_64_LPAE_S2), the table STE.S2TTB points to. */
export const ARM_LPAE_S2_FORMAT = 'arm-lpae-s2';

// ------------------------------------------------------------------ descriptor bits (low word)

/** bits[1:0]: 0b11 table (levels 0-2) or page (level 3), 0b01 block. */
export const LPAE_VALID = 1 << 0;
export const LPAE_TYPE_TABLE = 3;
export const LPAE_TYPE_PAGE = 3;
export const LPAE_TYPE_BLOCK = 1;
/** Stage 1: AttrIndx[2:0] at bit 2, indices into the MAIR Linux programs. */
export const LPAE_ATTRINDX_SHIFT = 2;
export const LPAE_MAIR_IDX_NC = 0;
export const LPAE_MAIR_IDX_CACHE = 1;
export const LPAE_MAIR_IDX_DEV = 2;
/** Stage 1 AP[1] (EL0 / unprivileged access) and AP[2] (read-only). */
export const LPAE_AP_UNPRIV = 1 << 6;
export const LPAE_AP_RDONLY = 1 << 7;
/** Stage 2 S2AP: read, write. */
export const LPAE_HAP_READ = 1 << 6;
export const LPAE_HAP_WRITE = 1 << 7;
/** Stage 2 MemAttr[3:0] at bit 2. */
export const LPAE_MEMATTR_OIWB = 0xf << 2;
export const LPAE_MEMATTR_NC = 0x5 << 2;
export const LPAE_MEMATTR_DEV = 0x1 << 2;
export const LPAE_MEMATTR_FWB_WB = 0x6 << 2;
/** SH[1:0] at bit 8. */
export const LPAE_SH_OS = 2 << 8;
export const LPAE_SH_IS = 3 << 8;
export const LPAE_AF = 1 << 10;
export const LPAE_NG = 1 << 11;

// ------------------------------------------------------------------ descriptor bits (high word = bits 63:32)

/** DBM, bit 51. */
export const LPAE_HI_DBM = 1 << 19;
/** PXN bit 53, UXN/XN bit 54; Linux's ARM_LPAE_PTE_XN sets both. */
export const LPAE_HI_PXN = 1 << 21;
export const LPAE_HI_UXN = 1 << 22;
export const LPAE_HI_XN = LPAE_HI_PXN | LPAE_HI_UXN;
/** Stage-1 table descriptor hierarchical controls: PXNTable 59, UXNTable 60, APTable 62:61. */
export const LPAE_HI_PXNTABLE = 1 << 27;
export const LPAE_HI_UXNTABLE = 1 << 28;
export const LPAE_HI_APTABLE_NOEL0 = 1 << 29;
export const LPAE_HI_APTABLE_RDONLY = 1 << 30;
const HI_TABLE_CONTROLS = LPAE_HI_PXNTABLE | LPAE_HI_UXNTABLE | LPAE_HI_APTABLE_NOEL0 | LPAE_HI_APTABLE_RDONLY;

/** Output address bits 47:32 in the high word. */
const HI_ADDR_MASK = 0xffff;
const TWO_20 = 1048576;
const TWO_36 = 68719476736;
/** ARM_LPAE_S2_MAX_CONCAT_PAGES. */
const S2_MAX_CONCAT = 16;

/** Everything that follows from (stage, granule, ias, oas, levels): validated once. */
export class LpaeGeometry {
  /** log2(granule) - 12: 0, 2, 4. */
  readonly g: number;
  readonly bitsPerLevel: number;
  /** Entries of a non-top table. */
  readonly entries: number;
  readonly tableFrames: number;
  readonly levels: number;
  /** Internal level of the top table (levels - 1). */
  readonly top: number;
  /** Arm start level (4 - levels). */
  readonly startLevel: number;
  readonly rootEntries: number;
  readonly rootFrames: number;
  /** Concatenated top-level tables (1 when not concatenated). */
  readonly concatenated: number;
  readonly limitPfn: number;
  readonly oaLimitPfn: number;
  /** Per internal level: 4 KiB pages one entry covers, and its exact reciprocal. */
  readonly span: Float64Array;
  readonly invSpan: Float64Array;
  /** Bit per internal level: a leaf may sit there (allowed by the architecture and the bitmap). */
  readonly leafLevels: number;
  readonly pgsizeBitmap: bigint;
  /** 64K granule with a 52-bit output: PA[51:48] in descriptor bits [15:12]. */
  readonly lpa: boolean;
  readonly ias: number;
  readonly oas: number;

  constructor(g: number, levels: number, pgdBits: number, ias: number, oas: number, leafLevels: number, pgsizeBitmap: bigint) {
    this.g = g;
    this.bitsPerLevel = 9 + g;
    this.entries = 1 << this.bitsPerLevel;
    this.tableFrames = 1 << g;
    this.levels = levels;
    this.top = levels - 1;
    this.startLevel = 4 - levels;
    this.rootEntries = 2 ** pgdBits;
    this.rootFrames = Math.max(1, (this.rootEntries * 8) / 4096);
    this.concatenated = Math.max(1, this.rootEntries / this.entries);
    this.ias = ias;
    this.oas = oas;
    this.limitPfn = 2 ** (ias - 12);
    this.oaLimitPfn = 2 ** (oas - 12);
    this.span = new Float64Array(4);
    this.invSpan = new Float64Array(4);
    for (let l = 0; l < 4; l++) {
      this.span[l] = 2 ** (g + this.bitsPerLevel * l);
      this.invSpan[l] = 1 / this.span[l];
    }
    this.leafLevels = leafLevels;
    this.pgsizeBitmap = pgsizeBitmap;
    this.lpa = g === 4 && oas > 48;
  }

  /** Entries of the table at internal level `level`. */
  entriesAt(level: number): number {
    return level === this.top ? this.rootEntries : this.entries;
  }

  /** Page number held by a table/block/page descriptor. */
  decode(lo: number, hi: number): number {
    if (this.lpa) return (hi & HI_ADDR_MASK) * TWO_20 + ((lo >>> 16) << 4) + ((lo >>> 12) & 0xf) * TWO_36;
    return (hi & HI_ADDR_MASK) * TWO_20 + (lo >>> 12);
  }

  /** Address part of a descriptor's low word for page number `pfn` (granule-aligned). */
  encodeLo(pfn: number): number {
    if (this.lpa) return ((pfn & 0xffff0) << 12) | (((pfn / TWO_36) & 0xf) << 12);
    return pfn << 12;
  }

  encodeHi(pfn: number): number {
    return (pfn / TWO_20) & HI_ADDR_MASK;
  }

  /** The radix engine's view of this geometry (entry bits and spans per level, the root's own size), shared. */
  get layout(): RadixLayout {
    const key = `${this.g}:${this.levels}:${this.rootEntries}:${this.ias}:${this.oas}:${this.leafLevels}`;
    let layout = layouts.get(key);
    if (layout === undefined) {
      const entryBits: number[] = [];
      const spanShift: number[] = [];
      for (let l = 0; l < this.levels; l++) {
        entryBits.push(l === this.top ? Math.log2(this.rootEntries) : this.bitsPerLevel);
        spanShift.push(this.g + this.bitsPerLevel * l);
      }
      layout = new RadixLayout({ levels: this.levels, entryBits, spanShift, leafLevels: this.leafLevels, ias: this.ias, oas: this.oas });
      layouts.set(key, layout);
    }
    return layout;
  }
}

const layouts = new Map<string, RadixLayout>();

/** Architecture block sizes per granule, as internal-level bits: 4K 2M+1G, 16K 32M, 64K 512M (+4T with LPA). */
function archLeafLevels(g: number, oas: number): number {
  if (g === 0) return 0b111;
  if (g === 2) return 0b011;
  return oas > 48 ? 0b111 : 0b011;
}

function leafBitmap(g: number, leafLevels: number): bigint {
  let m = 0n;
  for (let l = 0; l < 3; l++) if ((leafLevels >> l) & 1) m |= 1n << BigInt(12 + g + (9 + g) * l);
  return m;
}

/**
 * Validates a configuration into a geometry, or returns a negative errno. `forAlloc` restricts
 * cfg.pgsizeBitmap (alloc must keep the granule's page size); walkForeign takes the bitmap as is.
 */
export function lpaeGeometry(cfg: Readonly<PageTableConfig>, stage: 1 | 2): LpaeGeometry | number {
  const granule = cfg.granule ?? defaultGranule(cfg.pgsizeBitmap);
  const pgShift = granule === 4096 ? 12 : granule === 16384 ? 14 : granule === 65536 ? 16 : 0;
  if (pgShift === 0) return -EINVAL;
  const g = pgShift - 12;
  const bpl = pgShift - 3;
  const ias = cfg.ias;
  const maxBits = g === 4 ? 52 : 48;
  if (!Number.isInteger(ias) || ias <= pgShift || ias > maxBits) return -EINVAL;
  if (!Number.isInteger(cfg.oas) || cfg.oas < 32 || cfg.oas > 52) return -EINVAL;
  // 52-bit output needs the 64K granule (FEAT_LPA); other granules are limited to 48 bits.
  const oas = g === 4 ? cfg.oas : Math.min(cfg.oas, 48);
  const vaBits = ias - pgShift;
  const natural = Math.ceil(vaBits / bpl);
  let levels = cfg.levels ?? natural;
  if (!Number.isInteger(levels) || levels < 1 || levels > 4) return -EINVAL;
  let pgdBits = vaBits - bpl * (levels - 1);
  if (pgdBits <= 0) return -EINVAL;
  if (pgdBits > bpl) {
    // Fewer levels than the input size needs: only stage 2 can, by concatenating top-level tables.
    if (stage !== 2 || 2 ** (pgdBits - bpl) > S2_MAX_CONCAT) return -EINVAL;
  } else if (stage === 2 && cfg.levels === undefined && levels === 4 && 2 ** pgdBits <= S2_MAX_CONCAT) {
    // arm_64_lpae_alloc_pgtable_s2(): a start-level-0 PGD of at most 16 entries is concatenated
    // into the level below, saving a level of walk.
    levels--;
    pgdBits += bpl;
  }
  const arch = archLeafLevels(g, oas);
  const allowed = leafBitmap(g, arch);
  const pgsize = cfg.pgsizeBitmap & allowed;
  if ((pgsize & (1n << BigInt(pgShift))) === 0n) return -EINVAL;
  let leafLevels = 1;
  for (let l = 1; l < 3; l++) if ((pgsize & (1n << BigInt(12 + g + bpl * l))) !== 0n) leafLevels |= 1 << l;
  return new LpaeGeometry(g, levels, pgdBits, ias, oas, leafLevels, pgsize);
}

/** Linux picks the granule from the bitmap, preferring the CPU page size; we prefer 4K. */
function defaultGranule(bitmap: bigint): number {
  if (bitmap & (1n << 12n)) return 4096;
  if (bitmap & (1n << 14n)) return 16384;
  if (bitmap & (1n << 16n)) return 65536;
  return 0;
}


// ------------------------------------------------------------------ the entry encoding

const FOUR = [0, 0, 0, 0];
const TABLE_TYPES = [LPAE_TYPE_TABLE, LPAE_TYPE_TABLE, LPAE_TYPE_TABLE, LPAE_TYPE_TABLE];
/** Level 0 (Arm level 3) holds pages (0b11), the levels above blocks (0b01). */
const LEAF_TYPES = [LPAE_TYPE_PAGE, LPAE_TYPE_BLOCK, LPAE_TYPE_BLOCK, LPAE_TYPE_BLOCK];

/** What the codec needs to know about a table: fixed at alloc (or per walkForeign configuration). */
export interface LpaeCodecOptions {
  readonly stage2: boolean;
  /** Stage 2 with FEAT_S2FWB: cacheable leaves get MemAttr 0b0110. */
  readonly s2fwb: boolean;
  /**
   * HTTU: the SMMU updates AF and, with DBM, the write permission (CD.HA/HD, STE.S2HA/S2HD). Linux sets
   * HD for the life of a dirty-tracking domain (arm_smmu_set_dirty_tracking switches nothing).
   */
  readonly hwDirty: boolean;
}

/**
 * VMSAv8-64 descriptors for core's radix engine: valid bit 0, type bits 1:0 (0b11 table or page, 0b01
 * block), output address bits 47:12 (with LPA, see LpaeLpaCodec).
 */
export class LpaeCodec implements RadixCodec {
  readonly presentMask = LPAE_VALID;
  readonly tableMask = 3;
  readonly tableValue: readonly number[] = TABLE_TYPES;
  readonly tableLo: readonly number[] = TABLE_TYPES;
  readonly tableHi: readonly number[] = FOUR;
  readonly leafTypeLo: readonly number[] = LEAF_TYPES;
  /** A block descriptor at level 3 is invalid: the walk finds nothing there. */
  readonly leafTypeMask = 3;
  readonly addrShift = 12;
  readonly addrHiMask = HI_ADDR_MASK;
  private readonly stage2: boolean;
  private readonly s2fwb: boolean;
  private readonly hwDirty: boolean;

  constructor(opts: LpaeCodecOptions) {
    this.stage2 = opts.stage2;
    this.s2fwb = opts.s2fwb;
    this.hwDirty = opts.hwDirty;
  }

  /** arm_lpae_prot_to_pte(); io-pgtable-arm maps nothing, successfully, without read or write. */
  leafBits(prot: number, bits: LeafBits): number {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return MAP_NOTHING;
    let lo = LPAE_AF;
    if (!this.stage2) {
      lo |= LPAE_NG;
      if (!(prot & IOMMU_WRITE) && prot & IOMMU_READ) lo |= LPAE_AP_RDONLY;
      if (!(prot & IOMMU_PRIV)) lo |= LPAE_AP_UNPRIV;
      if (prot & IOMMU_MMIO) lo |= LPAE_MAIR_IDX_DEV << LPAE_ATTRINDX_SHIFT;
      else if (prot & IOMMU_CACHE) lo |= LPAE_MAIR_IDX_CACHE << LPAE_ATTRINDX_SHIFT;
      else lo |= LPAE_MAIR_IDX_NC << LPAE_ATTRINDX_SHIFT;
    } else {
      if (prot & IOMMU_READ) lo |= LPAE_HAP_READ;
      if (prot & IOMMU_WRITE) lo |= LPAE_HAP_WRITE;
      if (prot & IOMMU_MMIO) lo |= LPAE_MEMATTR_DEV;
      else if (prot & IOMMU_CACHE) lo |= this.s2fwb ? LPAE_MEMATTR_FWB_WB : LPAE_MEMATTR_OIWB;
      else lo |= LPAE_MEMATTR_NC;
    }
    lo |= prot & IOMMU_CACHE ? LPAE_SH_IS : LPAE_SH_OS;
    let hi = 0;
    // With HTTU HD a writable leaf carries DBM and starts writable-dirty, as Linux maps it; dirty
    // tracking then begins with a read-and-clear that makes it writable-clean.
    if (this.hwDirty && prot & IOMMU_WRITE) hi |= LPAE_HI_DBM;
    if (prot & IOMMU_NOEXEC) hi |= LPAE_HI_XN;
    bits.lo = lo;
    bits.hi = hi;
    return 0;
  }

  /**
   * Stage 1 applies the table descriptors' APTable/XNTable controls hierarchically; a privileged-only
   * page (AP[1] clear or APTable[0] set) grants only privileged requests. A DBM leaf counts as
   * writable when hardware dirty management is on.
   */
  leafGrant(lo: number, hi: number, _level: number, _tablesLo: number, tablesHi: number): number {
    const dbm = (hi & LPAE_HI_DBM) !== 0;
    if (this.stage2) {
      // Stage 2 has no privilege levels: both get the same (permission.ts).
      let p = ((lo & LPAE_HAP_READ) !== 0 ? PERM_READ : 0) | ((lo & LPAE_HAP_WRITE) !== 0 || (dbm && this.hwDirty) ? PERM_WRITE : 0);
      if ((hi & LPAE_HI_UXN) === 0) p |= PERM_EXEC;
      return p | (p << 4);
    }
    // AP[1] (or APTable[0]) decides whether unprivileged requests get anything; PXN and UXN (and
    // their table forms) take execute away from one level each. A page writable by unprivileged
    // requests is never privileged-executable (the architecture's implicit PXN).
    const tableHi = tablesHi & HI_TABLE_CONTROLS;
    const userOk = (lo & LPAE_AP_UNPRIV) !== 0 && (tableHi & LPAE_HI_APTABLE_NOEL0) === 0;
    const xhi = hi | tableHi;
    const rw = PERM_READ | (((lo & LPAE_AP_RDONLY) === 0 || (dbm && this.hwDirty)) && (tableHi & LPAE_HI_APTABLE_RDONLY) === 0 ? PERM_WRITE : 0);
    const userRwx = userOk ? rw | ((xhi & (LPAE_HI_UXN | LPAE_HI_UXNTABLE)) === 0 ? PERM_EXEC : 0) : 0;
    const privX = (xhi & (LPAE_HI_PXN | LPAE_HI_PXNTABLE)) === 0 && (userRwx & PERM_WRITE) === 0 ? PERM_EXEC : 0;
    return userRwx | ((rw | privX) << 4);
  }

  /** Writable-dirty: DBM set and the write permission granted (arm_lpae_read_and_clear_dirty). */
  leafDirty(lo: number, hi: number, level: number): boolean {
    if (level === 0 && (lo & 3) !== LPAE_TYPE_PAGE) return false;
    return (hi & LPAE_HI_DBM) !== 0 && (this.stage2 ? (lo & LPAE_HAP_WRITE) !== 0 : (lo & LPAE_AP_RDONLY) === 0);
  }

  /** Writable-clean: the write permission taken away again (DBM stays). */
  leafClean(lo: number): number {
    return this.stage2 ? lo & ~LPAE_HAP_WRITE : lo | LPAE_AP_RDONLY;
  }

  /** HTTU: AF on any access (HA); a write through a DBM leaf makes it writable-dirty (HD). */
  leafAccessed(lo: number, hi: number, write: boolean, _hwDirty: boolean, level: number): number {
    if (level === 0 && (lo & 3) !== LPAE_TYPE_PAGE) return lo;
    let v = lo | LPAE_AF;
    if (write && this.hwDirty && (hi & LPAE_HI_DBM) !== 0) v = this.stage2 ? v | LPAE_HAP_WRITE : v & ~LPAE_AP_RDONLY;
    return v;
  }
}

/** 64K granule with a 52-bit output (FEAT_LPA): PA[51:48] in descriptor bits [15:12]. */
export class LpaeLpaCodec extends LpaeCodec {
  encodeAddrLo(pfn: number): number {
    return ((pfn & 0xffff0) << 12) | (((pfn / TWO_36) & 0xf) << 12);
  }

  encodeAddrHi(pfn: number): number {
    return (pfn / TWO_20) & HI_ADDR_MASK;
  }

  decodeAddr(lo: number, hi: number): number {
    return (hi & HI_ADDR_MASK) * TWO_20 + ((lo >>> 16) << 4) + ((lo >>> 12) & 0xf) * TWO_36;
  }
}

function lpaeCodec(geo: LpaeGeometry, opts: LpaeCodecOptions): LpaeCodec {
  return geo.lpa ? new LpaeLpaCodec(opts) : new LpaeCodec(opts);
}

// ------------------------------------------------------------------ the table

/** An LPAE table: core's radix engine with the LPAE codec and geometry. */
export class LpaePageTable extends RadixPageTable {
  /** The geometry (granule, levels, concatenation) in use; e.g. for the STE S2SL0 / CD TCR fields. */
  readonly geometry: LpaeGeometry;

  constructor(stage2: boolean, cfg: Readonly<PageTableConfig>, geo: LpaeGeometry, memory: PageTableMemory, rootPfn: number) {
    const hwDirty = cfg.dirtyTracking === true;
    const codec = lpaeCodec(geo, { stage2, s2fwb: cfg.options?.['s2fwb'] === true, hwDirty });
    super(stage2 ? ARM_LPAE_S2_FORMAT : ARM_LPAE_S1_FORMAT, cfg, codec, geo.layout, memory, rootPfn);
    this.geometry = geo;
  }

  override trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, lpaeTraceSpec(this.geometry), iovaPfn);
  }

  /** HD is set for the life of a dirty-tracking domain (arm_smmu_set_dirty_tracking switches nothing). */
  override setDirtyTracking(_enable: boolean): void {}
}

const foreignChunks = new ChunkCache();
const foreignCodecs = new Map<string, LpaeCodec>();

function walkFault(out: WalkResult, reason: number, level: number): boolean {
  out.fault = reason;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

function makeFormat(stage: 1 | 2): PageTableFormat {
  const id = stage === 1 ? ARM_LPAE_S1_FORMAT : ARM_LPAE_S2_FORMAT;
  return {
    id,
    describe:
      stage === 1
        ? 'Arm VMSAv8-64 stage 1: 4K (2M, 1G blocks), 16K (32M), 64K (512M, 4T with 52-bit PA) granules, up to 48-bit input (52 with 64K), 48/52-bit output'
        : 'Arm VMSAv8-64 stage 2: 4K (2M, 1G blocks), 16K (32M), 64K (512M, 4T with 52-bit PA) granules, up to 48-bit input (52 with 64K), up to 16 concatenated top-level tables',
    alloc(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
      const geo = lpaeGeometry(cfg, stage);
      if (typeof geo === 'number') return geo;
      const root = RadixPageTable.rootFor(memory, geo.layout);
      if (root < 0) return -ENOMEM;
      // io_pgtable_cfg is in/out: report the sizes (and output size) actually provided.
      cfg.pgsizeBitmap = geo.pgsizeBitmap;
      const effective: Readonly<PageTableConfig> = Object.freeze({
        ...cfg,
        pgsizeBitmap: geo.pgsizeBitmap,
        oas: geo.oas,
        levels: geo.levels,
        granule: 4096 << geo.g,
        options: Object.freeze({ ...(cfg.options ?? {}) }),
      });
      return new LpaePageTable(stage === 2, effective, geo, memory, root);
    },
    walkForeign(cfg, rootPfn, mem, iovaPfn, out, tableToPhys): boolean {
      const geo = lpaeGeometry(cfg, stage);
      if (typeof geo === 'number') return walkFault(out, WALK_ADDRESS_SIZE, 0);
      if (!(iovaPfn >= 0 && iovaPfn < geo.limitPfn)) return walkFault(out, WALK_ADDRESS_SIZE, geo.top);
      const hwDirty = cfg.dirtyTracking === true;
      const key = `${stage}:${hwDirty}:${geo.lpa}`;
      let codec = foreignCodecs.get(key);
      if (codec === undefined) {
        codec = lpaeCodec(geo, { stage2: stage === 2, s2fwb: false, hwDirty });
        foreignCodecs.set(key, codec);
      }
      foreignChunks.bind(mem);
      return radixWalk(codec, geo.layout, foreignChunks, rootPfn, iovaPfn, out, tableToPhys);
    },
  };
}

/** The VMSAv8-64 stage-1 format (4K/16K/64K granules), as io-pgtable-arm builds it for an SMMUv3 S1 domain. */
export const armLpaeS1: PageTableFormat = makeFormat(1);
/**
 * The VMSAv8-64 stage-2 format (4K/16K/64K granules, concatenated roots), as io-pgtable-arm builds it for an SMMUv3 S2
 * domain.
 */
export const armLpaeS2: PageTableFormat = makeFormat(2);
