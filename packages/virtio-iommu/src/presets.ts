/**
 * Presets: the virtio-iommu devices real VMMs expose, as host profiles of an L1 guest whose IOMMU is
 * that device. Values come from the VMMs' sources (see docs/vendors/virtio-iommu.md).
 */
import type { HostProfile } from '@ioasid/core';
import { DEFAULT_FEATURES } from './config.js';
import { VIRTIO_F_VERSION_1, VIRTIO_IOMMU_F_BYPASS_CONFIG, VIRTIO_IOMMU_F_MAP_UNMAP, VIRTIO_IOMMU_F_PROBE, bit } from './spec.js';

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** QEMU's features: VERSION_1, INPUT_RANGE, DOMAIN_RANGE, MAP_UNMAP, PROBE, MMIO, BYPASS_CONFIG. */
const QEMU_FEATURES = hex(DEFAULT_FEATURES);

/** cloud-hypervisor offers INPUT_RANGE only when iommu_address_width is below 64 (the default is 64). */
const CH_FEATURES = hex(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP) | bit(VIRTIO_IOMMU_F_PROBE) | bit(VIRTIO_IOMMU_F_BYPASS_CONFIG));

/** A QEMU virtio-iommu-pci unit: `aw-bits` sets the input range, the page mask comes from `granule` (and VFIO). */
function qemuUnit(awBits: bigint, pageSizeMask: string): HostProfile['units'][number] {
  return {
    id: 'virtio0',
    vendor: 'virtio-iommu',
    registers: { features: QEMU_FEATURES, page_size_mask: pageSizeMask, input_start: '0x0', input_end: hex((1n << awBits) - 1n), domain_start: 0, domain_end: 0xffffffff, probe_size: 512, bypass: 1 },
  };
}

const DEVICES = [
  { bdf: '0000:00:03.0', unit: 'virtio0', group: 1, description: 'virtio-net behind the vIOMMU' },
  { bdf: '0000:00:04.0', unit: 'virtio0', group: 2, description: 'an assigned NIC (VFIO in the L0 VMM)' },
];

/** Host profile of a guest on QEMU 9.0+ q35 with a default `-device virtio-iommu-pci`: 4 KiB granule, 39-bit input range, boot bypass, MSI window 0xfee00000-0xfeefffff reported as RESV_MEM. */
export const qemuQ35: HostProfile = {
  name: 'QEMU q35 guest',
  description: 'An L1 guest of QEMU with the defaults of -device virtio-iommu-pci (granule=4k, aw-bits=39, boot-bypass=on) on a 9.0+ q35 machine without VFIO devices: every page size from 4 KiB, a 39-bit input range, 32-bit domain IDs, a 512-byte PROBE buffer, boot bypass.',
  units: [qemuUnit(39n, '0xfffffffffffff000')],
  devices: DEVICES.map((d) => ({ ...d, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }] })),
};

/** Host profile of a guest on QEMU 9.0+ Arm virt with a default `-device virtio-iommu-pci`: as {@link qemuQ35} with a 48-bit input range and no reserved regions. */
export const qemuArmVirt: HostProfile = {
  name: 'QEMU Arm virt guest',
  description: 'An L1 guest of QEMU with the defaults of -device virtio-iommu-pci on a 9.0+ Arm virt machine (granule=4k, aw-bits=48): a 48-bit input range, otherwise as on q35.',
  units: [qemuUnit(48n, '0xfffffffffffff000')],
  devices: DEVICES,
};

/** Host profile of a q35 guest whose devices are VFIO devices of a VT-d host: QEMU narrows `page_size_mask` to the host's 4 KiB, 2 MiB and 1 GiB. */
export const qemuQ35Vfio: HostProfile = {
  name: 'QEMU q35 guest over VT-d VFIO',
  description: 'An L1 guest of QEMU (q35, virtio-iommu-pci) whose devices are VFIO devices of a VT-d host: QEMU intersects the page-size mask with the host IOMMU\'s: 4K, 2M and 1G on VT-d.',
  units: [qemuUnit(39n, '0x40201000')],
  devices: DEVICES.map((d) => ({ ...d, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }] })),
};

/** Host profile of a cloud-hypervisor guest (`--platform iommu`): MAP_UNMAP, PROBE and BYPASS_CONFIG only, 4 KiB and 2 MiB pages, a 24-byte PROBE buffer, bypass 0. */
export const cloudHypervisor: HostProfile = {
  name: 'cloud-hypervisor guest',
  description: 'An L1 guest of cloud-hypervisor with --platform iommu: its virtio-iommu device offers MAP_UNMAP, PROBE and BYPASS_CONFIG, 4K and 2M pages, a 24-byte PROBE buffer (one MSI RESV_MEM), no input or domain range, bypass presented as 0.',
  units: [{ id: 'virtio0', vendor: 'virtio-iommu', registers: { features: CH_FEATURES, page_size_mask: '0x201000', probe_size: 24, bypass: 0 } }],
  devices: DEVICES.map((d) => ({ ...d, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }] })),
};

/** Every virtio-iommu preset of the package: q35, Arm virt, q35 over VT-d VFIO, cloud-hypervisor. */
export const presets: HostProfile[] = [qemuQ35, qemuArmVirt, qemuQ35Vfio, cloudHypervisor];
