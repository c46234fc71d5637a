/**
 * Requests as the driver writes them (the device-readable part: head and fields) and the device's
 * answer (properties and the tail). Encoders are the driver side (tests, the host-IOMMU plugin, the
 * demo); `decodeRequest` is the device's parser and `ioasid decode virtio-iommu`'s.
 */
import {
  ATTACH_OUT_SIZE,
  DETACH_OUT_SIZE,
  MAP_OUT_SIZE,
  PROBE_OUT_SIZE,
  PROBE_PROPERTY_HEAD_SIZE,
  UNMAP_OUT_SIZE,
  VIRTIO_IOMMU_PROBE_T_MASK,
  VIRTIO_IOMMU_PROBE_T_NONE,
  VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK,
  VIRTIO_IOMMU_PROBE_T_RESV_MEM,
  VIRTIO_IOMMU_T_ATTACH,
  VIRTIO_IOMMU_T_DETACH,
  VIRTIO_IOMMU_T_MAP,
  VIRTIO_IOMMU_T_PROBE,
  VIRTIO_IOMMU_T_UNMAP,
  TAIL_SIZE,
  le16,
  le32,
  le64,
  put16,
  put32,
  put64,
} from './spec.js';

export interface AttachRequest {
  type: typeof VIRTIO_IOMMU_T_ATTACH;
  domain: number;
  endpoint: number;
  flags: number;
  /** The four reserved bytes as a little-endian u32: must be zero. */
  reserved: number;
}
export interface DetachRequest {
  type: typeof VIRTIO_IOMMU_T_DETACH;
  domain: number;
  endpoint: number;
  /** Whether any of the eight reserved bytes is non-zero (the device ignores them). */
  reservedNonZero: boolean;
}
export interface MapRequest {
  type: typeof VIRTIO_IOMMU_T_MAP;
  domain: number;
  virtStart: bigint;
  /** Inclusive. */
  virtEnd: bigint;
  physStart: bigint;
  flags: number;
}
export interface UnmapRequest {
  type: typeof VIRTIO_IOMMU_T_UNMAP;
  domain: number;
  virtStart: bigint;
  virtEnd: bigint;
  reserved: number;
}
export interface ProbeRequest {
  type: typeof VIRTIO_IOMMU_T_PROBE;
  endpoint: number;
}
export type VirtioIommuRequest = AttachRequest | DetachRequest | MapRequest | UnmapRequest | ProbeRequest;

/** The device-readable size of each request type. */
export const OUT_SIZE: Readonly<Record<number, number>> = {
  [VIRTIO_IOMMU_T_ATTACH]: ATTACH_OUT_SIZE,
  [VIRTIO_IOMMU_T_DETACH]: DETACH_OUT_SIZE,
  [VIRTIO_IOMMU_T_MAP]: MAP_OUT_SIZE,
  [VIRTIO_IOMMU_T_UNMAP]: UNMAP_OUT_SIZE,
  [VIRTIO_IOMMU_T_PROBE]: PROBE_OUT_SIZE,
};

function head(type: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = type;
  return b;
}

export function encodeAttach(r: { domain: number; endpoint: number; flags?: number; reserved?: number }): Uint8Array {
  const b = head(VIRTIO_IOMMU_T_ATTACH, ATTACH_OUT_SIZE);
  put32(b, 4, r.domain);
  put32(b, 8, r.endpoint);
  put32(b, 12, r.flags ?? 0);
  put32(b, 16, r.reserved ?? 0);
  return b;
}

export function encodeDetach(r: { domain: number; endpoint: number }): Uint8Array {
  const b = head(VIRTIO_IOMMU_T_DETACH, DETACH_OUT_SIZE);
  put32(b, 4, r.domain);
  put32(b, 8, r.endpoint);
  return b;
}

export function encodeMap(r: { domain: number; virtStart: bigint; virtEnd: bigint; physStart: bigint; flags: number }): Uint8Array {
  const b = head(VIRTIO_IOMMU_T_MAP, MAP_OUT_SIZE);
  put32(b, 4, r.domain);
  put64(b, 8, r.virtStart);
  put64(b, 16, r.virtEnd);
  put64(b, 24, r.physStart);
  put32(b, 32, r.flags);
  return b;
}

export function encodeUnmap(r: { domain: number; virtStart: bigint; virtEnd: bigint; reserved?: number }): Uint8Array {
  const b = head(VIRTIO_IOMMU_T_UNMAP, UNMAP_OUT_SIZE);
  put32(b, 4, r.domain);
  put64(b, 8, r.virtStart);
  put64(b, 16, r.virtEnd);
  put32(b, 24, r.reserved ?? 0);
  return b;
}

export function encodeProbe(r: { endpoint: number }): Uint8Array {
  const b = head(VIRTIO_IOMMU_T_PROBE, PROBE_OUT_SIZE);
  put32(b, 4, r.endpoint);
  return b;
}

export type DecodeResult = { ok: true; request: VirtioIommuRequest } | { ok: false; reason: 'unknown-type' | 'short'; type: number };

/**
 * Parses the device-readable part. `short` when it is smaller than the type's layout (the device
 * still finds the tail in the writable part and answers INVAL), `unknown-type` for a type this
 * device does not know. The head's reserved bytes are ignored, as the device must.
 */
export function decodeRequest(out: Uint8Array): DecodeResult {
  if (out.length < 1) return { ok: false, reason: 'short', type: -1 };
  const type = out[0];
  const size = OUT_SIZE[type];
  if (size === undefined) return { ok: false, reason: 'unknown-type', type };
  if (out.length < size) return { ok: false, reason: 'short', type };
  switch (type) {
    case VIRTIO_IOMMU_T_ATTACH:
      return { ok: true, request: { type, domain: le32(out, 4), endpoint: le32(out, 8), flags: le32(out, 12), reserved: le32(out, 16) } };
    case VIRTIO_IOMMU_T_DETACH:
      return { ok: true, request: { type, domain: le32(out, 4), endpoint: le32(out, 8), reservedNonZero: out.subarray(12, 20).some((x) => x !== 0) } };
    case VIRTIO_IOMMU_T_MAP:
      return { ok: true, request: { type, domain: le32(out, 4), virtStart: le64(out, 8), virtEnd: le64(out, 16), physStart: le64(out, 24), flags: le32(out, 32) } };
    case VIRTIO_IOMMU_T_UNMAP:
      return { ok: true, request: { type, domain: le32(out, 4), virtStart: le64(out, 8), virtEnd: le64(out, 16), reserved: le32(out, 24) } };
    default:
      return { ok: true, request: { type: VIRTIO_IOMMU_T_PROBE, endpoint: le32(out, 4) } };
  }
}

/** The status byte of a device answer (its tail), or -1 when the device wrote nothing. */
export function answerStatus(answer: Uint8Array): number {
  return answer.length >= TAIL_SIZE ? answer[answer.length - TAIL_SIZE] : -1;
}

export type ProbeProperty =
  | { type: typeof VIRTIO_IOMMU_PROBE_T_RESV_MEM; subtype: number; start: bigint; end: bigint }
  | { type: typeof VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK; mask: bigint }
  | { type: number; length: number; reservedBits: number };

/** Encodes one property at `off`; returns the bytes it took. */
export function putProperty(buf: Uint8Array, off: number, p: ProbeProperty): number {
  if (p.type === VIRTIO_IOMMU_PROBE_T_RESV_MEM && 'subtype' in p) {
    put16(buf, off, p.type);
    put16(buf, off + 2, 20);
    buf[off + 4] = p.subtype;
    put64(buf, off + 8, p.start);
    put64(buf, off + 16, p.end);
    return 24;
  }
  if (p.type === VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK && 'mask' in p) {
    put16(buf, off, p.type);
    put16(buf, off + 2, 12);
    put64(buf, off + 8, p.mask);
    return 16;
  }
  throw new RangeError(`cannot encode probe property type ${p.type}`);
}

/** The encoded size of a property. */
export function propertySize(p: ProbeProperty): number {
  return p.type === VIRTIO_IOMMU_PROBE_T_RESV_MEM ? 24 : 16;
}

/**
 * Parses a properties buffer as a driver does: until a NONE type or the end, each property
 * `length + 4` bytes after the previous one; properties with non-zero reserved bits are returned
 * as unknown (the driver must ignore them), truncated ones end the list.
 */
export function parseProperties(props: Uint8Array): ProbeProperty[] {
  const out: ProbeProperty[] = [];
  let cur = 0;
  while (cur + PROBE_PROPERTY_HEAD_SIZE <= props.length) {
    const word = le16(props, cur);
    const type = word & VIRTIO_IOMMU_PROBE_T_MASK;
    if (type === VIRTIO_IOMMU_PROBE_T_NONE) break;
    const length = le16(props, cur + 2);
    const end = cur + PROBE_PROPERTY_HEAD_SIZE + length;
    if (end > props.length) break;
    const reservedBits = word >> 12;
    if (reservedBits === 0 && type === VIRTIO_IOMMU_PROBE_T_RESV_MEM && length >= 20) {
      out.push({ type, subtype: props[cur + 4], start: le64(props, cur + 8), end: le64(props, cur + 16) });
    } else if (reservedBits === 0 && type === VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK && length >= 12) {
      out.push({ type, mask: le64(props, cur + 8) });
    } else out.push({ type, length, reservedBits });
    cur = end;
  }
  return out;
}
