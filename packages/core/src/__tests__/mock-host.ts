import { createHost, type Host } from '../host/host.js';
import { mockPlugin } from '../testing/mock-vendor.js';
import type { HostProfile, DeviceProfile } from '../host/profile.js';
import type { Iommufd } from '../iommufd/iommufd.js';

export const MSI: DeviceProfile['reservedRegions'] = [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }];

export function mockProfile(registers: Record<string, unknown> = {}, extraDevices: DeviceProfile[] = []): HostProfile {
  return {
    name: 'mock host',
    units: [
      { id: 'mock0', vendor: 'mock', registers },
      { id: 'mock1', vendor: 'mock', registers: { pasidBits: 0, pri: false, dirty: false, nesting: false } },
    ],
    devices: [
      { bdf: '0000:00:01.0', unit: 'mock0', group: 1, ats: true, pri: true, pasidBits: 20, reservedRegions: MSI },
      { bdf: '0000:00:02.0', unit: 'mock0', group: 2, pasidBits: 8 },
      { bdf: '0000:00:03.0', unit: 'mock0', group: 3, reservedRegions: MSI },
      { bdf: '0000:00:03.1', unit: 'mock0', group: 3 },
      { bdf: '0000:80:00.0', unit: 'mock1', group: 4 },
      ...extraDevices,
    ],
  };
}

export interface MockFixture {
  host: Host;
  fd: Iommufd;
}

export function mockFixture(registers: Record<string, unknown> = {}): MockFixture {
  const host = createHost({ plugins: [mockPlugin()], profile: mockProfile(registers) });
  return { host, fd: host.openIommufd() };
}

/** Maps `pages` fresh pages filled with a pattern at `iova` and returns the user VA. */
export function mapPattern(f: MockFixture, ioas: number, iova: bigint, pages: number, byte = 0x5a): bigint {
  const va = f.host.process.mmap(pages * 4096);
  f.host.process.poke(va, new Uint8Array(pages * 4096).fill(byte));
  f.fd.ioas.map({ ioasId: ioas, userVa: va, length: BigInt(pages * 4096), iova });
  return va;
}
