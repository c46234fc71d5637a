/** Mock-vendor host profiles shared by the conformance kit's own tests. */
import type { HostProfile } from '../host/profile.js';
import type { ConformanceNestedOptions } from '../testing/conformance.js';
import { IOMMU_HWPT_DATA_MOCK, MOCK_HWPT_DATA_SIZE } from '../testing/mock-vendor.js';

const MSI = [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }];

/** Two mock units, one fully capable (PASID, PRI, nesting, dirty tracking) and one without. */
export const capableMockProfile: HostProfile = {
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

/** One mock unit without PASID, PRI, nesting, dirty tracking, vIOMMU or ATS. */
export const bareMockProfile: HostProfile = {
  name: 'mock, no PASID / PRI / nesting / dirty tracking',
  units: [{ id: 'mock0', vendor: 'mock', registers: { pasidBits: 0, pri: false, dirty: false, nesting: false, viommu: false, ats: false } }],
  devices: [{ bdf: '0000:00:02.0', unit: 'mock0', group: 1 }],
};

/** The mock vendor's nested HWPT data: the guest stage-1 root, translate mode. */
export const mockNestedOptions: ConformanceNestedOptions = {
  dataType: IOMMU_HWPT_DATA_MOCK,
  data: ({ rootGpa }) => {
    const b = new Uint8Array(MOCK_HWPT_DATA_SIZE);
    new DataView(b.buffer).setBigUint64(0, BigInt(rootGpa), true);
    return b;
  },
};
