/**
 * IVRS DeviceID aliases: the profile field, the DTE cloned to the alias (clone_aliases()) and flushed there
 * (device_flush_dte()), events under the DeviceID the IOMMU saw and the lines amd_iommu_report_page_fault()
 * prints for it, and the amd_iommu_dump entries read back by `ioasid probe`.
 */
import { describe, expect, it } from 'vitest';
import { createHost, DmaFault, HostProfileError, uapi, type HostProfile, type UnitProfile } from '@ioasid/core';
import { kernelPrintf } from '@ioasid/core/testing';
import {
  AmdVendor,
  CLEAR_DTE,
  INITIAL_DTE,
  IvrsAliasTable,
  MAX_IVRS_ALIASES,
  amdPresetById,
  completeAmdProbedUnits,
  decodeAmd,
  decodeDte,
  isAmdIommuFault,
  parseAmdRegisters,
  parseIvhdDumpLine,
  parseIvrsAliases,
  plugin,
  probeAmdLine,
  type AmdCommand,
  type AmdProbedUnit,
  type AmdUnit,
} from './index.js';

const raphael = amdPresetById('amd-zen4-raphael');
const EFR = raphael.units[0].registers['efr'];
/** 0000:01:00.0 (the NVMe SSD) reaches the IOMMU as 0000:00:14.4, a DeviceID on another bus (not a PCI DMA alias). */
const NVME = 0x0100;
const ALIAS = 0x00a4;
/** 0000:0b:00.0 reaches it as 0000:0b:00.1, on its own bus: also one of its PCI DMA aliases (setup_aliases()). */
const ETH = 0x0b00;
const ETH_ALIAS = 0x0b01;

function profileWith(ivrsAliases: unknown, extraDevices: HostProfile['devices'] = []): HostProfile {
  const unit: UnitProfile = { ...raphael.units[0], registers: { ...raphael.units[0].registers, ivrsAliases } };
  return { ...raphael, units: [unit], devices: [...raphael.devices, ...extraDevices] };
}

const ALIASES = [
  { device: '0000:01:00.0', alias: '0000:00:14.4' },
  { device: '0000:0b:00.0', alias: '0000:0b:00.1' },
];

function env(extraDevices: HostProfile['devices'] = []) {
  const host = createHost({ plugins: [plugin], profile: profileWith(ALIASES, extraDevices) });
  const unit = host.units[0].ops as AmdUnit;
  const fd = host.openIommufd();
  return { host, unit, fd };
}

/** amd_iommu_report_page_fault()'s two formats (iommu.c): pci_err() with a device, pr_err_ratelimited() without. */
const KNOWN_DEVICE_FAULT = 'Event logged [IO_PAGE_FAULT domain=0x%04x address=0x%llx flags=0x%04x]';
const UNKNOWN_DEVICE_FAULT = 'Event logged [IO_PAGE_FAULT device=%04x:%02x:%02x.%x domain=0x%04x address=0x%llx flags=0x%04x]';
const cmdText = (c: AmdCommand) => (c.op === 'INVALIDATE_DEVTAB_ENTRY' ? `DTE ${c.devid.toString(16)}` : c.op === 'COMPLETION_WAIT' ? 'WAIT' : c.op);
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('registers.ivrsAliases in a host profile', () => {
  it('accepts alias select and alias range entries and writes them back canonically', () => {
    const r = parseAmdRegisters({
      efr: EFR,
      pciAddress: '0000:00:00.2',
      ivrsAliases: [
        { device: '0000:01:00.0', alias: '0000:00:14.4' },
        { first: '0000:05:00.0', last: '0000:05:1F.7', alias: '0000:04:00.0' },
      ],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.ivrsAliases).toEqual([
      { first: 0x100, last: 0x100, alias: 0xa4 },
      { first: 0x500, last: 0x5ff, alias: 0x400 },
    ]);
    const v = new AmdVendor().decodeRegisters({ efr: EFR, ivrsAliases: [{ first: '0000:05:00.0', last: '0000:05:1f.7', alias: '0000:04:00.0' }] });
    expect(v.ok && v.value.profileRegisters['ivrsAliases']).toEqual([{ first: '0000:05:00.0', last: '0000:05:1f.7', alias: '0000:04:00.0' }]);
    // The canonical form decodes to the same table.
    const again = parseAmdRegisters(v.ok ? v.value.profileRegisters : {});
    expect(again.ok && again.value.ivrsAliases).toEqual([{ first: 0x500, last: 0x5ff, alias: 0x400 }]);
    // Without aliases the canonical registers have no such key (profiles written before stay as they were).
    const plain = new AmdVendor().decodeRegisters({ efr: EFR });
    expect(plain.ok && 'ivrsAliases' in plain.value.profileRegisters).toBe(false);
  });

  it.each([
    ['not an array', { device: '0000:01:00.0', alias: '0000:00:14.4' }, 'registers.ivrsAliases: expected an array of { device, alias } or { first, last, alias }, got'],
    ['an entry that is not an object', ['0000:01:00.0'], 'registers.ivrsAliases[0]: expected { device, alias } or { first, last, alias }, got'],
    ['an unknown field', [{ device: '0000:01:00.0', alias: '0000:00:14.4', flags: 0 }], 'registers.ivrsAliases[0].flags: not a field of an alias select { device, alias } entry'],
    ['a range with a device field', [{ first: '0000:01:00.0', last: '0000:01:00.7', device: '0000:01:00.0', alias: '0000:00:14.4' }], 'registers.ivrsAliases[0].device: not a field of an alias range'],
    ['a missing alias', [{ device: '0000:01:00.0' }], 'registers.ivrsAliases[0].alias: missing'],
    ['a range without its end', [{ first: '0000:01:00.0', alias: '0000:00:14.4' }], 'registers.ivrsAliases[0].last: missing'],
    ['a malformed address', [{ device: '01:00.0', alias: '0000:00:14.4' }], 'registers.ivrsAliases[0].device: expected a PCI address like 0000:00:14.4, got'],
    ['a device number past 31', [{ device: '0000:01:20.0', alias: '0000:00:14.4' }], 'registers.ivrsAliases[0].device: expected a PCI address'],
    ['another PCI segment', [{ device: '0000:01:00.0', alias: '0001:00:14.4' }], 'registers.ivrsAliases[0].alias: 0001:00:14.4 is in PCI segment 0001, the IOMMU in 0000'],
    ['a range ending before it starts', [{ first: '0000:05:00.0', last: '0000:04:00.0', alias: '0000:00:14.4' }], 'registers.ivrsAliases[0]: last 0000:04:00.0 comes before first 0000:05:00.0'],
    [
      'a DeviceID given two aliases',
      [
        { first: '0000:05:00.0', last: '0000:05:1f.7', alias: '0000:04:00.0' },
        { device: '0000:05:03.0', alias: '0000:00:14.4' },
      ],
      'registers.ivrsAliases[1]: 0000:05:03.0 already aliases to 0000:04:00.0 (entry 0), not 0000:00:14.4',
    ],
  ])('refuses %s, naming the field', (_what, ivrsAliases, message) => {
    const r = parseAmdRegisters({ efr: EFR, ivrsAliases });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });

  it('refuses more entries than a segment has DeviceIDs before reading any', () => {
    const r = parseIvrsAliases(new Array<unknown>(MAX_IVRS_ALIASES + 1).fill(null), 0);
    expect(!r.ok && r.error).toBe(`registers.ivrsAliases: ${MAX_IVRS_ALIASES + 1} entries; a PCI segment has ${MAX_IVRS_ALIASES} DeviceIDs`);
  });

  it('accepts the same alias given twice, and an entry naming the device itself', () => {
    const r = parseIvrsAliases(
      [
        { first: '0000:05:00.0', last: '0000:05:00.7', alias: '0000:04:00.0' },
        { device: '0000:05:00.3', alias: '0000:04:00.0' },
        { device: '0000:06:00.0', alias: '0000:06:00.0' },
      ],
      0,
    );
    expect(r.ok).toBe(true);
    const t = new IvrsAliasTable(r.ok ? r.value : []);
    expect(t.aliasOf(0x503)).toBe(0x400);
    expect(t.aliasOf(0x600)).toBe(0x600);
    expect(t.isAliasTarget(0x400)).toBe(true);
    expect(t.isAliasTarget(0x600)).toBe(false);
    expect(t.aliasOf(0x700)).toBe(0x700);
  });

  it('makes createHost fail with the unit and field named', () => {
    expect(() => createHost({ plugins: [plugin], profile: profileWith([{ device: '0000:01:00.0', alias: 'nope' }]) })).toThrow(HostProfileError);
    expect(() => createHost({ plugins: [plugin], profile: profileWith([{ device: '0000:01:00.0', alias: 'nope' }]) })).toThrow(/registers\.ivrsAliases\[0\]\.alias/);
  });
});

describe('the DTE at every alias DeviceID (clone_aliases, device_flush_dte)', () => {
  it('writes the blocked DTE at the device and its alias at bind, and flushes both', () => {
    const e = env();
    const dev = e.host.device('0000:01:00.0');
    expect(e.unit.deviceTableEntry(ALIAS)).toEqual(INITIAL_DTE);
    dev.bindIommufd(e.fd);
    expect(e.unit.deviceTableEntry(NVME)).toEqual(CLEAR_DTE);
    expect(e.unit.deviceTableEntry(ALIAS)).toEqual(CLEAR_DTE);
    // update_dte256() on the device's DeviceID, then the same 256 bits on the alias (each with its
    // flush and wait), device_flush_dte() (the device, no PCI DMA alias on another bus, then the IVRS
    // alias), the final wait.
    expect(e.unit.commandBuffer.map(cmdText)).toEqual(['DTE 100', 'WAIT', 'DTE a4', 'WAIT', 'DTE 100', 'DTE a4', 'WAIT']);
    expect(e.unit.deviceIdOf(NVME)).toBe(ALIAS);
    expect(e.unit.requestDte(NVME)).toEqual(CLEAR_DTE);
    expect(e.unit.deviceTable.isDevice(NVME)).toBe(true);
    expect(e.unit.deviceTable.isDevice(ALIAS)).toBe(false);
  });

  it('keeps the alias equal to the device through attach, replace and detach, and DMA translates through it', async () => {
    const e = env();
    const dev = e.host.device('0000:01:00.0');
    const devId = dev.bindIommufd(e.fd);
    const ioas = e.fd.ioas.alloc();
    const va = e.host.process.mmap(4096);
    e.host.process.poke(va, new TextEncoder().encode('aliased'));
    e.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0x10000n });
    const alloc = () => e.fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: 0 }).out_hwpt_id;
    const h1 = alloc();
    dev.attachPt(h1);
    const d1 = decodeDte(e.unit.deviceTableEntry(NVME));
    expect([d1.V, d1.TV, d1.Mode, d1.IR, d1.IW]).toEqual([1, 1, 3, 1, 1]);
    expect(e.unit.deviceTableEntry(ALIAS)).toEqual(e.unit.deviceTableEntry(NVME));
    // The IOMMU reads the DTE at the DeviceID it sees: the alias's, which points to the domain's table.
    const domain = e.unit.deviceTable.domainOf(NVME) as { pt: { rootPfn: number } };
    expect(decodeDte(e.unit.requestDte(NVME)).hostRoot).toBe(BigInt(domain.pt.rootPfn) * 4096n);
    expect(e.unit.deviceTable.domainOf(ALIAS)).toBe(domain);
    expect(new TextDecoder().decode(await dev.dma.read(0x10000n, 7))).toBe('aliased');
    const h2 = alloc();
    dev.attachPt(h2);
    expect(decodeDte(e.unit.deviceTableEntry(ALIAS)).DomainID).toBe(decodeDte(e.unit.deviceTableEntry(NVME)).DomainID);
    expect(decodeDte(e.unit.deviceTableEntry(ALIAS)).DomainID).not.toBe(d1.DomainID);
    expect(new TextDecoder().decode(await dev.dma.read(0x10000n, 7))).toBe('aliased');
    dev.detachPt();
    expect(e.unit.deviceTableEntry(NVME)).toEqual(CLEAR_DTE);
    expect(e.unit.deviceTableEntry(ALIAS)).toEqual(CLEAR_DTE);
  });

  it('flushes an alias on the device\'s own bus as a PCI DMA alias and as the IVRS alias', () => {
    const e = env();
    e.host.device('0000:0b:00.0').bindIommufd(e.fd);
    expect(e.unit.deviceTableEntry(ETH_ALIAS)).toEqual(CLEAR_DTE);
    // clone_aliases() writes it twice, each with update_dte256()'s flush and wait (clone_alias() for the
    // IVRS alias, then for the PCI DMA alias setup_aliases() added); device_flush_dte() flushes the
    // device and its PCI DMA alias, then the IVRS alias.
    expect(e.unit.commandBuffer.map(cmdText)).toEqual(['DTE b00', 'WAIT', 'DTE b01', 'WAIT', 'DTE b01', 'WAIT', 'DTE b00', 'DTE b01', 'DTE b01', 'WAIT']);
    expect(e.unit.deviceTable.pciDmaAliases(e.host.device('0000:0b:00.0').info)).toEqual([ETH_ALIAS]);
    expect(e.unit.deviceIdOf(ETH)).toBe(ETH_ALIAS);
  });
});

describe('events under the DeviceID the IOMMU saw, and where the kernel reports them', () => {
  it('records the alias DeviceID and prints device= when no device with driver data sits there', async () => {
    const e = env();
    const dev = e.host.device('0000:01:00.0');
    dev.bindIommufd(e.fd);
    const err = await dev.dma.read(0x3000n, 4).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DmaFault);
    const f = (err as DmaFault).fault;
    expect(f.rid).toBe(ALIAS);
    expect(isAmdIommuFault(f) && f.event.devid).toBe(ALIAS);
    await settle();
    // amd_iommu_report_page_fault(): no pci_dev at 00:14.4, so pr_err with the DeviceID in the IOMMU's segment.
    expect(e.host.log.lines.at(-1)).toBe('AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:00:14.4 domain=0x0000 address=0x3000 flags=0x0000]');
    expect(e.host.log.lines.at(-1)).toBe(`AMD-Vi: ${kernelPrintf(UNKNOWN_DEVICE_FAULT, 0, 0x00, 0x14, 4, 0, 0x3000n, 0)}`);
    expect(e.host.log.lines.join('\n')).not.toContain('0000:01:00.0: AMD-Vi: Event logged');
  });

  it('prints the line as the device at the alias when the driver knows one there', async () => {
    const e = env([{ bdf: '0000:00:14.4', unit: 'ivhd0', group: 40, description: 'the alias DeviceID as a function of its own' }]);
    e.host.device('0000:00:14.4').bindIommufd(e.fd);
    const dev = e.host.device('0000:01:00.0');
    dev.bindIommufd(e.fd);
    await dev.dma.write(0x5000n, new Uint8Array(4)).catch(() => undefined);
    await settle();
    // pci_get_domain_bus_and_slot() finds 00:14.4 and its dev_data: pci_err() on that device (dev_fmt adds "AMD-Vi: ").
    expect(e.host.log.lines.at(-1)).toBe('vfio-pci 0000:00:14.4: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x5000 flags=0x0020]');
    expect(e.host.log.lines.at(-1)).toBe(`vfio-pci 0000:00:14.4: AMD-Vi: ${kernelPrintf(KNOWN_DEVICE_FAULT, 0, 0x5000n, 0x20)}`);
  });

  it('prints a DeviceID without a device in the IOMMU\'s own PCI segment', async () => {
    const unit: UnitProfile = { ...raphael.units[0], registers: { ...raphael.units[0].registers, pciAddress: '0001:00:00.2', ivrsAliases: [{ device: '0001:01:00.0', alias: '0001:00:14.4' }] } };
    const host = createHost({ plugins: [plugin], profile: { ...raphael, units: [unit], devices: [{ bdf: '0001:01:00.0', unit: 'ivhd0', group: 3 }] } });
    const dev = host.device('0001:01:00.0');
    dev.bindIommufd(host.openIommufd());
    await dev.dma.read(0x2000n, 4).catch(() => undefined);
    await settle();
    expect(host.log.lines.at(-1)).toBe('AMD-Vi: Event logged [IO_PAGE_FAULT device=0001:00:14.4 domain=0x0000 address=0x2000 flags=0x0000]');
  });

  it('keeps a device without an alias reported under its own DeviceID', async () => {
    const e = env();
    const dev = e.host.device('0000:0a:00.0');
    dev.bindIommufd(e.fd);
    const err = await dev.dma.read(0x3000n, 4).catch((x: unknown) => x);
    expect((err as DmaFault).fault.rid).toBe(0x0a00);
    await settle();
    expect(e.host.log.lines.at(-1)).toBe('vfio-pci 0000:0a:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x3000 flags=0x0000]');
  });
});

// The DUMP_printk formats of init.c init_iommu_from_acpi(), era by era.
const PRE_SEGMENT = {
  prefix: 'AMD-Vi: ',
  alias: '  DEV_ALIAS\t\t\t devid: %02x:%02x.%x flags: %02x devid_to: %02x:%02x.%x',
  aliasRange: '  DEV_ALIAS_RANGE\t\t devid: %02x:%02x.%x flags: %02x devid_to: %02x:%02x.%x',
  rangeEnd: '  DEV_RANGE_END\t\t devid: %02x:%02x.%x',
  selectStart: '  DEV_SELECT_RANGE_START\t devid: %02x:%02x.%x flags: %02x',
};
const SEGMENT = {
  prefix: 'AMD-Vi: AMD-Vi: ',
  alias: '  DEV_ALIAS\t\t\t devid: %04x:%02x:%02x.%x flags: %02x devid_to: %02x:%02x.%x',
  aliasRange: '  DEV_ALIAS_RANGE\t\t devid: %04x:%02x:%02x.%x flags: %02x devid_to: %04x:%02x:%02x.%x',
  rangeEnd: '  DEV_RANGE_END\t\t devid: %04x:%02x:%02x.%x',
  selectStart: '  DEV_SELECT_RANGE_START\t devid: %04x:%02x:%02x.%x flags: %02x',
};
const NEWEST = {
  prefix: 'AMD-Vi: ',
  alias: '  DEV_ALIAS\t\t\tdevid: %04x:%02x:%02x.%x flags: %#02x devid_to: %02x:%02x.%x',
  aliasRange: '  DEV_ALIAS_RANGE\t\tdevid: %04x:%02x:%02x.%x flags: %#02x devid_to: %04x:%02x:%02x.%x',
  rangeEnd: '  DEV_RANGE_END\t\tdevid: %04x:%02x:%02x.%x',
  selectStart: '  DEV_SELECT_RANGE_START\tdevid: %04x:%02x:%02x.%x flags: %#02x',
};
type Era = typeof NEWEST;
/** The 6.x features line of the Raphael preset's IOMMU, as the unit prints it at boot. */
const FEATURES = createHost({ plugins: [plugin], profile: raphael }).log.lines.find((l) => l.includes('Extended features'))!;
const bdf = (devid: number) => [devid >> 8, (devid >> 3) & 0x1f, devid & 7];

/** The dump lines of one IVHD: a range without alias, an alias select, an alias range over bus 05. */
function dumpLines(era: Era, segment: number): string[] {
  const seg = era === PRE_SEGMENT ? [] : [segment];
  return [
    era.prefix + kernelPrintf(era.selectStart, ...seg, ...bdf(0x0008), 0),
    era.prefix + kernelPrintf(era.rangeEnd, ...seg, ...bdf(0x00a3)),
    era.prefix + kernelPrintf(era.alias, ...seg, ...bdf(0x0100), 0, ...bdf(0x00a4)),
    era.prefix + kernelPrintf(era.aliasRange, ...seg, ...bdf(0x0500), 0, ...seg, ...bdf(0x0400)),
    era.prefix + kernelPrintf(era.rangeEnd, ...seg, ...bdf(0x05ff)),
  ].map((l) => `[    0.8${Math.random().toString().slice(2, 7)}] ${l}`);
}

/** What `ioasid probe` does with the lines: probeLine each, merge by unit id, then completeProbe. */
function probe(lines: readonly string[]): AmdProbedUnit[] {
  const vendor = new AmdVendor();
  const found = new Map<string, { id: string; registers: Record<string, unknown>; lines: number[] }>();
  lines.forEach((line, i) => {
    const r = vendor.probeLine(line);
    if (r === null) return;
    if (!r.ok) throw new Error(r.error);
    const f = found.get(r.value.id);
    if (f) {
      Object.assign(f.registers, r.value.registers);
      f.lines.push(i + 1);
    } else found.set(r.value.id, { id: r.value.id, registers: { ...r.value.registers }, lines: [i + 1] });
  });
  return vendor.completeProbe([...found.values()]);
}

describe('amd_iommu_dump alias entries read back by ioasid probe', () => {
  it.each([
    ['before PCI segments', PRE_SEGMENT],
    ['with segments (doubled prefix)', SEGMENT],
    ['after the IVRS debug clean-up', NEWEST],
  ])('parses the %s formats', (_era, era) => {
    const [start, end, alias, range, rangeEnd] = dumpLines(era, 0).map((l) => l.replace(/^\[[^\]]*\] /, ''));
    const seg = era === PRE_SEGMENT ? null : 0;
    expect(parseIvhdDumpLine(start)).toEqual({ ok: true, value: { kind: 'range-start', segment: seg, devid: 0x0008 } });
    expect(parseIvhdDumpLine(end)).toEqual({ ok: true, value: { kind: 'range-end', segment: seg, devid: 0x00a3 } });
    expect(parseIvhdDumpLine(alias)).toEqual({ ok: true, value: { kind: 'alias', segment: seg, devid: 0x0100, flags: 0, alias: 0x00a4 } });
    expect(parseIvhdDumpLine(range)).toEqual({ ok: true, value: { kind: 'alias-range', segment: seg, devid: 0x0500, flags: 0, alias: 0x0400 } });
    expect(parseIvhdDumpLine(rangeEnd)).toEqual({ ok: true, value: { kind: 'range-end', segment: seg, devid: 0x05ff } });
    // dmesg may hand the tabs over as spaces.
    expect(parseIvhdDumpLine(range.replace(/\t/g, '        '))).toEqual(parseIvhdDumpLine(range));
  });

  it('prints flags 0 as the kernel does in each era', () => {
    expect(kernelPrintf(NEWEST.alias, 0, 1, 0, 0, 0x10, 0, 0x14, 4)).toBe('  DEV_ALIAS\t\t\tdevid: 0000:01:00.0 flags: 0x10 devid_to: 00:14.4');
    expect(kernelPrintf(NEWEST.alias, 0, 1, 0, 0, 0, 0, 0x14, 4)).toContain('flags: 0x0 devid_to');
    expect(parseIvhdDumpLine(`AMD-Vi: ${kernelPrintf(NEWEST.alias, 0, 1, 0, 0, 0x10, 0, 0x14, 4)}`)).toEqual({ ok: true, value: { kind: 'alias', segment: 0, devid: 0x100, flags: 0x10, alias: 0xa4 } });
  });

  it('ignores other lines and refuses a malformed entry', () => {
    expect(parseIvhdDumpLine('AMD-Vi:   DEV_SELECT\t\t\tdevid: 0000:00:00.0 flags: 0x0')).toBeNull();
    expect(parseIvhdDumpLine(FEATURES)).toBeNull();
    const bad = parseIvhdDumpLine('AMD-Vi:   DEV_ALIAS\t\t\tdevid: 0000:01:20.0 flags: 0x0 devid_to: 00:14.4');
    expect(bad !== null && !bad.ok && bad.error).toBe('DEV_ALIAS: device 20 of bus 01 is past 0x1f');
    const noTo = parseIvhdDumpLine('AMD-Vi:   DEV_ALIAS_RANGE\t\tdevid: 0000:05:00.0 flags: 0x0');
    expect(noTo !== null && !noTo.ok && noTo.error).toContain('expected " flags: .. devid_to: bb:dd.f"');
    const otherSeg = parseIvhdDumpLine('AMD-Vi:   DEV_ALIAS_RANGE\t\tdevid: 0000:05:00.0 flags: 0x0 devid_to: 0001:04:00.0');
    expect(otherSeg !== null && !otherSeg.ok).toBe(true);
    const r = probeAmdLine('[    0.215173] AMD-Vi:   DEV_ALIAS\t\t\tdevid: 0000:01:20.0 flags: 0x0 devid_to: 00:14.4');
    expect(r !== null && !r.ok).toBe(true);
  });

  it.each([
    ['before PCI segments', PRE_SEGMENT],
    ['with segments', SEGMENT],
    ['after the clean-up', NEWEST],
  ])('gives every unit of the segment the alias table (%s)', (_era, era) => {
    const lines = [
      '[    4.345723] AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40',
      ...dumpLines(era, 0),
      `[    4.345724] ${FEATURES}`,
    ];
    const units = probe(lines);
    expect(units.map((u) => u.id)).toEqual(['ivhd0']);
    expect(units[0].registers['ivrsAliases']).toEqual([
      { device: '0000:01:00.0', alias: '0000:00:14.4' },
      { first: '0000:05:00.0', last: '0000:05:1f.7', alias: '0000:04:00.0' },
    ]);
    // The dump lines are the unit's provenance too.
    expect(units[0].lines).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // And the registers make a unit whose DTEs follow the aliases.
    const host = createHost({ plugins: [plugin], profile: { name: 'probed', units: [{ id: 'ivhd0', vendor: 'amd-vi', registers: units[0].registers }], devices: [{ bdf: '0000:05:03.0', unit: 'ivhd0', group: 1 }] } });
    const unit = host.units[0].ops as AmdUnit;
    expect(unit.deviceIdOf(0x0518)).toBe(0x0400);
    host.device('0000:05:03.0').bindIommufd(host.openIommufd());
    expect(unit.deviceTableEntry(0x0400)).toEqual(CLEAR_DTE);
  });

  it('replays the entries in log order: a later alias wins, a range start without alias ends an alias range', () => {
    const p = NEWEST.prefix;
    const units = probe([
      FEATURES,
      p + kernelPrintf(NEWEST.alias, 0, ...bdf(0x0100), 0, ...bdf(0x00a4)),
      p + kernelPrintf(NEWEST.alias, 0, ...bdf(0x0100), 0, ...bdf(0x00a5)),
      p + kernelPrintf(NEWEST.aliasRange, 0, ...bdf(0x0500), 0, 0, ...bdf(0x0400)),
      p + kernelPrintf(NEWEST.selectStart, 0, ...bdf(0x0600), 0),
      p + kernelPrintf(NEWEST.rangeEnd, 0, ...bdf(0x06ff)),
    ]);
    // A client part with only the features line: the one unit gets the table.
    expect(units.map((u) => u.id)).toEqual(['ivhd0']);
    expect(units[0].registers['ivrsAliases']).toEqual([{ device: '0000:01:00.0', alias: '0000:00:14.5' }]);
  });

  it('drops the entries of a segment no unit is in, and the entries when there is no unit', () => {
    const p = NEWEST.prefix;
    const other = p + kernelPrintf(NEWEST.alias, 1, ...bdf(0x0100), 0, ...bdf(0x00a4));
    const units = probe(['AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40', FEATURES, other]);
    expect(units).toHaveLength(1);
    expect(units[0].registers['ivrsAliases']).toBeUndefined();
    expect(probe([other])).toEqual([]);
    expect(completeAmdProbedUnits([])).toEqual([]);
  });
});

describe('ioasid decode amd-vi on an amd_iommu_dump alias entry', () => {
  it('explains an alias select, an alias range and a range end', () => {
    const sel = decodeAmd(`[    0.215173] AMD-Vi:   ${kernelPrintf(NEWEST.alias.trimStart(), 0, 1, 0, 0, 0, 0, 0x14, 4)}`);
    expect(sel.ok && sel.value).toMatchObject({ vendor: 'amd-vi', kind: 'ivhd-alias-select', fields: { type: '0x42', DeviceID: '0000:01:00.0', flags: '0x0', alias: '0000:00:14.4' } });
    expect(sel.ok && sel.value.summary).toBe('requests of 0000:01:00.0 reach the IOMMU as DeviceID 0000:00:14.4 (IVHD alias select): the driver writes the device\'s DTE at both');
    const range = decodeAmd(PRE_SEGMENT.prefix + kernelPrintf(PRE_SEGMENT.aliasRange, 0xff, 0, 0, 0, 0, 0x14, 4));
    expect(range.ok && range.value).toMatchObject({ kind: 'ivhd-alias-range', fields: { DeviceID: 'ff:00.0', alias: '00:14.4' } });
    const end = decodeAmd(PRE_SEGMENT.prefix + kernelPrintf(PRE_SEGMENT.rangeEnd, 0xff, 0x1f, 7));
    expect(end.ok && end.value.summary).toBe('the device range that started last ends at ff:1f.7');
    const bad = decodeAmd('AMD-Vi:   DEV_ALIAS\t\t\tdevid: 0000:01:20.0 flags: 0x0 devid_to: 00:14.4');
    expect(!bad.ok && bad.error).toBe('DEV_ALIAS: device 20 of bus 01 is past 0x1f');
  });
});
