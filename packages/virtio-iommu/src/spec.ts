/**
 * The virtio-iommu device type (virtio device ID 23) as the virtio specification defines it: feature
 * bits, `struct virtio_iommu_config`, the request and property layouts, status codes and the fault
 * record. Everything is little-endian; offsets are the specification's. Names follow
 * `include/uapi/linux/virtio_iommu.h`.
 */

export const VIRTIO_ID_IOMMU = 23;
/** Modern virtio-pci device ID: 0x1040 + device type. */
export const VIRTIO_IOMMU_PCI_DEVICE_ID = 0x1040 + VIRTIO_ID_IOMMU;
/** PCI vendor ID every virtio-pci device carries (0x1af4), the vendor half of the 1af4:1057 pair `lspci -nn` shows for a virtio-iommu. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;

/** Virtqueue indices. */
export const VIOMMU_REQUEST_VQ = 0;
/** Index of the event virtqueue (`eventq`), where the device posts `struct virtio_iommu_fault` records into buffers the driver pre-filled. */
export const VIOMMU_EVENT_VQ = 1;

// --- feature bits (bit numbers) -------------------------------------------------------------------
/** Feature bit 0: `virtio_iommu_config.input_range` is valid; without it the IOVA space is the whole 64-bit range. */
export const VIRTIO_IOMMU_F_INPUT_RANGE = 0;
/** Feature bit 1: `virtio_iommu_config.domain_range` is valid; without it any 32-bit domain ID may be used. */
export const VIRTIO_IOMMU_F_DOMAIN_RANGE = 1;
/** Feature bit 2: MAP and UNMAP requests are available. Linux's driver refuses a device without it (probe returns -ENODEV). */
export const VIRTIO_IOMMU_F_MAP_UNMAP = 2;
/** Legacy: unattached endpoints bypass. Superseded by BYPASS_CONFIG; new devices should not offer it. */
export const VIRTIO_IOMMU_F_BYPASS = 3;
/** Feature bit 4: the PROBE request is available and `virtio_iommu_config.probe_size` sizes its property buffer. */
export const VIRTIO_IOMMU_F_PROBE = 4;
/** Feature bit 5: MAP accepts `VIRTIO_IOMMU_MAP_F_MMIO` (a device-memory mapping, for example an MSI doorbell). */
export const VIRTIO_IOMMU_F_MMIO = 5;
/** Feature bit 6: the config `bypass` byte and `VIRTIO_IOMMU_ATTACH_F_BYPASS` are available; replaces the legacy `VIRTIO_IOMMU_F_BYPASS`. */
export const VIRTIO_IOMMU_F_BYPASS_CONFIG = 6;
/** Device-independent feature bits this model knows. */
export const VIRTIO_F_VERSION_1 = 32;
/** Device-independent feature bit 33: the device's own DMA goes through the platform's IOMMU and address translation. */
export const VIRTIO_F_ACCESS_PLATFORM = 33;

/** Short name of each feature bit this model knows (the `VIRTIO_IOMMU_F_` / `VIRTIO_F_` prefix dropped), keyed by bit number. */
export const FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_IOMMU_F_INPUT_RANGE]: 'INPUT_RANGE',
  [VIRTIO_IOMMU_F_DOMAIN_RANGE]: 'DOMAIN_RANGE',
  [VIRTIO_IOMMU_F_MAP_UNMAP]: 'MAP_UNMAP',
  [VIRTIO_IOMMU_F_BYPASS]: 'BYPASS',
  [VIRTIO_IOMMU_F_PROBE]: 'PROBE',
  [VIRTIO_IOMMU_F_MMIO]: 'MMIO',
  [VIRTIO_IOMMU_F_BYPASS_CONFIG]: 'BYPASS_CONFIG',
  [VIRTIO_F_VERSION_1]: 'VERSION_1',
  [VIRTIO_F_ACCESS_PLATFORM]: 'ACCESS_PLATFORM',
};

/** The 64-bit feature mask with only bit `n` set, for building or testing a virtio feature word. */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** Whether feature bit `n` is set in a 64-bit feature word (offered, accepted or negotiated, as the caller holds it). */
export function hasFeature(features: bigint, n: number): boolean {
  return (features & bit(n)) !== 0n;
}

/** 'VERSION_1 INPUT_RANGE ...' for a feature set; unknown bits as 'bitN'. */
export function featureNames(features: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if (hasFeature(features, i)) out.push(FEATURE_NAMES[i] ?? `bit${i}`);
  return out;
}

// --- request types and statuses ------------------------------------------------------------------
/** Request type 1, `struct virtio_iommu_req_attach`: put an endpoint into a domain (the device creates the domain on first attach). */
export const VIRTIO_IOMMU_T_ATTACH = 1;
/** Request type 2, `struct virtio_iommu_req_detach`: take an endpoint out of its domain; the last detach destroys the domain. */
export const VIRTIO_IOMMU_T_DETACH = 2;
/** Request type 3, `struct virtio_iommu_req_map`: map `[virt_start, virt_end]` of a domain to `phys_start` (needs `VIRTIO_IOMMU_F_MAP_UNMAP`). */
export const VIRTIO_IOMMU_T_MAP = 3;
/** Request type 4, `struct virtio_iommu_req_unmap`: remove every whole mapping inside `[virt_start, virt_end]` (needs `VIRTIO_IOMMU_F_MAP_UNMAP`). */
export const VIRTIO_IOMMU_T_UNMAP = 4;
/** Request type 5, `struct virtio_iommu_req_probe`: ask for an endpoint's properties such as reserved regions (needs `VIRTIO_IOMMU_F_PROBE`). */
export const VIRTIO_IOMMU_T_PROBE = 5;

/** Short name of each request type (`ATTACH`, `MAP`, ...), keyed by `virtio_iommu_req_head.type`. */
export const REQUEST_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_IOMMU_T_ATTACH]: 'ATTACH',
  [VIRTIO_IOMMU_T_DETACH]: 'DETACH',
  [VIRTIO_IOMMU_T_MAP]: 'MAP',
  [VIRTIO_IOMMU_T_UNMAP]: 'UNMAP',
  [VIRTIO_IOMMU_T_PROBE]: 'PROBE',
};

/** Status 0 in `virtio_iommu_req_tail.status`: the request succeeded. */
export const VIRTIO_IOMMU_S_OK = 0;
/** Status 1: virtio transport error. Linux also reports a used length of 0 as this status; both become -EIO. */
export const VIRTIO_IOMMU_S_IOERR = 1;
/** Status 2: the request or one of its options is not supported (Linux: -ENOSYS), for example an endpoint that cannot share a domain. */
export const VIRTIO_IOMMU_S_UNSUPP = 2;
/** Status 3: internal device error (Linux: -EIO). */
export const VIRTIO_IOMMU_S_DEVERR = 3;
/** Status 4: invalid parameters, such as unknown flags, an overlapping MAP or a bypass domain (Linux: -EINVAL). */
export const VIRTIO_IOMMU_S_INVAL = 4;
/** Status 5: parameters out of range, such as a misaligned MAP or an UNMAP that would split a mapping (Linux: -ERANGE). */
export const VIRTIO_IOMMU_S_RANGE = 5;
/** Status 6: the endpoint or domain does not exist (Linux: -ENOENT). */
export const VIRTIO_IOMMU_S_NOENT = 6;
/** Status 7: bad address (Linux: -EFAULT). */
export const VIRTIO_IOMMU_S_FAULT = 7;
/** Status 8: the device ran out of resources (Linux: -ENOMEM). Absent from old drafts of the specification. */
export const VIRTIO_IOMMU_S_NOMEM = 8;

/** Short name of each status (`OK`, `IOERR`, ... `NOMEM`), indexed by `virtio_iommu_req_tail.status`. */
export const STATUS_NAMES: readonly string[] = ['OK', 'IOERR', 'UNSUPP', 'DEVERR', 'INVAL', 'RANGE', 'NOENT', 'FAULT', 'NOMEM'];

/** The short name of a tail status (`'RANGE'`), or `'status N'` for a value the specification does not define. */
export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `status ${status}`;
}

/**
 * The errno the Linux driver turns a status into (virtio-iommu.c viommu_get_req_errno); IOERR, DEVERR
 * and unknown values are EIO.
 */
export function statusErrno(status: number): 'OK' | 'ENOSYS' | 'EINVAL' | 'ERANGE' | 'ENOENT' | 'EFAULT' | 'ENOMEM' | 'EIO' {
  switch (status) {
    case VIRTIO_IOMMU_S_OK:
      return 'OK';
    case VIRTIO_IOMMU_S_UNSUPP:
      return 'ENOSYS';
    case VIRTIO_IOMMU_S_INVAL:
      return 'EINVAL';
    case VIRTIO_IOMMU_S_RANGE:
      return 'ERANGE';
    case VIRTIO_IOMMU_S_NOENT:
      return 'ENOENT';
    case VIRTIO_IOMMU_S_FAULT:
      return 'EFAULT';
    case VIRTIO_IOMMU_S_NOMEM:
      return 'ENOMEM';
    default:
      return 'EIO';
  }
}

/** `virtio_iommu_req_attach.flags` bit 0: the domain is a bypass (identity) domain; needs `VIRTIO_IOMMU_F_BYPASS_CONFIG`. */
export const VIRTIO_IOMMU_ATTACH_F_BYPASS = 1 << 0;
/** `virtio_iommu_req_map.flags` bit 0: the endpoint may read through the mapping. */
export const VIRTIO_IOMMU_MAP_F_READ = 1 << 0;
/** `virtio_iommu_req_map.flags` bit 1: the endpoint may write through the mapping. */
export const VIRTIO_IOMMU_MAP_F_WRITE = 1 << 1;
/** `virtio_iommu_req_map.flags` bit 2: device memory (a memory type, not a permission); only with `VIRTIO_IOMMU_F_MMIO`. */
export const VIRTIO_IOMMU_MAP_F_MMIO = 1 << 2;
/** Every defined MAP flag (0x7, Linux's mask); a MAP with any other bit set is refused with `VIRTIO_IOMMU_S_INVAL`. */
export const VIRTIO_IOMMU_MAP_F_MASK = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE | VIRTIO_IOMMU_MAP_F_MMIO;

// --- sizes: the device-readable part (head + fields) and the device-writable part -----------------
/** Bytes of `struct virtio_iommu_req_head` (u8 `type`, u8 `reserved[3]`) that starts every request. */
export const HEAD_SIZE = 4;
/** Bytes of `struct virtio_iommu_req_tail` (u8 `status`, u8 `reserved[3]`), the device-writable end of every request. */
export const TAIL_SIZE = 4;
/** Device-readable bytes of an ATTACH request: head, `domain`, `endpoint`, `flags`, `reserved[4]` (the tail follows). */
export const ATTACH_OUT_SIZE = 20;
/** Device-readable bytes of a DETACH request: head, `domain`, `endpoint`, `reserved[8]` (the tail follows). */
export const DETACH_OUT_SIZE = 20;
/** Device-readable bytes of a MAP request: head, `domain`, `virt_start`, `virt_end`, `phys_start`, `flags` (the tail follows). */
export const MAP_OUT_SIZE = 36;
/** Device-readable bytes of an UNMAP request: head, `domain`, `virt_start`, `virt_end`, `reserved[4]` (the tail follows). */
export const UNMAP_OUT_SIZE = 28;
/** Device-readable bytes of a PROBE request: head, `endpoint`, `reserved[64]`; the device writes `probe_size` bytes of properties, then the tail. */
export const PROBE_OUT_SIZE = 72;

// --- PROBE properties ----------------------------------------------------------------------------
/** Property type 0: ends the PROBE property list. */
export const VIRTIO_IOMMU_PROBE_T_NONE = 0;
/** Property type 1, `struct virtio_iommu_probe_resv_mem`: an IOVA range of the endpoint the driver must not map (reserved or MSI). */
export const VIRTIO_IOMMU_PROBE_T_RESV_MEM = 1;
/**
 * Per-endpoint page size mask: a property of the specification drafts (not in virtio 1.3, nor in
 * Linux, which logs "unknown viommu prop 0x2"). Emitted only with `probePageSizeMask`.
 */
export const VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK = 2;
/** Mask of the 12-bit `type` in a property header; the top 4 bits of that le16 are reserved. */
export const VIRTIO_IOMMU_PROBE_T_MASK = 0xfff;
/** Bytes of `struct virtio_iommu_probe_property` (le16 `type`, le16 `length`); `length` counts the bytes after this header. */
export const PROBE_PROPERTY_HEAD_SIZE = 4;
/** struct virtio_iommu_probe_resv_mem without its header: subtype, reserved[3], start, end. */
export const RESV_MEM_LENGTH = 20;
/** The draft page-size-mask property without its header: reserved[4], le64 mask. */
export const PAGE_SIZE_MASK_LENGTH = 12;
/** `virtio_iommu_probe_resv_mem.subtype` 0: the range is unusable for MAP. Linux treats unknown subtypes the same way. */
export const VIRTIO_IOMMU_RESV_MEM_T_RESERVED = 0;
/** `virtio_iommu_probe_resv_mem.subtype` 1: the MSI doorbell range, translated by the device without a mapping (Linux: `IOMMU_RESV_MSI`). */
export const VIRTIO_IOMMU_RESV_MEM_T_MSI = 1;

// --- faults --------------------------------------------------------------------------------------
/** `virtio_iommu_fault.reason` 0: internal error or any other cause (Linux logs it as "unknown fault"). */
export const VIRTIO_IOMMU_FAULT_R_UNKNOWN = 0;
/** `virtio_iommu_fault.reason` 1: the endpoint is not attached to a domain (Linux logs "domain fault"). */
export const VIRTIO_IOMMU_FAULT_R_DOMAIN = 1;
/** `virtio_iommu_fault.reason` 2: the address is not mapped or the access lacks permission (Linux logs "page fault"). */
export const VIRTIO_IOMMU_FAULT_R_MAPPING = 2;
/** `virtio_iommu_fault.flags` bit 0: the faulting access was a read. */
export const VIRTIO_IOMMU_FAULT_F_READ = 1 << 0;
/** `virtio_iommu_fault.flags` bit 1: the faulting access was a write. */
export const VIRTIO_IOMMU_FAULT_F_WRITE = 1 << 1;
/** Only in the Linux uapi header, not in the specification. */
export const VIRTIO_IOMMU_FAULT_F_EXEC = 1 << 2;
/** `virtio_iommu_fault.flags` bit 8: `address` holds the faulting IOVA; without it Linux prints no address. */
export const VIRTIO_IOMMU_FAULT_F_ADDRESS = 1 << 8;
/** Bytes of `struct virtio_iommu_fault`: `reason`, `reserved[3]`, `flags`, `endpoint`, `reserved1`, `address`. */
export const FAULT_SIZE = 24;

// --- config --------------------------------------------------------------------------------------
/** Bytes of `struct virtio_iommu_config` in the device-specific configuration space, including the 3 reserved bytes after `bypass`. */
export const CONFIG_SIZE = 40;
/** Byte offset of each field of `struct virtio_iommu_config`. */
export const CONFIG_OFFSET = {
  /** le64; the lowest set bit is the mapping granule. */
  page_size_mask: 0x00,
  /** le64, valid with `VIRTIO_IOMMU_F_INPUT_RANGE`. */
  input_range_start: 0x08,
  /** le64, inclusive. */
  input_range_end: 0x10,
  /** le32, valid with `VIRTIO_IOMMU_F_DOMAIN_RANGE`. */
  domain_range_start: 0x18,
  /** le32, inclusive. */
  domain_range_end: 0x1c,
  /** le32, valid with `VIRTIO_IOMMU_F_PROBE`: bytes of the PROBE property buffer. */
  probe_size: 0x20,
  /** u8, valid with `VIRTIO_IOMMU_F_BYPASS_CONFIG`; the only field the driver may write. */
  bypass: 0x24,
} as const;

/** 2^64 - 1: the end of the IOVA space when `VIRTIO_IOMMU_F_INPUT_RANGE` is absent, and the largest le64 field value. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** 2^32 - 1: the last domain ID when `VIRTIO_IOMMU_F_DOMAIN_RANGE` is absent, and the largest le32 field value. */
export const U32_MAX = 0xffff_ffff;

// --- little-endian helpers for the 16-bit ring indices and property headers -----------------------
/** Reads a little-endian 16-bit value (a ring index or property header field) at byte `off`. */
export function le16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}
/** Writes `v` as a little-endian 16-bit value at byte `off`. */
export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
