/**
 * A unit whose host (v1) table is disabled (EFR HATS = 3, amd_iommu_hatdis): mainline makes v2 the
 * default table when the unit has one (init.c early_amd_iommu_init), so a HWPT that asks for nothing
 * in particular gets a v2 domain; dirty tracking and nesting parents stay refused.
 */
import { describe, expect, it } from 'vitest';
import { createHost, type HostProfile } from '@ioasid/core';
import { errCode } from '@ioasid/core/testing';
import { plugin } from './index.js';
import { NEST_EFR } from './__tests__/nest-profile.js';

function hatdisHost(efr: bigint) {
  const profile: HostProfile = {
    name: 'synthetic AMD unit with HATS 3',
    units: [{ id: 'ivhd0', vendor: 'amd-vi', registers: { efr: `0x${efr.toString(16)}`, efr2: '0x8' } }],
    devices: [{ bdf: '0000:0a:00.0', unit: 'ivhd0', group: 1 }],
  };
  const host = createHost({ plugins: [plugin], profile });
  const fd = host.openIommufd();
  const devId = host.device('0000:0a:00.0').bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  return { host, fd, devId, ioas };
}

const HATS_3 = 3n << 10n;

describe('HATS 3 (amd_iommu_hatdis)', () => {
  it('gives a v2 paging domain by default when the unit has GT and GIoSup', () => {
    const { fd, devId, ioas } = hatdisHost(NEST_EFR | HATS_3);
    const hwpt = fd.hwpt.alloc({ devId, ptId: ioas });
    expect(hwpt).toBeGreaterThan(0);
    // The v2 table is sign-extended: the aperture is the lower half of its 48-bit (4-level) space.
    expect(fd.ioas.iovaRanges(ioas).ranges.at(-1)!.last).toBe((1n << 47n) - 1n);
    expect(errCode(() => fd.hwpt.alloc({ devId, ptId: ioas, dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(errCode(() => fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true }))).toBe('EOPNOTSUPP');
  });

  it('refuses every paging domain without a v2 table (PD_MODE_NONE)', () => {
    const noGio = (NEST_EFR | HATS_3) & ~(1n << 48n);
    const { fd, devId, ioas } = hatdisHost(noGio);
    expect(errCode(() => fd.hwpt.alloc({ devId, ptId: ioas }))).toBe('EOPNOTSUPP');
  });
});
