/** A short page-request storm (the long one is `npm run storm`) and a vEVENTQ flood against a reference. */
import { describe, expect, it } from 'vitest';
import { mockPlugin, IOMMU_VEVENTQ_TYPE_MOCK, IOMMU_VIOMMU_TYPE_MOCK } from '@ioasid/core/testing';
import { createHost, ObjType } from '@ioasid/core';
import { pageRequestStorm, veventqStorm } from './storm.js';
import { iommufdCtx } from '@ioasid/core/internal';

describe('page request storm', () => {
  it('every device gets exactly its own answer exactly once, through overflow, detach, replace and destroy', async () => {
    const rep = await pageRequestStorm({ plugin: mockPlugin(), unit: { id: 'mock0', vendor: 'mock', registers: { pageRequestQueueDepth: 64 } }, requests: 20_000, devices: 8, pasidsPerDevice: 3, concurrency: 1024, chaosEvery: 200 });
    expect(rep.violations).toEqual([]);
    expect(rep.requests).toBe(20_000);
    expect(rep.success + rep.invalid + rep.failure).toBe(20_000);
    // The mix really happened: answers of both kinds, hardware FAILUREs from overflow, kernel INVALIDs.
    expect(rep.success).toBeGreaterThan(1000);
    expect(rep.invalid).toBeGreaterThan(1000);
    expect(rep.failure).toBeGreaterThan(0);
    expect(rep.chaos).toBeGreaterThan(50);
  }, 120_000);
});

describe('vEVENTQ flood', () => {
  it('sequence numbers and LOST_EVENTS headers match a reference queue exactly', () => {
    const host = createHost({ plugins: [mockPlugin()], profile: { name: 'v', units: [{ id: 'mock0', vendor: 'mock', registers: {} }], devices: [{ bdf: '0000:00:01.0', unit: 'mock0' }] } });
    const fd = host.openIommufd();
    const devId = host.device('0000:00:01.0').bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    const parent = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const viommu = fd.viommu.alloc({ devId, type: IOMMU_VIOMMU_TYPE_MOCK, hwptId: parent });
    const vq = fd.veventq.alloc({ viommuId: viommu, type: IOMMU_VEVENTQ_TYPE_MOCK, depth: 16 });
    const q = iommufdCtx(fd).objects.get(vq.id, ObjType.VEVENTQ) as unknown as { report(d: Uint8Array): void };
    const rep = veventqStorm(q, (n) => host.process.read(vq.fd, n), 16, 50_000);
    expect(rep.violations).toEqual([]);
    expect(rep.lostHeaders).toBeGreaterThan(0);
    expect(rep.reads).toBeGreaterThan(1000);
  });
});
