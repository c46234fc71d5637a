/**
 * SMMUv3 queue entries as words with their field layouts (`DecodeOutput.words`, the web page's bit
 * diagrams): an event record (four 64-bit dwords) shows the fields its event ID carries, a PRI queue
 * entry (two dwords) all of its fields, at the positions events.ts encodes and decodes.
 */
import { recordWords, type DecodedWord, type RecordField } from '@ioasid/core/driver';
import { EVENT_FIELD_POSITIONS, EVT_ID, FETCH_FAULT_IDS, INPUT_ADDR_IDS, PRI_FIELD_POSITIONS, TRANSLATION_FAULT_IDS } from './records.js';

const pick = (table: Readonly<Record<string, readonly [number, number, number]>>, names: readonly string[]): RecordField[] =>
  names.map((n) => [table[n][0], n, table[n][1], table[n][2]] as const);
const dword = (i: number) => `dword ${i} (bits ${64 * i + 63}:${64 * i})`;

/** The fields of an event record of `id`: dword 0 always; the rest only where that event defines them. */
function eventFields(id: number): RecordField[] {
  const f = pick(EVENT_FIELD_POSITIONS, ['ID', 'SSV', 'SubstreamID', 'StreamID']);
  if (TRANSLATION_FAULT_IDS.includes(id)) {
    f.push(...pick(EVENT_FIELD_POSITIONS, ['STAG', 'Stall', 'PnU', 'InD', 'RnW', 'S2', 'CLASS', 'TTRnW', 'NSIPA']), [3, 'IPA', 51, 12]);
  } else if (id === EVT_ID.E_PAGE_REQUEST) {
    // Its permission bits are not modelled; Span [127:116] and InputAddr are.
    f.push(...pick(EVENT_FIELD_POSITIONS, ['Span']));
  }
  if (INPUT_ADDR_IDS.includes(id)) f.push([2, 'InputAddr', 63, 0]);
  if (FETCH_FAULT_IDS.includes(id)) f.push([3, 'FetchAddr', 51, 3]);
  return f;
}

/** An event queue record, from its four dwords. */
export function eventRecordWords(dwords: readonly bigint[]): DecodedWord[] {
  const id = Number(dwords[0] & 0xffn);
  return recordWords(dwords, 64, eventFields(id), (i) => `event ${dword(i)}`);
}

const PRI_FIELDS: readonly RecordField[] = [...pick(PRI_FIELD_POSITIONS, Object.keys(PRI_FIELD_POSITIONS)), [1, 'Addr', 63, 12]];

/** A PRI queue entry, from its two dwords. */
export function priRecordWords(dwords: readonly bigint[]): DecodedWord[] {
  return recordWords(dwords, 64, PRI_FIELDS, (i) => `PRI ${dword(i)}`);
}
