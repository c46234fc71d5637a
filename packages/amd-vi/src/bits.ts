/**
 * Little-endian access and the hex formats of the AMD-Vi records. Bit fields, Result and the log-prefix
 * stripper come from @ioasid/core/driver.
 */

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

