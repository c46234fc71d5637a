import { describe, expect, it } from 'vitest';
import { createHost, type HostProfile } from '@ioasid/core';
import { errCode } from '@ioasid/core/testing';
import { plugin, presets } from './index.js';

// On Arm the GICv3 ITS isolates MSIs (IRQ_DOMAIN_FLAG_ISOLATED_MSI), a GICv2m does not.
function bindCode(profile: HostProfile): string {
  const host = createHost({ plugins: [plugin], profile });
  return errCode(() => host.device(profile.devices[0].bdf).bindIommufd(host.openIommufd()));
}

describe('SMMUv3: MSI isolation comes from the GIC', () => {
  it('binds on every preset without allow_unsafe_interrupts (a GICv3 ITS by default)', () => {
    for (const p of presets.filter((q) => q.devices.length > 0)) expect(bindCode(p), p.name).toBe('ok');
  });

  it('is EPERM on a host whose profile says the MSIs are not isolated (a GICv2m)', () => {
    const p = presets.find((q) => q.devices.length > 0)!;
    expect(bindCode({ ...p, units: p.units.map((u) => ({ ...u, msiIsolated: false })) })).toBe('EPERM');
  });
});
