/**
 * PTE access for the AMD-Vi table formats: 64-bit entries read and written as two 32-bit halves of
 * simulated physical memory (no BigInt on the walk path), and the address field (bits 51:12) split
 * across them.
 */
import { PhysicalMemory } from '@ioasid/core/driver';
import { WALK_ADDRESS_SIZE, WALK_NOT_PRESENT, WALK_RESERVED_BITS, type WalkResult } from '@ioasid/core/driver';

export const EINVAL = 22;
export const ENOMEM = 12;
export const EEXIST = 17;

/** 512^level: 4 KiB pages one entry at `level` (0 = the 4K-PTE table) covers. */
export const LEVEL_SPAN: readonly number[] = [1, 512, 262144, 134217728, 68719476736, 35184372088832];
const TWO_20 = 1048576;

/** The two halves of the last entry read by `readPte`. */
export const pte = { lo: 0, hi: 0 };

/** Reads entry `idx` of table frame `pfn` into `pte`; an unbacked frame reads as zeros. */
export function readPte(mem: PhysicalMemory, pfn: number, idx: number): void {
  const c = mem.chunkIfBacked(pfn);
  if (c === undefined) {
    pte.lo = 0;
    pte.hi = 0;
    return;
  }
  const w = PhysicalMemory.frameWordBase(pfn) + idx * 2;
  pte.lo = c[w];
  pte.hi = c[w + 1];
}

export function writePte(mem: PhysicalMemory, pfn: number, idx: number, lo: number, hi: number): void {
  mem.markTouched(pfn);
  const c = mem.chunkWords(pfn);
  const w = PhysicalMemory.frameWordBase(pfn) + idx * 2;
  c[w] = lo >>> 0;
  c[w + 1] = hi >>> 0;
}

/** The page number in bits 51:12 of an entry. */
export function pteAddrPfn(lo: number, hi: number): number {
  return (hi & 0xfffff) * TWO_20 + (lo >>> 12);
}

/** Low word address bits (31:12) and high word address bits (51:32) of page number `pfn`. */
export function addrLo(pfn: number): number {
  return ((pfn % TWO_20) * 4096) >>> 0;
}

export function addrHi(pfn: number): number {
  return Math.floor(pfn / TWO_20) & 0xfffff;
}

export function isPfn(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x < 2 ** 52;
}

/** Whether every entry of a table frame is zero. */
export function tableEmpty(mem: PhysicalMemory, pfn: number): boolean {
  const c = mem.chunkIfBacked(pfn);
  if (c === undefined) return true;
  const w = PhysicalMemory.frameWordBase(pfn);
  for (let i = 0; i < 1024; i++) if (c[w + i] !== 0) return false;
  return true;
}

export function walkFail(out: WalkResult, fault: number, level: number): false {
  out.fault = fault;
  out.level = level;
  out.perm = 0;
  out.dirty = false;
  return false;
}

export { WALK_ADDRESS_SIZE, WALK_NOT_PRESENT, WALK_RESERVED_BITS };
