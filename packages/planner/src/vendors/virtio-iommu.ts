/** virtio-iommu as a host IOMMU (a guest's own vIOMMU, for nested setups): any architecture. */
import type { PlannerVendor } from './types.js';

export const virtioIommuVendor: PlannerVendor = {
  id: 'virtio-iommu',
  name: 'virtio-iommu',
  arch: 'any',
  kernelParameter: 'CONFIG_VIRTIO_IOMMU (a virtio-iommu device from the VMM; no parameter)',
  logSignatures: [/^virtio_iommu virtio\d+: /],
};
