import { describe, expect, it } from 'vitest';
import {
  EFR2_LAYOUT,
  EFR_LAYOUT,
  amdHwId,
  amdNormalizedCaps,
  decodeEfr,
  decodeEfr2,
  decodeHwInfoAmd,
  encodeEfr,
  encodeEfr2,
  encodeHwInfoAmd,
  gtPprSupported,
  hostLevels,
  linuxFeatureTokens,
  nestParentSupported,
  pasidBits,
  vmmVisibleEfr,
} from './registers.js';
import { amdPresets } from './presets.js';

describe('EFR', () => {
  it('names every bit position once, reserved 27:26 and 30 aside', () => {
    let covered = 0n;
    for (const f of EFR_LAYOUT) {
      const m = ((1n << BigInt(f.hi - f.lo + 1)) - 1n) << BigInt(f.lo);
      expect(covered & m, f.name).toBe(0n);
      covered |= m;
    }
    expect(((1n << 64n) - 1n) & ~covered).toBe((3n << 26n) | (1n << 30n));
  });

  it('decodes each field at its specification position', () => {
    for (const f of EFR_LAYOUT) {
      const max = 2 ** (f.hi - f.lo + 1) - 1;
      const d = decodeEfr(BigInt(max) << BigInt(f.lo)) as unknown as Record<string, number>;
      for (const g of EFR_LAYOUT) expect(d[g.name], `${f.name} set, ${g.name}`).toBe(g.name === f.name ? max : 0);
    }
    const d = decodeEfr(0x58f77ef22294a5an);
    expect([d.PPRSup, d.XTSup, d.NXSup, d.GTSup, d.IASup, d.GASup, d.PCSup]).toEqual([1, 0, 1, 1, 1, 0, 1]);
    expect([d.HATS, d.GATS, d.GLXSup, d.GAMSup, d.PASmax, d.GIoSup, d.EPHSup, d.HDSup]).toEqual([2, 0, 1, 1, 15, 1, 1, 0]);
  });

  it('round-trips encode(decode(x)) with reserved bits kept', () => {
    for (const v of [0x841f77e022094acen, 0xa5bf7320a2294aeen, (1n << 64n) - 1n, 1n << 27n]) {
      const r = encodeEfr(decodeEfr(v));
      expect(r.ok && r.value).toBe(v);
    }
    expect(encodeEfr({ HATS: 4 }).ok).toBe(false);
    expect(encodeEfr({ reserved: 1n }).ok).toBe(false);
  });
});

describe('EFR2', () => {
  it('decodes the fields Linux knows and keeps the rest', () => {
    const d = decodeEfr2(0x1dn);
    expect([d.SEVSNPIOSup, d.GCR3TRPModeSup, d.GAPPIDisSup, d.SNPAVICSup, d.NumIntRemapSup]).toEqual([0, 1, 1, 0, 0]);
    // Bits 0 and 2 have no Linux name.
    expect(d.reserved).toBe(5n);
    for (const f of EFR2_LAYOUT) {
      const r = encodeEfr2({ [f.name]: 1 });
      expect(r.ok && decodeEfr2(r.value)[f.name]).toBe(1);
    }
  });
});

describe('what Linux derives', () => {
  it('host levels from HATS, 0 for the invalid HATS 3', () => {
    expect([0, 1, 2, 3].map((h) => hostLevels(decodeEfr(BigInt(h) << 10n)))).toEqual([4, 5, 6, 0]);
  });

  it('PASID width only with GT; IOPF needs GT, PPR and EPHSup', () => {
    expect(pasidBits(decodeEfr(0xfn << 32n))).toBe(0);
    expect(pasidBits(decodeEfr((0xfn << 32n) | 0x10n))).toBe(16);
    expect(gtPprSupported(decodeEfr(0x12n))).toBe(false);
    expect(gtPprSupported(decodeEfr(0x12n | (1n << 50n)))).toBe(true);
  });

  it('nest parents need GT, GIoSup and EFR2 GCR3 TRP mode', () => {
    const efr = decodeEfr(0x10n | (1n << 48n));
    expect(nestParentSupported(efr, decodeEfr2(0n))).toBe(false);
    expect(nestParentSupported(efr, decodeEfr2(8n))).toBe(true);
  });

  it('feature names per kernel era, "[5]" for the unnamed bit', () => {
    expect(linuxFeatureTokens(0xa5bf7320a2294aeen, 0x1dn, 'v6')).toEqual(['PPR', 'X2APIC', 'NX', '[5]', 'IA', 'GA', 'PC', 'GA_vAPIC', 'SNP']);
    expect(linuxFeatureTokens(0xa5bf7320a2294aeen, 0x1dn, 'v5')).not.toContain('SNP');
    expect(linuxFeatureTokens(0x1n, 0x2n, 'newest')).toEqual(['PreF', 'SEV-TIO']);
    expect(linuxFeatureTokens(0x1n, 0x2n, 'v6')).toEqual(['PreF']);
  });

  it('every preset reproduces the names its kernel printed', () => {
    for (const p of amdPresets) {
      const line = p.printed.find((l) => l.includes('Extended features') && l.includes('): '));
      if (!line) continue;
      const printed = line.slice(line.indexOf('): ') + 3).split(' ');
      const era = p.bootEra === 'v6' ? 'v6' : 'v5';
      expect(linuxFeatureTokens(p.units[0].efr, p.units[0].efr2, era), p.id).toEqual(printed);
    }
  });
});

describe('normalized capabilities and HW ID', () => {
  it('Milan EPYC: 6-level v1 up to 64 bits, dirty tracking, no guest translation', () => {
    const c = amdNormalizedCaps(0x841f77e022094acen, 0n);
    expect(c.hostStage?.inputBits).toEqual([39, 48, 57, 64]);
    expect(c.userStage).toBeNull();
    expect([c.pasidBits, c.pri, c.nesting, c.dirtyTracking, c.ats, c.coherent]).toEqual([0, false, false, true, true, true]);
    expect(c.features).toContain('sev-snp');
    expect(amdHwId(0x841f77e022094acen)).toBe('AMD-Vi IOMMU v2, v1 6-level 64-bit 4K-4T, PPR (no EPHSup: no IOPF), dirty tracking, GA, x2APIC, SNP');
  });

  it('Vermeer client: v2 4-level, PASID 16, IOPF', () => {
    const c = amdNormalizedCaps(0x58f77ef22294a5an);
    expect(c.userStage?.inputBits).toEqual([48]);
    expect([c.pasidBits, c.pri, c.nesting, c.dirtyTracking]).toEqual([16, true, false, false]);
    expect(amdHwId(0x58f77ef22294a5an)).toBe('AMD-Vi IOMMU v2, v1 6-level 64-bit 4K-4T, v2 4-level, PASID 16-bit, PPR');
  });

  it('iommu_hw_info_amd is efr then efr2, little endian', () => {
    const b = encodeHwInfoAmd({ efr: 0x0102030405060708n, efr2: 0x1dn });
    expect([...b]).toEqual([8, 7, 6, 5, 4, 3, 2, 1, 0x1d, 0, 0, 0, 0, 0, 0, 0]);
    expect(decodeHwInfoAmd(b)).toEqual({ ok: true, value: { efr: 0x0102030405060708n, efr2: 0x1dn } });
    expect(decodeHwInfoAmd(new Uint8Array(8)).ok).toBe(false);
  });

  it('masks the EFR to what a VMM may use', () => {
    const v = vmmVisibleEfr((1n << 64n) - 1n);
    const d = decodeEfr(v);
    expect([d.GTSup, d.GASup, d.GIoSup, d.PPRSup, d.EPHSup, d.GATS, d.GLXSup, d.PASmax]).toEqual([1, 1, 1, 1, 1, 3, 3, 31]);
    expect([d.HDSup, d.SNPSup, d.XTSup, d.HATS]).toEqual([0, 0, 0, 0]);
  });
});
