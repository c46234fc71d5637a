import { describe, it, expect } from 'vitest';
import { renderEventLines, parseEventLines, parseEventLog, parseProbeLine, renderProbeLine, stripLogPrefix, renderUnexpectedPriLines, parseUnexpectedPriLine, renderCmdqErrorLine, parseCmdqErrorLine } from './logs.js';
import { encodeEvent } from './records.js';

const evt = encodeEvent({ ID: 0x10, StreamID: 0x100, RnW: 1, CLASS: 2, InputAddr: 0xffff0000n });

describe('event lines', () => {
  it('renders the newer decoded format', () => {
    expect(renderEventLines(evt, { client: '0000:00:01.0' })).toEqual([
      'event 0x10 received:',
      '\t0x0000010000000010',
      '\t0x0000020800000000',
      '\t0x00000000ffff0000',
      '\t0x0000000000000000',
      'event: F_TRANSLATION client: 0000:00:01.0 sid: 0x100 ssid: 0x0 iova: 0xffff0000 ipa: 0x0',
      'unpriv data read s1 "Input address caused fault" stag: 0x0',
    ]);
  });
  it('parses both formats with prefixes', () => {
    const lines = renderEventLines(evt, { device: 'arm-smmu-v3.0.auto' }).map((l, i) => `[    1.23456${i}] ${l}`);
    const r = parseEventLines(lines);
    expect(r.ok && r.value).toMatchObject({ device: 'arm-smmu-v3.0.auto', id: 0x10, consumed: 7, summary: { sid: 0x100, client: null, iova: 0xffff0000n }, detail: { read: true, class: 2 } });
    const old = renderEventLines(evt, { style: 'raw', device: 'arm-smmu-v3.0.auto' }).map((l) => `Jan 02 03:04:05 host kernel: ${l}`);
    const o = parseEventLines(old);
    expect(o.ok && o.value.consumed).toBe(5);
    expect(parseEventLog(['noise', ...old, 'more'])).toHaveLength(1);
  });
  it('names what could not be read', () => {
    const r = parseEventLines(['event 0x10 received:', '\t0x0000010000000010']);
    expect(r).toEqual({ ok: false, error: 'missing raw dword 1 of 4 (line 3)' });
  });
});

describe('probe and misc lines', () => {
  it('round-trips the probe line', () => {
    expect(renderProbeLine({ ias: 48, oas: 44, features: 0x1fef })).toBe('ias 48-bit, oas 44-bit (features 0x00001fef)');
    expect(parseProbeLine('[Tue Jan  2 03:04:05 2024] arm-smmu-v3 arm-smmu-v3.10.auto: ias 48-bit, oas 48-bit (features 0x001e1fbf)')).toEqual({
      ok: true, value: { device: 'arm-smmu-v3.10.auto', ias: 48, oas: 48, features: 0x001e1fbf },
    });
    expect(parseProbeLine('something else').ok).toBe(false);
    expect(stripLogPrefix('arm-smmu-v3 2b400000.iommu: x')).toEqual({ device: '2b400000.iommu', message: 'x' });
  });
  it('PRI and CMDQ error lines', () => {
    const p = { sid: 0x100, ssid: 0x42, grpid: 3, last: true, privileged: false, read: true, write: true, exec: false, iova: 0x7000n };
    const lines = renderUnexpectedPriLines(p);
    expect(lines[1]).toBe('\tsid 0x00000100.0x00042: [3L] unprivileged RW access at iova 0x0000000000007000');
    expect(parseUnexpectedPriLine(lines[1])).toEqual({ ok: true, value: p });
    expect(renderCmdqErrorLine(0x01000005)).toBe('CMDQ error (cons 0x01000005): Illegal command');
    expect(parseCmdqErrorLine('CMDQ error (cons 0x01000005): Illegal command')).toMatchObject({ ok: true, value: { error: 1 } });
  });
});
