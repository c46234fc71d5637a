/**
 * The fault-routing pipeline end to end on the mock vendor: PRI page requests delivered through the
 * fault fd and answered, whole groups only, the fault fd's errno rules, automatic INVALID responses
 * when an attachment goes away, hardware queue overflow, and the stall model. The fault storm property
 * (every page request answered exactly once, judged from the vendor codec's records) runs on the mock vendor
 * and on real VT-d and SMMUv3 units in @ioasid/fuzz (fault-storm.property.test.ts).
 */
import { describe, expect, it, vi } from 'vitest';
import * as U from '../uapi/iommufd.js';

import { PERM_READ, PERM_WRITE } from '../driver/pgtable.js';
import { errCode } from '../testing/err-code.js';
import { PAGE_RESP_FAILURE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, type FailedAccess } from '../driver/fault.js';
import { POLLIN, POLLOUT, POLLRDNORM } from '../memory/process.js';
import { createHost, type Host } from '../host/host.js';
import { DmaFault, type PciDevice } from '../host/device.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import { MOCK_RESUME_ABORT, MOCK_RESUME_OP, MOCK_RESUME_RETRY, mockPlugin } from '../testing/mock-vendor.js';
import { mockProfile } from '../__tests__/mock-host.js';
import type { FaultQueue } from '../iommufd/eventq.js';

const PAGE = 4096n;
const REC = U.iommu_hwpt_pgfault.size;
const PRI_A = '0000:00:01.0';
const PRI_B = '0000:00:05.0';

type Pgfault = ReturnType<typeof U.iommu_hwpt_pgfault.decode>;

interface Fault {
  id: number;
  fd: number;
}

interface Env {
  host: Host;
  fd: Iommufd;
  ioas: number;
  devs: PciDevice[];
  devIds: number[];
  fault: Fault;
  /** A fault-capable HWPT on `ioas` using `fault`. */
  hwpt: number;
}

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

function faultAlloc(fd: Iommufd): Fault {
  const out = fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
  return { id: out.out_fault_id, fd: out.out_fault_fd };
}

function hwptAlloc(fd: Iommufd, devId: number, ptId: number, fault?: Fault): number {
  return fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ptId, flags: fault ? U.IOMMU_HWPT_FAULT_ID_VALID : 0, fault_id: fault?.id ?? 0 }).out_hwpt_id;
}

/** A mock host with two PRI devices, both bound, device A attached to a fault-capable HWPT. */
function setup(registers: Record<string, unknown> = {}): Env {
  const host = createHost({ plugins: [mockPlugin()], profile: mockProfile(registers, [{ bdf: PRI_B, unit: 'mock0', group: 5, ats: true, pri: true, pasidBits: 20 }]) });
  const fd = host.openIommufd();
  const devs = [host.device(PRI_A), host.device(PRI_B)];
  const devIds = devs.map((d) => d.bindIommufd(fd));
  const ioas = fd.ioas.alloc();
  const fault = faultAlloc(fd);
  const hwpt = hwptAlloc(fd, devIds[0], ioas, fault);
  devs[0].attachPt(hwpt);
  return { host, fd, ioas, devs, devIds, fault, hwpt };
}

function readFaults(e: Env, f: Fault = e.fault, count = 64 * REC): Pgfault[] {
  const bytes = e.host.process.read(f.fd, count);
  const out: Pgfault[] = [];
  for (let off = 0; off < bytes.length; off += REC) out.push(U.iommu_hwpt_pgfault.decode(bytes, off));
  return out;
}

function respond(e: Env, cookie: number, c: number, f: Fault = e.fault): number {
  return e.host.process.write(f.fd, U.iommu_hwpt_page_response.encode({ cookie, code: c }));
}

/** Fresh user memory with a pattern, mapped at `iova`. */
function mapAt(e: Env, iova: bigint, fill: number, pages = 1): bigint {
  const va = e.host.process.mmap(pages * 4096);
  e.host.process.poke(va, new Uint8Array(pages * 4096).fill(fill));
  e.fd.ioas.map({ ioasId: e.ioas, userVa: va, length: BigInt(pages) * PAGE, iova });
  return va;
}

/** Tracks whether a promise settled, without leaving a rejection unhandled. */
function track<T>(p: Promise<T>): { settled: boolean; result: Promise<T | unknown> } {
  const t = { settled: false, result: null as unknown as Promise<T | unknown> };
  t.result = p.then(
    (v) => ((t.settled = true), v),
    (x: unknown) => ((t.settled = true), x),
  );
  return t;
}

describe('PRI through the fault fd', () => {
  it('SUCCESS after the handler maps the page: the DMA completes with the right bytes', async () => {
    const e = setup();
    const read = track(e.devs[0].dma.read(0x200010n, 16));
    const write = track(e.devs[0].dma.write(0x300020n, new Uint8Array([7, 8, 9])));
    await settle();
    expect(read.settled || write.settled).toBe(false);
    const recs = readFaults(e);
    expect(recs.map((r) => [r.addr, r.perm, r.dev_id, r.flags])).toEqual([
      [0x200000n, U.IOMMU_PGFAULT_PERM_READ, e.devIds[0], U.IOMMU_PGFAULT_FLAGS_LAST_PAGE],
      [0x300000n, U.IOMMU_PGFAULT_PERM_WRITE, e.devIds[0], U.IOMMU_PGFAULT_FLAGS_LAST_PAGE],
    ]);
    expect(recs[0].cookie).not.toBe(recs[1].cookie);
    mapAt(e, 0x200000n, 0x42);
    const va = mapAt(e, 0x300000n, 0);
    respond(e, recs[0].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS);
    respond(e, recs[1].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS);
    expect([...((await read.result) as Uint8Array)]).toEqual(new Array(16).fill(0x42));
    expect(await write.result).toBeUndefined();
    expect([...e.host.process.peek(va + 0x20n, 3)]).toEqual([7, 8, 9]);
    expect(e.host.faults.outstanding).toBe(0);
    expect(e.host.faults.stats.responses).toBe(2);
  });

  it('the statistics object is live and lists every counter', async () => {
    const e = setup();
    const stats = e.host.faultStats;
    expect(Object.keys(stats)).toEqual(['pageRequests', 'stalls', 'responses', 'autoResponses', 'duplicateResponses', 'faults', 'vevents', 'logged', 'overflows']);
    expect(Object.values(stats)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const dmas = [0x200000n, 0x201000n].map((a) => track(e.devs[0].dma.read(a, 1)));
    await settle();
    const recs = readFaults(e);
    expect(respond(e, recs[0].cookie, U.IOMMUFD_PAGE_RESP_INVALID)).toBe(8);
    expect({ ...stats }).toMatchObject({ pageRequests: 2, responses: 1, autoResponses: 0, duplicateResponses: 0 });
    // The detach answers the group still read: the kernel's own response.
    e.devs[0].detachPt();
    await settle();
    expect(stats).toMatchObject({ pageRequests: 2, responses: 1, autoResponses: 1 });
    for (const d of dmas) expect(await d.result).toBeInstanceOf(DmaFault);
  });

  it('INVALID aborts the DMA with a DmaFault whose outcome is page-response', async () => {
    const e = setup();
    const dma = track(e.devs[0].dma.read(0x200000n, 4));
    await settle();
    const [r] = readFaults(e);
    respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    const err = await dma.result;
    expect(err).toBeInstanceOf(DmaFault);
    expect((err as DmaFault).outcome).toBe('page-response');
    expect((err as DmaFault).fault.addr).toBe(0x200000n);
    expect(e.host.faults.outstanding).toBe(0);
  });

  it('the DmaFault of an INVALID response describes the access as it failed, whatever the device translated since', async () => {
    const run = async (between: (e: Env) => void): Promise<DmaFault> => {
      const e = setup();
      const dma = track(e.devs[0].dma.write(0x200000n + 8n, new Uint8Array(4), { maxRetries: 2 }));
      await settle();
      between(e);
      const [r] = readFaults(e);
      respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
      const err = await dma.result;
      expect(err).toBeInstanceOf(DmaFault);
      return err as DmaFault;
    };
    const plain = await run(() => undefined);
    // Between the request and its response the device translates again and fails otherwise: a read of
    // another missing page, then a PASID with nothing attached (blocked, no format, no tag).
    const after = await run((e) => {
      expect(e.devs[0].translatePage(0x201, PERM_READ)).toBe(-1);
      expect(e.devs[0].translatePage(0x500, PERM_READ, 3)).toBe(-1);
    });
    expect(plain.outcome).toBe('page-response');
    expect(plain.fault).toMatchObject({ addr: 0x200000n, perm: PERM_WRITE, pasid: -1 });
    expect(after.fault).toEqual(plain.fault);
    expect(after.message).toBe(plain.message);
  });

  it('delivers a multi-request group only when its LAST request arrives, with one cookie and one response', async () => {
    const e = setup();
    const dev = e.devs[0];
    const partial = (addr: bigint, perm: number): FailedAccess => ({ unit: dev.unitIndex, rid: dev.info.rid, pasid: -1, addr, perm, failure: 'not-present', stage2: false, recoverable: true, grpid: 77, last: false });
    void e.host.faults.pageRequest(dev, partial(0x400000n, PERM_READ));
    void e.host.faults.pageRequest(dev, partial(0x401000n, PERM_WRITE));
    await settle();
    expect(e.host.process.poll(e.fault.fd)).toBe(POLLOUT);
    expect(readFaults(e)).toEqual([]);
    const group = track(dev.requestPages([{ addr: 0x402000n, perm: PERM_READ | PERM_WRITE }], { grpid: 77 }));
    await settle();
    expect(e.host.process.poll(e.fault.fd)).toBe(POLLOUT | POLLIN | POLLRDNORM);
    // A buffer too small for the whole group returns nothing and leaves the group queued.
    expect(readFaults(e, e.fault, 2 * REC)).toEqual([]);
    const recs = readFaults(e);
    expect(recs.map((r) => [r.addr, r.perm, r.grpid, r.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE])).toEqual([
      [0x400000n, U.IOMMU_PGFAULT_PERM_READ, 77, 0],
      [0x401000n, U.IOMMU_PGFAULT_PERM_WRITE, 77, 0],
      [0x402000n, U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE, 77, U.IOMMU_PGFAULT_FLAGS_LAST_PAGE],
    ]);
    expect(new Set(recs.map((r) => r.cookie)).size).toBe(1);
    expect(group.settled).toBe(false);
    expect(respond(e, recs[0].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS)).toBe(8);
    expect(await group.result).toBe(PAGE_RESP_SUCCESS);
    // The group is complete: its cookie is gone.
    expect(errCode(() => respond(e, recs[0].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe('EINVAL');
    expect(e.host.faults.stats.responses).toBe(1);
    expect(e.host.faults.stats.duplicateResponses).toBe(0);
    expect(e.host.faults.outstanding).toBe(0);

    // requestPages builds the same kind of group on its own: LAST only on the final record.
    const g2 = track(dev.requestPages([{ addr: 0x500000n, perm: PERM_READ }, { addr: 0x501000n, perm: PERM_READ }, { addr: 0x502000n, perm: PERM_WRITE }]));
    await settle();
    const r2 = readFaults(e);
    expect(r2.map((r) => r.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE)).toEqual([0, 0, U.IOMMU_PGFAULT_FLAGS_LAST_PAGE]);
    expect(new Set(r2.map((r) => r.grpid)).size).toBe(1);
    expect(new Set(r2.map((r) => r.cookie)).size).toBe(1);
    respond(e, r2[0].cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    expect(await g2.result).toBe(PAGE_RESP_INVALID);
  });
});

describe('the waiters of many (RID, PASID) streams', () => {
  it('200 PASIDs outstanding at once, twice: each request answered once, the idle streams forgotten, none left waiting', async () => {
    const e = setup();
    // Device B is bound but attached to nothing: every request is answered INVALID by the driver (no iopf handler).
    const dev = e.devs[1];
    // 0000:00:05.0: bus 0, device 5, function 0.
    const rid = 5 << 3;
    const request = (pasid: number, grpid: number) =>
      e.host.faults.pageRequest(dev, { unit: dev.unitIndex, rid, pasid, addr: 0x1000n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: true, grpid, last: true });
    for (let wave = 0; wave < 2; wave++) {
      // More streams than are kept idle (64), all live when the 65th and later are made; the second wave's
      // PASIDs are new, so its streams are made while the first wave's are idle.
      const answers = Array.from({ length: 200 }, (_, i) => request(wave * 1000 + i + 1, (i * 7) & 511));
      expect(e.host.faults.outstanding).toBe(200);
      // A second request under an outstanding (RID, PASID, index) is still refused, in an old stream and a new one.
      expect(() => request(wave * 1000 + 1, 0)).toThrow(/already outstanding/);
      expect(() => request(wave * 1000 + 200, (199 * 7) & 511)).toThrow(/already outstanding/);
      expect(await Promise.all(answers)).toEqual(new Array(200).fill(PAGE_RESP_INVALID));
      expect(e.host.faults.outstanding).toBe(0);
    }
    expect(e.host.faults.stats.autoResponses).toBe(400);
  });
});

describe('page request group indexes', () => {
  it('stay within the 9-bit PRG index whoever allocates them (DMA faults or requestPages)', async () => {
    const e = setup();
    const dev = e.devs[0];
    const seen = new Set<number>();
    for (let round = 0; round < 3; round++) {
      const waits: { result: Promise<unknown> }[] = [];
      for (let i = 0; i < 200; i++) waits.push(track<unknown>(round > 0 || i % 2 ? dev.requestPages([{ addr: 0x600000n, perm: PERM_READ }]) : dev.dma.read(0x600000n, 1)));
      await settle();
      for (const r of readFaults(e, e.fault, 256 * REC)) {
        expect(r.grpid).toBeGreaterThanOrEqual(1);
        expect(r.grpid).toBeLessThanOrEqual(511);
        seen.add(r.grpid);
        respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
      }
      for (const w of waits) await w.result;
    }
    expect(seen.size).toBe(511);
    expect(e.host.faults.outstanding).toBe(0);
  });
});

describe('PRI flow control (PCIe: Outstanding Page Request Allocation, no reuse of an outstanding group index)', () => {
  it('1,022 concurrent faulting DMAs answered half SUCCESS, half INVALID: each gets its own answer (511 complete, 511 fail)', async () => {
    const e = setup();
    const dev = e.devs[0];
    const n = 1022;
    const base = 0x1000_0000n;
    const dmas = Array.from({ length: n }, (_, i) => track(dev.dma.read(base + BigInt(i) * PAGE, 4)));
    let answered = 0;
    while (answered < n) {
      await settle();
      const recs = readFaults(e, e.fault, 512 * REC);
      // Every group read and not yet answered holds its own index.
      expect(new Set(recs.map((r) => r.grpid)).size).toBe(recs.length);
      expect(dev.pri.outstandingGroups).toBeLessThanOrEqual(511);
      expect(dev.pri.outstandingRequests).toBeLessThanOrEqual(dev.pri.allocation);
      for (const r of recs) {
        const page = (r.addr - base) / PAGE;
        if (page % 2n === 0n) mapAt(e, r.addr, Number(page % 200n) + 1);
        respond(e, r.cookie, page % 2n === 0n ? U.IOMMUFD_PAGE_RESP_SUCCESS : U.IOMMUFD_PAGE_RESP_INVALID);
        answered++;
      }
    }
    const results = await Promise.all(dmas.map((d) => d.result));
    let ok = 0;
    results.forEach((r, i) => {
      if (i % 2 === 0) {
        expect(r).toEqual(new Uint8Array(4).fill((i % 200) + 1));
        ok++;
      } else expect((r as DmaFault).outcome).toBe('page-response');
    });
    expect(ok).toBe(511);
    expect(dev.pri.stalled).toBeGreaterThan(0);
    expect(dev.pri.outstandingRequests).toBe(0);
    expect(e.host.faults.outstanding).toBe(0);
    expect(e.host.faults.stats.duplicateResponses).toBe(0);
  });

  it('a function out of credit stalls (no fault, no record) until a response frees credit', async () => {
    const e = setup();
    const dev = e.devs[0];
    dev.pri.setAllocation(3);
    const dmas = Array.from({ length: 5 }, (_, i) => track(dev.dma.read(0x200000n + BigInt(i) * PAGE, 1)));
    await settle();
    let recs = readFaults(e);
    expect(recs.length).toBe(3);
    expect(dev.pri.waitingRequests).toBe(2);
    expect(dmas.some((d) => d.settled)).toBe(false);
    expect(e.host.faults.stats.overflows).toBe(0);
    respond(e, recs[0].cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    await settle();
    recs = readFaults(e);
    expect(recs.map((r) => r.addr)).toEqual([0x203000n]);
    expect(dev.pri.waitingRequests).toBe(1);
  });

  it('requestPages refuses an outstanding index (EBUSY) and a group larger than the allocation (EINVAL)', async () => {
    const e = setup();
    const dev = e.devs[0];
    const first = track(dev.requestPages([{ addr: 0x400000n, perm: PERM_READ }], { grpid: 9 }));
    await expect(dev.requestPages([{ addr: 0x401000n, perm: PERM_READ }], { grpid: 9 })).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(dev.requestPages([{ addr: 0x401000n, perm: PERM_READ }], { grpid: 512 })).rejects.toMatchObject({ code: 'EINVAL' });
    dev.pri.setAllocation(2);
    await expect(dev.requestPages([0, 1, 2].map((i) => ({ addr: 0x500000n + BigInt(i) * PAGE, perm: PERM_READ })))).rejects.toMatchObject({ code: 'EINVAL' });
    await settle();
    const [r] = readFaults(e);
    respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    expect(await first.result).toBe(PAGE_RESP_INVALID);
    // Answered: the index is free again.
    const again = track(dev.requestPages([{ addr: 0x401000n, perm: PERM_READ }], { grpid: 9 }));
    await settle();
    respond(e, readFaults(e)[0].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS);
    expect(await again.result).toBe(PAGE_RESP_SUCCESS);
  });
});

describe('fault fd errno rules', () => {
  it('ESPIPE, EINVAL, partial writes, poll and EBUSY on destroy', async () => {
    const e = setup();
    const f = e.fault.fd;
    const p = e.host.process;
    expect(p.poll(f)).toBe(POLLOUT);
    expect(errCode(() => p.read(f, REC - 1))).toBe('ESPIPE');
    expect(errCode(() => p.read(f, REC + 1))).toBe('ESPIPE');
    expect(p.read(f, 0).length).toBe(0);
    expect(errCode(() => p.write(f, new Uint8Array(7)))).toBe('ESPIPE');
    expect(errCode(() => p.write(f, new Uint8Array(12)))).toBe('ESPIPE');
    expect(errCode(() => respond(e, 12345, U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe('EINVAL');

    const dmas = [0x200000n, 0x201000n, 0x202000n].map((a) => track(e.devs[0].dma.read(a, 1)));
    await settle();
    expect(p.poll(f)).toBe(POLLOUT | POLLIN | POLLRDNORM);
    const recs = readFaults(e);
    expect(recs.length).toBe(3);
    expect(p.poll(f)).toBe(POLLOUT);
    // A bad code is EINVAL and consumes nothing.
    expect(errCode(() => respond(e, recs[0].cookie, 2))).toBe('EINVAL');
    // Bytes consumed before the first error are returned: the first response is taken, the rest not.
    const batch = new Uint8Array(24);
    batch.set(U.iommu_hwpt_page_response.encode({ cookie: recs[0].cookie, code: U.IOMMUFD_PAGE_RESP_INVALID }), 0);
    batch.set(U.iommu_hwpt_page_response.encode({ cookie: 999, code: U.IOMMUFD_PAGE_RESP_INVALID }), 8);
    batch.set(U.iommu_hwpt_page_response.encode({ cookie: recs[1].cookie, code: U.IOMMUFD_PAGE_RESP_INVALID }), 16);
    expect(p.write(f, batch)).toBe(8);
    const bad = new Uint8Array(16);
    bad.set(U.iommu_hwpt_page_response.encode({ cookie: recs[1].cookie, code: U.IOMMUFD_PAGE_RESP_INVALID }), 0);
    bad.set(U.iommu_hwpt_page_response.encode({ cookie: recs[2].cookie, code: 7 }), 8);
    expect(p.write(f, bad)).toBe(8);
    await settle();
    expect([dmas[0].settled, dmas[1].settled, dmas[2].settled]).toEqual([true, true, false]);
    expect(respond(e, recs[2].cookie, U.IOMMUFD_PAGE_RESP_INVALID)).toBe(8);
    for (const d of dmas) expect(await d.result).toBeInstanceOf(DmaFault);

    // The FAULT object is held by the open fd and by the HWPT.
    expect(errCode(() => e.fd.destroy(e.fault.id))).toBe('EBUSY');
    e.devs[0].detachPt();
    e.fd.destroy(e.hwpt);
    expect(errCode(() => e.fd.destroy(e.fault.id))).toBe('EBUSY');
    p.close(f);
    expect(errCode(() => p.read(f, REC))).toBe('EBADF');
    e.fd.destroy(e.fault.id);
    expect(e.host.faults.stats.duplicateResponses).toBe(0);
    expect(e.host.faults.outstanding).toBe(0);
  });
});

describe('pending groups when the attachment goes away', () => {
  const cases: [string, (e: Env) => void][] = [
    ['detach', (e) => e.devs[0].detachPt()],
    ['replace by a plain HWPT', (e) => e.devs[0].attachPt(hwptAlloc(e.fd, e.devIds[0], e.ioas))],
    ['replace by another fault-capable HWPT on the same queue', (e) => e.devs[0].attachPt(hwptAlloc(e.fd, e.devIds[0], e.ioas, e.fault))],
    ['replace by an automatic domain', (e) => e.devs[0].attachPt(e.ioas)],
    [
      'detach and HWPT destroy',
      (e) => {
        e.devs[0].detachPt();
        e.fd.destroy(e.hwpt);
      },
    ],
    ['unbind', (e) => e.devs[0].unbind()],
    ['close of the iommufd', (e) => e.host.process.close(e.fd.fd)],
  ];
  for (const [name, action] of cases) {
    it(`${name}: every queued and read-but-unanswered group is answered INVALID exactly once`, async () => {
      const e = setup();
      const dmas = [0x200000n, 0x201000n, 0x202000n, 0x203000n].map((a) => track(e.devs[0].dma.read(a, 1)));
      const group = track(e.devs[0].requestPages([{ addr: 0x210000n, perm: PERM_READ }, { addr: 0x211000n, perm: PERM_READ }]));
      await settle();
      // Two groups read and left unanswered, three still queued.
      const read = readFaults(e, e.fault, 2 * REC);
      expect(read.length).toBe(2);
      const q = e.fd.ctx.objects.peek(e.fault.id) as FaultQueue;
      expect(q.pending).toBe(3);
      expect(q.awaitingResponse).toBe(2);
      const auto = e.host.faults.stats.autoResponses;
      action(e);
      expect(e.host.faults.stats.autoResponses - auto).toBe(5);
      expect(q.pending).toBe(0);
      expect(q.awaitingResponse).toBe(0);
      for (const d of dmas) {
        const err = await d.result;
        expect(err).toBeInstanceOf(DmaFault);
        expect((err as DmaFault).outcome).toBe('page-response');
      }
      expect(await group.result).toBe(PAGE_RESP_INVALID);
      // A late response to a group already answered is refused, not sent twice.
      if (name !== 'close of the iommufd') expect(errCode(() => respond(e, read[0].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe('EINVAL');
      await settle();
      expect(e.host.faults.stats.responses).toBe(0);
      expect(e.host.faults.stats.duplicateResponses).toBe(0);
      expect(e.host.faults.outstanding).toBe(0);
    });
  }

  it('leaves the groups of another device on the same queue alone', async () => {
    const e = setup();
    e.devs[1].attachPt(hwptAlloc(e.fd, e.devIds[1], e.ioas, e.fault));
    const a = track(e.devs[0].dma.read(0x200000n, 1));
    const b = track(e.devs[1].dma.read(0x200000n, 1));
    await settle();
    const recs = readFaults(e);
    expect(recs.map((r) => r.dev_id).sort()).toEqual([...e.devIds].sort());
    e.devs[0].detachPt();
    expect(await a.result).toBeInstanceOf(DmaFault);
    await settle();
    expect(b.settled).toBe(false);
    mapAt(e, 0x200000n, 0x33);
    respond(e, recs.find((r) => r.dev_id === e.devIds[1])!.cookie, U.IOMMUFD_PAGE_RESP_SUCCESS);
    expect([...((await b.result) as Uint8Array)]).toEqual([0x33]);
  });
});

describe('hardware page request queue overflow', () => {
  it('drops what does not fit, the hardware answers the dropped requests, nothing is left waiting', async () => {
    const e = setup({ pageRequestQueueDepth: 2 });
    // The OS sized the PRI allocation to the queue (2): a function on its own would wait, not overflow.
    // An allocation larger than the queue (or several functions sharing it) overflows.
    expect(e.devs[0].pri.allocation).toBe(2);
    e.devs[0].pri.setAllocation(512);
    const dmas = Array.from({ length: 10 }, (_, i) => track(e.devs[0].dma.read(0x200000n + BigInt(i) * PAGE, 4)));
    await settle();
    const q = e.host.faults.hardwareQueues(e.devs[0].unitIndex).pageRequests;
    expect(e.host.faults.stats.overflows).toBe(8);
    expect(q.dropped).toBe(8);
    expect(q.overflow).toBe(false);
    expect(e.host.log.lines.filter((l) => l.includes('page request queue overflow')).length).toBe(8);
    expect(dmas.filter((d) => d.settled).length).toBe(8);
    for (const d of dmas.slice(2)) {
      const err = await d.result;
      expect(err).toBeInstanceOf(DmaFault);
      expect((err as DmaFault).outcome).toBe('page-response');
    }
    const recs = readFaults(e);
    expect(recs.map((r) => r.addr)).toEqual([0x200000n, 0x201000n]);
    mapAt(e, 0x200000n, 0x61, 2);
    for (const r of recs) respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_SUCCESS);
    for (const d of dmas.slice(0, 2)) expect([...((await d.result) as Uint8Array)]).toEqual([0x61, 0x61, 0x61, 0x61]);
    await settle();
    expect(e.host.faults.stats.autoResponses).toBe(8);
    expect(e.host.faults.stats.responses).toBe(2);
    expect(e.host.faults.outstanding).toBe(0);
    // The queue works normally again once drained.
    const again = track(e.devs[0].dma.read(0x300000n, 1));
    await settle();
    const [r] = readFaults(e);
    respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    expect(await again.result).toBeInstanceOf(DmaFault);
    expect(PAGE_RESP_FAILURE).not.toBe(PAGE_RESP_INVALID);
  });
});

describe('stall model', () => {
  const STALLER = '0000:00:06.0';

  /** A mock unit with the stall capability, a stall-capable device bound and attached to a fault-capable HWPT. */
  function stallSetup(registers: Record<string, unknown> = {}, extra: { pri?: boolean } = {}) {
    const host = createHost({
      plugins: [mockPlugin()],
      profile: mockProfile({ stall: true, ...registers }, [{ bdf: STALLER, unit: 'mock0', group: 6, pasidBits: 8, stall: true, ...extra }]),
    });
    const fd = host.openIommufd();
    const dev = host.device(STALLER);
    const devId = dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    const fault = faultAlloc(fd);
    const hwpt = hwptAlloc(fd, devId, ioas, fault);
    dev.attachPt(hwpt);
    const e: Env = { host, fd, ioas, devs: [dev], devIds: [devId], fault, hwpt };
    return e;
  }

  it('stalls instead of failing: the stall record reaches the fault fd, SUCCESS resumes with a retry and the DMA completes', async () => {
    const e = stallSetup();
    const dev = e.devs[0];
    expect(dev.info.stall).toBe(true);
    const codec = dev.unitOps.faults!;
    const resume = vi.spyOn(codec, 'encodeResume');
    try {
      const dma = track(dev.dma.read(0x200010n, 8));
      await settle();
      expect(dma.settled).toBe(false);
      // The record travelled through the unit's fault/event queue, not the page request queue.
      expect(e.host.faults.stats).toMatchObject({ stalls: 1, pageRequests: 0, faults: 0, logged: 0 });
      const [r] = readFaults(e);
      expect(r).toMatchObject({ addr: 0x200000n, perm: U.IOMMU_PGFAULT_PERM_READ, dev_id: e.devIds[0], flags: U.IOMMU_PGFAULT_FLAGS_LAST_PAGE });
      const stag = r.grpid;
      mapAt(e, 0x200000n, 0x77);
      expect(respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_SUCCESS)).toBe(8);
      expect([...((await dma.result) as Uint8Array)]).toEqual(new Array(8).fill(0x77));
      expect(resume).toHaveBeenCalledTimes(1);
      const cmd = resume.mock.results[0].value as Uint8Array;
      const dv = new DataView(cmd.buffer, cmd.byteOffset, cmd.byteLength);
      expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true)]).toEqual([MOCK_RESUME_OP, dev.info.rid, stag, MOCK_RESUME_RETRY]);
      expect(e.host.faults.stats.responses).toBe(1);
      expect(e.host.faults.outstanding).toBe(0);
    } finally {
      resume.mockRestore();
    }
  });

  it('INVALID terminates the stalled transaction: the DMA rejects with a stall-abort DmaFault', async () => {
    const e = stallSetup();
    const dev = e.devs[0];
    const resume = vi.spyOn(dev.unitOps.faults!, 'encodeResume');
    try {
      // Detached before the event thread runs: no iopf handler, so the driver terminates the stall.
      const dma = track(dev.dma.write(0x300000n, new Uint8Array([1, 2])));
      dev.detachPt();
      const err = await dma.result;
      expect(err).toBeInstanceOf(DmaFault);
      expect((err as DmaFault).outcome).toBe('stall-abort');
      expect(readFaults(e)).toEqual([]);
      expect(e.host.faults.stats.autoResponses).toBe(1);

      dev.attachPt(e.hwpt);
      const d2 = track(dev.dma.write(0x300000n, new Uint8Array([1, 2])));
      await settle();
      const [r] = readFaults(e);
      expect(r.perm).toBe(U.IOMMU_PGFAULT_PERM_WRITE);
      respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
      const err2 = await d2.result;
      expect(err2).toBeInstanceOf(DmaFault);
      expect((err2 as DmaFault).outcome).toBe('stall-abort');
      expect((err2 as DmaFault).fault).toMatchObject({ kind: 'stall', addr: 0x300000n, grpid: r.grpid, last: true });
      const last = resume.mock.results.at(-1)!.value as Uint8Array;
      expect(new DataView(last.buffer, last.byteOffset).getUint32(12, true)).toBe(MOCK_RESUME_ABORT);
      expect(e.host.faults.outstanding).toBe(0);
    } finally {
      resume.mockRestore();
    }
  });

  it('a stall record the codec cannot encode rejects the DMA and leaves no waiter behind', async () => {
    const e = stallSetup();
    const dev = e.devs[0];
    const encode = vi.spyOn(dev.unitOps.faults!, 'encodeStall').mockImplementationOnce(() => {
      throw new RangeError('stall record out of range');
    });
    try {
      await expect(dev.dma.read(0x500000n, 8)).rejects.toThrow('stall record out of range');
      expect(e.host.faults.outstanding).toBe(0);
      expect(e.host.faults.stats.stalls).toBe(0);
      expect(readFaults(e)).toEqual([]);
      // The next stall is recorded and answered as usual.
      const dma = track(dev.dma.read(0x500000n, 8));
      await settle();
      const [r] = readFaults(e);
      mapAt(e, 0x500000n, 0x5a);
      expect(respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_SUCCESS)).toBe(8);
      expect([...((await dma.result) as Uint8Array)]).toEqual(new Array(8).fill(0x5a));
      expect(e.host.faults.outstanding).toBe(0);
    } finally {
      encode.mockRestore();
    }
  });

  it('stall tags are the 16-bit STAG, distinct per outstanding stall', async () => {
    const e = stallSetup();
    const dmas = [0x400000n, 0x401000n, 0x402000n].map((a) => track(e.devs[0].dma.read(a, 1)));
    await settle();
    const recs = readFaults(e);
    expect(recs.length).toBe(3);
    expect(new Set(recs.map((r) => r.grpid)).size).toBe(3);
    for (const r of recs) expect(r.grpid).toBeLessThanOrEqual(0xffff);
    for (const r of recs) respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    for (const d of dmas) expect(await d.result).toBeInstanceOf(DmaFault);
  });

  it('does not stall when the unit cannot (caps.stall false), or without a fault queue', async () => {
    const noStall = stallSetup({ stall: false });
    const err = await noStall.devs[0].dma.read(0x200000n, 1).catch((x: unknown) => x);
    expect((err as DmaFault).outcome).toBe('reported');
    expect(noStall.host.faults.stats.stalls).toBe(0);

    const e = stallSetup();
    e.devs[0].attachPt(hwptAlloc(e.fd, e.devIds[0], e.ioas));
    const err2 = await e.devs[0].dma.read(0x200000n, 1).catch((x: unknown) => x);
    expect((err2 as DmaFault).outcome).toBe('reported');
    expect((err2 as DmaFault).fault.kind).toBe('dma');
    await settle();
    expect(e.host.faults.stats).toMatchObject({ stalls: 0, logged: 1 });
  });

  it('a device that both stalls and has PRI stalls', async () => {
    const e = stallSetup({}, { pri: true });
    const dma = track(e.devs[0].dma.read(0x200000n, 1));
    await settle();
    expect(e.host.faults.stats).toMatchObject({ stalls: 1, pageRequests: 0 });
    const [r] = readFaults(e);
    respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_INVALID);
    expect(((await dma.result) as DmaFault).outcome).toBe('stall-abort');
  });

  const gone: [string, (e: Env) => void][] = [
    ['detach', (e) => e.devs[0].detachPt()],
    ['replace', (e) => e.devs[0].attachPt(hwptAlloc(e.fd, e.devIds[0], e.ioas))],
    [
      'destroy',
      (e) => {
        e.devs[0].detachPt();
        e.fd.destroy(e.hwpt);
      },
    ],
    ['unbind', (e) => e.devs[0].unbind()],
  ];
  for (const [name, action] of gone) {
    it(`${name}: queued and read-but-unanswered stalls are terminated exactly once`, async () => {
      const e = stallSetup();
      const dmas = [0x200000n, 0x201000n, 0x202000n].map((a) => track(e.devs[0].dma.read(a, 1)));
      await settle();
      const read = readFaults(e, e.fault, REC);
      expect(read.length).toBe(1);
      action(e);
      for (const d of dmas) expect(((await d.result) as DmaFault).outcome).toBe('stall-abort');
      expect(e.host.faults.stats.autoResponses).toBe(3);
      if (name !== 'unbind') expect(errCode(() => respond(e, read[0].cookie, U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe('EINVAL');
      expect(e.host.faults.stats).toMatchObject({ responses: 0, duplicateResponses: 0 });
      expect(e.host.faults.outstanding).toBe(0);
    });
  }

  it('a stall that finds the fault queue full is terminated, nothing is left waiting', async () => {
    const e = stallSetup({ faultQueueDepth: 2 });
    const dmas = Array.from({ length: 5 }, (_, i) => track(e.devs[0].dma.read(0x200000n + BigInt(i) * PAGE, 1)));
    await settle();
    expect(e.host.faults.stats.overflows).toBe(3);
    expect(e.host.log.lines.filter((l) => l.includes('stalled transaction from 0000:00:06.0 terminated')).length).toBe(3);
    for (const d of dmas.slice(2)) expect(((await d.result) as DmaFault).outcome).toBe('stall-abort');
    const recs = readFaults(e);
    expect(recs.length).toBe(2);
    mapAt(e, 0x200000n, 0x11, 2);
    for (const r of recs) respond(e, r.cookie, U.IOMMUFD_PAGE_RESP_SUCCESS);
    for (const d of dmas.slice(0, 2)) expect([...((await d.result) as Uint8Array)]).toEqual([0x11]);
    expect(e.host.faults.outstanding).toBe(0);
  });
});
