/**
 * Probing an AMD IOMMU: the registers of a host profile (`{ efr, efr2?, pciAddress?, capPtr? }`)
 * validated and decoded into core's vocabulary, and the boot lines (`AMD-Vi: Found IOMMU ...`,
 * `AMD-Vi: Extended features (...)`) read back into units (`ioasid probe`).
 */
import type { DecodedRegister, DecodedUnit, RawRegisters } from '@ioasid/core/driver';
import { describeProfileValue, parseProfileRegister, err, ok, type BitField, type Result } from '@ioasid/core/driver';
import { hex } from './bits.js';
import { DEFAULT_CAP_PTR, DEFAULT_IOMMU_BDF, parseAmdLogLine, stripAmdLogPrefixes } from './logs.js';
import { EFR2_LAYOUT, EFR_LAYOUT, amdHwId, amdNormalizedCaps, decodeEfr, decodeEfr2 } from './registers.js';
import { ivrsAliasesFromDump, ivrsAliasesToProfile, parseIvhdDumpLine, parseIvrsAliases, type AmdIvrsAlias, type IvhdDumpEntry } from './ivrs.js';
import type { AmdUnitRegisters } from './unit.js';

/** The PCI segment of a `ssss:bb:dd.f` address. */
function segmentOf(pciAddress: string): number {
  return parseInt(pciAddress.slice(0, 4), 16);
}

/** Id prefix of the pseudo-units probeAmdLine() makes of `amd_iommu_dump` entries; completeAmdProbedUnits() folds them into the units. */
const IVHD_DUMP_ID = 'ivrs-dump:';

const VENDOR = 'amd-vi';
const KNOWN_REGISTERS = ['efr', 'efr2', 'pciAddress', 'capPtr', 'ivrsAliases'];

/** Validates `{ efr, efr2?, pciAddress?, capPtr?, ivrsAliases? }` from a host profile. */
export function parseAmdRegisters(raw: RawRegisters): Result<AmdUnitRegisters> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return err(`registers: expected an object { efr, efr2 }, got ${describeProfileValue(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!KNOWN_REGISTERS.includes(key)) return err(`registers.${key}: not an AMD-Vi register (expected efr, and optionally efr2, pciAddress, capPtr, ivrsAliases)`);
  }
  const efr = parseProfileRegister('efr', raw['efr'], 64, '0x58f77ef22294a5a');
  if (!efr.ok) return efr;
  // An IOMMU without EFR (IOMMU_CAP_EFR clear) predates everything iommufd can use.
  if (efr.value === 0n) return err('registers.efr: 0 means no Extended Feature Register; Linux prints no "Extended features" line and iommufd needs one');
  let efr2 = 0n;
  if (raw['efr2'] !== undefined) {
    const r = parseProfileRegister('efr2', raw['efr2'], 64, '0x0');
    if (!r.ok) return r;
    efr2 = r.value;
  }
  let pciAddress = DEFAULT_IOMMU_BDF;
  if (raw['pciAddress'] !== undefined) {
    const v = raw['pciAddress'];
    if (typeof v !== 'string' || !/^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]$/.test(v)) {
      return err(`registers.pciAddress: expected the IOMMU's PCI function like 0000:00:00.2, got ${describeProfileValue(v)}`);
    }
    pciAddress = v.toLowerCase();
  }
  let capPtr = DEFAULT_CAP_PTR;
  if (raw['capPtr'] !== undefined) {
    const r = parseProfileRegister('capPtr', raw['capPtr'], 8, '0x40');
    if (!r.ok) return r;
    if (r.value < 0x40n || (r.value & 3n) !== 0n) return err(`registers.capPtr: ${hex(r.value)} is not a PCI capability offset (dword aligned, 0x40 or above)`);
    capPtr = Number(r.value);
  }
  let ivrsAliases: AmdIvrsAlias[] = [];
  if (raw['ivrsAliases'] !== undefined) {
    const r = parseIvrsAliases(raw['ivrsAliases'], segmentOf(pciAddress));
    if (!r.ok) return r;
    ivrsAliases = r.value;
  }
  return ok({ efr: efr.value, efr2, pciAddress, capPtr, ivrsAliases });
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
    profileRegisters: {
      efr: hex(r.efr),
      efr2: hex(r.efr2),
      pciAddress: r.pciAddress,
      capPtr: hex(r.capPtr),
      ...(r.ivrsAliases?.length ? { ivrsAliases: ivrsAliasesToProfile(r.ivrsAliases, segmentOf(r.pciAddress)) } : {}),
    },
  };
}

/**
 * `ioasid probe`, one line at a time. "Found IOMMU" names an IOMMU by its PCI function: the unit
 * `ivhd@<bdf>` with `pciAddress` and `capPtr`. An "Extended features" line that names its function (the
 * 5.x split form) adds EFR to that unit; one that does not (5.13+ and the 6.x host-wide line) is the unit
 * `ivhd0` with EFR and EFR2: the only IOMMU of a client part that prints nothing else, or the registers
 * every IOMMU shares, which `completeAmdProbedUnits()` gives to the `ivhd@` units.
 */
export function probeAmdLine(line: string): Result<{
  /** `ivhd@<bdf>` for a line that names the IOMMU's PCI function, else `ivhd0`. */
  id: string;
  /** The registers the line gives: `pciAddress` and `capPtr`, or `efr` (and `efr2`). */
  registers: RawRegisters;
}> | null {
  const text = stripAmdLogPrefixes(line).trimEnd();
  const dump = parseIvhdDumpLine(text);
  if (dump !== null) {
    if (!dump.ok) return dump;
    // One pseudo-unit per distinct entry (the same line printed again, e.g. by a second IVHD, adds its line number).
    const e = dump.value;
    const key = `${e.kind}:${e.segment ?? '-'}:${e.devid}${'alias' in e ? `:${e.alias}` : ''}`;
    return ok({ id: `${IVHD_DUMP_ID}${key}`, registers: { ivhdEntry: e } });
  }
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
  /** `ivhd@<bdf>`, `ivhd0` or, after {@link completeAmdProbedUnits}, `ivhdN`. */
  readonly id: string;
  /** The registers gathered from the unit's lines. */
  readonly registers: RawRegisters;
  /** 1-based numbers of the log lines the unit came from. */
  readonly lines: readonly number[];
}

/**
 * Completes the units probeAmdLine() read from one log: every `ivhd@<bdf>` unit (in the order the
 * kernel printed them, which is its IVHD order) becomes `ivhdN`; those without EFR take the host-wide
 * EFR/EFR2 of the `ivhd0` features line, which then disappears. Without "Found IOMMU" lines the units
 * are returned as they are. The `amd_iommu_dump` entries are replayed in log order into each PCI
 * segment's alias table (init_iommu_from_acpi()), which every unit of that segment gets as
 * `ivrsAliases` (Linux's alias table is the segment's, `pci_seg->alias_table`); without a unit they are dropped.
 */
export function completeAmdProbedUnits(units: readonly AmdProbedUnit[]): AmdProbedUnit[] {
  const dump = units.filter((u) => u.id.startsWith(IVHD_DUMP_ID));
  const rest = units.filter((u) => !u.id.startsWith(IVHD_DUMP_ID));
  const named = rest.filter((u) => u.id.startsWith('ivhd@')).sort((a, b) => (a.lines[0] ?? 0) - (b.lines[0] ?? 0));
  let out: AmdProbedUnit[];
  if (!named.length) out = rest.map((u) => ({ id: u.id, registers: { ...u.registers }, lines: [...u.lines] }));
  else {
    const global = rest.find((u) => u.id === 'ivhd0');
    out = named.map((u, i) => {
      const regs: Record<string, unknown> = { ...u.registers };
      if (regs['efr'] === undefined && global) {
        regs['efr'] = global.registers['efr'];
        if (global.registers['efr2'] !== undefined) regs['efr2'] = global.registers['efr2'];
      }
      const lines = i === 0 && global ? [...u.lines, ...global.lines].sort((a, b) => a - b) : [...u.lines];
      return { id: `ivhd${i}`, registers: regs, lines };
    });
    for (const u of rest) if (u.id !== 'ivhd0' && !u.id.startsWith('ivhd@')) out.push(u);
  }
  return dump.length ? withDumpedAliases(out, dump) : out;
}

/** The units with the alias table of their segment, replayed from the dump entries' lines in log order. */
function withDumpedAliases(units: AmdProbedUnit[], dump: readonly AmdProbedUnit[]): AmdProbedUnit[] {
  const events: Array<{ n: number; entry: IvhdDumpEntry }> = [];
  for (const u of dump) for (const n of u.lines) events.push({ n, entry: u.registers['ivhdEntry'] as IvhdDumpEntry });
  events.sort((a, b) => a.n - b.n);
  const bySegment = ivrsAliasesFromDump(events.map((e) => e.entry));
  return units.map((u) => {
    const a = u.registers['pciAddress'];
    const segment = typeof a === 'string' && /^[0-9a-f]{4}:/i.test(a) ? segmentOf(a) : 0;
    const list = bySegment.get(segment);
    if (!list) return u;
    const lines = [...u.lines, ...events.filter((e) => (e.entry.segment ?? 0) === segment).map((e) => e.n)].sort((x, y) => x - y);
    return { id: u.id, registers: { ...u.registers, ivrsAliases: ivrsAliasesToProfile(list, segment) }, lines };
  });
}
