/**
 * Register values as host profiles spell them (JSON or YAML written by people or by `ioasid probe`): one reader
 * for every vendor, so the same mistake gets the same message whichever plugin reads it.
 */
import { err, ok, type Result } from './result.js';

/** How a profile value is shown in an error message: strings quoted, bigints with `n`, a missing value as "nothing". */
export function describeProfileValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Reads `registers.<name>` of a host profile: a hex string (with or without `0x`) or a bigint, and a plain
 * number only for registers of at most 32 bits (a wider register written as a JSON number may already have lost
 * its low bits). A value that does not fit in `bits` is refused. `example` is shown in the message.
 */
export function parseProfileRegister(name: string, v: unknown, bits: number, example: string): Result<bigint> {
  const expected = `registers.${name}: expected a ${bits}-bit hex string like ${example}, got ${describeProfileValue(v)}`;
  let value: bigint;
  if (typeof v === 'bigint') value = v;
  else if (typeof v === 'number' && bits <= 32 && Number.isSafeInteger(v)) value = BigInt(v);
  else if (typeof v === 'string') {
    const m = /^(?:0[xX])?([0-9a-fA-F]{1,32})$/.exec(v.trim());
    if (!m) return err(expected);
    value = BigInt(`0x${m[1]}`);
  } else return err(expected);
  if (value < 0n || value >= 1n << BigInt(bits)) return err(`${expected} (the value does not fit in ${bits} bits)`);
  return ok(value);
}
