/**
 * The amd_iommu driver's blocked domain (iommu.c `blocked_domain`): one static domain, no page table,
 * whose attach_dev (blocked_domain_attach_device()) detaches the device from its paging domain
 * (detach_device(): the domain flushed, a GCR3 table freed) and then writes the cleared DTE
 * (dev_update_dte(dev_data, false): clear_dte_entry(), amd_iommu_make_clear_dte(): V set, TV and
 * everything else clear) through amd_iommu_update_dte(), with its flushes and wait.
 *
 * iommufd reaches it twice: when the first device of a group is bound (iommu_device_claim_dma_owner moves
 * the group to its blocking domain: `UnitOps.blockingDomain`) and when the last device of a group is
 * detached from its HWPT (the paging and nested domains' `detachDev`).
 *
 * DMA through the cleared DTE: V=1 with TV=0 has no valid page-table root, so the walk stops there and the
 * IOMMU logs IO_PAGE_FAULT (the specification's IO_PAGE_FAULT event types include TV clear) with the DTE's
 * DomainID, 0.
 */
import type { DeviceInfo, DomainAttachHooks, UnitOps, VendorError } from '@ioasid/core/driver';
import { deviceTableOf } from './device-table.js';

/** The blocked domain (`blocked_domain` of iommu.c). Stateless: one instance serves every unit and host. */
export class AmdBlockedDomain implements DomainAttachHooks {
  /**
   * blocked_domain_attach_device() for the RID. A PASID goes through blocked_domain_set_dev_pasid()
   * (amd_iommu_remove_dev_pasid(): the PASID's GCR3 entry), which the model does not keep beyond core's
   * PASID binding, so nothing is written for one.
   */
  attachDev(dev: DeviceInfo, unit: UnitOps, pasid: number): VendorError | null {
    const table = pasid === -1 ? deviceTableOf(unit) : null;
    if (!table) return null;
    table.devData(dev).domain?.detachDevice(dev, table);
    table.block(dev);
    return null;
  }
}

/** The one blocked domain of the driver. */
export const AMD_BLOCKED_DOMAIN = new AmdBlockedDomain();
