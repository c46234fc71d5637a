/**
 * The walk trace of the AMD-Vi v1 and v2 formats (core's traceRadix). Both have 512-entry tables and the
 * entry an IOVA page selects is (pfn / 512^level) mod 512. v1: PR (bit 0) present, NextLevel (bits 11:9)
 * names the next table's level (1-based, so a table may skip levels) and 0 or 7 marks a leaf; v2 is the
 * x86-64 entry (P, PS). Output address bits 51:12 in both.
 */
import type { RadixTraceSpec } from '@ioasid/core/driver';

const ADDR = ((1n << 40n) - 1n) << 12n;

export function amdTraceSpec(flavor: 'v1' | 'v2', top: number): RadixTraceSpec {
  return {
    top,
    index: (iovaPfn, level) => Math.floor(iovaPfn / 512 ** level) % 512,
    classify(entry, level) {
      if ((entry & 1n) === 0n) return { kind: 'invalid', pfn: 0 };
      const pfn = Number((entry & ADDR) >> 12n);
      if (flavor === 'v2') return { kind: level === 0 || (entry & (1n << 7n)) !== 0n ? 'leaf' : 'table', pfn };
      const nl = Number((entry >> 9n) & 7n);
      if (nl === 0 || nl === 7 || level === 0) return { kind: 'leaf', pfn };
      // A NextLevel that is not below this one is reserved: the hardware stops there.
      if (nl > level) return { kind: 'invalid', pfn: 0 };
      return { kind: 'table', pfn, nextLevel: nl - 1 };
    },
  };
}
