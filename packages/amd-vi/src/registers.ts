/**
 * AMD-Vi identification registers: the Extended Feature Register (EFR, MMIO 0x30) and EFR2 (MMIO
 * 0x1A0). Every field is named as in the AMD I/O Virtualization Technology (IOMMU) specification
 * (pub. 48882); what the Linux amd_iommu driver derives from them (init.c iommu_init_features(),
 * amd_iommu.h check_feature()) is mirrored by the predicates below, and feeds core's normalized
 * capabilities, the rolled-up HW ID and `struct iommu_hw_info_amd` (IOMMU_HW_INFO_TYPE_AMD).
 */
import type { NormalizedCaps, StageCaps } from '@ioasid/core/driver';
import { readLe64, writeLe64, pageSizesFromLog2 } from '@ioasid/core/driver';
import { decodeBitFieldsLossless, encodeBitFieldsLossless, err, ok, genmask, bitLayout, type BitFieldName, type DecodedBitFields, type Result } from '@ioasid/core/driver';

/**
 * EFR fields. Bits 27:26 and 30 are reserved. Bits 47, 53 and 56-62 were renamed between
 * specification revisions; the newer names are used (47 SnoopAttrSup, 53 V2HDDisSup, 55 ViommuSup,
 * 56 VmGuardIOSup, 60:57 VmTableSize, 61 GAUpdateDisSup, 62 ForcePhyDestSup).
 */
export const EFR_LAYOUT = bitLayout([
  { name: 'PreFSup', hi: 0, lo: 0 },
  { name: 'PPRSup', hi: 1, lo: 1 },
  { name: 'XTSup', hi: 2, lo: 2 },
  { name: 'NXSup', hi: 3, lo: 3 },
  { name: 'GTSup', hi: 4, lo: 4 },
  { name: 'GAPPISup', hi: 5, lo: 5 },
  { name: 'IASup', hi: 6, lo: 6 },
  { name: 'GASup', hi: 7, lo: 7 },
  { name: 'HESup', hi: 8, lo: 8 },
  { name: 'PCSup', hi: 9, lo: 9 },
  { name: 'HATS', hi: 11, lo: 10 },
  { name: 'GATS', hi: 13, lo: 12 },
  { name: 'GLXSup', hi: 15, lo: 14 },
  { name: 'SmiFSup', hi: 17, lo: 16 },
  { name: 'SmiFRC', hi: 20, lo: 18 },
  { name: 'GAMSup', hi: 23, lo: 21 },
  { name: 'DualPprLogSup', hi: 25, lo: 24 },
  { name: 'DualEventLogSup', hi: 29, lo: 28 },
  { name: 'SATSSup', hi: 31, lo: 31 },
  { name: 'PASmax', hi: 36, lo: 32 },
  { name: 'USSup', hi: 37, lo: 37 },
  { name: 'DevTblSegSup', hi: 39, lo: 38 },
  { name: 'PPREarlySup', hi: 40, lo: 40 },
  { name: 'PPRAutoRspSup', hi: 41, lo: 41 },
  { name: 'MarcSup', hi: 43, lo: 42 },
  { name: 'BlkStopMrkSup', hi: 44, lo: 44 },
  { name: 'PerfOptSup', hi: 45, lo: 45 },
  { name: 'MsiCapMmioSup', hi: 46, lo: 46 },
  { name: 'SnoopAttrSup', hi: 47, lo: 47 },
  { name: 'GIoSup', hi: 48, lo: 48 },
  { name: 'HASup', hi: 49, lo: 49 },
  { name: 'EPHSup', hi: 50, lo: 50 },
  { name: 'AttrFWSup', hi: 51, lo: 51 },
  { name: 'HDSup', hi: 52, lo: 52 },
  { name: 'V2HDDisSup', hi: 53, lo: 53 },
  { name: 'InvIotlbTypeSup', hi: 54, lo: 54 },
  { name: 'ViommuSup', hi: 55, lo: 55 },
  { name: 'VmGuardIOSup', hi: 56, lo: 56 },
  { name: 'VmTableSize', hi: 60, lo: 57 },
  { name: 'GAUpdateDisSup', hi: 61, lo: 61 },
  { name: 'ForcePhyDestSup', hi: 62, lo: 62 },
  { name: 'SNPSup', hi: 63, lo: 63 },
]);

/**
 * EFR2 fields Linux knows (amd_iommu_types.h FEATURE_*): SEV-TIO (1), GCR3 table root pointer mode
 * for nest parents (3), GAPPI disable (4), SNP AVIC modes (7:5), interrupt remapping table sizes
 * (9:8), HT range ignore (11). The other bits are kept in `reserved`.
 */
export const EFR2_LAYOUT = bitLayout([
  { name: 'SEVSNPIOSup', hi: 1, lo: 1 },
  { name: 'GCR3TRPModeSup', hi: 3, lo: 3 },
  { name: 'GAPPIDisSup', hi: 4, lo: 4 },
  { name: 'SNPAVICSup', hi: 7, lo: 5 },
  { name: 'NumIntRemapSup', hi: 9, lo: 8 },
  { name: 'HTRangeIgnoreSup', hi: 11, lo: 11 },
]);

/** The Extended Feature Register (MMIO 0x30) decoded: `PPRSup`, `GTSup`, `HATS`, `GATS`, `PASmax`, `HDSup`, ... */
export type AmdEfr = DecodedBitFields<typeof EFR_LAYOUT>;
/** The Extended Feature 2 Register (MMIO 0x1A0) decoded. */
export type AmdEfr2 = DecodedBitFields<typeof EFR2_LAYOUT>;
/** The specification name of an EFR field. */
export type AmdEfrField = BitFieldName<typeof EFR_LAYOUT>;
/** The specification name of an EFR2 field. */
export type AmdEfr2Field = BitFieldName<typeof EFR2_LAYOUT>;

/** Splits a 64-bit EFR value into its fields. */
export function decodeEfr(efr: bigint): AmdEfr {
  return decodeBitFieldsLossless(EFR_LAYOUT, efr);
}

/** Builds an EFR value from fields (absent ones 0); fails when a value does not fit its field. */
export function encodeEfr(fields: Partial<AmdEfr>): Result<bigint> {
  return encodeBitFieldsLossless(EFR_LAYOUT, fields, 'EFR');
}

/** Splits a 64-bit EFR2 value into its fields. */
export function decodeEfr2(efr2: bigint): AmdEfr2 {
  return decodeBitFieldsLossless(EFR2_LAYOUT, efr2);
}

/** Builds an EFR2 value from fields (absent ones 0); fails when a value does not fit its field. */
export function encodeEfr2(fields: Partial<AmdEfr2>): Result<bigint> {
  return encodeBitFieldsLossless(EFR2_LAYOUT, fields, 'EFR2');
}

// ---------------------------------------------------------------------------------------------
// What the Linux driver derives (init.c, amd_iommu.h)
// ---------------------------------------------------------------------------------------------

/** PAGE_MODE_4_LEVEL .. PAGE_MODE_6_LEVEL. */
export const PAGE_MODE_4_LEVEL = 4;
/** DTE Mode 5: a five-level v1 table (57-bit IOVA). */
export const PAGE_MODE_5_LEVEL = 5;
/** DTE Mode 6: a six-level v1 table (64-bit IOVA). */
export const PAGE_MODE_6_LEVEL = 6;

/**
 * The deepest v1 host table the unit walks: HATS + 4 (0 → 4, 1 → 5, 2 → 6 levels); HATS == 3 is
 * invalid and Linux disables host translation (amd_iommu_hatdis, FW_BUG "Disable host address
 * translation due to invalid translation level"), returned here as 0.
 */
export function hostLevels(efr: AmdEfr): number {
  return efr.HATS === 3 ? 0 : efr.HATS + PAGE_MODE_4_LEVEL;
}

/** The v2 (guest) table depth: GATS 0 → 4-level, 1 → 5-level (GUEST_PGTABLE_5_LEVEL); others reserved. */
export function guestLevels(efr: AmdEfr): number {
  return efr.GATS === 1 ? PAGE_MODE_5_LEVEL : PAGE_MODE_4_LEVEL;
}

/**
 * amd_iommu_gpt_level (init.c early_amd_iommu_init): the v2 depth the driver uses, 5 only when the unit
 * walks 5-level v2 tables (GATS 1) and the CPU runs 5-level paging; 4 otherwise.
 */
export function gptLevel(efr: AmdEfr, cpuFiveLevelPaging: boolean): number {
  return cpuFiveLevelPaging && guestLevels(efr) === PAGE_MODE_5_LEVEL ? PAGE_MODE_5_LEVEL : PAGE_MODE_4_LEVEL;
}

/** IOVA width of a v1 table with `levels` levels: 12 + 9 per level, 64 at most (the 6th level decodes bits 63:57). */
export function v1LevelsWidth(levels: number): number {
  return Math.min(64, 12 + 9 * levels);
}

/** PASID width: PASmax holds the width minus one (max_pasids = (1 << (PASmax + 1)) - 1); only with GT. */
export function pasidBits(efr: AmdEfr): number {
  return efr.GTSup ? efr.PASmax + 1 : 0;
}

/** amd_iommu_gt_ppr_supported(): IOPF / SVA need GT, PPR and enhanced PPR handling. */
export function gtPprSupported(efr: AmdEfr): boolean {
  return efr.GTSup === 1 && efr.PPRSup === 1 && efr.EPHSup === 1;
}

/** amd_iommu_v2_pgtbl_supported(): the v2 table for DMA needs GT and guest I/O protection. */
export function v2Supported(efr: AmdEfr): boolean {
  return efr.GTSup === 1 && efr.GIoSup === 1;
}

/** A nest parent (IOMMU_HWPT_ALLOC_NEST_PARENT) needs GT, GIoSup and EFR2 GCR3 TRP mode. */
export function nestParentSupported(efr: AmdEfr, efr2: AmdEfr2): boolean {
  return v2Supported(efr) && efr2.GCR3TRPModeSup === 1;
}

/** amd_iommu_hd_support(): dirty tracking needs HDSup and host translation. */
export function dirtyTrackingSupported(efr: AmdEfr): boolean {
  return efr.HDSup === 1 && hostLevels(efr) > 0;
}

/** The GLX values the unit accepts: GLXSup holds the largest (0: one level, 1: two levels of GCR3 table). */
export function maxGlx(efr: AmdEfr): number {
  return efr.GLXSup;
}

/**
 * Page sizes of the v1 format: AMD_IOMMU_PGSIZES = GENMASK_ULL(51, 12) ^ SZ_512G ("512GB Pages are
 * not supported due to a hardware bug"). Every power of two from 4K is encodable: the level's
 * default size with NextLevel 0, the sizes in between with NextLevel 7 and the size encoding.
 */
export const AMD_IOMMU_PGSIZES = genmask(51, 12) ^ (1n << 39n);
/** AMD_IOMMU_PGSIZES_V2: 4K, 2M, 1G. */
export const AMD_IOMMU_PGSIZES_V2 = pageSizesFromLog2(12, 21, 30);
/**
 * What the normalized capabilities report for the v1 stage: the format's sizes up to 4T. Larger
 * encodings exist (up to 2^51) but no planner or VMM compares them.
 */
const NORMALIZED_V1_SIZES = AMD_IOMMU_PGSIZES & genmask(42, 0);

// ---------------------------------------------------------------------------------------------
// The feature names Linux prints (init.c print_iommu_info())
// ---------------------------------------------------------------------------------------------

/** feat_str[]: EFR bits 0..9 in order; bit 5 has no name and prints as "[5]". */
export const LINUX_FEATURE_NAMES = ['PreF', 'PPR', 'X2APIC', 'NX', 'GT', '[5]', 'IA', 'GA', 'HE', 'PC'] as const;

/** The tokens after "Extended features (...):" for these registers, as a kernel of `era` prints them. */
export function linuxFeatureTokens(efr: bigint, efr2: bigint, era: 'v4' | 'v5' | 'v6' | 'newest' = 'newest'): string[] {
  const out: string[] = [];
  for (let i = 0; i < LINUX_FEATURE_NAMES.length; i++) if ((efr >> BigInt(i)) & 1n) out.push(LINUX_FEATURE_NAMES[i]);
  // FEATURE_GAM_VAPIC is BIT_ULL(21): GAMSup == 1 (and any odd value).
  if ((efr >> 21n) & 1n) out.push('GA_vAPIC');
  if (era === 'v6' || era === 'newest') {
    if ((efr >> 63n) & 1n) out.push('SNP');
  }
  if (era === 'newest' && (efr2 >> 1n) & 1n) out.push('SEV-TIO');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalized capabilities and the rolled-up HW ID
// ---------------------------------------------------------------------------------------------

function asEfr(v: bigint | AmdEfr): AmdEfr {
  return typeof v === 'bigint' ? decodeEfr(v) : v;
}

function asEfr2(v: bigint | AmdEfr2): AmdEfr2 {
  return typeof v === 'bigint' ? decodeEfr2(v) : v;
}

function hostStageCaps(efr: AmdEfr): StageCaps | null {
  const max = hostLevels(efr);
  if (max === 0) return null;
  // Linux starts a v1 domain at 3 levels and grows it up to the HATS limit.
  const inputBits: number[] = [];
  for (let l = 3; l <= max; l++) inputBits.push(v1LevelsWidth(l));
  return { inputBits, outputBits: 52, pageSizes: NORMALIZED_V1_SIZES, accessDirty: efr.HASup === 1 || efr.HDSup === 1 };
}

function userStageCaps(efr: AmdEfr): StageCaps | null {
  if (!efr.GTSup) return null;
  return {
    inputBits: efr.GATS === 1 ? [48, 57] : [48],
    outputBits: 52,
    pageSizes: AMD_IOMMU_PGSIZES_V2,
    // The v2 format is the x86-64 one: the IOMMU sets A and D unless GAUpdateDis is in use.
    accessDirty: true,
  };
}

function amdFeatures(efr: AmdEfr, efr2: AmdEfr2): string[] {
  const f: string[] = [];
  const add = (cond: unknown, name: string) => {
    if (cond) f.push(name);
  };
  add(efr.PreFSup, 'prefetch');
  add(efr.XTSup, 'x2apic');
  add(efr.NXSup, 'no-execute');
  add(efr.GTSup, 'guest-translation');
  add(efr.GIoSup, 'guest-io-protection');
  add(efr.IASup, 'invalidate-all');
  add(efr.GASup, 'guest-apic');
  add(efr.GAMSup & 1, 'ga-vapic');
  add(efr.HESup, 'hardware-errors');
  add(efr.PCSup, 'perf-counters');
  add(efr.USSup, 'user-supervisor');
  add(efr.EPHSup, 'enhanced-ppr');
  add(efr.HASup, 'host-access-bit');
  add(efr.HDSup, 'host-dirty-bit');
  add(efr.ViommuSup, 'hw-viommu');
  add(efr.SNPSup, 'sev-snp');
  add(efr2.SEVSNPIOSup, 'sev-tio');
  add(efr2.GCR3TRPModeSup, 'gcr3-trp-mode');
  return f;
}

/** Core's normalized capabilities of one AMD IOMMU. */
export function amdNormalizedCaps(efrValue: bigint | AmdEfr, efr2Value: bigint | AmdEfr2 = 0n): NormalizedCaps {
  const efr = asEfr(efrValue);
  const efr2 = asEfr2(efr2Value);
  return {
    vendor: 'amd-vi',
    // EFR-era parts implement the IOMMU v2 architecture (PPR, GT); parts without either are v1.
    version: efr.GTSup || efr.PPRSup ? '2' : '1',
    hostStage: hostStageCaps(efr),
    userStage: userStageCaps(efr),
    pasidBits: pasidBits(efr),
    pri: gtPprSupported(efr),
    stall: false,
    // Every AMD IOMMU translates ATS requests (IVHD IotlbSup); Linux enables ATS per device.
    ats: true,
    nesting: nestParentSupported(efr, efr2),
    dirtyTracking: dirtyTrackingSupported(efr),
    // amd_iommu_capable(IOMMU_CAP_CACHE_COHERENCY) is true; FC forces coherence per PTE.
    coherent: true,
    cachingMode: false,
    // INVALIDATE_IOMMU_PAGES takes a naturally aligned power-of-two range (S bit).
    rangeInvalidation: true,
    interruptRemapping: true,
    features: amdFeatures(efr, efr2),
  };
}

function sizeRange(bitmap: bigint): string {
  const l: number[] = [];
  for (let i = 12; i < 64; i++) if ((bitmap >> BigInt(i)) & 1n) l.push(i);
  const name = (n: number) => (n >= 40 ? `${2 ** (n - 40)}T` : n >= 30 ? `${2 ** (n - 30)}G` : n >= 20 ? `${2 ** (n - 20)}M` : `${2 ** (n - 10)}K`);
  if (l.length <= 3) return l.map(name).join('/');
  return `${name(l[0])}-${name(l[l.length - 1])}`;
}

/**
 * Rolled-up HW ID, e.g. "AMD-Vi IOMMU v2, v1 6-level 64-bit 4K-4T, v2 4-level, PASID 16-bit, PPR,
 * GA, x2APIC": the one line a VMM compares to pick a vIOMMU model.
 */
export function amdHwId(efrValue: bigint | AmdEfr, efr2Value: bigint | AmdEfr2 = 0n): string {
  const efr = asEfr(efrValue);
  const efr2 = asEfr2(efr2Value);
  const caps = amdNormalizedCaps(efr, efr2);
  const parts = [`AMD-Vi IOMMU v${caps.version}`];
  const hl = hostLevels(efr);
  parts.push(hl ? `v1 ${hl}-level ${v1LevelsWidth(hl)}-bit ${sizeRange(NORMALIZED_V1_SIZES)}` : 'no host translation (HATS 3)');
  if (caps.userStage) parts.push(`v2 ${guestLevels(efr)}-level${v2Supported(efr) ? '' : ' (PASID only, no GIoSup)'}`);
  if (caps.pasidBits) parts.push(`PASID ${caps.pasidBits}-bit`);
  if (efr.PPRSup) parts.push(caps.pri ? 'PPR' : 'PPR (no EPHSup: no IOPF)');
  if (caps.nesting) parts.push('nesting');
  if (caps.dirtyTracking) parts.push('dirty tracking');
  if (efr.GASup) parts.push(efr.GAMSup & 1 ? 'GA vAPIC' : 'GA');
  if (efr.XTSup) parts.push('x2APIC');
  if (efr.SNPSup) parts.push('SNP');
  if (efr2.SEVSNPIOSup) parts.push('SEV-TIO');
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// struct iommu_hw_info_amd (IOMMU_HW_INFO_TYPE_AMD)
// ---------------------------------------------------------------------------------------------

/** `enum iommu_hw_info_type` value IOMMU_GET_HW_INFO reports for an AMD IOMMU. */
export const IOMMU_HW_INFO_TYPE_AMD = 4;
/** Bytes of `struct iommu_hw_info_amd`. */
export const IOMMU_HW_INFO_AMD_SIZE = 16;

/** `struct iommu_hw_info_amd` (include/uapi/linux/iommufd.h), what IOMMU_GET_HW_INFO returns for an AMD IOMMU. */
export interface IommuHwInfoAmd {
  /** The raw EFR; a VMM should use only {@link HW_INFO_AMD_VMM_FIELDS}. */
  readonly efr: bigint;
  /** The raw EFR2. */
  readonly efr2: bigint;
}

/**
 * The EFR fields the uAPI documents as meaningful to a VMM (include/uapi/linux/iommufd.h): GTSup,
 * GASup, GIoSup, PPRSup, EPHSup, GATS, GLX (GLXSup), PASmax. amd_iommufd_hw_info() reports the raw
 * registers; a VMM building a vIOMMU must mask the others.
 */
export const HW_INFO_AMD_VMM_FIELDS = ['GTSup', 'GASup', 'GIoSup', 'PPRSup', 'EPHSup', 'GATS', 'GLXSup', 'PASmax'] as const satisfies readonly AmdEfrField[];

/** The EFR value with only the VMM-usable fields kept. */
export function vmmVisibleEfr(efr: bigint): bigint {
  let mask = 0n;
  for (const name of HW_INFO_AMD_VMM_FIELDS) {
    const f = EFR_LAYOUT.find((x) => x.name === name)!;
    mask |= genmask(f.hi, f.lo);
  }
  return BigInt.asUintN(64, efr) & mask;
}

/** amd_iommufd_hw_info(): u64 efr, u64 efr2, little endian. */
export function encodeHwInfoAmd(info: IommuHwInfoAmd): Uint8Array {
  const b = new Uint8Array(IOMMU_HW_INFO_AMD_SIZE);
  writeLe64(b, 0, info.efr);
  writeLe64(b, 8, info.efr2);
  return b;
}

/** Reads the 16 bytes of `struct iommu_hw_info_amd`; fails on any other length. */
export function decodeHwInfoAmd(bytes: Uint8Array): Result<IommuHwInfoAmd> {
  if (bytes.byteLength !== IOMMU_HW_INFO_AMD_SIZE) return err(`iommu_hw_info_amd is ${IOMMU_HW_INFO_AMD_SIZE} bytes, got ${bytes.byteLength}`);
  return ok({ efr: readLe64(bytes, 0), efr2: readLe64(bytes, 8) });
}
