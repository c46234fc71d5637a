import { describe, expect, it } from 'vitest';
import { readLe64Words, wordField } from '@ioasid/core/driver';
import { EVT_ID, encodeEvent, encodePriRequest, eventWords } from './records.js';
import { eventRecordWords, priRecordWords } from './record-words.js';

describe('SMMUv3 record words', () => {
  it('a translation fault shows dword 1 and the IPA; a configuration error only what dword 0 holds', () => {
    const f = eventWords(encodeEvent({ ID: EVT_ID.F_TRANSLATION, StreamID: 0x100, RnW: 1, S2: 1, CLASS: 1, InputAddr: 0xffff0000n, IPA: 0x8000n }));
    const w = eventRecordWords(f);
    expect(w.map((x) => x.name)).toEqual(['event dword 0 (bits 63:0)', 'event dword 1 (bits 127:64)', 'event dword 2 (bits 191:128)', 'event dword 3 (bits 255:192)']);
    expect([wordField(w, 'ID'), wordField(w, 'StreamID'), wordField(w, 'RnW'), wordField(w, 'S2'), wordField(w, 'InputAddr'), wordField(w, 'IPA')! << 12n]).toEqual([0x10n, 0x100n, 1n, 1n, 0xffff0000n, 0x8000n]);
    const bad = eventRecordWords(eventWords(encodeEvent({ ID: EVT_ID.C_BAD_STE, StreamID: 0x8 })));
    expect(bad.flatMap((x) => x.layout.map((l) => l.name))).toEqual(['ID', 'SSV', 'SubstreamID', 'StreamID']);
    const fetch = eventRecordWords(eventWords(encodeEvent({ ID: EVT_ID.F_CD_FETCH, FetchAddr: 0x1238n })));
    expect(wordField(fetch, 'FetchAddr')! << 3n).toBe(0x1238n);
  });

  it('a PRI queue entry: every field of its two dwords', () => {
    const w = priRecordWords(readLe64Words(encodePriRequest({ SID: 0x100, SSID: 3, SSV: 1, READ: 1, LAST: 1, PRGIndex: 9, Addr: 0x5000n }), 2));
    expect([wordField(w, 'SID'), wordField(w, 'SSID'), wordField(w, 'SSV'), wordField(w, 'READ'), wordField(w, 'LAST'), wordField(w, 'PRGIndex'), wordField(w, 'Addr')! << 12n]).toEqual([0x100n, 3n, 1n, 1n, 1n, 9n, 0x5000n]);
  });
});
