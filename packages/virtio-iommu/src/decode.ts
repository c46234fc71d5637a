/**
 * `ioasid decode virtio-iommu`: requests, fault records, configuration bytes, statuses and the driver's
 * log lines explained field by field (the plugin's optional decoder: no unit needs it).
 */
import { ok, err, stripKernelLogPrefix, type DecodeOutput, type IommuDecoder, type Result } from '@ioasid/core/driver';
import { decodeConfig } from './config.js';
import { FAULT_REASON_NAMES, decodeFault, encodeFault, parseFaultLine, renderFaultLine, type VirtioIommuFault } from './records.js';
import { virtioFaultAdvice } from './advice.js';
import { faultReportWords } from './record-words.js';
import { OUT_SIZE, decodeRequest, type VirtioIommuRequest } from './requests.js';
import { BOOT_LINE, VENDOR_ID, orderBase2 } from './registers.js';
import {
  CONFIG_SIZE,
  FAULT_SIZE,
  REQUEST_NAMES,
  STATUS_NAMES,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_EXEC,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  statusErrno,
} from './spec.js';


type Fields = Record<string, string | number | boolean>;

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** '03 00 00 00 …', '03000000…' or '0x03,0x00,…' as bytes; null when it is not whole hex bytes. */
export function parseHexBytes(text: string): Uint8Array | null {
  const tokens = text.trim().split(/[\s,:]+/).filter(Boolean);
  if (tokens.length === 0) return null;
  let digits = '';
  for (const t of tokens) {
    const d = t.replace(/^0x/i, '');
    if (!/^[0-9a-f]+$/i.test(d)) return null;
    // Separated tokens are bytes (a leading zero may be dropped); one long token is a byte string.
    if (tokens.length > 1) {
      if (d.length > 2) return null;
      digits += d.padStart(2, '0');
    } else digits += d;
  }
  if (digits.length % 2 !== 0 || digits.length > 2 * 4096) return null;
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function mapFlagText(flags: number): string {
  const parts = [flags & VIRTIO_IOMMU_MAP_F_READ ? 'READ' : '', flags & VIRTIO_IOMMU_MAP_F_WRITE ? 'WRITE' : '', flags & VIRTIO_IOMMU_MAP_F_MMIO ? 'MMIO' : ''].filter(Boolean);
  const unknown = flags & ~(VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE | VIRTIO_IOMMU_MAP_F_MMIO);
  if (unknown) parts.push(`unknown ${hex(unknown)}`);
  return parts.join('|') || 'no access';
}

function requestOutput(r: VirtioIommuRequest, tail: number | null): DecodeOutput {
  const name = REQUEST_NAMES[r.type];
  const fields: Fields = { type: r.type };
  let summary: string;
  switch (r.type) {
    case 1:
      Object.assign(fields, { domain: r.domain, endpoint: r.endpoint, flags: hex(r.flags), reserved: hex(r.reserved) });
      summary = `ATTACH endpoint ${r.endpoint} to ${r.flags & VIRTIO_IOMMU_ATTACH_F_BYPASS ? 'bypass ' : ''}domain ${r.domain}${r.reserved ? ' (reserved bytes set: the device must answer INVAL)' : ''}`;
      break;
    case 2:
      Object.assign(fields, { domain: r.domain, endpoint: r.endpoint });
      summary = `DETACH endpoint ${r.endpoint} from domain ${r.domain}`;
      break;
    case 3:
      Object.assign(fields, { domain: r.domain, virt_start: hex(r.virtStart), virt_end: hex(r.virtEnd), phys_start: hex(r.physStart), flags: hex(r.flags) });
      summary = `MAP domain ${r.domain}: IOVA ${hex(r.virtStart)}-${hex(r.virtEnd)} (${r.virtEnd >= r.virtStart ? `${r.virtEnd - r.virtStart + 1n} bytes` : 'virt_end below virt_start'}) -> ${hex(r.physStart)} ${mapFlagText(r.flags)}`;
      break;
    case 4:
      Object.assign(fields, { domain: r.domain, virt_start: hex(r.virtStart), virt_end: hex(r.virtEnd), reserved: hex(r.reserved) });
      summary = `UNMAP domain ${r.domain}: IOVA ${hex(r.virtStart)}-${hex(r.virtEnd)}`;
      break;
    default:
      Object.assign(fields, { endpoint: r.endpoint });
      summary = `PROBE endpoint ${r.endpoint}`;
  }
  if (tail !== null) {
    fields['status'] = STATUS_NAMES[tail] ?? tail;
    const e = statusErrno(tail);
    summary += `: ${STATUS_NAMES[tail] ?? `status ${tail}`}${e === 'OK' ? '' : ` (Linux: -${e})`}`;
  }
  return { vendor: VENDOR_ID, kind: `request ${name}`, fields, summary, linux: '' };
}

/** A fault report; `bytes` when it was given raw (its reserved bits too), else it is re-encoded for the diagram. */
function faultOutput(f: VirtioIommuFault & { reservedNonZero?: boolean }, bytes?: Uint8Array): DecodeOutput {
  const flags = [
    f.flags & VIRTIO_IOMMU_FAULT_F_READ ? 'READ' : '',
    f.flags & VIRTIO_IOMMU_FAULT_F_WRITE ? 'WRITE' : '',
    f.flags & VIRTIO_IOMMU_FAULT_F_EXEC ? 'EXEC' : '',
    f.flags & VIRTIO_IOMMU_FAULT_F_ADDRESS ? 'ADDRESS' : '',
  ].filter(Boolean);
  const reason = FAULT_REASON_NAMES[f.reason] ?? `unknown reason ${f.reason} (treated as UNKNOWN)`;
  const what = f.flags & VIRTIO_IOMMU_FAULT_F_ADDRESS ? ` at ${hex(f.address)}` : '';
  const advice = virtioFaultAdvice(f.reason, {
    device: `endpoint ${f.endpoint}`,
    address: f.address,
    access: f.flags & VIRTIO_IOMMU_FAULT_F_WRITE ? 'write' : f.flags & VIRTIO_IOMMU_FAULT_F_READ ? 'read' : '',
    pasid: -1,
  });
  return {
    vendor: VENDOR_ID,
    kind: 'fault',
    fields: { reason: f.reason, flags: hex(f.flags), endpoint: f.endpoint, address: hex(f.address) },
    summary: `${reason} fault from endpoint ${f.endpoint}${what}${flags.length ? ` [${flags.join(' ')}]` : ''}${f.reservedNonZero ? '; reserved bits set: the driver ignores it' : ''}`,
    linux: renderFaultLine(f) ?? '',
    words: faultReportWords(bytes ?? encodeFault(f)),
    ...(advice ? { advice } : {}),
  };
}

function configOutput(bytes: Uint8Array): DecodeOutput {
  const c = decodeConfig(bytes)!;
  return {
    vendor: VENDOR_ID,
    kind: 'config',
    fields: {
      page_size_mask: hex(c.page_size_mask),
      input_start: hex(c.input_range.start),
      input_end: hex(c.input_range.end),
      domain_start: c.domain_range.start,
      domain_end: c.domain_range.end,
      probe_size: c.probe_size,
      bypass: c.bypass,
    },
    summary: `granule ${hex(c.page_size_mask & -c.page_size_mask)}, input ${hex(c.input_range.start)}-${hex(c.input_range.end)} (${orderBase2(c.input_range.end)} bits), domains ${c.domain_range.start}-${c.domain_range.end}, PROBE ${c.probe_size} bytes, bypass ${c.bypass}`,
    linux: `input address: ${orderBase2(c.input_range.end)} bits\npage mask: ${hex(c.page_size_mask)}`,
  };
}


function lineOutput(text: string): Result<DecodeOutput> | null {
  const fault = parseFaultLine(text);
  if (fault) return ok({ ...faultOutput(fault), kind: 'fault line', linux: text.trim() });
  const m = BOOT_LINE.exec(stripKernelLogPrefix(text.trim()).trim());
  if (!m) return null;
  if (m[2] !== undefined) {
    return ok({ vendor: VENDOR_ID, kind: 'probe', fields: { inputBits: Number(m[2]) }, summary: `${m[1] ?? 'virtio-iommu'}: the aperture ends at 2^${m[2]} - 1 (order_base_2 of input_range.end)`, linux: text.trim() });
  }
  const mask = BigInt(m[3]);
  return ok({ vendor: VENDOR_ID, kind: 'probe', fields: { page_size_mask: hex(mask), granule: hex(mask & -mask) }, summary: `${m[1] ?? 'virtio-iommu'}: page sizes ${hex(mask)}, granule ${hex(mask & -mask)}`, linux: text.trim() });
}

const KINDS = ['request', 'fault', 'config', 'status', 'line'];

/** Explains a virtio-iommu input for `ioasid decode virtio-iommu`: a Linux log line, or hex bytes of a request, a fault record or the configuration (guessed by length unless `kind` is `request`, `fault`, `config`, `status` or `line`). */
export function decodeVirtio(what: string, kind?: string): Result<DecodeOutput> {
  const k = kind?.toLowerCase();
  if (k !== undefined && !KINDS.includes(k)) return err(`unknown kind '${kind}' (known: ${KINDS.join(', ')})`);
  if (k === 'status') {
    const n = Number(what.trim());
    if (!Number.isInteger(n) || n < 0 || n > 255) return err('status: expected a number from 0 to 255');
    const e = statusErrno(n);
    return ok({ vendor: VENDOR_ID, kind: 'status', fields: { status: n, name: STATUS_NAMES[n] ?? 'undefined' }, summary: `VIRTIO_IOMMU_S_${STATUS_NAMES[n] ?? '?'}: Linux returns ${e === 'OK' ? '0' : `-${e}`}`, linux: '' });
  }
  if (k === undefined || k === 'line') {
    const line = lineOutput(what);
    if (line) return line;
    if (k === 'line') return err('not a virtio_iommu log line (fault, "input address" or "page mask")');
  }
  const bytes = parseHexBytes(what);
  if (!bytes) return err('expected hex bytes (e.g. "03 00 00 00 01 00 00 00 ...") or a virtio_iommu log line');
  const asRequest = (): Result<DecodeOutput> => {
    const r = decodeRequest(bytes);
    if (!r.ok) return err(r.reason === 'unknown-type' ? `unknown request type ${r.type}: the device returns it unwritten` : `a ${REQUEST_NAMES[r.type] ?? 'request'} needs ${OUT_SIZE[r.type]} bytes, got ${bytes.length}`);
    const size = OUT_SIZE[r.request.type];
    // The tail may follow the device-readable part (PROBE: after the properties).
    const tail = bytes.length >= size + 4 ? bytes[bytes.length - 4] : null;
    return ok(requestOutput(r.request, tail));
  };
  if (k === 'request') return asRequest();
  if (k === 'fault') return bytes.length >= FAULT_SIZE ? ok(faultOutput(decodeFault(bytes)!, bytes.subarray(0, FAULT_SIZE))) : err(`a fault record is ${FAULT_SIZE} bytes, got ${bytes.length}`);
  if (k === 'config') return bytes.length >= CONFIG_SIZE ? ok(configOutput(bytes)) : err(`the configuration is ${CONFIG_SIZE} bytes, got ${bytes.length}`);
  // Guessing by size: the requests' own sizes, 24 for a fault record, 40 for the configuration.
  if (Object.values(OUT_SIZE).includes(bytes.length)) return asRequest();
  if (bytes.length === FAULT_SIZE) return ok(faultOutput(decodeFault(bytes)!, bytes.subarray(0, FAULT_SIZE)));
  if (bytes.length === CONFIG_SIZE) return ok(configOutput(bytes));
  return err(`${bytes.length} bytes are no request, fault record (24) or configuration (40): name it with --kind`);
}


/** The virtio-iommu plugin's decoder (`IommuPlugin.decoder`). */
export const virtioDecoder: IommuDecoder = { vendor: VENDOR_ID, decode: decodeVirtio };
