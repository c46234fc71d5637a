/**
 * `ioasid decode amd-vi ...`: EFR/EFR2 values, event and PPR log entries, commands and amd_iommu kernel
 * lines explained field by field (the plugin's optional decoder: no unit needs it).
 */
import { readLe64, writeLe32, writeLe64Words, err, ok, type BitField, type DecodeOutput, type IommuDecoder, type Result } from '@ioasid/core/driver';
import { amdEventAdvice } from './advice.js';
import { eventLogWords, pprLogWords } from './record-words.js';
import { hex, hexPad } from './bits.js';
import { AMD_EVENT, EVENT_FLAG, EVTLOG_ENTRY_SIZE, PPR_FLAG, amdEventName, decodeEvent, decodePprEntry, encodeEvent, invalidPprFields, linuxDecodesEvent, rmpFields, splitEventFlags, type AmdEvent } from './records.js';
import { CMD_ENTRY_SIZE, decodeCommand, invRange } from './commands.js';
import { DEFAULT_CAP_PTR, DEFAULT_IOMMU_BDF, formatDevid, parseAmdLogLine, renderAmdBootLines, renderAmdEventLines, stripAmdLogPrefixes } from './logs.js';
import { EFR2_LAYOUT, EFR_LAYOUT, amdHwId, decodeEfr, decodeEfr2 } from './registers.js';
import { parseAmdRegisters } from './probe.js';
import { parseIvhdDumpLine, type IvhdDumpEntry } from './ivrs.js';
import { parseProfileRegister } from '@ioasid/core/driver';

const VENDOR = 'amd-vi';

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
  return ok({ vendor: VENDOR, kind: 'event', fields: eventFields(e), summary: eventSummary(e), linux: renderAmdEventLines(e, { era: 'v6', deviceKnown: false }).join('\n'), ...eventExtras(e) });
}

/** The entry as words, and the advice for its event code and flags (GN: the PASID is in the domain field). */
function eventExtras(e: AmdEvent): Pick<DecodeOutput, 'words' | 'advice'> {
  const w = e.words;
  const words = eventLogWords([(BigInt(w[1]) << 32n) | BigInt(w[0]), (BigInt(w[3]) << 32n) | BigInt(w[2])]);
  const gn = e.code === AMD_EVENT.IO_PAGE_FAULT && (e.flags & EVENT_FLAG.GN) !== 0;
  const advice = amdEventAdvice(e.code, e.flags, {
    device: formatDevid(e.devid, null),
    address: e.address,
    access: e.code === AMD_EVENT.IO_PAGE_FAULT ? (e.flags & EVENT_FLAG.RW ? 'write' : 'read') : '',
    pasid: gn ? e.pasidOrDomain : -1,
  });
  return { words, ...(advice ? { advice } : {}) };
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
    words: pprLogWords([readLe64(bytes, 0), readLe64(bytes, 8)]),
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

/** An `amd_iommu_dump` IVHD entry line (ivrs.ts) that the alias table depends on. */
function decodeDumpEntry(e: IvhdDumpEntry, text: string): DecodeOutput {
  const dev = (devid: number) => formatDevid(devid, e.segment);
  const linux = stripAmdLogPrefixes(text).trimEnd();
  const base = { vendor: VENDOR, linux };
  switch (e.kind) {
    case 'alias':
      return { ...base, kind: 'ivhd-alias-select', fields: { type: '0x42', DeviceID: dev(e.devid), flags: hex(e.flags), alias: dev(e.alias) }, summary: `requests of ${dev(e.devid)} reach the IOMMU as DeviceID ${dev(e.alias)} (IVHD alias select): the driver writes the device's DTE at both` };
    case 'alias-range':
      return { ...base, kind: 'ivhd-alias-range', fields: { type: '0x43', DeviceID: dev(e.devid), flags: hex(e.flags), alias: dev(e.alias) }, summary: `requests of the devices from ${dev(e.devid)} to the next DEV_RANGE_END reach the IOMMU as DeviceID ${dev(e.alias)} (IVHD alias range)` };
    case 'range-start':
      return { ...base, kind: 'ivhd-range-start', fields: { DeviceID: dev(e.devid) }, summary: `a device range without alias starts at ${dev(e.devid)}` };
    case 'range-end':
      return { ...base, kind: 'ivhd-range-end', fields: { type: '0x04', DeviceID: dev(e.devid) }, summary: `the device range that started last ends at ${dev(e.devid)}` };
  }
}

function decodeLine(text: string): Result<DecodeOutput> {
  const dump = parseIvhdDumpLine(stripAmdLogPrefixes(text));
  if (dump !== null) return dump.ok ? ok(decodeDumpEntry(dump.value, text)) : dump;
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
      return ok({
        vendor: VENDOR,
        kind: 'event',
        fields: { ...eventFields(e.value), era: rec.era, ...(rec.source ? { printedBy: `${rec.driver} ${rec.source}` } : {}) },
        summary: eventSummary(e.value),
        linux: stripAmdLogPrefixes(text).trimEnd(),
        ...eventExtras(e.value),
      });
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
      const r = parseProfileRegister('efr2', regs['efr2'], 64, '0x0');
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
  if (words.length === 2) bytes = writeLe64Words(words);
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


/** The AMD-Vi plugin's decoder (`IommuPlugin.decoder`). */
export const amdDecoder: IommuDecoder = { vendor: VENDOR, decode: decodeAmd };
