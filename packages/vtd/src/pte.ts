/**
 * The VT-d page table: core's radix engine (map, unmap, free, A/D, rollback and accounting) with the
 * VT-d entry encodings (codec.ts), plus what is VT-d's own: the paging-structure cache of 4-level
 * second-stage walks (psc.ts) with a straight-line walk for that case, and the SSADE switch of
 * hardware A/D updates (dirty.ts).
 *
 * Hot-path rules (docs/performance.md): entries are read as two u32 halves straight out of the
 * chunk's Uint32Array; no BigInt, no allocation per walk. Page numbers may exceed 2^31, so the
 * 4-level walk splits them once into their low 27 bits and the rest rather than shifting them.
 */
import type { PhysicalMemory } from '@ioasid/core';
import {
  ChunkCache,
  ERRNO,
  PERM_READ,
  PERM_WRITE,
  PERM_EXEC,
  RadixLayout,
  RadixPageTable,
  WALK_ADDRESS_SIZE,
  WALK_OK,
  radixWalk,
  traceRadix,
  type PageTableConfig,
  type PageTableMemory,
  type RadixCodec,
  type WalkResult,
  type WalkStep,
} from '@ioasid/core/driver';
import { VtdFsCodec, VtdSsCodec } from './codec.js';
import { hardwareUpdatesAD } from './dirty.js';
import { PagingStructureCache } from './psc.js';
import { HI_ADDR_MASK, SS_D, SS_PS, SS_R, SS_W, SS_X, leafLevelsFromBitmap } from './pte-bits.js';
import { vtdTraceSpec } from './pgtable-trace.js';

export { SZ_1G, SZ_2M, SZ_4K, leafLevelsFromBitmap } from './pte-bits.js';

export const EINVAL = ERRNO.EINVAL;
export const ENOMEM = ERRNO.ENOMEM;

const TWO_20 = 1048576;
const INV_2_27 = 1 / 134217728;

/** What distinguishes the two VT-d formats; fixed at alloc time. */
export interface VtdFlavor {
  readonly format: string;
  readonly firstStage: boolean;
  /** SS: SLEE (execute permission honoured) sets X on executable leaves. */
  readonly executeEnable: boolean;
  /** SS: force snooping (SNP) on every leaf. */
  readonly snoop: boolean;
  /** SS: the ERRATA_772415_SPR17 rule for nest parents, read-only mappings refused. */
  readonly forceWriteable: boolean;
  /** FS: G on every leaf (global, survives PASID-selective flushes that spare globals). */
  readonly global: boolean;
}

/** The state a format's `alloc` validated, handed to the table. */
export interface VtdGeometry {
  readonly levels: number;
  /** log2 of the input size actually enforced (IOVAs at or above 2^ias fault). */
  readonly ias: number;
  readonly oas: number;
  /** leafLevelsFromBitmap() of the restricted pgsize bitmap. */
  readonly leafLevels: number;
}

const layouts = new Map<string, RadixLayout>();

/** The radix geometry of a VT-d table: 512-entry tables, `levels` deep (shared between tables). */
export function vtdLayout(levels: number, ias: number, oas: number, leafLevels: number): RadixLayout {
  const key = `${levels}:${ias}:${oas}:${leafLevels}`;
  let layout = layouts.get(key);
  if (layout === undefined) {
    const entryBits: number[] = [];
    const spanShift: number[] = [];
    for (let l = 0; l < levels; l++) {
      entryBits.push(9);
      spanShift.push(9 * l);
    }
    layout = new RadixLayout({ levels, entryBits, spanShift, leafLevels, ias, oas });
    layouts.set(key, layout);
  }
  return layout;
}

export class VtdPageTable extends RadixPageTable {
  private readonly fs: boolean;
  /** The table may turn hardware A/D updates on (SS: allocated for dirty tracking). */
  private readonly trackDirty: boolean;
  /** Hardware A/D updates are on: SS when SSADE is set in the PASID entry; FS always. */
  private hwAccessDirty: boolean;
  private readonly psc = new PagingStructureCache();
  /** 3 for a 4-level second-stage table (the walks the cache serves) with the cache on, else 0. */
  private pscLevels: number = 0;
  /** `executeEnable` as a number (SS_X or 0), for the walk. */
  private readonly execMask: number = 0;
  /** The root table's chunk once it is backed (the root never moves), and its word offset. */
  private rootChunk: Uint32Array | undefined = undefined;
  private readonly rootWordBase: number = 0;
  private readonly rootChunkIndex: number = 0;
  private readonly presentBits: number;

  constructor(flavor: VtdFlavor, cfg: Readonly<PageTableConfig>, geo: VtdGeometry, memory: PageTableMemory, rootPfn: number) {
    const codec: RadixCodec = flavor.firstStage
      ? new VtdFsCodec({ trackDirty: cfg.dirtyTracking === true, global: flavor.global })
      : new VtdSsCodec({ executeEnable: flavor.executeEnable, snoop: flavor.snoop, forceWriteable: flavor.forceWriteable });
    super(flavor.format, cfg, codec, vtdLayout(geo.levels, geo.ias, geo.oas, geo.leafLevels), memory, rootPfn);
    this.fs = flavor.firstStage;
    this.trackDirty = cfg.dirtyTracking === true;
    this.hwAccessDirty = hardwareUpdatesAD(flavor.firstStage, this.trackDirty, this.trackDirty);
    this.pscLevels = !flavor.firstStage && this.top === 3 ? 3 : 0;
    this.execMask = flavor.executeEnable ? SS_X : 0;
    this.rootWordBase = (rootPfn & 511) << 10;
    this.rootChunkIndex = Math.floor(rootPfn / 512);
    this.presentBits = codec.presentMask;
  }

  /**
   * Whether walks of a 4-level second-stage table use the paging-structure cache (on by default).
   * Off, every walk reads every level from table memory, as a walk after a PSC invalidation does.
   */
  get pagingStructureCache(): boolean {
    return this.pscLevels !== 0;
  }

  set pagingStructureCache(on: boolean) {
    this.psc.flush();
    this.pscLevels = on && !this.fs && this.top === 3 ? 3 : 0;
  }

  /** A table was released: its pointer may sit in the paging-structure cache. */
  protected override tablesChanged(): void {
    this.psc.flush();
  }

  // ---------------------------------------------------------------- walk

  override trace(iovaPfn: number): WalkStep[] {
    return traceRadix(this.mem, this.rootPfn, vtdTraceSpec(this.top, this.presentBits), iovaPfn);
  }

  /** The leaf of a successful 4K walk: `lo`/`hiWord` the leaf entry, `perm` the AND of every level's low word. */
  private leafOut(out: WalkResult, lo: number, hiWord: number, perm: number): true {
    const h = hiWord & HI_ADDR_MASK;
    out.pfn = h === 0 ? lo >>> 12 : h * TWO_20 + (lo >>> 12);
    const p = this.execMask !== 0 ? perm & (PERM_READ | PERM_WRITE | PERM_EXEC) : (perm & (PERM_READ | PERM_WRITE)) | ((perm & SS_R) << 2);
    // No privilege levels in the second stage: both get the same (permission.ts).
    out.perm = p | (p << 4);
    out.pageShift = 12;
    out.level = 0;
    out.dirty = (lo & SS_D) !== 0;
    out.fault = WALK_OK;
    return true;
  }

  override walk(iovaPfn: number, out: WalkResult): boolean {
    // Small enough to be inlined into the caller: the paging-structure cache hit of a 4-level
    // second-stage table goes straight to the leaf table; the leaf entry itself is read now.
    if (this.pscLevels === 3 && iovaPfn >= 0 && iovaPfn < this.limitPfn) {
      const low = iovaPfn & 0x7ffffff;
      // The 2 MiB region: iovaPfn < 2^36 here, so the region number is below 2^27.
      const region = ((((iovaPfn - low) * INV_2_27) & 511) << 18) | (low >>> 9);
      const psc = this.psc;
      const s = region & 1023;
      if (psc.key[s] === region) {
        const v = psc.word[s];
        const lc = psc.chunk[s];
        const lw = (v & 0x7fc00) + ((low & 511) << 1);
        const leaf = lc[lw];
        if ((leaf & (SS_R | SS_W)) !== 0) return this.leafOut(out, leaf, lc[lw + 1], v & leaf);
        // Not present: the full walk reports it.
      }
    }
    return this.walkTables(iovaPfn, out);
  }

  private walkTables(iovaPfn: number, out: WalkResult): boolean {
    if (!(iovaPfn >= 0 && iovaPfn < this.limitPfn)) {
      out.fault = WALK_ADDRESS_SIZE;
      out.level = this.top;
      out.perm = 0;
      out.dirty = false;
      return false;
    }
    if (!this.fs && this.top === 3) {
      // Straight-line 4-level second-stage walk of 4K leaves, the case the DMA hot path hits. The
      // next table's chunk index ((hi << 11) | (lo >>> 21)) and word offset ((lo >>> 2) & 0x7fc00)
      // come from the entry halves with int32 operations only, and the chunk is looked up only when
      // it changes. Anything unusual (a superpage, a missing entry, an unbacked chunk) falls through
      // to the engine's walk, which reports it. A walk that reaches a leaf table fills the
      // paging-structure cache.
      const low = iovaPfn & 0x7ffffff;
      const top9 = ((iovaPfn - low) * INV_2_27) & 511;
      const region = (top9 << 18) | (low >>> 9);
      let c = this.rootChunk;
      if (c === undefined) c = this.rootChunk = this.chunks.get(this.rootPfn);
      if (c !== undefined) {
        let cur = this.rootChunkIndex;
        let w = this.rootWordBase + (top9 << 1);
        let lo = c[w];
        let perm = lo;
        if ((lo & (SS_R | SS_W)) !== 0 && (lo & SS_PS) === 0) {
          let h = c[w + 1] & HI_ADDR_MASK;
          let ci = (h << 11) | (lo >>> 21);
          if (ci !== cur) {
            c = this.chunks.getIndexed(ci, h * TWO_20 + (lo >>> 12));
            cur = ci;
          }
          if (c !== undefined) {
            w = ((lo >>> 2) & 0x7fc00) + (((low >>> 18) & 511) << 1);
            lo = c[w];
            perm &= lo;
            if ((lo & (SS_R | SS_W)) !== 0 && (lo & SS_PS) === 0) {
              h = c[w + 1] & HI_ADDR_MASK;
              ci = (h << 11) | (lo >>> 21);
              if (ci !== cur) {
                c = this.chunks.getIndexed(ci, h * TWO_20 + (lo >>> 12));
                cur = ci;
              }
              if (c !== undefined) {
                w = ((lo >>> 2) & 0x7fc00) + (((low >>> 9) & 511) << 1);
                lo = c[w];
                perm &= lo;
                if ((lo & (SS_R | SS_W)) !== 0 && (lo & SS_PS) === 0) {
                  h = c[w + 1] & HI_ADDR_MASK;
                  ci = (h << 11) | (lo >>> 21);
                  if (ci !== cur) c = this.chunks.getIndexed(ci, h * TWO_20 + (lo >>> 12));
                  if (c !== undefined) {
                    const base = (lo >>> 2) & 0x7fc00;
                    if (this.pscLevels === 3) this.psc.fill(region, c, base, perm);
                    w = base + ((low & 511) << 1);
                    lo = c[w];
                    perm &= lo;
                    if ((lo & (SS_R | SS_W)) !== 0) return this.leafOut(out, lo, c[w + 1], perm);
                  }
                }
              }
            }
          }
        }
      }
    }
    return radixWalk(this.codec, this.layout, this.chunks, this.rootPfn, iovaPfn, out, null);
  }

  // ---------------------------------------------------------------- A/D

  override setDirtyTracking(enable: boolean): void {
    // SS: SSADE in the PASID entry; only a domain allocated for dirty tracking may turn it on. FS
    // hardware always maintains A/D, so there is nothing to switch.
    this.hwAccessDirty = hardwareUpdatesAD(this.fs, this.trackDirty, enable);
    super.setDirtyTracking(enable);
  }

  override markAccess(iovaPfn: number, write: boolean): void {
    if (this.hwAccessDirty) super.markAccess(iovaPfn, write);
  }
}

// -------------------------------------------------------------------- foreign walks

const ssCodecs = [new VtdSsCodec({ executeEnable: false, snoop: false, forceWriteable: false }), new VtdSsCodec({ executeEnable: true, snoop: false, forceWriteable: false })];
const fsCodec = new VtdFsCodec({ trackDirty: false, global: false });
const foreignChunks = new ChunkCache();

/**
 * Walks a guest's table (nested translation): every table pointer goes through `tableToPhys`. The
 * leaf levels are those of the configuration's page sizes (at least 4K); `maxLeafLevels` restricts
 * them further (FL1GP clear: no 1G leaves).
 */
export function walkForeignVtd(
  cfg: Readonly<PageTableConfig>,
  firstStage: boolean,
  maxLeafLevels: number,
  rootPfn: number,
  mem: PhysicalMemory,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: (pfn: number) => number,
): boolean {
  let levels = cfg.levels;
  if (levels === undefined) levels = firstStage ? (cfg.ias > 48 ? 5 : 4) : Math.max(3, Math.ceil((cfg.ias - 12) / 9));
  const valid = levels >= (firstStage ? 4 : 3) && levels <= 5 && cfg.ias <= 12 + 9 * levels;
  if (!valid || !(iovaPfn >= 0 && iovaPfn < 2 ** (cfg.ias - 12))) {
    out.fault = WALK_ADDRESS_SIZE;
    out.level = valid ? levels - 1 : 0;
    out.perm = 0;
    out.dirty = false;
    return false;
  }
  const layout = vtdLayout(levels, cfg.ias, 52, (leafLevelsFromBitmap(cfg.pgsizeBitmap) | 1) & maxLeafLevels);
  foreignChunks.bind(mem);
  const codec = firstStage ? fsCodec : ssCodecs[cfg.options?.['slee'] === true ? 1 : 0];
  return radixWalk(codec, layout, foreignChunks, rootPfn, iovaPfn, out, tableToPhys);
}
