/**
 * A virtio-iommu fault report (struct virtio_iommu_fault, 24 bytes) as three 64-bit little-endian words
 * with their field layouts (`DecodeOutput.words`, the web page's bit diagrams).
 */
import { recordWords, type DecodedWord, type RecordField } from '@ioasid/core/driver';
import { VIRTIO_IOMMU_FAULT_F_ADDRESS, VIRTIO_IOMMU_FAULT_F_EXEC, VIRTIO_IOMMU_FAULT_F_READ, VIRTIO_IOMMU_FAULT_F_WRITE } from './spec.js';

const flag = (name: string, v: number): RecordField => [0, name, 32 + Math.log2(v), 32 + Math.log2(v)];

const FAULT_FIELDS: readonly RecordField[] = [
  [0, 'reason', 7, 0],
  [0, 'reserved', 31, 8],
  flag('flags.READ', VIRTIO_IOMMU_FAULT_F_READ),
  flag('flags.WRITE', VIRTIO_IOMMU_FAULT_F_WRITE),
  flag('flags.EXEC', VIRTIO_IOMMU_FAULT_F_EXEC),
  flag('flags.ADDRESS', VIRTIO_IOMMU_FAULT_F_ADDRESS),
  [1, 'endpoint', 31, 0],
  [1, 'reserved1', 63, 32],
  [2, 'address', 63, 0],
];

/** The three words of a fault report: bytes 0-7 (reason, flags), 8-15 (endpoint), 16-23 (address). */
export function faultReportWords(bytes: Uint8Array): DecodedWord[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = [0, 8, 16].map((o) => dv.getBigUint64(o, true));
  return recordWords(words, 64, FAULT_FIELDS, (i) => `bytes ${8 * i}-${8 * i + 7}`);
}
