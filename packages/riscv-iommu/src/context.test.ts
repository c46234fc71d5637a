/** Device and process contexts, DDT / PDT indexing, against doublewords worked out from the layouts. */
import { describe, expect, it } from 'vitest';
import { checkDeviceContext, checkProcessContext, ddi, decodeCap, deviceIdBits, encodeDeviceContext, encodeDirEntry, encodeProcessContext, linuxPagingContext, pdi, type CapFields } from './index.js';

const caps = (v: bigint): CapFields => {
  const r = decodeCap(v);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const QEMU = caps(0x0000_0078_c2cf_4f10n);
const FCTL0 = { BE: 0, WSI: 0, GXL: 0, custom: 0 };

describe('device context', () => {
  it('is what Linux writes for a paging domain: tc.V, iosatp = MODE | root PPN, ta.PSCID', () => {
    // Sv48 (9) root at PPN 0x80000, PSCID 1: fsc = 9 << 60 | 0x80000, ta = 1 << 12, tc = V.
    const dw = encodeDeviceContext(linuxPagingContext(9, 0x80000, 1), true);
    expect(dw).toEqual([1n, 0n, 0x1000n, 0x9000_0000_0008_0000n, 0n, 0n, 0n, 0n]);
    expect(encodeDeviceContext(linuxPagingContext(8, 0x1234, 0xfffff), false)).toEqual([1n, 0n, 0xffff_f000n, 0x8000_0000_0000_1234n]);
    expect(checkDeviceContext(dw, QEMU, FCTL0).ok).toBe(true);
  });

  it('applies the misconfiguration checks in the specification order', () => {
    const ok = encodeDeviceContext(linuxPagingContext(9, 0x80000, 1), true);
    const bad = (i: number, v: bigint) => checkDeviceContext(ok.map((x, j) => (j === i ? v : x)), QEMU, FCTL0);
    expect(bad(0, 1n | (1n << 12n))).toEqual({ ok: false, error: 'tc: reserved bits set (0x1000)' });
    expect(bad(0, 1n | (1n << 3n))).toEqual({ ok: false, error: 'tc.T2GPA set without EN_ATS' });
    expect(bad(0, 1n | (1n << 2n))).toEqual({ ok: false, error: 'tc.EN_PRI set without EN_ATS' });
    expect(bad(0, 1n | (1n << 9n))).toEqual({ ok: false, error: 'tc.DPE set with PDTV = 0' });
    expect(bad(0, 1n | (1n << 8n))).toEqual({ ok: false, error: 'tc.SADE / GADE set but capabilities.AMO_HWAD is clear' });
    // PDTV with PD8 is fine on QEMU; PD17, which QEMU lacks, is not.
    expect(checkDeviceContext([1n | (1n << 5n), 0n, 0n, 1n << 60n, 0n, 0n, 0n, 0n], QEMU, FCTL0).ok).toBe(true);
    expect(checkDeviceContext([1n | (1n << 5n), 0n, 0n, 2n << 60n, 0n, 0n, 0n, 0n], QEMU, FCTL0)).toEqual({ ok: false, error: 'pdtp.MODE 2: not supported by capabilities' });
    // iosatp 11 is reserved; iohgatp Sv48x4 with a root that is not 16 KiB aligned.
    expect(bad(3, 11n << 60n)).toEqual({ ok: false, error: 'iosatp.MODE 11: a reserved encoding (SXL=0)' });
    expect(bad(1, (9n << 60n) | 0x1001n)).toEqual({ ok: false, error: 'iohgatp.PPN: the second-stage root must be 16 KiB aligned' });
    expect(bad(1, (9n << 60n) | 0x1000n).ok).toBe(true);
    expect(bad(4, 2n << 60n)).toEqual({ ok: false, error: 'msiptp.MODE 2: neither Off nor Flat' });
    expect(checkDeviceContext(ok.slice(0, 4), QEMU, FCTL0).ok).toBe(false);
  });
});

describe('process context and directories', () => {
  it('encodes ta (V, ENS, SUM, PSCID) and fsc', () => {
    expect(encodeProcessContext({ V: 1, ENS: 1, SUM: 1, PSCID: 0x42, fsc: { MODE: 8, PPN: 0x100 } })).toEqual([0x4_2007n, 0x8000_0000_0000_0100n]);
    expect(checkProcessContext(0x4_2007n, 0x8000_0000_0000_0100n, QEMU, 0).ok).toBe(true);
    expect(checkProcessContext(0x4_2007n | (1n << 3n), 0n, QEMU, 0).ok).toBe(false);
    expect(checkProcessContext(1n, 11n << 60n, QEMU, 0).ok).toBe(false);
    expect(encodeDirEntry(0x80000)).toBe(0x2000_0001n);
  });

  it('splits device_id and process_id into directory indices', () => {
    // 0x123456 base format: [6:0] 0x56, [15:7] 0x68, [23:16] 0x12; extended: [5:0] 0x16, [14:6] 0xd1, [23:15] 0x24.
    expect(ddi(0x123456, false)).toEqual([0x56, 0x68, 0x12]);
    expect(ddi(0x123456, true)).toEqual([0x16, 0xd1, 0x24]);
    expect([deviceIdBits(2, false), deviceIdBits(3, false), deviceIdBits(4, false), deviceIdBits(2, true), deviceIdBits(3, true), deviceIdBits(1, true)]).toEqual([7, 16, 24, 6, 15, 0]);
    // 0xabcde: [7:0] 0xde, [16:8] 0x0bc, [19:17] 0x5.
    expect(pdi(0xabcde)).toEqual([0xde, 0xbc, 0x5]);
  });
});
