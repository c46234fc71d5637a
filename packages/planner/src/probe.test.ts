import { describe, expect, it } from 'vitest';
import { probeDmesg } from './probe.js';
import { loadProfile, serializeProfile } from './profile.js';
import { vendors } from './__tests__/test-vendor.js';

const LOG = [
  '[    0.000000] Linux version 6.8.0-45-generic (buildd@lcy02-amd64-080)',
  '[    0.412345] TESTIOMMU vtd dmar0: {"aw":48,"nesting":true,"fs":[12,21,30]}',
  '[Tue Nov 25 12:00:00 2026] TESTIOMMU vtd dmar1: {"aw":39}',
  'Nov 25 12:00:01 host kernel: TESTIOMMU vtd dmar2: {"aw":48,"pag',
  '<6>[    0.9] pci 0000:00:02.0: Adding to iommu group 1',
  '2026-11-25T12:00:02.123456+00:00 host kernel: iommu: Adding device 0000:00:14.0 to group 2',
  '',
  '[    1.000000][    T1] DMAR: Intel(R) Virtualization Technology for Directed I/O',
].join('\n');

describe('probeDmesg', () => {
  const r = probeDmesg(LOG, vendors, { name: 'laptop' });

  it('builds one unit per IOMMU instance with its registers as printed', () => {
    expect(r.profile.name).toBe('laptop');
    expect(r.profile.units).toEqual([
      { id: 'dmar0', vendor: 'vtd', registers: { aw: 48, nesting: true, fs: [12, 21, 30] } },
      { id: 'dmar1', vendor: 'vtd', registers: { aw: 39 } },
    ]);
    expect(r.units.map((u) => [u.id, u.hwId, u.caps?.nesting, u.lines])).toEqual([
      ['dmar0', 'test vtd 48-bit nesting', true, [2]],
      ['dmar1', 'test vtd 39-bit', false, [3]],
    ]);
  });

  it('counts and keeps what it could not use, with the reason for a truncated line', () => {
    expect(r.counts).toEqual({ lines: 8, recognized: 4, rejected: 1, unusable: 3 });
    expect(r.rejected).toEqual([{ line: 4, text: 'Nov 25 12:00:01 host kernel: TESTIOMMU vtd dmar2: {"aw":48,"pag', reason: 'vtd: line truncated: registers are not complete JSON: {"aw":48,"pag' }]);
    expect(r.unusable.map((u) => u.line)).toEqual([1, 4, 8]);
  });

  it('cannot place grouped devices behind one of several units', () => {
    expect(r.profile.devices).toEqual([]);
    expect(r.warnings[0]).toMatch(/^2 device\(s\) in IOMMU groups \(0000:00:02.0, 0000:00:14.0\) were left out/);
  });

  it('places grouped devices when there is a single unit, and the profile loads back', () => {
    const one = probeDmesg('TESTIOMMU smmuv3 smmu0: {"aw":48}\npci 0000:01:00.0: Adding to iommu group 7\n', vendors);
    expect(one.profile.devices).toEqual([{ bdf: '0000:01:00.0', unit: 'smmu0', group: 7 }]);
    expect(loadProfile(serializeProfile(one.profile, 'yaml'), { vendors }).profile).toEqual(one.profile);
  });

  it('merges a unit seen twice and warns when the registers differ', () => {
    const twice = probeDmesg('TESTIOMMU vtd dmar0: {"aw":48}\nTESTIOMMU vtd dmar0: {"aw":39}\n', vendors);
    expect(twice.profile.units).toEqual([{ id: 'dmar0', vendor: 'vtd', registers: { aw: 39 } }]);
    expect(twice.warnings[0]).toBe('dmar0 appears again on line 2 with different registers (several boots in one capture?); keeping the last');
  });

  it('leaves out units whose registers do not decode, and says when nothing was found', () => {
    const bad = probeDmesg('TESTIOMMU vtd dmar0: {"cap":"0x1"}\n', vendors);
    expect(bad.profile.units).toEqual([]);
    expect(bad.units[0].error).toBe('expected "aw" (the address width in bits, a number)');
    expect(bad.warnings.at(-1)).toMatch(/^no IOMMU unit found/);
  });
});
