/**
 * __NAME__ plugin for ioasid. Importing it has no side effects: `plugin.register(container)` adds the
 * vendor and its page-table format to the container core gives it (one per host). `decoder` is the
 * optional part that explains values for people (`ioasid decode`).
 */
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '@ioasid/core/driver';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';
import { format } from './pgtable.js';
import { Vendor } from './vendor.js';
import { decoder } from './decode.js';

export const plugin: IommuPlugin = {
  id: VENDOR_ID,
  description: VENDOR_NAME,
  decoder,
  register(container: PluginRegistrar): void {
    container.register(IOMMU_VENDOR, { useValue: new Vendor() });
    container.register(PAGE_TABLE_FORMAT, { useValue: format });
  },
};

export { VENDOR_ID, VENDOR_NAME, FORMAT_ID } from './ids.js';
export { Vendor } from './vendor.js';
export { decoder, decode } from './decode.js';
export { Unit, PagingDomain } from './unit.js';
export { codec, format, layoutFor, FORMAT_PAGE_SIZES } from './pgtable.js';
export { CAP_FIELDS, CAP_RESERVED, capPageSizes, capsFromCap, decodeCap, encodeCap, hwIdOf, type CapFieldName, type CapFields } from './registers.js';
export { decodeUnitRegisters, probeLine, renderProbeLine } from './probe.js';
export {
  FAULT_FIELDS,
  FAULT_REASONS,
  PAGE_REQUEST_FIELDS,
  PAGE_RESPONSE_FIELDS,
  PAGE_RESPONSE_SIZE,
  RECORD_SIZE,
  decodeFaultRecord,
  decodePageRequestRecord,
  decodePageResponseRecord,
  encodeFaultRecord,
  encodePageRequestRecord,
  encodePageResponseRecord,
  type FaultRecord,
  type PageRequestRecord,
  type PageResponseRecord,
} from './records.js';
export { faultCodec } from './fault-codec.js';
export { EMBEDDED_CAP, SERVER_CAP, embeddedPreset, presets, serverPreset } from './presets.js';
