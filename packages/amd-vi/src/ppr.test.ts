/**
 * The AMD driver's own answers to page requests it refuses before the iopf queue (ppr.c
 * iommu_call_iopf_notifier): no PASID, PASID 0 or a PASID past the device's get COMPLETE_PPR_REQUEST with
 * FAILURE at once, through the fault pipeline, and never reach the fault queue.
 */
import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { container } from 'tsyringe';
import { createHost, DmaFault, FAULT_TRACE, uapi as U, type FaultTraceEvent } from '@ioasid/core';
import { PAGE_RESP_FAILURE, PAGE_RESP_SUCCESS } from '@ioasid/core/driver';
import { amdPresetById, plugin } from './index.js';
import { decodeCommand } from './commands.js';

const GPU = '0000:0a:00.0';

function rig() {
  const profile = amdPresetById('amd-zen3-cezanne');
  const events: FaultTraceEvent[] = [];
  const parent = container.createChildContainer();
  parent.register(FAULT_TRACE, { useValue: { event: (e: FaultTraceEvent) => events.push(e) } });
  const host = createHost({ plugins: [plugin], profile, container: parent });
  const fd = host.openIommufd();
  const dev = host.device(GPU);
  const devId = dev.bindIommufd(fd);
  const fault = fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
  const ioas = fd.ioas.alloc();
  return { host, fd, dev, devId, fault, ioas, events };
}

/** The COMPLETE_PPR_REQUEST commands the driver sent, decoded. */
function completions(events: readonly FaultTraceEvent[]) {
  return events.flatMap((e) => {
    if (e.step !== 'response' || e.record === null) return [];
    const c = decodeCommand(e.record);
    return c.ok && c.value.op === 'COMPLETE_PPR_REQUEST' ? [c.value] : [];
  });
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('AMD-Vi: page requests the driver refuses itself (ppr.c)', () => {
  it('answers a page request without a PASID FAILURE, without a log line (dev_dbg) and without reaching the fault queue', async () => {
    const { host, fd, dev, devId, fault, ioas, events } = rig();
    const hwpt = fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fault.out_fault_id }).out_hwpt_id;
    dev.attachPt(hwpt);
    const lines = host.log.lines.length;
    const err = await dev.dma.read(0x10_0000n, 4).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DmaFault);
    expect((err as DmaFault).outcome).toBe('page-response');
    await settle();
    expect(host.process.read(fault.out_fault_fd, 64 * U.iommu_hwpt_pgfault.size)).toHaveLength(0);
    expect(events.filter((e) => e.step === 'routed').map((e) => e.step === 'routed' && e.sink)).toEqual(['refused']);
    expect(completions(events)).toEqual([{ op: 'COMPLETE_PPR_REQUEST', devid: dev.info.rid, pasid: 0, gn: false, tag: expect.any(Number), status: PAGE_RESP_FAILURE }]);
    expect(host.log.lines.length).toBe(lines);
    expect(host.outstandingFaults).toBe(0);
  });

  it('answers PASID 0 and a PASID past the device\'s FAILURE with the driver\'s "Invalid PASID" line', async () => {
    const { host, fd, dev, devId, fault, ioas, events } = rig();
    const hwpt = fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID, fault_id: fault.out_fault_id }).out_hwpt_id;
    // The device has 16 PASID bits: 0x10000 is past its PASIDs; PASID 0 stands for "no PASID" on AMD.
    dev.attachPt(hwpt, { pasid: 1 });
    const answers = await Promise.all([dev.requestPages([{ addr: 0x10_0000n, perm: 1 }], { pasid: 0, grpid: 3 }), dev.requestPages([{ addr: 0x10_0000n, perm: 1 }], { pasid: 0x10000, grpid: 4 })]);
    expect(answers).toEqual([PAGE_RESP_FAILURE, PAGE_RESP_FAILURE]);
    await settle();
    const rid = dev.info.rid.toString(16);
    expect(host.log.lines).toEqual(expect.arrayContaining([`AMD-Vi: Invalid PASID : 0x0, device : 0x${rid}`, `AMD-Vi: Invalid PASID : 0x10000, device : 0x${rid}`]));
    expect(completions(events).map((c) => [c.pasid, c.gn, c.tag & 0x1ff, c.status])).toEqual([
      [0, true, 3, PAGE_RESP_FAILURE],
      [0x10000 & 0xfffff, true, 4, PAGE_RESP_FAILURE],
    ]);
    expect(host.process.read(fault.out_fault_fd, 64 * U.iommu_hwpt_pgfault.size)).toHaveLength(0);
  });

  it('lets a valid PASID through to the fault queue, and the handler\'s SUCCESS goes back as COMPLETE_PPR', async () => {
    const { host, fd, dev, devId, fault, ioas, events } = rig();
    const hwpt = fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID, fault_id: fault.out_fault_id }).out_hwpt_id;
    dev.attachPt(hwpt, { pasid: 5 });
    const answer = dev.requestPages([{ addr: 0x10_0000n, perm: 1 }], { pasid: 5, grpid: 7 });
    await settle();
    const rec = U.iommu_hwpt_pgfault.decode(host.process.read(fault.out_fault_fd, U.iommu_hwpt_pgfault.size));
    expect(rec.pasid).toBe(5);
    host.process.write(fault.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }));
    expect(await answer).toBe(PAGE_RESP_SUCCESS);
    expect(completions(events)).toEqual([expect.objectContaining({ pasid: 5, gn: true, status: PAGE_RESP_SUCCESS })]);
  });
});
