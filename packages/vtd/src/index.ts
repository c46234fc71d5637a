/**
 * @ioasid/vtd: the Intel VT-d plugin. Importing this module registers nothing; pass `plugin` to
 * `createHost({ plugins: [plugin], profile })`, which calls `register(container)`.
 */
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '@ioasid/core/driver';
import type { HostProfile } from '@ioasid/core';
import { VtdVendor } from './vendor.js';
import { vtdDecoder } from './decode.js';
import { vtdSecondStage } from './pgtable-ss.js';
import { vtdFirstStage } from './pgtable-fs.js';
import { vtdPresetProfile, vtdPresets } from './presets.js';

/**
 * The VT-d plugin: registers the VT-d vendor and the second- and first-stage page table formats into the container it
 * is given.
 */
export const plugin: IommuPlugin = {
  id: 'vtd',
  decoder: vtdDecoder,
  description: 'Intel VT-d: CAP/ECAP decoding, second- and first-stage page tables, nesting, fault recording and page requests',
  register(c: PluginRegistrar): void {
    c.register(IOMMU_VENDOR, { useValue: new VtdVendor() });
    c.register(PAGE_TABLE_FORMAT, { useValue: vtdSecondStage });
    c.register(PAGE_TABLE_FORMAT, { useValue: vtdFirstStage });
  },
};

/** Host profiles of real machines (values from real dmesg output; sources in presets.ts). */
export const presets: HostProfile[] = vtdPresets.map(vtdPresetProfile);

export { VtdVendor, type VtdVendorOptions } from './vendor.js';
export { type VtdRawRegisters, probeVtdLine, parseVtdRegisters, decodeVtdUnit } from './probe.js';
export { vtdDecoder, decodeVtd, renderPrqDescriptor } from './decode.js';
export { VTD_PRQ_DEPTH, type VtdUnitOptions } from './unit.js';
export { VtdFaultCodec, vtdFaultReasonFor, frcdToFault, type VtdAttachedStage, type VtdFaultCodecOptions } from './fault-codec.js';

export { vtdSecondStage, VTD_SS_FORMAT } from './pgtable-ss.js';
export { vtdFirstStage, VTD_FS_FORMAT } from './pgtable-fs.js';

export {
  CAP_LAYOUT,
  ECAP_LAYOUT,
  VER_LAYOUT,
  decodeVer,
  encodeVer,
  decodeCap,
  encodeCap,
  decodeEcap,
  encodeEcap,
  vtdVersionString,
  capMgaw,
  capNumDomains,
  capFaultRegOffset,
  capNumFaultRegs,
  sagawWidths,
  sagawLevels,
  ecapIotlbOffset,
  ecapPasidBits,
  smSupported,
  pasidSupported,
  nestedSupported,
  ssadsSupported,
  vtdNormalizedCaps,
  vtdHwId,
  encodeHwInfoVtd,
  decodeHwInfoVtd,
  vtdHwInfoFlags,
  type VtdVer,
  type VtdCap,
  type VtdEcap,
  type VtdCapField,
  type VtdEcapField,
  type VtdCapsOptions,
  type IommuHwInfoVtd,
} from './registers.js';

export {
  FRCD_SIZE,
  encodeFrcd,
  decodeFrcd,
  frcdFaultAddress,
  frcdInterruptIndex,
  frcdForDmaFault,
  frcdForInterruptFault,
  PAGE_REQ_DSC_SIZE,
  PRQ_TYPE_PAGE_REQUEST,
  encodePageReqDsc,
  decodePageReqDsc,
  isStopMarker,
  pageReqPerm,
  pageReqFlags,
  QI_PGRP_RESP_TYPE,
  PAGE_GRP_RESP_DSC_SIZE,
  QI_RESP_SUCCESS,
  QI_RESP_INVALID,
  QI_RESP_FAILURE,
  encodePageGroupResponse,
  decodePageGroupResponse,
  pageGroupResponseFor,
  qiRespCodeFromIommufd,
  type VtdFrcd,
  type PageReqDsc,
  type PageGroupResponseDsc,
} from './records.js';

export {
  DMA_REMAP_FAULT_REASONS,
  IRQ_REMAP_FAULT_REASONS,
  DMA_REMAP_SM_FAULT_REASONS,
  VTD_FR,
  dmarFaultReason,
  type VtdFaultType,
  type VtdFaultReason,
} from './fault-reasons.js';

export {
  formatSourceId,
  renderVtdBootLine,
  renderFaultStatusLine,
  renderDmaFaultLine,
  renderIntrFaultLine,
  renderFrcdLine,
  parseVtdLogLine,
  parseVtdLog,
  type VtdFaultLineFormat,
  type VtdBootLine,
  type VtdDmaFaultLine,
  type VtdIntrFaultLine,
  type VtdFaultStatusLine,
  type VtdLogRecord,
  type VtdLogParse,
  type VtdDmaFault,
} from './logs.js';

export {
  ADDR_WIDTH_4LEVEL,
  ADDR_WIDTH_5LEVEL,
  encodeHwptVtdS1,
  decodeHwptVtdS1,
  vtdNestedDomainAlloc,
  vtdNestedAttachCheck,
  validateHwptVtdS1,
  vtdS1Levels,
  vtdS1WriteProtectEnabled,
  encodeHwptVtdS1Invalidate,
  decodeHwptVtdS1Invalidate,
  decodeHwptVtdS1InvalidateArray,
  type IommuHwptVtdS1,
  type IommuHwptVtdS1Invalidate,
  type VtdS1Invalidation,
  type VtdS1InvalidateScope,
  type VtdS1InvalidateArrayResult,
  type VtdNestedAllocRequest,
  type VtdUnitRegs,
  type VtdS1ValidateOptions,
} from './nested.js';

export { vtdPresets, findVtdPreset, checkVtdPreset, vtdPresetProfile, type VtdPreset, type VtdPresetUnit, type VtdPresetDevice } from './presets.js';
