/**
 * The fault queue record, the page-request queue record, and the page response codes (the ATS.PRGR command the
 * driver queues is in commands.ts), as RISC-V IOMMU 1.0 lays them out. The FaultCodec is fault-codec.ts.
 *
 * Fault record (32 bytes): dw0 = 11:0 CAUSE, 31:12 PID, 32 PV, 33 PRIV, 39:34 TTYP, 63:40 DID; dw1 =
 * 31:0 custom, 63:32 reserved; dw2 = iotval (the IOVA); dw3 = iotval2 (the GPA of a guest-page fault,
 * bit 0 set when an implicit first-stage access faulted, bit 1 when that access was a write).
 * Page request (16 bytes): dw0 = 31:12 PID, 32 PV, 33 PRIV, 34 EXEC, 63:40 DID; dw1 = the PCIe message
 * payload: 0 R, 1 W, 2 L (last of its group), 11:3 PRGI, 63:12 the page address.
 */
import {
  PAGE_RESP_FAILURE,
  PAGE_RESP_INVALID,
  PAGE_RESP_SUCCESS,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  decodeBitFields,
  encodeBitFields,
  readLe64Words,
  writeLe64Words,
  type FailedAccess,
  type BitField,
} from '@ioasid/core/driver';
import { PRG_RESP_FAILURE, PRG_RESP_INVALID, PRG_RESP_SUCCESS } from './commands.js';

/** Bytes of one fault queue record. */
export const FQ_RECORD_SIZE = 32;
/** Bytes of one page-request queue record. */
export const PQ_RECORD_SIZE = 16;

/** Fault record dword 0. */
export const FQ_DW0_FIELDS: readonly BitField<'CAUSE' | 'PID' | 'PV' | 'PRIV' | 'TTYP' | 'DID'>[] = [
  { name: 'CAUSE', hi: 11, lo: 0 },
  { name: 'PID', hi: 31, lo: 12 },
  { name: 'PV', hi: 32, lo: 32 },
  { name: 'PRIV', hi: 33, lo: 33 },
  { name: 'TTYP', hi: 39, lo: 34 },
  { name: 'DID', hi: 63, lo: 40 },
];

/** Page-request record dword 0. */
export const PQ_DW0_FIELDS: readonly BitField<'PID' | 'PV' | 'PRIV' | 'EXEC' | 'DID'>[] = [
  { name: 'PID', hi: 31, lo: 12 },
  { name: 'PV', hi: 32, lo: 32 },
  { name: 'PRIV', hi: 33, lo: 33 },
  { name: 'EXEC', hi: 34, lo: 34 },
  { name: 'DID', hi: 63, lo: 40 },
];

/** Page-request record dword 1: the PCIe Page Request payload. */
export const PQ_DW1_FIELDS: readonly BitField<'R' | 'W' | 'L' | 'PRGI' | 'ADDR'>[] = [
  { name: 'R', hi: 0, lo: 0 },
  { name: 'W', hi: 1, lo: 1 },
  { name: 'L', hi: 2, lo: 2 },
  { name: 'PRGI', hi: 11, lo: 3 },
  { name: 'ADDR', hi: 63, lo: 12 },
];

/** Fault causes (the CAUSE field) by the specification's name. */
export const CAUSE_NAMES: Readonly<Record<number, string>> = {
  1: 'Instruction access fault',
  4: 'Read address misaligned',
  5: 'Read access fault',
  6: 'Write/AMO address misaligned',
  7: 'Write/AMO access fault',
  12: 'Instruction page fault',
  13: 'Read page fault',
  15: 'Write/AMO page fault',
  20: 'Instruction guest page fault',
  21: 'Read guest-page fault',
  23: 'Write/AMO guest-page fault',
  256: 'All inbound transactions disallowed',
  257: 'DDT entry load access fault',
  258: 'DDT entry not valid',
  259: 'DDT entry misconfigured',
  260: 'Transaction type disallowed',
  261: 'MSI PTE load access fault',
  262: 'MSI PTE not valid',
  263: 'MSI PTE misconfigured',
  264: 'MRIF access fault',
  265: 'PDT entry load access fault',
  266: 'PDT entry not valid',
  267: 'PDT entry misconfigured',
  268: 'DDT data corruption',
  269: 'PDT data corruption',
  270: 'MSI PT data corruption',
  271: 'MSI MRIF data corruption',
  272: 'Internal data path error',
  273: 'IOMMU MSI write access fault',
  274: 'First/second-stage PT data corruption',
};

/** Causes reported even when the device context sets DTF (disable translation fault reporting). */
export const CAUSES_REPORTED_WITH_DTF: readonly number[] = [256, 257, 258, 259, 268, 272, 273];

/** The name of a cause, including the reserved and custom ranges. */
export function causeName(cause: number): string {
  return CAUSE_NAMES[cause] ?? (cause >= 2048 && cause <= 4095 ? `custom cause ${cause}` : `reserved cause ${cause}`);
}

/** Transaction types (TTYP). */
export const TTYP_NONE = 0;
/** TTYP: untranslated read for execute. */
export const TTYP_UNTRANSLATED_EXEC = 1;
/** TTYP: untranslated read. */
export const TTYP_UNTRANSLATED_READ = 2;
/** TTYP: untranslated write or AMO. */
export const TTYP_UNTRANSLATED_WRITE = 3;
/** TTYP: translated read for execute. */
export const TTYP_TRANSLATED_EXEC = 5;
/** TTYP: translated read. */
export const TTYP_TRANSLATED_READ = 6;
/** TTYP: translated write or AMO. */
export const TTYP_TRANSLATED_WRITE = 7;
/** TTYP: PCIe ATS Translation Request. */
export const TTYP_ATS_TRANSLATION = 8;
/** TTYP: PCIe Message Request. */
export const TTYP_MESSAGE = 9;

/** Transaction type names by TTYP. */
export const TTYP_NAMES: Readonly<Record<number, string>> = {
  0: 'none (not caused by an inbound transaction)',
  1: 'Untranslated read for execute',
  2: 'Untranslated read',
  3: 'Untranslated write/AMO',
  5: 'Translated read for execute',
  6: 'Translated read',
  7: 'Translated write/AMO',
  8: 'PCIe ATS Translation Request',
  9: 'PCIe Message Request',
};

/** The name of a transaction type, reserved and custom ranges included. */
export function ttypName(ttyp: number): string {
  return TTYP_NAMES[ttyp] ?? (ttyp >= 32 ? `custom type ${ttyp}` : `reserved type ${ttyp}`);
}

/** The access of a transaction type as PERM_* bits (0 for a type that is not an access). */
export function permOfTtyp(ttyp: number): number {
  switch (ttyp) {
    case TTYP_UNTRANSLATED_EXEC:
    case TTYP_TRANSLATED_EXEC:
      return PERM_READ | PERM_EXEC;
    case TTYP_UNTRANSLATED_WRITE:
    case TTYP_TRANSLATED_WRITE:
      return PERM_WRITE;
    case TTYP_UNTRANSLATED_READ:
    case TTYP_TRANSLATED_READ:
    case TTYP_ATS_TRANSLATION:
      return PERM_READ;
    default:
      return 0;
  }
}

/** The untranslated TTYP of an access. */
export function ttypOf(perm: number): number {
  return perm & PERM_EXEC ? TTYP_UNTRANSLATED_EXEC : perm & PERM_WRITE ? TTYP_UNTRANSLATED_WRITE : TTYP_UNTRANSLATED_READ;
}

/**
 * The CAUSE the IOMMU reports for a failed access. The first-stage walk faults are page faults (12 / 13
 * / 15 by access), the same in the second stage are guest-page faults (20 / 21 / 23); a table the walk
 * could not read is an access fault (1 / 5 / 7). DMA from a device whose context is not valid (Linux's
 * blocking domain clears DC.tc.V) is 258; a PASID without a valid process context is 266.
 */
export function causeOf(a: FailedAccess): number {
  const byAccess = (exec: number, read: number, write: number): number => (a.perm & PERM_EXEC ? exec : a.perm & PERM_WRITE ? write : read);
  switch (a.failure) {
    case 'blocked':
      return 258;
    case 'no-context':
      return 266;
    case 'table-fault':
      return a.stage2 ? byAccess(20, 21, 23) : byAccess(1, 5, 7);
    default:
      return a.stage2 ? byAccess(20, 21, 23) : byAccess(12, 13, 15);
  }
}

/** A fault record's fields. */
export interface FaultRecord {
  /** dw0 bits 11:0: the fault cause, e.g. 13 read page fault, 15 write/AMO page fault, 21 read guest-page fault, 258 DDT entry not valid, 260 transaction type disallowed. */
  readonly CAUSE: number;
  /** dw0 bits 31:12: the process_id (PASID) of the request, when `PV` is 1. */
  readonly PID: number;
  /** dw0 bit 32: the request carried a process_id; 0 forces `PID` and `PRIV` to 0. */
  readonly PV: number;
  /** dw0 bit 33: the request was a supervisor (privileged) one. */
  readonly PRIV: number;
  /** dw0 bits 39:34: transaction type: 0 none, 1/2/3 untranslated exec/read/write, 5/6/7 translated exec/read/write, 8 ATS translation request, 9 PCIe message. */
  readonly TTYP: number;
  /** dw0 bits 63:40: device_id of the requester (for PCIe, segment and requester ID). */
  readonly DID: number;
  /** dw1 bits 31:0: implementation-defined. */
  readonly custom: number;
  /** dw2: the faulting IOVA for a transaction (the page offset may read 0), the message code for a PCIe message. */
  readonly iotval: bigint;
  /** dw3: for a guest-page fault, the GPA (bits 63:2), with bit 0 set when an implicit first-stage access faulted and bit 1 when that access was a write. */
  readonly iotval2: bigint;
}

/** The 32 bytes of a fault record. */
export function encodeFaultRecord(r: FaultRecord): Uint8Array {
  return writeLe64Words([encodeBitFields(FQ_DW0_FIELDS, { ...r }), BigInt(r.custom >>> 0), r.iotval, r.iotval2]);
}

/** A fault record's fields from its 32 bytes. */
export function decodeFaultRecord(rec: Uint8Array): FaultRecord {
  const [dw0, dw1, iotval, iotval2] = readLe64Words(rec, 4);
  return { ...decodeBitFields(FQ_DW0_FIELDS, dw0), custom: Number(dw1 & 0xffff_ffffn), iotval, iotval2 };
}

/** The record the IOMMU writes for `a`. PV = 0 forces PID = PRIV = 0; the IOVA goes in iotval. */
export function faultRecordOf(a: FailedAccess): FaultRecord {
  const pv = a.pasid >= 0 ? 1 : 0;
  return {
    CAUSE: causeOf(a),
    PID: pv ? a.pasid : 0,
    PV: pv,
    PRIV: pv && a.perm & PERM_PRIV ? 1 : 0,
    TTYP: ttypOf(a.perm),
    DID: a.rid,
    custom: 0,
    iotval: a.addr,
    iotval2: 0n,
  };
}

/** A page request record's fields (dw0 header and the PCIe message payload in dw1). */
export interface PageRequestRecord {
  /** The PASID (with PV = 1). */
  readonly PID: number;
  /** 1 when the request carries a PASID. */
  readonly PV: number;
  /** Privileged mode requested (with PV = 1). */
  readonly PRIV: number;
  /** Execute requested (with PV = 1). */
  readonly EXEC: number;
  /** The requester's device ID. */
  readonly DID: number;
  /** Read access requested. */
  readonly R: number;
  /** Write access requested. */
  readonly W: number;
  /** Last request of its page request group. */
  readonly L: number;
  /** The page request group index. */
  readonly PRGI: number;
  /** The page address >> 12. */
  readonly ADDR: bigint;
}

/** The 16 bytes of a page request record. */
export function encodePageRequestRecord(r: PageRequestRecord): Uint8Array {
  return writeLe64Words([encodeBitFields(PQ_DW0_FIELDS, { ...r }), encodeBitFields(PQ_DW1_FIELDS, { ...r })]);
}

/** A page request record's fields from its 16 bytes. */
export function decodePageRequestRecord(rec: Uint8Array): PageRequestRecord {
  const [dw0, dw1] = readLe64Words(rec, 2);
  const p = decodeBitFields(PQ_DW1_FIELDS, dw1);
  return { ...decodeBitFields(PQ_DW0_FIELDS, dw0), R: p.R, W: p.W, L: p.L, PRGI: p.PRGI, ADDR: BigInt(p.ADDR) };
}

/** PCIe PRG response code of core's PAGE_RESP_* and back (unknown codes are failures). */
export function prgCodeOf(code: number): number {
  return code === PAGE_RESP_SUCCESS ? PRG_RESP_SUCCESS : code === PAGE_RESP_INVALID ? PRG_RESP_INVALID : PRG_RESP_FAILURE;
}
/** Core's PAGE_RESP_* code of a PCIe PRG response code. */
export function pageRespOfPrg(code: number): number {
  return code === PRG_RESP_SUCCESS ? PAGE_RESP_SUCCESS : code === PRG_RESP_INVALID ? PAGE_RESP_INVALID : PAGE_RESP_FAILURE;
}
