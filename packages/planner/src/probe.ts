/**
 * `ioasid probe`: a host profile from a real kernel log. Every line, stripped of what dmesg,
 * `dmesg -T`, journalctl or syslog put in front of the kernel's text, is offered to each vendor's
 * probeLine(); the units they recognise become the profile's units with their registers as printed.
 * Lines that no vendor knows are counted (and kept for --verbose); lines a vendor claims but cannot
 * read (a truncated capture) are reported with the vendor's reason.
 */
import { parseBdf, type DeviceProfile, type HostProfile, type UnitProfile } from '@ioasid/core';
import { stripKernelLogPrefix, type IommuVendor, type NormalizedCaps, type RawRegisters } from '@ioasid/core/driver';
import { PLANNER_VENDORS } from './vendors/registry.js';
import type { LogLine } from './vendors/types.js';

/** Options of {@link probeDmesg}. */
export interface ProbeOptions {
  /** The profile's name; defaults to "probed host". */
  readonly name?: string;
}

/** One IOMMU unit found in the log, whether or not its registers decode. */
export interface ProbedUnit {
  /** The unit's id as the log names it, e.g. 'dmar0'. */
  readonly id: string;
  /** Id of the vendor that read it. */
  readonly vendor: string;
  /** Its registers as printed, in a host profile's shape. */
  readonly registers: RawRegisters;
  /** Set when the vendor decoded the registers. */
  readonly caps?: NormalizedCaps;
  /** The vendor's one-line hardware id (DecodedUnit.hwId), when the registers decode. */
  readonly hwId?: string;
  /** Why the unit is not in the profile (its registers do not decode). */
  readonly error?: string;
  /** 1-based line numbers the unit was read from. */
  readonly lines: readonly number[];
}

/** A log line the probe could not use. */
export interface ProbeLineIssue {
  /** 1-based line number in the input. */
  readonly line: number;
  /** The line's kernel text (log prefixes stripped). */
  readonly text: string;
  /** Why: the vendor's reason for a claimed line, or that no vendor knows it. */
  readonly reason: string;
}

/** What {@link probeDmesg} read from a kernel log. */
export interface ProbeResult {
  /** Units that decoded, and the devices the log placed behind them. */
  readonly profile: HostProfile;
  /** Every unit found, the ones left out of the profile included (with `error`). */
  readonly units: readonly ProbedUnit[];
  /** Line counts of the input. */
  readonly counts: {
    /** Lines read. */
    readonly lines: number;
    /** Lines some vendor (or the iommu group scan) used. */
    readonly recognized: number;
    /** Lines a vendor claimed but could not read. */
    readonly rejected: number;
    /** Lines nothing could use, rejected ones included. */
    readonly unusable: number;
  };
  /** Lines a vendor claimed but could not read. */
  readonly rejected: readonly ProbeLineIssue[];
  /** Every line nothing could use (for --verbose), rejected ones included. */
  readonly unusable: readonly ProbeLineIssue[];
  /** Problems worth telling: conflicting repeats, units that do not decode, no unit found and what to check. */
  readonly warnings: readonly string[];
  /** Vendors whose driver lines the log has (by their log signatures), plugin loaded or not. */
  readonly vendorsSeen: readonly string[];
  /** What to do when no unit was found: the kernel parameter of the vendor the log shows, or of each. */
  readonly hint: string;
}

/**
 * The kernel's own text of a log line: core's prefix stripper, after any blanks or tabs in front (a log
 * pasted into a mail or an indented report), until nothing more comes off.
 */
export function kernelText(line: string): string {
  let s = line;
  for (;;) {
    const next = stripKernelLogPrefix(s.replace(/^[ \t]+/, ''));
    if (next === s) return s.trimEnd();
    s = next;
  }
}

/** "pci 0000:00:02.0: Adding to iommu group 1" (5.x on) and "iommu: Adding device 0000:00:02.0 to group 1". */
const GROUP_LINES: readonly RegExp[] = [/^\S+ ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): Adding to iommu group (\d+)$/i, /^iommu: Adding device ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) to group (\d+)$/i];

interface Found {
  id: string;
  vendor: IommuVendor;
  registers: Record<string, unknown>;
  lines: number[];
  conflict: boolean;
}

function sameRegisters(a: RawRegisters, b: RawRegisters): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Builds a host profile from kernel log text (dmesg, journalctl -k, syslog): each line goes to every vendor's
 * probeLine, units are completed by completeProbe and decoded, and "Adding to iommu group" lines place devices.
 * Never throws on bad input: what it cannot use is counted and reported.
 */
export function probeDmesg(text: string, vendors: readonly IommuVendor[], opts: ProbeOptions = {}): ProbeResult {

  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const found = new Map<string, Found>();
  const groups: Array<{ bdf: string; group: number; line: number }> = [];
  const rejected: ProbeLineIssue[] = [];
  const unusable: ProbeLineIssue[] = [];
  const warnings: string[] = [];
  let recognized = 0;
  const probers = vendors.filter((v) => typeof v.probeLine === 'function');
  const stripped: LogLine[] = [];
  const other = new Map<number, ProbeLineIssue>();
  if (!probers.length) warnings.push(`no vendor can read kernel lines (registered: ${vendors.map((v) => v.id).join(', ') || 'none'})`);

  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = kernelText(raw);
    if (line.trim() === '') return;
    stripped.push({ n, text: line });
    for (const re of GROUP_LINES) {
      const m = re.exec(line.trim());
      if (m) {
        groups.push({ bdf: m[1].toLowerCase(), group: Number(m[2]), line: n });
        recognized++;
        return;
      }
    }
    let claimed = false;
    for (const v of probers) {
      let r: ReturnType<NonNullable<IommuVendor['probeLine']>>;
      try {
        r = v.probeLine!(line);
      } catch (e) {
        r = { ok: false, error: `the ${v.id} plugin threw: ${(e as Error).message}` };
      }
      if (r === null) continue;
      claimed = true;
      if (!r.ok) {
        const issue = { line: n, text: raw, reason: `${v.id}: ${r.error}` };
        rejected.push(issue);
        unusable.push(issue);
        break;
      }
      recognized++;
      const key = `${v.id}\u0000${r.value.id}`;
      const prev = found.get(key);
      if (!prev) {
        found.set(key, { id: r.value.id, vendor: v, registers: { ...r.value.registers }, lines: [n], conflict: false });
      } else {
        // A unit seen again: more registers of the same probe, or a second boot in the capture.
        const overlap = Object.keys(r.value.registers).filter((k) => k in prev.registers);
        const changed = overlap.some((k) => !sameRegisters({ v: prev.registers[k] }, { v: r.value.registers[k] }));
        if (changed && !prev.conflict) {
          prev.conflict = true;
          warnings.push(`${r.value.id} appears again on line ${n} with different registers (several boots in one capture?); keeping the last`);
        }
        Object.assign(prev.registers, r.value.registers);
        prev.lines.push(n);
      }
      break;
    }
    if (!claimed) other.set(n, { line: n, text: raw, reason: 'not an IOMMU line any vendor knows' });
  });

  // A driver that prints per-unit and host-wide lines apart (AMD-Vi) completes its units.
  for (const v of probers) {
    if (typeof v.completeProbe !== 'function') continue;
    const mine = [...found.entries()].filter(([, f]) => f.vendor === v);
    if (!mine.length) continue;
    let done: ReturnType<NonNullable<IommuVendor['completeProbe']>>;
    try {
      done = v.completeProbe(mine.map(([, f]) => ({ id: f.id, registers: f.registers, lines: f.lines })));
    } catch (e) {
      warnings.push(`the ${v.id} plugin threw completing its units: ${(e as Error).message}`);
      continue;
    }
    for (const [k] of mine) found.delete(k);
    for (const u of done) found.set(`${v.id}\u0000${u.id}`, { id: u.id, vendor: v, registers: { ...u.registers }, lines: [...u.lines], conflict: false });
  }

  const units: ProbedUnit[] = [];
  const profileUnits: UnitProfile[] = [];
  for (const f of found.values()) {
    let decoded: ReturnType<IommuVendor['decodeRegisters']>;
    try {
      decoded = f.vendor.decodeRegisters(f.registers);
    } catch (e) {
      decoded = { ok: false, error: `the ${f.vendor.id} plugin threw: ${(e as Error).message}` };
    }
    if (decoded.ok) {
      units.push({ id: f.id, vendor: f.vendor.id, registers: f.registers, caps: decoded.value.caps, hwId: decoded.value.hwId, lines: f.lines });
      // A vendor that rebuilt registers from derived values lists what it could not know; the profile keeps that list.
      const unknown = (decoded.value.profileRegisters as { unknown?: unknown }).unknown;
      profileUnits.push({ id: f.id, vendor: f.vendor.id, registers: Array.isArray(unknown) ? { ...f.registers, unknown } : f.registers });
    } else {
      units.push({ id: f.id, vendor: f.vendor.id, registers: f.registers, error: decoded.error, lines: f.lines });
      warnings.push(`${f.id} (line ${f.lines[0]}): its registers do not decode (${decoded.error}); left out of the profile`);
    }
  }

  // The vendors' other boot lines: truncation, device scope, reserved regions.
  const placements = new Map<string, string>();
  let catchAll: string | null = null;
  const reservedByBdf = new Map<string, NonNullable<DeviceProfile['reservedRegions']>>();
  for (const pv of PLANNER_VENDORS) {
    if (!pv.scanLog) continue;
    const mine = [...found.values()].filter((f) => f.vendor.id === pv.id && profileUnits.some((u) => u.id === f.id && u.vendor === pv.id));
    const scan = pv.scanLog(stripped, mine.map((f) => ({ id: f.id, registers: f.registers, lines: f.lines })));
    for (const n of scan.recognized) {
      if (other.delete(n)) recognized++;
    }
    warnings.push(...scan.warnings);
    for (const pl of scan.placements) {
      if (pl.bdf === '*') catchAll = pl.unit;
      else placements.set(pl.bdf, pl.unit);
    }
    for (const r of scan.reserved) {
      const list = reservedByBdf.get(r.bdf) ?? [];
      list.push({ start: r.start, last: r.last, type: r.type });
      reservedByBdf.set(r.bdf, list);
    }
  }
  for (const issue of other.values()) unusable.push(issue);
  unusable.sort((a, b) => a.line - b.line);

  // dmesg says which group a device is in, not which unit it sits behind: the vendor's device scope
  // lines, an INCLUDE_ALL unit that is the only one, or a single unit place it.
  const devices: DeviceProfile[] = [];
  const seen = new Set<string>();
  const unplaced: string[] = [];
  const only = profileUnits.length === 1 ? profileUnits[0].id : null;
  for (const g of groups) {
    if (seen.has(g.bdf) || !parseBdf(g.bdf)) continue;
    seen.add(g.bdf);
    const unit = placements.get(g.bdf) ?? catchAll ?? only;
    if (unit === null) {
      unplaced.push(g.bdf);
      continue;
    }
    const reservedRegions = reservedByBdf.get(g.bdf);
    devices.push({ bdf: g.bdf, unit, group: g.group, ...(reservedRegions ? { reservedRegions } : {}) });
  }
  if (unplaced.length && profileUnits.length > 1) {
    warnings.push(
      `${unplaced.length} device(s) in IOMMU groups (${unplaced.slice(0, 4).join(', ')}${unplaced.length > 4 ? ', …' : ''}) were left out: the log does not say which of the ${profileUnits.length} units each sits behind; probe the host with ioasid probe --sysfs (or add them under devices with unit: set, from readlink /sys/bus/pci/devices/<bdf>/iommu)`,
    );
  }
  const seenVendors = vendorsIn(stripped);
  const hint = kernelHint(seenVendors);
  if (!profileUnits.length) {
    const loaded = new Set(probers.map((v) => v.id));
    const unread = seenVendors.filter((s) => s.driver && !loaded.has(s.id));
    if (unread.length) {
      for (const u of unread) {
        warnings.push(`this is an ${u.name} log (line ${u.line}: "${u.text.slice(0, 60)}"), but no loaded vendor plugin reads ${u.name} units (loaded: ${[...loaded].join(', ') || 'none'})`);
      }
    } else {
      warnings.push(`no IOMMU unit found: capture the whole boot log (sudo dmesg, or journalctl -k -b), not a filtered excerpt, and check that the IOMMU is enabled (${hint})`);
    }
  }
  return {
    profile: { name: opts.name ?? 'probed host', units: profileUnits, devices },
    units,
    counts: { lines: lines.length, recognized, rejected: rejected.length, unusable: unusable.length },
    rejected,
    unusable,
    warnings,
    vendorsSeen: seenVendors.filter((v) => v.driver).map((v) => v.id),
    hint,
  };
}

interface SeenVendor {
  id: string;
  name: string;
  /** Its IOMMU driver printed the line (not only the CPU or firmware). */
  driver: boolean;
  line: number;
  text: string;
  kernelParameter: string;
}

/** The CPU or firmware a log shows, for the kernel-parameter hint when its IOMMU driver printed nothing. */
const HOST_SIGNATURES: ReadonlyArray<[RegExp, string]> = [
  [/^smpboot: CPU0: Intel/, 'vtd'],
  [/^smpboot: CPU0: AMD/, 'amd-vi'],
  [/^(?:ACPI: IORT: |Booting Linux on physical CPU |Machine model: |psci: )/, 'smmuv3'],
];

function vendorsIn(lines: readonly LogLine[]): SeenVendor[] {
  const out = new Map<string, SeenVendor>();
  for (const { n, text } of lines) {
    for (const pv of PLANNER_VENDORS) {
      const prev = out.get(pv.id);
      if (prev?.driver) continue;
      if (pv.logSignatures.some((re) => re.test(text))) {
        out.set(pv.id, { id: pv.id, name: pv.name, driver: true, line: n, text, kernelParameter: pv.kernelParameter });
      }
    }
    for (const [re, id] of HOST_SIGNATURES) {
      const pv = PLANNER_VENDORS.find((v) => v.id === id);
      if (pv && !out.has(id) && re.test(text)) out.set(id, { id, name: pv.name, driver: false, line: n, text, kernelParameter: pv.kernelParameter });
    }
  }
  return [...out.values()];
}

/** The kernel parameter to enable the IOMMU the log shows; every vendor's when it shows none. */
function kernelHint(seen: readonly SeenVendor[]): string {
  const hw = seen.filter((v) => v.id !== 'virtio-iommu');
  if (hw.length) return hw.map((v) => `${v.name}: ${v.kernelParameter}`).join('; ');
  return PLANNER_VENDORS.filter((v) => v.id !== 'virtio-iommu')
    .map((v) => `${v.name}: ${v.kernelParameter}`)
    .join('; ');
}
