/**
 * The RISC-V IOMMU fault records, page requests and page responses, and the kernel log lines the driver
 * prints for a fault. Records are little-endian 64-bit words whose fields are [hi:lo] layouts read with
 * core's bitfield helpers; word 1 of a record is the faulting address.
 *
 * Fault record (16 bytes), word 0: [15:0] RID, [23:16] REASON (FAULT_REASONS), [24] WR, [25] EXE,
 * [26] PRIV, [27] PV (a PASID is present), [47:28] PASID, [63:60] TYPE = 1.
 * Page request (16 bytes), word 0: [15:0] RID, [24:16] PRGI, [25] RD, [26] WR, [27] LAST, [28] PV,
 * [48:29] PASID, [63:60] TYPE = 2; word 1: the page address.
 * Page response (8 bytes): [15:0] RID, [24:16] PRGI, [28:25] CODE, [29] PV, [49:30] PASID.
 */
import {
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  decodeBitFields,
  fieldPrep,
  type BitField,
  type FailedAccess,
  type FaultCodec,
  type IommuFault,
  type PageResponse,
  type TranslationFailure,
} from '@ioasid/core/driver';
import { VENDOR_ID } from './ids.js';

export const FAULT_FIELDS = [
  { name: 'RID', hi: 15, lo: 0 },
  { name: 'REASON', hi: 23, lo: 16 },
  { name: 'WR', hi: 24, lo: 24 },
  { name: 'EXE', hi: 25, lo: 25 },
  { name: 'PRIV', hi: 26, lo: 26 },
  { name: 'PV', hi: 27, lo: 27 },
  { name: 'PASID', hi: 47, lo: 28 },
  { name: 'TYPE', hi: 63, lo: 60 },
] as const satisfies readonly BitField[];

export const PAGE_REQUEST_FIELDS = [
  { name: 'RID', hi: 15, lo: 0 },
  { name: 'PRGI', hi: 24, lo: 16 },
  { name: 'RD', hi: 25, lo: 25 },
  { name: 'WR', hi: 26, lo: 26 },
  { name: 'LAST', hi: 27, lo: 27 },
  { name: 'PV', hi: 28, lo: 28 },
  { name: 'PASID', hi: 48, lo: 29 },
  { name: 'TYPE', hi: 63, lo: 60 },
] as const satisfies readonly BitField[];

export const PAGE_RESPONSE_FIELDS = [
  { name: 'RID', hi: 15, lo: 0 },
  { name: 'PRGI', hi: 24, lo: 16 },
  { name: 'CODE', hi: 28, lo: 25 },
  { name: 'PV', hi: 29, lo: 29 },
  { name: 'PASID', hi: 49, lo: 30 },
] as const satisfies readonly BitField[];

export const RECORD_TYPE_FAULT = 1;
export const RECORD_TYPE_PAGE_REQUEST = 2;
export const RECORD_SIZE = 16;
export const PAGE_RESPONSE_SIZE = 8;

/** REASON codes: the index in this list plus one (0 is never written). */
export const FAULT_REASONS: readonly TranslationFailure[] = ['not-present', 'permission-read', 'permission-write', 'permission-exec', 'permission-priv', 'address-size', 'table-fault', 'blocked', 'no-context'];

type Layout = readonly BitField[];

function pack(layout: Layout, values: Readonly<Record<string, number>>): bigint {
  let w = 0n;
  for (const f of layout) w |= fieldPrep(BigInt(values[f.name] ?? 0), f.hi, f.lo);
  return w;
}

function record(word0: bigint, word1: bigint, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, word0, true);
  if (size >= 16) dv.setBigUint64(8, word1 & 0xffff_ffff_ffff_ffffn, true);
  return b;
}

function words(rec: Uint8Array): [bigint, bigint] {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  return [rec.byteLength >= 8 ? dv.getBigUint64(0, true) : 0n, rec.byteLength >= 16 ? dv.getBigUint64(8, true) : 0n];
}

function pasidOf(pv: number, pasid: number): number {
  return pv ? pasid : -1;
}

export const faultCodec: FaultCodec = {
  faultRecordSize: RECORD_SIZE,
  pageRequestSize: RECORD_SIZE,

  encodeFault(a: FailedAccess): Uint8Array {
    const word0 = pack(FAULT_FIELDS, {
      RID: a.rid,
      REASON: FAULT_REASONS.indexOf(a.failure) + 1,
      WR: a.perm & PERM_WRITE ? 1 : 0,
      EXE: a.perm & PERM_EXEC ? 1 : 0,
      PRIV: a.perm & PERM_PRIV ? 1 : 0,
      PV: a.pasid >= 0 ? 1 : 0,
      PASID: Math.max(a.pasid, 0),
      TYPE: RECORD_TYPE_FAULT,
    });
    return record(word0, a.addr, RECORD_SIZE);
  },

  decodeFault(rec: Uint8Array, unit: number): IommuFault {
    const [w0, w1] = words(rec);
    const f = decodeBitFields(FAULT_FIELDS, w0);
    const failure = FAULT_REASONS[f.REASON - 1];
    return {
      kind: 'dma',
      unit,
      rid: f.RID,
      pasid: pasidOf(f.PV, f.PASID),
      addr: w1,
      perm: (f.WR ? PERM_WRITE : PERM_READ) | (f.EXE ? PERM_EXEC : 0) | (f.PRIV ? PERM_PRIV : 0),
      grpid: 0,
      last: true,
      reason: f.REASON,
      reasonText: failure ?? `reason ${f.REASON}`,
      stage2: false,
    };
  },

  encodePageRequest(a: FailedAccess): Uint8Array {
    const word0 = pack(PAGE_REQUEST_FIELDS, {
      RID: a.rid,
      PRGI: a.grpid,
      RD: a.perm & PERM_READ ? 1 : 0,
      WR: a.perm & PERM_WRITE ? 1 : 0,
      LAST: a.last ? 1 : 0,
      PV: a.pasid >= 0 ? 1 : 0,
      PASID: Math.max(a.pasid, 0),
      TYPE: RECORD_TYPE_PAGE_REQUEST,
    });
    return record(word0, a.addr & ~0xfffn, RECORD_SIZE);
  },

  decodePageRequest(rec: Uint8Array, unit: number): IommuFault {
    const [w0, w1] = words(rec);
    const f = decodeBitFields(PAGE_REQUEST_FIELDS, w0);
    return {
      kind: 'page-request',
      unit,
      rid: f.RID,
      pasid: pasidOf(f.PV, f.PASID),
      addr: w1,
      perm: (f.RD ? PERM_READ : 0) | (f.WR ? PERM_WRITE : 0),
      grpid: f.PRGI,
      last: f.LAST === 1,
      reason: 0,
      reasonText: 'page request',
      stage2: false,
    };
  },

  encodePageResponse(r: PageResponse): Uint8Array {
    const word0 = pack(PAGE_RESPONSE_FIELDS, { RID: r.rid, PRGI: r.grpid, CODE: r.code, PV: r.pasid >= 0 ? 1 : 0, PASID: Math.max(r.pasid, 0) });
    return record(word0, 0n, PAGE_RESPONSE_SIZE);
  },

  decodePageResponse(bytes: Uint8Array): PageResponse {
    const f = decodeBitFields(PAGE_RESPONSE_FIELDS, words(bytes)[0]);
    return { rid: f.RID, pasid: pasidOf(f.PV, f.PASID), grpid: f.PRGI, code: f.CODE };
  },

  renderLog(f: IommuFault, device: string, unitName: string): string[] {
    const access = f.perm & PERM_WRITE ? 'write' : 'read';
    const pasid = f.pasid >= 0 ? ` PASID 0x${f.pasid.toString(16)}` : '';
    return [`${VENDOR_ID} ${unitName}: DMA ${access} fault from ${device}${pasid} at 0x${f.addr.toString(16)}: reason ${f.reason} (${f.reasonText})`];
  },
};
