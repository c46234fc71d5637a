/** Regression tests for wrong results reported on real logs and fleets (issue 15). */
import { describe, expect, it } from 'vitest';
import type { HostProfile } from '@ioasid/core';
import { plan } from './plan.js';
import { parseViommu, PlanError, qemuRequirements } from './models.js';
import { smmuUnit, vendors, vtdUnit, weakVtdUnit } from './__tests__/test-vendor.js';

const noDevices = (name: string, units: HostProfile['units']): HostProfile => ({ name, units, devices: [] });

describe('baseline covers every unit of every host unless devices are named', () => {
  // As probed from real logs: a client (legacy mode, 39-bit) and a server (nesting, 48-bit), no devices placed.
  const adl = noDevices('adl', [vtdUnit('dmar0', { aw: 39, fs: null, nesting: false, pasid: 0 }), weakVtdUnit('dmar1')]);
  const gnr = noDevices('gnr', [vtdUnit('dmar0'), vtdUnit('dmar1'), vtdUnit('dmar2')]);

  it('offers neither scalable mode nor 48 bits to a fleet with legacy 39-bit units', () => {
    const p = plan({ profiles: [adl, gnr], policy: 'baseline', vendors });
    expect(p.viommu.model).toBe('intel-iommu');
    expect(p.viommu.properties['x-flts']).toBeUndefined();
    expect(p.viommu.properties['x-scalable-mode']).toBeUndefined();
    expect(p.viommu.properties['aw-bits']).toBe(39);
    expect(p.warnings).toContain('baseline policy: only what all 5 unit(s) of 2 hosts support, every property explicit (QEMU defaults change between versions)');
  });

  it('does the same on one host with mixed units', () => {
    const mixed = noDevices('mixed', [vtdUnit('dmar0'), weakVtdUnit('dmar1')]);
    const p = plan({ profiles: [mixed], policy: 'baseline', vendors });
    expect(p.viommu.properties).toEqual({ 'caching-mode': true, 'aw-bits': 39, intremap: 'on' });
  });

  it('counts every unit even when the profiles place devices on some of them', () => {
    const withDevice: HostProfile = { name: 'gnr', units: gnr.units, devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
    const p = plan({ profiles: [adl, withDevice], policy: 'baseline', vendors });
    expect(p.viommu.properties['aw-bits']).toBe(39);
    expect(p.viommu.properties['x-flts']).toBeUndefined();
  });

  it('named devices limit the baseline to their units', () => {
    const withDevice: HostProfile = { name: 'gnr', units: gnr.units, devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
    const p = plan({ profiles: [withDevice], policy: 'baseline', vendors, devices: ['0000:00:02.0'] });
    expect(p.viommu.properties['x-flts']).toBe(true);
    expect(p.viommu.properties['aw-bits']).toBe(48);
  });
});

describe('a vSMMU is named after its host SMMU, whatever devices are chosen', () => {
  const host: HostProfile = {
    name: 'altra',
    units: [smmuUnit('smmu0'), smmuUnit('smmu1'), smmuUnit('smmu2')],
    devices: [
      { bdf: '0000:01:00.0', unit: 'smmu0' },
      { bdf: '0005:01:00.0', unit: 'smmu2' },
    ],
  };

  it('a device on the third root is behind smmuv3.3 on pcie.3 (the host policy)', () => {
    const p = plan({ profiles: [host], policy: 'host', vendors, devices: ['0005:01:00.0'] });
    expect(p.devices[0].instance).toBe('smmuv3.3');
    expect(p.viommu.instances?.map((i) => [i.id, i.bus, i.hostUnit])).toEqual([['smmuv3.3', 'pcie.3', 'smmu2']]);
    expect(p.qemu).toContain('arm-smmuv3,primary-bus=pcie.3,');
  });

  it('and the same under strict, with both devices', () => {
    const p = plan({ profiles: [host], policy: 'strict', vendors, viommu: 'arm-smmuv3,accel=on' });
    expect(p.devices.map((d) => d.instance)).toEqual(['smmuv3.1', 'smmuv3.3']);
  });
});

describe("QEMU's property tables", () => {
  it('accepts every intel-iommu property QEMU defines, stale-tm and x-buggy-eim included', () => {
    expect(parseViommu('intel-iommu,stale-tm=on,caching-mode=on').properties).toEqual({ 'stale-tm': true, 'caching-mode': true });
    expect(parseViommu('intel-iommu,x-buggy-eim=on').properties).toEqual({ 'x-buggy-eim': true });
    expect(parseViommu('intel-iommu,pt=off,version=1,snoop-control=on').properties).toEqual({ pt: false, version: 1, 'snoop-control': true });
    expect(parseViommu('amd-iommu,pci-id=iommupci0,numint2k=on,xtsup=on').properties).toEqual({ 'pci-id': 'iommupci0', numint2k: true, xtsup: true });
    expect(parseViommu('virtio-iommu-pci,reserved-regions=0xfee00000:0xfeefffff:1').properties).toEqual({ 'reserved-regions': '0xfee00000:0xfeefffff:1' });
    expect(parseViommu('arm-smmuv3,stage=nested,bus_num=0').properties).toEqual({ stage: 'nested', bus_num: 0 });
  });

  it('says which QEMU release each property needs, and that x-buggy-eim is gone from new ones', () => {
    const host: HostProfile = { name: 'h', units: [vtdUnit('dmar0')], devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
    const p = plan({ profiles: [host], policy: 'strict', vendors, viommu: 'intel-iommu,stale-tm=on,caching-mode=on,aw-bits=48,x-buggy-eim=on' });
    expect(p.qemuVersion.minimum).toBe('9.2');
    expect(p.qemuVersion.requirements).toContainEqual({ version: '9.2', why: 'intel-iommu stale-tm' });
    expect(p.warnings.some((w) => w.startsWith('intel-iommu x-buggy-eim was removed in QEMU 10.1'))).toBe(true);
    expect(qemuRequirements(parseViommu('intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48'), 1)[0]).toEqual({
      version: '10.2',
      approximate: true,
      why: 'x-flts=on with assigned (iommufd) devices nested on the host VT-d',
    });
  });
});

describe('one rule for a unit with no kernel-managed stage (VT-d cap = 0)', () => {
  const host: HostProfile = { name: 'h', units: [{ id: 'dmar0', vendor: 'vtd', registers: { aw: 0, pages: [] } }], devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
  it.each(['intel-iommu,caching-mode=on,aw-bits=39', 'virtio-iommu-pci,granule=4k', 'amd-iommu,dma-remap=on'])('%s refuses the device', (viommu) => {
    const p = plan({ profiles: [host], policy: 'strict', vendors, viommu });
    expect(p.devices[0].mode).toBe('refused');
    expect(p.devices[0].reasons[0]).toBe('dmar0: no stage for kernel-managed DMA (no IOVA width in its registers), so no IOVA space to back the guest\'s');
  });
});

describe('nothing to plan is an error', () => {
  it('a profile with zero units', () => {
    expect(() => plan({ profiles: [noDevices('empty', [])], policy: 'host', vendors })).toThrow(new PlanError('"empty" has no IOMMU unit: there is nothing to back a vIOMMU with (probe the host again with the IOMMU enabled, or drop the profile)'));
  });
  it('an empty device list', () => {
    const host: HostProfile = { name: 'h', units: [vtdUnit('dmar0')], devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
    expect(() => plan({ profiles: [host], policy: 'host', vendors, devices: [] })).toThrow(/^no device named: --devices needs at least one PCI address/);
  });
});

describe('the whole QEMU command line', () => {
  const many = (n: number): HostProfile => ({
    name: 'big',
    units: [vtdUnit('dmar0')],
    devices: Array.from({ length: n }, (_, i) => ({ bdf: `0000:${(0x10 + Math.floor(i / 32)).toString(16).padStart(2, '0')}:${(i % 32).toString(16).padStart(2, '0')}.0`, unit: 'dmar0' })),
  });

  it('puts each device behind its own root port, eight per slot, never more than pcie.0 has', () => {
    const p = plan({ profiles: [many(20)], policy: 'strict', vendors, viommu: 'intel-iommu,caching-mode=on,aw-bits=48' });
    const ports = p.qemuArgs.filter((a) => a.startsWith('pcie-root-port,'));
    expect(ports).toHaveLength(20);
    expect(ports[0]).toBe('pcie-root-port,id=rp1,bus=pcie.0,addr=0x2.0x0,chassis=1,multifunction=on');
    expect(ports[8]).toBe('pcie-root-port,id=rp9,bus=pcie.0,addr=0x3.0x0,chassis=9,multifunction=on');
    expect(ports[19]).toBe('pcie-root-port,id=rp20,bus=pcie.0,addr=0x4.0x3,chassis=20');
    expect(p.qemuArgs.slice(0, 2)).toEqual(['-machine', 'q35,accel=kvm']);
    expect(p.ok).toBe(true);
  });

  it('refuses a plan whose devices do not fit one PCI domain', () => {
    const p = plan({ profiles: [many(300)], policy: 'strict', vendors, viommu: 'intel-iommu,caching-mode=on,aw-bits=48' });
    expect(p.ok).toBe(false);
    expect(p.errors).toEqual([
      'pcie.0 has 29 free slots of 8 functions (232 root ports); 300 devices need one root port each',
    ]);
    expect(p.qemuArgs.filter((a) => a.startsWith('vfio-pci,'))).toHaveLength(232);
  });

  it('libvirt: <hostdev>s, and what libvirt cannot say as <qemu:override>', () => {
    const host: HostProfile = { name: 'h', units: [vtdUnit('dmar0')], devices: [{ bdf: '0000:6a:01.0', unit: 'dmar0' }] };
    const p = plan({ profiles: [host], policy: 'strict', vendors, viommu: 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48' });
    expect(p.libvirt).toContain("<driver aw_bits='48'/>");
    expect(p.libvirt).toContain("<qemu:device alias='iommu0'>");
    expect(p.libvirt).toContain("<qemu:property name='x-scalable-mode' type='bool' value='true'/>");
    expect(p.libvirt).toContain("<qemu:property name='x-flts' type='bool' value='true'/>");
    expect(p.libvirt).toContain("<driver name='vfio' iommufd='yes'/>");
    expect(p.libvirt).toContain("<source><address domain='0x0000' bus='0x6a' slot='0x01' function='0x0'/></source>");
  });
});

describe('VT-d plans say what the guest sees of PRI, PASID and ATS', () => {
  const host: HostProfile = { name: 'h', units: [vtdUnit('dmar0')], devices: [{ bdf: '0000:6a:01.0', unit: 'dmar0', ats: true, pri: true, pasidBits: 20 }] };
  it('nested with x-pasid-mode', () => {
    const p = plan({ profiles: [host], policy: 'strict', vendors, viommu: 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48,x-pasid-mode=on' });
    expect(p.devices[0].reasons).toContain(
      'device has ATS, PASID (20 bits), PRI: the guest sees PASID; not ATS, PRI (device-iotlb=off hides ATS; intel-iommu has no page-request (PRS) emulation for assigned devices)',
    );
  });
  it('shadowed', () => {
    const p = plan({ profiles: [host], policy: 'strict', vendors, viommu: 'intel-iommu,caching-mode=on,aw-bits=48,device-iotlb=on' });
    expect(p.devices[0].reasons).toContain(
      'device has ATS, PASID (20 bits), PRI: the guest sees ATS; not PASID, PRI (a shadowed device has no nested first stage, which PASID and PRI need (x-flts=on nesting))',
    );
  });
});
