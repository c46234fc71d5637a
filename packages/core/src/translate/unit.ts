/**
 * An IOMMU unit as hardware: its IOTLB and the walk a DMA takes through the domain bound to the
 * requester (and PASID). Vendors supply the table formats and the guest stage-1 walk; the unit caches
 * the result, checks permissions and reports why a translation failed.
 */
import { PERM_EXEC, PERM_PRIV_EXEC, PERM_GRANT_ALL, permAllowed, permFailure } from '../driver/permission.js';
import { PERM_READ, PERM_WRITE, WALK_TABLE_FAULT, WalkResult, type IoPageTable } from '../driver/pgtable.js';
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
  // Initialized where declared (not as parameter properties, which compile to fields declared
  // undefined) so that `kind` and `tag` are small-integer fields: the IOTLB hit path reads both.
  readonly kind: number = 0;
  /** IOTLB tag of the entries this binding creates. */
  readonly tag: number = 0;
  /** The host-owned table: the paging domain's, or the nested domain's parent (stage 2). */
  readonly pt: IoPageTable | null = null;
  readonly nested: NestedDomainOps | null = null;
  /** The core HWPT object behind the binding, for fault routing. */
  readonly owner: object | null = null;

  constructor(kind: number, tag: number, pt: IoPageTable | null, nested: NestedDomainOps | null, owner: object | null) {
    this.kind = kind;
    this.tag = tag;
    this.pt = pt;
    this.nested = nested;
    this.owner = owner;
  }

  static readonly blocked = new Binding(BIND_BLOCKED, 0, null, null, null);
}

export class TranslateResult {
  pfn = 0;
  perm = 0;
  failure: TranslationFailure = 'not-present';
  stage2 = false;
  /** On failure: format id of the table whose walk failed ('' when none was walked); see FailedAccess.format. */
  format = '';
  /** On failure: the binding's IOTLB tag (0 when blocked). */
  tag = 0;
  /** On 'no-context': the vendor's WalkResult.contextFault. */
  contextFault = 0;
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
    /**
     * MSIs of the devices behind the unit are isolated by the platform (iommu_group_has_isolated_msi):
     * the profile's `msiIsolated`, else the vendor's caps (isolatedMsi, else interruptRemapping).
     */
    readonly msiIsolated: boolean = ops.caps.isolatedMsi ?? ops.caps.interruptRemapping,
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
    // (0 is BIND_BLOCKED, written as a literal: a module constant is a cell load with a hole check.)
    // `=== true` types the result of the out-of-line call as a boolean, so that the caller's test of
    // the inlined result is one compare instead of a generic truthiness check.
    if (b.kind !== 0 && this.iotlb.hit(b.tag, pasid, iovaPfn, perm, out)) return true;
    return this.walkPaging(b, pasid, iovaPfn, perm, out) === true;
  }

  /**
   * Not an IOTLB hit. With the IOTLB off, a paging binding's walk that succeeds with the permission is
   * done here, straight from translate to the table (1 is BIND_PAGING; the permission test is miss's,
   * inline). Anything else goes to miss: a walk that fails or lacks the permission (walked again there,
   * and reported), a nested or blocked binding, and every miss of an enabled IOTLB (walked and cached
   * there).
   *
   * Why only with the IOTLB off, and small: where walks are hot (the IOTLB off) the compiler inlines
   * this with translate into the caller's loop, which leaves no call at all when the table's walk is
   * small enough too (VT-d's is). Where IOTLB hits are hot, this is reached only by the first misses,
   * and must not grow translate: the compiler inlines a function into a loop only while the code
   * already inlined into it stays within a budget (920 bytes of bytecode in V8 11), and translate
   * compiled on its own with a walk and an IOTLB fill inlined was over it, so that whether a DMA loop
   * inlined translate's hit (8 ns) or called it (12 ns) depended on which was compiled first. With the
   * IOTLB on, the table's walk here never runs and is not inlined.
   */
  private walkPaging(b: Binding, pasid: number, iovaPfn: number, perm: number, out: TranslateResult): boolean {
    if (b.kind === 1 && !this.iotlb.enabled) {
      const wr = this.wr;
      if (b.pt!.walk(iovaPfn, wr) === true) {
        const granted = wr.perm;
        const need = (perm & 8) !== 0 ? (perm & 7) << 4 : perm & 7;
        if ((granted & need) === need) {
          this.walks++;
          out.pfn = wr.pfn;
          out.perm = granted;
          return true;
        }
      }
    }
    return this.miss(b, pasid, iovaPfn, perm, out) === true;
  }

  /**
   * Not a usable IOTLB hit: a blocked binding fails, anything else walks the tables, checks
   * permissions and fills the IOTLB. The paging walk, the DMA hot path, comes first and calls only
   * the table's walk. One function with the nested walk in it, on purpose: its size keeps the
   * compiler from inlining it into `translate`, so that `translate` (the IOTLB hit) stays small
   * enough to be inlined into the caller's loop whatever order the two are compiled in.
   * (1 is BIND_PAGING and 0 BIND_BLOCKED, written as in translate.)
   */
  private miss(b: Binding, pasid: number, iovaPfn: number, perm: number, out: TranslateResult): boolean {
    if (b.kind === 1) {
      this.walks++;
      const pt = b.pt!;
      const wr = this.wr;
      // `!== true`: the walk is a call, and its result's type unknown to the compiler; a generic
      // truthiness test of it is a dozen instructions, a compare with true one.
      if (pt.walk(iovaPfn, wr) !== true) return this.walkFailed(out, wr, false, pt.format, b.tag);
      const granted = wr.perm;
      // permAllowed(granted, perm), inline with literals (8 is PERM_PRIV, 7 PERM_RWX): a privileged
      // request needs the privileged grant bits.
      const need = (perm & 8) !== 0 ? (perm & 7) << 4 : perm & 7;
      if ((granted & need) !== need) return this.fail(out, permFailure(granted, perm), false, pt.format, b.tag);
      const pfn = wr.pfn;
      this.iotlb.insert(b.tag, pasid, iovaPfn, pfn, granted);
      out.pfn = pfn;
      out.perm = granted;
      return true;
    }
    if (b.kind === 0) return this.fail(out, 'blocked', false, '', b.tag);
    // A nested binding: stage 1 (unless it is bypassed or aborts), then stage 2.
    this.walks++;
    const n = b.nested!;
    const pt = b.pt!;
    let gpaPfn = iovaPfn;
    let granted = PERM_GRANT_ALL;
    if (n.mode === 'abort') return this.fail(out, 'blocked', false, '', b.tag);
    if (n.mode === 'translate') {
      this.s2 = pt;
      this.wr.contextFault = 0;
      const ok = n.walkStage1(iovaPfn, pasid, this.mem, this.wr, this.tableToPhys);
      this.s2 = null;
      if (!ok) {
        // A table fault is stage 2 failing on a stage-1 table pointer: the parent's table failed.
        const s2 = this.wr.fault === WALK_TABLE_FAULT;
        return this.walkFailed(out, this.wr, s2, s2 ? pt.format : (n.format ?? ''), b.tag);
      }
      gpaPfn = this.wr.pfn;
      granted = this.wr.perm;
    }
    if (!pt.walk(gpaPfn, this.wr2)) return this.walkFailed(out, this.wr2, true, pt.format, b.tag);
    const pfn = this.wr2.pfn;
    // Stage 2 restricts read and write for both privilege levels; execute and privilege are stage 1's.
    granted &= this.wr2.perm | PERM_EXEC | PERM_PRIV_EXEC;
    if ((perm & ~this.wr2.perm & (PERM_READ | PERM_WRITE)) !== 0) {
      return this.fail(out, perm & PERM_WRITE && !(this.wr2.perm & PERM_WRITE) ? 'permission-write' : 'permission-read', true, pt.format, b.tag);
    }
    if (!permAllowed(granted, perm)) {
      // Stage 2 grants exec and both privilege levels to everything, so a missing permission here is the first stage's.
      return this.fail(out, permFailure(granted, perm), false, n.format ?? '', b.tag);
    }
    this.iotlb.insert(b.tag, pasid, iovaPfn, pfn, granted);
    out.pfn = pfn;
    out.perm = granted;
    return true;
  }

  private walkFailed(out: TranslateResult, wr: WalkResult, stage2: boolean, format: string, tag: number): false {
    const f = wr.fault;
    // Literals (2 WALK_ADDRESS_SIZE, 3 WALK_TABLE_FAULT, 5 WALK_CONTEXT_INVALID; 1 WALK_NOT_PRESENT and
    // anything else are 'not-present'): a module constant is a load and a hole check in compiled code,
    // and a page fault comes here. fail() written out, which keeps this small enough for the miss path
    // to inline it with the walk and the IOTLB fill (inline-budget.test.ts).
    out.failure = f === 2 ? 'address-size' : f === 3 ? 'table-fault' : f === 5 ? 'no-context' : 'not-present';
    out.stage2 = stage2;
    out.format = format;
    out.tag = tag;
    out.contextFault = f === 5 ? wr.contextFault : 0;
    return false;
  }

  private fail(out: TranslateResult, failure: TranslationFailure, stage2: boolean, format: string, tag: number): false {
    out.failure = failure;
    out.stage2 = stage2;
    out.format = format;
    out.tag = tag;
    out.contextFault = 0;
    return false;
  }
}
