/**
 * Probing a VT-d unit: the registers of a host profile validated with the intel-iommu driver's own sanity
 * checks and decoded into core's vocabulary, and the `DMAR: dmarN: reg_base_addr ...` boot line
 * (`ioasid probe`) read back into those registers.
 */
import { stripKernelLogPrefix } from '@ioasid/core/driver';
import type { BitField, DecodedRegister, DecodedUnit, RawRegisters, Result } from '@ioasid/core/driver';
import {
  CAP_LAYOUT,
  ECAP_LAYOUT,
  VER_LAYOUT,
  decodeCap,
  decodeEcap,
  decodeVer,
  hex64,
  vtdHwId,
  vtdNormalizedCaps,
} from './registers.js';
import { parseVtdLogLine } from './logs.js';
import { describeProfileValue, parseProfileRegister, err, ok } from '@ioasid/core/driver';

/** The registers of one unit, parsed. */
export interface VtdRawRegisters {
  /** VER_REG (offset 0x0), 32 bits. */
  readonly ver: bigint;
  /** CAP_REG (offset 0x8), 64 bits. */
  readonly cap: bigint;
  /** ECAP_REG (offset 0x10), 64 bits. */
  readonly ecap: bigint;
  /** DRHD register base (the `reg_base_addr` of the boot line), when the profile gives it. */
  readonly regBase?: bigint;
}

const VENDOR = 'vtd';

const KNOWN_REGISTERS = ['ver', 'cap', 'ecap', 'regBase'];

/**
 * A register value from a profile: a hex string ("0x19ed008c40780c66", or without 0x as dmesg prints
 * it), or a bigint; `bits` bounds it.
 */

/** Validates `{ ver, cap, ecap, regBase? }` from a host profile, with the kernel's own sanity checks. */
export function parseVtdRegisters(raw: RawRegisters): Result<VtdRawRegisters> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return err(`registers: expected an object { ver, cap, ecap }, got ${describeProfileValue(raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (!KNOWN_REGISTERS.includes(key)) return err(`registers.${key}: not a VT-d register (expected ver, cap, ecap and optionally regBase)`);
  }
  const ver = parseProfileRegister('ver', raw['ver'], 32, '0x60');
  if (!ver.ok) return ver;
  const cap = parseProfileRegister('cap', raw['cap'], 64, '0x19ed008c40780c66');
  if (!cap.ok) return cap;
  const ecap = parseProfileRegister('ecap', raw['ecap'], 64, '0x3ee9e86f050df');
  if (!ecap.ok) return ecap;
  let regBase: bigint | undefined;
  if (raw['regBase'] !== undefined) {
    const r = parseProfileRegister('regBase', raw['regBase'], 64, '0xfed90000');
    if (!r.ok) return r;
    if (r.value & 0xfffn) return err(`registers.regBase: ${hex64(r.value)} is not 4 KiB aligned (a DRHD register set is page aligned)`);
    regBase = r.value;
  }
  const ones = (1n << 64n) - 1n;
  if (cap.value === ones && ecap.value === ones) {
    // dmar.c map_iommu(): warn_invalid_dmar(..., " returns all ones") and the DRHD is ignored.
    return err('registers: cap and ecap both read as all ones; Linux ignores such a DRHD ("returns all ones")');
  }
  return ok({ ver: ver.value, cap: cap.value, ecap: ecap.value, regBase });
}

function layoutFields(layout: readonly BitField[], decoded: Record<string, number | bigint>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of layout) out[f.name] = Number(decoded[f.name]);
  return out;
}

function decodedRegisters(r: VtdRawRegisters): DecodedRegister[] {
  const ver = decodeVer(r.ver) as unknown as Record<string, number | bigint>;
  const cap = decodeCap(r.cap) as unknown as Record<string, number | bigint>;
  const ecap = decodeEcap(r.ecap) as unknown as Record<string, number | bigint>;
  return [
    { name: 'VER_REG', value: r.ver, fields: layoutFields(VER_LAYOUT, ver) },
    { name: 'CAP_REG', value: r.cap, fields: layoutFields(CAP_LAYOUT, cap) },
    { name: 'ECAP_REG', value: r.ecap, fields: layoutFields(ECAP_LAYOUT, ecap) },
  ];
}

/** The DecodedUnit core keeps for a unit. */
export function decodeVtdUnit(r: VtdRawRegisters): DecodedUnit {
  const profileRegisters: Record<string, string> = { ver: hex64(r.ver), cap: hex64(r.cap), ecap: hex64(r.ecap) };
  if (r.regBase !== undefined) profileRegisters.regBase = hex64(r.regBase);
  return {
    vendor: VENDOR,
    caps: vtdNormalizedCaps(r.ver, r.cap, r.ecap),
    hwId: vtdHwId(r.ver, r.cap, r.ecap),
    registers: decodedRegisters(r),
    profileRegisters,
  };
}

/** `ioasid probe`: a `DMAR: dmarN: reg_base_addr ... ver ... cap ... ecap ...` line becomes a unit. */
export function probeVtdLine(line: string): Result<{
  /** The unit's name, `dmarN`. */
  id: string;
  /** VER/CAP/ECAP and the register base the line prints, as hex strings in host profile form. */
  registers: RawRegisters;
}> | null {
  const text = stripKernelLogPrefix(line).trimEnd();
  if (!/^(?:DMAR|dmar): (?:dmar\d+|IOMMU \d+): reg_base_addr/.test(text)) return null;
  const r = parseVtdLogLine(text);
  if (!r.ok) return err(r.error);
  if (r.value.kind !== 'boot') return null;
  const b = r.value;
  return ok({
    id: `dmar${b.seq}`,
    registers: { ver: hex64(b.ver), cap: hex64(b.cap), ecap: hex64(b.ecap), regBase: hex64(b.regBase) },
  });
}
