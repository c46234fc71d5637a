/**
 * IVRS DeviceID aliases: the IVHD device entries that make the IOMMU see a device's requests under another
 * DeviceID (alias select 0x42, alias range 0x43 ... range end 0x04; a PCIe-to-PCI bridge is described by
 * them). Linux keeps them in the PCI segment's alias table (init.c init_iommu_from_acpi():
 * `pci_seg->alias_table[devid] = devid_to`), which iommu.c reads when it sets a device up
 * (setup_aliases(), clone_aliases()) and whenever it writes the device's DTE.
 *
 * In a host profile they are the unit's `registers.ivrsAliases`, entries of the form
 * `{ device: "0000:00:14.4", alias: "0000:00:14.3" }` (alias select) or
 * `{ first: "0000:01:00.0", last: "0000:01:1f.7", alias: "0000:00:14.4" }` (alias range), in the IOMMU's PCI
 * segment. With `amd_iommu_dump` the kernel prints the entries (`DEV_ALIAS`, `DEV_ALIAS_RANGE` then
 * `DEV_RANGE_END`), which `ioasid probe` reads back (probe.ts).
 */
import { describeProfileValue, err, ok, parseBdf, type Result } from '@ioasid/core/driver';

/** One IVRS alias entry: the DeviceIDs `first`..`last` (inclusive) reach the IOMMU as `alias`. */
export interface AmdIvrsAlias {
  /** First DeviceID (bus << 8 | devfn) the entry covers. */
  readonly first: number;
  /** Last DeviceID the entry covers, inclusive; `first` for an alias select entry. */
  readonly last: number;
  /** The DeviceID the IOMMU sees for their requests (`devid_to`). */
  readonly alias: number;
}

/** At most this many entries in a profile: one per DeviceID of a segment. */
export const MAX_IVRS_ALIASES = 0x10000;

const SELECT_KEYS = ['device', 'alias'];
const RANGE_KEYS = ['first', 'last', 'alias'];

/** A DeviceID as a segment-qualified PCI address, as profiles write it. */
export function devidToBdf(devid: number, segment: number): string {
  const h = (v: number, n: number) => v.toString(16).padStart(n, '0');
  return `${h(segment, 4)}:${h((devid >> 8) & 0xff, 2)}:${h((devid >> 3) & 0x1f, 2)}.${devid & 7}`;
}

function devidIn(path: string, v: unknown, segment: number): Result<number> {
  const b = typeof v === 'string' ? parseBdf(v) : null;
  if (!b) return err(`${path}: expected a PCI address like 0000:00:14.4, got ${describeProfileValue(v)}`);
  if (b.segment !== segment) {
    return err(`${path}: ${v as string} is in PCI segment ${b.segment.toString(16).padStart(4, '0')}, the IOMMU in ${segment.toString(16).padStart(4, '0')} (an IVHD entry names DeviceIDs of its own segment)`);
  }
  return ok(b.rid);
}

/**
 * Validates `registers.ivrsAliases` of a unit in PCI segment `segment`: an array of alias select
 * (`{ device, alias }`) and alias range (`{ first, last, alias }`) entries. A DeviceID given two different
 * aliases is refused (Linux would keep the later one silently; a profile saying both is a mistake).
 */
export function parseIvrsAliases(raw: unknown, segment: number): Result<AmdIvrsAlias[]> {
  const where = 'registers.ivrsAliases';
  if (!Array.isArray(raw)) return err(`${where}: expected an array of { device, alias } or { first, last, alias }, got ${describeProfileValue(raw)}`);
  if (raw.length > MAX_IVRS_ALIASES) return err(`${where}: ${raw.length} entries; a PCI segment has ${MAX_IVRS_ALIASES} DeviceIDs`);
  const out: AmdIvrsAlias[] = [];
  const owner = new Map<number, { alias: number; index: number }>();
  for (let i = 0; i < raw.length; i++) {
    const path = `${where}[${i}]`;
    const e: unknown = raw[i];
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return err(`${path}: expected { device, alias } or { first, last, alias }, got ${describeProfileValue(e)}`);
    const o = e as Record<string, unknown>;
    const keys = Object.keys(o);
    const range = 'first' in o || 'last' in o;
    const allowed = range ? RANGE_KEYS : SELECT_KEYS;
    for (const k of keys) if (!allowed.includes(k)) return err(`${path}.${k}: not a field of an ${range ? 'alias range { first, last, alias }' : 'alias select { device, alias }'} entry`);
    for (const k of allowed) if (!(k in o)) return err(`${path}.${k}: missing (an ${range ? 'alias range needs first, last and alias' : 'alias select needs device and alias'})`);
    const first = devidIn(`${path}.${range ? 'first' : 'device'}`, range ? o['first'] : o['device'], segment);
    if (!first.ok) return first;
    const last = range ? devidIn(`${path}.last`, o['last'], segment) : first;
    if (!last.ok) return last;
    const alias = devidIn(`${path}.alias`, o['alias'], segment);
    if (!alias.ok) return alias;
    if (last.value < first.value) return err(`${path}: last ${o['last'] as string} comes before first ${o['first'] as string}`);
    for (let d = first.value; d <= last.value; d++) {
      const prev = owner.get(d);
      if (prev && prev.alias !== alias.value) {
        return err(`${path}: ${devidToBdf(d, segment)} already aliases to ${devidToBdf(prev.alias, segment)} (entry ${prev.index}), not ${o['alias'] as string}`);
      }
      owner.set(d, { alias: alias.value, index: i });
    }
    out.push({ first: first.value, last: last.value, alias: alias.value });
  }
  return ok(out);
}

/** An IVRS alias entry in a host profile: an alias select or an alias range, as PCI addresses. */
export type IvrsAliasProfile =
  | {
      /** The device whose requests carry another DeviceID. */
      device: string;
      /** The DeviceID they carry. */
      alias: string;
    }
  | {
      /** First device of the range. */
      first: string;
      /** Last device of the range, inclusive. */
      last: string;
      /** The DeviceID the requests of the range carry. */
      alias: string;
    };

/** The entries in a profile's shape (lower-case PCI addresses of segment `segment`). */
export function ivrsAliasesToProfile(entries: readonly AmdIvrsAlias[], segment: number): IvrsAliasProfile[] {
  return entries.map(
    (e): IvrsAliasProfile =>
      e.first === e.last
        ? { device: devidToBdf(e.first, segment), alias: devidToBdf(e.alias, segment) }
        : { first: devidToBdf(e.first, segment), last: devidToBdf(e.last, segment), alias: devidToBdf(e.alias, segment) },
  );
}

/** A PCI segment's alias table (pci_seg->alias_table): every DeviceID maps to itself unless an entry says otherwise. */
export class IvrsAliasTable {
  private readonly table = new Map<number, number>();
  private readonly targets = new Set<number>();

  constructor(entries: readonly AmdIvrsAlias[] = []) {
    for (const e of entries) {
      for (let d = e.first; d <= e.last; d++) this.table.set(d, e.alias);
      if (e.first !== e.alias || e.last !== e.alias) this.targets.add(e.alias);
    }
  }

  /** The DeviceID the IOMMU sees for requests of `devid` (alias_table[devid]). */
  aliasOf(devid: number): number {
    return this.table.get(devid & 0xffff) ?? devid & 0xffff;
  }

  /** Some other DeviceID reaches the IOMMU as `devid`. */
  isAliasTarget(devid: number): boolean {
    return this.targets.has(devid & 0xffff);
  }

  /** Entries in the table. */
  get size(): number {
    return this.table.size;
  }
}

// ---------------------------------------------------------------------------------------------
// The entries as amd_iommu_dump prints them
// ---------------------------------------------------------------------------------------------

/**
 * An IVHD device entry line of `amd_iommu_dump` that the alias table depends on (init.c
 * init_iommu_from_acpi()'s DUMP_printk): an alias select, the start of an alias range, the start of a
 * range without alias (which ends the alias state), or a range end. `segment` is null on kernels that
 * printed no segment (before PCI segment support), which had only segment 0.
 */
export type IvhdDumpEntry =
  | {
      /** `DEV_ALIAS`: `devid` reaches the IOMMU as `alias`. */
      readonly kind: 'alias';
      /** The PCI segment printed with `devid`, null when the kernel printed none. */
      readonly segment: number | null;
      /** The entry's DeviceID. */
      readonly devid: number;
      /** The entry's DTE setting flags. */
      readonly flags: number;
      /** `devid_to`. */
      readonly alias: number;
    }
  | {
      /** `DEV_ALIAS_RANGE`: from `devid` to the next `DEV_RANGE_END`, requests reach the IOMMU as `alias`. */
      readonly kind: 'alias-range';
      /** The PCI segment printed with `devid`, null when the kernel printed none. */
      readonly segment: number | null;
      /** First DeviceID of the range. */
      readonly devid: number;
      /** The entry's DTE setting flags. */
      readonly flags: number;
      /** `devid_to`. */
      readonly alias: number;
    }
  | {
      /** `DEV_SELECT_RANGE_START` or `DEV_EXT_SELECT_RANGE`: a range without alias starts. */
      readonly kind: 'range-start';
      /** The PCI segment printed with `devid`, null when the kernel printed none. */
      readonly segment: number | null;
      /** First DeviceID of the range. */
      readonly devid: number;
    }
  | {
      /** `DEV_RANGE_END`: the range that started last ends at `devid`. */
      readonly kind: 'range-end';
      /** The PCI segment printed with `devid`, null when the kernel printed none. */
      readonly segment: number | null;
      /** Last DeviceID of the range. */
      readonly devid: number;
    };

/**
 * The DUMP_printk formats, by era (checked against init.c of each):
 * - before PCI segments (e.g. 5.10): `"  DEV_ALIAS\t\t\t devid: %02x:%02x.%x flags: %02x devid_to: %02x:%02x.%x\n"`,
 *   `"  DEV_ALIAS_RANGE\t\t devid: %02x:%02x.%x flags: %02x devid_to: %02x:%02x.%x\n"`,
 *   `"  DEV_RANGE_END\t\t devid: %02x:%02x.%x\n"`, with `printk(KERN_INFO "AMD-Vi: " ...)`;
 * - with segments: `devid: %04x:%02x:%02x.%x`, `DEV_ALIAS_RANGE`'s `devid_to` also segment-qualified
 *   (`DEV_ALIAS`'s not), through `pr_info("AMD-Vi: " ...)` under init.c's `pr_fmt`, so the prefix is doubled;
 * - after the IVRS debug clean-up: one `AMD-Vi: ` prefix, no space after the tabs, flags as `%#02x`.
 * Tabs may reach the reader expanded to spaces, so any run of blanks is accepted where the formats have them.
 */
const DUMP_LINE = /^AMD-Vi: (?:AMD-Vi: )?\s+(DEV_ALIAS_RANGE|DEV_ALIAS|DEV_RANGE_END|DEV_SELECT_RANGE_START|DEV_EXT_SELECT_RANGE)\s+devid: (?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])(.*)$/i;
const FLAGS_TO = /^ flags:\s+(0x[0-9a-f]+|[0-9a-f]+)\s+devid_to: (?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
const FLAGS_ONLY = /^ flags:\s+(?:0x[0-9a-f]+|[0-9a-f]+)(?: ext: [0-9a-f]{8})?$/i;

function devidOf(bus: string, slot: string, fn: string): number | null {
  const d = parseInt(slot, 16);
  if (d > 0x1f) return null;
  return (parseInt(bus, 16) << 8) | (d << 3) | parseInt(fn, 10);
}

/**
 * Reads one `amd_iommu_dump` line (the kernel's text, log prefixes stripped): null when it is none of the
 * entries above, an error when it is one with a malformed device.
 */
export function parseIvhdDumpLine(line: string): Result<IvhdDumpEntry> | null {
  const m = DUMP_LINE.exec(line.trimEnd());
  if (!m) return null;
  const [, label, seg, bus, slot, fn, tail] = m;
  const devid = devidOf(bus, slot, fn);
  if (devid === null) return err(`${label}: device ${slot} of bus ${bus} is past 0x1f`);
  const segment = seg === undefined ? null : parseInt(seg, 16);
  if (label === 'DEV_RANGE_END') return tail === '' ? ok({ kind: 'range-end', segment, devid }) : err(`${label}: unexpected text after the device: ${JSON.stringify(tail)}`);
  if (label === 'DEV_SELECT_RANGE_START' || label === 'DEV_EXT_SELECT_RANGE') {
    return FLAGS_ONLY.test(tail) ? ok({ kind: 'range-start', segment, devid }) : err(`${label}: expected " flags: .." after the device, got ${JSON.stringify(tail)}`);
  }
  const t = FLAGS_TO.exec(tail);
  if (!t) return err(`${label}: expected " flags: .. devid_to: bb:dd.f" after the device, got ${JSON.stringify(tail)}`);
  const alias = devidOf(t[3], t[4], t[5]);
  if (alias === null) return err(`${label}: devid_to device ${t[4]} of bus ${t[3]} is past 0x1f`);
  if (t[2] !== undefined && segment !== null && parseInt(t[2], 16) !== segment) return err(`${label}: devid_to is in segment ${t[2]}, the entry in ${seg}`);
  const flags = parseInt(t[1].replace(/^0x/i, ''), 16);
  return ok({ kind: label === 'DEV_ALIAS' ? 'alias' : 'alias-range', segment, devid, flags, alias });
}

/**
 * Replays dump entries in log order as init_iommu_from_acpi() does: `DEV_ALIAS` sets one DeviceID's
 * alias, `DEV_ALIAS_RANGE` starts an alias range that the next `DEV_RANGE_END` applies, a range start
 * without alias turns that off. Later entries win. The result is each segment's alias entries, as
 * ranges of consecutive DeviceIDs with the same alias (a DeviceID aliased to itself is left out).
 */
export function ivrsAliasesFromDump(entries: readonly IvhdDumpEntry[]): Map<number, AmdIvrsAlias[]> {
  const tables = new Map<number, Map<number, number>>();
  const set = (segment: number, devid: number, alias: number) => {
    let t = tables.get(segment);
    if (!t) tables.set(segment, (t = new Map()));
    t.set(devid, alias);
  };
  let start = 0;
  let to = 0;
  let aliasOn = false;
  for (const e of entries) {
    const segment = e.segment ?? 0;
    if (e.kind === 'alias') set(segment, e.devid, e.alias);
    else if (e.kind === 'alias-range') {
      start = e.devid;
      to = e.alias;
      aliasOn = true;
    } else if (e.kind === 'range-start') aliasOn = false;
    else if (aliasOn) for (let d = start; d <= e.devid; d++) set(segment, d, to);
  }
  const out = new Map<number, AmdIvrsAlias[]>();
  for (const [segment, t] of tables) {
    const list: AmdIvrsAlias[] = [];
    let cur: { first: number; last: number; alias: number } | null = null;
    for (const d of [...t.keys()].sort((a, b) => a - b)) {
      const alias = t.get(d)!;
      if (alias === d) continue;
      if (cur && cur.alias === alias && cur.last === d - 1) cur.last = d;
      else {
        if (cur) list.push(cur);
        cur = { first: d, last: d, alias };
      }
    }
    if (cur) list.push(cur);
    if (list.length) out.set(segment, list);
  }
  return out;
}
