/**
 * Little-endian C struct codecs. A layout lists its fields in declaration order with their C types;
 * offsets follow the natural alignment rules of the x86-64 / arm64 ABI (and `__aligned_u64`), and the
 * total size is checked against the size the kernel header has, so a typo cannot silently shift a field.
 */

/** The C types a struct field may have: `__u8`, `__u16`, `__u32`, `__s32` and `__aligned_u64`. */
export type ScalarType = 'u8' | 'u16' | 'u32' | 's32' | 'u64';
/** One field of a {@link defineStruct} declaration: its C name, its C type and, for an array, its element count. */
export type FieldSpec = readonly [name: string, type: ScalarType, count?: number];

/** The JavaScript type a field of C type `T` decodes to: bigint for u64, number for the rest. */
export type ValueOf<T extends ScalarType> = T extends 'u64' ? bigint : number;

/** Maps a list of field specs to the decoded object type. */
export type StructValue<F extends readonly FieldSpec[]> = {
  -readonly [K in F[number] as K[0]]: K[2] extends number ? ValueOf<K[1]>[] : ValueOf<K[1]>;
};

const SIZES: Record<ScalarType, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

/** One field of a {@link StructLayout}, placed. */
export interface FieldLayout {
  /** The C field name. */
  readonly name: string;
  /** Its C type. */
  readonly type: ScalarType;
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Elements: 1 for a scalar, the array length for an array. */
  readonly count: number;
}

/**
 * The layout of one C struct, made by {@link defineStruct}: field offsets by the C ABI's natural alignment,
 * and a little-endian codec between the struct's bytes and a plain object with one property per field
 * (u64 fields as bigint, the rest as number).
 */
export class StructLayout<F extends readonly FieldSpec[]> {
  /** Every field with its computed byte offset, in declaration order. */
  readonly fields: readonly FieldLayout[];
  /** sizeof(struct), in bytes, including tail padding; equal to the size given to the constructor. */
  readonly size: number;
  private readonly byName: Map<string, FieldLayout>;

  /** Throws when the computed size differs from `expectedSize` (a mistyped field list). */
  constructor(
    /** The C struct name, e.g. 'iommu_ioas_map'. */
    readonly name: string,
    specs: F,
    expectedSize: number,
  ) {
    let off = 0;
    let align = 1;
    const fields: FieldLayout[] = [];
    for (const [fname, type, count] of specs) {
      const sz = SIZES[type];
      off = Math.ceil(off / sz) * sz;
      align = Math.max(align, sz);
      fields.push({ name: fname, type, offset: off, count: count ?? 1 });
      off += sz * (count ?? 1);
    }
    this.size = Math.ceil(off / align) * align;
    if (this.size !== expectedSize) throw new Error(`struct ${name}: computed size ${this.size} != ${expectedSize}`);
    this.fields = fields;
    this.byName = new Map(fields.map((f) => [f.name, f]));
  }

  /** Offset of the end of `field`: the kernel's offsetofend(), used for min_size. */
  offsetofend(field: F[number][0]): number {
    const f = this.byName.get(field);
    if (!f) throw new Error(`struct ${this.name} has no field ${field}`);
    return f.offset + SIZES[f.type] * f.count;
  }

  /** Byte offset of `field`: the kernel's offsetof(). */
  offsetof(field: F[number][0]): number {
    const f = this.byName.get(field);
    if (!f) throw new Error(`struct ${this.name} has no field ${field}`);
    return f.offset;
  }

  /** A zero-filled value. */
  zero(): StructValue<F> {
    const v: Record<string, unknown> = {};
    for (const f of this.fields) {
      const z = f.type === 'u64' ? 0n : 0;
      v[f.name] = f.count > 1 ? new Array<number | bigint>(f.count).fill(z) : z;
    }
    return v as StructValue<F>;
  }

  /** A zero value with some fields set: the typed API builds commands with it. */
  make(init: Partial<StructValue<F>>): StructValue<F> {
    return Object.assign(this.zero(), init);
  }

  // The codec is compiled once per layout (no eval): the scalar fields are grouped by type into
  // name / offset tables, so decode and encode are a few tight loops without a per-field switch, and
  // arrays are handled separately. A decoded object gets its properties in declaration order, so
  // every value of one layout has the same shape.
  private compiled: CompiledCodec | null = null;

  private codec(): CompiledCodec {
    return (this.compiled ??= compile(this.fields));
  }

  /** Reads the struct at `bytes[offset]`; a buffer shorter than `size` from there throws a RangeError. */
  decode(bytes: Uint8Array, offset = 0): StructValue<F> {
    const c = this.codec();
    const dv = viewOf(bytes, offset, this.size);
    const base = bytes.byteOffset + offset;
    // A copy of the layout's zero value (properties in declaration order, one shape per layout), then
    // filled in place.
    const v: Record<string, unknown> = { ...c.template };
    const u32 = c.u32;
    for (let i = 0; i < u32.names.length; i++) v[u32.names[i]] = dv.getUint32(base + u32.offsets[i], true);
    const u64 = c.u64;
    for (let i = 0; i < u64.names.length; i++) v[u64.names[i]] = dv.getBigUint64(base + u64.offsets[i], true);
    const s32 = c.s32;
    for (let i = 0; i < s32.names.length; i++) v[s32.names[i]] = dv.getInt32(base + s32.offsets[i], true);
    const u16 = c.u16;
    for (let i = 0; i < u16.names.length; i++) v[u16.names[i]] = dv.getUint16(base + u16.offsets[i], true);
    const u8 = c.u8;
    for (let i = 0; i < u8.names.length; i++) v[u8.names[i]] = dv.getUint8(base + u8.offsets[i]);
    for (const f of c.arrays) {
      const arr: (number | bigint)[] = [];
      for (let i = 0; i < f.count; i++) arr.push(readScalar(dv, f.type, base + f.offset + i * SIZES[f.type]));
      v[f.name] = arr;
    }
    return v as StructValue<F>;
  }

  /** Writes `value` at `out[offset]` (a new `size`-byte buffer when `out` is omitted) and returns the buffer; u64 values are stored modulo 2^64. */
  encode(value: StructValue<F>, out?: Uint8Array, offset = 0): Uint8Array {
    const c = this.codec();
    const buf = out ?? new Uint8Array(this.size);
    const dv = viewOf(buf, offset, this.size);
    const base = buf.byteOffset + offset;
    const rec = value as Record<string, number | bigint | (number | bigint)[]>;
    const u32 = c.u32;
    for (let i = 0; i < u32.names.length; i++) {
      const x = rec[u32.names[i]];
      dv.setUint32(base + u32.offsets[i], typeof x === 'number' ? x : Number(x), true);
    }
    const u64 = c.u64;
    for (let i = 0; i < u64.names.length; i++) {
      const x = rec[u64.names[i]];
      // setBigUint64 stores the value modulo 2^64, as BigInt.asUintN(64, x) would.
      dv.setBigUint64(base + u64.offsets[i], typeof x === 'bigint' ? x : BigInt(x as number), true);
    }
    const s32 = c.s32;
    for (let i = 0; i < s32.names.length; i++) {
      const x = rec[s32.names[i]];
      dv.setInt32(base + s32.offsets[i], typeof x === 'number' ? x : Number(x), true);
    }
    const u16 = c.u16;
    for (let i = 0; i < u16.names.length; i++) {
      const x = rec[u16.names[i]];
      dv.setUint16(base + u16.offsets[i], typeof x === 'number' ? x : Number(x), true);
    }
    const u8 = c.u8;
    for (let i = 0; i < u8.names.length; i++) {
      const x = rec[u8.names[i]];
      dv.setUint8(base + u8.offsets[i], typeof x === 'number' ? x : Number(x));
    }
    for (const f of c.arrays) {
      const arr = rec[f.name] as (number | bigint)[];
      for (let i = 0; i < f.count; i++) writeScalar(dv, f.type, base + f.offset + i * SIZES[f.type], arr[i] ?? 0);
    }
    return buf;
  }
}

/** The scalar fields of one type: names and byte offsets, in declaration order. */
interface FieldGroup {
  readonly names: string[];
  readonly offsets: Int32Array;
}

interface CompiledCodec {
  /** Every field in declaration order with a value of its type: decode copies it. */
  readonly template: Readonly<Record<string, number | bigint | null>>;
  readonly u8: FieldGroup;
  readonly u16: FieldGroup;
  readonly u32: FieldGroup;
  readonly s32: FieldGroup;
  readonly u64: FieldGroup;
  readonly arrays: readonly FieldLayout[];
}

function compile(fields: readonly FieldLayout[]): CompiledCodec {
  const group = (type: ScalarType): FieldGroup => {
    const scalars = fields.filter((f) => f.type === type && f.count === 1);
    return { names: scalars.map((f) => f.name), offsets: Int32Array.from(scalars, (f) => f.offset) };
  };
  return {
    template: Object.fromEntries(fields.map((f) => [f.name, f.count > 1 ? null : f.type === 'u64' ? 0n : 0])),
    u8: group('u8'),
    u16: group('u16'),
    u32: group('u32'),
    s32: group('s32'),
    u64: group('u64'),
    arrays: fields.filter((f) => f.count > 1),
  };
}

/**
 * A DataView over the whole buffer of `bytes` (callers add bytes.byteOffset to their offsets). The
 * last one is cached: callers that reuse one buffer (the ioctl argument, a fault record) make none.
 * Bounds are those of a DataView of exactly `size` bytes at that offset, as before.
 */
let lastBuffer: ArrayBufferLike | null = null;
let lastView: DataView | null = null;
function viewOf(bytes: Uint8Array, offset: number, size: number): DataView {
  const buffer = bytes.buffer;
  const start = bytes.byteOffset + offset;
  if (!(start >= 0 && start + size <= buffer.byteLength)) return new DataView(buffer, start, size); // throws the same RangeError
  if (buffer !== lastBuffer || lastView === null || lastView.byteLength !== buffer.byteLength) {
    lastView = new DataView(buffer);
    lastBuffer = buffer;
  }
  return lastView;
}

function readScalar(dv: DataView, type: ScalarType, off: number): number | bigint {
  switch (type) {
    case 'u8':
      return dv.getUint8(off);
    case 'u16':
      return dv.getUint16(off, true);
    case 'u32':
      return dv.getUint32(off, true);
    case 's32':
      return dv.getInt32(off, true);
    case 'u64':
      return dv.getBigUint64(off, true);
  }
}

function writeScalar(dv: DataView, type: ScalarType, off: number, v: number | bigint): void {
  switch (type) {
    case 'u8':
      dv.setUint8(off, Number(v) & 0xff);
      return;
    case 'u16':
      dv.setUint16(off, Number(v) & 0xffff, true);
      return;
    case 'u32':
      dv.setUint32(off, Number(v) >>> 0, true);
      return;
    case 's32':
      dv.setInt32(off, Number(v) | 0, true);
      return;
    case 'u64':
      dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
      return;
  }
}

/** Declares a C struct layout; `size` is the sizeof() the kernel header gives, checked against the computed layout. */
export function defineStruct<const F extends readonly FieldSpec[]>(name: string, size: number, fields: F): StructLayout<F> {
  return new StructLayout(name, fields, size);
}

// Number views of u64 fields, for handlers that take a fast path when every value is below 2^53.

/**
 * The u64 at `off` (little-endian) as a number when it is below 2^53 (exact), else -1: a caller that
 * gets -1 must use the bigint value (`decode`) instead.
 */
export function u64NumberAt(bytes: Uint8Array, off: number): number {
  const lo = (bytes[off] | (bytes[off + 1] << 8) | (bytes[off + 2] << 16) | (bytes[off + 3] << 24)) >>> 0;
  const hi = (bytes[off + 4] | (bytes[off + 5] << 8) | (bytes[off + 6] << 16) | (bytes[off + 7] << 24)) >>> 0;
  return hi < 0x200000 ? hi * 4294967296 + lo : -1;
}

/** Stores a u64 given as an integer in [0, 2^53) (little-endian): the bytes `setBigUint64` would write. */
export function setU64Number(bytes: Uint8Array, off: number, v: number): void {
  // Not `v % 2^32`: a double modulo is a call into the C library in compiled code; the floor of an
  // exact quotient by a power of two is exact.
  const hi = Math.floor(v / 4294967296);
  const lo = v - hi * 4294967296;
  bytes[off] = lo & 0xff;
  bytes[off + 1] = (lo >>> 8) & 0xff;
  bytes[off + 2] = (lo >>> 16) & 0xff;
  bytes[off + 3] = lo >>> 24;
  bytes[off + 4] = hi & 0xff;
  bytes[off + 5] = (hi >>> 8) & 0xff;
  bytes[off + 6] = (hi >>> 16) & 0xff;
  bytes[off + 7] = hi >>> 24;
}

/** The u32 at `off` (little-endian), as `decode` reads it. */
export function u32At(bytes: Uint8Array, off: number): number {
  return (bytes[off] | (bytes[off + 1] << 8) | (bytes[off + 2] << 16) | (bytes[off + 3] << 24)) >>> 0;
}
