/**
 * The mock vendor's records (its faults file): fault, page-request and stall records, the page
 * response and the stall resume command, and the log line, as a FaultCodec.
 */
import {
  PAGE_RESP_FAILURE,
  PAGE_RESP_INVALID,
  PAGE_RESP_SUCCESS,
  type FailedAccess,
  type FaultCodec,
  type IommuFault,
  type PageResponse,
  type TranslationFailure,
} from '../driver/fault.js';

/** The mock vEVENT type (iommufd_test.h's IOMMU_VEVENTQ_TYPE_SELFTEST idea). */
export const IOMMU_VEVENTQ_TYPE_MOCK = 0xbeefbeef;
/** Mock record size for faults and page requests. */
export const MOCK_RECORD_SIZE = 32;
/** Mock resume command: u32 opcode (MOCK_RESUME_OP), u32 rid, u32 tag, u32 action (MOCK_RESUME_*). */
export const MOCK_RESUME_SIZE = 16;
/** Opcode in the first u32 of a mock resume command. */
export const MOCK_RESUME_OP = 0x44;
/** Resume action: retry the stalled transaction (a PAGE_RESP_SUCCESS response). */
export const MOCK_RESUME_RETRY = 1;
/** Resume action: terminate the stalled transaction (any other response). */
export const MOCK_RESUME_ABORT = 2;

const FAILURE_CODES: TranslationFailure[] = ['not-present', 'permission-read', 'permission-write', 'permission-exec', 'permission-priv', 'address-size', 'table-fault', 'blocked', 'no-context'];

/** Mock records: u32 kind (0 fault, 1 page request, 2 stall), u32 rid, s32 pasid, u32 perm, u64 addr, u16 grpid, u8 last, u8 failure, u8 stage2, u8[3] pad. */
function encodeRecord(kind: number, a: FailedAccess): Uint8Array {
  const b = new Uint8Array(MOCK_RECORD_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, kind, true);
  dv.setUint32(4, a.rid, true);
  dv.setInt32(8, a.pasid, true);
  dv.setUint32(12, a.perm, true);
  dv.setBigUint64(16, a.addr, true);
  dv.setUint16(24, a.grpid, true);
  dv.setUint8(26, a.last ? 1 : 0);
  dv.setUint8(27, Math.max(0, FAILURE_CODES.indexOf(a.failure)));
  dv.setUint8(28, a.stage2 ? 1 : 0);
  return b;
}

function decodeRecord(rec: Uint8Array, unit: number): IommuFault {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const failure = FAILURE_CODES[dv.getUint8(27)] ?? 'not-present';
  return {
    kind: (['dma', 'page-request', 'stall'] as const)[dv.getUint32(0, true)] ?? 'dma',
    unit,
    rid: dv.getUint32(4, true),
    pasid: dv.getInt32(8, true),
    perm: dv.getUint32(12, true),
    addr: dv.getBigUint64(16, true),
    grpid: dv.getUint16(24, true),
    last: dv.getUint8(26) === 1,
    reason: dv.getUint8(27),
    reasonText: failure,
    stage2: dv.getUint8(28) === 1,
  };
}

/** The mock vendor's FaultCodec: every record kind, the stall model and the log line, in a simple made-up layout. */
export const mockCodec: FaultCodec = {

  faultRecordSize: MOCK_RECORD_SIZE,
  pageRequestSize: MOCK_RECORD_SIZE,
  encodeFault: (a) => encodeRecord(0, a),
  encodePageRequest: (a) => encodeRecord(1, a),
  // A stall record is written to the fault queue: kind 2, the tag in grpid, always last.
  encodeStall: (a) => encodeRecord(2, { ...a, last: true }),
  decodeFault: decodeRecord,
  decodePageRequest: decodeRecord,
  encodePageResponse(r: PageResponse): Uint8Array {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, r.rid, true);
    dv.setInt32(4, r.pasid, true);
    dv.setUint32(8, r.grpid, true);
    dv.setUint32(12, r.code, true);
    return b;
  },
  decodePageResponse(b: Uint8Array): PageResponse {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const code = dv.getUint32(12, true);
    return { rid: dv.getUint32(0, true), pasid: dv.getInt32(4, true), grpid: dv.getUint32(8, true), code: code === PAGE_RESP_SUCCESS || code === PAGE_RESP_INVALID ? code : PAGE_RESP_FAILURE };
  },
  encodeResume(r: PageResponse): Uint8Array {
    const b = new Uint8Array(MOCK_RESUME_SIZE);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, MOCK_RESUME_OP, true);
    dv.setUint32(4, r.rid, true);
    dv.setUint32(8, r.grpid, true);
    dv.setUint32(12, r.code === PAGE_RESP_SUCCESS ? MOCK_RESUME_RETRY : MOCK_RESUME_ABORT, true);
    return b;
  },
  decodeResume(b: Uint8Array): PageResponse {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { rid: dv.getUint32(4, true), pasid: -1, grpid: dv.getUint32(8, true), code: dv.getUint32(12, true) === MOCK_RESUME_RETRY ? PAGE_RESP_SUCCESS : PAGE_RESP_INVALID };
  },
  renderLog(f, device, unitName) {
    return [`mock-iommu ${unitName}: ${f.perm & 2 ? 'write' : 'read'} fault from ${device}${f.pasid >= 0 ? ` pasid ${f.pasid}` : ''} at 0x${f.addr.toString(16)}: ${f.reasonText}`];
  },
  encodeVEvent(f, virtId) {
    const data = new Uint8Array(16);
    const dv = new DataView(data.buffer);
    dv.setBigUint64(0, virtId, true);
    dv.setBigUint64(8, f.addr, true);
    return { type: IOMMU_VEVENTQ_TYPE_MOCK, data };
  },
};

