/**
 * The lines the Linux amd_iommu driver prints, rendered and parsed exactly (pr_fmt "AMD-Vi: "):
 *
 * Boot (init.c print_iommu_info(), by kernel era):
 * - 4.x:   `AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40`, `AMD-Vi: Extended features (0x...):` and the
 *          feature names as a pr_cont continuation line (` PPR NX GT IA GA PC GA_vAPIC`).
 * - 5.x:   `pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40`, then either the split pr_cont form
 *          (`pci 0000:00:00.2: AMD-Vi: Extended features (0x...):` + ` PPR ...`, up to 5.12) or the
 *          one-line `AMD-Vi: Extended features (0x...): PPR ...` (5.13+, commit "Fix extended features logging").
 * - 6.x:   the global EFR: `AMD-Vi: Extended features (0x..., 0x...): ... SNP` once for the host;
 *          the newest kernels add `SEV-TIO` from EFR2 and no longer print "Found IOMMU".
 * Feature names are feat_str[] for EFR bits 0..9 ("[5]" for the unnamed bit 5), GA_vAPIC, SNP, SEV-TIO.
 *
 * Events (iommu.c iommu_print_event(), amd_iommu_report_page_fault()):
 * - 4.x:   `AMD-Vi: Event logged [` and `IO_PAGE_FAULT device=01:00.0 domain=0x000e address=0x00000000fffd0000 flags=0x0020]`
 *          as two lines (split printk), or as one line in later 4.x.
 * - 5.x:   `<drv> 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xfffd0000 flags=0x0020]`
 *          when the device is known (pci_err), else `AMD-Vi: Event logged [IO_PAGE_FAULT device=01:00.0 ...]`.
 * - 6.x:   other events through the IOMMU's own device, `iommu ivhd0: AMD-Vi: Event logged [...]`, with
 *          segment-qualified devices (`device=0000:01:00.0`) and the PASID.
 */
import { err, ok, stripKernelLogPrefix, type Result } from '@ioasid/core/driver';
import { hex, hexPad } from './bits.js';
import { AMD_EVENT, invalidPprFields, rmpFields, type AmdEvent } from './records.js';
import { LINUX_FEATURE_NAMES, linuxFeatureTokens } from './registers.js';

/**
 * Which kernel's boot lines (init.c print_iommu_info): `v4` "Found IOMMU at", `v5-split` the pr_cont feature
 * list (up to 5.12), `v5` one feature line, `v6` the global EFR/EFR2 line, `newest` without "Found IOMMU".
 */
export type AmdBootEra = 'v4' | 'v5-split' | 'v5' | 'v6' | 'newest';
/**
 * Which kernel's event lines (iommu.c iommu_print_event): `v4-split` two printks, `v4` one line with a padded
 * address, `v5` pci_err on the device or the IOMMU's PCI function, `v6` through `iommu ivhdN` with segments.
 */
export type AmdEventEra = 'v4-split' | 'v4' | 'v5' | 'v6';

/** The IOMMU's PCI function when a profile does not say (every AMD part so far: 00:00.2 of its segment/root). */
export const DEFAULT_IOMMU_BDF = '0000:00:00.2';
/** The capability offset "Found IOMMU ... cap 0x40" prints (iommu->cap_ptr). */
export const DEFAULT_CAP_PTR = 0x40;

/** What the boot lines of one IOMMU print. */
export interface AmdBootInfo {
  /** The Extended Feature Register (MMIO 0x30). */
  readonly efr: bigint;
  /** The Extended Feature 2 Register (MMIO 0x1A0); printed from 6.x on. */
  readonly efr2: bigint;
  /** The IOMMU's PCI function, '0000:00:00.2'. */
  readonly pciAddress: string;
  /** Offset of the IOMMU's PCI capability block (`cap 0x40`). */
  readonly capPtr: number;
}

/** `Extended features (...):` with its names, as one string (no prefix). */
function featuresText(efr: bigint, efr2: bigint, era: AmdBootEra, withNames: boolean): string {
  const regs = era === 'v6' || era === 'newest' ? `${hex(efr)}, ${hex(efr2)}` : hex(efr);
  const names = linuxFeatureTokens(efr, efr2, era === 'newest' ? 'newest' : era === 'v6' ? 'v6' : 'v5');
  return `Extended features (${regs}):${withNames ? names.map((n) => ` ${n}`).join('') : ''}`;
}

/**
 * The boot lines of one IOMMU for a kernel era. `first`: this unit prints the host-wide line of the
 * 6.x global-EFR kernels (the others print only "Found IOMMU").
 */
export function renderAmdBootLines(u: AmdBootInfo, era: AmdBootEra = 'v6', first = true): string[] {
  const names = linuxFeatureTokens(u.efr, u.efr2, era === 'newest' ? 'newest' : era === 'v6' ? 'v6' : 'v5');
  const cont = names.length ? [names.map((n) => ` ${n}`).join('')] : [];
  const cap = hex(u.capPtr);
  switch (era) {
    case 'v4':
      return [`AMD-Vi: Found IOMMU at ${u.pciAddress} cap ${cap}`, `AMD-Vi: ${featuresText(u.efr, u.efr2, era, false)}`, ...cont];
    case 'v5-split':
      return [`pci ${u.pciAddress}: AMD-Vi: Found IOMMU cap ${cap}`, `pci ${u.pciAddress}: AMD-Vi: ${featuresText(u.efr, u.efr2, era, false)}`, ...cont];
    case 'v5':
      return [`pci ${u.pciAddress}: AMD-Vi: Found IOMMU cap ${cap}`, `AMD-Vi: ${featuresText(u.efr, u.efr2, era, true)}`];
    case 'v6':
      return [`pci ${u.pciAddress}: AMD-Vi: Found IOMMU cap ${cap}`, ...(first ? [`AMD-Vi: ${featuresText(u.efr, u.efr2, era, true)}`] : [])];
    case 'newest':
      return first ? [`AMD-Vi: ${featuresText(u.efr, u.efr2, era, true)}`] : [];
  }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/** Requester id → "bb:dd.f" (pre-segment kernels) or "ssss:bb:dd.f". */
export function formatDevid(devid: number, segment: number | null): string {
  const b = ((devid >> 8) & 0xff).toString(16).padStart(2, '0');
  const d = ((devid >> 3) & 0x1f).toString(16).padStart(2, '0');
  const f = (devid & 7).toString(16);
  return segment === null ? `${b}:${d}.${f}` : `${segment.toString(16).padStart(4, '0')}:${b}:${d}.${f}`;
}

/** How {@link renderAmdEventLines} prints an event. */
export interface AmdEventRenderOptions {
  /** The kernel era of the lines (default `v6`). */
  readonly era?: AmdEventEra;
  /** The faulting device is known to the kernel (pci_err with its driver), for IO_PAGE_FAULT. */
  readonly deviceKnown?: boolean;
  /** Driver name in the pci_err prefix ('vfio-pci' for a device assigned through VFIO/iommufd). */
  readonly driver?: string;
  /** PCI segment of the faulting device (default 0), printed by 6.x kernels. */
  readonly segment?: number;
  /** N of the IOMMU's `ivhdN` device (6.x prefix). */
  readonly ivhd?: number;
  /** The IOMMU's PCI function (5.x prefix of non-page-fault events). */
  readonly iommuPciAddress?: string;
}

const x4 = (v: number | bigint) => hexPad(v, 4);
const x5 = (v: number | bigint) => hexPad(v, 5);

/** The text inside "Event logged [...": without the prefix. `segment` null prints pre-segment devices. */
function eventBody(e: AmdEvent, era: AmdEventEra, segment: number, deviceInline: boolean): string {
  const seg = era === 'v6' ? segment : null;
  const dev = formatDevid(e.devid, seg);
  const addr = era === 'v4' || era === 'v4-split' ? hexPad(e.address, 16) : hex(e.address);
  const flags = x4(e.flags);
  switch (e.code) {
    case AMD_EVENT.IO_PAGE_FAULT:
      return deviceInline
        ? `IO_PAGE_FAULT device=${dev} domain=${x4(e.pasidOrDomain)} address=${addr} flags=${flags}]`
        : `IO_PAGE_FAULT domain=${x4(e.pasidOrDomain)} address=${addr} flags=${flags}]`;
    case AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY:
      return era === 'v6' ? `ILLEGAL_DEV_TABLE_ENTRY device=${dev} pasid=${x5(e.pasidOrDomain)} address=${addr} flags=${flags}]` : `ILLEGAL_DEV_TABLE_ENTRY device=${dev} address=${addr} flags=${flags}]`;
    case AMD_EVENT.DEV_TAB_HARDWARE_ERROR:
      return `DEV_TAB_HARDWARE_ERROR device=${dev} address=${addr} flags=${flags}]`;
    case AMD_EVENT.PAGE_TAB_HARDWARE_ERROR:
      return era === 'v6' ? `PAGE_TAB_HARDWARE_ERROR device=${dev} pasid=${x4(e.pasidOrDomain)} address=${addr} flags=${flags}]` : `PAGE_TAB_HARDWARE_ERROR device=${dev} domain=${x4(e.pasidOrDomain)} address=${addr} flags=${flags}]`;
    case AMD_EVENT.ILLEGAL_COMMAND_ERROR:
      return `ILLEGAL_COMMAND_ERROR address=${addr}]`;
    case AMD_EVENT.COMMAND_HARDWARE_ERROR:
      return `COMMAND_HARDWARE_ERROR address=${addr} flags=${flags}]`;
    case AMD_EVENT.IOTLB_INV_TIMEOUT:
      return `IOTLB_INV_TIMEOUT device=${dev} address=${addr}]`;
    case AMD_EVENT.INVALID_DEVICE_REQUEST:
      return era === 'v6' ? `INVALID_DEVICE_REQUEST device=${dev} pasid=${x5(e.pasidOrDomain)} address=${addr} flags=${flags}]` : `INVALID_DEVICE_REQUEST device=${dev} address=${addr} flags=${flags}]`;
    case AMD_EVENT.INVALID_PPR_REQUEST: {
      const p = invalidPprFields(e);
      return `INVALID_PPR_REQUEST device=${dev} pasid=${x5(p.pasid)} address=${addr} flags=${flags} tag=${hexPad(p.tag, 3)}]`;
    }
    case AMD_EVENT.RMP_PAGE_FAULT: {
      const r = rmpFields(e);
      const d = deviceInline ? `device=${dev}, ` : '';
      return `RMP_PAGE_FAULT ${d}vmg_tag=${x4(r.vmgTag)}, gpa=${hex(e.address)}, flags_rmp=${x4(r.flagsRmp)}, flags=${flags}]`;
    }
    case AMD_EVENT.RMP_HW_ERROR: {
      const r = rmpFields(e);
      const d = deviceInline ? `device=${dev}, ` : '';
      return `RMP_HW_ERROR ${d}vmg_tag=${x4(r.vmgTag)}, spa=${hex(e.address & ~7n)}, flags=${flags}]`;
    }
    default: {
      const w = e.words.map((v, i) => `event[${i}]=${hexPad(v, 8)}`).join(' ');
      // The kernel's format has no closing bracket here.
      return `UNKNOWN ${w}`;
    }
  }
}

/** The exact line(s) Linux prints for one event log entry. */
export function renderAmdEventLines(e: AmdEvent, opts: AmdEventRenderOptions = {}): string[] {
  const era = opts.era ?? 'v6';
  const segment = opts.segment ?? 0;
  const known = opts.deviceKnown ?? true;
  const devBdf = formatDevid(e.devid, segment);
  if (era === 'v4-split' || era === 'v4') {
    const body = eventBody(e, era, segment, true);
    return era === 'v4-split' ? ['AMD-Vi: Event logged [', body] : [`AMD-Vi: Event logged [${body}`];
  }
  if (e.code === AMD_EVENT.IO_PAGE_FAULT || e.code === AMD_EVENT.RMP_PAGE_FAULT || e.code === AMD_EVENT.RMP_HW_ERROR) {
    if (known) return [`${opts.driver ?? 'vfio-pci'} ${devBdf}: AMD-Vi: Event logged [${eventBody(e, era, segment, false)}`];
    return [`AMD-Vi: Event logged [${eventBody(e, era, segment, true)}`];
  }
  const prefix = era === 'v6' ? `iommu ivhd${opts.ivhd ?? 0}: ` : `pci ${opts.iommuPciAddress ?? DEFAULT_IOMMU_BDF}: `;
  return [`${prefix}AMD-Vi: Event logged [${eventBody(e, era, segment, true)}`];
}

/**
 * amd_iommu_restart_log(): what the driver prints when it finds a log overflowed and restarts it
 * (pr_info_ratelimited "IOMMU %s log restarting"): "Event", "PPR" or "GA".
 */
export function renderAmdLogRestartLine(log: 'Event' | 'PPR' | 'GA'): string {
  return `AMD-Vi: IOMMU ${log} log restarting`;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/**
 * The kernel's text without what dmesg / journalctl / syslog put in front (core's stripper). A pr_cont
 * continuation keeps its own leading space: dmesg's stamp owns exactly one.
 */
export function stripAmdLogPrefixes(line: string): string {
  return stripKernelLogPrefix(line);
}

/** One amd_iommu kernel line, read back by {@link parseAmdLogLine}. */
export type AmdLogRecord =
  | {
      /** `Found IOMMU ... cap 0x40` (4.x and 5.x/6.x forms). */
      readonly kind: 'found-iommu';
      /** The IOMMU's PCI function. */
      readonly pciAddress: string;
      /** The capability offset the line prints. */
      readonly capPtr: number;
      /** `v4`: "Found IOMMU at <bdf>"; `v5`: the `pci <bdf>:` prefix. */
      readonly era: 'v4' | 'v5';
    }
  | {
      /** `Extended features (...)`, with or without the names. */
      readonly kind: 'features';
      /** The PCI function the line names (split 5.x form), else null. */
      readonly pciAddress: string | null;
      /** The EFR value printed. */
      readonly efr: bigint;
      /** null when the line predates EFR2 (one register printed). */
      readonly efr2: bigint | null;
      /** The names on the line; empty for the split form (they follow on a continuation line). */
      readonly names: readonly string[];
    }
  | {
      /** The pr_cont line of feature names after a split `Extended features` line. */
      readonly kind: 'features-cont';
      /** The feature names (`PPR`, `NX`, `GT`, ...). */
      readonly names: readonly string[];
    }
  | {
      /** `IOMMU <log> log restarting` (amd_iommu_restart_log after an overflow). */
      readonly kind: 'log-restart';
      /** Which log overflowed. */
      readonly log: 'Event' | 'PPR' | 'GA';
    }
  | {
      /** `Event logged [...]`. */
      readonly kind: 'event';
      /** The kernel era the line's shape belongs to; `v4-split-head` is the bare `Event logged [` first half. */
      readonly era: AmdEventEra | 'v4-split-head';
      /** The EventCode the name stands for (for UNKNOWN, taken from event[1] when printed). */
      readonly code: number;
      /** The event name as printed (`IO_PAGE_FAULT`, `UNKNOWN`, ...). */
      readonly name: string;
      /** Who printed it: `vfio-pci 0000:01:00.0`, `iommu ivhd0`, `pci 0000:00:00.2`, or null. */
      readonly driver: string | null;
      /** The device name of the prefix (`0000:01:00.0`, `ivhd0`), or null for a line without one. */
      readonly source: string | null;
      /** The requester: from device= or, for pci_err lines, from the prefix. */
      readonly device: {
        /** PCI segment, or null when the line has the pre-segment `bb:dd.f` form. */
        readonly segment: number | null;
        /** DeviceID: bus << 8 | device << 3 | function. */
        readonly devid: number;
      } | null;
      /** Every `key=0x...` of the line (`domain`, `address`, `flags`, `pasid`, `tag`, ...). */
      readonly fields: Readonly<Record<string, bigint>>;
    };

const BDF_FULL = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;
const BDF_SHORT = /^([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;

function parseDevice(text: string): { segment: number | null; devid: number } | null {
  let m = BDF_FULL.exec(text);
  if (m) return { segment: parseInt(m[1], 16), devid: (parseInt(m[2], 16) << 8) | (parseInt(m[3], 16) << 3) | parseInt(m[4], 16) };
  m = BDF_SHORT.exec(text);
  if (m) return { segment: null, devid: (parseInt(m[1], 16) << 8) | (parseInt(m[2], 16) << 3) | parseInt(m[3], 16) };
  return null;
}

const KNOWN_NAMES = new Set<string>([...LINUX_FEATURE_NAMES, 'GA_vAPIC', 'SNP', 'SEV-TIO']);

function parseNames(text: string): Result<string[]> {
  const names = text.trim() === '' ? [] : text.trim().split(/\s+/);
  for (const n of names) if (!KNOWN_NAMES.has(n)) return err(`"${n}" is not a feature name Linux prints (${[...KNOWN_NAMES].join(' ')})`);
  return ok(names);
}

const FEATURE_BIT: Readonly<Record<string, { reg: 'efr' | 'efr2'; bit: number }>> = {
  ...Object.fromEntries(LINUX_FEATURE_NAMES.map((n, i) => [n, { reg: 'efr' as const, bit: i }])),
  GA_vAPIC: { reg: 'efr', bit: 21 },
  SNP: { reg: 'efr', bit: 63 },
  'SEV-TIO': { reg: 'efr2', bit: 1 },
};

/**
 * Checks printed names against the registers on the same line: every name must be a set bit, and every
 * EFR bit 0..9 and 21 must be named (kernels differ only in SNP and SEV-TIO).
 */
export function checkFeatureNames(efr: bigint, efr2: bigint | null, names: readonly string[]): string | null {
  for (const n of names) {
    const f = FEATURE_BIT[n];
    const v = f.reg === 'efr' ? efr : (efr2 ?? 0n);
    if (((v >> BigInt(f.bit)) & 1n) === 0n) return `the line names ${n} but ${f.reg.toUpperCase()} bit ${f.bit} is clear`;
  }
  for (const n of linuxFeatureTokens(efr, 0n, 'v5')) {
    if (!names.includes(n)) return `EFR has ${n} (bit ${FEATURE_BIT[n].bit}) set but the line does not name it`;
  }
  return null;
}

const FEATURES_RE = /^(?:pci ([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]): )?AMD-Vi: Extended features \((0x[0-9a-fA-F]+|0)(?:, ?(0x[0-9a-fA-F]+|0))?\):(.*)$/;
const FOUND_V5_RE = /^pci ([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]): AMD-Vi: Found IOMMU cap (0x[0-9a-fA-F]+)$/;
const FOUND_V4_RE = /^AMD-Vi: Found IOMMU at ([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]) cap (0x[0-9a-fA-F]+)$/;
const EVENT_RE = /^(?:(\S+) (\S+): )?AMD-Vi: Event logged \[(.*)$/;
const CONT_RE = /^ ?((?:PreF|PPR|X2APIC|NX|GT|\[5\]|IA|GA|HE|PC|GA_vAPIC|SNP|SEV-TIO)(?: (?:PreF|PPR|X2APIC|NX|GT|\[5\]|IA|GA|HE|PC|GA_vAPIC|SNP|SEV-TIO))*)$/;

const EVENT_NAME_CODES: Readonly<Record<string, number>> = { ...AMD_EVENT, UNKNOWN: 0 };

function parseEventBody(body: string): Result<{ code: number; name: string; fields: Record<string, bigint>; device: string | null; padded: boolean }> {
  const m = /^([A-Z_]+)(?: (.*?))?\]?$/.exec(body.trim());
  if (!m) return err(`"${body}" is not an AMD-Vi event body`);
  const name = m[1];
  if (!(name in EVENT_NAME_CODES)) return err(`${name} is not an event Linux prints`);
  const fields: Record<string, bigint> = {};
  let device: string | null = null;
  let padded = false;
  for (const part of (m[2] ?? '').split(/,? /).filter(Boolean)) {
    const kv = /^([a-z_]+(?:\[\d\])?)=(.+)$/.exec(part);
    if (!kv) return err(`"${part}" in "${body}" is not key=value`);
    if (kv[1] === 'device') {
      device = kv[2];
      continue;
    }
    if (!/^0x[0-9a-fA-F]+$/.test(kv[2])) return err(`${kv[1]}=${kv[2]} is not a hex value`);
    if (kv[1] === 'address' && kv[2].length === 18) padded = true;
    fields[kv[1]] = BigInt(kv[2]);
  }
  let code = EVENT_NAME_CODES[name];
  if (name === 'UNKNOWN' && fields['event[1]'] !== undefined) code = Number((fields['event[1]'] >> 28n) & 0xfn);
  return ok({ code, name, fields, device, padded });
}

/** One kernel line → a record, or an error saying what did not match. */
export function parseAmdLogLine(line: string): Result<AmdLogRecord> {
  const text = stripAmdLogPrefixes(line).trimEnd();
  let m = FOUND_V5_RE.exec(text);
  if (m) return ok({ kind: 'found-iommu', pciAddress: m[1].toLowerCase(), capPtr: parseInt(m[2], 16), era: 'v5' });
  m = FOUND_V4_RE.exec(text);
  if (m) return ok({ kind: 'found-iommu', pciAddress: m[1].toLowerCase(), capPtr: parseInt(m[2], 16), era: 'v4' });
  m = FEATURES_RE.exec(text);
  if (m) {
    const efr = BigInt(m[2]);
    const efr2 = m[3] === undefined ? null : BigInt(m[3]);
    if (efr >= 1n << 64n || (efr2 ?? 0n) >= 1n << 64n) return err('the register values do not fit in 64 bits');
    const names = parseNames(m[4]);
    if (!names.ok) return names;
    if (names.value.length) {
      const bad = checkFeatureNames(efr, efr2, names.value);
      if (bad) return err(bad);
    }
    return ok({ kind: 'features', pciAddress: m[1] ? m[1].toLowerCase() : null, efr, efr2, names: names.value });
  }
  m = /^AMD-Vi: IOMMU (Event|PPR|GA) log restarting$/.exec(text);
  if (m) return ok({ kind: 'log-restart', log: m[1] as 'Event' | 'PPR' | 'GA' });
  m = EVENT_RE.exec(text);
  if (m) {
    const driver = m[1] ?? null;
    const source = m[2] ?? null;
    if (m[3] === '') return ok({ kind: 'event', era: 'v4-split-head', code: 0, name: '', driver, source, device: null, fields: {} });
    return parseEventLine(driver, source, m[3]);
  }
  // The second line of a 4.x split event.
  if (/^[A-Z_]+ device=/.test(text)) return parseEventLine(null, null, text, true);
  m = CONT_RE.exec(text);
  if (m) return ok({ kind: 'features-cont', names: m[1].split(' ') });
  return err(`not an AMD-Vi line this model knows: "${text.slice(0, 80)}"`);
}

function parseEventLine(driver: string | null, source: string | null, body: string, splitTail = false): Result<AmdLogRecord> {
  const r = parseEventBody(body);
  if (!r.ok) return r;
  const { code, name, fields, padded } = r.value;
  let device = r.value.device === null ? null : parseDevice(r.value.device);
  if (r.value.device !== null && device === null) return err(`device=${r.value.device} is not a PCI address`);
  if (device === null && driver !== null && driver !== 'iommu' && source !== null) device = parseDevice(source);
  let era: AmdEventEra;
  if (splitTail) era = 'v4-split';
  else if (padded) era = 'v4';
  else if (driver === 'iommu' || (r.value.device !== null && device?.segment !== null)) era = 'v6';
  else era = 'v5';
  return ok({ kind: 'event', era, code, name, driver, source, device, fields });
}
