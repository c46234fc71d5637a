import { describe, expect, it } from 'vitest';
import { wordField, type DecodeOutput } from '@ioasid/core/driver';
import { decodeSmmu } from './decode.js';
import { EVT_ID, encodeEvent, eventWords } from './records.js';

function decoded(text: string, kind?: string): DecodeOutput {
  const r = decodeSmmu(text, kind);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}
const raw = (e: Parameters<typeof encodeEvent>[0]) => eventWords(encodeEvent(e)).map((w) => `0x${w.toString(16)}`).join(' ');

describe('SMMUv3 decoder: record words and advice', () => {
  it('an F_TRANSLATION record: its four dwords as a diagram, and DMA to an unmapped IOVA as the usual cause', () => {
    const o = decoded(raw({ ID: EVT_ID.F_TRANSLATION, StreamID: 0x100, RnW: 1, CLASS: 1, InputAddr: 0xffff0000n }), 'event');
    expect(o.words).toHaveLength(4);
    expect([wordField(o.words!, 'ID'), wordField(o.words!, 'StreamID'), wordField(o.words!, 'InputAddr')]).toEqual([0x10n, 0x100n, 0xffff0000n]);
    expect(o.advice!.causes[0]).toMatch(/^F_TRANSLATION: the table walk found an invalid descriptor/);
    expect(o.advice!.causes.join('\n')).toMatch(/already freed or unmapped/);
    expect(o.advice!.checks[0]).toMatch(/^Which device: StreamID 0x100\./);
    expect(o.advice!.checks[1]).toBe('Which address: 0xffff0000, a read without a PASID.');
  });

  it('a stage-2 permission fault names the IPA and the VMM; a write asks about a read-only mapping', () => {
    const o = decoded(raw({ ID: EVT_ID.F_PERMISSION, StreamID: 8, SSV: 1, SubstreamID: 2, RnW: 0, S2: 1, InputAddr: 0x1000n, IPA: 0x42000n }), 'event');
    expect(o.advice!.causes.join('\n')).toMatch(/Stage 2 .* guest-physical 0x42000/);
    expect(o.advice!.causes.join('\n')).toMatch(/mapped read-only/);
    expect(o.advice!.checks[1]).toBe('Which address: 0x42000, a write with PASID 2.');
  });

  it('configuration errors point at the STE and CD; the decoded "event:" line gets the same advice by name', () => {
    expect(decoded(raw({ ID: EVT_ID.C_BAD_STE, StreamID: 8 }), 'event').advice!.causes[0]).toMatch(/^C_BAD_STE/);
    const line = decoded('arm-smmu-v3 arm-smmu-v3.0.auto: event: F_TRANSLATION client: 0000:00:01.0 sid: 0x100 ssid: 0 iova: 0xffff0000 ipa: 0');
    expect(line.advice!.checks[0]).toContain('lspci -vvs 0000:00:01.0');
    expect(line.advice!.checks[1]).toBe('Which address: 0xffff0000 without a PASID.');
  });

  it('a PRI entry carries its words and no advice', () => {
    const o = decoded('0x8000000300000100 0x0000000000005009', 'pri');
    expect([wordField(o.words!, 'SID'), wordField(o.words!, 'SSID'), wordField(o.words!, 'PRGIndex')]).toEqual([0x100n, 3n, 9n]);
    expect(o.advice).toBeUndefined();
  });
});
