/**
 * Little-endian access to hardware records: every IOMMU's queue entries, descriptors and table entries are
 * little-endian (`le64_to_cpu` / `cpu_to_le64` in the drivers). Reads and writes go byte by byte, so no
 * DataView is allocated per access and `bytes` may be any view into a larger buffer.
 */

/** The u32 at `offset` of `bytes`, little-endian. */
export function readLe32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

/** Writes the low 32 bits of `value` at `offset` of `bytes`, little-endian. */
export function writeLe32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
  bytes[offset + 2] = (value >>> 16) & 0xff;
  bytes[offset + 3] = (value >>> 24) & 0xff;
}

/** The u64 at `offset` of `bytes`, little-endian. */
export function readLe64(bytes: Uint8Array, offset: number): bigint {
  return (BigInt(readLe32(bytes, offset + 4)) << 32n) | BigInt(readLe32(bytes, offset));
}

/** Writes `value` (taken modulo 2^64) at `offset` of `bytes`, little-endian. */
export function writeLe64(bytes: Uint8Array, offset: number, value: bigint): void {
  const v = BigInt.asUintN(64, value);
  writeLe32(bytes, offset, Number(v & 0xffff_ffffn));
  writeLe32(bytes, offset + 4, Number(v >> 32n));
}

/**
 * The first `n` little-endian u64 words of `bytes` (default: every whole word). A word that is not wholly
 * inside `bytes` reads as 0, so a decoder of untrusted bytes that checks the length afterwards (or not at
 * all) cannot throw.
 */
export function readLe64Words(bytes: Uint8Array, n: number = Math.floor(bytes.length / 8)): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push((i + 1) * 8 <= bytes.length ? readLe64(bytes, i * 8) : 0n);
  return out;
}

/** `words` as little-endian bytes, 8 per word (each taken modulo 2^64). */
export function writeLe64Words(words: readonly bigint[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 8);
  for (let i = 0; i < words.length; i++) writeLe64(bytes, i * 8, words[i]);
  return bytes;
}

/** Whether this host stores a typed array's words little-endian, as records and uAPI structs are laid out (checked, not assumed). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The 32-bit words of a byte buffer that comes back again and again (a hardware queue's slot, a response
 * record, the buffer a fault thread passes to every read(2)), for writing whole little-endian words in one
 * store each instead of four byte stores. The view is kept by the buffer's identity, so it is made once
 * per buffer; another buffer makes another view.
 */
export class LeWordView {
  private bytes: Uint8Array | null = null;
  private words: Int32Array | null = null;
  /** Bytes `words` covers, -1 without words: a typed array's length is a dozen instructions to read, this one a load. */
  private wordBytes = -1;

  /**
   * The words of `b` from its start, when they cover its first `length` bytes; null when `b` is not 4-byte
   * aligned, the host is big-endian, or `b` is on a resizable buffer (which may shrink under the view): the
   * caller then writes bytes (writeLe32). Once `b`'s buffer is detached, the view answers as before and,
   * like `b` itself, reads undefined and drops stores.
   */
  of(b: Uint8Array, length: number): Int32Array | null {
    // The buffer seen last, the common case, in a few bytes of bytecode: V8 inlines a callee into a compiled
    // caller only while their bytecode fits its budget, and every record of a fault round trip passes here.
    if (b !== this.bytes) this.view(b);
    return length <= this.wordBytes ? this.words : null;
  }

  /** Makes the words of a buffer not seen last (see of). */
  private view(b: Uint8Array): void {
    this.bytes = b;
    const w = HOST_LITTLE_ENDIAN && (b.byteOffset & 3) === 0 && (b.buffer as { readonly resizable?: boolean }).resizable !== true ? new Int32Array(b.buffer, b.byteOffset, b.byteLength >> 2) : null;
    this.words = w;
    this.wordBytes = w !== null ? w.length << 2 : -1;
  }
}
