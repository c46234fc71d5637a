/**
 * DMA isolation as a property on the mock vendor: random sequences of map / unmap / copy / attach / replace /
 * detach / invalidate on three devices of the mock host (two units) and two IOAS, every attach kind including a
 * nested HWPT that bypasses stage 1, checked after every step by `IsolationWorld` against its reference model.
 * The same world runs on the real VT-d and SMMUv3 formats in their packages.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as U from '../uapi/iommufd.js';
import { PERM_READ } from '../driver/pgtable.js';
import { IOMMU_HWPT_DATA_MOCK, IOMMU_HWPT_INVALIDATE_DATA_MOCK, MOCK_HWPT_DATA_SIZE, mockPlugin } from '../testing/mock-vendor.js';
import { ISOLATION_OP_WORDS, IsolationWorld, WINDOW_START, isolationOp, type IsolationOptions } from '../testing/isolation.js';
import { mockProfile } from './mock-host.js';

const DEVICES = ['0000:00:02.0', '0000:80:00.0', '0000:00:01.0'];

function options(): IsolationOptions {
  const data = new Uint8Array(MOCK_HWPT_DATA_SIZE);
  new DataView(data.buffer).setUint32(8, 1, true); // mode 1: bypass stage 1
  return {
    plugins: [mockPlugin()],
    profile: mockProfile(),
    devices: DEVICES,
    nested: {
      dataType: IOMMU_HWPT_DATA_MOCK,
      data,
      invalidate: {
        dataType: IOMMU_HWPT_INVALIDATE_DATA_MOCK,
        entryLen: 16,
        entry(all, iova, npages) {
          const e = new Uint8Array(16);
          const dv = new DataView(e.buffer);
          dv.setBigUint64(0, all ? 0n : iova, true);
          dv.setBigUint64(8, all ? U.U64_MAX : BigInt(npages), true);
          return e;
        },
      },
    },
  };
}

const steps = fc.array(fc.array(fc.nat(1000), { minLength: ISOLATION_OP_WORDS, maxLength: ISOLATION_OP_WORDS }), { minLength: 1, maxLength: 30, size: 'max' });

describe('DMA isolation (property)', () => {
  it('every device reaches exactly what its IOAS maps, after every step', async () => {
    await fc.assert(
      fc.asyncProperty(steps, fc.array(fc.nat(200), { minLength: 2, maxLength: 2 }), async (words, pick) => {
        const w = new IsolationWorld(options());
        await w.run(words.map((x) => isolationOp(x)), pick);
        // Nothing the devices did left a page request waiting.
        expect(w.host.faults.outstanding).toBe(0);
      }),
      { numRuns: 50 },
    );
  });

  it('keeps an unmap that returned free of stale IOTLB entries on every unit and domain kind', async () => {
    const w = new IsolationWorld(options());
    // Every device on IOAS 0 through a different kind of domain, all caching the same pages.
    w.apply({ op: 'map', ioas: 0, start: 0, n: 4, read: true, write: true });
    w.apply({ op: 'attach', dev: 0, target: 0 });
    w.apply({ op: 'attach', dev: 1, target: 2 });
    w.apply({ op: 'attach', dev: 2, target: 4 });
    for (const d of w.devs) for (let p = 0; p < 4; p++) expect(d.translatePage(WINDOW_START + p, PERM_READ)).toBeGreaterThan(0);
    w.apply({ op: 'unmap', ioas: 0, start: 0, n: 4 });
    w.checkTranslations();
    await w.checkDma([0, 1, 2, 3]);
  });

  it('reports a stale translation: the reference and the host disagree after a map the reference did not see', () => {
    const w = new IsolationWorld(options());
    w.apply({ op: 'attach', dev: 0, target: 0 });
    const va = w.host.process.mmap(4096);
    w.fd.ioas.map({ ioasId: w.ioas[0], userVa: va, length: 4096n, iova: BigInt(WINDOW_START) * 4096n, readable: true, writeable: true });
    expect(() => w.checkTranslations()).toThrow(/isolation: 0000:00:02.0 iova page 0x1e8 read/);
  });
});
