/**
 * The VFIO type1 container ioctls of include/uapi/linux/vfio.h that /dev/iommu answers for
 * compatibility (vfio_compat.c): command numbers, extension types, flags and struct layouts.
 */
import { defineStruct } from './struct.js';

export const VFIO_TYPE = 0x3b; // ';', the same type byte as iommufd
export const VFIO_BASE = 100;
/** `_IO(VFIO_TYPE, VFIO_BASE + n)`. */
const vfioIoctl = (n: number): number => (VFIO_TYPE << 8) | (VFIO_BASE + n);

export const VFIO_API_VERSION = 0;

export const VFIO_GET_API_VERSION = vfioIoctl(0);
export const VFIO_CHECK_EXTENSION = vfioIoctl(1);
export const VFIO_SET_IOMMU = vfioIoctl(2);
export const VFIO_IOMMU_GET_INFO = vfioIoctl(12);
export const VFIO_IOMMU_MAP_DMA = vfioIoctl(13);
export const VFIO_IOMMU_UNMAP_DMA = vfioIoctl(14);
export const VFIO_IOMMU_DIRTY_PAGES = vfioIoctl(17);

// Extensions (VFIO_CHECK_EXTENSION) and IOMMU types (VFIO_SET_IOMMU).
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
/** __VFIO_RESERVED_TYPE1_NESTING_IOMMU: the removed type1 nesting. */
export const VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

export const vfio_iommu_type1_info = defineStruct('vfio_iommu_type1_info', 24, [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova_pgsizes', 'u64'],
  ['cap_offset', 'u32'],
  ['pad', 'u32'],
] as const);

export const vfio_info_cap_header = defineStruct('vfio_info_cap_header', 8, [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
] as const);

/** The fixed head of vfio_iommu_type1_info_cap_iova_range; `struct vfio_iova_range` entries follow. */
export const vfio_iommu_type1_info_cap_iova_range = defineStruct('vfio_iommu_type1_info_cap_iova_range', 16, [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['nr_iovas', 'u32'],
  ['reserved', 'u32'],
] as const);

export const vfio_iova_range = defineStruct('vfio_iova_range', 16, [
  ['start', 'u64'],
  ['end', 'u64'],
] as const);

export const vfio_iommu_type1_info_dma_avail = defineStruct('vfio_iommu_type1_info_dma_avail', 12, [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['avail', 'u32'],
] as const);

export const vfio_iommu_type1_dma_map = defineStruct('vfio_iommu_type1_dma_map', 32, [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['vaddr', 'u64'],
  ['iova', 'u64'],
  ['size', 'u64'],
] as const);

export const vfio_iommu_type1_dma_unmap = defineStruct('vfio_iommu_type1_dma_unmap', 24, [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova', 'u64'],
  ['size', 'u64'],
] as const);
