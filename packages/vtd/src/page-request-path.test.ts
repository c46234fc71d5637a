/**
 * The VT-d page request path end to end on a Granite Rapids unit: core writes each page request descriptor
 * into a slot of the page request queue and each page group response into one reused buffer (the codec's
 * in-place members), so what a trace keeps must be copies, and every request must still get its own response.
 * Without a trace or stages, requests are decoded into the numbers of pooled groups (PageRequestFieldsCodec):
 * the records read are those of the general path, and no reused group is ever seen.
 */
import 'reflect-metadata';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { DmaFault, FAULT_STAGE, FAULT_TRACE, createHost, uapi, type FaultTraceEvent } from '@ioasid/core';
import { PAGE_RESP_SUCCESS, PluginContractError, codecPageRequestsInPlace, type IommuFault } from '@ioasid/core/driver';
import { deviceUnit, devicePri, faultPipeline, iommufdDevice } from '@ioasid/core/internal';
import { plugin } from './index.js';
import { findVtdPreset, vtdPresetProfile } from './presets.js';

const PRI_DEVICE = '0000:f2:01.0';
const PAGE = 4096n;
const REC = uapi.iommu_hwpt_pgfault.size;

/** The PRI device on a fault-capable HWPT, with a trace that keeps every event. */
function rig() {
  return plainRig({ trace: true, stage: false });
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

/** A host with the PRI device on a fault-capable HWPT, with a trace and a stage that keep what they see when asked. */
function plainRig(watch: { trace: boolean; stage: boolean }) {
  const parent = container.createChildContainer();
  const events: FaultTraceEvent[] = [];
  const seen: IommuFault[] = [];
  if (watch.trace) parent.register(FAULT_TRACE, { useValue: { event: (e: FaultTraceEvent) => events.push(e) } });
  if (watch.stage) parent.register(FAULT_STAGE, { useValue: { name: 'keep', process: (f: IommuFault) => seen.push(f) > 0 } });
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
  return { host, fd, dev, devId, ioas, hwpt, faultId: fq.out_fault_id, faultFd: fq.out_fault_fd, va, events, seen };
}

type PlainRig = ReturnType<typeof plainRig>;

/** The rig's device as the fault pipeline sees it, for sending page requests straight into the pipeline. */
function pipelineDevice(r: PlainRig) {
  return { bdf: r.dev.bdf, unitIndex: deviceUnit(r.dev).index, info: r.dev.info, idev: iommufdDevice(r.dev) };
}

/** Reads every queued record; answers them in `order` (indexes into the records read), mapping the page first on SUCCESS. */
function serve(r: PlainRig, n: number, order: readonly number[], code = PAGE_RESP_SUCCESS): Uint8Array {
  const bytes = r.host.process.read(r.faultFd, n * REC);
  expect(bytes.length).toBe(n * REC);
  for (const i of order) {
    const rec = uapi.iommu_hwpt_pgfault.decode(bytes, i * REC);
    if (code === PAGE_RESP_SUCCESS) r.fd.ioas.map({ ioasId: r.ioas, userVa: r.va, length: 4096n, iova: rec.addr });
    expect(r.host.process.write(r.faultFd, uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code }))).toBe(8);
  }
  return bytes;
}

describe('VT-d page requests in numbers (no trace, no stages: pooled groups)', () => {
  // IOVAs of each round: below and above 4 GiB, and near the top of the 57-bit input range.
  const iovas = (round: number) => [0x1000_0000n, 0x3_4567_8000n, (1n << 56n) + 0x1000n, 0x7f_ffff_f000n].map((a) => a + BigInt(round) * 0x10_0000n);

  it('reads exactly the records the general path (with a trace and a stage) reads, and every DMA completes', async () => {
    const plain = plainRig({ trace: false, stage: false });
    const watched = plainRig({ trace: true, stage: true });
    for (let round = 0; round < 6; round++) {
      const got: Uint8Array[] = [];
      for (const r of [plain, watched]) {
        const list = iovas(round);
        // Reads and writes: the perm bits differ in the record.
        const dmas = list.map((a, i) => (i % 2 === 0 ? r.dev.dma.read(a, 8) : r.dev.dma.write(a + 8n, new Uint8Array([round, 1, 2, 3]))));
        await settle();
        // Answered out of order: the last record first.
        got.push(serve(r, list.length, [3, 1, 0, 2]));
        await Promise.all(dmas);
      }
      expect([...got[0]], `round ${round}`).toEqual([...got[1]]);
    }
    for (const r of [plain, watched]) {
      expect(r.host.faultStats.responses).toBe(24);
      expect(r.host.outstandingFaults).toBe(0);
    }
  });

  it('never shows a pooled group after its reuse: what stages kept stays as it was, answers reach their own DMAs', async () => {
    const plain = plainRig({ trace: false, stage: false });
    const watched = plainRig({ trace: true, stage: true });
    for (const r of [plain, watched]) {
      // Rounds of 8 concurrent faults, half answered INVALID: each DMA gets its own answer while the
      // groups answered before are reused for the next ones.
      for (let round = 0; round < 20; round++) {
        const base = 0x4000_0000n + BigInt(round) * 0x10_0000n;
        const dmas = Array.from({ length: 8 }, (_, i) => r.dev.dma.read(base + BigInt(i) * PAGE, 8).then(
          (b) => ({ ok: true, b }),
          (e: unknown) => ({ ok: false, e }),
        ));
        await settle();
        const bytes = r.host.process.read(r.faultFd, 8 * REC);
        const recs = Array.from({ length: 8 }, (_, i) => uapi.iommu_hwpt_pgfault.decode(bytes, i * REC));
        // Answer in reverse; even pages SUCCESS (mapped), odd ones INVALID.
        for (const rec of [...recs].reverse()) {
          const page = Number((rec.addr - base) / PAGE);
          const ok = page % 2 === 0;
          if (ok) r.fd.ioas.map({ ioasId: r.ioas, userVa: r.va, length: 4096n, iova: rec.addr });
          r.host.process.write(r.faultFd, uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: ok ? PAGE_RESP_SUCCESS : uapi.IOMMUFD_PAGE_RESP_INVALID }));
        }
        const results = await Promise.all(dmas);
        results.forEach((res, i) => {
          expect(res.ok, `round ${round} page ${i}`).toBe(i % 2 === 0);
          if (res.ok) expect([...(res as { b: Uint8Array }).b]).toEqual(new Array(8).fill(0x5a));
          else expect(((res as { e: DmaFault }).e.fault.addr)).toBe(base + BigInt(i) * PAGE);
        });
      }
      expect(r.host.outstandingFaults).toBe(0);
      expect(r.host.faultStats.duplicateResponses).toBe(0);
    }
    // The stage kept every fault it was shown; none changed when later groups came.
    expect(watched.seen.length).toBe(160);
    watched.seen.forEach((f, i) => expect(f.addr).toBe(0x4000_0000n + BigInt(Math.floor(i / 8)) * 0x10_0000n + BigInt(i % 8) * PAGE));
  });

  it('answers queued and read groups INVALID once when the device detaches, then serves new faults from the pool', async () => {
    const r = plainRig({ trace: false, stage: false });
    const first = Array.from({ length: 4 }, (_, i) => r.dev.dma.read(0x5000_0000n + BigInt(i) * PAGE, 8).catch((e: unknown) => e));
    await settle();
    // Two read (awaiting a response), two still queued.
    expect(r.host.process.read(r.faultFd, 2 * REC).length).toBe(2 * REC);
    r.dev.detachPt();
    for (const e of await Promise.all(first)) expect(e).toBeInstanceOf(DmaFault);
    expect(r.host.faultStats.autoResponses).toBe(4);
    expect(r.host.outstandingFaults).toBe(0);
    r.dev.attachPt(r.hwpt);
    for (let i = 0; i < 3; i++) {
      const dma = r.dev.dma.read(0x6000_0000 + i * 4096, 8);
      await settle();
      serve(r, 1, [0]);
      expect([...(await dma)]).toEqual(new Array(8).fill(0x5a));
    }
    expect(r.host.faultStats.duplicateResponses).toBe(0);
    expect(r.host.outstandingFaults).toBe(0);
  });
});

describe('VT-d page requests in numbers: routing by (device, PASID) follows every attach change', () => {
  /** A fault-capable HWPT on the rig's IOAS that reports to the FAULT object `faultId`. */
  function hwptOn(r: PlainRig, faultId: number, flags = 0): number {
    return r.fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: r.devId, pt_id: r.ioas, flags: uapi.IOMMU_HWPT_FAULT_ID_VALID | flags, fault_id: faultId }).out_hwpt_id;
  }

  /** One faulting read at `iova` (PASID `pasid` when given): the fd whose queue got it, or null when none did. */
  async function faultOnce(r: PlainRig, fds: readonly number[], iova: number, pasid?: number): Promise<number | null> {
    const dma = r.dev.dma.read(iova, 8, pasid === undefined ? {} : { pasid }).then(
      (b) => b,
      (e: unknown) => e,
    );
    await settle();
    let got: number | null = null;
    for (const f of fds) {
      const bytes = r.host.process.read(f, REC);
      if (bytes.length === 0) continue;
      expect(got, 'one queue only').toBeNull();
      got = f;
      const rec = uapi.iommu_hwpt_pgfault.decode(bytes, 0);
      expect(rec.addr).toBe(BigInt(iova));
      r.fd.ioas.map({ ioasId: r.ioas, userVa: r.va, length: 4096n, iova: rec.addr });
      expect(r.host.process.write(f, uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: PAGE_RESP_SUCCESS }))).toBe(8);
    }
    const res = await dma;
    if (got === null) expect(res).toBeInstanceOf(DmaFault);
    else expect([...(res as Uint8Array)]).toEqual(new Array(8).fill(0x5a));
    return got;
  }

  it('replace, detach, attach again and a PASID attach each send the next request to the queue of the HWPT attached then', async () => {
    const r = plainRig({ trace: false, stage: false });
    const fq = r.fd.run(uapi.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
    const b = { faultFd: fq.out_fault_fd, hwpt: hwptOn(r, fq.out_fault_id), pasidHwpt: hwptOn(r, fq.out_fault_id, uapi.IOMMU_HWPT_ALLOC_PASID) };
    const fds = [r.faultFd, b.faultFd];
    let iova = 0x7000_0000;
    const next = () => (iova += 4096);
    expect(await faultOnce(r, fds, next())).toBe(r.faultFd);
    expect(await faultOnce(r, fds, next())).toBe(r.faultFd);
    r.dev.attachPt(b.hwpt);
    expect(await faultOnce(r, fds, next())).toBe(b.faultFd);
    r.dev.detachPt();
    r.dev.attachPt(r.ioas);
    // A paging domain without a fault queue: the driver answers INVALID, the DMA fails.
    expect(await faultOnce(r, fds, next())).toBeNull();
    r.dev.attachPt(r.hwpt);
    expect(await faultOnce(r, fds, next())).toBe(r.faultFd);
    // A PASID attached to the other queue's HWPT (the RID's HWPT PASID compatible too): requests with that
    // PASID go there, the RID's stay.
    r.dev.attachPt(hwptOn(r, r.faultId, uapi.IOMMU_HWPT_ALLOC_PASID));
    expect(await faultOnce(r, fds, next())).toBe(r.faultFd);
    r.dev.attachPt(b.pasidHwpt, { pasid: 5 });
    expect(await faultOnce(r, fds, next(), 5)).toBe(b.faultFd);
    expect(await faultOnce(r, fds, next())).toBe(r.faultFd);
    expect(await faultOnce(r, fds, next(), 5)).toBe(b.faultFd);
    r.dev.detachPt({ pasid: 5 });
    expect(await faultOnce(r, fds, next(), 5)).toBeNull();
    expect(await faultOnce(r, fds, next())).toBe(r.faultFd);
    // Unbound and bound again: a new device object, found afresh.
    r.dev.unbind();
    r.dev.bindIommufd(r.fd);
    expect(await faultOnce(r, fds, next())).toBeNull();
    expect(r.host.outstandingFaults).toBe(0);
    expect(r.host.faultStats.duplicateResponses).toBe(0);
  });
});

describe('VT-d page requests in numbers: groups of several requests', () => {
  it('a group\'s requests reach read(2) together under one cookie, LAST on the last, beside single faults before and after it', async () => {
    const r = plainRig({ trace: false, stage: false });
    for (let round = 0; round < 3; round++) {
      const base = 0x8000_0000 + round * 0x10_0000;
      const before = r.dev.dma.read(base, 8);
      const group = r.dev.requestPages([0, 1, 2].map((i) => ({ addr: BigInt(base + (i + 1) * 4096), perm: 1 })));
      const after = r.dev.dma.read(base + 0x8000, 8);
      await settle();
      const bytes = r.host.process.read(r.faultFd, 8 * REC);
      const recs = Array.from({ length: bytes.length / REC }, (_, i) => uapi.iommu_hwpt_pgfault.decode(bytes, i * REC));
      expect(recs.map((x) => Number(x.addr) - base), `round ${round}`).toEqual([0, 0x1000, 0x2000, 0x3000, 0x8000]);
      const last = recs.map((x) => (x.flags & uapi.IOMMU_PGFAULT_FLAGS_LAST_PAGE) !== 0);
      expect(last).toEqual([true, false, false, true, true]);
      expect(new Set(recs.slice(1, 4).map((x) => x.cookie)).size).toBe(1);
      expect(new Set([recs[0].cookie, recs[1].cookie, recs[4].cookie]).size).toBe(3);
      for (const i of [0, 3, 4]) {
        r.fd.ioas.map({ ioasId: r.ioas, userVa: r.va, length: 4096n, iova: recs[i].addr });
        expect(r.host.process.write(r.faultFd, uapi.iommu_hwpt_page_response.encode({ cookie: recs[i].cookie, code: PAGE_RESP_SUCCESS }))).toBe(8);
      }
      expect([...(await before)]).toEqual(new Array(8).fill(0x5a));
      expect(await group).toBe(PAGE_RESP_SUCCESS);
      expect([...(await after)]).toEqual(new Array(8).fill(0x5a));
    }
    expect(r.host.outstandingFaults).toBe(0);
    expect(r.host.faultStats.duplicateResponses).toBe(0);
  });
});

describe('VT-d page requests in numbers: a request the pipeline refuses leaves no waiter behind', () => {
  it('a group already outstanding is a RangeError, a PASID or index the descriptor cannot carry a contract error; the outstanding group is answered once', async () => {
    const r = plainRig({ trace: false, stage: false });
    const got: Array<[number, number]> = [];
    const sink = (id: number) => ({ pageResponse: (code: number) => void got.push([id, code]) });
    const req = { rid: r.dev.info.rid, pasid: -1, addrLo: 0x4000_0000, addrHi: 0, perm: 1, grpid: 7, last: true as const, reason: 0, reasonText: '', stage2: false };
    const faults = faultPipeline(r.host);
    const pdev = pipelineDevice(r);
    expect(faults.sendPageRequestFields(pdev, req, sink(1))).toBe(true);
    expect(r.host.outstandingFaults).toBe(1);
    // The same (RID, PASID, index) again: refused before anything is encoded or queued.
    expect(() => faults.sendPageRequestFields(pdev, { ...req, addrLo: 0x4000_1000 }, sink(2))).toThrow(RangeError);
    // Registered, then refused by the codec: the waiter goes again (a slot index, and one past the slots).
    expect(() => faults.sendPageRequestFields(pdev, { ...req, grpid: 8, pasid: 1 << 20 }, sink(3))).toThrow(PluginContractError);
    expect(() => faults.sendPageRequestFields(pdev, { ...req, grpid: 512 }, sink(4))).toThrow(PluginContractError);
    expect(r.host.outstandingFaults).toBe(1);
    expect(r.host.faultStats.pageRequests).toBe(4);
    // Index 8 is free: a request under it goes through.
    expect(faults.sendPageRequestFields(pdev, { ...req, grpid: 8, addrLo: 0x4000_2000 }, sink(5))).toBe(true);
    await settle();
    const bytes = r.host.process.read(r.faultFd, 4 * REC);
    expect(bytes.length).toBe(2 * REC);
    const recs = [0, 1].map((i) => uapi.iommu_hwpt_pgfault.decode(bytes, i * REC));
    expect(recs.map((x) => [x.grpid, Number(x.addr)])).toEqual([
      [7, 0x4000_0000],
      [8, 0x4000_2000],
    ]);
    for (const x of recs) expect(r.host.process.write(r.faultFd, uapi.iommu_hwpt_page_response.encode({ cookie: x.cookie, code: uapi.IOMMUFD_PAGE_RESP_INVALID }))).toBe(8);
    // Told from a microtask, not from inside write().
    expect(got).toEqual([]);
    await settle();
    expect(got).toEqual([
      [1, 1],
      [5, 1],
    ]);
    expect(r.host.outstandingFaults).toBe(0);
  });
});

describe('VT-d page responses reach their devices from a microtask', () => {
  it('the responses of one write() in order in one hop, and those a sink causes in the next hop', async () => {
    for (const together of [true, false]) {
      const r = plainRig({ trace: false, stage: false });
      const order: string[] = [];
      const cookies = new Map<number, number>();
      const pdev = pipelineDevice(r);
      const answer = (grpid: number) => r.host.process.write(r.faultFd, uapi.iommu_hwpt_page_response.encode({ cookie: cookies.get(grpid)!, code: uapi.IOMMUFD_PAGE_RESP_INVALID }));
      const sink = (name: string, then?: () => void) => ({
        pageResponse: () => {
          order.push(name);
          then?.();
        },
      });
      const req = { rid: r.dev.info.rid, pasid: -1, addrLo: 0x4000_0000, addrHi: 0, perm: 1, grpid: 1, last: true as const, reason: 0, reasonText: '', stage2: false };
      // A's device answers C itself when it hears its response (as a tool in a sink might).
      faultPipeline(r.host).sendPageRequestFields(pdev, req, sink('A', () => answer(3)));
      faultPipeline(r.host).sendPageRequestFields(pdev, { ...req, grpid: 2, addrLo: 0x4000_1000 }, sink('B'));
      faultPipeline(r.host).sendPageRequestFields(pdev, { ...req, grpid: 3, addrLo: 0x4000_2000 }, sink('C'));
      await settle();
      const bytes = r.host.process.read(r.faultFd, 3 * REC);
      for (let i = 0; i < 3; i++) {
        const rec = uapi.iommu_hwpt_pgfault.decode(bytes, i * REC);
        cookies.set(rec.grpid, rec.cookie);
      }
      if (together) {
        const both = new Uint8Array(16);
        both.set(uapi.iommu_hwpt_page_response.encode({ cookie: cookies.get(1)!, code: uapi.IOMMUFD_PAGE_RESP_INVALID }), 0);
        both.set(uapi.iommu_hwpt_page_response.encode({ cookie: cookies.get(2)!, code: uapi.IOMMUFD_PAGE_RESP_INVALID }), 8);
        expect(r.host.process.write(r.faultFd, both)).toBe(16);
      } else expect(answer(1)).toBe(8);
      expect(order).toEqual([]);
      await Promise.resolve();
      expect(order, `together ${together}`).toEqual(together ? ['A', 'B'] : ['A']);
      await Promise.resolve();
      expect(order, `together ${together}`).toEqual(together ? ['A', 'B', 'C'] : ['A', 'C']);
      if (!together) {
        expect(answer(2)).toBe(8);
        await settle();
        expect(order).toEqual(['A', 'C', 'B']);
      }
      expect(r.host.outstandingFaults).toBe(0);
    }
  });
});

describe('VT-d page requests in numbers at addresses with bit 31 or bit 63 set', () => {
  // Bit 31 of the low word (dma-iommu's 32-bit IOVAs: the top of 4 GiB down), above 4 GiB with bit 31 set, and
  // bit 63 (past the unit's input range: the request still carries it, and the answer is INVALID).
  const inRange = [0x8000_0000n, 0xffff_f000n, 0x1_8000_0000n, 0xff_ffff_f000n, (1n << 56n) + 0x8000_0000n];
  const bit63 = [0x8000_0000_8000_0000n, 0xffff_ffff_ffff_f000n];

  it('records read by words, by bytes and by read(2), and the responses written by words and by bytes, carry the exact address', async () => {
    const r = plainRig({ trace: false, stage: false });
    const all = [...inRange, ...bit63];
    for (const [round, how] of (['words', 'bytes', 'read'] as const).entries()) {
      // Each address as a bigint, and below 2^53 also as a number (the DMA API takes both).
      const dmas = all.map((a, i) => r.dev.dma.read(i % 2 === 0 && a < 2n ** 53n ? Number(a) : a, 8).then(() => 'done', (e: unknown) => (e instanceof DmaFault ? e.fault.addr : e)));
      await settle();
      const size = all.length * REC;
      let bytes: Uint8Array;
      if (how === 'read') bytes = r.host.process.read(r.faultFd, size);
      else {
        // An aligned buffer is written by words, one at an odd offset byte by byte.
        const under = new Uint8Array(size + 1);
        bytes = how === 'words' ? under.subarray(0, size) : under.subarray(1);
        expect(r.host.process.readInto(r.faultFd, bytes)).toBe(size);
      }
      const recs = all.map((_, i) => uapi.iommu_hwpt_pgfault.decode(bytes, i * REC));
      expect(recs.map((x) => x.addr), `round ${round} (${how})`).toEqual(all);
      const under = new Uint8Array(all.length * 8 + 1);
      const responses = how === 'bytes' ? under.subarray(1) : under.subarray(0, all.length * 8);
      recs.forEach((rec, i) => {
        const ok = i < inRange.length;
        if (ok) r.fd.ioas.map({ ioasId: r.ioas, userVa: r.va, length: 4096n, iova: rec.addr });
        responses.set(uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: ok ? PAGE_RESP_SUCCESS : 1 }), i * 8);
      });
      expect(r.host.process.write(r.faultFd, responses)).toBe(responses.length);
      // The pages answered SUCCESS were mapped: the DMAs complete; the others fail at their own address.
      expect(await Promise.all(dmas), `round ${round} (${how})`).toEqual([...inRange.map(() => 'done'), ...bit63]);
      r.fd.ioas.unmapAll(r.ioas);
    }
    expect(r.host.outstandingFaults).toBe(0);
  });

  it('a cookie or a code from 2^31 up is EINVAL at once, written by words or by bytes, and leaves the group to its real answer', async () => {
    const r = plainRig({ trace: false, stage: false });
    const dma = r.dev.dma.read(0x1_8000_0000n, 8);
    await settle();
    const rec = uapi.iommu_hwpt_pgfault.decode(r.host.process.read(r.faultFd, REC), 0);
    const under = new Uint8Array(9);
    for (const buf of [under.subarray(0, 8), under.subarray(1)]) {
      for (const [cookie, code, what] of [[0x8000_0000 + rec.cookie, PAGE_RESP_SUCCESS, /unknown cookie 2147483649/], [0xffff_ffff, PAGE_RESP_SUCCESS, /unknown cookie 4294967295/], [rec.cookie, 0x8000_0000, /unknown response code/]] as const) {
        buf.set(uapi.iommu_hwpt_page_response.encode({ cookie, code }));
        expect(() => r.host.process.write(r.faultFd, buf)).toThrow(what);
      }
    }
    r.fd.ioas.map({ ioasId: r.ioas, userVa: r.va, length: 4096n, iova: rec.addr });
    expect(r.host.process.write(r.faultFd, uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: PAGE_RESP_SUCCESS }))).toBe(8);
    expect([...(await dma)]).toEqual(new Array(8).fill(0x5a));
  });
});
