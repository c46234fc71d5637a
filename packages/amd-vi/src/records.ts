/**
 * The in-memory logs of an AMD IOMMU, as 128-bit records (the command buffer is commands.ts):
 *
 * - Event log entries (16 bytes, EVTLOG_ENTRY_SIZE): DeviceID 15:0, PASID[19:16] or event-specific
 *   bits 31:16, DomainID / PASID[15:0] 47:32, Flags 59:48, EventCode 63:60, Address 127:64.
 * - PPR log entries (16 bytes, PPRLOG_ENTRY_SIZE): DeviceID, PASID, Tag, Flags, request type, address.
 *
 * Every decoder takes untrusted bytes and returns a Result; every encoder checks its operands.
 */
import { readLe32, readLe64, writeLe32, writeLe64, err, ok, type Result } from '@ioasid/core/driver';

/** Bytes of one event log entry (128 bits). */
export const EVTLOG_ENTRY_SIZE = 16;
/** Bytes of one PPR (peripheral page request) log entry (128 bits). */
export const PPRLOG_ENTRY_SIZE = 16;
/** Default log sizes: 8 KiB = 512 entries (EVTLOG_LEN_MASK_DEF). */
export const EVT_LOG_ENTRIES = 512;
/** Entries of the PPR log Linux allocates: 8 KiB = 512. */
export const PPR_LOG_ENTRIES = 512;

// ---------------------------------------------------------------------------------------------
// Event log
// ---------------------------------------------------------------------------------------------

/** Event codes (EVENT_TYPE_*), with the names Linux prints. */
export const AMD_EVENT = {
  /** EVENT_TYPE_ILL_DEV: the DTE the request used is invalid (reserved bits, bad mode); Linux also dumps the DTE. */
  ILLEGAL_DEV_TABLE_ENTRY: 0x1,
  /** EVENT_TYPE_IO_FAULT: a DMA or interrupt request was refused by translation (not present, permission, reserved bits); see {@link EVENT_FLAG}. */
  IO_PAGE_FAULT: 0x2,
  /** EVENT_TYPE_DEV_TAB_ERR: reading the device table failed (a hardware or memory error). */
  DEV_TAB_HARDWARE_ERROR: 0x3,
  /** EVENT_TYPE_PAGE_TAB_ERR: reading a page table failed (a hardware or memory error). */
  PAGE_TAB_HARDWARE_ERROR: 0x4,
  /** EVENT_TYPE_ILL_CMD: the command buffer holds an unknown or malformed command; processing stops there. */
  ILLEGAL_COMMAND_ERROR: 0x5,
  /** EVENT_TYPE_CMD_HARD_ERR: reading the command buffer failed. */
  COMMAND_HARDWARE_ERROR: 0x6,
  /** EVENT_TYPE_IOTLB_INV_TO: a device did not complete an INVALIDATE_IOTLB_PAGES (ATS invalidation) in time. */
  IOTLB_INV_TIMEOUT: 0x7,
  /** EVENT_TYPE_INV_DEV_REQ: a request the DTE does not allow (e.g. an ATS translation request with ATS off, a PASID where none is enabled); Type in flags 11:9. */
  INVALID_DEVICE_REQUEST: 0x8,
  /** EVENT_TYPE_INV_PPR_REQ: a page request the IOMMU refused; newer Linux answers it with COMPLETE_PPR_REQUEST FAILURE. */
  INVALID_PPR_REQUEST: 0x9,
  /** Event counter zero (spec); Linux has no handler and prints UNKNOWN. */
  EVENT_COUNTER_ZERO: 0xa,
  /** Guest event / vIOMMU codes 0xB-0xC: no Linux handler (UNKNOWN). */
  RESERVED_B: 0xb,
  /** Guest event / vIOMMU code 0xC: no Linux handler (UNKNOWN). */
  RESERVED_C: 0xc,
  /** EVENT_TYPE_RMP_FAULT (SEV-SNP): the reverse map table refused the access; Linux prints vmg_tag, gpa, flags_rmp. */
  RMP_PAGE_FAULT: 0xd,
  /** EVENT_TYPE_RMP_HW_ERR (SEV-SNP): reading the reverse map table failed; Linux prints vmg_tag and spa. */
  RMP_HW_ERROR: 0xe,
} as const;

/** The name of an event code (`'IO_PAGE_FAULT'`, ...). */
export type AmdEventName = keyof typeof AMD_EVENT;

const EVENT_NAMES: Record<number, AmdEventName> = Object.fromEntries(Object.entries(AMD_EVENT).map(([k, v]) => [v, k as AmdEventName]));

/** The name of a 4-bit EventCode, or null for codes 0x0 and 0xF, which have none. */
export function amdEventName(code: number): AmdEventName | null {
  return EVENT_NAMES[code] ?? null;
}

/** Codes iommu_print_event() decodes; the others print "Event logged [UNKNOWN ...". */
export function linuxDecodesEvent(code: number): boolean {
  return (code >= 0x1 && code <= 0x9) || code === 0xd || code === 0xe;
}

/** IO_PAGE_FAULT flag bits (event bits 59:48), named as in the specification. */
export const EVENT_FLAG = {
  /** Guest: the request carried a PASID and the address is a guest virtual address. */
  GN: 1 << 0,
  /** No-execute: the request was an instruction fetch (execute). */
  NX: 1 << 1,
  /** User/supervisor: 1 for a user-mode request. */
  US: 1 << 2,
  /** EVENT_FLAG_I: an interrupt request, not a memory transaction. */
  I: 1 << 3,
  /** Present: the translation was present, so the fault is a permission or reserved-bit one; 0 for a not-present fault. */
  PR: 1 << 4,
  /** EVENT_FLAG_RW: a write. */
  RW: 1 << 5,
  /** Permission error: the page table denies the access (IR/IW or execute). */
  PE: 1 << 6,
  /** Reserved bit non-zero or an illegal level encoding in a table entry. */
  RZ: 1 << 7,
  /** Translation request: the fault came from an ATS translation request, not a DMA. */
  TR: 1 << 8,
} as const;

/** The name of an IO_PAGE_FAULT flag bit. */
export type AmdEventFlagName = keyof typeof EVENT_FLAG;

/** The flag bits split by name, with the event-specific Type field (11:9). */
export function splitEventFlags(flags: number): Record<AmdEventFlagName | 'Type', number> {
  const out = {} as Record<AmdEventFlagName | 'Type', number>;
  for (const [k, v] of Object.entries(EVENT_FLAG)) out[k as AmdEventFlagName] = flags & v ? 1 : 0;
  out.Type = (flags >> 9) & 7;
  return out;
}

/** One event log entry, every field raw. */
export interface AmdEvent {
  /** EventCode (63:60). */
  readonly code: number;
  /** DeviceID (15:0): the requester id. */
  readonly devid: number;
  /**
   * Bits 47:32 with 19:16 as the high nibble, what Linux calls `pasid` ((event[0] & 0xf0000) |
   * (event[1] & 0xffff)): the DomainID of an IO_PAGE_FAULT without GN, the PASID with GN.
   */
  readonly pasidOrDomain: number;
  /** Flags (59:48). */
  readonly flags: number;
  /** Address (127:64): the faulting IOVA or GVA of IO_PAGE_FAULT, the command's address of ILLEGAL_COMMAND_ERROR, the GPA of RMP_PAGE_FAULT. */
  readonly address: bigint;
  /** The four raw 32-bit words, for UNKNOWN events and event-specific fields. */
  readonly words: readonly [number, number, number, number];
}

/** The fields {@link encodeEvent} writes into an event log entry; absent ones are 0. */
export interface AmdEventFields {
  /** EventCode (63:60), an {@link AMD_EVENT} value. */
  code: number;
  /** DeviceID (15:0) of the requester. */
  devid: number;
  /** DomainID or PASID: bits 15:0 go to 47:32, bits 19:16 to 19:16. */
  pasidOrDomain?: number;
  /** Flags (59:48), e.g. {@link EVENT_FLAG} bits for IO_PAGE_FAULT. */
  flags?: number;
  /** Address (127:64). */
  address?: bigint;
  /** Event-specific bits 31:20 of word 0 (RMP_PAGE_FAULT flags_rmp live in 23:16). */
  word0High?: number;
}

/** Writes one event log entry. */
export function encodeEvent(e: AmdEventFields): Uint8Array {
  const b = new Uint8Array(EVTLOG_ENTRY_SIZE);
  const pd = e.pasidOrDomain ?? 0;
  const w0 = (e.devid & 0xffff) | (pd & 0xf0000) | (((e.word0High ?? 0) & 0xfff) << 20);
  const w1 = (pd & 0xffff) | (((e.flags ?? 0) & 0xfff) << 16) | ((e.code & 0xf) << 28);
  writeLe32(b, 0, w0);
  writeLe32(b, 4, w1);
  writeLe64(b, 8, e.address ?? 0n);
  return b;
}

/** Splits a 16-byte event log entry into its fields (iommu.c iommu_print_event reads the same bits). */
export function decodeEvent(bytes: Uint8Array): Result<AmdEvent> {
  if (bytes.byteLength !== EVTLOG_ENTRY_SIZE) return err(`an event log entry is ${EVTLOG_ENTRY_SIZE} bytes, got ${bytes.byteLength}`);
  const words = [readLe32(bytes, 0), readLe32(bytes, 4), readLe32(bytes, 8), readLe32(bytes, 12)] as const;
  return ok({
    code: (words[1] >>> 28) & 0xf,
    devid: words[0] & 0xffff,
    pasidOrDomain: (words[0] & 0xf0000) | (words[1] & 0xffff),
    flags: (words[1] >>> 16) & 0xfff,
    address: readLe64(bytes, 8),
    words,
  });
}

/** RMP_PAGE_FAULT: flags_rmp = (event[0] >> 16) & 0xff, vmg_tag = event[1] & 0xffff. */
export function rmpFields(e: AmdEvent): {
  /** Event bits 23:16: the RMP fault flags Linux prints as `flags_rmp`. */
  flagsRmp: number;
  /** Event bits 47:32: the guest's VM tag Linux prints as `vmg_tag`. */
  vmgTag: number;
} {
  return { flagsRmp: (e.words[0] >>> 16) & 0xff, vmgTag: e.words[1] & 0xffff };
}

/** INVALID_PPR_REQUEST: the tag is event[1] & 0x3ff and the PASID is read the PPR way (PPR_PASID of qword 0). */
export function invalidPprFields(e: AmdEvent): {
  /** The page request's tag (event[1] 9:0). */
  tag: number;
  /** The page request's 20-bit PASID. */
  pasid: number;
} {
  const q0 = (BigInt(e.words[1]) << 32n) | BigInt(e.words[0]);
  return { tag: e.words[1] & 0x3ff, pasid: pprPasid(q0) };
}

// ---------------------------------------------------------------------------------------------
// PPR log
// ---------------------------------------------------------------------------------------------

/** PPR_FLAG_*: flags are qword-0 bits 59:48. */
export const PPR_FLAG = {
  /** The device asks for execute permission. */
  EXEC: 0x002,
  /** The device asks for read permission. */
  READ: 0x004,
  /** The device asks for write permission. */
  WRITE: 0x020,
  /** 1 = user request; Linux adds IOMMU_FAULT_PERM_PRIV when clear. */
  US: 0x040,
  /** Reserved-bit error in the request. */
  RVSD: 0x080,
  /** PASID (and GVA) valid. */
  GN: 0x100,
} as const;

/** PPR_REQ_FAULT: a page service request. */
export const PPR_REQ_FAULT = 0x1;

/** One PPR log entry: a PCIe page request the device sent through PRI. */
export interface AmdPprEntry {
  /** DeviceID (15:0) of the requester. */
  readonly devid: number;
  /** The 20-bit PASID: PASID[15:0] from bits 31:16, PASID[19:16] from 45:42. */
  readonly pasid: number;
  /** The PRG index (9 bits). */
  readonly tag: number;
  /** Last page in group (tag bit 9, qword-0 bit 41). */
  readonly last: boolean;
  /** Flags (59:48): {@link PPR_FLAG} bits. */
  readonly flags: number;
  /** Request type (63:60): 1 (`PPR_REQ_FAULT`) for a page request; Linux logs others as unknown. */
  readonly type: number;
  /** The page address asked for (qword 1), a GVA with GN. */
  readonly address: bigint;
}

function pprPasid(q0: bigint): number {
  // PPR_PASID1 (31:16) | PPR_PASID2 (45:42) << 16.
  return Number((q0 >> 16n) & 0xffffn) | (Number((q0 >> 42n) & 0xfn) << 16);
}

/** Writes one PPR log entry, as the IOMMU logs a page request (`type` defaults to PPR_REQ_FAULT). */
export function encodePprEntry(p: { devid: number; pasid: number; tag: number; last: boolean; flags: number; type?: number; address: bigint }): Uint8Array {
  const b = new Uint8Array(PPRLOG_ENTRY_SIZE);
  let q0 = BigInt(p.devid & 0xffff);
  q0 |= BigInt(p.pasid & 0xffff) << 16n;
  q0 |= BigInt(p.tag & 0x1ff) << 32n;
  if (p.last) q0 |= 1n << 41n;
  q0 |= BigInt((p.pasid >>> 16) & 0xf) << 42n;
  q0 |= BigInt(p.flags & 0xfff) << 48n;
  q0 |= BigInt((p.type ?? PPR_REQ_FAULT) & 0xf) << 60n;
  writeLe64(b, 0, q0);
  writeLe64(b, 8, p.address);
  return b;
}

/** Splits a 16-byte PPR log entry into its fields (the PPR_* macros of amd_iommu_types.h). */
export function decodePprEntry(bytes: Uint8Array): Result<AmdPprEntry> {
  if (bytes.byteLength !== PPRLOG_ENTRY_SIZE) return err(`a PPR log entry is ${PPRLOG_ENTRY_SIZE} bytes, got ${bytes.byteLength}`);
  const q0 = readLe64(bytes, 0);
  return ok({
    devid: Number(q0 & 0xffffn),
    pasid: pprPasid(q0),
    tag: Number((q0 >> 32n) & 0x1ffn),
    last: ((q0 >> 41n) & 1n) === 1n,
    flags: Number((q0 >> 48n) & 0xfffn),
    type: Number((q0 >> 60n) & 0xfn),
    address: readLe64(bytes, 8),
  });
}
