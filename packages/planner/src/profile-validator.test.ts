/**
 * The host profile validator compiled ahead of time (profile-validator.generated.js) against ajv compiling
 * the same schema with the same options at run time, as the planner did before: the same verdict and the
 * same error objects, verbose fields included, on every profile in the repository and every preset the
 * vendor packages ship (the planner's code never imports a vendor; this test does), on profiles broken
 * one change at a time, and on random ones. And the committed file is what the generator writes now.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { PluginHost } from '@ioasid/core/driver';
import * as vtd from '@ioasid/vtd';
import * as smmuv3 from '@ioasid/smmuv3';
import * as amdVi from '@ioasid/amd-vi';
import * as virtioIommu from '@ioasid/virtio-iommu';
import * as riscvIommu from '@ioasid/riscv-iommu';

import { PROFILE_AJV_OPTIONS, PROFILE_VALIDATOR_FILE, profileValidatorSource } from '../scripts/profile-validator.js';
import { validate as generated } from './profile-validator.generated.js';
import { hostProfileSchema } from './schema.js';
import { parseText } from './profile.js';
import { probeDmesg } from './probe.js';

const runtime = new Ajv2020(PROFILE_AJV_OPTIONS).compile(hostProfileSchema);

/** Checks one value; returns how many errors both gave. */
function same(value: unknown): number {
  const ok = generated(value);
  const errors = (generated.errors ?? null) as readonly ErrorObject[] | null;
  const want = runtime(value);
  expect(ok).toBe(want);
  expect(errors).toStrictEqual(runtime.errors ?? null);
  // The verbose fields are the schema's own objects, as ajv compiled at run time gives them.
  errors?.forEach((e, i) => {
    expect(e.parentSchema).toBe(runtime.errors![i].parentSchema);
    expect(e.data).toBe(runtime.errors![i].data);
  });
  return errors?.length ?? 0;
}

const CLI_FIXTURES = fileURLToPath(new URL('../../cli/test/fixtures/', import.meta.url));

/** A profile using every property the schema has, valid. */
const FULL = {
  $schema: 'https://github.com/ioasid/ioasid/packages/planner/schema/host-profile.schema.json',
  name: 'every property',
  description: 'a host',
  'x-note': { any: ['thing'] },
  units: [
    { id: 'dmar0', vendor: 'vtd', registers: { ver: '0x10', cap: '0xd2008c40660462', ecap: '0xf050da' }, description: 'u', regBase: '0xfed90000', base: 4096, 'x-u': 1 },
    { id: 'smmu@0x9050000', vendor: 'smmuv3', registers: { idr: [1, 2, 3, 4, 5, 6] } },
  ],
  devices: [
    {
      bdf: '0000:00:02.0',
      unit: 'dmar0',
      group: 1,
      ats: true,
      pri: false,
      pasidBits: 20,
      pasidExec: true,
      pasidPriv: false,
      streamId: 4294967295,
      noSnoop: false,
      vf: false,
      stall: true,
      reservedRegions: [
        { start: '0xfee00000', last: 4276092927, type: 'msi' },
        { start: '12', last: '0XFFFF', type: 'direct-relaxable' },
      ],
      description: 'a device',
      'x-d': null,
    },
  ],
};

/** Values put in every place of FULL: each type, each edge of a keyword, strings each pattern refuses. */
const REPLACEMENTS: readonly unknown[] = [
  null, true, false, 0, -0, -1, 1.5, 20, 21, 4294967296, 2 ** 53, -(2 ** 53), NaN, Infinity, -Infinity, 10n,
  '', 'x', 'dmar 0', 'Vtd', '-vtd', '0x', '0xZZ', '0x10', '-1', '12', '1e3', '00:02.0', '0000:00:20.0', '0000:00:1f.8',
  'msi', 'weird', 'é', '\ud83d\ude00', '\ud800', 'a'.repeat(60), [], [1], [{}], [[]], {}, { a: 1 }, { 'x-a': 1 },
];

/** Every path to a value inside v, parents first. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

/** A deep copy of root with fn applied to the value at path (fn returns the new value; undefined deletes a key). */
function edit(root: unknown, path: readonly (string | number)[], fn: (v: unknown) => unknown): unknown {
  if (path.length === 0) return fn(structuredClone(root));
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let parent = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  const next = fn(parent[last]);
  if (next === undefined && !Array.isArray(parent)) delete parent[last];
  else parent[last] = next;
  return copy;
}

/** FULL broken one change at a time: each value replaced, each key removed, keys added, arrays changed. */
function brokenOneWay(): unknown[] {
  const out: unknown[] = [];
  for (const path of paths(FULL)) {
    for (const r of REPLACEMENTS) out.push(edit(FULL, path, () => r));
    out.push(edit(FULL, path, () => undefined));
    out.push(edit(FULL, path, (v) => {
      if (Array.isArray(v)) return [...v, ...v, 7];
      if (v !== null && typeof v === 'object') return { ...v, colour: 'blue', 'x-ok': 1, 'X-no': 2, '': 3, 'a/b~c': 4 };
      return [v];
    }));
  }
  // Several errors at once, at several depths.
  out.push({ units: [{ id: 3, registers: [] }, 'unit'], devices: [{ bdf: 5, pasidBits: 99, reservedRegions: [{ start: -1, type: 'x' }, []] }], extra: 1 });
  out.push({ name: '', units: {}, devices: {} }, [], 'profile', 0, null, {});
  return out;
}

describe('the generated profile validator', () => {
  it('is what npm run profile-validator writes from the current schema and ajv', () => {
    expect(readFileSync(PROFILE_VALIDATOR_FILE, 'utf8'), 'the generated validator is stale: run `npm run profile-validator` and commit src/profile-validator.generated.js').toBe(profileValidatorSource());
  });

  it('needs nothing from ajv at run time, and the planner loads no ajv', () => {
    const src = readFileSync(PROFILE_VALIDATOR_FILE, 'utf8');
    expect(src).not.toMatch(/\brequire\(|from ['"](?!\.\/schema\.js['"])/);
    const dir = fileURLToPath(new URL('.', import.meta.url));
    for (const f of readdirSync(dir).filter((n) => /\.(ts|js)$/.test(n) && !n.endsWith('.test.ts'))) {
      expect(readFileSync(dir + f, 'utf8'), f).not.toMatch(/^import (?!type ).*from ['"]ajv/m);
    }
  });

  it('agrees with ajv compiled at run time on every profile and preset in the repository', () => {
    const profiles: unknown[] = [FULL];
    for (const f of ['mixed-host.yaml', 'malformed-profile.yaml']) profiles.push(parseText(readFileSync(CLI_FIXTURES + f, 'utf8'), f).value);
    for (const m of [vtd, smmuv3, amdVi, virtioIommu, riscvIommu]) profiles.push(...JSON.parse(JSON.stringify(m.presets)) as unknown[]);
    const host = new PluginHost();
    for (const m of [vtd, smmuv3, amdVi, virtioIommu, riscvIommu]) host.load(m.plugin);
    const logs = readdirSync(CLI_FIXTURES).filter((f) => f.startsWith('dmesg-'));
    for (const f of logs) profiles.push(JSON.parse(JSON.stringify(probeDmesg(readFileSync(CLI_FIXTURES + f, 'utf8'), host.vendors()).profile)));
    expect(profiles.length).toBeGreaterThan(20);
    const errors = profiles.map(same);
    // The malformed fixture is the one that fails; every other profile is valid.
    expect(errors.filter((n) => n > 0)).toHaveLength(1);
  });

  it('agrees on a profile broken one change at a time, in every place', () => {
    const cases = brokenOneWay();
    const errors = cases.map(same);
    expect(cases.length).toBeGreaterThan(2000);
    // Most changes break the profile, some of them in many ways at once.
    expect(errors.filter((n) => n > 0).length).toBeGreaterThan(cases.length / 2);
    expect(Math.max(...errors)).toBeGreaterThanOrEqual(10);
  });

  it('agrees on the YAML of broken profiles as the planner parses it', () => {
    const yaml = `name: 7
units:
  - { id: "dmar 0", vendor: VTD, registers: 0x10, regBase: 0x1g, base: -4, x-ok: .inf }
  - id: dmar1
    vendor: vtd
    registers: { cap: 0x19ed008c40780c66 }
    base: 18446744073709551615
devices:
  - { bdf: 0000:00:02.0, unit: dmar0, pasidBits: .nan, streamId: 1.5, group: ~, colour: blue }
  - bdf: [0000:00:03.0]
    reservedRegions: [{ start: 0xfee00000, last: 0xfeefffff, type: MSI }, { start: 1e3 }]
`;
    expect(same(parseText(yaml, 'broken.yaml').value)).toBeGreaterThan(10);
  });

  it('agrees on random profiles, valid and not', () => {
    const anything = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom(...REPLACEMENTS),
        fc.string(),
        fc.integer(),
        fc.double(),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom('a', 'x-a', 'id', 'type'), tie('value'), { maxKeys: 3 }),
      ),
    })).value;
    const or = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: arb }, { weight: 1, arbitrary: anything });
    const num = or(fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => `0x${n.toString(16)}`), fc.nat().map(String)));
    const extra = fc.dictionary(fc.constantFrom('x-a', 'x-', 'colour', 'X-b'), anything, { maxKeys: 2 });
    const withExtra = <T extends object>(arb: fc.Arbitrary<T>) => fc.tuple(arb, fc.option(extra, { nil: undefined })).map(([o, e]) => ({ ...o, ...e }));
    const region = withExtra(fc.record({ start: num, last: num, type: or(fc.constantFrom('msi', 'direct', 'direct-relaxable', 'reserved')) }, { requiredKeys: [] }));
    const unit = withExtra(
      fc.record(
        { id: or(fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,8}$/)), vendor: or(fc.constantFrom('vtd', 'smmuv3', 'amd-vi')), registers: or(fc.constant({ aw: 48 })), description: or(fc.string()), regBase: num, base: num },
        { requiredKeys: [] },
      ),
    );
    const device = withExtra(
      fc.record(
        {
          bdf: or(fc.stringMatching(/^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/)),
          unit: or(fc.constantFrom('dmar0', 'smmu0')),
          group: or(fc.nat()),
          ats: or(fc.boolean()),
          pri: or(fc.boolean()),
          pasidBits: or(fc.integer({ min: -2, max: 22 })),
          streamId: or(fc.integer({ min: -1, max: 2 ** 32 })),
          stall: or(fc.boolean()),
          reservedRegions: or(fc.array(or(region), { maxLength: 3 })),
          description: or(fc.string()),
        },
        { requiredKeys: [] },
      ),
    );
    const profile = withExtra(
      fc.record(
        { $schema: or(fc.string()), name: or(fc.string()), description: or(fc.string()), units: or(fc.array(or(unit), { maxLength: 3 })), devices: or(fc.array(or(device), { maxLength: 3 })) },
        { requiredKeys: [] },
      ),
    );
    let failed = 0;
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: profile }, { weight: 1, arbitrary: anything }), (p) => {
        if (same(p) > 0) failed++;
      }),
      { numRuns: 2000 },
    );
    // Both kinds were tried.
    expect(failed).toBeGreaterThan(100);
    expect(failed).toBeLessThan(2000);
  });
});
