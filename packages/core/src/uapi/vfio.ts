/**
 * The VFIO type1 container ioctls of include/uapi/linux/vfio.h that /dev/iommu answers for
 * compatibility (vfio_compat.c): command numbers, extension types, flags and struct layouts.
 */
import { defineStruct } from './struct.js';

/** The ioctl type byte of VFIO (`';'`, 0x3b), shared with iommufd. */
export const VFIO_TYPE = 0x3b;
/** The first VFIO command number (100); VFIO ioctls are `_IO(VFIO_TYPE, VFIO_BASE + n)`. */
export const VFIO_BASE = 100;
/** `_IO(VFIO_TYPE, VFIO_BASE + n)`. */
const vfioIoctl = (n: number): number => (VFIO_TYPE << 8) | (VFIO_BASE + n);

/** The VFIO API version VFIO_GET_API_VERSION returns (0). */
export const VFIO_API_VERSION = 0;

/** VFIO_GET_API_VERSION: returns VFIO_API_VERSION. */
export const VFIO_GET_API_VERSION = vfioIoctl(0);
/** VFIO_CHECK_EXTENSION: whether the container supports an extension or IOMMU type (returns 1 or 0). */
export const VFIO_CHECK_EXTENSION = vfioIoctl(1);
/** VFIO_SET_IOMMU: choose the IOMMU model of the container (VFIO_TYPE1v2_IOMMU and friends). */
export const VFIO_SET_IOMMU = vfioIoctl(2);
/** VFIO_IOMMU_GET_INFO: page sizes and capability chain (IOVA ranges, DMA mappings available); struct vfio_iommu_type1_info. */
export const VFIO_IOMMU_GET_INFO = vfioIoctl(12);
/** VFIO_IOMMU_MAP_DMA: map user memory at an IOVA; struct vfio_iommu_type1_dma_map. */
export const VFIO_IOMMU_MAP_DMA = vfioIoctl(13);
/** VFIO_IOMMU_UNMAP_DMA: unmap an IOVA range (or all); struct vfio_iommu_type1_dma_unmap. */
export const VFIO_IOMMU_UNMAP_DMA = vfioIoctl(14);
/** VFIO_IOMMU_DIRTY_PAGES: type1 dirty tracking, which the iommufd compatibility layer does not offer (ENOTTY). */
export const VFIO_IOMMU_DIRTY_PAGES = vfioIoctl(17);

// Extensions (VFIO_CHECK_EXTENSION) and IOMMU types (VFIO_SET_IOMMU).
/** Extension / IOMMU type: type1 (v1 unmap semantics: a partial unmap of a mapping is allowed). */
export const VFIO_TYPE1_IOMMU = 1;
/** Extension / IOMMU type: POWER sPAPR TCE tables (not offered by iommufd). */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** Extension / IOMMU type: type1 v2 (unmaps must cover whole mappings); what iommufd emulates. */
export const VFIO_TYPE1v2_IOMMU = 3;
/** Extension: DMA is cache coherent (enforced snoop). */
export const VFIO_DMA_CC_IOMMU = 4;
/** Extension: POWER EEH error recovery (not offered by iommufd). */
export const VFIO_EEH = 5;
/** __VFIO_RESERVED_TYPE1_NESTING_IOMMU: the removed type1 nesting. */
export const VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
/** Extension / IOMMU type: sPAPR TCE v2 (not offered by iommufd). */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** Extension / IOMMU type: no-IOMMU mode (unsafe DMA without translation). */
export const VFIO_NOIOMMU_IOMMU = 8;
/** Extension: VFIO_DMA_UNMAP_FLAG_ALL is supported. */
export const VFIO_UNMAP_ALL = 9;
/** Extension: VFIO_DMA_MAP_FLAG_VADDR / VFIO_DMA_UNMAP_FLAG_VADDR (live update of the user address); iommufd does not offer it. */
export const VFIO_UPDATE_VADDR = 10;

/** vfio_iommu_type1_info `flags`: `iova_pgsizes` is valid. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** vfio_iommu_type1_info `flags`: a capability chain starts at `cap_offset`. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
/** Capability id: the usable IOVA ranges (vfio_iommu_type1_info_cap_iova_range). */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** Capability id: dirty-page tracking for migration (never reported by iommufd). */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** Capability id: how many more DMA mappings the container allows (vfio_iommu_type1_info_dma_avail). */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** VFIO_IOMMU_MAP_DMA flag: the device may read. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** VFIO_IOMMU_MAP_DMA flag: the device may write. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** VFIO_IOMMU_MAP_DMA flag: update the user address of an existing mapping (not supported by iommufd). */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
/** VFIO_IOMMU_UNMAP_DMA flag: return the dirty bitmap of the range (not supported by iommufd). */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** VFIO_IOMMU_UNMAP_DMA flag: unmap every mapping (iova and size must be 0). */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** VFIO_IOMMU_UNMAP_DMA flag: invalidate the user address only (not supported by iommufd). */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** `struct vfio_iommu_type1_info` (24 bytes), the argument of VFIO_IOMMU_GET_INFO: `argsz` (the caller's buffer size; the size needed comes back), `flags`, the supported `iova_pgsizes` bitmap and `cap_offset` of the capability chain. */
export const vfio_iommu_type1_info = defineStruct('vfio_iommu_type1_info', 24, [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova_pgsizes', 'u64'],
  ['cap_offset', 'u32'],
  ['pad', 'u32'],
] as const);

/** `struct vfio_info_cap_header` (8 bytes), the header of each capability in a VFIO info chain: its `id`, `version` and the offset of the `next` one (0 ends the chain). */
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

/** `struct vfio_iova_range` (16 bytes), one usable IOVA range, `start` to `end` inclusive (VFIO names the last byte `end`). */
export const vfio_iova_range = defineStruct('vfio_iova_range', 16, [
  ['start', 'u64'],
  ['end', 'u64'],
] as const);

/** `struct vfio_iommu_type1_info_dma_avail` (12 bytes), the DMA_AVAIL capability: how many more mappings the container accepts (`avail`). */
export const vfio_iommu_type1_info_dma_avail = defineStruct('vfio_iommu_type1_info_dma_avail', 12, [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['avail', 'u32'],
] as const);

/** `struct vfio_iommu_type1_dma_map` (32 bytes), the argument of VFIO_IOMMU_MAP_DMA: `size` bytes at user address `vaddr` mapped at `iova`, `flags` VFIO_DMA_MAP_FLAG_*. */
export const vfio_iommu_type1_dma_map = defineStruct('vfio_iommu_type1_dma_map', 32, [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['vaddr', 'u64'],
  ['iova', 'u64'],
  ['size', 'u64'],
] as const);

/** `struct vfio_iommu_type1_dma_unmap` (24 bytes), the argument of VFIO_IOMMU_UNMAP_DMA: `size` bytes from `iova` (the bytes unmapped come back in `size`), `flags` VFIO_DMA_UNMAP_FLAG_*. */
export const vfio_iommu_type1_dma_unmap = defineStruct('vfio_iommu_type1_dma_unmap', 24, [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova', 'u64'],
  ['size', 'u64'],
] as const);
