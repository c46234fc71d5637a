/**
 * The command queue's commands (RISC-V IOMMU 1.0, "Command queue"): 16 bytes, two 64-bit doublewords in
 * the queue's byte order (little-endian unless fctl.BE). dw0[6:0] is the opcode, dw0[9:7] the func3:
 *
 * | command | opcode / func3 | dw0 | dw1 |
 * | --- | --- | --- | --- |
 * | IOTINVAL.VMA / .GVMA | 1 / 0, 1 | 10 AV, 31:12 PSCID, 32 PSCV, 33 GV, 34 NL (caps.NL), 59:44 GSCID | 9 S (caps.S), 61:10 ADDR[63:12] |
 * | IOFENCE.C | 2 / 0 | 10 AV, 11 WSI, 12 PR, 13 PW, 63:32 DATA | 61:0 ADDR[63:2] |
 * | IODIR.INVAL_DDT / _PDT | 3 / 0, 1 | 31:12 PID, 33 DV, 63:40 DID | reserved |
 * | ATS.INVAL / .PRGR | 4 / 0, 1 | 31:12 PID, 32 PV, 33 DSV, 55:40 RID, 63:56 DSEG | the PCIe message payload |
 *
 * A reserved encoding or a reserved bit set makes a command illegal (cqcsr.cmd_ill, the queue stops at
 * it); so do IOTINVAL.GVMA with PSCV = 1, IODIR.INVAL_PDT with DV = 0, and IOFENCE.C with WSI = 1 when
 * interrupts are not wired (fctl.WSI = 0). A defined command whose feature `capabilities` lacks (ATS.*
 * without ATS, NL / S without the extension) is unsupported, which stops the queue the same way.
 */
import { decodeBitFields, encodeBitFields, err, genmask, ok, type BitField, type Result } from '@ioasid/core/driver';
import type { CapFields } from './registers.js';

/** Bytes of one command in the command queue. */
export const CMD_SIZE = 16;

/** Opcode of IOTINVAL (IOMMU page-table cache invalidation). */
export const OPCODE_IOTINVAL = 1;
/** Opcode of IOFENCE (command queue fence). */
export const OPCODE_IOFENCE = 2;
/** Opcode of IODIR (directory cache invalidation). */
export const OPCODE_IODIR = 3;
/** Opcode of the ATS commands (PCIe invalidation and page request group responses). */
export const OPCODE_ATS = 4;

/** func3 of IOTINVAL.VMA: first-stage (and VS-stage) entries. */
export const FUNC_IOTINVAL_VMA = 0;
/** func3 of IOTINVAL.GVMA: second-stage entries. */
export const FUNC_IOTINVAL_GVMA = 1;
/** func3 of IOFENCE.C. */
export const FUNC_IOFENCE_C = 0;
/** func3 of IODIR.INVAL_DDT: device directory entries. */
export const FUNC_IODIR_INVAL_DDT = 0;
/** func3 of IODIR.INVAL_PDT: process directory entries of one device. */
export const FUNC_IODIR_INVAL_PDT = 1;
/** func3 of ATS.INVAL: a PCIe Invalidation Request. */
export const FUNC_ATS_INVAL = 0;
/** func3 of ATS.PRGR: a PCIe Page Request Group Response. */
export const FUNC_ATS_PRGR = 1;

const HEAD = [
  { name: 'opcode', hi: 6, lo: 0 },
  { name: 'func3', hi: 9, lo: 7 },
] as const;

/** IOTINVAL dword 0. */
export const IOTINVAL_DW0: readonly BitField<'opcode' | 'func3' | 'AV' | 'PSCID' | 'PSCV' | 'GV' | 'NL' | 'GSCID'>[] = [...HEAD, { name: 'AV', hi: 10, lo: 10 }, { name: 'PSCID', hi: 31, lo: 12 }, { name: 'PSCV', hi: 32, lo: 32 }, { name: 'GV', hi: 33, lo: 33 }, { name: 'NL', hi: 34, lo: 34 }, { name: 'GSCID', hi: 59, lo: 44 }];
/** IOTINVAL dword 1: ADDR[63:12] (and S with the range extension). */
export const IOTINVAL_DW1: readonly BitField<'S' | 'ADDR'>[] = [{ name: 'S', hi: 9, lo: 9 }, { name: 'ADDR', hi: 61, lo: 10 }];
/** IOFENCE.C dword 0. */
export const IOFENCE_DW0: readonly BitField<'opcode' | 'func3' | 'AV' | 'WSI' | 'PR' | 'PW' | 'DATA'>[] = [...HEAD, { name: 'AV', hi: 10, lo: 10 }, { name: 'WSI', hi: 11, lo: 11 }, { name: 'PR', hi: 12, lo: 12 }, { name: 'PW', hi: 13, lo: 13 }, { name: 'DATA', hi: 63, lo: 32 }];
/** IOFENCE.C dword 1: ADDR[63:2] of the optional 4-byte write. */
export const IOFENCE_DW1: readonly BitField<'ADDR'>[] = [{ name: 'ADDR', hi: 61, lo: 0 }];
/** IODIR dword 0 (dword 1 is reserved). */
export const IODIR_DW0: readonly BitField<'opcode' | 'func3' | 'PID' | 'DV' | 'DID'>[] = [...HEAD, { name: 'PID', hi: 31, lo: 12 }, { name: 'DV', hi: 33, lo: 33 }, { name: 'DID', hi: 63, lo: 40 }];
/** ATS.INVAL / ATS.PRGR dword 0. */
export const ATS_DW0: readonly BitField<'opcode' | 'func3' | 'PID' | 'PV' | 'DSV' | 'RID' | 'DSEG'>[] = [...HEAD, { name: 'PID', hi: 31, lo: 12 }, { name: 'PV', hi: 32, lo: 32 }, { name: 'DSV', hi: 33, lo: 33 }, { name: 'RID', hi: 55, lo: 40 }, { name: 'DSEG', hi: 63, lo: 56 }];
/** ATS.INVAL payload: the PCIe Invalidation Request's bytes 8..15. */
export const ATS_INVAL_DW1: readonly BitField<'G' | 'S' | 'ADDR'>[] = [{ name: 'G', hi: 0, lo: 0 }, { name: 'S', hi: 11, lo: 11 }, { name: 'ADDR', hi: 63, lo: 12 }];
/** ATS.PRGR payload: the PCIe PRG Response's bytes 8..15 (destination ID as v1.0 lays it out). */
export const ATS_PRGR_DW1: readonly BitField<'PRGI' | 'RESP_CODE' | 'DST_ID'>[] = [{ name: 'PRGI', hi: 40, lo: 32 }, { name: 'RESP_CODE', hi: 47, lo: 44 }, { name: 'DST_ID', hi: 63, lo: 48 }];

/** PCIe PRG Response Codes carried by ATS.PRGR. */
export const PRG_RESP_SUCCESS = 0x0;
/** PCIe PRG Response Code: Invalid Request. */
export const PRG_RESP_INVALID = 0x1;
/** PCIe PRG Response Code: Response Failure. */
export const PRG_RESP_FAILURE = 0xf;

/** IOTINVAL.VMA / IOTINVAL.GVMA. */
export type IotinvalCommand = {
  /** `IOTINVAL.VMA` (func3 0, first-stage entries) or `IOTINVAL.GVMA` (func3 1, second-stage entries). */
  readonly op: 'IOTINVAL.VMA' | 'IOTINVAL.GVMA';
  /** dw0 bit 10: 1 limits the invalidation to leaf entries for `ADDR`; 0 covers the whole address space. */
  readonly AV: number;
  /** dw0 bits 31:12: the process soft-context ID to invalidate, when `PSCV` is 1. */
  readonly PSCID: number;
  /** dw0 bit 32: `PSCID` is valid (global mappings are then spared); must be 0 for IOTINVAL.GVMA. */
  readonly PSCV: number;
  /** dw0 bit 33: `GSCID` is valid (a VM's address spaces); 0 targets the host's, whose second stage is Bare. */
  readonly GV: number;
  /** dw0 bit 34: also drop non-leaf entries for `ADDR`; needs `capabilities.NL`. */
  readonly NL: number;
  /** dw0 bits 59:44: the guest soft-context ID (the VM), when `GV` is 1. */
  readonly GSCID: number;
  /** dw1 bit 9: `ADDR` encodes a NAPOT range rather than one 4 KiB page; needs `capabilities.S`. */
  readonly S: number;
  /** The IOVA (VMA) or GPA (GVMA) to invalidate, 4 KiB aligned; dw1 bits 61:10 hold ADDR[63:12]. */
  readonly ADDR: bigint;
};
/** IOFENCE.C. */
export type IofenceCommand = {
  /** Always `IOFENCE.C` (opcode 2, func3 0). */
  readonly op: 'IOFENCE.C';
  /** dw0 bit 10: on completion, write the 4 bytes of `DATA` at `ADDR`. */
  readonly AV: number;
  /** dw0 bit 11: on completion, set `cqcsr.fence_w_ip` (a wired interrupt); illegal when `fctl.WSI` is 0. */
  readonly WSI: number;
  /** dw0 bit 12: earlier device reads are ordered before the fence completes. */
  readonly PR: number;
  /** dw0 bit 13: earlier device writes are ordered before the fence completes. */
  readonly PW: number;
  /** dw0 bits 63:32: the 32-bit value written at `ADDR` when `AV` is 1. */
  readonly DATA: number;
  /** 4-byte aligned address of that write; dw1 bits 61:0 hold ADDR[63:2]. */
  readonly ADDR: bigint;
};
/** IODIR.INVAL_DDT / IODIR.INVAL_PDT. */
export type IodirCommand = {
  /** `IODIR.INVAL_DDT` (func3 0, device contexts) or `IODIR.INVAL_PDT` (func3 1, one device's process contexts). */
  readonly op: 'IODIR.INVAL_DDT' | 'IODIR.INVAL_PDT';
  /** dw0 bits 31:12: the process_id whose context INVAL_PDT drops; must be 0 for INVAL_DDT. */
  readonly PID: number;
  /** dw0 bit 33: `DID` is valid; INVAL_DDT with 0 drops every cached DDT and PDT entry, INVAL_PDT requires 1. */
  readonly DV: number;
  /** dw0 bits 63:40: the device_id whose cached context is dropped. */
  readonly DID: number;
};
/** ATS.INVAL. */
export type AtsInvalCommand = {
  /** Always `ATS.INVAL` (opcode 4, func3 0): send a PCIe Invalidation Request to the device's ATC. */
  readonly op: 'ATS.INVAL';
  /** dw0 bits 31:12: the PASID the request carries when `PV` is 1. */
  readonly PID: number;
  /** dw0 bit 32: the request carries the PASID in `PID`. */
  readonly PV: number;
  /** dw0 bit 33: `DSEG` is valid. */
  readonly DSV: number;
  /** dw0 bits 55:40: PCIe requester ID (bus:dev.fn) of the device to invalidate. */
  readonly RID: number;
  /** dw0 bits 63:56: PCIe segment of the device, when `DSV` is 1. */
  readonly DSEG: number;
  /** Payload bit 0: Global Invalidate, for every PASID of the device. */
  readonly G: number;
  /** Payload bit 11: the PCIe Size bit; `ADDR` then encodes a range larger than 4 KiB. */
  readonly S: number;
  /** Untranslated address to invalidate, 4 KiB aligned; payload bits 63:12 hold ADDR[63:12]. */
  readonly ADDR: bigint;
};
/** ATS.PRGR. */
export type AtsPrgrCommand = {
  /** Always `ATS.PRGR` (opcode 4, func3 1): send a PCIe Page Request Group Response. */
  readonly op: 'ATS.PRGR';
  /** dw0 bits 31:12: the PASID the response carries when `PV` is 1. */
  readonly PID: number;
  /** dw0 bit 32: the response carries the PASID in `PID`. */
  readonly PV: number;
  /** dw0 bit 33: `DSEG` is valid. */
  readonly DSV: number;
  /** dw0 bits 55:40: PCIe requester ID of the device the response goes to. */
  readonly RID: number;
  /** dw0 bits 63:56: PCIe segment of the device, when `DSV` is 1. */
  readonly DSEG: number;
  /** Payload bits 40:32: the Page Request Group Index the response completes. */
  readonly PRGI: number;
  /** Payload bits 47:44: the PRG Response Code (`PRG_RESP_SUCCESS`, `PRG_RESP_INVALID`, `PRG_RESP_FAILURE`). */
  readonly RESP_CODE: number;
  /** Payload bits 63:48: the destination ID as v1.0 lays it out. */
  readonly DST_ID: number;
};
/** Any command of the queue. */
export type Command = IotinvalCommand | IofenceCommand | IodirCommand | AtsInvalCommand | AtsPrgrCommand;

/** The two doublewords of `c`. Fields are truncated to their widths (the caller's values are trusted). */
export function commandWords(c: Command): [bigint, bigint] {
  switch (c.op) {
    case 'IOTINVAL.VMA':
    case 'IOTINVAL.GVMA': {
      const func3 = c.op === 'IOTINVAL.VMA' ? FUNC_IOTINVAL_VMA : FUNC_IOTINVAL_GVMA;
      return [encodeBitFields(IOTINVAL_DW0, { ...c, opcode: OPCODE_IOTINVAL, func3 }), encodeBitFields(IOTINVAL_DW1, { S: c.S, ADDR: c.ADDR >> 12n })];
    }
    case 'IOFENCE.C':
      return [encodeBitFields(IOFENCE_DW0, { ...c, opcode: OPCODE_IOFENCE, func3: FUNC_IOFENCE_C }), encodeBitFields(IOFENCE_DW1, { ADDR: c.ADDR >> 2n })];
    case 'IODIR.INVAL_DDT':
    case 'IODIR.INVAL_PDT': {
      const func3 = c.op === 'IODIR.INVAL_DDT' ? FUNC_IODIR_INVAL_DDT : FUNC_IODIR_INVAL_PDT;
      return [encodeBitFields(IODIR_DW0, { ...c, opcode: OPCODE_IODIR, func3 }), 0n];
    }
    case 'ATS.INVAL':
      return [encodeBitFields(ATS_DW0, { ...c, opcode: OPCODE_ATS, func3: FUNC_ATS_INVAL }), encodeBitFields(ATS_INVAL_DW1, { G: c.G, S: c.S, ADDR: c.ADDR >> 12n })];
    case 'ATS.PRGR':
      return [encodeBitFields(ATS_DW0, { ...c, opcode: OPCODE_ATS, func3: FUNC_ATS_PRGR }), encodeBitFields(ATS_PRGR_DW1, c)];
  }
}

/** `c` as the 16 bytes software writes to the command queue (little-endian). */
export function encodeCommand(c: Command): Uint8Array {
  const [dw0, dw1] = commandWords(c);
  const b = new Uint8Array(CMD_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, dw0, true);
  dv.setBigUint64(8, dw1, true);
  return b;
}

/** The unit state a command's legality depends on; absent: everything the commands can use is supported. */
export interface CommandContext {
  /** `capabilities.ATS`, `.NL` and `.S`: without them ATS.* commands, and NL or S in IOTINVAL, are unsupported. */
  readonly caps?: Pick<CapFields, 'ATS' | 'NL' | 'S'>;
  /** fctl.WSI: IOFENCE.C with WSI = 1 is legal only with wired interrupts. */
  readonly fctlWsi?: boolean;
}

function covered(layout: readonly BitField[]): bigint {
  let m = 0n;
  for (const f of layout) m |= genmask(f.hi, f.lo);
  return m;
}

function illegal(what: string, word: string, bits: bigint): Result<Command> {
  return err(`${what}: reserved bits set in ${word} (0x${bits.toString(16)}): illegal command`);
}

/**
 * Decodes a command the way the IOMMU fetches it: the reason a command is illegal or unsupported is the
 * error (the queue would stop with cmd_ill and cqh on it).
 */
export function decodeCommandWords(dw0: bigint, dw1: bigint, ctx: CommandContext = {}): Result<Command> {
  const opcode = Number(dw0 & 0x7fn);
  const func3 = Number((dw0 >> 7n) & 7n);
  switch (opcode) {
    case OPCODE_IOTINVAL: {
      if (func3 > 1) return err(`IOTINVAL: func3 ${func3} is reserved: illegal command`);
      const op = func3 === 0 ? 'IOTINVAL.VMA' : 'IOTINVAL.GVMA';
      const r0 = dw0 & ~covered(IOTINVAL_DW0);
      if (r0) return illegal(op, 'dw0', r0);
      const r1 = dw1 & ~covered(IOTINVAL_DW1);
      if (r1) return illegal(op, 'dw1', r1);
      const f = decodeBitFields(IOTINVAL_DW0, dw0);
      const g = decodeBitFields(IOTINVAL_DW1, dw1);
      if (f.NL && ctx.caps && !ctx.caps.NL) return err(`${op}: NL set but capabilities.NL is clear: unsupported command`);
      if (g.S && ctx.caps && !ctx.caps.S) return err(`${op}: S set but capabilities.S is clear: unsupported command`);
      if (op === 'IOTINVAL.GVMA' && f.PSCV) return err('IOTINVAL.GVMA: PSCV must be 0: illegal command');
      return ok({ op, AV: f.AV, PSCID: f.PSCID, PSCV: f.PSCV, GV: f.GV, NL: f.NL, GSCID: f.GSCID, S: g.S, ADDR: BigInt(g.ADDR) << 12n });
    }
    case OPCODE_IOFENCE: {
      if (func3 !== FUNC_IOFENCE_C) return err(`IOFENCE: func3 ${func3} is reserved: illegal command`);
      const r0 = dw0 & ~covered(IOFENCE_DW0);
      if (r0) return illegal('IOFENCE.C', 'dw0', r0);
      const r1 = dw1 & ~covered(IOFENCE_DW1);
      if (r1) return illegal('IOFENCE.C', 'dw1', r1);
      const f = decodeBitFields(IOFENCE_DW0, dw0);
      if (f.WSI && ctx.fctlWsi === false) return err('IOFENCE.C: WSI set while fctl.WSI is 0: illegal command');
      return ok({ op: 'IOFENCE.C', AV: f.AV, WSI: f.WSI, PR: f.PR, PW: f.PW, DATA: f.DATA, ADDR: ((dw1 & genmask(61, 0)) << 2n) });
    }
    case OPCODE_IODIR: {
      if (func3 > 1) return err(`IODIR: func3 ${func3} is reserved: illegal command`);
      const op = func3 === 0 ? 'IODIR.INVAL_DDT' : 'IODIR.INVAL_PDT';
      const r0 = dw0 & ~covered(IODIR_DW0);
      if (r0) return illegal(op, 'dw0', r0);
      if (dw1 !== 0n) return illegal(op, 'dw1', dw1);
      const f = decodeBitFields(IODIR_DW0, dw0);
      if (op === 'IODIR.INVAL_DDT' && f.PID !== 0) return err('IODIR.INVAL_DDT: PID is reserved for this function: illegal command');
      if (op === 'IODIR.INVAL_PDT' && !f.DV) return err('IODIR.INVAL_PDT: DV must be 1: illegal command');
      return ok({ op, PID: f.PID, DV: f.DV, DID: f.DID });
    }
    case OPCODE_ATS: {
      if (func3 > 1) return err(`ATS: func3 ${func3} is reserved: illegal command`);
      const op = func3 === 0 ? 'ATS.INVAL' : 'ATS.PRGR';
      if (ctx.caps && !ctx.caps.ATS) return err(`${op}: capabilities.ATS is clear: unsupported command`);
      const r0 = dw0 & ~covered(ATS_DW0);
      if (r0) return illegal(op, 'dw0', r0);
      const f = decodeBitFields(ATS_DW0, dw0);
      const head = { PID: f.PID, PV: f.PV, DSV: f.DSV, RID: f.RID, DSEG: f.DSEG };
      if (op === 'ATS.INVAL') {
        const r1 = dw1 & ~covered(ATS_INVAL_DW1);
        if (r1) return illegal(op, 'dw1 (payload bits 10:1 must be 0)', r1);
        const g = decodeBitFields(ATS_INVAL_DW1, dw1);
        return ok({ op, ...head, G: g.G, S: g.S, ADDR: BigInt(g.ADDR) << 12n });
      }
      const r1 = dw1 & ~covered(ATS_PRGR_DW1);
      if (r1) return illegal(op, 'dw1 (payload bits 31:0 and 43:41 must be 0)', r1);
      const g = decodeBitFields(ATS_PRGR_DW1, dw1);
      return ok({ op, ...head, PRGI: g.PRGI, RESP_CODE: g.RESP_CODE, DST_ID: g.DST_ID });
    }
    default:
      return err(opcode >= 64 ? `opcode ${opcode} is for custom use: unsupported command` : `opcode ${opcode} is reserved: illegal command`);
  }
}

/** Decodes 16 command bytes (little-endian). */
export function decodeCommand(bytes: Uint8Array, ctx: CommandContext = {}): Result<Command> {
  if (bytes.length !== CMD_SIZE) return err(`a command is ${CMD_SIZE} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return decodeCommandWords(dv.getBigUint64(0, true), dv.getBigUint64(8, true), ctx);
}

/** The doubleword layouts of a command, for bit diagrams. */
export function commandLayouts(op: Command['op']): [readonly BitField[], readonly BitField[]] {
  switch (op) {
    case 'IOTINVAL.VMA':
    case 'IOTINVAL.GVMA':
      return [IOTINVAL_DW0, IOTINVAL_DW1];
    case 'IOFENCE.C':
      return [IOFENCE_DW0, IOFENCE_DW1];
    case 'IODIR.INVAL_DDT':
    case 'IODIR.INVAL_PDT':
      return [IODIR_DW0, []];
    case 'ATS.INVAL':
      return [ATS_DW0, ATS_INVAL_DW1];
    case 'ATS.PRGR':
      return [ATS_DW0, ATS_PRGR_DW1];
  }
}

/**
 * What the Linux driver queues to flush a domain's IOTLB on one IOMMU (riscv_iommu_iotlb_inval):
 * IOTINVAL.VMA for the domain's PSCID, one per 4 KiB page (AV = 1) for a range under 2 MiB, one
 * PSCID-wide otherwise, then IOFENCE.C to wait for them.
 */
export function linuxIotlbInvalCommands(pscid: number, range?: { start: bigint; length: bigint }): Command[] {
  const out: Command[] = [];
  const vma = { op: 'IOTINVAL.VMA', AV: 0, PSCID: pscid, PSCV: 1, GV: 0, NL: 0, GSCID: 0, S: 0, ADDR: 0n } as const;
  if (range && range.length < 2n << 20n) {
    for (let a = range.start & ~0xfffn; a < range.start + range.length; a += 0x1000n) out.push({ ...vma, AV: 1, ADDR: a });
  } else {
    out.push(vma);
  }
  out.push(LINUX_IOFENCE);
  return out;
}

/** IOFENCE.C as Linux sends it (riscv_iommu_cmd_sync): PR = PW = 1, no write-back. */
export const LINUX_IOFENCE: IofenceCommand = { op: 'IOFENCE.C', AV: 0, WSI: 0, PR: 1, PW: 1, DATA: 0, ADDR: 0n };

/**
 * What the driver queues around a device context update (riscv_iommu_iodir_update): IODIR.INVAL_DDT for
 * the device id, IOTINVAL.VMA for the old PSCID when the context translated, IOFENCE.C.
 */
export function linuxDcUpdateCommands(did: number, oldPscid: number | null): Command[] {
  const out: Command[] = [{ op: 'IODIR.INVAL_DDT', PID: 0, DV: 1, DID: did }];
  if (oldPscid !== null) out.push({ op: 'IOTINVAL.VMA', AV: 0, PSCID: oldPscid, PSCV: 1, GV: 0, NL: 0, GSCID: 0, S: 0, ADDR: 0n });
  out.push(LINUX_IOFENCE);
  return out;
}
