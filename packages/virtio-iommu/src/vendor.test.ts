import { describe, expect, it } from 'vitest';
import { VirtioIommuVendor } from './vendor.js';
import { decodeVirtio, parseHexBytes } from './decode.js';
import { encodeAttach, encodeMap, encodeProbe } from './requests.js';
import { encodeFault } from './records.js';
import { encodeConfig, BASE_CONFIG } from './config.js';

const hexOf = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

describe('ioasid decode virtio-iommu', () => {
  it('reads hex bytes spaced, comma separated or as one string', () => {
    expect([...parseHexBytes('03 0 ff')!]).toEqual([3, 0, 255]);
    expect([...parseHexBytes('0x03,0x01')!]).toEqual([3, 1]);
    expect([...parseHexBytes('0300ff')!]).toEqual([3, 0, 255]);
    expect(parseHexBytes('030')).toBeNull();
    expect(parseHexBytes('zz')).toBeNull();
  });

  it('explains a MAP request, with the status when the tail follows', () => {
    const m = encodeMap({ domain: 1, virtStart: 0x1000n, virtEnd: 0x1fffn, physStart: 0xa000n, flags: 1 });
    const r = decodeVirtio(hexOf(m));
    expect(r).toMatchObject({ ok: true, value: { kind: 'request MAP', summary: 'MAP domain 1: IOVA 0x1000-0x1fff (4096 bytes) -> 0xa000 READ' } });
    const withTail = new Uint8Array(40);
    withTail.set(m);
    withTail[36] = 5;
    expect(decodeVirtio(hexOf(withTail), 'request')).toMatchObject({ ok: true, value: { fields: { status: 'RANGE' }, summary: expect.stringMatching(/RANGE \(Linux: -ERANGE\)$/) } });
    expect(decodeVirtio(hexOf(encodeAttach({ domain: 2, endpoint: 8, flags: 1 })))).toMatchObject({ ok: true, value: { summary: 'ATTACH endpoint 8 to bypass domain 2' } });
    expect(decodeVirtio(hexOf(encodeProbe({ endpoint: 16 })))).toMatchObject({ ok: true, value: { summary: 'PROBE endpoint 16' } });
    expect(decodeVirtio('09 00 00 00', 'request')).toMatchObject({ ok: false, error: expect.stringMatching(/unknown request type 9/) });
  });

  it('explains a fault record and gives the Linux line', () => {
    const f = encodeFault({ reason: 2, flags: 0x102, endpoint: 16, address: 0xabc000n });
    expect(decodeVirtio(hexOf(f))).toMatchObject({
      ok: true,
      value: { kind: 'fault', summary: 'MAPPING fault from endpoint 16 at 0xabc000 [WRITE ADDRESS]', linux: 'page fault from EP 16 at 0xabc000 [W]' },
    });
  });

  it('explains the configuration bytes, a status and the driver\'s log lines', () => {
    const c = encodeConfig({ ...BASE_CONFIG, page_size_mask: 0x40201000n, input_range: { start: 0n, end: (1n << 39n) - 1n } });
    expect(decodeVirtio(hexOf(c))).toMatchObject({ ok: true, value: { kind: 'config', linux: 'input address: 39 bits\npage mask: 0x40201000' } });
    expect(decodeVirtio('8', 'status')).toMatchObject({ ok: true, value: { summary: 'VIRTIO_IOMMU_S_NOMEM: Linux returns -ENOMEM' } });
    expect(decodeVirtio('virtio_iommu virtio0: domain fault from EP 3')).toMatchObject({ ok: true, value: { kind: 'fault line', fields: { reason: 1, endpoint: 3 } } });
    expect(decodeVirtio('[    0.512345] virtio_iommu virtio0: page mask: 0x201000')).toMatchObject({ ok: true, value: { kind: 'probe', fields: { granule: '0x1000' } } });
    expect(decodeVirtio('virtio_iommu virtio0: input address: 48 bits')).toMatchObject({ ok: true, value: { fields: { inputBits: 48 } } });
  });

  it('refuses what it cannot name', () => {
    expect(decodeVirtio('01 02 03')).toMatchObject({ ok: false, error: expect.stringMatching(/--kind/) });
    expect(decodeVirtio('00', 'bogus')).toMatchObject({ ok: false, error: expect.stringMatching(/unknown kind/) });
    expect(decodeVirtio('hello world')).toMatchObject({ ok: false });
    expect(decodeVirtio('00 00', 'fault')).toMatchObject({ ok: false, error: expect.stringMatching(/24 bytes/) });
  });
});

describe('ioasid probe: the driver\'s boot lines', () => {
  it('reads the unit back from "input address" and "page mask"', () => {
    const v = new VirtioIommuVendor();
    expect(v.probeLine('[    0.901234] virtio_iommu virtio0: input address: 39 bits')).toEqual({
      ok: true,
      value: { id: 'virtio0', registers: { features: '0x100000005', input_start: '0x0', input_end: '0x7fffffffff' } },
    });
    expect(v.probeLine('virtio_iommu virtio0: page mask: 0x40201000')).toEqual({ ok: true, value: { id: 'virtio0', registers: { page_size_mask: '0x40201000' } } });
    expect(v.probeLine('virtio_iommu virtio1: input address: 64 bits')).toEqual({ ok: true, value: { id: 'virtio1', registers: { features: '0x100000004' } } });
    expect(v.probeLine('virtio_iommu virtio0: input address: 99 bits')).toMatchObject({ ok: false });
    expect(v.probeLine('DMAR: IOMMU enabled')).toBeNull();
    const merged = { features: '0x100000005', input_start: '0x0', input_end: '0x7fffffffff', page_size_mask: '0x40201000' };
    expect(v.decodeRegisters(merged)).toMatchObject({ ok: true, value: { caps: { hostStage: { inputBits: [39], pageSizes: 0x40201000n } } } });
  });
});
