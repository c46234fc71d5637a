import { describe, expect, it } from 'vitest';
import { uapi } from '@ioasid/core/driver';
import { log2PageSizes } from '@ioasid/core/driver';
import {
  CAP_LAYOUT,
  ECAP_LAYOUT,
  capFaultRegOffset,
  capMgaw,
  capNumDomains,
  capNumFaultRegs,
  decodeCap,
  decodeEcap,
  decodeHwInfoVtd,
  decodeVer,
  ecapIotlbOffset,
  encodeCap,
  encodeEcap,
  encodeHwInfoVtd,
  encodeVer,
  parseHex64,
  sagawLevels,
  vtdErrata772415Applies,
  vtdHwId,
  vtdHwInfoFlags,
  vtdNormalizedCaps,
  vtdVersionString,
} from './registers.js';
import { vtdPresets } from './presets.js';

// Real boot-line values (see presets.ts for the sources).
const GNR = { ver: 0x70n, cap: 0xf9ed008cee780c66n, ecap: 0x3fef9ea6f0efdfn };
const QEMU_CM = { ver: 0x10n, cap: 0xd2008c22260286n, ecap: 0xf00f5an };
const SKL_IGPU = { ver: 0x10n, cap: 0x1c0000c40660462n, ecap: 0x7e3ff0501en };
const ICX = { ver: 0x40n, cap: 0x8ed008c40780466n, ecap: 0x60000f050dfn };

describe('VER_REG', () => {
  it('splits major and minor', () => {
    expect(decodeVer(0x60n)).toMatchObject({ MAX: 6, MIN: 0 });
    expect(decodeVer(0x10)).toMatchObject({ MAX: 1, MIN: 0, reserved: 0n });
    expect(vtdVersionString(0x41n)).toBe('4.1');
  });

  it('encodes back', () => {
    expect(encodeVer({ MAX: 7, MIN: 0 })).toEqual({ ok: true, value: 0x70n });
    expect(encodeVer({ MAX: 16 }).ok).toBe(false);
  });
});

describe('CAP_REG', () => {
  it('decodes a Granite Rapids unit field by field', () => {
    const cap = decodeCap(GNR.cap);
    expect(cap).toMatchObject({
      ND: 6,
      CM: 0,
      SAGAW: 0xc,
      MGAW: 56,
      ZLR: 1,
      FRO: 238,
      SLLPS: 3,
      PSI: 1,
      NFR: 0,
      MAMV: 45,
      DWD: 1,
      DRD: 1,
      FL1GP: 1,
      PI: 1,
      FL5LP: 1,
      ECMDS: 1,
      ESIRTPS: 1,
      ESRTPS: 1,
      reserved: 0n,
    });
    expect(capMgaw(cap)).toBe(57);
    expect(capNumDomains(cap)).toBe(65536);
    expect(capFaultRegOffset(cap)).toBe(0xee0);
    expect(capNumFaultRegs(cap)).toBe(1);
    expect(sagawLevels(cap)).toEqual([4, 5]);
  });

  it('decodes QEMU caching mode and its fault registers at 0x220', () => {
    const cap = decodeCap(QEMU_CM.cap);
    expect(cap.CM).toBe(1);
    expect(cap.SAGAW).toBe(0x2);
    expect(capMgaw(cap)).toBe(39);
    expect(capFaultRegOffset(cap)).toBe(0x220);
    expect(cap.MAMV).toBe(18);
  });

  it('names every bit position once', () => {
    const seen = new Set<number>();
    for (const f of CAP_LAYOUT) {
      for (let b = f.lo; b <= f.hi; b++) {
        expect(seen.has(b)).toBe(false);
        seen.add(b);
      }
    }
  });

  it('rejects a field value that does not fit', () => {
    const r = encodeCap({ ND: 8 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('CAP.ND');
    expect(encodeCap({ reserved: 1n }).ok).toBe(false);
  });

  it('keeps reserved bits so decode → encode is lossless', () => {
    const value = (1n << 57n) | (1n << 38n) | 0x462n;
    const cap = decodeCap(value);
    expect(cap.reserved).toBe((1n << 57n) | (1n << 38n));
    expect(encodeCap(cap)).toEqual({ ok: true, value });
  });
});

describe('ECAP_REG', () => {
  it('decodes a Granite Rapids unit field by field', () => {
    const ecap = decodeEcap(GNR.ecap);
    expect(ecap).toMatchObject({
      C: 1,
      QI: 1,
      DT: 1,
      IR: 1,
      EIM: 1,
      PT: 1,
      SC: 1,
      IRO: 239,
      MHMV: 15,
      MTS: 1,
      NEST: 1,
      PRS: 1,
      SRS: 1,
      NWFS: 1,
      EAFS: 1,
      PSS: 19,
      PASID: 1,
      DIT: 1,
      PDS: 1,
      SMTS: 1,
      SLADS: 1,
      SLTS: 1,
      FLTS: 1,
      SMPWCS: 1,
      RPS: 1,
      TDXIO: 1,
      PMS: 1,
      ADMS: 1,
      RPRIVS: 1,
      ERS: 0,
      VCS: 0,
      reserved: 0n,
    });
    expect(ecapIotlbOffset(ecap)).toBe(0xef0);
  });

  it('decodes the extended-context-era bits of a Skylake graphics unit', () => {
    const ecap = decodeEcap(SKL_IGPU.ecap);
    expect(ecap).toMatchObject({ ECS: 1, DIS: 1, ECS_PASID: 1, PRS: 1, PSS: 15, SMTS: 0, PASID: 0 });
  });

  it('names every bit position once', () => {
    const seen = new Set<number>();
    for (const f of ECAP_LAYOUT) {
      for (let b = f.lo; b <= f.hi; b++) {
        expect(seen.has(b)).toBe(false);
        seen.add(b);
      }
    }
  });

  it('round-trips every preset unit', () => {
    for (const p of vtdPresets) {
      for (const u of p.units) {
        const cap = parseHex64(u.cap);
        const ecap = parseHex64(u.ecap);
        const ver = parseHex64(u.ver);
        if (!cap.ok || !ecap.ok || !ver.ok) throw new Error(`bad preset ${p.id}`);
        expect(encodeCap(decodeCap(cap.value))).toEqual({ ok: true, value: cap.value });
        expect(encodeEcap(decodeEcap(ecap.value))).toEqual({ ok: true, value: ecap.value });
        expect(encodeVer(decodeVer(ver.value))).toEqual({ ok: true, value: ver.value });
      }
    }
  });

  it('builds a register from fields', () => {
    expect(encodeEcap({ QI: 1, IR: 1, EIM: 1, PT: 1, IRO: 0xf, MHMV: 0xf })).toEqual({ ok: true, value: 0xf00f5an });
  });
});

describe('vtdNormalizedCaps', () => {
  it('Granite Rapids: every capability', () => {
    const caps = vtdNormalizedCaps(GNR.ver, GNR.cap, GNR.ecap, { hostAddressWidth: 52 });
    expect(caps.vendor).toBe('vtd');
    expect(caps.version).toBe('7.0');
    expect(caps.hostStage).not.toBeNull();
    expect(caps.hostStage?.inputBits).toEqual([48, 57]);
    expect(caps.hostStage?.outputBits).toBe(52);
    expect(log2PageSizes(caps.hostStage?.pageSizes ?? 0n)).toEqual([12, 21, 30]);
    expect(caps.hostStage?.accessDirty).toBe(true);
    expect(caps.userStage?.inputBits).toEqual([48, 57]);
    expect(log2PageSizes(caps.userStage?.pageSizes ?? 0n)).toEqual([12, 21, 30]);
    expect(caps).toMatchObject({
      pasidBits: 20,
      pri: true,
      stall: false,
      ats: true,
      nesting: true,
      dirtyTracking: true,
      coherent: true,
      cachingMode: false,
      rangeInvalidation: true,
      interruptRemapping: true,
    });
    expect(caps.features).toEqual(expect.arrayContaining(['scalable-mode', 'ecmds', 'perfmon', 'page-walk-coherent']));
  });

  it('QEMU with caching mode: legacy second stage only', () => {
    const caps = vtdNormalizedCaps(QEMU_CM.ver, QEMU_CM.cap, QEMU_CM.ecap);
    expect(caps.hostStage?.inputBits).toEqual([39]);
    expect(caps.hostStage?.outputBits).toBe(39);
    expect(caps.userStage).toBeNull();
    expect(caps).toMatchObject({ cachingMode: true, pasidBits: 0, pri: false, ats: false, nesting: false, coherent: false });
  });

  it('limits SAGAW widths by MGAW, as a client with 4-level tables and MGAW 39 does', () => {
    const caps = vtdNormalizedCaps(SKL_IGPU.ver, SKL_IGPU.cap, SKL_IGPU.ecap);
    expect(caps.hostStage?.inputBits).toEqual([39]);
  });

  it('ignores extended-context PRS/PASID outside scalable mode', () => {
    const caps = vtdNormalizedCaps(SKL_IGPU.ver, SKL_IGPU.cap, SKL_IGPU.ecap);
    expect(caps.pri).toBe(false);
    expect(caps.pasidBits).toBe(0);
    expect(caps.nesting).toBe(false);
  });

  it('uses snoop control, not page-walk coherency, for enforced coherency', () => {
    const igpu = vtdNormalizedCaps(SKL_IGPU.ver, SKL_IGPU.cap, SKL_IGPU.ecap);
    expect(igpu.coherent).toBe(false);
    const icx = vtdNormalizedCaps(ICX.ver, ICX.cap, ICX.ecap);
    expect(icx.coherent).toBe(true);
    expect(icx.features).toContain('page-walk-coherent');
  });

  it('has no second stage in scalable mode without SLTS', () => {
    const ecap = encodeEcap({ ...decodeEcap(GNR.ecap), SLTS: 0 });
    if (!ecap.ok) throw new Error(ecap.error);
    expect(vtdNormalizedCaps(GNR.ver, GNR.cap, ecap.value).hostStage).toBeNull();
  });
});

describe('vtdHwId', () => {
  it('rolls up a Granite Rapids unit', () => {
    expect(vtdHwId(GNR.ver, GNR.cap, GNR.ecap)).toBe(
      'Intel VT-d 7.0, scalable mode, SS 48/57-bit 4K/2M/1G, FS 5-level 1G, PASID 20-bit, PRS, ATS, nesting, dirty tracking, IR x2APIC',
    );
  });

  it('rolls up QEMU intel-iommu', () => {
    expect(vtdHwId(QEMU_CM.ver, QEMU_CM.cap, QEMU_CM.ecap)).toBe(
      'Intel VT-d 1.0, legacy mode, SS 39-bit 4K/2M/1G, caching mode, IR x2APIC',
    );
  });
});

describe('iommu_hw_info_vtd', () => {
  it('is 24 little-endian bytes and decodes back', () => {
    const bytes = encodeHwInfoVtd({ flags: uapi.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, cap: GNR.cap, ecap: GNR.ecap });
    expect(bytes.byteLength).toBe(24);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(bytes.subarray(8, 16))).toEqual([0x66, 0x0c, 0x78, 0xee, 0x8c, 0x00, 0xed, 0xf9]);
    expect(decodeHwInfoVtd(bytes)).toEqual({
      ok: true,
      value: { flags: 1, __reserved: 0, cap_reg: GNR.cap, ecap_reg: GNR.ecap },
    });
  });

  it('rejects a wrong length', () => {
    const r = decodeHwInfoVtd(new Uint8Array(16));
    expect(r.ok).toBe(false);
  });

  it('reports the SPR17 erratum on every unit, as intel_iommu_hw_info() does', () => {
    expect(vtdErrata772415Applies(GNR.cap, GNR.ecap)).toBe(true);
    expect(vtdHwInfoFlags(QEMU_CM.cap, QEMU_CM.ecap)).toBe(uapi.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17);
  });
});

describe('parseHex64', () => {
  it('accepts profile and dmesg spellings', () => {
    expect(parseHex64('0x3fef9ea6f0efdf')).toEqual({ ok: true, value: 0x3fef9ea6f0efdfn });
    expect(parseHex64('f050da')).toEqual({ ok: true, value: 0xf050dan });
    expect(parseHex64('0x1ffffffffffffffff').ok).toBe(false);
    expect(parseHex64('cap').ok).toBe(false);
  });
});
