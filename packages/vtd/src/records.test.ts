import { describe, expect, it } from 'vitest';
import {
  type PageGroupResponseDsc,
  type PageReqDsc,
  QI_RESP_FAILURE,
  QI_RESP_INVALID,
  QI_RESP_SUCCESS,
  type VtdFrcd,
  decodeFrcd,
  decodePageGroupResponse,
  decodePageReqDsc,
  encodeFrcd,
  encodePageGroupResponse,
  encodePageReqDsc,
  frcdFaultAddress,
  frcdForDmaFault,
  frcdForInterruptFault,
  frcdInterruptIndex,
  isStopMarker,
  pageGroupResponseFor,
  pageReqFlags,
  pageReqPerm,
  qiRespCodeFromIommufd,
} from './records.js';
import {
  DMA_REMAP_FAULT_REASONS,
  DMA_REMAP_SM_FAULT_REASONS,
  IRQ_REMAP_FAULT_REASONS,
  dmarFaultReason,
} from './fault-reasons.js';

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('fault reasons', () => {
  it('has the kernel table sizes', () => {
    expect(DMA_REMAP_FAULT_REASONS).toHaveLength(14);
    expect(IRQ_REMAP_FAULT_REASONS).toHaveLength(7);
    expect(DMA_REMAP_SM_FAULT_REASONS).toHaveLength(97);
  });

  it('maps legacy reasons', () => {
    expect(dmarFaultReason(0x06)).toEqual({ code: 6, text: 'PTE Read access is not set', type: 'dma' });
    expect(dmarFaultReason(0x05).text).toBe('PTE Write access is not set');
    expect(dmarFaultReason(0x0d).text).toBe('PCE for translation request specifies blocking');
    expect(dmarFaultReason(0x0e)).toEqual({ code: 0x0e, text: 'Unknown', type: 'unknown' });
  });

  it('maps interrupt-remapping reasons 0x20..0x26 and nothing at 0x27', () => {
    expect(dmarFaultReason(0x20).type).toBe('intr-remap');
    expect(dmarFaultReason(0x26).text).toBe('Blocked an interrupt request due to source-id verification failure');
    expect(dmarFaultReason(0x27)).toEqual({ code: 0x27, text: 'Unknown', type: 'unknown' });
  });

  it('maps scalable-mode reasons 0x30..0x90 with Unknown gaps', () => {
    expect(dmarFaultReason(0x30).text).toBe('SM: Invalid Root Table Address');
    expect(dmarFaultReason(0x33)).toEqual({ code: 0x33, text: 'Unknown', type: 'dma' });
    expect(dmarFaultReason(0x59).text).toBe('SM: Present bit in PASID Table Entry is clear');
    expect(dmarFaultReason(0x73).text).toBe('SM: Error attempting to access FL-PML4 entry');
    expect(dmarFaultReason(0x87).text).toBe('SM: Invalid address-interrupt address');
    expect(dmarFaultReason(0x90).text).toBe('SM: A/D bit update needed in first-level entry when set up in no snoop');
    expect(dmarFaultReason(0x91)).toEqual({ code: 0x91, text: 'Unknown', type: 'unknown' });
  });
});

describe('fault recording register', () => {
  const frcd: VtdFrcd = {
    FI: 0x7fffe12345n,
    SID: 0x0010,
    T2: 1,
    PRIV: 1,
    EXE: 1,
    PP: 1,
    FR: 0x85,
    PV: 0xabcde,
    AT: 2,
    T1: 1,
    F: 1,
  };

  it('round-trips every field', () => {
    const bytes = unwrap(encodeFrcd(frcd));
    expect(bytes.byteLength).toBe(16);
    expect(unwrap(decodeFrcd(bytes))).toEqual(frcd);
  });

  it('puts each field at its bit position', () => {
    const one = (f: Partial<VtdFrcd>) => {
      const zero: VtdFrcd = { FI: 0n, SID: 0, T2: 0, PRIV: 0, EXE: 0, PP: 0, FR: 0, PV: 0, AT: 0, T1: 0, F: 0 };
      const b = unwrap(encodeFrcd({ ...zero, ...f }));
      const view = new DataView(b.buffer);
      return [view.getBigUint64(0, true), view.getBigUint64(8, true)];
    };
    expect(one({ FI: 1n })).toEqual([0x1000n, 0n]);
    expect(one({ SID: 0xffff })).toEqual([0n, 0xffffn]);
    expect(one({ T2: 1 })).toEqual([0n, 1n << 28n]);
    expect(one({ PRIV: 1 })).toEqual([0n, 1n << 29n]);
    expect(one({ EXE: 1 })).toEqual([0n, 1n << 30n]);
    expect(one({ PP: 1 })).toEqual([0n, 1n << 31n]);
    expect(one({ FR: 0xff })).toEqual([0n, 0xffn << 32n]);
    expect(one({ PV: 0xfffff })).toEqual([0n, 0xfffffn << 40n]);
    expect(one({ AT: 3 })).toEqual([0n, 3n << 60n]);
    expect(one({ T1: 1 })).toEqual([0n, 1n << 62n]);
    expect(one({ F: 1 })).toEqual([0n, 1n << 63n]);
  });

  it('matches the dword views dmar_fault() reads', () => {
    const bytes = unwrap(encodeFrcd(frcdForDmaFault({ addr: 0xfffe0123n, sid: 0x0010, read: true, reason: 6, pasid: 5 })));
    const view = new DataView(bytes.buffer);
    const dw3 = view.getUint32(12, true);
    const dw2 = view.getUint32(8, true);
    expect(dw3 >>> 31).toBe(1); // DMA_FRCD_F
    expect((dw3 >>> 30) & 1).toBe(1); // dma_frcd_type
    expect(dw3 & 0xff).toBe(6); // dma_frcd_fault_reason
    expect((dw3 >>> 8) & 0xfffff).toBe(5); // dma_frcd_pasid_value
    expect(dw2 & 0xffff).toBe(0x10); // dma_frcd_source_id
    expect(dw2 >>> 31).toBe(1); // dma_frcd_pasid_present
    expect(frcdFaultAddress(unwrap(decodeFrcd(bytes)))).toBe(0xfffe0000n);
  });

  it('carries an interrupt index in FI bits 63:48', () => {
    const f = frcdForInterruptFault({ index: 0x1234, sid: 0xf0f8, reason: 0x22 });
    expect(frcdInterruptIndex(f)).toBe(0x1234);
    expect(unwrap(decodeFrcd(unwrap(encodeFrcd(f))))).toEqual(f);
  });

  it('rejects bad input without throwing', () => {
    expect(decodeFrcd(new Uint8Array(15)).ok).toBe(false);
    expect(encodeFrcd({ ...frcd, PV: 1 << 20 }).ok).toBe(false);
    expect(encodeFrcd({ ...frcd, FI: 1n << 52n }).ok).toBe(false);
  });
});

describe('page request descriptor', () => {
  const req: PageReqDsc = {
    type: 1,
    pasid_present: 1,
    priv_data_present: 1,
    rid: 0x6a08,
    pasid: 0x12345,
    exe_req: 1,
    pm_req: 1,
    rd_req: 1,
    wr_req: 1,
    lpig: 1,
    prg_index: 0x1ff,
    addr: 0x7fff_ffff_f000n,
    priv_data: [0x1122334455667788n, 0x99aabbccddeeff00n],
  };

  it('round-trips every field', () => {
    const bytes = unwrap(encodePageReqDsc(req));
    expect(bytes.byteLength).toBe(32);
    expect(unwrap(decodePageReqDsc(bytes))).toEqual(req);
  });

  it('matches struct page_req_dsc bit positions', () => {
    const bytes = unwrap(encodePageReqDsc(req));
    const view = new DataView(bytes.buffer);
    const qw0 = view.getBigUint64(0, true);
    const qw1 = view.getBigUint64(8, true);
    expect(qw0 & 0xffn).toBe(1n);
    expect((qw0 >> 8n) & 1n).toBe(1n);
    expect((qw0 >> 9n) & 1n).toBe(1n);
    expect((qw0 >> 16n) & 0xffffn).toBe(0x6a08n);
    expect((qw0 >> 32n) & 0xfffffn).toBe(0x12345n);
    expect((qw0 >> 52n) & 1n).toBe(1n);
    expect((qw0 >> 53n) & 1n).toBe(1n);
    expect(qw1 & 7n).toBe(7n);
    expect((qw1 >> 3n) & 0x1ffn).toBe(0x1ffn);
    expect(qw1 >> 12n).toBe(0x7fff_ffff_fn);
  });

  it('derives iommufd perm and flags, and spots stop markers', () => {
    expect(pageReqPerm(req)).toBe(0xf);
    expect(pageReqFlags(req)).toBe(3);
    expect(isStopMarker({ ...req, rd_req: 0, wr_req: 0 })).toBe(true);
    expect(isStopMarker(req)).toBe(false);
  });

  it('rejects a misaligned address and a wrong size', () => {
    expect(encodePageReqDsc({ ...req, addr: 0x1001n }).ok).toBe(false);
    expect(encodePageReqDsc({ ...req, pasid: 1 << 20 }).ok).toBe(false);
    expect(decodePageReqDsc(new Uint8Array(16)).ok).toBe(false);
  });
});

describe('page group response descriptor', () => {
  const resp: PageGroupResponseDsc = {
    pasid_present: 1,
    pdp: 1,
    resp_code: QI_RESP_FAILURE,
    rid: 0x0010,
    pasid: 0xfffff,
    lpig: 1,
    prg_index: 0x155,
    priv_data: [1n, 2n],
  };

  it('round-trips every field', () => {
    const bytes = unwrap(encodePageGroupResponse(resp));
    expect(bytes.byteLength).toBe(32);
    expect(unwrap(decodePageGroupResponse(bytes))).toEqual(resp);
  });

  it('places type 9 and the response code where QI_PGRP_* put them', () => {
    const bytes = unwrap(encodePageGroupResponse({ ...resp, pasid_present: 0, pdp: 0, lpig: 0, pasid: 0, prg_index: 0, resp_code: QI_RESP_INVALID }));
    const view = new DataView(bytes.buffer);
    expect(view.getBigUint64(0, true)).toBe(0x9n | (1n << 12n) | (0x10n << 16n));
    expect(view.getBigUint64(8, true)).toBe(0n);
  });

  it('refuses a descriptor of another type', () => {
    const bytes = new Uint8Array(32);
    bytes[0] = 0x2;
    const r = decodePageGroupResponse(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('not a page group response');
  });

  it('answers a request with its RID, PASID and group index', () => {
    const req = unwrap(
      decodePageReqDsc(
        unwrap(
          encodePageReqDsc({
            type: 1,
            pasid_present: 1,
            priv_data_present: 0,
            rid: 0x0300,
            pasid: 7,
            exe_req: 0,
            pm_req: 0,
            rd_req: 1,
            wr_req: 0,
            lpig: 1,
            prg_index: 42,
            addr: 0x10000n,
            priv_data: [0n, 0n],
          }),
        ),
      ),
    );
    expect(pageGroupResponseFor(req, QI_RESP_SUCCESS)).toEqual({
      pasid_present: 1,
      pdp: 0,
      resp_code: 0,
      rid: 0x0300,
      pasid: 7,
      lpig: 0,
      prg_index: 42,
      priv_data: [0n, 0n],
    });
  });

  it('maps iommufd response codes', () => {
    expect(qiRespCodeFromIommufd(0)).toEqual({ ok: true, value: QI_RESP_SUCCESS });
    expect(qiRespCodeFromIommufd(1)).toEqual({ ok: true, value: QI_RESP_INVALID });
    expect(qiRespCodeFromIommufd(2)).toEqual({ ok: true, value: QI_RESP_FAILURE });
    expect(qiRespCodeFromIommufd(3).ok).toBe(false);
  });
});
