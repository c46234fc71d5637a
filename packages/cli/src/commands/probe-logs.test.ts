/** Real boot-log shapes the probe must read (issue 15 regressions), through the real VT-d and SMMUv3 plugins. */
import { describe, expect, it } from 'vitest';
import { plugin as smmuv3 } from '@ioasid/smmuv3';
import { plugin as vtd } from '@ioasid/vtd';
import { run } from '../__tests__/run.js';

/** The plugins the CLI shipped before AMD-Vi had one. */
const intelAndArm = () => [vtd, smmuv3];
const probe = async (log: string) => JSON.parse((await run(['probe', '-', '--json'], { stdin: log, plugins: intelAndArm })).stdout);

const ADL_DMAR0 = 'DMAR: dmar0: reg_base_addr fed90000 ver 4:0 cap 1c0000c40660462 ecap 29a00f0505e';
const ADL_DMAR1 = 'DMAR: dmar1: reg_base_addr fed91000 ver 5:0 cap d2008c40660462 ecap f050da';

describe('ioasid probe on real log shapes', () => {
  it('warns when the log stops after a DRHD line with no dmar line', async () => {
    const r = await probe(['DMAR: Host address width 39', 'DMAR: DRHD base: 0x000000fed90000 flags: 0x0', ADL_DMAR0, 'DMAR: DRHD base: 0x000000fed91000 flags: 0x1'].join('\n'));
    expect(r.profile.units.map((u: { id: string }) => u.id)).toEqual(['dmar0']);
    expect(r.warnings).toContain(
      'DRHD base 0xfed91000 (line 4, INCLUDE_ALL) has no "dmar%d: reg_base_addr fed91000 …" line: the log is cut short (or the kernel ignored that DRHD); its unit, and the devices behind it, are missing from the profile',
    );
  });

  it.each([
    ['leading blanks', `    ${ADL_DMAR0}`],
    ['a tab', `\t${ADL_DMAR0}`],
    ['a console line counter', ` 000: ${ADL_DMAR0}`],
    ['a printk level', `<6>${ADL_DMAR0}`],
    ['syslog', `Nov 25 12:00:00 adl kernel: ${ADL_DMAR0}`],
    ['journalctl -o short-precise', `Nov 25 12:00:00.123456 adl kernel: ${ADL_DMAR0}`],
    ['journalctl -o short-iso', `2026-11-25T12:00:00+0100 adl kernel: ${ADL_DMAR0}`],
    ['journalctl -o short-unix', `1732536000.123456 adl kernel: ${ADL_DMAR0}`],
    ['journalctl -o short-monotonic', `[    2.534421] adl kernel: ${ADL_DMAR0}`],
    ['/dev/kmsg', `6,339,2534421,-;${ADL_DMAR0}`],
    ['syslog with a level and a timestamp', `Nov 25 12:00:00 adl kernel: <6>[    2.534421] ${ADL_DMAR0}`],
  ])('reads a line with %s', async (_what, line) => {
    const r = await probe(`${line}\n`);
    expect(r.profile.units).toEqual([{ id: 'dmar0', vendor: 'vtd', registers: { ver: '0x40', cap: '0x1c0000c40660462', ecap: '0x29a00f0505e', regBase: '0xfed90000' } }]);
  });

  it('reads RMRR lines as direct-mapped reserved regions of their devices', async () => {
    const r = await probe(
      [
        'DMAR: DRHD base: 0x000000fed91000 flags: 0x1',
        ADL_DMAR1,
        'DMAR: RMRR base: 0x0000007c000000 end: 0x000000803fffff',
        'DMAR: RMRR base: 0x0000006e000000 end: 0x0000006e01ffff',
        'DMAR: Setting identity map for device 0000:00:02.0 [0x7c000000 - 0x803fffff]',
        'pci 0000:00:02.0: Adding to iommu group 0',
      ].join('\n'),
    );
    expect(r.profile.devices).toEqual([{ bdf: '0000:00:02.0', unit: 'dmar1', group: 0, reservedRegions: [{ start: '0x7c000000', last: '0x803fffff', type: 'direct' }] }]);
    expect(r.warnings.some((w: string) => w.startsWith('RMRR [0x6e000000, 0x6e01ffff] (line 4): the log does not say which devices it belongs to'))).toBe(true);
    expect(r.counts.recognized).toBe(6);
  });

  it('places devices on the INCLUDE_ALL unit when it is the only DRHD, and names it otherwise', async () => {
    const r = await probe(['DMAR: DRHD base: 0x000000fed90000 flags: 0x0', ADL_DMAR0, 'DMAR: DRHD base: 0x000000fed91000 flags: 0x1', ADL_DMAR1, 'pci 0000:00:14.0: Adding to iommu group 3'].join('\n'));
    expect(r.profile.devices).toEqual([]);
    expect(r.warnings).toContain(
      'dmar1 is the INCLUDE_ALL unit (line 3): it owns every device outside the device scopes of dmar0, which the kernel does not print; ioasid probe --sysfs reads the placement from /sys/class/iommu/*/devices',
    );
  });

  it('names an AMD log as AMD, and the AMD kernel parameter', async () => {
    const log = ['smpboot: CPU0: AMD EPYC 9654 96-Core Processor (family: 0x19, model: 0x11, stepping: 0x1)', 'AMD-Vi: Using global IVHD EFR:0x246577efa2254afa, EFR2:0x0', 'pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40'].join('\n');
    const r = await run(['probe', '-'], { stdin: log, plugins: intelAndArm });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('warning: this is an AMD-Vi log (line 2: "AMD-Vi: Using global IVHD EFR:0x246577efa2254afa, EFR2:0x0"), but no loaded vendor plugin reads AMD-Vi units (loaded: vtd, smmuv3)');
    expect(r.stdout).not.toContain('no IOMMU unit found: capture');
    expect(r.stderr).toContain('AMD-Vi: amd_iommu=on');
    expect(r.stderr).not.toContain('intel_iommu');
  });

  it('names the Arm kernel parameter on an Arm log without SMMU lines', async () => {
    const r = await run(['probe', '-'], { stdin: 'Booting Linux on physical CPU 0x0000120000 [0x413fd0c1]\nACPI: IORT: SMMU-v3[3fff0000] Mapped to Proximity domain 0\n', plugins: intelAndArm });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Arm SMMUv3: iommu.passthrough=0');
    expect(r.stderr).not.toContain('intel_iommu');
  });
});
