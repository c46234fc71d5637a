/**
 * SMMUv3 identification registers (SMMU_IDR0..5, SMMU_IIDR, SMMU_AIDR): decode into the specification's
 * field names, encode back, and derive what the Linux driver's probe derives from them.
 */
import type { NormalizedCaps, StageCaps } from '@ioasid/core/driver';
import { fieldGet32, fieldPrep, pageSizesFromLog2, uapi, type BitField, type Result } from '@ioasid/core/driver';

// ---------------------------------------------------------------------------------------------
// Little-endian words (queue entries and table entries are LE on the wire).
// ---------------------------------------------------------------------------------------------

/** Read n little-endian 64-bit words (queue entries and table entries are LE on the wire). */
export function readLe64Words(bytes: Uint8Array, n: number): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(view.getBigUint64(i * 8, true));
  return out;
}

export function writeLe64Words(words: readonly bigint[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 8);
  const view = new DataView(bytes.buffer);
  words.forEach((w, i) => view.setBigUint64(i * 8, BigInt.asUintN(64, w), true));
  return bytes;
}

type FieldsOf<L extends readonly BitField[]> = { readonly [K in L[number]['name']]: number };

function decode32<L extends readonly BitField[]>(layout: L, value: number): FieldsOf<L> {
  const out: Record<string, number> = {};
  for (const f of layout) out[f.name] = fieldGet32(value >>> 0, f.hi, f.lo) >>> 0;
  return out as FieldsOf<L>;
}

function encode32<L extends readonly BitField[]>(layout: L, fields: FieldsOf<L>): number {
  let v = 0n;
  const rec = fields as Record<string, number>;
  for (const f of layout) v |= fieldPrep(BigInt(rec[f.name] ?? 0), f.hi, f.lo);
  return Number(v & 0xffffffffn) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Layouts (Arm IHI 0070, §6.3). Order is low bit first.
// ---------------------------------------------------------------------------------------------

export const IDR0_LAYOUT = [
  { name: 'S2P', hi: 0, lo: 0 },
  { name: 'S1P', hi: 1, lo: 1 },
  { name: 'TTF', hi: 3, lo: 2 },
  { name: 'COHACC', hi: 4, lo: 4 },
  { name: 'BTM', hi: 5, lo: 5 },
  { name: 'HTTU', hi: 7, lo: 6 },
  { name: 'DORMHINT', hi: 8, lo: 8 },
  { name: 'HYP', hi: 9, lo: 9 },
  { name: 'ATS', hi: 10, lo: 10 },
  { name: 'NS1ATS', hi: 11, lo: 11 },
  { name: 'ASID16', hi: 12, lo: 12 },
  { name: 'MSI', hi: 13, lo: 13 },
  { name: 'SEV', hi: 14, lo: 14 },
  { name: 'ATOS', hi: 15, lo: 15 },
  { name: 'PRI', hi: 16, lo: 16 },
  { name: 'VMW', hi: 17, lo: 17 },
  { name: 'VMID16', hi: 18, lo: 18 },
  { name: 'CD2L', hi: 19, lo: 19 },
  { name: 'VATOS', hi: 20, lo: 20 },
  { name: 'TTENDIAN', hi: 22, lo: 21 },
  { name: 'ATSRECERR', hi: 23, lo: 23 },
  { name: 'STALL_MODEL', hi: 25, lo: 24 },
  { name: 'TERM_MODEL', hi: 26, lo: 26 },
  { name: 'ST_LEVEL', hi: 28, lo: 27 },
  { name: 'RME_IMPL', hi: 30, lo: 30 },
] as const satisfies readonly BitField[];

export const IDR1_LAYOUT = [
  { name: 'SIDSIZE', hi: 5, lo: 0 },
  { name: 'SSIDSIZE', hi: 10, lo: 6 },
  { name: 'PRIQS', hi: 15, lo: 11 },
  { name: 'EVENTQS', hi: 20, lo: 16 },
  { name: 'CMDQS', hi: 25, lo: 21 },
  { name: 'ATTR_PERMS_OVR', hi: 26, lo: 26 },
  { name: 'ATTR_TYPES_OVR', hi: 27, lo: 27 },
  { name: 'REL', hi: 28, lo: 28 },
  { name: 'QUEUES_PRESET', hi: 29, lo: 29 },
  { name: 'TABLES_PRESET', hi: 30, lo: 30 },
  { name: 'ECMDQ', hi: 31, lo: 31 },
] as const satisfies readonly BitField[];

export const IDR3_LAYOUT = [
  { name: 'HAD', hi: 2, lo: 2 },
  { name: 'PBHA', hi: 3, lo: 3 },
  { name: 'XNX', hi: 4, lo: 4 },
  { name: 'PPS', hi: 5, lo: 5 },
  { name: 'MPAM', hi: 7, lo: 7 },
  { name: 'FWB', hi: 8, lo: 8 },
  { name: 'STT', hi: 9, lo: 9 },
  { name: 'RIL', hi: 10, lo: 10 },
  { name: 'BBML', hi: 12, lo: 11 },
  { name: 'E0PD', hi: 13, lo: 13 },
  { name: 'PTWNNC', hi: 14, lo: 14 },
  { name: 'DPT', hi: 15, lo: 15 },
  { name: 'PASIDTT', hi: 16, lo: 16 },
  { name: 'EPAN', hi: 17, lo: 17 },
  { name: 'S1PI', hi: 18, lo: 18 },
  { name: 'S2PI', hi: 19, lo: 19 },
  { name: 'S2PO', hi: 20, lo: 20 },
  { name: 'THE', hi: 21, lo: 21 },
  { name: 'MTEPERM', hi: 22, lo: 22 },
  { name: 'AIE', hi: 23, lo: 23 },
] as const satisfies readonly BitField[];

export const IDR5_LAYOUT = [
  { name: 'OAS', hi: 2, lo: 0 },
  { name: 'GRAN4K', hi: 4, lo: 4 },
  { name: 'GRAN16K', hi: 5, lo: 5 },
  { name: 'GRAN64K', hi: 6, lo: 6 },
  { name: 'DS', hi: 7, lo: 7 },
  { name: 'D128', hi: 8, lo: 8 },
  { name: 'VAX', hi: 11, lo: 10 },
  { name: 'STALL_MAX', hi: 31, lo: 16 },
] as const satisfies readonly BitField[];

export const IIDR_LAYOUT = [
  { name: 'Implementer', hi: 11, lo: 0 },
  { name: 'Revision', hi: 15, lo: 12 },
  { name: 'Variant', hi: 19, lo: 16 },
  { name: 'ProductID', hi: 31, lo: 20 },
] as const satisfies readonly BitField[];

export const AIDR_LAYOUT = [
  { name: 'ArchMinorRev', hi: 3, lo: 0 },
  { name: 'ArchMajorRev', hi: 7, lo: 4 },
] as const satisfies readonly BitField[];

export type Idr0 = FieldsOf<typeof IDR0_LAYOUT>;
export type Idr1 = FieldsOf<typeof IDR1_LAYOUT>;
export type Idr3 = FieldsOf<typeof IDR3_LAYOUT>;
export type Idr5 = FieldsOf<typeof IDR5_LAYOUT>;
export type Iidr = FieldsOf<typeof IIDR_LAYOUT>;
export type Aidr = FieldsOf<typeof AIDR_LAYOUT>;

export const decodeIdr0 = (v: number): Idr0 => decode32(IDR0_LAYOUT, v);
export const decodeIdr1 = (v: number): Idr1 => decode32(IDR1_LAYOUT, v);
export const decodeIdr3 = (v: number): Idr3 => decode32(IDR3_LAYOUT, v);
export const decodeIdr5 = (v: number): Idr5 => decode32(IDR5_LAYOUT, v);
export const decodeIidr = (v: number): Iidr => decode32(IIDR_LAYOUT, v);
export const decodeAidr = (v: number): Aidr => decode32(AIDR_LAYOUT, v);
export const encodeIdr0 = (f: Idr0): number => encode32(IDR0_LAYOUT, f);
export const encodeIdr1 = (f: Idr1): number => encode32(IDR1_LAYOUT, f);
export const encodeIdr3 = (f: Idr3): number => encode32(IDR3_LAYOUT, f);
export const encodeIdr5 = (f: Idr5): number => encode32(IDR5_LAYOUT, f);
export const encodeIidr = (f: Iidr): number => encode32(IIDR_LAYOUT, f);
export const encodeAidr = (f: Aidr): number => encode32(AIDR_LAYOUT, f);

/** Field values with their meaning, for the encodings Linux names. */
export const IDR0_ST_LEVEL = { LINEAR: 0, TWO_LEVEL: 1 } as const;
export const IDR0_STALL_MODEL = { STALL: 0, NO_STALL: 1, FORCE: 2 } as const;
export const IDR0_TTENDIAN = { MIXED: 0, LE: 2, BE: 3 } as const;
export const IDR0_HTTU = { NONE: 0, ACCESS: 1, ACCESS_DIRTY: 2, ACCESS_DIRTY_HAFT: 3 } as const;
export const IDR0_TTF = { AARCH32: 1, AARCH64: 2, AARCH32_64: 3 } as const;
export const IDR5_VAX_52_BIT = 1;
export const IIDR_IMPLEMENTER_ARM = 0x43b;
export const IIDR_PRODUCTID_ARM_MMU_600 = 0x483;
export const IIDR_PRODUCTID_ARM_MMU_700 = 0x487;

/** IDR5.OAS encoding → bits; 7 (56-bit) is a later-architecture value Linux does not know. */
export const OAS_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52, 56];

export function oasEncoding(bits: number): number | undefined {
  const i = OAS_BITS.indexOf(bits);
  return i < 0 ? undefined : i;
}

// ---------------------------------------------------------------------------------------------
// The whole register file
// ---------------------------------------------------------------------------------------------

/** Raw values, as iommu_hw_info_arm_smmuv3 carries them. */
export interface SmmuRawRegisters {
  readonly idr: readonly number[];
  readonly iidr: number;
  readonly aidr: number;
}

export interface SmmuRegisters {
  readonly idr0: Idr0;
  readonly idr1: Idr1;
  /** IDR2 (VATOS page offset) is kept raw: nothing in Linux reads it. */
  readonly idr2: number;
  readonly idr3: Idr3;
  /** IDR4 is IMPLEMENTATION DEFINED. */
  readonly idr4: number;
  readonly idr5: Idr5;
  readonly iidr: Iidr;
  readonly aidr: Aidr;
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

export function decodeSmmuRegisters(raw: SmmuRawRegisters): Result<SmmuRegisters> {
  if (raw.idr.length !== 6) return { ok: false, error: `expected 6 IDR values (IDR0..IDR5), got ${raw.idr.length}` };
  for (let i = 0; i < 6; i++) {
    if (!isU32(raw.idr[i])) return { ok: false, error: `IDR${i} is not a 32-bit unsigned value` };
  }
  if (!isU32(raw.iidr)) return { ok: false, error: 'IIDR is not a 32-bit unsigned value' };
  if (!isU32(raw.aidr)) return { ok: false, error: 'AIDR is not a 32-bit unsigned value' };
  return {
    ok: true,
    value: {
      idr0: decodeIdr0(raw.idr[0]),
      idr1: decodeIdr1(raw.idr[1]),
      idr2: raw.idr[2] >>> 0,
      idr3: decodeIdr3(raw.idr[3]),
      idr4: raw.idr[4] >>> 0,
      idr5: decodeIdr5(raw.idr[5]),
      iidr: decodeIidr(raw.iidr),
      aidr: decodeAidr(raw.aidr),
    },
  };
}

export function encodeSmmuRegisters(regs: SmmuRegisters): SmmuRawRegisters {
  return {
    idr: [
      encodeIdr0(regs.idr0),
      encodeIdr1(regs.idr1),
      regs.idr2 >>> 0,
      encodeIdr3(regs.idr3),
      regs.idr4 >>> 0,
      encodeIdr5(regs.idr5),
    ],
    iidr: encodeIidr(regs.iidr),
    aidr: encodeAidr(regs.aidr),
  };
}

function parseHexU32(s: string, what: string): Result<number> {
  const t = s.trim();
  if (!/^(0x)?[0-9a-f]{1,8}$/i.test(t)) return { ok: false, error: `${what}: '${s}' is not a 32-bit hex value` };
  return { ok: true, value: Number.parseInt(t.replace(/^0x/i, ''), 16) >>> 0 };
}

/** Host profiles store registers as hex strings. */
export function parseSmmuRegistersHex(hex: { idr: readonly string[]; iidr: string; aidr: string }): Result<SmmuRegisters> {
  const idr: number[] = [];
  for (let i = 0; i < hex.idr.length; i++) {
    const r = parseHexU32(hex.idr[i], `IDR${i}`);
    if (!r.ok) return r;
    idr.push(r.value);
  }
  const iidr = parseHexU32(hex.iidr, 'IIDR');
  if (!iidr.ok) return iidr;
  const aidr = parseHexU32(hex.aidr, 'AIDR');
  if (!aidr.ok) return aidr;
  return decodeSmmuRegisters({ idr, iidr: iidr.value, aidr: aidr.value });
}

export function archVersion(aidr: Aidr): string {
  // ArchMajorRev 0 means SMMUv3; the minor revision is the ".x".
  return `${3 + aidr.ArchMajorRev}.${aidr.ArchMinorRev}`;
}

// ---------------------------------------------------------------------------------------------
// What Linux derives (arm_smmu_device_hw_probe + arm_smmu_device_iidr_probe, ≈v6.16)
// ---------------------------------------------------------------------------------------------

/** ARM_SMMU_FEAT_* bit numbers. */
export const ARM_SMMU_FEAT = {
  '2_LVL_STRTAB': 0,
  '2_LVL_CDTAB': 1,
  TT_LE: 2,
  TT_BE: 3,
  PRI: 4,
  ATS: 5,
  SEV: 6,
  MSI: 7,
  COHERENCY: 8,
  TRANS_S1: 9,
  TRANS_S2: 10,
  STALLS: 11,
  HYP: 12,
  STALL_FORCE: 13,
  VAX: 14,
  RANGE_INV: 15,
  BTM: 16,
  SVA: 17,
  E2H: 18,
  NESTING: 19,
  ATTR_TYPES_OVR: 20,
  HA: 21,
  HD: 22,
  S2FWB: 23,
  BBML2: 24,
} as const;
export type ArmSmmuFeature = keyof typeof ARM_SMMU_FEAT;

export const ARM_SMMU_OPT = {
  SKIP_PREFETCH: 0,
  PAGE0_REGS_ONLY: 1,
  MSIPOLL: 2,
  CMDQ_FORCE_SYNC: 3,
  TEGRA241_CMDQV: 4,
} as const;
export type ArmSmmuOption = keyof typeof ARM_SMMU_OPT;

/** What the firmware and the CPU contribute to the probe; defaults describe a DT-probed VHE host with 4K pages. */
export interface LinuxProbeEnv {
  /** `dma-coherent` (DT) or IORT COHACC override (ACPI); defaults to IDR0.COHACC. */
  readonly coherent?: boolean;
  /** ACPI IORT HTTU override; when set it wins over IDR0.HTTU (the ACPI path). */
  readonly firmwareHttu?: number;
  /** CPU runs the kernel at EL2 with VHE (ARM64_HAS_VIRT_HOST_EXTN). */
  readonly vhe?: boolean;
  /** CONFIG_PCI_PRI / CONFIG_PCI_ATS. */
  readonly pciPri?: boolean;
  readonly pciAts?: boolean;
  /** CONFIG_ARM_SMMU_V3_SVA and a CPU the SMMU can share page tables with. */
  readonly sva?: boolean;
  readonly cpuPageShift?: number;
  readonly cpuPaBits?: number;
  readonly cpuAsidBits?: number;
  /** PAGE_SHIFT + MAX_PAGE_ORDER: bounds the queue sizes the driver allocates. */
  readonly qMaxSzShift?: number;
  /** BITS_PER_LONG: the command batch size the CMDQ must exceed. */
  readonly cmdqBatchEntries?: number;
}

export interface LinuxSmmuProbe {
  readonly features: number;
  readonly featureNames: readonly ArmSmmuFeature[];
  readonly options: number;
  readonly optionNames: readonly ArmSmmuOption[];
  readonly ias: number;
  readonly oas: number;
  readonly asidBits: number;
  readonly vmidBits: number;
  readonly ssidBits: number;
  readonly sidBits: number;
  readonly pgsizeBitmap: bigint;
  readonly maxStalls: number;
  readonly cmdqShift: number;
  readonly evtqShift: number;
  readonly priqShift: number;
  /** Non-fatal lines the probe prints (dev_info / dev_warn), in order. */
  readonly messages: readonly string[];
}

const Q_ENT_SHIFT = { cmdq: 4, evtq: 5, priq: 4 } as const;
const STRTAB_SPLIT = 8;

function granulePageSizes(idr5: Idr5): bigint {
  let m = 0n;
  if (idr5.GRAN64K) m |= pageSizesFromLog2(16, 29);
  if (idr5.GRAN16K) m |= pageSizesFromLog2(14, 25);
  if (idr5.GRAN4K) m |= pageSizesFromLog2(12, 21, 30);
  return m;
}

function httuFeatures(httu: number): number {
  // ACCESS_DIRTY_HAFT (3) is a superset of ACCESS_DIRTY; kernels before HAFT support ignore it, newer ones
  // fall through to HD|HA, which is what a capability model should report.
  if (httu >= IDR0_HTTU.ACCESS_DIRTY) return (1 << ARM_SMMU_FEAT.HD) | (1 << ARM_SMMU_FEAT.HA);
  if (httu === IDR0_HTTU.ACCESS) return 1 << ARM_SMMU_FEAT.HA;
  return 0;
}

function applyIidrErrata(iidr: Iidr, features: number, options: number): { features: number; options: number } {
  if (iidr.Implementer !== IIDR_IMPLEMENTER_ARM) return { features, options };
  let f = features;
  let o = options;
  if (iidr.ProductID === IIDR_PRODUCTID_ARM_MMU_600) {
    if (iidr.Variant === 0 && iidr.Revision <= 2) f &= ~(1 << ARM_SMMU_FEAT.SEV); // erratum 1076982
    if (iidr.Variant < 2) f &= ~(1 << ARM_SMMU_FEAT.NESTING); // erratum 1209401
  } else if (iidr.ProductID === IIDR_PRODUCTID_ARM_MMU_700) {
    f &= ~(1 << ARM_SMMU_FEAT.BTM); // erratum 2812531
    o |= 1 << ARM_SMMU_OPT.CMDQ_FORCE_SYNC;
    if (iidr.Variant < 1 || (iidr.Variant === 1 && iidr.Revision < 1)) f &= ~(1 << ARM_SMMU_FEAT.NESTING); // 2268618, 2812531
  }
  return { features: f, options: o };
}

function svaSupported(features: number, oas: number, pgsize: bigint, asidBits: number, env: LinuxProbeEnv): boolean {
  if (env.sva === false) return false;
  const has = (b: number) => (features & (1 << b)) !== 0;
  if (!has(ARM_SMMU_FEAT.TRANS_S1) || !has(ARM_SMMU_FEAT.COHERENCY)) return false;
  if (((pgsize >> BigInt(env.cpuPageShift ?? 12)) & 1n) === 0n) return false;
  if (oas < (env.cpuPaBits ?? 48)) return false;
  return asidBits >= (env.cpuAsidBits ?? 16);
}

function featureNames(mask: number): ArmSmmuFeature[] {
  return (Object.keys(ARM_SMMU_FEAT) as ArmSmmuFeature[]).filter((k) => (mask & (1 << ARM_SMMU_FEAT[k])) !== 0);
}

function optionNames(mask: number): ArmSmmuOption[] {
  return (Object.keys(ARM_SMMU_OPT) as ArmSmmuOption[]).filter((k) => (mask & (1 << ARM_SMMU_OPT[k])) !== 0);
}

/**
 * Replays the Linux probe. Fails with the exact dev_err text where the driver refuses the SMMU.
 */
export function smmuLinuxProbe(regs: SmmuRegisters, env: LinuxProbeEnv = {}): Result<LinuxSmmuProbe> {
  const { idr0, idr1, idr3, idr5 } = regs;
  const messages: string[] = [];
  const coherent = env.coherent ?? idr0.COHACC === 1;
  let f = coherent ? 1 << ARM_SMMU_FEAT.COHERENCY : 0;
  let o = 0;
  const set = (b: number) => {
    f |= 1 << b;
  };

  if (idr0.ST_LEVEL === IDR0_ST_LEVEL.TWO_LEVEL) set(ARM_SMMU_FEAT['2_LVL_STRTAB']);
  if (idr0.CD2L) set(ARM_SMMU_FEAT['2_LVL_CDTAB']);
  // The model runs a little-endian kernel: a BE-only SMMU is refused just as on arm64 LE.
  if (idr0.TTENDIAN === IDR0_TTENDIAN.MIXED) {
    set(ARM_SMMU_FEAT.TT_LE);
    set(ARM_SMMU_FEAT.TT_BE);
  } else if (idr0.TTENDIAN === IDR0_TTENDIAN.LE) set(ARM_SMMU_FEAT.TT_LE);
  else return { ok: false, error: 'unknown/unsupported TT endianness!' };

  if ((env.pciPri ?? true) && idr0.PRI) set(ARM_SMMU_FEAT.PRI);
  if ((env.pciAts ?? true) && idr0.ATS) set(ARM_SMMU_FEAT.ATS);
  if (idr0.SEV) set(ARM_SMMU_FEAT.SEV);
  if (idr0.MSI) {
    set(ARM_SMMU_FEAT.MSI);
    if (coherent) o |= 1 << ARM_SMMU_OPT.MSIPOLL;
  }
  if (idr0.HYP) {
    set(ARM_SMMU_FEAT.HYP);
    if (env.vhe ?? true) set(ARM_SMMU_FEAT.E2H);
  }
  const hwHttu = httuFeatures(idr0.HTTU);
  if (env.firmwareHttu === undefined) f |= hwHttu;
  else {
    const fw = httuFeatures(env.firmwareHttu);
    f |= fw;
    if (fw !== hwHttu) {
      messages.push(`IDR0.HTTU features(0x${hwHttu.toString(16)}) overridden by FW configuration (0x${fw.toString(16)})`);
    }
  }
  if ((idr0.COHACC === 1) !== coherent) messages.push(`IDR0.COHACC overridden by FW configuration (${coherent})`);
  if (idr0.STALL_MODEL === IDR0_STALL_MODEL.FORCE) {
    set(ARM_SMMU_FEAT.STALL_FORCE);
    set(ARM_SMMU_FEAT.STALLS);
  } else if (idr0.STALL_MODEL === IDR0_STALL_MODEL.STALL) set(ARM_SMMU_FEAT.STALLS);
  if (idr0.S1P) set(ARM_SMMU_FEAT.TRANS_S1);
  if (idr0.S2P) set(ARM_SMMU_FEAT.TRANS_S2);
  if (!idr0.S1P && !idr0.S2P) return { ok: false, error: 'no translation support!' };

  let ias = 0;
  if (idr0.TTF === IDR0_TTF.AARCH32_64) ias = 40;
  else if (idr0.TTF !== IDR0_TTF.AARCH64) return { ok: false, error: 'AArch64 table format not supported!' };
  const asidBits = idr0.ASID16 ? 16 : 8;
  const vmidBits = idr0.VMID16 ? 16 : 8;

  if (idr1.TABLES_PRESET || idr1.QUEUES_PRESET || idr1.REL) {
    return { ok: false, error: 'embedded implementation not supported' };
  }
  if (idr1.ATTR_TYPES_OVR) set(ARM_SMMU_FEAT.ATTR_TYPES_OVR);
  const qMax = env.qMaxSzShift ?? 22;
  const batch = env.cmdqBatchEntries ?? 64;
  const cmdqShift = Math.min(qMax - Q_ENT_SHIFT.cmdq, idr1.CMDQS);
  if (cmdqShift <= Math.log2(batch)) {
    return { ok: false, error: `command queue size <= ${batch} entries not supported` };
  }
  const evtqShift = Math.min(qMax - Q_ENT_SHIFT.evtq, idr1.EVENTQS);
  const priqShift = Math.min(qMax - Q_ENT_SHIFT.priq, idr1.PRIQS);
  const ssidBits = idr1.SSIDSIZE;
  const sidBits = idr1.SIDSIZE;
  // A single L2 table would already cover every SID: the driver falls back to a linear table.
  if (sidBits <= STRTAB_SPLIT) f &= ~(1 << ARM_SMMU_FEAT['2_LVL_STRTAB']);

  if (idr3.RIL) set(ARM_SMMU_FEAT.RANGE_INV);
  if (idr3.FWB) set(ARM_SMMU_FEAT.S2FWB);
  if (idr3.BBML === 2) set(ARM_SMMU_FEAT.BBML2);

  let pgsize = granulePageSizes(idr5);
  if (idr5.VAX === IDR5_VAX_52_BIT) set(ARM_SMMU_FEAT.VAX);
  let oas: number;
  if (idr5.OAS <= 6) oas = OAS_BITS[idr5.OAS];
  else {
    messages.push('unknown output address size. Truncating to 48-bit');
    oas = 48;
  }
  if (oas === 52) pgsize |= 1n << 42n; // the 4TB level-1 block of the 64K granule with 52-bit PA
  ias = Math.max(ias, oas);
  if (idr0.S1P && idr0.S2P) set(ARM_SMMU_FEAT.NESTING);

  ({ features: f, options: o } = applyIidrErrata(regs.iidr, f, o));
  if (svaSupported(f, oas, pgsize, asidBits, env)) set(ARM_SMMU_FEAT.SVA);

  f >>>= 0;
  return {
    ok: true,
    value: {
      features: f,
      featureNames: featureNames(f),
      options: o,
      optionNames: optionNames(o),
      ias,
      oas,
      asidBits,
      vmidBits,
      ssidBits,
      sidBits,
      pgsizeBitmap: pgsize,
      maxStalls: idr5.STALL_MAX,
      cmdqShift,
      evtqShift,
      priqShift,
      messages,
    },
  };
}

/** The ARM_SMMU_FEAT_* names Linux would set; empty when the driver refuses the SMMU. */
export function smmuLinuxFeatures(regs: SmmuRegisters, env: LinuxProbeEnv = {}): readonly ArmSmmuFeature[] {
  const r = smmuLinuxProbe(regs, env);
  return r.ok ? r.value.featureNames : [];
}

// ---------------------------------------------------------------------------------------------
// Normalized capabilities and the rolled-up HW ID
// ---------------------------------------------------------------------------------------------

function has(features: readonly ArmSmmuFeature[], f: ArmSmmuFeature): boolean {
  return features.includes(f);
}

export function smmuNormalizedCaps(regs: SmmuRegisters, env: LinuxProbeEnv = {}): NormalizedCaps {
  const probe = smmuLinuxProbe(regs, env);
  const { idr0, idr1, idr3, idr5 } = regs;
  const oasBits = idr5.OAS <= 6 ? OAS_BITS[idr5.OAS] : 48;
  const feats = probe.ok ? probe.value.featureNames : [];
  const pgsize = probe.ok ? probe.value.pgsizeBitmap : granulePageSizes(idr5);
  const ias = probe.ok ? probe.value.ias : Math.max(oasBits, idr0.TTF === IDR0_TTF.AARCH32_64 ? 40 : 0);
  const accessDirty = idr0.HTTU >= IDR0_HTTU.ACCESS_DIRTY;

  // Stage 1 takes a VA: 48 bits, 52 with VAX (64K granule only); its output is bounded by the OAS.
  const s1: StageCaps = {
    inputBits: idr5.VAX === IDR5_VAX_52_BIT && idr5.GRAN64K ? [48, 52] : [48],
    outputBits: oasBits,
    pageSizes: pgsize,
    accessDirty,
  };
  // Stage 2 takes an IPA, which the driver sizes as max(ias, oas).
  const s2: StageCaps = { inputBits: [ias], outputBits: oasBits, pageSizes: pgsize, accessDirty };
  // Nesting follows the kernel, which clears FEAT_NESTING on MMU-600/700 errata parts.
  const nesting = probe.ok ? has(feats, 'NESTING') : idr0.S1P === 1 && idr0.S2P === 1;
  const coherent = env.coherent ?? idr0.COHACC === 1;

  return {
    vendor: 'smmuv3',
    version: archVersion(regs.aidr),
    hostStage: idr0.S2P ? s2 : idr0.S1P ? s1 : null,
    userStage: nesting ? s1 : null,
    pasidBits: idr1.SSIDSIZE,
    pri: idr0.PRI === 1,
    stall: idr0.STALL_MODEL === IDR0_STALL_MODEL.STALL || idr0.STALL_MODEL === IDR0_STALL_MODEL.FORCE,
    ats: idr0.ATS === 1,
    nesting,
    // arm_smmu_dbm_capable(): dirty tracking needs HTTU dirty updates and coherent table walks.
    dirtyTracking: accessDirty && coherent,
    coherent,
    cachingMode: false,
    rangeInvalidation: idr3.RIL === 1,
    // On Arm, MSI isolation comes from the GIC ITS (device ID tagging), not from the SMMU itself.
    interruptRemapping: false,
    features: feats,
  };
}

function granuleNames(idr5: Idr5): string[] {
  const out: string[] = [];
  if (idr5.GRAN4K) out.push('4K');
  if (idr5.GRAN16K) out.push('16K');
  if (idr5.GRAN64K) out.push('64K');
  return out;
}

/** A one-line "IOMMU HW ID": architecture, implementer, stages, address sizes, granules and key features. */
export function smmuHwId(regs: SmmuRegisters, env: LinuxProbeEnv = {}): string {
  const { idr0, idr1, idr5, iidr } = regs;
  const probe = smmuLinuxProbe(regs, env);
  const oas = idr5.OAS <= 6 ? OAS_BITS[idr5.OAS] : 48;
  const ias = probe.ok ? probe.value.ias : oas;
  const stages = [idr0.S1P ? 'S1' : '', idr0.S2P ? 'S2' : ''].filter(Boolean).join('+') || 'no translation';
  const parts = [
    `Arm SMMUv${archVersion(regs.aidr)} (vendor 0x${iidr.Implementer.toString(16)} product 0x${iidr.ProductID.toString(16)})`,
    stages,
    `${ias}-bit IAS`,
    `${oas}-bit OAS`,
    granuleNames(idr5).join('/') || 'no granules',
  ];
  if (idr1.SSIDSIZE) parts.push(`SSID ${idr1.SSIDSIZE}`);
  if (idr0.PRI) parts.push('PRI');
  if (idr0.ATS) parts.push('ATS');
  if (idr0.HTTU >= IDR0_HTTU.ACCESS_DIRTY) parts.push('HTTU');
  else if (idr0.HTTU === IDR0_HTTU.ACCESS) parts.push('HTTU-AF');
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// IOMMU_GET_HW_INFO payload: struct iommu_hw_info_arm_smmuv3 (40 bytes, LE)
// ---------------------------------------------------------------------------------------------

/** The decoded payload (`__reserved` left out: it is always written as 0). */
export interface HwInfoArmSmmuv3 {
  readonly flags: number;
  readonly idr: readonly number[];
  readonly iidr: number;
  readonly aidr: number;
}

const { iommu_hw_info_arm_smmuv3 } = uapi;

export function encodeHwInfoSmmuv3(info: HwInfoArmSmmuv3): Uint8Array {
  const idr = Array.from({ length: 6 }, (_, i) => (info.idr[i] ?? 0) >>> 0);
  return iommu_hw_info_arm_smmuv3.encode(iommu_hw_info_arm_smmuv3.make({ flags: info.flags >>> 0, idr, iidr: info.iidr >>> 0, aidr: info.aidr >>> 0 }));
}

export function decodeHwInfoSmmuv3(bytes: Uint8Array): Result<HwInfoArmSmmuv3> {
  const size = iommu_hw_info_arm_smmuv3.size;
  if (bytes.byteLength < size) return { ok: false, error: `iommu_hw_info_arm_smmuv3 needs ${size} bytes, got ${bytes.byteLength}` };
  const v = iommu_hw_info_arm_smmuv3.decode(bytes);
  return { ok: true, value: { flags: v.flags, idr: v.idr, iidr: v.iidr, aidr: v.aidr } };
}
