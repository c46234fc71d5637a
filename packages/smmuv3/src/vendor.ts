/**
 * The Arm SMMUv3 vendor family (the arm-smmu-v3 driver's iommu_ops): profile validation, unit creation and
 * the boot lines `ioasid probe` reads. The explanations of `ioasid decode smmuv3 …` are decode.ts.
 */
import type { DecodedRegister, DecodedUnit, IommuVendor, RawRegisters, Result, UnitInit } from '@ioasid/core/driver';
import type { SmmuRawRegisters, SmmuRegisters } from './registers.js';
import { smmuHwId, smmuLinuxProbe, smmuNormalizedCaps } from './probe.js';
import { decodeAidr, decodeSmmuRegisters, decodeIdr0, decodeIdr1, decodeIdr3, decodeIdr5, decodeIidr } from './registers.js';
import { hex32, parseProfileRegisters, parseU32, profileRegistersOf } from './raw.js';
import { LINUX_FORM_KEYS, unitFromLinux } from './linux-unit.js';
import { SmmuUnit } from './unit.js';
import { parseOptionMaskLine, parseProbeLine, parseQueueAllocLine, stripLogPrefix } from './logs.js';

const VENDOR = 'smmuv3';

function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

function fail<T>(error: string): Result<T> {
  return { ok: false, error };
}

// ---------------------------------------------------------------------------------------------
// Registers
// ---------------------------------------------------------------------------------------------

export type RegisterName = 'IDR0' | 'IDR1' | 'IDR2' | 'IDR3' | 'IDR4' | 'IDR5' | 'IIDR' | 'AIDR';
export const REGISTER_NAMES: readonly RegisterName[] = ['IDR0', 'IDR1', 'IDR2', 'IDR3', 'IDR4', 'IDR5', 'IIDR', 'AIDR'];

export function registerFields(name: RegisterName, value: number): Record<string, number> {
  switch (name) {
    case 'IDR0':
      return { ...decodeIdr0(value) };
    case 'IDR1':
      return { ...decodeIdr1(value) };
    case 'IDR2':
      // BA_VATOS: the VATOS page offset (nothing in Linux reads it).
      return { BA_VATOS: value & 0x3ff };
    case 'IDR3':
      return { ...decodeIdr3(value) };
    case 'IDR4':
      return {};
    case 'IDR5':
      return { ...decodeIdr5(value) };
    case 'IIDR':
      return { ...decodeIidr(value) };
    case 'AIDR':
      return { ...decodeAidr(value) };
  }
}

export function decodedRegisters(regs: { idr: readonly number[]; iidr: number; aidr: number }): DecodedRegister[] {
  const values = [...regs.idr, regs.iidr, regs.aidr];
  return REGISTER_NAMES.map((name, i) => ({ name, value: BigInt(values[i] >>> 0), fields: registerFields(name, values[i]) }));
}

// ---------------------------------------------------------------------------------------------
// decode() inputs
// ---------------------------------------------------------------------------------------------

export const REGISTER_KEY: Readonly<Record<string, RegisterName>> = {
  idr0: 'IDR0', idr1: 'IDR1', idr2: 'IDR2', idr3: 'IDR3', idr4: 'IDR4', idr5: 'IDR5', iidr: 'IIDR', aidr: 'AIDR',
};

/** `idr0=0x… idr1=…`, `IDR0: 0x…`, or `idr=0x…,0x…,… iidr=… aidr=…`; null when the text has no `key=`. */
export function parseRegisterPairs(text: string): Result<Map<RegisterName, number>> | null {
  if (!/^\s*(idr[0-5]?|iidr|aidr)\s*[=:]/i.test(text)) return null;
  const out = new Map<RegisterName, number>();
  const re = /(idr[0-5]?|iidr|aidr)\s*[=:]\s*((?:(?:0x)?[0-9a-f]+\s*,\s*)*(?:0x)?[0-9a-f]+)/gi;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const key = m[1].toLowerCase();
    const values = m[2].split(/\s*,\s*/);
    if (key === 'idr') {
      if (values.length !== 6) return fail(`idr: expected 6 comma-separated values (IDR0..IDR5), got ${values.length}`);
      for (let i = 0; i < 6; i++) {
        const v = parseU32(values[i], `idr[${i}] (IDR${i})`);
        if (!v.ok) return v;
        out.set(REGISTER_KEY[`idr${i}`], v.value);
      }
    } else {
      if (values.length !== 1) return fail(`${key}: expected one value, got ${values.length}`);
      const name = REGISTER_KEY[key];
      const v = parseU32(values[0], name);
      if (!v.ok) return v;
      out.set(name, v.value);
    }
  }
  const leftover = text.replace(re, '').replace(/[\s,;]+/g, '');
  if (leftover) return fail(`cannot read '${leftover}': expected name=value pairs of IDR0..IDR5, IIDR, AIDR`);
  return ok(out);
}

// ---------------------------------------------------------------------------------------------
// The vendor
// ---------------------------------------------------------------------------------------------

interface UnitRegisters {
  readonly raw: SmmuRawRegisters;
  readonly regs: SmmuRegisters;
  /** Fields the source could not give (a unit read from the boot log). */
  readonly unknown: readonly string[];
  /** The profile form to write back when it is not the idr/iidr/aidr one. */
  readonly form?: Readonly<Record<string, unknown>>;
}

/** A profile's registers: the idr/iidr/aidr dump, or the values of the boot log's probe lines. */
function readUnitRegisters(raw: RawRegisters): Result<UnitRegisters> {
  const given = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : null;
  if (given && given['idr'] === undefined && given['features'] !== undefined) {
    const lin = unitFromLinux(given);
    if (!lin.ok) return lin;
    const regs = decodeSmmuRegisters(lin.value.raw);
    if (!regs.ok) return fail(`smmuv3 registers: ${regs.error}`);
    return ok({ raw: lin.value.raw, regs: regs.value, unknown: lin.value.unknown, form: lin.value.form });
  }
  // A register dump wins over the probe line's values when a log has both.
  const dump = given && given['idr'] !== undefined ? Object.fromEntries(Object.entries(given).filter(([k]) => !(LINUX_FORM_KEYS as readonly string[]).includes(k))) : raw;
  const parsed = parseProfileRegisters(dump);
  if (!parsed.ok) return parsed;
  return ok({ raw: parsed.value.raw, regs: parsed.value.regs, unknown: [] });
}

export class SmmuV3Vendor implements IommuVendor {
  readonly id = VENDOR;
  readonly name = 'Arm SMMUv3';

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    const read = readUnitRegisters(raw);
    if (!read.ok) return read;
    const { regs, raw: rawRegs, unknown, form } = read.value;
    // A host cannot hold an SMMU the driver refuses to probe.
    const probe = smmuLinuxProbe(regs);
    if (!probe.ok) return fail(`smmuv3 registers: Linux refuses this SMMU: "${probe.error}"`);
    return ok({
      vendor: VENDOR,
      caps: smmuNormalizedCaps(regs),
      hwId: unknown.length ? `${smmuHwId(regs)} [from the boot log; unknown: ${unknown.join(', ')}]` : smmuHwId(regs),
      registers: decodedRegisters(rawRegs),
      profileRegisters: form ?? profileRegistersOf(rawRegs),
    });
  }

  createUnit(init: UnitInit): SmmuUnit {
    return new SmmuUnit(init);
  }

  /**
   * Rebuilds a unit from a boot line when the line carries its registers. Linux's arm-smmu-v3 probe prints only
   * derived values ("ias …, oas … (features 0x…)" and the queue sizes), never IDR0..IDR5, IIDR or AIDR, so that
   * line yields an error naming what is missing. A line of the form
   * `arm-smmu-v3 <dev>: idr=0x…,0x…,0x…,0x…,0x…,0x… iidr=0x… aidr=0x…` (a register dump appended to a log, e.g.
   * from IOMMU_GET_HW_INFO) is read into a unit.
   */
  probeLine(line: string): Result<{ id: string; registers: RawRegisters }> | null {
    const { device, message } = stripLogPrefix(line);
    const msg = message.trim();
    // The probe's own lines give a unit with the fields Linux does not print marked unknown (linux-unit.ts);
    // the planner merges the lines of one device.
    const id = device ?? 'arm-smmu-v3';
    const probe = parseProbeLine(line);
    if (probe.ok) return ok({ id, registers: { ias: probe.value.ias, oas: probe.value.oas, features: hex32(probe.value.features) } });
    if (device !== undefined) {
      const q = parseQueueAllocLine(line);
      if (q.ok && ['cmdq', 'evtq', 'priq'].includes(q.value.queue)) return ok({ id, registers: { [`${q.value.queue}Entries`]: q.value.entries } });
      const o = parseOptionMaskLine(line);
      if (o.ok) return ok({ id, registers: { options: `0x${o.value.options.toString(16)}` } });
    }
    if (device === undefined || !/^(idr[0-5]?|iidr|aidr)\s*[=:]/i.test(msg)) return null;
    const pairs = parseRegisterPairs(msg);
    if (!pairs) return null;
    if (!pairs.ok) return fail(`arm-smmu-v3 ${device}: ${pairs.error}`);
    const missing = REGISTER_NAMES.filter((n) => !pairs.value.has(n));
    if (missing.length > 0) return fail(`arm-smmu-v3 ${device}: register line lacks ${missing.join(', ')}`);
    const v = pairs.value;
    const registers = profileRegistersOf({ idr: REGISTER_NAMES.slice(0, 6).map((n) => v.get(n)!), iidr: v.get('IIDR')!, aidr: v.get('AIDR')! });
    const check = this.decodeRegisters(registers);
    if (!check.ok) return fail(`arm-smmu-v3 ${device}: ${check.error}`);
    return ok({ id: device, registers });
  }
}

