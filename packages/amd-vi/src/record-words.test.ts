import { describe, expect, it } from 'vitest';
import { readLe64, wordField } from '@ioasid/core/driver';
import { AMD_EVENT, EVENT_FLAG, encodeEvent, encodePprEntry, PPR_FLAG } from './records.js';
import { eventLogWords, pprLogWords } from './record-words.js';

const q = (b: Uint8Array): [bigint, bigint] => [readLe64(b, 0), readLe64(b, 8)];

describe('AMD-Vi record words', () => {
  it('an IO_PAGE_FAULT shows each flag; another event its Flags as one field', () => {
    const w = eventLogWords(q(encodeEvent({ code: AMD_EVENT.IO_PAGE_FAULT, devid: 0x0100, pasidOrDomain: 0xe, flags: EVENT_FLAG.RW | EVENT_FLAG.PR, address: 0xfffd0000n })));
    expect([wordField(w, 'EventCode'), wordField(w, 'DeviceID'), wordField(w, 'DomainID or PASID[15:0]'), wordField(w, 'RW'), wordField(w, 'PR'), wordField(w, 'PE'), wordField(w, 'Address')]).toEqual([2n, 0x100n, 0xen, 1n, 1n, 0n, 0xfffd0000n]);
    const other = eventLogWords(q(encodeEvent({ code: AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, devid: 1, flags: 0x123 })));
    expect(wordField(other, 'Flags')).toBe(0x123n);
    expect(wordField(other, 'RW')).toBeUndefined();
  });

  it('a PPR log entry: DeviceID, PASID halves, PRG index, last, flags, address', () => {
    const w = pprLogWords(q(encodePprEntry({ devid: 0x200, pasid: 0x12345, tag: 7, last: true, flags: PPR_FLAG.WRITE | PPR_FLAG.GN, address: 0x7000n })));
    expect([wordField(w, 'DeviceID'), wordField(w, 'PASID[15:0]'), wordField(w, 'PASID[19:16]'), wordField(w, 'PRGIndex'), wordField(w, 'LastInGroup'), wordField(w, 'WRITE'), wordField(w, 'GN'), wordField(w, 'Address')]).toEqual([0x200n, 0x2345n, 1n, 7n, 1n, 1n, 1n, 0x7000n]);
  });
});
