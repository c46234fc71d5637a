/**
 * Little-endian C struct codecs. A layout lists its fields in declaration order with their C types;
 * offsets follow the natural alignment rules of the x86-64 / arm64 ABI (and `__aligned_u64`), and the
 * total size is checked against the size the kernel header has, so a typo cannot silently shift a field.
 */

export type ScalarType = 'u8' | 'u16' | 'u32' | 's32' | 'u64';
export type FieldSpec = readonly [name: string, type: ScalarType, count?: number];

type ValueOf<T extends ScalarType> = T extends 'u64' ? bigint : number;

/** Maps a list of field specs to the decoded object type. */
export type StructValue<F extends readonly FieldSpec[]> = {
  -readonly [K in F[number] as K[0]]: K[2] extends number ? ValueOf<K[1]>[] : ValueOf<K[1]>;
};

const SIZES: Record<ScalarType, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

export interface FieldLayout {
  readonly name: string;
  readonly type: ScalarType;
  readonly offset: number;
  readonly count: number;
}

export class StructLayout<F extends readonly FieldSpec[]> {
  readonly fields: readonly FieldLayout[];
  readonly size: number;
  private readonly byName: Map<string, FieldLayout>;

  constructor(
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

  decode(bytes: Uint8Array, offset = 0): StructValue<F> {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, this.size);
    const v: Record<string, unknown> = {};
    for (const f of this.fields) {
      if (f.count > 1) {
        const arr: (number | bigint)[] = [];
        for (let i = 0; i < f.count; i++) arr.push(readScalar(dv, f.type, f.offset + i * SIZES[f.type]));
        v[f.name] = arr;
      } else v[f.name] = readScalar(dv, f.type, f.offset);
    }
    return v as StructValue<F>;
  }

  encode(value: StructValue<F>, out?: Uint8Array, offset = 0): Uint8Array {
    const buf = out ?? new Uint8Array(this.size);
    const dv = new DataView(buf.buffer, buf.byteOffset + offset, this.size);
    const rec = value as Record<string, number | bigint | (number | bigint)[]>;
    for (const f of this.fields) {
      const val = rec[f.name];
      if (f.count > 1) {
        const arr = val as (number | bigint)[];
        for (let i = 0; i < f.count; i++) writeScalar(dv, f.type, f.offset + i * SIZES[f.type], arr[i] ?? 0);
      } else writeScalar(dv, f.type, f.offset, val as number | bigint);
    }
    return buf;
  }
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

export function defineStruct<const F extends readonly FieldSpec[]>(name: string, size: number, fields: F): StructLayout<F> {
  return new StructLayout(name, fields, size);
}
