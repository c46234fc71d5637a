/**
 * An IOMMU unit as hardware: its IOTLB and the walk a DMA takes through the domain bound to the
 * requester (and PASID). Vendors supply the table formats and the guest stage-1 walk; the unit caches
 * the result, checks permissions and reports why a translation failed.
 */
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, WALK_OK, WALK_TABLE_FAULT, WALK_ADDRESS_SIZE, WalkResult, type IoPageTable } from '../driver/pgtable.js';
import type { TranslationFailure } from '../driver/fault.js';
import type { NestedDomainOps, UnitOps } from '../driver/vendor.js';
import type { PhysicalMemory } from '../memory/physical.js';
import { Iotlb } from './iotlb.js';

export const BIND_BLOCKED = 0;
export const BIND_PAGING = 1;
export const BIND_NESTED = 2;

/**
 * What the unit's context/PASID table says for one (requester, PASID): blocked, a paging domain, or
 * a nested domain over its parent.
 */
export class Binding {
  constructor(
    readonly kind: number,
    /** IOTLB tag of the entries this binding creates. */
    readonly tag: number,
    /** The host-owned table: the paging domain's, or the nested domain's parent (stage 2). */
    readonly pt: IoPageTable | null,
    readonly nested: NestedDomainOps | null,
    /** The core HWPT object behind the binding, for fault routing. */
    readonly owner: object | null,
  ) {}

  static readonly blocked = new Binding(BIND_BLOCKED, 0, null, null, null);
}

export class TranslateResult {
  pfn = 0;
  perm = 0;
  failure: TranslationFailure = 'not-present';
  stage2 = false;
}

export class IommuUnit {
  readonly iotlb = new Iotlb();
  private readonly wr = new WalkResult();
  private readonly wr2 = new WalkResult();
  private readonly tableToPhys: (gpaPfn: number) => number;
  private s2: IoPageTable | null = null;
  walks = 0;

  constructor(
    readonly index: number,
    readonly id: string,
    readonly ops: UnitOps,
    private readonly mem: PhysicalMemory,
  ) {
    this.tableToPhys = (gpaPfn: number) => {
      const pt = this.s2;
      if (pt === null) return gpaPfn;
      return pt.walk(gpaPfn, this.wr2) && (this.wr2.perm & PERM_READ) !== 0 ? this.wr2.pfn : -1;
    };
  }

  get vendor(): string {
    return this.ops.vendor;
  }

  /**
   * Translates one IOVA page for an access needing `perm` (PERM_* bits). Returns true with out.pfn, or
   * false with out.failure. Never allocates.
   */
  translate(b: Binding, pasid: number, iovaPfn: number, perm: number, out: TranslateResult): boolean {
    // Kept small so that the compiler inlines the IOTLB hit into the DMA loop; walks are out of line.
    if (b.kind !== BIND_BLOCKED) {
      const tlb = this.iotlb;
      const hit = tlb.lookup(b.tag, pasid, iovaPfn);
      // A cached entry without the permission: the hardware re-walks (it may have been upgraded).
      if (hit >= 0 && (tlb.lastPerm & perm) === perm) {
        out.pfn = hit;
        out.perm = tlb.lastPerm;
        return true;
      }
      return this.walk(b, pasid, iovaPfn, perm, out);
    }
    out.failure = 'blocked';
    out.stage2 = false;
    return false;
  }

  /** The IOTLB missed: walk the tables, check permissions, fill the IOTLB. */
  private walk(b: Binding, pasid: number, iovaPfn: number, perm: number, out: TranslateResult): boolean {
    this.walks++;
    let pfn: number;
    let granted: number;
    if (b.kind === BIND_PAGING) {
      if (!b.pt!.walk(iovaPfn, this.wr)) return this.walkFailed(out, this.wr, false);
      pfn = this.wr.pfn;
      granted = this.wr.perm;
    } else {
      const n = b.nested!;
      const pt = b.pt!;
      let gpaPfn = iovaPfn;
      granted = PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV;
      if (n.mode === 'abort') {
        out.failure = 'blocked';
        out.stage2 = false;
        return false;
      }
      if (n.mode === 'translate') {
        this.s2 = pt;
        const ok = n.walkStage1(iovaPfn, pasid, this.mem, this.wr, this.tableToPhys);
        this.s2 = null;
        if (!ok) return this.walkFailed(out, this.wr, this.wr.fault === WALK_TABLE_FAULT);
        gpaPfn = this.wr.pfn;
        granted = this.wr.perm;
      }
      if (!pt.walk(gpaPfn, this.wr2)) return this.walkFailed(out, this.wr2, true);
      pfn = this.wr2.pfn;
      granted &= this.wr2.perm | PERM_EXEC | PERM_PRIV;
      if ((perm & ~this.wr2.perm & (PERM_READ | PERM_WRITE)) !== 0) {
        out.failure = perm & PERM_WRITE && !(this.wr2.perm & PERM_WRITE) ? 'permission-write' : 'permission-read';
        out.stage2 = true;
        return false;
      }
    }
    if ((granted & perm) !== perm) {
      const missing = perm & ~granted;
      out.failure = missing & PERM_WRITE ? 'permission-write' : missing & PERM_READ ? 'permission-read' : missing & PERM_EXEC ? 'permission-exec' : 'permission-priv';
      out.stage2 = false;
      return false;
    }
    this.iotlb.insert(b.tag, pasid, iovaPfn, pfn, granted);
    out.pfn = pfn;
    out.perm = granted;
    return true;
  }

  private walkFailed(out: TranslateResult, wr: WalkResult, stage2: boolean): false {
    out.failure = wr.fault === WALK_ADDRESS_SIZE ? 'address-size' : wr.fault === WALK_TABLE_FAULT ? 'table-fault' : wr.fault === WALK_OK ? 'not-present' : 'not-present';
    out.stage2 = stage2;
    return false;
  }
}
