/**
 * The walk trace of the VMSAv8-64 formats (core's traceRadix): the entry an IOVA page selects at a
 * level is (pfn / span) mod entries, where a 16K/64K table or a concatenated stage-2 PGD spans several
 * frames; descriptor bits 1:0 are 0b11 for a table (or a level-3 page) and 0b01 for a block, bit 0
 * clear is invalid.
 */
import type { RadixTraceSpec } from '@ioasid/core/driver';

/**
 * The parts of a validated geometry (pgtable-lpae.ts LpaeGeometry) the trace reads, declared here so
 * that the format module can use the trace without the two importing each other.
 */
export interface LpaeTraceGeometry {
  /** Internal index of the top level. */
  readonly top: number;
  /** IOVA pages one entry spans, per internal level. */
  readonly span: Float64Array;
  /** Internal levels that may hold a block or page, as a bit set. */
  readonly leafLevels: number;
  /** Entries of the table at `level` (the top may be concatenated). */
  entriesAt(level: number): number;
  /** The output frame of a descriptor given as its low and high words. */
  decode(lo: number, hi: number): number;
}

export function lpaeTraceSpec(geo: LpaeTraceGeometry): RadixTraceSpec {
  return {
    top: geo.top,
    index: (iovaPfn, level) => Math.floor(iovaPfn / geo.span[level]) % geo.entriesAt(level),
    classify(entry, level) {
      const lo = Number(entry & 0xffffffffn);
      const hi = Number(entry >> 32n);
      const type = lo & 3;
      if ((lo & 1) === 0) return { kind: 'invalid', pfn: 0 };
      if (level === 0) return type === 3 ? { kind: 'leaf', pfn: geo.decode(lo, hi) } : { kind: 'invalid', pfn: 0 };
      if (type === 3) return { kind: 'table', pfn: geo.decode(lo, hi) };
      return (geo.leafLevels >> level) & 1 ? { kind: 'leaf', pfn: geo.decode(lo, hi) } : { kind: 'invalid', pfn: 0 };
    },
  };
}
