import { describe, expect, it } from 'vitest';
import { wordField } from '@ioasid/core/driver';
import { encodeFault } from './records.js';
import { faultReportWords } from './record-words.js';
import { VIRTIO_IOMMU_FAULT_F_ADDRESS, VIRTIO_IOMMU_FAULT_F_WRITE, VIRTIO_IOMMU_FAULT_R_MAPPING } from './spec.js';

describe('virtio-iommu record words', () => {
  it('a fault report: reason, flags, endpoint and address in three little-endian words', () => {
    const w = faultReportWords(encodeFault({ reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_WRITE, endpoint: 8, address: 0xa000n }));
    expect(w.map((x) => x.name)).toEqual(['bytes 0-7', 'bytes 8-15', 'bytes 16-23']);
    expect([wordField(w, 'reason'), wordField(w, 'flags.WRITE'), wordField(w, 'flags.READ'), wordField(w, 'flags.ADDRESS'), wordField(w, 'endpoint'), wordField(w, 'address')]).toEqual([2n, 1n, 0n, 1n, 8n, 0xa000n]);
  });
});
