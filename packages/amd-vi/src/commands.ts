/**
 * The command buffer of an AMD IOMMU: 128-bit commands with the opcode in bits 63:60 (data[1] 31:28,
 * CMD_SET_TYPE) and the operands Linux's build_* helpers put in data[0..3] (iommu.c), among them
 * COMPLETE_PPR_REQUEST, the page response. Every decoder takes untrusted bytes and returns a Result;
 * every encoder checks its operands.
 */
import { readLe32, writeLe32, err, ok, type Result } from '@ioasid/core/driver';

/** Bytes of one command-buffer entry (128 bits, data[0..3]). */
export const CMD_ENTRY_SIZE = 16;
/** Default command buffer size: 8 KiB = 512 entries (MMIO_CMD_SIZE_512 = 0x9 << 56). */
export const CMD_BUFFER_ENTRIES = 512;

/** Command opcodes (data[1] bits 31:28), under the names of AMD IOMMU spec 48882. */
export const AMD_CMD = {
  /** Linux CMD_COMPL_WAIT: completes once every earlier command has; may store a value and/or raise an interrupt. */
  COMPLETION_WAIT: 0x01,
  /** Linux CMD_INV_DEV_ENTRY: drop the cached DTE of one DeviceID. */
  INVALIDATE_DEVTAB_ENTRY: 0x02,
  /** Linux CMD_INV_IOMMU_PAGES: drop IOTLB entries of a DomainID (and PASID with GN) for an address range. */
  INVALIDATE_IOMMU_PAGES: 0x03,
  /** Linux CMD_INV_IOTLB_PAGES: send an ATS invalidation to the device's own IOTLB. */
  INVALIDATE_IOTLB_PAGES: 0x04,
  /** Linux CMD_INV_IRT: drop the cached interrupt remapping table of one DeviceID. */
  INVALIDATE_INTERRUPT_TABLE: 0x05,
  /** Load translations into the IOTLB ahead of use (EFR `PreFSup`); Linux does not send it. */
  PREFETCH_IOMMU_PAGES: 0x06,
  /** Linux CMD_COMPLETE_PPR: the response to a peripheral page request (PRI PRG response). */
  COMPLETE_PPR_REQUEST: 0x07,
  /** Linux CMD_INV_ALL: drop every cached DTE, IRT and translation (EFR `IASup`). */
  INVALIDATE_IOMMU_ALL: 0x08,
  /** vIOMMU: put an event into a guest's event log; Linux does not send it. */
  INSERT_GUEST_EVENT: 0x09,
  /** vIOMMU: reset a guest's virtualized MMIO state; Linux does not send it. */
  RESET_VMMIO: 0x0a,
} as const;

/** The name of a command opcode (`'COMPLETION_WAIT'`, ...). */
export type AmdCommandName = keyof typeof AMD_CMD;
const CMD_NAMES: Record<number, AmdCommandName> = Object.fromEntries(Object.entries(AMD_CMD).map(([k, v]) => [v, k as AmdCommandName]));

/** The name of a 4-bit opcode, or null for one the IOMMU does not define (it would log ILLEGAL_COMMAND_ERROR). */
export function amdCommandName(op: number): AmdCommandName | null {
  return CMD_NAMES[op] ?? null;
}

/** CMD_INV_IOMMU_ALL_PAGES_ADDRESS with S=1: the whole address space (newest Linux). */
export const CMD_INV_IOMMU_ALL_PAGES_ADDRESS = 0x7ffffffffffff000n;

/** The commands, decoded. Addresses are byte addresses; `size` is the S bit. */
export type AmdCommand =
  | {
      /** Opcode 0x01. */
      readonly op: 'COMPLETION_WAIT';
      /** data[0] bit 0 (S): store `storeData` at `storeAddress` on completion. */
      readonly store: boolean;
      /** data[0] bit 1 (I): raise the completion-wait interrupt (MMIO status ComWaitInt) on completion. */
      readonly interrupt: boolean;
      /** data[0] bit 2 (F): flush queue. */
      readonly flush: boolean;
      /** 8-byte aligned system physical address of the store (data[0] 31:3, data[1] 51:32). */
      readonly storeAddress: bigint;
      /** The 64-bit value stored (data[2..3]); Linux writes an increasing sequence number, `cmd_sem_val`. */
      readonly storeData: bigint;
    }
  | {
      /** Opcode 0x02. */
      readonly op: 'INVALIDATE_DEVTAB_ENTRY';
      /** data[0] 15:0: the DeviceID (bus:dev.fn) whose DTE is dropped. */
      readonly devid: number;
    }
  | {
      /** Opcode 0x03. */
      readonly op: 'INVALIDATE_IOMMU_PAGES';
      /** data[1] 15:0: the DomainID (DTE `DomainID`) whose entries are dropped. */
      readonly domainId: number;
      /** data[0] 19:0: the PASID, meaningful with `gn`. */
      readonly pasid: number;
      /** data[2] bit 2 (GN): guest (PASID-tagged, GCR3) translations rather than host ones. */
      readonly gn: boolean;
      /** data[2] bit 1 (PDE): also drop cached page directory entries. */
      readonly pde: boolean;
      /** data[2] bit 0 (S): `address` encodes a power-of-two range (see {@link invRange}), not one page. */
      readonly size: boolean;
      /** The IOVA, 4 KiB aligned (data[2] 31:12, data[3]). */
      readonly address: bigint;
    }
  | {
      /** Opcode 0x04. */
      readonly op: 'INVALIDATE_IOTLB_PAGES';
      /** data[0] 15:0: the DeviceID of the ATS device. */
      readonly devid: number;
      /** data[0] 31:24 (Maxpend): invalidations the device may have outstanding; Linux writes its ATS queue depth. */
      readonly maxPending: number;
      /** data[1] 15:0: the QueueID; Linux writes the DeviceID. */
      readonly queueId: number;
      /** The PASID, split over data[0] 23:16 (bits 15:8) and data[1] 23:16 (bits 7:0); meaningful with `gn`. */
      readonly pasid: number;
      /** data[2] bit 2 (GN): invalidate the PASID's translations. */
      readonly gn: boolean;
      /** data[2] bit 0 (S): `address` encodes a power-of-two range. */
      readonly size: boolean;
      /** The address, 4 KiB aligned (data[2] 31:12, data[3]). */
      readonly address: bigint;
    }
  | {
      /** Opcode 0x05. */
      readonly op: 'INVALIDATE_INTERRUPT_TABLE';
      /** data[0] 15:0: the DeviceID whose interrupt remapping table is dropped. */
      readonly devid: number;
    }
  | {
      /** Opcode 0x06. */
      readonly op: 'PREFETCH_IOMMU_PAGES';
      /** data[0] 15:0: the DeviceID whose translation is loaded. */
      readonly devid: number;
      /** data[1] 19:0: the PASID, meaningful with `gn`. */
      readonly pasid: number;
      /** data[2] bit 2 (GN): a guest (PASID) translation. */
      readonly gn: boolean;
      /** The IOVA to prefetch, 4 KiB aligned. */
      readonly address: bigint;
    }
  | {
      /** Opcode 0x07. */
      readonly op: 'COMPLETE_PPR_REQUEST';
      /** data[0] 15:0: the DeviceID that sent the page request. */
      readonly devid: number;
      /** data[1] 19:0: the PASID of the request; Linux writes it only with `gn`. */
      readonly pasid: number;
      /** data[2] bit 2 (GN): the response is for a PASID request. */
      readonly gn: boolean;
      /** data[3] 8:0: the page request group index (the PPR log entry's tag). */
      readonly tag: number;
      /** data[3] 15:12: the response code (see {@link PPR_STATUS}). */
      readonly status: number;
    }
  | {
      /** Opcode 0x08: no operands. */
      readonly op: 'INVALIDATE_IOMMU_ALL';
    }
  | {
      /** Opcode 0x09 or 0x0a, vIOMMU commands kept as raw words. */
      readonly op: 'INSERT_GUEST_EVENT' | 'RESET_VMMIO';
      /** data[0..3] as read, the opcode still in data[1] 31:28. */
      readonly words: readonly [number, number, number, number];
    };

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
export function invAddress(
  address: bigint,
  size: bigint,
): {
  /** The address field to send: the range's base with the low bits set, or the single page. */
  address: bigint;
  /** The S bit. */
  size: boolean;
} {
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
export function invRange(
  address: bigint,
  size: boolean,
): {
  /** First byte the command covers. */
  first: bigint;
  /** Last byte the command covers (inclusive). */
  last: bigint;
} {
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

/** The 16 bytes of a command as Linux's build_* helpers (iommu.c) lay it out, opcode in data[1] 31:28. */
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

/** Decodes 16 command-buffer bytes; an unknown opcode is an error (the IOMMU would log ILLEGAL_COMMAND_ERROR). */
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
export const PPR_STATUS = {
  /** PCIe Success: the pages are mapped; the device may retry its translation request. */
  SUCCESS: 0,
  /** PCIe Invalid Request: the pages will not be made available; the device's access fails. */
  INVALID: 1,
  /** PCIe Response Failure: a catastrophic error; the device stops sending page requests. */
  FAILURE: 2,
} as const;
