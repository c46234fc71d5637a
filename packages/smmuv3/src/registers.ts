/**
 * SMMUv3 identification registers (SMMU_IDR0..5, SMMU_IIDR, SMMU_AIDR): decode into the specification's
 * field names and encode back; the iommu_hw_info_arm_smmuv3 payload. What the Linux driver's probe derives
 * from them is in probe.ts.
 */

import { ok, err, fieldGet32, fieldPrep, uapi, bitLayout, type BitField, type BitFieldValues, type Result } from '@ioasid/core/driver';

function decode32<L extends readonly BitField[]>(layout: L, value: number): BitFieldValues<L> {
  const out: Record<string, number> = {};
  for (const f of layout) out[f.name] = fieldGet32(value >>> 0, f.hi, f.lo) >>> 0;
  return out as BitFieldValues<L>;
}

function encode32<L extends readonly BitField[]>(layout: L, fields: BitFieldValues<L>): number {
  let v = 0n;
  const rec = fields as Record<string, number>;
  for (const f of layout) v |= fieldPrep(BigInt(rec[f.name] ?? 0), f.hi, f.lo);
  return Number(v & 0xffffffffn) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Layouts (Arm IHI 0070, §6.3). Order is low bit first.
// ---------------------------------------------------------------------------------------------

/**
 * SMMU_IDR0 (offset 0x0): the stages, table formats, ATS/PRI/stall support and stream-table levels the SMMU implements;
 * what `arm_smmu_device_hw_probe` reads first.
 */
export const IDR0_LAYOUT = bitLayout([
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
]);

/**
 * SMMU_IDR1 (offset 0x4): StreamID and SubstreamID widths (SIDSIZE, SSIDSIZE, in bits) and the log2 sizes of the
 * command, event and PRI queues; the fixed-table and attribute-override flags.
 */
export const IDR1_LAYOUT = bitLayout([
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
]);

/**
 * SMMU_IDR3 (offset 0xc): optional architecture features (range invalidation RIL, BBML, stage-1 page-based hardware
 * attributes, ...).
 */
export const IDR3_LAYOUT = bitLayout([
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
]);

/**
 * SMMU_IDR5 (offset 0x14): the output address size (OAS), the translation granules (GRAN4K/16K/64K) and the maximum
 * number of outstanding stalled transactions (STALL_MAX).
 */
export const IDR5_LAYOUT = bitLayout([
  { name: 'OAS', hi: 2, lo: 0 },
  { name: 'GRAN4K', hi: 4, lo: 4 },
  { name: 'GRAN16K', hi: 5, lo: 5 },
  { name: 'GRAN64K', hi: 6, lo: 6 },
  { name: 'DS', hi: 7, lo: 7 },
  { name: 'D128', hi: 8, lo: 8 },
  { name: 'VAX', hi: 11, lo: 10 },
  { name: 'STALL_MAX', hi: 31, lo: 16 },
]);

/** SMMU_IIDR (offset 0x18): who made the implementation: JEP106 implementer code, revision, variant and product id. */
export const IIDR_LAYOUT = bitLayout([
  { name: 'Implementer', hi: 11, lo: 0 },
  { name: 'Revision', hi: 15, lo: 12 },
  { name: 'Variant', hi: 19, lo: 16 },
  { name: 'ProductID', hi: 31, lo: 20 },
]);

/** SMMU_AIDR (offset 0x1c): the architecture version the SMMU implements (ArchMajorRev, ArchMinorRev: 3.0 to 3.3). */
export const AIDR_LAYOUT = bitLayout([
  { name: 'ArchMinorRev', hi: 3, lo: 0 },
  { name: 'ArchMajorRev', hi: 7, lo: 4 },
]);

/**
 * Decoded SMMU_IDR0: one number per field of `IDR0_LAYOUT` (S2P, S1P, TTF, HTTU, ATS, PRI, STALL_MODEL, ST_LEVEL, ...).
 */
export type Idr0 = BitFieldValues<typeof IDR0_LAYOUT>;
/**
 * Decoded SMMU_IDR1: one number per field of `IDR1_LAYOUT` (SIDSIZE, SSIDSIZE and the queue sizes in log2 entries,
 * ...).
 */
export type Idr1 = BitFieldValues<typeof IDR1_LAYOUT>;
/** Decoded SMMU_IDR3: one number per field of `IDR3_LAYOUT` (RIL, BBML, FWB, ...). */
export type Idr3 = BitFieldValues<typeof IDR3_LAYOUT>;
/** Decoded SMMU_IDR5: one number per field of `IDR5_LAYOUT` (OAS encoding, GRAN4K/16K/64K, VAX, STALL_MAX). */
export type Idr5 = BitFieldValues<typeof IDR5_LAYOUT>;
/** Decoded SMMU_IIDR: Implementer (JEP106), Revision, Variant, ProductID. */
export type Iidr = BitFieldValues<typeof IIDR_LAYOUT>;
/** Decoded SMMU_AIDR: ArchMajorRev and ArchMinorRev. */
export type Aidr = BitFieldValues<typeof AIDR_LAYOUT>;

/** Split a raw SMMU_IDR0 value into its fields. */
export const decodeIdr0 = (v: number): Idr0 => decode32(IDR0_LAYOUT, v);
/** Split a raw SMMU_IDR1 value into its fields. */
export const decodeIdr1 = (v: number): Idr1 => decode32(IDR1_LAYOUT, v);
/** Split a raw SMMU_IDR3 value into its fields. */
export const decodeIdr3 = (v: number): Idr3 => decode32(IDR3_LAYOUT, v);
/** Split a raw SMMU_IDR5 value into its fields. */
export const decodeIdr5 = (v: number): Idr5 => decode32(IDR5_LAYOUT, v);
/** Split a raw SMMU_IIDR value into its fields. */
export const decodeIidr = (v: number): Iidr => decode32(IIDR_LAYOUT, v);
/** Split a raw SMMU_AIDR value into its fields. */
export const decodeAidr = (v: number): Aidr => decode32(AIDR_LAYOUT, v);
/** Build a raw SMMU_IDR0 value from its fields (each field masked to its width). */
export const encodeIdr0 = (f: Idr0): number => encode32(IDR0_LAYOUT, f);
/** Build a raw SMMU_IDR1 value from its fields. */
export const encodeIdr1 = (f: Idr1): number => encode32(IDR1_LAYOUT, f);
/** Build a raw SMMU_IDR3 value from its fields. */
export const encodeIdr3 = (f: Idr3): number => encode32(IDR3_LAYOUT, f);
/** Build a raw SMMU_IDR5 value from its fields. */
export const encodeIdr5 = (f: Idr5): number => encode32(IDR5_LAYOUT, f);
/** Build a raw SMMU_IIDR value from its fields. */
export const encodeIidr = (f: Iidr): number => encode32(IIDR_LAYOUT, f);
/** Build a raw SMMU_AIDR value from its fields. */
export const encodeAidr = (f: Aidr): number => encode32(AIDR_LAYOUT, f);

/** Field values with their meaning, for the encodings Linux names. */
export const IDR0_ST_LEVEL = {
  /** Only a linear stream table. */
  LINEAR: 0,
  /** A 2-level stream table is supported (Linux ARM_SMMU_FEAT_2_LVL_STRTAB). */
  TWO_LEVEL: 1,
} as const;
/** SMMU_IDR0.STALL_MODEL: whether stalling faults are supported, absent or forced (Linux `IDR0_STALL_MODEL_*`). */
export const IDR0_STALL_MODEL = {
  /** Stall and terminate fault models are both supported (Linux ARM_SMMU_FEAT_STALLS). */
  STALL: 0,
  /** Stalls are not supported: every fault terminates the transaction. */
  NO_STALL: 1,
  /** Stalling is forced for every stream (Linux ARM_SMMU_FEAT_STALL_FORCE makes every master stall-enabled). */
  FORCE: 2,
} as const;
/** SMMU_IDR0.TTENDIAN: the translation table endianness the SMMU walks (Linux `IDR0_TTENDIAN_*`); 0b01 is reserved. */
export const IDR0_TTENDIAN = {
  /** Both endiannesses, chosen per context (CD.ENDI, STE.S2ENDI). */
  MIXED: 0,
  /** Little-endian tables only. */
  LE: 2,
  /** Big-endian tables only. */
  BE: 3,
} as const;
/** SMMU_IDR0.HTTU: hardware update of the Access flag and dirty state in translation tables. */
export const IDR0_HTTU = {
  /** No hardware table updates. */
  NONE: 0,
  /** Hardware sets the Access flag (Linux ARM_SMMU_FEAT_HA). */
  ACCESS: 1,
  /** Hardware sets the Access flag and the dirty state (Linux ARM_SMMU_FEAT_HA and HD; needed for dirty tracking). */
  ACCESS_DIRTY: 2,
  /** Access flag, dirty state and the Access flag in table descriptors (HAFT). */
  ACCESS_DIRTY_HAFT: 3,
} as const;
/** SMMU_IDR0.TTF: the translation table formats supported; 0 is reserved. */
export const IDR0_TTF = {
  /** AArch32 (LPAE) tables only: Linux refuses such an SMMU. */
  AARCH32: 1,
  /** AArch64 tables only. */
  AARCH64: 2,
  /** Both AArch32 and AArch64 tables. */
  AARCH32_64: 3,
} as const;
/** SMMU_IDR5.VAX value for 52-bit virtual addresses (Linux IDR5_VAX_52_BIT); 0 means 48-bit. */
export const IDR5_VAX_52_BIT = 1;
/** SMMU_IIDR.Implementer of Arm Ltd (JEP106 0x43B; Linux IIDR_IMPLEMENTER_ARM), used for erratum matching. */
export const IIDR_IMPLEMENTER_ARM = 0x43b;
/**
 * SMMU_IIDR.ProductID of the Arm CoreLink MMU-600 (Linux IIDR_PRODUCTID_ARM_MMU_600, arm_smmu_device_iidr_probe
 * errata).
 */
export const IIDR_PRODUCTID_ARM_MMU_600 = 0x483;
/**
 * SMMU_IIDR.ProductID of the Arm CoreLink MMU-700 (Linux IIDR_PRODUCTID_ARM_MMU_700, arm_smmu_device_iidr_probe
 * errata).
 */
export const IIDR_PRODUCTID_ARM_MMU_700 = 0x487;

/** IDR5.OAS encoding → bits; 7 (56-bit) is a later-architecture value Linux does not know. */
export const OAS_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52, 56];

/** The SMMU_IDR5.OAS encoding of an output address size in bits, or undefined for a size the field cannot express. */
export function oasEncoding(bits: number): number | undefined {
  const i = OAS_BITS.indexOf(bits);
  return i < 0 ? undefined : i;
}

// ---------------------------------------------------------------------------------------------
// The whole register file
// ---------------------------------------------------------------------------------------------

/** Raw values, as iommu_hw_info_arm_smmuv3 carries them. */
export interface SmmuRawRegisters {
  /** SMMU_IDR0..SMMU_IDR5, six 32-bit values in register order. */
  readonly idr: readonly number[];
  /** SMMU_IIDR, 32 bits. */
  readonly iidr: number;
  /** SMMU_AIDR, 32 bits. */
  readonly aidr: number;
}

/** The identification registers decoded into fields. */
export interface SmmuRegisters {
  /** SMMU_IDR0 fields. */
  readonly idr0: Idr0;
  /** SMMU_IDR1 fields. */
  readonly idr1: Idr1;
  /** IDR2 (VATOS page offset) is kept raw: nothing in Linux reads it. */
  readonly idr2: number;
  /** SMMU_IDR3 fields. */
  readonly idr3: Idr3;
  /** IDR4 is IMPLEMENTATION DEFINED. */
  readonly idr4: number;
  /** SMMU_IDR5 fields. */
  readonly idr5: Idr5;
  /** SMMU_IIDR fields. */
  readonly iidr: Iidr;
  /** SMMU_AIDR fields. */
  readonly aidr: Aidr;
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/**
 * Decode six IDR values plus IIDR and AIDR; fails unless there are exactly six IDRs and every value is an unsigned
 * 32-bit integer.
 */
export function decodeSmmuRegisters(raw: SmmuRawRegisters): Result<SmmuRegisters> {
  if (raw.idr.length !== 6) return err(`expected 6 IDR values (IDR0..IDR5), got ${raw.idr.length}`);
  for (let i = 0; i < 6; i++) {
    if (!isU32(raw.idr[i])) return err(`IDR${i} is not a 32-bit unsigned value`);
  }
  if (!isU32(raw.iidr)) return err('IIDR is not a 32-bit unsigned value');
  if (!isU32(raw.aidr)) return err('AIDR is not a 32-bit unsigned value');
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

/** Encode decoded registers back to raw values (the inverse of `decodeSmmuRegisters`). */
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
  if (!/^(0x)?[0-9a-f]{1,8}$/i.test(t)) return err(`${what}: '${s}' is not a 32-bit hex value`);
  return ok(Number.parseInt(t.replace(/^0x/i, ''), 16) >>> 0);
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

/** The architecture version SMMU_AIDR names, as "3.minor" (for example "3.1"). */
export function archVersion(aidr: Aidr): string {
  // ArchMajorRev 0 means SMMUv3; the minor revision is the ".x".
  return `${3 + aidr.ArchMajorRev}.${aidr.ArchMinorRev}`;
}

// ---------------------------------------------------------------------------------------------
// IOMMU_GET_HW_INFO payload: struct iommu_hw_info_arm_smmuv3 (40 bytes, LE)
// ---------------------------------------------------------------------------------------------

/** The decoded payload (`__reserved` left out: it is always written as 0). */
export interface HwInfoArmSmmuv3 {
  /** iommu_hw_info_arm_smmuv3.flags: no flag is defined yet, so the kernel reports 0. */
  readonly flags: number;
  /** SMMU_IDR0..SMMU_IDR5 as the kernel copies them from the hardware. */
  readonly idr: readonly number[];
  /** SMMU_IIDR. */
  readonly iidr: number;
  /** SMMU_AIDR. */
  readonly aidr: number;
}

const { iommu_hw_info_arm_smmuv3 } = uapi;

/** Encode the 40-byte IOMMU_GET_HW_INFO payload of an SMMUv3 (IOMMU_HW_INFO_TYPE_ARM_SMMUV3); missing IDRs are 0. */
export function encodeHwInfoSmmuv3(info: HwInfoArmSmmuv3): Uint8Array {
  const idr = Array.from({ length: 6 }, (_, i) => (info.idr[i] ?? 0) >>> 0);
  return iommu_hw_info_arm_smmuv3.encode(iommu_hw_info_arm_smmuv3.make({ flags: info.flags >>> 0, idr, iidr: info.iidr >>> 0, aidr: info.aidr >>> 0 }));
}

/** Decode the IOMMU_GET_HW_INFO payload of an SMMUv3; fails when fewer than 40 bytes are given. */
export function decodeHwInfoSmmuv3(bytes: Uint8Array): Result<HwInfoArmSmmuv3> {
  const size = iommu_hw_info_arm_smmuv3.size;
  if (bytes.byteLength < size) return err(`iommu_hw_info_arm_smmuv3 needs ${size} bytes, got ${bytes.byteLength}`);
  const v = iommu_hw_info_arm_smmuv3.decode(bytes);
  return ok({ flags: v.flags, idr: v.idr, iidr: v.iidr, aidr: v.aidr });
}
