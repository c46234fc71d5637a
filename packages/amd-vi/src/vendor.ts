/**
 * The AMD-Vi vendor family (the amd_iommu driver's iommu_ops): validates a unit's registers from a
 * host profile, builds units, explains register values, log entries, commands and kernel lines
 * (`ioasid decode amd-vi ...`) and reads boot lines (`ioasid probe`).
 */
import { PluginContractError } from '@ioasid/core/driver';
import type { DecodeOutput, DecodedRegister, DecodedUnit, IommuVendor, RawRegisters, UnitInit, UnitOps } from '@ioasid/core/driver';
import { err, ok, type BitField, type Result } from '@ioasid/core/driver';
import { bytesToQwords, hex, hexPad, qwordsToBytes, writeLe32 } from './bits.js';
import {
  AMD_EVENT,
  CMD_ENTRY_SIZE,
  EVTLOG_ENTRY_SIZE,
  PPR_FLAG,
  amdEventName,
  decodeCommand,
  decodeEvent,
  decodePprEntry,
  encodeEvent,
  invalidPprFields,
  invRange,
  linuxDecodesEvent,
  rmpFields,
  splitEventFlags,
  type AmdEvent,
} from './events.js';
import { DEFAULT_CAP_PTR, DEFAULT_IOMMU_BDF, formatDevid, parseAmdLogLine, renderAmdBootLines, renderAmdEventLines, stripAmdLogPrefixes } from './logs.js';
import { EFR2_LAYOUT, EFR_LAYOUT, amdHwId, amdNormalizedCaps, decodeEfr, decodeEfr2 } from './registers.js';
import { AmdUnit, type AmdUnitOptions, type AmdUnitRegisters } from './unit.js';

const VENDOR = 'amd-vi';
const KNOWN_REGISTERS = ['efr', 'efr2', 'pciAddress', 'capPtr'];

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function parseRegister(name: string, v: unknown, bits: number, example: string): Result<bigint> {
  const expected = `registers.${name}: expected a ${bits}-bit hex string like ${example}, got ${describe(v)}`;
  let value: bigint;
  if (typeof v === 'bigint') value = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) value = BigInt(v);
  else if (typeof v === 'string') {
    const m = /^(?:0[xX])?([0-9a-fA-F]{1,16})$/.exec(v.trim());
    if (!m) return err(expected);
    value = BigInt(`0x${m[1]}`);
  } else return err(expected);
  if (value < 0n || value >= 1n << BigInt(bits)) return err(`${expected} (the value does not fit in ${bits} bits)`);
  return ok(value);
}

/** Validates `{ efr, efr2?, pciAddress?, capPtr? }` from a host profile. */
export function parseAmdRegisters(raw: RawRegisters): Result<AmdUnitRegisters> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return err(`registers: expected an object { efr, efr2 }, got ${describe(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!KNOWN_REGISTERS.includes(key)) return err(`registers.${key}: not an AMD-Vi register (expected efr, and optionally efr2, pciAddress, capPtr)`);
  }
  const efr = parseRegister('efr', raw['efr'], 64, '0x58f77ef22294a5a');
  if (!efr.ok) return efr;
  // An IOMMU without EFR (IOMMU_CAP_EFR clear) predates everything iommufd can use.
  if (efr.value === 0n) return err('registers.efr: 0 means no Extended Feature Register; Linux prints no "Extended features" line and iommufd needs one');
  let efr2 = 0n;
  if (raw['efr2'] !== undefined) {
    const r = parseRegister('efr2', raw['efr2'], 64, '0x0');
    if (!r.ok) return r;
    efr2 = r.value;
  }
  let pciAddress = DEFAULT_IOMMU_BDF;
  if (raw['pciAddress'] !== undefined) {
    const v = raw['pciAddress'];
    if (typeof v !== 'string' || !/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$/.test(v)) {
      return err(`registers.pciAddress: expected the IOMMU's PCI function like 0000:00:00.2, got ${describe(v)}`);
    }
    pciAddress = v.toLowerCase();
  }
  let capPtr = DEFAULT_CAP_PTR;
  if (raw['capPtr'] !== undefined) {
    const r = parseRegister('capPtr', raw['capPtr'], 8, '0x40');
    if (!r.ok) return r;
    if (r.value < 0x40n || (r.value & 3n) !== 0n) return err(`registers.capPtr: ${hex(r.value)} is not a PCI capability offset (dword aligned, 0x40 or above)`);
    capPtr = Number(r.value);
  }
  return ok({ efr: efr.value, efr2, pciAddress, capPtr });
}

function layoutFields(layout: readonly BitField[], decoded: object): Record<string, number> {
  const d = decoded as Record<string, number>;
  const out: Record<string, number> = {};
  for (const f of layout) out[f.name] = d[f.name];
  return out;
}

/** The DecodedUnit core keeps for a unit. */
export function decodeAmdUnit(r: AmdUnitRegisters): DecodedUnit {
  const registers: DecodedRegister[] = [
    { name: 'EFR', value: r.efr, fields: layoutFields(EFR_LAYOUT, decodeEfr(r.efr)) },
    { name: 'EFR2', value: r.efr2, fields: layoutFields(EFR2_LAYOUT, decodeEfr2(r.efr2)) },
  ];
  return {
    vendor: VENDOR,
    caps: amdNormalizedCaps(r.efr, r.efr2),
    hwId: amdHwId(r.efr, r.efr2),
    registers,
    profileRegisters: { efr: hex(r.efr), efr2: hex(r.efr2), pciAddress: r.pciAddress, capPtr: hex(r.capPtr) },
  };
}

// ---------------------------------------------------------------------------------------------
// ioasid decode amd-vi ...
// ---------------------------------------------------------------------------------------------

function registerFields(layout: readonly BitField[], decoded: object, prefix = ''): Record<string, number | string> {
  const d = decoded as Record<string, number | bigint>;
  const out: Record<string, number | string> = {};
  for (const f of layout) out[`${prefix}${f.name}`] = Number(d[f.name]);
  const reserved = d['reserved'];
  if (typeof reserved === 'bigint' && reserved !== 0n) out[`${prefix}reserved`] = hex(reserved);
  return out;
}

function decodeUnitValues(efr: bigint, efr2: bigint, pciAddress = DEFAULT_IOMMU_BDF): DecodeOutput {
  return {
    vendor: VENDOR,
    kind: 'efr',
    fields: { ...registerFields(EFR_LAYOUT, decodeEfr(efr)), ...registerFields(EFR2_LAYOUT, decodeEfr2(efr2), 'EFR2.') },
    summary: amdHwId(efr, efr2),
    linux: renderAmdBootLines({ efr, efr2, pciAddress, capPtr: DEFAULT_CAP_PTR }, 'newest', true).join('\n'),
  };
}

function decodeEfr2Value(efr2: bigint): DecodeOutput {
  const d = decodeEfr2(efr2);
  const parts: string[] = [];
  if (d.SEVSNPIOSup) parts.push('SEV-TIO');
  if (d.GCR3TRPModeSup) parts.push('GCR3 TRP mode (nest parents)');
  if (d.GAPPIDisSup) parts.push('GAPPI disable');
  if (d.SNPAVICSup) parts.push(`SNP AVIC modes ${d.SNPAVICSup}`);
  if (d.NumIntRemapSup === 1) parts.push('2K interrupt remapping entries');
  if (d.HTRangeIgnoreSup) parts.push('HT range ignore');
  return { vendor: VENDOR, kind: 'efr2', fields: registerFields(EFR2_LAYOUT, d), summary: parts.length ? parts.join(', ') : 'no EFR2 feature', linux: `EFR2 ${hex(efr2)}` };
}

function eventFields(e: AmdEvent): Record<string, number | string> {
  const f: Record<string, number | string> = {
    EventCode: e.code,
    DeviceID: formatDevid(e.devid, null),
    ...(e.code === AMD_EVENT.IO_PAGE_FAULT && (e.flags & 1) === 0 ? { DomainID: e.pasidOrDomain } : { PASID: e.pasidOrDomain }),
    Flags: hexPad(e.flags, 3),
    ...splitEventFlags(e.flags),
    Address: hex(e.address),
  };
  if (e.code === AMD_EVENT.RMP_PAGE_FAULT || e.code === AMD_EVENT.RMP_HW_ERROR) {
    const r = rmpFields(e);
    f.VmgTag = r.vmgTag;
    f.FlagsRmp = r.flagsRmp;
  }
  if (e.code === AMD_EVENT.INVALID_PPR_REQUEST) {
    const p = invalidPprFields(e);
    f.Tag = p.tag;
    f.PASID = p.pasid;
  }
  return f;
}

function eventSummary(e: AmdEvent): string {
  const name = amdEventName(e.code) ?? `event code 0x${e.code.toString(16)}`;
  const dev = formatDevid(e.devid, null);
  const fl = splitEventFlags(e.flags);
  if (e.code === AMD_EVENT.IO_PAGE_FAULT) {
    if (fl.I) return `interrupt request from ${dev} blocked (IO_PAGE_FAULT with I set: interrupt remapping)`;
    const what = fl.PR ? (fl.PE ? 'permission denied' : 'page present') : 'page not present';
    const who = fl.GN ? `PASID 0x${e.pasidOrDomain.toString(16)}` : `domain 0x${e.pasidOrDomain.toString(16)}`;
    return `DMA ${fl.RW ? 'write' : 'read'}${fl.NX ? ' (execute)' : ''} from ${dev} (${who}) at ${hex(e.address)}: ${what}${fl.RZ ? ', reserved bit or illegal level' : ''}${fl.TR ? ', translation request (ATS)' : ''}`;
  }
  const known = linuxDecodesEvent(e.code) ? '' : ' (Linux has no handler: it prints UNKNOWN)';
  return `${name} from ${dev} at ${hex(e.address)}${known}`;
}

function decodeEventRecord(bytes: Uint8Array): Result<DecodeOutput> {
  const r = decodeEvent(bytes);
  if (!r.ok) return r;
  const e = r.value;
  if (e.code === 0) return err('event code 0: no event written (Linux waits, then prints "No event written to event log")');
  return ok({ vendor: VENDOR, kind: 'event', fields: eventFields(e), summary: eventSummary(e), linux: renderAmdEventLines(e, { era: 'v6', deviceKnown: false }).join('\n') });
}

function decodePprRecord(bytes: Uint8Array): Result<DecodeOutput> {
  const r = decodePprEntry(bytes);
  if (!r.ok) return r;
  const p = r.value;
  const flags: Record<string, number> = {};
  for (const [k, v] of Object.entries(PPR_FLAG)) flags[k] = p.flags & v ? 1 : 0;
  const access = [p.flags & PPR_FLAG.READ ? 'read' : '', p.flags & PPR_FLAG.WRITE ? 'write' : '', p.flags & PPR_FLAG.EXEC ? 'execute' : ''].filter(Boolean).join('/') || 'no access';
  const dev = formatDevid(p.devid, 0);
  let summary = `page request from ${dev}${p.flags & PPR_FLAG.GN ? ` PASID 0x${p.pasid.toString(16)}` : ''}: ${access}${p.flags & PPR_FLAG.US ? '' : ' (privileged)'} at ${hex(p.address)}, tag 0x${p.tag.toString(16)}${p.last ? ', last in group' : ''}`;
  if (p.type !== 1) summary = `PPR entry of type ${p.type}: Linux prints "Unknown PPR request received"`;
  else if (!(p.flags & PPR_FLAG.GN)) summary += ' (GN=0: Linux ignores it and answers FAILURE)';
  return ok({
    vendor: VENDOR,
    kind: 'ppr',
    fields: { DeviceID: formatDevid(p.devid, null), PASID: p.pasid, Tag: p.tag, LastPage: p.last ? 1 : 0, Flags: hexPad(p.flags, 3), ...flags, Type: p.type, Address: hex(p.address) },
    summary,
    linux: `PPR logged [device=${dev} pasid=${hexPad(p.pasid, 5)} address=${hex(p.address)} flags=${hexPad(p.flags, 4)} tag=${hexPad(p.tag, 3)}]`,
  });
}

function decodeCommandRecord(bytes: Uint8Array): Result<DecodeOutput> {
  const r = decodeCommand(bytes);
  if (!r.ok) return r;
  const c = r.value;
  const fields: Record<string, number | string | boolean> = { Opcode: c.op };
  for (const [k, v] of Object.entries(c)) if (k !== 'op') fields[k] = typeof v === 'bigint' ? hex(v) : Array.isArray(v) ? v.map((w: number) => hexPad(w, 8)).join(' ') : (v as number | boolean);
  let summary: string = c.op;
  switch (c.op) {
    case 'INVALIDATE_IOMMU_PAGES': {
      const range = invRange(c.address, c.size);
      summary = `flush domain 0x${c.domainId.toString(16)}${c.gn ? ` PASID 0x${c.pasid.toString(16)}` : ''} ${hex(range.first)}-${hex(range.last)}${c.pde ? ' including page-directory entries' : ''}`;
      break;
    }
    case 'INVALIDATE_IOTLB_PAGES': {
      const range = invRange(c.address, c.size);
      summary = `flush the device TLB of ${formatDevid(c.devid, 0)}${c.gn ? ` PASID 0x${c.pasid.toString(16)}` : ''} ${hex(range.first)}-${hex(range.last)}`;
      break;
    }
    case 'COMPLETE_PPR_REQUEST':
      summary = `answer page request tag 0x${c.tag.toString(16)} of ${formatDevid(c.devid, 0)}${c.gn ? ` PASID 0x${c.pasid.toString(16)}` : ''}: ${['SUCCESS', 'INVALID', 'FAILURE'][c.status] ?? `status ${c.status}`}`;
      break;
    case 'COMPLETION_WAIT':
      summary = `wait for completion${c.store ? `, then store ${hex(c.storeData)} at ${hex(c.storeAddress)}` : ''}${c.interrupt ? ', then interrupt' : ''}`;
      break;
    case 'INVALIDATE_DEVTAB_ENTRY':
      summary = `flush the device table entry of ${formatDevid(c.devid, 0)}`;
      break;
    case 'INVALIDATE_INTERRUPT_TABLE':
      summary = `flush the interrupt remapping table of ${formatDevid(c.devid, 0)}`;
      break;
    case 'INVALIDATE_IOMMU_ALL':
      summary = 'flush every cache of the IOMMU (needs IASup)';
      break;
    default:
      break;
  }
  const words: string[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < 4; i++) words.push(`CMD[${i}]: ${dv.getUint32(i * 4, true).toString(16).padStart(8, '0')}`);
  return ok({ vendor: VENDOR, kind: 'command', fields, summary, linux: words.join('\n') });
}

function decodeLine(text: string): Result<DecodeOutput> {
  const r = parseAmdLogLine(text);
  if (!r.ok) return r;
  const rec = r.value;
  switch (rec.kind) {
    case 'features':
      return ok({ ...decodeUnitValues(rec.efr, rec.efr2 ?? 0n, rec.pciAddress ?? DEFAULT_IOMMU_BDF), linux: stripAmdLogPrefixes(text).trimEnd() });
    case 'found-iommu':
      return ok({ vendor: VENDOR, kind: 'found-iommu', fields: { pciAddress: rec.pciAddress, capPtr: hex(rec.capPtr) }, summary: `an AMD IOMMU at PCI ${rec.pciAddress}, capability at ${hex(rec.capPtr)}`, linux: stripAmdLogPrefixes(text).trimEnd() });
    case 'log-restart':
      return ok({ vendor: VENDOR, kind: 'log-restart', fields: { log: rec.log }, summary: `the ${rec.log} log overflowed: entries were lost and the driver restarted it`, linux: stripAmdLogPrefixes(text).trimEnd() });
    case 'features-cont':
      return ok({ vendor: VENDOR, kind: 'features', fields: Object.fromEntries(rec.names.map((n) => [n, 1])), summary: `the feature names of a split "Extended features" line: ${rec.names.join(' ')}`, linux: stripAmdLogPrefixes(text) });
    case 'event': {
      if (rec.era === 'v4-split-head') return err('"AMD-Vi: Event logged [" is the first half of a 4.x event: decode the line that follows it');
      const f = rec.fields;
      const devid = rec.device?.devid ?? 0;
      const pd = Number(f['domain'] ?? f['pasid'] ?? f['vmg_tag'] ?? 0n);
      const e = decodeEvent(
        rec.code === 0 && f['event[0]'] !== undefined
          ? (() => {
              const b = new Uint8Array(EVTLOG_ENTRY_SIZE);
              for (let i = 0; i < 4; i++) writeLe32(b, i * 4, Number(f[`event[${i}]`] ?? 0n));
              return b;
            })()
          : encodeEvent({ code: rec.code, devid, pasidOrDomain: pd, flags: Number(f['flags'] ?? 0n), address: f['address'] ?? f['gpa'] ?? f['spa'] ?? 0n, word0High: rec.code === AMD_EVENT.RMP_PAGE_FAULT ? Number(f['flags_rmp'] ?? 0n) >> 4 : 0 }),
      );
      if (!e.ok) return e;
      return ok({ vendor: VENDOR, kind: 'event', fields: { ...eventFields(e.value), era: rec.era, ...(rec.source ? { printedBy: `${rec.driver} ${rec.source}` } : {}) }, summary: eventSummary(e.value), linux: stripAmdLogPrefixes(text).trimEnd() });
    }
  }
}

const HEX_WORD = /^(?:0[xX])?[0-9a-fA-F]{1,16}$/;
const USAGE =
  'expected efr=0x... [efr2=0x...] (or a bare value with kind efr|efr2), an event log entry, PPR log entry or command ' +
  '(two hex qwords, or four 32-bit words as Linux prints them; kind event|ppr|command), or an AMD-Vi kernel log line';

/** `ioasid decode amd-vi <what>`. */
export function decodeAmd(what: string, kind?: string): Result<DecodeOutput> {
  const text = what.trim();
  if (text === '') return err(`nothing to decode: ${USAGE}`);
  if (/AMD-Vi:|^[A-Z_]+ device=|^ ?(?:PPR|PreF|NX|GT|IA) /.test(stripAmdLogPrefixes(text))) return decodeLine(text);
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (parts.some((p) => p.includes('='))) {
    const regs: Record<string, string> = {};
    for (const p of parts) {
      const m = /^(efr|efr2)=(.+)$/i.exec(p);
      if (!m) return err(`"${p}": ${USAGE}`);
      regs[m[1].toLowerCase()] = m[2];
    }
    if (regs['efr'] === undefined) {
      const r = parseRegister('efr2', regs['efr2'], 64, '0x0');
      if (!r.ok) return r;
      return ok(decodeEfr2Value(r.value));
    }
    const r = parseAmdRegisters({ ...regs });
    if (!r.ok) return r;
    return ok(decodeUnitValues(r.value.efr, r.value.efr2));
  }
  if (!parts.every((w) => HEX_WORD.test(w))) return err(`"${text.slice(0, 60)}": ${USAGE}`);
  const words = parts.map((w) => BigInt(w.toLowerCase().startsWith('0x') ? w : `0x${w}`));
  const k = kind?.toLowerCase();
  if (words.length === 1) {
    if (k === 'efr' || k === undefined) {
      if (words[0] === 0n) return err('EFR 0: no Extended Feature Register');
      return ok(decodeUnitValues(words[0], 0n));
    }
    if (k === 'efr2') return ok(decodeEfr2Value(words[0]));
    return err(`a single value is an EFR or EFR2 register (kind efr|efr2), not ${k}`);
  }
  let bytes: Uint8Array;
  if (words.length === 2) bytes = qwordsToBytes(words);
  else if (words.length === 4 && words.every((w) => w < 1n << 32n)) {
    bytes = new Uint8Array(16);
    words.forEach((w, i) => writeLe32(bytes, i * 4, Number(w)));
  } else return err(`${words.length} value(s): an AMD-Vi record is 128 bits (two qwords or four 32-bit words)`);
  if (bytes.length !== CMD_ENTRY_SIZE) return err(USAGE);
  if (k === undefined || k === 'event') return decodeEventRecord(bytes);
  if (k === 'ppr' || k === 'page-request') return decodePprRecord(bytes);
  if (k === 'command' || k === 'cmd') return decodeCommandRecord(bytes);
  return err(`kind ${k}: expected event, ppr or command for a 128-bit record`);
}

/**
 * `ioasid probe`, one line at a time. "Found IOMMU" names an IOMMU by its PCI function: the unit
 * `ivhd@<bdf>` with `pciAddress` and `capPtr`. An "Extended features" line that names its function (the
 * 5.x split form) adds EFR to that unit; one that does not (5.13+ and the 6.x host-wide line) is the unit
 * `ivhd0` with EFR and EFR2: the only IOMMU of a client part that prints nothing else, or the registers
 * every IOMMU shares, which `completeAmdProbedUnits()` gives to the `ivhd@` units.
 */
export function probeAmdLine(line: string): Result<{ id: string; registers: RawRegisters }> | null {
  const text = stripAmdLogPrefixes(line).trimEnd();
  if (!/AMD-Vi: (?:Extended features \(|Found IOMMU )/.test(text)) return null;
  const r = parseAmdLogLine(text);
  if (!r.ok) return r;
  const rec = r.value;
  if (rec.kind === 'found-iommu') return ok({ id: `ivhd@${rec.pciAddress}`, registers: { pciAddress: rec.pciAddress, capPtr: hex(rec.capPtr) } });
  if (rec.kind !== 'features') return null;
  const regs = { efr: hex(rec.efr), ...(rec.efr2 !== null ? { efr2: hex(rec.efr2) } : {}) };
  if (rec.pciAddress) return ok({ id: `ivhd@${rec.pciAddress}`, registers: { ...regs, pciAddress: rec.pciAddress } });
  return ok({ id: 'ivhd0', registers: regs });
}

/** A unit as probeAmdLine() left it, with the lines it came from. */
export interface AmdProbedUnit {
  readonly id: string;
  readonly registers: RawRegisters;
  readonly lines: readonly number[];
}

/**
 * Completes the units probeAmdLine() read from one log: every `ivhd@<bdf>` unit (in the order the
 * kernel printed them, which is its IVHD order) becomes `ivhdN`; those without EFR take the host-wide
 * EFR/EFR2 of the `ivhd0` features line, which then disappears. Without "Found IOMMU" lines the units
 * are returned as they are.
 */
export function completeAmdProbedUnits(units: readonly AmdProbedUnit[]): AmdProbedUnit[] {
  const named = units.filter((u) => u.id.startsWith('ivhd@')).sort((a, b) => (a.lines[0] ?? 0) - (b.lines[0] ?? 0));
  if (!named.length) return [...units];
  const global = units.find((u) => u.id === 'ivhd0');
  const out: AmdProbedUnit[] = named.map((u, i) => {
    const regs: Record<string, unknown> = { ...u.registers };
    if (regs['efr'] === undefined && global) {
      regs['efr'] = global.registers['efr'];
      if (global.registers['efr2'] !== undefined) regs['efr2'] = global.registers['efr2'];
    }
    const lines = i === 0 && global ? [...u.lines, ...global.lines].sort((a, b) => a - b) : [...u.lines];
    return { id: `ivhd${i}`, registers: regs, lines };
  });
  for (const u of units) if (u.id !== 'ivhd0' && !u.id.startsWith('ivhd@')) out.push(u);
  return out;
}

export type AmdVendorOptions = AmdUnitOptions;

/** The AMD-Vi family. Plain class: register it with `useValue`. */
export class AmdVendor implements IommuVendor {
  readonly id = VENDOR;
  readonly name = 'AMD-Vi';

  constructor(private readonly options: AmdVendorOptions = {}) {}

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    const r = parseAmdRegisters(raw);
    if (!r.ok) return r;
    return ok(decodeAmdUnit(r.value));
  }

  createUnit(init: UnitInit): UnitOps {
    let r = parseAmdRegisters(init.raw);
    if (!r.ok) r = parseAmdRegisters(init.decoded.profileRegisters);
    if (!r.ok) throw new PluginContractError(VENDOR, `unit ${init.id}: ${r.error}`);
    return new AmdUnit(init, r.value, this.options);
  }

  decode(what: string, kind?: string): Result<DecodeOutput> {
    return decodeAmd(what, kind);
  }

  probeLine(line: string): Result<{ id: string; registers: RawRegisters }> | null {
    return probeAmdLine(line);
  }

  completeProbe(units: readonly AmdProbedUnit[]): AmdProbedUnit[] {
    return completeAmdProbedUnits(units);
  }
}

export { bytesToQwords };
