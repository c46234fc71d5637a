/**
 * The up-front validation of the device-side commands (HWPT, hw_info, dirty tracking, invalidation,
 * fault queues, vIOMMU, vDEVICE, vEVENTQ, HW queues): flags and reserved fields exactly as the kernel
 * checks them before it looks up any object. The handlers of device-layer.ts call these first.
 */
import { fail } from '../uapi/errno.js';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_QUEUE_TYPE_DEFAULT,
  IOMMU_VEVENTQ_TYPE_DEFAULT,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  type ValueOfLayout,
  type iommu_fault_alloc,
  type iommu_hw_info,
  type iommu_hw_queue_alloc,
  type iommu_hwpt_alloc,
  type iommu_hwpt_get_dirty_bitmap,
  type iommu_hwpt_invalidate,
  type iommu_hwpt_set_dirty_tracking,
  type iommu_vdevice_alloc,
  type iommu_veventq_alloc,
  type iommu_viommu_alloc,
  ULONG_MAX,
} from '../uapi/iommufd.js';

type V<L> = ValueOfLayout<L>;

export const HWPT_ALLOC_FLAGS = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;

export function validateHwptAlloc(cmd: V<typeof iommu_hwpt_alloc>): void {
  // Only __reserved: iommufd_hwpt_alloc never looks at __reserved2.
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  // Only data_len is checked here, as the kernel does; a bad data_uptr faults when the data is copied.
  if (cmd.data_type === IOMMU_HWPT_DATA_NONE && cmd.data_len !== 0) fail('EINVAL', 'data_len without data_type');
  if (cmd.data_type !== IOMMU_HWPT_DATA_NONE && cmd.data_len === 0) fail('EINVAL', 'data_type needs data_len');
}

export function validateHwInfo(cmd: V<typeof iommu_hw_info>): void {
  if (cmd.flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) fail('EOPNOTSUPP', 'unknown flags');
  if (cmd.__reserved.some((b) => b !== 0)) fail('EOPNOTSUPP', '__reserved must be 0');
}

export function validateSetDirtyTracking(cmd: V<typeof iommu_hwpt_set_dirty_tracking>): void {
  // iommufd_hwpt_set_dirty_tracking checks only flags; __reserved is ignored.
  if (cmd.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) fail('EOPNOTSUPP', 'unknown flags');
}

export function validateGetDirtyBitmap(cmd: V<typeof iommu_hwpt_get_dirty_bitmap>): void {
  if (cmd.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) fail('EOPNOTSUPP', 'unknown flags');
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
}

export function validateInvalidate(cmd: V<typeof iommu_hwpt_invalidate>): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  if (cmd.entry_num > 0 && (cmd.data_uptr === 0n || cmd.entry_len === 0)) fail('EINVAL', 'entries need data_uptr and entry_len');
}

export function validateFaultAlloc(cmd: V<typeof iommu_fault_alloc>): void {
  if (cmd.flags !== 0) fail('EOPNOTSUPP', 'flags must be 0');
}

export function validateViommuAlloc(cmd: V<typeof iommu_viommu_alloc>): void {
  // iommufd_viommu_alloc_ioctl checks flags and type only; __reserved is ignored.
  if (cmd.flags !== 0 || cmd.type === IOMMU_VIOMMU_TYPE_DEFAULT) fail('EOPNOTSUPP', 'flags must be 0 and type not DEFAULT');
}

export function validateVdeviceAlloc(cmd: V<typeof iommu_vdevice_alloc>): void {
  if (cmd.virt_id > ULONG_MAX) fail('EINVAL', 'virt_id too large');
}

export function validateVeventqAlloc(cmd: V<typeof iommu_veventq_alloc>): void {
  if (cmd.flags !== 0 || cmd.__reserved !== 0 || cmd.type === IOMMU_VEVENTQ_TYPE_DEFAULT) fail('EOPNOTSUPP', 'flags/__reserved must be 0 and type not DEFAULT');
  if (cmd.veventq_depth === 0) fail('EINVAL', 'depth is zero');
  if (cmd.veventq_depth > 1 << 19) fail('EINVAL', 'depth too large');
}

export function validateHwQueueAlloc(cmd: V<typeof iommu_hw_queue_alloc>): void {
  if (cmd.flags !== 0 || cmd.type === IOMMU_HW_QUEUE_TYPE_DEFAULT) fail('EOPNOTSUPP', 'flags must be 0 and type not DEFAULT');
  if (cmd.length === 0n) fail('EINVAL', 'length is zero');
  if (cmd.nesting_parent_iova + cmd.length - 1n > ULONG_MAX) fail('EOVERFLOW', 'nesting_parent_iova + length overflows');
}
