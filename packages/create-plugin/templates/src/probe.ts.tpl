/**
 * A __NAME__ unit from a host profile (its `cap` register validated and decoded) and from the boot log:
 * the line the driver prints when it probes a unit, `__ID__ <unit>: CAP 0x<value>`, read back. Replace
 * the line with the Linux driver's exact probe message.
 */
import { parseProfileNumber } from '@ioasid/core';
import { err, ok, type DecodedUnit, type RawRegisters, type Result } from '@ioasid/core/driver';
import { VENDOR_ID } from './ids.js';
import { capsFromCap, decodeCap, hwIdOf } from './registers.js';

/** A profile's raw registers (`{ cap: '0x...' }`) decoded into a unit; errors name the register. */
export function decodeUnitRegisters(raw: RawRegisters): Result<DecodedUnit> {
  const regs = raw ?? {};
  for (const k of Object.keys(regs)) if (k !== 'cap') return err(`unknown register '${k}' (known: cap)`);
  const value = parseProfileNumber(regs.cap);
  if (value === null) return err(`cap: expected a 64-bit number such as '0x3fd3010', got ${JSON.stringify(regs.cap) ?? 'nothing'}`);
  const f = decodeCap(value);
  if (!f.ok) return f;
  return ok({
    vendor: VENDOR_ID,
    caps: capsFromCap(f.value),
    hwId: hwIdOf(f.value),
    registers: [{ name: 'CAP', value, fields: { ...f.value } }],
    profileRegisters: { cap: `0x${value.toString(16)}` },
  });
}

/** The line the driver prints when it probes unit `id`. */
export function renderProbeLine(id: string, cap: bigint): string {
  return `${VENDOR_ID} ${id}: CAP 0x${cap.toString(16)}`;
}

// An optional `[ seconds.micros]` dmesg timestamp, the unit id, then CAP as 1 to 16 hex digits.
const PROBE_LINE = new RegExp(`^(?:\\[\\s*\\d+\\.\\d+\\]\\s*)?${VENDOR_ID.replace(/-/g, '\\-')} ([a-z0-9-]+): CAP 0x([0-9a-f]{1,16})$`, 'i');

/** Reads a probe line into the unit's registers; lines that are not one answer null. */
export function probeLine(line: string): Result<{ id: string; registers: RawRegisters }> | null {
  const m = PROBE_LINE.exec(line.trim());
  if (!m) return null;
  const cap = BigInt(`0x${m[2]}`);
  const f = decodeCap(cap);
  if (!f.ok) return err(`${m[1]}: ${f.error}`);
  return ok({ id: m[1], registers: { cap: `0x${cap.toString(16)}` } });
}
