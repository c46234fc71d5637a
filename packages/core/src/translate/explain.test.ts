import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { PERM_READ } from '../driver/pgtable.js';
import { mockFixture } from '../__tests__/mock-host.js';

describe('PciDevice.explain', () => {
  it('a device with no domain is blocked: no walk, no IOTLB, an unrecoverable fault with its log line', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    dev.bindIommufd(f.fd);
    const e = dev.explain(0x1000n);
    expect(e).toMatchObject({ binding: 'blocked', iotlb: 'miss', ok: false, failure: 'blocked', recoverable: false });
    expect(e.stages).toEqual([]);
    expect(e.record).toBeInstanceOf(Uint8Array);
    expect(e.linux?.length).toBeGreaterThan(0);
    // Explaining reports nothing: the host log is unchanged.
    expect(f.host.log.lines).not.toContain(e.linux![0]);
  });

  it('a mapped IOVA gives its physical address and read/write permission', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const va = f.host.process.mmap(4096);
    f.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0x40000n });
    dev.attachPt(ioas);
    const e = dev.explain(0x40123n, { write: true });
    expect(e).toMatchObject({ binding: 'paging', ok: true });
    expect(e.perm! & PERM_READ).toBe(PERM_READ);
    expect(e.pa! & 0xfffn).toBe(0x123n);
    expect(e.stages.map((s) => s.stage)).toEqual(['paging']);
    // The mock format is on the radix engine, whose trace follows the same entries the walk reads.
    const steps = e.stages[0].steps!;
    expect(steps.at(-1)!.kind).toBe('leaf');
    for (let i = 0; i + 1 < steps.length; i++) expect(steps[i]).toMatchObject({ kind: 'table', pfn: steps[i + 1].tablePfn });
    expect(BigInt(steps.at(-1)!.pfn) * 4096n + 0x123n).toBe(e.pa);
    expect(dev.explain(0x7_0000n).stages[0].steps!.at(-1)!.kind).toBe('invalid');
  });

  it('a PRI device with a fault queue would send a page request: recoverable, the request record, no log line', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const fq = f.fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
    const hwpt = f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fq.out_fault_id }).out_hwpt_id;
    dev.attachPt(hwpt);
    const e = dev.explain(0x9000n);
    expect(e).toMatchObject({ ok: false, failure: 'not-present', recoverable: true });
    const codec = dev.unitOps.faults!;
    expect(codec.decodePageRequest(e.record!, dev.unitIndex).addr).toBe(0x9000n);
    expect(e.linux).toBeUndefined();
  });
});
