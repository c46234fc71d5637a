/**
 * `ioasid decode riscv-iommu ...`: a register value, a queue record, a command, a PTE or a Linux fault
 * line explained by the specification's field names. Optional: no unit needs it.
 *
 * Kinds: `capabilities` (alias `caps`), `fctl`, `ddtp`, `fault` (a 32-byte fault record as 64 hex digits,
 * or the driver's fault line), `page-request` (16-byte record), `command` (16 bytes), `pte` (a 64-bit
 * first-stage PTE). Without a kind a fault line is recognized by its text and hex input by its length
 * (64 digits: fault record, 32: command); a single value is taken as `capabilities`.
 */
import { err, ok, parseProfileNumber, PERM_WRITE, type BitField, type DecodeOutput, type DecodedWord, type IommuDecoder, type Result } from '@ioasid/core/driver';
import { commandLayouts, decodeCommand, type Command } from './commands.js';
import { FQ_DW0_FIELDS, PQ_DW0_FIELDS, PQ_DW1_FIELDS, causeName, decodeFaultRecord, ttypName } from './records.js';
import { faultCodec } from './fault-codec.js';
import { VENDOR_ID } from './ids.js';
import { faultText, parseFaultLine } from './logs.js';
import { PTE_A, PTE_D, PTE_G, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X } from './pgtable.js';
import { hwIdOf } from './probe.js';
import { CAP_FIELDS, DDTP_FIELDS, DDTP_MODE_NAMES, FCTL_FIELDS, IGS_NAMES, capConsistency, decodeCap, decodeDdtp, decodeFctl } from './registers.js';

/** The kinds `decodeRiscv` accepts. */
export const DECODE_KINDS = ['capabilities', 'fctl', 'ddtp', 'fault', 'page-request', 'command', 'pte'] as const;

const KIND_ALIASES: Readonly<Record<string, (typeof DECODE_KINDS)[number]>> = { caps: 'capabilities', cap: 'capabilities', capabilities: 'capabilities', fctl: 'fctl', ddtp: 'ddtp', fault: 'fault', fq: 'fault', 'page-request': 'page-request', pq: 'page-request', command: 'command', cmd: 'command', pte: 'pte' };

const word = (name: string, value: bigint, layout: readonly BitField[], width = 64): DecodedWord => ({ name, value, width, layout });

function hexBytes(s: string): Uint8Array | null {
  const h = s.replace(/^0x/i, '').replace(/[\s_:]/g, '');
  if (!/^[0-9a-f]*$/i.test(h) || h.length % 2 !== 0 || h.length === 0) return null;
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return b;
}

function value64(s: string, what: string): Result<bigint> {
  const v = parseProfileNumber(s.trim());
  if (v === null || v < 0n || v >= 1n << 64n) return err(`${what}: expected a 64-bit number, got '${s}'`);
  return ok(v);
}

function decodeCapabilities(s: string): Result<DecodeOutput> {
  const v = value64(s, 'capabilities');
  if (!v.ok) return v;
  const f = decodeCap(v.value);
  if (!f.ok) return f;
  const fields: Record<string, number | string> = { ...f.value, IGS: `${f.value.IGS} (${IGS_NAMES[f.value.IGS]})`, version: `0x${f.value.version.toString(16)} (${f.value.version >> 4}.${f.value.version & 0xf})` };
  const bad = capConsistency(f.value);
  return ok({ vendor: VENDOR_ID, kind: 'capabilities', fields, summary: `${hwIdOf(f.value)}${bad ? `; inconsistent: ${bad}` : ''}`, linux: '', words: [word('capabilities', v.value, CAP_FIELDS)] });
}

function decodeFctlKind(s: string): Result<DecodeOutput> {
  const v = value64(s, 'fctl');
  if (!v.ok) return v;
  const f = decodeFctl(v.value);
  if (!f.ok) return f;
  const summary = `${f.value.BE ? 'big' : 'little'}-endian structures, ${f.value.WSI ? 'wired' : 'message-signaled'} interrupts, ${f.value.GXL ? 'Sv32x4' : 'Sv39x4/48x4/57x4'} G-stage`;
  return ok({ vendor: VENDOR_ID, kind: 'fctl', fields: { ...f.value }, summary, linux: '', words: [word('fctl', v.value, FCTL_FIELDS, 32)] });
}

function decodeDdtpKind(s: string): Result<DecodeOutput> {
  const v = value64(s, 'ddtp');
  if (!v.ok) return v;
  const f = decodeDdtp(v.value);
  if (!f.ok) return f;
  const mode = DDTP_MODE_NAMES[f.value.iommu_mode] ?? 'reserved';
  const summary = f.value.iommu_mode >= 2 && f.value.iommu_mode <= 4 ? `${mode} device directory at 0x${(BigInt(f.value.PPN) << 12n).toString(16)}` : `mode ${mode}`;
  return ok({ vendor: VENDOR_ID, kind: 'ddtp', fields: { ...f.value, iommu_mode: `${f.value.iommu_mode} (${mode})` }, summary, linux: '', words: [word('ddtp', v.value, DDTP_FIELDS)] });
}

function decodeFaultRecordKind(bytes: Uint8Array): Result<DecodeOutput> {
  if (bytes.length !== 32) return err(`a fault record is 32 bytes (64 hex digits), got ${bytes.length}`);
  const r = decodeFaultRecord(bytes);
  const f = faultCodec.decodeFault(bytes, 0);
  const access = f.perm & PERM_WRITE ? 'write' : 'read';
  const summary = `${causeName(r.CAUSE)} (cause ${r.CAUSE}) on an ${ttypName(r.TTYP).toLowerCase()} ${r.TTYP === 0 ? '' : `(${access}) `}from device 0x${r.DID.toString(16)}${r.PV ? ` PASID 0x${r.PID.toString(16)}${r.PRIV ? ' (supervisor)' : ''}` : ''} at 0x${r.iotval.toString(16)}`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 32);
  return ok({
    vendor: VENDOR_ID,
    kind: 'fault',
    fields: { CAUSE: `${r.CAUSE} (${causeName(r.CAUSE)})`, PID: r.PID, PV: r.PV, PRIV: r.PRIV, TTYP: `${r.TTYP} (${ttypName(r.TTYP)})`, DID: `0x${r.DID.toString(16)}`, iotval: `0x${r.iotval.toString(16)}`, iotval2: `0x${r.iotval2.toString(16)}` },
    summary,
    linux: r.CAUSE ? faultText(r.CAUSE, r.DID, r.iotval, r.iotval2) : '',
    words: [word('dw0', dv.getBigUint64(0, true), FQ_DW0_FIELDS), word('iotval', r.iotval, [{ name: 'iotval', hi: 63, lo: 0 }]), word('iotval2', r.iotval2, [{ name: 'iotval2', hi: 63, lo: 0 }])],
  });
}

function decodeFaultLineKind(line: string): Result<DecodeOutput> {
  const p = parseFaultLine(line);
  if (p === null) return err("not a riscv-iommu fault line ('<driver> <device>: Fault <cause> devid: 0x<did> iotval: <hex> iotval2: <hex>')");
  if (!p.ok) return p;
  const v = p.value;
  const gpa = v.cause === 20 || v.cause === 21 || v.cause === 23;
  const summary = `${causeName(v.cause)} (cause ${v.cause}) from device 0x${v.did.toString(16)} (${busDevFn(v.did)}) at 0x${v.iotval.toString(16)}${gpa ? `, guest-physical 0x${(v.iotval2 & ~3n).toString(16)}${v.iotval2 & 1n ? ' during an implicit first-stage access' : ''}` : ''} on ${v.device}`;
  return ok({
    vendor: VENDOR_ID,
    kind: 'fault',
    fields: { driver: v.driver, device: v.device, CAUSE: `${v.cause} (${causeName(v.cause)})`, DID: `0x${v.did.toString(16)}`, iotval: `0x${v.iotval.toString(16)}`, iotval2: `0x${v.iotval2.toString(16)}` },
    summary,
    linux: line.trim(),
  });
}

function busDevFn(did: number): string {
  const bus = (did >> 8) & 0xff;
  return `${bus.toString(16).padStart(2, '0')}:${((did >> 3) & 0x1f).toString(16).padStart(2, '0')}.${did & 7}`;
}

function decodePageRequestKind(bytes: Uint8Array): Result<DecodeOutput> {
  if (bytes.length !== 16) return err(`a page request is 16 bytes (32 hex digits), got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const f = faultCodec.decodePageRequest(bytes, 0);
  const dw0 = dv.getBigUint64(0, true);
  const dw1 = dv.getBigUint64(8, true);
  const summary = `${f.reasonText} from device 0x${f.rid.toString(16)}${f.pasid >= 0 ? ` PASID 0x${f.pasid.toString(16)}` : ''} for 0x${f.addr.toString(16)}, group ${f.grpid}${f.last ? ' (last)' : ''}`;
  return ok({ vendor: VENDOR_ID, kind: 'page-request', fields: { DID: `0x${f.rid.toString(16)}`, PV: f.pasid >= 0, PID: Math.max(f.pasid, 0), PRGI: f.grpid, L: f.last, page: `0x${f.addr.toString(16)}` }, summary, linux: '', words: [word('dw0', dw0, PQ_DW0_FIELDS), word('dw1', dw1, PQ_DW1_FIELDS)] });
}

function commandSummary(c: Command): string {
  switch (c.op) {
    case 'IOTINVAL.VMA':
    case 'IOTINVAL.GVMA':
      return `${c.op}: ${c.AV ? `address 0x${c.ADDR.toString(16)}` : 'all addresses'}${c.PSCV ? `, PSCID ${c.PSCID}` : ''}${c.GV ? `, GSCID ${c.GSCID}` : ''}`;
    case 'IOFENCE.C':
      return `IOFENCE.C${c.PR ? ' PR' : ''}${c.PW ? ' PW' : ''}${c.AV ? `, then write 0x${c.DATA.toString(16)} to 0x${c.ADDR.toString(16)}` : ''}`;
    case 'IODIR.INVAL_DDT':
      return `IODIR.INVAL_DDT: ${c.DV ? `device 0x${c.DID.toString(16)}` : 'every device'}`;
    case 'IODIR.INVAL_PDT':
      return `IODIR.INVAL_PDT: device 0x${c.DID.toString(16)} process ${c.PID}`;
    case 'ATS.INVAL':
      return `ATS.INVAL to RID 0x${c.RID.toString(16)}${c.PV ? ` PASID ${c.PID}` : ''}, address 0x${c.ADDR.toString(16)}${c.G ? ' (global)' : ''}`;
    case 'ATS.PRGR':
      return `ATS.PRGR to RID 0x${c.RID.toString(16)}${c.PV ? ` PASID ${c.PID}` : ''}: group ${c.PRGI}, response ${c.RESP_CODE === 0 ? 'Success' : c.RESP_CODE === 1 ? 'Invalid Request' : c.RESP_CODE === 0xf ? 'Response Failure' : `code ${c.RESP_CODE}`}`;
  }
}

function decodeCommandKind(bytes: Uint8Array): Result<DecodeOutput> {
  const c = decodeCommand(bytes);
  if (!c.ok) return c;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const [l0, l1] = commandLayouts(c.value.op);
  const fields: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(c.value)) fields[k] = typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
  return ok({ vendor: VENDOR_ID, kind: 'command', fields, summary: commandSummary(c.value), linux: '', words: [word('dw0', dv.getBigUint64(0, true), l0), word('dw1', dv.getBigUint64(8, true), l1)] });
}

const PTE_LAYOUT: readonly BitField<'V' | 'R' | 'W' | 'X' | 'U' | 'G' | 'A' | 'D' | 'RSW' | 'PPN' | 'PBMT' | 'N'>[] = [
  { name: 'V', hi: 0, lo: 0 },
  { name: 'R', hi: 1, lo: 1 },
  { name: 'W', hi: 2, lo: 2 },
  { name: 'X', hi: 3, lo: 3 },
  { name: 'U', hi: 4, lo: 4 },
  { name: 'G', hi: 5, lo: 5 },
  { name: 'A', hi: 6, lo: 6 },
  { name: 'D', hi: 7, lo: 7 },
  { name: 'RSW', hi: 9, lo: 8 },
  { name: 'PPN', hi: 53, lo: 10 },
  { name: 'PBMT', hi: 62, lo: 61 },
  { name: 'N', hi: 63, lo: 63 },
];

function decodePte(s: string): Result<DecodeOutput> {
  const v = value64(s, 'pte');
  if (!v.ok) return v;
  const lo = Number(v.value & 0xffff_ffffn);
  const ppn = (v.value >> 10n) & ((1n << 44n) - 1n);
  const flags = [lo & PTE_R ? 'R' : '', lo & PTE_W ? 'W' : '', lo & PTE_X ? 'X' : '', lo & PTE_U ? 'U' : '', lo & PTE_G ? 'G' : '', lo & PTE_A ? 'A' : '', lo & PTE_D ? 'D' : ''].join('');
  const reserved = (v.value >> 54n) & 0x7fn;
  const pbmt = Number((v.value >> 61n) & 3n);
  const kind = !(lo & PTE_V) ? 'invalid (V = 0)' : (lo & (PTE_R | PTE_W | PTE_X)) === 0 ? `pointer to the table at 0x${(ppn << 12n).toString(16)}` : (lo & (PTE_R | PTE_W)) === PTE_W ? 'reserved (W without R)' : `leaf ${flags} at 0x${(ppn << 12n).toString(16)}`;
  const fields: Record<string, number | string> = { V: lo & PTE_V ? 1 : 0, flags: flags || '-', PPN: `0x${ppn.toString(16)}`, reserved_60_54: Number(reserved), PBMT: ['PMA', 'NC', 'IO', 'reserved'][pbmt], N: Number(v.value >> 63n) };
  return ok({ vendor: VENDOR_ID, kind: 'pte', fields, summary: kind, linux: '', words: [word('pte', v.value, PTE_LAYOUT)] });
}

/** Explains `what` (see the module comment for the kinds). */
export function decodeRiscv(what: string, kind?: string): Result<DecodeOutput> {
  const input = what.trim();
  if (input.length > 4096) return err('input too long');
  const k = kind === undefined ? undefined : KIND_ALIASES[kind.toLowerCase()];
  if (kind !== undefined && k === undefined) return err(`unknown kind '${kind}' (known: ${DECODE_KINDS.join(', ')})`);
  if (k === undefined || k === 'fault') {
    if (/Fault \d+ devid:/.test(input)) return decodeFaultLineKind(input);
  }
  const needBytes = (n: number, name: string): Result<Uint8Array> => {
    const b = hexBytes(input);
    return b === null ? err(`${name}: expected ${n} bytes as hex digits`) : ok(b);
  };
  switch (k) {
    case 'capabilities':
      return decodeCapabilities(input);
    case 'fctl':
      return decodeFctlKind(input);
    case 'ddtp':
      return decodeDdtpKind(input);
    case 'pte':
      return decodePte(input);
    case 'fault': {
      const b = needBytes(32, 'fault');
      return b.ok ? decodeFaultRecordKind(b.value) : b;
    }
    case 'page-request': {
      const b = needBytes(16, 'page-request');
      return b.ok ? decodePageRequestKind(b.value) : b;
    }
    case 'command': {
      const b = needBytes(16, 'command');
      return b.ok ? decodeCommandKind(b.value) : b;
    }
    default: {
      const digits = input.replace(/^0x/i, '').replace(/[\s_:]/g, '');
      if (/^[0-9a-f]{64}$/i.test(digits)) return decodeFaultRecordKind(hexBytes(digits)!);
      if (/^[0-9a-f]{32}$/i.test(digits)) return decodeCommandKind(hexBytes(digits)!);
      return decodeCapabilities(input);
    }
  }
}

/** The RISC-V IOMMU plugin's decoder (`IommuPlugin.decoder`). */
export const riscvDecoder: IommuDecoder = { vendor: VENDOR_ID, decode: decodeRiscv };
