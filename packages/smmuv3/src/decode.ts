/**
 * `ioasid decode smmuv3 …`: register values, event / PRI queue records, commands and arm-smmu-v3 log lines
 * explained field by field (the plugin's optional decoder: no unit needs it).
 */
import { writeLe64Words, err, ok } from '@ioasid/core/driver';
import type { BitField, DecodeOutput, FaultSubject, IommuDecoder, Result } from '@ioasid/core/driver';
import { smmuEventAdvice } from './advice.js';
import { eventRecordWords, priRecordWords } from './record-words.js';
import { ARM_SMMU_FEAT, smmuHwId, smmuLinuxProbe } from './features.js';
import { AIDR_LAYOUT, IDR0_LAYOUT, IDR1_LAYOUT, IDR3_LAYOUT, IDR5_LAYOUT, IIDR_LAYOUT, OAS_BITS, archVersion, decodeAidr, decodeIdr0, decodeIdr1, decodeIdr3, decodeIdr5, decodeIidr } from './registers.js';
import { hex32, parseProfileRegisters, parseU32, profileRegistersOf } from './probe.js';
import { EVT_ID, INPUT_ADDR_IDS, decodeEventWords, decodePriRequest, eventName, isStopMarker } from './records.js';
import type { PriRequest, SmmuEvent } from './records.js';
import { decodeCommandWords } from './commands.js';
import {
  EVENT_CLASS_STR,
  PROBE_MESSAGES,
  parseCmdqErrorLine,
  parseEventDetailLine,
  parseEventLines,
  parseEventSummaryLine,
  parseOptionMaskLine,
  parseProbeLine,
  parseQueueAllocLine,
  parseUnexpectedPriLine,
  renderEventLines,
  renderProbeLine,
  renderUnexpectedPriLines,
  stripLogPrefix,
  type EventSummaryLine,
} from './logs.js';
import { REGISTER_KEY, REGISTER_NAMES, decodedRegisters, parseRegisterPairs, registerFields, type RegisterName } from './probe.js';

const VENDOR = 'smmuv3';

type Fields = Record<string, string | number | boolean>;

function hex(v: number | bigint): string {
  return `0x${BigInt(v).toString(16)}`;
}

/** JEP106 implementer codes seen on SMMUv3 parts. */
const IMPLEMENTERS: Readonly<Record<number, string>> = { 0x43b: 'Arm', 0x36b: 'NVIDIA', 0x0: 'unknown' };

const STALL_MODEL_TEXT = ['stall and terminate', 'no stall', 'stall forced', 'reserved stall model'];
const TTENDIAN_TEXT = ['mixed-endian', 'reserved endianness', 'little-endian', 'big-endian'];
const TTF_TEXT = ['no table format', 'AArch32', 'AArch64', 'AArch32+AArch64'];
const HTTU_TEXT = ['', 'HTTU access flag', 'HTTU access+dirty', 'HTTU access+dirty+HAFT'];

function registerSummary(name: RegisterName, value: number): string {
  switch (name) {
    case 'IDR0': {
      const f = decodeIdr0(value);
      const stages = [f.S1P ? 'S1' : '', f.S2P ? 'S2' : ''].filter(Boolean).join('+') || 'no translation';
      const parts = [
        stages,
        `${TTF_TEXT[f.TTF]} tables`,
        TTENDIAN_TEXT[f.TTENDIAN],
        f.ST_LEVEL === 1 ? '2-level stream table' : 'linear stream table',
        STALL_MODEL_TEXT[f.STALL_MODEL],
        f.TERM_MODEL ? 'terminate aborts' : 'terminate RAZ/WI or abort',
        `${f.ASID16 ? 16 : 8}-bit ASID`,
        `${f.VMID16 ? 16 : 8}-bit VMID`,
      ];
      const flags: Array<[number, string]> = [
        [f.CD2L, '2-level CD tables'],
        [f.PRI, 'PRI'],
        [f.ATS, 'ATS'],
        [f.HYP, 'HYP'],
        [f.MSI, 'MSI'],
        [f.SEV, 'SEV'],
        [f.COHACC, 'coherent'],
        [f.BTM, 'BTM'],
        [f.VMW, 'VMW'],
      ];
      for (const [on, text] of flags) if (on) parts.push(text);
      if (f.HTTU) parts.push(HTTU_TEXT[f.HTTU]);
      return `IDR0: ${parts.join(', ')}`;
    }
    case 'IDR1': {
      const f = decodeIdr1(value);
      const parts = [
        `${f.SIDSIZE}-bit StreamID`,
        f.SSIDSIZE ? `${f.SSIDSIZE}-bit SubstreamID` : 'no substreams (no PASID)',
        `queues up to cmdq 2^${f.CMDQS}, evtq 2^${f.EVENTQS}, priq 2^${f.PRIQS}`,
      ];
      if (f.TABLES_PRESET || f.QUEUES_PRESET || f.REL) parts.push('preset tables/queues (Linux refuses: embedded implementation)');
      if (f.ATTR_TYPES_OVR) parts.push('attribute type override');
      if (f.ECMDQ) parts.push('ECMDQ');
      return `IDR1: ${parts.join(', ')}`;
    }
    case 'IDR2':
      return `IDR2: VATOS page offset 0x${(value & 0x3ff).toString(16)}`;
    case 'IDR3': {
      const f = decodeIdr3(value);
      const names = IDR3_LAYOUT.filter((l) => l.name !== 'BBML' && (f as Record<string, number>)[l.name]).map((l) => l.name);
      return `IDR3: ${[...names, `BBML${f.BBML}`].join(', ')}`;
    }
    case 'IDR4':
      return 'IDR4: IMPLEMENTATION DEFINED';
    case 'IDR5': {
      const f = decodeIdr5(value);
      const grans = [f.GRAN4K ? '4K' : '', f.GRAN16K ? '16K' : '', f.GRAN64K ? '64K' : ''].filter(Boolean).join('/') || 'no granules';
      return `IDR5: ${OAS_BITS[f.OAS]}-bit OAS, ${grans} granules, ${f.VAX === 1 ? '52' : f.VAX === 2 ? '56' : '48'}-bit VA, STALL_MAX ${f.STALL_MAX}`;
    }
    case 'IIDR': {
      const f = decodeIidr(value);
      const who = IMPLEMENTERS[f.Implementer] ?? `implementer 0x${f.Implementer.toString(16)}`;
      const product = f.Implementer === 0x43b && f.ProductID === 0x483 ? 'MMU-600' : f.Implementer === 0x43b && f.ProductID === 0x487 ? 'MMU-700' : `product 0x${f.ProductID.toString(16)}`;
      return `IIDR: ${who} ${product} r${f.Variant}p${f.Revision}`;
    }
    case 'AIDR':
      return `AIDR: SMMUv${archVersion(decodeAidr(value))}`;
  }
}

/** The field layouts of the registers the model names fields in (IDR2 and IDR4 have none it uses). */
const REGISTER_LAYOUTS: Partial<Record<RegisterName, readonly BitField[]>> = {
  IDR0: IDR0_LAYOUT,
  IDR1: IDR1_LAYOUT,
  IDR3: IDR3_LAYOUT,
  IDR5: IDR5_LAYOUT,
  IIDR: IIDR_LAYOUT,
  AIDR: AIDR_LAYOUT,
};

function registerOutput(name: RegisterName, value: number): DecodeOutput {
  const layout = REGISTER_LAYOUTS[name];
  return {
    vendor: VENDOR,
    kind: name,
    fields: registerFields(name, value),
    summary: registerSummary(name, value),
    linux: '',
    ...(layout ? { words: [{ name, value: BigInt(value >>> 0), width: 32, layout }] } : {}),
  };
}

function registerSetOutput(values: Map<RegisterName, number>): Result<DecodeOutput> {
  const missing = REGISTER_NAMES.filter((n) => !values.has(n));
  if (missing.length > 0) {
    return err(`registers: missing ${missing.join(', ')}; give one register, or all of IDR0..IDR5, IIDR and AIDR`);
  }
  const raw = { idr: REGISTER_NAMES.slice(0, 6).map((n) => values.get(n)!), iidr: values.get('IIDR')!, aidr: values.get('AIDR')! };
  const parsed = parseProfileRegisters(profileRegistersOf(raw));
  if (!parsed.ok) return parsed;
  const regs = parsed.value.regs;
  const fields: Fields = {};
  for (const r of decodedRegisters(raw)) for (const [k, v] of Object.entries(r.fields)) fields[k in fields ? `${r.name}.${k}` : k] = Number(v);
  const probe = smmuLinuxProbe(regs);
  return ok({
    vendor: VENDOR,
    kind: 'registers',
    fields,
    summary: smmuHwId(regs),
    // The line the probe prints, or its refusal.
    linux: probe.ok ? renderProbeLine({ ias: probe.value.ias, oas: probe.value.oas, features: probe.value.features }) : probe.error,
  });
}

function eventFields(e: SmmuEvent): Fields {
  const translation = e.ID >= EVT_ID.F_TRANSLATION && e.ID <= EVT_ID.F_PERMISSION;
  const fields: Fields = { ID: e.ID, SSV: e.SSV, SubstreamID: e.SubstreamID, StreamID: e.StreamID };
  // Only the records that have an address in dword 2 get it labelled (C_BAD_STE/C_BAD_CD have none).
  if (INPUT_ADDR_IDS.includes(e.ID)) fields['InputAddr'] = hex(e.InputAddr);
  if (translation) {
    Object.assign(fields, {
      STAG: e.STAG, Stall: e.Stall, PnU: e.PnU, InD: e.InD, RnW: e.RnW, S2: e.S2, CLASS: e.CLASS, TTRnW: e.TTRnW, NSIPA: e.NSIPA, IPA: hex(e.IPA),
    });
  } else if (e.ID === EVT_ID.F_STE_FETCH || e.ID === EVT_ID.F_CD_FETCH || e.ID === EVT_ID.F_VMS_FETCH) {
    fields['FetchAddr'] = hex(e.FetchAddr);
  } else if (e.ID === EVT_ID.E_PAGE_REQUEST) fields['Span'] = e.Span;
  return fields;
}

function eventSummary(e: SmmuEvent): string {
  const name = eventName(e.ID);
  const who = `StreamID 0x${e.StreamID.toString(16)}${e.SSV ? ` SubstreamID 0x${e.SubstreamID.toString(16)}` : ''}`;
  if (e.ID >= EVT_ID.F_TRANSLATION && e.ID <= EVT_ID.F_PERMISSION) {
    const access = `${e.PnU ? 'privileged' : 'unprivileged'} ${e.InD ? 'instruction' : 'data'} ${e.RnW ? 'read' : 'write'}`;
    const cls = EVENT_CLASS_STR[e.CLASS];
    return `${name} (0x${e.ID.toString(16).padStart(2, '0')}) at stage ${e.S2 ? 2 : 1}: ${access} of IOVA ${hex(e.InputAddr)} by ${who}; ${cls}${e.Stall ? `, stalled (STAG 0x${e.STAG.toString(16)})` : ''}${e.S2 ? `, IPA ${hex(e.IPA)}` : ''}`;
  }
  if (e.ID === EVT_ID.F_STE_FETCH || e.ID === EVT_ID.F_CD_FETCH || e.ID === EVT_ID.F_VMS_FETCH) {
    return `${name} (0x${e.ID.toString(16).padStart(2, '0')}): external abort fetching ${hex(e.FetchAddr)} for ${who}`;
  }
  return `${name} (0x${e.ID.toString(16).padStart(2, '0')}) for ${who}`;
}

/**
 * Who faulted and where, for the advice: the StreamID, the input address (the IPA of a stage-2 fault,
 * the address stage 2 refused) and RnW.
 */
function eventSubject(e: SmmuEvent): FaultSubject {
  const translation = e.ID >= EVT_ID.F_TRANSLATION && e.ID <= EVT_ID.F_PERMISSION;
  const s2 = translation && e.S2 === 1;
  return {
    device: `StreamID 0x${e.StreamID.toString(16)}`,
    address: s2 ? e.IPA : FETCH_IDS.includes(e.ID) ? e.FetchAddr : e.InputAddr,
    access: translation ? (e.RnW ? 'read' : 'write') : '',
    pasid: e.SSV ? e.SubstreamID : -1,
    stage2: s2,
  };
}

const FETCH_IDS: readonly number[] = [EVT_ID.F_STE_FETCH, EVT_ID.F_CD_FETCH, EVT_ID.F_VMS_FETCH];

function eventOutput(words: readonly bigint[]): DecodeOutput {
  const e = decodeEventWords(words);
  // The decoded lines a ≈v6.15+ kernel prints after the raw dump, for a SID bound to no device.
  const lines = renderEventLines(words).slice(5);
  const advice = smmuEventAdvice(e.ID, eventSubject(e));
  return { vendor: VENDOR, kind: 'event', fields: eventFields(e), summary: eventSummary(e), linux: lines.join('\n'), words: eventRecordWords(words), ...(advice ? { advice } : {}) };
}

function priOutput(words: readonly bigint[]): DecodeOutput {
  // Two dwords are always a whole entry.
  const q = (decodePriRequest(writeLe64Words(words)) as { ok: true; value: PriRequest }).value;
  const perms = `${q.READ ? 'R' : ''}${q.WRITE ? 'W' : ''}${q.EXEC ? 'X' : ''}` || 'no access';
  const summary = isStopMarker(q)
    ? `PRI stop marker for StreamID 0x${q.SID.toString(16)} PASID 0x${q.SSID.toString(16)}, PRG ${q.PRGIndex}`
    : `PRI page request: ${q.PRIV ? 'privileged' : 'unprivileged'} ${perms} at ${hex(q.Addr)} by StreamID 0x${q.SID.toString(16)}${q.SSV ? ` PASID 0x${q.SSID.toString(16)}` : ''}, PRG ${q.PRGIndex}${q.LAST ? ' (last)' : ''}`;
  const linux = renderUnexpectedPriLines({
    sid: q.SID, ssid: q.SSID, grpid: q.PRGIndex, last: q.LAST === 1, privileged: q.PRIV === 1, read: q.READ === 1, write: q.WRITE === 1, exec: q.EXEC === 1, iova: q.Addr,
  }).join('\n');
  return {
    vendor: VENDOR,
    kind: 'pri',
    fields: { SID: q.SID, SSID: q.SSID, SSV: q.SSV, PRIV: q.PRIV, EXEC: q.EXEC, READ: q.READ, WRITE: q.WRITE, LAST: q.LAST, PRGIndex: q.PRGIndex, Addr: hex(q.Addr) },
    summary,
    linux,
    words: priRecordWords(words),
  };
}

function commandOutput(words: readonly bigint[]): Result<DecodeOutput> {
  const c = decodeCommandWords(words);
  if (!c.ok) return c;
  const fields: Fields = { op: c.value.op };
  for (const [k, v] of Object.entries(c.value.fields)) fields[k] = typeof v === 'bigint' ? hex(v) : v;
  const shown = Object.entries(fields).filter(([k, v]) => k !== 'op' && v !== 0 && v !== '0x0').map(([k, v]) => `${k}=${typeof v === 'number' && v > 9 ? hex(v) : v}`);
  return ok({
    vendor: VENDOR,
    kind: 'command',
    fields,
    summary: `${c.value.name} (0x${c.value.op.toString(16).padStart(2, '0')})${shown.length ? ` ${shown.join(' ')}` : ''}`,
    // Linux prints a command only when the CMDQ stops on it ("skipping command in error state:").
    linux: '',
  });
}

function featureFields(features: number): Fields {
  const out: Fields = {};
  for (const [name, bit] of Object.entries(ARM_SMMU_FEAT)) out[`FEAT_${name}`] = (features & (1 << bit)) !== 0;
  return out;
}

/** The advice for a decoded "event: F_... client: ..." line (it does not say read or write, nor the stage). */
function lineAdvice(s: EventSummaryLine): Pick<DecodeOutput, 'advice'> {
  const id = (EVT_ID as Readonly<Record<string, number>>)[s.name];
  if (id === undefined) return {};
  const advice = smmuEventAdvice(id, {
    device: s.client ?? `StreamID 0x${s.sid.toString(16)}`,
    address: s.iova ?? s.fetchAddr ?? 0n,
    access: '',
    pasid: s.ssid !== 0 ? s.ssid : -1,
  });
  return advice ? { advice } : {};
}

function logLineOutput(text: string): Result<DecodeOutput> | null {
  const { device, message } = stripLogPrefix(text);
  const linux = text.trim();
  const msg = message.trim();
  const probe = parseProbeLine(text);
  if (probe.ok) {
    const p = probe.value;
    const names = Object.entries(ARM_SMMU_FEAT).filter(([, b]) => (p.features & (1 << b)) !== 0).map(([n]) => n);
    return ok({
      vendor: VENDOR,
      kind: 'probe',
      fields: { ias: p.ias, oas: p.oas, features: hex32(p.features), ...featureFields(p.features) },
      summary: `${device ?? 'SMMUv3'}: ${p.ias}-bit IAS, ${p.oas}-bit OAS; features ${names.join(' ') || 'none'}`,
      linux,
    });
  }
  const head = /^event 0x([0-9a-f]{2,}) received:$/i.exec(msg);
  if (head) {
    const id = Number.parseInt(head[1], 16);
    return ok({ vendor: VENDOR, kind: 'event-header', fields: { ID: id }, summary: `event ${eventName(id)} (0x${head[1]}); four raw dwords follow`, linux });
  }
  const sum = parseEventSummaryLine(text);
  if (sum.ok) {
    const s = sum.value;
    const fields: Fields = { name: s.name, StreamID: s.sid, SubstreamID: s.ssid, client: s.client ?? '(unassigned sid)' };
    if (s.iova !== undefined) fields['InputAddr'] = hex(s.iova);
    if (s.ipa !== undefined) fields['IPA'] = hex(s.ipa);
    if (s.fetchAddr !== undefined) fields['FetchAddr'] = hex(s.fetchAddr);
    return ok({
      vendor: VENDOR,
      kind: 'event-line',
      fields,
      summary: `${s.name} for StreamID 0x${s.sid.toString(16)} (${s.client ?? 'no device bound'})${s.iova !== undefined ? ` at IOVA ${hex(s.iova)}` : ''}`,
      linux,
      ...lineAdvice(s),
    });
  }
  const det = parseEventDetailLine(text);
  if (det.ok) {
    const d = det.value;
    return ok({
      vendor: VENDOR,
      kind: 'event-detail',
      fields: { PnU: d.privileged ? 1 : 0, InD: d.instruction ? 1 : 0, RnW: d.read ? 1 : 0, S2: d.s2 ? 1 : 0, CLASS: d.class, Stall: d.stall ? 1 : 0, STAG: d.stag, ...(d.ttd ? { TTRnW: d.ttd === 'read' ? 1 : 0 } : {}) },
      summary: `${d.privileged ? 'privileged' : 'unprivileged'} ${d.instruction ? 'instruction' : 'data'} ${d.read ? 'read' : 'write'} faulting at stage ${d.s2 ? 2 : 1}: ${EVENT_CLASS_STR[d.class]}`,
      linux,
    });
  }
  const pri = parseUnexpectedPriLine(text);
  if (pri.ok) {
    const p = pri.value;
    return ok({
      vendor: VENDOR,
      kind: 'pri-line',
      fields: { SID: p.sid, SSID: p.ssid, PRGIndex: p.grpid, LAST: p.last ? 1 : 0, PRIV: p.privileged ? 1 : 0, READ: p.read ? 1 : 0, WRITE: p.write ? 1 : 0, EXEC: p.exec ? 1 : 0, Addr: hex(p.iova) },
      summary: `a page request no handler took (Linux answers the group with PRI_RESP_DENY when it is the last)`,
      linux,
    });
  }
  const cmdq = parseCmdqErrorLine(text);
  if (cmdq.ok) {
    return ok({ vendor: VENDOR, kind: 'cmdq-error', fields: { CONS: hex32(cmdq.value.cons), ERR: cmdq.value.error }, summary: `CMDQ stopped: ${cmdq.value.text}`, linux });
  }
  const q = parseQueueAllocLine(text);
  if (q.ok) {
    return ok({ vendor: VENDOR, kind: 'queue', fields: { entries: q.value.entries, queue: q.value.queue }, summary: `${q.value.queue} of ${q.value.entries} entries (log2 ${Math.log2(q.value.entries)})`, linux });
  }
  const opt = parseOptionMaskLine(text);
  if (opt.ok) return ok({ vendor: VENDOR, kind: 'options', fields: { options: hex(opt.value.options) }, summary: `driver options 0x${opt.value.options.toString(16)}`, linux });
  if (PROBE_MESSAGES.includes(msg)) return ok({ vendor: VENDOR, kind: 'message', fields: {}, summary: msg, linux });
  return null;
}

const HEX_TOKEN = /^(0x)?[0-9a-f]+$/i;

function parseDwords(tokens: readonly string[]): Result<bigint[]> {
  const out: bigint[] = [];
  for (const t of tokens) {
    if (!HEX_TOKEN.test(t)) return err(`'${t}' is not a hex value`);
    const v = BigInt(t.toLowerCase().startsWith('0x') ? t : `0x${t}`);
    if (v > 0xffffffffffffffffn) return err(`'${t}' is wider than 64 bits`);
    out.push(v);
  }
  return ok(out);
}

/** Normalized `kind` spellings: register names, 'event', 'pri', 'command'. */
function normalizeKind(kind: string | undefined): string | undefined {
  if (kind === undefined || kind === '') return undefined;
  const k = kind.trim().toLowerCase().replace(/^smmu_/, '');
  if (k in REGISTER_KEY) return REGISTER_KEY[k];
  if (['event', 'evt', 'evtq'].includes(k)) return 'event';
  if (['pri', 'priq', 'page-request'].includes(k)) return 'pri';
  if (['cmd', 'cmdq', 'command'].includes(k)) return 'command';
  if (['registers', 'regs', 'idr'].includes(k)) return 'registers';
  if (['log', 'line'].includes(k)) return 'log';
  return kind;
}

/**
 * `ioasid decode smmuv3 …`:
 * - `idr0=0x0d44101a` (one register), or all of `idr0=… … idr5=… iidr=… aidr=…` / `idr=a,b,c,d,e,f iidr=… aidr=…`;
 * - a bare value with `kind` idr0..idr5, iidr or aidr;
 * - four hex dwords: an event queue record, as older kernels print it ("\t0x%016llx" × 4);
 * - two hex dwords: a CMDQ command, or with `kind` 'pri' a PRI queue entry (without a kind, a valid opcode
 *   in bits [7:0] reads as a command, anything else as a PRI entry);
 * - a kernel log line (any dmesg / journalctl prefix), or a whole "event 0x.. received:" dump.
 */
export function decodeSmmu(what: string, kind?: string): Result<DecodeOutput> {
  const k = normalizeKind(kind);
  const text = what.trim();
  if (!text) return err('nothing to decode');

  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length > 1) {
    const ev = parseEventLines(lines);
    if (ev.ok) return ok({ ...eventOutput(ev.value.raw), linux: renderEventLines(ev.value.raw).slice(5).join('\n') });
    return err(`multi-line input is read as an "event 0x.. received:" dump: ${ev.error}`);
  }

  const pairs = parseRegisterPairs(text);
  if (pairs) {
    if (!pairs.ok) return pairs;
    if (pairs.value.size === 1) {
      const [[name, value]] = [...pairs.value];
      return ok(registerOutput(name, value));
    }
    return registerSetOutput(pairs.value);
  }

  const tokens = text.split(/[\s,]+/).filter(Boolean);
  if (tokens.every((t) => HEX_TOKEN.test(t)) && k !== 'log') {
    if (tokens.length === 1) {
      if (!k || !REGISTER_NAMES.includes(k as RegisterName)) {
        return err(`a bare value needs a kind: idr0..idr5, iidr or aidr (got ${kind === undefined ? 'none' : `'${kind}'`}); an event record is 4 dwords, a PRI entry or command 2`);
      }
      const v = parseU32(tokens[0], k);
      if (!v.ok) return v;
      return ok(registerOutput(k as RegisterName, v.value));
    }
    const dw = parseDwords(tokens);
    if (!dw.ok) return dw;
    if (tokens.length === 4) return ok(eventOutput(dw.value));
    if (tokens.length === 2) {
      if (k === 'pri') return ok(priOutput(dw.value));
      if (k === 'command') return commandOutput(dw.value);
      const cmd = commandOutput(dw.value);
      return cmd.ok ? cmd : ok(priOutput(dw.value));
    }
    return err(`${tokens.length} hex values: expected 1 (a register, with its kind), 2 (a command or PRI entry) or 4 (an event record)`);
  }

  const line = logLineOutput(text);
  if (line) return line;
  return err(`not an SMMUv3 register, record or arm-smmu-v3 log line: ${text}`);
}

/** The SMMUv3 plugin's decoder (`IommuPlugin.decoder`). */
export const smmuDecoder: IommuDecoder = { vendor: VENDOR, decode: decodeSmmu };
