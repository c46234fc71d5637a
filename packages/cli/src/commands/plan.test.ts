import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, run } from '../__tests__/run.js';

const MIXED = join(FIXTURES, 'mixed-host.yaml');

describe('ioasid plan (real VT-d and SMMUv3 plugins)', () => {
  it('host policy on a mixed VT-d host: shadows both units, explains why not nesting', async () => {
    const r = await run(['plan', MIXED]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vIOMMU for "lab mixed host", host policy: intel-iommu$/m);
    expect(r.stdout).toMatch(/^ {2}0000:00:14\.0 {2}dmar1 {2}emulated$/m);
    expect(r.stdout).toContain('-device intel-iommu,eim=on,aw-bits=39,caching-mode=on');
    expect(r.stdout).toContain("<driver caching_mode='on' aw_bits='39'");
    expect(r.stdout).toContain('note: host policy: not intel-iommu with x-flts nesting: it would refuse 1 device(s) (0000:00:14.0: dmar1: MGAW 39 < aw-bits 48');
  });

  it('host policy on a guest whose own IOMMU is virtio-iommu: virtio-iommu again, page mask and reserved regions carried over', async () => {
    const r = await run(['plan', 'virtio-iommu-qemu-q35-guest-over-vt-d-vfio', '--json']);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.viommu).toMatchObject({ model: 'virtio-iommu', properties: { granule: '4k', 'aw-bits': 39 } });
    expect(p.devices.map((d: { mode: string }) => d.mode)).toEqual(['virtio', 'virtio']);
    expect(p.qemu).toContain('-device virtio-iommu-pci,granule=4k,aw-bits=39');
    expect(p.libvirt).toContain("<iommu model='virtio'/>");
    // cloud-hypervisor offers no INPUT_RANGE: a 64-bit input range.
    const ch = JSON.parse((await run(['plan', 'virtio-iommu-cloud-hypervisor-guest', '--json'])).stdout);
    expect(ch.viommu.properties['aw-bits']).toBe(64);
  });

  it('an empty --devices is an error, not every device', async () => {
    const r = await run(['plan', MIXED, '--devices', '']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ioasid: no device named: --devices needs at least one PCI address');
  });

  it("the Ampere preset: a device on the guest's third PCIe root is behind smmuv3.2", async () => {
    const r = await run(['plan', 'smmuv3-ampere-altra', '--devices', '0004:01:00.0', '--json']);
    const p = JSON.parse(r.stdout);
    expect(p.devices[0].instance).toBe('smmuv3.2');
    expect(p.viommu.instances.map((i: { id: string; bus: string; hostUnit: string }) => [i.id, i.bus, i.hostUnit])).toEqual([['smmuv3.2', 'pcie.2', 'smmu1']]);
  });

  it('names the oldest QEMU the plan needs', async () => {
    const r = await run(['plan', MIXED, '--devices', '0000:f2:01.0', '--viommu', 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48']);
    expect(r.stdout).toMatch(/^QEMU: QEMU 10\.2 or newer \(release not confirmed\): x-flts=on with assigned \(iommufd\) devices nested on the host VT-d$/m);
  });

  it('strict: names the first mismatch with QEMU\'s message and exits 1', async () => {
    const r = await run(['plan', MIXED, '--viommu', 'intel-iommu,aw-bits=48,caching-mode=on', '--json']);
    expect(r.code).toBe(1);
    const p = JSON.parse(r.stdout);
    expect(p.policy).toBe('strict');
    expect(p.devices.map((d: { mode: string }) => d.mode)).toEqual(['emulated', 'refused']);
    expect(p.devices[1].reasons[0]).toBe('dmar1: MGAW 39 < aw-bits 48 (QEMU: "aw-bits 48 > host aw-bits 39")');
  });

  it('strict x-flts: nests the Granite Rapids unit', async () => {
    const r = await run(['plan', MIXED, '--devices', '0000:f2:01.0', '--viommu', '-device intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48,x-pasid-mode=on', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).devices[0].mode).toBe('nested');
  });

  it('strict without caching mode: the VM does not start', async () => {
    const r = await run(['plan', MIXED, '--viommu', 'intel-iommu']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error: QEMU: "We need to set caching-mode=on for intel-iommu to enable device assignment with IOMMU protection"');
    expect(r.stdout).toContain('QEMU would refuse this vIOMMU configuration: the VM does not start');
  });

  it('built-in Arm host with several SMMUs: one vSMMU per host SMMU where accel works', async () => {
    const r = await run(['plan', 'arm-multi-smmu', '--viommu', 'arm-smmuv3,accel=on,ril=auto,ats=auto,ssidsize=auto', '--json']);
    const p = JSON.parse(r.stdout);
    expect(p.viommu.model).toBe('arm-smmuv3');
    expect(p.viommu.instances.length).toBeGreaterThanOrEqual(1);
    for (const d of p.devices) if (d.mode === 'refused') expect(d.reasons[0]).toMatch(/QEMU|no nesting/);
    expect(r.code).toBe(p.ok ? 0 : 1);
  });

  it('baseline over two built-in hosts is migration-safe and explicit', async () => {
    const r = await run(['plan', 'granite', 'mixed-vtd', '--json']);
    const p = JSON.parse(r.stdout);
    expect(p.policy).toBe('baseline');
    expect(p.hosts).toHaveLength(2);
    expect(p.viommu.properties['aw-bits']).toBe(39);
    expect(p.warnings.some((w: string) => w.startsWith('baseline policy: only what all'))).toBe(true);
  });

  it('reports every problem of a malformed profile with its line (exit 1)', async () => {
    const r = await run(['plan', join(FIXTURES, 'malformed-profile.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/malformed-profile\.yaml:11:10: devices\[0\]\.bdf: expected a PCI address/);
    expect(r.stderr).toMatch(/malformed-profile\.yaml:15:16: devices\[1\]\.pasidBits: expected the PASID width in bits, 0 to 20, got number 32/);
    expect(r.stderr).toContain('hint: fix the lines above');
  });

  it('reports vendor register errors and unknown vendors once the shape is right', async () => {
    const text = 'name: x\nunits:\n  - { id: dmar0, vendor: vtd, registers: { ver: "0x70", cap: "0x1" } }\n  - { id: s, vendor: riscv, registers: {} }\n';
    const r = await run(['plan', '-'], { stdin: text });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/<stdin>:3:\d+: units\[0\]\.registers: .*ecap/);
    expect(r.stderr).toContain('units[1].vendor: unknown vendor "riscv"; registered vendors: vtd, smmuv3');
  });

  it('bad usage exits 2 and says what to do', async () => {
    const policy = await run(['plan', MIXED, '--policy', 'fastest']);
    expect(policy.code).toBe(2);
    expect(policy.stderr).toContain("error: option '-p, --policy <policy>' argument 'fastest' is invalid. Allowed choices are strict, host, baseline.");
    const viommu = await run(['plan', MIXED, '--viommu', 'intel-iommu,awbits=48']);
    expect(viommu.code).toBe(2);
    expect(viommu.stderr).toContain("ioasid: Property 'intel-iommu.awbits' not found");
    expect(viommu.stderr).toContain('hint: see ioasid plan --help');
    const dev = await run(['plan', MIXED, '--devices', '0000:99:00.0']);
    expect(dev.code).toBe(2);
    expect(dev.stderr).toContain('device 0000:99:00.0 is not in "lab mixed host"; known devices: 0000:f2:01.0, 0000:00:14.0');
    const name = await run(['plan', 'no-such-host']);
    expect(name.code).toBe(1);
    expect(name.stderr).toContain('hint: list the built-in profiles with: ioasid profiles');
    const ambiguous = await run(['plan', 'qemu']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/"qemu" matches several built-in profiles/);
  });

  it('colours only a TTY without NO_COLOR', async () => {
    expect((await run(['plan', MIXED], { tty: true })).stdout).toContain('\u001b[');
    expect((await run(['plan', MIXED], { tty: true, env: { NO_COLOR: '1' } })).stdout).not.toContain('\u001b[');
  });
});

describe('ioasid plan --hotplug <bdf> --against plan.json', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ioasid-hotplug-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('checks a device added to a running VM against the frozen vIOMMU', async () => {
    const planned = await run(['plan', MIXED, '--devices', '0000:f2:01.0', '--viommu', 'intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48', '--json']);
    const file = join(tmp, 'plan.json');
    writeFileSync(file, planned.stdout);
    const weak = await run(['plan', MIXED, '--hotplug', '0000:00:14.0', '--against', file]);
    expect(weak.code).toBe(1);
    expect(weak.stdout).toMatch(/^hot plug 0000:00:14\.0 \(dmar1\) into the running intel-iommu: refused$/m);
    expect(weak.stdout).toContain('dmar1: MGAW 39 < aw-bits 48');
    const ok = JSON.parse((await run(['plan', MIXED, '--hotplug', '0000:f2:01.0', '--against', file, '--json'])).stdout);
    expect(ok.ok).toBe(true);
    expect(ok.device.mode).toBe('nested');
  });

  it('needs --against, one profile, and a plan file', async () => {
    expect((await run(['plan', MIXED, '--hotplug', '0000:00:14.0'])).code).toBe(2);
    const notPlan = join(tmp, 'x.json');
    writeFileSync(notPlan, '{"a":1}');
    const r = await run(['plan', MIXED, '--hotplug', '0000:00:14.0', '--against', notPlan]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a plan');
  });
});
