/**
 * RISC-V IOMMU (specification 1.0) plugin for ioasid, modelled on what mainline Linux's
 * drivers/iommu/riscv does with it. Importing it has no side effects: `plugin.register(container)` adds
 * the vendor and the six page-table formats (Sv39/48/57, Sv39x4/48x4/57x4) to the container core gives it.
 */
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '@ioasid/core/driver';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';
import { formats } from './pgtable.js';
import { Vendor } from './vendor.js';
import { riscvDecoder } from './decode.js';

/** The RISC-V IOMMU plugin: pass it to `createHost`. */
export const plugin: IommuPlugin = {
  id: VENDOR_ID,
  decoder: riscvDecoder,
  description: VENDOR_NAME,
  register(container: PluginRegistrar): void {
    container.register(IOMMU_VENDOR, { useValue: new Vendor() });
    for (const f of formats) container.register(PAGE_TABLE_FORMAT, { useValue: f });
  },
};

export { VENDOR_ID, VENDOR_NAME } from './ids.js';
export { Vendor } from './vendor.js';
export { Unit, PagingDomain, MAX_PSCID, LINUX_CQ_ENTRIES, LINUX_FQ_ENTRIES } from './unit.js';
export * from './registers.js';
export { capsFromCap, hwIdOf, decodeUnitRegisters, linuxPageSizes, linuxPagingWidth, PROFILE_REGISTERS } from './probe.js';
export * from './pgtable.js';
export * from './context.js';
export * from './commands.js';
export * from './records.js';
export { faultCodec } from './fault-codec.js';
export * from './logs.js';
export { decodeRiscv, riscvDecoder, DECODE_KINDS } from './decode.js';
export { QEMU_PCI_CAP, QEMU_SYS_CAP, ZDL_RTL_DEFAULT_CAP, presets, qemuPciPreset, qemuSysPreset } from './presets.js';
