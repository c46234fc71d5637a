/**
 * SMMUv3 event queue records (32 bytes) and PRI queue entries (16 bytes), plus the vEVENT that iommufd forwards
 * to a vSMMU. Field names follow the Arm SMMUv3 specification (§7.3, §8).
 */
import { readLe64Words, writeLe64Words, ok, err, fieldGet, fieldPrep, genmask, type Result } from '@ioasid/core/driver';

/** Size of one event queue record in bytes (four 64-bit words; Linux EVTQ_ENT_DWORDS = 4). */
export const EVTQ_ENT_BYTES = 32;
/** Size of one PRI queue entry in bytes (two 64-bit words; Linux PRIQ_ENT_DWORDS = 2). */
export const PRIQ_ENT_BYTES = 16;

/** Spec event IDs. */
export const EVT_ID = {
  /** Unsupported upstream transaction: a transaction type or attribute the SMMU does not accept. */
  F_UUT: 0x01,
  /**
   * The StreamID is at or above 2^SMMU_STRTAB_BASE_CFG.LOG2SIZE, or beyond its level-1 descriptor's Span (recorded when
   * SMMU_CR2.RECINVSID = 1).
   */
  C_BAD_STREAMID: 0x02,
  /** An external abort while fetching the STE. */
  F_STE_FETCH: 0x03,
  /**
   * The STE is invalid: V = 0, a reserved Config, or an illegal field combination (Linux's blocking/abort STE does not
   * record it).
   */
  C_BAD_STE: 0x04,
  /**
   * A PCIe ATS Translation Request that is not allowed: SMMU disabled, or effective STE.EATS = ABT (also for a bypass
   * Config).
   */
  F_BAD_ATS_TREQ: 0x05,
  /**
   * A transaction without a SubstreamID met STE.S1DSS = TERMINATE (with S1CDMax > 0), or SubstreamID 0 met S1DSS =
   * SSID0.
   */
  F_STREAM_DISABLED: 0x06,
  /**
   * An ATS-Translated transaction while SMMU_CR0.ATSCHK = 1 and the STE disallows it (STE.EATS, or Config bypasses both
   * stages).
   */
  F_TRANSL_FORBIDDEN: 0x07,
  /**
   * A SubstreamID where none is allowed (stage 1 off, S1CDMax = 0), at or above 2^STE.S1CDMax, or under a level-1 CD
   * descriptor with V = 0.
   */
  C_BAD_SUBSTREAMID: 0x08,
  /** An external abort while fetching the CD. */
  F_CD_FETCH: 0x09,
  /** The CD is invalid: V = 0 (how Linux blocks a PASID) or an illegal field combination. */
  C_BAD_CD: 0x0a,
  /** An external abort during a translation table walk (the table address is not backed by memory). */
  F_WALK_EABT: 0x0b,
  /** Translation fault: no valid descriptor for the input address, or the address lies outside the TxSZ range. */
  F_TRANSLATION: 0x10,
  /**
   * Address size fault: an output or table address above the configured size (CD.IPS / STE.S2PS, capped by
   * SMMU_IDR5.OAS).
   */
  F_ADDR_SIZE: 0x11,
  /** Access flag fault: a descriptor with AF = 0 and no hardware Access flag update. */
  F_ACCESS: 0x12,
  /** Permission fault: the access (read, write, execute, privilege) is not granted by the descriptor. */
  F_PERMISSION: 0x13,
  /** Several TLB entries matched the address (broken break-before-make by software). */
  F_TLB_CONFLICT: 0x20,
  /** Several configuration cache entries matched (an STE.CONT range overlapping a different STE). */
  F_CFG_CONFLICT: 0x21,
  /** A speculative page request hint carrying an address and a Span. */
  E_PAGE_REQUEST: 0x24,
  /** An external abort while fetching a Virtual Machine Structure (SMMUv3.2 VMS). */
  F_VMS_FETCH: 0x25,
} as const;
/** The specification name of an event ID, `F_*`, `C_*` or `E_*`. */
export type EventName = keyof typeof EVT_ID;

const NAME_BY_ID = new Map<number, EventName>(
  (Object.keys(EVT_ID) as EventName[]).map((n) => [EVT_ID[n], n] as const),
);

/** The spec name of an event ID; IMPDEF for 0xe0..0xef, otherwise UNKNOWN. */
export function eventName(id: number): string {
  const n = NAME_BY_ID.get(id);
  if (n) return n;
  if (id >= 0xe0 && id <= 0xef) return 'IMPDEF';
  return 'UNKNOWN';
}

/** Events whose record carries STAG/Stall/PnU/InD/RnW/S2/CLASS/InputAddr/IPA (translation-stage faults). */
export const TRANSLATION_FAULT_IDS: readonly number[] = [
  EVT_ID.F_TRANSLATION,
  EVT_ID.F_ADDR_SIZE,
  EVT_ID.F_ACCESS,
  EVT_ID.F_PERMISSION,
];
/**
 * Events whose record has an InputAddr in dword 2 (SMMUv3 spec, event records): the translation faults, F_UUT,
 * F_BAD_ATS_TREQ, F_TRANSL_FORBIDDEN, F_WALK_EABT, F_TLB_CONFLICT and E_PAGE_REQUEST. Configuration errors
 * (C_BAD_STREAMID, C_BAD_STE, C_BAD_SUBSTREAMID, C_BAD_CD), F_STREAM_DISABLED, F_CFG_CONFLICT and the fetch
 * aborts carry no input address there.
 */
export const INPUT_ADDR_IDS: readonly number[] = [
  EVT_ID.F_UUT,
  EVT_ID.F_BAD_ATS_TREQ,
  EVT_ID.F_TRANSL_FORBIDDEN,
  EVT_ID.F_WALK_EABT,
  EVT_ID.F_TRANSLATION,
  EVT_ID.F_ADDR_SIZE,
  EVT_ID.F_ACCESS,
  EVT_ID.F_PERMISSION,
  EVT_ID.F_TLB_CONFLICT,
  EVT_ID.E_PAGE_REQUEST,
];
/** Events whose dword 3 is a FetchAddr. */
export const FETCH_FAULT_IDS: readonly number[] = [EVT_ID.F_STE_FETCH, EVT_ID.F_CD_FETCH, EVT_ID.F_VMS_FETCH];

/** Event record CLASS (word 1 bits [41:40]): what the SMMU was accessing when a translation fault happened. */
export const EVTQ_1_CLASS = {
  /** The fault happened while fetching the CD (stage-2 translation of the CD address). */
  CD: 0,
  /**
   * A stage-1 translation table descriptor fetch faulted (at stage 2 in a nested walk; F_WALK_EABT also at stage 1).
   */
  TT: 1,
  /** The input address of the transaction itself faulted. */
  IN: 2,
  /** Reserved encoding. */
  RESERVED: 3,
} as const;

/** Field positions (dword, hi, lo), Linux EVTQ_* masks. */
const F = {
  ID: [0, 7, 0],
  SSV: [0, 11, 11],
  SubstreamID: [0, 31, 12],
  StreamID: [0, 63, 32],
  STAG: [1, 15, 0],
  Stall: [1, 31, 31],
  PnU: [1, 33, 33],
  InD: [1, 34, 34],
  RnW: [1, 35, 35],
  S2: [1, 39, 39],
  CLASS: [1, 41, 40],
  TTRnW: [1, 44, 44],
  // NSIPA is bit 127 of the record in the spec's F_TRANSLATION layout; Linux does not read it.
  NSIPA: [1, 63, 63],
  // E_PAGE_REQUEST: Span in bits [127:116].
  Span: [1, 63, 52],
} as const satisfies Record<string, readonly [number, number, number]>;

/** Field positions of an event record (dword, hi, lo), for bit diagrams (record-words.ts). */
export const EVENT_FIELD_POSITIONS: Readonly<Record<string, readonly [number, number, number]>> = F;

const EVTQ_3_IPA = genmask(51, 12);
const EVTQ_3_FETCH_ADDR = genmask(51, 3);

/** One decoded event queue record (32 bytes), fields named as in the SMMUv3 specification's event records. */
export interface SmmuEvent {
  /** Event ID (word 0 bits [7:0]), an `EVT_ID` value. */
  readonly ID: number;
  /** SubstreamID valid: the transaction carried a SubstreamID (PASID). */
  readonly SSV: number;
  /** SubstreamID (PASID) of the faulting transaction; meaningful only when SSV = 1. */
  readonly SubstreamID: number;
  /** StreamID of the faulting transaction (for PCIe, the requester ID as the root complex maps it). */
  readonly StreamID: number;
  /** Stall tag: identifies a stalled transaction to CMD_RESUME; meaningful only when Stall = 1. */
  readonly STAG: number;
  /** 1 when the transaction is stalled and waits for CMD_RESUME or CMD_STALL_TERM. */
  readonly Stall: number;
  /** 1 for a privileged access, 0 for an unprivileged one. */
  readonly PnU: number;
  /** 1 for an instruction fetch, 0 for a data access. */
  readonly InD: number;
  /** 1 for a read, 0 for a write. */
  readonly RnW: number;
  /** 1 when the fault was raised at stage 2, 0 for stage 1. */
  readonly S2: number;
  /** What was being accessed, an `EVTQ_1_CLASS` value (CD fetch, table walk or the input address). */
  readonly CLASS: number;
  /** For CLASS = TT: 1 when the walk access was a read, 0 for a hardware update write. */
  readonly TTRnW: number;
  /** For a stage-2 fault: 1 when the IPA is a Non-secure IPA. */
  readonly NSIPA: number;
  /** E_PAGE_REQUEST: the number of pages the hint covers. */
  readonly Span: number;
  /** Input address of the faulting transaction (the IOVA), word 2 as recorded. */
  readonly InputAddr: bigint;
  /** dword 3 & [51:12], as Linux reads it for translation faults. */
  readonly IPA: bigint;
  /** dword 3 & [51:3], as Linux reads it for fetch faults. */
  readonly FetchAddr: bigint;
}

/** The fields of an event record to encode: ID is required, absent fields are 0. */
export type SmmuEventInit = Partial<SmmuEvent> & {
  /** Event ID, an `EVT_ID` value. */
  readonly ID: number;
};

type ScalarField = keyof typeof F;

/** Encode an event record into its 32-byte little-endian form. */
export function encodeEvent(evt: SmmuEventInit): Uint8Array {
  const dw = [0n, 0n, 0n, 0n];
  for (const name of Object.keys(F) as ScalarField[]) {
    const v = evt[name];
    if (v === undefined) continue;
    const [d, hi, lo] = F[name];
    dw[d] |= fieldPrep(BigInt(v), hi, lo);
  }
  dw[2] = BigInt.asUintN(64, evt.InputAddr ?? 0n);
  dw[3] = ((evt.IPA ?? 0n) & EVTQ_3_IPA) | ((evt.FetchAddr ?? 0n) & EVTQ_3_FETCH_ADDR);
  return writeLe64Words(dw);
}

/** Decode the four 64-bit words of an event record (every field is read, whether the event ID defines it or not). */
export function decodeEventWords(dw: readonly bigint[]): SmmuEvent {
  const get = (name: ScalarField): number => {
    const [d, hi, lo] = F[name];
    return Number(fieldGet(dw[d], hi, lo));
  };
  return {
    ID: get('ID'),
    SSV: get('SSV'),
    SubstreamID: get('SubstreamID'),
    StreamID: get('StreamID'),
    STAG: get('STAG'),
    Stall: get('Stall'),
    PnU: get('PnU'),
    InD: get('InD'),
    RnW: get('RnW'),
    S2: get('S2'),
    CLASS: get('CLASS'),
    TTRnW: get('TTRnW'),
    NSIPA: get('NSIPA'),
    Span: get('Span'),
    InputAddr: dw[2],
    IPA: dw[3] & EVTQ_3_IPA,
    FetchAddr: dw[3] & EVTQ_3_FETCH_ADDR,
  };
}

/** Decode a 32-byte event record; fails only when fewer bytes are given. */
export function decodeEvent(bytes: Uint8Array): Result<SmmuEvent> {
  if (bytes.byteLength < EVTQ_ENT_BYTES) {
    return err(`event record needs ${EVTQ_ENT_BYTES} bytes, got ${bytes.byteLength}`);
  }
  return ok(decodeEventWords(readLe64Words(bytes, 4)));
}

/** The four little-endian 64-bit words of an event record, for hex dumps as Linux prints them. */
export function eventWords(bytes: Uint8Array): bigint[] {
  return readLe64Words(bytes, 4);
}

/**
 * The fields Linux's arm_smmu_decode_event() keeps: SSID reads as 0 (IOMMU_NO_PASID) without SSV, and the
 * table-walk direction only means something for a permission fault of CLASS TT.
 */
export interface LinuxDecodedEvent {
  /** Event ID (EVTQ_0_ID), an `EVT_ID` value. */
  readonly id: number;
  /** StreamID of the faulting master (EVTQ_0_SID): the master Linux looks up for the report. */
  readonly sid: number;
  /** Whether a SubstreamID was given. */
  readonly ssv: boolean;
  /** SubstreamID, 0 (IOMMU_NO_PASID) when SSV = 0. */
  readonly ssid: number;
  /** Privileged access (PnU = 1). */
  readonly privileged: boolean;
  /** Instruction fetch (InD = 1), else a data access. */
  readonly instruction: boolean;
  /** Read access (RnW = 1), else a write. */
  readonly read: boolean;
  /** The fault was raised at stage 2 (S2 = 1): `ipa` is valid. */
  readonly s2: boolean;
  /** Stall tag (EVTQ_1_STAG): the STAG a CMD_RESUME for this transaction must carry. */
  readonly stag: number;
  /** The transaction is stalled (EVTQ_1_STALL) and waits for CMD_RESUME. */
  readonly stall: boolean;
  /** CLASS, an `EVTQ_1_CLASS` value. */
  readonly class: number;
  /** True only for F_PERMISSION with CLASS = TT: the table walk itself was denied. */
  readonly classTt: boolean;
  /** Table-walk direction (TTRnW), meaningful only with `classTt`. */
  readonly ttrnw: boolean;
  /** Faulting input address (InputAddr). */
  readonly iova: bigint;
  /** Faulting IPA (word 3 [51:12]) for stage-2 faults. */
  readonly ipa: bigint;
  /** Address of the failed STE/CD/VMS fetch (word 3 [51:3]). */
  readonly fetchAddr: bigint;
}

/** Reduce a decoded event to the fields Linux's arm_smmu_decode_event() keeps. */
export function linuxDecodeEvent(e: SmmuEvent): LinuxDecodedEvent {
  return {
    id: e.ID,
    sid: e.StreamID,
    ssv: e.SSV === 1,
    ssid: e.SSV ? e.SubstreamID : 0,
    privileged: e.PnU === 1,
    instruction: e.InD === 1,
    read: e.RnW === 1,
    s2: e.S2 === 1,
    stag: e.STAG,
    stall: e.Stall === 1,
    class: e.CLASS,
    classTt: e.ID === EVT_ID.F_PERMISSION && e.CLASS === EVTQ_1_CLASS.TT,
    ttrnw: e.TTRnW === 1,
    iova: e.InputAddr,
    ipa: e.IPA,
    fetchAddr: e.FetchAddr,
  };
}

// ---------------------------------------------------------------------------------------------
// vEVENT: struct iommu_vevent_arm_smmuv3 { __aligned_le64 evt[4]; }
// ---------------------------------------------------------------------------------------------

/** The events the host forwards to a vSMMU for a nested master (the guest owns their cause). */
export const VEVENT_FORWARDED_IDS: readonly number[] = [
  EVT_ID.C_BAD_STE,
  EVT_ID.F_STREAM_DISABLED,
  EVT_ID.C_BAD_SUBSTREAMID,
  EVT_ID.C_BAD_CD,
  EVT_ID.F_TRANSLATION,
  EVT_ID.F_ADDR_SIZE,
  EVT_ID.F_ACCESS,
  EVT_ID.F_PERMISSION,
];

/** Rewrites the StreamID to the guest's virtual SID, the rest of the record travels unchanged. */
export function encodeVEventArmSmmuv3(record: Uint8Array, vSid: number): Result<Uint8Array> {
  if (record.byteLength < EVTQ_ENT_BYTES) return err(`event record needs ${EVTQ_ENT_BYTES} bytes`);
  const dw = readLe64Words(record, 4);
  const id = Number(fieldGet(dw[0], 7, 0));
  if (!VEVENT_FORWARDED_IDS.includes(id)) {
    return err(`event 0x${id.toString(16).padStart(2, '0')} (${eventName(id)}) is not forwarded to a vSMMU`);
  }
  dw[0] = (dw[0] & ~genmask(63, 32)) | fieldPrep(BigInt(vSid), 63, 32);
  return ok(writeLe64Words(dw));
}

// ---------------------------------------------------------------------------------------------
// PRI queue (§8)
// ---------------------------------------------------------------------------------------------

/** One PRI queue entry: a PCIe Page Request (ATS PRI) the SMMU queued for software. */
export interface PriRequest {
  /** StreamID (the PCI RID). */
  readonly SID: number;
  /** SubstreamID (PASID) of the request, word 0 bits [51:32]; meaningful only when SSV = 1. */
  readonly SSID: number;
  /** PASID valid (word 0 bit 63): the request carried a PASID TLP prefix. */
  readonly SSV: number;
  /** Privileged-mode access requested (word 0 bit 58). */
  readonly PRIV: number;
  /** Execute access requested (word 0 bit 59). */
  readonly EXEC: number;
  /** Read access requested (word 0 bit 60). */
  readonly READ: number;
  /** Write access requested (word 0 bit 61). */
  readonly WRITE: number;
  /** Last request of its page request group (word 0 bit 62): software answers the group with CMD_PRI_RESP after it. */
  readonly LAST: number;
  /** Page Request Group Index (9 bits), echoed in CMD_PRI_RESP GRPID. */
  readonly PRGIndex: number;
  /** Page address: bits [63:12]. */
  readonly Addr: bigint;
}

const P = {
  SID: [0, 31, 0],
  SSID: [0, 51, 32],
  PRIV: [0, 58, 58],
  EXEC: [0, 59, 59],
  READ: [0, 60, 60],
  WRITE: [0, 61, 61],
  LAST: [0, 62, 62],
  SSV: [0, 63, 63],
  PRGIndex: [1, 8, 0],
} as const satisfies Record<string, readonly [number, number, number]>;
type PriScalar = keyof typeof P;
/** Field positions of a PRI queue entry (dword, hi, lo), for bit diagrams (record-words.ts). */
export const PRI_FIELD_POSITIONS: Readonly<Record<string, readonly [number, number, number]>> = P;
const PRIQ_1_ADDR_MASK = genmask(63, 12);

/** Encode a PRI queue entry into its 16-byte little-endian form; absent fields are 0. */
export function encodePriRequest(req: Partial<PriRequest>): Uint8Array {
  const dw = [0n, 0n];
  for (const name of Object.keys(P) as PriScalar[]) {
    const v = req[name];
    if (v === undefined) continue;
    const [d, hi, lo] = P[name];
    dw[d] |= fieldPrep(BigInt(v), hi, lo);
  }
  dw[1] |= (req.Addr ?? 0n) & PRIQ_1_ADDR_MASK;
  return writeLe64Words(dw);
}

/** Decode a 16-byte PRI queue entry; fails only when fewer bytes are given. */
export function decodePriRequest(bytes: Uint8Array): Result<PriRequest> {
  if (bytes.byteLength < PRIQ_ENT_BYTES) {
    return err(`PRI queue entry needs ${PRIQ_ENT_BYTES} bytes, got ${bytes.byteLength}`);
  }
  const dw = readLe64Words(bytes, 2);
  const get = (name: PriScalar): number => {
    const [d, hi, lo] = P[name];
    return Number(fieldGet(dw[d], hi, lo));
  };
  return {
    ok: true,
    value: {
      SID: get('SID'),
      SSID: get('SSID'),
      SSV: get('SSV'),
      PRIV: get('PRIV'),
      EXEC: get('EXEC'),
      READ: get('READ'),
      WRITE: get('WRITE'),
      LAST: get('LAST'),
      PRGIndex: get('PRGIndex'),
      Addr: dw[1] & PRIQ_1_ADDR_MASK,
    },
  };
}

/** A Stop Marker is encoded as L/W/R = 0b100 with a valid PASID (spec §8). */
export function isStopMarker(req: PriRequest): boolean {
  return req.SSV === 1 && req.LAST === 1 && req.WRITE === 0 && req.READ === 0;
}

/** CMD_PRI_RESP Resp values (Linux enum pri_resp). */
export const PRI_RESP = {
  /** PCIe Response Failure: catastrophic, the function stops issuing page requests (IOMMU_PAGE_RESP_FAILURE). */
  DENY: 0,
  /** PCIe Invalid Request: the pages cannot be made present (IOMMU_PAGE_RESP_INVALID). */
  FAIL: 1,
  /** PCIe Success: the pages are present, the function retries (IOMMU_PAGE_RESP_SUCCESS). */
  SUCC: 2,
} as const;
/** The name of a CMD_PRI_RESP response. */
export type PriRespName = keyof typeof PRI_RESP;
