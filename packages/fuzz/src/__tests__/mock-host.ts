/** The mock vendor as one more preset (its plugin lives in @ioasid/core/testing, which needs vitest). */
import type { HostProfile } from '@ioasid/core';
import { mockPlugin } from '@ioasid/core/testing';
import { vendorHost, type VendorHost } from '../hosts.js';

const MOCK_PROFILE: HostProfile = {
  name: 'mock',
  units: [{ id: 'mock0', vendor: 'mock', registers: {} }],
  devices: [
    { bdf: '0000:00:01.0', unit: 'mock0', group: 1, ats: true, pri: true, pasidBits: 20, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }] },
    { bdf: '0000:00:02.0', unit: 'mock0', group: 2, pasidBits: 8 },
  ],
};

export function mockHost(): VendorHost {
  return vendorHost('mock', mockPlugin(), MOCK_PROFILE);
}
