import { describe, expect, it } from 'vitest';
import { bitLayout, decodeBitFields, decodeBitFieldsLossless, encodeBitFields, encodeBitFieldsLossless, fieldFits, fieldGet, fieldGet32, fieldPrep, genmask, uncoveredMask } from './bitfield.js';

describe('bit fields (bits.h / bitfield.h)', () => {
  it('GENMASK_ULL matches the literal masks of the kernel headers', () => {
    // GENMASK_ULL(47, 12) is the address field of a 4 KiB-page PTE; GENMASK_ULL(63, 0) is every bit.
    expect(genmask(47, 12)).toBe(0x0000_ffff_ffff_f000n);
    expect(genmask(63, 0)).toBe(0xffff_ffff_ffff_ffffn);
    expect(genmask(0, 0)).toBe(1n);
    expect(genmask(63, 63)).toBe(0x8000_0000_0000_0000n);
  });

  it('FIELD_GET and FIELD_PREP read and place [hi:lo]', () => {
    // CAP_REG 0x00d2008c40660462, worked by hand: bits 12:8 of 0x0462 = 0b00100, bits 21:16 of 0x40660462 = 0x26, bits 2:0 = 2.
    const cap = 0x00d2_008c_4066_0462n;
    expect(fieldGet(cap, 12, 8)).toBe(0b00100n);
    expect(fieldGet(cap, 21, 16)).toBe(0x26n);
    expect(fieldGet(cap, 2, 0)).toBe(2n);
    expect(fieldPrep(0x26n, 21, 16)).toBe(0x26_0000n);
    // Bits above the field are dropped, not carried into the next field.
    expect(fieldPrep(0x1ffn, 7, 0)).toBe(0xffn);
  });

  it('32-bit FIELD_GET handles a full-width field and the top bit', () => {
    expect(fieldGet32(0x8000_0001, 31, 0)).toBe(0x8000_0001);
    expect(fieldGet32(0x8000_0001, 31, 31)).toBe(1);
    expect(fieldGet32(0x0000_0f00, 11, 8)).toBe(0xf);
  });

  it('fieldFits rejects negatives, fractions and values wider than the field', () => {
    expect(fieldFits(15, 3, 0)).toBe(true);
    expect(fieldFits(16, 3, 0)).toBe(false);
    expect(fieldFits(-1, 3, 0)).toBe(false);
    expect(fieldFits(1.5, 3, 0)).toBe(false);
    expect(fieldFits((1n << 64n) - 1n, 63, 0)).toBe(true);
  });

  it('a layout decodes by name and keeps the bits no field covers', () => {
    const layout = [
      { name: 'A', hi: 3, lo: 0 },
      { name: 'B', hi: 15, lo: 8 },
    ] as const;
    expect(decodeBitFields(layout, 0xab_c5n)).toEqual({ A: 5, B: 0xab });
    expect(uncoveredMask(layout)).toBe(0xffff_ffff_ffff_00f0n);
  });

  it('encodeBitFields is the inverse of decodeBitFields and ignores what the layout does not name', () => {
    const layout = [
      { name: 'V', hi: 0, lo: 0 },
      { name: 'MODE', hi: 63, lo: 60 },
      { name: 'PPN', hi: 43, lo: 0 },
    ];
    // MODE 9 in 63:60 and PPN 0x12345 in 43:0, written out by hand.
    expect(encodeBitFields(layout.slice(1), { MODE: 9, PPN: 0x12345, other: 'ignored' })).toBe(0x9000_0000_0001_2345n);
    expect(encodeBitFields(layout.slice(1), { MODE: 9n })).toBe(0x9000_0000_0000_0000n);
    expect(encodeBitFields(layout.slice(1), {})).toBe(0n);
    expect(decodeBitFields(layout.slice(1), 0x9000_0000_0001_2345n)).toEqual({ MODE: 9, PPN: 0x12345 });
    // A value wider than its field is truncated as FIELD_PREP truncates it.
    expect(encodeBitFields([{ name: 'V', hi: 0, lo: 0 }], { V: 3 })).toBe(1n);
  });

  it('lossless decode keeps the uncovered bits in reserved, and encode gives the same word back', () => {
    const layout = bitLayout([
      { name: 'MIN', hi: 3, lo: 0 },
      { name: 'MAX', hi: 7, lo: 4 },
    ]);
    const word = 0x8000_0000_0000_1261n;
    const decoded = decodeBitFieldsLossless(layout, word);
    expect(decoded).toEqual({ MIN: 1, MAX: 6, reserved: 0x8000_0000_0000_1200n });
    expect(encodeBitFieldsLossless(layout, decoded, 'VER')).toEqual({ ok: true, value: word });
    // Bits above 63 are not part of a 64-bit register.
    expect(decodeBitFieldsLossless(layout, (1n << 64n) | 0x21n)).toEqual({ MIN: 1, MAX: 2, reserved: 0n });
  });

  it('lossless encode refuses a value that does not fit and a reserved bit a field covers, naming them', () => {
    const layout = bitLayout([{ name: 'HATS', hi: 11, lo: 10 }]);
    expect(encodeBitFieldsLossless(layout, { HATS: 4 }, 'EFR')).toEqual({ ok: false, error: 'EFR.HATS = 4 does not fit in bits 11:10' });
    expect(encodeBitFieldsLossless(layout, { HATS: 1.5 }, 'EFR').ok).toBe(false);
    expect(encodeBitFieldsLossless(layout, { reserved: 0x400n }, 'EFR')).toEqual({ ok: false, error: 'EFR.reserved 0x400 overlaps named fields' });
    expect(encodeBitFieldsLossless(layout, { reserved: -1n }, 'EFR').ok).toBe(false);
    expect(encodeBitFieldsLossless(layout, {}, 'EFR')).toEqual({ ok: true, value: 0n });
  });
});
