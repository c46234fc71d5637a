/**
 * Handlers of the device-side commands. The object layer knows them only through this interface so
 * that the IOAS core does not import the device, HWPT, fault and vIOMMU modules.
 */
import type { IommufdCtx, Ucmd } from './context.js';
import type * as U from '../uapi/iommufd.js';

type V<L> = U.ValueOfLayout<L>;
type H<L> = (ctx: IommufdCtx, cmd: V<L>, ucmd: Ucmd) => void;

export interface DeviceCommandHandlers {
  hwptAlloc: H<typeof U.iommu_hwpt_alloc>;
  getHwInfo: H<typeof U.iommu_hw_info>;
  setDirtyTracking: H<typeof U.iommu_hwpt_set_dirty_tracking>;
  getDirtyBitmap: H<typeof U.iommu_hwpt_get_dirty_bitmap>;
  invalidate: H<typeof U.iommu_hwpt_invalidate>;
  faultQueueAlloc: H<typeof U.iommu_fault_alloc>;
  viommuAlloc: H<typeof U.iommu_viommu_alloc>;
  vdeviceAlloc: H<typeof U.iommu_vdevice_alloc>;
  veventqAlloc: H<typeof U.iommu_veventq_alloc>;
  hwQueueAlloc: H<typeof U.iommu_hw_queue_alloc>;
}
