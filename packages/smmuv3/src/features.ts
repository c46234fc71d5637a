/**
 * What the Linux arm-smmu-v3 driver's probe (arm_smmu_device_hw_probe, arm_smmu_device_iidr_probe) derives
 * from the ID registers: features, options, queue sizes, page sizes, and core's normalized capabilities.
 */
import type { NormalizedCaps, StageCaps } from '@ioasid/core/driver';
import { err, pageSizesFromLog2, type Result } from '@ioasid/core/driver';
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
  /** SMMU_IDR0.ST_LEVEL = 2-level, and SIDSIZE above STRTAB_SPLIT (8): the driver builds a 2-level stream table. */
  '2_LVL_STRTAB': 0,
  /** SMMU_IDR0.CD2L: 2-level CD tables are supported. */
  '2_LVL_CDTAB': 1,
  /** Little-endian translation tables (SMMU_IDR0.TTENDIAN mixed or LE). */
  TT_LE: 2,
  /** Big-endian translation tables (SMMU_IDR0.TTENDIAN mixed or BE). */
  TT_BE: 3,
  /** PCIe PRI (SMMU_IDR0.PRI, with CONFIG_PCI_PRI): the PRI queue is set up. */
  PRI: 4,
  /** PCIe ATS (SMMU_IDR0.ATS, with CONFIG_PCI_ATS): masters may enable ATS. */
  ATS: 5,
  /** SMMU_IDR0.SEV: the SMMU sends an event to wake WFE waiters (CMD_SYNC completion). */
  SEV: 6,
  /** SMMU_IDR0.MSI: MSIs for the queues and GERROR instead of wired interrupts. */
  MSI: 7,
  /** Coherent table and queue accesses (SMMU_IDR0.COHACC, or the firmware's override). */
  COHERENCY: 8,
  /** Stage 1 translation (SMMU_IDR0.S1P). */
  TRANS_S1: 9,
  /** Stage 2 translation (SMMU_IDR0.S2P). */
  TRANS_S2: 10,
  /** Stalling faults are supported (SMMU_IDR0.STALL_MODEL stall or forced). */
  STALLS: 11,
  /** SMMU_IDR0.HYP: EL2 translation regimes (and the EL2 TLBI commands). */
  HYP: 12,
  /** Stalling is forced (SMMU_IDR0.STALL_MODEL = 0b10): every master is stall-enabled. */
  STALL_FORCE: 13,
  /** 52-bit virtual addresses (SMMU_IDR5.VAX = 1). */
  VAX: 14,
  /** Range invalidation (SMMU_IDR3.RIL): TLBI commands with NUM/SCALE/TG/TTL. */
  RANGE_INV: 15,
  /** Broadcast TLB maintenance (SMMU_IDR0.BTM): CPU TLBIs reach the SMMU (cleared by the MMU-700 erratum 2812531). */
  BTM: 16,
  /** Shared virtual addressing: stage 1, coherent, the CPU page size, PA width and ASID width all supported. */
  SVA: 17,
  /** SMMU_IDR0.HYP on a VHE host: stage-1 domains use the EL2 (E2H) regime. */
  E2H: 18,
  /** Both stages, so nesting (iommufd nesting parents and vSMMU) is possible; cleared by MMU-600/700 errata. */
  NESTING: 19,
  /** SMMU_IDR1.ATTR_TYPES_OVR: the STE can override incoming memory attributes. */
  ATTR_TYPES_OVR: 20,
  /** Hardware Access flag updates (SMMU_IDR0.HTTU ≥ 1). */
  HA: 21,
  /** Hardware dirty state updates (SMMU_IDR0.HTTU ≥ 2): dirty tracking is possible. */
  HD: 22,
  /** SMMU_IDR3.FWB: stage-2 forced write-back (STE.S2FWB). */
  S2FWB: 23,
  /** SMMU_IDR3.BBML = 2: break-before-make level 2, changing block sizes without an invalid step. */
  BBML2: 24,
} as const;
/** The name of an ARM_SMMU_FEAT_* feature bit. */
export type ArmSmmuFeature = keyof typeof ARM_SMMU_FEAT;

/** ARM_SMMU_OPT_* bit numbers: quirks and driver choices outside the ID registers. */
export const ARM_SMMU_OPT = {
  /** The SMMU mishandles CMD_PREFETCH_*: the driver does not issue them (HiSilicon Hi161x). */
  SKIP_PREFETCH: 0,
  /** Only register page 0 is implemented: page-1 registers are used at page-0 offsets (Cavium CN99xx). */
  PAGE0_REGS_ONLY: 1,
  /** Poll CMD_SYNC completion through its MSI write (MSI-capable, coherent SMMU). */
  MSIPOLL: 2,
  /** A full command batch is issued with its CMD_SYNC (set for the MMU-700, erratum 2812531). */
  CMDQ_FORCE_SYNC: 3,
  /** The NVIDIA Tegra241 CMDQ-V virtual command queues are present. */
  TEGRA241_CMDQV: 4,
} as const;
/** The name of an ARM_SMMU_OPT_* option bit. */
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
  /** CONFIG_PCI_ATS. */
  readonly pciAts?: boolean;
  /** CONFIG_ARM_SMMU_V3_SVA and a CPU the SMMU can share page tables with. */
  readonly sva?: boolean;
  /** The CPU's PAGE_SHIFT (12 for 4K pages): SVA needs the SMMU to support that page size. */
  readonly cpuPageShift?: number;
  /** The CPU's physical address width: SVA needs an OAS at least as wide. */
  readonly cpuPaBits?: number;
  /** The CPU's ASID width: SVA needs as many SMMU ASID bits. */
  readonly cpuAsidBits?: number;
  /** PAGE_SHIFT + MAX_PAGE_ORDER: bounds the queue sizes the driver allocates. */
  readonly qMaxSzShift?: number;
  /** BITS_PER_LONG: the command batch size the CMDQ must exceed. */
  readonly cmdqBatchEntries?: number;
}

/** The result of replaying arm_smmu_device_hw_probe (and the IIDR errata) on a set of ID registers. */
export interface LinuxSmmuProbe {
  /** The ARM_SMMU_FEAT_* mask the driver sets (the "features 0x%08x" of its probe line). */
  readonly features: number;
  /** The same features by name. */
  readonly featureNames: readonly ArmSmmuFeature[];
  /** The ARM_SMMU_OPT_* mask. */
  readonly options: number;
  /** The same options by name. */
  readonly optionNames: readonly ArmSmmuOption[];
  /** Input address size in bits (the probe line's "ias"): the OAS, or 40 if larger and AArch32 tables are supported. */
  readonly ias: number;
  /** Output address size in bits from SMMU_IDR5.OAS (the probe line's "oas"; 48 when unknown). */
  readonly oas: number;
  /** ASID width: 16 with SMMU_IDR0.ASID16, else 8. */
  readonly asidBits: number;
  /** VMID width: 16 with SMMU_IDR0.VMID16, else 8. */
  readonly vmidBits: number;
  /** SubstreamID (PASID) width, SMMU_IDR1.SSIDSIZE. */
  readonly ssidBits: number;
  /** StreamID width, SMMU_IDR1.SIDSIZE. */
  readonly sidBits: number;
  /** The page and block sizes the granules offer (pgsize_bitmap), one bit per size. */
  readonly pgsizeBitmap: bigint;
  /** SMMU_IDR5.STALL_MAX: outstanding stalled transactions the SMMU supports. */
  readonly maxStalls: number;
  /** log2 of the command queue entries (SMMU_IDR1.CMDQS, capped by the largest allocation). */
  readonly cmdqShift: number;
  /** log2 of the event queue entries (SMMU_IDR1.EVENTQS, capped likewise). */
  readonly evtqShift: number;
  /** log2 of the PRI queue entries (SMMU_IDR1.PRIQS, capped likewise). */
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
  else return err('unknown/unsupported TT endianness!');

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
  if (!idr0.S1P && !idr0.S2P) return err('no translation support!');

  let ias = 0;
  if (idr0.TTF === IDR0_TTF.AARCH32_64) ias = 40;
  else if (idr0.TTF !== IDR0_TTF.AARCH64) return err('AArch64 table format not supported!');
  const asidBits = idr0.ASID16 ? 16 : 8;
  const vmidBits = idr0.VMID16 ? 16 : 8;

  if (idr1.TABLES_PRESET || idr1.QUEUES_PRESET || idr1.REL) {
    return err('embedded implementation not supported');
  }
  if (idr1.ATTR_TYPES_OVR) set(ARM_SMMU_FEAT.ATTR_TYPES_OVR);
  const qMax = env.qMaxSzShift ?? 22;
  const batch = env.cmdqBatchEntries ?? 64;
  const cmdqShift = Math.min(qMax - Q_ENT_SHIFT.cmdq, idr1.CMDQS);
  if (cmdqShift <= Math.log2(batch)) {
    return err(`command queue size <= ${batch} entries not supported`);
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

/**
 * Core's normalized capabilities of an SMMU: stages, address widths, page sizes, PASID, ATS/PRI, dirty tracking and
 * nesting, from the probe replay.
 */
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
    // The GICv3 ITS sets IRQ_DOMAIN_FLAG_ISOLATED_MSI (irq-gic-v3-its.c): the SMMUv3 platforms the
    // model describes have one. A GICv2m host (no ITS) says so with the unit profile's msiIsolated.
    isolatedMsi: true,
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

