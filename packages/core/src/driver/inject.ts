/**
 * Fault injection: one injector, asked at every allocation and every fallible vendor operation, so
 * that tests (and `ioasid run` scenarios) can make any of them fail, as the kernel's fail_nth selftest
 * does with its fault-injection framework. Register a `FaultInjector` under FAULT_INJECTOR in the host's
 * container, or set `host.injector`.
 */
import type { InjectionToken } from 'tsyringe';

/** The points the model asks the injector about, with the errno a failure there gives. */
export const INJECT_SITES = {
  /** iommufd_object_alloc: the object's memory. */
  'object-alloc': 'ENOMEM',
  /** Any other kernel allocation the model counts (iopt_area_add_access's iopt_pages_access record). */
  alloc: 'ENOMEM',
  /** A page-table page (the vendor sees its allocation fail). */
  'table-alloc': 'ENOMEM',
  /** The driver's domain_alloc_paging / domain_alloc_nested / the vIOMMU's alloc_domain_nested. */
  'domain-alloc': 'ENOMEM',
  /** The driver's attach_dev (context entries, STEs...). */
  attach: 'ENOMEM',
  /** iommu_map into one domain. */
  map: 'ENOMEM',
  /** pin_user_pages for IOAS_MAP. */
  pin: 'ENOMEM',
  /** The driver's cache_invalidate_user. */
  invalidate: 'ENOMEM',
  /** The driver's viommu_alloc. */
  'viommu-alloc': 'ENOMEM',
  /** The driver's vdevice_init (vdevice_size allocation). */
  'vdevice-alloc': 'ENOMEM',
  /** anon_inode_getfile for a FAULT or vEVENTQ fd. */
  'queue-alloc': 'ENOMEM',
  /** get_unused_fd_flags. */
  'fd-alloc': 'EMFILE',
  /** copy_from_user / copy_to_user / the bitmap pin of GET_DIRTY_BITMAP. */
  'user-copy': 'EFAULT',
} as const;

/** A point where an injected failure can happen: a key of INJECT_SITES. */
export type InjectSite = keyof typeof INJECT_SITES;

/** Decides, operation by operation, whether an allocation or fallible op fails (the kernel's fault-injection framework). */
export interface FaultInjector {
  /** True when the operation at `site` must fail now. Asked once per operation, in program order. */
  shouldFail(site: InjectSite): boolean;
}

/** tsyringe token of the host's FaultInjector (NO_FAULT_INJECTION unless one is registered). */
export const FAULT_INJECTOR: InjectionToken<FaultInjector> = Symbol('ioasid.FaultInjector');

/** The default: nothing fails. */
export const NO_FAULT_INJECTION: FaultInjector = { shouldFail: () => false };

/**
 * Fails the `nth` operation it is asked about (1-based), counting only `sites` when given, and nothing
 * else: replaying a scenario with nth = 1, 2, ... until `hit` stays false visits every failure point.
 */
export class FailNth implements FaultInjector {
  /** Operations asked about so far (of the counted sites). */
  calls = 0;
  /** Where the failure was injected, once it was. */
  hitSite: InjectSite | null = null;
  private readonly sites: ReadonlySet<InjectSite> | null;

  /** A RangeError when `nth` is not a positive safe integer. */
  constructor(
    /** 1-based index of the counted operation that fails. */
    readonly nth: number,
    sites?: readonly InjectSite[],
  ) {
    if (!Number.isSafeInteger(nth) || nth < 1) throw new RangeError('nth must be a positive integer');
    this.sites = sites ? new Set(sites) : null;
  }

  /** Whether the nth operation came (a failure was injected); false means the scenario has fewer failure points. */
  get hit(): boolean {

    return this.hitSite !== null;
  }

  shouldFail(site: InjectSite): boolean {
    if (this.sites !== null && !this.sites.has(site)) return false;
    if (++this.calls !== this.nth) return false;
    this.hitSite = site;
    return true;
  }
}
