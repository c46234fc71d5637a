/**
 * Dirty tracking on an SMMUv3 with HTTU (MMU-700): Linux's arm_smmu_set_dirty_tracking does nothing and
 * returns 0, because DBM stays set on every writable leaf of a dirty-tracking domain. Turning tracking off
 * must therefore never change what a device may write, even on pages whose dirty state was cleaned.
 */
import { describe, expect, it } from 'vitest';
import { createHost } from '@ioasid/core';
import { plugin, presetToHostProfile } from './index.js';
import { mmu700Platform } from './presets.js';

const PAGE = 4096n;
const IOVA = 1n << 20n;

function env() {
  const host = createHost({ plugins: [plugin], profile: presetToHostProfile(mmu700Platform) });
  const dev = [...host.devices.values()][0];
  const fd = host.openIommufd();
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const hwpt = fd.hwpt.alloc({ devId, ptId: ioas, dirtyTracking: true });
  dev.attachPt(hwpt);
  const va = host.process.mmap(4 * 4096);
  fd.ioas.map({ ioasId: ioas, userVa: va, length: 4n * PAGE, iova: IOVA });
  return { host, dev, fd, hwpt };
}

describe('SMMUv3 dirty tracking off', () => {
  it('the unit models HTTU dirty updates', () => {
    const { dev } = env();
    expect(dev.unitOps.caps.dirtyTracking).toBe(true);
  });

  it('writable pages stay writable after tracking is turned off, cleaned or not', async () => {
    const { dev, fd, hwpt } = env();
    fd.hwpt.setDirtyTracking(hwpt, true);
    await dev.dma.write(IOVA, new Uint8Array([1, 2, 3]));
    // Reading the bitmap cleans page 0 (writable-clean again); pages 1-3 were never written.
    expect(fd.hwpt.getDirtyBitmap(hwpt, { iova: IOVA, length: 4n * PAGE })[0]).toBe(0b0001);
    fd.hwpt.setDirtyTracking(hwpt, false);
    for (let p = 0n; p < 4n; p++) await expect(dev.dma.write(IOVA + p * PAGE, new Uint8Array([9]))).resolves.toBeUndefined();
    expect(dev.translatePage(Number(IOVA / PAGE), 2)).toBeGreaterThanOrEqual(0);
  });

  it('tracking turned on again reports only the writes made since', async () => {
    const { dev, fd, hwpt } = env();
    fd.hwpt.setDirtyTracking(hwpt, true);
    fd.hwpt.setDirtyTracking(hwpt, false);
    await dev.dma.write(IOVA + PAGE, new Uint8Array([1]));
    fd.hwpt.setDirtyTracking(hwpt, true);
    await dev.dma.write(IOVA + 2n * PAGE, new Uint8Array([1]));
    expect(fd.hwpt.getDirtyBitmap(hwpt, { iova: IOVA, length: 4n * PAGE })[0]).toBe(0b0100);
  });
});
