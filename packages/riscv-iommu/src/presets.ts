/** Host profiles with RISC-V IOMMU units: plain data, for tests, demos and the conformance kit. */
import type { HostProfile } from '@ioasid/core';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';
import { encodeCap } from './registers.js';

/** A server unit: 48-bit IOVA, 52-bit PA, 2M and 1G blocks, dirty tracking, coherent, IR, range invalidation. */
export const SERVER_CAP = encodeCap({ VER_MINOR: 0, VER_MAJOR: 1, IAS: 48, OAS: 52, PS2M: 1, PS1G: 1, AD: 1, COH: 1, IR: 1, RI: 1 });
/** An embedded unit: 39-bit IOVA, 40-bit PA, 2M blocks only, no dirty tracking, not coherent. */
export const EMBEDDED_CAP = encodeCap({ VER_MINOR: 0, VER_MAJOR: 1, IAS: 39, OAS: 40, PS2M: 1, PS1G: 0, AD: 0, COH: 0, IR: 0, RI: 0 });

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export const serverPreset: HostProfile = {
  name: `${VENDOR_NAME} server`,
  description: 'two units, a NIC and an NVMe drive behind the first, a GPU behind the second',
  units: [
    { id: `${VENDOR_ID}0`, vendor: VENDOR_ID, registers: { cap: hex(SERVER_CAP) } },
    { id: `${VENDOR_ID}1`, vendor: VENDOR_ID, registers: { cap: hex(SERVER_CAP) } },
  ],
  devices: [
    { bdf: '0000:01:00.0', unit: `${VENDOR_ID}0`, group: 1, description: 'NIC' },
    { bdf: '0000:02:00.0', unit: `${VENDOR_ID}0`, group: 2, description: 'NVMe drive' },
    { bdf: '0000:81:00.0', unit: `${VENDOR_ID}1`, group: 3, description: 'GPU' },
  ],
};

export const embeddedPreset: HostProfile = {
  name: `${VENDOR_NAME} embedded`,
  description: 'one small unit with one DMA engine',
  units: [{ id: `${VENDOR_ID}0`, vendor: VENDOR_ID, registers: { cap: hex(EMBEDDED_CAP) } }],
  devices: [{ bdf: '0000:00:01.0', unit: `${VENDOR_ID}0`, group: 1, description: 'DMA engine' }],
};

export const presets: readonly HostProfile[] = [serverPreset, embeddedPreset];
