import { readLe64Words } from '@ioasid/core/driver';
import { describe, expect, it } from 'vitest';
import { createHost, uapi } from '@ioasid/core';
import { AMD_EVENT, encodeEvent, encodePprEntry, PPR_FLAG } from './records.js';
import { encodeCommand } from './commands.js';
import { hex } from './bits.js';
import { AmdUnit } from './unit.js';
import { completeAmdProbedUnits, parseAmdRegisters, probeAmdLine } from './probe.js';
import { decodeAmd } from './decode.js';
import { amdPresetById, plugin } from './index.js';

function words(b: Uint8Array): string {
  return readLe64Words(b).map((q) => hex(q)).join(' ');
}

describe('registers from a profile', () => {
  it('accepts efr alone and fills the defaults', () => {
    expect(parseAmdRegisters({ efr: '58f77ef22294a5a' })).toEqual({ ok: true, value: { efr: 0x58f77ef22294a5an, efr2: 0n, pciAddress: '0000:00:00.2', capPtr: 0x40, ivrsAliases: [] } });
  });

  it('says what is wrong with bad input', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /registers.efr/],
      [{ efr: '0x0' }, /no Extended Feature Register/],
      [{ efr: '0x1', cap: '0x40' }, /registers.cap: not an AMD-Vi register/],
      [{ efr: '0x1', efr2: 'zz' }, /registers.efr2/],
      [{ efr: '0x1ffffffffffffffff' }, /64-bit/],
      [{ efr: '0x1', pciAddress: '00:00.2' }, /pciAddress/],
      [{ efr: '0x1', capPtr: '0x41' }, /capPtr/],
    ];
    for (const [raw, re] of bad) {
      const r = parseAmdRegisters(raw);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(re);
    }
    expect(parseAmdRegisters(null as unknown as Record<string, unknown>).ok).toBe(false);
  });
});

describe('ioasid decode amd-vi', () => {
  it('decodes an EFR value into every specification field and the Linux line', () => {
    const r = decodeAmd('efr=0x58f77ef22294a5a efr2=0x0');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.vendor).toBe('amd-vi');
    expect(r.value.kind).toBe('efr');
    expect(r.value.fields).toMatchObject({ PPRSup: 1, XTSup: 0, GTSup: 1, HATS: 2, PASmax: 15, GIoSup: 1, EPHSup: 1, HDSup: 0, SNPSup: 0, 'EFR2.GCR3TRPModeSup': 0 });
    expect(r.value.linux).toBe('AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR NX GT IA PC GA_vAPIC');
    expect(r.value.summary).toMatch(/^AMD-Vi IOMMU v2/);
    const bare = decodeAmd('0x58f77ef22294a5a');
    expect(bare.ok && bare.value.fields).toEqual(r.value.fields);
    const e2 = decodeAmd('0x1d', 'efr2');
    expect(e2.ok && e2.value.fields).toMatchObject({ GCR3TRPModeSup: 1, GAPPIDisSup: 1, reserved: '0x5' });
  });

  it('decodes an event log entry with its flags split into bits', () => {
    const rec = encodeEvent({ code: AMD_EVENT.IO_PAGE_FAULT, devid: 0x0100, pasidOrDomain: 0xe, flags: 0x50, address: 0xfffd0000n });
    const r = decodeAmd(words(rec));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.kind).toBe('event');
    expect(r.value.fields).toMatchObject({ EventCode: 2, DeviceID: '01:00.0', DomainID: 0xe, GN: 0, PR: 1, PE: 1, RW: 0, Address: '0xfffd0000' });
    expect(r.value.summary).toBe('DMA read from 01:00.0 (domain 0xe) at 0xfffd0000: permission denied');
    expect(r.value.linux).toBe('AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:01:00.0 domain=0x000e address=0xfffd0000 flags=0x0050]');
    // The four 32-bit words Linux prints for UNKNOWN events decode the same entry.
    const w = decodeAmd('0x00000100 0x2050000e 0xfffd0000 0x0');
    expect(w.ok && w.value.fields).toEqual(r.value.fields);
    expect(decodeAmd('0x0 0x0').ok).toBe(false);
  });

  it('decodes PPR entries and commands', () => {
    const ppr = encodePprEntry({ devid: 0x0a00, pasid: 5, tag: 0x12, last: true, flags: PPR_FLAG.READ | PPR_FLAG.GN | PPR_FLAG.US, address: 0x7000n });
    const p = decodeAmd(words(ppr), 'ppr');
    expect(p.ok && p.value.fields).toMatchObject({ DeviceID: '0a:00.0', PASID: 5, Tag: 0x12, LastPage: 1, READ: 1, GN: 1, Type: 1 });
    expect(p.ok && p.value.summary).toBe('page request from 0000:0a:00.0 PASID 0x5: read at 0x7000, tag 0x12, last in group');
    const c = decodeAmd(words(encodeCommand({ op: 'COMPLETE_PPR_REQUEST', devid: 0x0a00, pasid: 5, gn: true, tag: 0x12, status: 0 })), 'command');
    expect(c.ok && c.value.summary).toBe('answer page request tag 0x12 of 0000:0a:00.0 PASID 0x5: SUCCESS');
    expect(c.ok && c.value.linux.split('\n')[0]).toBe('CMD[0]: 00000a00');
    const inv = decodeAmd(words(encodeCommand({ op: 'INVALIDATE_IOMMU_PAGES', domainId: 3, pasid: 0, gn: false, pde: true, size: true, address: 0x7ffffffffffff000n })), 'command');
    expect(inv.ok && inv.value.summary).toBe('flush domain 0x3 0x0-0xffffffffffffffff including page-directory entries');
  });

  it('decodes kernel lines of every form', () => {
    const l = decodeAmd('[  4.6] AMD-Vi: Extended features (0xa5bf7320a2294aee, 0x1d): PPR X2APIC NX [5] IA GA PC GA_vAPIC SNP');
    expect(l.ok && l.value.fields).toMatchObject({ SNPSup: 1, HDSup: 1, GTSup: 0, 'EFR2.GCR3TRPModeSup': 1 });
    const e = decodeAmd('vfio-pci 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0002 address=0x1000 flags=0x0020]');
    expect(e.ok && e.value.fields).toMatchObject({ EventCode: 2, DeviceID: '01:00.0', DomainID: 2, RW: 1, printedBy: 'vfio-pci 0000:01:00.0' });
    expect(e.ok && e.value.summary).toBe('DMA write from 01:00.0 (domain 0x2) at 0x1000: page not present');
    expect(decodeAmd('AMD-Vi: Event logged [').ok).toBe(false);
    expect(decodeAmd('').ok).toBe(false);
    expect(decodeAmd('hello').ok).toBe(false);
    expect(decodeAmd('0x1 0x2 0x3').ok).toBe(false);
  });
});

describe('ioasid probe', () => {
  it('reads the features line of a single-IOMMU client, with EFR2', () => {
    const r = probeAmdLine('[    0.532970] AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR NX GT IA PC GA_vAPIC');
    expect(r).toEqual({ ok: true, value: { id: 'ivhd0', registers: { efr: '0x58f77ef22294a5a', efr2: '0x0' } } });
    expect(probeAmdLine('DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap 1 ecap 2')).toBeNull();
    const bad = probeAmdLine('AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR X2APIC');
    expect(bad?.ok).toBe(false);
  });

  it('names IOMMUs by their PCI function and gives them the host-wide EFR', () => {
    const lines = [
      'pci 0000:c0:00.2: AMD-Vi: Found IOMMU cap 0x40',
      'pci 0000:80:00.2: AMD-Vi: Found IOMMU cap 0x40',
      'AMD-Vi: Extended features (0x841f77e022094ace, 0x0): PPR X2APIC NX IA GA PC SNP',
    ];
    const units = lines.map((l, i) => {
      const r = probeAmdLine(l);
      if (!r?.ok) throw new Error(String(r));
      return { ...r.value, lines: [i + 1] };
    });
    expect(units.map((u) => u.id)).toEqual(['ivhd@0000:c0:00.2', 'ivhd@0000:80:00.2', 'ivhd0']);
    expect(completeAmdProbedUnits(units)).toEqual([
      { id: 'ivhd0', registers: { pciAddress: '0000:c0:00.2', capPtr: '0x40', efr: '0x841f77e022094ace', efr2: '0x0' }, lines: [1, 3] },
      { id: 'ivhd1', registers: { pciAddress: '0000:80:00.2', capPtr: '0x40', efr: '0x841f77e022094ace', efr2: '0x0' }, lines: [2] },
    ]);
    // The 5.x split form names the function on the features line.
    const split = probeAmdLine('pci 0000:00:00.2: AMD-Vi: Extended features (0x206d73ef22254ade):');
    expect(split?.ok && split.value).toEqual({ id: 'ivhd@0000:00:00.2', registers: { efr: '0x206d73ef22254ade', pciAddress: '0000:00:00.2' } });
    expect(completeAmdProbedUnits([{ id: 'ivhd0', registers: { efr: '0x1' }, lines: [1] }])).toEqual([{ id: 'ivhd0', registers: { efr: '0x1' }, lines: [1] }]);
  });
});

describe('the unit', () => {
  it('reports iommu_hw_info_amd and refuses other hw_info types', () => {
    const host = createHost({ plugins: [plugin], profile: amdPresetById('amd-zen4-epyc-snp') });
    const unit = host.units[0].ops as AmdUnit;
    const dev = host.device(host.profile.devices[0].bdf);
    const info = unit.hwInfo(dev.info, 0);
    expect('data' in info && uapi.iommu_hw_info_amd.decode(info.data, 0)).toEqual({ efr: 0xa5bf7320a2294aeen, efr2: 0x1dn });
    // struct iommu_hw_info_amd (include/uapi/linux/iommufd.h), byte by byte: __aligned_u64 efr @0, efr2 @8, 16
    // bytes, little-endian; the preset's EFR / EFR2 as amd_iommufd_hw_info() copies them.
    if (!('data' in info)) throw new Error('no hw_info');
    expect(info.data.byteLength).toBe(16);
    expect([...info.data]).toEqual([0xee, 0x4a, 0x29, 0xa2, 0x20, 0x73, 0xbf, 0xa5, 0x1d, 0, 0, 0, 0, 0, 0, 0]);
    expect('errno' in unit.hwInfo(dev.info, uapi.IOMMU_HW_INFO_TYPE_INTEL_VTD)).toBe(true);
  });

  it('prints the boot lines of its kernel era, the global line once', () => {
    const host = createHost({ plugins: [plugin], profile: amdPresetById('amd-zen3-milan-epyc') });
    expect(host.units.map((u) => u.ops.bootLog!())).toEqual([
      ['pci 0000:c0:00.2: AMD-Vi: Found IOMMU cap 0x40', 'AMD-Vi: Extended features (0x841f77e022094ace, 0x0): PPR X2APIC NX IA GA PC SNP'],
      ['pci 0000:80:00.2: AMD-Vi: Found IOMMU cap 0x40'],
      ['pci 0000:40:00.2: AMD-Vi: Found IOMMU cap 0x40'],
      ['pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40'],
    ]);
  });
});
