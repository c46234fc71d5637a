import { describe, expect, it } from 'vitest';
import type { HostProfile } from '@ioasid/core';
import { checkHotplug, plan } from './plan.js';
import { parseViommu, PlanError } from './models.js';
import { armHost, mixedVtdHost, nestingVtdHost, smmuUnit, vendors, vtdUnit, weakVtdUnit } from './__tests__/test-vendor.js';

const strict = (profiles: HostProfile[], viommu: string, devices?: string[]) => plan({ profiles, policy: 'strict', viommu, vendors, devices });
const dev = (p: ReturnType<typeof plan>, bdf: string) => p.devices.find((d) => d.bdf === bdf)!;

describe('parseViommu', () => {
  it('reads QEMU -device values', () => {
    expect(parseViommu('-device intel-iommu,aw-bits=48,caching-mode=on,intremap=on')).toEqual({
      model: 'intel-iommu',
      properties: { 'aw-bits': 48, 'caching-mode': true, intremap: 'on' },
    });
    expect(parseViommu('driver=virtio-iommu-pci,granule=64K').properties).toEqual({ granule: '64k' });
    expect(parseViommu('arm-smmuv3,accel=on,ats=auto,ssidsize=20').properties).toEqual({ accel: true, ats: 'auto', ssidsize: 20 });
  });

  it("answers unknown properties as QEMU does, listing the model's", () => {
    expect(() => parseViommu('intel-iommu,foo=1')).toThrow(/^Property 'intel-iommu.foo' not found; intel-iommu properties: version, eim, x-buggy-eim, aw-bits, caching-mode/);
    expect(() => parseViommu('arm-smmuv3,pasid=on')).toThrow("Property 'arm-smmuv3.pasid' not found (the vSMMU PASID width is ssidsize=N)");
    expect(() => parseViommu('intel-iommu,caching-mode=maybe')).toThrow("Parameter 'intel-iommu.caching-mode' expects 'on' or 'off', got \"maybe\"");
    expect(() => parseViommu('riscv-iommu')).toThrow(PlanError);
  });
});

describe('strict: intel-iommu', () => {
  it('refuses a device whose unit has a narrower MGAW, with QEMU\'s message', () => {
    const p = strict([mixedVtdHost()], 'intel-iommu,aw-bits=48,caching-mode=on');
    expect(dev(p, '0000:00:02.0').mode).toBe('emulated');
    const weak = dev(p, '0000:00:14.0');
    expect(weak.mode).toBe('refused');
    expect(weak.reasons[0]).toBe('dmar1: MGAW 39 < aw-bits 48 (QEMU: "aw-bits 48 > host aw-bits 39")');
    expect(p.ok).toBe(false);
    expect(p.errors).toEqual([]);
  });

  it('explains SAGAW when it, not MGAW, limits the width', () => {
    const host: HostProfile = { name: 'h', units: [vtdUnit('dmar0', { aw: 39, mgaw: 48 })], devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
    const p = strict([host], 'intel-iommu,aw-bits=48,caching-mode=on');
    expect(p.devices[0].reasons[0]).toMatch(/^dmar0: host aw-bits 39 \(MGAW 48, SAGAW 39\) < aw-bits 48/);
  });

  it('needs caching mode for assigned devices without nesting', () => {
    const p = strict([mixedVtdHost()], 'intel-iommu,aw-bits=39');
    expect(p.errors).toEqual(['QEMU: "We need to set caching-mode=on for intel-iommu to enable device assignment with IOMMU protection"']);
    expect(p.devices.every((d) => d.mode === 'refused')).toBe(true);
    expect(dev(p, '0000:00:02.0').reasons[0]).toMatch(/^caching-mode=off: without nesting QEMU shadows the guest's tables, which needs caching mode \(QEMU: "We need/);
  });

  it('checks the configuration as vtd_decide_config does', () => {
    expect(strict([mixedVtdHost()], 'intel-iommu,x-flts=on,caching-mode=on').errors).toContain('QEMU: "x-flts is only available in scalable mode"');
    expect(strict([mixedVtdHost()], 'intel-iommu,aw-bits=57,caching-mode=on').errors).toEqual(['QEMU: "Supported values for aw-bits are: 39, 48"']);
    expect(strict([mixedVtdHost()], 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=39').errors).toContain('QEMU: "Scalable mode(flts=on): supported value for aw-bits is: 48"');
    expect(strict([mixedVtdHost()], 'intel-iommu,x-pasid-mode=on,caching-mode=on').errors).toEqual(['QEMU: "Need to set scalable mode for PASID"']);
    expect(strict([mixedVtdHost()], 'intel-iommu,x-scalable-mode=on,dma-drain=off,caching-mode=on').errors).toEqual(['QEMU: "Need to set dma_drain for scalable mode"']);
  });

  it('nests with x-flts where the unit can, and explains where it cannot', () => {
    const p = strict([mixedVtdHost()], 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48');
    expect(dev(p, '0000:00:02.0').mode).toBe('nested');
    const weak = dev(p, '0000:00:14.0');
    expect(weak.mode).toBe('refused');
    expect(weak.reasons[0]).toContain('dmar1: MGAW 39 < aw-bits 48');
    expect(weak.reasons[1]).toMatch(/^also: dmar1: no nesting/);
  });

  it('needs the host first-stage 1G pages when fs1gp is on', () => {
    const p = strict([nestingVtdHost()], 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48');
    expect(dev(p, '0000:5c:00.0').mode).toBe('nested');
    expect(dev(p, '0000:ae:00.0').reasons[0]).toContain('QEMU: "First stage 1GB large page is unsupported by host IOMMU"');
    expect(strict([nestingVtdHost()], 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48,fs1gp=off').ok).toBe(true);
  });

  it('refuses intel-iommu on an Arm host', () => {
    const p = strict([armHost()], 'intel-iommu,caching-mode=on');
    expect(p.devices[0].reasons[0]).toMatch(/^smmu0: intel-iommu needs an x86 \(q35\) guest/);
  });
});

describe('strict: arm-smmuv3', () => {
  it('refuses assigned devices without accel: no MAP notifier', () => {
    const p = strict([armHost()], 'arm-smmuv3');
    expect(p.devices[0].mode).toBe('refused');
    expect(p.devices[0].reasons[0]).toContain('QEMU: "device 01.00.0 requires iommu MAP notifier which is not currently supported"');
  });

  it('compares the host ID registers with the vSMMU for accel=on', () => {
    const host: HostProfile = {
      name: 'h',
      units: [
        smmuUnit('s0', { idr: { IDR0: { ST_LEVEL: 0 } } }),
        smmuUnit('s1', { idr: { IDR5: { OAS: 4, GRAN16K: 0 } }, ats: false }),
        smmuUnit('s2', { pasid: 8, ril: false }),
        smmuUnit('s3', { nesting: false }),
      ],
      devices: ['s0', 's1', 's2', 's3'].map((u, i) => ({ bdf: `0000:0${i}:00.0`, unit: u })),
    };
    const p = strict([host], 'arm-smmuv3,accel=on,oas=48,ats=on,ssidsize=16');
    const r = (i: number) => p.devices[i].reasons;
    expect(r(0)[0]).toBe('s0: IDR0.ST_LEVEL 0 (linear stream table), the vSMMU has a 2-level one (QEMU: "Host SMMUv3 Stream Table format mismatch")');
    expect(r(1)[0]).toBe('s1: OAS 44 < oas 48 (QEMU: "Host SMMUv3 supports only 44-bit IPA, but the vSMMU OAS implies 48-bit IPA")');
    expect(r(1)).toContain('also: s1: IDR0.ATS 0 but ats=on (QEMU refuses the ATS mismatch); set ats=off');
    expect(r(1)).toContain('also: s1: IDR5.GRAN16K 0, the vSMMU advertises 4K/16K/64K (QEMU: "Host SMMUv3 doesn\'t support 16K translation granule")');
    expect(r(2)[0]).toBe('s2: IDR1.SSIDSIZE 8 < ssidsize 16 (QEMU refuses the SSIDSIZE mismatch)');
    expect(r(2)[1]).toBe('also: s2: IDR3.RIL 0 but ril=on (QEMU refuses the RIL mismatch); set ril=off');
    expect(r(3)[0]).toMatch(/^s3: no nesting/);
    expect(p.devices.every((d) => d.mode === 'refused')).toBe(true);
  });

  it('creates one vSMMU per host SMMU and resolves auto properties from each', () => {
    const p = strict([armHost()], 'arm-smmuv3,accel=on,ril=auto,ats=auto,ssidsize=auto');
    expect(p.ok).toBe(true);
    expect(p.viommu.instances?.map((i) => [i.id, i.hostUnit, i.properties.ril, i.properties.ssidsize])).toEqual([
      ['smmuv3.1', 'smmu0', true, 20],
      ['smmuv3.2', 'smmu1', false, 16],
    ]);
    expect(p.qemu).toContain(
      '-device pxb-pcie,id=pcie.1,bus_nr=32,bus=pcie.0 -device arm-smmuv3,primary-bus=pcie.1,accel=on,ril=on,ats=on,oas=44,ssidsize=20,id=smmuv3.1 -device pcie-root-port,id=rp1,bus=pcie.1,addr=0x0.0x0,chassis=1 -device vfio-pci,host=0000:01:00.0,bus=rp1,iommufd=iommufd0 -device pxb-pcie,id=pcie.2,bus_nr=34,bus=pcie.0',
    );
    expect(p.qemuArgs.slice(0, 2)).toEqual(['-machine', 'virt,accel=kvm,gic-version=3']);
    expect(p.qemu).toContain('-device vfio-pci,host=0004:01:00.0,bus=rp2,iommufd=iommufd0');
    expect(p.warnings.some((w) => w.startsWith('libvirt: one <iommu> element describes one vSMMU'))).toBe(true);
  });

  it("needs a cold-plugged device for 'auto'", () => {
    const host = { ...armHost(), devices: [] };
    expect(strict([host], 'arm-smmuv3,accel=on,ats=auto').errors).toEqual([
      'QEMU: "arm-smmuv3 accel=on with \'auto\' properties requires at least one cold-plugged VFIO device"',
    ]);
  });
});

describe('strict: virtio-iommu', () => {
  it('intersects page-size masks and raises the granule at cold plug', () => {
    const host: HostProfile = {
      name: 'h',
      units: [smmuUnit('s0'), { id: 's64', vendor: 'smmuv3', registers: { aw: 48, pages: [16, 29] } }],
      devices: [
        { bdf: '0000:01:00.0', unit: 's0', reservedRegions: [{ start: '0x8000000', last: '0x80fffff', type: 'msi' }] },
        { bdf: '0000:02:00.0', unit: 's64' },
      ],
    };
    const p = strict([host], 'virtio-iommu-pci,granule=4k');
    expect(p.devices.map((d) => d.mode)).toEqual(['virtio', 'virtio']);
    expect(p.devices[0].reasons).toContain('reserved [0x8000000, 0x80fffff] (msi) reported to the guest as RESV_MEM regions by the PROBE request');
    expect(p.devices[1].reasons).toContain('s64: smallest host page 64K raises the granule from 4K at cold plug');
    expect(p.viommu.properties.granule).toBe('64k');
    expect(p.frozen.granuleLog2).toBe(16);
  });

  it('refuses a host whose page sizes share nothing with the guest mask', () => {
    const host: HostProfile = { name: 'h', units: [{ id: 'u', vendor: 'vtd', registers: { aw: 48, pages: [12] } }], devices: [{ bdf: '0000:00:02.0', unit: 'u' }] };
    const p = strict([host], 'virtio-iommu-pci,granule=64k');
    expect(p.devices[0].reasons[0]).toContain('QEMU: "virtio-iommu 0000:00:02.0 reports a page size mask 0x1000 incompatible with currently supported mask 0xffffffffffff0000"');
  });
});

describe('strict: amd-iommu', () => {
  it('needs dma-remap for assigned devices', () => {
    const host: HostProfile = { name: 'epyc', units: [{ id: 'AMD-Vi0', vendor: 'amd-vi', registers: { aw: 48 } }], devices: [{ bdf: '0000:41:00.0', unit: 'AMD-Vi0' }] };
    expect(strict([host], 'amd-iommu').devices[0].reasons[0]).toContain('QEMU: "device 41.00.0 requires dma-remap=1"');
    expect(strict([host], 'amd-iommu,dma-remap=on').devices[0].mode).toBe('emulated');
  });
});

describe('host policy', () => {
  it('mixed VT-d: shadows everything rather than refuse the unit without nesting', () => {
    const p = plan({ profiles: [mixedVtdHost()], policy: 'host', vendors });
    expect(p.viommu).toEqual({ model: 'intel-iommu', properties: { 'caching-mode': true, 'aw-bits': 39, intremap: 'on', eim: 'on', 'device-iotlb': true } });
    expect(p.devices.map((d) => d.mode)).toEqual(['emulated', 'emulated']);
    expect(p.ok).toBe(true);
    expect(p.warnings.some((w) => w.startsWith('host policy: the most capable unit is dmar0'))).toBe(true);
    expect(p.warnings.some((w) => w.startsWith('host policy: not intel-iommu with x-flts nesting: it would refuse 1 device(s) (0000:00:14.0: dmar1: MGAW 39 < aw-bits 48'))).toBe(true);
    expect(p.qemu).toBe(
      '-machine q35,accel=kvm,kernel-irqchip=split -object iommufd,id=iommufd0 -device intel-iommu,eim=on,aw-bits=39,caching-mode=on,intremap=on,device-iotlb=on,id=iommu0 -device pcie-root-port,id=rp1,bus=pcie.0,addr=0x2.0x0,chassis=1,multifunction=on -device vfio-pci,host=0000:00:02.0,bus=rp1,iommufd=iommufd0 -device pcie-root-port,id=rp2,bus=pcie.0,addr=0x2.0x1,chassis=2 -device vfio-pci,host=0000:00:14.0,bus=rp2,iommufd=iommufd0',
    );
    expect(p.libvirt).toContain("    <iommu model='intel'>\n      <driver caching_mode='on' aw_bits='39' intremap='on' eim='on' iotlb='on'/>\n    </iommu>");
    expect(p.libvirt).toContain("<features><acpi/><ioapic driver='qemu'/></features>");
    expect(p.libvirt).toContain("<source><address domain='0x0000' bus='0x00' slot='0x14' function='0x0'/></source>");
  });

  it('nests every device when every unit can', () => {
    const p = plan({ profiles: [nestingVtdHost()], policy: 'host', vendors });
    expect(p.viommu.properties).toMatchObject({ 'x-scalable-mode': true, 'x-flts': true, 'aw-bits': 48, fs1gp: false });
    expect(p.devices.map((d) => d.mode)).toEqual(['nested', 'nested']);
    expect(p.warnings.some((w) => w.includes("no attribute for x-scalable-mode=on, x-flts=on, fs1gp=off"))).toBe(true);
  });

  it('only the chosen devices limit the plan', () => {
    const p = plan({ profiles: [mixedVtdHost()], policy: 'host', vendors, devices: ['00:02.0'] });
    expect(p.viommu.properties['x-flts']).toBe(true);
    expect(p.devices).toHaveLength(1);
  });

  it('Arm: one accelerated vSMMU per host SMMU, each copying its SMMU', () => {
    const p = plan({ profiles: [armHost()], policy: 'host', vendors });
    expect(p.viommu.model).toBe('arm-smmuv3');
    expect(p.viommu.instances?.map((i) => i.properties)).toEqual([
      { accel: true, ril: true, ats: true, oas: 48, ssidsize: 20 },
      { accel: true, ril: false, ats: false, oas: 48, ssidsize: 0 },
    ]);
    expect(p.devices.map((d) => [d.mode, d.instance])).toEqual([
      ['nested', 'smmuv3.1'],
      ['nested', 'smmuv3.2'],
    ]);
  });

  it('Arm without nesting falls back to virtio-iommu', () => {
    const host = { ...armHost(), units: [smmuUnit('smmu0', { nesting: false }), smmuUnit('smmu1')] };
    const p = plan({ profiles: [host], policy: 'host', vendors });
    expect(p.viommu.model).toBe('virtio-iommu');
    expect(p.devices.map((d) => d.mode)).toEqual(['virtio', 'virtio']);
    expect(p.warnings.some((w) => w.startsWith('host policy: not arm-smmuv3 accel=on nesting (one vSMMU per host SMMU): it would refuse 1 device(s)'))).toBe(true);
  });

  it('refuses to plan a fleet', () => {
    expect(() => plan({ profiles: [mixedVtdHost(), nestingVtdHost()], policy: 'host', vendors })).toThrow(/use --policy baseline/);
  });
});

describe('baseline policy', () => {
  it('takes the intersection over a fleet', () => {
    const p = plan({ profiles: [nestingVtdHost('a'), mixedVtdHost()], policy: 'baseline', vendors });
    expect(p.hosts).toEqual(['a', 'mixed']);
    expect(p.viommu.model).toBe('intel-iommu');
    expect(p.viommu.properties).toEqual({ 'caching-mode': true, 'aw-bits': 39, intremap: 'on' });
    expect(p.devices).toHaveLength(4);
    expect(p.devices.every((d) => d.mode === 'emulated')).toBe(true);
    expect(p.qemu).toBe('-machine q35,accel=kvm,kernel-irqchip=split -device intel-iommu,aw-bits=39,caching-mode=on,intremap=on,id=iommu0');
    expect(p.warnings).toContain('several hosts: the vfio-pci options are per host and left out of the QEMU line');
  });

  it('nests only when every host can', () => {
    const p = plan({ profiles: [nestingVtdHost('a'), nestingVtdHost('b')], policy: 'baseline', vendors });
    expect(p.viommu.properties['x-flts']).toBe(true);
    expect(p.viommu.properties.fs1gp).toBe(false);
  });

  it('Arm: the same properties for every vSMMU', () => {
    const p = plan({ profiles: [armHost()], policy: 'baseline', vendors });
    expect(p.viommu.properties).toEqual({ accel: true, ril: false, ats: true, oas: 48, ssidsize: 16 });
    expect(p.devices.every((d) => d.mode === 'nested')).toBe(true);
  });

  it('refuses to mix architectures', () => {
    expect(() => plan({ profiles: [armHost(), mixedVtdHost()], policy: 'baseline', vendors })).toThrow(/mix x86 and Arm/);
  });
});

describe('inputs', () => {
  it('names unknown devices and the known ones', () => {
    expect(() => plan({ profiles: [mixedVtdHost()], policy: 'host', vendors, devices: ['0000:09:00.0'] })).toThrow(
      'device 0000:09:00.0 is not in "mixed"; known devices: 0000:00:02.0, 0000:00:14.0',
    );
  });

  it('warns when a group is split', () => {
    const host = mixedVtdHost();
    host.devices.push({ bdf: '0000:00:14.2', unit: 'dmar1', group: 2 });
    const p = plan({ profiles: [host], policy: 'host', vendors, devices: ['0000:00:14.0'] });
    expect(p.warnings).toContain('0000:00:14.0: IOMMU group 2 also holds 0000:00:14.2; VFIO needs the whole group bound to vfio-pci (and attached to the same HWPT)');
  });

  it('strict needs --viommu and the others refuse it', () => {
    expect(() => plan({ profiles: [mixedVtdHost()], policy: 'strict', vendors })).toThrow(/strict policy checks a vIOMMU you name/);
    expect(() => plan({ profiles: [mixedVtdHost()], policy: 'host', vendors, viommu: 'intel-iommu' })).toThrow(/chooses one itself/);
  });
});

describe('checkHotplug', () => {
  it('checks a new device against the frozen intel-iommu', () => {
    const host: HostProfile = { name: 'h', units: [vtdUnit('dmar0'), weakVtdUnit('dmar1')], devices: [{ bdf: '0000:00:02.0', unit: 'dmar0' }] };
    const p = plan({ profiles: [host], policy: 'host', vendors });
    expect(p.viommu.properties['aw-bits']).toBe(48);
    const r = checkHotplug(p, { bdf: '0000:00:14.0', unit: 'dmar1' }, host);
    expect(r.ok).toBe(false);
    expect(r.device.reasons[0]).toBe('dmar1: MGAW 39 < aw-bits 48 (QEMU: "aw-bits 48 > host aw-bits 39")');
  });

  it('needs an existing vSMMU for its host SMMU', () => {
    const host = armHost();
    const p = plan({ profiles: [host], policy: 'host', vendors, devices: ['0000:01:00.0'] });
    const full = { ...host, devices: [...host.devices, { bdf: '0000:01:00.1', unit: 'smmu0' }] };
    expect(checkHotplug(p, '0000:01:00.1', full).device.mode).toBe('nested');
    const r = checkHotplug(p, '0004:01:00.0', host);
    expect(r.device.reasons[0]).toBe('no vSMMU for smmu1: accel=on needs one vSMMU per host SMMU and they are created at boot (a vIOMMU cannot be hot-added)');
  });

  it('virtio-iommu: frozen granule and reserved ranges', () => {
    const host: HostProfile = {
      name: 'h',
      units: [smmuUnit('s0', { nesting: false }), { id: 's64', vendor: 'smmuv3', registers: { aw: 48, pages: [16, 29] } }],
      devices: [{ bdf: '0000:01:00.0', unit: 's0', reservedRegions: [{ start: '0x8000000', last: '0x80fffff', type: 'msi' }] }],
    };
    const p = plan({ profiles: [host], policy: 'host', vendors });
    expect(p.viommu.model).toBe('virtio-iommu');
    const big = checkHotplug(p, { bdf: '0000:02:00.0', unit: 's64' }, host);
    expect(big.device.reasons[0]).toContain('QEMU: "virtio-iommu does not support frozen granule 0x1000"');
    const resv = checkHotplug(p, { bdf: '0000:03:00.0', unit: 's0', reservedRegions: [{ start: '0x9000000', last: '0x90fffff', type: 'reserved' }] }, host);
    expect(resv.device.reasons[0]).toContain('QEMU: "Conflicting host reserved ranges set!"');
    const same = checkHotplug(p, { bdf: '0000:04:00.0', unit: 's0', reservedRegions: [{ start: '0x8000000', last: '0x80fffff', type: 'msi' }] }, host);
    expect(same.ok).toBe(true);
  });
});
