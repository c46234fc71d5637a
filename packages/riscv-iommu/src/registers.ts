/**
 * The RISC-V IOMMU 1.0 registers a driver reads to learn what an instance can do: `capabilities` (offset
 * 0x0, 64 bits, read-only), `fctl` (0x8, 32 bits) and `ddtp` (0x10, 64 bits). Fields are [hi:lo] as the
 * specification's register chapter prints them and are read with core's bitfield helpers, so decode and
 * encode are table-driven and a bit no field names is reserved.
 *
 * `capabilities` carries the ratified v1.0 fields and the ratified extensions of later revisions that
 * implementations already set (Svrsw60t59b at bit 14, which QEMU advertises with its G-stage; QOSID, NL
 * and S at 41..43). Bits 63:56 are for custom use and are kept, not refused.
 */
import {
  U64_MASK,
  decodeBitFields,
  err,
  encodeBitFields,
  ok,
  uncoveredMask,
  type BitField,
  type Result,
} from '@ioasid/core/driver';

/** Register offsets in the 4 KiB register page (the `RISCV_IOMMU_REG_*` of the Linux driver header). */
export const REG = {
  /** 64-bit, read-only: what the IOMMU implements (version, Sv39/48/57 and Sv39x4/48x4/57x4 modes, ATS, IGS, PAS, PD8/17/20, ...). */
  capabilities: 0x000,
  /** 32-bit features control: BE (big-endian structures), WSI (wired interrupts instead of MSI), GXL. */
  fctl: 0x008,
  /** 64-bit device-directory-table pointer: `iommu_mode` (Off, Bare, 1LVL, 2LVL, 3LVL), busy, root PPN. */
  ddtp: 0x010,
  /** 64-bit command-queue base: LOG2SZ-1 and PPN. */
  cqb: 0x018,
  /** 32-bit command-queue head (read-only): the next command the IOMMU fetches. */
  cqh: 0x020,
  /** 32-bit command-queue tail, written by software after queueing commands. */
  cqt: 0x024,
  /** 64-bit fault-queue base: LOG2SZ-1 and PPN. */
  fqb: 0x028,
  /** 32-bit fault-queue head, written by software after consuming records. */
  fqh: 0x030,
  /** 32-bit fault-queue tail (read-only): where the IOMMU writes the next record. */
  fqt: 0x034,
  /** 64-bit page-request-queue base: LOG2SZ-1 and PPN (with `capabilities.ATS`). */
  pqb: 0x038,
  /** 32-bit page-request-queue head, written by software. */
  pqh: 0x040,
  /** 32-bit page-request-queue tail (read-only). */
  pqt: 0x044,
  /** 32-bit command-queue control and status: cqen, cie, cqmf, cmd_to, cmd_ill, fence_w_ip, cqon, busy. */
  cqcsr: 0x048,
  /** 32-bit fault-queue control and status: fqen, fie, fqmf, fqof, fqon, busy. */
  fqcsr: 0x04c,
  /** 32-bit page-request-queue control and status: pqen, pie, pqmf, pqof, pqon, busy. */
  pqcsr: 0x050,
  /** 32-bit interrupt-pending status (write 1 to clear): cip, fip, pmip, pip. */
  ipsr: 0x054,
  /** 32-bit HPM overflow status (read-only): bit 0 for `iohpmcycles`, bit X for counter X. */
  iocountovf: 0x058,
  /** 32-bit HPM count inhibit: bit 0 stops `iohpmcycles`, bit X counter X. */
  iocountinh: 0x05c,
  /** 64-bit HPM cycle counter (bit 63 is OF). */
  iohpmcycles: 0x060,
  /** First of the 64-bit HPM event counters `iohpmctr1..31`, 8 bytes apart. */
  iohpmctr1: 0x068,
  /** First of the 64-bit HPM event selectors `iohpmevt1..31`, 8 bytes apart. */
  iohpmevt1: 0x160,
  /** 64-bit debug translation request: the IOVA page to translate (with `capabilities.DBG`). */
  tr_req_iova: 0x258,
  /** 64-bit debug translation request control: Go/Busy, Priv, Exe, NW, PID, PV, DID. */
  tr_req_ctl: 0x260,
  /** 64-bit debug translation response (read-only): fault, PBMT, S, PPN. */
  tr_response: 0x268,
  /** 64-bit interrupt cause to vector: civ, fiv, pmiv, piv. */
  icvec: 0x2f8,
  /** MSI configuration table: 16 entries of 16 bytes (`msi_addr_x`, `msi_data_x`, `msi_vec_ctl_x`). */
  msi_cfg_tbl: 0x300,
} as const;

/** Size of the register page. */
export const REG_SIZE = 0x1000;

/** Every field of `capabilities`. */
export const CAP_FIELDS: readonly BitField<'version' | 'Sv32' | 'Sv39' | 'Sv48' | 'Sv57' | 'Svrsw60t59b' | 'Svpbmt' | 'Sv32x4' | 'Sv39x4' | 'Sv48x4' | 'Sv57x4' | 'AMO_MRIF' | 'MSI_FLAT' | 'MSI_MRIF' | 'AMO_HWAD' | 'ATS' | 'T2GPA' | 'END' | 'IGS' | 'HPM' | 'DBG' | 'PAS' | 'PD8' | 'PD17' | 'PD20' | 'QOSID' | 'NL' | 'S' | 'custom'>[] = [
  { name: 'version', hi: 7, lo: 0 },
  { name: 'Sv32', hi: 8, lo: 8 },
  { name: 'Sv39', hi: 9, lo: 9 },
  { name: 'Sv48', hi: 10, lo: 10 },
  { name: 'Sv57', hi: 11, lo: 11 },
  { name: 'Svrsw60t59b', hi: 14, lo: 14 },
  { name: 'Svpbmt', hi: 15, lo: 15 },
  { name: 'Sv32x4', hi: 16, lo: 16 },
  { name: 'Sv39x4', hi: 17, lo: 17 },
  { name: 'Sv48x4', hi: 18, lo: 18 },
  { name: 'Sv57x4', hi: 19, lo: 19 },
  { name: 'AMO_MRIF', hi: 21, lo: 21 },
  { name: 'MSI_FLAT', hi: 22, lo: 22 },
  { name: 'MSI_MRIF', hi: 23, lo: 23 },
  { name: 'AMO_HWAD', hi: 24, lo: 24 },
  { name: 'ATS', hi: 25, lo: 25 },
  { name: 'T2GPA', hi: 26, lo: 26 },
  { name: 'END', hi: 27, lo: 27 },
  { name: 'IGS', hi: 29, lo: 28 },
  { name: 'HPM', hi: 30, lo: 30 },
  { name: 'DBG', hi: 31, lo: 31 },
  { name: 'PAS', hi: 37, lo: 32 },
  { name: 'PD8', hi: 38, lo: 38 },
  { name: 'PD17', hi: 39, lo: 39 },
  { name: 'PD20', hi: 40, lo: 40 },
  { name: 'QOSID', hi: 41, lo: 41 },
  { name: 'NL', hi: 42, lo: 42 },
  { name: 'S', hi: 43, lo: 43 },
  { name: 'custom', hi: 63, lo: 56 },
];

/** The name of a `capabilities` field. */
export type CapFieldName = (typeof CAP_FIELDS)[number]['name'];
/** `capabilities` decoded: every field by its specification name. */
export type CapFields = Readonly<Record<CapFieldName, number>>;

/** Reserved bits of `capabilities` (13:12, 20, 55:44). */
export const CAP_RESERVED = uncoveredMask(CAP_FIELDS);

/** capabilities.IGS: which interrupt generation the IOMMU supports. */
export const IGS_MSI = 0;
/** capabilities.IGS 1: wired interrupts only. */
export const IGS_WSI = 1;
/** capabilities.IGS 2: MSIs and wired interrupts. */
export const IGS_BOTH = 2;
/** IGS encodings by value. */
export const IGS_NAMES = ['MSI', 'WSI', 'BOTH', 'reserved'] as const;

/** The fields of `fctl`. */
export const FCTL_FIELDS: readonly BitField<'BE' | 'WSI' | 'GXL' | 'custom'>[] = [
  { name: 'BE', hi: 0, lo: 0 },
  { name: 'WSI', hi: 1, lo: 1 },
  { name: 'GXL', hi: 2, lo: 2 },
  { name: 'custom', hi: 31, lo: 16 },
];
/** `fctl` decoded. */
export type FctlFields = Readonly<Record<(typeof FCTL_FIELDS)[number]['name'], number>>;
/** Reserved bits of `fctl` (15:3 and everything above the 32-bit register). */
export const FCTL_RESERVED = uncoveredMask(FCTL_FIELDS);

/** The fields of `ddtp`. */
export const DDTP_FIELDS: readonly BitField<'iommu_mode' | 'busy' | 'PPN'>[] = [
  { name: 'iommu_mode', hi: 3, lo: 0 },
  { name: 'busy', hi: 4, lo: 4 },
  { name: 'PPN', hi: 53, lo: 10 },
];
/** `ddtp` decoded. */
export type DdtpFields = Readonly<Record<(typeof DDTP_FIELDS)[number]['name'], number>>;
/** Reserved bits of `ddtp` (9:5, 63:54). */
export const DDTP_RESERVED = uncoveredMask(DDTP_FIELDS);

/** ddtp.iommu_mode encodings. */
export const DDTP_MODE_OFF = 0;
/** ddtp.iommu_mode Bare: untranslated requests pass. */
export const DDTP_MODE_BARE = 1;
/** ddtp.iommu_mode 1LVL: a one-level device directory. */
export const DDTP_MODE_1LVL = 2;
/** ddtp.iommu_mode 2LVL: a two-level device directory. */
export const DDTP_MODE_2LVL = 3;
/** ddtp.iommu_mode 3LVL: a three-level device directory. */
export const DDTP_MODE_3LVL = 4;
/** ddtp.iommu_mode names by value. */
export const DDTP_MODE_NAMES: Readonly<Record<number, string>> = { 0: 'Off', 1: 'Bare', 2: '1LVL', 3: '2LVL', 4: '3LVL', 14: 'custom', 15: 'custom' };

/** Decodes `capabilities`. Only reserved bits and the reserved IGS encoding are refused: the rest is what the hardware says. */
export function decodeCap(value: bigint): Result<CapFields> {
  if (value < 0n || value > U64_MASK) return err(`capabilities: expected a 64-bit value, got 0x${value.toString(16)}`);
  const reserved = value & CAP_RESERVED;
  if (reserved !== 0n) return err(`capabilities: reserved bits set (0x${reserved.toString(16)})`);
  const f = decodeBitFields(CAP_FIELDS, value);
  if (f.IGS === 3) return err('capabilities.IGS: 3 is reserved (0 MSI, 1 WSI, 2 BOTH)');
  return ok(f);
}

/** Builds `capabilities` from its fields (the inverse of decodeCap). */
export function encodeCap(f: Partial<CapFields>): bigint {
  return encodeBitFields(CAP_FIELDS, f);
}

/** Decodes `fctl` (a 32-bit register): reserved bits 15:3 refused. */
export function decodeFctl(value: bigint): Result<FctlFields> {
  if (value < 0n || value > 0xffff_ffffn) return err(`fctl: expected a 32-bit value, got 0x${value.toString(16)}`);
  const reserved = value & FCTL_RESERVED;
  if (reserved !== 0n) return err(`fctl: reserved bits set (0x${reserved.toString(16)})`);
  return ok(decodeBitFields(FCTL_FIELDS, value));
}

/** Builds `fctl` from its fields. */
export function encodeFctl(f: Partial<FctlFields>): bigint {
  return encodeBitFields(FCTL_FIELDS, f);
}

/** Decodes `ddtp`: reserved bits (9:5, 63:54) and the reserved modes 5..13 refused. */
export function decodeDdtp(value: bigint): Result<DdtpFields> {
  if (value < 0n || value > U64_MASK) return err(`ddtp: expected a 64-bit value, got 0x${value.toString(16)}`);
  const reserved = value & DDTP_RESERVED;
  if (reserved !== 0n) return err(`ddtp: reserved bits set (0x${reserved.toString(16)})`);
  const f = decodeBitFields(DDTP_FIELDS, value);
  if (f.iommu_mode >= 5 && f.iommu_mode <= 13) return err(`ddtp.iommu_mode: ${f.iommu_mode} is reserved`);
  return ok(f);
}

/** Builds `ddtp` from its fields. */
export function encodeDdtp(f: Partial<DdtpFields>): bigint {
  return encodeBitFields(DDTP_FIELDS, f);
}

/** Queue base registers (cqb, fqb, pqb): LOG2SZ-1 in 4:0, the queue's PPN in 53:10. */
export const QUEUE_BASE_FIELDS: readonly BitField<'LOG2SZ_1' | 'PPN'>[] = [
  { name: 'LOG2SZ_1', hi: 4, lo: 0 },
  { name: 'PPN', hi: 53, lo: 10 },
];

/** cqcsr / fqcsr / pqcsr: enable, interrupt enable, the error bits, on and busy. */
export const CQCSR_FIELDS: readonly BitField<'cqen' | 'cie' | 'cqmf' | 'cmd_to' | 'cmd_ill' | 'fence_w_ip' | 'cqon' | 'busy'>[] = [
  { name: 'cqen', hi: 0, lo: 0 },
  { name: 'cie', hi: 1, lo: 1 },
  { name: 'cqmf', hi: 8, lo: 8 },
  { name: 'cmd_to', hi: 9, lo: 9 },
  { name: 'cmd_ill', hi: 10, lo: 10 },
  { name: 'fence_w_ip', hi: 11, lo: 11 },
  { name: 'cqon', hi: 16, lo: 16 },
  { name: 'busy', hi: 17, lo: 17 },
];
/** The fields of `fqcsr` (pqcsr has the same shape). */
export const FQCSR_FIELDS: readonly BitField<'fqen' | 'fie' | 'fqmf' | 'fqof' | 'fqon' | 'busy'>[] = [
  { name: 'fqen', hi: 0, lo: 0 },
  { name: 'fie', hi: 1, lo: 1 },
  { name: 'fqmf', hi: 8, lo: 8 },
  { name: 'fqof', hi: 9, lo: 9 },
  { name: 'fqon', hi: 16, lo: 16 },
  { name: 'busy', hi: 17, lo: 17 },
];

/** The first-stage modes (iosatp.MODE, SXL=0) capabilities allow, largest last: 39, 48, 57. */
export function firstStageWidths(f: CapFields): number[] {
  return [f.Sv39 ? 39 : 0, f.Sv48 ? 48 : 0, f.Sv57 ? 57 : 0].filter((w) => w !== 0);
}

/** The second-stage modes (iohgatp.MODE, GXL=0) capabilities allow: 41 (Sv39x4), 50, 59. */
export function secondStageWidths(f: CapFields): number[] {
  return [f.Sv39x4 ? 41 : 0, f.Sv48x4 ? 50 : 0, f.Sv57x4 ? 59 : 0].filter((w) => w !== 0);
}

/** The rules between fields the specification states: what makes a `capabilities` value impossible. */
export function capConsistency(f: CapFields): string | null {
  if (f.version >> 4 !== 1) return `capabilities.version: 0x${f.version.toString(16)}, expected major version 1 (0x10 for 1.0)`;
  if (f.Sv48 && !f.Sv39) return 'capabilities: Sv48 without Sv39 (Sv48 implies Sv39)';
  if (f.Sv57 && !f.Sv48) return 'capabilities: Sv57 without Sv48 (Sv57 implies Sv48)';
  if (f.Sv48x4 && !f.Sv39x4) return 'capabilities: Sv48x4 without Sv39x4';
  if (f.Sv57x4 && !f.Sv48x4) return 'capabilities: Sv57x4 without Sv48x4';
  if (f.PAS < 32 || f.PAS > 56) return `capabilities.PAS: ${f.PAS}, expected 32 to 56 (the PPN fields hold 44 bits)`;
  return null;
}

