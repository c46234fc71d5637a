/**
 * Host profiles: plain data describing a machine by its IOMMU units (vendor + raw registers) and the
 * PCI devices behind them. The planner reads and writes the same shape.
 */
import type { RawRegisters } from '../driver/vendor.js';

/** A device's reserved IOVA region in a profile (as the kernel lists in /sys/kernel/iommu_groups/N/reserved_regions). */
export interface ReservedRegionProfile {
  /** Hex string or number. */
  start: string | number;
  /** Inclusive. */
  last: string | number;
  /** msi: the software MSI window; direct: identity-mapped (RMRR / IORT RMR); reserved: never mapped. */
  type: 'msi' | 'direct' | 'direct-relaxable' | 'reserved';
}

/** One IOMMU instance of a host profile. */
export interface UnitProfile {
  /** The kernel's name of the instance, e.g. 'dmar0'. */
  id: string;
  /** Plugin id: 'vtd', 'smmuv3', 'amd-vi', 'virtio-iommu'. */
  vendor: string;
  /** The unit's raw registers, keyed as the vendor's decodeRegisters expects (hex strings for 64-bit values). */
  registers: RawRegisters;
  /**
   * Whether the platform isolates the MSIs of the devices behind this unit (the kernel's
   * iommu_group_has_isolated_msi, which iommufd's bind requires unless `allow_unsafe_interrupts`
   * is set). Absent: derived from the unit: x86 interrupt remapping enabled (VT-d ECAP.IR, AMD-Vi),
   * an Arm GICv3 ITS for SMMUv3; not isolated for virtio-iommu and RISC-V. Set false for a host
   * booted with `intremap=off` or an Arm host with a GICv2m, true where the platform isolates MSIs
   * by other means.
   */
  msiIsolated?: boolean;
}

/** One PCI function of a host profile. */
export interface DeviceProfile {
  /** segment:bus:device.function, e.g. '0000:00:02.0'. */
  bdf: string;
  /** Id of the unit the device sits behind. */
  unit: string;
  /** IOMMU group number; devices of one group share their attachments. */
  group?: number;
  /** Has the PCIe ATS capability (default false). */
  ats?: boolean;
  /** Has the PCIe PRI capability (default false). */
  pri?: boolean;
  /** PASID width in bits (0 = no PASID capability). */
  pasidBits?: number;
  /** PASID capability: Execute Permission Supported (default false). */
  pasidExec?: boolean;
  /** PASID capability: Privileged Mode Supported (default false). */
  pasidPriv?: boolean;
  /** Arm StreamID (defaults to the requester id). */
  streamId?: number;
  /** The device can issue non-snooped DMA that the IOMMU cannot force coherent. */
  noSnoop?: boolean;
  /** A PCI virtual function. */
  vf?: boolean;
  /** Stall-capable (SMMUv3 platform devices). */
  stall?: boolean;
  /** PRI Outstanding Page Request Capacity (default 512): the page requests the function can track at once. */
  priCapacity?: number;
  /** IOVA ranges the device must not use; reserved in any IOAS it attaches to. */
  reservedRegions?: ReservedRegionProfile[];
  /** Free-form description, e.g. 'Intel DSA'. */
  description?: string;
}

/** The host CPU, as far as IOMMU drivers read it. */
export interface CpuProfile {
  /**
   * The kernel runs 5-level CPU paging (x86 LA57: `la57` in the flags of /proc/cpuinfo, and the kernel
   * not booted with `no5lvl`; the kernel's pgtable_l5_enabled()). Default false, as on most hosts. AMD-Vi
   * uses 5-level v2 tables only then (init.c early_amd_iommu_init, amd_iommu_gpt_level).
   */
  fiveLevelPaging?: boolean;
}

/** A machine as plain JSON-able data: its IOMMU units and the PCI devices behind them. Built by createHost. */
export interface HostProfile {
  /** Short name, e.g. a preset id or the probed host's name. */
  name: string;
  /** One line about the machine. */
  description?: string;
  /** The CPU's paging mode; absent: 4-level paging. */
  cpu?: CpuProfile;
  /** IOMMU units, in the order Host.units gets them. */
  units: UnitProfile[];
  /** PCI functions, each naming its unit. */
  devices: DeviceProfile[];
}

/** The empty machine: no IOMMU, no devices. */
export const BARE_PROFILE: HostProfile = { name: 'bare host', units: [], devices: [] };

const BDF_RE = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;

/** Parses '0000:00:02.0' into its parts; null when malformed. */
export function parseBdf(bdf: string): {
  /** PCI segment (domain), 16 bits. */
  segment: number;
  /** Bus number, 8 bits. */
  bus: number;
  /** Device number, 0 to 31. */
  dev: number;
  /** Function number, 0 to 7. */
  fn: number;
  /** Requester id: bus << 8 | dev << 3 | fn. */
  rid: number;
} | null {

  const m = BDF_RE.exec(bdf);
  if (!m) return null;
  const bus = parseInt(m[2], 16);
  const dev = parseInt(m[3], 16);
  const fn = parseInt(m[4], 16);
  if (dev > 31) return null;
  return { segment: parseInt(m[1], 16), bus, dev, fn, rid: (bus << 8) | (dev << 3) | fn };
}

/** Parses a profile number: a hex string ('0xfee00000'), a decimal string, a number or a bigint. */
export function parseProfileNumber(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v >= 0n ? v : null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (/^0x[0-9a-fA-F]+$/.test(s)) return BigInt(s);
  if (/^[0-9a-fA-F]+$/.test(s) && /[a-fA-F]/.test(s)) return BigInt(`0x${s}`);
  if (/^[0-9]+$/.test(s)) return BigInt(s);
  return null;
}
