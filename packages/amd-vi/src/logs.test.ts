import { describe, expect, it } from 'vitest';
import { AMD_EVENT, decodeEvent, encodeEvent, type AmdEvent } from './records.js';
import { checkFeatureNames, parseAmdLogLine, renderAmdBootLines, renderAmdEventLines, stripAmdLogPrefixes, type AmdEventEra } from './logs.js';
import { amdPresets } from './presets.js';

function ev(code: number, extra: Partial<Parameters<typeof encodeEvent>[0]> = {}): AmdEvent {
  const r = decodeEvent(encodeEvent({ code, devid: 0x0100, pasidOrDomain: 0xe, flags: 0x20, address: 0xfffd0000n, ...extra }));
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('boot lines', () => {
  const u = { efr: 0x206d73ef22254aden, efr2: 0n, pciAddress: '0000:00:00.2', capPtr: 0x40 };

  it('renders every kernel era exactly', () => {
    expect(renderAmdBootLines(u, 'v4')).toEqual([
      'AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40',
      'AMD-Vi: Extended features (0x206d73ef22254ade):',
      ' PPR X2APIC NX GT IA GA PC GA_vAPIC',
    ]);
    expect(renderAmdBootLines(u, 'v5-split')).toEqual([
      'pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40',
      'pci 0000:00:00.2: AMD-Vi: Extended features (0x206d73ef22254ade):',
      ' PPR X2APIC NX GT IA GA PC GA_vAPIC',
    ]);
    expect(renderAmdBootLines(u, 'v5')).toEqual(['pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40', 'AMD-Vi: Extended features (0x206d73ef22254ade): PPR X2APIC NX GT IA GA PC GA_vAPIC']);
    expect(renderAmdBootLines(u, 'v6')).toEqual(['pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40', 'AMD-Vi: Extended features (0x206d73ef22254ade, 0x0): PPR X2APIC NX GT IA GA PC GA_vAPIC']);
    expect(renderAmdBootLines(u, 'v6', false)).toEqual(['pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40']);
    expect(renderAmdBootLines({ ...u, efr: 0xa5bf7320a2294aeen, efr2: 0x1fn }, 'newest')).toEqual(['AMD-Vi: Extended features (0xa5bf7320a2294aee, 0x1f): PPR X2APIC NX [5] IA GA PC GA_vAPIC SNP SEV-TIO']);
  });

  it('reproduces what every preset machine printed', () => {
    for (const p of amdPresets) {
      const lines = p.units.flatMap((unit, i) => renderAmdBootLines({ ...unit, capPtr: 0x40 }, p.bootEra, i === 0));
      for (const printed of p.printed) expect(lines, p.id).toContain(printed);
    }
  });

  it('parses real lines with their dmesg, journal and syslog prefixes', () => {
    const r = parseAmdLogLine('[    0.532970] AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR NX GT IA PC GA_vAPIC');
    expect(r.ok && r.value).toEqual({ kind: 'features', pciAddress: null, efr: 0x58f77ef22294a5an, efr2: 0n, names: ['PPR', 'NX', 'GT', 'IA', 'PC', 'GA_vAPIC'] });
    const s = parseAmdLogLine('Oct 24 19:36:33 localhost kernel: pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40');
    expect(s.ok && s.value).toEqual({ kind: 'found-iommu', pciAddress: '0000:00:00.2', capPtr: 0x40, era: 'v5' });
    const t = parseAmdLogLine('[    0.652201] AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40');
    expect(t.ok && t.value.kind).toBe('found-iommu');
    const split = parseAmdLogLine('[    2.361839] pci 0000:00:00.2: AMD-Vi: Extended features (0x206d73ef22254ade):');
    expect(split.ok && split.value).toMatchObject({ kind: 'features', pciAddress: '0000:00:00.2', efr2: null, names: [] });
    const cont = parseAmdLogLine('[    2.361846]  PPR X2APIC NX GT IA GA PC GA_vAPIC');
    expect(cont.ok && cont.value).toEqual({ kind: 'features-cont', names: ['PPR', 'X2APIC', 'NX', 'GT', 'IA', 'GA', 'PC', 'GA_vAPIC'] });
    expect(stripAmdLogPrefixes('[    2.361846]  PPR X2APIC')).toBe(' PPR X2APIC');
  });

  it('refuses a features line whose names disagree with its registers', () => {
    const r = parseAmdLogLine('AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR X2APIC NX GT IA PC GA_vAPIC');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/X2APIC but EFR bit 2 is clear/);
    expect(parseAmdLogLine('AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR NX GT IA PC').ok).toBe(false);
    expect(parseAmdLogLine('AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR NX GT IA PC GA_vAPIC WARP').ok).toBe(false);
    expect(checkFeatureNames(0x1n, null, ['PreF'])).toBeNull();
    expect(parseAmdLogLine('AMD-Vi: Extended features (0x10000000000000000):').ok).toBe(false);
  });
});

describe('event lines', () => {
  it('renders IO_PAGE_FAULT in the 4.x split, 4.x, 5.x and 6.x forms', () => {
    const e = ev(AMD_EVENT.IO_PAGE_FAULT);
    expect(renderAmdEventLines(e, { era: 'v4-split' })).toEqual(['AMD-Vi: Event logged [', 'IO_PAGE_FAULT device=01:00.0 domain=0x000e address=0x00000000fffd0000 flags=0x0020]']);
    expect(renderAmdEventLines(e, { era: 'v4' })).toEqual(['AMD-Vi: Event logged [IO_PAGE_FAULT device=01:00.0 domain=0x000e address=0x00000000fffd0000 flags=0x0020]']);
    expect(renderAmdEventLines(e, { era: 'v5', driver: 'nvme' })).toEqual(['nvme 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xfffd0000 flags=0x0020]']);
    expect(renderAmdEventLines(e, { era: 'v5', deviceKnown: false })).toEqual(['AMD-Vi: Event logged [IO_PAGE_FAULT device=01:00.0 domain=0x000e address=0xfffd0000 flags=0x0020]']);
    expect(renderAmdEventLines(e, { era: 'v6', deviceKnown: false })).toEqual(['AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:01:00.0 domain=0x000e address=0xfffd0000 flags=0x0020]']);
  });

  it('renders the other events through the IOMMU device in 6.x, segment-qualified, with the PASID', () => {
    expect(renderAmdEventLines(ev(AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, { pasidOrDomain: 0x12 }), { ivhd: 2 })).toEqual([
      'iommu ivhd2: AMD-Vi: Event logged [ILLEGAL_DEV_TABLE_ENTRY device=0000:01:00.0 pasid=0x00012 address=0xfffd0000 flags=0x0020]',
    ]);
    expect(renderAmdEventLines(ev(AMD_EVENT.INVALID_PPR_REQUEST, { pasidOrDomain: 0x1ab }), {})[0]).toBe(
      'iommu ivhd0: AMD-Vi: Event logged [INVALID_PPR_REQUEST device=0000:01:00.0 pasid=0x00000 address=0xfffd0000 flags=0x0020 tag=0x1ab]',
    );
    expect(renderAmdEventLines(ev(AMD_EVENT.ILLEGAL_COMMAND_ERROR), {})[0]).toBe('iommu ivhd0: AMD-Vi: Event logged [ILLEGAL_COMMAND_ERROR address=0xfffd0000]');
    expect(renderAmdEventLines(ev(AMD_EVENT.RMP_PAGE_FAULT, { pasidOrDomain: 0x5, word0High: 0x3 }), { driver: 'nvme' })[0]).toBe(
      'nvme 0000:01:00.0: AMD-Vi: Event logged [RMP_PAGE_FAULT vmg_tag=0x0005, gpa=0xfffd0000, flags_rmp=0x0030, flags=0x0020]',
    );
    expect(renderAmdEventLines(ev(0xa), {})[0]).toBe('iommu ivhd0: AMD-Vi: Event logged [UNKNOWN event[0]=0x00000100 event[1]=0xa020000e event[2]=0xfffd0000 event[3]=0x00000000');
    expect(renderAmdEventLines(ev(AMD_EVENT.IOTLB_INV_TIMEOUT), { era: 'v5' })[0]).toBe('pci 0000:00:00.2: AMD-Vi: Event logged [IOTLB_INV_TIMEOUT device=01:00.0 address=0xfffd0000]');
  });

  it('parses what it renders, for every event code and era', () => {
    const eras: AmdEventEra[] = ['v4', 'v5', 'v6'];
    for (const code of [1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xd, 0xe]) {
      for (const era of eras) {
        for (const known of [true, false]) {
          const lines = renderAmdEventLines(ev(code), { era, deviceKnown: known });
          const r = parseAmdLogLine(`[   12.345678] ${lines[lines.length - 1]}`);
          expect(r.ok, `${code} ${era}: ${lines.join('|')} ${r.ok ? '' : r.error}`).toBe(true);
          if (r.ok && r.value.kind === 'event') {
            expect(r.value.code, lines[0]).toBe(code);
            if (code !== 5 && code !== 6 && code !== 0xa) expect(r.value.device?.devid, lines[0]).toBe(0x100);
          }
        }
      }
    }
  });

  it('parses the classic real-world forms', () => {
    const a = parseAmdLogLine('[ 1234.5] nvme 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xfffd0000 flags=0x0020]');
    expect(a.ok && a.value).toMatchObject({ kind: 'event', code: 2, driver: 'nvme', source: '0000:01:00.0', device: { segment: 0, devid: 0x100 }, fields: { domain: 0xen, address: 0xfffd0000n, flags: 0x20n } });
    const head = parseAmdLogLine('[    5.1] AMD-Vi: Event logged [');
    expect(head.ok && head.value).toMatchObject({ kind: 'event', era: 'v4-split-head' });
    const tail = parseAmdLogLine('[    5.1] IO_PAGE_FAULT device=00:14.0 domain=0x0000 address=0x00000000fdf8c000 flags=0x0000]');
    expect(tail.ok && tail.value).toMatchObject({ kind: 'event', era: 'v4-split', code: 2, device: { segment: null, devid: 0xa0 } });
    const v6 = parseAmdLogLine('iommu ivhd0: AMD-Vi: Event logged [INVALID_DEVICE_REQUEST device=0001:41:00.0 pasid=0x00003 address=0x1000 flags=0x0001]');
    expect(v6.ok && v6.value).toMatchObject({ era: 'v6', device: { segment: 1, devid: 0x4100 }, fields: { pasid: 3n } });
    expect(parseAmdLogLine('AMD-Vi: Event logged [IO_PAGE_FAULT device=zz:00.0 domain=0x0 address=0x0 flags=0x0]').ok).toBe(false);
    expect(parseAmdLogLine('AMD-Vi: Event logged [NOT_AN_EVENT address=0x0]').ok).toBe(false);
    expect(parseAmdLogLine('DMAR: something else').ok).toBe(false);
  });
});
