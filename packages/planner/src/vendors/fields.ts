/** Decoded register fields by the specification's register and field names. */
import type { DecodedUnit } from '@ioasid/core/driver';

function norm(name: string): string {
  return name
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .replace(/^SMMU/, '')
    .replace(/REG$/, '');
}

/** A decoded field by the specification's register and field names, as a number. */
export function registerField(d: DecodedUnit, register: string, field: string): number | undefined {
  const want = norm(register);
  const reg = d.registers.find((r) => norm(r.name) === want);
  if (!reg) return undefined;
  let v: number | bigint | boolean | undefined = reg.fields[field];
  if (v === undefined) {
    const key = Object.keys(reg.fields).find((k) => k.toUpperCase() === field.toUpperCase());
    v = key === undefined ? undefined : reg.fields[key];
  }
  if (v === undefined) return undefined;
  return Number(v);
}

/** "fed90000" or "0xfed90000" (sysfs prints %llx, no 0x) as a 0x string; null when not hex. */
export function sysfsHex(text: string | undefined): string | null {
  const s = (text ?? '').trim().toLowerCase().replace(/^0x/, '');
  return /^[0-9a-f]{1,16}$/.test(s) ? `0x${s}` : null;
}
