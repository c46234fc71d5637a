/**
 * Stream Table Entries, Context Descriptors and level-1 stream table descriptors (64-byte, LE dwords), and the
 * kernel's validation of the guest STE words that IOMMU_HWPT_ALLOC carries (struct iommu_hwpt_arm_smmuv3).
 */
import { readLe64Words, writeLe64Words, ok, err, fieldGet, fieldPrep, genmask, uapi, type Result, type VendorError } from '@ioasid/core/driver';

/** Size of a Stream Table Entry in bytes (eight 64-bit words; Linux STRTAB_STE_DWORDS = 8). */
export const STE_BYTES = 64;
/** Size of a Context Descriptor in bytes (eight 64-bit words; Linux CTXDESC_CD_DWORDS = 8). */
export const CD_BYTES = 64;

type Pos = readonly [dword: number, hi: number, lo: number];

/** STE.Config values (STRTAB_STE_0_CFG_*). */
export const STE_CFG = {
  /** Abort every transaction of the stream (no event is recorded). */
  ABORT: 0b000,
  /** Bypass both stages: addresses pass through untranslated. */
  BYPASS: 0b100,
  /** Stage 1 translates, stage 2 bypasses. */
  S1_TRANS: 0b101,
  /** Stage 2 translates, stage 1 bypasses. */
  S2_TRANS: 0b110,
  /** Both stages translate (nested); requires SMMU_IDR0.S1P and S2P. */
  NESTED: 0b111,
} as const;
/** The name of an STE.Config value. */
export type SteCfgName = keyof typeof STE_CFG;
/** STE.S1Fmt: the format of the CD table STE.S1ContextPtr points to (Linux `STRTAB_STE_0_S1FMT_*`). */
export const STE_S1FMT = {
  /** A linear array of 2^S1CDMax CDs. */
  LINEAR: 0,
  /** Two levels with 4 KiB level-2 tables (64 CDs each), indexed by SubstreamID[S1CDMax-1:6]. */
  '4K_L2': 1,
  /** Two levels with 64 KiB level-2 tables (1024 CDs each). */
  '64K_L2': 2,
} as const;
/** STE.S1DSS: what a transaction without a SubstreamID gets when STE.S1CDMax ≠ 0 (Linux `STRTAB_STE_1_S1DSS_*`). */
export const STE_S1DSS = {
  /** Abort the transaction and record F_STREAM_DISABLED. */
  TERMINATE: 0,
  /** Bypass stage 1 (stage 2, if enabled, still applies). */
  BYPASS: 1,
  /** Translate with CD 0, as if SubstreamID 0 was given (Linux's choice when SSID 0 holds the DMA domain). */
  SSID0: 2,
} as const;
/** STE.EATS: whether the StreamID's PCIe ATS translation requests are served (Linux `STRTAB_STE_1_EATS_*`). */
export const STE_EATS = {
  /** ATS translation requests are aborted: the device's ATS is not enabled. */
  ABT: 0,
  /** Full ATS: translation requests are answered with the complete translation. */
  TRANS: 1,
  /** Split-stage ATS: stage 1 only in the answer, stage 2 checked on the translated transaction. */
  S1CHK: 2,
} as const;
/** STE.STRW: the translation regime stage 1 uses (Linux `STRTAB_STE_1_STRW_*`). */
export const STE_STRW = {
  /** Non-secure EL1 regime (ASID and VMID tagged): Linux's default. */
  NSEL1: 0,
  /** EL2 regime: Linux uses it for stage-1 domains when the kernel runs at EL2 with E2H (ARM_SMMU_FEAT_E2H). */
  EL2: 2,
} as const;
/** STE.SHCFG "use the incoming shareability" (Linux STRTAB_STE_1_SHCFG_INCOMING), which Linux's bypass STE sets. */
export const STE_SHCFG_INCOMING = 1;

/** The name of an STE.Config value; the reserved encodings (0b001..0b011) are 'RESERVED' and behave as abort. */
export function steCfgName(cfg: number): SteCfgName | 'RESERVED' {
  const n = (Object.keys(STE_CFG) as SteCfgName[]).find((k) => STE_CFG[k] === cfg);
  // 0b0xx other than 0b000 are reserved encodings that behave as abort.
  return n ?? 'RESERVED';
}

/**
 * A scalar field of a stream table entry, by the specification's name (`V`, `Config`, `S1Fmt`, `S1CDMax`, `S1DSS`,
 * `EATS`, `STRW`, `S2VMID`, `S2T0SZ`, `S2TG`, `S2PS`, ...); the two table pointers are separate (`S1ContextPtr`, `S2TTB`).
 */
export type SteScalarField =
  | 'V'
  | 'Config'
  | 'S1Fmt'
  | 'S1CDMax'
  | 'S1DSS'
  | 'S1CIR'
  | 'S1COR'
  | 'S1CSH'
  | 'MEV'
  | 'S2FWB'
  | 'S1STALLD'
  | 'EATS'
  | 'STRW'
  | 'SHCFG'
  | 'INSTCFG'
  | 'S2VMID'
  | 'S2T0SZ'
  | 'S2SL0'
  | 'S2IR0'
  | 'S2OR0'
  | 'S2SH0'
  | 'S2TG'
  | 'S2PS'
  | 'S2AA64'
  | 'S2ENDI'
  | 'S2AFFD'
  | 'S2PTW'
  | 'S2HD'
  | 'S2HA'
  | 'S2S'
  | 'S2R';

const STE_FIELDS: Readonly<Record<SteScalarField, Pos>> = {
  V: [0, 0, 0],
  Config: [0, 3, 1],
  S1Fmt: [0, 5, 4],
  S1CDMax: [0, 63, 59],
  S1DSS: [1, 1, 0],
  S1CIR: [1, 3, 2],
  S1COR: [1, 5, 4],
  S1CSH: [1, 7, 6],
  MEV: [1, 19, 19],
  S2FWB: [1, 25, 25],
  S1STALLD: [1, 27, 27],
  EATS: [1, 29, 28],
  STRW: [1, 31, 30],
  SHCFG: [1, 45, 44],
  INSTCFG: [1, 51, 50],
  S2VMID: [2, 15, 0],
  S2T0SZ: [2, 37, 32],
  S2SL0: [2, 39, 38],
  S2IR0: [2, 41, 40],
  S2OR0: [2, 43, 42],
  S2SH0: [2, 45, 44],
  S2TG: [2, 47, 46],
  S2PS: [2, 50, 48],
  S2AA64: [2, 51, 51],
  S2ENDI: [2, 52, 52],
  S2AFFD: [2, 53, 53],
  S2PTW: [2, 54, 54],
  S2HD: [2, 55, 55],
  S2HA: [2, 56, 56],
  S2S: [2, 57, 57],
  S2R: [2, 58, 58],
};

const STE_0_S1CTXPTR_MASK = genmask(51, 6);
const STE_3_S2TTB_MASK = genmask(51, 4);

/**
 * A decoded STE: every scalar field under its specification name (V, Config, S1Fmt, S2VMID, S2T0SZ, ...), plus the two
 * table pointers.
 */
export type Ste = { readonly [K in SteScalarField]: number } & {
  /** CD table base (64-byte aligned physical address). */
  readonly S1ContextPtr: bigint;
  /** Stage-2 translation table base. */
  readonly S2TTB: bigint;
};
/** The STE fields to encode; absent fields are 0. */
export type SteInit = Partial<Ste>;

function encodeFields<K extends string>(layout: Record<K, Pos>, values: Partial<Record<K, number>>, dw: bigint[]): void {
  for (const name of Object.keys(layout) as K[]) {
    const v = values[name];
    if (v === undefined) continue;
    const [d, hi, lo] = layout[name];
    dw[d] |= fieldPrep(BigInt(v), hi, lo);
  }
}

function decodeFields<K extends string>(layout: Record<K, Pos>, dw: readonly bigint[]): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const name of Object.keys(layout) as K[]) {
    const [d, hi, lo] = layout[name];
    out[name] = Number(fieldGet(dw[d], hi, lo));
  }
  return out;
}

/** Encode an STE into its eight 64-bit words (pointers masked to their fields, other bits 0). */
export function encodeSteWords(ste: SteInit): bigint[] {
  const dw = new Array<bigint>(8).fill(0n);
  encodeFields<SteScalarField>(STE_FIELDS, ste, dw);
  dw[0] |= (ste.S1ContextPtr ?? 0n) & STE_0_S1CTXPTR_MASK;
  dw[3] |= (ste.S2TTB ?? 0n) & STE_3_S2TTB_MASK;
  return dw;
}

/** Encode an STE into its 64-byte little-endian form (see `encodeSteWords`). */
export function encodeSte(ste: SteInit): Uint8Array {
  return writeLe64Words(encodeSteWords(ste));
}

/** Decode the eight words of an STE into its fields (no validity check: V and Config are reported as found). */
export function decodeSteWords(dw: readonly bigint[]): Ste {
  return {
    ...decodeFields(STE_FIELDS, dw),
    S1ContextPtr: dw[0] & STE_0_S1CTXPTR_MASK,
    S2TTB: dw[3] & STE_3_S2TTB_MASK,
  };
}

/** Decode a 64-byte STE; fails only when fewer than 64 bytes are given. */
export function decodeSte(bytes: Uint8Array): Result<Ste> {
  if (bytes.byteLength < STE_BYTES) return err(`STE needs ${STE_BYTES} bytes, got ${bytes.byteLength}`);
  return ok(decodeSteWords(readLe64Words(bytes, 8)));
}

// ---------------------------------------------------------------------------------------------
// Context Descriptor
// ---------------------------------------------------------------------------------------------

/** CD.TG0 and STE.S2TG share one encoding: 0 = 4K, 1 = 64K, 2 = 16K. */
export const TG0_LOG2: Readonly<Record<number, number>> = { 0: 12, 1: 16, 2: 14 };
/** CD.TG1 uses the TCR_EL1.TG1 encoding: 1 = 16K, 2 = 4K, 3 = 64K. */
export const TG1_LOG2: Readonly<Record<number, number>> = { 1: 14, 2: 12, 3: 16 };

/**
 * A field of context descriptor word 0, by the specification's name (`T0SZ`, `TG0`, `IRGN0`, `ORGN0`, `SH0`, `EPD0`,
 * `EPD1`, `V`, `IPS`, `AA64`, `ASET`, `ASID`, ...); the table bases and attribute registers are separate.
 */
export type CdScalarField =
  | 'T0SZ'
  | 'TG0'
  | 'IRGN0'
  | 'ORGN0'
  | 'SH0'
  | 'EPD0'
  | 'ENDI'
  | 'T1SZ'
  | 'TG1'
  | 'IRGN1'
  | 'ORGN1'
  | 'SH1'
  | 'EPD1'
  | 'V'
  | 'IPS'
  | 'AFFD'
  | 'WXN'
  | 'UWXN'
  | 'TBI0'
  | 'TBI1'
  | 'PAN'
  | 'AA64'
  | 'HD'
  | 'HA'
  | 'S'
  | 'R'
  | 'A'
  | 'ASET'
  | 'ASID';

const CD_FIELDS: Readonly<Record<CdScalarField, Pos>> = {
  T0SZ: [0, 5, 0],
  TG0: [0, 7, 6],
  IRGN0: [0, 9, 8],
  ORGN0: [0, 11, 10],
  SH0: [0, 13, 12],
  EPD0: [0, 14, 14],
  ENDI: [0, 15, 15],
  T1SZ: [0, 21, 16],
  TG1: [0, 23, 22],
  IRGN1: [0, 25, 24],
  ORGN1: [0, 27, 26],
  SH1: [0, 29, 28],
  EPD1: [0, 30, 30],
  V: [0, 31, 31],
  IPS: [0, 34, 32],
  AFFD: [0, 35, 35],
  // WXN 36, UWXN 37, PAN 40: checked against the SMMUv3 spec's CD field list (§5.4); Linux never sets them.
  WXN: [0, 36, 36],
  UWXN: [0, 37, 37],
  TBI0: [0, 38, 38],
  TBI1: [0, 39, 39],
  PAN: [0, 40, 40],
  AA64: [0, 41, 41],
  HD: [0, 42, 42],
  HA: [0, 43, 43],
  S: [0, 44, 44],
  R: [0, 45, 45],
  A: [0, 46, 46],
  ASET: [0, 47, 47],
  ASID: [0, 63, 48],
};

const CD_TTB_MASK = genmask(51, 4);

/**
 * A decoded Context Descriptor: the scalar fields of CD word 0 (T0SZ, TG0, EPD0, ASID, AA64, V, ...) plus TTB0/TTB1 and
 * the attribute registers.
 */
export type Cd = { readonly [K in CdScalarField]: number } & {
  /** CD.TTB0: stage-1 table base for the lower VA range (bits [51:4]). */
  readonly TTB0: bigint;
  /** CD.TTB1: stage-1 table base for the upper VA range (bits [51:4]); Linux leaves it 0 and sets EPD1. */
  readonly TTB1: bigint;
  /** MAIR0 in the low 32 bits, MAIR1 in the high 32 bits. */
  readonly MAIR: bigint;
  /** CD.AMAIR: implementation-defined memory attributes (64 bits), 0 in Linux. */
  readonly AMAIR: bigint;
};
/** The CD fields to encode; absent fields are 0. */
export type CdInit = Partial<Cd>;

/** Encode a CD into its eight 64-bit words (word 1 TTB0, word 2 TTB1, word 3 MAIR, word 4 AMAIR). */
export function encodeCdWords(cd: CdInit): bigint[] {
  const dw = new Array<bigint>(8).fill(0n);
  encodeFields<CdScalarField>(CD_FIELDS, cd, dw);
  dw[1] = (cd.TTB0 ?? 0n) & CD_TTB_MASK;
  dw[2] = (cd.TTB1 ?? 0n) & CD_TTB_MASK;
  dw[3] = BigInt.asUintN(64, cd.MAIR ?? 0n);
  dw[4] = BigInt.asUintN(64, cd.AMAIR ?? 0n);
  return dw;
}

/** Encode a CD into its 64-byte little-endian form (see `encodeCdWords`). */
export function encodeCd(cd: CdInit): Uint8Array {
  return writeLe64Words(encodeCdWords(cd));
}

/** Decode the eight words of a CD into its fields (no validity check: V is reported as found). */
export function decodeCdWords(dw: readonly bigint[]): Cd {
  return {
    ...decodeFields(CD_FIELDS, dw),
    TTB0: dw[1] & CD_TTB_MASK,
    TTB1: dw[2] & CD_TTB_MASK,
    MAIR: dw[3],
    AMAIR: dw[4],
  };
}

/** Decode a 64-byte CD; fails only when fewer than 64 bytes are given. */
export function decodeCd(bytes: Uint8Array): Result<Cd> {
  if (bytes.byteLength < CD_BYTES) return err(`CD needs ${CD_BYTES} bytes, got ${bytes.byteLength}`);
  return ok(decodeCdWords(readLe64Words(bytes, 8)));
}

/** The MAIR value io-pgtable-arm programs: NC, WB-RWA, Device-nGnRE, inner-NC/outer-WB. */
export const LINUX_LPAE_MAIR = 0x44n | (0xffn << 8n) | (0x04n << 16n) | (0xf4n << 24n);

// ---------------------------------------------------------------------------------------------
// Level-1 stream table descriptor and level-1 CD descriptor
// ---------------------------------------------------------------------------------------------

const L1_SPAN: Pos = [0, 4, 0];
const L1_L2PTR_MASK = genmask(51, 6);

/**
 * A level-1 stream table descriptor (one 64-bit word) of a 2-level stream table (SMMU_STRTAB_BASE_CFG.FMT = 2-level).
 */
export interface StrtabL1Desc {
  /** log2(number of STEs in the L2 table) + 1; 0 means invalid. */
  readonly Span: number;
  /** Physical address of the level-2 STE array, 64-byte aligned (bits [51:6]). */
  readonly L2Ptr: bigint;
}

/** Encode a level-1 stream table descriptor word. */
export function encodeStrtabL1Desc(d: StrtabL1Desc): bigint {
  return fieldPrep(BigInt(d.Span), L1_SPAN[1], L1_SPAN[2]) | (d.L2Ptr & L1_L2PTR_MASK);
}

/** Decode a level-1 stream table descriptor word. */
export function decodeStrtabL1Desc(v: bigint): StrtabL1Desc {
  return { Span: Number(fieldGet(v, L1_SPAN[1], L1_SPAN[2])), L2Ptr: v & L1_L2PTR_MASK };
}

/** Linux's STRTAB_SPLIT: each L2 table holds 2^8 STEs, so it writes Span = 9. */
export const STRTAB_SPLIT = 8;

/** A level-1 CD table descriptor (one 64-bit word) of a 2-level CD table (STE.S1Fmt = 4K_L2 or 64K_L2). */
export interface CdL1Desc {
  /** Valid bit: 0 means the level-2 CD table is absent (a lookup through it raises C_BAD_SUBSTREAMID). */
  readonly V: number;
  /** Physical address of the level-2 CD table, 4 KiB aligned (bits [51:12]). */
  readonly L2Ptr: bigint;
}
const CD_L1_L2PTR_MASK = genmask(51, 12);

/** Encode a level-1 CD table descriptor word. */
export function encodeCdL1Desc(d: CdL1Desc): bigint {
  return BigInt(d.V & 1) | (d.L2Ptr & CD_L1_L2PTR_MASK);
}

/** Decode a level-1 CD table descriptor word. */
export function decodeCdL1Desc(v: bigint): CdL1Desc {
  return { V: Number(v & 1n), L2Ptr: v & CD_L1_L2PTR_MASK };
}

// ---------------------------------------------------------------------------------------------
// Nested guest STE: struct iommu_hwpt_arm_smmuv3 { __aligned_le64 ste[2]; }
// ---------------------------------------------------------------------------------------------

const HWPT_ARM_SMMUV3_SIZE = uapi.iommu_hwpt_arm_smmuv3.size;

const mask = (p: Pos): bigint => genmask(p[1], p[2]);

/** STRTAB_STE_0_NESTING_ALLOWED: the guest owns only its CD table pointer and format. */
export const STE_0_NESTING_ALLOWED =
  mask(STE_FIELDS.V) | mask(STE_FIELDS.Config) | mask(STE_FIELDS.S1Fmt) | STE_0_S1CTXPTR_MASK | mask(STE_FIELDS.S1CDMax);
/** STRTAB_STE_1_NESTING_ALLOWED. */
export const STE_1_NESTING_ALLOWED =
  mask(STE_FIELDS.S1DSS) |
  mask(STE_FIELDS.S1CIR) |
  mask(STE_FIELDS.S1COR) |
  mask(STE_FIELDS.S1CSH) |
  mask(STE_FIELDS.S1STALLD) |
  mask(STE_FIELDS.EATS);

/** A guest STE accepted by arm_smmu_validate_vste() for IOMMU_HWPT_ALLOC of a nested domain, decoded. */
export interface NestedSte {
  /** What the guest asked for: STE.Config abort, bypass or stage-1 translate. */
  readonly cfg: 'abort' | 'bypass' | 's1';
  /** V was 0: the kernel zeroes the words and installs an abort STE so the guest sees C_BAD_STE. */
  readonly valid: boolean;
  /** EATS = TRANS with Config = S1 translate: the master's ATS is enabled. */
  readonly enableAts: boolean;
  /** STE.S1Fmt: linear or 2-level guest CD table. */
  readonly S1Fmt: number;
  /** STE.S1ContextPtr: guest IPA of the guest's CD table. */
  readonly S1ContextPtr: bigint;
  /** STE.S1CDMax: log2 of the number of CDs (SubstreamIDs) the guest table holds. */
  readonly S1CDMax: number;
  /** STE.S1DSS: behaviour for transactions without a SubstreamID. */
  readonly S1DSS: number;
  /** STE.S1CIR: inner cacheability of CD table fetches. */
  readonly S1CIR: number;
  /** STE.S1COR: outer cacheability of CD table fetches. */
  readonly S1COR: number;
  /** STE.S1CSH: shareability of CD table fetches. */
  readonly S1CSH: number;
  /** STE.S1STALLD: 1 forbids stalling faults for this stream. */
  readonly S1STALLD: number;
  /** The two words as the kernel keeps them (EATS cleared: the host sets it itself). */
  readonly ste: readonly [bigint, bigint];
}

/**
 * The result of validating a guest STE: the decoded STE, or EINVAL (short data) / EIO (invalid STE bits), as the kernel
 * answers.
 */
export type NestedSteResult = Result<NestedSte, VendorError>;

const CFG_BY_VALUE: Readonly<Record<number, NestedSte['cfg']>> = {
  [STE_CFG.ABORT]: 'abort',
  [STE_CFG.BYPASS]: 'bypass',
  [STE_CFG.S1_TRANS]: 's1',
};

/** arm_smmu_validate_vste(): EIO is reserved for invalid STE data. */
export function validateNestedSte(data: Uint8Array | readonly [bigint, bigint]): NestedSteResult {
  let w: [bigint, bigint];
  if (data instanceof Uint8Array) {
    if (data.byteLength < HWPT_ARM_SMMUV3_SIZE) {
      return err({ errno: 'EINVAL', reason: `iommu_hwpt_arm_smmuv3 needs ${HWPT_ARM_SMMUV3_SIZE} bytes, got ${data.byteLength}` });
    }
    const r = readLe64Words(data, 2);
    w = [r[0], r[1]];
  } else w = [data[0], data[1]];

  if ((w[0] & 1n) === 0n) return ok(nestedValue('abort', false, false, [0n, 0n]));
  if ((w[0] & ~STE_0_NESTING_ALLOWED) !== 0n) {
    return err({ errno: 'EIO', reason: `ste[0] sets bits outside V/Config/S1Fmt/S1ContextPtr/S1CDMax: 0x${(w[0] & ~STE_0_NESTING_ALLOWED).toString(16)}` });
  }
  if ((w[1] & ~STE_1_NESTING_ALLOWED) !== 0n) {
    return err({ errno: 'EIO', reason: `ste[1] sets bits outside S1DSS/S1CIR/S1COR/S1CSH/S1STALLD/EATS: 0x${(w[1] & ~STE_1_NESTING_ALLOWED).toString(16)}` });
  }
  const cfgValue = Number(fieldGet(w[0], 3, 1));
  const cfg = CFG_BY_VALUE[cfgValue];
  if (!cfg) return err({ errno: 'EIO', reason: `Config 0b${cfgValue.toString(2).padStart(3, '0')} (${steCfgName(cfgValue)}) is not abort, bypass or S1 translate` });
  const eats = Number(fieldGet(w[1], 29, 28));
  if (eats !== STE_EATS.ABT && eats !== STE_EATS.TRANS) {
    return err({ errno: 'EIO', reason: `EATS ${eats} is neither ABT nor TRANS` });
  }
  const kept: [bigint, bigint] = [w[0], w[1] & ~mask(STE_FIELDS.EATS)];
  return ok(nestedValue(cfg, true, cfg === 's1' && eats === STE_EATS.TRANS, kept));
}

function nestedValue(cfg: NestedSte['cfg'], valid: boolean, enableAts: boolean, ste: [bigint, bigint]): NestedSte {
  const s = decodeSteWords([ste[0], ste[1], 0n, 0n, 0n, 0n, 0n, 0n]);
  return {
    cfg,
    valid,
    enableAts,
    S1Fmt: s.S1Fmt,
    S1ContextPtr: s.S1ContextPtr,
    S1CDMax: s.S1CDMax,
    S1DSS: s.S1DSS,
    S1CIR: s.S1CIR,
    S1COR: s.S1COR,
    S1CSH: s.S1CSH,
    S1STALLD: s.S1STALLD,
    ste,
  };
}

/**
 * The physical STE the host installs for a nested domain: the parent's S2 STE with Config = NESTED, the guest's
 * words ORed in and MEV set (merge events so a guest cannot flood the event queue). Abort/bypass vSTEs become an
 * abort STE and the plain S2 STE respectively.
 */
export function makeNestedPhysicalSte(s2Ste: readonly bigint[], nested: NestedSte, atsEnabled: boolean): bigint[] {
  if (!nested.valid || nested.cfg === 'abort') return encodeSteWords({ V: 1, Config: STE_CFG.ABORT });
  const dw = [...s2Ste];
  const eats = fieldPrep(BigInt(atsEnabled ? STE_EATS.TRANS : STE_EATS.ABT), 29, 28);
  dw[1] = (dw[1] & ~mask(STE_FIELDS.EATS)) | eats;
  if (nested.cfg === 'bypass') return dw;
  dw[0] = 1n | fieldPrep(BigInt(STE_CFG.NESTED), 3, 1) | (nested.ste[0] & ~mask(STE_FIELDS.Config));
  dw[1] |= nested.ste[1] | mask(STE_FIELDS.MEV);
  return dw;
}
