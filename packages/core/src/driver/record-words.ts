/**
 * The words of a multi-word record (a fault record, an event queue entry, a page request) with the
 * layout of each, for a bit diagram (`DecodeOutput.words`): vendors list their fields once, by word.
 */
import type { DecodedWord } from './decoder.js';

/** One field of a record: the index of the word it is in, its name, and its bits [hi:lo] in that word. */
export type RecordField = readonly [word: number, name: string, hi: number, lo: number];

/**
 * `words` (each `width` bits) with the fields of `fields` that fall in each; `name(i)` names word i
 * (the specification's name, e.g. 'qword 0' or 'bits 127:64').
 */
export function recordWords(words: readonly bigint[], width: 32 | 64, fields: readonly RecordField[], name: (i: number) => string): DecodedWord[] {
  return words.map((value, i) => ({
    name: name(i),
    value: BigInt.asUintN(width, value),
    width,
    layout: fields.filter((f) => f[0] === i).map(([, n, hi, lo]) => ({ name: n, hi, lo })),
  }));
}

/** The value of the field `name` in `words` (the first word that has it), or undefined. */
export function wordField(words: readonly DecodedWord[], name: string): bigint | undefined {
  for (const w of words) {
    const f = w.layout.find((l) => l.name === name);
    if (f) return (w.value >> BigInt(f.lo)) & ((1n << BigInt(f.hi - f.lo + 1)) - 1n);
  }
  return undefined;
}
