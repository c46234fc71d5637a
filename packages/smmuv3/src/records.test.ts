import { describe, it, expect } from 'vitest';
import { encodeEvent, decodeEvent, eventName, encodePriRequest, decodePriRequest, encodeVEventArmSmmuv3, PRI_RESP, eventWords } from './records.js';

describe('event records', () => {
  it('encodes fields at the Linux EVTQ_* positions', () => {
    const b = encodeEvent({ ID: 0x10, StreamID: 0x100, RnW: 1, CLASS: 2, InputAddr: 0xffff0000n });
    expect(eventWords(b)).toEqual([0x0000010000000010n, 0x0000020800000000n, 0xffff0000n, 0n]);
  });
  it('round-trips every field', () => {
    const e = { ID: 0x13, SSV: 1, SubstreamID: 0xabcde, StreamID: 0xdeadbeef, STAG: 0x1234, Stall: 1, PnU: 1, InD: 1, RnW: 0, S2: 1, CLASS: 1, TTRnW: 1, NSIPA: 1, Span: 0x800 /* Span [127:116] and NSIPA [127] share bit 63 */, InputAddr: 0xfedcba9876543000n, IPA: 0x12345000n, FetchAddr: 0x12345000n };
    const d = decodeEvent(encodeEvent(e));
    expect(d).toEqual({ ok: true, value: e });
    expect(decodeEvent(new Uint8Array(31)).ok).toBe(false);
  });
  it('names events', () => {
    expect(eventName(0x25)).toBe('F_VMS_FETCH');
    expect(eventName(0x01)).toBe('F_UUT');
    expect(eventName(0xe3)).toBe('IMPDEF');
    expect(eventName(0x30)).toBe('UNKNOWN');
  });
  it('rewrites the SID of a forwarded vEVENT only', () => {
    const r = encodeVEventArmSmmuv3(encodeEvent({ ID: 0x10, StreamID: 0x100, SSV: 1, SubstreamID: 5 }), 7);
    expect(r.ok && eventWords(r.value)[0]).toBe((7n << 32n) | (5n << 12n) | (1n << 11n) | 0x10n);
    expect(encodeVEventArmSmmuv3(encodeEvent({ ID: 0x02 }), 7).ok).toBe(false);
  });
});

describe('PRI queue', () => {
  it('round-trips a page request', () => {
    const req = { SID: 0x100, SSID: 0x42, SSV: 1, PRIV: 0, EXEC: 0, READ: 1, WRITE: 1, LAST: 1, PRGIndex: 0x1ff, Addr: 0x7fff0000n };
    expect(decodePriRequest(encodePriRequest(req))).toEqual({ ok: true, value: req });
    expect(PRI_RESP).toEqual({ DENY: 0, FAIL: 1, SUCC: 2 });
  });
});
