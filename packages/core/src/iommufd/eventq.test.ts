import { errCode, xorshiftRandom } from '../__tests__/helpers.js';
import { describe, expect, it } from 'vitest';
import { ObjType } from './objects.js';
import type { FaultQueue, VEventQueue } from './eventq.js';
import { IOMMU_VEVENTQ_TYPE_MOCK, IOMMU_VIOMMU_TYPE_MOCK } from '../testing/index.js';
import { mockFixture } from '../__tests__/mock-host.js';

const code = errCode;

describe('event queue fds (regressions found by the uAPI fuzz)', () => {
  it('forgets its fd number on close, so a reused number reaches the new queue, not the old object', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const old = f.fd.fault.alloc();
    f.host.process.close(old.fd);
    const oldQ = f.fd.ctx.objects.get<FaultQueue>(old.id, ObjType.FAULT);
    expect(oldQ.fd).toBe(-1);
    expect(oldQ.users).toBe(1);
    // The next open file takes the same number.
    const fresh = f.fd.fault.alloc();
    expect(fresh.fd).toBe(old.fd);
    const hwpt = f.fd.hwpt.alloc({ devId, ptId: ioas, faultId: fresh.id });
    dev.attachPt(hwpt);
    const dma = dev.dma.read(0x100000n, 8).catch((e: unknown) => e);
    const ac = new AbortController();
    // The reader must wait on the queue behind the fd now, not on the closed one.
    for await (const g of f.fd.fault.reader(fresh.fd).groups(ac.signal)) {
      expect(g.devId).toBe(devId);
      f.fd.fault.reader(fresh.fd).respond(g, 'invalid');
      break;
    }
    expect(await dma).toBeInstanceOf(Error);
    // The old object can now be destroyed: no open file holds it.
    f.fd.destroy(old.id);
  });

  it('the typed readers refuse fds that are not their queue (EBADF) instead of decoding other bytes', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const memfd = f.host.process.memfd(4096);
    f.host.process.write(memfd, new Uint8Array(100).fill(7));
    f.host.process.ftruncate(memfd, 100);
    const parent = f.fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const viommu = f.fd.viommu.alloc({ devId, type: IOMMU_VIOMMU_TYPE_MOCK, hwptId: parent });
    const vq = f.fd.veventq.alloc({ viommuId: viommu, type: IOMMU_VEVENTQ_TYPE_MOCK, depth: 2 });
    const fq = f.fd.fault.alloc();
    for (const fd of [memfd, vq.fd, f.fd.fd, 999]) {
      expect(code(() => f.fd.fault.reader(fd).readAvailable())).toBe('EBADF');
      expect(code(() => f.fd.fault.reader(fd).respond(1, 'success'))).toBe('EBADF');
    }
    for (const fd of [memfd, fq.fd, 999]) expect(code(() => f.fd.veventq.read(fd))).toBe('EBADF');
    expect(f.fd.fault.reader(fq.fd).readAvailable()).toEqual([]);
    expect(f.fd.veventq.read(vq.fd)).toEqual([]);
  });
});

describe('FAULT cookies (eventq.c: xa_alloc on an XA_FLAGS_ALLOC1 xarray)', () => {
  // The response xarray hands out the lowest free index from 1: an answered group's cookie is reused.
  it('gives the lowest free cookie from 1 and reuses answered ones', async () => {
    const { FaultQueue } = await import('./eventq.js');
    const { iommu_hwpt_pgfault, iommu_hwpt_page_response, IOMMUFD_PAGE_RESP_SUCCESS } = await import('../uapi/iommufd.js');
    const q = new FaultQueue();
    const answered: number[] = [];
    const group = (n: number) => ({
      devId: 1,
      pasid: -1,
      handle: { idev: {}, pasid: -1, hwpt: {} },
      count: 1,
      fault: () => ({ pasid: -1, grpid: n, perm: 0, addr: BigInt(n) * 4096n }) as never,
      respond: () => answered.push(n),
      cookie: 0,
    });
    const cookiesOf = (bytes: Uint8Array) => {
      const out: number[] = [];
      for (let off = 0; off < bytes.length; off += iommu_hwpt_pgfault.size) out.push(iommu_hwpt_pgfault.decode(bytes, off).cookie);
      return out;
    };
    const respond = (cookie: number) => q.write(iommu_hwpt_page_response.encode({ cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }));
    for (const n of [1, 2, 3]) q.addGroup(group(n));
    expect(cookiesOf(q.read(3 * iommu_hwpt_pgfault.size))).toEqual([1, 2, 3]);
    respond(2);
    respond(1);
    q.addGroup(group(4));
    q.addGroup(group(5));
    q.addGroup(group(6));
    expect(cookiesOf(q.read(3 * iommu_hwpt_pgfault.size))).toEqual([1, 2, 4]);
    expect(answered).toEqual([2, 1]);
  });

  it('gives the lowest free cookie through any order of reads and answers (against a set of the cookies in use)', async () => {
    const { FaultQueue } = await import('./eventq.js');
    const { iommu_hwpt_pgfault, iommu_hwpt_page_response } = await import('../uapi/iommufd.js');
    const q = new FaultQueue();
    const group = () => ({
      devId: 1,
      pasid: -1,
      handle: { idev: {}, pasid: -1, hwpt: {} },
      count: 1,
      fault: () => ({ pasid: -1, grpid: 1, perm: 0, addr: 4096n }) as never,
      respond: () => undefined,
      cookie: 0,
    });
    const rand = xorshiftRandom(0x1f2e3d4c);
    const inUse = new Set<number>();
    const lowestFree = () => {
      let c = 1;
      while (inUse.has(c)) c++;
      return c;
    };
    for (let step = 0; step < 4000; step++) {
      // Reads outpace answers early on, answers catch up later: the cookies in use grow, then shrink.
      const read = inUse.size === 0 || rand(100) < (step < 2000 ? 60 : 40);
      if (read) {
        q.addGroup(group());
        const want = lowestFree();
        const got = iommu_hwpt_pgfault.decode(q.read(iommu_hwpt_pgfault.size), 0).cookie;
        expect(got, `step ${step}`).toBe(want);
        inUse.add(got);
      } else {
        const all = [...inUse];
        const cookie = all[rand(all.length)];
        expect(q.write(iommu_hwpt_page_response.encode({ cookie, code: 0 }))).toBe(8);
        inUse.delete(cookie);
      }
      expect(q.awaitingResponse).toBe(inUse.size);
    }
  });
});

describe('queue fds hold the iommufd context (eventq.c iommufd_eventq_init takes iommufd_ctx_get)', () => {
  /** Pinned pages, page-table frames, a FAULT fd and a vEVENTQ fd: everything a close can leak. */
  function loaded() {
    const f = mockFixture();
    const va = f.host.process.mmap(16 * 4096);
    f.host.process.poke(va, new Uint8Array(16 * 4096).fill(1));
    const base = { frames: f.host.frames.framesInUse, locked: f.host.process.lockedPages, fds: f.host.process.openFds.length };
    const fd = f.host.openIommufd();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    const fq = fd.fault.alloc();
    const hwpt = fd.hwpt.alloc({ devId, ptId: ioas, faultId: fq.id });
    const parent = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const viommu = fd.viommu.alloc({ devId, type: IOMMU_VIOMMU_TYPE_MOCK, hwptId: parent });
    const vq = fd.veventq.alloc({ viommuId: viommu, type: IOMMU_VEVENTQ_TYPE_MOCK, depth: 4 });
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 16n * 4096n, iova: 1n << 20n });
    dev.attachPt(hwpt);
    expect(f.host.process.lockedPages).toBeGreaterThan(base.locked);
    expect(f.host.frames.framesInUse).toBeGreaterThan(base.frames);
    return { f, fd, dev, base, files: { iommufd: fd.fd, fault: fq.fd, veventq: vq.fd } };
  }

  const orders: (keyof ReturnType<typeof loaded>['files'])[][] = [
    ['iommufd', 'fault', 'veventq'],
    ['iommufd', 'veventq', 'fault'],
    ['fault', 'iommufd', 'veventq'],
    ['fault', 'veventq', 'iommufd'],
    ['veventq', 'iommufd', 'fault'],
    ['veventq', 'fault', 'iommufd'],
  ];

  it.each(orders)('closing %s, %s, %s ends with no pin, no table frame, no object, no fd', (...order) => {
    const { f, fd, base, files } = loaded();
    for (const [i, name] of order.entries()) {
      f.host.process.close(files[name]);
      // The context is released exactly when its last file goes.
      expect(fd.ctx.released).toBe(i === order.length - 1);
    }
    expect(fd.ctx.leaks).toEqual([]);
    expect(fd.ctx.objects.empty).toBe(true);
    expect(f.host.process.lockedPages).toBe(base.locked);
    expect(f.host.frames.framesInUse).toBe(base.frames);
    expect(f.host.process.openFds.length).toBe(base.fds);
  });

  it('after /dev/iommu is closed the fault fd still reads and answers, and ioctls are EBADF', async () => {
    const { f, fd, dev, files } = loaded();
    const dma = dev.dma.read(0x4000_0000n, 8).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 0));
    f.host.process.close(files.iommufd);
    expect(code(() => fd.ioas.alloc())).toBe('EBADF');
    // Closing /dev/iommu unbound the device (see architecture.md): its group was answered INVALID.
    expect(await dma).toBeInstanceOf(Error);
    expect(f.host.process.read(files.fault, 40).length).toBe(0);
    expect(fd.ctx.released).toBe(false);
  });
});

describe('read() shorter than one record', () => {
  it('a vEVENTQ returns 0 bytes and keeps the event (iommufd_veventq_fops_read), a FAULT fd ESPIPE unless 0', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const parent = f.fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const viommu = f.fd.viommu.alloc({ devId, type: IOMMU_VIOMMU_TYPE_MOCK, hwptId: parent });
    const vq = f.fd.veventq.alloc({ viommuId: viommu, type: IOMMU_VEVENTQ_TYPE_MOCK, depth: 2 });
    const q = f.fd.ctx.objects.get<VEventQueue>(vq.id, ObjType.VEVENTQ);
    q.report(new Uint8Array(8).fill(3));
    for (const n of [0, 1, 7, 15]) expect(f.host.process.read(vq.fd, n).length).toBe(0);
    expect(q.queued).toBe(1);
    expect(f.host.process.read(vq.fd, 16).length).toBe(16);
    // Overflow: two events then the LOST_EVENTS header; the header alone (8 bytes) fits a read of 8.
    for (let i = 0; i < 3; i++) q.report(new Uint8Array(8));
    expect(f.host.process.read(vq.fd, 8).length).toBe(0);
    expect(f.host.process.read(vq.fd, 32).length).toBe(32);
    expect(f.fd.veventq.read(vq.fd, 8)).toEqual([{ lost: true, sequence: 3, data: new Uint8Array(0) }]);
    const fq = f.fd.fault.alloc();
    expect(f.host.process.read(fq.fd, 0).length).toBe(0);
    for (const n of [1, 39, 41]) expect(code(() => f.host.process.read(fq.fd, n))).toBe('ESPIPE');
  });
});

describe('readInto (read(2) into the caller buffer)', () => {
  it('a FAULT fd writes the same records as read() into a reused buffer, whole groups only', async () => {
    const { FaultQueue } = await import('./eventq.js');
    const { iommu_hwpt_pgfault } = await import('../uapi/iommufd.js');
    const group = (n: number, count = 1) => ({
      devId: 7,
      pasid: n % 2 === 0 ? -1 : n,
      handle: { idev: {}, pasid: -1, hwpt: {} },
      count,
      fault: (i: number) => ({ pasid: n % 2 === 0 ? -1 : n, grpid: n, perm: 1, addr: BigInt(n * 16 + i) * 4096n }) as never,
      respond: () => undefined,
      cookie: 0,
    });
    const a = new FaultQueue();
    const b = new FaultQueue();
    for (const [n, count] of [[1, 1], [2, 2], [3, 1]]) {
      a.addGroup(group(n, count));
      b.addGroup(group(n, count));
    }
    const size = iommu_hwpt_pgfault.size;
    // A buffer with stale bytes: every field of each record is written, __reserved and length included.
    const buf = new Uint8Array(2 * size).fill(0xee);
    expect(b.readInto(buf)).toBe(size);
    expect(buf.subarray(0, size)).toEqual(a.read(size));
    // The next group (two records) fits exactly; the one after it stays queued.
    expect(b.readInto(buf)).toBe(2 * size);
    expect(buf).toEqual(a.read(2 * size));
    expect(b.pending).toBe(1);
    expect(b.readInto(new Uint8Array(0))).toBe(0);
    expect(() => b.readInto(new Uint8Array(size + 1))).toThrow(/ESPIPE/);
    expect(b.pending).toBe(1);
  });

  it('HostProcess.readInto reaches the file through its readInto, or copies what read() returns, with read()\'s errors', () => {
    const f = mockFixture();
    const memfd = f.host.process.memfd(4096);
    f.host.process.write(memfd, new Uint8Array([1, 2, 3, 4, 5]));
    f.host.process.ftruncate(memfd, 5);
    const fq = f.fd.fault.alloc();
    const buf = new Uint8Array(40).fill(9);
    expect(f.host.process.readInto(fq.fd, buf)).toBe(0);
    expect(code(() => f.host.process.readInto(fq.fd, new Uint8Array(39)))).toBe('ESPIPE');
    expect(code(() => f.host.process.readInto(999, buf))).toBe('EBADF');
    expect(code(() => f.host.process.readInto(fq.fd, [] as unknown as Uint8Array))).toBe('EINVAL');
    // A memfd has no readInto: read() from the file position, copied.
    const pos = f.host.process.file(memfd) as unknown as { position: number };
    pos.position = 0;
    expect(f.host.process.readInto(memfd, buf)).toBe(5);
    expect([...buf.subarray(0, 6)]).toEqual([1, 2, 3, 4, 5, 9]);
  });
});

describe('the FAULT queue of groups waiting to be read', () => {
  it('keeps whole groups in order through growth and wrap-around, and autoRespond keeps the order of those it leaves', async () => {
    const { FaultQueue } = await import('./eventq.js');
    const { iommu_hwpt_pgfault } = await import('../uapi/iommufd.js');
    const size = iommu_hwpt_pgfault.size;
    const answered: number[] = [];
    const group = (n: number, count: number) => ({
      devId: n % 3,
      pasid: -1,
      handle: { idev: {}, pasid: -1, hwpt: {} },
      count,
      fault: (i: number) => ({ pasid: -1, grpid: n & 0x1ff, perm: 1, addr: BigInt(n * 16 + i) * 4096n }) as never,
      respond: () => void answered.push(n),
      cookie: 0,
    });
    const q = new FaultQueue();
    // The model of the queue: group numbers, oldest first.
    const model: number[] = [];
    const counts = new Map<number, number>();
    let next = 0;
    const add = (k: number) => {
      for (let i = 0; i < k; i++, next++) {
        const count = 1 + (next % 3);
        counts.set(next, count);
        q.addGroup(group(next, count));
        model.push(next);
      }
    };
    /** Reads with room for `records`: the whole groups that fit, from the oldest. */
    const read = (records: number) => {
      const buf = new Uint8Array(records * size);
      const bytes = q.readInto(buf);
      let want = 0;
      const taken: number[] = [];
      while (model.length > 0 && want + counts.get(model[0])! <= records) {
        want += counts.get(model[0])!;
        taken.push(model.shift()!);
      }
      expect(bytes).toBe(want * size);
      const got: number[] = [];
      for (let off = 0; off < bytes; off += size) got.push(Number(iommu_hwpt_pgfault.decode(buf, off).addr / 4096n) >> 4);
      expect([...new Set(got)]).toEqual(taken);
      expect(q.pending).toBe(model.length);
      readSoFar.push(...taken);
    };
    const readSoFar: number[] = [];
    // Past the first capacity (16), then reads and adds that wrap the ring around while it grows again.
    add(20);
    read(7);
    add(30);
    for (let i = 0; i < 12; i++) {
      read(5);
      add(3);
    }
    // autoRespond answers the matching groups once, the queued ones then the read ones (in cookie order, which
    // is the order they were read in: no cookie was freed), and leaves the others queued in order.
    const before = [...model];
    const matching = [...before, ...readSoFar].filter((n) => n % 3 === 0);
    expect(q.autoRespond((g) => g.devId === 0)).toBe(matching.length);
    expect(answered).toEqual(matching);
    model.splice(0, model.length, ...before.filter((n) => n % 3 !== 0));
    expect(q.pending).toBe(model.length);
    add(40);
    while (model.length > 0) read(8);
    expect(q.readInto(new Uint8Array(size))).toBe(0);
  });

  it('the file table answers EBADF for anything that is not an open fd, and finds a reused fd number\'s new file', () => {
    const f = mockFixture();
    const p = f.host.process;
    const fq = f.fd.fault.alloc();
    for (const fd of [-1, 0, 1, 2, 1.5, NaN, Infinity, 2 ** 32 + fq.fd, 2 ** 31, '3' as unknown as number, fq.fd + 100]) {
      expect(code(() => p.poll(fd)), String(fd)).toBe('EBADF');
      expect(code(() => p.readInto(fd, new Uint8Array(40))), String(fd)).toBe('EBADF');
      expect(code(() => p.write(fd, new Uint8Array(8))), String(fd)).toBe('EBADF');
    }
    const memfd = p.memfd(4096);
    p.close(fq.fd);
    expect(code(() => p.poll(fq.fd))).toBe('EBADF');
    // The lowest free number again: the new file, not the closed queue.
    const again = p.memfd(4096);
    expect(again).toBe(fq.fd);
    expect(p.write(again, new Uint8Array([1, 2, 3]))).toBe(3);
    expect(p.poll(memfd)).toBe(p.poll(again));
    // A fork shares the open files under the same numbers.
    const child = p.fork();
    expect(child.write(again, new Uint8Array([4]))).toBe(1);
    child.close(again);
    expect(code(() => child.poll(again))).toBe('EBADF');
    expect(p.write(again, new Uint8Array([5]))).toBe(1);
  });

  it('read(2), write(2) and poll(2) check in order: EBADF, then EINVAL for the file, then EINVAL for the buffer', () => {
    const f = mockFixture();
    const p = f.host.process;
    // A file with neither read nor write nor poll.
    const opaque = p.installFile({ kind: 'opaque', release: () => {} });
    const notBytes = [] as unknown as Uint8Array;
    expect(code(() => p.readInto(opaque + 100, notBytes))).toBe('EBADF');
    expect(() => p.readInto(opaque, notBytes)).toThrow(/opaque is not readable/);
    expect(code(() => p.readInto(opaque, new Uint8Array(40)))).toBe('EINVAL');
    expect(() => p.write(opaque, new Uint8Array(8))).toThrow(/opaque is not writable/);
    expect(p.poll(opaque)).toBe(5);
    // The FAULT fd's file: its kind, its ops, and the buffer checked after the file.
    const fq = f.fd.fault.alloc();
    expect(p.file(fq.fd)?.kind).toBe('[iommufd-pgfault]');
    expect(p.poll(fq.fd)).toBe(4);
    expect(() => p.readInto(fq.fd, notBytes)).toThrow(/must be a Uint8Array/);
    expect(p.read(fq.fd, 40)).toEqual(new Uint8Array(0));
    expect(code(() => p.write(fq.fd, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0])))).toBe('EINVAL');
    expect(code(() => p.write(fq.fd, new Uint8Array(3)))).toBe('ESPIPE');
  });
});

describe('read(2) of groups held in numbers (the pipeline\'s pooled groups)', () => {
  it('writes the same records by words into a reused aligned buffer as by bytes into an unaligned one and as read() returns', async () => {
    const { FaultQueue } = await import('./eventq.js');
    const { iommu_hwpt_pgfault } = await import('../uapi/iommufd.js');
    const size = iommu_hwpt_pgfault.size;
    let x = 0x1234567;
    const next = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    const group = (n: number) => {
      const req = { rid: n, pasid: n % 3 === 0 ? -1 : next() & 0xfffff, addrLo: next() & ~0xfff, addrHi: next(), perm: next() & 15, grpid: next() & 0x1ff, last: true, reason: 0, reasonText: '', stage2: false };
      return {
        devId: next(),
        pasid: req.pasid,
        handle: { idev: {}, pasid: req.pasid, hwpt: {} },
        count: 1,
        fault: () => {
          throw new Error('read(2) takes the numbers');
        },
        request: () => req,
        respond: () => undefined,
        cookie: 0,
      };
    };
    const queues = [new FaultQueue(), new FaultQueue(), new FaultQueue()];
    const reused = new Uint8Array(2 * size);
    const unalignedBase = new Uint8Array(2 * size + 3);
    for (let round = 0; round < 50; round++) {
      // Two groups per round, the same numbers in each queue.
      for (let k = 0; k < 2; k++) {
        const g = group(round * 2 + k);
        for (const q of queues) q.addGroup({ ...g });
      }
      const want = queues[0].read(2 * size);
      expect(want.length).toBe(2 * size);
      reused.fill(0xee);
      expect(queues[1].readInto(reused)).toBe(2 * size);
      expect([...reused], `round ${round}`).toEqual([...want]);
      const unaligned = unalignedBase.subarray(1 + (round % 3), 1 + (round % 3) + 2 * size).fill(0xee);
      expect(queues[2].readInto(unaligned)).toBe(2 * size);
      expect([...unaligned], `round ${round}`).toEqual([...want]);
      for (const q of queues) q.write(successResponses(1, 2));
    }
    // A buffer the queue wrote by words, then detached: nothing to read into, the group stays queued.
    const gone = new Uint8Array(size);
    const q = queues[1];
    q.addGroup(group(1000));
    expect(q.readInto(gone)).toBe(size);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    q.addGroup(group(1001));
    expect(q.readInto(gone)).toBe(0);
    expect(q.pending).toBe(1);
    const fresh = new Uint8Array(size);
    expect(q.readInto(fresh)).toBe(size);
    expect(iommu_hwpt_pgfault.decode(fresh, 0).dev_id).toBeGreaterThanOrEqual(0);
  });
});

/** struct iommu_hwpt_page_response SUCCESS for each cookie, as one write(). */
function successResponses(...cookies: number[]): Uint8Array {
  const b = new Uint8Array(8 * cookies.length);
  cookies.forEach((c, i) => new DataView(b.buffer).setUint32(i * 8, c, true));
  return b;
}

describe('write(2) of responses by words (a reused aligned buffer) and by bytes (an unaligned one)', () => {
  it('answers the same groups with the same counts and errnos, in iommufd_fault_fops_write\'s order', async () => {
    const { FaultQueue } = await import('./eventq.js');
    const { Errno } = await import('../uapi/errno.js');
    const answered: Array<Array<[number, number]>> = [[], []];
    const queues = [new FaultQueue(), new FaultQueue()];
    const groupOf = (q: number, id: number) => ({
      devId: 1,
      pasid: -1,
      handle: { idev: {}, pasid: -1, hwpt: {} },
      count: 1,
      fault: () => {
        throw new Error('not read here');
      },
      request: () => ({ rid: id, pasid: -1, addrLo: id * 4096, addrHi: 0, perm: 1, grpid: 1, last: true, reason: 0, reasonText: '', stage2: false }),
      respond: (code: number) => void answered[q].push([id, code]),
      cookie: 0,
    });
    const reused = new Uint8Array(64);
    const base = new Uint8Array(64 + 3);
    /** [cookie, code] pairs as one write() into each queue: the buffer of queue 0 is `reused`, of queue 1 unaligned. */
    const write = (q: number, pairs: ReadonlyArray<readonly [number, number]>, extra = 0): number | string => {
      const len = pairs.length * 8 + extra;
      const b = q === 0 ? reused.subarray(0, len) : base.subarray(1 + (len % 3), 1 + (len % 3) + len);
      b.fill(0xcd);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      pairs.forEach(([cookie, code], i) => {
        dv.setUint32(i * 8, cookie, true);
        dv.setUint32(i * 8 + 4, code, true);
      });
      try {
        return queues[q].write(b);
      } catch (e) {
        if (e instanceof Errno) return e.code;
        throw e;
      }
    };
    for (let q = 0; q < 2; q++) {
      for (let id = 1; id <= 6; id++) queues[q].addGroup(groupOf(q, id));
      // Cookies 1 to 6, in order.
      expect(queues[q].readInto(new Uint8Array(6 * 40))).toBe(6 * 40);
    }
    const steps: Array<[ReadonlyArray<readonly [number, number]>, number?]> = [
      [[], 4], // not whole responses: ESPIPE
      [[[1, 0]], 5],
      [[[1, 2]]], // a code other than SUCCESS or INVALID: EINVAL, nothing taken
      [[[1, 0xffffffff]]],
      [[[0, 0]]], // cookie 0 is never given: EINVAL
      [[[0xffffffff, 1]]],
      [[[7, 0]]],
      [[[1, 0], [2, 1]]], // both answered
      [[[3, 1], [3, 0]]], // the second names an answered cookie: 8 bytes
      [[[4, 0], [5, 3], [6, 0]]], // a bad code after a good one: 8 bytes
      [[[5, 1], [99, 0]]],
      [[[6, 0]]],
      [[[6, 0]]],
    ];
    const results = steps.map(([pairs, extra]) => [write(0, pairs, extra), write(1, pairs, extra)]);
    for (const [a, b] of results) expect(a).toEqual(b);
    expect(results.map((r) => r[0])).toEqual(['ESPIPE', 'ESPIPE', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 16, 8, 8, 8, 8, 'EINVAL']);
    expect(answered[0]).toEqual([[1, 0], [2, 1], [3, 1], [4, 0], [5, 1], [6, 0]]);
    expect(answered[1]).toEqual(answered[0]);
    for (const q of queues) expect(q.awaitingResponse).toBe(0);
  });

  it('the literal layout of the hot paths is struct iommu_hwpt_pgfault\'s and struct iommu_hwpt_page_response\'s', async () => {
    const U = await import('../uapi/iommufd.js');
    const { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } = await import('../driver/pgtable.js');
    const { pgfaultPerm } = await import('./eventq.js');
    // eventq.ts writes records as words 0-9 and reads responses as words 0-1 (module constants cost a load and a hole check).
    const pf = U.iommu_hwpt_pgfault;
    expect([pf.size, ...(['flags', 'dev_id', 'pasid', 'grpid', 'perm', '__reserved', 'addr', 'length', 'cookie'] as const).map((k) => pf.offsetof(k) / 4)]).toEqual([40, 0, 1, 2, 3, 4, 5, 6, 8, 9]);
    expect([U.iommu_hwpt_page_response.size, U.iommu_hwpt_page_response.offsetof('cookie'), U.iommu_hwpt_page_response.offsetof('code')]).toEqual([8, 0, 4]);
    expect([U.IOMMU_PGFAULT_FLAGS_PASID_VALID, U.IOMMU_PGFAULT_FLAGS_LAST_PAGE, U.IOMMUFD_PAGE_RESP_SUCCESS, U.IOMMUFD_PAGE_RESP_INVALID]).toEqual([1, 2, 0, 1]);
    // PERM_* and IOMMU_PGFAULT_PERM_* name each permission by the same bit, so pgfaultPerm masks.
    expect([PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV]).toEqual([U.IOMMU_PGFAULT_PERM_READ, U.IOMMU_PGFAULT_PERM_WRITE, U.IOMMU_PGFAULT_PERM_EXEC, U.IOMMU_PGFAULT_PERM_PRIV]);
    expect([PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV]).toEqual([1, 2, 4, 8]);
    for (let p = 0; p < 64; p++) expect(pgfaultPerm(p)).toBe(p & (PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV));
  });
});
