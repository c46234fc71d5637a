/**
 * PageRequestFields holds a page address as two 32-bit words, signed as core writes them (bit 31 set
 * makes a word negative) or unsigned as a codec may: both read as the same 64-bit address.
 */
import { describe, expect, it } from 'vitest';
import { pageRequestAddress, pageRequestFault, pageRequestFieldsOf, type IommuFault, type PageRequestFields } from './fault.js';

const ADDRS = [0n, 0x1000n, 0x7fff_f000n, 0x8000_0000n, 0xffff_f000n, 0x1_0000_0000n, 0x1_8000_0000n, 0x1f_ffff_f000n, 0x20_0000_0000n, (1n << 53n) - 4096n, 1n << 53n, 0x7fff_ffff_ffff_f000n, 0x8000_0000_0000_0000n, 0x8000_0000_8000_0000n, 0xffff_ffff_ffff_f000n];

function fields(lo: number, hi: number): PageRequestFields {
  return { rid: 1, pasid: -1, addrLo: lo, addrHi: hi, perm: 1, grpid: 2, last: true, reason: 0, reasonText: 'page request', stage2: false };
}

describe('PageRequestFields address words', () => {
  it.for(ADDRS.map((a) => [`0x${a.toString(16)}`, a] as const))('%s: signed and unsigned words give the address; pageRequestFieldsOf writes signed words', ([, addr]) => {
    const lo = Number(addr & 0xffff_ffffn);
    const hi = Number(addr >> 32n);
    expect(pageRequestAddress(fields(lo, hi))).toBe(addr);
    expect(pageRequestAddress(fields(lo | 0, hi | 0))).toBe(addr);
    expect(pageRequestAddress(fields(lo | 0, hi))).toBe(addr);
    expect(pageRequestAddress(fields(lo, hi | 0))).toBe(addr);
    const f: IommuFault = { kind: 'page-request', unit: 3, rid: 1, pasid: -1, addr, perm: 1, grpid: 2, last: true, reason: 0, reasonText: 'page request', stage2: false };
    const out = fields(-7, -7);
    pageRequestFieldsOf(f, out);
    expect([out.addrLo, out.addrHi]).toEqual([lo | 0, hi | 0]);
    expect(pageRequestFault(out, 3)).toEqual(f);
  });

  it('pageRequestFieldsOf takes the address modulo 2^64', () => {
    const out = fields(0, 0);
    pageRequestFieldsOf({ kind: 'page-request', unit: 0, rid: 1, pasid: -1, addr: -4096n, perm: 1, grpid: 2, last: true, reason: 0, reasonText: 'page request', stage2: false }, out);
    expect(pageRequestAddress(out)).toBe(0xffff_ffff_ffff_f000n);
    pageRequestFieldsOf({ kind: 'page-request', unit: 0, rid: 1, pasid: -1, addr: (1n << 64n) + 0x8000_0000n, perm: 1, grpid: 2, last: true, reason: 0, reasonText: 'page request', stage2: false }, out);
    expect([out.addrLo, out.addrHi]).toEqual([-0x8000_0000, 0]);
  });
});
