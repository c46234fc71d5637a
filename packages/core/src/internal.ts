/**
 * @ioasid/core/internal: the engine's moving parts (the IOMMU unit and its IOTLB, bindings, the fault
 * pipeline and its hardware queues, the default host log), for the benchmarks and tools of this repository
 * that measure them directly.
 *
 * Not a supported API: these names may change in any release without a major version. Applications and
 * plugins use `@ioasid/core` (the uAPI, the host, devices) and `@ioasid/core/driver` (the plugin contract).
 */
export { IommuUnit, Binding, TranslateResult, BIND_BLOCKED, BIND_PAGING, BIND_NESTED } from './translate/unit.js';
export { Iotlb } from './translate/iotlb.js';
export { FaultPipeline, ridToBdf, type PipelineStats } from './fault/pipeline.js';
export { HardwareQueue } from './fault/queue.js';
export { RingLog } from './fault/stages.js';
