/**
 * A register or record word as a bit diagram: its fields from the most significant bit down, with the
 * bits no field names shown as reserved runs, each segment with its value.
 */
import type { BitField } from '@ioasid/core/driver';

export interface BitSegment {
  /** The field name; '' for bits no field names. */
  readonly name: string;
  readonly hi: number;
  readonly lo: number;
  readonly value: bigint;
}

function bitsOf(value: bigint, hi: number, lo: number): bigint {
  return (value >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);
}

/** Segments covering bits `width - 1` down to 0 exactly once; overlapping fields keep the first listed. */
export function bitSegments(value: bigint, width: number, layout: readonly BitField[]): BitSegment[] {
  const owner = new Array<BitField | null>(width).fill(null);
  for (const f of layout) {
    for (let b = Math.max(0, f.lo); b <= Math.min(width - 1, f.hi); b++) owner[b] ??= f;
  }
  const out: BitSegment[] = [];
  for (let b = width - 1; b >= 0; ) {
    const f = owner[b];
    let lo = b;
    while (lo - 1 >= 0 && owner[lo - 1] === f) lo--;
    out.push({ name: f ? f.name : '', hi: b, lo, value: bitsOf(value, b, lo) });
    b = lo - 1;
  }
  return out;
}
