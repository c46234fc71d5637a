/**
 * Register and descriptor bit fields the way Linux writes them (include/linux/bitfield.h, bits.h):
 * a field is bits [hi:lo] of a 64-bit word, as specifications print them ("47:40"), and `GENMASK_ULL`,
 * `FIELD_GET`, `FIELD_PREP` work on bigint words. Layouts (`BitField[]`) name the fields of one register
 * so that decode and encode are table-driven and lossless (`uncoveredMask` keeps what no field names).
 */

import { err, ok, type Result } from './result.js';

/** One named field: bits [hi:lo] of a register or descriptor word. */
export interface BitField<N extends string = string> {
  /** The field's name as the specification prints it, e.g. 'S2P'. */
  readonly name: N;
  /** Highest bit of the field, inclusive (63 at most). */
  readonly hi: number;
  /** Lowest bit of the field. */
  readonly lo: number;
}

/**
 * A layout: the fields of one register or descriptor word, low bit first. The identity at run time; its type
 * keeps each field's name as a literal, so that a decoder built on the layout returns a record keyed by exactly
 * those names (`decodeBitFields(IDR0_LAYOUT, v).S2P`) and a misspelt name is a type error.
 */
export function bitLayout<N extends string>(fields: readonly BitField<N>[]): readonly BitField<N>[] {
  return fields;
}

/** The names of a layout's fields, a union of string literals (`BitFieldName<typeof IDR5_LAYOUT>` is `'OAS' | 'GRAN4K' | ...`). */
export type BitFieldName<L extends readonly BitField[]> = L[number]['name'];

/** A word decoded by its layout: one number per field, under the field's specification name. */
export type BitFieldValues<L extends readonly BitField[]> = { readonly [K in BitFieldName<L>]: number };

/**
 * A word decoded losslessly: every field of the layout, plus the bits no field covers, so that encoding the
 * decoded value gives back the same word.
 */
export type DecodedBitFields<L extends readonly BitField[]> = BitFieldValues<L> & {
  /** The word's bits that no field of the layout covers (`uncoveredMask`), in place: reserved or unknown to the model. */
  readonly reserved: bigint;
};

/** 2^64 - 1: every bit of a 64-bit word, the kernel's GENMASK_ULL(63, 0). */
export const U64_MASK = (1n << 64n) - 1n;


/** GENMASK_ULL(hi, lo): bits hi..lo set. */
export function genmask(hi: number, lo: number): bigint {
  return ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo);
}

/** The number of bits of [hi:lo]. */
export function fieldWidth(hi: number, lo: number): number {
  return hi - lo + 1;
}

/** FIELD_GET(GENMASK_ULL(hi, lo), value). */
export function fieldGet(value: bigint, hi: number, lo: number): bigint {
  return (value >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);
}

/** FIELD_PREP(GENMASK_ULL(hi, lo), v): bits of `v` above the field are dropped (the kernel would warn at build time). */
export function fieldPrep(v: bigint, hi: number, lo: number): bigint {
  return (v & ((1n << BigInt(hi - lo + 1)) - 1n)) << BigInt(lo);
}

/** FIELD_GET on a 32-bit register held in a number. */
export function fieldGet32(value: number, hi: number, lo: number): number {
  const width = hi - lo + 1;
  return width >= 32 ? value >>> 0 : ((value >>> lo) & ((1 << width) - 1)) >>> 0;
}

/** Whether `v` is a non-negative integer that fits in [hi:lo] (what FIELD_FIT answers). */
export function fieldFits(v: number | bigint, hi: number, lo: number): boolean {
  if (typeof v === 'number' && !Number.isInteger(v)) return false;
  const b = BigInt(v);
  return b >= 0n && b < 1n << BigInt(hi - lo + 1);
}

/** Bits of a 64-bit word that no field of the layout covers (reserved, or unknown to the model). */
export function uncoveredMask(layout: readonly BitField[]): bigint {
  let covered = 0n;
  for (const f of layout) covered |= genmask(f.hi, f.lo);
  return U64_MASK & ~covered;
}

/** Every field of `layout` read from `value`, as numbers (fields are at most 53 bits wide). */
export function decodeBitFields<N extends string>(layout: readonly BitField<N>[], value: bigint): Record<N, number> {
  const out = {} as Record<N, number>;
  for (const f of layout) out[f.name] = Number(fieldGet(value, f.hi, f.lo));
  return out;
}

/**
 * The word `layout` describes with `values` in its fields (the inverse of decodeBitFields): each field is
 * FIELD_PREP'd, a field without a value (or with one that is not a number or bigint) is 0, and members
 * of `values` the layout does not name are ignored, so a record object can be passed as it is.
 */
export function encodeBitFields(layout: readonly BitField[], values: object): bigint {
  const rec = values as Readonly<Record<string, unknown>>;
  let w = 0n;
  for (const f of layout) {
    const x = rec[f.name];
    if (typeof x === 'number' || typeof x === 'bigint') w |= fieldPrep(BigInt(x), f.hi, f.lo);
  }
  return w;
}

/**
 * A 64-bit word decoded losslessly by its layout: every field, plus the bits no field covers in `reserved`,
 * so that `encodeBitFieldsLossless` of the result gives back the same word. Bits above 63 are dropped.
 */
export function decodeBitFieldsLossless<L extends readonly BitField[]>(layout: L, value: bigint): DecodedBitFields<L> {
  const word = BigInt.asUintN(64, value);
  const out: Record<string, number | bigint> = decodeBitFields(layout, word);
  out.reserved = word & uncoveredMask(layout);
  return out as DecodedBitFields<L>;
}

/**
 * The word a decoded register describes: each named field (absent ones 0) put in place, plus `reserved`.
 * Fails, naming `what` and the field, when a value is not a non-negative integer that fits its bits, or when
 * `reserved` sets a bit a named field covers (the same bit cannot be given twice).
 */
export function encodeBitFieldsLossless<L extends readonly BitField[]>(
  layout: L,
  fields: Partial<DecodedBitFields<L>>,
  what: string,
): Result<bigint> {
  const values = fields as Partial<Record<string, number | bigint>>;
  let word = 0n;
  for (const f of layout) {
    const v = values[f.name] ?? 0;
    if (!fieldFits(v, f.hi, f.lo)) return err(`${what}.${f.name} = ${String(v)} does not fit in bits ${f.hi}:${f.lo}`);
    word |= fieldPrep(BigInt(v), f.hi, f.lo);
  }
  const reserved = fields.reserved ?? 0n;
  if (reserved < 0n || (reserved & ~uncoveredMask(layout)) !== 0n) {
    return err(`${what}.reserved 0x${reserved.toString(16)} overlaps named fields`);
  }
  return ok(word | reserved);
}
