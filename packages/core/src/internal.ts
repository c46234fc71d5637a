/**
 * @ioasid/core/internal: the engine's moving parts (the IOMMU unit and its IOTLB, bindings, the fault
 * pipeline and its hardware queues, the default host log, the per-fd context and the iommufd objects behind
 * a device), for the benchmarks, fuzzers and tests of this repository that measure or inspect them directly.
 *
 * Not a supported API: these names may change in any release without a major version. Applications and
 * plugins use `@ioasid/core` (the uAPI, the host, devices) and `@ioasid/core/driver` (the plugin contract).
 * The public classes reach their internals only through the accessors below: the members behind them are
 * tagged internal and absent from the published declarations. (No tag may appear in this header: tsc's
 * stripInternal would take it for the first import's and drop that import from the declarations.)
 */
import type { Host } from './host/host.js';
import type { PciDevice } from './host/device.js';
import type { PriFlowControl } from './host/pri.js';
import type { Iommufd } from './iommufd/iommufd.js';
import type { IommufdCtx } from './iommufd/context.js';
import type { DeviceGroup, IommufdDevice } from './iommufd/device.js';
import type { FaultPipeline } from './fault/pipeline.js';
import type { IommufdObject } from './iommufd/objects.js';
import type { Binding, IommuUnit } from './translate/unit.js';
import type { RadixPageTable } from './driver/radix.js';

export { IommuUnit, Binding, TranslateResult, BIND_BLOCKED, BIND_PAGING, BIND_NESTED } from './translate/unit.js';
export { Iotlb } from './translate/iotlb.js';
export { FaultPipeline, ridToBdf, type PipelineStats } from './fault/pipeline.js';
export { HardwareQueue } from './fault/queue.js';
export { RingLog } from './fault/stages.js';
export type { IommufdCtx } from './iommufd/context.js';
export type { DeviceGroup, IommufdDevice } from './iommufd/device.js';
export type { PriFlowControl } from './host/pri.js';

/** The per-file state of an open /dev/iommu (struct iommufd_ctx): object table, process, teardown record. */
export function iommufdCtx(fd: Iommufd): IommufdCtx {
  return fd.ctx;
}

/** The long-term references an object holds (struct iommufd_object's `users`): the table's one plus its dependants'. */
export function objectUsers(obj: IommufdObject): number {
  return obj.users;
}

/** The translation engines of the host's units, in profile order. */
export function hostUnits(host: Host): readonly IommuUnit[] {
  return host.iommuUnits;
}

/** The host's fault pipeline (its hardware queues, groups in flight and counters). */
export function faultPipeline(host: Host): FaultPipeline {
  return host.faults;
}

/** The translation engine of the unit in front of `dev`. */
export function deviceUnit(dev: PciDevice): IommuUnit {
  return dev.unit;
}

/** The iommu group of `dev` (its DMA owner, devices and group-wide attachments). */
export function deviceGroup(dev: PciDevice): DeviceGroup {
  return dev.group;
}

/** The iommufd device object (struct iommufd_device) of `dev` while bound, else null. */
export function iommufdDevice(dev: PciDevice): IommufdDevice | null {
  return dev.idev;
}

/** What the unit uses for (`dev`, `pasid`): blocked, a paging table or a nested one; -1 for the RID. */
export function deviceBinding(dev: PciDevice, pasid?: number): Binding {
  return dev.binding(pasid);
}

/** The PRI flow control of `dev` (credit and group indexes). */
export function devicePri(dev: PciDevice): PriFlowControl {
  return dev.pri;
}

/**
 * Turns the slab paths of a radix table (its walk, and its map and unmap of one entry, over the slab of
 * table memory that holds the root) off or on, so that tests can compare them with the general paths.
 */
export function setRadixSlabPaths(pt: RadixPageTable, on: boolean): void {
  pt.setSlabPaths(on);
}
