/**
 * include/uapi/linux/iommufd.h: command numbers, struct layouts, enums and flags.
 * Every struct starts with `u32 size`; u64 fields are __aligned_u64.
 */
import { defineStruct } from './struct.js';

/** The ioctl type byte of iommufd (`';'`, 0x3b): the high byte of every IOMMU_* ioctl number. */
export const IOMMUFD_TYPE = 0x3b;
/** The first iommufd command number (0x80, IOMMUFD_CMD_DESTROY); the rest follow in order. */
export const IOMMUFD_CMD_BASE = 0x80;

/** The iommufd command numbers (enum IOMMUFD_CMD_*), in the order the kernel added them. */
export const IOMMUFD_CMD = {
  /** 0x80: destroy any iommufd object by id (struct iommu_destroy). */
  DESTROY: 0x80,
  /** 0x81: create an I/O address space (IOAS) (struct iommu_ioas_alloc). */
  IOAS_ALLOC: 0x81,
  /** 0x82: restrict the IOVA ranges automatic allocation may use (struct iommu_ioas_allow_iovas). */
  IOAS_ALLOW_IOVAS: 0x82,
  /** 0x83: map the pages already pinned by a range of one IOAS into another, without pinning again (struct iommu_ioas_copy). */
  IOAS_COPY: 0x83,
  /** 0x84: report the IOVA ranges an IOAS can map and the required alignment (struct iommu_ioas_iova_ranges). */
  IOAS_IOVA_RANGES: 0x84,
  /** 0x85: pin user memory and map it into an IOAS, at a fixed or an allocated IOVA (struct iommu_ioas_map). */
  IOAS_MAP: 0x85,
  /** 0x86: unmap whole areas of an IOAS (iova 0 with length U64_MAX unmaps everything) (struct iommu_ioas_unmap). */
  IOAS_UNMAP: 0x86,
  /** 0x87: read or set an option of the iommufd or of one object (RLIMIT_MODE, HUGE_PAGES) (struct iommu_option). */
  OPTION: 0x87,
  /** 0x88: get, set or clear the IOAS the VFIO container compatibility layer uses (struct iommu_vfio_ioas). */
  VFIO_IOAS: 0x88,
  /** 0x89: allocate a hardware page table: a paging domain, or a nested one with vendor data (struct iommu_hwpt_alloc). */
  HWPT_ALLOC: 0x89,
  /** 0x8a: report a device's IOMMU: capabilities and the vendor's hardware-info payload (struct iommu_hw_info). */
  GET_HW_INFO: 0x8a,
  /** 0x8b: turn dirty tracking of a paging HWPT on or off (struct iommu_hwpt_set_dirty_tracking). */
  HWPT_SET_DIRTY_TRACKING: 0x8b,
  /** 0x8c: read (and by default clear) the dirty bits of an IOVA range into a user bitmap (struct iommu_hwpt_get_dirty_bitmap). */
  HWPT_GET_DIRTY_BITMAP: 0x8c,
  /** 0x8d: invalidate the caches of a nested HWPT or a vIOMMU from an array of vendor entries (struct iommu_hwpt_invalidate). */
  HWPT_INVALIDATE: 0x8d,
  /** 0x8e: create a fault object whose fd delivers page-request groups and takes responses (struct iommu_fault_alloc). */
  FAULT_QUEUE_ALLOC: 0x8e,
  /** 0x8f: map a range of a memfd into an IOAS (struct iommu_ioas_map_file). */
  IOAS_MAP_FILE: 0x8f,
  /** 0x90: create a vIOMMU object over a nesting-parent HWPT (struct iommu_viommu_alloc). */
  VIOMMU_ALLOC: 0x90,
  /** 0x91: give a device its virtual id (the guest's StreamID or BDF) on a vIOMMU (struct iommu_vdevice_alloc). */
  VDEVICE_ALLOC: 0x91,
  /** 0x92: move the pinned-page accounting of every IOAS to the calling process (struct iommu_ioas_change_process). */
  IOAS_CHANGE_PROCESS: 0x92,
  /** 0x93: create a vEVENTQ: an fd delivering a vIOMMU's events to the VMM (struct iommu_veventq_alloc). */
  VEVENTQ_ALLOC: 0x93,
  /** 0x94: hand a hardware queue of a vIOMMU (Tegra241 CMDQV) to the guest (struct iommu_hw_queue_alloc). */
  HW_QUEUE_ALLOC: 0x94,
  /** 0x95: in no-IOMMU mode, return the physical address behind a mapped IOVA (struct iommu_ioas_noiommu_get_pa). */
  IOAS_NOIOMMU_GET_PA: 0x95,
} as const;

/** `_IO(IOMMUFD_TYPE, nr)`: direction and size bits are zero. */
export const iommufdIoctl = (nr: number): number => (IOMMUFD_TYPE << 8) | nr;

/** IOMMU_DESTROY: the ioctl number that asks iommufd to destroy any iommufd object by id; its argument is struct iommu_destroy. */
export const IOMMU_DESTROY = iommufdIoctl(IOMMUFD_CMD.DESTROY);
/** IOMMU_IOAS_ALLOC: the ioctl number that asks iommufd to create an I/O address space (IOAS); its argument is struct iommu_ioas_alloc. */
export const IOMMU_IOAS_ALLOC = iommufdIoctl(IOMMUFD_CMD.IOAS_ALLOC);
/** IOMMU_IOAS_ALLOW_IOVAS: the ioctl number that asks iommufd to restrict the IOVA ranges automatic allocation may use; its argument is struct iommu_ioas_allow_iovas. */
export const IOMMU_IOAS_ALLOW_IOVAS = iommufdIoctl(IOMMUFD_CMD.IOAS_ALLOW_IOVAS);
/** IOMMU_IOAS_COPY: the ioctl number that asks iommufd to map the pages already pinned by a range of one IOAS into another, without pinning again; its argument is struct iommu_ioas_copy. */
export const IOMMU_IOAS_COPY = iommufdIoctl(IOMMUFD_CMD.IOAS_COPY);
/** IOMMU_IOAS_IOVA_RANGES: the ioctl number that asks iommufd to report the IOVA ranges an IOAS can map and the required alignment; its argument is struct iommu_ioas_iova_ranges. */
export const IOMMU_IOAS_IOVA_RANGES = iommufdIoctl(IOMMUFD_CMD.IOAS_IOVA_RANGES);
/** IOMMU_IOAS_MAP: the ioctl number that asks iommufd to pin user memory and map it into an IOAS, at a fixed or an allocated IOVA; its argument is struct iommu_ioas_map. */
export const IOMMU_IOAS_MAP = iommufdIoctl(IOMMUFD_CMD.IOAS_MAP);
/** IOMMU_IOAS_UNMAP: the ioctl number that asks iommufd to unmap whole areas of an IOAS (iova 0 with length U64_MAX unmaps everything); its argument is struct iommu_ioas_unmap. */
export const IOMMU_IOAS_UNMAP = iommufdIoctl(IOMMUFD_CMD.IOAS_UNMAP);
/** IOMMU_OPTION: the ioctl number that asks iommufd to read or set an option of the iommufd or of one object (RLIMIT_MODE, HUGE_PAGES); its argument is struct iommu_option. */
export const IOMMU_OPTION = iommufdIoctl(IOMMUFD_CMD.OPTION);
/** IOMMU_VFIO_IOAS: the ioctl number that asks iommufd to get, set or clear the IOAS the VFIO container compatibility layer uses; its argument is struct iommu_vfio_ioas. */
export const IOMMU_VFIO_IOAS = iommufdIoctl(IOMMUFD_CMD.VFIO_IOAS);
/** IOMMU_HWPT_ALLOC: the ioctl number that asks iommufd to allocate a hardware page table: a paging domain, or a nested one with vendor data; its argument is struct iommu_hwpt_alloc. */
export const IOMMU_HWPT_ALLOC = iommufdIoctl(IOMMUFD_CMD.HWPT_ALLOC);
/** IOMMU_GET_HW_INFO: the ioctl number that asks iommufd to report a device's IOMMU: capabilities and the vendor's hardware-info payload; its argument is struct iommu_hw_info. */
export const IOMMU_GET_HW_INFO = iommufdIoctl(IOMMUFD_CMD.GET_HW_INFO);
/** IOMMU_HWPT_SET_DIRTY_TRACKING: the ioctl number that asks iommufd to turn dirty tracking of a paging HWPT on or off; its argument is struct iommu_hwpt_set_dirty_tracking. */
export const IOMMU_HWPT_SET_DIRTY_TRACKING = iommufdIoctl(IOMMUFD_CMD.HWPT_SET_DIRTY_TRACKING);
/** IOMMU_HWPT_GET_DIRTY_BITMAP: the ioctl number that asks iommufd to read (and by default clear) the dirty bits of an IOVA range into a user bitmap; its argument is struct iommu_hwpt_get_dirty_bitmap. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP = iommufdIoctl(IOMMUFD_CMD.HWPT_GET_DIRTY_BITMAP);
/** IOMMU_HWPT_INVALIDATE: the ioctl number that asks iommufd to invalidate the caches of a nested HWPT or a vIOMMU from an array of vendor entries; its argument is struct iommu_hwpt_invalidate. */
export const IOMMU_HWPT_INVALIDATE = iommufdIoctl(IOMMUFD_CMD.HWPT_INVALIDATE);
/** IOMMU_FAULT_QUEUE_ALLOC: the ioctl number that asks iommufd to create a fault object whose fd delivers page-request groups and takes responses; its argument is struct iommu_fault_alloc. */
export const IOMMU_FAULT_QUEUE_ALLOC = iommufdIoctl(IOMMUFD_CMD.FAULT_QUEUE_ALLOC);
/** IOMMU_IOAS_MAP_FILE: the ioctl number that asks iommufd to map a range of a memfd into an IOAS; its argument is struct iommu_ioas_map_file. */
export const IOMMU_IOAS_MAP_FILE = iommufdIoctl(IOMMUFD_CMD.IOAS_MAP_FILE);
/** IOMMU_VIOMMU_ALLOC: the ioctl number that asks iommufd to create a vIOMMU object over a nesting-parent HWPT; its argument is struct iommu_viommu_alloc. */
export const IOMMU_VIOMMU_ALLOC = iommufdIoctl(IOMMUFD_CMD.VIOMMU_ALLOC);
/** IOMMU_VDEVICE_ALLOC: the ioctl number that asks iommufd to give a device its virtual id (the guest's StreamID or BDF) on a vIOMMU; its argument is struct iommu_vdevice_alloc. */
export const IOMMU_VDEVICE_ALLOC = iommufdIoctl(IOMMUFD_CMD.VDEVICE_ALLOC);
/** IOMMU_IOAS_CHANGE_PROCESS: the ioctl number that asks iommufd to move the pinned-page accounting of every IOAS to the calling process; its argument is struct iommu_ioas_change_process. */
export const IOMMU_IOAS_CHANGE_PROCESS = iommufdIoctl(IOMMUFD_CMD.IOAS_CHANGE_PROCESS);
/** IOMMU_VEVENTQ_ALLOC: the ioctl number that asks iommufd to create a vEVENTQ: an fd delivering a vIOMMU's events to the VMM; its argument is struct iommu_veventq_alloc. */
export const IOMMU_VEVENTQ_ALLOC = iommufdIoctl(IOMMUFD_CMD.VEVENTQ_ALLOC);
/** IOMMU_HW_QUEUE_ALLOC: the ioctl number that asks iommufd to hand a hardware queue of a vIOMMU (Tegra241 CMDQV) to the guest; its argument is struct iommu_hw_queue_alloc. */
export const IOMMU_HW_QUEUE_ALLOC = iommufdIoctl(IOMMUFD_CMD.HW_QUEUE_ALLOC);
/** IOMMU_IOAS_NOIOMMU_GET_PA: the ioctl number that asks iommufd to in no-IOMMU mode, return the physical address behind a mapped IOVA; its argument is struct iommu_ioas_noiommu_get_pa. */
export const IOMMU_IOAS_NOIOMMU_GET_PA = iommufdIoctl(IOMMUFD_CMD.IOAS_NOIOMMU_GET_PA);

/** U64_MAX: the largest u64; `length` U64_MAX with iova 0 means "everything" in IOAS_UNMAP. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** ULONG_MAX on a 64-bit kernel. */
export const ULONG_MAX = U64_MAX;
/** INT_MAX: the largest s32; the kernel caps counts (e.g. of pinned pages) with it. */
export const INT_MAX = 0x7fff_ffff;

// --- struct layouts -------------------------------------------------------------------------------

/** `struct iommu_destroy` (8 bytes), the argument of IOMMU_DESTROY: `id` is the object to destroy (EBUSY while something still uses it). */
export const iommu_destroy = defineStruct('iommu_destroy', 8, [
  ['size', 'u32'],
  ['id', 'u32'],
] as const);

/** `struct iommu_ioas_alloc` (12 bytes), the argument of IOMMU_IOAS_ALLOC: `flags` must be 0; the new IOAS id comes back in `out_ioas_id`. */
export const iommu_ioas_alloc = defineStruct('iommu_ioas_alloc', 12, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_ioas_id', 'u32'],
] as const);

/** `struct iommu_iova_range` (16 bytes), one IOVA range, `start` to `last` inclusive, as IOAS_IOVA_RANGES and IOAS_ALLOW_IOVAS exchange them. */
export const iommu_iova_range = defineStruct('iommu_iova_range', 16, [
  ['start', 'u64'],
  ['last', 'u64'],
] as const);

/** `struct iommu_ioas_iova_ranges` (32 bytes), the argument of IOMMU_IOAS_IOVA_RANGES: `allowed_iovas` points at `num_iovas` struct iommu_iova_range; the kernel writes the true count back (EMSGSIZE when the array is too short) and the alignment every mapping needs. */
export const iommu_ioas_iova_ranges = defineStruct('iommu_ioas_iova_ranges', 32, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
  ['out_iova_alignment', 'u64'],
] as const);

/** `struct iommu_ioas_allow_iovas` (24 bytes), the argument of IOMMU_IOAS_ALLOW_IOVAS: `num_iovas` struct iommu_iova_range at `allowed_iovas`; automatic IOVA allocation stays inside them (0 ranges lifts the restriction). */
export const iommu_ioas_allow_iovas = defineStruct('iommu_ioas_allow_iovas', 24, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
] as const);

/** IOAS_MAP / MAP_FILE / COPY flag: map at the given `iova` instead of letting the IOAS allocate one. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** IOAS_MAP / MAP_FILE / COPY flag: DMA may write the mapping. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** IOAS_MAP / MAP_FILE / COPY flag: DMA may read the mapping. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

/** `struct iommu_ioas_map` (40 bytes), the argument of IOMMU_IOAS_MAP: `length` bytes of user memory at `user_va` mapped at `iova` (in with FIXED_IOVA, out otherwise); `flags` holds IOMMU_IOAS_MAP_*. */
export const iommu_ioas_map = defineStruct('iommu_ioas_map', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['__reserved', 'u32'],
  ['user_va', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
] as const);

/** `struct iommu_ioas_map_file` (40 bytes), the argument of IOMMU_IOAS_MAP_FILE: `length` bytes of memfd `fd` from offset `start` mapped at `iova`; `flags` as for IOAS_MAP. */
export const iommu_ioas_map_file = defineStruct('iommu_ioas_map_file', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['fd', 's32'],
  ['start', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
] as const);

/** `struct iommu_ioas_copy` (40 bytes), the argument of IOMMU_IOAS_COPY: the pages behind `length` bytes at `src_iova` of `src_ioas_id` mapped at `dst_iova` of `dst_ioas_id`; `flags` as for IOAS_MAP (FIXED_IOVA, READABLE, WRITEABLE). */
export const iommu_ioas_copy = defineStruct('iommu_ioas_copy', 40, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dst_ioas_id', 'u32'],
  ['src_ioas_id', 'u32'],
  ['length', 'u64'],
  ['dst_iova', 'u64'],
  ['src_iova', 'u64'],
] as const);

/** `struct iommu_ioas_unmap` (24 bytes), the argument of IOMMU_IOAS_UNMAP: `iova` and `length` must cover whole areas; the bytes unmapped come back in `length`. */
export const iommu_ioas_unmap = defineStruct('iommu_ioas_unmap', 24, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
] as const);

/** IOMMU_OPTION id (iommufd-wide): how pinned pages are charged: 0 to the user's RLIMIT_MEMLOCK, 1 to the process (the mm's pinned_vm). */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/** IOMMU_OPTION id (per IOAS): 1 (the default) lets mappings use huge IOPTEs, 0 forces PAGE_SIZE ones. */
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** IOMMU_OPTION `op`: store `val64`. */
export const IOMMU_OPTION_OP_SET = 0;
/** IOMMU_OPTION `op`: read the option into `val64`. */
export const IOMMU_OPTION_OP_GET = 1;

/** `struct iommu_option` (24 bytes), the argument of IOMMU_OPTION: `option_id` (IOMMU_OPTION_*), `op` (IOMMU_OPTION_OP_SET or _GET), `object_id` (0 for the iommufd itself) and the 64-bit `val64`. */
export const iommu_option = defineStruct('iommu_option', 24, [
  ['size', 'u32'],
  ['option_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
  ['object_id', 'u32'],
  ['val64', 'u64'],
] as const);

/** IOMMU_VFIO_IOAS `op`: return the compatibility IOAS (creating it when there is none). */
export const IOMMU_VFIO_IOAS_GET = 0;
/** IOMMU_VFIO_IOAS `op`: make `ioas_id` the compatibility IOAS. */
export const IOMMU_VFIO_IOAS_SET = 1;
/** IOMMU_VFIO_IOAS `op`: forget the compatibility IOAS. */
export const IOMMU_VFIO_IOAS_CLEAR = 2;

/** `struct iommu_vfio_ioas` (12 bytes), the argument of IOMMU_VFIO_IOAS: `op` is IOMMU_VFIO_IOAS_GET/SET/CLEAR and `ioas_id` the IOAS in or out. */
export const iommu_vfio_ioas = defineStruct('iommu_vfio_ioas', 12, [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
] as const);

/** HWPT_ALLOC flag: the domain will be the stage 2 of nested domains (and of vIOMMUs). */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** HWPT_ALLOC flag: the domain must be able to track dirty pages (EOPNOTSUPP when the IOMMU cannot). */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** HWPT_ALLOC flag: `fault_id` names a fault object that receives this HWPT's page requests. */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** HWPT_ALLOC flag: the domain may be attached to a PASID of the device. */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** HWPT_ALLOC `data_type`: no vendor data (a paging domain). */
export const IOMMU_HWPT_DATA_NONE = 0;
/** HWPT_ALLOC `data_type`: struct iommu_hwpt_vtd_s1 (a VT-d first stage over a nesting parent). */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** HWPT_ALLOC `data_type`: struct iommu_hwpt_arm_smmuv3 (a guest STE over a vIOMMU). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
/** HWPT_ALLOC `data_type`: struct iommu_hwpt_amd_guest (a guest DTE over a vIOMMU). */
export const IOMMU_HWPT_DATA_AMD_GUEST = 3;

/** `struct iommu_hwpt_alloc` (48 bytes), the argument of IOMMU_HWPT_ALLOC: a HWPT for device `dev_id` over `pt_id` (an IOAS, or a nesting parent HWPT / vIOMMU for a nested one), `flags` IOMMU_HWPT_ALLOC_*, vendor data `data_type`/`data_len`/`data_uptr`, `fault_id` with IOMMU_HWPT_FAULT_ID_VALID; the id comes back in `out_hwpt_id`. */
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

/** GET_HW_INFO flag: `in_data_type` names the payload type wanted (EOPNOTSUPP when the driver has another). */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;
/** GET_HW_INFO type: the driver reports no payload. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** GET_HW_INFO type (same value as NONE): as input, "whatever the driver reports". */
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
/** GET_HW_INFO type: struct iommu_hw_info_vtd. */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** GET_HW_INFO type: struct iommu_hw_info_arm_smmuv3. */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** GET_HW_INFO type: struct iommu_hw_info_tegra241_cmdqv. */
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;
/** GET_HW_INFO type: struct iommu_hw_info_amd. */
export const IOMMU_HW_INFO_TYPE_AMD = 4;

/** GET_HW_INFO `out_capabilities` bit: the IOMMU can track dirty pages. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1n << 0n;
/** GET_HW_INFO `out_capabilities` bit: the device's PASID capability has Execute Permission enabled. */
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1n << 1n;
/** GET_HW_INFO `out_capabilities` bit: the device's PASID capability has Privileged Mode enabled. */
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1n << 2n;
/** GET_HW_INFO `out_capabilities` bit: ATS cannot be used with this device (no capability, or the IOMMU forbids it). */
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1n << 3n;

/** `struct iommu_hw_info` (40 bytes), the argument of IOMMU_GET_HW_INFO: the vendor payload of device `dev_id` copied to `data_uptr` (at most `data_len` bytes, the full length written back), its type in `out_data_type` (or asked for with IOMMU_HW_INFO_FLAG_INPUT_TYPE), IOMMU_HW_CAP_* in `out_capabilities`, the PASID width in `out_max_pasid_log2`. */
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

/** HWPT_SET_DIRTY_TRACKING flag: on (0 turns it off). */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

/** `struct iommu_hwpt_set_dirty_tracking` (16 bytes), the argument of IOMMU_HWPT_SET_DIRTY_TRACKING: `flags` IOMMU_HWPT_DIRTY_TRACKING_ENABLE or 0 for HWPT `hwpt_id`. */
export const iommu_hwpt_set_dirty_tracking = defineStruct('iommu_hwpt_set_dirty_tracking', 16, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['hwpt_id', 'u32'],
  ['__reserved', 'u32'],
] as const);

/** HWPT_GET_DIRTY_BITMAP flag: report the dirty bits without clearing them. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

/** `struct iommu_hwpt_get_dirty_bitmap` (48 bytes), the argument of IOMMU_HWPT_GET_DIRTY_BITMAP: one bit per `page_size` bytes of `length` bytes from `iova` of HWPT `hwpt_id`, written to the user bitmap at `data`; `flags` IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR keeps the dirty bits. */
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

/** HWPT_INVALIDATE `data_type`: entries are struct iommu_hwpt_vtd_s1_invalidate. */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** HWPT_INVALIDATE `data_type` (on a vIOMMU): entries are struct iommu_viommu_arm_smmuv3_invalidate. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

/** `struct iommu_hwpt_invalidate` (32 bytes), the argument of IOMMU_HWPT_INVALIDATE: `entry_num` entries of `entry_len` bytes of type `data_type` at `data_uptr` for HWPT or vIOMMU `hwpt_id`; how many were handled comes back in `entry_num`. */
export const iommu_hwpt_invalidate = defineStruct('iommu_hwpt_invalidate', 32, [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['data_uptr', 'u64'],
  ['data_type', 'u32'],
  ['entry_len', 'u32'],
  ['entry_num', 'u32'],
  ['__reserved', 'u32'],
] as const);

/** iommu_hwpt_pgfault `flags`: `pasid` is meaningful. */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** iommu_hwpt_pgfault `flags`: the last request of its group (a response is due for the group). */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** iommu_hwpt_pgfault `perm`: the device asked to read. */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** iommu_hwpt_pgfault `perm`: the device asked to write. */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** iommu_hwpt_pgfault `perm`: the device asked to execute. */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** iommu_hwpt_pgfault `perm`: a privileged-mode request. */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

/** `struct iommu_hwpt_pgfault` (40 bytes), one page-request record read from a fault fd: `flags` (IOMMU_PGFAULT_FLAGS_*), `dev_id`, `pasid`, `grpid`, `perm` (IOMMU_PGFAULT_PERM_*), the faulting `addr`, the `length` and the `cookie` a response names. */
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

/** Page response code: the fault was handled; the device retries the access. */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** Page response code: the request cannot be satisfied; the device must not retry. */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** `struct iommu_hwpt_page_response` (8 bytes), one response written to a fault fd: the `cookie` of a group and its `code` (IOMMUFD_PAGE_RESP_SUCCESS or _INVALID). */
export const iommu_hwpt_page_response = defineStruct('iommu_hwpt_page_response', 8, [
  ['cookie', 'u32'],
  ['code', 'u32'],
] as const);

/** `struct iommu_fault_alloc` (16 bytes), the argument of IOMMU_FAULT_QUEUE_ALLOC: `flags` must be 0; the fault object id and its fd come back in `out_fault_id` and `out_fault_fd`. */
export const iommu_fault_alloc = defineStruct('iommu_fault_alloc', 16, [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_fault_id', 'u32'],
  ['out_fault_fd', 'u32'],
] as const);

/** VIOMMU_ALLOC `type`: reserved. */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** VIOMMU_ALLOC `type`: an Arm SMMUv3 vIOMMU. */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** VIOMMU_ALLOC `type`: an SMMUv3 vIOMMU with NVIDIA Tegra241 CMDQV queues. */
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

/** `struct iommu_viommu_alloc` (40 bytes), the argument of IOMMU_VIOMMU_ALLOC: a vIOMMU of `type` for device `dev_id` over nesting parent `hwpt_id`, with vendor data at `data_uptr`; the id comes back in `out_viommu_id`. */
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

/** `struct iommu_vdevice_alloc` (24 bytes), the argument of IOMMU_VDEVICE_ALLOC: device `dev_id` known to vIOMMU `viommu_id` as `virt_id` (a StreamID, a guest BDF); the id comes back in `out_vdevice_id`. */
export const iommu_vdevice_alloc = defineStruct('iommu_vdevice_alloc', 24, [
  ['size', 'u32'],
  ['viommu_id', 'u32'],
  ['dev_id', 'u32'],
  ['out_vdevice_id', 'u32'],
  ['virt_id', 'u64'],
] as const);

/** `struct iommu_ioas_change_process` (8 bytes), the argument of IOMMU_IOAS_CHANGE_PROCESS: `__reserved` must be 0. */
export const iommu_ioas_change_process = defineStruct('iommu_ioas_change_process', 8, [
  ['size', 'u32'],
  ['__reserved', 'u32'],
] as const);

/** iommufd_vevent_header `flags`: events were dropped before this one (the queue was full). */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
/** VEVENTQ_ALLOC `type`: reserved. */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** VEVENTQ_ALLOC `type`: SMMUv3 events (struct iommu_vevent_arm_smmuv3). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** VEVENTQ_ALLOC `type`: Tegra241 CMDQV errors (struct iommu_vevent_tegra241_cmdqv). */
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

/** `struct iommufd_vevent_header` (8 bytes), the header before each vEVENT read from a vEVENTQ fd: `flags` (IOMMU_VEVENTQ_FLAG_LOST_EVENTS) and the `sequence` number that exposes lost events. */
export const iommufd_vevent_header = defineStruct('iommufd_vevent_header', 8, [
  ['flags', 'u32'],
  ['sequence', 'u32'],
] as const);

/** `struct iommu_veventq_alloc` (32 bytes), the argument of IOMMU_VEVENTQ_ALLOC: a queue of `type` for vIOMMU `viommu_id` holding at most `veventq_depth` events; the id and fd come back in `out_veventq_id` and `out_veventq_fd`. */
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

/** HW_QUEUE_ALLOC `type`: reserved. */
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
/** HW_QUEUE_ALLOC `type`: a Tegra241 CMDQV virtual command queue. */
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

/** `struct iommu_hw_queue_alloc` (40 bytes), the argument of IOMMU_HW_QUEUE_ALLOC: hardware queue `index` of `type` on vIOMMU `viommu_id`, backed by guest memory at `nesting_parent_iova` of `length` bytes; the id comes back in `out_hw_queue_id`. */
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

/** `struct iommu_ioas_noiommu_get_pa` (40 bytes), the argument of IOMMU_IOAS_NOIOMMU_GET_PA: for a no-IOMMU device doing unsafe DMA: the physical address `out_phys` behind `iova` of `ioas_id`, and in `length` how many bytes from there are physically contiguous (at most the `length` given; `flags` must be 0). */
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

/** iommu_hwpt_vtd_s1 `flags`: supervisor requests allowed (SRE in the PASID entry). */
export const IOMMU_VTD_S1_SRE = 1n << 0n;
/** iommu_hwpt_vtd_s1 `flags`: extended access flag (EAFE) enabled. */
export const IOMMU_VTD_S1_EAFE = 1n << 1n;
/** iommu_hwpt_vtd_s1 `flags`: write protect enable (WPE): supervisor writes honour read-only entries. */
export const IOMMU_VTD_S1_WPE = 1n << 2n;

/** `struct iommu_hwpt_vtd_s1` (24 bytes), IOMMU_HWPT_DATA_VTD_S1: a VT-d first-stage table for a nested HWPT: `flags` (IOMMU_VTD_S1_*), the guest `pgtbl_addr` and its `addr_width` (48 or 57). */
export const iommu_hwpt_vtd_s1 = defineStruct('iommu_hwpt_vtd_s1', 24, [
  ['flags', 'u64'],
  ['pgtbl_addr', 'u64'],
  ['addr_width', 'u32'],
  ['__reserved', 'u32'],
] as const);

/** `struct iommu_hwpt_arm_smmuv3` (16 bytes), IOMMU_HWPT_DATA_ARM_SMMUV3: the guest's stream table entry (two 64-bit words of the STE) for a nested HWPT. */
export const iommu_hwpt_arm_smmuv3 = defineStruct('iommu_hwpt_arm_smmuv3', 16, [['ste', 'u64', 2]] as const);

/** `struct iommu_hwpt_amd_guest` (32 bytes), IOMMU_HWPT_DATA_AMD_GUEST: the guest's device table entry (four 64-bit words) for a nested HWPT. */
export const iommu_hwpt_amd_guest = defineStruct('iommu_hwpt_amd_guest', 32, [['dte', 'u64', 4]] as const);

/** iommu_hw_info_vtd `flags`: erratum 772415 (SPR17): read-only mappings are not allowed in a nesting parent domain (QEMU skips them there). */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

/** `struct iommu_hw_info_vtd` (24 bytes), IOMMU_HW_INFO_TYPE_INTEL_VTD: `flags` (errata), and the CAP_REG and ECAP_REG values of the unit. */
export const iommu_hw_info_vtd = defineStruct('iommu_hw_info_vtd', 24, [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['cap_reg', 'u64'],
  ['ecap_reg', 'u64'],
] as const);

/** iommu_hw_info_arm_smmuv3 `flags`: erratum T264-SMMU-3: a guest must issue each TLBI and CFGI command, with its SYNC, twice. */
export const IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI = 1 << 0;

/** `struct iommu_hw_info_arm_smmuv3` (40 bytes), IOMMU_HW_INFO_TYPE_ARM_SMMUV3: `flags` (errata), SMMU_IDR0..5 as `idr`, SMMU_IIDR and SMMU_AIDR. */
export const iommu_hw_info_arm_smmuv3 = defineStruct('iommu_hw_info_arm_smmuv3', 40, [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['idr', 'u32', 6],
  ['iidr', 'u32'],
  ['aidr', 'u32'],
] as const);

/** `struct iommu_hw_info_amd` (16 bytes), IOMMU_HW_INFO_TYPE_AMD: the Extended Feature Registers EFR and EFR2. */
export const iommu_hw_info_amd = defineStruct('iommu_hw_info_amd', 16, [
  ['efr', 'u64'],
  ['efr2', 'u64'],
] as const);

/** iommu_hwpt_vtd_s1_invalidate `flags`: only leaf entries changed (the invalidation may keep paging-structure caches). */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

/** `struct iommu_hwpt_vtd_s1_invalidate` (24 bytes), IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: one invalidation entry: `addr`, `npages` (U64_MAX for all) and `flags` (IOMMU_VTD_INV_FLAGS_LEAF). */
export const iommu_hwpt_vtd_s1_invalidate = defineStruct('iommu_hwpt_vtd_s1_invalidate', 24, [
  ['addr', 'u64'],
  ['npages', 'u64'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
] as const);

/** `struct iommu_viommu_arm_smmuv3_invalidate` (16 bytes), IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3: one guest command-queue entry (two 64-bit words) for the host to check and issue. */
export const iommu_viommu_arm_smmuv3_invalidate = defineStruct('iommu_viommu_arm_smmuv3_invalidate', 16, [
  ['cmd', 'u64', 2],
] as const);

/** `struct iommu_vevent_arm_smmuv3` (32 bytes), IOMMU_VEVENTQ_TYPE_ARM_SMMUV3: one SMMUv3 event record (four 64-bit words) with the guest's StreamID. */
export const iommu_vevent_arm_smmuv3 = defineStruct('iommu_vevent_arm_smmuv3', 32, [['evt', 'u64', 4]] as const);

// NVIDIA Tegra241 CMDQV (IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
// IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV): layouts only, no vendor model uses them yet.
/** `struct iommu_hw_info_tegra241_cmdqv` (8 bytes), IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV: the CMDQV version and queue counts (layout only). */
export const iommu_hw_info_tegra241_cmdqv = defineStruct('iommu_hw_info_tegra241_cmdqv', 8, [
  ['flags', 'u32'],
  ['version', 'u8'],
  ['log2vcmdqs', 'u8'],
  ['log2vsids', 'u8'],
  ['__reserved', 'u8'],
] as const);

/** `struct iommu_viommu_tegra241_cmdqv` (16 bytes), IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV data: the user mmap offset and length of the VINTF page (layout only). */
export const iommu_viommu_tegra241_cmdqv = defineStruct('iommu_viommu_tegra241_cmdqv', 16, [
  ['out_vintf_mmap_offset', 'u64'],
  ['out_vintf_mmap_length', 'u64'],
] as const);

/** `struct iommu_vevent_tegra241_cmdqv` (16 bytes), IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV: the 128-bit map of logical queues in error (layout only). */
export const iommu_vevent_tegra241_cmdqv = defineStruct('iommu_vevent_tegra241_cmdqv', 16, [['lvcmdq_err_map', 'u64', 2]] as const);

// --- decoded value types ---------------------------------------------------------------------------

/** The decoded value of a struct layout. */
export type ValueOfLayout<L> = L extends {
  /** The layout's all-zero value, whose type is the result. */
  zero(): infer V;
}
  ? V
  : never;

