import { readLe64 } from '@ioasid/core/driver';
import { describe, expect, it } from 'vitest';
import { VtdVendor } from './vendor.js';
import { decodeVtd, vtdDecoder } from './decode.js';
import { probeVtdLine } from './probe.js';
import { GNR, SKL } from './__tests__/fixtures.js';
import { encodeFrcd, frcdForDmaFault } from './records.js';

const vendor = new VtdVendor();

describe('decodeRegisters', () => {
  it('decodes a unit into caps, HW ID, register fields and normalized profile registers', () => {
    const r = vendor.decodeRegisters({ ver: '0x70', cap: '0xF9ED008CEE780C66', ecap: '3fef9ea6f0efdf' });
    if (!r.ok) throw new Error(r.error);
    const u = r.value;
    expect(u.vendor).toBe('vtd');
    expect(u.hwId).toBe(
      'Intel VT-d 7.0, scalable mode, SS 48/57-bit 4K/2M/1G, FS 5-level 1G, PASID 20-bit, PRS, ATS, nesting, dirty tracking, IR x2APIC',
    );
    expect(u.caps).toMatchObject({ vendor: 'vtd', version: '7.0', pasidBits: 20, pri: true, nesting: true, dirtyTracking: true, coherent: true });
    expect(u.profileRegisters).toEqual({ ver: '0x70', cap: '0xf9ed008cee780c66', ecap: '0x3fef9ea6f0efdf' });
    expect(u.registers.map((x) => x.name)).toEqual(['VER_REG', 'CAP_REG', 'ECAP_REG']);
    expect(u.registers[1].fields).toMatchObject({ SAGAW: 0xc, MGAW: 56, SLLPS: 3, NFR: 0, FL5LP: 1 });
    expect(u.registers[2].fields).toMatchObject({ SMTS: 1, PSS: 19, PRS: 1, NEST: 1 });
  });

  it('keeps regBase for the boot line', () => {
    const r = vendor.decodeRegisters({ ...GNR, regBase: '0xcbfe0000' });
    expect(r.ok && r.value.profileRegisters).toEqual({ ...GNR, regBase: '0xcbfe0000' });
  });

  it('says precisely what is wrong', () => {
    const error = (raw: Record<string, unknown>) => {
      const r = vendor.decodeRegisters(raw);
      return r.ok ? 'ok' : r.error;
    };
    expect(error({ ver: '0x60', cap: 42, ecap: '0x1' })).toBe('registers.cap: expected a 64-bit hex string like 0x19ed008c40780c66, got 42');
    expect(error({ ver: '0x60', cap: '0xzz', ecap: '0x1' })).toBe('registers.cap: expected a 64-bit hex string like 0x19ed008c40780c66, got "0xzz"');
    expect(error({ ver: '0x60', cap: '0x1' })).toBe('registers.ecap: expected a 64-bit hex string like 0x3ee9e86f050df, got nothing');
    expect(error({ ver: '0x60', cap: '0x1ffffffffffffffff', ecap: '0x1' })).toMatch(/^registers\.cap: .* \(the value does not fit in 64 bits\)$/);
    expect(error({ cap: '0x1', ecap: '0x1' })).toBe('registers.ver: expected a 32-bit hex string like 0x60, got nothing');
    expect(error({ ver: '0x60', cap: '0x1', ecap: '0x1', ecaps: '0x1' })).toBe('registers.ecaps: not a VT-d register (expected ver, cap, ecap and optionally regBase)');
    expect(error({ ver: '0x60', cap: '0xffffffffffffffff', ecap: '0xffffffffffffffff' })).toMatch(/all ones/);
    expect(error({ ver: '0x60', cap: '0x1', ecap: '0x1', regBase: '0xfed90010' })).toMatch(/^registers\.regBase: .*not 4 KiB aligned/);
    expect(error({ ver: 0x60, cap: '0x1', ecap: '0x1' })).toBe('ok');
  });
});

describe('decode (ioasid decode vtd ...)', () => {
  it('cap=... of a real preset', () => {
    const r = decodeVtd('cap=0xf9ed008cee780c66');
    expect(r).toEqual({
      ok: true,
      value: {
        vendor: 'vtd',
        kind: 'cap',
        fields: {
          ND: 6, AFL: 0, RWBF: 0, PLMR: 1, PHMR: 1, CM: 0, SAGAW: 12, MGAW: 56, ZLR: 1, ISOCH: 0, FRO: 238, SLLPS: 3, PSI: 1,
          NFR: 0, MAMV: 45, DWD: 1, DRD: 1, FL1GP: 1, PI: 1, FL5LP: 1, ECMDS: 1, ESIRTPS: 1, ESRTPS: 1,
        },
        summary:
          'MGAW 57-bit, SAGAW 4/5-level, second-stage pages 4K/2M/1G, 65536 domain ids, 1 fault recording register(s) at 0xee0, ' +
          'page-selective invalidation (MAMV 45), first-stage 1G, first-stage 5-level, posted interrupts',
        linux: 'cap f9ed008cee780c66',
        words: [expect.objectContaining({ name: 'CAP_REG', value: 0xf9ed008cee780c66n, width: 64 })],
      },
    });
    expect(vtdDecoder.decode('0xf9ed008cee780c66', 'cap')).toEqual(r);
  });

  it('ecap and ver', () => {
    const e = decodeVtd('ecap=0x3fef9ea6f0efdf');
    expect(e.ok && e.value.fields).toMatchObject({ SMTS: 1, PASID: 1, PSS: 19, SLADS: 1, IRO: 239 });
    expect(e.ok && e.value.linux).toBe('ecap 3fef9ea6f0efdf');
    expect(decodeVtd('0x60', 'ver')).toEqual({
      ok: true,
      value: {
        vendor: 'vtd',
        kind: 'ver',
        fields: { MIN: 0, MAX: 6 },
        summary: 'VT-d architecture 6.0',
        linux: 'ver 6:0',
        words: [expect.objectContaining({ name: 'VER_REG', value: 0x60n, width: 32 })],
      },
    });
    expect(decodeVtd('0x60')).toMatchObject({ ok: false });
  });

  it('a real DMA fault line (with the dmesg timestamp)', () => {
    const r = decodeVtd('[    4.210394] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfffe0000 [fault reason 0x06] PTE Read access is not set');
    // Also the record it was printed from and the advice for reason 0x06 (advice.test.ts checks those).
    expect(r).toMatchObject({
      ok: true,
      value: {
        vendor: 'vtd',
        kind: 'dma-fault',
        fields: { T1: 1, SID: 0x10, PP: 0, PV: 0, FR: 6, FI: '0xfffe0' },
        summary: 'DMA read from 00:02.0 at 0xfffe0000 faulted: PTE Read access is not set',
        linux: 'DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfffe0000 [fault reason 0x06] PTE Read access is not set',
        words: expect.any(Array),
        advice: expect.any(Object),
      },
    });
    // An older kernel's line is explained and re-rendered in the mainline form.
    const old = decodeVtd('DMAR: [DMA Write] Request device [03:00.0] fault addr fed40000 [fault reason 05] PTE Write access is not set');
    expect(old.ok && old.value.linux).toBe(
      'DMAR: [DMA Write NO_PASID] Request device [03:00.0] fault addr 0xfed40000 [fault reason 0x05] PTE Write access is not set',
    );
  });

  it('a boot line decodes the whole unit', () => {
    const line = 'DMAR: dmar1: reg_base_addr fed91000 ver 1:0 cap d2008c40660462 ecap f050da';
    const r = decodeVtd(line);
    if (!r.ok) throw new Error(r.error);
    expect(r.value.kind).toBe('unit');
    expect(r.value.linux).toBe(line);
    const unit = vendor.decodeRegisters({ ver: '0x10', cap: '0xd2008c40660462', ecap: '0xf050da' });
    expect(r.value.summary).toBe(unit.ok ? unit.value.hwId : '');
    expect(r.value.fields).toMatchObject({ MAX: 1, MIN: 0, SAGAW: 4, MGAW: 38, C: 0, QI: 1 });
  });

  it('an FRCD as two qwords and a page request as four', () => {
    const frcd = encodeFrcd(frcdForDmaFault({ addr: 0x7f0012345000n, sid: 0xf208, read: false, reason: 0x71, pasid: 0x1f }));
    if (!frcd.ok) throw new Error(frcd.error);
    const lo = readLe64(frcd.value, 0).toString(16);
    const hi = readLe64(frcd.value, 8).toString(16);
    const r = decodeVtd(`0x${lo} 0x${hi}`);
    expect(r.ok && r.value.kind).toBe('frcd');
    expect(r.ok && r.value.linux).toBe(
      'DMAR: [DMA Write PASID 0x1f] Request device [f2:01.0] fault addr 0x7f0012345000 [fault reason 0x71] SM: Present bit in first-level paging entry is clear',
    );
    expect(r.ok && r.value.fields).toMatchObject({ SID: 0xf208, PP: 1, PV: 0x1f, FR: 0x71, T1: 0, F: 1 });
    const pr = decodeVtd('0x0000004200100101 0x7000000010fff 0 0');
    expect(pr.ok && pr.value).toMatchObject({
      kind: 'page-request',
      fields: { RID: 0x10, PASID: 0x42, PP: 1, RDR: 1, WRR: 1, LPIG: 1, PRGI: 0x1ff, ADDR: '0x7000000010000' },
      // decode_prq_descriptor() (intel/iommu.h) prints addr as FIELD_GET(GENMASK_ULL(63, 12), dw1): the page number.
      linux: 'rid=0x10 addr=0x7000000010 rw--l pasid=0x42 index=0x1ff',
    });
    expect(decodeVtd('1 2 3')).toMatchObject({ ok: false });
    expect(decodeVtd('hello')).toMatchObject({ ok: false });
  });
});

describe('probeLine', () => {
  it('reads boot lines into units and ignores the rest', () => {
    expect(vendor.probeLine!('[    0.012345] DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap 1c0000c40660462 ecap 7e3ff0501e')).toEqual({
      ok: true,
      value: { id: 'dmar0', registers: { ...SKL, regBase: '0xfed90000' } },
    });
    expect(probeVtdLine('dmar: IOMMU 1: reg_base_addr fed91000 ver 1:0 cap d2008c20660462 ecap f010da')).toMatchObject({
      ok: true,
      value: { id: 'dmar1' },
    });
    expect(probeVtdLine('DMAR: Host address width 46')).toBeNull();
    expect(probeVtdLine('pci 0000:00:02.0: Adding to iommu group 0')).toBeNull();
    expect(probeVtdLine('DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap zz ecap 1')).toMatchObject({ ok: false });
  });

  it('a probed unit decodes and renders the same boot line', () => {
    const line = 'DMAR: dmar0: reg_base_addr cbfe0000 ver 7:0 cap f9ed008cee780c66 ecap 3fef9ea6f0efdf';
    const p = probeVtdLine(line);
    if (!p?.ok) throw new Error('probe');
    expect(vendor.decodeRegisters(p.value.registers).ok).toBe(true);
    expect(decodeVtd(line).ok).toBe(true);
    expect(p.value.registers).toEqual({ ...GNR, regBase: '0xcbfe0000' });
  });
});
