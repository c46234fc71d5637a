import { describe, expect, it } from 'vitest';
import { CAP_RESERVED, decodeCap, decodeUnitRegisters, encodeCap, EMBEDDED_CAP, SERVER_CAP, Vendor, presets, probeLine, renderProbeLine, type CapFields } from './index.js';

const SERVER: CapFields = { VER_MINOR: 0, VER_MAJOR: 1, IAS: 48, OAS: 52, PS2M: 1, PS1G: 1, AD: 1, COH: 1, IR: 1, RI: 1 };

describe('CAP', () => {
  it('places every field at its bits', () => {
    expect(encodeCap({ ...SERVER, VER_MAJOR: 0, IAS: 0, OAS: 0, PS2M: 0, PS1G: 0, AD: 0, COH: 0, IR: 0, RI: 0, VER_MINOR: 0xf })).toBe(0xfn);
    expect(SERVER_CAP).toBe(0x3f_d3010n);
    expect(EMBEDDED_CAP).toBe(0x1a_2710n);
  });

  it('decodes each field of a known value', () => {
    const r = decodeCap(0x3f_d3010n);
    if (!r.ok) throw new Error(r.error);
    expect(r.value).toEqual(SERVER);
    const e = decodeCap(EMBEDDED_CAP);
    if (!e.ok) throw new Error(e.error);
    expect([e.value.IAS, e.value.OAS, e.value.PS2M, e.value.PS1G, e.value.AD, e.value.COH]).toEqual([39, 40, 1, 0, 0, 0]);
  });

  it('refuses reserved bits, version 0 and unsupported widths', () => {
    expect(CAP_RESERVED & SERVER_CAP).toBe(0n);
    expect(decodeCap(SERVER_CAP | (1n << 63n))).toEqual({ ok: false, error: 'CAP: reserved bits set (0x8000000000000000)' });
    expect(decodeCap(encodeCap({ ...SERVER, VER_MAJOR: 0 })).ok).toBe(false);
    expect(decodeCap(encodeCap({ ...SERVER, IAS: 57 }))).toEqual({ ok: false, error: 'CAP.IAS: expected 39 or 48, got 57' });
    expect(decodeCap(encodeCap({ ...SERVER, OAS: 31 }))).toEqual({ ok: false, error: 'CAP.OAS: expected 32 to 52, got 31' });
    expect(decodeCap(-1n).ok).toBe(false);
  });

  it('decodes profile registers into capabilities and writes them back normalized', () => {
    const r = decodeUnitRegisters({ cap: '3fd3010' });
    if (!r.ok) throw new Error(r.error);
    expect(r.value.caps.hostStage).toEqual({ inputBits: [48], outputBits: 52, pageSizes: (1n << 12n) | (1n << 21n) | (1n << 30n), accessDirty: true });
    expect([r.value.caps.dirtyTracking, r.value.caps.coherent, r.value.caps.interruptRemapping, r.value.caps.rangeInvalidation]).toEqual([true, true, true, true]);
    expect(r.value.registers[0]).toMatchObject({ name: 'CAP', value: SERVER_CAP, fields: { IAS: 48, OAS: 52 } });
    expect(r.value.profileRegisters).toEqual({ cap: '0x3fd3010' });
    const e = decodeUnitRegisters({ cap: EMBEDDED_CAP });
    if (!e.ok) throw new Error(e.error);
    expect(e.value.caps.hostStage?.pageSizes).toBe((1n << 12n) | (1n << 21n));
    expect(e.value.caps.dirtyTracking).toBe(false);
  });

  it('names the register in every refusal', () => {
    expect(decodeUnitRegisters({ cap: '0x3fd3010', ecap: 1 })).toEqual({ ok: false, error: "unknown register 'ecap' (known: cap)" });
    expect(decodeUnitRegisters({})).toEqual({ ok: false, error: "cap: expected a 64-bit number such as '0x3fd3010', got nothing" });
    expect(decodeUnitRegisters({ cap: 'zz' }).ok).toBe(false);
  });
});

describe('probe line', () => {
  it('reads back the line the driver prints, with or without a dmesg timestamp', () => {
    const line = renderProbeLine('__ID__0', SERVER_CAP);
    expect(line).toBe('__ID__ __ID__0: CAP 0x3fd3010');
    expect(probeLine(line)).toEqual({ ok: true, value: { id: '__ID__0', registers: { cap: '0x3fd3010' } } });
    expect(probeLine(`[    0.412345] ${line}`)).toEqual(probeLine(line));
  });

  it('gives the registers of every preset unit back, through the vendor', () => {
    const vendor = new Vendor();
    for (const p of presets) {
      for (const u of p.units) {
        const cap = BigInt(String(u.registers.cap));
        expect(vendor.probeLine(renderProbeLine(u.id, cap))).toEqual({ ok: true, value: { id: u.id, registers: { cap: `0x${cap.toString(16)}` } } });
      }
    }
  });

  it('ignores other lines and refuses a CAP the hardware cannot have', () => {
    expect(probeLine('pci 0000:00:02.0: enabling device')).toBeNull();
    expect(probeLine('__ID__ __ID__0: CAP 0x8000000000000000')).toEqual({ ok: false, error: '__ID__0: CAP: reserved bits set (0x8000000000000000)' });
  });
});
