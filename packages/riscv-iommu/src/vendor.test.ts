/** The vendor through core: units built from the presets, GET_HW_INFO, faults and their lines, decode and probe. */
import { describe, expect, it } from 'vitest';
import { createHost, DmaFault } from '@ioasid/core';
import { uapi as U } from '@ioasid/core/driver';
import { Vendor, plugin, qemuPciPreset, qemuSysPreset, riscvDecoder } from './index.js';

describe('units on the QEMU presets', () => {
  it('answers GET_HW_INFO as mainline: type NONE (the driver has no hw_info op), no PASID, no dirty tracking', () => {
    const host = createHost({ plugins: [plugin], profile: qemuPciPreset, allowUnsafeInterrupts: true });
    const fd = host.openIommufd();
    const dev = host.device('0000:00:02.0');
    const devId = dev.bindIommufd(fd);
    const out = fd.run(U.iommu_hw_info, 'GET_HW_INFO', { dev_id: devId, data_len: 0, data_uptr: 0n });
    // The device has no ATS capability, which iommufd reports; nothing else.
    expect([out.data_type, out.out_max_pasid_log2, out.out_capabilities]).toEqual([U.IOMMU_HW_INFO_TYPE_NONE, 0, U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED]);
  });

  it('gives paging domains an Sv57 table, the lower half of the sign-extended IOVA space and PSCIDs from 1', () => {
    const host = createHost({ plugins: [plugin], profile: qemuPciPreset, allowUnsafeInterrupts: true });
    const fd = host.openIommufd();
    const dev = host.device('0000:00:02.0');
    dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    dev.attachPt(ioas);
    const ranges = fd.ioas.iovaRanges(ioas);
    expect(ranges.ranges.at(-1)?.last).toBe((1n << 56n) - 1n);
  });

  it('logs a DMA to an unmapped page as cause 13 and a blocked device as cause 258', async () => {
    const host = createHost({ plugins: [plugin], profile: qemuSysPreset, allowUnsafeInterrupts: true });
    expect(host.log.lines).toContain('riscv,iommu 3010000.iommu: using wire-signaled interrupts');
    const fd = host.openIommufd();
    const dev = host.device('0000:00:01.0');
    dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    dev.attachPt(ioas);
    const e = await dev.dma.read(0x4000n, 4).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DmaFault);
    await new Promise((r) => setTimeout(r, 0));
    expect(host.log.lines).toContain('riscv,iommu 3010000.iommu: Fault 13 devid: 0x8 iotval: 4000 iotval2: 0');
    dev.detachPt();
    await dev.dma.write(0x5000n, new Uint8Array([1])).catch((x: unknown) => x);
    await new Promise((r) => setTimeout(r, 0));
    expect(host.log.lines).toContain('riscv,iommu 3010000.iommu: Fault 258 devid: 0x8 iotval: 5000 iotval2: 0');
  });
});

describe('decode and probe', () => {
  const v = new Vendor();

  it('decodes capabilities, a fault record, a fault line, a command, a PTE', () => {
    const cap = riscvDecoder.decode('0x78c2cf4f10');
    expect(cap.ok && cap.value.kind).toBe('capabilities');
    expect(cap.ok && cap.value.fields.PAS).toBe(56);
    const rec = riscvDecoder.decode('0d00000008100000 0000000000000000 0040000000000000 0000000000000000'.replace(/ /g, ''), 'fault');
    if (!rec.ok) throw new Error(rec.error);
    expect(rec.value.summary).toBe('Read page fault (cause 13) on an untranslated read (read) from device 0x10 at 0x4000');
    expect(rec.value.linux).toBe('Fault 13 devid: 0x10 iotval: 4000 iotval2: 0');
    const line = riscvDecoder.decode('[   12.345678] iommu_pci 0000:00:01.0: Fault 21 devid: 0x10 iotval: 1000 iotval2: 80001001');
    if (!line.ok) throw new Error(line.error);
    expect(line.value.summary).toBe('Read guest-page fault (cause 21) from device 0x10 (00:02.0) at 0x1000, guest-physical 0x80001000 during an implicit first-stage access on 0000:00:01.0');
    const cmd = riscvDecoder.decode('0154000001000000 00148d0400000000'.replace(/ /g, ''), 'command');
    expect(cmd.ok && cmd.value.summary).toBe('IOTINVAL.VMA: address 0x12345000, PSCID 5');
    const pte = riscvDecoder.decode('0x48d14df', 'pte');
    expect(pte.ok && pte.value.summary).toBe('leaf RWXUAD at 0x12345000');
    expect(riscvDecoder.decode('0x1', 'bogus').ok).toBe(false);
    expect(riscvDecoder.decode('zz').ok).toBe(false);
  });

  it('reads the platform probe line; no line carries capabilities', () => {
    expect(v.probeLine('[    0.512000] riscv,iommu 3010000.iommu: using MSIs')).toEqual({ ok: true, value: { id: 'riscv-iommu@3010000.iommu', registers: { fctl: '0x0' } } });
    expect(v.probeLine('riscv,iommu 3010000.iommu: using wire-signaled interrupts')).toEqual({ ok: true, value: { id: 'riscv-iommu@3010000.iommu', registers: { fctl: '0x2' } } });
    expect(v.probeLine('DMAR: IOMMU enabled')).toBeNull();
    expect(v.decodeRegisters({ fctl: '0x2' }).ok).toBe(false);
  });
});
