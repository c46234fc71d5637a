/**
 * The in-memory directory structures (RISC-V IOMMU 1.0, "Data structures"): the device directory table
 * (DDT) indexed by device_id, the device context (DC) it leads to, the process directory table (PDT)
 * indexed by process_id, and the process context (PC).
 *
 * DC (base format 32 bytes, extended format 64 bytes when capabilities.MSI_FLAT):
 * - dw0 `tc`: 0 V, 1 EN_ATS, 2 EN_PRI, 3 T2GPA, 4 DTF, 5 PDTV, 6 PRPR, 7 GADE, 8 SADE, 9 DPE, 10 SBE,
 *   11 SXL, 31:24 custom;
 * - dw1 `iohgatp`: 43:0 PPN, 59:44 GSCID, 63:60 MODE (0 Bare, 8 Sv39x4, 9 Sv48x4, 10 Sv57x4);
 * - dw2 `ta`: 31:12 PSCID;
 * - dw3 `fsc`: 43:0 PPN, 63:60 MODE: `iosatp` (0 Bare, 8 Sv39, 9 Sv48, 10 Sv57) when PDTV = 0, `pdtp`
 *   (0 Bare, 1 PD8, 2 PD17, 3 PD20) when PDTV = 1;
 * - extended: dw4 `msiptp` (43:0 PPN, 63:60 MODE: 0 Off, 1 Flat), dw5 `msi_addr_mask` and dw6
 *   `msi_addr_pattern` (51:0), dw7 reserved.
 * PC (16 bytes): dw0 `ta`: 0 V, 1 ENS, 2 SUM, 31:12 PSCID; dw1 `fsc`: the iosatp of the process.
 * Non-leaf DDT / PDT entry: 0 V, 53:10 PPN.
 */
import { decodeBitFields, encodeBitFields, err, ok, uncoveredMask, type BitField, type Result } from '@ioasid/core/driver';
import { IGS_BOTH, type CapFields, type FctlFields } from './registers.js';

/** DC `tc` (translation control), dword 0. */
export const TC_FIELDS: readonly BitField<'V' | 'EN_ATS' | 'EN_PRI' | 'T2GPA' | 'DTF' | 'PDTV' | 'PRPR' | 'GADE' | 'SADE' | 'DPE' | 'SBE' | 'SXL' | 'custom'>[] = [
  { name: 'V', hi: 0, lo: 0 },
  { name: 'EN_ATS', hi: 1, lo: 1 },
  { name: 'EN_PRI', hi: 2, lo: 2 },
  { name: 'T2GPA', hi: 3, lo: 3 },
  { name: 'DTF', hi: 4, lo: 4 },
  { name: 'PDTV', hi: 5, lo: 5 },
  { name: 'PRPR', hi: 6, lo: 6 },
  { name: 'GADE', hi: 7, lo: 7 },
  { name: 'SADE', hi: 8, lo: 8 },
  { name: 'DPE', hi: 9, lo: 9 },
  { name: 'SBE', hi: 10, lo: 10 },
  { name: 'SXL', hi: 11, lo: 11 },
  { name: 'custom', hi: 31, lo: 24 },
];
/** DC `iohgatp`: the second-stage root, its GSCID and mode. */
export const IOHGATP_FIELDS: readonly BitField<'PPN' | 'GSCID' | 'MODE'>[] = [
  { name: 'PPN', hi: 43, lo: 0 },
  { name: 'GSCID', hi: 59, lo: 44 },
  { name: 'MODE', hi: 63, lo: 60 },
];
/** DC `ta`: the PSCID used when PDTV = 0. */
export const DC_TA_FIELDS: readonly BitField<'PSCID'>[] = [{ name: 'PSCID', hi: 31, lo: 12 }];
/** iosatp, pdtp and msiptp share this shape: 43:0 PPN, 63:60 MODE. */
export const ATP_FIELDS: readonly BitField<'PPN' | 'MODE'>[] = [
  { name: 'PPN', hi: 43, lo: 0 },
  { name: 'MODE', hi: 63, lo: 60 },
];
/** DC `msi_addr_mask` / `msi_addr_pattern`: 51:0. */
export const MSI_ADDR_FIELDS: readonly BitField<'ADDR'>[] = [{ name: 'ADDR', hi: 51, lo: 0 }];
/** PC `ta`: valid, ENS, SUM and the PSCID. */
export const PC_TA_FIELDS: readonly BitField<'V' | 'ENS' | 'SUM' | 'PSCID'>[] = [
  { name: 'V', hi: 0, lo: 0 },
  { name: 'ENS', hi: 1, lo: 1 },
  { name: 'SUM', hi: 2, lo: 2 },
  { name: 'PSCID', hi: 31, lo: 12 },
];
/** A non-leaf DDT or PDT entry. */
export const DIR_ENTRY_FIELDS: readonly BitField<'V' | 'PPN'>[] = [
  { name: 'V', hi: 0, lo: 0 },
  { name: 'PPN', hi: 53, lo: 10 },
];

/** iosatp.MODE Bare: no first stage. */
export const IOSATP_BARE = 0;
/** iosatp.MODE Sv39. */
export const IOSATP_SV39 = 8;
/** iosatp.MODE Sv48. */
export const IOSATP_SV48 = 9;
/** iosatp.MODE Sv57. */
export const IOSATP_SV57 = 10;
/** iohgatp.MODE Bare: no second stage. */
export const IOHGATP_BARE = 0;
/** iohgatp.MODE Sv39x4. */
export const IOHGATP_SV39X4 = 8;
/** iohgatp.MODE Sv48x4. */
export const IOHGATP_SV48X4 = 9;
/** iohgatp.MODE Sv57x4. */
export const IOHGATP_SV57X4 = 10;
/** pdtp.MODE Bare: no process directory. */
export const PDTP_BARE = 0;
/** pdtp.MODE PD8: one level, 8-bit process_id. */
export const PDTP_PD8 = 1;
/** pdtp.MODE PD17: two levels, 17-bit process_id. */
export const PDTP_PD17 = 2;
/** pdtp.MODE PD20: three levels, 20-bit process_id. */
export const PDTP_PD20 = 3;
/** msiptp.MODE Off: no MSI translation. */
export const MSIPTP_OFF = 0;
/** msiptp.MODE Flat: a flat MSI page table. */
export const MSIPTP_FLAT = 1;

/** DC `tc` decoded. */
export type TcFields = Readonly<Record<(typeof TC_FIELDS)[number]['name'], number>>;
/** The shape iosatp, pdtp, msiptp (and iohgatp without GSCID) share: a root page number and a MODE. */
export interface Atp {
  /** The root table's page number (bits 43:0). */
  readonly PPN: number;
  /** The mode encoding (bits 63:60). */
  readonly MODE: number;
}

/** A device context, field by field. */
export interface DeviceContext {
  /** dw0 translation control: V, EN_ATS, EN_PRI, T2GPA, DTF, PDTV, PRPR, GADE, SADE, DPE, SBE, SXL. */
  readonly tc: TcFields;
  /** dw1: the second-stage root page and mode (Bare, Sv39x4, Sv48x4, Sv57x4) and the guest soft-context ID. */
  readonly iohgatp: Atp & {
    /** The guest soft-context ID (bits 59:44) that tags the second stage's cached entries and IOTINVAL.GVMA targets. */
    readonly GSCID: number;
  };
  /** dw2 `ta` bits 31:12: the process soft-context ID that tags first-stage entries when PDTV = 0. */
  readonly PSCID: number;
  /** iosatp (PDTV = 0) or pdtp (PDTV = 1). */
  readonly fsc: Atp;
  /** Extended format only. */
  readonly msiptp?: Atp;
  /** Extended format only: the page-number bits (51:0) left out of the `msi_addr_pattern` match; they select the interrupt file. */
  readonly msi_addr_mask?: bigint;
  /** Extended format only: the GPA page number (51:0) that, outside the masked bits, marks an access to a virtual interrupt file. */
  readonly msi_addr_pattern?: bigint;
}

/** A process context, field by field. */
export interface ProcessContext {
  /** `ta` bit 0: the context is valid; 0 makes a request with this process_id fault (cause 266). */
  readonly V: number;
  /** `ta` bit 1: Enable Supervisor requests; with 0 a request with Priv = 1 faults (cause 260). */
  readonly ENS: number;
  /** `ta` bit 2: supervisor requests may read and write U = 1 pages (never execute them). */
  readonly SUM: number;
  /** `ta` bits 31:12: the process soft-context ID tagging this address space's cached entries. */
  readonly PSCID: number;
  /** The process's first-stage `iosatp`: root page and mode (Bare, Sv39, Sv48, Sv57). */
  readonly fsc: Atp;
}

/** The DC's size: 64 bytes (extended) when capabilities.MSI_FLAT, else 32 bytes. */
export function dcSize(caps: Pick<CapFields, 'MSI_FLAT'>): 32 | 64 {
  return caps.MSI_FLAT ? 64 : 32;
}

/** The DC's doublewords (4 for the base format, 8 for the extended one). */
export function encodeDeviceContext(dc: DeviceContext, extended: boolean): bigint[] {
  const out = [encodeBitFields(TC_FIELDS, dc.tc), encodeBitFields(IOHGATP_FIELDS, dc.iohgatp), encodeBitFields(DC_TA_FIELDS, { PSCID: dc.PSCID }), encodeBitFields(ATP_FIELDS, dc.fsc)];
  if (extended) {
    out.push(encodeBitFields(ATP_FIELDS, dc.msiptp ?? { PPN: 0, MODE: 0 }), encodeBitFields(MSI_ADDR_FIELDS, { ADDR: dc.msi_addr_mask ?? 0n }), encodeBitFields(MSI_ADDR_FIELDS, { ADDR: dc.msi_addr_pattern ?? 0n }), 0n);
  }
  return out;
}

/** A device context from its doublewords (4: base format, 8: extended), without checks. */
export function decodeDeviceContext(dw: readonly bigint[]): DeviceContext {
  const base: DeviceContext = {
    tc: decodeBitFields(TC_FIELDS, dw[0]),
    iohgatp: decodeBitFields(IOHGATP_FIELDS, dw[1]),
    PSCID: decodeBitFields(DC_TA_FIELDS, dw[2]).PSCID,
    fsc: decodeBitFields(ATP_FIELDS, dw[3]),
  };
  if (dw.length < 8) return base;
  return { ...base, msiptp: decodeBitFields(ATP_FIELDS, dw[4]), msi_addr_mask: dw[5] & ((1n << 52n) - 1n), msi_addr_pattern: dw[6] & ((1n << 52n) - 1n) };
}

/** A process context as its two doublewords (ta, fsc). */
export function encodeProcessContext(pc: ProcessContext): [bigint, bigint] {
  return [encodeBitFields(PC_TA_FIELDS, pc), encodeBitFields(ATP_FIELDS, pc.fsc)];
}

/** A process context from its ta and fsc doublewords, without checks. */
export function decodeProcessContext(ta: bigint, fsc: bigint): ProcessContext {
  return { ...decodeBitFields(PC_TA_FIELDS, ta), fsc: decodeBitFields(ATP_FIELDS, fsc) };
}

/** A non-leaf DDT or PDT entry pointing to the page `ppn`. */
export function encodeDirEntry(ppn: number): bigint {
  return encodeBitFields(DIR_ENTRY_FIELDS, { V: 1, PPN: ppn });
}

const TC_RESERVED = uncoveredMask(TC_FIELDS);
const IOHGATP_RESERVED = uncoveredMask(IOHGATP_FIELDS);
const TA_RESERVED = uncoveredMask(DC_TA_FIELDS);
const ATP_RESERVED = uncoveredMask(ATP_FIELDS);
const MSI_ADDR_RESERVED = uncoveredMask(MSI_ADDR_FIELDS);
const PC_TA_RESERVED = uncoveredMask(PC_TA_FIELDS);

/**
 * The device-context checks of the specification ("DC misconfiguration", cause 259), in its order; the
 * first that fails is the error. `fctl` decides the SXL / SBE / iohgatp rules; a valid DC passes.
 */
export function checkDeviceContext(dw: readonly bigint[], caps: CapFields, fctl: FctlFields): Result<DeviceContext, string> {
  const extended = caps.MSI_FLAT === 1;
  if (dw.length !== (extended ? 8 : 4)) return err(`a ${extended ? 'extended (64-byte)' : 'base (32-byte)'} device context has ${extended ? 8 : 4} doublewords, got ${dw.length}`);
  const reserved = [dw[0] & TC_RESERVED, dw[1] & IOHGATP_RESERVED, dw[2] & TA_RESERVED, dw[3] & ATP_RESERVED, ...(extended ? [dw[4] & ATP_RESERVED, dw[5] & MSI_ADDR_RESERVED, dw[6] & MSI_ADDR_RESERVED, dw[7]] : [])];
  const names = ['tc', 'iohgatp', 'ta', 'fsc', 'msiptp', 'msi_addr_mask', 'msi_addr_pattern', 'reserved dw7'];
  for (let i = 0; i < reserved.length; i++) if (reserved[i] !== 0n) return err(`${names[i]}: reserved bits set (0x${reserved[i].toString(16)})`);
  const dc = decodeDeviceContext(dw);
  const tc = dc.tc;
  if (!caps.ATS && (tc.EN_ATS || tc.EN_PRI || tc.PRPR)) return err('tc.EN_ATS / EN_PRI / PRPR set but capabilities.ATS is clear');
  if (!tc.EN_ATS && tc.T2GPA) return err('tc.T2GPA set without EN_ATS');
  if (!tc.EN_ATS && tc.EN_PRI) return err('tc.EN_PRI set without EN_ATS');
  if (!tc.EN_PRI && tc.PRPR) return err('tc.PRPR set without EN_PRI');
  if (!caps.T2GPA && tc.T2GPA) return err('tc.T2GPA set but capabilities.T2GPA is clear');
  if (tc.T2GPA && dc.iohgatp.MODE === IOHGATP_BARE) return err('tc.T2GPA set with iohgatp.MODE Bare');
  if (tc.PDTV) {
    const m = dc.fsc.MODE;
    const supported = m === PDTP_BARE || (m === PDTP_PD8 && caps.PD8) || (m === PDTP_PD17 && caps.PD17) || (m === PDTP_PD20 && caps.PD20);
    if (!supported) return err(`pdtp.MODE ${m}: ${m > 3 ? 'a reserved encoding' : 'not supported by capabilities'}`);
  } else {
    const m = dc.fsc.MODE;
    const valid = tc.SXL ? m === IOSATP_BARE || m === 8 : m === IOSATP_BARE || m === IOSATP_SV39 || m === IOSATP_SV48 || m === IOSATP_SV57 || m >= 14;
    if (!valid) return err(`iosatp.MODE ${m}: a reserved encoding (SXL=${tc.SXL})`);
    const supported = m === IOSATP_BARE || (tc.SXL ? caps.Sv32 : (m === IOSATP_SV39 && caps.Sv39) || (m === IOSATP_SV48 && caps.Sv48) || (m === IOSATP_SV57 && caps.Sv57));
    if (!supported) return err(`iosatp.MODE ${m}: not supported by capabilities`);
    if (tc.DPE) return err('tc.DPE set with PDTV = 0');
  }
  const g = dc.iohgatp.MODE;
  const gValid = fctl.GXL ? g === IOHGATP_BARE || g === 8 : g === IOHGATP_BARE || g === IOHGATP_SV39X4 || g === IOHGATP_SV48X4 || g === IOHGATP_SV57X4;
  if (!gValid) return err(`iohgatp.MODE ${g}: a reserved encoding (GXL=${fctl.GXL})`);
  const gSupported = g === IOHGATP_BARE || (fctl.GXL ? caps.Sv32x4 : (g === IOHGATP_SV39X4 && caps.Sv39x4) || (g === IOHGATP_SV48X4 && caps.Sv48x4) || (g === IOHGATP_SV57X4 && caps.Sv57x4));
  if (!gSupported) return err(`iohgatp.MODE ${g}: not supported by capabilities`);
  if (extended && dc.msiptp && dc.msiptp.MODE !== MSIPTP_OFF && dc.msiptp.MODE !== MSIPTP_FLAT) return err(`msiptp.MODE ${dc.msiptp.MODE}: neither Off nor Flat`);
  if (g !== IOHGATP_BARE && dc.iohgatp.PPN % 4 !== 0) return err('iohgatp.PPN: the second-stage root must be 16 KiB aligned');
  if (!caps.AMO_HWAD && (tc.SADE || tc.GADE)) return err('tc.SADE / GADE set but capabilities.AMO_HWAD is clear');
  if (!caps.END && fctl.BE !== tc.SBE) return err('tc.SBE differs from fctl.BE but capabilities.END is clear');
  if (fctl.GXL && !tc.SXL) return err('tc.SXL must be 1 when fctl.GXL is 1');
  return ok(dc);
}

/** The PC checks ("PDT entry misconfigured", cause 267): reserved bits, the iosatp mode encoding and support. */
export function checkProcessContext(ta: bigint, fsc: bigint, caps: CapFields, sxl: number): Result<ProcessContext, string> {
  if (ta & PC_TA_RESERVED) return err(`ta: reserved bits set (0x${(ta & PC_TA_RESERVED).toString(16)})`);
  if (fsc & ATP_RESERVED) return err(`fsc: reserved bits set (0x${(fsc & ATP_RESERVED).toString(16)})`);
  const pc = decodeProcessContext(ta, fsc);
  const m = pc.fsc.MODE;
  const supported = m === IOSATP_BARE || (sxl ? m === 8 && caps.Sv32 : (m === IOSATP_SV39 && caps.Sv39) || (m === IOSATP_SV48 && caps.Sv48) || (m === IOSATP_SV57 && caps.Sv57));
  if (!supported) return err(`fsc.MODE ${m}: a reserved encoding or a mode capabilities lacks`);
  return ok(pc);
}

/** The index of `deviceId` at each DDT level, leaf first (DDI[0..2]): the extended format has one bit less at the leaf. */
export function ddi(deviceId: number, extended: boolean): [number, number, number] {
  return extended ? [deviceId & 0x3f, (deviceId >>> 6) & 0x1ff, (deviceId >>> 15) & 0x1ff] : [deviceId & 0x7f, (deviceId >>> 7) & 0x1ff, (deviceId >>> 16) & 0xff];
}

/** The widest device_id a DDT mode (2 1LVL, 3 2LVL, 4 3LVL) can index. */
export function deviceIdBits(ddtMode: number, extended: boolean): number {
  const levels = ddtMode - 1;
  if (levels < 1 || levels > 3) return 0;
  return levels === 3 ? 24 : (extended ? 6 : 7) + 9 * (levels - 1);
}

/** The index of `processId` at each PDT level, leaf first (PDI[0..2]). */
export function pdi(processId: number): [number, number, number] {
  return [processId & 0xff, (processId >>> 8) & 0x1ff, (processId >>> 17) & 0x7];
}

/**
 * What Linux writes into a device's context when it attaches a paging domain
 * (riscv_iommu_attach_paging_domain → riscv_iommu_iodir_update): tc.V with the first stage in fsc
 * (iosatp = mode | root PPN), the domain's PSCID in ta; no second stage, no PDT, no MSI translation.
 */
export function linuxPagingContext(mode: number, rootPpn: number, pscid: number): DeviceContext {
  return {
    tc: { V: 1, EN_ATS: 0, EN_PRI: 0, T2GPA: 0, DTF: 0, PDTV: 0, PRPR: 0, GADE: 0, SADE: 0, DPE: 0, SBE: 0, SXL: 0, custom: 0 },
    iohgatp: { PPN: 0, GSCID: 0, MODE: IOHGATP_BARE },
    PSCID: pscid,
    fsc: { PPN: rootPpn, MODE: mode },
    msiptp: { PPN: 0, MODE: MSIPTP_OFF },
    msi_addr_mask: 0n,
    msi_addr_pattern: 0n,
  };
}

/** Whether the unit can raise MSIs (IGS MSI or BOTH): the PCI probe needs it. */
export function canMsi(caps: Pick<CapFields, 'IGS'>): boolean {
  return caps.IGS === 0 || caps.IGS === IGS_BOTH;
}
