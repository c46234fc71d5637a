import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, run } from '../__tests__/run.js';

describe('ioasid probe (real VT-d and SMMUv3 plugins)', () => {
  it('reads a VT-d boot log into a profile', async () => {
    const r = await run(['probe', join(FIXTURES, 'dmesg-vtd.txt'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.profile.units.map((u: { id: string; vendor: string }) => `${u.vendor}:${u.id}`)).toEqual(['vtd:dmar0', 'vtd:dmar1']);
    expect(out.profile.units[0].registers).toMatchObject({ cap: expect.stringMatching(/^0xf9ed008cee780c66$/i), ecap: expect.stringMatching(/^0x3fef9ea6f0efdf$/i) });
    expect(out.units[0].hwId).toMatch(/^Intel VT-d 7\.0, scalable mode/);
    expect(out.counts).toMatchObject({ lines: 22, recognized: 9, rejected: 0 });
    expect(out.warnings.at(-1)).toMatch(/^3 device\(s\) in IOMMU groups/);
  });

  it('reads a guest\'s virtio-iommu boot lines into a profile the planner plans with virtio-iommu', async () => {
    const r = await run(['probe', join(FIXTURES, 'dmesg-virtio-iommu.txt'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.profile.units).toEqual([
      { id: 'virtio0', vendor: 'virtio-iommu', registers: { features: '0x100000005', input_start: '0x0', input_end: '0x7fffffffff', page_size_mask: '0x40201000' } },
    ]);
    expect(out.profile.devices.map((d: { bdf: string }) => d.bdf)).toEqual(['0000:00:03.0', '0000:00:04.0']);
    const dir = await mkdtemp(join(tmpdir(), 'ioasid-virtio-'));
    const file = join(dir, 'guest.json');
    expect((await run(['probe', join(FIXTURES, 'dmesg-virtio-iommu.txt'), '--out', file])).code).toBe(0);
    const p = JSON.parse((await run(['plan', file, '--json'])).stdout);
    expect(p.viommu).toMatchObject({ model: 'virtio-iommu', properties: { 'aw-bits': 39 } });
  });

  it('prints a table for people and keeps the other lines for --verbose', async () => {
    const r = await run(['probe', join(FIXTURES, 'dmesg-vtd.txt'), '--verbose']);
    expect(r.stdout).toMatch(/^ {2}UNIT {3}VENDOR {2}LINE {2}HW ID$/m);
    expect(r.stdout).toMatch(/^ {2}dmar1 {2}vtd {5}10 {4}Intel VT-d 7\.0/m);
    expect(r.stdout).toContain('13 line(s) with nothing for a vendor:');
    expect(r.stdout).toContain('    1: [    0.000000] Linux version 6.12.0');
    expect(r.stdout).not.toContain('\u001b[');
  });

  it('reads SMMUv3 register dumps, which win over the probe lines of the same SMMU', async () => {
    const r = await run(['probe', join(FIXTURES, 'dmesg-smmuv3.txt'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.profile.units.map((u: { id: string }) => u.id)).toEqual(['arm-smmu-v3.0.auto', 'arm-smmu-v3.1.auto']);
    expect(out.rejected).toEqual([]);
    expect(out.units[0].hwId).not.toContain('unknown');
  });

  it('builds Arm units from what Linux prints, and plans say which conclusions rest on the unknown fields', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ioasid-probe-'));
    const file = join(dir, 'altra.json');
    const r = await run(['probe', join(FIXTURES, 'dmesg-altra-5.4.txt'), '--out', file, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.profile.units[0]).toEqual({
      id: 'arm-smmu-v3.0.auto',
      vendor: 'smmuv3',
      registers: {
        options: '0x0',
        ias: 48,
        oas: 48,
        features: '0x00001fff',
        cmdqEntries: 262144,
        evtqEntries: 131072,
        priqEntries: 262144,
        unknown: ['IDR0.ASID16', 'IDR0.VMID16', 'IDR1.SIDSIZE', 'IDR1.SSIDSIZE', 'IDR5.GRAN4K', 'IDR5.GRAN16K', 'IDR5.GRAN64K', 'IDR5.STALL_MAX', 'IIDR', 'AIDR', 'IDR3.BBML'],
      },
    });
    // Two SMMUs: the log does not place the devices; say where one sits, as readlink …/iommu would.
    await writeFile(file, JSON.stringify({ ...out.profile, devices: [{ bdf: '0000:01:00.0', unit: 'arm-smmu-v3.0.auto' }] }));
    const p = JSON.parse((await run(['plan', file, '--viommu', 'arm-smmuv3,accel=on,ril=off', '--json'])).stdout);
    expect(p.devices[0].mode).toBe('nested');
    expect(p.devices[0].reasons).toContain(
      'arm-smmu-v3.0.auto: IDR1.SSIDSIZE is unknown (Linux does not print it): the ssidsize=0 check is assumed to pass; IOMMU_GET_HW_INFO output (ioasid probe --sysfs --hw-info) settles it',
    );
  });

  it('reports the truncated line of a cut capture and still writes what it found', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ioasid-probe-'));
    const out = join(dir, 'host.yaml');
    const r = await run(['probe', join(FIXTURES, 'dmesg-truncated.txt'), '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 line(s) looked like IOMMU lines but could not be read:');
    expect(r.stdout).toMatch(/line 5: vtd: .*cap/);
    expect(r.stdout).toContain(`wrote ${out}; next: ioasid plan ${out}`);
    const text = await readFile(out, 'utf8');
    expect(text).toContain('name: dmesg-truncated');
    const planned = await run(['plan', out, '--json']);
    expect(planned.code).toBe(0);
    expect(JSON.parse(planned.stdout).viommu.model).toBe('intel-iommu');
  });

  it('reads standard input with -', async () => {
    const log = await readFile(join(FIXTURES, 'dmesg-vtd.txt'), 'utf8');
    const r = await run(['probe', '-', '--json'], { stdin: log });
    expect(JSON.parse(r.stdout).profile.name).toBe('probed host');
  });

  it('fails (1) with what to do when there is no IOMMU in the log', async () => {
    const r = await run(['probe', '-'], { stdin: 'Linux version 6.8\nhello\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ioasid: no IOMMU unit found in standard input');
    expect(r.stderr).toContain('hint: give the whole boot log');
  });

  it('fails (1) on a missing file and (2) on a missing argument', async () => {
    const missing = await run(['probe', join(FIXTURES, 'nope.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*nope\.txt: no such file/);
    const usage = await run(['probe']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('ioasid: give a log file (or - for standard input), or --sysfs [root]');
  });

  it('finds a RISC-V IOMMU by its probe line and says it cannot decode it: Linux prints no capabilities', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ioasid-riscv-'));
    const file = join(dir, 'dmesg.txt');
    await writeFile(file, '[    0.412345] riscv,iommu 3010000.iommu: using wire-signaled interrupts\n');
    const r = await run(['probe', file, '--json']);
    const out = JSON.parse(r.stdout);
    expect(out.units).toEqual([expect.objectContaining({ id: 'riscv-iommu@3010000.iommu', vendor: 'riscv-iommu', registers: { fctl: '0x2' } })]);
    expect(out.units[0].error).toMatch(/^capabilities: expected a 64-bit number/);
    expect(out.profile.units).toEqual([]);
  });
});
