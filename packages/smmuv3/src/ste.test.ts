import { writeLe64Words } from '@ioasid/core/driver';
import { describe, it, expect } from 'vitest';
import { encodeSte, decodeSte, encodeCd, decodeCd, validateNestedSte, STE_CFG, encodeStrtabL1Desc, decodeStrtabL1Desc, encodeSteWords, encodeCdWords } from './ste.js';

describe('STE and CD', () => {
  it('round-trips an S2 STE', () => {
    const ste = { V: 1, Config: STE_CFG.S2_TRANS, S2VMID: 7, S2T0SZ: 24, S2SL0: 1, S2TG: 0, S2PS: 5, S2AA64: 1, S2PTW: 1, S2R: 1, S2TTB: 0x80000000n, EATS: 1, SHCFG: 1 };
    const d = decodeSte(encodeSte(ste));
    expect(d.ok && d.value).toMatchObject(ste);
    expect(encodeSteWords({ V: 1, Config: STE_CFG.BYPASS })[0]).toBe(0x9n);
  });
  it('round-trips a CD', () => {
    const cd = { T0SZ: 16, TG0: 0, IRGN0: 1, ORGN0: 1, SH0: 3, EPD1: 1, V: 1, IPS: 5, AA64: 1, R: 1, A: 1, ASET: 1, ASID: 0x1234, HA: 1, HD: 1, TTB0: 0x12345000n, MAIR: 0xf40444ffn };
    const d = decodeCd(encodeCd(cd));
    expect(d.ok && d.value).toMatchObject(cd);
  });
  it('L1 descriptor', () => {
    expect(decodeStrtabL1Desc(encodeStrtabL1Desc({ Span: 9, L2Ptr: 0x1000n }))).toEqual({ Span: 9, L2Ptr: 0x1000n });
  });
});

describe('nested STE validation', () => {
  it('accepts an S1 vSTE and strips EATS', () => {
    const w0 = 1n | (5n << 1n) | 0x40000000n | (3n << 59n);
    const w1 = 1n | (1n << 28n);
    const r = validateNestedSte(writeLe64Words([w0, w1]));
    expect(r).toMatchObject({ ok: true, value: { cfg: 's1', enableAts: true, S1CDMax: 3, S1ContextPtr: 0x40000000n, ste: [w0, 1n] } });
  });
  it('V=0 becomes abort', () => {
    expect(validateNestedSte([0n, 0xffn])).toMatchObject({ ok: true, value: { cfg: 'abort', valid: false, ste: [0n, 0n] } });
  });
  it('rejects other bits, configs and EATS values with EIO', () => {
    expect(validateNestedSte([1n | (6n << 1n), 0n])).toMatchObject({ ok: false, error: { errno: 'EIO' } });
    expect(validateNestedSte([1n | (1n << 52n), 0n])).toMatchObject({ ok: false, error: { errno: 'EIO' } });
    expect(validateNestedSte([1n, 1n << 19n])).toMatchObject({ ok: false, error: { errno: 'EIO' } });
    expect(validateNestedSte([1n | (5n << 1n), 2n << 28n])).toMatchObject({ ok: false, error: { errno: 'EIO' } });
    expect(validateNestedSte(new Uint8Array(8))).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
  });
  it('puts CD WXN, UWXN and PAN at bits 36, 37 and 40 of dword 0', () => {
    // SMMUv3 architecture spec, §5.4 CD field descriptions: WXN bit [36], UWXN bit [37], PAN bit [40].
    expect(encodeCdWords({ WXN: 1 })[0]).toBe(1n << 36n);
    expect(encodeCdWords({ UWXN: 1 })[0]).toBe(1n << 37n);
    expect(encodeCdWords({ PAN: 1 })[0]).toBe(1n << 40n);
  });
});
