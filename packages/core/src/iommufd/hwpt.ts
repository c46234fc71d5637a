/**
 * HWPT objects (hw_pagetable.c): kernel-managed paging domains mirroring an IOAS, and user-managed
 * nested domains over a nesting parent or a vIOMMU.
 */
import { fail, type ErrnoCode } from '../uapi/errno.js';
import { IOMMU_CACHE } from '../driver/pgtable.js';
import { NO_FAULT_INJECTION, type FaultInjector } from '../driver/inject.js';
import type { NestedDomainOps, PagingDomainOps } from '../driver/vendor.js';
import type { VendorError } from '../driver/fault.js';
import type { FrameRuns } from '../memory/physical.js';
import { IommufdObject, ObjType } from './objects.js';
import type { IoptDomain } from './io-pagetable.js';
import type { TlbInvalidator } from './context.js';
import type { Ioas } from './ioas.js';

/**
 * The FAULT object of a HWPT as the attach code sees it (eventq.ts FaultQueue): declared here so that
 * the device layer answers a leaving attach handle's faults without importing the event queues.
 */
export interface HwptFault extends IommufdObject {
  /** Answers INVALID every group (queued or read) whose attach handle `match` selects; returns how many. */
  autoRespond(match: (g: { readonly handle: { readonly idev: object; readonly pasid: number } }) => boolean): number;
}

const NO_INJECTION = { injector: NO_FAULT_INJECTION };

export function vendorFail(e: VendorError): never {
  fail(e.errno, e.reason);
}

export function isVendorError(v: unknown): v is VendorError {
  return typeof v === 'object' && v !== null && 'errno' in v && 'reason' in v && !('pt' in v) && !('walkStage1' in v);
}

/** Common part of both HWPT kinds. */
export abstract class Hwpt extends IommufdObject {
  /** The FAULT object that receives this domain's recoverable faults (FAULT_ID_VALID). */
  fault: HwptFault | null = null;
  /** Usable on PASIDs (IOMMU_HWPT_ALLOC_PASID). */
  pasidCompat = false;
  /** Index of the unit (vendor instance) the domain was allocated for. */
  abstract readonly unitIndex: number;
  abstract readonly vendor: string;
}

export class HwptPaging extends Hwpt implements IoptDomain {
  readonly type = ObjType.HWPT_PAGING;
  nestParent = false;
  /** Created by an attach to an IOAS, destroyed when its last device leaves. */
  autoDomain = false;
  dirtyTrackingAllowed = false;
  dirtyTrackingEnabled = false;
  /** Nested domains over this parent: their cached translations depend on this table too. */
  readonly children = new Set<HwptNested>();
  private inIopt = false;

  constructor(
    readonly ioas: Ioas,
    readonly ops: PagingDomainOps,
    readonly unitIndex: number,
    readonly vendor: string,
    private readonly tlb: TlbInvalidator,
    /** Whose injector is asked before each iommu_map into this domain (read at each map: it may change). */
    private readonly injection: { readonly injector: FaultInjector } = NO_INJECTION,
  ) {
    super();
  }

  get pgsizeBitmap(): bigint {
    return this.ops.pgsizeBitmap;
  }
  get apertureStart(): bigint {
    return this.ops.apertureStart;
  }
  get apertureLast(): bigint {
    return this.ops.apertureLast;
  }
  get tag(): number {
    return this.ops.tag;
  }

  /** Joins the IOAS: fills the table with every area and takes a reference on the IOAS. */
  link(): void {
    this.ioas.iopt.addDomain(this);
    this.inIopt = true;
    this.ioas.users++;
  }

  mapPages(iovaPfn: number, runs: FrameRuns, prot: number, allowHuge: boolean): number {
    const pt = this.ops.pt;
    const p = prot | (this.ops.enforceCacheCoherency ? IOMMU_CACHE : 0);
    if (this.injection.injector.shouldFail('map')) return -12; // -ENOMEM
    let i = 0;
    for (let r = 0; r < runs.length; r++) {
      const first = runs.first[r];
      const count = runs.count[r];
      // A physically contiguous run maps as one call, so the format can use huge pages; without
      // huge pages, one call per 4 KiB page.
      for (let j = 0; j < count; j += allowHuge ? count : 1) {
        const rc = pt.map(iovaPfn + i, first + j, allowHuge ? count : 1, p);
        if (rc < 0) {
          if (i > 0) this.unmapPages(iovaPfn, i);
          return rc;
        }
        i += allowHuge ? count : 1;
      }
    }
    return 0;
  }

  mapPage(iovaPfn: number, frame: number, prot: number): number {
    // mapPages of one run of one page, in the same order: the injector, then the table. `=== true` and 4
    // (IOMMU_CACHE): a truthiness test checks every kind of value, an imported constant is a context load.
    const p = prot | (this.ops.enforceCacheCoherency === true ? 4 : 0);
    if (this.injection.injector.shouldFail('map')) return -12; // -ENOMEM
    return this.ops.pt.map(iovaPfn, frame, 1, p);
  }

  unmapPages(iovaPfn: number, npages: number): void {
    this.ops.pt.unmap(iovaPfn, npages);
    // The IOTLB is invalidated before the unmap returns: for this domain and every nested domain
    // whose combined translations went through it.
    this.tlb.flushRange(this.tag, iovaPfn, npages);
    if (this.children.size !== 0) for (const c of this.children) this.tlb.flushTag(c.tag);
  }

  destroy(): void {
    if (this.inIopt) {
      this.ioas.iopt.removeDomain(this);
      this.inIopt = false;
      this.ioas.users--;
    }
    if (this.fault) this.fault.users--;
    this.tlb.flushTag(this.tag);
    this.ops.free();
    const idx = this.ioas.autoHwpts.indexOf(this);
    if (idx >= 0) this.ioas.autoHwpts.splice(idx, 1);
  }
}

export class HwptNested extends Hwpt {
  readonly type = ObjType.HWPT_NESTED;

  constructor(
    readonly parent: HwptPaging,
    readonly ops: NestedDomainOps,
    /** The vIOMMU the domain was allocated on, if any. */
    readonly viommu: (IommufdObject & { unitIndex: number }) | null,
    private readonly tlb: TlbInvalidator,
  ) {
    super();
  }

  get unitIndex(): number {
    return this.parent.unitIndex;
  }
  get vendor(): string {
    return this.parent.vendor;
  }
  get tag(): number {
    return this.ops.tag;
  }

  /** Takes the references a nested HWPT holds. */
  link(): void {
    if (this.viommu) this.viommu.users++;
    else this.parent.users++;
    this.parent.children.add(this);
  }

  destroy(): void {
    this.parent.children.delete(this);
    if (this.viommu) this.viommu.users--;
    else this.parent.users--;
    if (this.fault) this.fault.users--;
    this.tlb.flushTag(this.tag);
    this.ops.free();
  }
}

/** The IOVA range covered by a GET_DIRTY_BITMAP, checked as iommufd_check_iova_range does. */
export function checkDirtyRange(iova: bigint, length: bigint, pageSize: bigint, alignment: bigint): void {
  const last = iova + length - 1n;
  if (length === 0n || last > 0xffff_ffff_ffff_ffffn) fail('EOVERFLOW', 'iova + length overflows');
  if (iova % alignment !== 0n || (last + 1n) % alignment !== 0n) fail('EINVAL', 'range not aligned to the IOAS alignment');
  if (pageSize === 0n) fail('EINVAL', 'page_size is zero');
  if (iova % pageSize !== 0n || (last + 1n) % pageSize !== 0n) fail('EINVAL', 'range not aligned to page_size');
}

export function errnoOf(e: VendorError): ErrnoCode {
  return e.errno;
}
