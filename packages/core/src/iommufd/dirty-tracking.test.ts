import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { mapPattern, mockFixture } from '../__tests__/mock-host.js';
import { errCode } from '../__tests__/helpers.js';
import { PROT_READ } from '../memory/process.js';

/** A dirty-tracking HWPT with 4 pages at 0x100000, attached to a device. */
function trackedDomain() {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const h = f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }).out_hwpt_id;
    mapPattern(f, ioas, 0x100000n, 4);
    dev.attachPt(h);
  return { f, dev, h };
}

describe('IOMMU_HWPT_SET_DIRTY_TRACKING', () => {
  it('starts tracking from clean PTEs (iopt_clear_dirty_data), whatever the leaves held before', async () => {
    const { f, dev, h } = trackedDomain();
    // Writes before tracking is enabled leave dirty leaves behind (as Arm's writable-dirty DBM leaves do).
    for (let p = 0n; p < 4n; p++) await dev.dma.write(0x100000n + p * 4096n, new Uint8Array([1]));
    f.fd.run(U.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: h, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await dev.dma.write(0x102000n, new Uint8Array([2]));
    const bm = f.host.process.mmap(4096);
    f.fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: h, iova: 0x100000n, length: 4n * 4096n, page_size: 4096n, data: bm });
    expect(f.host.process.peek(bm, 1)[0]).toBe(0b0100);
  });
});

describe('IOMMU_HWPT_GET_DIRTY_BITMAP regressions found by the uAPI fuzz', () => {
  it('walks only the mapped part of a huge range (page_size 2^40): returns at once with the right bits', async () => {
    const { f, dev, h } = trackedDomain();
    f.fd.run(U.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: h, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await dev.dma.write(0x102000n, new Uint8Array([2]));
    const bm = f.host.process.mmap(4096);
    const started = Date.now();
    // Two bits of 2^40 bytes each: [0, 1 TiB) holds the dirty page, [1 TiB, 2 TiB) nothing.
    f.fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: h, iova: 0n, length: 2n << 40n, page_size: 1n << 40n, data: bm, flags: U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(f.host.process.peek(bm, 1)[0]).toBe(0b01);
    // The 4 KiB view still sees exactly the one written page (NO_CLEAR kept it).
    f.host.process.poke(bm, new Uint8Array(8));
    f.fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: h, iova: 0x100000n, length: 4n * 4096n, page_size: 4096n, data: bm });
    expect(f.host.process.peek(bm, 1)[0]).toBe(0b0100);
  });
});

describe('IOMMU_HWPT_GET_DIRTY_BITMAP that fails', () => {
  it('EFAULT on a read-only bitmap clears no dirty bit (iova_bitmap_get pins the bitmap writable first)', async () => {
    const { f, dev, h } = trackedDomain();
    f.fd.run(U.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: h, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await dev.dma.write(0x101000n, new Uint8Array([2]));
    await dev.dma.write(0x103000n, new Uint8Array([2]));
    const ro = f.host.process.mmap(4096, { prot: PROT_READ });
    const get = (data: bigint) => f.fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: h, iova: 0x100000n, length: 4n * 4096n, page_size: 4096n, data });
    expect(errCode(() => get(ro))).toBe('EFAULT');
    expect(errCode(() => get(0n))).toBe('EFAULT');
    const bm = f.host.process.mmap(4096);
    get(bm);
    expect(f.host.process.peek(bm, 1)[0]).toBe(0b1010);
  });
});
