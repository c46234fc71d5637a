import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { IOMMU_READ, IOMMU_WRITE, PERM_READ } from '../driver/pgtable.js';
import { rawIoctl } from '../__tests__/helpers.js';
import { IOMMU_HWPT_DATA_MOCK, mockWriteGuestTable } from '../testing/index.js';
import { codecPageRequests } from '../driver/fault.js';
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
    const codec = dev.unitOps.faults;
    if (!codecPageRequests(codec)) throw new Error('the mock codec has page requests');
    expect(codec.decodePageRequest(e.record!, dev.unitIndex).addr).toBe(0x9000n);
    expect(e.linux).toBeUndefined();
  });

  it('a nested domain shows both stages: each stage-1 table page translated by stage 2, then stage 2 of the output', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    // Guest memory at GPA 0, in two mappings so that one page of it can be taken away alone.
    const gmem = f.host.process.mmap(64 * 4096);
    f.fd.ioas.map({ ioasId: ioas, userVa: gmem, length: 4096n, iova: 0n });
    f.fd.ioas.map({ ioasId: ioas, userVa: gmem + 4096n, length: 63n * 4096n, iova: 4096n });
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    dev.attachPt(parent.out_hwpt_id);
    // While the parent is attached, the device's own translation is stage 2: GPA page -> host page.
    const hpa = Array.from({ length: 64 }, (_, gpa) => dev.translatePage(gpa, PERM_READ));
    const gpaToHpa = (gpa: number) => hpa[gpa];
    // Root at GPA 1, then GPA 2 and 3 as the lower levels; IOVA page 0x400 -> GPA page 40.
    let next = 2;
    mockWriteGuestTable(f.host.mem, () => next++, 1, 0x400, 40, IOMMU_READ | IOMMU_WRITE, gpaToHpa);
    const data = f.host.process.mmap(4096);
    // The mock's nested data: the guest root's page number, then mode 0 (translate).
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1n, true);
    f.host.process.poke(data, bytes);
    const [rc, nested] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: parent.out_hwpt_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: data });
    expect(rc).toBe(0);
    dev.attachPt(nested.out_hwpt_id);
    const e = dev.explain(0x400123n);
    expect(e).toMatchObject({ binding: 'nested', ok: true });
    expect(e.stages.map((s) => s.stage)).toEqual(['stage 1', 'stage 2']);
    const s1 = e.stages[0].steps!;
    expect(s1.map((st) => st.tableGpaPfn)).toEqual([1, 2, 3]);
    expect(s1.map((st) => st.kind)).toEqual(['table', 'table', 'leaf']);
    for (const st of s1) {
      // The host page each table was read from is where stage 2's own walk of its GPA ends.
      expect(st.stage2!.at(-1)).toMatchObject({ kind: 'leaf', pfn: st.tablePfn });
      expect(st.tablePfn).toBe(gpaToHpa(st.tableGpaPfn!));
    }
    expect(s1.at(-1)!.pfn).toBe(40);
    expect(e.stages[1].inputPfn).toBe(40);
    expect(BigInt(e.stages[1].steps!.at(-1)!.pfn) * 4096n + 0x123n).toBe(e.pa);
    // Without GPA page 1 in stage 2 the stage-1 walk stops at its root: no host page, stage 2's walk says why.
    f.fd.ioas.unmap(ioas, 4096n, 63n * 4096n);
    f.fd.ioas.unmap(ioas, 0n, 4096n);
    f.fd.ioas.map({ ioasId: ioas, userVa: gmem + 4096n * 2n, length: 62n * 4096n, iova: 2n * 4096n });
    const miss = dev.explain(0x400123n);
    expect(miss).toMatchObject({ ok: false, stage2: true, failure: 'table-fault' });
    expect(miss.stages.map((s) => s.stage)).toEqual(['stage 1']);
    const stop = miss.stages[0].steps!;
    expect(stop).toHaveLength(1);
    expect(stop[0]).toMatchObject({ tableGpaPfn: 1, tablePfn: -1, kind: 'invalid', entry: 0n });
    expect(stop[0].stage2!.at(-1)!.kind).toBe('invalid');
  });
});
