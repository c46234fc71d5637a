/**
 * The vendor contract: what an IOMMU plugin implements. It follows the kernel's split between
 * `struct iommu_ops` (per driver), `struct iommu_device` (per hardware instance) and
 * `struct iommu_domain_ops` (per domain). Capability = an implemented op: core answers EOPNOTSUPP
 * for an op that is absent.
 */
import type { NormalizedCaps } from './caps.js';
import type { FaultCodec, VendorError } from './fault.js';
import type { IoPageTable, PageTableFormat, PageTableMemory, WalkResult } from './pgtable.js';
import type { PhysicalMemory } from '../memory/physical.js';
import type { Stage2Tracer, WalkStep } from './walk-trace.js';
import type { Result } from './result.js';
import type { DeviceInfo } from './device-info.js';

export type { DeviceInfo };

/** Raw registers of one unit as a host profile gives them (hex strings for 64-bit values). */
export type RawRegisters = Readonly<Record<string, unknown>>;


/** A register value decoded into the specification's own field names. */
export interface DecodedRegister {
  /** Register name as the specification spells it, e.g. 'CAP_REG', 'IDR0', 'EFR'. */
  readonly name: string;
  /** The raw register value (64 bits at most). */
  readonly value: bigint;
  /** Each field of the register by its specification name, with its value. */
  readonly fields: Readonly<Record<string, number | bigint | boolean>>;
}

/** One IOMMU unit's registers validated and decoded by {@link IommuVendor.decodeRegisters}. */
export interface DecodedUnit {
  /** Id of the vendor that decoded it (IommuVendor.id). */
  readonly vendor: string;
  /** The vendor-neutral capabilities derived from the registers. */
  readonly caps: NormalizedCaps;
  /** Rolled-up HW ID, e.g. "Intel VT-d 6.0, scalable mode, ...". */
  readonly hwId: string;
  /** Each register read, decoded field by field, in the specification's order. */
  readonly registers: readonly DecodedRegister[];
  /** Normalized register values to write back into a host profile. */
  readonly profileRegisters: RawRegisters;
}

/** The IOMMU_HWPT_ALLOC_* flags core passes to {@link UnitOps.domainAllocPaging} (domain_alloc_paging_flags). */
export interface PagingAllocFlags {
  /** IOMMU_HWPT_ALLOC_NEST_PARENT: build a stage-2 table usable as a nesting parent. */
  nestParent: boolean;
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING: the domain must support dirty tracking, or the vendor answers EOPNOTSUPP. */
  dirtyTracking: boolean;
  /** IOMMU_HWPT_ALLOC_PASID: the domain may be attached to PASIDs. */
  pasid: boolean;
}

/**
 * What a domain does to the hardware when a device starts or stops using it: the kernel's
 * `attach_dev` / `set_dev_pasid` of the domain's ops, and the blocking domain's attach. Checks belong in
 * `checkAttach`, which must stay free of side effects (core may ask it and then refuse the attach for a
 * reason of its own). Core calls `attachDev` only once every check passed and its own fallible
 * preparations are done, for each device of the iommu group, in the order of iommu.c
 * __iommu_group_set_domain_internal: when one fails, core puts every device it already moved, the
 * failing one included, back on its previous domain (`attachDev` of that domain, or `detachDev` of the
 * new one when the group had none) before the error reaches user space. Both are optional: a vendor whose
 * context entries core's binding stands for has nothing to do here.
 */
export interface DomainAttachHooks {
  /**
   * attach_dev (`pasid` -1) or set_dev_pasid: `dev` on `unit` now translates through this domain, leaving
   * whatever domain it used before. On failure the device may be half moved: core re-attaches the previous
   * domain, which must then succeed.
   */
  attachDev?(dev: DeviceInfo, unit: UnitOps, pasid: number): VendorError | null;
  /**
   * The device leaves this domain for blocked DMA (the blocking domain's attach_dev, remove_dev_pasid).
   * It must not fail: a driver without a blocked domain attaches an empty paging domain, as iommu.c
   * __iommu_group_alloc_blocking_domain does for it.
   */
  detachDev?(dev: DeviceInfo, unit: UnitOps, pasid: number): void;
}

/** An iommu_domain of type paging, built by the vendor on one of its page-table formats. */
export interface PagingDomainOps extends DomainAttachHooks {
  /** The page table core maps and unmaps the IOAS into (io_pgtable_ops). */
  readonly pt: IoPageTable;
  /** Page sizes in bytes the domain can map, one bit per size (pgsize_bitmap); its lowest bit sets the IOAS alignment. */
  readonly pgsizeBitmap: bigint;
  /** Inclusive IOVA aperture. */
  readonly apertureStart: bigint;
  /** Last IOVA the domain translates, inclusive (geometry.aperture_end); IOVAs above it are reserved in the IOAS. */
  readonly apertureLast: bigint;
  /** The domain forces snooped DMA (enforce_cache_coherency). */
  readonly enforceCacheCoherency: boolean;
  /** Domain ID / ASID / VMID the hardware tags its TLB entries with. */
  readonly tag: number;
  /**
   * EINVAL when `dev` on `unit` cannot use this domain (the auto-domain loop then tries the next
   * one); another code aborts the attach. A pure check: what the attach does to the hardware belongs in
   * `attachDev` (DomainAttachHooks).
   */
  checkAttach?(dev: DeviceInfo, unit: UnitOps): VendorError | null;
  /** set_dirty_tracking; absent when the domain has no dirty tracking. */
  setDirtyTracking?(enable: boolean): VendorError | null;
  /** Releases the domain (ops->free) when its HWPT is destroyed, after core removed it from its IOAS and flushed its tag. */

  free(): void;
}

/** Cache invalidation requested by a nested domain or a vIOMMU, applied by core to the IOTLB. */
export interface IotlbFlush {
  /** Invalidate stage-1 entries of `tag` (and `pasid`, -1 for all) in [iovaPfn, iovaPfn + npages). */
  flushStage1(tag: number, pasid: number, iovaPfn: number, npages: number): void;
  /** Invalidate everything tagged `tag`. */
  flushTag(tag: number): void;
}

/** Outcome of a cache_invalidate_user op: how far it got and why it stopped. */
export interface InvalidateResult {
  /** Entries handled before an error (written back to entry_num). */
  handled: number;
  /** The error on entry `handled`, or null when every entry was handled. */
  error: VendorError | null;
}

/** A user-managed stage-1 domain nested on a paging parent (HWPT_NESTED). */
export interface NestedDomainOps extends DomainAttachHooks {
  /** The stage-2 paging domain the guest table's addresses translate through. */
  readonly parent: PagingDomainOps;
  /** Tag of the guest stage-1 entries in the IOTLB. */
  readonly tag: number;
  /**
   * Format id of the guest stage-1 table (e.g. 'vtd-fs', 'arm-lpae-s1'), reported as
   * FailedAccess.format when the stage-1 walk fails; '' when absent.
   */
  readonly format?: string;
  /**
   * Walks the guest stage 1 for (iovaPfn, pasid); every table address goes through `tableToPhys`
   * (the parent stage 2). Sets out.pfn to a guest-physical page number. A context that selects no
   * table (bad CD / SSID, disabled stream) stops with WALK_CONTEXT_INVALID and `out.contextFault`.
   */
  walkStage1(iovaPfn: number, pasid: number, mem: PhysicalMemory, out: WalkResult, tableToPhys: (gpaPfn: number) => number): boolean;
  /**
   * Every entry the stage-1 walk of (iovaPfn, pasid) reads, in the order the unit reads them: the
   * descriptors it fetches to find the table (`WalkStep.context`) then the table's levels, each with
   * the stage-2 walk of its guest-physical page (`stage2`, from core's tracer; see walk-trace.ts
   * `traceRadixNested`). For tools (`PciDevice.explain`), never the DMA path. Absent: stage 1 is not shown.
   */
  traceStage1?(iovaPfn: number, pasid: number, mem: PhysicalMemory, stage2: Stage2Tracer): WalkStep[];
  /** Whether the guest owns the PASID table (SMMUv3 CD table, AMD GCR3) rather than one table for all. */
  readonly guestPasidTable: boolean;
  /** Guest-visible attach rules, e.g. SMMUv3 needs a vDEVICE for Cfg=translate. A pure check, as for paging domains. */
  checkAttach?(dev: DeviceInfo, hasVdevice: boolean): VendorError | null;
  /** Whether DMA is blocked (abort) or bypasses stage 1 (uses the parent only). */
  readonly mode: 'translate' | 'bypass' | 'abort';
  /** IOMMU_HWPT_INVALIDATE on this HWPT. */
  invalidate?(dataType: number, entryLen: number, entries: Uint8Array, count: number, flush: IotlbFlush): InvalidateResult;
  /** Releases the domain when its HWPT is destroyed. */
  free(): void;
}

/** A vendor's vIOMMU (struct iommufd_viommu with its driver ops), made by {@link UnitOps.viommuAlloc}. */
export interface ViommuOps {
  /** Its IOMMU_VIOMMU_TYPE_* (e.g. IOMMU_VIOMMU_TYPE_ARM_SMMUV3). */
  readonly type: number;
  /** Invalidation through the vIOMMU (SMMUv3 CMDQ commands). */
  invalidate?(dataType: number, entryLen: number, entries: Uint8Array, count: number, flush: IotlbFlush, lookupVsid: (virtId: bigint) => DeviceInfo | undefined): InvalidateResult;
  /** The data_type values allocNested accepts (checked by core before the user data is copied). */
  readonly nestedDataTypes?: readonly number[];
  /** Allocates a nested domain on this vIOMMU from user data. */
  allocNested(dev: DeviceInfo, dataType: number, data: Uint8Array): NestedDomainOps | VendorError;
  /** vEVENTQ types this vIOMMU reports. */
  readonly eventTypes: readonly number[];
  /** Releases the vIOMMU (viommu_ops->destroy) when its object is destroyed. */
  destroy(): void;
}

/** The unit (iommu_device + iommu_ops) a vendor builds for each IOMMU instance of a host. */
export interface UnitOps {
  /** The vendor's id (IommuVendor.id). */
  readonly vendor: string;
  /** The unit's decoded registers, as given in UnitInit. */
  readonly decoded: DecodedUnit;
  /** The vendor-neutral capabilities core checks requests against. */
  readonly caps: NormalizedCaps;
  /** The Linux name of the instance, e.g. 'dmar0', 'arm-smmu-v3.0.auto', 'AMD-Vi0'. */
  readonly name: string;
  /** iommu_hw_info payload. `requestedType` 0 means the default type. */
  hwInfo?(
    dev: DeviceInfo,
    requestedType: number,
  ):
    | {
        /** The IOMMU_HW_INFO_TYPE_* of `data`. */
        type: number;
        /** The vendor's info struct (e.g. struct iommu_hw_info_vtd) as little-endian bytes. */
        data: Uint8Array;
      }
    | VendorError;
  /** domain_alloc_paging_flags. */
  domainAllocPaging?(dev: DeviceInfo, flags: PagingAllocFlags, memory: PageTableMemory): PagingDomainOps | VendorError;
  /**
   * The data_type values domainAllocNested accepts. The drivers check the type before they copy the
   * user data, so core answers EOPNOTSUPP for any other type before reading data_uptr.
   */
  readonly nestedDataTypes?: readonly number[];
  /** domain_alloc_nested on a parent HWPT (VT-d style, no vIOMMU). */
  domainAllocNested?(dev: DeviceInfo, parent: PagingDomainOps, dataType: number, data: Uint8Array): NestedDomainOps | VendorError;
  /** vIOMMU types this unit can back, and their init (get_viommu_size + viommu_init). */
  readonly viommuTypes?: readonly number[];
  /**
   * get_viommu_size(type) != 0, for a driver whose types are not a fixed list (AMD-Vi answers for any
   * type): when present core asks it instead of looking in `viommuTypes`. Never called with
   * IOMMU_VIOMMU_TYPE_DEFAULT, which core refuses first.
   */
  viommuTypeSupported?(type: number): boolean;
  /** Builds a vIOMMU of `type` over a nesting-parent domain from the user's driver data (`data_uptr`, empty when none). */
  viommuAlloc?(type: number, parent: PagingDomainOps, data: Uint8Array): ViommuOps | VendorError;
  /**
   * The blocking domain `dev` moves to when it is bound to an iommufd (iommu.c
   * iommu_device_claim_dma_owner: __iommu_group_alloc_blocking_domain, then the group is set to it) and
   * whose hooks core calls once per iommu group, before the device object exists. It is the driver's
   * static blocked domain, or for a driver without one the empty paging domain iommu.c allocates instead;
   * a VendorError (no domain ID left, ...) fails the bind with its errno, and so does a failing
   * `attachDev`. Absent: core's blocked binding is the whole of the blocked state (VT-d clears the
   * context / PASID entry, SMMUv3 writes an abort STE: nothing the model keeps beyond that binding).
   * virtio-iommu (an ATTACH to its empty domain) and AMD-Vi (the cleared DTE in its modelled device
   * table) implement it.
   */
  blockingDomain?(dev: DeviceInfo): DomainAttachHooks | VendorError;
  /** The hardware fault and page-request record formats. */
  readonly faults?: FaultCodec;
  /** Depth of the hardware fault/event queue and page-request queue (records). */
  readonly faultQueueDepth?: number;
  /** Depth of the page-request queue in records (core uses 512 when absent). */
  readonly pageRequestQueueDepth?: number;
  /** The exact Linux boot/probe lines for this unit. */
  bootLog?(): string[];
}

/** What core hands {@link IommuVendor.createUnit} for one IOMMU instance of a host. */
export interface UnitInit {
  /** Index in the host's unit list. */
  readonly index: number;
  /** The profile's id for it, e.g. 'dmar0'. */
  readonly id: string;
  /** The result of decodeRegisters on `raw`. */
  readonly decoded: DecodedUnit;
  /** The unit's registers as the host profile gives them. */
  readonly raw: RawRegisters;
  /** The host's physical memory: where the unit's tables, queues and DMA live. */
  readonly mem: PhysicalMemory;
  /** Every page-table format the loaded plugins registered, by id. */
  readonly formats: FormatRegistry;
  /** Allocates a fresh hardware tag (domain id / ASID / VMID) on this unit. */
  allocTag(): number;
  /**
   * The host CPU as the profile describes it (`HostProfile.cpu`); core always sets it, absent only in
   * a UnitInit built by hand (read it as 4-level paging).
   */
  readonly cpu?: HostCpu;
}

/** The host CPU as core hands it to a unit (from the host profile's `cpu`). */
export interface HostCpu {
  /** The kernel runs 5-level CPU paging (x86 LA57, pgtable_l5_enabled()); false by default. */
  readonly fiveLevelPaging: boolean;
}

/** A unit `ioasid probe` read, with the 1-based line numbers it came from. */
export interface ProbedUnitLines {
  /** Unit id as the log names it, e.g. 'dmar0'. */
  readonly id: string;
  /** Registers read from the log, in a host profile's shape. */
  readonly registers: RawRegisters;
  /** 1-based numbers of the log lines that gave them. */
  readonly lines: readonly number[];
}

/**
 * A vendor family (the driver, struct iommu_ops). Explaining values for people (`ioasid decode`, the
 * web page) is not a driver op: it is the plugin's optional `decoder` (decoder.ts).
 */
export interface IommuVendor {
  /** Matches the profile's `vendor` and the plugin id: 'vtd', 'smmuv3', ... */
  readonly id: string;
  /** Human name, e.g. 'Intel VT-d'. */
  readonly name: string;
  /** Validates and decodes a unit's raw registers from a host profile. */
  decodeRegisters(raw: RawRegisters): Result<DecodedUnit>;
  /** Builds the unit driver for one instance. */
  createUnit(init: UnitInit): UnitOps;
  /** Reads kernel boot lines into units (`ioasid probe`); lines it does not know return null. */
  probeLine?(line: string): Result<{
    /** Unit id the line belongs to, e.g. 'dmar0'. */
    id: string;
    /** The registers the line gives for that unit. */
    registers: RawRegisters;
  }> | null;
  /**
   * Completes the units probeLine() read from one log, for a driver that prints per-unit and host-wide
   * lines apart (AMD-Vi: "Found IOMMU" per unit, the EFR once): it may rename, merge or fill them.
   * Absent: the units stand as read.
   */
  completeProbe?(units: readonly ProbedUnitLines[]): ProbedUnitLines[];
}

/** The open registry of page-table formats, filled by plugins. */
export interface FormatRegistry {
  /** The format registered as `id`, undefined when no plugin registered it. */
  get(id: string): PageTableFormat | undefined;
  /** Every registered format id. */
  ids(): string[];
}

