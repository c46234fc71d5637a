/**
 * The normalized capability vocabulary. Every vendor decodes its raw registers into this shape so
 * that core, the planner and the CLI can compare IOMMUs of different families.
 */

/** Page sizes are expressed as a bitmap of log2 sizes, like the kernel's pgsize_bitmap (bit n = 2^n bytes). */
export type PageSizeBitmap = bigint;

/** What one translation stage of an IOMMU can do (a host stage or a guest-owned stage). */
export interface StageCaps {
  /** Input (IOVA) address widths in bits this stage can translate, e.g. [39, 48, 57]. */
  readonly inputBits: readonly number[];
  /** Output address width in bits. */
  readonly outputBits: number;
  /** Supported page and block sizes. */
  readonly pageSizes: PageSizeBitmap;
  /** Hardware access/dirty bit management for this stage. */
  readonly accessDirty: boolean;
}

/** A unit's capabilities in vendor-neutral terms, decoded from its registers (DecodedUnit.caps). */
export interface NormalizedCaps {
  /** Vendor family id, the plugin id: 'vtd', 'smmuv3', 'amd-vi', 'virtio-iommu', or a third party's. */
  readonly vendor: string;
  /** Architecture version as the vendor writes it, e.g. '6.0' for VT-d, '3.2' for SMMUv3. */
  readonly version: string;
  /** Stage used for kernel-managed (host) DMA mappings. */
  readonly hostStage: StageCaps | null;
  /** Stage that a guest can own in nesting (VT-d first stage, SMMUv3 stage 1, AMD v2). */
  readonly userStage: StageCaps | null;
  /** Maximum PASID / SubstreamID width in bits, 0 if PASID is unsupported. */
  readonly pasidBits: number;
  /** Page Request Interface / recoverable faults (VT-d PRS, SMMUv3 PRI or stall, AMD PPR). */
  readonly pri: boolean;
  /** Stall model faults (SMMUv3). */
  readonly stall: boolean;
  /** Address Translation Services (device TLBs). */
  readonly ats: boolean;
  /** Two-stage nesting in hardware. */
  readonly nesting: boolean;
  /** Dirty tracking usable by IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
  readonly dirtyTracking: boolean;
  /** The IOMMU can force cache-coherent (snooped) DMA: IOMMU_CAP_CACHE_COHERENCY. */
  readonly coherent: boolean;
  /** Caching mode: non-present entries may be cached, so software must flush on map (VT-d CM). */
  readonly cachingMode: boolean;
  /** Range-based invalidation (SMMUv3 RIL, VT-d PSI). */
  readonly rangeInvalidation: boolean;
  /** Interrupt remapping / isolated MSI. */
  readonly interruptRemapping: boolean;
  /**
   * The platform isolates the MSIs of the devices behind the unit (the kernel's
   * iommu_group_has_isolated_msi: an MSI irq domain with IRQ_DOMAIN_FLAG_ISOLATED_MSI), when that is
   * not the unit's own interrupt remapping: on Arm the GICv3 ITS tags each MSI with the device ID,
   * the SMMU remaps nothing. Absent: `interruptRemapping` decides (x86 VT-d / AMD-Vi IR).
   */
  readonly isolatedMsi?: boolean;
  /** Vendor flags that do not fit the above, for display (e.g. 'scalable-mode', 'httu', 'vmid16'). */
  readonly features: readonly string[];
}

/** A page-size bitmap with bit n set for each n given: `pageSizesFromLog2(12, 21, 30)` is 4K | 2M | 1G. */
export function pageSizesFromLog2(...log2: number[]): PageSizeBitmap {
  let m = 0n;
  for (const l of log2) m |= 1n << BigInt(l);
  return m;
}

/** The log2 page sizes in a bitmap, ascending: the inverse of pageSizesFromLog2. */
export function log2PageSizes(bitmap: PageSizeBitmap): number[] {

  const out: number[] = [];
  for (let i = 0; i < 64; i++) if ((bitmap >> BigInt(i)) & 1n) out.push(i);
  return out;
}

