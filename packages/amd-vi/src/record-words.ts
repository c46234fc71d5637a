/**
 * AMD-Vi log entries as words with their field layouts (`DecodeOutput.words`, the web page's bit
 * diagrams): an event log entry (128 bits) with the IO_PAGE_FAULT flags split out, and a PPR log entry,
 * at the positions events.ts encodes and decodes (qword 0 = bits 63:0, qword 1 = the address).
 */
import { recordWords, type DecodedWord, type RecordField } from '@ioasid/core/driver';
import { AMD_EVENT, EVENT_FLAG, PPR_FLAG } from './records.js';

const qword = (i: number) => `qword ${i} (bits ${64 * i + 63}:${64 * i})`;

/** One field per flag bit, `base` the bit the flags start at. */
const flagFields = (flags: Readonly<Record<string, number>>, base: number): RecordField[] =>
  Object.entries(flags).map(([n, v]) => {
    const bit = base + Math.log2(v);
    return [0, n, bit, bit] as const;
  });

const EVENT_HEAD: readonly RecordField[] = [
  [0, 'DeviceID', 15, 0],
  [0, 'PASID[19:16]', 19, 16],
  [0, 'event-specific', 31, 20],
  [0, 'DomainID or PASID[15:0]', 47, 32],
];
const EVENT_TAIL: readonly RecordField[] = [[0, 'EventCode', 63, 60], [1, 'Address', 63, 0]];
const IO_PAGE_FAULT_FIELDS: readonly RecordField[] = [...EVENT_HEAD, ...flagFields(EVENT_FLAG, 48), [0, 'Type', 59, 57], ...EVENT_TAIL];
const OTHER_EVENT_FIELDS: readonly RecordField[] = [...EVENT_HEAD, [0, 'Flags', 59, 48], ...EVENT_TAIL];

/** An event log entry, from its two qwords; IO_PAGE_FAULT shows each flag. */
export function eventLogWords(qwords: readonly [bigint, bigint]): DecodedWord[] {
  const code = Number((qwords[0] >> 60n) & 0xfn);
  return recordWords(qwords, 64, code === AMD_EVENT.IO_PAGE_FAULT ? IO_PAGE_FAULT_FIELDS : OTHER_EVENT_FIELDS, (i) => `event ${qword(i)}`);
}

const PPR_FIELDS: readonly RecordField[] = [
  [0, 'DeviceID', 15, 0],
  [0, 'PASID[15:0]', 31, 16],
  [0, 'PRGIndex', 40, 32],
  [0, 'LastInGroup', 41, 41],
  [0, 'PASID[19:16]', 45, 42],
  ...flagFields(PPR_FLAG, 48),
  [0, 'Type', 63, 60],
  [1, 'Address', 63, 0],
];

/** A PPR log entry (a page service request), from its two qwords. */
export function pprLogWords(qwords: readonly [bigint, bigint]): DecodedWord[] {
  return recordWords(qwords, 64, PPR_FIELDS, (i) => `PPR ${qword(i)}`);
}
