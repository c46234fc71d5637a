/**
 * @ioasid/virtio-iommu: the virtio-iommu device (virtio device type 23). `createVirtioIommu` builds
 * the device a VMM exposes to its guest, backed by the iommufd uAPI of a host; `VirtioIommuDevice` is
 * the same device translating by itself. Importing this module registers nothing.
 */
export * from './spec.js';
export {
  BASE_CONFIG,
  DEFAULT_FEATURES,
  DEFAULT_PROBE_SIZE,
  LINUX_DRIVER_FEATURES,
  MAX_PROBE_SIZE,
  VirtioIommuConfigError,
  decodeConfig,
  encodeConfig,
  negotiateFeatures,
  resolveConfig,
  type VirtioIommuConfig,
  type VirtioIommuConfigInput,
} from './config.js';
export { MappingStore, type Mapping } from './mappings.js';
export * from './layouts.js';
export {
  OUT_SIZE,
  answerStatus,
  decodeRequest,
  encodeAttach,
  encodeDetach,
  encodeMap,
  encodeProbe,
  encodeUnmap,
  parseProperties,
  type AttachRequest,
  type DetachRequest,
  type MapRequest,
  type ProbeProperty,
  type ProbeRequest,
  type UnmapRequest,
  type VirtioIommuRequest,
  type DecodeResult,
} from './requests.js';
export { FAULT_REASON_NAMES, decodeFault, encodeFault, linuxReasonString, parseFaultLine, renderFaultLine, type DecodedFault, type VirtioIommuFault } from './records.js';
export { VirtioFaultCodec, type BlockingState } from './fault-codec.js';
export {
  MAX_IN_LEN,
  NO_BACKEND,
  QEMU_QUIRKS,
  SPEC_QUIRKS,
  VirtioIommuDevice,
  normalizeRegions,
  type DomainState,
  type EndpointDesc,
  type EndpointTarget,
  type ResvRegion,
  type Translation,
  type VirtioIommuBackend,
  type VirtioIommuDeviceOptions,
  type VirtioIommuQuirks,
} from './device.js';
export { VirtioIommu, createVirtioIommu, ramPieces, type GuestRamRegion, type VirtioIommuOptions } from './vmm.js';
export {
  DESC_SIZE,
  MAX_QUEUE_SIZE,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  DeviceVirtqueue,
  VirtioIommuTransport,
  VirtqueueDriver,
  VirtqueueError,
  layoutAt,
  virtqueueBytes,
  type Chain,
  type GuestMemory,
  type UsedBuffer,
  type VirtqueueLayout,
} from './virtqueue.js';
export { VirtioIommuVendor } from './vendor.js';
export { virtioDecoder, decodeVirtio, parseHexBytes } from './decode.js';
export { VirtioIommuUnit, VirtioPagingDomain, VirtioDomainTable, type SentRequest } from './unit.js';
export { REGISTER_KEYS, VENDOR_ID, decodeUnit, linuxProbe, orderBase2, parseRegisters, profileRegistersOf, type LinuxProbe, type VirtioIommuRegisters } from './registers.js';
export { presets, qemuQ35, qemuArmVirt, qemuQ35Vfio, cloudHypervisor } from './presets.js';

export { plugin } from './plugin.js';
