/**
 * The Linux kernel's VT-d log lines, rendered and parsed exactly:
 *
 *   DMAR: dmar%d: reg_base_addr %llx ver %d:%d cap %llx ecap %llx          (alloc_iommu)
 *   DMAR: DRHD: handling fault status reg %x                                 (dmar_fault)
 *   DMAR: [%s NO_PASID] Request device [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s
 *   DMAR: [%s PASID 0x%x] Request device [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s
 *   DMAR: [INTR-REMAP] Request device [%02x:%02x.%d] fault index 0x%llx [fault reason 0x%02x] %s
 *
 * plus the older forms: `dmar: IOMMU %d: reg_base_addr ...` (before 4.x), the decimal-reason DMA line of
 * kernels up to ~5.4, and the `PASID %x` line of ~5.5-5.13. Parsing accepts the prefixes dmesg,
 * `dmesg -T`, journalctl and syslog put in front, and never throws: it says which part of which line
 * is wrong.
 */
import type { Result } from '@ioasid/core/driver';
import { type VtdFrcd, frcdFaultAddress } from './records.js';
import { dmarFaultReason } from './fault-reasons.js';
import { err, ok, stripKernelLogPrefix } from '@ioasid/core/driver';

/** Which kernel generation's format a fault line uses. */
export type VtdFaultLineFormat =
  /** ~v5.14 and later: NO_PASID / `PASID 0x%x`, `fault addr 0x%llx`, `[fault reason 0x%02x]`. */
  | 'mainline'
  /** ~v5.5-v5.13: `[DMA Read] Request device [..] PASID %x fault addr %llx [fault reason %02d]`. */
  | 'pasid-decimal'
  /** up to ~v5.4: `[DMA Read] Request device [..] fault addr %llx [fault reason %02d]`. */
  | 'decimal';

/** The unit boot line. `legacy` is the pre-4.x `dmar: IOMMU %d:` naming. */
export interface VtdBootLine {
  /** Discriminant: a unit boot line (alloc_iommu). */
  readonly kind: 'boot';
  /** seq_id: N of "dmarN". */
  readonly seq: number;
  /** DRHD register base address, as printed. */
  readonly regBase: bigint;
  /** VER_REG value rebuilt from the printed major:minor. */
  readonly ver: bigint;
  /** CAP_REG, as printed. */
  readonly cap: bigint;
  /** ECAP_REG, as printed. */
  readonly ecap: bigint;
  /** `current` for `DMAR: dmarN:`, `legacy` for the pre-4.x `dmar: IOMMU N:` form. */
  readonly format: 'current' | 'legacy';
}

/** A parsed DMA remapping fault line (dmar.c dmar_fault_do_one). */
export interface VtdDmaFaultLine {
  /** Discriminant: a DMA remapping fault. */
  readonly kind: 'dma-fault';
  /** FRCD.T1: the kernel prints "DMA Read" for 1 (read or AtomicOp), "DMA Write" for 0. */
  readonly read: boolean;
  /** PASID when FRCD.PP was set; null prints as NO_PASID (or ffffffff in the 5.5-5.13 format). */
  readonly pasid: number | null;
  /** Source id: bus << 8 | devfn. */
  readonly sid: number;
  /** Faulting address (FRCD.FI), page aligned as the hardware records it. */
  readonly addr: bigint;
  /** Fault reason number (FRCD.FR), a `VTD_FR` value. */
  readonly reason: number;
  /** The reason text as printed (dmar_get_fault_reason). */
  readonly reasonText: string;
  /** The kernel generation whose format the line uses. */
  readonly format: VtdFaultLineFormat;
}

/** A parsed interrupt remapping fault line (`[INTR-REMAP]`: dmar_fault_do_one for a reason 0x20..0x26). */
export interface VtdIntrFaultLine {
  /** Discriminant: an interrupt remapping fault. */
  readonly kind: 'intr-fault';
  /** Source id of the interrupt request: bus << 8 | devfn. */
  readonly sid: number;
  /** Interrupt index (FI bits 63:48). */
  readonly index: bigint;
  /** Fault reason number, in the interrupt-remapping range 0x20..0x26. */
  readonly reason: number;
  /** The reason text as printed. */
  readonly reasonText: string;
  /** The kernel generation whose format the line uses. */
  readonly format: VtdFaultLineFormat;
}

/** A parsed `DMAR: DRHD: handling fault status reg %x` line (dmar.c dmar_fault). */
export interface VtdFaultStatusLine {
  /** Discriminant: the fault status line. */
  readonly kind: 'fault-status';
  /** FSTS_REG as printed. */
  readonly status: number;
}

/** Any VT-d line `parseVtdLogLine` recognizes, told apart by `kind`. */
export type VtdLogRecord = VtdBootLine | VtdDmaFaultLine | VtdIntrFaultLine | VtdFaultStatusLine;

const PR_FMT = 'DMAR: ';
/** INVALID_IOASID / IOMMU_PASID_INVALID as the 5.5-5.13 format prints it for requests without PASID. */
const PASID_INVALID = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** %02x:%02x.%d of a source id, as dmar_fault_do_one() prints it (bus, PCI_SLOT, PCI_FUNC). */
export function formatSourceId(sid: number): string {
  return `${hex2((sid >> 8) & 0xff)}:${hex2((sid >> 3) & 0x1f)}.${sid & 0x7}`;
}

function dec2(n: number): string {
  return n.toString(10).padStart(2, '0');
}

/** `DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050da` */
export function renderVtdBootLine(unit: { seq: number; regBase: bigint; ver: bigint | number; cap: bigint; ecap: bigint }): string {
  const ver = BigInt(unit.ver);
  const major = Number((ver & 0xf0n) >> 4n);
  const minor = Number(ver & 0x0fn);
  return (
    `${PR_FMT}dmar${unit.seq}: reg_base_addr ${unit.regBase.toString(16)} ver ${major}:${minor} ` +
    `cap ${unit.cap.toString(16)} ecap ${unit.ecap.toString(16)}`
  );
}

/** `DMAR: DRHD: handling fault status reg 2` */
export function renderFaultStatusLine(status: number): string {
  return `${PR_FMT}DRHD: handling fault status reg ${(status >>> 0).toString(16)}`;
}

/** One DMA remapping fault, as `renderDmaFaultLine` prints it. */
export interface VtdDmaFault {
  /** The access was a read (prints `DMA Read`), else a write. */
  readonly read: boolean;
  /** PASID of the request, or null without one. */
  readonly pasid: number | null;
  /** Source id: bus << 8 | devfn. */
  readonly sid: number;
  /** Faulting address (FRCD.FI << 12), printed as `fault addr 0x%llx`. */
  readonly addr: bigint;
  /** Fault reason number, a `VTD_FR` value. */
  readonly reason: number;
}

/** The DMA fault line, in the chosen kernel generation's format (mainline by default). */
export function renderDmaFaultLine(f: VtdDmaFault, format: VtdFaultLineFormat = 'mainline'): string {
  const type = f.read ? 'DMA Read' : 'DMA Write';
  const dev = formatSourceId(f.sid);
  const reason = dmarFaultReason(f.reason);
  const addr = f.addr.toString(16);
  switch (format) {
    case 'mainline': {
      const tag = f.pasid === null ? `${type} NO_PASID` : `${type} PASID 0x${f.pasid.toString(16)}`;
      return `${PR_FMT}[${tag}] Request device [${dev}] fault addr 0x${addr} [fault reason 0x${hex2(reason.code)}] ${reason.text}`;
    }
    case 'pasid-decimal': {
      const pasid = (f.pasid ?? PASID_INVALID).toString(16);
      return `${PR_FMT}[${type}] Request device [${dev}] PASID ${pasid} fault addr ${addr} [fault reason ${dec2(reason.code)}] ${reason.text}`;
    }
    case 'decimal':
      return `${PR_FMT}[${type}] Request device [${dev}] fault addr ${addr} [fault reason ${dec2(reason.code)}] ${reason.text}`;
  }
}

/** The interrupt-remapping fault line. */
export function renderIntrFaultLine(
  f: { sid: number; index: bigint | number; reason: number },
  format: VtdFaultLineFormat = 'mainline',
): string {
  const dev = formatSourceId(f.sid);
  const reason = dmarFaultReason(f.reason);
  const index = BigInt(f.index).toString(16);
  if (format === 'mainline') {
    return `${PR_FMT}[INTR-REMAP] Request device [${dev}] fault index 0x${index} [fault reason 0x${hex2(reason.code)}] ${reason.text}`;
  }
  return `${PR_FMT}[INTR-REMAP] Request device [${dev}] fault index ${index} [fault reason ${dec2(reason.code)}] ${reason.text}`;
}

/**
 * The line dmar_fault() prints for one fault record: the reason decides the format (interrupt
 * remapping or DMA), PP decides NO_PASID, and the address loses its page offset.
 */
export function renderFrcdLine(frcd: VtdFrcd, format: VtdFaultLineFormat = 'mainline'): string {
  const addr = frcdFaultAddress(frcd);
  if (dmarFaultReason(frcd.FR).type === 'intr-remap') {
    return renderIntrFaultLine({ sid: frcd.SID, index: addr >> 48n, reason: frcd.FR }, format);
  }
  return renderDmaFaultLine(
    { read: frcd.T1 === 1, pasid: frcd.PP ? frcd.PV : null, sid: frcd.SID, addr, reason: frcd.FR },
    format,
  );
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/** A cursor over one line that reports what it expected where, for precise errors. */
class LineCursor {
  private pos = 0;
  error: string | null = null;

  constructor(private readonly text: string) {}

  /** Consume a literal. */
  expect(literal: string, what: string): boolean {
    if (this.error) return false;
    if (this.text.startsWith(literal, this.pos)) {
      this.pos += literal.length;
      return true;
    }
    return this.failHere(`expected ${what} "${literal}"`);
  }

  /** Consume a regular expression anchored at the cursor; returns its groups. */
  match(re: RegExp, what: string): RegExpExecArray | null {
    if (this.error) return null;
    const sticky = new RegExp(re.source, 'y');
    sticky.lastIndex = this.pos;
    const m = sticky.exec(this.text);
    if (!m) {
      this.failHere(`expected ${what}`);
      return null;
    }
    this.pos += m[0].length;
    return m;
  }

  peek(literal: string): boolean {
    return this.text.startsWith(literal, this.pos);
  }

  rest(): string {
    return this.text.slice(this.pos);
  }

  private failHere(message: string): false {
    const found = this.text.slice(this.pos, this.pos + 24);
    this.error = `${message} at column ${this.pos + 1}, found "${found}${this.text.length - this.pos > 24 ? '…' : ''}"`;
    return false;
  }
}

const HEX = /[0-9a-fA-F]+/;
/** The kernel prints %02x:%02x.%d; one transient 5.14-era revision printed 0x%02x:0x%02x.%d. */
const BDF = /(?:0x)?([0-9a-fA-F]{2}):(?:0x)?([0-9a-fA-F]{2})\.([0-7])/;

function parseSourceId(c: LineCursor): number | null {
  const m = c.match(BDF, 'a device "[bus:dev.fn]"');
  if (!m) return null;
  const bus = parseInt(m[1], 16);
  const dev = parseInt(m[2], 16);
  if (dev > 0x1f) {
    c.error = `device number 0x${m[2]} is above 0x1f`;
    return null;
  }
  return (bus << 8) | (dev << 3) | Number(m[3]);
}

/** `[fault reason 0x06] text` (mainline) or `[fault reason 06] text` (older kernels). */
function parseReason(c: LineCursor, hexReason: boolean): { reason: number; text: string } | null {
  if (!c.expect(' [fault reason ', 'the reason field')) return null;
  const m = hexReason ? c.match(/0x([0-9a-fA-F]{2})/, 'a hexadecimal reason "0x%02x"') : c.match(/(\d{2,3})/, 'a decimal reason "%02d"');
  if (!m) return null;
  const reason = parseInt(m[1], hexReason ? 16 : 10);
  if (reason > 0xff) {
    c.error = `fault reason ${reason} does not fit in 8 bits`;
    return null;
  }
  if (!c.expect('] ', 'the end of the reason field')) return null;
  return { reason, text: c.rest() };
}

function parseBootLine(text: string): Result<VtdBootLine> {
  const m =
    /^(?:DMAR|dmar): (?:dmar(\d+)|IOMMU (\d+)): reg_base_addr ([0-9a-fA-F]+) ver (\d+):(\d+) cap ([0-9a-fA-F]+) ecap ([0-9a-fA-F]+)\s*$/.exec(
      text,
    );
  if (!m) {
    return err(
      'boot line does not match "DMAR: dmar%d: reg_base_addr %llx ver %d:%d cap %llx ecap %llx"' + describeBootMismatch(text),
    );
  }
  const major = Number(m[4]);
  const minor = Number(m[5]);
  if (major > 0xf || minor > 0xf) return err(`version ${major}:${minor} does not fit VER_REG's 4-bit fields`);
  const values = [m[3], m[6], m[7]];
  const tooWide = values.find((v) => v.length > 16);
  if (tooWide) return err(`"${tooWide}" is wider than 64 bits`);
  return ok({
    kind: 'boot',
    seq: Number(m[1] ?? m[2]),
    regBase: BigInt(`0x${m[3]}`),
    ver: BigInt((major << 4) | minor),
    cap: BigInt(`0x${m[6]}`),
    ecap: BigInt(`0x${m[7]}`),
    format: m[1] !== undefined ? 'current' : 'legacy',
  });
}

/** Which token of a boot line is missing or malformed. */
function describeBootMismatch(text: string): string {
  const checks: Array<[RegExp, string]> = [
    [/^(?:DMAR|dmar): (?:dmar\d+|IOMMU \d+): /, 'unit name "dmar%d: "'],
    [/reg_base_addr [0-9a-fA-F]+ /, 'hex "reg_base_addr"'],
    [/ ver \d+:\d+ /, '"ver %d:%d"'],
    [/ cap [0-9a-fA-F]+ /, 'hex "cap"'],
    [/ ecap [0-9a-fA-F]+\s*$/, 'hex "ecap" at the end of the line'],
  ];
  const missing = checks.find(([re]) => !re.test(text));
  return missing ? `: missing or malformed ${missing[1]}` : '';
}

function parseFaultStatusLine(text: string): Result<VtdFaultStatusLine> {
  const m = /^DMAR: DRHD: handling fault status reg ([0-9a-fA-F]+)\s*$/.exec(text);
  if (!m) return err('fault status line does not match "DMAR: DRHD: handling fault status reg %x"');
  if (m[1].length > 8) return err(`fault status "${m[1]}" is wider than the 32-bit FSTS_REG`);
  return ok({ kind: 'fault-status', status: parseInt(m[1], 16) });
}

function parseIntrFaultLine(text: string): Result<VtdIntrFaultLine> {
  const c = new LineCursor(text);
  c.expect('DMAR: [INTR-REMAP] Request device [', 'the interrupt fault header');
  const sid = parseSourceId(c);
  c.expect('] fault index ', '"] fault index "');
  const hexIndex = c.peek('0x');
  if (hexIndex) c.expect('0x', 'the 0x of the index');
  const index = c.match(HEX, 'a hexadecimal interrupt index');
  const reason = parseReason(c, hexIndex);
  if (c.error || sid === null || !index || !reason) return err(`interrupt-remapping fault line: ${c.error}`);
  return ok({
    kind: 'intr-fault',
    sid,
    index: BigInt(`0x${index[0]}`),
    reason: reason.reason,
    reasonText: reason.text,
    format: hexIndex ? 'mainline' : 'decimal',
  });
}

/** `[DMA Read NO_PASID]`, `[DMA Write PASID 0x5]` (mainline) or `[DMA Read]` (older). */
function parseDmaFaultHeader(c: LineCursor): { read: boolean; pasid: number | null; mainline: boolean } | null {
  const m = c.match(/\[DMA (Read|Write)(?: (NO_PASID)| PASID 0x([0-9a-fA-F]+))?\] /, '"[DMA Read|Write ...] "');
  if (!m) return null;
  const mainline = m[2] !== undefined || m[3] !== undefined;
  return { read: m[1] === 'Read', pasid: m[3] !== undefined ? parseInt(m[3], 16) : null, mainline };
}

function parseDmaFaultLine(text: string): Result<VtdDmaFaultLine> {
  const c = new LineCursor(text);
  c.expect(PR_FMT, 'the prefix');
  const header = parseDmaFaultHeader(c);
  c.expect('Request device [', '"Request device ["');
  const sid = parseSourceId(c);
  c.expect('] ', '"] "');
  let pasid = header?.pasid ?? null;
  let format: VtdFaultLineFormat = header?.mainline ? 'mainline' : 'decimal';
  if (!c.error && !header?.mainline && c.peek('PASID ')) {
    const m = c.match(/PASID ([0-9a-fA-F]+) /, '"PASID %x "');
    if (m) {
      const v = parseInt(m[1], 16);
      pasid = v === PASID_INVALID ? null : v;
      format = 'pasid-decimal';
    }
  }
  c.expect('fault addr ', '"fault addr "');
  if (format === 'mainline') c.expect('0x', 'the 0x of the address');
  const addr = c.match(HEX, 'a hexadecimal fault address');
  const reason = parseReason(c, format === 'mainline');
  if (c.error || !header || sid === null || !addr || !reason) return err(`DMA fault line: ${c.error}`);
  if (addr[0].length > 16) return err(`DMA fault line: address "${addr[0]}" is wider than 64 bits`);
  if (pasid !== null && pasid > 0xfffff) return err(`DMA fault line: PASID 0x${pasid.toString(16)} is wider than 20 bits`);
  return ok({
    kind: 'dma-fault',
    read: header.read,
    pasid,
    sid,
    addr: BigInt(`0x${addr[0]}`),
    reason: reason.reason,
    reasonText: reason.text,
    format,
  });
}

/** Parse one line of kernel log. Lines that are not one of the VT-d lines this module knows fail. */
export function parseVtdLogLine(line: string): Result<VtdLogRecord> {
  const text = stripKernelLogPrefix(line).trimEnd();
  if (!/^(?:DMAR|dmar): /.test(text)) return err('not a VT-d line: missing the "DMAR: " prefix');
  if (text.includes(' reg_base_addr ')) return parseBootLine(text);
  if (text.startsWith('DMAR: DRHD: handling fault status reg')) return parseFaultStatusLine(text);
  if (text.startsWith('DMAR: [INTR-REMAP]')) return parseIntrFaultLine(text);
  if (text.startsWith('DMAR: [DMA ')) return parseDmaFaultLine(text);
  return err(`not a VT-d boot, fault status or fault line: "${text.slice(0, 60)}"`);
}

/** The result of `parseVtdLog`: the VT-d lines found, the malformed ones and a count of the others. */
export interface VtdLogParse {
  /** Every VT-d line parsed, with its 1-based line number. */
  readonly records: Array<{
    /** 1-based line number in the capture. */
    readonly line: number;
    /** The parsed line. */
    readonly record: VtdLogRecord;
  }>;
  /** Lines that look like VT-d boot or fault lines but are malformed; `line` counts from 1. */
  readonly errors: Array<{
    /** 1-based line number in the capture. */
    readonly line: number;
    /** The line as given. */
    readonly text: string;
    /** Which part of the line is wrong. */
    readonly error: string;
  }>;
  /** Lines that are not VT-d boot or fault lines (other DMAR messages, other drivers). */
  readonly ignored: number;
}

/** Whether a line claims to be one of ours, so that a malformed one is reported rather than skipped. */
function looksLikeVtdLine(text: string): boolean {
  return (
    /^(?:DMAR|dmar): (?:dmar\d+|IOMMU \d+): reg_base_addr/.test(text) ||
    text.startsWith('DMAR: DRHD: handling fault status reg') ||
    /^DMAR: \[(?:DMA |INTR-REMAP)/.test(text)
  );
}

/** Parse a whole dmesg / journalctl capture: every VT-d line, with the failures located. */
export function parseVtdLog(log: string): VtdLogParse {
  const records: Array<{ line: number; record: VtdLogRecord }> = [];
  const errors: Array<{ line: number; text: string; error: string }> = [];
  let ignored = 0;
  log.split('\n').forEach((raw, i) => {
    const text = stripKernelLogPrefix(raw).trimEnd();
    if (!looksLikeVtdLine(text)) {
      ignored++;
      return;
    }
    const r = parseVtdLogLine(raw);
    if (r.ok) records.push({ line: i + 1, record: r.value });
    else errors.push({ line: i + 1, text: raw, error: r.error });
  });
  return { records, errors, ignored };
}
