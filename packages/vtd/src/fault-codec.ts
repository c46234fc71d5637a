/**
 * The FaultCodec of a DMAR unit: core's failed accesses as the hardware records them (a 128-bit fault
 * recording register, a 256-bit page request descriptor), page group responses, and the lines Linux
 * prints.
 *
 * Fault reason codes. Legacy-mode units (no ECAP.SMTS) only have second-stage tables and report the
 * legacy codes; scalable-mode units report the SM codes of the stage that faulted:
 *
 * | failure                 | legacy | SM, second stage        | SM, first stage (nested stage 1)   |
 * |-------------------------|--------|-------------------------|------------------------------------|
 * | not-present, read       | 0x06   | 0x79 R/W permission     | 0x71 P clear in FL entry           |
 * | not-present, write      | 0x05   | 0x79                    | 0x71                               |
 * | permission-read         | 0x06   | 0x79                    | 0x86 no read permission            |
 * | permission-write        | 0x05   | 0x79                    | 0x85 no write permission           |
 * | permission-exec         | 0x06   | 0x79                    | 0x82 no execute permission         |
 * | permission-priv         | 0x06   | 0x79                    | 0x81 U/S clear for a user request  |
 * | address-size            | 0x04   | 0x83 beyond DMA HW max  | 0x80 non-canonical                 |
 * | table-fault             | 0x07   | 0x78 SS entry access    | 0x76 SS read error on an FL entry  |
 * | blocked                 | 0x02   | 0x59 PASID entry P clear (same)                              |
 * | no-context              | 0x02   | 0x41 context entry P clear (same)                            |
 *
 * A second-stage table has no present bit: a missing entry is a read/write permission fault, which
 * is why unmapped IOVAs report 0x06/0x05 ("PTE Read/Write access is not set") in legacy mode and 0x79
 * in scalable mode. The stage that faulted is the format of the table whose walk failed, which core
 * passes in `FailedAccess.format`: 'vtd-fs' (a first-stage paging domain, or a nested stage 1) gives
 * the first-stage codes, anything else ('vtd-ss', a nest parent) the second-stage ones. A table fault
 * is always the second stage failing on a first-stage table pointer (0x76 in scalable mode).
 */
import type { Result } from '@ioasid/core/driver';
import { LeWordView, readLe64, PAGE_RESP_FAILURE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, pageRequestFault, pageRequestFieldsOf, permOf, PluginContractError, type FailedAccess, type FaultCodec, type IommuFault, type PageRequestFields, type PageResponse, type TranslationFailure } from '@ioasid/core/driver';
import {
  FRCD_SIZE,
  PAGE_GRP_RESP_DSC_SIZE,
  PAGE_REQ_DSC_SIZE,
  PRQ_TYPE_PAGE_REQUEST,
  QI_RESP_FAILURE,
  QI_RESP_INVALID,
  QI_RESP_SUCCESS,
  decodeFrcd,
  decodePageGroupResponse,
  decodePageReqDsc,
  encodeFrcd,
  encodePageReqDsc,
  frcdForDmaFault,
  type VtdFrcd,
} from './records.js';
import {
  dmarFaultReason,
} from './fault-reasons.js';
import { renderDmaFaultLine } from './logs.js';
import { VTD_FS_FORMAT } from './pgtable-fs.js';

/** The stage a requester's translation uses: second stage (paging, nest parent) or first stage. */
export type VtdAttachedStage = 'ss' | 'fs';

const LEGACY: Record<TranslationFailure, number> = {
  'not-present': -1, // 0x06 read / 0x05 write, by access type
  'permission-read': 0x06,
  'permission-write': 0x05,
  'permission-exec': 0x06,
  'permission-priv': 0x06,
  'address-size': 0x04,
  'table-fault': 0x07,
  blocked: 0x02,
  'no-context': 0x02,
};

const SM_SECOND_STAGE: Record<TranslationFailure, number> = {
  'not-present': 0x79,
  'permission-read': 0x79,
  'permission-write': 0x79,
  'permission-exec': 0x79,
  'permission-priv': 0x79,
  'address-size': 0x83,
  'table-fault': 0x78,
  blocked: 0x59,
  'no-context': 0x41,
};

const SM_FIRST_STAGE: Record<TranslationFailure, number> = {
  'not-present': 0x71,
  'permission-read': 0x86,
  'permission-write': 0x85,
  'permission-exec': 0x82,
  'permission-priv': 0x81,
  'address-size': 0x80,
  'table-fault': 0x76,
  blocked: 0x59,
  'no-context': 0x41,
};

/** Reason codes that name a second-stage (parent) failure: SM 0x74-0x7c and 0x84. */
function isSecondStageReason(fr: number): boolean {
  return (fr >= 0x74 && fr <= 0x7c) || fr === 0x84;
}

/** Options of `VtdFaultCodec`. */
export interface VtdFaultCodecOptions {
  /** The unit runs in scalable mode (ECAP.SMTS): SM reason codes. */
  readonly scalableMode: boolean;
}

/** The stage of the table whose walk failed, from FailedAccess.format (second stage when unknown). */
export function vtdStageOfFormat(format: string | undefined): VtdAttachedStage {
  return format === VTD_FS_FORMAT ? 'fs' : 'ss';
}

/**
 * The VT-d fault reason for a failed access. `firstStage` says the walk that failed was a first-stage
 * one (first-stage paging domain or nested stage 1); `a.stage2` overrides it for the parent stage of a
 * nested walk.
 */
export function vtdFaultReasonFor(a: Pick<FailedAccess, 'failure' | 'perm' | 'stage2'>, scalableMode: boolean, firstStage: boolean): number {
  if (!scalableMode) {
    if (a.failure === 'not-present') return a.perm & PERM_WRITE ? 0x05 : 0x06;
    return LEGACY[a.failure];
  }
  // A table fault is by definition the second stage failing on a first-stage table pointer.
  if (a.failure === 'table-fault') return SM_FIRST_STAGE['table-fault'];
  return (a.stage2 || !firstStage ? SM_SECOND_STAGE : SM_FIRST_STAGE)[a.failure];
}

function unwrap<T>(r: Result<T>, what: string): T {
  if (!r.ok) throw new PluginContractError('vtd', `${what}: ${r.error}`);
  return r.value;
}

function checkPasid(pasid: number, what: string): void {
  // `(x & mask) === x` holds only for an integer in [0, mask]: an integer PASID of 0 to 0xfffff, or -1.
  if (pasid !== -1 && (pasid & 0xfffff) !== pasid) throwPasid(pasid, what);
}

/** checkPasid's error, out of line: V8 inlines callees into a compiled caller by their bytecode size. */
function throwPasid(pasid: number, what: string): never {
  throw new PluginContractError('vtd', `${what}: PASID ${pasid} does not fit the 20-bit PASID field`);
}

/** The normalized fault of a fault recording register. */
export function frcdToFault(frcd: VtdFrcd, unit: number): IommuFault {
  const reason = dmarFaultReason(frcd.FR);
  return {
    kind: 'dma',
    unit,
    rid: frcd.SID,
    pasid: frcd.PP ? frcd.PV : -1,
    addr: frcd.FI << 12n,
    perm: (frcd.T1 ? PERM_READ : PERM_WRITE) | (frcd.EXE ? PERM_EXEC : 0) | (frcd.PRIV ? PERM_PRIV : 0),
    grpid: 0,
    last: true,
    reason: frcd.FR,
    reasonText: reason.text,
    stage2: isSecondStageReason(frcd.FR),
  };
}

// Direct paths: the page request descriptor and the page group response are written and read as
// 32-bit little-endian words, without the intermediate PageReqDsc / PageGroupResponseDsc objects.
// They produce exactly the bytes (and fields) of encodePageReqDsc / encodePageGroupResponse /
// decodePageReqDsc / decodePageGroupResponse (faults.ts). A page group response always fits (every
// field is masked or checked first); a page request whose address is not a bigint in [0, 2^53], a
// record of the wrong size or type, or an unknown response code takes those general functions,
// which report the errors.

const TWO_32 = 4294967296;
/** The largest address converted to a number exactly. */
const SAFE_ADDR = BigInt(Number.MAX_SAFE_INTEGER);

/** The little-endian 32-bit word at `off` as a signed int32, as an Int32Array view reads it (the decoders take either). */
function getLe32(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24);
}

function putLe32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = v >>> 24;
}

function throwResponseCode(code: number): never {
  throw new PluginContractError('vtd', `encodePageResponse: unknown response code ${code}`);
}

/** IommuFault.reasonText of every VT-d page request. */
const PAGE_REQUEST_TEXT = 'page request';

/** What the fast encoders of a page request refuse, as encodePageRequest does. */
function checkPageRequest(a: Readonly<Pick<FailedAccess, 'pasid' | 'grpid'>>): void {
  // checkPasid's test written out, and the errors in a call: one small function for V8 to inline.
  const pasid = a.pasid;
  const grpid = a.grpid;
  if ((pasid !== -1 && (pasid & 0xfffff) !== pasid) || (grpid & 0x1ff) !== grpid) throwPageRequest(pasid, grpid);
}

function throwPageRequest(pasid: number, grpid: number): never {
  checkPasid(pasid, 'encodePageRequest');
  throw new PluginContractError('vtd', `encodePageRequest: page request group index ${grpid} does not fit 9 bits`);
}

/**
 * A page request descriptor into the first 32 bytes of `out`: qw0: type, PASID present, RID, PASID, exe,
 * pm; qw1: rd, wr, LPIG, PRG index, address 63:12 (`lo`, `hi`: the address's 32-bit halves); qw2, qw3: no
 * private data.
 */
function writePageReqDsc(a: Readonly<Pick<FailedAccess, 'rid' | 'pasid' | 'perm' | 'grpid' | 'last'>>, lo: number, hi: number, out: Uint8Array, words: Int32Array | null): void {
  const pasid = a.pasid;
  // Type 0x1 (PRQ_TYPE_PAGE_REQUEST) and PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV (1, 2, 4, 8) as
  // literals: see decodePageRequestFields. rd, wr are bits 0, 1 of qw1 (as PERM_READ, PERM_WRITE), exe, pm
  // bits 52, 53 of qw0 (bits 20, 21 of its high word, PERM_EXEC and PERM_PRIV moved up 18).
  const perm = a.perm;
  // `rid << 16` keeps the RID's low 16 bits (the shift drops the rest), as `(rid & 0xffff) << 16`.
  const w0 = 0x1 | (pasid >= 0 ? 1 << 8 : 0) | (a.rid << 16);
  const w1 = (pasid >= 0 ? pasid : 0) | ((perm & 0xc) << 18);
  // `=== true`: one compare, where a truthiness test checks every kind of value.
  const w2 = (lo & ~0xfff) | (perm & 3) | (a.last === true ? 4 : 0) | (a.grpid << 3);
  if (words !== null) {
    words[0] = w0;
    words[1] = w1;
    words[2] = w2;
    words[3] = hi;
    words[4] = words[5] = words[6] = words[7] = 0;
  } else putDscWords(out, w0, w1, w2, hi);
}

/** Words w0 to w3 of a 32-byte descriptor into `out` by bytes, and zeros in the rest (a buffer not viewed as words). */
function putDscWords(out: Uint8Array, w0: number, w1: number, w2: number, w3: number): void {
  putLe32(out, 0, w0);
  putLe32(out, 4, w1);
  putLe32(out, 8, w2);
  putLe32(out, 12, w3);
  for (let off = 16; off < 32; off += 4) putLe32(out, off, 0);
}

/**
 * The fields of the page request descriptor whose first four 32-bit words are w0 to w3 (signed or not):
 * qw0 = w1:w0, qw1 = w3:w2.
 */
function setPageRequestFields(out: PageRequestFields, w0: number, w1: number, w2: number, w3: number): void {
  out.rid = w0 >>> 16;
  out.pasid = w0 & 0x100 ? w1 & 0xfffff : -1;
  // The address words signed (PageRequestFields): `>>> 0` made the low word a double from bit 31 on.
  out.addrLo = w2 & ~0xfff;
  out.addrHi = w3 | 0;
  // PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV as literals (1, 2, 4, 8; fault-codec.test.ts checks them).
  out.perm = (w2 & 3) | ((w1 >>> 18) & 0xc);
  out.grpid = (w2 >>> 3) & 0x1ff;
  out.last = (w2 & 4) !== 0;
  out.reason = 0;
  out.reasonText = 'page request';
  out.stage2 = false;
}

/**
 * The fields of the page group response whose first three 32-bit words are w0 to w2, when it is one with
 * a known response code (true); false, having set nothing, otherwise (the general decoder reports it).
 */
function setPageResponse(out: PageResponse, w0: number, w1: number, w2: number): boolean {
  const respCode = (w0 >>> 12) & 0xf;
  // The descriptor type is qw0[11:9]:qw0[3:0] (as QEMU reads it), 0x9 (QI_PGRP_RESP_TYPE); the codes are
  // QI_RESP_SUCCESS 0x0, QI_RESP_INVALID 0x1 and QI_RESP_FAILURE 0xf, as PAGE_RESP_* 0, 1 and 2.
  if ((((w0 >>> 5) & 0x70) | (w0 & 0xf)) !== 0x9 || (respCode > 1 && respCode !== 0xf)) return false;
  out.rid = w0 >>> 16;
  out.pasid = w0 & 0x10 ? w1 & 0xfffff : -1;
  out.grpid = (w2 >>> 3) & 0x1ff;
  out.code = respCode === 0xf ? 2 : respCode;
  return true;
}

/**
 * The VT-d fault codec: DMA faults as fault recording registers (FRCD) with the reason the unit's mode reports, page
 * requests as page request descriptors, and responses as page group response descriptors.
 */
export class VtdFaultCodec implements FaultCodec {
  readonly faultRecordSize = FRCD_SIZE;
  readonly pageRequestSize = PAGE_REQ_DSC_SIZE;
  /** A page group response descriptor is 32 bytes. */
  readonly pageResponseSize = PAGE_GRP_RESP_DSC_SIZE;

  /** The page request slot and the response record core hands over again and again, as words. */
  private readonly requestWords = new LeWordView();
  private readonly responseWords = new LeWordView();

  /** decodePageRequest's scratch fields (it reads them back at once). */
  private readonly fields: PageRequestFields = { rid: 0, pasid: 0, addrLo: 0, addrHi: 0, perm: 0, grpid: 0, last: false, reason: 0, reasonText: '', stage2: false };

  constructor(private readonly opts: VtdFaultCodecOptions) {}

  /** The reason code this unit reports for `a`: the stage is the format of the table that faulted. */
  reasonFor(a: FailedAccess): number {
    return vtdFaultReasonFor(a, this.opts.scalableMode, vtdStageOfFormat(a.format) === 'fs');
  }

  encodeFault(a: FailedAccess): Uint8Array {
    checkPasid(a.pasid, 'encodeFault');
    const frcd = frcdForDmaFault({
      addr: a.addr,
      sid: a.rid & 0xffff,
      // FRCD.T: 1 for a read (or AtomicOp, or an instruction fetch), 0 for a write.
      read: (a.perm & PERM_WRITE) === 0,
      reason: this.reasonFor(a),
      pasid: a.pasid >= 0 ? a.pasid : undefined,
      priv: (a.perm & PERM_PRIV) !== 0,
      exe: (a.perm & PERM_EXEC) !== 0,
    });
    return unwrap(encodeFrcd(frcd), 'encodeFault');
  }

  encodePageRequest(a: FailedAccess): Uint8Array {
    const bytes = new Uint8Array(PAGE_REQ_DSC_SIZE);
    this.encodePageRequestInto(a, bytes);
    return bytes;
  }

  /** encodePageRequest into the first 32 bytes of `out` (a slot of the page request queue), every byte written. */
  encodePageRequestInto(a: FailedAccess, out: Uint8Array): void {
    checkPageRequest(a);
    const addr = a.addr;
    if (typeof addr === 'bigint' && addr >= 0n && addr <= SAFE_ADDR) {
      const n = Number(addr);
      writePageReqDsc(a, n % TWO_32, Math.floor(n / TWO_32), out, null);
      return;
    }
    out.set(
      unwrap(
        encodePageReqDsc({
          type: PRQ_TYPE_PAGE_REQUEST,
          pasid_present: a.pasid >= 0 ? 1 : 0,
          priv_data_present: 0,
          rid: a.rid & 0xffff,
          pasid: a.pasid >= 0 ? a.pasid : 0,
          exe_req: a.perm & PERM_EXEC ? 1 : 0,
          pm_req: a.perm & PERM_PRIV ? 1 : 0,
          rd_req: a.perm & PERM_READ ? 1 : 0,
          wr_req: a.perm & PERM_WRITE ? 1 : 0,
          lpig: a.last ? 1 : 0,
          prg_index: a.grpid,
          addr: BigInt.asUintN(64, a.addr) & ~0xfffn,
          priv_data: [0n, 0n],
        }),
        'encodePageRequest',
      ),
    );
  }

  /** encodePageRequest of the request `f` names, into the first 32 bytes of `out`, every byte written. */
  encodePageRequestFields(f: Readonly<PageRequestFields>, out: Uint8Array): void {
    checkPageRequest(f);
    writePageReqDsc(f, f.addrLo, f.addrHi, out, this.requestWords.of(out, 32));
  }

  /** decodePageRequest into `out`'s fields, the address in its two halves. */
  decodePageRequestFields(record: Uint8Array, out: PageRequestFields): void {
    // 32 is PAGE_REQ_DSC_SIZE (a literal in the hot paths: a module constant is a load and a hole check
    // in compiled code). The queue slot the record was encoded into is read by the words it was written by.
    const w = record.byteLength === 32 ? this.requestWords.of(record, 32) : null;
    if (w !== null) setPageRequestFields(out, w[0], w[1], w[2], w[3]);
    else this.decodePageRequestBytes(record, out);
  }

  /** decodePageRequestFields of a record not viewed as words. */
  private decodePageRequestBytes(record: Uint8Array, out: PageRequestFields): void {
    if (record.byteLength === 32) setPageRequestFields(out, getLe32(record, 0), getLe32(record, 4), getLe32(record, 8), getLe32(record, 12));
    // Not a descriptor's size: the general decoder reports it.
    else pageRequestFieldsOf(this.decodePageRequest(record, 0), out);
  }

  decodeFault(record: Uint8Array, unit: number): IommuFault {
    return frcdToFault(unwrap(decodeFrcd(record), 'decodeFault'), unit);
  }

  decodePageRequest(record: Uint8Array, unit: number): IommuFault {
    if (record.byteLength === PAGE_REQ_DSC_SIZE) {
      this.decodePageRequestFields(record, this.fields);
      return pageRequestFault(this.fields, unit);
    }
    const d = unwrap(decodePageReqDsc(record), 'decodePageRequest');
    return {
      kind: 'page-request',
      unit,
      rid: d.rid,
      pasid: d.pasid_present ? d.pasid : -1,
      addr: d.addr,
      perm: permOf({ read: d.rd_req, write: d.wr_req, exec: d.exe_req, priv: d.pm_req }),
      grpid: d.prg_index,
      last: d.lpig === 1,
      reason: 0,
      reasonText: PAGE_REQUEST_TEXT,
      stage2: false,
    };
  }

  /** intel_iommu_page_response(): a page group response descriptor (QI type 0x9). */
  encodePageResponse(r: PageResponse): Uint8Array {
    const bytes = new Uint8Array(PAGE_GRP_RESP_DSC_SIZE);
    this.writePageResponse(r, bytes);
    return bytes;
  }

  /** encodePageResponse into the first 32 bytes of `out`, every byte written. */
  encodePageResponseInto(r: PageResponse, out: Uint8Array): void {
    const words = this.responseWords.of(out, 32);
    const pasid = r.pasid;
    const c = r.code;
    // The checks of writePageResponse in one test (its errors, in its order, when it fails): an integer PASID
    // of 0 to 0xfffff or -1, a code of 0 to 2 (`(x & mask) === x` holds only for an integer in [0, mask]).
    if (words === null || (pasid !== -1 && (pasid & 0xfffff) !== pasid) || (c & 3) !== c || c === 3) {
      this.writePageResponse(r, out);
      return;
    }
    // As writePageResponse writes it, by words: the response record core reuses, in a few bytes of bytecode
    // (V8 inlines callees into a compiled caller within a budget of bytecode, and every page response
    // passes here).
    words[0] = 0x9 | (pasid >= 0 ? 1 << 4 : 0) | ((c === 2 ? 0xf : c) << 12) | (r.rid << 16);
    words[1] = pasid >= 0 ? pasid : 0;
    words[2] = (r.grpid & 0x1ff) << 3;
    words[3] = words[4] = words[5] = words[6] = words[7] = 0;
  }

  /** The page group response for `r` into `out`, by bytes. */
  private writePageResponse(r: PageResponse, out: Uint8Array): void {
    checkPasid(r.pasid, 'encodePageResponse');
    // PAGE_RESP_SUCCESS / INVALID / FAILURE (0, 1, 2) to QI_RESP_SUCCESS / INVALID / FAILURE (0x0, 0x1, 0xf),
    // literals as in the decoders (fault-codec.test.ts checks the constants). Linux copies the core code (2)
    // into the field; the PCIe code for Response Failure is 0xF.
    const c = r.code;
    const code = c === 0 || c === 1 ? c : c === 2 ? 0xf : throwResponseCode(c);
    // qw0: type 0x9 (QI_PGRP_RESP_TYPE), PASID present, response code, RID, PASID; qw1: PRG index (LPIG 0);
    // no private data. `rid << 16` keeps the RID's low 16 bits (the shift drops the rest), as `(rid & 0xffff) << 16`.
    const pasid = r.pasid;
    putDscWords(out, 0x9 | (pasid >= 0 ? 1 << 4 : 0) | (code << 12) | (r.rid << 16), pasid >= 0 ? pasid : 0, (r.grpid & 0x1ff) << 3, 0);
  }

  decodePageResponse(bytes: Uint8Array): PageResponse {
    const r: PageResponse = { rid: 0, pasid: 0, grpid: 0, code: 0 };
    this.decodePageResponseInto(bytes, r);
    return r;
  }

  /** decodePageResponse into `out`'s fields. */
  decodePageResponseInto(bytes: Uint8Array, out: PageResponse): void {
    // 32 is PAGE_GRP_RESP_DSC_SIZE. The response record core reuses is read by the words it was written by.
    const w = bytes.byteLength === 32 ? this.responseWords.of(bytes, 32) : null;
    if (w === null || setPageResponse(out, w[0], w[1], w[2]) !== true) this.decodePageResponseBytes(bytes, out);
  }

  /** decodePageResponseInto of a record not viewed as words, or one the direct path does not decode (the general decoder reports it). */
  private decodePageResponseBytes(bytes: Uint8Array, out: PageResponse): void {
    if (bytes.byteLength === 32 && setPageResponse(out, getLe32(bytes, 0), getLe32(bytes, 4), getLe32(bytes, 8))) return;
    const d = unwrap(decodePageGroupResponse(bytes), 'decodePageResponse');
    let code: number;
    if (d.resp_code === QI_RESP_SUCCESS) code = PAGE_RESP_SUCCESS;
    else if (d.resp_code === QI_RESP_INVALID) code = PAGE_RESP_INVALID;
    else if (d.resp_code === QI_RESP_FAILURE) code = PAGE_RESP_FAILURE;
    else throw new PluginContractError('vtd', `decodePageResponse: response code 0x${d.resp_code.toString(16)} is not Success, Invalid Request or Response Failure`);
    out.rid = d.rid;
    out.pasid = d.pasid_present ? d.pasid : -1;
    out.grpid = d.prg_index;
    out.code = code;
  }

  /**
   * What dmar_fault_do_one() prints for an unrecoverable fault (the line names the requester from the
   * record's source id, as the kernel does; `device` is not printed). A page request that could not
   * be delivered is logged by prq.c as `dmarN: Invalid page request: %08llx %08llx`.
   */
  renderLog(f: IommuFault, _device: string, unitName: string): string[] {
    if (f.kind === 'dma') {
      return [
        renderDmaFaultLine({
          // dma_frcd_type(): "DMA Read" unless the access was a write.
          read: (f.perm & PERM_WRITE) === 0,
          pasid: f.pasid >= 0 ? f.pasid : null,
          sid: f.rid & 0xffff,
          addr: BigInt.asUintN(64, f.addr) & ~0xfffn,
          reason: f.reason,
        }),
      ];
    }
    if (f.kind === 'page-request') {
      const dsc = this.encodePageRequest({
        unit: f.unit,
        rid: f.rid,
        pasid: f.pasid,
        addr: f.addr,
        perm: f.perm,
        failure: 'not-present',
        stage2: false,
        recoverable: true,
        grpid: f.grpid,
        last: f.last,
      });
      const qw = (i: number) => readLe64(dsc, i * 8).toString(16).padStart(8, '0');
      return [`${unitName}: Invalid page request: ${qw(0)} ${qw(1)}`];
    }
    return [];
  }
}
