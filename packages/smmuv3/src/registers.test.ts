import { describe, it, expect } from 'vitest';
import {
  decodeIdr0, encodeIdr0, decodeIdr1, encodeIdr1, decodeIdr5, encodeIdr5, decodeIidr, parseSmmuRegistersHex,
  encodeHwInfoSmmuv3, decodeHwInfoSmmuv3, encodeSmmuRegisters, decodeSmmuRegisters,
} from './registers.js';
import { smmuLinuxProbe, smmuNormalizedCaps, smmuHwId } from './features.js';
import { nvidiaGrace, qemuVirtSmmuv3, mmu700Platform, presets } from './presets.js';

const regsOf = (u: { idr: readonly string[]; iidr: string; aidr: string }) => {
  const r = parseSmmuRegistersHex(u);
  if (!r.ok) throw new TypeError(r.error);
  return r.value;
};

describe('ID register fields', () => {
  it('decodes IDR0 bit positions', () => {
    const f = decodeIdr0(0x0d44101a);
    expect(f).toMatchObject({ S1P: 1, S2P: 0, TTF: 2, COHACC: 1, ASID16: 1, VMID16: 1, TTENDIAN: 2, STALL_MODEL: 1, TERM_MODEL: 1, ST_LEVEL: 1 });
    expect(encodeIdr0(f)).toBe(0x0d44101a);
  });
  it('round-trips IDR1/IDR5 and IIDR', () => {
    expect(encodeIdr1(decodeIdr1(0x0a739d10))).toBe(0x0a739d10);
    expect(decodeIdr1(0x0a739d10)).toMatchObject({ SSIDSIZE: 20, SIDSIZE: 16, CMDQS: 19, EVENTQS: 19, PRIQS: 19, ATTR_TYPES_OVR: 1 });
    expect(encodeIdr5(decodeIdr5(0x00100475))).toBe(0x00100475);
    expect(decodeIdr5(0x00100475)).toMatchObject({ STALL_MAX: 0x10, VAX: 1, OAS: 5, GRAN4K: 1, GRAN16K: 1, GRAN64K: 1 });
    expect(decodeIidr(0x4871143b)).toEqual({ Implementer: 0x43b, Revision: 1, Variant: 1, ProductID: 0x487 });
  });
  it('round-trips the whole register file', () => {
    const raw = { idr: [0x080d76bb, 0x0a739d10, 0, 0xc00, 0, 0x75], iidr: 0x4871143b, aidr: 2 };
    const d = decodeSmmuRegisters(raw);
    expect(d.ok && encodeSmmuRegisters(d.value)).toEqual(raw);
    expect(decodeSmmuRegisters({ idr: [1, 2], iidr: 0, aidr: 0 }).ok).toBe(false);
  });
});

describe('Linux probe', () => {
  it('reproduces the real Grace feature mask', () => {
    const p = smmuLinuxProbe(regsOf(nvidiaGrace.units[0]));
    expect(p.ok && p.value.features).toBe(0x001e1fbf);
    expect(p.ok && [p.value.ias, p.value.oas]).toEqual([48, 48]);
  });
  it('QEMU stage-1 model', () => {
    const p = smmuLinuxProbe(regsOf(qemuVirtSmmuv3.units[0]));
    expect(p.ok && p.value.featureNames).toEqual(['2_LVL_STRTAB', 'TT_LE', 'COHERENCY', 'TRANS_S1', 'RANGE_INV', 'BBML2']);
    expect(p.ok && p.value.featureNames.includes('NESTING')).toBe(false);
  });
  it('refuses what the driver refuses', () => {
    const r = regsOf(qemuVirtSmmuv3.units[0]);
    expect(smmuLinuxProbe({ ...r, idr0: { ...r.idr0, S1P: 0 } })).toEqual({ ok: false, error: 'no translation support!' });
    expect(smmuLinuxProbe({ ...r, idr0: { ...r.idr0, TTENDIAN: 1 } })).toEqual({ ok: false, error: 'unknown/unsupported TT endianness!' });
    expect(smmuLinuxProbe({ ...r, idr1: { ...r.idr1, REL: 1 } })).toEqual({ ok: false, error: 'embedded implementation not supported' });
  });
});

describe('normalized caps and HW ID', () => {
  it('MMU-700 r1p1 keeps nesting and dirty tracking', () => {
    const c = smmuNormalizedCaps(regsOf(mmu700Platform.units[0]));
    expect(c).toMatchObject({ vendor: 'smmuv3', version: '3.2', nesting: true, pasidBits: 20, pri: true, ats: true, dirtyTracking: true, rangeInvalidation: true, stall: true });
    expect(c.hostStage?.outputBits).toBe(48);
    expect(c.userStage?.inputBits).toEqual([48]);
    expect(c.features).not.toContain('BTM');
  });
  it('rolls up a HW ID', () => {
    expect(smmuHwId(regsOf(mmu700Platform.units[0]))).toBe(
      'Arm SMMUv3.2 (vendor 0x43b product 0x487), S1+S2, 48-bit IAS, 48-bit OAS, 4K/16K/64K, SSID 20, PRI, ATS, HTTU',
    );
  });
  it('every preset decodes and probes', () => {
    for (const p of presets) for (const u of p.units) expect(smmuLinuxProbe(regsOf(u)).ok).toBe(true);
  });
});

describe('iommu_hw_info_arm_smmuv3', () => {
  it('is 40 bytes LE and round-trips', () => {
    const info = { flags: 1, idr: [1, 2, 3, 4, 5, 6], iidr: 0x4871143b, aidr: 2 };
    const b = encodeHwInfoSmmuv3(info);
    expect(b.byteLength).toBe(40);
    expect(b[8]).toBe(1);
    expect(decodeHwInfoSmmuv3(b)).toEqual({ ok: true, value: info });
    expect(decodeHwInfoSmmuv3(b.subarray(0, 39)).ok).toBe(false);
  });
});
