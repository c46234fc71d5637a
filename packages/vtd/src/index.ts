/**
 * @ioasid/vtd: the Intel VT-d plugin. Importing this module registers nothing; pass `plugin` (or its
 * alias `vtd`) to `createHost({ plugins: [plugin], profile })`, which calls `register(container)`.
 */
import type { DependencyContainer } from 'tsyringe';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin } from '@ioasid/core/driver';
import type { HostProfile } from '@ioasid/core';
import { VtdVendor } from './vendor.js';
import { vtdSecondStage } from './pgtable-ss.js';
import { vtdFirstStage } from './pgtable-fs.js';
import { vtdPresets, type VtdPreset } from './presets.js';

export const plugin: IommuPlugin = {
  id: 'vtd',
  coreApi: '^1.0.0',
  description: 'Intel VT-d: CAP/ECAP decoding, second- and first-stage page tables, nesting, fault recording and page requests',
  register(c: DependencyContainer): void {
    c.register(IOMMU_VENDOR, { useValue: new VtdVendor() });
    c.register(PAGE_TABLE_FORMAT, { useValue: vtdSecondStage });
    c.register(PAGE_TABLE_FORMAT, { useValue: vtdFirstStage });
  },
};

/** The same plugin under its vendor name. */
export const vtd = plugin;

/**
 * A preset as a host profile. The unit's `registers` carry `regBase` too, so that
 * the unit's boot line reproduces the one the machine printed.
 */
export function vtdPresetProfile(p: VtdPreset): HostProfile {
  return {
    name: p.name,
    description: p.description,
    units: p.units.map((u) => ({ id: u.id, vendor: 'vtd', registers: { ver: u.ver, cap: u.cap, ecap: u.ecap, regBase: u.regBase } })),
    devices: p.devices.map((d) => ({
      ...d,
      ...(d.reservedRegions ? { reservedRegions: d.reservedRegions.map((r) => ({ ...r })) } : {}),
    })),
  };
}

/** Host profiles of real machines (values from real dmesg output; sources in presets.ts). */
export const presets: HostProfile[] = vtdPresets.map(vtdPresetProfile);

export { VtdVendor, type VtdVendorOptions, type VtdRawRegisters, decodeVtd, probeVtdLine, parseVtdRegisters, decodeVtdUnit, renderPrqDescriptor } from './vendor.js';
export { VtdUnit, VtdPagingDomain, VtdNestedDomain, vtdSecondStageGeometry, VTD_PRQ_DEPTH, DEFAULT_REG_BASE, type VtdUnitOptions } from './unit.js';
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
  DMA_REMAP_FAULT_REASONS,
  IRQ_REMAP_FAULT_REASONS,
  DMA_REMAP_SM_FAULT_REASONS,
  VTD_FR,
  dmarFaultReason,
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
  type VtdFaultType,
  type VtdFaultReason,
  type VtdFrcd,
  type PageReqDsc,
  type PageGroupResponseDsc,
} from './faults.js';

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
  type NestedResult,
  type IommuHwptVtdS1,
  type IommuHwptVtdS1Invalidate,
  type VtdS1Invalidation,
  type VtdS1InvalidateScope,
  type VtdS1InvalidateArrayResult,
  type VtdNestedAllocRequest,
  type VtdS1ValidateOptions,
} from './nested.js';

export { vtdPresets, findVtdPreset, checkVtdPreset, vtdPresetToHostProfile, type VtdPreset, type VtdPresetUnit, type VtdPresetDevice, type VtdHostProfile } from './presets.js';
