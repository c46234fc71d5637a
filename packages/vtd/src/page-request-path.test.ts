/**
 * The VT-d page request path end to end on a Granite Rapids unit: core writes each page request descriptor
 * into a slot of the page request queue and each page group response into one reused buffer (the codec's
 * in-place members), so what a trace keeps must be copies, and every request must still get its own response.
 */
import 'reflect-metadata';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { FAULT_TRACE, createHost, uapi, type FaultTraceEvent } from '@ioasid/core';
import { PAGE_RESP_SUCCESS, codecPageRequestsInPlace } from '@ioasid/core/driver';
import { devicePri } from '@ioasid/core/internal';
import { plugin } from './index.js';
import { findVtdPreset, vtdPresetProfile } from './presets.js';

const PRI_DEVICE = '0000:f2:01.0';
const PAGE = 4096n;
const REC = uapi.iommu_hwpt_pgfault.size;

function rig() {
  const events: FaultTraceEvent[] = [];
  const parent = container.createChildContainer();
  parent.register(FAULT_TRACE, { useValue: { event: (e: FaultTraceEvent) => events.push(e) } });
  const host = createHost({ plugins: [plugin], profile: vtdPresetProfile(findVtdPreset('granite-rapids-2s')!), container: parent });
  const fd = host.openIommufd();
  const dev = host.device(PRI_DEVICE);
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const fq = fd.run(uapi.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
  const hwpt = fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: uapi.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fq.out_fault_id }).out_hwpt_id;
  dev.attachPt(hwpt);
  const va = host.process.mmap(4096);
  host.process.poke(va, new Uint8Array(4096).fill(0x5a));
  return { host, fd, dev, ioas, faultFd: fq.out_fault_fd, va, events };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('VT-d page requests through the queue slots', () => {
  it('answers every request once over more rounds than the queue has slots, and the trace keeps each record as it was written', async () => {
    const { host, fd, dev, ioas, faultFd, va, events } = rig();
    const codec = dev.unitOps.faults;
    if (!codecPageRequestsInPlace(codec)) throw new Error('the VT-d codec writes page requests in place');
    // Enough rounds to go round the 2048-slot page request queue: later rounds rewrite the first rounds' slots.
    const n = Math.min(128, devicePri(dev).allocation);
    const rounds = Math.ceil(2100 / n);
    const baseOf = (round: number) => 0x40000000n + BigInt(round) * 0x1000000n;
    for (let round = 0; round < rounds; round++) {
      const base = baseOf(round);
      const dmas = Array.from({ length: n }, (_, i) => dev.dma.read(base + BigInt(i) * PAGE, 8));
      await settle();
      const bytes = host.process.read(faultFd, n * REC);
      expect(bytes.length).toBe(n * REC);
      // All the responses in one write(): each group is answered once, and each DMA completes.
      const responses = new Uint8Array(n * uapi.iommu_hwpt_page_response.size);
      for (let i = 0; i < n; i++) {
        const rec = uapi.iommu_hwpt_pgfault.decode(bytes, i * REC);
        expect(rec.addr).toBe(base + BigInt(i) * PAGE);
        fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: rec.addr });
        responses.set(uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: PAGE_RESP_SUCCESS }), i * uapi.iommu_hwpt_page_response.size);
      }
      expect(host.process.write(faultFd, responses)).toBe(responses.length);
      for (const d of dmas) expect([...(await d)]).toEqual(new Array(8).fill(0x5a));
    }
    expect(host.faultStats.pageRequests).toBe(rounds * n);
    expect(host.faultStats.responses).toBe(rounds * n);
    expect(host.outstandingFaults).toBe(0);
    // The trace's records are copies: each still decodes to the request it was written for.
    const records = events.filter((e) => e.step === 'record');
    expect(records.length).toBe(rounds * n);
    records.forEach((e, i) => {
      if (e.step !== 'record') return;
      const f = codec.decodePageRequest(e.record, e.unit);
      expect(f.addr).toBe(baseOf(Math.floor(i / n)) + BigInt(i % n) * PAGE);
    });
    const answers = events.filter((e) => e.step === 'response');
    expect(answers.length).toBe(rounds * n);
    const grpids = answers.map((e) => (e.step === 'response' ? codec.decodePageResponse(e.record!).grpid : -1));
    expect(grpids).toEqual(answers.map((e) => (e.step === 'response' ? e.grpid : -2)));
    expect(new Set(grpids.slice(0, n)).size).toBe(n);
  });
});
