/**
 * include/uapi/linux/iommufd.h: command numbers, struct layouts, enums and flags.
 * Every struct starts with `u32 size`; u64 fields are __aligned_u64.
 */
import { defineStruct } from './struct.js';

export const IOMMUFD_TYPE = 0x3b; // ';'
export const IOMMUFD_CMD_BASE = 0x80;

export const IOMMUFD_CMD = {
  DESTROY: 0x80,
  IOAS_ALLOC: 0x81,
  IOAS_ALLOW_IOVAS: 0x82,
  IOAS_COPY: 0x83,
  IOAS_IOVA_RANGES: 0x84,
  IOAS_MAP: 0x85,
  IOAS_UNMAP: 0x86,
  OPTION: 0x87,
  VFIO_IOAS: 0x88,
  HWPT_ALLOC: 0x89,
  GET_HW_INFO: 0x8a,
  HWPT_SET_DIRTY_TRACKING: 0x8b,
  HWPT_GET_DIRTY_BITMAP: 0x8c,
  HWPT_INVALIDATE: 0x8d,
  FAULT_QUEUE_ALLOC: 0x8e,
  IOAS_MAP_FILE: 0x8f,
  VIOMMU_ALLOC: 0x90,
  VDEVICE_ALLOC: 0x91,
  IOAS_CHANGE_PROCESS: 0x92,
  VEVENTQ_ALLOC: 0x93,
  HW_QUEUE_ALLOC: 0x94,
  IOAS_NOIOMMU_GET_PA: 0x95,
} as const;

/** `_IO(IOMMUFD_TYPE, nr)`: direction and size bits are zero. */
export const iommufdIoctl = (nr: number): number => (IOMMUFD_TYPE << 8) | nr;

export const IOMMU_DESTROY = iommufdIoctl(IOMMUFD_CMD.DESTROY);
export const IOMMU_IOAS_ALLOC = iommufdIoctl(IOMMUFD_CMD.IOAS_ALLOC);
export const IOMMU_IOAS_ALLOW_IOVAS = iommufdIoctl(IOMMUFD_CMD.IOAS_ALLOW_IOVAS);
export const IOMMU_IOAS_COPY = iommufdIoctl(IOMMUFD_CMD.IOAS_COPY);
export const IOMMU_IOAS_IOVA_RANGES = iommufdIoctl(IOMMUFD_CMD.IOAS_IOVA_RANGES);
export const IOMMU_IOAS_MAP = iommufdIoctl(IOMMUFD_CMD.IOAS_MAP);
export const IOMMU_IOAS_UNMAP = iommufdIoctl(IOMMUFD_CMD.IOAS_UNMAP);
export const IOMMU_OPTION = iommufdIoctl(IOMMUFD_CMD.OPTION);
export const IOMMU_VFIO_IOAS = iommufdIoctl(IOMMUFD_CMD.VFIO_IOAS);
export const IOMMU_HWPT_ALLOC = iommufdIoctl(IOMMUFD_CMD.HWPT_ALLOC);
export const IOMMU_GET_HW_INFO = iommufdIoctl(IOMMUFD_CMD.GET_HW_INFO);
export const IOMMU_HWPT_SET_DIRTY_TRACKING = iommufdIoctl(IOMMUFD_CMD.HWPT_SET_DIRTY_TRACKING);
export const IOMMU_HWPT_GET_DIRTY_BITMAP = iommufdIoctl(IOMMUFD_CMD.HWPT_GET_DIRTY_BITMAP);
export const IOMMU_HWPT_INVALIDATE = iommufdIoctl(IOMMUFD_CMD.HWPT_INVALIDATE);
export const IOMMU_FAULT_QUEUE_ALLOC = iommufdIoctl(IOMMUFD_CMD.FAULT_QUEUE_ALLOC);
export const IOMMU_IOAS_MAP_FILE = iommufdIoctl(IOMMUFD_CMD.IOAS_MAP_FILE);
export const IOMMU_VIOMMU_ALLOC = iommufdIoctl(IOMMUFD_CMD.VIOMMU_ALLOC);
export const IOMMU_VDEVICE_ALLOC = iommufdIoctl(IOMMUFD_CMD.VDEVICE_ALLOC);
export const IOMMU_IOAS_CHANGE_PROCESS = iommufdIoctl(IOMMUFD_CMD.IOAS_CHANGE_PROCESS);
export const IOMMU_VEVENTQ_ALLOC = iommufdIoctl(IOMMUFD_CMD.VEVENTQ_ALLOC);
export const IOMMU_HW_QUEUE_ALLOC = iommufdIoctl(IOMMUFD_CMD.HW_QUEUE_ALLOC);
export const IOMMU_IOAS_NOIOMMU_GET_PA = iommufdIoctl(IOMMUFD_CMD.IOAS_NOIOMMU_GET_PA);

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** ULONG_MAX on a 64-bit kernel. */
export const ULONG_MAX = U64_MAX;
export const INT_MAX = 0x7fff_ffff;

// --- struct layouts -------------------------------------------------------------------------------

export const iommu_destroy = defineStruct('iommu_destroy', 8, [
  ['size', 'u32'],
  ['id', 'u32'],
] as const);

export const iommu_ioas_alloc = defineStruct('iommu_ioas_alloc', 12, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_ioas_id', 'u32'],
] as const);

export const iommu_iova_range = defineStruct('iommu_iova_range', 16, [
  ['start', 'u64'],
  ['last', 'u64'],
] as const);

export const iommu_ioas_iova_ranges = defineStruct('iommu_ioas_iova_ranges', 32, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
  ['out_iova_alignment', 'u64'],
] as const);

export const iommu_ioas_allow_iovas = defineStruct('iommu_ioas_allow_iovas', 24, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
] as const);

export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

export const iommu_ioas_map = defineStruct('iommu_ioas_map', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['__reserved', 'u32'],
  ['user_va', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
] as const);

export const iommu_ioas_map_file = defineStruct('iommu_ioas_map_file', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['fd', 's32'],
  ['start', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
] as const);

export const iommu_ioas_copy = defineStruct('iommu_ioas_copy', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dst_ioas_id', 'u32'],
  ['src_ioas_id', 'u32'],
  ['length', 'u64'],
  ['dst_iova', 'u64'],
  ['src_iova', 'u64'],
] as const);

export const iommu_ioas_unmap = defineStruct('iommu_ioas_unmap', 24, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
] as const);

export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

export const iommu_option = defineStruct('iommu_option', 24, [
  ['size', 'u32'],
  ['option_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
  ['object_id', 'u32'],
  ['val64', 'u64'],
] as const);

export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

export const iommu_vfio_ioas = defineStruct('iommu_vfio_ioas', 12, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
] as const);

export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
export const IOMMU_HWPT_DATA_AMD_GUEST = 3;

export const iommu_hwpt_alloc = defineStruct('iommu_hwpt_alloc', 48, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['pt_id', 'u32'],
  ['out_hwpt_id', 'u32'],
  ['__reserved', 'u32'],
  ['data_type', 'u32'],
  ['data_len', 'u32'],
  ['data_uptr', 'u64'],
  ['fault_id', 'u32'],
  ['__reserved2', 'u32'],
] as const);

export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;
export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;
export const IOMMU_HW_INFO_TYPE_AMD = 4;

export const IOMMU_HW_CAP_DIRTY_TRACKING = 1n << 0n;
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1n << 1n;
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1n << 2n;
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1n << 3n;

export const iommu_hw_info = defineStruct('iommu_hw_info', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['data_len', 'u32'],
  ['data_uptr', 'u64'],
  // A union of in_data_type and out_data_type.
  ['data_type', 'u32'],
  ['out_max_pasid_log2', 'u8'],
  ['__reserved', 'u8', 3],
  ['out_capabilities', 'u64'],
] as const);

export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

export const iommu_hwpt_set_dirty_tracking = defineStruct('iommu_hwpt_set_dirty_tracking', 16, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['hwpt_id', 'u32'],
  ['__reserved', 'u32'],
] as const);

export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

export const iommu_hwpt_get_dirty_bitmap = defineStruct('iommu_hwpt_get_dirty_bitmap', 48, [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
  ['page_size', 'u64'],
  ['data', 'u64'],
] as const);

export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

export const iommu_hwpt_invalidate = defineStruct('iommu_hwpt_invalidate', 32, [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['data_uptr', 'u64'],
  ['data_type', 'u32'],
  ['entry_len', 'u32'],
  ['entry_num', 'u32'],
  ['__reserved', 'u32'],
] as const);

export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

export const iommu_hwpt_pgfault = defineStruct('iommu_hwpt_pgfault', 40, [
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['pasid', 'u32'],
  ['grpid', 'u32'],
  ['perm', 'u32'],
  ['__reserved', 'u32'],
  ['addr', 'u64'],
  ['length', 'u32'],
  ['cookie', 'u32'],
] as const);

export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
export const IOMMUFD_PAGE_RESP_INVALID = 1;

export const iommu_hwpt_page_response = defineStruct('iommu_hwpt_page_response', 8, [
  ['cookie', 'u32'],
  ['code', 'u32'],
] as const);

export const iommu_fault_alloc = defineStruct('iommu_fault_alloc', 16, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_fault_id', 'u32'],
  ['out_fault_fd', 'u32'],
] as const);

export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

export const iommu_viommu_alloc = defineStruct('iommu_viommu_alloc', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['type', 'u32'],
  ['dev_id', 'u32'],
  ['hwpt_id', 'u32'],
  ['out_viommu_id', 'u32'],
  ['data_len', 'u32'],
  ['__reserved', 'u32'],
  ['data_uptr', 'u64'],
] as const);

export const iommu_vdevice_alloc = defineStruct('iommu_vdevice_alloc', 24, [
  ['size', 'u32'],
  ['viommu_id', 'u32'],
  ['dev_id', 'u32'],
  ['out_vdevice_id', 'u32'],
  ['virt_id', 'u64'],
] as const);

export const iommu_ioas_change_process = defineStruct('iommu_ioas_change_process', 8, [
  ['size', 'u32'],
  ['__reserved', 'u32'],
] as const);

export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

export const iommufd_vevent_header = defineStruct('iommufd_vevent_header', 8, [
  ['flags', 'u32'],
  ['sequence', 'u32'],
] as const);

export const iommu_veventq_alloc = defineStruct('iommu_veventq_alloc', 32, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['viommu_id', 'u32'],
  ['type', 'u32'],
  ['veventq_depth', 'u32'],
  ['out_veventq_id', 'u32'],
  ['out_veventq_fd', 'u32'],
  ['__reserved', 'u32'],
] as const);

export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

export const iommu_hw_queue_alloc = defineStruct('iommu_hw_queue_alloc', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['viommu_id', 'u32'],
  ['type', 'u32'],
  ['index', 'u32'],
  ['out_hw_queue_id', 'u32'],
  ['nesting_parent_iova', 'u64'],
  ['length', 'u64'],
] as const);

export const iommu_ioas_noiommu_get_pa = defineStruct('iommu_ioas_noiommu_get_pa', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['__reserved', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
  ['out_phys', 'u64'],
] as const);

// --- vendor payloads (defined centrally, as in the kernel header) ----------------------------------

export const IOMMU_VTD_S1_SRE = 1n << 0n;
export const IOMMU_VTD_S1_EAFE = 1n << 1n;
export const IOMMU_VTD_S1_WPE = 1n << 2n;

export const iommu_hwpt_vtd_s1 = defineStruct('iommu_hwpt_vtd_s1', 24, [
  ['flags', 'u64'],
  ['pgtbl_addr', 'u64'],
  ['addr_width', 'u32'],
  ['__reserved', 'u32'],
] as const);

export const iommu_hwpt_arm_smmuv3 = defineStruct('iommu_hwpt_arm_smmuv3', 16, [['ste', 'u64', 2]] as const);

export const iommu_hwpt_amd_guest = defineStruct('iommu_hwpt_amd_guest', 32, [['dte', 'u64', 4]] as const);

export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

export const iommu_hw_info_vtd = defineStruct('iommu_hw_info_vtd', 24, [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['cap_reg', 'u64'],
  ['ecap_reg', 'u64'],
] as const);

export const IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI = 1 << 0;

export const iommu_hw_info_arm_smmuv3 = defineStruct('iommu_hw_info_arm_smmuv3', 40, [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['idr', 'u32', 6],
  ['iidr', 'u32'],
  ['aidr', 'u32'],
] as const);

export const iommu_hw_info_amd = defineStruct('iommu_hw_info_amd', 16, [
  ['efr', 'u64'],
  ['efr2', 'u64'],
] as const);

export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

export const iommu_hwpt_vtd_s1_invalidate = defineStruct('iommu_hwpt_vtd_s1_invalidate', 24, [
  ['addr', 'u64'],
  ['npages', 'u64'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
] as const);

export const iommu_viommu_arm_smmuv3_invalidate = defineStruct('iommu_viommu_arm_smmuv3_invalidate', 16, [
  ['cmd', 'u64', 2],
] as const);

export const iommu_vevent_arm_smmuv3 = defineStruct('iommu_vevent_arm_smmuv3', 32, [['evt', 'u64', 4]] as const);

// NVIDIA Tegra241 CMDQV (IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
// IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV): layouts only, no vendor model uses them yet.
export const iommu_hw_info_tegra241_cmdqv = defineStruct('iommu_hw_info_tegra241_cmdqv', 8, [
  ['flags', 'u32'],
  ['version', 'u8'],
  ['log2vcmdqs', 'u8'],
  ['log2vsids', 'u8'],
  ['__reserved', 'u8'],
] as const);

export const iommu_viommu_tegra241_cmdqv = defineStruct('iommu_viommu_tegra241_cmdqv', 16, [
  ['out_vintf_mmap_offset', 'u64'],
  ['out_vintf_mmap_length', 'u64'],
] as const);

export const iommu_vevent_tegra241_cmdqv = defineStruct('iommu_vevent_tegra241_cmdqv', 16, [['lvcmdq_err_map', 'u64', 2]] as const);

// --- decoded value types ---------------------------------------------------------------------------

/** The decoded value of a struct layout. */
export type ValueOfLayout<L> = L extends { zero(): infer V } ? V : never;
