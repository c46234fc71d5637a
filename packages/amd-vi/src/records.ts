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

export const EVTLOG_ENTRY_SIZE = 16;
export const PPRLOG_ENTRY_SIZE = 16;
/** Default log sizes: 8 KiB = 512 entries (EVTLOG_LEN_MASK_DEF). */
export const EVT_LOG_ENTRIES = 512;
export const PPR_LOG_ENTRIES = 512;

// ---------------------------------------------------------------------------------------------
// Event log
// ---------------------------------------------------------------------------------------------

/** Event codes (EVENT_TYPE_*), with the names Linux prints. */
export const AMD_EVENT = {
  ILLEGAL_DEV_TABLE_ENTRY: 0x1,
  IO_PAGE_FAULT: 0x2,
  DEV_TAB_HARDWARE_ERROR: 0x3,
  PAGE_TAB_HARDWARE_ERROR: 0x4,
  ILLEGAL_COMMAND_ERROR: 0x5,
  COMMAND_HARDWARE_ERROR: 0x6,
  IOTLB_INV_TIMEOUT: 0x7,
  INVALID_DEVICE_REQUEST: 0x8,
  INVALID_PPR_REQUEST: 0x9,
  /** Event counter zero (spec); Linux has no handler and prints UNKNOWN. */
  EVENT_COUNTER_ZERO: 0xa,
  /** Guest event / vIOMMU codes 0xB-0xC: no Linux handler (UNKNOWN). */
  RESERVED_B: 0xb,
  RESERVED_C: 0xc,
  RMP_PAGE_FAULT: 0xd,
  RMP_HW_ERROR: 0xe,
} as const;

export type AmdEventName = keyof typeof AMD_EVENT;

const EVENT_NAMES: Record<number, AmdEventName> = Object.fromEntries(Object.entries(AMD_EVENT).map(([k, v]) => [v, k as AmdEventName]));

export function amdEventName(code: number): AmdEventName | null {
  return EVENT_NAMES[code] ?? null;
}

/** Codes iommu_print_event() decodes; the others print "Event logged [UNKNOWN ...". */
export function linuxDecodesEvent(code: number): boolean {
  return (code >= 0x1 && code <= 0x9) || code === 0xd || code === 0xe;
}

/** IO_PAGE_FAULT flag bits (event bits 59:48), named as in the specification. */
export const EVENT_FLAG = {
  GN: 1 << 0,
  NX: 1 << 1,
  US: 1 << 2,
  /** EVENT_FLAG_I: an interrupt request, not a memory transaction. */
  I: 1 << 3,
  PR: 1 << 4,
  /** EVENT_FLAG_RW: a write. */
  RW: 1 << 5,
  PE: 1 << 6,
  RZ: 1 << 7,
  TR: 1 << 8,
} as const;

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
  readonly address: bigint;
  /** The four raw 32-bit words, for UNKNOWN events and event-specific fields. */
  readonly words: readonly [number, number, number, number];
}

export interface AmdEventFields {
  code: number;
  devid: number;
  pasidOrDomain?: number;
  flags?: number;
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
export function rmpFields(e: AmdEvent): { flagsRmp: number; vmgTag: number } {
  return { flagsRmp: (e.words[0] >>> 16) & 0xff, vmgTag: e.words[1] & 0xffff };
}

/** INVALID_PPR_REQUEST: the tag is event[1] & 0x3ff and the PASID is read the PPR way (PPR_PASID of qword 0). */
export function invalidPprFields(e: AmdEvent): { tag: number; pasid: number } {
  const q0 = (BigInt(e.words[1]) << 32n) | BigInt(e.words[0]);
  return { tag: e.words[1] & 0x3ff, pasid: pprPasid(q0) };
}

// ---------------------------------------------------------------------------------------------
// PPR log
// ---------------------------------------------------------------------------------------------

/** PPR_FLAG_*: flags are qword-0 bits 59:48. */
export const PPR_FLAG = {
  EXEC: 0x002,
  READ: 0x004,
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

export interface AmdPprEntry {
  readonly devid: number;
  readonly pasid: number;
  /** The PRG index (9 bits). */
  readonly tag: number;
  /** Last page in group (tag bit 9, qword-0 bit 41). */
  readonly last: boolean;
  readonly flags: number;
  readonly type: number;
  readonly address: bigint;
}

function pprPasid(q0: bigint): number {
  // PPR_PASID1 (31:16) | PPR_PASID2 (45:42) << 16.
  return Number((q0 >> 16n) & 0xffffn) | (Number((q0 >> 42n) & 0xfn) << 16);
}

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
