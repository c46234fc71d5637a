/**
 * Intel VT-d identification registers: VER_REG (0x00), CAP_REG (0x08) and ECAP_REG (0x10).
 *
 * Decodes them into the specification's own field names, encodes them back (presets are built from
 * fields and round-trip tested), derives core's normalized capability vocabulary the way the Linux
 * intel-iommu driver reads the same bits, and builds the `iommu_hw_info_vtd` payload of
 * IOMMU_GET_HW_INFO.
 */
import type { NormalizedCaps, StageCaps } from '@ioasid/core/driver';
import { U64_MASK, decodeBitFieldsLossless, encodeBitFieldsLossless, err, ok, pageSizesFromLog2, uapi, bitLayout, type BitFieldName, type DecodedBitFields, type Result } from '@ioasid/core/driver';

export const U64_MAX = U64_MASK;

/** Parse a 64-bit hex value as written in profiles ("0x1c0000c40660462") or in dmesg ("1c0000c40660462"). */
export function parseHex64(text: string): Result<bigint> {
  const m = /^(?:0[xX])?([0-9a-fA-F]{1,16})$/.exec(text.trim());
  if (!m) return err(`"${text}" is not a 64-bit hexadecimal value`);
  return ok(BigInt(`0x${m[1]}`));
}

export function hex64(value: bigint): string {
  return `0x${BigInt.asUintN(64, value).toString(16)}`;
}

// ---------------------------------------------------------------------------------------------
// VER_REG
// ---------------------------------------------------------------------------------------------

/** VER_REG: MAX (major, bits 7:4) and MIN (minor, bits 3:0); bits 31:8 are reserved. */
export const VER_LAYOUT = bitLayout([
  { name: 'MIN', hi: 3, lo: 0 },
  { name: 'MAX', hi: 7, lo: 4 },
]);

/** Decoded VER_REG (offset 0x0): MAX and MIN, the architecture version the unit implements. */
export type VtdVer = DecodedBitFields<typeof VER_LAYOUT>;

/** Decode VER_REG into MAX and MIN (only the low 32 bits are read). */
export function decodeVer(ver: bigint | number): VtdVer {
  return decodeBitFieldsLossless(VER_LAYOUT, BigInt(ver) & 0xffffffffn);
}

/** Encode VER_REG from MAX and MIN (an absent field is 0); fails when a field does not fit or the value exceeds 32 bits. */
export function encodeVer(fields: Partial<VtdVer>): Result<bigint> {
  const r = encodeBitFieldsLossless(VER_LAYOUT, fields, 'VER');
  if (r.ok && r.value > 0xffffffffn) return err('VER_REG is a 32-bit register');
  return r;
}

/** "6.0", the way Intel names specification revisions. */
export function vtdVersionString(ver: bigint | number): string {
  const v = decodeVer(ver);
  return `${v.MAX}.${v.MIN}`;
}

// ---------------------------------------------------------------------------------------------
// CAP_REG
// ---------------------------------------------------------------------------------------------

/** CAP_REG fields, bit positions as in the VT-d specification (section 11.4.2) and Linux iommu.h. */
export const CAP_LAYOUT = bitLayout([
  { name: 'ND', hi: 2, lo: 0 },
  { name: 'AFL', hi: 3, lo: 3 },
  { name: 'RWBF', hi: 4, lo: 4 },
  { name: 'PLMR', hi: 5, lo: 5 },
  { name: 'PHMR', hi: 6, lo: 6 },
  { name: 'CM', hi: 7, lo: 7 },
  { name: 'SAGAW', hi: 12, lo: 8 },
  { name: 'MGAW', hi: 21, lo: 16 },
  { name: 'ZLR', hi: 22, lo: 22 },
  // Linux still reads bit 23 as cap_isoch(); current datasheets show it reserved.
  { name: 'ISOCH', hi: 23, lo: 23 },
  { name: 'FRO', hi: 33, lo: 24 },
  { name: 'SLLPS', hi: 37, lo: 34 },
  { name: 'PSI', hi: 39, lo: 39 },
  { name: 'NFR', hi: 47, lo: 40 },
  { name: 'MAMV', hi: 53, lo: 48 },
  { name: 'DWD', hi: 54, lo: 54 },
  { name: 'DRD', hi: 55, lo: 55 },
  { name: 'FL1GP', hi: 56, lo: 56 },
  { name: 'PI', hi: 59, lo: 59 },
  { name: 'FL5LP', hi: 60, lo: 60 },
  { name: 'ECMDS', hi: 61, lo: 61 },
  { name: 'ESIRTPS', hi: 62, lo: 62 },
  { name: 'ESRTPS', hi: 63, lo: 63 },
]);

/**
 * Decoded CAP_REG (offset 0x8): one number per field of `CAP_LAYOUT` (ND, SAGAW, MGAW, FRO, NFR, SLLPS, ...), plus
 * `reserved`.
 */
export type VtdCap = DecodedBitFields<typeof CAP_LAYOUT>;
/** The name of a CAP_REG field, as the VT-d specification spells it. */
export type VtdCapField = BitFieldName<typeof CAP_LAYOUT>;

/** Decode a 64-bit CAP_REG value into its fields; the bits no field names are kept in `reserved`. */
export function decodeCap(cap: bigint): VtdCap {
  return decodeBitFieldsLossless(CAP_LAYOUT, BigInt.asUintN(64, cap));
}

/**
 * Encode CAP_REG from its fields (an absent field is 0, as on hardware that does not implement it); fails when a field
 * does not fit its width or `reserved` overlaps a named field.
 */
export function encodeCap(fields: Partial<VtdCap>): Result<bigint> {
  return encodeBitFieldsLossless(CAP_LAYOUT, fields, 'CAP');
}

/** SAGAW bit → (levels, address width): bit 1 = 3-level/39-bit, bit 2 = 4-level/48-bit, bit 3 = 5-level/57-bit. */
const SAGAW_WIDTHS: ReadonlyArray<{ bit: number; levels: number; bits: number }> = [
  { bit: 1, levels: 3, bits: 39 },
  { bit: 2, levels: 4, bits: 48 },
  { bit: 3, levels: 5, bits: 57 },
];

/** cap_mgaw(): MGAW holds the width minus one. */
export function capMgaw(cap: VtdCap): number {
  return cap.MGAW + 1;
}

/** cap_ndoms(): 2^(4 + 2·ND) domain ids. */
export function capNumDomains(cap: VtdCap): number {
  return 2 ** (4 + 2 * cap.ND);
}

/** cap_fault_reg_offset(): FRO counts 16-byte units from the register base. */
export function capFaultRegOffset(cap: VtdCap): number {
  return cap.FRO * 16;
}

/** cap_num_fault_regs(): NFR holds the count minus one. */
export function capNumFaultRegs(cap: VtdCap): number {
  return cap.NFR + 1;
}

/** Second-stage page-table address widths the SAGAW bitmap advertises (39/48/57), before MGAW limits them. */
export function sagawWidths(cap: VtdCap): number[] {
  return SAGAW_WIDTHS.filter((w) => (cap.SAGAW >> w.bit) & 1).map((w) => w.bits);
}

/** Second-stage page-table depths the SAGAW bitmap advertises (3/4/5). */
export function sagawLevels(cap: VtdCap): number[] {
  return SAGAW_WIDTHS.filter((w) => (cap.SAGAW >> w.bit) & 1).map((w) => w.levels);
}

// ---------------------------------------------------------------------------------------------
// ECAP_REG
// ---------------------------------------------------------------------------------------------

/**
 * ECAP_REG fields (specification section 11.4.3). Bits the current specification deprecated are
 * still named because older parts (Skylake-era clients) set them: CH (5), ECS (24), DIS (27), the
 * extended-context PASID bit 28 (Linux: ecap_broken_pasid, named ECS_PASID here so it cannot be
 * confused with the scalable-mode PASID bit 40) and POT (32).
 */
export const ECAP_LAYOUT = bitLayout([
  { name: 'C', hi: 0, lo: 0 },
  { name: 'QI', hi: 1, lo: 1 },
  { name: 'DT', hi: 2, lo: 2 },
  { name: 'IR', hi: 3, lo: 3 },
  { name: 'EIM', hi: 4, lo: 4 },
  { name: 'CH', hi: 5, lo: 5 },
  { name: 'PT', hi: 6, lo: 6 },
  { name: 'SC', hi: 7, lo: 7 },
  { name: 'IRO', hi: 17, lo: 8 },
  { name: 'MHMV', hi: 23, lo: 20 },
  { name: 'ECS', hi: 24, lo: 24 },
  { name: 'MTS', hi: 25, lo: 25 },
  { name: 'NEST', hi: 26, lo: 26 },
  { name: 'DIS', hi: 27, lo: 27 },
  { name: 'ECS_PASID', hi: 28, lo: 28 },
  { name: 'PRS', hi: 29, lo: 29 },
  { name: 'ERS', hi: 30, lo: 30 },
  { name: 'SRS', hi: 31, lo: 31 },
  { name: 'POT', hi: 32, lo: 32 },
  { name: 'NWFS', hi: 33, lo: 33 },
  { name: 'EAFS', hi: 34, lo: 34 },
  { name: 'PSS', hi: 39, lo: 35 },
  { name: 'PASID', hi: 40, lo: 40 },
  { name: 'DIT', hi: 41, lo: 41 },
  { name: 'PDS', hi: 42, lo: 42 },
  { name: 'SMTS', hi: 43, lo: 43 },
  { name: 'VCS', hi: 44, lo: 44 },
  { name: 'SLADS', hi: 45, lo: 45 },
  { name: 'SLTS', hi: 46, lo: 46 },
  { name: 'FLTS', hi: 47, lo: 47 },
  { name: 'SMPWCS', hi: 48, lo: 48 },
  { name: 'RPS', hi: 49, lo: 49 },
  { name: 'TDXIO', hi: 50, lo: 50 },
  { name: 'PMS', hi: 51, lo: 51 },
  { name: 'ADMS', hi: 52, lo: 52 },
  { name: 'RPRIVS', hi: 53, lo: 53 },
]);

/**
 * Decoded ECAP_REG (offset 0x10): one number per field of `ECAP_LAYOUT` (QI, IR, PT, SMTS, PASID, PSS, NEST, FLTS,
 * SLTS, ...), plus `reserved`.
 */
export type VtdEcap = DecodedBitFields<typeof ECAP_LAYOUT>;
/** The name of an ECAP_REG field, as the VT-d specification spells it. */
export type VtdEcapField = BitFieldName<typeof ECAP_LAYOUT>;

/** Decode a 64-bit ECAP_REG value into its fields; the bits no field names are kept in `reserved`. */
export function decodeEcap(ecap: bigint): VtdEcap {
  return decodeBitFieldsLossless(ECAP_LAYOUT, BigInt.asUintN(64, ecap));
}

/**
 * Encode ECAP_REG from its fields (an absent field is 0, as on hardware that does not implement it); fails when a field
 * does not fit its width or `reserved` overlaps a named field.
 */
export function encodeEcap(fields: Partial<VtdEcap>): Result<bigint> {
  return encodeBitFieldsLossless(ECAP_LAYOUT, fields, 'ECAP');
}

/** ecap_iotlb_offset(): IRO counts 16-byte units from the register base. */
export function ecapIotlbOffset(ecap: VtdEcap): number {
  return ecap.IRO * 16;
}

/** PASID width in bits: PSS holds the width minus one (max_pasids = 2 << PSS). */
export function ecapPasidBits(ecap: VtdEcap): number {
  return ecap.PSS + 1;
}

// ---------------------------------------------------------------------------------------------
// What the Linux driver derives (iommu.h predicates), and core's normalized vocabulary.
// ---------------------------------------------------------------------------------------------

/** sm_supported(): scalable mode is used when the hardware has SMTS (intel_iommu=sm_on is the default). */
export function smSupported(ecap: VtdEcap): boolean {
  return ecap.SMTS === 1;
}

/** pasid_supported() = sm_supported && ecap_pasid. */
export function pasidSupported(ecap: VtdEcap): boolean {
  return smSupported(ecap) && ecap.PASID === 1;
}

/** nested_supported() = sm_supported && ecap_nest. */
export function nestedSupported(ecap: VtdEcap): boolean {
  return smSupported(ecap) && ecap.NEST === 1;
}

/** ssads_supported() = sm_supported && ecap_slads && ecap_smpwc: the condition for IOMMU_CAP_DIRTY_TRACKING. */
export function ssadsSupported(ecap: VtdEcap): boolean {
  return smSupported(ecap) && ecap.SLADS === 1 && ecap.SMPWCS === 1;
}

/** Second stage exists in legacy mode always; in scalable mode only when SLTS says so (PGTT=010b). */
function secondStageAvailable(cap: VtdCap, ecap: VtdEcap): boolean {
  if (cap.SAGAW === 0) return false;
  return !smSupported(ecap) || ecap.SLTS === 1;
}

/** First stage (x86-64 format through the PASID entry, PGTT=001b) exists only in scalable mode. */
function firstStageAvailable(ecap: VtdEcap): boolean {
  return smSupported(ecap) && ecap.FLTS === 1;
}

/** Options for deriving a unit's normalized capabilities from CAP_REG/ECAP_REG. */
export interface VtdCapsOptions {
  /**
   * "Host address width" from the ACPI DMAR table (the `DMAR: Host address width 46` line). VT-d has
   * no register for the output (host physical) width: MGAW bounds the input, HAW the output. When it
   * is not known, MGAW is used, which is what emulators such as QEMU (aw-bits) report for both.
   */
  readonly hostAddressWidth?: number;
}

function secondStageCaps(cap: VtdCap, ecap: VtdEcap, opts: VtdCapsOptions): StageCaps | null {
  if (!secondStageAvailable(cap, ecap)) return null;
  const mgaw = capMgaw(cap);
  // The kernel sizes a domain with the deepest SAGAW table but limits its IOVA space to MGAW
  // (a client with MGAW 39 and only 4-level SAGAW translates 39-bit IOVAs with a 4-level table).
  const inputBits = [...new Set(sagawWidths(cap).map((w) => Math.min(w, mgaw)))].sort((a, b) => a - b);
  // Only SLLPS bits 0 (2M) and 1 (1G) are used by Linux; 512G/1T (bits 2, 3) were never implemented.
  const sizes = [12];
  if (cap.SLLPS & 0x1) sizes.push(21);
  if (cap.SLLPS & 0x2) sizes.push(30);
  return {
    inputBits,
    outputBits: opts.hostAddressWidth ?? mgaw,
    pageSizes: pageSizesFromLog2(...sizes),
    accessDirty: smSupported(ecap) && ecap.SLADS === 1,
  };
}

function firstStageCaps(cap: VtdCap, ecap: VtdEcap): StageCaps | null {
  if (!firstStageAvailable(ecap)) return null;
  const sizes = [12, 21];
  if (cap.FL1GP) sizes.push(30);
  return {
    inputBits: cap.FL5LP ? [48, 57] : [48],
    // The first stage outputs guest-physical addresses that the second stage (bounded by MGAW) takes as input.
    outputBits: capMgaw(cap),
    pageSizes: pageSizesFromLog2(...sizes),
    // The x86-64 format has A/D bits that the IOMMU always maintains on a first-stage walk.
    accessDirty: true,
  };
}

function vtdFeatures(cap: VtdCap, ecap: VtdEcap): string[] {
  const f: string[] = [];
  const add = (cond: unknown, name: string) => {
    if (cond) f.push(name);
  };
  add(smSupported(ecap), 'scalable-mode');
  add(ecap.QI, 'queued-invalidation');
  add(ecap.C, 'page-walk-coherent');
  add(ecap.SMPWCS, 'sm-page-walk-coherent');
  add(ecap.PT, 'pass-through');
  add(ecap.SC, 'snoop-control');
  add(ecap.EIM, 'x2apic-eim');
  add(cap.PI, 'posted-interrupts');
  add(ecap.SRS, 'supervisor-requests');
  add(ecap.ERS, 'execute-requests');
  add(ecap.EAFS, 'extended-accessed-flag');
  add(ecap.RPS, 'rid-pasid');
  add(ecap.PDS, 'prq-drain');
  add(ecap.DIT, 'devtlb-throttle');
  add(ecap.NWFS, 'no-write-flag');
  add(ecap.MTS, 'memory-types');
  add(ecap.PMS, 'perfmon');
  add(cap.ECMDS, 'ecmds');
  add(cap.ESRTPS, 'esrtps');
  add(cap.ESIRTPS, 'esirtps');
  add(cap.RWBF, 'rwbf');
  add(cap.DWD || cap.DRD, 'dma-draining');
  add(ecap.VCS, 'virtual-command');
  add(ecap.ECS, 'extended-context');
  return f;
}

/** Accept raw values or already decoded registers. */
function asCap(cap: bigint | VtdCap): VtdCap {
  return typeof cap === 'bigint' ? decodeCap(cap) : cap;
}

function asEcap(ecap: bigint | VtdEcap): VtdEcap {
  return typeof ecap === 'bigint' ? decodeEcap(ecap) : ecap;
}

/** Core's normalized capabilities of one DMAR unit. */
export function vtdNormalizedCaps(
  ver: bigint | number,
  capValue: bigint | VtdCap,
  ecapValue: bigint | VtdEcap,
  opts: VtdCapsOptions = {},
): NormalizedCaps {
  const cap = asCap(capValue);
  const ecap = asEcap(ecapValue);
  return {
    vendor: 'vtd',
    version: vtdVersionString(ver),
    hostStage: secondStageCaps(cap, ecap, opts),
    userStage: firstStageCaps(cap, ecap),
    pasidBits: pasidSupported(ecap) ? ecapPasidBits(ecap) : 0,
    // intel_iommu_probe_device() sets pri_supported only inside its sm_supported() branch.
    pri: smSupported(ecap) && ecap.PRS === 1,
    stall: false,
    ats: ecap.DT === 1,
    nesting: nestedSupported(ecap),
    dirtyTracking: ssadsSupported(ecap),
    // IOMMU_CAP_CACHE_COHERENCY is unconditionally true on VT-d; what varies per unit is whether a
    // domain can *force* snooping (IOMMU_CAP_ENFORCE_CACHE_COHERENCY), which intel_iommu_capable()
    // answers with ecap_sc_support(). ECAP.C is different: it only says page walks snoop, i.e. the
    // driver need not clflush its own table updates (reported as the 'page-walk-coherent' feature).
    coherent: ecap.SC === 1,
    cachingMode: cap.CM === 1,
    rangeInvalidation: cap.PSI === 1,
    interruptRemapping: ecap.IR === 1,
    features: vtdFeatures(cap, ecap),
  };
}

function formatPageList(bitmap: bigint): string {
  const names: string[] = [];
  if (bitmap & (1n << 12n)) names.push('4K');
  if (bitmap & (1n << 21n)) names.push('2M');
  if (bitmap & (1n << 30n)) names.push('1G');
  return names.join('/');
}

/**
 * Rolled-up HW ID, e.g. "Intel VT-d 6.0, scalable mode, SS 48/57-bit 4K/2M/1G, FS 5-level, PASID 20-bit,
 * PRS, nesting": the one-line summary a VMM would compare to pick a vIOMMU model.
 */
export function vtdHwId(ver: bigint | number, capValue: bigint | VtdCap, ecapValue: bigint | VtdEcap): string {
  const cap = asCap(capValue);
  const ecap = asEcap(ecapValue);
  const caps = vtdNormalizedCaps(ver, cap, ecap);
  const parts = [`Intel VT-d ${caps.version}`, smSupported(ecap) ? 'scalable mode' : 'legacy mode'];
  if (caps.hostStage) {
    parts.push(`SS ${caps.hostStage.inputBits.join('/')}-bit ${formatPageList(caps.hostStage.pageSizes)}`);
  }
  if (caps.userStage) parts.push(`FS ${cap.FL5LP ? '5-level' : '4-level'}${cap.FL1GP ? ' 1G' : ''}`);
  if (caps.pasidBits) parts.push(`PASID ${caps.pasidBits}-bit`);
  if (caps.pri) parts.push('PRS');
  if (caps.ats) parts.push('ATS');
  if (caps.nesting) parts.push('nesting');
  if (caps.dirtyTracking) parts.push('dirty tracking');
  if (caps.cachingMode) parts.push('caching mode');
  if (caps.interruptRemapping) parts.push(ecap.EIM ? 'IR x2APIC' : 'IR');
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// struct iommu_hw_info_vtd (IOMMU_HW_INFO_TYPE_INTEL_VTD)
// ---------------------------------------------------------------------------------------------

/** struct iommu_hw_info_vtd, decoded. */
export type IommuHwInfoVtd = uapi.ValueOfLayout<typeof uapi.iommu_hw_info_vtd>;

/**
 * Whether intel_iommu_hw_info() reports ERRATA_772415_SPR17. The kernel does not probe the CPU
 * model: it sets the flag for every VT-d unit (and intel-iommu refuses read-only mappings on every
 * nest parent), because the erratum cannot be detected from the registers. The parameters are kept
 * so that a future kernel that narrows the condition only changes this function.
 */
export function vtdErrata772415Applies(_cap?: bigint, _ecap?: bigint): boolean {
  return true;
}

/** The `flags` word intel_iommu_hw_info() reports for a unit. */
export function vtdHwInfoFlags(cap?: bigint, ecap?: bigint): number {
  return vtdErrata772415Applies(cap, ecap) ? uapi.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 : 0;
}

/** The IOMMU_GET_HW_INFO payload: struct iommu_hw_info_vtd (__reserved 0). */
export function encodeHwInfoVtd(info: { flags: number; cap: bigint; ecap: bigint }): Uint8Array {
  return uapi.iommu_hw_info_vtd.encode(uapi.iommu_hw_info_vtd.make({ flags: info.flags, cap_reg: info.cap, ecap_reg: info.ecap }));
}

/**
 * Decode the IOMMU_GET_HW_INFO payload of a VT-d unit (struct iommu_hw_info_vtd: flags, cap_reg, ecap_reg); fails
 * unless exactly its size.
 */
export function decodeHwInfoVtd(bytes: Uint8Array): Result<IommuHwInfoVtd> {
  const size = uapi.iommu_hw_info_vtd.size;
  if (bytes.byteLength !== size) return err(`iommu_hw_info_vtd is ${size} bytes, got ${bytes.byteLength}`);
  return ok(uapi.iommu_hw_info_vtd.decode(bytes));
}
