/**
 * @ioasid/smmuv3: the Arm SMMUv3 plugin. Importing this module registers nothing: hand `plugin` to
 * `createHost({ plugins: [plugin], profile })` or to a PluginHost.
 */
import type { IommuPlugin } from '@ioasid/core/driver';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT } from '@ioasid/core/driver';
import type { DeviceProfile, HostProfile } from '@ioasid/core';
import { SmmuV3Vendor } from './vendor.js';
import { smmuDecoder } from './decode.js';
import { armLpaeS1, armLpaeS2 } from './pgtable-lpae.js';
import { presets as smmuPresets, type SmmuPreset } from './presets.js';

/**
 * The SMMUv3 plugin: registers the SMMUv3 vendor and the stage-1 and stage-2 page table formats into the container it
 * is given.
 */
export const plugin: IommuPlugin = {
  id: 'smmuv3',
  description: 'Arm SMMUv3: IDR0-5/IIDR/AIDR decoding, VMSAv8-64 stage 1 and 2 tables, vSMMU nesting, event and PRI queues',
  decoder: smmuDecoder,
  register(c) {
    c.register(IOMMU_VENDOR, { useValue: new SmmuV3Vendor() });
    c.register(PAGE_TABLE_FORMAT, { useValue: armLpaeS1 });
    c.register(PAGE_TABLE_FORMAT, { useValue: armLpaeS2 });
  },
};

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

export { SmmuV3Vendor } from './vendor.js';
export { REGISTER_NAMES, type RegisterName } from './probe.js';
export { smmuDecoder, decodeSmmu } from './decode.js';
export { type ContextFault } from './nested.js';
export { SmmuFaultCodec, eventIdForFailure, eventRecordOfFault, type SmmuFaultCodecOptions } from './fault-codec.js';
export { parseProfileRegisters, profileRegistersOf, type ParsedProfileRegisters } from './probe.js';
export { unitFromLinux, LINUX_FORM_KEYS, type LinuxFormUnit } from './probe.js';
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

// Identification registers (SMMU_IDR0..5, IIDR, AIDR) and the IOMMU_GET_HW_INFO payload.
export {
  IDR0_LAYOUT,
  IDR1_LAYOUT,
  IDR3_LAYOUT,
  IDR5_LAYOUT,
  IIDR_LAYOUT,
  AIDR_LAYOUT,
  decodeIdr0,
  decodeIdr1,
  decodeIdr3,
  decodeIdr5,
  decodeIidr,
  decodeAidr,
  encodeIdr0,
  encodeIdr1,
  encodeIdr3,
  encodeIdr5,
  encodeIidr,
  encodeAidr,
  IDR0_ST_LEVEL,
  IDR0_STALL_MODEL,
  IDR0_TTENDIAN,
  IDR0_HTTU,
  IDR0_TTF,
  IDR5_VAX_52_BIT,
  IIDR_IMPLEMENTER_ARM,
  IIDR_PRODUCTID_ARM_MMU_600,
  IIDR_PRODUCTID_ARM_MMU_700,
  OAS_BITS,
  oasEncoding,
  decodeSmmuRegisters,
  encodeSmmuRegisters,
  parseSmmuRegistersHex,
  archVersion,
  encodeHwInfoSmmuv3,
  decodeHwInfoSmmuv3,
  type Idr0,
  type Idr1,
  type Idr3,
  type Idr5,
  type Iidr,
  type Aidr,
  type SmmuRawRegisters,
  type SmmuRegisters,
  type HwInfoArmSmmuv3,
} from './registers.js';

// What the Linux driver's probe derives from them.
export {
  ARM_SMMU_FEAT,
  ARM_SMMU_OPT,
  smmuLinuxProbe,
  smmuLinuxFeatures,
  smmuNormalizedCaps,
  smmuHwId,
  type ArmSmmuFeature,
  type ArmSmmuOption,
  type LinuxProbeEnv,
  type LinuxSmmuProbe,
} from './features.js';

// Event and PRI queue records, vEVENTs.
export {
  EVTQ_ENT_BYTES,
  PRIQ_ENT_BYTES,
  EVT_ID,
  eventName,
  TRANSLATION_FAULT_IDS,
  FETCH_FAULT_IDS,
  EVTQ_1_CLASS,
  encodeEvent,
  decodeEventWords,
  decodeEvent,
  eventWords,
  linuxDecodeEvent,
  VEVENT_FORWARDED_IDS,
  encodeVEventArmSmmuv3,
  encodePriRequest,
  decodePriRequest,
  isStopMarker,
  PRI_RESP,
  type EventName,
  type SmmuEvent,
  type SmmuEventInit,
  type LinuxDecodedEvent,
  type PriRequest,
  type PriRespName,
} from './records.js';

// Command queue entries and the vSMMU invalidation rules.
export {
  CMDQ_ENT_BYTES,
  CMDQ_OP,
  commandName,
  commandFieldNames,
  encodeCommandWords,
  encodeCommand,
  decodeCommandWords,
  decodeCommand,
  TLBI_TG_LOG2,
  CMDQ_TLBI_RANGE_NUM_MAX,
  tlbiCoverage,
  linuxTlbiRangeChunks,
  ATC_INV_SIZE_ALL,
  atcInvCoverage,
  linuxAtcInvFields,
  CMDQ_RESUME_0_RESP,
  CMDQ_SYNC_0_CS,
  CMDQ_CERROR,
  CMDQ_CERROR_STR,
  cmdqErrorName,
  validateViommuInvalidation,
  type CommandName,
  type CommandScalarField,
  type CommandAddrField,
  type CommandFields,
  type SmmuCommand,
  type TlbiCoverage,
  type TlbiRangeChunk,
  type CmdqErrorName,
  type VsmmuContext,
  type ViommuInvalidationResult,
} from './commands.js';

// Stream table and context descriptors, the guest STE of a nested HWPT.
export {
  STE_BYTES,
  CD_BYTES,
  STE_CFG,
  STE_S1FMT,
  STE_S1DSS,
  STE_EATS,
  STE_STRW,
  STE_SHCFG_INCOMING,
  steCfgName,
  encodeSteWords,
  encodeSte,
  decodeSteWords,
  decodeSte,
  TG0_LOG2,
  TG1_LOG2,
  encodeCdWords,
  encodeCd,
  decodeCdWords,
  decodeCd,
  LINUX_LPAE_MAIR,
  encodeStrtabL1Desc,
  decodeStrtabL1Desc,
  STRTAB_SPLIT,
  encodeCdL1Desc,
  decodeCdL1Desc,
  STE_0_NESTING_ALLOWED,
  STE_1_NESTING_ALLOWED,
  validateNestedSte,
  type SteCfgName,
  type Ste,
  type SteScalarField,
  type SteInit,
  type Cd,
  type CdScalarField,
  type CdInit,
  type StrtabL1Desc,
  type CdL1Desc,
  type NestedSte,
  type NestedSteResult,
} from './ste.js';

// The lines the Linux driver prints, rendered and parsed back.
export {
  linuxEventStr,
  EVENT_CLASS_STR,
  renderEventLines,
  parseEventSummaryLine,
  parseEventDetailLine,
  parseEventLines,
  parseEventLog,
  renderProbeLine,
  parseProbeLine,
  renderQueueAllocLine,
  parseQueueAllocLine,
  parseOptionMaskLine,
  PROBE_MESSAGES,
  renderUnexpectedPriLines,
  parseUnexpectedPriLine,
  renderCmdqErrorLine,
  parseCmdqErrorLine,
  type LogLine,
  type EventLogStyle,
  type RenderEventOptions,
  type EventSummaryLine,
  type EventDetailLine,
  type ParsedEventLog,
  type ProbeLine,
  type QueueName,
  type PriLogFields,
} from './logs.js';

export { armLpaeS1, armLpaeS2, ARM_LPAE_S1_FORMAT, ARM_LPAE_S2_FORMAT } from './pgtable-lpae.js';
