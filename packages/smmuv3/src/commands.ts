/**
 * SMMUv3 command queue entries (16 bytes = 2 little-endian u64) and the iommufd vSMMU invalidation rules.
 * Field names are the specification's (Arm IHI 0070 §4); bit positions are Linux's CMDQ_* masks.
 */
import { readLe64Words, writeLe64Words, ok, err, fieldFits, fieldGet, fieldPrep, genmask, type Result, type VendorError } from '@ioasid/core/driver';

/** Size of one command queue entry in bytes (two little-endian 64-bit words; Linux CMDQ_ENT_DWORDS = 2). */
export const CMDQ_ENT_BYTES = 16;

/** SMMUv3 command opcodes (CMD_* in Arm IHI 0070 §4, Linux `CMDQ_OP_*`): the low byte of command word 0. */
export const CMDQ_OP = {
  /** Prefetch the configuration (STE/CD) of a StreamID/SubstreamID into the SMMU's caches. */
  CMD_PREFETCH_CONFIG: 0x01,
  /** Prefetch translations for an address range of a StreamID/SubstreamID. */
  CMD_PREFETCH_ADDR: 0x02,
  /** Invalidate the cached STE of one StreamID (Leaf = 1: the STE only); Linux arm_smmu_sync_ste_for_sid. */
  CMD_CFGI_STE: 0x03,
  /** CMD_CFGI_ALL is CFGI_STE_RANGE with Range = 31. */
  CMD_CFGI_STE_RANGE: 0x04,
  /** Invalidate the cached CD of one StreamID/SubstreamID pair; Linux arm_smmu_sync_cd. */
  CMD_CFGI_CD: 0x05,
  /** Invalidate every cached CD of one StreamID. */
  CMD_CFGI_CD_ALL: 0x06,
  /** Invalidate all stage-1 (non-hypervisor) TLB entries of a VMID. */
  CMD_TLBI_NH_ALL: 0x10,
  /** Invalidate the stage-1 TLB entries of one ASID in a VMID; Linux arm_smmu_tlb_inv_asid. */
  CMD_TLBI_NH_ASID: 0x11,
  /** Invalidate stage-1 TLB entries by VA (and ASID), optionally as a range; Linux arm_smmu_tlb_inv_range_asid. */
  CMD_TLBI_NH_VA: 0x12,
  /** Invalidate stage-1 TLB entries by VA whatever their ASID, in a VMID. */
  CMD_TLBI_NH_VAA: 0x13,
  /** Invalidate all EL3 TLB entries (Secure state only). */
  CMD_TLBI_EL3_ALL: 0x18,
  /** Invalidate EL3 TLB entries by VA (Secure state only). */
  CMD_TLBI_EL3_VA: 0x1a,
  /** Invalidate all EL2 TLB entries (SMMU_IDR0.HYP; Linux uses it for E2H domains). */
  CMD_TLBI_EL2_ALL: 0x20,
  /** Invalidate EL2 TLB entries of one ASID (E2H). */
  CMD_TLBI_EL2_ASID: 0x21,
  /** Invalidate EL2 TLB entries by VA and ASID (E2H). */
  CMD_TLBI_EL2_VA: 0x22,
  /** Invalidate EL2 TLB entries by VA for every ASID (E2H). */
  CMD_TLBI_EL2_VAA: 0x23,
  /** Invalidate every stage-1 and stage-2 TLB entry of a VMID; Linux arm_smmu_tlb_inv_context for an S2 domain. */
  CMD_TLBI_S12_VMALL: 0x28,
  /** Invalidate stage-2 TLB entries by IPA in a VMID, optionally as a range. */
  CMD_TLBI_S2_IPA: 0x2a,
  /** Invalidate every non-secure, non-hypervisor TLB entry (all VMIDs and ASIDs); Linux uses it at reset. */
  CMD_TLBI_NSNH_ALL: 0x30,
  /** Invalidate a PCIe device's ATC (ATS translation cache) for an address span; Linux arm_smmu_atc_inv_domain. */
  CMD_ATC_INV: 0x40,
  /** Respond to a PCIe PRI page request group (GRPID) with Success, Invalid or Failure. */
  CMD_PRI_RESP: 0x41,
  /** Resume or terminate a stalled transaction identified by StreamID and STAG. */
  CMD_RESUME: 0x44,
  /** Terminate every stalled transaction of a StreamID. */
  CMD_STALL_TERM: 0x45,
  /** Wait until all earlier commands complete; CS selects the completion signal (none, MSI/IRQ, SEV). */
  CMD_SYNC: 0x46,
} as const;
/** The name of a command opcode, `CMD_*` as the specification spells it. */
export type CommandName = keyof typeof CMDQ_OP;

const NAME_BY_OP = new Map<number, CommandName>(
  (Object.keys(CMDQ_OP) as CommandName[]).map((n) => [CMDQ_OP[n], n] as const),
);

/** The command name of an opcode byte, or undefined for an opcode the SMMU would reject with CERROR_ILL. */
export function commandName(op: number): CommandName | undefined {
  return NAME_BY_OP.get(op);
}

/**
 * A non-address field of a command, by the specification's name: the stream and substream (`SID`, `SSV`, `SSID`),
 * the TLB tags (`VMID`, `ASID`), the range invalidation fields (`NUM`, `SCALE`, `TTL`, `TG`, `Leaf`, `Range`), the
 * prefetch, ATC and PRI response fields, and CMD_SYNC's completion signal (`CS`, `MSH`, `MSIAttr`, `MSIData`).
 * Several names share bits; an opcode uses only its own subset ({@link commandFieldNames}).
 */
export type CommandScalarField =
  | 'SSV'
  | 'SSID'
  | 'SID'
  | 'Leaf'
  | 'Range'
  | 'NUM'
  | 'SCALE'
  | 'VMID'
  | 'ASID'
  | 'TTL'
  | 'TG'
  | 'Global'
  | 'Size'
  | 'PrefetchSize'
  | 'GRPID'
  | 'PriResp'
  | 'Resp'
  | 'STAG'
  | 'CS'
  | 'MSH'
  | 'MSIAttr'
  | 'MSIData';

/** Field positions as [dword, hi, lo]. */
const LAYOUT: Readonly<Record<CommandScalarField, readonly [dword: number, hi: number, lo: number]>> = {
  SSV: [0, 11, 11],
  SSID: [0, 31, 12],
  SID: [0, 63, 32],
  Leaf: [1, 0, 0],
  Range: [1, 4, 0],
  NUM: [0, 16, 12],
  SCALE: [0, 24, 20],
  VMID: [0, 47, 32],
  ASID: [0, 63, 48],
  TTL: [1, 9, 8],
  TG: [1, 11, 10],
  Global: [0, 9, 9],
  Size: [1, 5, 0],
  PrefetchSize: [1, 4, 0],
  GRPID: [1, 8, 0],
  PriResp: [1, 13, 12],
  Resp: [0, 13, 12],
  STAG: [1, 15, 0],
  CS: [0, 13, 12],
  MSH: [0, 23, 22],
  MSIAttr: [0, 27, 24],
  MSIData: [0, 63, 32],
};

/**
 * An address field of a command: `Addr` (VA, prefetch or ATC address, bits [63:12]), `IPA` (CMD_TLBI_S2_IPA, [51:12])
 * or `MSIAddr` (CMD_SYNC's MSI address, [51:2]). Address fields are bigint and keep their in-place bit positions: the
 * low bits below the field are zero.
 */
export type CommandAddrField = 'Addr' | 'IPA' | 'MSIAddr';

/** The bits of word 1 each address field occupies. */
const ADDR_MASK: Readonly<Record<CommandAddrField, bigint>> = {
  Addr: genmask(63, 12),
  IPA: genmask(51, 12),
  MSIAddr: genmask(51, 2),
};

const RANGE_VA: readonly CommandScalarField[] = ['NUM', 'SCALE', 'Leaf', 'TTL', 'TG'];

const FIELDS_BY_OP: Record<CommandName, { scalar: readonly CommandScalarField[]; addr: readonly CommandAddrField[] }> = {
  CMD_PREFETCH_CONFIG: { scalar: ['SID', 'SSV', 'SSID'], addr: [] },
  CMD_PREFETCH_ADDR: { scalar: ['SID', 'SSV', 'SSID', 'PrefetchSize'], addr: ['Addr'] },
  CMD_CFGI_STE: { scalar: ['SID', 'Leaf'], addr: [] },
  CMD_CFGI_STE_RANGE: { scalar: ['SID', 'Range'], addr: [] },
  CMD_CFGI_CD: { scalar: ['SID', 'SSID', 'Leaf'], addr: [] },
  CMD_CFGI_CD_ALL: { scalar: ['SID'], addr: [] },
  CMD_TLBI_NH_ALL: { scalar: ['VMID'], addr: [] },
  CMD_TLBI_NH_ASID: { scalar: ['VMID', 'ASID'], addr: [] },
  CMD_TLBI_NH_VA: { scalar: ['VMID', 'ASID', ...RANGE_VA], addr: ['Addr'] },
  CMD_TLBI_NH_VAA: { scalar: ['VMID', ...RANGE_VA], addr: ['Addr'] },
  CMD_TLBI_EL3_ALL: { scalar: [], addr: [] },
  CMD_TLBI_EL3_VA: { scalar: [...RANGE_VA], addr: ['Addr'] },
  CMD_TLBI_EL2_ALL: { scalar: [], addr: [] },
  CMD_TLBI_EL2_ASID: { scalar: ['ASID'], addr: [] },
  CMD_TLBI_EL2_VA: { scalar: ['ASID', ...RANGE_VA], addr: ['Addr'] },
  CMD_TLBI_EL2_VAA: { scalar: [...RANGE_VA], addr: ['Addr'] },
  CMD_TLBI_S12_VMALL: { scalar: ['VMID'], addr: [] },
  CMD_TLBI_S2_IPA: { scalar: ['VMID', ...RANGE_VA], addr: ['IPA'] },
  CMD_TLBI_NSNH_ALL: { scalar: [], addr: [] },
  CMD_ATC_INV: { scalar: ['SID', 'SSV', 'SSID', 'Global', 'Size'], addr: ['Addr'] },
  CMD_PRI_RESP: { scalar: ['SID', 'SSV', 'SSID', 'GRPID', 'PriResp'], addr: [] },
  CMD_RESUME: { scalar: ['SID', 'Resp', 'STAG'], addr: [] },
  CMD_STALL_TERM: { scalar: ['SID'], addr: [] },
  CMD_SYNC: { scalar: ['CS', 'MSH', 'MSIAttr', 'MSIData'], addr: ['MSIAddr'] },
};

/** The fields of one command: scalar fields as numbers, address fields as bigint at their in-place bit positions. */
export type CommandFields = { readonly [K in CommandScalarField]?: number } & { readonly [K in CommandAddrField]?: bigint };

/** One decoded command queue entry. */
export interface SmmuCommand {
  /** Opcode byte (command word 0 bits [7:0]). */
  readonly op: number;
  /** Command name for `op`. */
  readonly name: CommandName;
  /** The fields the opcode defines, each decoded from its bit position (unused bits are not reported). */
  readonly fields: CommandFields;
}

/** The field names an opcode defines, scalar fields first, then address fields. */
export function commandFieldNames(name: CommandName): readonly string[] {
  const f = FIELDS_BY_OP[name];
  return [...f.scalar, ...f.addr];
}

/**
 * Encode a command into its two 64-bit words; fails when a field does not fit, has stray low bits or does not belong to
 * the opcode.
 */
export function encodeCommandWords(name: CommandName, fields: CommandFields): Result<[bigint, bigint]> {
  const layout = FIELDS_BY_OP[name];
  const dw: [bigint, bigint] = [BigInt(CMDQ_OP[name]), 0n];
  for (const key of Object.keys(fields)) {
    const scalar = key as CommandScalarField;
    const addr = key as CommandAddrField;
    if (layout.scalar.includes(scalar)) {
      const v = fields[scalar];
      if (v === undefined) continue;
      const [d, hi, lo] = LAYOUT[scalar];
      if (!Number.isInteger(v) || !fieldFits(v, hi, lo)) {
        return err(`${name}: ${key}=${v} does not fit bits [${hi}:${lo}]`);
      }
      dw[d] |= fieldPrep(BigInt(v), hi, lo);
    } else if (layout.addr.includes(addr)) {
      const v = fields[addr];
      if (v === undefined) continue;
      if ((v & ~ADDR_MASK[addr]) !== 0n) {
        return err(`${name}: ${key}=0x${v.toString(16)} has bits outside its field`);
      }
      dw[1] |= v;
    } else {
      return err(`${name} has no field ${key}`);
    }
  }
  return ok(dw);
}

/** Encode a command into its 16-byte little-endian queue entry (see `encodeCommandWords`). */
export function encodeCommand(name: CommandName, fields: CommandFields = {}): Result<Uint8Array> {
  const r = encodeCommandWords(name, fields);
  return r.ok ? ok(writeLe64Words(r.value)) : r;
}

/** Decode two command words; an opcode the SMMU does not implement fails as CERROR_ILL would. */
export function decodeCommandWords(dw: readonly bigint[]): Result<SmmuCommand> {
  const op = Number(dw[0] & 0xffn);
  const name = commandName(op);
  // Hardware raises CERROR_ILL for an opcode it does not implement.
  if (!name) return err(`illegal command opcode 0x${op.toString(16).padStart(2, '0')} (CERROR_ILL)`);
  const layout = FIELDS_BY_OP[name];
  const fields: Record<string, number | bigint> = {};
  for (const f of layout.scalar) {
    const [d, hi, lo] = LAYOUT[f];
    fields[f] = Number(fieldGet(dw[d], hi, lo));
  }
  for (const f of layout.addr) fields[f] = dw[1] & ADDR_MASK[f];
  return ok({ op, name, fields: fields as CommandFields });
}

/** Decode a 16-byte command queue entry (see `decodeCommandWords`). */
export function decodeCommand(bytes: Uint8Array): Result<SmmuCommand> {
  if (bytes.byteLength < CMDQ_ENT_BYTES) {
    return err(`command needs ${CMDQ_ENT_BYTES} bytes, got ${bytes.byteLength}`);
  }
  return decodeCommandWords(readLe64Words(bytes, 2));
}

// ---------------------------------------------------------------------------------------------
// Range invalidation (§4.4) and ATC invalidation (§4.5)
// ---------------------------------------------------------------------------------------------

/** TG → log2 of the translation granule. */
export const TLBI_TG_LOG2: Readonly<Record<number, number>> = { 1: 12, 2: 14, 3: 16 };
/** Largest NUM field of a range TLBI (5 bits): one command covers at most (31 + 1) × 2^SCALE granules. */
export const CMDQ_TLBI_RANGE_NUM_MAX = 31;

/** What a TLBI by address covers: a single address (TG = 0) or a range of granules (TG ≠ 0, SMMU_IDR3.RIL). */
export type TlbiCoverage =
  /** TG = 0: the legacy form, every entry of any size that holds Addr. */
  | {
      /** No TG: a single-address invalidation. */
      readonly kind: 'address';
      /** The address every matching entry must hold. */
      readonly addr: bigint;
    }
  /** TG ≠ 0: a range invalidation of (NUM + 1) × 2^SCALE granules. */
  | {
      /** A range invalidation. */
      readonly kind: 'range';
      /** First byte covered (Addr aligned down to the granule). */
      readonly start: bigint;
      /** Last byte covered (inclusive). */
      readonly last: bigint;
      /** log2 of the translation granule TG selects (12, 14 or 16). */
      readonly granuleLog2: number;
      /** TTL hint: the table level of the leaf entries, 0 when unknown. */
      readonly ttl: number;
    };

/** The IOVA (or IPA) range a TLBI_*_VA / S2_IPA command covers: (NUM + 1) × 2^SCALE granules from Addr. */
export function tlbiCoverage(f: { Addr?: bigint; IPA?: bigint; NUM?: number; SCALE?: number; TG?: number; TTL?: number }): TlbiCoverage {
  const addr = f.Addr ?? f.IPA ?? 0n;
  const tg = f.TG ?? 0;
  if (tg === 0) return { kind: 'address', addr };
  const g = TLBI_TG_LOG2[tg];
  const start = (addr >> BigInt(g)) << BigInt(g);
  const size = BigInt((f.NUM ?? 0) + 1) << BigInt((f.SCALE ?? 0) + g);
  return { kind: 'range', start, last: start + size - 1n, granuleLog2: g, ttl: f.TTL ?? 0 };
}

/** One range invalidation command's address fields, as Linux __arm_smmu_tlb_inv_range() fills them. */
export interface TlbiRangeChunk {
  /** Start address, aligned to the granule. */
  readonly Addr: bigint;
  /** Granule count minus one, in units of 2^SCALE granules. */
  readonly NUM: number;
  /** Power-of-two multiplier of NUM. */
  readonly SCALE: number;
  /** Translation granule: 1 = 4 KiB, 2 = 16 KiB, 3 = 64 KiB. */
  readonly TG: number;
  /** Translation table level of the leaf entries (0 = any level). */
  readonly TTL: number;
}

/**
 * How Linux's __arm_smmu_tlb_inv_range() splits [iova, iova + size) into range commands on a RIL SMMU:
 * tgLog2 is the smallest page size of the domain, granuleLog2 the leaf size when `leaf`.
 */
export function linuxTlbiRangeChunks(iova: bigint, size: bigint, tgLog2: number, leaf: boolean, granuleLog2 = tgLog2): TlbiRangeChunk[] {
  const tg = (tgLog2 - 10) / 2;
  let numPages = size >> BigInt(tgLog2);
  let ttl = 0;
  if (leaf) ttl = 4 - Math.floor((granuleLog2 - 3) / (tgLog2 - 3));
  // A non-leaf single page would encode as NUM=0,SCALE=0,TTL=0, which is reserved: round up to two pages.
  else if ((numPages & BigInt(CMDQ_TLBI_RANGE_NUM_MAX)) === 1n) numPages++;
  const out: TlbiRangeChunk[] = [];
  const end = iova + size;
  let addr = iova;
  while (addr < end && numPages > 0n) {
    const scale = lowestSetBit(numPages);
    const num = Number((numPages >> BigInt(scale)) & BigInt(CMDQ_TLBI_RANGE_NUM_MAX));
    out.push({ Addr: addr, NUM: num - 1, SCALE: scale, TG: tg, TTL: ttl });
    addr += BigInt(num) << BigInt(scale + tgLog2);
    numPages -= BigInt(num) << BigInt(scale);
  }
  return out;
}

function lowestSetBit(v: bigint): number {
  let n = 0;
  while (((v >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** CMD_ATC_INV Size value that invalidates the whole address space of the StreamID/SubstreamID. */
export const ATC_INV_SIZE_ALL = 52;

/** The range a CMD_ATC_INV covers: 4 KiB × 2^Size, aligned to its own size; Size 52 is the whole space. */
export function atcInvCoverage(f: { Addr?: bigint; Size?: number }): {
  /** First byte invalidated. */
  start: bigint;
  /** Last byte invalidated (inclusive). */
  last: bigint;
} {
  const size = f.Size ?? 0;
  if (size >= ATC_INV_SIZE_ALL) return { start: 0n, last: (1n << 64n) - 1n };
  const span = 1n << BigInt(12 + size);
  const start = (f.Addr ?? 0n) & ~(span - 1n);
  return { start, last: start + span - 1n };
}

/** Linux arm_smmu_atc_inv_to_cmd(): the smallest aligned span covering [iova, iova + size). */
export function linuxAtcInvFields(iova: bigint, size: bigint): {
  /** CMD_ATC_INV Addr: the span's start, aligned to its size. */
  Addr: bigint;
  /** CMD_ATC_INV Size: log2 of the span in 4 KiB pages (52 = everything). */
  Size: number;
} {
  if (size === 0n) return { Addr: 0n, Size: ATC_INV_SIZE_ALL };
  let pageStart = iova >> 12n;
  const pageEnd = (iova + size - 1n) >> 12n;
  let log2Span = 0;
  for (let x = pageStart ^ pageEnd; x > 0n; x >>= 1n) log2Span++;
  pageStart &= ~((1n << BigInt(log2Span)) - 1n);
  return { Addr: pageStart << 12n, Size: log2Span };
}

// ---------------------------------------------------------------------------------------------
// CMD_RESUME / CMD_SYNC encodings and CMDQ errors
// ---------------------------------------------------------------------------------------------

/** CMD_RESUME response field (Linux `CMDQ_RESUME_0_RESP_*`, bits [13:12] of word 0). */
export const CMDQ_RESUME_0_RESP = {
  /** Terminate the stalled transaction without an abort (Ac = 0, Ab = 0); Linux never sends it. */
  TERM: 0,
  /** Retry the transaction (Ac = 1): the fault was resolved (IOMMU_PAGE_RESP_SUCCESS). */
  RETRY: 1,
  /** Terminate the transaction with an abort to the device (Ab = 1): Linux's answer to INVALID and FAILURE. */
  ABORT: 2,
} as const;
/** CMD_SYNC completion signal CS (Linux `CMDQ_SYNC_0_CS_*`, bits [13:12] of word 0). */
export const CMDQ_SYNC_0_CS = {
  /** No completion signal: software polls SMMU_CMDQ_CONS. */
  NONE: 0,
  /** Signal completion by an interrupt: the MSI write the command describes (Linux with ARM_SMMU_OPT_MSIPOLL). */
  IRQ: 1,
  /** Signal completion with a send-event (SEV) that wakes a WFE wait; Linux's choice when it does not poll an MSI. */
  SEV: 2,
} as const;

/** SMMU_GERROR CMDQ_ERR reasons reported in SMMU_CMDQ_CONS.ERR (Linux `CMDQ_ERR_CERROR_*_IDX`). */
export const CMDQ_CERROR = {
  /** No error. */
  CERROR_NONE: 0,
  /** Illegal command: unknown opcode or a reserved field set; the queue stops at it. */
  CERROR_ILL: 1,
  /** An abort on reading the command from memory. */
  CERROR_ABT: 2,
  /** A CMD_SYNC followed an ATC invalidation that timed out (the endpoint did not complete it). */
  CERROR_ATC_INV_SYNC: 3,
} as const;
/** A CMDQ error name, `CERROR_*`. */
export type CmdqErrorName = keyof typeof CMDQ_CERROR;

/** Linux cerror_str[], printed as "CMDQ error (cons 0x%08x): %s". */
export const CMDQ_CERROR_STR: readonly string[] = [
  'No error',
  'Illegal command',
  'Abort on command fetch',
  'ATC invalidate timeout',
];

/** The name of a SMMU_CMDQ_CONS.ERR code, or 'UNKNOWN' for a value the specification does not define. */
export function cmdqErrorName(code: number): CmdqErrorName | 'UNKNOWN' {
  const n = (Object.keys(CMDQ_CERROR) as CmdqErrorName[]).find((k) => CMDQ_CERROR[k] === code);
  return n ?? 'UNKNOWN';
}


// ---------------------------------------------------------------------------------------------
// iommufd vSMMU user invalidation: struct iommu_viommu_arm_smmuv3_invalidate { __aligned_le64 cmd[2]; }
// ---------------------------------------------------------------------------------------------

/**
 * The vSMMU state a guest invalidation command is checked against and rewritten with (iommufd IOMMU_HWPT_INVALIDATE on
 * a vIOMMU).
 */
export interface VsmmuContext {
  /** The VMID of the nesting parent's S2 domain: every guest TLBI is forced into it. */
  readonly vmid: number;
  /** vSID → physical SID through the vDEVICE table; undefined when no vDEVICE has that virtual ID. */
  readonly vsidToSid: (vsid: number) => number | undefined;
  /**
   * When given, also apply the per-opcode allowed-bit checks of newer kernels (arm_vsmmu_validate_user_cmd),
   * which keep a guest from wedging the shared CMDQ with a CERROR_ILL.
   */
  readonly strict?: {
    /** Width of a guest ASID in bits (8 or 16, SMMU_IDR0.ASID16). */
    readonly asidBits: number;
    /** SubstreamID width of the SMMU (SMMU_IDR1.SSIDSIZE); 0 forbids SSV/SSID in commands. */
    readonly ssidBits: number;
    /** Whether range invalidation (SMMU_IDR3.RIL) is accepted: NUM, SCALE, TG and TTL may be set. */
    readonly rangeInvalidation: boolean;
    /** Whether the SMMU has ATS (SMMU_IDR0.ATS): CMD_ATC_INV is accepted only then. */
    readonly ats: boolean;
    /** Whether SMMU_IDR5.DS (52-bit with 4K/16K granules) is present: allows TTL 1 with a 16 KiB TG. */
    readonly ds?: boolean;
  };
}

/** A guest command accepted (as the host command it becomes) or refused with EIO. */
export type ViommuInvalidationResult = Result<
  {
    /** The command the host issues (NSNH_ALL becomes NH_ALL). */
    readonly op: CommandName;
    /** The rewritten command words with the host VMID or physical SID. */
    readonly cmd: readonly [bigint, bigint];
  },
  VendorError
>;

const USER_OPS: readonly CommandName[] = [
  'CMD_TLBI_NSNH_ALL',
  'CMD_TLBI_NH_VA',
  'CMD_TLBI_NH_VAA',
  'CMD_TLBI_NH_ALL',
  'CMD_TLBI_NH_ASID',
  'CMD_ATC_INV',
  'CMD_CFGI_CD',
  'CMD_CFGI_CD_ALL',
];

function eio(reason: string): ViommuInvalidationResult {
  return err({ errno: 'EIO', reason });
}

const M = (f: CommandScalarField): bigint => {
  const [, hi, lo] = LAYOUT[f];
  return genmask(hi, lo);
};

function validateRange(dw: readonly bigint[], ds: boolean): string | undefined {
  const range = (dw[0] & (M('NUM') | M('SCALE'))) !== 0n;
  const ttl = Number(fieldGet(dw[1], 9, 8));
  const tg = Number(fieldGet(dw[1], 11, 10));
  if (!tg) return range || ttl ? 'NUM/SCALE/TTL must be 0 when TG is 0' : undefined;
  if (tg === 2 && ttl === 1 && !ds) return 'TTL 1 with a 16K TG needs IDR5.DS';
  if (!range && !ttl) return 'NUM 0, SCALE 0 with TTL 0 is reserved';
  return undefined;
}

function allowedBits(name: CommandName, dw: readonly bigint[], s: NonNullable<VsmmuContext['strict']>): [bigint, bigint] | string {
  const a: [bigint, bigint] = [0xffn, 0n];
  const asidMask = fieldPrep((1n << BigInt(s.asidBits)) - 1n, 63, 48);
  switch (name) {
    case 'CMD_TLBI_NSNH_ALL':
      break;
    case 'CMD_TLBI_NH_VA':
    case 'CMD_TLBI_NH_VAA':
      if (name === 'CMD_TLBI_NH_VA') a[0] |= asidMask;
      if (s.rangeInvalidation) {
        const bad = validateRange(dw, s.ds ?? false);
        if (bad) return bad;
        a[0] |= M('NUM') | M('SCALE');
        a[1] |= M('TG') | M('TTL');
      }
      a[0] |= M('VMID');
      a[1] |= M('Leaf') | ADDR_MASK.Addr;
      break;
    case 'CMD_TLBI_NH_ASID':
    case 'CMD_TLBI_NH_ALL':
      if (name === 'CMD_TLBI_NH_ASID') a[0] |= asidMask;
      a[0] |= M('VMID');
      break;
    case 'CMD_ATC_INV':
      if (!s.ats) return 'ATC_INV on an SMMU without ATS';
      if (fieldGet(dw[1], 5, 0) > BigInt(ATC_INV_SIZE_ALL)) return 'ATC_INV Size above 52';
      if (s.ssidBits) a[0] |= M('SSV') | M('SSID') | M('Global');
      a[0] |= M('SID');
      a[1] |= M('Size') | ADDR_MASK.Addr;
      break;
    case 'CMD_CFGI_CD':
    case 'CMD_CFGI_CD_ALL':
      if (name === 'CMD_CFGI_CD') {
        if (s.ssidBits) a[0] |= M('SSID');
        a[1] |= M('Leaf');
      }
      a[0] |= M('SID');
      break;
    default:
      return `${name} is not accepted from user space`;
  }
  return a;
}

/**
 * arm_vsmmu_convert_user_cmd(): accept only the stage-1 and CD/ATC invalidations a guest may issue and force the
 * host's identifiers into them. NSNH_ALL becomes NH_ALL in the vSMMU's VMID, the NH_* TLBIs get the VMID
 * overwritten, and ATC_INV/CFGI_CD/CFGI_CD_ALL get the vSID replaced by the physical SID.
 */
export function validateViommuInvalidation(cmd: Uint8Array | readonly [bigint, bigint], ctx: VsmmuContext): ViommuInvalidationResult {
  let dw: bigint[];
  if (cmd instanceof Uint8Array) {
    if (cmd.byteLength < CMDQ_ENT_BYTES) return eio(`command needs ${CMDQ_ENT_BYTES} bytes`);
    dw = readLe64Words(cmd, 2);
  } else dw = [cmd[0], cmd[1]];
  const op = Number(dw[0] & 0xffn);
  const name = commandName(op);
  if (!name || !USER_OPS.includes(name)) {
    return eio(`opcode 0x${op.toString(16).padStart(2, '0')} (${name ?? 'unknown'}) is not accepted from a vSMMU`);
  }
  if (ctx.strict) {
    const a = allowedBits(name, dw, ctx.strict);
    if (typeof a === 'string') return eio(a);
    if ((dw[0] & ~a[0]) !== 0n || (dw[1] & ~a[1]) !== 0n) return eio(`${name} sets bits outside its fields`);
  }
  const vmid = fieldPrep(BigInt(ctx.vmid), 47, 32);
  switch (name) {
    case 'CMD_TLBI_NSNH_ALL':
      return ok({ op: 'CMD_TLBI_NH_ALL', cmd: [BigInt(CMDQ_OP.CMD_TLBI_NH_ALL) | vmid, 0n] });
    case 'CMD_TLBI_NH_VA':
    case 'CMD_TLBI_NH_VAA':
    case 'CMD_TLBI_NH_ALL':
    case 'CMD_TLBI_NH_ASID':
      return ok({ op: name, cmd: [(dw[0] & ~M('VMID')) | vmid, dw[1]] });
    default: {
      const vsid = Number(fieldGet(dw[0], 63, 32));
      const sid = ctx.vsidToSid(vsid);
      if (sid === undefined) return eio(`no vDEVICE with virtual SID 0x${vsid.toString(16)}`);
      return ok({ op: name, cmd: [(dw[0] & ~M('SID')) | fieldPrep(BigInt(sid), 63, 32), dw[1]] });
    }
  }
}
