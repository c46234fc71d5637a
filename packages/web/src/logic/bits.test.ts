import { describe, expect, it } from 'vitest';
import { bitSegments } from './bits.js';

describe('bitSegments', () => {
  it('covers every bit once, fields in order from the top, gaps as unnamed runs', () => {
    // VT-d CAP of a real client part: ND bits 2:0 = 2, SAGAW 12:8 = 0x4, MGAW 21:16 = 0x26.
    const cap = 0xd2008c40660462n;
    const segs = bitSegments(cap, 64, [
      { name: 'ND', hi: 2, lo: 0 },
      { name: 'SAGAW', hi: 12, lo: 8 },
      { name: 'MGAW', hi: 21, lo: 16 },
    ]);
    expect(segs.map((s) => [s.name, s.hi, s.lo])).toEqual([
      ['', 63, 22],
      ['MGAW', 21, 16],
      ['', 15, 13],
      ['SAGAW', 12, 8],
      ['', 7, 3],
      ['ND', 2, 0],
    ]);
    expect(segs.find((s) => s.name === 'MGAW')?.value).toBe(0x26n);
    expect(segs.find((s) => s.name === 'SAGAW')?.value).toBe(0x4n);
    expect(segs.find((s) => s.name === 'ND')?.value).toBe(2n);
    const total = segs.reduce((n, s) => n + (s.hi - s.lo + 1), 0);
    expect(total).toBe(64);
  });

  it('clips fields wider than the word and ignores fields outside it', () => {
    const segs = bitSegments(0xffn, 8, [
      { name: 'A', hi: 40, lo: 4 },
      { name: 'B', hi: 70, lo: 64 },
    ]);
    expect(segs.map((s) => [s.name, s.hi, s.lo, s.value])).toEqual([
      ['A', 7, 4, 0xfn],
      ['', 3, 0, 0xfn],
    ]);
  });
});
