import { describe, expect, it } from 'vitest';
import { createHost, DmaFault } from '@ioasid/core';
import { codecPageRequests, codecStalls, PERM_READ, PERM_WRITE, type FailedAccess } from '@ioasid/core/driver';
import { runConformance } from '@ioasid/core/conformance';
import { plugin } from './plugin.js';
import { presets, qemuQ35 } from './presets.js';
import { decodeFault, parseFaultLine } from './records.js';
import type { VirtioIommuUnit } from './unit.js';
import { VIRTIO_IOMMU_FAULT_F_ADDRESS, VIRTIO_IOMMU_FAULT_F_READ, VIRTIO_IOMMU_FAULT_F_WRITE, VIRTIO_IOMMU_FAULT_R_DOMAIN, VIRTIO_IOMMU_FAULT_R_MAPPING, VIRTIO_IOMMU_FAULT_R_UNKNOWN } from './spec.js';

function rig() {
  const host = createHost({ plugins: [plugin], profile: qemuQ35, allowUnsafeInterrupts: true });
  const fd = host.openIommufd();
  const dev = host.device(qemuQ35.devices[0].bdf);
  dev.bindIommufd(fd);
  const unit = dev.unitOps as VirtioIommuUnit;
  return { host, fd, dev, unit };
}

describe('virtio-iommu fault codec: struct virtio_iommu_fault on the event queue', () => {
  it('has the fault half only: no page requests, no stall model', () => {
    const { unit } = rig();
    expect(codecPageRequests(unit.faults)).toBe(false);
    expect(codecStalls(unit.faults)).toBe(false);
    expect(unit.faults.faultRecordSize).toBe(24);
  });

  it('encodes the reason, the access flags, the endpoint (the requester ID) and the address', () => {
    const { unit, dev } = rig();
    const a: FailedAccess = { unit: 0, rid: dev.info.rid, pasid: -1, addr: 0x1234_5678n, perm: PERM_WRITE, failure: 'permission-write', stage2: false, recoverable: false, grpid: 0, last: true };
    const rec = decodeFault(unit.faults.encodeFault(a));
    expect(rec).toEqual({ reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_WRITE, endpoint: dev.info.rid, address: 0x1234_5678n, reservedNonZero: false });
    const reasons = (['not-present', 'address-size', 'table-fault', 'no-context', 'blocked'] as const).map((failure) => decodeFault(unit.faults.encodeFault({ ...a, failure }))!.reason);
    // The bound device sits on the blocking domain: blocked DMA finds no mapping there.
    expect(reasons).toEqual([VIRTIO_IOMMU_FAULT_R_MAPPING, VIRTIO_IOMMU_FAULT_R_MAPPING, VIRTIO_IOMMU_FAULT_R_UNKNOWN, VIRTIO_IOMMU_FAULT_R_UNKNOWN, VIRTIO_IOMMU_FAULT_R_MAPPING]);
    // An endpoint the driver never attached reaches no domain.
    expect(decodeFault(unit.faults.encodeFault({ ...a, rid: 0xfff0, failure: 'blocked' }))!.reason).toBe(VIRTIO_IOMMU_FAULT_R_DOMAIN);
    const f = unit.faults.decodeFault(unit.faults.encodeFault({ ...a, perm: PERM_READ }), 0);
    expect(f).toMatchObject({ kind: 'dma', rid: dev.info.rid, pasid: -1, addr: 0x1234_5678n, perm: PERM_READ, reason: VIRTIO_IOMMU_FAULT_R_MAPPING, reasonText: 'VIRTIO_IOMMU_FAULT_R_MAPPING' });
  });

  it('logs an unmapped DMA as Linux does, on the virtio device, and a blocked one as a page fault in the blocking domain from the bind on', async () => {
    const { host, fd, dev, unit } = rig();
    const ep = dev.info.rid;
    // Bound, never attached: iommufd_device_bind claimed the DMA ownership, which parked the endpoint on
    // the driver's empty blocking domain (a paging domain: virtio-iommu has no blocked domain op).
    await expect(dev.dma.read(0x10_0000n, 4)).rejects.toBeInstanceOf(DmaFault);
    await new Promise((r) => setTimeout(r, 0));
    expect(host.log.lines).toContain(`virtio_iommu ${unit.name}: page fault from EP ${ep} at 0x100000 [R]`);
    expect(host.log.lines.some((l) => l.includes('domain fault'))).toBe(false);
    const ioas = fd.ioas.alloc();
    dev.attachPt(ioas);
    await expect(dev.dma.write(0x20_0000n, Uint8Array.of(1))).rejects.toBeInstanceOf(DmaFault);
    await new Promise((r) => setTimeout(r, 0));
    expect(host.log.lines).toContain(`virtio_iommu ${unit.name}: page fault from EP ${ep} at 0x200000 [W]`);
    // After a detach the driver's empty blocking domain holds the endpoint: the device finds no mapping.
    dev.detachPt();
    await expect(dev.dma.read(0n, 4)).rejects.toBeInstanceOf(DmaFault);
    await new Promise((r) => setTimeout(r, 0));
    const line = `virtio_iommu ${unit.name}: page fault from EP ${ep} at 0x0 [R]`;
    expect(host.log.lines).toContain(line);
    expect(parseFaultLine(line)).toEqual({ device: unit.name, reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ, endpoint: ep, address: 0n });
  });

  it('passes the conformance kit with the page-request checks reported skipped by name', async () => {
    for (const profile of presets) {
      const results = await runConformance({ plugin, profile, device: profile.devices[0].bdf });
      expect(results.filter((r) => r.status === 'failed'), profile.name).toEqual([]);
      expect(results.find((r) => r.name.startsWith('fault codec:'))?.status).toBe('passed');
      expect(results.find((r) => r.name.startsWith('page-request codec:'))?.status).toBe('skipped');
    }
  });
});
