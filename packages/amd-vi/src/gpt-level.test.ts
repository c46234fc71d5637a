/**
 * amd_iommu_gpt_level: Linux builds 5-level v2 (guest / first-stage) tables only when the unit walks
 * them (EFR GATS 1) and the CPU runs 5-level paging (init.c early_amd_iommu_init); with 5-level CPU
 * paging and 4-level v2 tables no device gets PASIDs (amd_iommu_pasid_supported).
 */
import { describe, expect, it } from 'vitest';
import { createHost, uapi, type HostProfile } from '@ioasid/core';
import { createAmdViPlugin, plugin } from './index.js';
import { decodeEfr, gptLevel } from './registers.js';
import { ANY_VIOMMU_TYPE, NEST_EFR, guestDteBytes, nestProfile, viommuAmdData } from './__tests__/nest-profile.js';
import { iommufdCtx } from '@ioasid/core/internal';

/** Nested domains need the posted series' vIOMMU hook (mainline's has none). */
const seriesPlugin = createAmdViPlugin({ nestedOnViommu: true });

/** The nest-capable unit with GATS = 1 (5-level v2 tables), on a CPU with or without 5-level paging. */
function profile(gats: number, fiveLevelPaging?: boolean): HostProfile {
  const efr = (NEST_EFR & ~(3n << 12n)) | (BigInt(gats) << 12n);
  return {
    ...nestProfile,
    ...(fiveLevelPaging === undefined ? {} : { cpu: { fiveLevelPaging } }),
    units: [{ ...nestProfile.units[0], registers: { ...nestProfile.units[0].registers, efr: `0x${efr.toString(16)}` } }],
  };
}

function rig(p: HostProfile) {
  const host = createHost({ plugins: [seriesPlugin], profile: p });
  const fd = host.openIommufd();
  const dev = host.device('0000:0a:00.0');
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  /** The depth of a PASID-capable (v2) domain. */
  const v2Levels = () => {
    const h = fd.hwpt.alloc({ devId, ptId: ioas, pasid: true });
    return (iommufdCtx(fd).objects.peek(h) as unknown as { ops: { pt: { levels: number } } }).ops.pt.levels;
  };
  /** HWPT_ALLOC of a nested domain from a guest DTE with the given GuestPagingMode. */
  const nested = (guestPagingMode: number) => {
    const parent = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const vdata = viommuAmdData();
    const vptr = host.process.mmap(vdata.length);
    host.process.poke(vptr, vdata);
    const viommu = fd.run(uapi.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: devId, type: ANY_VIOMMU_TYPE, hwpt_id: parent, data_len: vdata.length, data_uptr: vptr }).out_viommu_id;
    const bytes = guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 1, GuestPagingMode: guestPagingMode });
    const p = host.process.mmap(bytes.length);
    host.process.poke(p, bytes);
    try {
      fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: viommu, data_type: uapi.IOMMU_HWPT_DATA_AMD_GUEST, data_len: bytes.length, data_uptr: p });
      return 'ok';
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  };
  return { host, fd, dev, devId, v2Levels, nested };
}

describe('AMD-Vi v2 depth: amd_iommu_gpt_level', () => {
  it('is 5 only for a GATS 1 unit on a CPU with 5-level paging', () => {
    const efr = (gats: number) => decodeEfr((NEST_EFR & ~(3n << 12n)) | (BigInt(gats) << 12n));
    expect(gptLevel(efr(1), false)).toBe(4);
    expect(gptLevel(efr(1), true)).toBe(5);
    expect(gptLevel(efr(0), true)).toBe(4);
  });

  it('a GATS 1 unit on the usual 4-level CPU builds 4-level v2 tables and refuses a 5-level guest table', () => {
    // The profile's default: no `cpu`, 4-level paging.
    const r = rig(profile(1));
    expect(r.v2Levels()).toBe(4);
    expect(r.nested(1)).toBe('EOPNOTSUPP');
    expect(r.nested(0)).toBe('ok');
    expect(r.fd.getHwInfo(r.devId).maxPasidLog2).toBeGreaterThan(0);
  });

  it('with 5-level CPU paging the same unit builds 5-level v2 tables and takes a 5-level guest table', () => {
    const r = rig(profile(1, true));
    expect(r.v2Levels()).toBe(5);
    expect(r.nested(1)).toBe('ok');
  });

  it('with 5-level CPU paging a GATS 0 unit gives no device PASIDs (amd_iommu_pasid_supported)', () => {
    const r = rig(profile(0, true));
    expect(r.v2Levels()).toBe(4);
    expect(r.fd.getHwInfo(r.devId).maxPasidLog2).toBe(0);
    const h = r.fd.hwpt.alloc({ devId: r.devId, ptId: r.fd.ioas.alloc(), pasid: true });
    expect(() => r.dev.attachPt(h, { pasid: 1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    // The same unit on a 4-level CPU has them.
    expect(rig(profile(0)).fd.getHwInfo(rig(profile(0)).devId).maxPasidLog2).toBeGreaterThan(0);
  });

  it('refuses a cpu section that is not an object of booleans, naming the field', () => {
    expect(() => createHost({ plugins: [plugin], profile: { ...profile(1), cpu: { fiveLevelPaging: 'yes' as unknown as boolean } } })).toThrow(/cpu\.fiveLevelPaging/);
  });
});
