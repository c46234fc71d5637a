/**
 * The `registers` object of an `smmuv3` unit in a host profile: `{ idr: [IDR0..IDR5], iidr, aidr }`, each a
 * 32-bit value written as a hex string ('0x0d44101a') or a number. Validation names the field and what was
 * expected, so that a hand-written profile can be fixed from the message alone.
 */
import type { RawRegisters } from '@ioasid/core/driver';
import type { Result } from '@ioasid/core/driver';
import type { SmmuRawRegisters, SmmuRegisters } from './registers.js';
import { decodeSmmuRegisters } from './registers.js';

const KNOWN_KEYS = ['idr', 'iidr', 'aidr'] as const;

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
}

/** A u32 given as a hex string (with or without 0x) or as a non-negative integer. */
export function parseU32(v: unknown, field: string): Result<number> {
  const expected = `${field}: expected a 32-bit hex value such as '0x00000000'`;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return { ok: true, value: v >>> 0 };
    return { ok: false, error: `${expected}, got ${v} (not an integer in 0..0xffffffff)` };
  }
  if (typeof v === 'bigint') {
    if (v >= 0n && v <= 0xffffffffn) return { ok: true, value: Number(v) >>> 0 };
    return { ok: false, error: `${expected}, got ${v}n (wider than 32 bits)` };
  }
  if (typeof v !== 'string') return { ok: false, error: `${expected}, got ${v === undefined ? 'nothing' : describe(v)}` };
  const s = v.trim();
  if (!/^(0x)?[0-9a-f]+$/i.test(s)) return { ok: false, error: `${expected}, got ${describe(v)} (not hexadecimal)` };
  const digits = s.replace(/^0x/i, '').replace(/^0+(?=.)/, '');
  if (digits.length > 8) return { ok: false, error: `${expected}, got ${describe(v)} (wider than 32 bits)` };
  return { ok: true, value: Number.parseInt(digits, 16) >>> 0 };
}

export function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

export interface ParsedProfileRegisters {
  readonly raw: SmmuRawRegisters;
  readonly regs: SmmuRegisters;
}

/** Validates a profile's `registers` and decodes the fields. */
export function parseProfileRegisters(raw: RawRegisters): Result<ParsedProfileRegisters> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, error: `smmuv3 registers: expected an object { idr: [6 values], iidr, aidr }, got ${describe(raw)}` };
  }
  for (const k of Object.keys(raw)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(k)) {
      return { ok: false, error: `smmuv3 registers: unknown field '${k}'; the fields are idr (IDR0..IDR5), iidr and aidr` };
    }
  }
  const idrIn = raw['idr'];
  if (!Array.isArray(idrIn)) {
    return { ok: false, error: `smmuv3 registers: idr: expected an array of 6 hex u32 values (IDR0..IDR5), got ${idrIn === undefined ? 'nothing' : describe(idrIn)}` };
  }
  if (idrIn.length !== 6) {
    return { ok: false, error: `smmuv3 registers: idr: expected 6 values (IDR0..IDR5), got ${idrIn.length}` };
  }
  const idr: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = parseU32(idrIn[i], `smmuv3 registers: idr[${i}] (IDR${i})`);
    if (!r.ok) return r;
    idr.push(r.value);
  }
  const iidr = parseU32(raw['iidr'], 'smmuv3 registers: iidr (SMMU_IIDR)');
  if (!iidr.ok) return iidr;
  const aidr = parseU32(raw['aidr'], 'smmuv3 registers: aidr (SMMU_AIDR)');
  if (!aidr.ok) return aidr;
  const rawRegs: SmmuRawRegisters = { idr, iidr: iidr.value, aidr: aidr.value };
  const regs = decodeSmmuRegisters(rawRegs);
  if (!regs.ok) return { ok: false, error: `smmuv3 registers: ${regs.error}` };
  return { ok: true, value: { raw: rawRegs, regs: regs.value } };
}

/** The normalized form written back into a profile: 8-digit lowercase hex strings. */
export function profileRegistersOf(raw: SmmuRawRegisters): { idr: string[]; iidr: string; aidr: string } {
  return { idr: raw.idr.map(hex32), iidr: hex32(raw.iidr), aidr: hex32(raw.aidr) };
}
