import { describe, expect, it } from 'vitest';
import { decodeFault, encodeFault, parseFaultLine, renderFaultLine } from './records.js';
import { decodeRequest, encodeAttach, encodeDetach, encodeMap, encodeProbe, encodeUnmap, parseProperties } from './requests.js';
import {
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_EXEC,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
  statusErrno,
  statusName,
} from './spec.js';

describe('struct virtio_iommu_fault', () => {
  it('encodes 24 little-endian bytes with zero reserved fields and decodes them back', () => {
    const f = { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_WRITE, endpoint: 0x10, address: 0x1234_5000n };
    const b = encodeFault(f);
    expect(Buffer.from(b).toString('hex')).toBe('02000000' + '02010000' + '10000000' + '00000000' + '0050341200000000');
    expect(decodeFault(b)).toEqual({ ...f, reservedNonZero: false });
    expect(decodeFault(b.subarray(0, 23))).toBeNull();
  });

  it('renders the Linux driver\'s lines, and none for a record with reserved bits the driver must ignore', () => {
    expect(renderFaultLine({ reason: VIRTIO_IOMMU_FAULT_R_DOMAIN, flags: 0, endpoint: 8, address: 0n })).toBe('domain fault from EP 8');
    expect(renderFaultLine({ reason: 7, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ | VIRTIO_IOMMU_FAULT_F_EXEC, endpoint: 8, address: 0x10n }, 'virtio1')).toBe(
      'virtio_iommu virtio1: unknown fault from EP 8 at 0x10 [RX]',
    );
    const b = encodeFault({ reason: 2, flags: 0, endpoint: 1, address: 0n });
    b[2] = 1;
    expect(renderFaultLine(decodeFault(b)!)).toBeNull();
  });

  it('parses a Linux fault line back, after a dmesg or journalctl prefix', () => {
    expect(parseFaultLine('[   12.345678] virtio_iommu virtio0: page fault from EP 16 at 0xabc000 [RW]')).toEqual({
      device: 'virtio0',
      reason: VIRTIO_IOMMU_FAULT_R_MAPPING,
      flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ | VIRTIO_IOMMU_FAULT_F_WRITE,
      endpoint: 16,
      address: 0xabc000n,
    });
    expect(parseFaultLine('domain fault from EP 3')).toMatchObject({ device: null, reason: VIRTIO_IOMMU_FAULT_R_DOMAIN, flags: 0 });
    expect(parseFaultLine('Dec 04 23:00:00 guest kernel: virtio_iommu virtio0: page fault from EP 8 at 0x1000 [R]')).toMatchObject({ device: 'virtio0', endpoint: 8 });
    expect(parseFaultLine('DMAR: fault')).toBeNull();
    expect(parseFaultLine('page fault from EP 99999999999')).toBeNull();
  });
});

describe('requests', () => {
  it('round-trips every request type through the device parser', () => {
    expect(decodeRequest(encodeAttach({ domain: 1, endpoint: 2, flags: 1 }))).toEqual({ ok: true, request: { type: 1, domain: 1, endpoint: 2, flags: 1, reserved: 0 } });
    expect(decodeRequest(encodeDetach({ domain: 1, endpoint: 2 }))).toEqual({ ok: true, request: { type: 2, domain: 1, endpoint: 2, reservedNonZero: false } });
    expect(decodeRequest(encodeMap({ domain: 5, virtStart: 1n << 60n, virtEnd: (1n << 61n) - 1n, physStart: 0xa000n, flags: 3 }))).toEqual({
      ok: true,
      request: { type: 3, domain: 5, virtStart: 1n << 60n, virtEnd: (1n << 61n) - 1n, physStart: 0xa000n, flags: 3 },
    });
    expect(decodeRequest(encodeUnmap({ domain: 5, virtStart: 0n, virtEnd: 0xffff_ffff_ffff_ffffn }))).toMatchObject({ ok: true, request: { virtEnd: 0xffff_ffff_ffff_ffffn } });
    expect(decodeRequest(encodeProbe({ endpoint: 0xffff_ffff }))).toEqual({ ok: true, request: { type: 5, endpoint: 0xffff_ffff } });
    expect(decodeRequest(Uint8Array.of(9, 0, 0, 0))).toEqual({ ok: false, reason: 'unknown-type', type: 9 });
    expect(decodeRequest(Uint8Array.of(1, 0, 0, 0))).toEqual({ ok: false, reason: 'short', type: 1 });
  });

  it('parses properties as a driver: skips unknown types and ones with reserved bits, stops at NONE or a truncated one', () => {
    const p = new Uint8Array(64);
    p.set([0x07, 0x00, 0x02, 0x00, 0xaa, 0xbb], 0);
    p.set([0x01, 0x10, 0x14, 0x00], 6);
    p.set([0x01, 0x00, 0x40, 0x00], 30);
    expect(parseProperties(p)).toEqual([
      { type: 7, length: 2, reservedBits: 0 },
      { type: 1, length: 20, reservedBits: 1 },
    ]);
  });

  it('maps statuses to the Linux errnos', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(statusErrno)).toEqual(['OK', 'EIO', 'ENOSYS', 'EIO', 'EINVAL', 'ERANGE', 'ENOENT', 'EFAULT', 'ENOMEM', 'EIO']);
    expect(statusName(5)).toBe('RANGE');
    expect(statusName(42)).toBe('status 42');
  });
});
