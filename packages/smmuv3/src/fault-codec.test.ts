import { describe, it, expect } from 'vitest';
import { readLe64Words, PAGE_RESP_FAILURE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@ioasid/core/driver';
import type { FailedAccess, TranslationFailure } from '@ioasid/core/driver';
import { SmmuFaultCodec } from './fault-codec.js';
import { EVT_ID, decodeEvent, eventWords } from './records.js';
import { CMDQ_RESUME_0_RESP, decodeCommand } from './commands.js';

const codec = new SmmuFaultCodec();

function access(over: Partial<FailedAccess> = {}): FailedAccess {
  return { unit: 0, rid: 0x100, pasid: -1, addr: 0xffff0000n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true, ...over };
}

describe('event records', () => {
  it('maps each failure to its event ID', () => {
    const cases: Array<[TranslationFailure, number, number]> = [
      ['not-present', -1, 0x10],
      ['permission-read', -1, 0x13],
      ['permission-write', -1, 0x13],
      ['permission-exec', -1, 0x13],
      ['permission-priv', -1, 0x13],
      ['address-size', -1, 0x11],
      ['table-fault', -1, 0x10],
      ['no-context', -1, 0x04],
      ['no-context', 5, 0x08],
      ['blocked', -1, 0x06],
      ['blocked', 5, 0x0a],
    ];
    for (const [failure, pasid, id] of cases) {
      const rec = codec.encodeFault(access({ failure, pasid }));
      expect(rec.byteLength).toBe(32);
      expect(codec.decodeFault(rec, 0).reason, failure).toBe(id);
    }
  });

  it("uses the walk's own context event for 'no-context' (C_BAD_CD, F_STREAM_DISABLED...)", () => {
    const cases: Array<[number, number, number]> = [
      [EVT_ID.C_BAD_CD, 5, 0x0a],
      [EVT_ID.C_BAD_CD, -1, 0x0a],
      [EVT_ID.C_BAD_SUBSTREAMID, 5, 0x08],
      [EVT_ID.F_STREAM_DISABLED, -1, 0x06],
      [EVT_ID.C_BAD_STE, 5, 0x04],
      // Not a configuration event: ignored, the default mapping applies.
      [EVT_ID.F_TRANSLATION, 5, 0x08],
      [0, -1, 0x04],
    ];
    for (const [contextFault, pasid, id] of cases) {
      const f = codec.decodeFault(codec.encodeFault(access({ failure: 'no-context', pasid, contextFault })), 0);
      expect(f.reason, `contextFault ${contextFault} pasid ${pasid}`).toBe(id);
    }
  });

  it('round-trips a translation fault', () => {
    const a = access({ unit: 2, rid: 0x1234, pasid: 0x42, addr: 0x7fff_1234_5000n, perm: PERM_WRITE | PERM_PRIV });
    const f = codec.decodeFault(codec.encodeFault(a), 2);
    expect(f).toEqual({ kind: 'dma', unit: 2, rid: 0x1234, pasid: 0x42, addr: 0x7fff_1234_5000n, perm: PERM_WRITE | PERM_PRIV, grpid: 0, last: true, reason: 0x10, reasonText: 'F_TRANSLATION', stage2: false });
    const x = codec.decodeFault(codec.encodeFault(access({ perm: PERM_READ | PERM_EXEC, failure: 'permission-exec' })), 0);
    expect(x).toMatchObject({ perm: PERM_READ | PERM_EXEC, reasonText: 'F_PERMISSION', pasid: -1 });
  });

  it('a stage-2 fault on a guest table fetch is CLASS TT with S2 set', () => {
    const d = decodeEvent(codec.encodeFault(access({ failure: 'table-fault' })));
    expect(d.ok && d.value).toMatchObject({ ID: 0x10, CLASS: 1, S2: 1, TTRnW: 1, RnW: 1 });
    const s2 = decodeEvent(codec.encodeFault(access({ stage2: true, addr: 0x8000_1000n })));
    expect(s2.ok && s2.value).toMatchObject({ S2: 1, CLASS: 2, IPA: 0x8000_1000n });
  });

  it('renders the decoded kernel lines exactly', () => {
    const f = codec.decodeFault(codec.encodeFault(access()), 0);
    expect(codec.renderLog(f, '0000:00:01.0', 'arm-smmu-v3.0.auto')).toEqual([
      'arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000010000000010',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020800000000',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x00000000ffff0000',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000',
      'arm-smmu-v3 arm-smmu-v3.0.auto: event: F_TRANSLATION client: 0000:00:01.0 sid: 0x100 ssid: 0x0 iova: 0xffff0000 ipa: 0x0',
      'arm-smmu-v3 arm-smmu-v3.0.auto: unpriv data read s1 "Input address caused fault" stag: 0x0',
    ]);
    const p = codec.decodeFault(codec.encodeFault(access({ failure: 'permission-write', perm: PERM_WRITE, pasid: 3, addr: 0x1000n })), 0);
    expect(codec.renderLog(p, '0000:01:00.0', 'smmu0').slice(5)).toEqual([
      'arm-smmu-v3 smmu0: event: F_PERMISSION client: 0000:01:00.0 sid: 0x100 ssid: 0x3 iova: 0x1000 ipa: 0x0',
      'arm-smmu-v3 smmu0: unpriv data write s1 "Input address caused fault" stag: 0x0',
    ]);
    const c = codec.decodeFault(codec.encodeFault(access({ failure: 'no-context' })), 0);
    expect(codec.renderLog(c, '0000:01:00.0', 'smmu0').at(-1)).toBe('arm-smmu-v3 smmu0: event: C_BAD_STE client: 0000:01:00.0 sid: 0x100 ssid: 0x0');
    expect(new SmmuFaultCodec({ logStyle: 'raw' }).renderLog(c, '0000:01:00.0', 'smmu0')).toHaveLength(5);
  });
});

describe('PRI queue and page responses', () => {
  it('round-trips a page request', () => {
    const a = access({ recoverable: true, pasid: 0x42, addr: 0x7000_0123n, perm: PERM_READ | PERM_WRITE, grpid: 0x1ff, last: false });
    const rec = codec.encodePageRequest(a);
    expect(rec.byteLength).toBe(16);
    expect(codec.decodePageRequest(rec, 1)).toEqual({
      kind: 'page-request', unit: 1, rid: 0x100, pasid: 0x42, addr: 0x7000_0000n, perm: PERM_READ | PERM_WRITE, grpid: 0x1ff, last: false, reason: 0, reasonText: 'PRI page request', stage2: false,
    });
    const f = codec.decodePageRequest(codec.encodePageRequest(access({ pasid: 3, perm: 0, last: true })), 0);
    expect(f.reasonText).toBe('PRI stop marker');
    expect(codec.renderLog(codec.decodePageRequest(rec, 1), '0000:01:00.0', 'smmu0')).toEqual([
      'arm-smmu-v3 smmu0: unexpected PRI request received:',
      'arm-smmu-v3 smmu0: \tsid 0x00000100.0x00042: [511] unprivileged RW access at iova 0x0000000070000000',
    ]);
  });

  it('answers with CMD_PRI_RESP', () => {
    const b = codec.encodePageResponse({ rid: 0x100, pasid: 0x42, grpid: 7, code: PAGE_RESP_SUCCESS });
    expect(readLe64Words(b, 2)).toEqual([0x41n | (1n << 11n) | (0x42n << 12n) | (0x100n << 32n), 7n | (2n << 12n)]);
    for (const [code, resp] of [[PAGE_RESP_SUCCESS, 2n], [PAGE_RESP_INVALID, 1n], [PAGE_RESP_FAILURE, 0n]] as const) {
      const bytes = codec.encodePageResponse({ rid: 1, pasid: -1, grpid: 3, code });
      expect((readLe64Words(bytes, 2)[1] >> 12n) & 3n).toBe(resp);
      expect(codec.decodePageResponse(bytes)).toEqual({ rid: 1, pasid: -1, grpid: 3, code });
    }
    expect(() => codec.encodePageResponse({ rid: 1, pasid: -1, grpid: 3, code: 9 })).toThrow(/page response code 9/);
  });
});

describe('stall model: stalled events and CMD_RESUME', () => {
  it('a stalled translation fault is an event with Stall = 1 and its STAG, decoded as kind stall', () => {
    const a = access({ recoverable: true, kind: 'stall', pasid: 0x42, addr: 0x7000_1234n, perm: PERM_WRITE, grpid: 0xbeef });
    const rec = codec.encodeStall(a);
    expect(rec.byteLength).toBe(32);
    const e = decodeEvent(rec);
    expect(e.ok && e.value).toMatchObject({ ID: EVT_ID.F_TRANSLATION, Stall: 1, STAG: 0xbeef, StreamID: 0x100, SSV: 1, SubstreamID: 0x42, RnW: 0, CLASS: 2, InputAddr: 0x7000_1234n });
    expect(eventWords(rec)[1]).toBe((1n << 31n) | 0xbeefn | (2n << 40n));
    expect(codec.decodeFault(rec, 3)).toEqual({
      kind: 'stall', unit: 3, rid: 0x100, pasid: 0x42, addr: 0x7000_1234n, perm: PERM_WRITE, grpid: 0xbeef, last: true, reason: 0x10, reasonText: 'F_TRANSLATION', stage2: false,
    });
    // A permission fault stalls too; the log line says " stall" and the tag.
    const p = codec.decodeFault(codec.encodeStall(access({ failure: 'permission-write', perm: PERM_WRITE, grpid: 0x12 })), 0);
    expect(p).toMatchObject({ kind: 'stall', reason: 0x13, grpid: 0x12 });
    expect(codec.renderLog(p, '0000:75:00.0', 'smmu-acc').at(-1)).toBe('arm-smmu-v3 smmu-acc: unpriv data write s1 "Input address caused fault" stall stag: 0x12');
    // The unstalled record of the same access has neither.
    expect(codec.decodeFault(codec.encodeFault(a), 0)).toMatchObject({ kind: 'dma', grpid: 0 });
  });

  it('only translation faults stall, and the tag must fit 16 bits', () => {
    expect(() => codec.encodeStall(access({ failure: 'blocked' }))).toThrow(/cannot stall/);
    expect(() => codec.encodeStall(access({ failure: 'no-context', contextFault: EVT_ID.C_BAD_CD }))).toThrow(/C_BAD_CD/);
    expect(() => codec.encodeStall(access({ grpid: 0x10000 }))).toThrow(/16 bits/);
  });

  it('answers with CMD_RESUME: Retry on SUCCESS, Abort on INVALID and FAILURE', () => {
    const b = codec.encodeResume({ rid: 0x7500, pasid: 3, grpid: 0xbeef, code: PAGE_RESP_SUCCESS });
    // CMDQ_OP_RESUME 0x44, Resp [13:12], SID [63:32]; STAG in dword 1 [15:0]; no SubstreamID.
    expect(readLe64Words(b, 2)).toEqual([0x44n | (BigInt(CMDQ_RESUME_0_RESP.RETRY) << 12n) | (0x7500n << 32n), 0xbeefn]);
    const d = decodeCommand(b);
    expect(d.ok && d.value).toMatchObject({ name: 'CMD_RESUME', fields: { SID: 0x7500, STAG: 0xbeef, Resp: 1 } });
    expect(codec.decodeResume(b)).toEqual({ rid: 0x7500, pasid: -1, grpid: 0xbeef, code: PAGE_RESP_SUCCESS });
    for (const code of [PAGE_RESP_INVALID, PAGE_RESP_FAILURE]) {
      const abort = codec.encodeResume({ rid: 1, pasid: -1, grpid: 2, code });
      expect((readLe64Words(abort, 2)[0] >> 12n) & 3n).toBe(BigInt(CMDQ_RESUME_0_RESP.ABORT));
      expect(codec.decodeResume(abort).code).toBe(PAGE_RESP_INVALID);
    }
    // Resp TERM (never sent by Linux) is not a retry either.
    const term = readLe64Words(codec.encodeResume({ rid: 1, pasid: -1, grpid: 2, code: PAGE_RESP_INVALID }), 2);
    const termBytes = new Uint8Array(16);
    new DataView(termBytes.buffer).setBigUint64(0, term[0] & ~(3n << 12n), true);
    new DataView(termBytes.buffer).setBigUint64(8, term[1], true);
    expect(codec.decodeResume(termBytes).code).toBe(PAGE_RESP_FAILURE);
    expect(() => codec.decodeResume(codec.encodePageResponse({ rid: 1, pasid: -1, grpid: 2, code: 0 }))).toThrow(/expected CMD_RESUME/);
    expect(() => codec.encodeResume({ rid: 1, pasid: -1, grpid: 2, code: 7 })).toThrow(/page response code 7/);
  });
});

describe('vEVENTs', () => {
  it('replaces the StreamID by the virtual SID for the forwarded events only', () => {
    const f = codec.decodeFault(codec.encodeFault(access({ pasid: 5 })), 0);
    const v = codec.encodeVEvent(f, 7n);
    expect(v?.type).toBe(1);
    expect(v?.data.byteLength).toBe(32);
    expect(eventWords(v!.data)[0]).toBe((7n << 32n) | (5n << 12n) | (1n << 11n) | 0x10n);
    expect(eventWords(v!.data)[2]).toBe(0xffff0000n);
    const bad = codec.decodeFault(codec.encodeFault(access({ failure: 'no-context' })), 0);
    expect(codec.encodeVEvent(bad, 7n)?.type).toBe(1);
    expect(codec.encodeVEvent({ ...f, reason: 0x02 }, 7n)).toBeNull();
    expect(codec.encodeVEvent({ ...f, reason: 0x06 }, 7n)).not.toBeNull();
    expect(codec.encodeVEvent(f, 1n << 32n)).toBeNull();
    expect(codec.encodeVEvent(codec.decodePageRequest(codec.encodePageRequest(access()), 0), 7n)).toBeNull();
  });
});
