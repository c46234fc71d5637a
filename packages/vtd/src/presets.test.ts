import { describe, expect, it } from 'vitest';
import { checkVtdPreset, findVtdPreset, vtdPresetProfile, vtdPresets } from './presets.js';
import { decodeEcap, parseHex64, vtdNormalizedCaps } from './registers.js';
import { parseVtdLogLine, renderVtdBootLine } from './logs.js';

function unitCaps(cap: string, ecap: string, ver: string) {
  const c = parseHex64(cap);
  const e = parseHex64(ecap);
  const v = parseHex64(ver);
  if (!c.ok || !e.ok || !v.ok) throw new Error('bad hex');
  return vtdNormalizedCaps(v.value, c.value, e.value);
}

describe('VT-d presets', () => {
  it('has at least six machines with unique ids', () => {
    expect(vtdPresets.length).toBeGreaterThanOrEqual(6);
    expect(new Set(vtdPresets.map((p) => p.id)).size).toBe(vtdPresets.length);
  });

  it.each(vtdPresets.map((p) => [p.id, p] as const))('%s is consistent', (_id, preset) => {
    expect(checkVtdPreset(preset)).toEqual([]);
    expect(preset.units.length).toBeGreaterThan(0);
    expect(preset.devices.length).toBeGreaterThan(0);
    for (const d of preset.devices) {
      expect(d.bdf).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/);
      expect(d.reservedRegions).toContainEqual({ start: '0xfee00000', last: '0xfeefffff', type: 'msi' });
    }
  });

  it('gives a PRI- and PASID-capable device wherever the hardware allows it', () => {
    for (const p of vtdPresets) {
      const capable = p.units.some((u) => {
        const caps = unitCaps(u.cap, u.ecap, u.ver);
        return caps.pri && caps.pasidBits > 0;
      });
      const hasDevice = p.devices.some((d) => d.pri && (d.pasidBits ?? 0) > 0);
      expect(hasDevice).toBe(capable);
    }
    expect(vtdPresets.some((p) => p.devices.some((d) => d.pri && d.pasidBits === 20))).toBe(true);
  });

  it('covers several generations, client and server, and QEMU', () => {
    const versions = new Set(vtdPresets.flatMap((p) => p.units.map((u) => u.ver)));
    expect(versions).toEqual(new Set(['0x10', '0x40', '0x50', '0x60', '0x70']));
    expect(vtdPresets.some((p) => p.units.some((u) => decodeEcap(BigInt(u.ecap)).SMTS === 1))).toBe(true);
    expect(findVtdPreset('qemu-intel-iommu-cm')).toBeDefined();
  });

  it('renders each unit back into a boot line the parser reads', () => {
    for (const p of vtdPresets) {
      p.units.forEach((u) => {
        const line = renderVtdBootLine({
          seq: Number(u.id.replace('dmar', '')),
          regBase: BigInt(u.regBase),
          ver: BigInt(u.ver),
          cap: BigInt(u.cap),
          ecap: BigInt(u.ecap),
        });
        const r = parseVtdLogLine(line);
        expect(r.ok).toBe(true);
        if (r.ok && r.value.kind === 'boot') {
          expect(r.value.cap).toBe(BigInt(u.cap));
          expect(r.value.ecap).toBe(BigInt(u.ecap));
          expect(r.value.ver).toBe(BigInt(u.ver));
        }
      });
    }
  });

  it('reproduces the cited Granite Rapids boot line exactly', () => {
    const p = findVtdPreset('granite-rapids-2s');
    const u = p?.units[0];
    if (!u) throw new Error('missing preset');
    expect(
      renderVtdBootLine({ seq: 0, regBase: BigInt(u.regBase), ver: BigInt(u.ver), cap: BigInt(u.cap), ecap: BigInt(u.ecap) }),
    ).toBe('DMAR: dmar0: reg_base_addr cbfe0000 ver 7:0 cap f9ed008cee780c66 ecap 3fef9ea6f0efdf');
  });

  it('converts to the host profile shape, regBase among the registers the vendor reads', () => {
    const p = findVtdPreset('skylake-h-client');
    if (!p) throw new Error('missing preset');
    const profile = vtdPresetProfile(p);
    expect(profile.units[0]).toEqual({
      id: 'dmar0',
      vendor: 'vtd',
      registers: { ver: '0x10', cap: '0x1c0000c40660462', ecap: '0x7e3ff0501e', regBase: '0xfed90000' },
    });
    expect(JSON.parse(JSON.stringify(profile))).toEqual(profile);
  });

  it('reports a device asking for more than its unit offers', () => {
    const p = findVtdPreset('qemu-intel-iommu-cm');
    if (!p) throw new Error('missing preset');
    const broken = {
      ...p,
      devices: [...p.devices, { bdf: '0000:00:04.0', unit: 'dmar0', group: 9, ats: true, pri: true, pasidBits: 20 }],
    };
    const problems = checkVtdPreset(broken);
    expect(problems.some((s) => s.includes('ATS'))).toBe(true);
    expect(problems.some((s) => s.includes('PASID'))).toBe(true);
    expect(problems.some((s) => s.includes('PRI'))).toBe(true);
  });
});
