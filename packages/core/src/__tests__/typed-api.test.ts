import { describe, expect, it } from 'vitest';
import { IommufdError } from '../uapi/errno.js';
import { mapPattern, mockFixture } from './mock-host.js';
import { IOMMU_HW_INFO_TYPE_MOCK } from '../testing/index.js';

describe('typed API over the device-side handlers', () => {
  it('runs a PRI round trip with the idiomatic fault reader', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const fq = f.fd.fault.alloc();
    const hwpt = f.fd.hwpt.alloc({ devId, ptId: ioas, faultId: fq.id });
    dev.attachPt(hwpt);
    const reader = f.fd.fault.reader(fq.fd);
    const dma = dev.dma.read(0x300000n, 8);
    const ac = new AbortController();
    for await (const g of reader.groups(ac.signal)) {
      expect(g.devId).toBe(devId);
      expect(g.faults[0].addr).toBe(0x300000n);
      mapPattern(f, ioas, 0x300000n, 1, 0x11);
      reader.respond(g, 'success');
      break;
    }
    expect([...(await dma)]).toEqual(new Array(8).fill(0x11));
    expect(f.fd.getHwInfo(devId).type).toBe(IOMMU_HW_INFO_TYPE_MOCK);
    expect(() => f.fd.destroy(fq.id)).toThrow(IommufdError);
  });

  it('aborts a waiting reader with its AbortSignal', async () => {
    const f = mockFixture();
    const fq = f.fd.fault.alloc();
    const ac = new AbortController();
    const it = f.fd.fault.reader(fq.fd).groups(ac.signal);
    const next = it.next();
    ac.abort(new Error('stop'));
    await expect(next).rejects.toThrow('stop');
  });
});

describe('vEVENTQ reader', () => {
  it('yields guest faults as vEVENTs with the virtual id and stops on abort', async () => {
    const { IOMMU_HWPT_DATA_MOCK, IOMMU_VIOMMU_TYPE_MOCK, IOMMU_VEVENTQ_TYPE_MOCK } = await import('../testing/index.js');
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const parent = f.fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const viommuId = f.fd.viommu.alloc({ devId, type: IOMMU_VIOMMU_TYPE_MOCK, hwptId: parent });
    f.fd.vdevice.alloc({ viommuId, devId, virtId: 0x42n });
    const q = f.fd.veventq.alloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_MOCK, depth: 8 });
    const nested = f.fd.hwpt.alloc({ devId, ptId: viommuId, data: { type: IOMMU_HWPT_DATA_MOCK, bytes: new Uint8Array(16) } });
    dev.attachPt(nested);
    const reader = f.fd.veventq.reader(q.fd);
    const ac = new AbortController();
    const it = reader.events(ac.signal);
    const first = it.next();
    await dev.dma.read(0x5000n, 4).catch(() => undefined);
    const { value } = await first;
    expect(value?.lost).toBe(false);
    expect(value?.sequence).toBe(0);
    expect(new DataView(value!.data.buffer, value!.data.byteOffset).getBigUint64(0, true)).toBe(0x42n);
    const next = it.next();
    ac.abort(new Error('done'));
    await expect(next).rejects.toThrow('done');
    expect(() => f.fd.veventq.reader(f.fd.fd).readAvailable()).toThrow(IommufdError);
  });
});
