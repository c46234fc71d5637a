/**
 * VT-d fault records (the fault reason table Linux prints is fault-reasons.ts): the 128-bit fault recording
 * register (FRCD), the 256-bit page request descriptor (`struct page_req_dsc`) and the page group response
 * descriptor (invalidation-queue type 0x9). Records are little-endian byte arrays of the exact size.
 */
import type { Result } from '@ioasid/core/driver';
import { readLe32, readLe64, writeLe32, writeLe64, err, fieldFits, fieldGet, fieldPrep, fieldWidth, ok, permOf } from '@ioasid/core/driver';
import { hex64 } from './registers.js';

// ---------------------------------------------------------------------------------------------
// Fault Recording Register (FRCD), 128 bits at FRO·16 + 16·i
// ---------------------------------------------------------------------------------------------

/** Size of one fault recording register in bytes (128 bits); CAP_REG.NFR + 1 of them start at CAP_REG.FRO × 16. */
export const FRCD_SIZE = 16;

/**
 * One fault record, fields as the specification names them. Bit positions are in the 128-bit record:
 * FI 63:12, SID 79:64, T2 92, PRIV 93, EXE 94, PP 95, FR 103:96, PV 123:104, AT 125:124, T1 126, F 127.
 * Linux decodes only F, T1 ("type": 1 = read/AtomicOp, 0 = write), FR, PV, PP, SID and FI.
 */
export interface VtdFrcd {
  /** Fault info: bits 63:12 of the faulting page address (for interrupt faults, 63:48 = interrupt index). */
  readonly FI: bigint;
  /** Source id of the faulting request: bus << 8 | devfn. */
  readonly SID: number;
  /** Type bit 2: with T1 = 0, 0 = write, 1 = page request; with T1 = 1, 0 = read, 1 = AtomicOp. */
  readonly T2: number;
  /** Privilege Mode Requested: the request was in supervisor mode (with PP). */
  readonly PRIV: number;
  /** Execute Permission Requested (with PP). */
  readonly EXE: number;
  /** PASID Present: PV holds the request's PASID. */
  readonly PP: number;
  /** Fault reason number, a `VTD_FR` value. */
  readonly FR: number;
  /** PASID Value of the request when PP = 1. */
  readonly PV: number;
  /** Address Type of the request (PCIe AT: 0 untranslated, 1 translation request, 2 translated). */
  readonly AT: number;
  /** Type bit 1: 1 = read (or AtomicOp), 0 = write: Linux's dma_frcd_type(). */
  readonly T1: number;
  /** Fault bit, RW1C: software reads records until it finds F clear. */
  readonly F: number;
}

/** Layout of the upper quadword (bits 127:64), relative to bit 64. */
export const FRCD_HI: ReadonlyArray<{ name: Exclude<keyof VtdFrcd, 'FI'>; hi: number; lo: number }> = [
  { name: 'SID', hi: 15, lo: 0 },
  { name: 'T2', hi: 28, lo: 28 },
  { name: 'PRIV', hi: 29, lo: 29 },
  { name: 'EXE', hi: 30, lo: 30 },
  { name: 'PP', hi: 31, lo: 31 },
  { name: 'FR', hi: 39, lo: 32 },
  { name: 'PV', hi: 59, lo: 40 },
  { name: 'AT', hi: 61, lo: 60 },
  { name: 'T1', hi: 62, lo: 62 },
  { name: 'F', hi: 63, lo: 63 },
];

/** Encode a fault record into its 16 bytes; fails when a field does not fit. */
export function encodeFrcd(frcd: VtdFrcd): Result<Uint8Array> {
  if (!fieldFits(frcd.FI, 51, 0)) return err(`FRCD.FI ${hex64(frcd.FI)} does not fit in bits 63:12`);
  let hi = 0n;
  for (const f of FRCD_HI) {
    const v = frcd[f.name];
    if (!Number.isInteger(v) || !fieldFits(v, f.hi, f.lo)) return err(`FRCD.${f.name} = ${v} does not fit in ${fieldWidth(f.hi, f.lo)} bit(s)`);
    hi |= fieldPrep(BigInt(v), f.hi, f.lo);
  }
  const bytes = new Uint8Array(FRCD_SIZE);
  writeLe64(bytes, 0, frcd.FI << 12n);
  writeLe64(bytes, 8, hi);
  return ok(bytes);
}

/** Decode a 16-byte fault recording register; fails on any other length. */
export function decodeFrcd(bytes: Uint8Array): Result<VtdFrcd> {
  if (bytes.byteLength !== FRCD_SIZE) return err(`a fault recording register is ${FRCD_SIZE} bytes, got ${bytes.byteLength}`);
  const lo = readLe64(bytes, 0);
  const hi = readLe64(bytes, 8);
  const out: Record<string, number | bigint> = { FI: lo >> 12n };
  for (const f of FRCD_HI) out[f.name] = Number(fieldGet(hi, f.hi, f.lo));
  return ok(out as unknown as VtdFrcd);
}

/** dma_frcd_page_addr(): the faulting address with the offset bits cleared. */
export function frcdFaultAddress(frcd: VtdFrcd): bigint {
  return frcd.FI << 12n;
}

/** For interrupt-remapping faults the kernel prints `addr >> 48`: the interrupt index in FI's top 16 bits. */
export function frcdInterruptIndex(frcd: VtdFrcd): number {
  return Number(frcdFaultAddress(frcd) >> 48n);
}

/** A fault record for a DMA translation failure, as hardware would log it. */
export function frcdForDmaFault(f: {
  addr: bigint;
  sid: number;
  read: boolean;
  reason: number;
  pasid?: number;
  priv?: boolean;
  exe?: boolean;
}): VtdFrcd {
  return {
    FI: BigInt.asUintN(64, f.addr) >> 12n,
    SID: f.sid,
    T2: 0,
    PRIV: f.priv ? 1 : 0,
    EXE: f.exe ? 1 : 0,
    PP: f.pasid === undefined ? 0 : 1,
    FR: f.reason,
    PV: f.pasid ?? 0,
    AT: 0,
    T1: f.read ? 1 : 0,
    F: 1,
  };
}

/** A fault record for a blocked interrupt request: the interrupt index sits in FI bits 63:48. */
export function frcdForInterruptFault(f: { index: number; sid: number; reason: number }): VtdFrcd {
  return {
    FI: BigInt(f.index & 0xffff) << 36n,
    SID: f.sid,
    T2: 0,
    PRIV: 0,
    EXE: 0,
    PP: 0,
    FR: f.reason,
    PV: 0,
    AT: 0,
    T1: 0,
    F: 1,
  };
}

// ---------------------------------------------------------------------------------------------
// Page request descriptor (struct page_req_dsc), 256 bits
// ---------------------------------------------------------------------------------------------

/** Size of a page request descriptor in bytes (256 bits). */
export const PAGE_REQ_DSC_SIZE = 32;
/** Descriptor type of a page request (qw0 bits 7:0). Linux does not check it. */
export const PRQ_TYPE_PAGE_REQUEST = 0x1;

/** A page request, with Linux's field names. */
export interface PageReqDsc {
  /** Descriptor type, qw0 bits 7:0 (`PRQ_TYPE_PAGE_REQUEST` = 1). */
  readonly type: number;
  /** PASID Present (qw0 bit 8): `pasid` is valid. */
  readonly pasid_present: number;
  /** PDP, qw0 bit 9: private data present (named priv_data_present in older kernels). */
  readonly priv_data_present: number;
  /** Requester id of the device: bus << 8 | devfn. */
  readonly rid: number;
  /** PASID of the request (20 bits), valid with pasid_present. */
  readonly pasid: number;
  /** Execute access requested. */
  readonly exe_req: number;
  /** Privileged-mode request. */
  readonly pm_req: number;
  /** Read access requested. */
  readonly rd_req: number;
  /** Write access requested. */
  readonly wr_req: number;
  /** Last page in group; with rd_req = wr_req = 0 it is a Stop Marker, which gets no response. */
  readonly lpig: number;
  /** Page Request Group Index (9 bits), echoed in the page group response. */
  readonly prg_index: number;
  /** Page address: the struct's 52-bit addr field shifted by 12 (Linux: `req->addr << VTD_PAGE_SHIFT`). */
  readonly addr: bigint;
  /** Private data (two qwords) the device attached, echoed in the response when priv_data_present. */
  readonly priv_data: readonly [bigint, bigint];
}

type NumericKeys<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T];

export const PRQ_QW0: ReadonlyArray<{ name: NumericKeys<PageReqDsc>; hi: number; lo: number }> = [
  { name: 'type', hi: 7, lo: 0 },
  { name: 'pasid_present', hi: 8, lo: 8 },
  { name: 'priv_data_present', hi: 9, lo: 9 },
  { name: 'rid', hi: 31, lo: 16 },
  { name: 'pasid', hi: 51, lo: 32 },
  { name: 'exe_req', hi: 52, lo: 52 },
  { name: 'pm_req', hi: 53, lo: 53 },
];

export const PRQ_QW1: ReadonlyArray<{ name: NumericKeys<PageReqDsc>; hi: number; lo: number }> = [
  { name: 'rd_req', hi: 0, lo: 0 },
  { name: 'wr_req', hi: 1, lo: 1 },
  { name: 'lpig', hi: 2, lo: 2 },
  { name: 'prg_index', hi: 11, lo: 3 },
];

function packFields<T>(
  obj: T,
  layout: ReadonlyArray<{ name: NumericKeys<T>; hi: number; lo: number }>,
  what: string,
): Result<bigint> {
  let word = 0n;
  for (const f of layout) {
    const v = obj[f.name] as unknown as number;
    if (!Number.isInteger(v) || !fieldFits(v, f.hi, f.lo)) {
      return err(`${what}.${String(f.name)} = ${v} does not fit in ${fieldWidth(f.hi, f.lo)} bit(s)`);
    }
    word |= fieldPrep(BigInt(v), f.hi, f.lo);
  }
  return ok(word);
}

function checkPageAddress(addr: bigint, what: string): string | null {
  if (addr < 0n || addr > (1n << 64n) - 1n) return `${what} ${addr} is not a 64-bit address`;
  if (addr & 0xfffn) return `${what} ${hex64(addr)} is not 4 KiB aligned`;
  return null;
}

// Number fast paths: the descriptors are built and parsed as 32-bit halves (no BigInt but the
// address). Anything they do not handle (a field out of range, non-zero private data) takes the
// general BigInt path below, which produces the same bytes and the same errors.

const TWO_32 = 4294967296;

/** An integer in [0, max]: what packFields accepts for a field of that width. */
function fitsNum(v: unknown, max: number): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
}

/** Writes the private data words, or leaves the (zeroed) bytes alone when both are 0. */
function writePrivData(bytes: Uint8Array, priv: readonly [bigint, bigint]): void {
  if (priv[0] !== 0n) writeLe64(bytes, 16, priv[0]);
  if (priv[1] !== 0n) writeLe64(bytes, 24, priv[1]);
}

/** Bytes 16..31 as the two private data words, without BigInt arithmetic when they are zero. */
function readPrivData(bytes: Uint8Array): readonly [bigint, bigint] {
  const p0 = readLe32(bytes, 16) === 0 && readLe32(bytes, 20) === 0 ? 0n : readLe64(bytes, 16);
  const p1 = readLe32(bytes, 24) === 0 && readLe32(bytes, 28) === 0 ? 0n : readLe64(bytes, 24);
  return [p0, p1] as const;
}

/** A 64-bit value from two halves. */
function u64FromHalves(lo: number, hi: number): bigint {
  return hi < 0x200000 ? BigInt(hi * TWO_32 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

const U64_LIMIT = (1n << 64n) - 1n;
/** Addresses up to here convert to a number exactly. */
const SAFE_ADDR = BigInt(Number.MAX_SAFE_INTEGER);

function encodePageReqDscFast(dsc: PageReqDsc): Uint8Array | null {
  const addr = dsc.addr;
  if (
    !fitsNum(dsc.type, 0xff) ||
    !fitsNum(dsc.pasid_present, 1) ||
    !fitsNum(dsc.priv_data_present, 1) ||
    !fitsNum(dsc.rid, 0xffff) ||
    !fitsNum(dsc.pasid, 0xfffff) ||
    !fitsNum(dsc.exe_req, 1) ||
    !fitsNum(dsc.pm_req, 1) ||
    !fitsNum(dsc.rd_req, 1) ||
    !fitsNum(dsc.wr_req, 1) ||
    !fitsNum(dsc.lpig, 1) ||
    !fitsNum(dsc.prg_index, 0x1ff) ||
    typeof addr !== 'bigint' ||
    addr < 0n ||
    addr > U64_LIMIT
  ) {
    return null;
  }
  const bytes = new Uint8Array(PAGE_REQ_DSC_SIZE);
  if (addr <= SAFE_ADDR) {
    const n = Number(addr);
    writeLe32(bytes, 8, n % TWO_32);
    writeLe32(bytes, 12, Math.floor(n / TWO_32));
  } else writeLe64(bytes, 8, addr);
  if ((bytes[8] | (bytes[9] << 8)) & 0xfff) return null; // not 4 KiB aligned: the general path reports it
  writeLe32(bytes, 0, dsc.type | (dsc.pasid_present << 8) | (dsc.priv_data_present << 9) | (dsc.rid << 16));
  writeLe32(bytes, 4, dsc.pasid | (dsc.exe_req << 20) | (dsc.pm_req << 21));
  const lo = bytes[8] | dsc.rd_req | (dsc.wr_req << 1) | (dsc.lpig << 2) | (dsc.prg_index << 3);
  bytes[8] = lo & 0xff;
  bytes[9] |= lo >>> 8;
  writePrivData(bytes, dsc.priv_data);
  return bytes;
}

/**
 * Encode a page request descriptor into its 32 bytes; fails when a field does not fit or the address is not 4 KiB
 * aligned.
 */
export function encodePageReqDsc(dsc: PageReqDsc): Result<Uint8Array> {
  const fast = encodePageReqDscFast(dsc);
  if (fast !== null) return ok(fast);
  const qw0 = packFields(dsc, PRQ_QW0, 'page_req_dsc');
  if (!qw0.ok) return qw0;
  const qw1 = packFields(dsc, PRQ_QW1, 'page_req_dsc');
  if (!qw1.ok) return qw1;
  const bad = checkPageAddress(dsc.addr, 'page_req_dsc.addr');
  if (bad) return err(bad);
  const bytes = new Uint8Array(PAGE_REQ_DSC_SIZE);
  writeLe64(bytes, 0, qw0.value);
  writeLe64(bytes, 8, qw1.value | dsc.addr);
  writeLe64(bytes, 16, dsc.priv_data[0]);
  writeLe64(bytes, 24, dsc.priv_data[1]);
  return ok(bytes);
}

/** Decode a 32-byte page request descriptor (prq.c `struct page_req_dsc`); fails on any other length. */
export function decodePageReqDsc(bytes: Uint8Array): Result<PageReqDsc> {
  if (bytes.byteLength !== PAGE_REQ_DSC_SIZE) {
    return err(`a page request descriptor is ${PAGE_REQ_DSC_SIZE} bytes, got ${bytes.byteLength}`);
  }
  const lo0 = readLe32(bytes, 0);
  const hi0 = readLe32(bytes, 4);
  const lo1 = readLe32(bytes, 8);
  const dsc: PageReqDsc = {
    type: lo0 & 0xff,
    pasid_present: (lo0 >>> 8) & 1,
    priv_data_present: (lo0 >>> 9) & 1,
    rid: lo0 >>> 16,
    pasid: hi0 & 0xfffff,
    exe_req: (hi0 >>> 20) & 1,
    pm_req: (hi0 >>> 21) & 1,
    rd_req: lo1 & 1,
    wr_req: (lo1 >>> 1) & 1,
    lpig: (lo1 >>> 2) & 1,
    prg_index: (lo1 >>> 3) & 0x1ff,
    addr: u64FromHalves((lo1 & ~0xfff) >>> 0, readLe32(bytes, 12)),
    priv_data: readPrivData(bytes),
  };
  return ok(dsc);
}

/** A Stop Marker: last-in-group with neither read nor write; Linux drops it without a response. */
export function isStopMarker(dsc: PageReqDsc): boolean {
  return dsc.lpig === 1 && dsc.rd_req === 0 && dsc.wr_req === 0;
}

/** iommufd's IOMMU_PGFAULT_PERM_* bits for a request (rd → READ, wr → WRITE, exe → EXEC, pm → PRIV). */
export function pageReqPerm(dsc: PageReqDsc): number {
  return permOf({ read: dsc.rd_req, write: dsc.wr_req, exec: dsc.exe_req, priv: dsc.pm_req });
}

/** iommufd's IOMMU_PGFAULT_FLAGS_*: PASID_VALID when PP is set, LAST_PAGE when LPIG is set. */
export function pageReqFlags(dsc: PageReqDsc): number {
  return (dsc.pasid_present ? 1 : 0) | (dsc.lpig ? 2 : 0);
}

// ---------------------------------------------------------------------------------------------
// Page group response descriptor (QI type 0x9)
// ---------------------------------------------------------------------------------------------

/** Invalidation queue descriptor type of a page group response (QI_PGRP_RESP_TYPE). */
export const QI_PGRP_RESP_TYPE = 0x9;
/** Size of a page group response descriptor in bytes (256 bits). */
export const PAGE_GRP_RESP_DSC_SIZE = 32;

/** Response codes (PCIe PRG Response): Success, Invalid Request, Response Failure. */
export const QI_RESP_SUCCESS = 0x0;
/** PCIe PRG Response "Invalid Request": the page cannot be made present; the device does not retry. */
export const QI_RESP_INVALID = 0x1;
/** PCIe PRG Response "Response Failure": catastrophic, the device stops issuing page requests. */
export const QI_RESP_FAILURE = 0xf;

/**
 * A page group response descriptor (invalidation queue type 0x9) that answers a page request group, with Linux's field
 * names.
 */
export interface PageGroupResponseDsc {
  /** PASID Present: `pasid` is valid. */
  readonly pasid_present: number;
  /** PDP (bit 5): private data present. Dropped from the newest kernels' headers. */
  readonly pdp: number;
  /** Response code: `QI_RESP_SUCCESS`, `QI_RESP_INVALID` or `QI_RESP_FAILURE`. */
  readonly resp_code: number;
  /** Requester id (Linux's macro is QI_PGRP_DID but the value is the RID). */
  readonly rid: number;
  /** PASID of the request being answered. */
  readonly pasid: number;
  /** qw1 bit 2: once LPIG, reserved since specification 4.0 (Linux stopped setting it). */
  readonly lpig: number;
  /** Page Request Group Index of the request being answered. */
  readonly prg_index: number;
  /** Private data echoed from the request (when pdp = 1). */
  readonly priv_data: readonly [bigint, bigint];
}

export const PGRP_QW0: ReadonlyArray<{ name: NumericKeys<PageGroupResponseDsc>; hi: number; lo: number }> = [
  { name: 'pasid_present', hi: 4, lo: 4 },
  { name: 'pdp', hi: 5, lo: 5 },
  { name: 'resp_code', hi: 15, lo: 12 },
  { name: 'rid', hi: 31, lo: 16 },
  { name: 'pasid', hi: 51, lo: 32 },
];

export const PGRP_QW1: ReadonlyArray<{ name: NumericKeys<PageGroupResponseDsc>; hi: number; lo: number }> = [
  { name: 'lpig', hi: 2, lo: 2 },
  { name: 'prg_index', hi: 11, lo: 3 },
];

function encodePageGroupResponseFast(dsc: PageGroupResponseDsc): Uint8Array | null {
  if (
    !fitsNum(dsc.pasid_present, 1) ||
    !fitsNum(dsc.pdp, 1) ||
    !fitsNum(dsc.resp_code, 0xf) ||
    !fitsNum(dsc.rid, 0xffff) ||
    !fitsNum(dsc.pasid, 0xfffff) ||
    !fitsNum(dsc.lpig, 1) ||
    !fitsNum(dsc.prg_index, 0x1ff)
  ) {
    return null;
  }
  const bytes = new Uint8Array(PAGE_GRP_RESP_DSC_SIZE);
  writeLe32(bytes, 0, QI_PGRP_RESP_TYPE | (dsc.pasid_present << 4) | (dsc.pdp << 5) | (dsc.resp_code << 12) | (dsc.rid << 16));
  writeLe32(bytes, 4, dsc.pasid);
  writeLe32(bytes, 8, (dsc.lpig << 2) | (dsc.prg_index << 3));
  writePrivData(bytes, dsc.priv_data);
  return bytes;
}

/** Encode a page group response into its 32 bytes (type 0x9); fails when a field does not fit. */
export function encodePageGroupResponse(dsc: PageGroupResponseDsc): Result<Uint8Array> {
  const fast = encodePageGroupResponseFast(dsc);
  if (fast !== null) return ok(fast);
  const qw0 = packFields(dsc, PGRP_QW0, 'page_grp_resp');
  if (!qw0.ok) return qw0;
  const qw1 = packFields(dsc, PGRP_QW1, 'page_grp_resp');
  if (!qw1.ok) return qw1;
  const bytes = new Uint8Array(PAGE_GRP_RESP_DSC_SIZE);
  writeLe64(bytes, 0, qw0.value | BigInt(QI_PGRP_RESP_TYPE));
  writeLe64(bytes, 8, qw1.value);
  writeLe64(bytes, 16, dsc.priv_data[0]);
  writeLe64(bytes, 24, dsc.priv_data[1]);
  return ok(bytes);
}

/** Decode a 32-byte page group response; fails on another length or a descriptor type other than 0x9. */
export function decodePageGroupResponse(bytes: Uint8Array): Result<PageGroupResponseDsc> {
  if (bytes.byteLength !== PAGE_GRP_RESP_DSC_SIZE) {
    return err(`a page group response descriptor is ${PAGE_GRP_RESP_DSC_SIZE} bytes, got ${bytes.byteLength}`);
  }
  const lo0 = readLe32(bytes, 0);
  // QEMU reads the descriptor type as qw0[11:9]:qw0[3:0]; both parts must name type 0x9.
  const type = ((lo0 >>> 5) & 0x70) | (lo0 & 0xf);
  if (type !== QI_PGRP_RESP_TYPE) return err(`descriptor type ${hex64(BigInt(type))} is not a page group response (0x9)`);
  const lo1 = readLe32(bytes, 8);
  const dsc: PageGroupResponseDsc = {
    pasid_present: (lo0 >>> 4) & 1,
    pdp: (lo0 >>> 5) & 1,
    resp_code: (lo0 >>> 12) & 0xf,
    rid: lo0 >>> 16,
    pasid: readLe32(bytes, 4) & 0xfffff,
    lpig: (lo1 >>> 2) & 1,
    prg_index: (lo1 >>> 3) & 0x1ff,
    priv_data: readPrivData(bytes),
  };
  return ok(dsc);
}

/**
 * The response for a page request: same RID, PASID (if it had one) and group index. Private data is
 * echoed only when the request carried it, as the specification requires.
 */
export function pageGroupResponseFor(req: PageReqDsc, respCode: number): PageGroupResponseDsc {
  const echo = req.priv_data_present === 1;
  return {
    pasid_present: req.pasid_present,
    pdp: echo ? 1 : 0,
    resp_code: respCode,
    rid: req.rid,
    pasid: req.pasid_present ? req.pasid : 0,
    lpig: 0,
    prg_index: req.prg_index,
    priv_data: echo ? req.priv_data : [0n, 0n],
  };
}

/**
 * Map iommufd's response code (IOMMUFD_PAGE_RESP_SUCCESS 0, _INVALID 1) to the descriptor's code.
 * Linux copies the core code into the field unchanged, which is right for these two; the core's
 * FAILURE (2) would go out as 2 rather than 0xF, so it is mapped here to the PCIe value.
 */
export function qiRespCodeFromIommufd(code: number): Result<number> {
  switch (code) {
    case 0:
      return ok(QI_RESP_SUCCESS);
    case 1:
      return ok(QI_RESP_INVALID);
    case 2:
      return ok(QI_RESP_FAILURE);
    default:
      return err(`page response code ${code} is not SUCCESS (0) or INVALID (1)`);
  }
}
