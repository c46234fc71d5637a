/**
 * Host profiles from YAML or JSON text: syntax, the published JSON Schema
 * (schema/host-profile.schema.json), then what a schema cannot say: unique ids, devices pointing at
 * existing units, and each unit's registers as its vendor plugin reads them. Every problem names the
 * file, the line when the text has one, the JSON path and what was expected.
 */
import type { ErrorObject } from 'ajv';
import { LineCounter, parseDocument, stringify, isMap, isPair, isScalar, type Document, type ScalarTag } from 'yaml';
import { parseBdf, parseProfileNumber, type HostProfile } from '@ioasid/core';
import type { DecodedUnit, IommuVendor } from '@ioasid/core/driver';

import { hostProfileSchema } from './schema.js';
import { validate as validateGenerated } from './profile-validator.generated.js';

export { hostProfileSchema };

export interface ProfileIssue {
  /** The JSON path, e.g. `units[0].registers`; empty for the document itself. */
  readonly path: string;
  /** What is wrong, e.g. 'missing required property "bdf"'. */
  readonly message: string;
  /** 1-based position in the source text, when known. */
  readonly line?: number;
  /** 1-based column of that position, when known. */
  readonly column?: number;
}

/** A profile that cannot be used; `issues` lists every problem found, `message` one per line. */
export class ProfileError extends Error {
  /** Always 'ProfileError'. */
  override readonly name = 'ProfileError';
  constructor(
    /** The file name the messages start with (ProfileOptions.file, `<profile>` by default). */
    readonly file: string,
    /** Every problem found, in document order. */
    readonly issues: readonly ProfileIssue[],
  ) {
    super(issues.map((i) => formatIssue(file, i)).join('\n'));
  }
}

export function formatIssue(file: string, i: ProfileIssue): string {
  const where = i.line !== undefined ? `${file}:${i.line}:${i.column ?? 1}` : file;
  return `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export interface ProfileOptions {
  /** The vendors whose decodeRegisters checks each unit (PluginHost.vendors()). */
  readonly vendors: readonly IommuVendor[];
  /** Named in every message; defaults to `<profile>`. */
  readonly file?: string;
}

/** A valid profile and each unit decoded by its vendor (in the profile's unit order). */
export interface CheckedProfile {
  /** The validated profile. */
  readonly profile: HostProfile;
  /** Each unit's decoded registers, by unit id. */
  readonly units: ReadonlyMap<string, DecodedUnit>;
}


// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/**
 * YAML 1.2 reads an unquoted 0x1c0000c40660462 as a double and loses bits. Hex integers therefore
 * stay the strings they were written as, and decimal integers a double cannot hold exactly keep their
 * digits: both are what parseProfileNumber() and the vendors expect for 64-bit registers.
 */
const HEX_AS_STRING: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  format: 'HEX',
  default: true,
  test: /^0x[0-9a-fA-F]+$/,
  resolve: (src: string) => src,
};
const BIG_DECIMAL_AS_STRING: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  test: /^[0-9]{16,}$/,
  resolve: (src: string) => (Number.isSafeInteger(Number(src)) ? Number(src) : src),
};

export interface Parsed {
  value: unknown;
  doc: Document | null;
  lines: LineCounter;
}

/** The value a YAML or JSON text parses to, as the schema sees it; throws ProfileError on bad syntax. */
export function parseText(text: string, file: string): Parsed {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
    customTags: (tags) => [HEX_AS_STRING, BIG_DECIMAL_AS_STRING, ...tags],
  });
  if (doc.errors.length > 0) {
    throw new ProfileError(
      file,
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        const text = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        return { path: '', message: `not valid YAML or JSON: ${text}`, line: pos.line, column: pos.col };
      }),
    );
  }
  return { value: doc.toJS({ maxAliasCount: 100 }) as unknown, doc, lines };
}

// ---------------------------------------------------------------------------------------------
// Paths and positions
// ---------------------------------------------------------------------------------------------

/** One step of a path into a profile document: a property name or an array index. */
export type Segment = string | number;

function segmentsOf(instancePath: string): Segment[] {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** `units[0].registers` from ['units', 0, 'registers']. */
export function formatPath(segments: readonly Segment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

function position(p: Parsed | null, segments: readonly Segment[], key?: string): { line?: number; column?: number } {
  if (!p?.doc) return {};
  let node: unknown = segments.length ? p.doc.getIn(segments, true) : p.doc.contents;
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === key);
    if (pair && isPair(pair)) node = pair.key;
  }
  const range = (node as { range?: [number, number, number] } | undefined)?.range;
  if (!range) return {};
  const pos = p.lines.linePos(range[0]);
  return { line: pos.line, column: pos.col };
}

// ---------------------------------------------------------------------------------------------
// Schema validation
// ---------------------------------------------------------------------------------------------

/**
 * The schema compiled ahead of time (scripts/profile-validator.ts writes profile-validator.generated.js with
 * ajv's standalone code): the same checks and error objects as ajv compiling it here, without shipping ajv's
 * compiler to the CLI and the web page or paying for a compile on first use.
 */
function validateSchema(value: unknown): { ok: boolean; errors: readonly ErrorObject[] } {
  const ok = validateGenerated(value);
  return { ok, errors: (validateGenerated.errors as readonly ErrorObject[] | null | undefined) ?? [] };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function schemaIssue(e: ErrorObject, parsed: Parsed | null): ProfileIssue | null {
  const segs = segmentsOf(e.instancePath);
  const path = formatPath(segs);
  const parent = (e.parentSchema ?? {}) as { description?: string; properties?: Record<string, unknown> };
  const expected = parent.description;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      return { path, message: `missing required property "${missing}"`, ...position(parsed, segs) };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const allowed = Object.keys(parent.properties ?? {}).filter((k) => k !== '$schema');
      return {
        path: formatPath([...segs, extra]),
        message: `unknown property; expected one of ${allowed.join(', ')} (or an x- extension key)`,
        ...position(parsed, segs, extra),
      };
    }
    case 'type':
      return { path, message: `expected ${expected ?? String(params.type)}, got ${describe(e.data)}`, ...position(parsed, segs) };
    case 'enum':
      return {
        path,
        message: `expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${describe(e.data)}`,
        ...position(parsed, segs),
      };
    case 'pattern':
    case 'minLength':
    case 'minimum':
    case 'maximum':
      return {
        path,
        message: `expected ${expected ?? `${e.keyword} ${String(Object.values(params)[0])}`}, got ${describe(e.data)}`,
        ...position(parsed, segs),
      };
    case 'if':
    case 'anyOf':
    case 'oneOf':
      // The branch errors already say what is wrong.
      return null;
    default:
      return { path, message: e.message ?? e.keyword, ...position(parsed, segs) };
  }
}

// ---------------------------------------------------------------------------------------------
// What the schema cannot check
// ---------------------------------------------------------------------------------------------

function semanticIssues(profile: HostProfile, vendors: readonly IommuVendor[], parsed: Parsed | null, units: Map<string, DecodedUnit>): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const at = (segs: Segment[], message: string, key?: string) => issues.push({ path: formatPath(segs), message, ...position(parsed, segs, key) });
  const unitIndex = new Map<string, number>();
  profile.units.forEach((u, i) => {
    const seen = unitIndex.get(u.id);
    if (seen !== undefined) {
      at(['units', i, 'id'], `duplicate unit id "${u.id}" (also units[${seen}])`);
      return;
    }
    unitIndex.set(u.id, i);
    const vendor = vendors.find((v) => v.id === u.vendor);
    if (!vendor) {
      const known = vendors.map((v) => v.id);
      at(['units', i, 'vendor'], `unknown vendor "${u.vendor}"; registered vendors: ${known.length ? known.join(', ') : '(none: no vendor plugin is loaded)'}`);
      return;
    }
    let decoded: ReturnType<IommuVendor['decodeRegisters']>;
    try {
      decoded = vendor.decodeRegisters(u.registers);
    } catch (e) {
      decoded = { ok: false, error: `the ${vendor.id} plugin threw: ${(e as Error).message}` };
    }
    if (!decoded.ok) at(['units', i, 'registers'], decoded.error);
    else units.set(u.id, decoded.value);
  });
  const bdfIndex = new Map<string, number>();
  profile.devices.forEach((d, i) => {
    const bdf = d.bdf.toLowerCase();
    if (!parseBdf(bdf)) at(['devices', i, 'bdf'], `expected a PCI address segment:bus:device.function with device 00..1f, got "${d.bdf}"`);
    const seen = bdfIndex.get(bdf);
    if (seen !== undefined) at(['devices', i, 'bdf'], `duplicate device "${d.bdf}" (also devices[${seen}])`);
    else bdfIndex.set(bdf, i);
    if (!unitIndex.has(d.unit)) {
      const ids = [...unitIndex.keys()];
      at(['devices', i, 'unit'], `no unit "${d.unit}" in units; expected one of ${ids.length ? ids.join(', ') : '(no units)'}`);
    }
    (d.reservedRegions ?? []).forEach((r, j) => {
      const start = parseProfileNumber(r.start);
      const last = parseProfileNumber(r.last);
      if (start !== null && last !== null && start > last) {
        at(['devices', i, 'reservedRegions', j], `start 0x${start.toString(16)} is above last 0x${last.toString(16)} (last is inclusive)`);
      }
      if (last !== null && last > (1n << 64n) - 1n) at(['devices', i, 'reservedRegions', j, 'last'], 'expected a 64-bit address');
    });
  });
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

function check(value: unknown, opts: ProfileOptions, parsed: Parsed | null): CheckedProfile {
  const file = opts.file ?? '<profile>';
  const schema = validateSchema(value);
  if (!schema.ok) {
    const issues = schema.errors.map((e) => schemaIssue(e, parsed)).filter((i): i is ProfileIssue => i !== null);
    throw new ProfileError(file, dedupe(issues));
  }
  const raw = value as HostProfile & { devices?: HostProfile['devices'] };
  const profile: HostProfile = { ...raw, devices: raw.devices ?? [] };
  const units = new Map<string, DecodedUnit>();
  const issues = semanticIssues(profile, opts.vendors, parsed, units);
  if (issues.length) throw new ProfileError(file, issues);
  return { profile, units };
}

function dedupe(issues: ProfileIssue[]): ProfileIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parses and validates YAML or JSON text; throws ProfileError. */
export function loadProfile(text: string, opts: ProfileOptions): CheckedProfile {
  const file = opts.file ?? '<profile>';
  if (text.trim() === '') throw new ProfileError(file, [{ path: '', message: 'the file is empty; expected a host profile object with name, units and devices' }]);
  const parsed = parseText(text, file);
  return check(parsed.value, opts, parsed);
}

/** Like loadProfile, returning only the profile. */
export function parseProfile(text: string, opts: ProfileOptions): HostProfile {
  return loadProfile(text, opts).profile;
}

/** Validates an object already in memory (a preset, a probe result); throws ProfileError. */
export function validateProfile(value: unknown, opts: ProfileOptions): CheckedProfile {
  return check(value, opts, null);
}

/** JSON (two-space indent) or YAML text of a profile; hex strings stay strings in both. */
export function serializeProfile(profile: HostProfile, format: 'json' | 'yaml'): string {
  const plain = JSON.parse(JSON.stringify(profile, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))) as unknown;
  if (format === 'json') return `${JSON.stringify(plain, null, 2)}\n`;
  return stringify(plain, { lineWidth: 0 });
}
