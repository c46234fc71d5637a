import { describe, expect, it } from 'vitest';
import { IOMMU_VENDOR, type IommuPlugin, type IommuDecoder, type IommuVendor } from '@ioasid/core/driver';
import { run } from '../__tests__/run.js';

/** A vendor that only the decode command sees (it builds no unit). */
function toyVendor(id: string): Pick<IommuVendor, 'id' | 'name' | 'decodeRegisters' | 'createUnit'> {
  return {
    id,
    name: `${id} IOMMU`,
    decodeRegisters: () => ({ ok: false, error: 'no registers' }),
    createUnit: () => {
      throw new Error('unused');
    },
  };
}

describe('ioasid decode', () => {
  it('prints DecodeOutput JSON with the specification\'s field names (VT-d CAP)', async () => {
    const r = await run(['decode', 'vtd', '0xd2008c40660462', '--kind', 'cap', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(Object.keys(d)).toEqual(['vendor', 'kind', 'fields', 'summary', 'linux']);
    expect(d.vendor).toBe('vtd');
    expect(d.fields).toHaveProperty('MGAW');
    expect(d.fields).toHaveProperty('SAGAW');
  });

  it('decode virtio-iommu: a MAP request, a fault record and the driver\'s fault line', async () => {
    const map = await run(['decode', 'virtio-iommu', '03 00 00 00 01 00 00 00 00 10 00 00 00 00 00 00 ff 1f 00 00 00 00 00 00 00 a0 00 00 00 00 00 00 01 00 00 00']);
    expect(map.code).toBe(0);
    expect(map.stdout).toMatch(/^virtio-iommu request MAP: MAP domain 1: IOVA 0x1000-0x1fff \(4096 bytes\) -> 0xa000 READ$/m);
    const fault = await run(['decode', 'virtio-iommu', '020000000201000010000000000000000050341200000000', '--kind', 'fault', '--json']);
    expect(JSON.parse(fault.stdout)).toMatchObject({ kind: 'fault', fields: { reason: 2, endpoint: 16, address: '0x12345000' }, linux: 'page fault from EP 16 at 0x12345000 [W]' });
    const line = await run(['decode', 'virtio-iommu', 'virtio_iommu', 'virtio0:', 'domain', 'fault', 'from', 'EP', '8']);
    expect(line.stdout).toContain('DOMAIN fault from endpoint 8');
  });

  it('decode riscv-iommu: the QEMU capabilities, a fault record and the driver\'s fault line', async () => {
    const cap = await run(['decode', 'riscv-iommu', '0x78c2cf4f10', '--json']);
    expect(cap.code).toBe(0);
    expect(JSON.parse(cap.stdout)).toMatchObject({ vendor: 'riscv-iommu', kind: 'capabilities', fields: { PAS: 56, Sv57: 1, Sv57x4: 1, ATS: 1, IGS: '0 (MSI)' } });
    const rec = await run(['decode', 'riscv-iommu', '0d000000081000000000000000000000004000000000000000000000000000000', '--kind', 'fault']);
    expect(rec.code).toBe(1);
    const fault = await run(['decode', 'riscv-iommu', '0d00000008100000000000000000000000400000000000000000000000000000', '--json']);
    expect(JSON.parse(fault.stdout)).toMatchObject({ kind: 'fault', linux: 'Fault 13 devid: 0x10 iotval: 4000 iotval2: 0' });
    const line = await run(['decode', 'riscv-iommu', 'iommu_pci', '0000:00:01.0:', 'Fault', '258', 'devid:', '0x10', 'iotval:', '5000', 'iotval2:', '0']);
    expect(line.stdout).toMatch(/^riscv-iommu fault: DDT entry not valid \(cause 258\) from device 0x10 \(00:02.0\) at 0x5000 on 0000:00:01.0$/m);
  });

  it('joins an unquoted log line and prints a field table', async () => {
    const line = 'DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050da'.split(' ');
    const r = await run(['decode', 'vtd', ...line]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}FIELD/m);
  });

  it('unknown vendor: exit 2 with the registered ones; undecodable: exit 1', async () => {
    const r = await run(['decode', 'riscv', '0x1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('ioasid: unknown vendor "riscv"\n  hint: registered vendors: vtd, smmuv3, amd-vi, virtio-iommu, riscv-iommu\n');
    const bad = await run(['decode', 'smmuv3', 'not-a-value']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^ioasid: smmuv3 could not decode "not-a-value": /);
  });

  it('works with any plugin the host loads (DI, no vendor import)', async () => {
    const vendor = toyVendor('toy');
    const decoder: IommuDecoder = {
      vendor: 'toy',
      decode: (what) => ({
        ok: true,
        value: { vendor: 'toy', kind: 'reg', fields: { EN: what === '1' }, summary: 'enabled', linux: 'toy: on', advice: { causes: ['the driver enabled it'], checks: ['dmesg for toy lines'] } },
      }),
    };
    const toy: IommuPlugin = { id: 'toy', register: (c) => c.register(IOMMU_VENDOR, { useValue: vendor }), decoder };
    const r = await run(['decode', 'toy', '1'], { plugins: () => [toy] });
    expect(r.stdout).toBe('toy reg: enabled\n\n  FIELD  VALUE\n  EN     1\n\nlinux: toy: on\n\nusual causes:\n  - the driver enabled it\n\ncheck next:\n  - dmesg for toy lines\n');
    const json = await run(['decode', 'toy', '1', '--json'], { plugins: () => [toy] });
    expect(JSON.parse(json.stdout)).toMatchObject({ advice: { causes: ['the driver enabled it'], checks: ['dmesg for toy lines'] } });
  });

  it('a plugin without a decoder loads and runs, and decode says it has none', async () => {
    const vendor = toyVendor('bare');
    const bare: IommuPlugin = { id: 'bare', register: (c) => c.register(IOMMU_VENDOR, { useValue: vendor }) };
    const r = await run(['decode', 'bare', '1'], { plugins: () => [bare] });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('ioasid: the bare plugin has no decoder\n');
  });
});
