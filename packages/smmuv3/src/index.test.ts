import 'reflect-metadata';
import { describe, it, expect } from 'vitest';
import { container } from 'tsyringe';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, PluginHost } from '@ioasid/core/driver';
import * as pkg from './index.js';
import { plugin, presets } from './index.js';

describe('plugin', () => {
  it('registers the vendor and both VMSAv8-64 formats into the container it is given', () => {
    const c = container.createChildContainer();
    plugin.register(c);
    const vendors = c.resolveAll(IOMMU_VENDOR);
    expect(vendors.map((v) => [v.id, v.name])).toEqual([['smmuv3', 'Arm SMMUv3']]);
    expect(c.resolveAll(PAGE_TABLE_FORMAT).map((f) => f.id)).toEqual(['arm-lpae-s1', 'arm-lpae-s2']);
    expect(container.isRegistered(IOMMU_VENDOR, false)).toBe(false);
  });

  it('loads into a PluginHost', () => {
    const host = new PluginHost();
    host.load(plugin);
    expect(host.vendor('smmuv3')?.name).toBe('Arm SMMUv3');
    expect(host.formats().map((f) => f.id).sort()).toEqual(['arm-lpae-s1', 'arm-lpae-s2']);
  });

  it('exports the codecs and decoders, and not the unit and domain classes a host builds through the plugin', () => {
    for (const name of ['SmmuV3Vendor', 'SmmuFaultCodec', 'decodeEvent', 'encodeCommand', 'validateNestedSte', 'renderEventLines', 'smmuNormalizedCaps', 'armLpaeS1', 'smmuPresets']) {
      expect(pkg, name).toHaveProperty(name);
    }
    for (const name of ['SmmuUnit', 'SmmuPagingDomain', 'SmmuViommu', 'SmmuNestedDomain', 'readLe64Words', 'makeNestedPhysicalSte']) {
      expect(pkg, name).not.toHaveProperty(name);
    }
  });
});

describe('presets as host profiles', () => {
  it('have smmuv3 units whose registers decode, and devices with StreamIDs behind known units', () => {
    const vendor = new pkg.SmmuV3Vendor();
    expect(presets.length).toBeGreaterThan(0);
    for (const p of presets) {
      for (const u of p.units) {
        expect(u.vendor).toBe('smmuv3');
        expect(Object.keys(u.registers).sort()).toEqual(['aidr', 'idr', 'iidr']);
        expect(vendor.decodeRegisters(u.registers).ok, `${p.name} ${u.id}`).toBe(true);
      }
      for (const d of p.devices) {
        expect(p.units.some((u) => u.id === d.unit)).toBe(true);
        expect(typeof d.streamId).toBe('number');
      }
    }
    const altra = presets.find((p) => p.name.startsWith('Ampere Altra'));
    expect(altra?.devices[0]).toMatchObject({ bdf: '0000:01:00.0', streamId: 0x100, pri: true, ats: true, pasidBits: 20 });
  });
});
