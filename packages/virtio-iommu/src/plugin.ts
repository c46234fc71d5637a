/** The plugin object: registers the virtio-iommu vendor into the container it is given;
 * its decoder explains requests, records and log lines. */
import type { IommuPlugin } from '@ioasid/core/driver';
import { IOMMU_VENDOR } from '@ioasid/core/driver';
import { VirtioIommuVendor } from './vendor.js';
import { virtioDecoder } from './decode.js';

/** virtio-iommu as a host IOMMU (an L1 guest's): hand it to `createHost({ plugins: [plugin], profile })`. */
export const plugin: IommuPlugin = {
  id: 'virtio-iommu',
  decoder: virtioDecoder,
  description: 'virtio-iommu: the paravirtual IOMMU (MAP/UNMAP requests to the VMM\'s device), Linux driver semantics and log lines, QEMU and cloud-hypervisor presets',
  register(c) {
    c.register(IOMMU_VENDOR, { useValue: new VirtioIommuVendor() });
  },
};
