/** `ioasid probe --sysfs` and `ioasid capture` on captured sysfs trees (test/fixtures/sysfs-*). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readArchive } from '../host-files.js';
import { FIXTURES, run } from '../__tests__/run.js';

const SPR = join(FIXTURES, 'sysfs-spr');
const ALTRA = join(FIXTURES, 'sysfs-altra');
const tmp = mkdtempSync(join(tmpdir(), 'ioasid-capture-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ioasid probe --sysfs', () => {
  it('reads VT-d units, their devices, groups, reserved regions and PCI capabilities', async () => {
    const r = await run(['probe', '--sysfs', SPR, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.profile.units).toEqual([
      { id: 'dmar0', vendor: 'vtd', registers: { ver: '0x70', cap: '0xf9ed008cee780c66', ecap: '0x3fef9ea6f0efdf', regBase: '0xfed90000' } },
      { id: 'dmar1', vendor: 'vtd', registers: { ver: '0x70', cap: '0xf9ed008cee780c66', ecap: '0x3fef9ea6f0efdf', regBase: '0xfed91000' } },
    ]);
    expect(out.profile.devices).toEqual([
      {
        bdf: '0000:00:02.0',
        unit: 'dmar0',
        group: 0,
        reservedRegions: [
          { start: '0x7c000000', last: '0x803fffff', type: 'direct' },
          { start: '0xfee00000', last: '0xfeefffff', type: 'msi' },
        ],
      },
      { bdf: '0000:00:14.0', unit: 'dmar1', group: 1, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }] },
      { bdf: '0000:6a:01.0', unit: 'dmar1', group: 2, ats: true, pri: true, pasidBits: 20, pasidExec: true, pasidPriv: true, reservedRegions: [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' }] },
    ]);
    expect(out.warnings).toEqual([
      '1 device(s): config space was readable only up to 64 bytes (not root): ATS, PRI and PASID are unknown and left out; run the probe (or ioasid capture) as root for them',
    ]);
  });

  it('plans from it: the device with an RMRR is noted, the DSA nests', async () => {
    const probe = await run(['probe', '--sysfs', SPR, '--out', join(tmp, 'spr.yaml')]);
    expect(probe.code).toBe(0);
    const p = JSON.parse((await run(['plan', join(tmp, 'spr.yaml'), '--json'])).stdout);
    expect(p.devices.find((d: { bdf: string }) => d.bdf === '0000:6a:01.0').mode).toBe('nested');
    expect(p.devices.find((d: { bdf: string }) => d.bdf === '0000:00:02.0').reasons.some((x: string) => x.includes('direct-mapped region [0x7c000000, 0x803fffff]'))).toBe(true);
  });

  it('builds Arm units from IOMMU_GET_HW_INFO output, one vSMMU per host SMMU', async () => {
    const r = await run(['probe', '--sysfs', ALTRA, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.units.map((u: { id: string; source: string; devices: string[] }) => [u.id, u.source, u.devices])).toEqual([
      ['smmu3.0x0000100000000000', 'hw-info', ['0000:01:00.0']],
      ['smmu3.0x0000140000000000', 'hw-info', ['0004:01:00.0']],
    ]);
    expect(out.profile.units[0].registers).toEqual({ idr: ['0x080d76bb', '0x02739d10', '0x00000000', '0x00000000', '0x00000000', '0x00000075'], iidr: '0x4832043b', aidr: '0x00000001' });
    expect(out.profile.devices[0]).toMatchObject({ bdf: '0000:01:00.0', ats: true, pri: true, pasidBits: 20 });
  });

  it('says what an Arm host lacks without hw-info', async () => {
    const r = await run(['probe', '--sysfs', ALTRA, '--hw-info', join(FIXTURES, 'dmesg-vtd.txt')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('warning: hw-info line 1: expected "iommu_hw_info <bdf> type=<n> capabilities=0x<hex> max_pasid_log2=<n> data=<hex bytes>"');
    expect(r.stdout).toContain('sysfs has no SMMUv3 registers: give IOMMU_GET_HW_INFO output (hw-info.txt, see docs/cli.md)');
  });

  it('refuses a log file and --sysfs together, and a root that is neither a directory nor a capture', async () => {
    expect((await run(['probe', 'x.log', '--sysfs'])).code).toBe(2);
    const r = await run(['probe', '--sysfs', join(FIXTURES, 'dmesg-vtd.txt')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a capture archive: not a tar archive/);
  });
});

describe('ioasid capture', () => {
  it('collects what the probe reads into an archive that probes like the host', async () => {
    const out = join(tmp, 'spr.tar.gz');
    const c = await run(['capture', out, '--root', SPR, '--dmesg', join(FIXTURES, 'dmesg-vtd.txt')]);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^wrote .*spr\.tar\.gz: 2 IOMMU unit\(s\), 3 device\(s\) in groups/);
    const archive = readArchive(new Uint8Array(readFileSync(out)));
    expect(archive.list('sys/class/iommu')?.sort()).toEqual(['dmar0', 'dmar1']);
    expect(archive.readlink('sys/class/iommu/dmar0')).toBe('../../devices/virtual/iommu/dmar0');
    expect(archive.readText('sys/class/iommu/dmar1/intel-iommu/cap')).toBe('f9ed008cee780c66\n');
    expect(archive.readText('MANIFEST.txt')).toMatch(/not captured:\n {2}1 PCI config space\(s\) cut at 64 bytes/);
    expect(archive.readText('dmesg.txt')).toContain('DMAR: dmar0: reg_base_addr cbfe0000');
    const fromDir = JSON.parse((await run(['probe', '--sysfs', SPR, '--json', '--name', 'spr'])).stdout);
    const fromArchive = JSON.parse((await run(['probe', '--sysfs', out, '--json', '--name', 'spr'])).stdout);
    expect(fromArchive.profile).toEqual(fromDir.profile);
  });
});
