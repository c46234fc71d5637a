/**
 * The lines drivers/iommu/riscv prints, rendered and read back. `dev_*` lines start with the driver and
 * device name: the platform driver is "riscv,iommu" (a device-tree or ACPI device such as 3010000.iommu),
 * the PCI driver's name is its module name, "iommu_pci" (a PCI function such as 0000:00:01.0). The unit
 * is registered as the sysfs iommu device "riscv-iommu@<device name>", the name ioasid gives a unit.
 *
 * - riscv_iommu_fault: `Fault %d devid: 0x%x iotval: %llx iotval2: %llx` (dev_warn_ratelimited, only
 *   for a non-zero cause; TTYP, PV, PID and PRIV are not printed);
 * - riscv_iommu_fltq_process / riscv_iommu_cmdq_process: `Queue #%u error; memory fault:%d overflow:%d`
 *   and `Queue #%u error; fault:%d timeout:%d illegal:%d fence_w_ip:%d` (queue numbers follow ipsr: CQ 0,
 *   FQ 1, PM 2, PQ 3);
 * - riscv_iommu_platform_probe: `using MSIs` or `using wire-signaled interrupts`. The PCI probe prints
 *   nothing on success, and no driver file prints the capabilities.
 */
import { err, ok, stripKernelLogPrefix, type Result } from '@ioasid/core/driver';

/** The sysfs name prefix of a unit (iommu_device_sysfs_add(..., "riscv-iommu@%s", dev_name)). */
export const SYSFS_PREFIX = 'riscv-iommu@';
/** The platform driver's name, the prefix of a device-tree or ACPI unit's lines. */
export const PLATFORM_DRIVER = 'riscv,iommu';
/** The PCI driver's name (its module name), the prefix of a PCI unit's lines. */
export const PCI_DRIVER = 'iommu_pci';

const BDF_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** The device name of a unit named `riscv-iommu@<dev>` (or the name itself). */
export function deviceNameOf(unitName: string): string {
  return unitName.startsWith(SYSFS_PREFIX) ? unitName.slice(SYSFS_PREFIX.length) : unitName;
}

/** Whether the unit is a PCI function (the PCI driver binds it). */
export function isPciUnit(unitName: string): boolean {
  return BDF_RE.test(deviceNameOf(unitName));
}

/** The `dev_*` prefix of a unit's lines: "<driver> <device>: ". */
export function devPrefix(unitName: string): string {
  return `${isPciUnit(unitName) ? PCI_DRIVER : PLATFORM_DRIVER} ${deviceNameOf(unitName)}: `;
}

/** The text riscv_iommu_fault prints after the device prefix. */
export function faultText(cause: number, did: number, iotval: bigint, iotval2: bigint): string {
  return `Fault ${cause} devid: 0x${did.toString(16)} iotval: ${iotval.toString(16)} iotval2: ${iotval2.toString(16)}`;
}

/** riscv_iommu_fault's line. */
export function faultLine(unitName: string, cause: number, did: number, iotval: bigint, iotval2: bigint): string {
  return `${devPrefix(unitName)}${faultText(cause, did, iotval, iotval2)}`;
}

/** The fault queue's error line (fqcsr.fqmf / fqof). */
export function faultQueueErrorLine(unitName: string, memoryFault: boolean, overflow: boolean): string {
  return `${devPrefix(unitName)}Queue #1 error; memory fault:${+memoryFault} overflow:${+overflow}`;
}

/** The command queue's error line (cqcsr.cqmf / cmd_to / cmd_ill / fence_w_ip). */
export function commandQueueErrorLine(unitName: string, fault: boolean, timeout: boolean, illegal: boolean, fenceWip: boolean): string {
  return `${devPrefix(unitName)}Queue #0 error; fault:${+fault} timeout:${+timeout} illegal:${+illegal} fence_w_ip:${+fenceWip}`;
}

/**
 * The probe's lines for a unit: a platform unit says which interrupts the driver settled on (fctl.WSI
 * set: wired); a PCI unit prints nothing.
 */
export function bootLines(unitName: string, wsi: boolean): string[] {
  if (isPciUnit(unitName)) return [];
  return [`${devPrefix(unitName)}${wsi ? 'using wire-signaled interrupts' : 'using MSIs'}`];
}

/** A fault line read back. */
export interface ParsedFaultLine {
  /** The driver name the line starts with: `riscv,iommu` (platform) or `iommu_pci` (PCI). */
  readonly driver: string;
  /** The IOMMU's device name after the driver name (`3010000.iommu`, `0000:00:01.0`). */
  readonly device: string;
  /** The record's CAUSE, printed in decimal. */
  readonly cause: number;
  /** The record's DID: the faulting device's device_id (`devid: 0x...`). */
  readonly did: number;
  /** The record's iotval: usually the faulting IOVA. */
  readonly iotval: bigint;
  /** The record's iotval2: the GPA of a guest-page fault, else 0 or implementation-defined. */
  readonly iotval2: bigint;
}

const FAULT_RE = /^(riscv,iommu|iommu_pci) (\S+): Fault (\d+) devid: 0x([0-9a-f]+) iotval: ([0-9a-f]+) iotval2: ([0-9a-f]+)$/;

/** Reads a riscv_iommu_fault line (with or without a dmesg/journal prefix); null for any other line. */
export function parseFaultLine(line: string): Result<ParsedFaultLine> | null {
  const text = stripKernelLogPrefix(line).trim();
  const m = FAULT_RE.exec(text);
  if (!m) return null;
  const cause = Number(m[3]);
  if (cause > 4095) return err(`cause ${cause} does not fit the 12-bit CAUSE field`);
  if (m[4].length > 6) return err(`devid 0x${m[4]} does not fit the 24-bit DID field`);
  if (m[5].length > 16 || m[6].length > 16) return err('iotval and iotval2 are 64-bit values');
  return ok({ driver: m[1], device: m[2], cause, did: parseInt(m[4], 16), iotval: BigInt(`0x${m[5]}`), iotval2: BigInt(`0x${m[6]}`) });
}

const BOOT_RE = /^(riscv,iommu) (\S+): (using MSIs|using wire-signaled interrupts)$/;

/** Reads a platform probe line: the unit's sysfs name and how it signals interrupts; null otherwise. */
export function parseBootLine(line: string): {
  /** The unit's name, `riscv-iommu@<device>`. */
  unit: string;
  /** The driver settled on wired interrupts (`fctl.WSI` = 1) rather than MSIs. */
  wsi: boolean;
} | null {
  const m = BOOT_RE.exec(stripKernelLogPrefix(line).trim());
  return m ? { unit: `${SYSFS_PREFIX}${m[2]}`, wsi: m[3] !== 'using MSIs' } : null;
}
