/**
 * The in-memory logs and the command buffer of an AMD IOMMU, as 128-bit records:
 *
 * - Event log entries (16 bytes, EVTLOG_ENTRY_SIZE): DeviceID 15:0, PASID[19:16] or event-specific
 *   bits 31:16, DomainID / PASID[15:0] 47:32, Flags 59:48, EventCode 63:60, Address 127:64.
 * - PPR log entries (16 bytes, PPRLOG_ENTRY_SIZE): DeviceID, PASID, Tag, Flags, request type, address.
 * - Commands (16 bytes): opcode in bits 63:60 (data[1] 31:28, CMD_SET_TYPE) and the operands Linux's
 *   build_* helpers put in data[0..3] (iommu.c).
 *
 * Every decoder takes untrusted bytes and returns a Result; every encoder checks its operands.
 */
import { err, ok, type Result } from '@ioasid/core/driver';
import { readLe32, readLe64, writeLe32, writeLe64 } from './bits.js';

export const EVTLOG_ENTRY_SIZE = 16;
export const PPRLOG_ENTRY_SIZE = 16;
export const CMD_ENTRY_SIZE = 16;
/** Default log sizes: 8 KiB = 512 entries (EVTLOG_LEN_MASK_DEF / MMIO_CMD_SIZE_512 = 0x9 << 56). */
export const EVT_LOG_ENTRIES = 512;
export const PPR_LOG_ENTRIES = 512;
export const CMD_BUFFER_ENTRIES = 512;

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

// ---------------------------------------------------------------------------------------------
// Command buffer
// ---------------------------------------------------------------------------------------------

export const AMD_CMD = {
  COMPLETION_WAIT: 0x01,
  INVALIDATE_DEVTAB_ENTRY: 0x02,
  INVALIDATE_IOMMU_PAGES: 0x03,
  INVALIDATE_IOTLB_PAGES: 0x04,
  INVALIDATE_INTERRUPT_TABLE: 0x05,
  PREFETCH_IOMMU_PAGES: 0x06,
  COMPLETE_PPR_REQUEST: 0x07,
  INVALIDATE_IOMMU_ALL: 0x08,
  INSERT_GUEST_EVENT: 0x09,
  RESET_VMMIO: 0x0a,
} as const;

export type AmdCommandName = keyof typeof AMD_CMD;
const CMD_NAMES: Record<number, AmdCommandName> = Object.fromEntries(Object.entries(AMD_CMD).map(([k, v]) => [v, k as AmdCommandName]));

export function amdCommandName(op: number): AmdCommandName | null {
  return CMD_NAMES[op] ?? null;
}

/** CMD_INV_IOMMU_ALL_PAGES_ADDRESS with S=1: the whole address space (newest Linux). */
export const CMD_INV_IOMMU_ALL_PAGES_ADDRESS = 0x7ffffffffffff000n;

/** The commands, decoded. Addresses are byte addresses; `size` is the S bit. */
export type AmdCommand =
  | { readonly op: 'COMPLETION_WAIT'; readonly store: boolean; readonly interrupt: boolean; readonly flush: boolean; readonly storeAddress: bigint; readonly storeData: bigint }
  | { readonly op: 'INVALIDATE_DEVTAB_ENTRY'; readonly devid: number }
  | { readonly op: 'INVALIDATE_IOMMU_PAGES'; readonly domainId: number; readonly pasid: number; readonly gn: boolean; readonly pde: boolean; readonly size: boolean; readonly address: bigint }
  | { readonly op: 'INVALIDATE_IOTLB_PAGES'; readonly devid: number; readonly maxPending: number; readonly queueId: number; readonly pasid: number; readonly gn: boolean; readonly size: boolean; readonly address: bigint }
  | { readonly op: 'INVALIDATE_INTERRUPT_TABLE'; readonly devid: number }
  | { readonly op: 'PREFETCH_IOMMU_PAGES'; readonly devid: number; readonly pasid: number; readonly gn: boolean; readonly address: bigint }
  | { readonly op: 'COMPLETE_PPR_REQUEST'; readonly devid: number; readonly pasid: number; readonly gn: boolean; readonly tag: number; readonly status: number }
  | { readonly op: 'INVALIDATE_IOMMU_ALL' }
  | { readonly op: 'INSERT_GUEST_EVENT' | 'RESET_VMMIO'; readonly words: readonly [number, number, number, number] };

function cmdWords(op: number, d0: number, d1: number, d2: number, d3: number): Uint8Array {
  const b = new Uint8Array(CMD_ENTRY_SIZE);
  writeLe32(b, 0, d0);
  writeLe32(b, 4, ((d1 & 0x0fffffff) | ((op & 0xf) << 28)) >>> 0);
  writeLe32(b, 8, d2);
  writeLe32(b, 12, d3);
  return b;
}

const lo32 = (v: bigint): number => Number(v & 0xffffffffn);
const hi32 = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);

/**
 * build_inv_address(): a naturally aligned power-of-two range as one address with S set (the bits
 * below the range's highest differing bit are 1), or a single page without S.
 */
export function invAddress(address: bigint, size: bigint): { address: bigint; size: boolean } {
  const end = address + size - 1n;
  let msb = 63;
  while (msb > 0 && (((address ^ end) >> BigInt(msb)) & 1n) === 0n) msb--;
  if (address >> 12n === end >> 12n) return { address: address & ~0xfffn, size: false };
  if (msb >= 51) return { address: CMD_INV_IOMMU_ALL_PAGES_ADDRESS, size: true };
  // The address with every bit below msb set (bits 11:0 are dropped).
  const mask = (1n << BigInt(msb)) - 1n;
  return { address: ((address & ~((1n << BigInt(msb + 1)) - 1n)) | mask) & ~0xfffn, size: true };
}

/** The byte range an INVALIDATE_*_PAGES address/S pair covers: [first, last]. */
export function invRange(address: bigint, size: boolean): { first: bigint; last: bigint } {
  const page = address & ~0xfffn;
  if (!size) return { first: page, last: page + 0xfffn };
  // The size is 2^(n+1) pages where n is the number of trailing ones from bit 12.
  let n = 12;
  while (n < 64 && ((address >> BigInt(n)) & 1n) === 1n) n++;
  const bytes = 1n << BigInt(n + 1);
  if (n >= 63) return { first: 0n, last: (1n << 64n) - 1n };
  const first = address & ~(bytes - 1n);
  return { first, last: first + bytes - 1n };
}

export function encodeCommand(c: AmdCommand): Uint8Array {
  switch (c.op) {
    case 'COMPLETION_WAIT': {
      // data[0] = store address 31:3 | S (bit 0) | I (bit 1) | F (bit 2); data[1] = address 51:32.
      const a = c.storeAddress & ~7n;
      return cmdWords(AMD_CMD.COMPLETION_WAIT, (lo32(a) | (c.store ? 1 : 0) | (c.interrupt ? 2 : 0) | (c.flush ? 4 : 0)) >>> 0, hi32(a) & 0xfffff, lo32(c.storeData), hi32(c.storeData));
    }
    case 'INVALIDATE_DEVTAB_ENTRY':
      return cmdWords(AMD_CMD.INVALIDATE_DEVTAB_ENTRY, c.devid & 0xffff, 0, 0, 0);
    case 'INVALIDATE_IOMMU_PAGES': {
      const a = c.address & ~0xfffn;
      const d2 = lo32(a) | (c.size ? 1 : 0) | (c.pde ? 2 : 0) | (c.gn ? 4 : 0);
      return cmdWords(AMD_CMD.INVALIDATE_IOMMU_PAGES, c.pasid & 0xfffff, c.domainId & 0xffff, d2 >>> 0, hi32(a));
    }
    case 'INVALIDATE_IOTLB_PAGES': {
      const a = c.address & ~0xfffn;
      const d0 = (c.devid & 0xffff) | (((c.pasid >> 8) & 0xff) << 16) | ((c.maxPending & 0xff) << 24);
      const d1 = (c.queueId & 0xffff) | ((c.pasid & 0xff) << 16);
      const d2 = lo32(a) | (c.size ? 1 : 0) | (c.gn ? 4 : 0);
      return cmdWords(AMD_CMD.INVALIDATE_IOTLB_PAGES, d0 >>> 0, d1, d2 >>> 0, hi32(a));
    }
    case 'INVALIDATE_INTERRUPT_TABLE':
      return cmdWords(AMD_CMD.INVALIDATE_INTERRUPT_TABLE, c.devid & 0xffff, 0, 0, 0);
    case 'PREFETCH_IOMMU_PAGES': {
      const a = c.address & ~0xfffn;
      return cmdWords(AMD_CMD.PREFETCH_IOMMU_PAGES, c.devid & 0xffff, c.pasid & 0xfffff, (lo32(a) | (c.gn ? 4 : 0)) >>> 0, hi32(a));
    }
    case 'COMPLETE_PPR_REQUEST': {
      // build_complete_ppr(): data[1] = PASID only with GN (c94252cd5bbc), data[2] bit 2 = GN,
      // data[3] = tag 8:0 | status 15:12.
      const d1 = c.gn ? c.pasid & 0xfffff : 0;
      return cmdWords(AMD_CMD.COMPLETE_PPR_REQUEST, c.devid & 0xffff, d1, c.gn ? 4 : 0, (c.tag & 0x1ff) | ((c.status & 0xf) << 12));
    }
    case 'INVALIDATE_IOMMU_ALL':
      return cmdWords(AMD_CMD.INVALIDATE_IOMMU_ALL, 0, 0, 0, 0);
    case 'INSERT_GUEST_EVENT':
      return cmdWords(AMD_CMD.INSERT_GUEST_EVENT, c.words[0], c.words[1], c.words[2], c.words[3]);
    case 'RESET_VMMIO':
      return cmdWords(AMD_CMD.RESET_VMMIO, c.words[0], c.words[1], c.words[2], c.words[3]);
  }
}

export function decodeCommand(bytes: Uint8Array): Result<AmdCommand> {
  if (bytes.byteLength !== CMD_ENTRY_SIZE) return err(`a command is ${CMD_ENTRY_SIZE} bytes, got ${bytes.byteLength}`);
  const d0 = readLe32(bytes, 0);
  const d1 = readLe32(bytes, 4);
  const d2 = readLe32(bytes, 8);
  const d3 = readLe32(bytes, 12);
  const op = (d1 >>> 28) & 0xf;
  const addr = (BigInt(d3) << 32n) | BigInt((d2 & ~0xfff) >>> 0);
  switch (op) {
    case AMD_CMD.COMPLETION_WAIT:
      return ok({
        op: 'COMPLETION_WAIT',
        store: (d0 & 1) === 1,
        interrupt: (d0 & 2) === 2,
        flush: (d0 & 4) === 4,
        storeAddress: (BigInt(d1 & 0xfffff) << 32n) | BigInt((d0 & ~7) >>> 0),
        storeData: (BigInt(d3) << 32n) | BigInt(d2),
      });
    case AMD_CMD.INVALIDATE_DEVTAB_ENTRY:
      return ok({ op: 'INVALIDATE_DEVTAB_ENTRY', devid: d0 & 0xffff });
    case AMD_CMD.INVALIDATE_IOMMU_PAGES:
      return ok({ op: 'INVALIDATE_IOMMU_PAGES', pasid: d0 & 0xfffff, domainId: d1 & 0xffff, size: (d2 & 1) === 1, pde: (d2 & 2) === 2, gn: (d2 & 4) === 4, address: addr });
    case AMD_CMD.INVALIDATE_IOTLB_PAGES:
      return ok({
        op: 'INVALIDATE_IOTLB_PAGES',
        devid: d0 & 0xffff,
        maxPending: (d0 >>> 24) & 0xff,
        queueId: d1 & 0xffff,
        pasid: (((d0 >>> 16) & 0xff) << 8) | ((d1 >>> 16) & 0xff),
        size: (d2 & 1) === 1,
        gn: (d2 & 4) === 4,
        address: addr,
      });
    case AMD_CMD.INVALIDATE_INTERRUPT_TABLE:
      return ok({ op: 'INVALIDATE_INTERRUPT_TABLE', devid: d0 & 0xffff });
    case AMD_CMD.PREFETCH_IOMMU_PAGES:
      return ok({ op: 'PREFETCH_IOMMU_PAGES', devid: d0 & 0xffff, pasid: d1 & 0xfffff, gn: (d2 & 4) === 4, address: addr });
    case AMD_CMD.COMPLETE_PPR_REQUEST:
      return ok({ op: 'COMPLETE_PPR_REQUEST', devid: d0 & 0xffff, pasid: d1 & 0xfffff, gn: (d2 & 4) === 4, tag: d3 & 0x1ff, status: (d3 >>> 12) & 0xf });
    case AMD_CMD.INVALIDATE_IOMMU_ALL:
      return ok({ op: 'INVALIDATE_IOMMU_ALL' });
    case AMD_CMD.INSERT_GUEST_EVENT:
      return ok({ op: 'INSERT_GUEST_EVENT', words: [d0, d1, d2, d3] });
    case AMD_CMD.RESET_VMMIO:
      return ok({ op: 'RESET_VMMIO', words: [d0, d1, d2, d3] });
    default:
      // The IOMMU reports ILLEGAL_COMMAND_ERROR for an opcode it does not know.
      return err(`opcode 0x${op.toString(16)} is not an AMD-Vi command (the IOMMU logs ILLEGAL_COMMAND_ERROR)`);
  }
}

/** PPR response status codes Linux passes (enum iommu_page_response_code): SUCCESS 0, INVALID 1, FAILURE 2. */
export const PPR_STATUS = { SUCCESS: 0, INVALID: 1, FAILURE: 2 } as const;
