/**
 * What the planner knows of a host IOMMU vendor beyond what its plugin decodes: the guest architecture
 * it implies, the kernel parameter that turns it on, how to recognise its log lines when its plugin is
 * not loaded, where its registers are in sysfs, and the register fields QEMU's checks read. One entry per
 * vendor in vendors/registry.ts; a vendor adds itself with one file and one line.
 */
import type { DecodedUnit, RawRegisters, Result } from '@ioasid/core/driver';

/** The guest architecture a host vendor implies: 'any' for virtio-iommu, 'other' for a vendor the planner cannot place. */
export type Arch = 'x86' | 'arm' | 'any' | 'other';

/** VT-d register facts the intel-iommu checks read. */
export interface VtdFacts {
  /** CAP.MGAW + 1, when the vendor decoded CAP. */
  readonly mgaw?: number;
  /** Widths of the SAGAW bitmap (39/48/57). */
  readonly sagaw: readonly number[];
  /** The unit has a stage a guest can own (NormalizedCaps.userStage, the VT-d first stage): x-flts nesting is possible. */
  readonly firstStage: boolean;
  /** That stage maps 1 GiB pages (CAP.FS1GP). */

  readonly fs1gp: boolean;
}

/** SMMUv3 ID register facts the arm-smmuv3 checks read; undefined where the source did not give the field. */
export interface SmmuFacts {
  /** IDR0.ST_LEVEL: stream table format (0 linear, 1 two-level). */
  readonly stLevel?: number;
  /** IDR0.TTENDIAN: table endianness support. */
  readonly ttEndian?: number;
  /** IDR0.TTF: translation table formats (AArch32 / AArch64). */
  readonly ttf?: number;
  /** IDR1.SIDSIZE: StreamID width in bits. */
  readonly sidSize?: number;
  /** IDR1.SSIDSIZE: SubstreamID width in bits (20 when unknown). */
  readonly ssidSize: number;
  /** IDR3.RIL: range invalidation. */
  readonly ril: boolean;
  /** IDR0.ATS: PCIe ATS supported. */
  readonly ats: boolean;
  /** IDR5.OAS as a width in bits (e.g. 48). */
  readonly oas: number;
  /** IDR5.GRAN4K: 4 KiB translation granule. */
  readonly gran4k: boolean;
  /** IDR5.GRAN16K: 16 KiB translation granule. */
  readonly gran16k: boolean;
  /** IDR5.GRAN64K: 64 KiB translation granule. */
  readonly gran64k: boolean;
  /** Register fields the source (a boot log) could not give: the checks on them are assumed to pass. */
  readonly unknown: readonly string[];
}

/** The vendor-specific facts a QEMU check reads, by the specification's register names. */
export interface VendorFacts {
  /** Set by the VT-d vendor. */
  readonly vtd?: VtdFacts;
  /** Set by the SMMUv3 vendor. */
  readonly smmu?: SmmuFacts;
}

/** The sysfs attribute directory of a unit under /sys/class/iommu/<name>/, and how to read it. */
export interface SysfsSource {
  /** e.g. 'intel-iommu' (VT-d), 'amd-iommu' (AMD-Vi). */
  readonly dir: string;
  /** The attribute files read (their text, trimmed) into the unit's raw registers. */
  readonly files: readonly string[];
  /** The unit's raw registers from the files read (name to trimmed text); an error for values it cannot read. */
  toRegisters(files: Readonly<Record<string, string>>): Result<RawRegisters>;
}

/** A kernel log line without what dmesg, journalctl or syslog put in front; `n` counts from 1. */
export interface LogLine {
  /** Line number in the log, from 1. */
  readonly n: number;
  /** The message, without the timestamp and facility prefix. */
  readonly text: string;
}

/** A unit the vendor's plugin read from the log. */
export interface LogScanUnit {
  /** The unit's id, e.g. 'dmar0'. */
  readonly id: string;
  /** The raw registers its plugin read from the log. */
  readonly registers: RawRegisters;
  /** The line numbers they came from. */
  readonly lines: readonly number[];
}

/** What a vendor reads from the rest of a log: the lines around its units that its plugin does not parse. */
export interface LogScan {
  /** Line numbers used. */
  readonly recognized: readonly number[];
  /** What the scan could not use, one message each. */
  readonly warnings: readonly string[];
  /** Devices the log places behind a unit (device scope). */
  readonly placements: ReadonlyArray<{
    /** The device's PCI address. */
    readonly bdf: string;
    /** The unit id it sits behind. */
    readonly unit: string;
    /** The log evidence, for the user. */
    readonly why: string;
  }>;
  /** Reserved regions of devices (VT-d RMRR with its device scope). */
  readonly reserved: ReadonlyArray<{
    /** The device's PCI address. */
    readonly bdf: string;
    /** First address of the region, hex. */
    readonly start: string;
    /** Last address of the region (inclusive), hex. */
    readonly last: string;
    /** IOMMU_RESV_DIRECT or IOMMU_RESV_DIRECT_RELAXABLE (an RMRR of a USB or graphics device). */
    readonly type: 'direct' | 'direct-relaxable';
  }>;
}

/** IOMMU_GET_HW_INFO: the out_data_type of this vendor and its payload as raw registers. */
export interface HwInfoSource {
  /** enum iommu_hw_info_type: 1 INTEL_VTD, 2 ARM_SMMUV3, 4 AMD. */
  readonly type: number;
  /** The unit's raw registers from the hw_info payload (struct iommu_hw_info_vtd and the like), or why not. */
  toRegisters(data: Uint8Array): Result<RawRegisters>;
}

/** The planner's knowledge of one host IOMMU vendor (see the module comment). */
export interface PlannerVendor {
  /** The plugin / profile vendor id: 'vtd', 'smmuv3', 'amd-vi'. */
  readonly id: string;
  /** Human name for messages, e.g. 'Intel VT-d'. */
  readonly name: string;
  /** The guest architecture it implies. */
  readonly arch: Arch;

  /** The kernel parameter that enables DMA remapping on this vendor, for the messages. */
  readonly kernelParameter: string;
  /** Log lines only this vendor's driver prints (to name it when its plugin is not loaded). */
  readonly logSignatures: readonly RegExp[];
  /** /sys/class/iommu/<name>/<dir>/ files, when the vendor exposes its registers there. */
  readonly sysfs?: SysfsSource;
  /** The IOMMU_GET_HW_INFO payload of this vendor. */
  readonly hwInfo?: HwInfoSource;
  /** How the unit is named in /sys/class/iommu when it has no attribute directory there (SMMUv3: smmu3.0x…). */
  readonly sysfsName?: RegExp;
  /** Register fields QEMU's checks compare, read from the decoded unit. */
  facts?(decoded: DecodedUnit): VendorFacts;
  /** Reads the vendor's other boot lines (VT-d DRHD/RMRR/device scope): truncation, placement, reserved regions. */
  scanLog?(lines: readonly LogLine[], units: readonly LogScanUnit[]): LogScan;
}
