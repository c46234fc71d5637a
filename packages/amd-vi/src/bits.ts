/**
 * Small bit-field and little-endian helpers for the AMD-Vi hardware formats. Kept local and tiny on
 * purpose: when @ioasid/core/driver gains its shared FIELD_GET/GENMASK module these are swapped for it.
 */

/** One named field of a register or record: bits [lsb + width - 1 : lsb]. */
export interface BitField {
  readonly name: string;
  readonly lsb: number;
  readonly width: number;
}

export const U64_MAX = (1n << 64n) - 1n;

/** GENMASK_ULL(lsb + width - 1, lsb) >> lsb. */
export function fieldMask(width: number): bigint {
  return (1n << BigInt(width)) - 1n;
}

/** FIELD_GET. */
export function getBits(value: bigint, lsb: number, width: number): bigint {
  return (value >> BigInt(lsb)) & fieldMask(width);
}

/** FIELD_PREP (the value is truncated to the field). */
export function putBits(value: bigint | number, lsb: number, width: number): bigint {
  return (BigInt(value) & fieldMask(width)) << BigInt(lsb);
}

export function bit(value: bigint, n: number): number {
  return Number((value >> BigInt(n)) & 1n);
}

/** Bits of a 64-bit value that no field of the layout covers. */
export function uncoveredMask(layout: readonly BitField[]): bigint {
  let covered = 0n;
  for (const f of layout) covered |= fieldMask(f.width) << BigInt(f.lsb);
  return U64_MAX & ~covered;
}

export function readLe64(bytes: Uint8Array, offset: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);
}

export function writeLe64(bytes: Uint8Array, offset: number, value: bigint): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setBigUint64(offset, BigInt.asUintN(64, value), true);
}

export function readLe32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

export function writeLe32(bytes: Uint8Array, offset: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(offset, value >>> 0, true);
}

/** 64-bit qwords → little-endian bytes. */
export function qwordsToBytes(qws: readonly bigint[]): Uint8Array {
  const b = new Uint8Array(qws.length * 8);
  qws.forEach((q, i) => writeLe64(b, i * 8, q));
  return b;
}

export function bytesToQwords(bytes: Uint8Array): bigint[] {
  const out: bigint[] = [];
  for (let o = 0; o + 8 <= bytes.length; o += 8) out.push(readLe64(bytes, o));
  return out;
}

/**
 * `%#llx` as the kernel's vsprintf prints it: "0x" and lowercase hex, zero included ("0x0"; unlike
 * C libraries, the kernel's SPECIAL flag prefixes zero too, as real "Extended features (..., 0x0)" lines show).
 */
export function hex(value: bigint | number): string {
  return `0x${BigInt.asUintN(64, BigInt(value)).toString(16)}`;
}

/** `0x%0Nx`. */
export function hexPad(value: bigint | number, digits: number): string {
  return `0x${BigInt.asUintN(64, BigInt(value)).toString(16).padStart(digits, '0')}`;
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T>(error: string): Result<T> {
  return { ok: false, error };
}
