import 'reflect-metadata';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { PAGE_RESP_SUCCESS, codecPageRequests } from '../driver/fault.js';
import { createHost } from '../host/host.js';
import { mockPlugin } from '../testing/mock-vendor.js';
import { mockProfile } from '../__tests__/mock-host.js';
import { DmaFault } from '../host/device.js';
import { FAULT_TRACE, type FaultTraceEvent } from './stages.js';

function tracedHost() {
  const events: FaultTraceEvent[] = [];
  const parent = container.createChildContainer();
  parent.register(FAULT_TRACE, { useValue: { event: (e: FaultTraceEvent) => events.push(e) } });
  const host = createHost({ plugins: [mockPlugin()], profile: mockProfile(), container: parent });
  return { host, events };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('FAULT_TRACE', () => {
  it('follows a page request from the hardware record to the response the device decodes', async () => {
    const { host, events } = tracedHost();
    const fd = host.openIommufd();
    const dev = host.device('0000:00:01.0');
    const devId = dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    const fq = fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
    const hwpt = fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fq.out_fault_id }).out_hwpt_id;
    dev.attachPt(hwpt);

    const pending = dev.dma.read(0x200000n, 8);
    await settle();
    const codec = dev.unitOps.faults;
    if (!codecPageRequests(codec)) throw new Error('the mock codec has page requests');
    expect(events.map((e) => e.step)).toEqual(['record', 'decoded', 'routed']);
    const [record, decoded, routed] = events;
    if (record.step !== 'record' || decoded.step !== 'decoded' || routed.step !== 'routed') throw new Error('steps');
    expect(record.queue).toBe('page-request');
    // The record is the vendor's own bytes: decoding it gives the fault the pipeline routed.
    expect(codec.decodePageRequest(record.record, record.unit)).toEqual(decoded.fault);
    expect(decoded.fault.addr).toBe(0x200000n);
    expect(routed.sink).toBe('fault-queue');

    const rec = U.iommu_hwpt_pgfault.decode(host.process.read(fq.out_fault_fd, U.iommu_hwpt_pgfault.size));
    const va = host.process.mmap(4096);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0x200000n });
    host.process.write(fq.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: PAGE_RESP_SUCCESS }));
    await pending;
    const response = events[3];
    if (response?.step !== 'response') throw new Error('no response event');
    expect(response).toMatchObject({ code: PAGE_RESP_SUCCESS, deviceCode: PAGE_RESP_SUCCESS, auto: false, stall: false, rid: decoded.fault.rid });
    expect(response.record).not.toBeNull();
    expect(codec.decodePageResponse(response.record!).code).toBe(PAGE_RESP_SUCCESS);
  });

  it('shows an unrecoverable fault going to the kernel log', async () => {
    const { host, events } = tracedHost();
    const fd = host.openIommufd();
    const dev = host.device('0000:00:02.0');
    dev.bindIommufd(fd);
    dev.attachPt(fd.ioas.alloc());
    await expect(dev.dma.write(0x5000n, new Uint8Array(4))).rejects.toBeInstanceOf(DmaFault);
    await settle();
    expect(events.map((e) => (e.step === 'routed' ? `routed:${e.sink}` : e.step))).toEqual(['record', 'decoded', 'routed:log']);
    expect(host.log.lines.length).toBeGreaterThan(0);
  });
});
