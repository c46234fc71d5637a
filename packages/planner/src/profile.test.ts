import { describe, expect, it } from 'vitest';
import { loadProfile, ProfileError, serializeProfile, validateProfile, hostProfileSchema } from './profile.js';
import { mixedVtdHost, vendors } from './__tests__/test-vendor.js';

function issues(text: string, file = 'host.yaml'): string[] {
  try {
    loadProfile(text, { vendors, file });
  } catch (e) {
    expect(e).toBeInstanceOf(ProfileError);
    return (e as ProfileError).message.split('\n');
  }
  throw new Error('expected a ProfileError');
}

const GOOD_YAML = `
name: lab host
units:
  - id: dmar0
    vendor: vtd
    registers: { aw: 48, cap: 0x19ed008c40780c66, big: 18446744073709551615 }
devices:
  - bdf: 0000:00:02.0
    unit: dmar0
    group: 1
    reservedRegions:
      - { start: 0xfee00000, last: 0xfeefffff, type: msi }
`;

describe('loadProfile', () => {
  it('reads YAML and keeps 64-bit hex and big decimal integers exact, as strings', () => {
    const { profile, units } = loadProfile(GOOD_YAML, { vendors, file: 'lab.yaml' });
    expect(profile.name).toBe('lab host');
    expect(profile.units[0].registers.cap).toBe('0x19ed008c40780c66');
    expect(profile.units[0].registers.big).toBe('18446744073709551615');
    expect(profile.devices[0].reservedRegions?.[0].start).toBe('0xfee00000');
    expect(units.get('dmar0')?.caps.hostStage?.inputBits).toEqual([48]);
  });

  it('reads JSON, and devices default to none', () => {
    const { profile } = loadProfile(JSON.stringify({ name: 'j', units: [{ id: 'dmar0', vendor: 'vtd', registers: { aw: 39 } }] }), { vendors });
    expect(profile.devices).toEqual([]);
  });

  it('names the file, the line, the JSON path and what was expected', () => {
    const text = `name: x
units:
  - id: dmar0
    vendor: vtd
    registers: { aw: 48 }
devices:
  - bdf: 00:02.0
    unit: dmar0
    colour: blue
    reservedRegions:
      - { start: 0x1000, last: 0x1fff, type: weird }
`;
    const msgs = issues(text);
    expect(msgs).toContain('host.yaml:7:10: devices[0].bdf: expected a PCI address segment:bus:device.function such as "0000:00:02.0", got "00:02.0"');
    expect(msgs.some((m) => m.startsWith('host.yaml:9:5: devices[0].colour: unknown property; expected one of bdf, unit'))).toBe(true);
    expect(msgs).toContain('host.yaml:11:46: devices[0].reservedRegions[0].type: expected one of "msi", "direct", "direct-relaxable", "reserved", got "weird"');
  });

  it('reports missing properties and wrong types', () => {
    const msgs = issues('units:\n  - id: 3\n    registers: {}\n');
    expect(msgs).toContain('host.yaml:1:1: missing required property "name"');
    expect(msgs).toContain('host.yaml:2:5: units[0]: missing required property "vendor"');
    expect(msgs.some((m) => m.includes('units[0].id: expected the kernel\'s name of the unit') && m.endsWith('got number 3'))).toBe(true);
  });

  it('delegates register validation to the vendor', () => {
    const msgs = issues('name: x\nunits:\n  - { id: dmar0, vendor: vtd, registers: { cap: "0x1" } }\n');
    expect(msgs).toEqual(['host.yaml:3:42: units[0].registers: expected "aw" (the address width in bits, a number)']);
  });

  it('lists the registered vendors for an unknown one', () => {
    const msgs = issues('name: x\nunits:\n  - { id: iommu0, vendor: riscv, registers: {} }\n');
    expect(msgs).toEqual(['host.yaml:3:27: units[0].vendor: unknown vendor "riscv"; registered vendors: vtd, smmuv3, amd-vi']);
  });

  it('checks references and duplicates', () => {
    const msgs = issues(`name: x
units:
  - { id: dmar0, vendor: vtd, registers: { aw: 48 } }
  - { id: dmar0, vendor: vtd, registers: { aw: 48 } }
devices:
  - { bdf: 0000:00:02.0, unit: dmar9 }
  - { bdf: 0000:00:02.0, unit: dmar0, reservedRegions: [ { start: 0x2000, last: 0x1000, type: reserved } ] }
`);
    expect(msgs).toContain('host.yaml:4:11: units[1].id: duplicate unit id "dmar0" (also units[0])');
    expect(msgs).toContain('host.yaml:6:32: devices[0].unit: no unit "dmar9" in units; expected one of dmar0');
    expect(msgs).toContain('host.yaml:7:12: devices[1].bdf: duplicate device "0000:00:02.0" (also devices[0])');
    expect(msgs).toContain('host.yaml:7:58: devices[1].reservedRegions[0]: start 0x2000 is above last 0x1000 (last is inclusive)');
  });

  it('reports YAML syntax errors with their position', () => {
    const msgs = issues('name: x\nunits: [\n  { id: dmar0\n');
    expect(msgs[0]).toMatch(/^host\.yaml:\d+:\d+: not valid YAML or JSON: /);
  });

  it('refuses an empty file', () => {
    expect(issues('  \n')).toEqual(['host.yaml: the file is empty; expected a host profile object with name, units and devices']);
  });

  it('validates objects in memory without positions', () => {
    expect(() => validateProfile({ name: 'x', units: 'none' }, { vendors, file: 'preset' })).toThrow('preset: units: expected the IOMMU units of the host, got "none"');
  });
});

describe('serializeProfile', () => {
  it('round-trips through JSON and YAML', () => {
    const p = mixedVtdHost();
    for (const format of ['json', 'yaml'] as const) {
      const text = serializeProfile(p, format);
      expect(loadProfile(text, { vendors }).profile).toEqual(p);
    }
    expect(serializeProfile(p, 'yaml')).toContain('start: "0xfee00000"');
  });

  it('publishes a draft 2020-12 schema', () => {
    expect(hostProfileSchema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
  });
});

describe('the published schema file', () => {
  it('is the same object as the schema the planner validates with', async () => {
    const { readFileSync } = await import('node:fs');
    const file: unknown = JSON.parse(readFileSync(new URL('../schema/host-profile.schema.json', import.meta.url), 'utf8'));
    expect(file).toEqual(hostProfileSchema);
  });
});
