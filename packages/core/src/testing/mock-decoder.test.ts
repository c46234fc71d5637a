import { describe, expect, it } from 'vitest';
import { PERM_WRITE } from '../driver/pgtable.js';
import { mockCodec } from './mock-codec.js';
import { mockDecoder } from './mock-decoder.js';
import { mockPlugin } from './mock-vendor.js';
import { PluginHost } from '../driver/plugin.js';

function words(bytes: Uint8Array): string {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [0, 8, 16, 24].map((o) => `0x${dv.getBigUint64(o, true).toString(16)}`).join(' ');
}

describe('mock decoder', () => {
  it('explains a fault record field by field, with its words, the log line and advice', () => {
    const rec = mockCodec.encodeFault({ unit: 0, rid: 0x10, pasid: 5, addr: 0x7000n, perm: PERM_WRITE, failure: 'permission-write', stage2: false, recoverable: false, grpid: 0, last: false });
    const r = mockDecoder.decode(words(rec));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.kind).toBe('fault');
    expect(r.value.fields).toMatchObject({ KIND: 0, RID: 0x10, PASID: 5, PERM: PERM_WRITE, ADDR: '0x7000', FAILURE: 2, STAGE2: 0 });
    expect(r.value.linux).toBe('mock-iommu unit0: write fault from rid 0x10 pasid 5 at 0x7000: permission-write');
    expect(r.value.words?.map((w) => w.name)).toEqual(['word 0', 'word 1', 'word 2', 'word 3']);
    expect(r.value.words?.[2].value).toBe(0x7000n);
    expect(r.value.advice?.checks.length).toBeGreaterThan(0);
  });

  it('refuses what is not a record, naming what it expected', () => {
    expect(mockDecoder.decode('0x1 0x2')).toEqual({ ok: false, error: 'a mock record is 4 64-bit words, got 2' });
    expect(mockDecoder.decode('0x1 0x2 0x3 zz')).toEqual({ ok: false, error: 'not a 64-bit hex word: zz' });
    expect(mockDecoder.decode('0x1 0x2 0x3 0x4', 'cap')).toMatchObject({ ok: false });
  });

  it('is the mock plugin\'s decoder part, found by vendor id', () => {
    const host = new PluginHost();
    host.load(mockPlugin());
    expect(host.decoder('mock')).toBe(mockDecoder);
    expect(host.decoders()).toEqual([mockDecoder]);
  });
});
