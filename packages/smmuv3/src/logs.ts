/**
 * The exact lines the Linux arm-smmu-v3 driver prints, rendered from hardware records and parsed back from
 * dmesg / journalctl / syslog captures.
 */
import { readLe64Words, ok, err, stripKernelLogPrefix, type Result } from '@ioasid/core/driver';
import { EVT_ID, EVTQ_ENT_BYTES, decodeEventWords, linuxDecodeEvent } from './records.js';
import type { LinuxDecodedEvent } from './records.js';
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

/** A kernel log line with the arm-smmu-v3 device prefix taken off. */
export interface LogLine {
  /** The device name after the driver name, e.g. "arm-smmu-v3.0.auto" or "2b400000.iommu". */
  readonly device?: string;
  /** The message after the prefixes. */
  readonly message: string;
}

const DEVICE_PREFIX = /^arm-smmu-v3 (\S+): /;

/**
 * Strips what dmesg / journalctl add (core's stripper) and the "arm-smmu-v3 <dev>: " prefix; keeps a leading tab of the
 * message.
 */
export function stripLogPrefix(line: string): LogLine {
  const s = stripKernelLogPrefix(line);
  const d = DEVICE_PREFIX.exec(s);
  if (d) return { device: d[1], message: s.slice(d[0].length) };
  // Bare "arm-smmu-v3: " appears when dev_name is empty in some trees.
  if (s.startsWith('arm-smmu-v3: ')) return { message: s.slice('arm-smmu-v3: '.length) };
  return { message: s };
}

/**
 * Prepend "arm-smmu-v3 <device>: " to a message, as dev_err/dev_info print it; without a device the message is returned
 * as is.
 */
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

/**
 * The name Linux's event_str[] prints for an event ID, "UNKNOWN" for the IDs it does not list (F_UUT, F_BAD_ATS_TREQ,
 * ...).
 */
export function linuxEventStr(id: number): string {
  return LINUX_EVENT_STR.get(id) ?? 'UNKNOWN';
}

/** Linux's event_class_str[]: the text printed for each event record CLASS value (`EVTQ_1_CLASS` order). */
export const EVENT_CLASS_STR: readonly string[] = [
  'CD fetch',
  'Stage 1 translation table fetch',
  'Input address caused fault',
  'Reserved',
];

const UNASSIGNED = '(unassigned sid)';

/** How a kernel prints an event record (arm_smmu_evtq_thread → arm_smmu_dump_event). */
export type EventLogStyle =
  /** ≈v6.15+: dev_err, raw dump followed by the decoded lines. */
  | 'decoded'
  /** ≈v4.x–v6.14: dev_info, raw dump only. */
  | 'raw';

/** Options of `renderEventLines`. */
export interface RenderEventOptions {
  /** Which kernel generation's format to print; 'decoded' by default. */
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

/**
 * The lines the kernel prints for one event record: "event 0x%02x received:", four raw dwords and, in the decoded
 * style, the arm_smmu_dump_event summary and detail lines.
 */
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
  /** Event name from event_str[] ("UNKNOWN" for IDs Linux does not name). */
  readonly name: string;
  /** dev_name() of the master owning the StreamID, null for "(unassigned sid)". */
  readonly client: string | null;
  /** StreamID, printed as `sid: %#x`. */
  readonly sid: number;
  /** SubstreamID (0 when the event had none). */
  readonly ssid: number;
  /** Input address, printed for translation faults (F_TRANSLATION..F_PERMISSION). */
  readonly iova?: bigint;
  /** Faulting IPA, printed for translation faults. */
  readonly ipa?: bigint;
  /** Address of the failed STE/CD/VMS fetch, printed for fetch aborts. */
  readonly fetchAddr?: bigint;
}

const SUMMARY_RE =
  /^event: (\S+) client: (.+?) sid: (0|0x[0-9a-f]+) ssid: (0|0x[0-9a-f]+)(?: iova: (0|0x[0-9a-f]+) ipa: (0|0x[0-9a-f]+)| fetch_addr: (0|0x[0-9a-f]+))?$/i;

/** Parse the "event: … client: … sid: … ssid: …" line of a decoded event dump. */
export function parseEventSummaryLine(line: string): Result<EventSummaryLine> {
  const { message } = stripLogPrefix(line);
  const m = SUMMARY_RE.exec(message.trim());
  if (!m) return err(`not an "event: … client: … sid: … ssid: …" line: ${message}`);
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
  /** "priv" (PnU = 1) rather than "unpriv". */
  readonly privileged: boolean;
  /** "inst" (InD = 1) rather than "data". */
  readonly instruction: boolean;
  /** "read" (RnW = 1) rather than "write". */
  readonly read: boolean;
  /** "s2": the fault was at stage 2. */
  readonly s2: boolean;
  /** CLASS, an index into `EVENT_CLASS_STR`. */
  readonly class: number;
  /** "ttd_read" / "ttd_write": the table-walk access of an F_PERMISSION with CLASS TT. */
  readonly ttd?: 'read' | 'write';
  /** "stall": the transaction is stalled. */
  readonly stall: boolean;
  /** Stall tag, the `stag: %#x` a CMD_RESUME must echo. */
  readonly stag: number;
}

const DETAIL_RE = /^(priv|unpriv) (inst|data) (read|write) (s1|s2) "([^"]*)"( ttd_read| ttd_write)?( stall)? stag: (0|0x[0-9a-f]+)$/i;

/** Parse the second decoded line of a translation fault (access attributes, class, stall and STAG). */
export function parseEventDetailLine(line: string): Result<EventDetailLine> {
  const { message } = stripLogPrefix(line);
  const m = DETAIL_RE.exec(message.trim());
  if (!m) return err(`not a "priv|unpriv inst|data read|write s1|s2 \\"class\\" … stag:" line: ${message}`);
  const cls = EVENT_CLASS_STR.indexOf(m[5]);
  if (cls < 0) return err(`unknown event class string "${m[5]}"`);
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

/** One event as parsed from a kernel log: the raw record and, on newer kernels, its decoded lines. */
export interface ParsedEventLog {
  /** The SMMU device name from the line prefix, when present. */
  readonly device?: string;
  /** Event ID from the "event 0x%02x received:" header. */
  readonly id: number;
  /** The four raw dwords. */
  readonly raw: readonly bigint[];
  /** The decoded summary line, when the kernel printed one. */
  readonly summary?: EventSummaryLine;
  /** The decoded detail line (translation faults only), when printed. */
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
  if (lines.length === 0) return err('no lines');
  const head = stripLogPrefix(lines[0]);
  const hm = RECEIVED_RE.exec(head.message.trim());
  if (!hm) return err(`line 1 is not "event 0x%02x received:": ${head.message}`);
  const id = Number.parseInt(hm[1], 16);
  const raw: bigint[] = [];
  for (let i = 1; i <= 4; i++) {
    if (i >= lines.length) return err(`missing raw dword ${i - 1} of 4 (line ${i + 1})`);
    const m = RAW_RE.exec(stripLogPrefix(lines[i]).message);
    if (!m) return err(`line ${i + 1} is not a raw dword "\\t0x%016llx": ${lines[i]}`);
    raw.push(BigInt(`0x${m[1]}`));
  }
  const recordId = Number(raw[0] & 0xffn);
  if (recordId !== id) {
    return err(`header says event 0x${hex0(id, 2)} but dword 0 holds ID 0x${hex0(recordId, 2)}`);
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

/** The values of arm_smmu_device_hw_probe's "ias %lu-bit, oas %lu-bit (features 0x%08x)" line. */
export interface ProbeLine {
  /** Input address size in bits as the probe derived it (the OAS, or 40 with AArch32 tables if larger). */
  readonly ias: number;
  /** Output address size in bits, from SMMU_IDR5.OAS. */
  readonly oas: number;
  /** The ARM_SMMU_FEAT_* mask the driver derived from the ID registers. */
  readonly features: number;
}

/** Print the probe's "ias …-bit, oas …-bit (features 0x%08x)" line. */
export function renderProbeLine(p: ProbeLine): string {
  return `ias ${p.ias}-bit, oas ${p.oas}-bit (features 0x${hex0(p.features >>> 0, 8)})`;
}

const PROBE_RE = /^ias (\d+)-bit, oas (\d+)-bit \(features 0x([0-9a-f]{8,})\)$/i;

/** Parse the probe's "ias …-bit, oas …-bit (features 0x%08x)" line; the device comes from the line prefix. */
export function parseProbeLine(line: string): Result<
  ProbeLine & {
    /** The SMMU device name from the line prefix, when present. */
    device?: string;
  }
> {
  const { device, message } = stripLogPrefix(line);
  const m = PROBE_RE.exec(message.trim());
  if (!m) return err(`not an "ias %lu-bit, oas %lu-bit (features 0x%08x)" line: ${message}`);
  return {
    ok: true,
    value: { ...(device ? { device } : {}), ias: Number(m[1]), oas: Number(m[2]), features: Number.parseInt(m[3], 16) >>> 0 },
  };
}

/** A queue the driver allocates: command, event or PRI queue. */
export type QueueName = 'cmdq' | 'evtq' | 'priq';

/** Print arm_smmu_init_one_queue's "allocated %u entries for %s" line. */
export function renderQueueAllocLine(entries: number, queue: QueueName | string): string {
  return `allocated ${entries} entries for ${queue}`;
}

const QUEUE_RE = /^allocated (\d+) entries for (\S+)$/;

/** Parse an "allocated %u entries for %s" line. */
export function parseQueueAllocLine(line: string): Result<{
  /** The number of entries allocated (a power of two). */
  entries: number;
  /** The queue's name as printed (`cmdq`, `evtq`, `priq`, or a vendor queue). */
  queue: string;
  /** The SMMU device name from the line prefix, when present. */
  device?: string;
}> {
  const { device, message } = stripLogPrefix(line);
  const m = QUEUE_RE.exec(message.trim());
  if (!m) return err(`not an "allocated %u entries for %s" line: ${message}`);
  return ok({ ...(device ? { device } : {}), entries: Number(m[1]), queue: m[2] });
}

/** Parse the probe's "option mask 0x%x" line: the ARM_SMMU_OPT_* quirks the firmware description selected. */
export function parseOptionMaskLine(line: string): Result<{
  /** The ARM_SMMU_OPT_* mask. */
  options: number;
  /** The SMMU device name from the line prefix, when present. */
  device?: string;
}> {
  const { device, message } = stripLogPrefix(line);
  const m = /^option mask 0x([0-9a-f]+)$/i.exec(message.trim());
  if (!m) return err(`not an "option mask 0x%x" line: ${message}`);
  return ok({ ...(device ? { device } : {}), options: Number.parseInt(m[1], 16) });
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

/** The fields arm_smmu_handle_ppr prints for a PRI request it does not expect. */
export interface PriLogFields {
  /** StreamID (PRIQ_0_SID), printed as `sid 0x%08x`. */
  readonly sid: number;
  /** SubstreamID (PASID), printed after the dot as `0x%05x`; 0 without one. */
  readonly ssid: number;
  /** Page Request Group Index (PRIQ_1_PRG_IDX), printed in brackets. */
  readonly grpid: number;
  /** Last request of its group (printed as an "L" after the index). */
  readonly last: boolean;
  /** Privileged access requested. */
  readonly privileged: boolean;
  /** Read access requested. */
  readonly read: boolean;
  /** Write access requested. */
  readonly write: boolean;
  /** Execute access requested. */
  readonly exec: boolean;
  /** Requested page address (PRIQ_1_ADDR), printed as `iova 0x%016llx`. */
  readonly iova: bigint;
}

/**
 * The two lines arm_smmu_handle_ppr prints for an unexpected PRI request ("unexpected PRI request received:" and the
 * request).
 */
export function renderUnexpectedPriLines(p: PriLogFields): string[] {
  return [
    'unexpected PRI request received:',
    `\tsid 0x${hex0(p.sid, 8)}.0x${hex0(p.ssid, 5)}: [${p.grpid}${p.last ? 'L' : ''}] ${p.privileged ? '' : 'un'}privileged ` +
      `${p.read ? 'R' : ''}${p.write ? 'W' : ''}${p.exec ? 'X' : ''} access at iova 0x${hex0(p.iova, 16)}`,
  ];
}

const PRI_RE = /^\s*sid 0x([0-9a-f]{8,})\.0x([0-9a-f]{5,}): \[(\d+)(L?)\] (un)?privileged (R?)(W?)(X?) access at iova 0x([0-9a-f]{16})$/i;

/** Parse the request line (`\tsid 0x%08x.0x%05x: [%u%s] …`) of an unexpected PRI request. */
export function parseUnexpectedPriLine(line: string): Result<PriLogFields> {
  const { message } = stripLogPrefix(line);
  const m = PRI_RE.exec(message);
  if (!m) return err(`not a "\\tsid 0x%08x.0x%05x: [%u%s] …" PRI line: ${message}`);
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

/**
 * The line arm_smmu_cmdq_skip_err prints: "CMDQ error (cons 0x%08x): %s", the reason from SMMU_CMDQ_CONS.ERR (bits
 * [30:24]).
 */
export function renderCmdqErrorLine(cons: number): string {
  const idx = (cons >>> 24) & 0x7f;
  return `CMDQ error (cons 0x${hex0(cons >>> 0, 8)}): ${CMDQ_CERROR_STR[idx] ?? 'Unknown'}`;
}

/** Parse a "CMDQ error (cons 0x%08x): %s" line. */
export function parseCmdqErrorLine(line: string): Result<{
  /** SMMU_CMDQ_CONS as printed. */
  cons: number;
  /** The CERROR code, SMMU_CMDQ_CONS bits [30:24]. */
  error: number;
  /** The reason text as printed. */
  text: string;
}> {
  const { message } = stripLogPrefix(line);
  const m = /^CMDQ error \(cons 0x([0-9a-f]{8})\): (.+)$/i.exec(message.trim());
  if (!m) return err(`not a "CMDQ error (cons 0x%08x): %s" line: ${message}`);
  const cons = Number.parseInt(m[1], 16) >>> 0;
  return ok({ cons, error: (cons >>> 24) & 0x7f, text: m[2] });
}
