import 'reflect-metadata';
import { afterEach, describe, expect, it } from 'vitest';
import { container, type DependencyContainer } from 'tsyringe';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, PluginHost } from '@ioasid/core/driver';
import { plugin, presets, VtdVendor } from './index.js';
import { vtdPresets } from './presets.js';

describe('plugin', () => {
  let child: DependencyContainer | null = null;
  afterEach(() => {
    void child?.dispose();
    child = null;
  });

  it('registers the vendor and both formats into the container it is given', () => {
    child = container.createChildContainer();
    plugin.register(child);
    const vendors = child.resolveAll(IOMMU_VENDOR);
    expect(vendors).toHaveLength(1);
    expect(vendors[0]).toBeInstanceOf(VtdVendor);
    expect(vendors[0].id).toBe('vtd');
    expect(vendors[0].name).toBe('Intel VT-d');
    expect(child.resolveAll(PAGE_TABLE_FORMAT).map((f) => f.id)).toEqual(['vtd-ss', 'vtd-fs']);
    expect(container.isRegistered(IOMMU_VENDOR)).toBe(false);
  });

  it('loads through core\'s PluginHost', () => {
    const host = new PluginHost(container);
    host.load(plugin);
    expect(host.vendor('vtd')?.name).toBe('Intel VT-d');
    expect(host.formats().map((f) => f.id).sort()).toEqual(['vtd-fs', 'vtd-ss']);
  });

  it('presets are host profiles whose units decode', () => {
    expect(presets).toHaveLength(vtdPresets.length);
    const v = new VtdVendor();
    for (const p of presets) {
      expect(p.units.length).toBeGreaterThan(0);
      for (const u of p.units) {
        expect(u.vendor).toBe('vtd');
        const r = v.decodeRegisters(u.registers);
        expect(r.ok, `${p.name}/${u.id}: ${r.ok ? '' : r.error}`).toBe(true);
      }
      for (const d of p.devices) expect(p.units.some((u) => u.id === d.unit)).toBe(true);
    }
    // The project rule: every vendor ships a preset with a PRI- and PASID-capable device.
    expect(presets.some((p) => p.devices.some((d) => d.pri && (d.pasidBits ?? 0) > 0))).toBe(true);
  });
});
