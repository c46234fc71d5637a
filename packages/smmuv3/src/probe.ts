/**
 * Probing an SMMU: the `registers` of an `smmuv3` unit in a host profile and the boot lines `ioasid probe` reads.
 *
 * A profile holds either the register dump `{ idr: [IDR0..IDR5], iidr, aidr }` (each a 32-bit value written as a
 * hex string ('0x0d44101a') or a number; validation names the field and what was expected, so that a hand-written
 * profile can be fixed from the message alone), or the values of the lines Linux prints at probe
 * (arm_smmu_device_hw_probe): `ias %lu-bit, oas %lu-bit (features 0x%08x)`, `allocated %u entries for
 * cmdq|evtq|priq` and `option mask 0x%x`. From those the ID registers are rebuilt from the ARM_SMMU_FEAT_* bits
 * they were derived from (features.ts); the fields Linux does not print (SIDSIZE, SSIDSIZE, the granules,
 * STALL_MAX, ASID16/VMID16, IIDR, AIDR, and a queue size whose line is missing) are listed in `unknown` with the
 * architectural default in their place, so that a plan can say which conclusions depend on them.
 */
import type { DecodedRegister, DecodedUnit, RawRegisters } from '@ioasid/core/driver';
import { err, ok, type Result } from '@ioasid/core/driver';
import {
  IDR0_HTTU,
  IDR0_ST_LEVEL,
  IDR0_STALL_MODEL,
  IDR0_TTENDIAN,
  IDR0_TTF,
  decodeAidr,
  decodeIdr0,
  decodeIdr1,
  decodeIdr3,
  decodeIdr5,
  decodeIidr,
  decodeSmmuRegisters,
  encodeIdr0,
  encodeIdr1,
  encodeIdr3,
  encodeIdr5,
  oasEncoding,
  type SmmuRawRegisters,
  type SmmuRegisters,
} from './registers.js';
import { ARM_SMMU_FEAT, smmuHwId, smmuLinuxProbe, smmuNormalizedCaps } from './features.js';
import { parseOptionMaskLine, parseProbeLine, parseQueueAllocLine, stripLogPrefix } from './logs.js';

const VENDOR = 'smmuv3';

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
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return ok(v >>> 0);
    return err(`${expected}, got ${v} (not an integer in 0..0xffffffff)`);
  }
  if (typeof v === 'bigint') {
    if (v >= 0n && v <= 0xffffffffn) return ok(Number(v) >>> 0);
    return err(`${expected}, got ${v}n (wider than 32 bits)`);
  }
  if (typeof v !== 'string') return err(`${expected}, got ${v === undefined ? 'nothing' : describe(v)}`);
  const s = v.trim();
  if (!/^(0x)?[0-9a-f]+$/i.test(s)) return err(`${expected}, got ${describe(v)} (not hexadecimal)`);
  const digits = s.replace(/^0x/i, '').replace(/^0+(?=.)/, '');
  if (digits.length > 8) return err(`${expected}, got ${describe(v)} (wider than 32 bits)`);
  return ok(Number.parseInt(digits, 16) >>> 0);
}

export function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

/** A host profile's `registers` read back: the raw values and their decoded fields. */
export interface ParsedProfileRegisters {
  /** The raw IDR0..5, IIDR and AIDR values. */
  readonly raw: SmmuRawRegisters;
  /** The same values decoded into fields. */
  readonly regs: SmmuRegisters;
}

/** Validates a profile's `registers` and decodes the fields. */
export function parseProfileRegisters(raw: RawRegisters): Result<ParsedProfileRegisters> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return err(`smmuv3 registers: expected an object { idr: [6 values], iidr, aidr }, got ${describe(raw)}`);
  }
  for (const k of Object.keys(raw)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(k)) {
      return err(`smmuv3 registers: unknown field '${k}'; the fields are idr (IDR0..IDR5), iidr and aidr`);
    }
  }
  const idrIn = raw['idr'];
  if (!Array.isArray(idrIn)) {
    return err(`smmuv3 registers: idr: expected an array of 6 hex u32 values (IDR0..IDR5), got ${idrIn === undefined ? 'nothing' : describe(idrIn)}`);
  }
  if (idrIn.length !== 6) {
    return err(`smmuv3 registers: idr: expected 6 values (IDR0..IDR5), got ${idrIn.length}`);
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
  if (!regs.ok) return err(`smmuv3 registers: ${regs.error}`);
  return ok({ raw: rawRegs, regs: regs.value });
}

/** The normalized form written back into a profile: 8-digit lowercase hex strings. */
export function profileRegistersOf(raw: SmmuRawRegisters): {
  /** SMMU_IDR0..5 as 0x-prefixed 8-digit hex. */
  idr: string[];
  /** SMMU_IIDR as 0x-prefixed 8-digit hex. */
  iidr: string;
  /** SMMU_AIDR as 0x-prefixed 8-digit hex. */
  aidr: string;
} {
  return { idr: raw.idr.map(hex32), iidr: hex32(raw.iidr), aidr: hex32(raw.aidr) };
}

// ---------------------------------------------------------------------------------------------
// A unit from the probe lines
// ---------------------------------------------------------------------------------------------

/** The keys of a unit read from the boot log, as a host profile holds them. */
export const LINUX_FORM_KEYS = ['ias', 'oas', 'features', 'options', 'cmdqEntries', 'evtqEntries', 'priqEntries', 'unknown'] as const;

/** A unit rebuilt from the arm-smmu-v3 probe's log lines rather than from a register dump. */
export interface LinuxFormUnit {
  /** IDR0..5, IIDR and AIDR rebuilt from the printed features, address sizes and queue sizes. */
  readonly raw: SmmuRawRegisters;
  /** The fields the log lines do not determine (`IDR0.ASID16`, `IIDR`, ...), holding the architectural default. */
  readonly unknown: readonly string[];
  /** The profile form, written back as read. */
  readonly form: Readonly<Record<string, unknown>>;
}

function log2Entries(v: unknown, what: string): Result<number | undefined> {
  if (v === undefined) return ok(undefined);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1 << 30 || (v & (v - 1)) !== 0) {
    return err(`smmuv3 registers: ${what}: expected the power-of-two entry count of "allocated %u entries", got ${JSON.stringify(v)}`);
  }
  return ok(Math.log2(v));
}

/** Rebuilds IDR0-5 from the probe line's values; fails when the ias/oas/features line is missing. */
export function unitFromLinux(raw: Readonly<Record<string, unknown>>): Result<LinuxFormUnit> {
  if (raw['features'] === undefined || raw['ias'] === undefined || raw['oas'] === undefined) {
    return err('smmuv3 registers: the boot log gives this unit no "ias %lu-bit, oas %lu-bit (features 0x%08x)" line (and no idr= dump): nothing to build it from');
  }
  const features = parseU32(raw['features'], 'smmuv3 registers: features (ARM_SMMU_FEAT_* mask)');
  if (!features.ok) return features;
  const ias = raw['ias'];
  const oas = raw['oas'];
  const oasEnc = typeof oas === 'number' ? oasEncoding(oas) : undefined;
  if (typeof ias !== 'number' || typeof oas !== 'number' || oasEnc === undefined) {
    return err(`smmuv3 registers: ias/oas: expected the bit widths Linux prints (oas one of 32, 36, 40, 42, 44, 48, 52), got ${JSON.stringify(ias)}/${JSON.stringify(oas)}`);
  }
  const queues: Record<string, number | undefined> = {};
  for (const [key, what] of [
    ['cmdqEntries', 'cmdqEntries'],
    ['evtqEntries', 'evtqEntries'],
    ['priqEntries', 'priqEntries'],
  ] as const) {
    const q = log2Entries(raw[key], what);
    if (!q.ok) return q;
    queues[key] = q.value;
  }
  const f = features.value;
  const has = (name: keyof typeof ARM_SMMU_FEAT) => ((f >>> ARM_SMMU_FEAT[name]) & 1) === 1;
  const unknown = ['IDR0.ASID16', 'IDR0.VMID16', 'IDR1.SIDSIZE', 'IDR1.SSIDSIZE', 'IDR5.GRAN4K', 'IDR5.GRAN16K', 'IDR5.GRAN64K', 'IDR5.STALL_MAX', 'IIDR', 'AIDR'];
  // A linear stream table is either the hardware's or the driver's choice for small SIDSIZE.
  if (!has('2_LVL_STRTAB')) unknown.push('IDR0.ST_LEVEL');
  if (!has('BBML2')) unknown.push('IDR3.BBML');
  if (queues.cmdqEntries === undefined) unknown.push('IDR1.CMDQS');
  if (queues.evtqEntries === undefined) unknown.push('IDR1.EVENTQS');
  if (queues.priqEntries === undefined && has('PRI')) unknown.push('IDR1.PRIQS');
  const endian = has('TT_LE') && has('TT_BE') ? IDR0_TTENDIAN.MIXED : has('TT_BE') ? IDR0_TTENDIAN.BE : IDR0_TTENDIAN.LE;
  const idr0 = encodeIdr0({
    S2P: has('TRANS_S2') ? 1 : 0,
    S1P: has('TRANS_S1') ? 1 : 0,
    // The driver refuses an SMMU without AArch64 tables; an ias above the oas means AArch32 tables too (40-bit ias).
    TTF: ias > oas ? IDR0_TTF.AARCH32_64 : IDR0_TTF.AARCH64,
    COHACC: has('COHERENCY') ? 1 : 0,
    BTM: has('BTM') ? 1 : 0,
    HTTU: has('HD') ? IDR0_HTTU.ACCESS_DIRTY : has('HA') ? IDR0_HTTU.ACCESS : IDR0_HTTU.NONE,
    DORMHINT: 0,
    HYP: has('HYP') ? 1 : 0,
    ATS: has('ATS') ? 1 : 0,
    NS1ATS: 0,
    ASID16: 1,
    MSI: has('MSI') ? 1 : 0,
    SEV: has('SEV') ? 1 : 0,
    ATOS: 0,
    PRI: has('PRI') ? 1 : 0,
    VMW: 0,
    VMID16: 1,
    CD2L: has('2_LVL_CDTAB') ? 1 : 0,
    VATOS: 0,
    TTENDIAN: endian,
    ATSRECERR: 0,
    STALL_MODEL: has('STALL_FORCE') ? IDR0_STALL_MODEL.FORCE : has('STALLS') ? IDR0_STALL_MODEL.STALL : IDR0_STALL_MODEL.NO_STALL,
    TERM_MODEL: 0,
    ST_LEVEL: has('2_LVL_STRTAB') ? IDR0_ST_LEVEL.TWO_LEVEL : IDR0_ST_LEVEL.LINEAR,
    RME_IMPL: 0,
  });
  const idr1 = encodeIdr1({
    SIDSIZE: has('2_LVL_STRTAB') ? 16 : 8,
    SSIDSIZE: 0,
    PRIQS: queues.priqEntries ?? (has('PRI') ? 8 : 0),
    EVENTQS: queues.evtqEntries ?? 8,
    CMDQS: queues.cmdqEntries ?? 8,
    ATTR_PERMS_OVR: 0,
    ATTR_TYPES_OVR: has('ATTR_TYPES_OVR') ? 1 : 0,
    REL: 0,
    QUEUES_PRESET: 0,
    TABLES_PRESET: 0,
    ECMDQ: 0,
  });
  const idr3 = encodeIdr3({
    HAD: 0, PBHA: 0, XNX: 0, PPS: 0, MPAM: 0, FWB: has('S2FWB') ? 1 : 0, STT: 0, RIL: has('RANGE_INV') ? 1 : 0, BBML: has('BBML2') ? 2 : 0,
    E0PD: 0, PTWNNC: 0, DPT: 0, PASIDTT: 0, EPAN: 0, S1PI: 0, S2PI: 0, S2PO: 0, THE: 0, MTEPERM: 0, AIE: 0,
  });
  const idr5 = encodeIdr5({ OAS: oasEnc, GRAN4K: 1, GRAN16K: 1, GRAN64K: 1, DS: 0, D128: 0, VAX: has('VAX') ? 1 : 0, STALL_MAX: 0 });
  const form: Record<string, unknown> = {};
  for (const k of LINUX_FORM_KEYS) if (k !== 'unknown' && raw[k] !== undefined) form[k] = raw[k];
  form.unknown = unknown;
  return ok({ raw: { idr: [idr0, idr1, 0, idr3, 0, idr5], iidr: 0, aidr: 0 }, unknown, form });
}

// ---------------------------------------------------------------------------------------------
// Registers
// ---------------------------------------------------------------------------------------------

/** The name of an SMMUv3 identification register the vendor decodes. */
export type RegisterName = 'IDR0' | 'IDR1' | 'IDR2' | 'IDR3' | 'IDR4' | 'IDR5' | 'IIDR' | 'AIDR';
/** The registers the vendor decodes, in offset order (SMMU_IDR0 at 0x0 ... SMMU_AIDR at 0x1c). */
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
      if (values.length !== 6) return err(`idr: expected 6 comma-separated values (IDR0..IDR5), got ${values.length}`);
      for (let i = 0; i < 6; i++) {
        const v = parseU32(values[i], `idr[${i}] (IDR${i})`);
        if (!v.ok) return v;
        out.set(REGISTER_KEY[`idr${i}`], v.value);
      }
    } else {
      if (values.length !== 1) return err(`${key}: expected one value, got ${values.length}`);
      const name = REGISTER_KEY[key];
      const v = parseU32(values[0], name);
      if (!v.ok) return v;
      out.set(name, v.value);
    }
  }
  const leftover = text.replace(re, '').replace(/[\s,;]+/g, '');
  if (leftover) return err(`cannot read '${leftover}': expected name=value pairs of IDR0..IDR5, IIDR, AIDR`);
  return ok(out);
}

// ---------------------------------------------------------------------------------------------
// The unit core keeps, and `ioasid probe`
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
    if (!regs.ok) return err(`smmuv3 registers: ${regs.error}`);
    return ok({ raw: lin.value.raw, regs: regs.value, unknown: lin.value.unknown, form: lin.value.form });
  }
  // A register dump wins over the probe line's values when a log has both.
  const dump = given && given['idr'] !== undefined ? Object.fromEntries(Object.entries(given).filter(([k]) => !(LINUX_FORM_KEYS as readonly string[]).includes(k))) : raw;
  const parsed = parseProfileRegisters(dump);
  if (!parsed.ok) return parsed;
  return ok({ raw: parsed.value.raw, regs: parsed.value.regs, unknown: [] });
}

/**
 * The DecodedUnit of a profile's registers (a dump or the probe lines' values); an SMMU Linux refuses to probe is an
 * error.
 */
export function decodeSmmuUnit(raw: RawRegisters): Result<DecodedUnit> {
  const read = readUnitRegisters(raw);
  if (!read.ok) return read;
  const { regs, raw: rawRegs, unknown, form } = read.value;
  // A host cannot hold an SMMU the driver refuses to probe.
  const probe = smmuLinuxProbe(regs);
  if (!probe.ok) return err(`smmuv3 registers: Linux refuses this SMMU: "${probe.error}"`);
  return ok({
    vendor: VENDOR,
    caps: smmuNormalizedCaps(regs),
    hwId: unknown.length ? `${smmuHwId(regs)} [from the boot log; unknown: ${unknown.join(', ')}]` : smmuHwId(regs),
    registers: decodedRegisters(rawRegs),
    profileRegisters: form ?? profileRegistersOf(rawRegs),
  });
}

/**
 * `ioasid probe`, one line at a time: rebuilds a unit from a boot line when the line carries its registers.
 * Linux's arm-smmu-v3 probe prints only derived values ("ias …, oas … (features 0x…)" and the queue sizes),
 * never IDR0..IDR5, IIDR or AIDR, so that line yields an error naming what is missing. A line of the form
 * `arm-smmu-v3 <dev>: idr=0x…,0x…,0x…,0x…,0x…,0x… iidr=0x… aidr=0x…` (a register dump appended to a log, e.g.
 * from IOMMU_GET_HW_INFO) is read into a unit.
 */
export function probeSmmuLine(line: string): Result<{
  /** The unit's name: the device the log line names, or `arm-smmu-v3`. */
  id: string;
  /** The register values (or the probe's derived values) the line carries, in host profile form. */
  registers: RawRegisters;
}> | null {
  const { device, message } = stripLogPrefix(line);
  const msg = message.trim();
  // The probe's own lines give a unit with the fields Linux does not print marked unknown (unitFromLinux);
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
  if (!pairs.ok) return err(`arm-smmu-v3 ${device}: ${pairs.error}`);
  const missing = REGISTER_NAMES.filter((n) => !pairs.value.has(n));
  if (missing.length > 0) return err(`arm-smmu-v3 ${device}: register line lacks ${missing.join(', ')}`);
  const v = pairs.value;
  const registers = profileRegistersOf({ idr: REGISTER_NAMES.slice(0, 6).map((n) => v.get(n)!), iidr: v.get('IIDR')!, aidr: v.get('AIDR')! });
  const check = decodeSmmuUnit(registers);
  if (!check.ok) return err(`arm-smmu-v3 ${device}: ${check.error}`);
  return ok({ id: device, registers });
}
