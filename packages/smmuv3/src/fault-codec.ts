/**
 * The SMMUv3 side of the fault pipeline: event queue records (32 bytes), PRI queue entries (16 bytes),
 * CMD_PRI_RESP page responses and vEVENTs, between core's normalized fault and the hardware formats.
 *
 * How a failed access becomes an event (core's TranslationFailure → event ID):
 * - 'not-present'        → F_TRANSLATION (0x10), CLASS = IN: no valid descriptor for the input address.
 * - 'permission-*'       → F_PERMISSION (0x13), CLASS = IN.
 * - 'address-size'       → F_ADDR_SIZE (0x11), CLASS = IN. (Hardware reports an IOVA above the CD's T0SZ range
 *                          as F_TRANSLATION and an output above the OAS as F_ADDR_SIZE; core's single
 *                          'address-size' is mapped to the latter, whose name it carries.)
 * - 'table-fault'        → F_TRANSLATION (0x10), CLASS = TT, S2 = 1: a guest stage-1 table address did not
 *                          translate at stage 2, which the SMMU reports as a stage-2 fault on the table fetch.
 * - 'no-context'         → the event the walk named in FailedAccess.contextFault (a nested walk's C_BAD_CD,
 *                          C_BAD_SUBSTREAMID, F_STREAM_DISABLED or C_BAD_STE); without one, C_BAD_STE (0x04)
 *                          without a PASID (no valid STE for the stream) and C_BAD_SUBSTREAMID (0x08) with one
 *                          (no context descriptor for that substream).
 * - 'blocked'            → F_STREAM_DISABLED (0x06) without a PASID; C_BAD_CD (0x0a) with one (Linux blocks a
 *                          PASID by clearing its CD, V = 0). A real abort STE (Config = 0b000) records no event
 *                          at all: the model still needs a record to carry the fault, and uses the event a
 *                          terminated non-substream transaction records.
 * F_ACCESS (0x12) has no TranslationFailure of its own (Linux always sets AF); it decodes as a 'dma' fault.
 *
 * Page responses: iommufd's codes map onto the PCIe PRG Response codes that CMD_PRI_RESP carries:
 * SUCCESS → Success (PRI_RESP_SUCC, 0b10); INVALID → Invalid Request (PRI_RESP_FAIL, 0b01);
 * FAILURE → Response Failure (PRI_RESP_DENY, 0b00), the catastrophic code that makes the function stop
 * issuing page requests.
 *
 * Stall model: a stalled transaction is an event record (F_TRANSLATION..F_PERMISSION) with Stall = 1 and
 * its STAG; it decodes as kind 'stall' with grpid = STAG. The answer is CMD_RESUME {SID, STAG, Resp}, as
 * arm_smmu_page_response() builds it for a stall-enabled master: SUCCESS → Resp RETRY (Ac = 1); INVALID
 * and FAILURE → Resp ABORT (Ab = 1). CMD_RESUME carries no SubstreamID. Resp TERM (0) is never sent by
 * Linux; decodeResume reads it, like ABORT, as not retried (FAILURE).
 */
import type { FailedAccess, FaultCodec, IommuFault, PageResponse, TranslationFailure } from '@ioasid/core/driver';
import {
  PAGE_RESP_FAILURE,
  PAGE_RESP_INVALID,
  PAGE_RESP_SUCCESS,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  permOf,
  PluginContractError,
  uapi,
} from '@ioasid/core/driver';
import {
  EVTQ_1_CLASS,
  EVTQ_ENT_BYTES,
  EVT_ID,
  PRIQ_ENT_BYTES,
  PRI_RESP,
  VEVENT_FORWARDED_IDS,
  decodeEvent,
  decodePriRequest,
  encodeEvent,
  encodePriRequest,
  encodeVEventArmSmmuv3,
  eventName,
  isStopMarker,
  type SmmuEventInit,
} from './records.js';
import { CMDQ_RESUME_0_RESP, decodeCommand, encodeCommand } from './commands.js';
import { renderEventLines, renderUnexpectedPriLines, withDevicePrefix } from './logs.js';

const PLUGIN = 'smmuv3';

/** The configuration events a nested walk may name in FailedAccess.contextFault for a 'no-context' failure. */
export const CONTEXT_FAULT_IDS: readonly number[] = [EVT_ID.C_BAD_STREAMID, EVT_ID.C_BAD_STE, EVT_ID.F_STREAM_DISABLED, EVT_ID.C_BAD_SUBSTREAMID, EVT_ID.C_BAD_CD];

/**
 * Event ID for each normalized failure; `pasid` decides between the stream and substream variants, and a
 * walk's own context event (`contextFault`) wins for 'no-context'.
 */
export function eventIdForFailure(failure: TranslationFailure, pasid: number, contextFault = 0): number {
  switch (failure) {
    case 'not-present':
    case 'table-fault':
      return EVT_ID.F_TRANSLATION;
    case 'permission-read':
    case 'permission-write':
    case 'permission-exec':
    case 'permission-priv':
      return EVT_ID.F_PERMISSION;
    case 'address-size':
      return EVT_ID.F_ADDR_SIZE;
    case 'no-context':
      if (CONTEXT_FAULT_IDS.includes(contextFault)) return contextFault;
      return pasid >= 0 ? EVT_ID.C_BAD_SUBSTREAMID : EVT_ID.C_BAD_STE;
    case 'blocked':
      return pasid >= 0 ? EVT_ID.C_BAD_CD : EVT_ID.F_STREAM_DISABLED;
  }
}

const PAGE_MASK = ~0xfffn;
const IPA_MASK = (1n << 52n) - 1n;

/** Event fields that describe the access itself (RnW, InD, PnU, SSV/SubstreamID). */
function accessFields(rid: number, pasid: number, perm: number): SmmuEventInit & Required<Pick<SmmuEventInit, 'StreamID'>> {
  return {
    ID: 0,
    StreamID: rid >>> 0,
    SSV: pasid >= 0 ? 1 : 0,
    SubstreamID: pasid >= 0 ? pasid : 0,
    // A DMA is a read or a write; a write that also wants read permission is recorded as the write.
    RnW: (perm & PERM_WRITE) === 0 ? 1 : 0,
    InD: (perm & PERM_EXEC) !== 0 ? 1 : 0,
    PnU: (perm & PERM_PRIV) !== 0 ? 1 : 0,
  };
}

function isTranslationEvent(id: number): boolean {
  return id >= EVT_ID.F_TRANSLATION && id <= EVT_ID.F_PERMISSION;
}

/** The record of an IommuFault (reason = event ID), as the hardware would have written it. */
export function eventRecordOfFault(f: IommuFault, classTt = false): Uint8Array {
  const base = accessFields(f.rid, f.pasid, f.perm);
  const id = f.reason & 0xff;
  const translation = isTranslationEvent(id);
  return encodeEvent({
    ...base,
    ID: id,
    ...(translation
      ? {
          CLASS: classTt ? EVTQ_1_CLASS.TT : EVTQ_1_CLASS.IN,
          S2: f.stage2 ? 1 : 0,
          Stall: f.kind === 'stall' ? 1 : 0,
          STAG: f.kind === 'stall' ? f.grpid & 0xffff : 0,
          InputAddr: BigInt.asUintN(64, f.addr),
          IPA: f.stage2 ? f.addr & IPA_MASK : 0n,
        }
      : { InputAddr: BigInt.asUintN(64, f.addr) }),
  });
}

function permOfEvent(rnw: number, ind: number, pnu: number): number {
  return (rnw ? PERM_READ : PERM_WRITE) | (ind ? PERM_EXEC : 0) | (pnu ? PERM_PRIV : 0);
}

function respCodeToPri(code: number): number {
  if (code === PAGE_RESP_SUCCESS) return PRI_RESP.SUCC;
  if (code === PAGE_RESP_INVALID) return PRI_RESP.FAIL;
  if (code === PAGE_RESP_FAILURE) return PRI_RESP.DENY;
  throw new PluginContractError(PLUGIN, `page response code ${code} is not SUCCESS, INVALID or FAILURE`);
}

function respCodeToResume(code: number): number {
  if (code === PAGE_RESP_SUCCESS) return CMDQ_RESUME_0_RESP.RETRY;
  if (code === PAGE_RESP_INVALID || code === PAGE_RESP_FAILURE) return CMDQ_RESUME_0_RESP.ABORT;
  throw new PluginContractError(PLUGIN, `page response code ${code} is not SUCCESS, INVALID or FAILURE`);
}

function resumeToRespCode(resp: number): number {
  if (resp === CMDQ_RESUME_0_RESP.RETRY) return PAGE_RESP_SUCCESS;
  if (resp === CMDQ_RESUME_0_RESP.ABORT) return PAGE_RESP_INVALID;
  if (resp === CMDQ_RESUME_0_RESP.TERM) return PAGE_RESP_FAILURE;
  throw new PluginContractError(PLUGIN, `CMD_RESUME Resp ${resp} is reserved`);
}

function priToRespCode(resp: number): number {
  if (resp === PRI_RESP.SUCC) return PAGE_RESP_SUCCESS;
  if (resp === PRI_RESP.FAIL) return PAGE_RESP_INVALID;
  if (resp === PRI_RESP.DENY) return PAGE_RESP_FAILURE;
  throw new PluginContractError(PLUGIN, `CMD_PRI_RESP Resp ${resp} is reserved`);
}

/** Options of `SmmuFaultCodec`. */
export interface SmmuFaultCodecOptions {
  /** Kernel log style: 'decoded' (≈v6.15+, the default) or 'raw' (older kernels: the dump only). */
  readonly logStyle?: 'decoded' | 'raw';
}

/**
 * The SMMUv3 fault codec: DMA faults as 32-byte event records, page requests as PRI queue entries, responses as
 * CMD_PRI_RESP or, for stalled transactions, CMD_RESUME; kernel log lines as arm_smmu_dump_event prints them.
 */
export class SmmuFaultCodec implements FaultCodec {
  readonly faultRecordSize = EVTQ_ENT_BYTES;
  readonly pageRequestSize = PRIQ_ENT_BYTES;

  constructor(private readonly options: SmmuFaultCodecOptions = {}) {}

  encodeFault(a: FailedAccess): Uint8Array {
    return this.encodeEventRecord(a, false);
  }

  /** The event record of a stalled transaction: Stall = 1 and STAG = `a.grpid` (16 bits). */
  encodeStall(a: FailedAccess): Uint8Array {
    if (!Number.isInteger(a.grpid) || a.grpid < 0 || a.grpid > 0xffff) {
      throw new PluginContractError(PLUGIN, `encodeStall: stall tag ${a.grpid} does not fit EVTQ_1_STAG (16 bits)`);
    }
    return this.encodeEventRecord(a, true);
  }

  private encodeEventRecord(a: FailedAccess, stall: boolean): Uint8Array {
    const id = eventIdForFailure(a.failure, a.pasid, a.contextFault ?? 0);
    const base = accessFields(a.rid, a.pasid, a.perm);
    if (!isTranslationEvent(id)) {
      // Only translation-stage faults (F_TRANSLATION..F_PERMISSION) can stall.
      if (stall) throw new PluginContractError(PLUGIN, `encodeStall: ${eventName(id)} (failure '${a.failure}') cannot stall`);
      return encodeEvent({ ...base, ID: id, InputAddr: BigInt.asUintN(64, a.addr) });
    }
    const tt = a.failure === 'table-fault';
    const s2 = a.stage2 || tt;
    return encodeEvent({
      ...base,
      ID: id,
      CLASS: tt ? EVTQ_1_CLASS.TT : EVTQ_1_CLASS.IN,
      // The table walk that failed was a read of the guest's table.
      TTRnW: tt ? 1 : 0,
      S2: s2 ? 1 : 0,
      Stall: stall ? 1 : 0,
      STAG: stall ? a.grpid : 0,
      InputAddr: BigInt.asUintN(64, a.addr),
      // FailedAccess does not carry the IPA of a nested access; a stage-2-only stream's input is its IPA.
      IPA: s2 && !tt ? a.addr & IPA_MASK & PAGE_MASK : 0n,
    });
  }

  encodePageRequest(a: FailedAccess): Uint8Array {
    return encodePriRequest({
      SID: a.rid >>> 0,
      SSV: a.pasid >= 0 ? 1 : 0,
      SSID: a.pasid >= 0 ? a.pasid : 0,
      PRIV: (a.perm & PERM_PRIV) !== 0 ? 1 : 0,
      EXEC: (a.perm & PERM_EXEC) !== 0 ? 1 : 0,
      READ: (a.perm & PERM_READ) !== 0 ? 1 : 0,
      WRITE: (a.perm & PERM_WRITE) !== 0 ? 1 : 0,
      LAST: a.last ? 1 : 0,
      PRGIndex: a.grpid & 0x1ff,
      Addr: BigInt.asUintN(64, a.addr) & PAGE_MASK,
    });
  }

  decodeFault(record: Uint8Array, unit: number): IommuFault {
    const r = decodeEvent(record);
    if (!r.ok) throw new PluginContractError(PLUGIN, r.error);
    const e = r.value;
    const translation = isTranslationEvent(e.ID);
    return {
      kind: translation && e.Stall ? 'stall' : 'dma',
      unit,
      rid: e.StreamID,
      pasid: e.SSV ? e.SubstreamID : -1,
      addr: e.InputAddr,
      perm: permOfEvent(e.RnW, e.InD, e.PnU),
      grpid: translation && e.Stall ? e.STAG : 0,
      last: true,
      reason: e.ID,
      reasonText: eventName(e.ID),
      stage2: translation && e.S2 === 1,
    };
  }

  decodePageRequest(record: Uint8Array, unit: number): IommuFault {
    const r = decodePriRequest(record);
    if (!r.ok) throw new PluginContractError(PLUGIN, r.error);
    const q = r.value;
    return {
      kind: 'page-request',
      unit,
      rid: q.SID,
      pasid: q.SSV ? q.SSID : -1,
      addr: q.Addr,
      perm: permOf({ read: q.READ, write: q.WRITE, exec: q.EXEC, priv: q.PRIV }),
      grpid: q.PRGIndex,
      last: q.LAST === 1,
      reason: 0,
      reasonText: isStopMarker(q) ? 'PRI stop marker' : 'PRI page request',
      stage2: false,
    };
  }

  encodePageResponse(r: PageResponse): Uint8Array {
    const enc = encodeCommand('CMD_PRI_RESP', {
      SID: r.rid >>> 0,
      SSV: r.pasid >= 0 ? 1 : 0,
      SSID: r.pasid >= 0 ? r.pasid : 0,
      GRPID: r.grpid & 0x1ff,
      PriResp: respCodeToPri(r.code),
    });
    if (!enc.ok) throw new PluginContractError(PLUGIN, enc.error);
    return enc.value;
  }

  decodePageResponse(bytes: Uint8Array): PageResponse {
    const c = decodeCommand(bytes);
    if (!c.ok) throw new PluginContractError(PLUGIN, c.error);
    if (c.value.name !== 'CMD_PRI_RESP') throw new PluginContractError(PLUGIN, `expected CMD_PRI_RESP, got ${c.value.name}`);
    const f = c.value.fields;
    return { rid: f.SID ?? 0, pasid: f.SSV ? (f.SSID ?? 0) : -1, grpid: f.GRPID ?? 0, code: priToRespCode(f.PriResp ?? 0) };
  }

  /** arm_smmu_page_response() for a stall-enabled master: CMD_RESUME with the event's SID and STAG. */
  encodeResume(r: PageResponse): Uint8Array {
    const enc = encodeCommand('CMD_RESUME', { SID: r.rid >>> 0, STAG: r.grpid & 0xffff, Resp: respCodeToResume(r.code) });
    if (!enc.ok) throw new PluginContractError(PLUGIN, enc.error);
    return enc.value;
  }

  /**
   * Read a CMD_RESUME back into a page response (RETRY → SUCCESS, ABORT → INVALID, TERM → FAILURE); throws on any other
   * command.
   */
  decodeResume(bytes: Uint8Array): PageResponse {
    const c = decodeCommand(bytes);
    if (!c.ok) throw new PluginContractError(PLUGIN, c.error);
    if (c.value.name !== 'CMD_RESUME') throw new PluginContractError(PLUGIN, `expected CMD_RESUME, got ${c.value.name}`);
    const f = c.value.fields;
    return { rid: f.SID ?? 0, pasid: -1, grpid: f.STAG ?? 0, code: resumeToRespCode(f.Resp ?? 0) };
  }

  renderLog(f: IommuFault, device: string, unitName: string): string[] {
    if (f.kind === 'page-request') {
      return renderUnexpectedPriLines({
        sid: f.rid,
        ssid: f.pasid >= 0 ? f.pasid : 0,
        grpid: f.grpid,
        last: f.last,
        privileged: (f.perm & PERM_PRIV) !== 0,
        read: (f.perm & PERM_READ) !== 0,
        write: (f.perm & PERM_WRITE) !== 0,
        exec: (f.perm & PERM_EXEC) !== 0,
        iova: f.addr,
      }).map((l) => withDevicePrefix(unitName, l));
    }
    return renderEventLines(eventRecordOfFault(f), { style: this.options.logStyle ?? 'decoded', client: device || undefined, device: unitName });
  }

  encodeVEvent(
    f: IommuFault,
    virtId: bigint,
  ): {
    /** IOMMU_VEVENTQ_TYPE_ARM_SMMUV3. */
    type: number;
    /** The event record with the StreamID replaced by the virtual SID (struct iommu_vevent_arm_smmuv3). */
    data: Uint8Array;
  } | null {
    if (f.kind === 'page-request' || !VEVENT_FORWARDED_IDS.includes(f.reason)) return null;
    // The vSID replaces EVTQ_0_SID, a 32-bit field.
    if (virtId < 0n || virtId > 0xffffffffn) return null;
    const r = encodeVEventArmSmmuv3(eventRecordOfFault(f), Number(virtId));
    return r.ok ? { type: uapi.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, data: r.value } : null;
  }
}
