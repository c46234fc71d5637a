/**
 * The virtio-iommu device type (virtio device ID 23) as the virtio specification defines it: feature
 * bits, `struct virtio_iommu_config`, the request and property layouts, status codes and the fault
 * record. Everything is little-endian; offsets are the specification's. Names follow
 * `include/uapi/linux/virtio_iommu.h`.
 */

export const VIRTIO_ID_IOMMU = 23;
/** Modern virtio-pci device ID: 0x1040 + device type. */
export const VIRTIO_IOMMU_PCI_DEVICE_ID = 0x1040 + VIRTIO_ID_IOMMU;
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;

/** Virtqueue indices. */
export const VIOMMU_REQUEST_VQ = 0;
export const VIOMMU_EVENT_VQ = 1;

// --- feature bits (bit numbers) -------------------------------------------------------------------
export const VIRTIO_IOMMU_F_INPUT_RANGE = 0;
export const VIRTIO_IOMMU_F_DOMAIN_RANGE = 1;
export const VIRTIO_IOMMU_F_MAP_UNMAP = 2;
/** Legacy: unattached endpoints bypass. Superseded by BYPASS_CONFIG; new devices should not offer it. */
export const VIRTIO_IOMMU_F_BYPASS = 3;
export const VIRTIO_IOMMU_F_PROBE = 4;
export const VIRTIO_IOMMU_F_MMIO = 5;
export const VIRTIO_IOMMU_F_BYPASS_CONFIG = 6;
/** Device-independent feature bits this model knows. */
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;

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

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

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
export const VIRTIO_IOMMU_T_ATTACH = 1;
export const VIRTIO_IOMMU_T_DETACH = 2;
export const VIRTIO_IOMMU_T_MAP = 3;
export const VIRTIO_IOMMU_T_UNMAP = 4;
export const VIRTIO_IOMMU_T_PROBE = 5;

export const REQUEST_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_IOMMU_T_ATTACH]: 'ATTACH',
  [VIRTIO_IOMMU_T_DETACH]: 'DETACH',
  [VIRTIO_IOMMU_T_MAP]: 'MAP',
  [VIRTIO_IOMMU_T_UNMAP]: 'UNMAP',
  [VIRTIO_IOMMU_T_PROBE]: 'PROBE',
};

export const VIRTIO_IOMMU_S_OK = 0;
export const VIRTIO_IOMMU_S_IOERR = 1;
export const VIRTIO_IOMMU_S_UNSUPP = 2;
export const VIRTIO_IOMMU_S_DEVERR = 3;
export const VIRTIO_IOMMU_S_INVAL = 4;
export const VIRTIO_IOMMU_S_RANGE = 5;
export const VIRTIO_IOMMU_S_NOENT = 6;
export const VIRTIO_IOMMU_S_FAULT = 7;
export const VIRTIO_IOMMU_S_NOMEM = 8;

export const STATUS_NAMES: readonly string[] = ['OK', 'IOERR', 'UNSUPP', 'DEVERR', 'INVAL', 'RANGE', 'NOENT', 'FAULT', 'NOMEM'];

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

export const VIRTIO_IOMMU_ATTACH_F_BYPASS = 1 << 0;
export const VIRTIO_IOMMU_MAP_F_READ = 1 << 0;
export const VIRTIO_IOMMU_MAP_F_WRITE = 1 << 1;
export const VIRTIO_IOMMU_MAP_F_MMIO = 1 << 2;
export const VIRTIO_IOMMU_MAP_F_MASK = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE | VIRTIO_IOMMU_MAP_F_MMIO;

// --- sizes: the device-readable part (head + fields) and the device-writable part -----------------
export const HEAD_SIZE = 4;
export const TAIL_SIZE = 4;
export const ATTACH_OUT_SIZE = 20;
export const DETACH_OUT_SIZE = 20;
export const MAP_OUT_SIZE = 36;
export const UNMAP_OUT_SIZE = 28;
export const PROBE_OUT_SIZE = 72;

// --- PROBE properties ----------------------------------------------------------------------------
export const VIRTIO_IOMMU_PROBE_T_NONE = 0;
export const VIRTIO_IOMMU_PROBE_T_RESV_MEM = 1;
/**
 * Per-endpoint page size mask: a property of the specification drafts (not in virtio 1.3, nor in
 * Linux, which logs "unknown viommu prop 0x2"). Emitted only with `probePageSizeMask`.
 */
export const VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK = 2;
export const VIRTIO_IOMMU_PROBE_T_MASK = 0xfff;
export const PROBE_PROPERTY_HEAD_SIZE = 4;
/** struct virtio_iommu_probe_resv_mem without its header: subtype, reserved[3], start, end. */
export const RESV_MEM_LENGTH = 20;
/** The draft page-size-mask property without its header: reserved[4], le64 mask. */
export const PAGE_SIZE_MASK_LENGTH = 12;
export const VIRTIO_IOMMU_RESV_MEM_T_RESERVED = 0;
export const VIRTIO_IOMMU_RESV_MEM_T_MSI = 1;

// --- faults --------------------------------------------------------------------------------------
export const VIRTIO_IOMMU_FAULT_R_UNKNOWN = 0;
export const VIRTIO_IOMMU_FAULT_R_DOMAIN = 1;
export const VIRTIO_IOMMU_FAULT_R_MAPPING = 2;
export const VIRTIO_IOMMU_FAULT_F_READ = 1 << 0;
export const VIRTIO_IOMMU_FAULT_F_WRITE = 1 << 1;
/** Only in the Linux uapi header, not in the specification. */
export const VIRTIO_IOMMU_FAULT_F_EXEC = 1 << 2;
export const VIRTIO_IOMMU_FAULT_F_ADDRESS = 1 << 8;
export const FAULT_SIZE = 24;

// --- config --------------------------------------------------------------------------------------
export const CONFIG_SIZE = 40;
export const CONFIG_OFFSET = {
  page_size_mask: 0x00,
  input_range_start: 0x08,
  input_range_end: 0x10,
  domain_range_start: 0x18,
  domain_range_end: 0x1c,
  probe_size: 0x20,
  bypass: 0x24,
} as const;

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const U32_MAX = 0xffff_ffff;

// --- little-endian helpers for the 16-bit ring indices and property headers -----------------------
export function le16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}
export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
