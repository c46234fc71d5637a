/**
 * Host profiles with RISC-V IOMMUs whose registers are documented: QEMU's models with their default
 * properties (hw/riscv/riscv-iommu.c realize: version 0x10; s-stage Sv32..Sv57; g-stage Sv32x4..Sv57x4
 * with Svrsw60t59b; intremap MSI_FLAT | MSI_MRIF; ats; HPM counters; DBG; PAS 56 for riscv64; PD8 only),
 * which differ only in IGS: the PCI function (riscv-iommu-pci, 1b36:0014) signals MSIs, the platform
 * device (`-M virt,iommu-sys=on`) both. No silicon's `capabilities` value is public, so there is no real
 * hardware preset; `ZDL_RTL_DEFAULT_CAP` is the open RTL's top-level default, a decode example.
 */
import type { HostProfile } from '@ioasid/core/driver';
import { VENDOR_ID } from './ids.js';
import { SYSFS_PREFIX } from './logs.js';
import { encodeCap, encodeFctl, IGS_BOTH, IGS_MSI, IGS_WSI } from './registers.js';

const QEMU_COMMON = {
  version: 0x10,
  Sv32: 1,
  Sv39: 1,
  Sv48: 1,
  Sv57: 1,
  Svrsw60t59b: 1,
  Sv32x4: 1,
  Sv39x4: 1,
  Sv48x4: 1,
  Sv57x4: 1,
  MSI_FLAT: 1,
  MSI_MRIF: 1,
  ATS: 1,
  HPM: 1,
  DBG: 1,
  PAS: 56,
  PD8: 1,
} as const;

/** QEMU riscv-iommu-pci with default properties. */
export const QEMU_PCI_CAP = encodeCap({ ...QEMU_COMMON, IGS: IGS_MSI });
/** QEMU riscv-iommu-sys (virt, iommu-sys=on) with default properties. */
export const QEMU_SYS_CAP = encodeCap({ ...QEMU_COMMON, IGS: IGS_BOTH });
/** The zero-day-labs SystemVerilog IOMMU's top-level defaults: Sv39, Sv39x4, WSI only, PAS 56, PD8/17/20. */
export const ZDL_RTL_DEFAULT_CAP = encodeCap({ version: 0x10, Sv39: 1, Sv39x4: 1, IGS: IGS_WSI, PAS: 56, PD8: 1, PD17: 1, PD20: 1 });

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** A riscv64 virt guest with `-device riscv-iommu-pci` (slot 1) and two devices behind it. */
export const qemuPciPreset: HostProfile = {
  name: 'QEMU virt, riscv-iommu-pci',
  description: 'QEMU riscv64 virt with -device riscv-iommu-pci (defaults) at 00:01.0, a NIC and an NVMe drive behind it',
  units: [{ id: `${SYSFS_PREFIX}0000:00:01.0`, vendor: VENDOR_ID, registers: { capabilities: hex(QEMU_PCI_CAP), fctl: '0x0' } }],
  devices: [
    { bdf: '0000:00:02.0', unit: `${SYSFS_PREFIX}0000:00:01.0`, group: 1, description: 'e1000e NIC' },
    { bdf: '0000:00:03.0', unit: `${SYSFS_PREFIX}0000:00:01.0`, group: 2, description: 'NVMe drive' },
  ],
};

/**
 * A riscv64 virt guest with `-M virt,iommu-sys=on` (the platform IOMMU at 0x3010000) and no MSI
 * controller, so the driver falls back to wired interrupts (fctl.WSI = 1).
 */
export const qemuSysPreset: HostProfile = {
  name: 'QEMU virt, iommu-sys',
  description: 'QEMU riscv64 virt with iommu-sys=on (riscv-iommu-sys defaults, wired interrupts), a NIC and an NVMe drive',
  units: [{ id: `${SYSFS_PREFIX}3010000.iommu`, vendor: VENDOR_ID, registers: { capabilities: hex(QEMU_SYS_CAP), fctl: hex(encodeFctl({ WSI: 1 })) } }],
  devices: [
    { bdf: '0000:00:01.0', unit: `${SYSFS_PREFIX}3010000.iommu`, group: 1, description: 'virtio-net NIC' },
    { bdf: '0000:00:02.0', unit: `${SYSFS_PREFIX}3010000.iommu`, group: 2, description: 'NVMe drive' },
  ],
};

/** Every preset of the package. */
export const presets: readonly HostProfile[] = [qemuPciPreset, qemuSysPreset];
