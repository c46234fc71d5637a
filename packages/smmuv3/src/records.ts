/**
 * SMMUv3 event queue records (32 bytes) and PRI queue entries (16 bytes), plus the vEVENT that iommufd forwards
 * to a vSMMU. Field names follow the Arm SMMUv3 specification (§7.3, §8).
 */
import { fieldGet, fieldPrep, genmask, type Result } from '@ioasid/core/driver';
import { readLe64Words, writeLe64Words } from './registers.js';

export const EVTQ_ENT_BYTES = 32;
export const PRIQ_ENT_BYTES = 16;

/** Spec event IDs. */
export const EVT_ID = {
  F_UUT: 0x01,
  C_BAD_STREAMID: 0x02,
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_BAD_ATS_TREQ: 0x05,
  F_STREAM_DISABLED: 0x06,
  F_TRANSL_FORBIDDEN: 0x07,
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20,
  F_CFG_CONFLICT: 0x21,
  E_PAGE_REQUEST: 0x24,
  F_VMS_FETCH: 0x25,
} as const;
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

export const EVTQ_1_CLASS = { CD: 0, TT: 1, IN: 2, RESERVED: 3 } as const;

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

export interface SmmuEvent {
  readonly ID: number;
  readonly SSV: number;
  readonly SubstreamID: number;
  readonly StreamID: number;
  readonly STAG: number;
  readonly Stall: number;
  readonly PnU: number;
  readonly InD: number;
  readonly RnW: number;
  readonly S2: number;
  readonly CLASS: number;
  readonly TTRnW: number;
  readonly NSIPA: number;
  readonly Span: number;
  readonly InputAddr: bigint;
  /** dword 3 & [51:12], as Linux reads it for translation faults. */
  readonly IPA: bigint;
  /** dword 3 & [51:3], as Linux reads it for fetch faults. */
  readonly FetchAddr: bigint;
}

export type SmmuEventInit = Partial<SmmuEvent> & { readonly ID: number };

type ScalarField = keyof typeof F;

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

export function decodeEvent(bytes: Uint8Array): Result<SmmuEvent> {
  if (bytes.byteLength < EVTQ_ENT_BYTES) {
    return { ok: false, error: `event record needs ${EVTQ_ENT_BYTES} bytes, got ${bytes.byteLength}` };
  }
  return { ok: true, value: decodeEventWords(readLe64Words(bytes, 4)) };
}

export function eventWords(bytes: Uint8Array): bigint[] {
  return readLe64Words(bytes, 4);
}

/**
 * The fields Linux's arm_smmu_decode_event() keeps: SSID reads as 0 (IOMMU_NO_PASID) without SSV, and the
 * table-walk direction only means something for a permission fault of CLASS TT.
 */
export interface LinuxDecodedEvent {
  readonly id: number;
  readonly sid: number;
  readonly ssv: boolean;
  readonly ssid: number;
  readonly privileged: boolean;
  readonly instruction: boolean;
  readonly read: boolean;
  readonly s2: boolean;
  readonly stag: number;
  readonly stall: boolean;
  readonly class: number;
  readonly classTt: boolean;
  readonly ttrnw: boolean;
  readonly iova: bigint;
  readonly ipa: bigint;
  readonly fetchAddr: bigint;
}

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
  if (record.byteLength < EVTQ_ENT_BYTES) return { ok: false, error: `event record needs ${EVTQ_ENT_BYTES} bytes` };
  const dw = readLe64Words(record, 4);
  const id = Number(fieldGet(dw[0], 7, 0));
  if (!VEVENT_FORWARDED_IDS.includes(id)) {
    return { ok: false, error: `event 0x${id.toString(16).padStart(2, '0')} (${eventName(id)}) is not forwarded to a vSMMU` };
  }
  dw[0] = (dw[0] & ~genmask(63, 32)) | fieldPrep(BigInt(vSid), 63, 32);
  return { ok: true, value: writeLe64Words(dw) };
}

// ---------------------------------------------------------------------------------------------
// PRI queue (§8)
// ---------------------------------------------------------------------------------------------

export interface PriRequest {
  /** StreamID (the PCI RID). */
  readonly SID: number;
  readonly SSID: number;
  readonly SSV: number;
  readonly PRIV: number;
  readonly EXEC: number;
  readonly READ: number;
  readonly WRITE: number;
  readonly LAST: number;
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

export function decodePriRequest(bytes: Uint8Array): Result<PriRequest> {
  if (bytes.byteLength < PRIQ_ENT_BYTES) {
    return { ok: false, error: `PRI queue entry needs ${PRIQ_ENT_BYTES} bytes, got ${bytes.byteLength}` };
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
export const PRI_RESP = { DENY: 0, FAIL: 1, SUCC: 2 } as const;
export type PriRespName = keyof typeof PRI_RESP;
