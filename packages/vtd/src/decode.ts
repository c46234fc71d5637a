/**
 * `ioasid decode vtd ...`: register values, fault records, page request and response descriptors and log
 * lines explained field by field. An optional tool of the plugin: no unit needs it.
 */
import { readLe64, writeLe64Words, stripKernelLogPrefix } from '@ioasid/core/driver';
import type { BitField, DecodeAdvice, DecodedWord, DecodeOutput, FaultSubject, IommuDecoder, Result } from '@ioasid/core/driver';
import { vtdFaultAdvice } from './advice.js';
import { frcdWords, pageRequestWords, pageResponseWords } from './record-words.js';
import { CAP_LAYOUT, ECAP_LAYOUT, VER_LAYOUT, capFaultRegOffset, capMgaw, capNumDomains, capNumFaultRegs, decodeCap, decodeEcap, decodeVer, ecapIotlbOffset, ecapPasidBits, hex64, sagawLevels, smSupported, vtdHwId, vtdVersionString } from './registers.js';
import {
  PAGE_GRP_RESP_DSC_SIZE,
  PAGE_REQ_DSC_SIZE,
  FRCD_SIZE,
  decodeFrcd,
  decodePageGroupResponse,
  decodePageReqDsc,
  frcdFaultAddress,
  encodeFrcd,
  type VtdFrcd,
} from './records.js';
import {
  dmarFaultReason,
} from './fault-reasons.js';
import {
  formatSourceId,
  parseVtdLogLine,
  renderDmaFaultLine,
  renderFaultStatusLine,
  renderFrcdLine,
  renderIntrFaultLine,
  renderVtdBootLine,
  type VtdLogRecord,
} from './logs.js';
import { DEFAULT_REG_BASE } from './unit.js';
import { err, ok } from '@ioasid/core/driver';
import { parseVtdRegisters, type VtdRawRegisters } from './probe.js';
import { parseProfileRegister } from '@ioasid/core/driver';

const VENDOR = 'vtd';

// ---------------------------------------------------------------------------------------------
// ioasid decode vtd ...
// ---------------------------------------------------------------------------------------------

function capSummary(capValue: bigint): string {
  const cap = decodeCap(capValue);
  const levels = sagawLevels(cap);
  const parts = [
    `MGAW ${capMgaw(cap)}-bit`,
    levels.length ? `SAGAW ${levels.join('/')}-level` : 'no SAGAW (no second stage)',
  ];
  const sizes = ['4K'];
  if (cap.SLLPS & 1) sizes.push('2M');
  if (cap.SLLPS & 2) sizes.push('1G');
  parts.push(`second-stage pages ${sizes.join('/')}`);
  parts.push(`${capNumDomains(cap)} domain ids`);
  parts.push(`${capNumFaultRegs(cap)} fault recording register(s) at 0x${capFaultRegOffset(cap).toString(16)}`);
  if (cap.CM) parts.push('caching mode');
  if (cap.PSI) parts.push(`page-selective invalidation (MAMV ${cap.MAMV})`);
  if (cap.FL1GP) parts.push('first-stage 1G');
  if (cap.FL5LP) parts.push('first-stage 5-level');
  if (cap.PI) parts.push('posted interrupts');
  if (cap.RWBF) parts.push('write-buffer flushing required');
  return parts.join(', ');
}

function ecapSummary(ecapValue: bigint): string {
  const e = decodeEcap(ecapValue);
  const parts = [smSupported(e) ? 'scalable mode' : 'legacy mode'];
  if (e.SLTS) parts.push('second stage');
  if (e.FLTS) parts.push('first stage');
  if (e.NEST) parts.push('nesting');
  if (e.PASID) parts.push(`PASID ${ecapPasidBits(e)}-bit`);
  if (e.PRS) parts.push('page requests');
  if (e.DT) parts.push('device-TLB (ATS)');
  if (e.SLADS) parts.push('second-stage A/D');
  if (e.SC) parts.push('snoop control');
  if (e.C) parts.push('coherent walks');
  if (e.QI) parts.push('queued invalidation');
  if (e.IR) parts.push(e.EIM ? 'interrupt remapping (x2APIC)' : 'interrupt remapping');
  if (e.PT) parts.push('pass-through');
  parts.push(`IOTLB registers at 0x${ecapIotlbOffset(e).toString(16)}`);
  return parts.join(', ');
}

function registerFields(layout: readonly BitField[], decoded: object): Record<string, number | string> {
  const d = decoded as Record<string, number | bigint>;
  const out: Record<string, number | string> = {};
  for (const f of layout) out[f.name] = Number(d[f.name]);
  const reserved = d['reserved'];
  if (typeof reserved === 'bigint' && reserved !== 0n) out['reserved'] = hex64(reserved);
  return out;
}

function hexNoPrefix(v: bigint): string {
  return v.toString(16);
}

function decodeRegisterValue(kind: 'ver' | 'cap' | 'ecap', value: bigint): Result<DecodeOutput> {
  switch (kind) {
    case 'ver': {
      if (value >= 1n << 32n) return err(`ver: ${hex64(value)} does not fit the 32-bit VER_REG`);
      const v = decodeVer(value);
      return ok({
        vendor: VENDOR,
        kind: 'ver',
        fields: registerFields(VER_LAYOUT, v),
        summary: `VT-d architecture ${vtdVersionString(value)}`,
        linux: `ver ${v.MAX}:${v.MIN}`,
        words: [{ name: 'VER_REG', value, width: 32, layout: VER_LAYOUT }],
      });
    }
    case 'cap':
      return ok({
        vendor: VENDOR,
        kind: 'cap',
        fields: registerFields(CAP_LAYOUT, decodeCap(value)),
        summary: capSummary(value),
        linux: `cap ${hexNoPrefix(value)}`,
        words: [{ name: 'CAP_REG', value, width: 64, layout: CAP_LAYOUT }],
      });
    case 'ecap':
      return ok({
        vendor: VENDOR,
        kind: 'ecap',
        fields: registerFields(ECAP_LAYOUT, decodeEcap(value)),
        summary: ecapSummary(value),
        linux: `ecap ${hexNoPrefix(value)}`,
        words: [{ name: 'ECAP_REG', value, width: 64, layout: ECAP_LAYOUT }],
      });
  }
}

function decodeUnit(r: VtdRawRegisters, seq = 0): DecodeOutput {
  return {
    vendor: VENDOR,
    kind: 'unit',
    fields: {
      ...registerFields(VER_LAYOUT, decodeVer(r.ver)),
      ...registerFields(CAP_LAYOUT, decodeCap(r.cap)),
      ...registerFields(ECAP_LAYOUT, decodeEcap(r.ecap)),
    },
    summary: vtdHwId(r.ver, r.cap, r.ecap),
    linux: renderVtdBootLine({ seq, regBase: r.regBase ?? DEFAULT_REG_BASE, ver: r.ver, cap: r.cap, ecap: r.ecap }),
  };
}

function frcdFields(f: VtdFrcd): Record<string, number | string> {
  return {
    FI: hex64(f.FI),
    SID: f.SID,
    T2: f.T2,
    PRIV: f.PRIV,
    EXE: f.EXE,
    PP: f.PP,
    FR: f.FR,
    PV: f.PV,
    AT: f.AT,
    T1: f.T1,
    F: f.F,
  };
}

function decodeFrcdRecord(bytes: Uint8Array): Result<DecodeOutput> {
  const r = decodeFrcd(bytes);
  if (!r.ok) return err(r.error);
  const f = r.value;
  const reason = dmarFaultReason(f.FR);
  const addr = frcdFaultAddress(f);
  const who = formatSourceId(f.SID);
  const summary =
    reason.type === 'intr-remap'
      ? `interrupt request from ${who} (index 0x${(addr >> 48n).toString(16)}) blocked: ${reason.text}`
      : `${f.T1 ? 'DMA read' : 'DMA write'} from ${who}${f.PP ? ` with PASID 0x${f.PV.toString(16)}` : ''} at 0x${addr.toString(16)} ` +
        `faulted: reason 0x${f.FR.toString(16).padStart(2, '0')} ${reason.text}${f.F ? '' : ' (F clear: the record is not pending)'}`;
  const subject = frcdSubject(f.SID, reason.type === 'intr-remap' ? addr >> 48n : addr, f.T1 === 1, f.PP ? f.PV : -1);
  return ok({
    vendor: VENDOR,
    kind: 'frcd',
    fields: frcdFields(f),
    summary,
    linux: renderFrcdLine(f),
    words: frcdWords([readLe64(bytes, 0), readLe64(bytes, 8)]),
    ...optional(vtdFaultAdvice(f.FR, subject)),
  });
}

/**
 * decode_prq_descriptor(): what the intel_iommu prq tracepoints print for a page request. Its addr is
 * FIELD_GET(GENMASK_ULL(63, 12), dw1): the page number, not the byte address (iommu.h).
 */
export function renderPrqDescriptor(qw: readonly [bigint, bigint, bigint, bigint]): string {
  const [dw0, dw1, dw2, dw3] = qw;
  const bit = (w: bigint, b: number) => ((w >> BigInt(b)) & 1n) === 1n;
  const flags = `${bit(dw1, 0) ? 'r' : '-'}${bit(dw1, 1) ? 'w' : '-'}${bit(dw0, 52) ? 'x' : '-'}${bit(dw0, 53) ? 'p' : '-'}${bit(dw1, 2) ? 'l' : '-'}`;
  let s =
    `rid=0x${((dw0 >> 16n) & 0xffffn).toString(16)} addr=0x${(dw1 >> 12n).toString(16)} ${flags} ` +
    `pasid=0x${((dw0 >> 32n) & 0xfffffn).toString(16)} index=0x${((dw1 >> 3n) & 0x1ffn).toString(16)}`;
  if (bit(dw0, 9)) s += ` private=0x${dw2.toString(16)}/0x${dw3.toString(16)}`;
  return s;
}

function decodePageRequestRecord(bytes: Uint8Array, qw: readonly [bigint, bigint, bigint, bigint]): Result<DecodeOutput> {
  const r = decodePageReqDsc(bytes);
  if (!r.ok) return err(r.error);
  const d = r.value;
  const access = [d.rd_req ? 'read' : '', d.wr_req ? 'write' : '', d.exe_req ? 'execute' : ''].filter(Boolean).join('/') || 'no access';
  const stop = d.lpig && !d.rd_req && !d.wr_req;
  const summary = stop
    ? `Stop Marker from ${formatSourceId(d.rid)} (group ${d.prg_index}): dropped without a response`
    : `page request from ${formatSourceId(d.rid)}${d.pasid_present ? ` PASID 0x${d.pasid.toString(16)}` : ''}: ${access}` +
      `${d.pm_req ? ' (privileged)' : ''} at 0x${d.addr.toString(16)}, group ${d.prg_index}${d.lpig ? ', last in group' : ''}`;
  return ok({
    vendor: VENDOR,
    kind: 'page-request',
    fields: {
      TYPE: d.type,
      PP: d.pasid_present,
      PDP: d.priv_data_present,
      RID: d.rid,
      PASID: d.pasid,
      ERE: d.exe_req,
      PMR: d.pm_req,
      RDR: d.rd_req,
      WRR: d.wr_req,
      LPIG: d.lpig,
      PRGI: d.prg_index,
      ADDR: hex64(d.addr),
    },
    summary,
    linux: renderPrqDescriptor(qw),
    words: pageRequestWords(qw),
  });
}

function decodePageResponseRecord(bytes: Uint8Array): Result<DecodeOutput> {
  const r = decodePageGroupResponse(bytes);
  if (!r.ok) return err(r.error);
  const d = r.value;
  const codes: Record<number, string> = { 0x0: 'Success', 0x1: 'Invalid Request', 0xf: 'Response Failure' };
  return ok({
    vendor: VENDOR,
    kind: 'page-response',
    fields: { TYPE: 9, PP: d.pasid_present, PDP: d.pdp, RC: d.resp_code, RID: d.rid, PASID: d.pasid, PRGI: d.prg_index },
    summary: `page group response to ${formatSourceId(d.rid)}${d.pasid_present ? ` PASID 0x${d.pasid.toString(16)}` : ''}, group ${d.prg_index}: ${codes[d.resp_code] ?? `reserved code 0x${d.resp_code.toString(16)}`}`,
    // intel_iommu_page_response() queues it silently; QI errors name it "Page Group Response".
    linux: `DMAR: QI HEAD: Page Group Response qw0 = 0x${readLe64(bytes, 0).toString(16)}, qw1 = 0x${readLe64(bytes, 8).toString(16)}`,
    words: pageResponseWords([0, 1, 2, 3].map((i) => readLe64(bytes, i * 8))),
  });
}

/** Who faulted and where, for the advice: the requester as a bus:device.function. */
function frcdSubject(sid: number, address: bigint, read: boolean, pasid: number): FaultSubject {
  return { device: formatSourceId(sid), address, access: read ? 'read' : 'write', pasid };
}

function optional(advice: DecodeAdvice | undefined): { advice?: DecodeAdvice } {
  return advice ? { advice } : {};
}

/** The fault recording register a log line was printed from, as words (fields the line lacks are 0). */
function lineRecord(f: Pick<VtdFrcd, 'FI' | 'SID' | 'PP' | 'PV' | 'FR' | 'T1'>): { words?: DecodedWord[] } {
  const r = encodeFrcd({ T2: 0, PRIV: 0, EXE: 0, AT: 0, F: 1, ...f });
  return r.ok ? { words: frcdWords([readLe64(r.value, 0), readLe64(r.value, 8)]) } : {};
}

function decodeLogRecord(rec: VtdLogRecord): DecodeOutput {
  switch (rec.kind) {
    case 'boot':
      return decodeUnit({ ver: rec.ver, cap: rec.cap, ecap: rec.ecap, regBase: rec.regBase }, rec.seq);
    case 'dma-fault': {
      const reason = dmarFaultReason(rec.reason);
      const who = formatSourceId(rec.sid);
      return {
        vendor: VENDOR,
        kind: 'dma-fault',
        fields: {
          T1: rec.read ? 1 : 0,
          SID: rec.sid,
          PP: rec.pasid === null ? 0 : 1,
          PV: rec.pasid ?? 0,
          FR: rec.reason,
          FI: hex64(rec.addr >> 12n),
        },
        summary:
          `${rec.read ? 'DMA read' : 'DMA write'} from ${who}${rec.pasid === null ? '' : ` with PASID 0x${rec.pasid.toString(16)}`} ` +
          `at 0x${rec.addr.toString(16)} faulted: ${reason.text}` +
          (rec.reasonText && rec.reasonText !== reason.text ? ` (the line says "${rec.reasonText}")` : ''),
        linux: renderDmaFaultLine({ read: rec.read, pasid: rec.pasid, sid: rec.sid, addr: rec.addr, reason: rec.reason }),
        // The record the unit wrote for it (what the line does not say is 0: T2, PRIV, EXE, AT).
        ...lineRecord({ FI: rec.addr >> 12n, SID: rec.sid, PP: rec.pasid === null ? 0 : 1, PV: rec.pasid ?? 0, FR: rec.reason, T1: rec.read ? 1 : 0 }),
        ...optional(vtdFaultAdvice(rec.reason, frcdSubject(rec.sid, rec.addr, rec.read, rec.pasid ?? -1))),
      };
    }
    case 'intr-fault': {
      const reason = dmarFaultReason(rec.reason);
      return {
        vendor: VENDOR,
        kind: 'intr-fault',
        fields: { SID: rec.sid, FR: rec.reason, FI: hex64(rec.index << 36n) },
        summary: `interrupt request from ${formatSourceId(rec.sid)} (index 0x${rec.index.toString(16)}) blocked: ${reason.text}`,
        linux: renderIntrFaultLine({ sid: rec.sid, index: rec.index, reason: rec.reason }),
        ...lineRecord({ FI: rec.index << 36n, SID: rec.sid, PP: 0, PV: 0, FR: rec.reason, T1: 0 }),
        ...optional(vtdFaultAdvice(rec.reason, frcdSubject(rec.sid, rec.index, false, -1))),
      };
    }
    case 'fault-status': {
      const s = rec.status;
      const names: Array<[number, string]> = [
        [0, 'PFO'],
        [1, 'PPF'],
        [4, 'IQE'],
        [5, 'ICE'],
        [6, 'ITE'],
        [7, 'PRO'],
      ];
      const set = names.filter(([b]) => (s >> b) & 1).map(([, n]) => n);
      return {
        vendor: VENDOR,
        kind: 'fault-status',
        fields: { PFO: s & 1, PPF: (s >> 1) & 1, IQE: (s >> 4) & 1, ICE: (s >> 5) & 1, ITE: (s >> 6) & 1, PRO: (s >> 7) & 1, FRI: (s >> 8) & 0xff },
        summary: `FSTS ${set.length ? set.join(', ') : 'clear'}; first pending fault record ${(s >> 8) & 0xff}`,
        linux: renderFaultStatusLine(s),
      };
    }
  }
}

const HEX_WORD = /^(?:0[xX])?[0-9a-fA-F]{1,16}$/;

function parseQwords(words: string[]): bigint[] | null {
  if (!words.every((w) => HEX_WORD.test(w))) return null;
  return words.map((w) => BigInt(w.toLowerCase().startsWith('0x') ? w : `0x${w}`));
}

const USAGE =
  'expected cap=0x..., ecap=0x..., ver=0x... (or a bare value with kind cap|ecap|ver), two hex qwords of a fault ' +
  'recording register, four hex qwords of a page request descriptor, or a DMAR kernel log line';

/** `ioasid decode vtd <what>`. */
export function decodeVtd(what: string, kind?: string): Result<DecodeOutput> {
  const text = what.trim();
  if (text === '') return err(`nothing to decode: ${USAGE}`);
  // A kernel log line.
  if (/^(?:DMAR|dmar): /.test(stripKernelLogPrefix(text))) {
    const r = parseVtdLogLine(text);
    if (!r.ok) return err(r.error);
    return ok(decodeLogRecord(r.value));
  }
  // name=value pairs: "cap=0x...", or "ver=0x60 cap=0x... ecap=0x..." for a whole unit.
  const pairs = text.split(/[\s,]+/).filter(Boolean);
  if (pairs.some((p) => p.includes('='))) {
    const regs: Record<string, string> = {};
    for (const p of pairs) {
      const m = /^(ver|cap|ecap|regBase)=(.+)$/i.exec(p);
      if (!m) return err(`"${p}": ${USAGE}`);
      const key = m[1].toLowerCase() === 'regbase' ? 'regBase' : m[1].toLowerCase();
      regs[key] = m[2];
    }
    const names = Object.keys(regs);
    if (names.length === 1 && names[0] !== 'regBase') {
      const r = parseProfileRegister(names[0], regs[names[0]], names[0] === 'ver' ? 32 : 64, names[0] === 'ver' ? '0x60' : '0x19ed008c40780c66');
      if (!r.ok) return r;
      return decodeRegisterValue(names[0] as 'ver' | 'cap' | 'ecap', r.value);
    }
    const r = parseVtdRegisters({ ver: regs['ver'] ?? '0x10', ...regs });
    if (!r.ok) return r;
    return ok(decodeUnit(r.value));
  }
  const words = parseQwords(pairs);
  if (words === null) return err(`"${text.slice(0, 60)}": ${USAGE}`);
  const k = kind?.toLowerCase();
  if (words.length === 1) {
    if (k === 'cap' || k === 'ecap' || k === 'ver') return decodeRegisterValue(k, words[0]);
    return err(`a bare value needs a kind (cap, ecap or ver), or write it as cap=${pairs[0]}`);
  }
  if (words.length === 2 && (k === undefined || k === 'frcd' || k === 'fault')) {
    return decodeFrcdRecord(writeLe64Words(words));
  }
  if (words.length === 4 && (k === 'page-response' || k === 'response')) {
    return decodePageResponseRecord(writeLe64Words(words));
  }
  if (words.length === 4 && (k === undefined || k === 'page-request' || k === 'prq')) {
    return decodePageRequestRecord(writeLe64Words(words), [words[0], words[1], words[2], words[3]]);
  }
  return err(
    `${words.length} value(s)${k ? ` of kind ${k}` : ''}: a fault recording register is ${FRCD_SIZE / 8} qwords, a page request ` +
      `descriptor ${PAGE_REQ_DSC_SIZE / 8}, a page group response ${PAGE_GRP_RESP_DSC_SIZE / 8} (kind page-response)`,
  );
}

/** The VT-d plugin's decoder (`IommuPlugin.decoder`). */
export const vtdDecoder: IommuDecoder = { vendor: 'vtd', decode: decodeVtd };
