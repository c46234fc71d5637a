/**
 * The FaultCodec of a RISC-V IOMMU unit: failed accesses as fault queue records, page requests as
 * page-request queue records, page responses as the ATS.PRGR command the driver queues, and the lines
 * riscv_iommu_fault prints. The record layouts are in records.ts.
 */
import {
  PAGE_RESP_FAILURE,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  permOf,
  type FailedAccess,
  type FaultCodec,
  type PageRequestCodec,
  type IommuFault,
  type PageResponse,
} from '@ioasid/core/driver';
import { decodeCommand, encodeCommand } from './commands.js';
import { faultLine, faultQueueErrorLine } from './logs.js';
import {
  FQ_RECORD_SIZE,
  PQ_RECORD_SIZE,
  causeName,
  decodeFaultRecord,
  decodePageRequestRecord,
  encodeFaultRecord,
  encodePageRequestRecord,
  faultRecordOf,
  pageRespOfPrg,
  permOfTtyp,
  prgCodeOf,
} from './records.js';

const STAGE2_CAUSES = new Set([20, 21, 23]);

/** The fault codec of every unit: fault records, page requests and ATS.PRGR responses, the driver's lines. */
export const faultCodec: FaultCodec & PageRequestCodec = {
  faultRecordSize: FQ_RECORD_SIZE,
  pageRequestSize: PQ_RECORD_SIZE,

  encodeFault(a: FailedAccess): Uint8Array {
    return encodeFaultRecord(faultRecordOf(a));
  },

  decodeFault(rec: Uint8Array, unit: number): IommuFault {
    const r = decodeFaultRecord(rec);
    return {
      kind: 'dma',
      unit,
      rid: r.DID,
      pasid: r.PV ? r.PID : -1,
      addr: r.iotval,
      perm: permOfTtyp(r.TTYP) | (r.PRIV ? PERM_PRIV : 0),
      grpid: 0,
      last: true,
      reason: r.CAUSE,
      reasonText: causeName(r.CAUSE),
      stage2: STAGE2_CAUSES.has(r.CAUSE),
    };
  },

  encodePageRequest(a: FailedAccess): Uint8Array {
    const pv = a.pasid >= 0 ? 1 : 0;
    return encodePageRequestRecord({
      PID: pv ? a.pasid : 0,
      PV: pv,
      PRIV: pv && a.perm & PERM_PRIV ? 1 : 0,
      EXEC: pv && a.perm & PERM_EXEC ? 1 : 0,
      DID: a.rid,
      R: a.perm & PERM_READ ? 1 : 0,
      W: a.perm & PERM_WRITE ? 1 : 0,
      L: a.last ? 1 : 0,
      PRGI: a.grpid,
      ADDR: a.addr >> 12n,
    });
  },

  decodePageRequest(rec: Uint8Array, unit: number): IommuFault {
    const r = decodePageRequestRecord(rec);
    return {
      kind: 'page-request',
      unit,
      rid: r.DID,
      pasid: r.PV ? r.PID : -1,
      addr: r.ADDR << 12n,
      perm: permOf({ read: r.R, write: r.W, exec: r.EXEC, priv: r.PRIV }),
      grpid: r.PRGI,
      last: r.L === 1,
      reason: 0,
      reasonText: r.L && !r.R && !r.W && r.PV ? 'stop marker' : 'page request',
      stage2: false,
    };
  },

  /** ATS.PRGR to the requester: the PASID goes with it when the request had one. */
  encodePageResponse(r: PageResponse): Uint8Array {
    const pv = r.pasid >= 0 ? 1 : 0;
    return encodeCommand({ op: 'ATS.PRGR', PID: pv ? r.pasid : 0, PV: pv, DSV: 0, RID: r.rid, DSEG: 0, PRGI: r.grpid, RESP_CODE: prgCodeOf(r.code), DST_ID: r.rid });
  },

  decodePageResponse(bytes: Uint8Array): PageResponse {
    const c = decodeCommand(bytes);
    if (!c.ok || c.value.op !== 'ATS.PRGR') return { rid: 0, pasid: -1, grpid: 0, code: PAGE_RESP_FAILURE };
    return { rid: c.value.RID, pasid: c.value.PV ? c.value.PID : -1, grpid: c.value.PRGI, code: pageRespOfPrg(c.value.RESP_CODE) };
  },

  renderLog(f: IommuFault, _device: string, unitName: string): string[] {
    // riscv_iommu_fault prints only records with a non-zero cause, and only CAUSE, DID and the two values.
    if (f.reason === 0) return [];
    return [faultLine(unitName, f.reason, f.rid, f.addr, 0n)];
  },

  renderOverflow(queue: 'fault' | 'page-request', unitName: string): string[] {
    // The page-request queue is never enabled by the driver.
    return queue === 'fault' ? [faultQueueErrorLine(unitName, false, true)] : [];
  },
};
