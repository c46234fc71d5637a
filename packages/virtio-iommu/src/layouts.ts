/**
 * The specification's structs as core struct codecs: field order and widths as `virtio_iommu.h` declares
 * them, every size checked when the module loads. Requests include their tail; the driver writes the
 * part before it (`*_OUT_SIZE` bytes).
 */
import { defineStruct } from '@ioasid/core';

/** Codec of `struct virtio_iommu_req_attach` (24 bytes): head, le32 `domain`, le32 `endpoint`, le32 `flags`, `reserved[4]`, tail. */
export const virtio_iommu_req_attach = defineStruct('virtio_iommu_req_attach', 24, [
  ['type', 'u8'],
  ['head_reserved', 'u8', 3],
  ['domain', 'u32'],
  ['endpoint', 'u32'],
  ['flags', 'u32'],
  ['reserved', 'u32'],
  ['status', 'u8'],
  ['tail_reserved', 'u8', 3],
] as const);

/** Codec of `struct virtio_iommu_req_detach` (24 bytes): head, le32 `domain`, le32 `endpoint`, `reserved[8]`, tail. */
export const virtio_iommu_req_detach = defineStruct('virtio_iommu_req_detach', 24, [
  ['type', 'u8'],
  ['head_reserved', 'u8', 3],
  ['domain', 'u32'],
  ['endpoint', 'u32'],
  ['reserved', 'u8', 8],
  ['status', 'u8'],
  ['tail_reserved', 'u8', 3],
] as const);

/** Codec of `struct virtio_iommu_req_map` (40 bytes): head, le32 `domain`, le64 `virt_start`, `virt_end` (inclusive) and `phys_start`, le32 `flags`, tail. */
export const virtio_iommu_req_map = defineStruct('virtio_iommu_req_map', 40, [
  ['type', 'u8'],
  ['head_reserved', 'u8', 3],
  ['domain', 'u32'],
  ['virt_start', 'u64'],
  ['virt_end', 'u64'],
  ['phys_start', 'u64'],
  ['flags', 'u32'],
  ['status', 'u8'],
  ['tail_reserved', 'u8', 3],
] as const);

/** Codec of `struct virtio_iommu_req_unmap` (32 bytes): head, le32 `domain`, le64 `virt_start` and `virt_end` (inclusive), `reserved[4]`, tail. */
export const virtio_iommu_req_unmap = defineStruct('virtio_iommu_req_unmap', 32, [
  ['type', 'u8'],
  ['head_reserved', 'u8', 3],
  ['domain', 'u32'],
  ['virt_start', 'u64'],
  ['virt_end', 'u64'],
  ['reserved', 'u32'],
  ['status', 'u8'],
  ['tail_reserved', 'u8', 3],
] as const);

/** The device-readable part of a PROBE; the properties (probe_size bytes) and the tail follow. */
export const virtio_iommu_req_probe = defineStruct('virtio_iommu_req_probe', 72, [
  ['type', 'u8'],
  ['head_reserved', 'u8', 3],
  ['endpoint', 'u32'],
  ['reserved', 'u8', 64],
] as const);

/** Codec of the RESV_MEM property `struct virtio_iommu_probe_resv_mem` (24 bytes with its header): `subtype`, `reserved[3]`, le64 `start` and `end` (inclusive). */
export const virtio_iommu_probe_resv_mem = defineStruct('virtio_iommu_probe_resv_mem', 24, [
  ['type', 'u16'],
  ['length', 'u16'],
  ['subtype', 'u8'],
  ['reserved', 'u8', 3],
  ['start', 'u64'],
  ['end', 'u64'],
] as const);

/** Codec of `struct virtio_iommu_fault` (24 bytes), the event-queue record: `reason`, `reserved[3]`, le32 `flags`, `endpoint`, `reserved1`, le64 `address`. */
export const virtio_iommu_fault = defineStruct('virtio_iommu_fault', 24, [
  ['reason', 'u8'],
  ['reserved', 'u8', 3],
  ['flags', 'u32'],
  ['endpoint', 'u32'],
  ['reserved1', 'u32'],
  ['address', 'u64'],
] as const);

/** Codec of `struct virtio_iommu_config` (40 bytes), the ranges split into their start and end fields. */
export const virtio_iommu_config = defineStruct('virtio_iommu_config', 40, [
  ['page_size_mask', 'u64'],
  ['input_range_start', 'u64'],
  ['input_range_end', 'u64'],
  ['domain_range_start', 'u32'],
  ['domain_range_end', 'u32'],
  ['probe_size', 'u32'],
  ['bypass', 'u8'],
  ['reserved', 'u8', 3],
] as const);

/** The draft per-endpoint page-size-mask property (type 2). */
export const virtio_iommu_probe_page_size_mask = defineStruct('virtio_iommu_probe_page_size_mask', 16, [
  ['type', 'u16'],
  ['length', 'u16'],
  ['reserved', 'u8', 4],
  ['mask', 'u64'],
] as const);

/** Split virtqueue descriptor (virtio 1.x "The Virtqueue Descriptor Table"). */
export const virtq_desc = defineStruct('virtq_desc', 16, [
  ['addr', 'u64'],
  ['len', 'u32'],
  ['flags', 'u16'],
  ['next', 'u16'],
] as const);

/** An entry of the used ring. */
export const virtq_used_elem = defineStruct('virtq_used_elem', 8, [
  ['id', 'u32'],
  ['len', 'u32'],
] as const);
