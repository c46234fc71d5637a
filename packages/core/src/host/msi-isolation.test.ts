import { describe, expect, it } from 'vitest';
import { createHost } from './host.js';
import { mockPlugin } from '../testing/mock-vendor.js';

describe('iommufd_device_bind: the selftest mock devices are exempt from the isolated-MSI check', () => {
  it('binds a mock device whose unit says MSIs are not isolated, without the module parameter or a warning', () => {
    const host = createHost({
      plugins: [mockPlugin()],
      profile: { name: 'mock', units: [{ id: 'mock0', vendor: 'mock', registers: {}, msiIsolated: false }], devices: [{ bdf: '0000:00:01.0', unit: 'mock0' }] },
    });
    expect(host.allowUnsafeInterrupts).toBe(false);
    expect(host.units[0].msiIsolated).toBe(false);
    const fd = host.openIommufd();
    const dev = host.device('0000:00:01.0');
    expect(dev.bindIommufd(fd)).toBe(dev.idev?.id);
    expect(host.log.lines.some((l) => l.includes('MSI interrupts'))).toBe(false);
  });
});
