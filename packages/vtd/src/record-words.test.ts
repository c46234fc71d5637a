import { describe, expect, it } from 'vitest';
import { readLe64, wordField } from '@ioasid/core/driver';
import { encodeFrcd, encodePageGroupResponse, encodePageReqDsc } from './records.js';
import { frcdWords, pageRequestWords, pageResponseWords } from './record-words.js';

const qwords = (b: Uint8Array) => Array.from({ length: b.length / 8 }, (_, i) => readLe64(b, i * 8));
const must = <T>(r: { ok: true; value: T } | { ok: false; error: string }): T => {
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe('VT-d record words', () => {
  it('a fault recording register: FI in bits 63:12, SID/FR/PV/T1/F in the upper qword, as encodeFrcd writes them', () => {
    const b = must(encodeFrcd({ FI: 0x7ffn, SID: 0x5c00, T2: 0, PRIV: 0, EXE: 0, PP: 1, FR: 6, PV: 0x42, AT: 0, T1: 1, F: 1 }));
    const w = frcdWords([readLe64(b, 0), readLe64(b, 8)]);
    expect(w.map((x) => [x.name, x.width])).toEqual([
      ['FRCD qword 0 (bits 63:0)', 64],
      ['FRCD qword 1 (bits 127:64)', 64],
    ]);
    expect([wordField(w, 'FI'), wordField(w, 'SID'), wordField(w, 'FR'), wordField(w, 'PV'), wordField(w, 'T1'), wordField(w, 'F')]).toEqual([0x7ffn, 0x5c00n, 6n, 0x42n, 1n, 1n]);
  });

  it('a page request and a page group response descriptor, four qwords each', () => {
    const req = must(encodePageReqDsc({ type: 1, pasid_present: 1, priv_data_present: 0, rid: 0x300, pasid: 7, exe_req: 0, pm_req: 0, rd_req: 1, wr_req: 1, lpig: 1, prg_index: 5, addr: 0x1234000n, priv_data: [0n, 0n] }));
    const w = pageRequestWords(qwords(req));
    expect(w).toHaveLength(4);
    expect([wordField(w, 'rid'), wordField(w, 'pasid'), wordField(w, 'prg_index'), wordField(w, 'addr')! << 12n]).toEqual([0x300n, 7n, 5n, 0x1234000n]);
    const resp = must(encodePageGroupResponse({ pasid_present: 1, pdp: 0, resp_code: 1, rid: 0x300, pasid: 7, lpig: 1, prg_index: 5, priv_data: [0n, 0n] }));
    const r = pageResponseWords(qwords(resp));
    expect([wordField(r, 'type[3:0]'), wordField(r, 'resp_code'), wordField(r, 'prg_index')]).toEqual([9n, 1n, 5n]);
  });
});
