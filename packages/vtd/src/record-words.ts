/**
 * The VT-d records as words with their field layouts (`DecodeOutput.words`, the web page's bit
 * diagrams): the fault recording register (128 bits), the page request descriptor and the page group
 * response descriptor (256 bits each), in the positions faults.ts encodes and decodes.
 */
import { recordWords, type DecodedWord, type RecordField } from '@ioasid/core/driver';
import { FRCD_HI, PGRP_QW0, PGRP_QW1, PRQ_QW0, PRQ_QW1 } from './records.js';

const at = (word: number, layout: ReadonlyArray<{ name: string; hi: number; lo: number }>): RecordField[] => layout.map((f) => [word, f.name, f.hi, f.lo] as const);
const qword = (i: number) => `qword ${i} (bits ${64 * i + 63}:${64 * i})`;

const FRCD_FIELDS: readonly RecordField[] = [[0, 'FI', 63, 12], ...at(1, FRCD_HI)];
const PRQ_FIELDS: readonly RecordField[] = [...at(0, PRQ_QW0), ...at(1, PRQ_QW1), [1, 'addr', 63, 12], [2, 'priv_data[0]', 63, 0], [3, 'priv_data[1]', 63, 0]];
// The descriptor type 0x9 is split: qw0 bits 3:0 and 11:9 (the high part is zero for type 0x9).
const PGRP_FIELDS: readonly RecordField[] = [[0, 'type[3:0]', 3, 0], [0, 'type[6:4]', 11, 9], ...at(0, PGRP_QW0), ...at(1, PGRP_QW1), [2, 'priv_data[0]', 63, 0], [3, 'priv_data[1]', 63, 0]];

/** A fault recording register: FRCD bits 63:0 (FI) and 127:64 (SID, FR, PV, T1, F...). */
export function frcdWords(qwords: readonly [bigint, bigint]): DecodedWord[] {
  return recordWords(qwords, 64, FRCD_FIELDS, (i) => `FRCD ${qword(i)}`);
}

/** A page request descriptor (struct page_req_dsc). */
export function pageRequestWords(qwords: readonly bigint[]): DecodedWord[] {
  return recordWords(qwords, 64, PRQ_FIELDS, (i) => `page request ${qword(i)}`);
}

/** A page group response descriptor (invalidation queue type 0x9). */
export function pageResponseWords(qwords: readonly bigint[]): DecodedWord[] {
  return recordWords(qwords, 64, PGRP_FIELDS, (i) => `page group response ${qword(i)}`);
}
