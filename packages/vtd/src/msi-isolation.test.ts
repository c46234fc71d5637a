import { describe, expect, it } from 'vitest';
import { HostProfileError, createHost, type HostProfile } from '@ioasid/core';
import { errCode } from '@ioasid/core/testing';
import { plugin } from './index.js';
import { iommufdCtx, deviceGroup } from '@ioasid/core/internal';

// device.c iommufd_device_bind on VT-d: MSI isolation is the unit's interrupt remapping (ECAP.IR),
// which intel_irq_remapping marks IRQ_DOMAIN_FLAG_ISOLATED_MSI.
const WARNING =
  'MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the "allow_unsafe_interrupts" module parameter to override';
const BDF = '0000:00:02.0';
// Skylake-client dmar1 (ver 1:0): ECAP 0xf050da has IR (bit 3) and SC (bit 7, snoop control).
const CAP = '0xd2008c40660462';
const ECAP_IR = '0xf050da';
const ECAP_NO_IR = '0xf050d2';
const ECAP_NO_IR_NO_SC = '0xf05052';

function profile(ecap: string, extra: { msiIsolated?: boolean; noSnoop?: boolean } = {}): HostProfile {
  const unit = { id: 'dmar0', vendor: 'vtd', registers: { ver: '0x10', cap: CAP, ecap }, ...(extra.msiIsolated === undefined ? {} : { msiIsolated: extra.msiIsolated }) };
  return { name: 'msi', units: [unit], devices: [{ bdf: BDF, unit: 'dmar0', noSnoop: extra.noSnoop ?? false }] };
}

describe('VT-d: iommufd_device_bind refuses a device whose MSIs are not isolated', () => {
  it('binds without the module parameter and without a warning when interrupt remapping is on (ECAP.IR)', () => {
    const host = createHost({ plugins: [plugin], profile: profile(ECAP_IR) });
    expect(host.units[0].msiIsolated).toBe(true);
    const fd = host.openIommufd();
    expect(host.device(BDF).bindIommufd(fd)).toBeGreaterThan(0);
    expect(host.log.lines.some((l) => l.includes('MSI interrupts are not secure'))).toBe(false);
  });

  it('is EPERM without interrupt remapping, with the group unowned and no object id used; the writable parameter then lets it bind with the warning', () => {
    const host = createHost({ plugins: [plugin], profile: profile(ECAP_NO_IR) });
    expect(host.units[0].msiIsolated).toBe(false);
    const fd = host.openIommufd();
    const dev = host.device(BDF);
    const ioas = fd.ioas.alloc();
    expect(errCode(() => dev.bindIommufd(fd))).toBe('EPERM');
    // Refused before iommu_device_claim_dma_owner and before the object exists.
    expect(dev.devId).toBeNull();
    expect(deviceGroup(dev).owner).toBeNull();
    expect(deviceGroup(dev).ownerCount).toBe(0);
    expect(host.log.lines.some((l) => l.includes('MSI interrupts are not secure'))).toBe(false);
    host.allowUnsafeInterrupts = true;
    expect(dev.bindIommufd(fd)).toBe(ioas + 1);
    expect(deviceGroup(dev).owner).toBe(iommufdCtx(fd));
    expect(host.log.lines.filter((l) => l === `vfio-pci ${BDF}: ${WARNING}`)).toHaveLength(1);
  });

  it('takes the profile override over ECAP.IR (a host booted with intremap=off)', () => {
    const host = createHost({ plugins: [plugin], profile: profile(ECAP_IR, { msiIsolated: false }) });
    expect(errCode(() => host.device(BDF).bindIommufd(host.openIommufd()))).toBe('EPERM');
  });

  it('checks cache coherency first: a no-snoop device on a non-coherent unit is EINVAL even with MSIs not isolated', () => {
    const host = createHost({ plugins: [plugin], profile: profile(ECAP_NO_IR_NO_SC, { noSnoop: true }) });
    expect(host.units[0].ops.caps.coherent).toBe(false);
    expect(host.units[0].msiIsolated).toBe(false);
    expect(errCode(() => host.device(BDF).bindIommufd(host.openIommufd()))).toBe('EINVAL');
  });

  it('rejects a msiIsolated that is not a boolean in the profile', () => {
    const bad = { ...profile(ECAP_IR), units: [{ id: 'dmar0', vendor: 'vtd', registers: { ver: '0x10', cap: CAP, ecap: ECAP_IR }, msiIsolated: 'yes' }] } as unknown as HostProfile;
    expect(() => createHost({ plugins: [plugin], profile: bad })).toThrow(HostProfileError);
    expect(() => createHost({ plugins: [plugin], profile: bad })).toThrow('units[0].msiIsolated: expected a boolean');
  });
});
