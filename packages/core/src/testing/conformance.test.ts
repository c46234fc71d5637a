/**
 * The conformance kit run against the mock vendor: once on a fully capable unit (PRI, PASID, nesting,
 * dirty tracking) and once on a bare one, so that both sides of every capability check run.
 */
import { describeConformance } from './conformance.js';
import { IOMMU_HWPT_DATA_MOCK, MOCK_HWPT_DATA_SIZE, mockPlugin } from './mock-vendor.js';
import type { HostProfile } from '../host/profile.js';

const MSI = [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }];

const capable: HostProfile = {
  name: 'mock, fully capable',
  units: [
    { id: 'mock0', vendor: 'mock', registers: {} },
    { id: 'mock1', vendor: 'mock', registers: { pasidBits: 0, pri: false, dirty: false, nesting: false } },
  ],
  devices: [
    { bdf: '0000:00:02.0', unit: 'mock0', group: 1, ats: true, reservedRegions: MSI },
    { bdf: '0000:00:04.0', unit: 'mock0', group: 2, ats: true, pri: true, pasidBits: 20, reservedRegions: MSI },
    { bdf: '0000:80:00.0', unit: 'mock1', group: 3 },
  ],
};

const bare: HostProfile = {
  name: 'mock, no PASID / PRI / nesting / dirty tracking',
  units: [{ id: 'mock0', vendor: 'mock', registers: { pasidBits: 0, pri: false, dirty: false, nesting: false, viommu: false, ats: false } }],
  devices: [{ bdf: '0000:00:02.0', unit: 'mock0', group: 1 }],
};

describeConformance({
  plugin: mockPlugin(),
  profile: capable,
  device: '0000:00:02.0',
  priDevice: '0000:00:04.0',
  nested: {
    dataType: IOMMU_HWPT_DATA_MOCK,
    data: ({ rootGpa }) => {
      const b = new Uint8Array(MOCK_HWPT_DATA_SIZE);
      new DataView(b.buffer).setBigUint64(0, BigInt(rootGpa), true);
      return b;
    },
  },
});

describeConformance({ plugin: mockPlugin(), profile: bare, device: '0000:00:02.0' });
