/**
 * The walk trace of the VT-d second- and first-stage formats (core's traceRadix): 512-entry tables,
 * the entry an IOVA page selects is (pfn / 512^level) mod 512, output address bits 51:12, and a leaf
 * is a level-0 entry or one with PS (bit 7) above it. `presentMask` is R|W for the second stage (it
 * has no P bit) and P for the first stage (the IA-32e entry).
 */
import type { RadixTraceSpec } from '@ioasid/core/driver';

const PS = 1n << 7n;
const ADDR = ((1n << 40n) - 1n) << 12n;

export function vtdTraceSpec(top: number, presentMask: number): RadixTraceSpec {
  const present = BigInt(presentMask);
  return {
    top,
    index: (iovaPfn, level) => Math.floor(iovaPfn / 512 ** level) % 512,
    classify(entry, level) {
      if ((entry & present) === 0n) return { kind: 'invalid', pfn: 0 };
      const pfn = Number((entry & ADDR) >> 12n);
      return { kind: level === 0 || (entry & PS) !== 0n ? 'leaf' : 'table', pfn };
    },
  };
}
