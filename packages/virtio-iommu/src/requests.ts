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
  PAGE_SIZE_MASK_LENGTH,
  RESV_MEM_LENGTH,
  le16,
} from './spec.js';
import { virtio_iommu_probe_page_size_mask, virtio_iommu_probe_resv_mem, virtio_iommu_req_attach, virtio_iommu_req_detach, virtio_iommu_req_map, virtio_iommu_req_probe, virtio_iommu_req_unmap } from './layouts.js';

/** `struct virtio_iommu_req_attach` as the device reads it: put `endpoint` into `domain`. */
export interface AttachRequest {
  /** `VIRTIO_IOMMU_T_ATTACH` (1). */
  type: typeof VIRTIO_IOMMU_T_ATTACH;
  /** Domain ID; the device creates the domain when no endpoint is attached to it yet. */
  domain: number;
  /** Endpoint ID (PCI requester ID or platform ID). */
  endpoint: number;
  /** `VIRTIO_IOMMU_ATTACH_F_*`: bit 0 asks for a bypass domain; any other bit is refused with INVAL. */
  flags: number;
  /** The four reserved bytes as a little-endian u32: must be zero. */
  reserved: number;
}
/** `struct virtio_iommu_req_detach` as the device reads it: take `endpoint` out of `domain`. */
export interface DetachRequest {
  /** `VIRTIO_IOMMU_T_DETACH` (2). */
  type: typeof VIRTIO_IOMMU_T_DETACH;
  /** Domain ID the endpoint is expected to be in. */
  domain: number;
  /** Endpoint ID (PCI requester ID or platform ID). */
  endpoint: number;
  /** Whether any of the eight reserved bytes is non-zero (the device ignores them). */
  reservedNonZero: boolean;
}
/** `struct virtio_iommu_req_map` as the device reads it: IOVA `[virtStart, virtEnd]` of `domain` to `physStart`. */
export interface MapRequest {
  /** `VIRTIO_IOMMU_T_MAP` (3). */
  type: typeof VIRTIO_IOMMU_T_MAP;
  /** Domain ID. */
  domain: number;
  /** `virt_start`: first IOVA, aligned to the granule. */
  virtStart: bigint;
  /** Inclusive. */
  virtEnd: bigint;
  /** `phys_start`: guest-physical address `virtStart` maps to. */
  physStart: bigint;
  /** `VIRTIO_IOMMU_MAP_F_*` (READ, WRITE, MMIO); unknown bits are refused with INVAL. */
  flags: number;
}
/** `struct virtio_iommu_req_unmap` as the device reads it: remove the whole mappings inside `[virtStart, virtEnd]`. */
export interface UnmapRequest {
  /** `VIRTIO_IOMMU_T_UNMAP` (4). */
  type: typeof VIRTIO_IOMMU_T_UNMAP;
  /** Domain ID. */
  domain: number;
  /** `virt_start`: the first IOVA, which must not fall inside a mapping other than at its start. */
  virtStart: bigint;
  /** `virt_end` (inclusive): must not fall inside a mapping other than at its end. */
  virtEnd: bigint;
  /** The four reserved bytes as a little-endian u32; the device may refuse non-zero with INVAL. */
  reserved: number;
}
/** `struct virtio_iommu_req_probe` as the device reads it: ask for an endpoint's properties. */
export interface ProbeRequest {
  /** `VIRTIO_IOMMU_T_PROBE` (5). */
  type: typeof VIRTIO_IOMMU_T_PROBE;
  /** Endpoint ID whose properties the driver asks for. */
  endpoint: number;
}
/** Any request the device understands, told apart by `type`. */
export type VirtioIommuRequest = AttachRequest | DetachRequest | MapRequest | UnmapRequest | ProbeRequest;

/** The device-readable size of each request type. */
export const OUT_SIZE: Readonly<Record<number, number>> = {
  [VIRTIO_IOMMU_T_ATTACH]: ATTACH_OUT_SIZE,
  [VIRTIO_IOMMU_T_DETACH]: DETACH_OUT_SIZE,
  [VIRTIO_IOMMU_T_MAP]: MAP_OUT_SIZE,
  [VIRTIO_IOMMU_T_UNMAP]: UNMAP_OUT_SIZE,
  [VIRTIO_IOMMU_T_PROBE]: PROBE_OUT_SIZE,
};

/** The device-readable part of a request: the struct encoded, cut before its tail. */
function readable(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.slice(0, size);
}

/** The 20 device-readable bytes of an ATTACH request (flags and reserved default to 0). */
export function encodeAttach(r: { domain: number; endpoint: number; flags?: number; reserved?: number }): Uint8Array {
  const L = virtio_iommu_req_attach;
  return readable(L.encode(L.make({ type: VIRTIO_IOMMU_T_ATTACH, domain: r.domain, endpoint: r.endpoint, flags: r.flags ?? 0, reserved: r.reserved ?? 0 })), ATTACH_OUT_SIZE);
}

/** The 20 device-readable bytes of a DETACH request, reserved bytes zero. */
export function encodeDetach(r: { domain: number; endpoint: number }): Uint8Array {
  const L = virtio_iommu_req_detach;
  return readable(L.encode(L.make({ type: VIRTIO_IOMMU_T_DETACH, domain: r.domain, endpoint: r.endpoint })), DETACH_OUT_SIZE);
}

/** The 36 device-readable bytes of a MAP request (`virtEnd` inclusive). */
export function encodeMap(r: { domain: number; virtStart: bigint; virtEnd: bigint; physStart: bigint; flags: number }): Uint8Array {
  const L = virtio_iommu_req_map;
  return readable(L.encode(L.make({ type: VIRTIO_IOMMU_T_MAP, domain: r.domain, virt_start: r.virtStart, virt_end: r.virtEnd, phys_start: r.physStart, flags: r.flags })), MAP_OUT_SIZE);
}

/** The 28 device-readable bytes of an UNMAP request (`virtEnd` inclusive, reserved defaults to 0). */
export function encodeUnmap(r: { domain: number; virtStart: bigint; virtEnd: bigint; reserved?: number }): Uint8Array {
  const L = virtio_iommu_req_unmap;
  return readable(L.encode(L.make({ type: VIRTIO_IOMMU_T_UNMAP, domain: r.domain, virt_start: r.virtStart, virt_end: r.virtEnd, reserved: r.reserved ?? 0 })), UNMAP_OUT_SIZE);
}

/** The 72 device-readable bytes of a PROBE request; the driver appends `probe_size` property bytes and the tail for the device to write. */
export function encodeProbe(r: { endpoint: number }): Uint8Array {
  const L = virtio_iommu_req_probe;
  return L.encode(L.make({ type: VIRTIO_IOMMU_T_PROBE, endpoint: r.endpoint }));
}

/** `out` padded to the whole struct (the tail is not the driver's to write), for the codec. */
function padded(out: Uint8Array, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b.set(out.subarray(0, size));
  return b;
}

/** What {@link decodeRequest} makes of the device-readable bytes. */
export type DecodeResult =
  | {
      /** The bytes hold a whole request. */
      ok: true;
      /** The decoded request. */
      request: VirtioIommuRequest;
    }
  | {
      /** The device cannot parse the request. */
      ok: false;
      /** `unknown-type`: no such request type; `short`: fewer bytes than the type's layout. */
      reason: 'unknown-type' | 'short';
      /** The head's `type` byte, or -1 when there were no bytes at all. */
      type: number;
    };

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
    case VIRTIO_IOMMU_T_ATTACH: {
      const v = virtio_iommu_req_attach.decode(padded(out, virtio_iommu_req_attach.size));
      return { ok: true, request: { type, domain: v.domain, endpoint: v.endpoint, flags: v.flags, reserved: v.reserved } };
    }
    case VIRTIO_IOMMU_T_DETACH: {
      const v = virtio_iommu_req_detach.decode(padded(out, virtio_iommu_req_detach.size));
      return { ok: true, request: { type, domain: v.domain, endpoint: v.endpoint, reservedNonZero: v.reserved.some((x) => x !== 0) } };
    }
    case VIRTIO_IOMMU_T_MAP: {
      const v = virtio_iommu_req_map.decode(padded(out, virtio_iommu_req_map.size));
      return { ok: true, request: { type, domain: v.domain, virtStart: v.virt_start, virtEnd: v.virt_end, physStart: v.phys_start, flags: v.flags } };
    }
    case VIRTIO_IOMMU_T_UNMAP: {
      const v = virtio_iommu_req_unmap.decode(padded(out, virtio_iommu_req_unmap.size));
      return { ok: true, request: { type, domain: v.domain, virtStart: v.virt_start, virtEnd: v.virt_end, reserved: v.reserved } };
    }
    default:
      return { ok: true, request: { type: VIRTIO_IOMMU_T_PROBE, endpoint: virtio_iommu_req_probe.decode(out).endpoint } };
  }
}

/** The status byte of a device answer (its tail), or -1 when the device wrote nothing. */
export function answerStatus(answer: Uint8Array): number {
  return answer.length >= TAIL_SIZE ? answer[answer.length - TAIL_SIZE] : -1;
}

/** One PROBE property: a RESV_MEM region, the draft page-size mask, or any other property kept as its header. */
export type ProbeProperty =
  | {
      /** `VIRTIO_IOMMU_PROBE_T_RESV_MEM` (1). */
      type: typeof VIRTIO_IOMMU_PROBE_T_RESV_MEM;
      /** `VIRTIO_IOMMU_RESV_MEM_T_RESERVED` (0) or `VIRTIO_IOMMU_RESV_MEM_T_MSI` (1). */
      subtype: number;
      /** First IOVA of the region. */
      start: bigint;
      /** Last IOVA of the region (inclusive). */
      end: bigint;
    }
  | {
      /** `VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK` (2, a draft property). */
      type: typeof VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK;
      /** The endpoint's page sizes, overriding the config `page_size_mask`. */
      mask: bigint;
    }
  | {
      /** The 12-bit property type, unknown to the parser or carrying reserved bits. */
      type: number;
      /** The header's `length`: bytes after the 4-byte header. */
      length: number;
      /** The header's top 4 reserved bits; non-zero makes the driver ignore the property. */
      reservedBits: number;
    };

/** Encodes one property at `off`; returns the bytes it took. */
export function putProperty(buf: Uint8Array, off: number, p: ProbeProperty): number {
  if (p.type === VIRTIO_IOMMU_PROBE_T_RESV_MEM && 'subtype' in p) {
    const L = virtio_iommu_probe_resv_mem;
    L.encode(L.make({ type: p.type, length: RESV_MEM_LENGTH, subtype: p.subtype, start: p.start, end: p.end }), buf, off);
    return L.size;
  }
  if (p.type === VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK && 'mask' in p) {
    const L = virtio_iommu_probe_page_size_mask;
    L.encode(L.make({ type: p.type, length: PAGE_SIZE_MASK_LENGTH, mask: p.mask }), buf, off);
    return L.size;
  }
  throw new RangeError(`cannot encode probe property type ${p.type}`);
}

/** The encoded size of a property. */
export function propertySize(p: ProbeProperty): number {
  return PROBE_PROPERTY_HEAD_SIZE + (p.type === VIRTIO_IOMMU_PROBE_T_RESV_MEM ? RESV_MEM_LENGTH : PAGE_SIZE_MASK_LENGTH);
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
    if (reservedBits === 0 && type === VIRTIO_IOMMU_PROBE_T_RESV_MEM && length >= RESV_MEM_LENGTH) {
      const v = virtio_iommu_probe_resv_mem.decode(props, cur);
      out.push({ type, subtype: v.subtype, start: v.start, end: v.end });
    } else if (reservedBits === 0 && type === VIRTIO_IOMMU_PROBE_T_PAGE_SIZE_MASK && length >= PAGE_SIZE_MASK_LENGTH) {
      out.push({ type, mask: virtio_iommu_probe_page_size_mask.decode(props, cur).mask });
    } else out.push({ type, length, reservedBits });
    cur = end;
  }
  return out;
}
