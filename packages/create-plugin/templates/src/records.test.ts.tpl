import { describe, expect, it } from 'vitest';
import { PERM_READ, PERM_WRITE } from '@ioasid/core/driver';
import {
  PAGE_RESPONSE_SIZE,
  RECORD_SIZE,
  decodeFaultRecord,
  decodePageRequestRecord,
  decodePageResponseRecord,
  encodeFaultRecord,
  encodePageRequestRecord,
  encodePageResponseRecord,
  faultCodec,
  type FaultRecord,
} from './index.js';

const FAULT: FaultRecord = { RID: 0x0310, REASON: 3, WR: 1, EXE: 0, PRIV: 0, PV: 1, PASID: 0x42, ADDR: 0x7ff000n };

describe('records', () => {
  it('places a fault record\'s fields at their bits and reads them back', () => {
    const bytes = encodeFaultRecord(FAULT);
    expect(bytes.byteLength).toBe(RECORD_SIZE);
    const dv = new DataView(bytes.buffer);
    expect(dv.getBigUint64(0, true)).toBe((1n << 60n) | (0x42n << 28n) | (1n << 27n) | (1n << 24n) | (3n << 16n) | 0x0310n);
    expect(dv.getBigUint64(8, true)).toBe(0x7ff000n);
    expect(decodeFaultRecord(bytes)).toEqual({ ok: true, value: FAULT });
  });

  it('round-trips page requests and page responses', () => {
    const req = { RID: 0x0100, PRGI: 0x1ff, RD: 1, WR: 0, LAST: 1, PV: 0, PASID: 0, ADDR: 0x1234_5000n };
    expect(decodePageRequestRecord(encodePageRequestRecord(req))).toEqual({ ok: true, value: req });
    const resp = { RID: 0x0100, PRGI: 7, CODE: 1, PV: 1, PASID: 0xfffff };
    const bytes = encodePageResponseRecord(resp);
    expect(bytes.byteLength).toBe(PAGE_RESPONSE_SIZE);
    expect(decodePageResponseRecord(bytes)).toEqual({ ok: true, value: resp });
  });

  it('refuses untrusted bytes that are not a record of the kind asked for', () => {
    expect(decodeFaultRecord(new Uint8Array(8))).toEqual({ ok: false, error: 'fault record: expected 16 bytes, got 8' });
    expect(decodeFaultRecord(new Uint8Array(RECORD_SIZE))).toEqual({ ok: false, error: 'not a fault record: TYPE is 0, a fault is 1' });
    expect(decodePageRequestRecord(encodeFaultRecord(FAULT))).toEqual({ ok: false, error: 'not a page request: TYPE is 1, a page request is 2' });
    expect(decodePageResponseRecord(new Uint8Array(RECORD_SIZE)).ok).toBe(false);
  });
});

describe('fault codec', () => {
  it('turns a denied access into a fault record and back', () => {
    const rec = faultCodec.encodeFault({ unit: 0, rid: 0x0310, pasid: 0x42, addr: 0x7ff000n, perm: PERM_WRITE, failure: 'permission-write', stage2: false, recoverable: false, grpid: 0, last: true });
    expect(decodeFaultRecord(rec)).toEqual({ ok: true, value: FAULT });
    const f = faultCodec.decodeFault(rec, 1);
    expect(f).toMatchObject({ kind: 'dma', unit: 1, rid: 0x0310, pasid: 0x42, addr: 0x7ff000n, perm: PERM_WRITE, reason: 3, reasonText: 'permission-write' });
    expect(faultCodec.renderLog(f, '03:02.0', '__ID__0')).toEqual(['__ID__ __ID__0: DMA write fault from 03:02.0 PASID 0x42 at 0x7ff000: reason 3 (permission-write)']);
  });

  it('carries a page request\'s group and a response\'s code through their records', () => {
    const rec = faultCodec.encodePageRequest({ unit: 0, rid: 0x0100, pasid: -1, addr: 0x1234_5678n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: true, grpid: 5, last: true });
    expect(faultCodec.decodePageRequest(rec, 0)).toMatchObject({ kind: 'page-request', rid: 0x0100, pasid: -1, addr: 0x1234_5000n, perm: PERM_READ, grpid: 5, last: true });
    const resp = { rid: 0x0100, pasid: -1, grpid: 5, code: 1 };
    expect(faultCodec.decodePageResponse(faultCodec.encodePageResponse(resp))).toEqual(resp);
  });
});
