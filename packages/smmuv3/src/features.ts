/**
 * What the Linux arm-smmu-v3 driver's probe (arm_smmu_device_hw_probe, arm_smmu_device_iidr_probe) derives
 * from the ID registers: features, options, queue sizes, page sizes, and core's normalized capabilities.
 */
import type { NormalizedCaps, StageCaps } from '@ioasid/core/driver';
import { pageSizesFromLog2, type Result } from '@ioasid/core/driver';
import {
  IDR0_HTTU,
  IDR0_ST_LEVEL,
  IDR0_STALL_MODEL,
  IDR0_TTENDIAN,
  IDR0_TTF,
  IDR5_VAX_52_BIT,
  IIDR_IMPLEMENTER_ARM,
  IIDR_PRODUCTID_ARM_MMU_600,
  IIDR_PRODUCTID_ARM_MMU_700,
  OAS_BITS,
  archVersion,
  type Idr5,
  type Iidr,
  type SmmuRegisters,
} from './registers.js';

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

