/**
 * @ioasid/smmuv3: the Arm SMMUv3 plugin. Importing this module registers nothing: hand `plugin` to
 * `createHost({ plugins: [plugin], profile })` or to a PluginHost.
 */
import type { IommuPlugin } from '@ioasid/core/driver';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT } from '@ioasid/core/driver';
import type { DeviceProfile, HostProfile } from '@ioasid/core';
import { SmmuV3Vendor } from './vendor.js';
import { armLpaeS1, armLpaeS2 } from './pgtable-lpae.js';
import { presets as smmuPresets, type SmmuPreset } from './presets.js';

export const plugin: IommuPlugin = {
  id: 'smmuv3',
  coreApi: '^1.0.0',
  description: 'Arm SMMUv3: IDR0-5/IIDR/AIDR decoding, VMSAv8-64 stage 1 and 2 tables, vSMMU nesting, event and PRI queues',
  register(c) {
    c.register(IOMMU_VENDOR, { useValue: new SmmuV3Vendor() });
    c.register(PAGE_TABLE_FORMAT, { useValue: armLpaeS1 });
    c.register(PAGE_TABLE_FORMAT, { useValue: armLpaeS2 });
  },
};

export const smmuv3 = plugin;

/** A register preset as a host profile: units with raw registers, devices with their StreamIDs. */
export function presetToHostProfile(p: SmmuPreset): HostProfile {
  return {
    name: p.name,
    description: p.description,
    units: p.units.map((u) => ({ id: u.id, vendor: 'smmuv3', registers: { idr: [...u.idr], iidr: u.iidr, aidr: u.aidr } })),
    devices: p.devices.map((d): DeviceProfile => ({
      bdf: d.bdf,
      unit: d.unit,
      group: d.group,
      streamId: d.streamId,
      ...(d.ats !== undefined ? { ats: d.ats } : {}),
      ...(d.pri !== undefined ? { pri: d.pri } : {}),
      ...(d.pasidBits !== undefined ? { pasidBits: d.pasidBits } : {}),
      ...(d.stall !== undefined ? { stall: d.stall } : {}),
      ...(d.reservedRegions ? { reservedRegions: d.reservedRegions.map((r) => ({ ...r })) } : {}),
    })),
  };
}

/** Host profiles of real SMMUv3 machines (see docs/vendors/smmuv3.md for where each value comes from). */
export const presets: HostProfile[] = smmuPresets.map(presetToHostProfile);

export { SmmuV3Vendor, REGISTER_NAMES, type RegisterName } from './vendor.js';
export {
  SmmuUnit,
  SmmuPagingDomain,
  SmmuViommu,
  SmmuNestedDomain,
  linuxGranuleLog2,
  MODEL_QUEUE_SHIFT_MAX,
  type ContextFault,
} from './unit.js';
export { SmmuFaultCodec, eventIdForFailure, eventRecordOfFault, type SmmuFaultCodecOptions } from './faults.js';
export { parseProfileRegisters, profileRegistersOf, type ParsedProfileRegisters } from './raw.js';
export { unitFromLinux, LINUX_FORM_KEYS, type LinuxFormUnit } from './linux-unit.js';
/** The register-level presets behind `presets`. */
export { presets as smmuPresets } from './presets.js';
export {
  qemuVirtSmmuv3,
  qemuVirtSmmuv3Nested,
  ampereAltraMmu600,
  neoverseN1Sdp,
  mmu700Platform,
  nvidiaGrace,
  kunpeng920,
  type SmmuPreset,
  type SmmuPresetUnit,
  type SmmuPresetDevice,
} from './presets.js';
export * from './registers.js';
export * from './events.js';
export * from './commands.js';
export * from './ste.js';
export * from './logs.js';
export { armLpaeS1, armLpaeS2, ARM_LPAE_S1_FORMAT, ARM_LPAE_S2_FORMAT } from './pgtable-lpae.js';
