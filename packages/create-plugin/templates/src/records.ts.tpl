/**
 * The __NAME__ fault records, page requests and page responses: their layouts, and encode / decode between
 * bytes and typed records. Records are little-endian 64-bit words whose fields are [hi:lo] layouts read with
 * core's bitfield helpers; word 1 of a 16-byte record is the address. Decoding takes untrusted bytes, so it
 * answers a `Result` that says what is wrong rather than throwing. What a failed access becomes is the
 * codec's business (fault-codec.ts).
 *
 * Fault record (16 bytes), word 0: [15:0] RID, [23:16] REASON (FAULT_REASONS), [24] WR, [25] EXE,
 * [26] PRIV, [27] PV (a PASID is present), [47:28] PASID, [63:60] TYPE = 1; word 1: the faulting address.
 * Page request (16 bytes), word 0: [15:0] RID, [24:16] PRGI, [25] RD, [26] WR, [27] LAST, [28] PV,
 * [48:29] PASID, [63:60] TYPE = 2; word 1: the page address.
 * Page response (8 bytes): [15:0] RID, [24:16] PRGI, [28:25] CODE, [29] PV, [49:30] PASID.
 */
import { decodeBitFields, encodeBitFields, err, ok, type BitField, type Result, type TranslationFailure } from '@ioasid/core/driver';

/** Word 0 of a fault record. */
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

/** Word 0 of a page request. */
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

/** The one word of a page response. */
export const PAGE_RESPONSE_FIELDS = [
  { name: 'RID', hi: 15, lo: 0 },
  { name: 'PRGI', hi: 24, lo: 16 },
  { name: 'CODE', hi: 28, lo: 25 },
  { name: 'PV', hi: 29, lo: 29 },
  { name: 'PASID', hi: 49, lo: 30 },
] as const satisfies readonly BitField[];

/** TYPE of a fault record. */
export const RECORD_TYPE_FAULT = 1;
/** TYPE of a page request. */
export const RECORD_TYPE_PAGE_REQUEST = 2;
/** Bytes in a fault record and in a page request. */
export const RECORD_SIZE = 16;
/** Bytes in a page response. */
export const PAGE_RESPONSE_SIZE = 8;

/** REASON codes: the index in this list plus one (0 is never written). */
export const FAULT_REASONS: readonly TranslationFailure[] = ['not-present', 'permission-read', 'permission-write', 'permission-exec', 'permission-priv', 'address-size', 'table-fault', 'blocked', 'no-context'];

type Fields<L extends readonly BitField[]> = Record<L[number]['name'], number>;

/** A fault record: the fields of word 0 but TYPE, and the faulting address. */
export type FaultRecord = Omit<Fields<typeof FAULT_FIELDS>, 'TYPE'> & { readonly ADDR: bigint };
/** A page request: the fields of word 0 but TYPE, and the page address. */
export type PageRequestRecord = Omit<Fields<typeof PAGE_REQUEST_FIELDS>, 'TYPE'> & { readonly ADDR: bigint };
/** A page response: its fields. */
export type PageResponseRecord = Fields<typeof PAGE_RESPONSE_FIELDS>;

const U64 = 0xffff_ffff_ffff_ffffn;

function toBytes(words: readonly bigint[]): Uint8Array {
  const b = new Uint8Array(words.length * 8);
  const dv = new DataView(b.buffer);
  words.forEach((w, i) => dv.setBigUint64(i * 8, w & U64, true));
  return b;
}

/** The 64-bit words of `bytes` when it is exactly `size` bytes long; what is wrong otherwise. */
function toWords(bytes: Uint8Array, size: number, what: string): Result<bigint[]> {
  if (bytes.byteLength !== size) return err(`${what}: expected ${size} bytes, got ${bytes.byteLength}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words: bigint[] = [];
  for (let i = 0; i < size; i += 8) words.push(dv.getBigUint64(i, true));
  return ok(words);
}

/** A fault record's bytes (TYPE written as a fault). */
export function encodeFaultRecord(r: FaultRecord): Uint8Array {
  return toBytes([encodeBitFields(FAULT_FIELDS, { ...r, TYPE: RECORD_TYPE_FAULT }), r.ADDR]);
}

/** Reads a fault record; refuses a wrong size or a TYPE that is not a fault. */
export function decodeFaultRecord(bytes: Uint8Array): Result<FaultRecord> {
  const w = toWords(bytes, RECORD_SIZE, 'fault record');
  if (!w.ok) return w;
  const { TYPE, ...f } = decodeBitFields(FAULT_FIELDS, w.value[0]);
  if (TYPE !== RECORD_TYPE_FAULT) return err(`not a fault record: TYPE is ${TYPE}, a fault is ${RECORD_TYPE_FAULT}`);
  return ok({ ...f, ADDR: w.value[1] });
}

/** A page request's bytes (TYPE written as a page request). */
export function encodePageRequestRecord(r: PageRequestRecord): Uint8Array {
  return toBytes([encodeBitFields(PAGE_REQUEST_FIELDS, { ...r, TYPE: RECORD_TYPE_PAGE_REQUEST }), r.ADDR]);
}

/** Reads a page request; refuses a wrong size or a TYPE that is not a page request. */
export function decodePageRequestRecord(bytes: Uint8Array): Result<PageRequestRecord> {
  const w = toWords(bytes, RECORD_SIZE, 'page request');
  if (!w.ok) return w;
  const { TYPE, ...f } = decodeBitFields(PAGE_REQUEST_FIELDS, w.value[0]);
  if (TYPE !== RECORD_TYPE_PAGE_REQUEST) return err(`not a page request: TYPE is ${TYPE}, a page request is ${RECORD_TYPE_PAGE_REQUEST}`);
  return ok({ ...f, ADDR: w.value[1] });
}

/** A page response's bytes. */
export function encodePageResponseRecord(r: PageResponseRecord): Uint8Array {
  return toBytes([encodeBitFields(PAGE_RESPONSE_FIELDS, r)]);
}

/** Reads a page response; refuses a wrong size. */
export function decodePageResponseRecord(bytes: Uint8Array): Result<PageResponseRecord> {
  const w = toWords(bytes, PAGE_RESPONSE_SIZE, 'page response');
  if (!w.ok) return w;
  return ok(decodeBitFields(PAGE_RESPONSE_FIELDS, w.value[0]));
}
