/**
 * A register or record layout with its field names kept in the type, so that `decodeBitFields` returns
 * an object with exactly those keys and the public type reads `readonly BitField<'V' | 'PPN'>[]`.
 */
import type { BitField } from '@ioasid/core/driver';

/** `fields` as a layout whose type names its fields. */
export function layout<N extends string>(fields: readonly BitField<N>[]): readonly BitField<N>[] {
  return fields;
}
