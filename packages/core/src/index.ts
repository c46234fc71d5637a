/**
 * @ioasid/core: the iommufd uAPI and object model, simulated memory, and the host model.
 */
export { PhysicalMemory, FrameAllocator, FrameRuns, PAGE_SHIFT, PAGE_SIZE, MAX_PFN } from './memory/physical.js';
export { HostProcess, MemoryObject, MemFile, HUGE_PAGE_SIZES, PROT_READ, PROT_WRITE, POLLIN, POLLOUT, POLLRDNORM, type FileOps } from './memory/process.js';
export { ERRNO, ERRNO_TEXT, IommufdError, PluginContractError, errnoName, type ErrnoCode } from './uapi/errno.js';
export * as uapi from './uapi/iommufd.js';
export * as vfioUapi from './uapi/vfio.js';
export { defineStruct, StructLayout, type FieldSpec, type StructValue, type FieldLayout, type ScalarType, type ValueOf } from './uapi/struct.js';
export { Iommufd, type MapOptions, type MapFileOptions, type CopyOptions } from './iommufd/iommufd.js';
export { ObjType, IommufdObject } from './iommufd/objects.js';
export type { IovaRange } from './iommufd/io-pagetable.js';
export type { VfioIommuInfo, VfioMapDma, VfioContainer } from './iommufd/vfio-api.js';
export { IommufdAccess, type AccessOps, type AccessRwOptions } from './iommufd/access.js';
export { Host, createHost, HostProfileError, type HostOptions, type HostUnit } from './host/host.js';
export { PciDevice, DmaFault, type DeviceHost, type DmaAddress, type DmaOptions, type DmaReadOptions } from './host/device.js';
export type { ExplainedTranslation, StageTrace } from './translate/explain.js';
export { FaultReader, VEventReader, type VEvent, type PageFaultGroup, type HwInfo, type HwptAllocOptions, type InvalidateOptions } from './iommufd/typed-device.js';
export { FAULT_STAGE, FAULT_TRACE, HOST_LOG, FaultStatistics, type FaultStage, type FaultTrace, type FaultTraceEvent, type HostLog } from './fault/stages.js';
export type { PipelineStats } from './fault/pipeline.js';
export {
  BARE_PROFILE,
  parseBdf,
  parseProfileNumber,
  type HostProfile,
  type CpuProfile,
  type UnitProfile,
  type DeviceProfile,
  type ReservedRegionProfile,
} from './host/profile.js';
