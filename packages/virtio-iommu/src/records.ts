/**
 * `struct virtio_iommu_fault`, the record the device writes into an event-queue buffer, and the line
 * the Linux driver prints for it (virtio-iommu.c viommu_fault_handler).
 */
import { stripKernelLogPrefix } from '@ioasid/core/driver';
import {
  FAULT_SIZE,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_EXEC,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
} from './spec.js';
import { virtio_iommu_fault } from './layouts.js';

/** `struct virtio_iommu_fault` as read from an event-queue buffer, reserved fields left out. */
export interface VirtioIommuFault {
  /** VIRTIO_IOMMU_FAULT_R_* */
  reason: number;
  /** VIRTIO_IOMMU_FAULT_F_* */
  flags: number;
  /** Endpoint ID of the device whose access faulted (its PCI requester ID or platform ID). */
  endpoint: number;
  /** Valid when flags has F_ADDRESS. */
  address: bigint;
}

/** Short name of each fault reason (`UNKNOWN`, `DOMAIN`, `MAPPING`), indexed by `virtio_iommu_fault.reason`. */
export const FAULT_REASON_NAMES: readonly string[] = ['UNKNOWN', 'DOMAIN', 'MAPPING'];

/** The device side: reserved fields zero, as the device should write them. */
export function encodeFault(f: VirtioIommuFault): Uint8Array {
  return virtio_iommu_fault.encode(virtio_iommu_fault.make({ reason: f.reason & 0xff, flags: f.flags, endpoint: f.endpoint, address: f.address }));
}

/** A decoded fault record, with whether its reserved bytes make the driver drop it. */
export interface DecodedFault extends VirtioIommuFault {
  /** reserved[3] is non-zero: the driver must ignore the report. */
  reservedNonZero: boolean;
}

/** Decodes a record of at least FAULT_SIZE bytes; null when shorter. */
export function decodeFault(b: Uint8Array): DecodedFault | null {
  if (b.length < FAULT_SIZE) return null;
  const v = virtio_iommu_fault.decode(b);
  return { reason: v.reason, flags: v.flags, endpoint: v.endpoint, address: v.address, reservedNonZero: v.reserved.some((x) => x !== 0) };
}

/** Linux's words for the reason: an unknown reason is 'unknown', as the driver should treat it. */
export function linuxReasonString(reason: number): string {
  return reason === VIRTIO_IOMMU_FAULT_R_DOMAIN ? 'domain' : reason === VIRTIO_IOMMU_FAULT_R_MAPPING ? 'page' : 'unknown';
}

/**
 * The message the Linux driver prints (dev_err_ratelimited on the virtio device), with the
 * `virtio_iommu <device>: ` prefix when `device` is given. A record with reserved bits set is
 * ignored by the driver: no line.
 */
export function renderFaultLine(f: DecodedFault | VirtioIommuFault, device?: string): string | null {
  if ('reservedNonZero' in f && f.reservedNonZero) return null;
  const who = `${linuxReasonString(f.reason)} fault from EP ${f.endpoint >>> 0}`;
  // %#llx: the kernel's vsprintf (number(), SPECIAL with base 16) prints the 0x for zero too, unlike C libraries.
  const addr = `0x${f.address.toString(16)}`;
  const msg =
    f.flags & VIRTIO_IOMMU_FAULT_F_ADDRESS
      ? `${who} at ${addr} [${f.flags & VIRTIO_IOMMU_FAULT_F_READ ? 'R' : ''}${f.flags & VIRTIO_IOMMU_FAULT_F_WRITE ? 'W' : ''}${f.flags & VIRTIO_IOMMU_FAULT_F_EXEC ? 'X' : ''}]`
      : who;
  return device ? `virtio_iommu ${device}: ${msg}` : msg;
}

const FAULT_LINE = /^(?:virtio_iommu (\S+): )?(domain|page|unknown) fault from EP (\d+)(?: at (?:0|0x([0-9a-f]+)) \[(R?)(W?)(X?)\])?$/;

/** Reads a Linux fault line back (after any dmesg / journalctl prefix); null when it is not one. */
export function parseFaultLine(line: string): (VirtioIommuFault & {
  /** The virtio device name of the `virtio_iommu <device>: ` prefix, or null when the line has none. */
  device: string | null;
}) | null {
  const s = stripKernelLogPrefix(line.trim()).trim();
  const m = FAULT_LINE.exec(s);
  if (!m) return null;
  const reason = m[2] === 'domain' ? VIRTIO_IOMMU_FAULT_R_DOMAIN : m[2] === 'page' ? VIRTIO_IOMMU_FAULT_R_MAPPING : 0;
  const endpoint = Number(m[3]);
  if (endpoint > 0xffff_ffff) return null;
  let flags = 0;
  // The [RWX] group takes part exactly when the line has an address.
  if (m[5] !== undefined) {
    flags |= VIRTIO_IOMMU_FAULT_F_ADDRESS;
    if (m[5]) flags |= VIRTIO_IOMMU_FAULT_F_READ;
    if (m[6]) flags |= VIRTIO_IOMMU_FAULT_F_WRITE;
    if (m[7]) flags |= VIRTIO_IOMMU_FAULT_F_EXEC;
  }
  const address = m[4] !== undefined ? BigInt(`0x${m[4]}`) : 0n;
  if (address > 0xffff_ffff_ffff_ffffn) return null;
  return { device: m[1] ?? null, reason, flags, endpoint, address };
}
