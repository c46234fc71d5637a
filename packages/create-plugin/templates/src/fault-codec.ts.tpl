/**
 * The __NAME__ `FaultCodec`: core's failed accesses and page responses to the hardware's records
 * (records.ts) and back, and the kernel log line the driver prints for a fault.
 */
import {
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  permOf,
  type FailedAccess,
  type FaultCodec,
  type IommuFault,
  type PageRequestCodec,
  type PageResponse,
  type Result,
} from '@ioasid/core/driver';
import { VENDOR_ID } from './ids.js';
import {
  FAULT_REASONS,
  RECORD_SIZE,
  decodeFaultRecord,
  decodePageRequestRecord,
  decodePageResponseRecord,
  encodeFaultRecord,
  encodePageRequestRecord,
  encodePageResponseRecord,
} from './records.js';

/** Core only hands the codec records it encoded, so a record that does not read back is a bug: say which. */
function unwrap<T>(r: Result<T>, what: string): T {
  if (!r.ok) throw new Error(`${VENDOR_ID} ${what}: ${r.error}`);
  return r.value;
}

/** PV and PASID fields from a PASID (-1: none). */
function pasidFields(pasid: number): { PV: number; PASID: number } {
  return { PV: pasid >= 0 ? 1 : 0, PASID: Math.max(pasid, 0) };
}

function pasidOf(pv: number, pasid: number): number {
  return pv ? pasid : -1;
}

/** The codec every unit shares: fault records, page requests and responses, the fault line. */
export const faultCodec: FaultCodec & PageRequestCodec = {
  faultRecordSize: RECORD_SIZE,
  pageRequestSize: RECORD_SIZE,

  encodeFault(a: FailedAccess): Uint8Array {
    return encodeFaultRecord({
      RID: a.rid,
      REASON: FAULT_REASONS.indexOf(a.failure) + 1,
      WR: a.perm & PERM_WRITE ? 1 : 0,
      EXE: a.perm & PERM_EXEC ? 1 : 0,
      PRIV: a.perm & PERM_PRIV ? 1 : 0,
      ...pasidFields(a.pasid),
      ADDR: a.addr,
    });
  },

  decodeFault(rec: Uint8Array, unit: number): IommuFault {
    const f = unwrap(decodeFaultRecord(rec), 'decodeFault');
    return {
      kind: 'dma',
      unit,
      rid: f.RID,
      pasid: pasidOf(f.PV, f.PASID),
      addr: f.ADDR,
      perm: (f.WR ? PERM_WRITE : PERM_READ) | (f.EXE ? PERM_EXEC : 0) | (f.PRIV ? PERM_PRIV : 0),
      grpid: 0,
      last: true,
      reason: f.REASON,
      reasonText: FAULT_REASONS[f.REASON - 1] ?? `reason ${f.REASON}`,
      stage2: false,
    };
  },

  encodePageRequest(a: FailedAccess): Uint8Array {
    return encodePageRequestRecord({
      RID: a.rid,
      PRGI: a.grpid,
      RD: a.perm & PERM_READ ? 1 : 0,
      WR: a.perm & PERM_WRITE ? 1 : 0,
      LAST: a.last ? 1 : 0,
      ...pasidFields(a.pasid),
      ADDR: a.addr & ~0xfffn,
    });
  },

  decodePageRequest(rec: Uint8Array, unit: number): IommuFault {
    const f = unwrap(decodePageRequestRecord(rec), 'decodePageRequest');
    return {
      kind: 'page-request',
      unit,
      rid: f.RID,
      pasid: pasidOf(f.PV, f.PASID),
      addr: f.ADDR,
      perm: permOf({ read: f.RD, write: f.WR }),
      grpid: f.PRGI,
      last: f.LAST === 1,
      reason: 0,
      reasonText: 'page request',
      stage2: false,
    };
  },

  encodePageResponse(r: PageResponse): Uint8Array {
    return encodePageResponseRecord({ RID: r.rid, PRGI: r.grpid, CODE: r.code, ...pasidFields(r.pasid) });
  },

  decodePageResponse(bytes: Uint8Array): PageResponse {
    const f = unwrap(decodePageResponseRecord(bytes), 'decodePageResponse');
    return { rid: f.RID, pasid: pasidOf(f.PV, f.PASID), grpid: f.PRGI, code: f.CODE };
  },

  renderLog(f: IommuFault, device: string, unitName: string): string[] {
    const access = f.perm & PERM_WRITE ? 'write' : 'read';
    const pasid = f.pasid >= 0 ? ` PASID 0x${f.pasid.toString(16)}` : '';
    return [`${VENDOR_ID} ${unitName}: DMA ${access} fault from ${device}${pasid} at 0x${f.addr.toString(16)}: reason ${f.reason} (${f.reasonText})`];
  },
};
