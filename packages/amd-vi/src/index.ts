/**
 * @ioasid/amd-vi: the AMD-Vi (AMD IOMMU) plugin. Importing this module registers nothing; pass
 * `plugin` to `createHost({ plugins: [plugin], profile })`.
 */
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '@ioasid/core/driver';
import type { HostProfile } from '@ioasid/core';
import { AmdVendor, type AmdVendorOptions } from './vendor.js';
import { amdDecoder } from './decode.js';
import { amdV1, amdV2 } from './pgtable.js';
import { amdPresets, amdPresetProfile } from './presets.js';

/**
 * The AMD-Vi plugin with unit options other than the defaults (the kernel lines' era, the posted
 * series' nested domains on the vIOMMU): `createHost({ plugins: [createAmdViPlugin({ nestedOnViommu: true })] })`.
 */
export function createAmdViPlugin(options: AmdVendorOptions = {}): IommuPlugin {
  return {
    id: 'amd-vi',
    decoder: amdDecoder,
    description: 'AMD-Vi: EFR/EFR2 decoding, v1 and v2 page tables, dirty tracking, event log, PPR log and command buffer, Linux lines',
    register(c: PluginRegistrar): void {
      c.register(IOMMU_VENDOR, { useValue: new AmdVendor(options) });
      c.register(PAGE_TABLE_FORMAT, { useValue: amdV1 });
      c.register(PAGE_TABLE_FORMAT, { useValue: amdV2 });
    },
  };
}

/** The AMD-Vi plugin as mainline's driver behaves: registers the AMD vendor and the v1 and v2 page-table formats into the container it is given. */
export const plugin: IommuPlugin = createAmdViPlugin();

/** Host profiles of real machines (EFR/EFR2 from their boot logs; see presets.ts). */
export const presets: HostProfile[] = amdPresets.map(amdPresetProfile);

export { amdDecoder, decodeAmd } from './decode.js';
export { AmdVendor, type AmdVendorOptions } from './vendor.js';
export { probeAmdLine, completeAmdProbedUnits, type AmdProbedUnit, parseAmdRegisters, decodeAmdUnit } from './probe.js';
export { AmdUnit, AmdPagingDomain, V1_START_LEVELS, type AmdUnitOptions, type AmdUnitRegisters, type AmdViommuLink } from './unit.js';
export { AmdBlockedDomain, AMD_BLOCKED_DOMAIN } from './blocked.js';
export { IvrsAliasTable, parseIvrsAliases, ivrsAliasesToProfile, parseIvhdDumpLine, ivrsAliasesFromDump, devidToBdf, MAX_IVRS_ALIASES, type AmdIvrsAlias, type IvrsAliasProfile, type IvhdDumpEntry } from './ivrs.js';
export { AmdDeviceTable, INITIAL_DTE, CLEAR_DTE, type DteWords, type AmdDevData, type AmdDevDomain, type AmdGcr3Table } from './device-table.js';
export { v1Dte, v1DteFields, gcr3Dte, nestedDte, gcr3Levels, type V1TableInfo, type Gcr3Info, type GuestDteFields } from './dte-build.js';
export { AmdFaultCodec, isAmdIommuFault, eventFlagsFor, type AmdIommuFault, type AmdFaultCodecOptions } from './fault-codec.js';
export { amdV1, amdV2, AMD_V1_FORMAT, AMD_V2_FORMAT, AmdPageTable, walkForeignV2, type AmdTopChange } from './pgtable.js';
export * from './registers.js';
export * from './dte.js';
export * from './nested.js';
export * from './records.js';
export * from './commands.js';
export * from './logs.js';
export { amdPresets, amdPresetProfile, findAmdPreset, amdPresetById, type AmdPreset, type AmdPresetUnit } from './presets.js';
