import { describe, expect, it } from 'vitest';
import { wordField, type DecodeOutput } from '@ioasid/core/driver';
import { decodeVirtio } from './decode.js';
import { encodeFault, renderFaultLine } from './records.js';
import { VIRTIO_IOMMU_FAULT_F_ADDRESS, VIRTIO_IOMMU_FAULT_F_WRITE, VIRTIO_IOMMU_FAULT_R_DOMAIN, VIRTIO_IOMMU_FAULT_R_MAPPING } from './spec.js';

function decoded(text: string, kind?: string): DecodeOutput {
  const r = decodeVirtio(text, kind);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}
const hexBytes = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

describe('virtio-iommu decoder: record words and advice', () => {
  it('a raw R_MAPPING report: its three words, and a missing MAP as the usual cause', () => {
    const f = { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_WRITE, endpoint: 8, address: 0xa000n };
    const o = decoded(hexBytes(encodeFault(f)), 'fault');
    expect([wordField(o.words!, 'reason'), wordField(o.words!, 'flags.WRITE'), wordField(o.words!, 'endpoint'), wordField(o.words!, 'address')]).toEqual([2n, 1n, 8n, 0xa000n]);
    expect(o.advice!.causes[0]).toMatch(/^R_MAPPING: no MAP request covers/);
    expect(o.advice!.checks[0]).toMatch(/^Which device: endpoint 8\./);
    expect(o.advice!.checks[1]).toBe('Which address: 0xa000, a write without a PASID.');
    // The guest's line for it decodes to the same record and advice.
    const line = renderFaultLine(f);
    expect(line).not.toBeNull();
    const fromLine = decoded(line!);
    expect(fromLine.words).toEqual(o.words);
    expect(fromLine.advice).toEqual(o.advice);
  });

  it('R_DOMAIN: the endpoint is not attached', () => {
    const o = decoded(hexBytes(encodeFault({ reason: VIRTIO_IOMMU_FAULT_R_DOMAIN, flags: 0, endpoint: 3, address: 0n })), 'fault');
    expect(o.advice!.causes[0]).toMatch(/^R_DOMAIN: the endpoint is not attached/);
  });
});
