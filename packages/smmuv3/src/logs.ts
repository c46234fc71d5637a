/**
 * The exact lines the Linux arm-smmu-v3 driver prints, rendered from hardware records and parsed back from
 * dmesg / journalctl / syslog captures.
 */
import { stripKernelLogPrefix, type Result } from '@ioasid/core/driver';
import { EVT_ID, EVTQ_ENT_BYTES, decodeEventWords, linuxDecodeEvent } from './records.js';
import type { LinuxDecodedEvent } from './records.js';
import { readLe64Words } from './registers.js';
import { CMDQ_CERROR_STR } from './commands.js';

// ---------------------------------------------------------------------------------------------
// printk helpers: the kernel's vsnprintf prints "%#x" of zero as "0x0" (lib/vsprintf.c number(): the 0x
// prefix of base 16 does not depend on the value), unlike C libraries, which print a bare "0".
// ---------------------------------------------------------------------------------------------

function altHex(v: number | bigint): string {
  return `0x${BigInt(v).toString(16)}`;
}

function hex0(v: number | bigint, width: number): string {
  return BigInt(v).toString(16).padStart(width, '0');
}

/** Reads "%#x" as the kernel prints it ("0x0"); a bare "0" (a line re-typed through a C printf) is read too. */
function parseAltHex(s: string): bigint | undefined {
  if (s === '0') return 0n;
  return /^0x[0-9a-f]+$/i.test(s) ? BigInt(s) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Line prefixes
// ---------------------------------------------------------------------------------------------

export interface LogLine {
  /** The device name after the driver name, e.g. "arm-smmu-v3.0.auto" or "2b400000.iommu". */
  readonly device?: string;
  readonly message: string;
}

const DEVICE_PREFIX = /^arm-smmu-v3 (\S+): /;

/** Strips what dmesg / journalctl add (core's stripper) and the "arm-smmu-v3 <dev>: " prefix; keeps a leading tab of the message. */
export function stripLogPrefix(line: string): LogLine {
  const s = stripKernelLogPrefix(line);
  const d = DEVICE_PREFIX.exec(s);
  if (d) return { device: d[1], message: s.slice(d[0].length) };
  // Bare "arm-smmu-v3: " appears when dev_name is empty in some trees.
  if (s.startsWith('arm-smmu-v3: ')) return { message: s.slice('arm-smmu-v3: '.length) };
  return { message: s };
}

export function withDevicePrefix(device: string | undefined, message: string): string {
  return device ? `arm-smmu-v3 ${device}: ${message}` : message;
}

// ---------------------------------------------------------------------------------------------
// Event lines
// ---------------------------------------------------------------------------------------------

/** The names Linux's event_str[] knows; other IDs print as "UNKNOWN". */
const LINUX_EVENT_STR: ReadonlyMap<number, string> = new Map([
  [EVT_ID.C_BAD_STREAMID, 'C_BAD_STREAMID'],
  [EVT_ID.F_STE_FETCH, 'F_STE_FETCH'],
  [EVT_ID.C_BAD_STE, 'C_BAD_STE'],
  [EVT_ID.F_STREAM_DISABLED, 'F_STREAM_DISABLED'],
  [EVT_ID.C_BAD_SUBSTREAMID, 'C_BAD_SUBSTREAMID'],
  [EVT_ID.F_CD_FETCH, 'F_CD_FETCH'],
  [EVT_ID.C_BAD_CD, 'C_BAD_CD'],
  [EVT_ID.F_TRANSLATION, 'F_TRANSLATION'],
  [EVT_ID.F_ADDR_SIZE, 'F_ADDR_SIZE'],
  [EVT_ID.F_ACCESS, 'F_ACCESS'],
  [EVT_ID.F_PERMISSION, 'F_PERMISSION'],
  [EVT_ID.F_VMS_FETCH, 'F_VMS_FETCH'],
]);

export function linuxEventStr(id: number): string {
  return LINUX_EVENT_STR.get(id) ?? 'UNKNOWN';
}

export const EVENT_CLASS_STR: readonly string[] = [
  'CD fetch',
  'Stage 1 translation table fetch',
  'Input address caused fault',
  'Reserved',
];

const UNASSIGNED = '(unassigned sid)';

export type EventLogStyle =
  /** ≈v6.15+: dev_err, raw dump followed by the decoded lines. */
  | 'decoded'
  /** ≈v4.x–v6.14: dev_info, raw dump only. */
  | 'raw';

export interface RenderEventOptions {
  readonly style?: EventLogStyle;
  /** dev_name() of the master owning the SID; "(unassigned sid)" when absent. */
  readonly client?: string;
  /** Prefix every line with "arm-smmu-v3 <device>: ". */
  readonly device?: string;
}

function isTranslationFault(id: number): boolean {
  return id >= EVT_ID.F_TRANSLATION && id <= EVT_ID.F_PERMISSION;
}

function isFetchFault(id: number): boolean {
  return id === EVT_ID.F_STE_FETCH || id === EVT_ID.F_CD_FETCH || id === EVT_ID.F_VMS_FETCH;
}

export function renderEventLines(record: Uint8Array | readonly bigint[], opts: RenderEventOptions = {}): string[] {
  const raw = record instanceof Uint8Array ? readLe64Words(record, EVTQ_ENT_BYTES / 8) : [...record];
  const e = linuxDecodeEvent(decodeEventWords(raw));
  const lines = [`event 0x${hex0(e.id, 2)} received:`, ...raw.map((w) => `\t0x${hex0(w, 16)}`)];
  if ((opts.style ?? 'decoded') === 'decoded') lines.push(...renderDecodedEventLines(e, opts.client));
  return lines.map((l) => withDevicePrefix(opts.device, l));
}

function renderDecodedEventLines(e: LinuxDecodedEvent, client: string | undefined): string[] {
  const head = `event: ${linuxEventStr(e.id)} client: ${client ?? UNASSIGNED} sid: ${altHex(e.sid)} ssid: ${altHex(e.ssid)}`;
  if (isTranslationFault(e.id)) {
    const ttd = e.classTt ? (e.ttrnw ? ' ttd_read' : ' ttd_write') : '';
    return [
      `${head} iova: ${altHex(e.iova)} ipa: ${altHex(e.ipa)}`,
      `${e.privileged ? 'priv' : 'unpriv'} ${e.instruction ? 'inst' : 'data'} ${e.read ? 'read' : 'write'} ` +
        `${e.s2 ? 's2' : 's1'} "${EVENT_CLASS_STR[e.class]}"${ttd}${e.stall ? ' stall' : ''} stag: ${altHex(e.stag)}`,
    ];
  }
  if (isFetchFault(e.id)) return [`${head} fetch_addr: ${altHex(e.fetchAddr)}`];
  return [head];
}

/** "event: %s client: %s sid: %#x ssid: %#x[ iova: %#llx ipa: %#llx | fetch_addr: %#llx]" */
export interface EventSummaryLine {
  readonly name: string;
  readonly client: string | null;
  readonly sid: number;
  readonly ssid: number;
  readonly iova?: bigint;
  readonly ipa?: bigint;
  readonly fetchAddr?: bigint;
}

const SUMMARY_RE =
  /^event: (\S+) client: (.+?) sid: (0|0x[0-9a-f]+) ssid: (0|0x[0-9a-f]+)(?: iova: (0|0x[0-9a-f]+) ipa: (0|0x[0-9a-f]+)| fetch_addr: (0|0x[0-9a-f]+))?$/i;

export function parseEventSummaryLine(line: string): Result<EventSummaryLine> {
  const { message } = stripLogPrefix(line);
  const m = SUMMARY_RE.exec(message.trim());
  if (!m) return { ok: false, error: `not an "event: … client: … sid: … ssid: …" line: ${message}` };
  const value: EventSummaryLine = {
    name: m[1],
    client: m[2] === UNASSIGNED ? null : m[2],
    sid: Number(parseAltHex(m[3])),
    ssid: Number(parseAltHex(m[4])),
    ...(m[5] !== undefined ? { iova: parseAltHex(m[5]), ipa: parseAltHex(m[6]) } : {}),
    ...(m[7] !== undefined ? { fetchAddr: parseAltHex(m[7]) } : {}),
  };
  return { ok: true, value };
}

/** "%s %s %s %s \"%s\"%s%s stag: %#x" */
export interface EventDetailLine {
  readonly privileged: boolean;
  readonly instruction: boolean;
  readonly read: boolean;
  readonly s2: boolean;
  readonly class: number;
  readonly ttd?: 'read' | 'write';
  readonly stall: boolean;
  readonly stag: number;
}

const DETAIL_RE = /^(priv|unpriv) (inst|data) (read|write) (s1|s2) "([^"]*)"( ttd_read| ttd_write)?( stall)? stag: (0|0x[0-9a-f]+)$/i;

export function parseEventDetailLine(line: string): Result<EventDetailLine> {
  const { message } = stripLogPrefix(line);
  const m = DETAIL_RE.exec(message.trim());
  if (!m) return { ok: false, error: `not a "priv|unpriv inst|data read|write s1|s2 \\"class\\" … stag:" line: ${message}` };
  const cls = EVENT_CLASS_STR.indexOf(m[5]);
  if (cls < 0) return { ok: false, error: `unknown event class string "${m[5]}"` };
  return {
    ok: true,
    value: {
      privileged: m[1] === 'priv',
      instruction: m[2] === 'inst',
      read: m[3] === 'read',
      s2: m[4] === 's2',
      class: cls,
      ...(m[6] ? { ttd: m[6] === ' ttd_read' ? ('read' as const) : ('write' as const) } : {}),
      stall: m[7] !== undefined,
      stag: Number(parseAltHex(m[8])),
    },
  };
}

export interface ParsedEventLog {
  readonly device?: string;
  readonly id: number;
  /** The four raw dwords. */
  readonly raw: readonly bigint[];
  readonly summary?: EventSummaryLine;
  readonly detail?: EventDetailLine;
  /** How many input lines the event used. */
  readonly consumed: number;
}

const RECEIVED_RE = /^event 0x([0-9a-f]{2,}) received:$/i;
const RAW_RE = /^\s*0x([0-9a-f]{16})$/i;

/**
 * Parses one event starting at lines[0]: the "event 0x%02x received:" header, four "\t0x%016llx" dwords, then
 * the optional decoded lines of newer kernels.
 */
export function parseEventLines(lines: readonly string[]): Result<ParsedEventLog> {
  if (lines.length === 0) return { ok: false, error: 'no lines' };
  const head = stripLogPrefix(lines[0]);
  const hm = RECEIVED_RE.exec(head.message.trim());
  if (!hm) return { ok: false, error: `line 1 is not "event 0x%02x received:": ${head.message}` };
  const id = Number.parseInt(hm[1], 16);
  const raw: bigint[] = [];
  for (let i = 1; i <= 4; i++) {
    if (i >= lines.length) return { ok: false, error: `missing raw dword ${i - 1} of 4 (line ${i + 1})` };
    const m = RAW_RE.exec(stripLogPrefix(lines[i]).message);
    if (!m) return { ok: false, error: `line ${i + 1} is not a raw dword "\\t0x%016llx": ${lines[i]}` };
    raw.push(BigInt(`0x${m[1]}`));
  }
  const recordId = Number(raw[0] & 0xffn);
  if (recordId !== id) {
    return { ok: false, error: `header says event 0x${hex0(id, 2)} but dword 0 holds ID 0x${hex0(recordId, 2)}` };
  }
  let consumed = 5;
  let summary: EventSummaryLine | undefined;
  let detail: EventDetailLine | undefined;
  if (lines.length > consumed) {
    const s = parseEventSummaryLine(lines[consumed]);
    if (s.ok) {
      summary = s.value;
      consumed++;
      if (isTranslationFault(id) && lines.length > consumed) {
        const d = parseEventDetailLine(lines[consumed]);
        if (d.ok) {
          detail = d.value;
          consumed++;
        }
      }
    }
  }
  return {
    ok: true,
    value: {
      ...(head.device ? { device: head.device } : {}),
      id,
      raw,
      ...(summary ? { summary } : {}),
      ...(detail ? { detail } : {}),
      consumed,
    },
  };
}

/** Finds and parses every event in a log capture, skipping unrelated lines. */
export function parseEventLog(lines: readonly string[]): ParsedEventLog[] {
  const out: ParsedEventLog[] = [];
  for (let i = 0; i < lines.length; ) {
    const r = RECEIVED_RE.test(stripLogPrefix(lines[i]).message.trim()) ? parseEventLines(lines.slice(i)) : undefined;
    if (r?.ok) {
      out.push(r.value);
      i += r.value.consumed;
    } else i++;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Probe lines
// ---------------------------------------------------------------------------------------------

export interface ProbeLine {
  readonly ias: number;
  readonly oas: number;
  readonly features: number;
}

export function renderProbeLine(p: ProbeLine): string {
  return `ias ${p.ias}-bit, oas ${p.oas}-bit (features 0x${hex0(p.features >>> 0, 8)})`;
}

const PROBE_RE = /^ias (\d+)-bit, oas (\d+)-bit \(features 0x([0-9a-f]{8,})\)$/i;

export function parseProbeLine(line: string): Result<ProbeLine & { device?: string }> {
  const { device, message } = stripLogPrefix(line);
  const m = PROBE_RE.exec(message.trim());
  if (!m) return { ok: false, error: `not an "ias %lu-bit, oas %lu-bit (features 0x%08x)" line: ${message}` };
  return {
    ok: true,
    value: { ...(device ? { device } : {}), ias: Number(m[1]), oas: Number(m[2]), features: Number.parseInt(m[3], 16) >>> 0 },
  };
}

export type QueueName = 'cmdq' | 'evtq' | 'priq';

export function renderQueueAllocLine(entries: number, queue: QueueName | string): string {
  return `allocated ${entries} entries for ${queue}`;
}

const QUEUE_RE = /^allocated (\d+) entries for (\S+)$/;

export function parseQueueAllocLine(line: string): Result<{ entries: number; queue: string; device?: string }> {
  const { device, message } = stripLogPrefix(line);
  const m = QUEUE_RE.exec(message.trim());
  if (!m) return { ok: false, error: `not an "allocated %u entries for %s" line: ${message}` };
  return { ok: true, value: { ...(device ? { device } : {}), entries: Number(m[1]), queue: m[2] } };
}

export function parseOptionMaskLine(line: string): Result<{ options: number; device?: string }> {
  const { device, message } = stripLogPrefix(line);
  const m = /^option mask 0x([0-9a-f]+)$/i.exec(message.trim());
  if (!m) return { ok: false, error: `not an "option mask 0x%x" line: ${message}` };
  return { ok: true, value: { ...(device ? { device } : {}), options: Number.parseInt(m[1], 16) } };
}

/** The probe's one-line refusals and warnings, matched verbatim. */
export const PROBE_MESSAGES: readonly string[] = [
  'unknown/unsupported TT endianness!',
  'no translation support!',
  'AArch64 table format not supported!',
  'embedded implementation not supported',
  'unknown output address size. Truncating to 48-bit',
  'failed to set DMA mask for table walker',
  'msi_domain absent - falling back to wired irqs',
  'EVTQ overflow detected -- events lost',
  'PRIQ overflow detected -- requests lost',
  'device has entered Service Failure Mode!',
];

// ---------------------------------------------------------------------------------------------
// PRI and CMDQ error lines
// ---------------------------------------------------------------------------------------------

export interface PriLogFields {
  readonly sid: number;
  readonly ssid: number;
  readonly grpid: number;
  readonly last: boolean;
  readonly privileged: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly exec: boolean;
  readonly iova: bigint;
}

export function renderUnexpectedPriLines(p: PriLogFields): string[] {
  return [
    'unexpected PRI request received:',
    `\tsid 0x${hex0(p.sid, 8)}.0x${hex0(p.ssid, 5)}: [${p.grpid}${p.last ? 'L' : ''}] ${p.privileged ? '' : 'un'}privileged ` +
      `${p.read ? 'R' : ''}${p.write ? 'W' : ''}${p.exec ? 'X' : ''} access at iova 0x${hex0(p.iova, 16)}`,
  ];
}

const PRI_RE = /^\s*sid 0x([0-9a-f]{8,})\.0x([0-9a-f]{5,}): \[(\d+)(L?)\] (un)?privileged (R?)(W?)(X?) access at iova 0x([0-9a-f]{16})$/i;

export function parseUnexpectedPriLine(line: string): Result<PriLogFields> {
  const { message } = stripLogPrefix(line);
  const m = PRI_RE.exec(message);
  if (!m) return { ok: false, error: `not a "\\tsid 0x%08x.0x%05x: [%u%s] …" PRI line: ${message}` };
  return {
    ok: true,
    value: {
      sid: Number.parseInt(m[1], 16),
      ssid: Number.parseInt(m[2], 16),
      grpid: Number(m[3]),
      last: m[4] === 'L',
      privileged: m[5] === undefined,
      read: m[6] === 'R',
      write: m[7] === 'W',
      exec: m[8] === 'X',
      iova: BigInt(`0x${m[9]}`),
    },
  };
}

export function renderCmdqErrorLine(cons: number): string {
  const idx = (cons >>> 24) & 0x7f;
  return `CMDQ error (cons 0x${hex0(cons >>> 0, 8)}): ${CMDQ_CERROR_STR[idx] ?? 'Unknown'}`;
}

export function parseCmdqErrorLine(line: string): Result<{ cons: number; error: number; text: string }> {
  const { message } = stripLogPrefix(line);
  const m = /^CMDQ error \(cons 0x([0-9a-f]{8})\): (.+)$/i.exec(message.trim());
  if (!m) return { ok: false, error: `not a "CMDQ error (cons 0x%08x): %s" line: ${message}` };
  const cons = Number.parseInt(m[1], 16) >>> 0;
  return { ok: true, value: { cons, error: (cons >>> 24) & 0x7f, text: m[2] } };
}
