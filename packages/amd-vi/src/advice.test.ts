import { describe, expect, it } from 'vitest';
import { wordField, type DecodeOutput } from '@ioasid/core/driver';
import { decodeAmd } from './decode.js';

function decoded(text: string, kind?: string): DecodeOutput {
  const r = decodeAmd(text, kind);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('AMD-Vi decoder: record words and advice', () => {
  it('an IO_PAGE_FAULT line: the event log entry it came from, and an unmapped IOVA as the usual cause', () => {
    const o = decoded('nvme 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xfffd0000 flags=0x0020]');
    expect([wordField(o.words!, 'EventCode'), wordField(o.words!, 'DeviceID'), wordField(o.words!, 'RW'), wordField(o.words!, 'PR'), wordField(o.words!, 'Address')]).toEqual([2n, 0x100n, 1n, 0n, 0xfffd0000n]);
    expect(o.advice!.causes[0]).toBe('PR clear: no present entry maps this address in the domain.');
    expect(o.advice!.causes.join('\n')).toMatch(/missing IOAS map/);
    expect(o.advice!.checks[0]).toContain('lspci -vvs 01:00.0');
    expect(o.advice!.checks[1]).toBe('Which address: 0xfffd0000, a write without a PASID.');
  });

  it('present and a permission error: the access RW names; an interrupt request is an MSI matter', () => {
    const pe = decoded('AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:02:00.0 domain=0x0002 address=0x1000 flags=0x0050]');
    expect(pe.advice!.causes[0]).toMatch(/^PR and PE/);
    expect(pe.advice!.causes.join('\n')).toMatch(/without read permission/);
    const intr = decoded('AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:02:00.0 domain=0x0002 address=0xfee00000 flags=0x0008]');
    expect(intr.advice!.causes[0]).toMatch(/interrupt request/);
  });

  it('a raw PPR entry carries its words and no advice; a raw IOTLB_INV_TIMEOUT gets advice about the device', () => {
    const ppr = decoded('0x0120000700050200 0x7000', 'ppr');
    expect([wordField(ppr.words!, 'DeviceID'), wordField(ppr.words!, 'PRGIndex'), wordField(ppr.words!, 'Address')]).toEqual([0x200n, 7n, 0x7000n]);
    expect(ppr.advice).toBeUndefined();
    const to = decoded('0x7000000000000100 0x0', 'event');
    expect(to.advice!.causes[0]).toMatch(/^IOTLB_INV_TIMEOUT/);
  });
});
