/**
 * The normalized fault: what every vendor's fault record, event or page request decodes to, and what
 * core routes by (device, PASID).
 */
import type { DeviceInfo } from './device-info.js';
import type { ErrnoCode } from '../uapi/errno.js';

/** Which of the three fault paths a record belongs to. */
export type FaultKind =
  /** An unrecoverable translation fault (VT-d fault recording, SMMUv3 event, AMD IO_PAGE_FAULT). */
  | 'dma'
  /** A recoverable page request (PCIe PRI / VT-d page request / SMMUv3 PRI queue / AMD PPR). */
  | 'page-request'
  /** A stalled transaction (SMMUv3 stall model), answered with CMD_RESUME. */
  | 'stall';

/** A vendor fault, event or page-request record decoded into vendor-neutral fields (core routes it by device and PASID). */
export interface IommuFault {
  /** Unrecoverable fault, page request or stall. */
  kind: FaultKind;
  /** Index of the IOMMU unit in the host. */
  unit: number;
  /** PCI requester id (bus << 8 | devfn) or StreamID. */
  rid: number;
  /** The PASID / SubstreamID, or -1 for requests without one. */
  pasid: number;
  /** Faulting address (page-aligned for page requests). */
  addr: bigint;
  /** PERM_* bits of the access. */
  perm: number;
  /** Page request group index (PRG index / STAG), 0 for unrecoverable faults. */
  grpid: number;
  /** Last request of its group. */
  last: boolean;
  /** Vendor reason code (VT-d fault reason, SMMUv3 event id, AMD event code). */
  reason: number;
  /** The vendor's name for the reason, e.g. 'PTE Read access is not set', 'F_TRANSLATION'. */
  reasonText: string;
  /** Whether the stage that faulted is stage 2 (nesting parent) rather than stage 1. */
  stage2: boolean;
}

/** Why a walk failed, in core's words; vendors map it to their reason codes. */
export type TranslationFailure =
  | 'not-present'
  | 'permission-read'
  | 'permission-write'
  | 'permission-exec'
  | 'permission-priv'
  | 'address-size'
  | 'table-fault'
  | 'blocked'
  | 'no-context';

/** How a device reports an access it can wait on: a PCIe PRI page request, or a stalled transaction. */
export type RecoverableKind = 'page-request' | 'stall';

/** A DMA that did not translate, as core hands it to a vendor's FaultCodec to encode as that hardware's record. */
export interface FailedAccess {
  /** Index of the IOMMU unit in the host. */
  unit: number;
  /** PCI requester id (bus << 8 | devfn) or StreamID of the device. */
  rid: number;
  /** PASID / SubstreamID of the access, -1 without one. */
  pasid: number;
  /** The IOVA accessed, in bytes. */
  addr: bigint;
  /** PERM_* bits the access needed. */
  perm: number;
  /** Why the walk failed. */
  failure: TranslationFailure;
  /** The failing walk was the stage-2 (nesting parent) one. */
  stage2: boolean;
  /** The device waits for a response (PRI page request or stall) rather than reporting an error. */
  recoverable: boolean;
  /**
   * For a recoverable access: 'page-request' (PCIe PRI, the default when absent) or 'stall' (the
   * transaction stalls in the IOMMU, SMMUv3 stall model, and is resumed or terminated).
   */
  kind?: RecoverableKind;
  /** PRG index of a page request; the stall tag (STAG) of a stall. */
  grpid: number;
  /** Last request of its page request group (PCIe PRI Last bit); true for a stall. */
  last: boolean;
  /**
   * `IoPageTable.format` of the table whose walk failed: the paging domain's table; the nested
   * parent's for a stage-2 fault (`stage2`); `NestedDomainOps.format` for a nested stage-1 failure.
   * '' when no table was walked (blocked) or the vendor did not name the stage-1 format. Core always
   * sets it; it is optional only so that records built by hand (tools, tests) stay valid.
   */
  format?: string;
  /** IOTLB tag of the binding that faulted (domain id / ASID / VMID / nested tag), 0 when blocked. Core always sets it. */
  tag?: number;
  /** For 'no-context': the vendor's code from `WalkResult.contextFault` (0 or absent when unspecified). */
  contextFault?: number;
}

/** Page response code (enum iommu_page_response_code IOMMU_PAGE_RESP_SUCCESS): the page is mapped now, retry the access. */
export const PAGE_RESP_SUCCESS = 0;
/** IOMMU_PAGE_RESP_INVALID: the request is refused; the device must not retry this address. */
export const PAGE_RESP_INVALID = 1;
/** IOMMU_PAGE_RESP_FAILURE: a catastrophic failure (PCIe Response Failure): the function stops sending page requests. */

export const PAGE_RESP_FAILURE = 2;

/** A response to a page request or stall, in vendor-neutral fields, that a FaultCodec encodes. */
export interface PageResponse {
  /** Requester id (or StreamID) of the device answered. */
  rid: number;
  /** -1 without a PASID (and from `decodeResume`: CMD_RESUME carries none). */
  pasid: number;
  /** PRG index of a page response; the stall tag (STAG) of a resume. */
  grpid: number;
  /** PAGE_RESP_* */
  code: number;
}

/**
 * The page-request half of a fault codec (PCIe PRI): the request record the unit queues and the response
 * the driver sends back. Hardware without page requests (virtio-iommu, whose event queue carries faults
 * only) has none; a codec has all five members or none (`codecPageRequests`).
 */
export interface PageRequestCodec {
  /** Size in bytes of one page request record. */
  readonly pageRequestSize: number;
  /** Encodes a page request (page request descriptor, PRI queue entry, PPR log entry). */
  encodePageRequest(a: FailedAccess): Uint8Array;
  /** Decodes a page request record back to the normalized fault (kind 'page-request'). */
  decodePageRequest(record: Uint8Array, unit: number): IommuFault;
  /** Encodes the response the IOMMU driver sends the device (page group response, CMD_PRI_RESP, COMPLETE_PPR...). */
  encodePageResponse(r: PageResponse): Uint8Array;
  /** Decodes a page response back (what the device is told). */
  decodePageResponse(bytes: Uint8Array): PageResponse;
}

/**
 * The page-request half without allocation, for a unit that sees millions of page requests: core writes
 * each page request into a record slot of its hardware queue and each response into one reused buffer.
 * Optional beside PageRequestCodec: its three methods all or none, with `pageResponseSize` (`codecPageRequestsInPlace`). Each gives
 * exactly what its allocating twin gives (the conformance suite compares them), and throws what it throws.
 * Core owns `out` and reuses it after the call: a codec must not keep what it wrote or read there (it may
 * remember the buffer itself, to write it faster when core hands it the same one again).
 */
export interface PageRequestInPlace {
  /** Size in bytes of one page response record (what encodePageResponse returns). */
  readonly pageResponseSize: number;
  /** Writes encodePageRequest(a)'s `pageRequestSize` bytes at the start of `out`. */
  encodePageRequestInto(a: FailedAccess, out: Uint8Array): void;
  /** Writes encodePageResponse(r)'s `pageResponseSize` bytes at the start of `out`. */
  encodePageResponseInto(r: PageResponse, out: Uint8Array): void;
  /** Sets every field of `out` to what decodePageResponse(bytes) returns. */
  decodePageResponseInto(bytes: Uint8Array, out: PageResponse): void;
}

/**
 * One page request in plain numbers: what core keeps of a page request on its hot path instead of an
 * IommuFault (whose address is a bigint) or a FailedAccess. The address is split in its two 32-bit
 * halves, so that every 64-bit address fits without a bigint.
 *
 * Each half is a 32-bit word taken modulo 2^32: core writes it as a signed 32-bit integer (`x | 0`, so
 * bit 31 set makes it negative), and a codec's decodePageRequestFields should too. That keeps the field
 * a small integer for every address: a value from 2^31 up is a double to V8, and one such store changes
 * the shape of the object that holds it, which deoptimizes the compiled code reading such objects. A
 * reader takes `x >>> 0` for the unsigned value (or uses bit operations, which ignore the sign), so a
 * half written unsigned reads the same.
 */
export interface PageRequestFields extends Pick<IommuFault, 'rid' | 'pasid' | 'perm' | 'grpid' | 'last' | 'reason' | 'reasonText' | 'stage2'> {
  /** Bits 31:0 of the page address, a 32-bit word (signed as core writes it; the page offset bits are 0 in a decoded request). */
  addrLo: number;
  /** Bits 63:32 of the page address, a 32-bit word (signed as core writes it). */
  addrHi: number;
}

/**
 * The page-request half in plain numbers, for a unit that sees millions of page requests: no bigint
 * and no object per request. Optional beside PageRequestInPlace, both methods or none
 * (`codecPageRequestFields`); each gives exactly what its allocating twin gives (the conformance suite
 * compares them) and throws what it throws.
 */
export interface PageRequestFieldsCodec {
  /**
   * Writes, into the first `pageRequestSize` bytes of `out`, what encodePageRequest returns for a
   * FailedAccess with these rid, pasid, address, perm, grpid and last (reason, reasonText and stage2 are
   * not read): the codec declares by having this method that nothing else of the access is encoded.
   */
  encodePageRequestFields(f: Readonly<PageRequestFields>, out: Uint8Array): void;
  /** Sets every field of `out` from decodePageRequest(record, unit) (its kind is 'page-request', its unit the caller's). */
  decodePageRequestFields(record: Uint8Array, out: PageRequestFields): void;
}

/** IommuFault.addr of `f`: the bigint made from the two halves, each signed or not (one BigInt below 2^53). */
export function pageRequestAddress(f: Readonly<PageRequestFields>): bigint {
  const lo = f.addrLo;
  const hi = f.addrHi;
  // `(hi & 0xffe00000) === 0`: the high word, signed or not, is below 2^21. A negative low word is
  // 2^32 more; the sum is computed in doubles from the start (`hi * 4294967296`), so no 32-bit result
  // is ever assumed (`lo >>> 0` would be, then fail at bit 31).
  if ((hi & 0xffe00000) === 0) return BigInt(hi * 4294967296 + lo + (lo < 0 ? 4294967296 : 0));
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Sets every field of `out` from the page request `f` (its address modulo 2^64, in signed halves). */
export function pageRequestFieldsOf(f: Readonly<IommuFault>, out: PageRequestFields): void {
  const a = BigInt.asIntN(64, f.addr);
  out.rid = f.rid;
  out.pasid = f.pasid;
  out.addrLo = Number(BigInt.asIntN(32, a));
  out.addrHi = Number(a >> 32n);
  out.perm = f.perm;
  out.grpid = f.grpid;
  out.last = f.last;
  out.reason = f.reason;
  out.reasonText = f.reasonText;
  out.stage2 = f.stage2;
}

/** The IommuFault (kind 'page-request') that `f` stands for, a new object. */
export function pageRequestFault(f: Readonly<PageRequestFields>, unit: number): IommuFault {
  return { kind: 'page-request', unit, rid: f.rid, pasid: f.pasid, addr: pageRequestAddress(f), perm: f.perm, grpid: f.grpid, last: f.last, reason: f.reason, reasonText: f.reasonText, stage2: f.stage2 };
}

/**
 * Hardware record formats of a vendor: the encode/decode side of the fault pipeline. The page-request
 * members are optional, all or none (PageRequestCodec): without them the unit has no page request queue,
 * and core answers a page request INVALID as it does for a unit without a codec.
 */
export interface FaultCodec {
  /** Size in bytes of one fault/event record. */
  readonly faultRecordSize: number;
  /** Encodes a failed access as the hardware writes it (fault recording register, event record...). */
  encodeFault(a: FailedAccess): Uint8Array;
  /** Decodes a fault/event record (a stall record included) back to the normalized fault. */
  decodeFault(record: Uint8Array, unit: number): IommuFault;
  /** PageRequestCodec.pageRequestSize, when the hardware has page requests. */
  readonly pageRequestSize?: number;
  /** PageRequestCodec.encodePageRequest, when the hardware has page requests. */
  encodePageRequest?(a: FailedAccess): Uint8Array;
  /** PageRequestCodec.decodePageRequest, when the hardware has page requests. */
  decodePageRequest?(record: Uint8Array, unit: number): IommuFault;
  /** PageRequestCodec.encodePageResponse, when the hardware has page requests. */
  encodePageResponse?(r: PageResponse): Uint8Array;
  /** PageRequestCodec.decodePageResponse, when the hardware has page requests. */
  decodePageResponse?(bytes: Uint8Array): PageResponse;
  /** PageRequestInPlace.pageResponseSize, when the codec has the in-place page-request members. */
  readonly pageResponseSize?: number;
  /** PageRequestInPlace.encodePageRequestInto, when the codec has the in-place page-request members. */
  encodePageRequestInto?(a: FailedAccess, out: Uint8Array): void;
  /** PageRequestInPlace.encodePageResponseInto, when the codec has the in-place page-request members. */
  encodePageResponseInto?(r: PageResponse, out: Uint8Array): void;
  /** PageRequestInPlace.decodePageResponseInto, when the codec has the in-place page-request members. */
  decodePageResponseInto?(bytes: Uint8Array, out: PageResponse): void;
  /** PageRequestFieldsCodec.encodePageRequestFields, when the codec has the page-request members in numbers. */
  encodePageRequestFields?(f: Readonly<PageRequestFields>, out: Uint8Array): void;
  /** PageRequestFieldsCodec.decodePageRequestFields, when the codec has the page-request members in numbers. */
  decodePageRequestFields?(record: Uint8Array, out: PageRequestFields): void;
  /**
   * The driver's own check of a page request it decoded, before the request reaches the iopf queue (AMD-Vi
   * ppr.c iommu_call_iopf_notifier refuses a request without a PASID, or with PASID 0 or one past the device's
   * PASIDs). A verdict makes core answer the request at once with `code` (the driver's own page response) and
   * log `lines`; the request never reaches user space. null lets it through. `dev` is the requester, when
   * the host has it.
   */
  screenPageRequest?(f: IommuFault, dev: DeviceInfo | undefined, unitName: string): PageRequestVerdict | null;
  /**
   * Stall model (SMMUv3), all three or none: `encodeStall` writes the record of a stalled transaction
   * into the fault/event queue (`faultRecordSize` bytes; SMMUv3: an event with Stall = 1 and STAG =
   * `a.grpid`), which `decodeFault` must decode with kind 'stall', grpid = the tag and last = true.
   * `encodeResume` / `decodeResume` carry the response back (SMMUv3 CMD_RESUME): SUCCESS retries the
   * transaction, anything else terminates it; `decodeResume` returns SUCCESS only for a retry.
   */
  encodeStall?(a: FailedAccess): Uint8Array;
  /** Encodes the response to a stall (SMMUv3 CMD_RESUME with its STAG); see encodeStall. */
  encodeResume?(r: PageResponse): Uint8Array;
  /** Decodes a stall response back; `code` is PAGE_RESP_SUCCESS only for a retry. */
  decodeResume?(bytes: Uint8Array): PageResponse;
  /** The exact line(s) Linux prints for an unrecoverable fault, with `device` like '0000:00:02.0'. */
  renderLog(f: IommuFault, device: string, unitName: string): string[];
  /**
   * The lines the driver prints when it finds a queue overflowed (its sticky overflow status) and
   * restarts it, once per drain: `'fault'` for the fault/event queue, `'page-request'` for the page
   * request queue. Optional: without it only core's own overflow line is logged.
   */
  renderOverflow?(queue: 'fault' | 'page-request', unitName: string): string[];
    /** vEVENT payload for an unrecoverable fault, with the virtual device id (SMMUv3). */
  encodeVEvent?(
    f: IommuFault,
    virtId: bigint,
  ): {
    /** The IOMMU_VEVENTQ_TYPE_* queue it goes to (e.g. IOMMU_VEVENTQ_TYPE_ARM_SMMUV3). */
    type: number;
    /** The vendor's event struct (e.g. struct iommu_vevent_arm_smmuv3) as little-endian bytes. */
    data: Uint8Array;
  } | null;
}

/** What a driver does with a page request it refuses itself (FaultCodec.screenPageRequest). */
export interface PageRequestVerdict {
  /** The page response the driver sends (PAGE_RESP_*). */
  readonly code: number;
  /** What the driver prints for it (none when it only logs at debug level). */
  readonly lines: readonly string[];
}

/** Whether a codec has the page-request half (all of PageRequestCodec's members). */
export function codecPageRequests(codec: FaultCodec | undefined): codec is FaultCodec & PageRequestCodec {
  return (
    codec !== undefined &&
    Number.isInteger(codec.pageRequestSize) &&
    typeof codec.encodePageRequest === 'function' &&
    typeof codec.decodePageRequest === 'function' &&
    typeof codec.encodePageResponse === 'function' &&
    typeof codec.decodePageResponse === 'function'
  );
}

/** Whether a codec has the page-request half and its in-place members (PageRequestInPlace). */
export function codecPageRequestsInPlace(codec: FaultCodec | undefined): codec is FaultCodec & PageRequestCodec & PageRequestInPlace {
  return (
    codecPageRequests(codec) &&
    Number.isInteger(codec.pageResponseSize) &&
    typeof codec.encodePageRequestInto === 'function' &&
    typeof codec.encodePageResponseInto === 'function' &&
    typeof codec.decodePageResponseInto === 'function'
  );
}

/** Whether a codec has the in-place page-request half and its members in numbers (PageRequestFieldsCodec). */
export function codecPageRequestFields(codec: FaultCodec | undefined): codec is FaultCodec & PageRequestCodec & PageRequestInPlace & PageRequestFieldsCodec {
  return codecPageRequestsInPlace(codec) && typeof codec.encodePageRequestFields === 'function' && typeof codec.decodePageRequestFields === 'function';
}

/** Whether a codec implements the stall model (all of encodeStall, encodeResume, decodeResume). */
export function codecStalls(codec: FaultCodec | undefined): boolean {
  return codec !== undefined && typeof codec.encodeStall === 'function' && typeof codec.encodeResume === 'function' && typeof codec.decodeResume === 'function';
}

/** A vendor-level error that the uAPI reports as `code`. */
export interface VendorError {
  /** The errno the command fails with, e.g. 'EOPNOTSUPP'. */
  errno: ErrnoCode;
  /** Why, in words; it becomes the IommufdError's detail. */
  reason: string;
}

