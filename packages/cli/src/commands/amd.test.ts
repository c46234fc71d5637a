import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, run } from '../__tests__/run.js';

interface ProbedJson {
  profile: { units: Array<{ id: string; vendor: string; registers: Record<string, string> }>; devices: Array<{ bdf: string; unit: string }> };
  units: Array<{ id: string; hwId: string }>;
  counts: { lines: number; recognized: number; rejected: number };
  warnings: string[];
}

describe('AMD hosts in the CLI', () => {
  it('probe: an EPYC log of the 5.x per-IOMMU form gives one unit per "Found IOMMU", each device behind its root complex', async () => {
    const r = await run(['probe', join(FIXTURES, 'dmesg-amd-epyc.txt'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as ProbedJson;
    expect(out.profile.units.map((u) => `${u.id}@${u.registers.pciAddress}`)).toEqual(['ivhd0@0000:c0:00.2', 'ivhd1@0000:80:00.2', 'ivhd2@0000:40:00.2', 'ivhd3@0000:00:00.2']);
    expect(out.profile.units.every((u) => u.vendor === 'amd-vi' && u.registers.efr === '0x841f77e022094ace')).toBe(true);
    expect(out.units[0].hwId).toMatch(/^AMD-Vi IOMMU v2, v1 6-level 64-bit/);
    expect(out.profile.devices.map((d) => `${d.bdf}>${d.unit}`)).toEqual(['0000:c0:07.0>ivhd0', '0000:c1:00.0>ivhd0', '0000:81:00.0>ivhd1', '0000:41:00.0>ivhd2', '0000:01:00.0>ivhd3']);
    expect(out.counts).toMatchObject({ lines: 17, recognized: 15, rejected: 0 });
  });

  it('probe: a client part in the split pr_cont form and in the 6.x form with EFR2', async () => {
    const split = JSON.parse((await run(['probe', join(FIXTURES, 'dmesg-amd-client.txt'), '--json'])).stdout) as ProbedJson;
    expect(split.profile.units).toEqual([{ id: 'ivhd0', vendor: 'amd-vi', registers: { pciAddress: '0000:00:00.2', capPtr: '0x40', efr: '0x206d73ef22254ade' } }]);
    expect(split.profile.devices).toHaveLength(2);
    expect(split.counts.recognized).toBe(8);
    const six = JSON.parse((await run(['probe', join(FIXTURES, 'dmesg-amd-6x.txt'), '--json'])).stdout) as ProbedJson;
    expect(six.profile.units).toEqual([{ id: 'ivhd0', vendor: 'amd-vi', registers: { efr: '0x246577efa2254afa', efr2: '0x0' } }]);
    expect(six.counts).toMatchObject({ lines: 5, recognized: 5, rejected: 0 });
  });

  it('probe: the IVRS alias entries an amd_iommu_dump boot prints become the unit\'s ivrsAliases', async () => {
    const log = [
      'AMD-Vi: Extended features (0x246577efa2254afa, 0x0): PPR NX GT [5] IA GA PC GA_vAPIC',
      // init.c DUMP_printk after the IVRS debug clean-up (tabs as printed), then the older segment form.
      'AMD-Vi:   DEV_ALIAS\t\t\tdevid: 0000:01:00.0 flags: 0x0 devid_to: 00:14.4',
      'AMD-Vi: AMD-Vi:   DEV_ALIAS_RANGE\t\t devid: 0000:05:00.0 flags: 00 devid_to: 0000:04:00.0',
      'AMD-Vi: AMD-Vi:   DEV_RANGE_END\t\t devid: 0000:05:1f.7',
      'pci 0000:05:03.0: Adding to iommu group 9',
    ].join('\n');
    const out = JSON.parse((await run(['probe', '-', '--json'], { stdin: `${log}\n` })).stdout) as ProbedJson & { profile: { units: Array<{ registers: Record<string, unknown> }> } };
    expect(out.profile.units).toHaveLength(1);
    expect(out.profile.units[0].registers['ivrsAliases']).toEqual([
      { device: '0000:01:00.0', alias: '0000:00:14.4' },
      { first: '0000:05:00.0', last: '0000:05:1f.7', alias: '0000:04:00.0' },
    ]);
    expect(out.counts).toMatchObject({ lines: 5, recognized: 5, rejected: 0 });
  });

  it('probe: a features line whose names contradict its EFR is rejected with the reason', async () => {
    const r = await run(['probe', '-', '--json'], { stdin: 'AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR X2APIC NX GT IA PC GA_vAPIC\n' });
    const out = JSON.parse(r.stdout) as ProbedJson & { rejected: Array<{ reason: string }> };
    expect(out.rejected[0].reason).toMatch(/amd-vi: the line names X2APIC but EFR bit 2 is clear/);
  });

  it('probe --sysfs: /sys/class/iommu/ivhdN/amd-iommu/features ("EFR:EFR2") gives the units', async () => {
    const r = await run(['probe', '--sysfs', join(FIXTURES, 'sysfs-amd'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as ProbedJson;
    expect(out.profile.units).toEqual([
      { id: 'ivhd0', vendor: 'amd-vi', registers: { efr: '0x841f77e022094ace', efr2: '0x0' } },
      { id: 'ivhd1', vendor: 'amd-vi', registers: { efr: '0x841f77e022094ace', efr2: '0x0' } },
    ]);
    expect(out.profile.devices.map((d) => `${d.bdf}>${d.unit}`)).toEqual(['0000:00:02.0>ivhd0', '0000:00:14.0>ivhd1', '0000:6a:01.0>ivhd1']);
  });

  it('decode amd-vi: EFR, an event entry and a kernel line as JSON with the specification names', async () => {
    const efr = JSON.parse((await run(['decode', 'amd-vi', 'efr=0x841f77e022094ace', '--json'])).stdout);
    expect(Object.keys(efr)).toEqual(['vendor', 'kind', 'fields', 'summary', 'linux']);
    expect(efr.fields).toMatchObject({ XTSup: 1, GTSup: 0, HATS: 2, HDSup: 1, SNPSup: 1 });
    const ev = JSON.parse((await run(['decode', 'amd-vi', '0x2050000e00000100', '0xfffd0000', '--json'])).stdout);
    expect(ev).toMatchObject({ vendor: 'amd-vi', kind: 'event', fields: { EventCode: 2, PR: 1, PE: 1, RW: 0, DomainID: 14 } });
    const line = await run(['decode', 'amd-vi', 'nvme 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xfffd0000 flags=0x0020]']);
    expect(line.code).toBe(0);
    expect(line.stdout).toContain('DMA write from 01:00.0 (domain 0xe) at 0xfffd0000: page not present');
  });

  it('plan: an EPYC host gets amd-iommu with its real properties, QEMU and libvirt', async () => {
    const r = await run(['plan', 'amd-vi-dell-poweredge-r6515-epyc-7513']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-device amd-iommu,xtsup=on,dma-remap=on,intremap=on,device-iotlb=on');
    expect(r.stdout).toContain("<iommu model='amd'>");
    expect(r.stdout).toContain("<driver intremap='on' xtsup='on' iotlb='on'/>");
    // A client without XTSup: no xtsup.
    const client = await run(['plan', 'amd-vi-ryzen-5000-desktop']);
    expect(client.stdout).toContain('-device amd-iommu,dma-remap=on,intremap=on,device-iotlb=on');
  });

  it('plan: a fleet of an Intel and an AMD host gets a migration-safe vIOMMU both can back', async () => {
    const r = await run(['plan', 'vtd-dell-poweredge-r770-two-socket-xeon-6515p', 'amd-vi-dell-poweredge-r6515-epyc-7513', '--policy', 'baseline', '--json']);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.viommu.model).toBe('intel-iommu');
    expect(p.devices.every((d: { mode: string }) => d.mode !== 'unsupported')).toBe(true);
  });
});
