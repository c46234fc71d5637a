import { describe, expect, it } from 'vitest';
import { IommufdError } from '../uapi/errno.js';
import * as U from '../uapi/iommufd.js';
import { POLLIN } from '../memory/process.js';
import { DmaFault } from './device.js';
import { mapPattern, mockFixture } from '../__tests__/mock-host.js';

/** The mock PRI device attached to an IOAS that maps one pattern page (0x5a) at 0x100000. */
function attachedWithOnePage() {
  const f = mockFixture();
  const dev = f.host.device('0000:00:01.0');
  dev.bindIommufd(f.fd);
  const ioas = f.fd.ioas.alloc();
  mapPattern(f, ioas, 0x100000n, 1);
  dev.attachPt(ioas);
  return { f, dev, ioas };
}

describe('PciDevice DMA arguments (regressions found by the uAPI fuzz)', () => {
  it('refuses a transaction the bus cannot carry with EINVAL instead of a RangeError', async () => {
    const { dev } = attachedWithOnePage();
    const einval = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(IommufdError);
      expect((e as IommufdError).code).toBe('EINVAL');
    };
    await einval(dev.dma.read(0x100000n, -1));
    await einval(dev.dma.read(0x100000n, 1.5));
    await einval(dev.dma.read(-4096n, 8));
    await einval(dev.dma.read(1n << 64n, 8));
    await einval(dev.dma.read(0x100000n, 8, { pasid: 1.5 }));
    await einval(dev.dma.write(0x100000n, new Uint8Array(4), { pasid: 1 << 20 }));
    // Valid arguments still work, and an unmapped IOVA is still a DmaFault.
    expect((await dev.dma.read(0x100000n, 4)).every((b) => b === 0x5a)).toBe(true);
    await expect(dev.dma.read(0x200000n, 4)).rejects.toBeInstanceOf(DmaFault);
  });
});

describe('PciDevice DMA at an IOVA given as a number', () => {
  it('moves the same bytes as at the bigint IOVA, and refuses what is not a non-negative safe integer with EINVAL', async () => {
    const { f, dev, ioas } = attachedWithOnePage();
    mapPattern(f, ioas, 0x101000n, 2);
    const data = new Uint8Array(5000).map((_, i) => i * 3);
    await dev.dma.write(0x100321, data);
    expect(await dev.dma.read(0x100321n, 5000)).toEqual(data);
    expect(await dev.dma.read(0x100321, 5000)).toEqual(data);
    const out = new Uint8Array(5000);
    expect(dev.dma.readSync(0x100321, out)).toBe(5000);
    expect(out).toEqual(data);
    expect(dev.dma.writeSync(0x102ffe, new Uint8Array([1, 2]))).toBe(2);
    expect([...(await dev.dma.read(0x102ffen, 2))]).toEqual([1, 2]);
    // A fault names the same address either way.
    const faultAt = async (iova: bigint | number) => ((await dev.dma.read(iova, 4).catch((e: unknown) => e)) as DmaFault).fault.addr;
    expect(await faultAt(0x200010)).toBe(await faultAt(0x200010n));
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = await dev.dma.read(bad, 4).catch((x: unknown) => x);
      expect(e, String(bad)).toBeInstanceOf(IommufdError);
      expect((e as IommufdError).code).toBe('EINVAL');
      expect(() => dev.dma.readSync(bad, new Uint8Array(4))).toThrow(IommufdError);
    }
  });
});

describe('PciDevice DMA at number IOVAs past 2^31 (heap numbers to V8)', () => {
  it('splits each into the page and offset of the bigint IOVA: across 2^31 and 2^32, at the top of the aperture, page ends, -0 as 0', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    // Two pages on each side of 2^31 and 2^32, and the top two pages of the mock's 39-bit aperture.
    for (const base of [0x7fff_e000n, 0xffff_e000n]) mapPattern(f, ioas, base, 4);
    mapPattern(f, ioas, (1n << 39n) - 0x2000n, 2);
    mapPattern(f, ioas, 0n, 1);
    dev.attachPt(ioas);
    const cases = [0x7fff_fffc, 0x8000_0000, 0x8000_0ffd, 0xffff_fff9, 0x1_0000_0000, 0x1_0000_1000 - 3, 2 ** 39 - 0x1000 - 5, 2 ** 39 - 9];
    for (const [i, iova] of cases.entries()) {
      const data = new Uint8Array(9).map((_, j) => i * 16 + j);
      expect(dev.dma.writeSync(iova, data), `0x${iova.toString(16)}`).toBe(9);
      expect(await dev.dma.read(BigInt(iova), 9), `0x${iova.toString(16)}`).toEqual(data);
      const out = new Uint8Array(9);
      expect(dev.dma.readSync(iova, out)).toBe(9);
      expect(out).toEqual(data);
    }
    // -0 is the IOVA 0 (a non-negative safe integer, as before).
    expect(dev.dma.writeSync(-0, new Uint8Array([7]))).toBe(1);
    expect([...(await dev.dma.read(0n, 1))]).toEqual([7]);
    // A fault names the address the bigint would: past 2^31, around 2^43 (where the page number leaves the
    // int32s) and past 2^52.
    const faultAt = async (iova: bigint | number) => ((await dev.dma.read(iova, 4).catch((e: unknown) => e)) as DmaFault).fault.addr;
    for (const iova of [0x9000_0123, 2 ** 43 - 4096 + 5, 2 ** 43 + 7, 2 ** 52 + 4096 * 3 + 5]) {
      const addr = await faultAt(iova);
      expect(addr).toBe(await faultAt(BigInt(iova)));
      // The page request's address: the page of the IOVA.
      expect(addr).toBe(BigInt(iova) & ~0xfffn);
    }
  });
});

describe('PciDevice synchronous DMA (readSync / writeSync)', () => {
  it('moves bytes across pages into and out of the caller buffer, as the async path does', async () => {
    const { f, dev, ioas } = attachedWithOnePage();
    mapPattern(f, ioas, 0x101000n, 2);
    const data = new Uint8Array(6000).map((_, i) => i * 7);
    // Unaligned start, a whole page in the middle, a partial last page.
    expect(dev.dma.writeSync(0x100123n, data)).toBe(6000);
    const out = new Uint8Array(6000);
    expect(dev.dma.readSync(0x100123n, out)).toBe(6000);
    expect(out).toEqual(data);
    expect(await dev.dma.read(0x100123n, 6000)).toEqual(data);
    // A whole aligned page through the cached frame view, then the bytes around it are untouched.
    const page = new Uint8Array(4096).fill(0xc3);
    expect(dev.dma.writeSync(0x102000n, page)).toBe(4096);
    const back = new Uint8Array(4096);
    expect(dev.dma.readSync(0x102000n, back)).toBe(4096);
    expect(back.every((b) => b === 0xc3)).toBe(true);
    expect((await dev.dma.read(0x101fffn, 1))[0]).toBe(0x5a);
  });

  it('reads into the caller buffer with `into` and refuses one of the wrong length', async () => {
    const { f, dev, ioas } = attachedWithOnePage();
    mapPattern(f, ioas, 0x101000n, 1);
    const buf = new Uint8Array(4100);
    const opts = { into: buf };
    const got = await dev.dma.read(0x100ffcn, 4100, opts);
    expect(got).toBe(buf);
    expect(buf.every((b) => b === 0x5a)).toBe(true);
    for (const into of [new Uint8Array(4), new Uint8Array(4101)]) {
      await expect(dev.dma.read(0x100000n, 4100, { into })).rejects.toMatchObject({ code: 'EINVAL' });
    }
    // A fault still rejects; the bytes before the faulting page are in the buffer.
    const two = new Uint8Array(8192);
    await expect(dev.dma.read(0x101000n, 8192, { into: two })).rejects.toBeInstanceOf(DmaFault);
    expect(two[4095]).toBe(0x5a);
  });

  it('reports and throws an unrecoverable fault like read(), after moving the pages before it', () => {
    const { dev } = attachedWithOnePage();
    const out = new Uint8Array(8192);
    expect(() => dev.dma.readSync(0x100000n, out)).toThrow(DmaFault);
    expect(out[0]).toBe(0x5a);
    expect(out[4096]).toBe(0);
    expect(() => dev.dma.readSync(-1n, out)).toThrow(IommufdError);
  });

  it('stops short at a recoverable fault without sending a page request; read() then resolves it', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const fault = f.fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
    const hwpt = f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fault.out_fault_id }).out_hwpt_id;
    dev.attachPt(hwpt);
    mapPattern(f, ioas, 0x100000n, 1);
    const out = new Uint8Array(8192);
    expect(dev.dma.readSync(0x100000n, out)).toBe(4096);
    await new Promise((r) => setTimeout(r, 0));
    expect(f.host.process.poll(fault.out_fault_fd) & POLLIN).toBe(0);
    // The async read sends the request; the handler maps the page and answers SUCCESS.
    const rest = dev.dma.read(0x101000n, 4096);
    while ((f.host.process.poll(fault.out_fault_fd) & POLLIN) === 0) await new Promise((r) => setTimeout(r, 0));
    const rec = U.iommu_hwpt_pgfault.decode(f.host.process.read(fault.out_fault_fd, U.iommu_hwpt_pgfault.size), 0);
    mapPattern(f, ioas, 0x101000n, 1, 0x77);
    f.host.process.write(fault.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }));
    expect((await rest).every((b) => b === 0x77)).toBe(true);
  });
});

/** The mock PRI device attached to a HWPT with a fault queue on a fresh IOAS; `serve` answers its page requests. */
function faultingDevice() {
  const f = mockFixture();
  const dev = f.host.device('0000:00:01.0');
  const devId = dev.bindIommufd(f.fd);
  const ioas = f.fd.ioas.alloc();
  const fault = f.fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
  dev.attachPt(f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fault.out_fault_id }).out_hwpt_id);
  const fd = fault.out_fault_fd;
  /** Waits for the next page request, calls `handle` with its address and answers with the code it returns. */
  const serve = async (handle: (addr: bigint) => number): Promise<bigint> => {
    while ((f.host.process.poll(fd) & POLLIN) === 0) await new Promise((r) => setTimeout(r, 0));
    const rec = U.iommu_hwpt_pgfault.decode(f.host.process.read(fd, U.iommu_hwpt_pgfault.size), 0);
    f.host.process.write(fd, U.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: handle(rec.addr) }));
    return rec.addr;
  };
  return { f, dev, ioas, serve };
}

describe('PciDevice DMA across page requests', () => {
  it('moves the pages before a fault, retries the faulting page after each response and goes on from there', async () => {
    const { f, dev, ioas, serve } = faultingDevice();
    mapPattern(f, ioas, 0x100000n, 1, 0x11);
    const out = new Uint8Array(3 * 4096 - 16);
    // From byte 16 of the first page: the second and the third page fault one after the other.
    const read = dev.dma.read(0x100010n, out.length, { into: out });
    expect(await serve((addr) => (mapPattern(f, ioas, addr, 1, 0x22), U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe(0x101000n);
    expect(await serve((addr) => (mapPattern(f, ioas, addr, 1, 0x33), U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe(0x102000n);
    expect(await read).toBe(out);
    expect(out[0]).toBe(0x11);
    expect(out[4096 - 17]).toBe(0x11);
    expect(out[4096 - 16]).toBe(0x22);
    expect(out[2 * 4096 - 17]).toBe(0x22);
    expect(out[2 * 4096 - 16]).toBe(0x33);
    expect(out[out.length - 1]).toBe(0x33);
  });

  it('writes across a faulting page the same way', async () => {
    const { f, dev, ioas, serve } = faultingDevice();
    mapPattern(f, ioas, 0x100000n, 1, 0);
    const data = new Uint8Array(8192).map((_, i) => i & 0xff);
    const write = dev.dma.write(0x100000n, data);
    expect(await serve((addr) => (mapPattern(f, ioas, addr, 1, 0), U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe(0x101000n);
    await write;
    const back = new Uint8Array(8192);
    expect(dev.dma.readSync(0x100000n, back)).toBe(8192);
    expect(back).toEqual(data);
  });

  it('gives up after maxRetries successful responses that leave the page unmapped, counting again after a page moved', async () => {
    const { f, dev, ioas, serve } = faultingDevice();
    const answered: bigint[] = [];
    const success = (addr: bigint) => (answered.push(addr), U.IOMMUFD_PAGE_RESP_SUCCESS);
    // Two retries allowed: the page request, its retry's page request, and the second retry fails for good.
    const read = dev.dma.read(0x200000n, 8, { maxRetries: 2 }).catch((e: unknown) => e);
    for (let i = 0; i < 2; i++) await serve(success);
    const err = await read;
    expect(err).toBeInstanceOf(DmaFault);
    expect((err as DmaFault).outcome).toBe('reported');
    expect((err as DmaFault).fault.addr).toBe(0x200000n);
    expect(answered).toEqual([0x200000n, 0x200000n]);
    // The first page is mapped by the second answer; the next page has its own two retries again.
    answered.length = 0;
    let n = 0;
    const two = dev.dma.read(0x300000n, 8192, { maxRetries: 2 }).catch((e: unknown) => e);
    for (let i = 0; i < 4; i++) {
      await serve((addr) => {
        if (++n === 2) mapPattern(f, ioas, addr, 1);
        return success(addr);
      });
    }
    expect(await two).toBeInstanceOf(DmaFault);
    expect(answered).toEqual([0x300000n, 0x300000n, 0x301000n, 0x301000n]);
    expect(f.host.outstandingFaults).toBe(0);
  });

  it('recovers a RID fault as the binding attached now says: reported without a fault queue, a page request with one, after every attach', async () => {
    const { f, dev, ioas, serve } = faultingDevice();
    const hwpt = dev.attachedPt();
    const reported = async () => {
      const err = await dev.dma.read(0x200000n, 8).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DmaFault);
      expect((err as DmaFault).outcome).toBe('reported');
    };
    // The IOAS's automatic domain has no fault queue: the fault is reported at once, no page request.
    dev.attachPt(ioas);
    await reported();
    // Back on the HWPT with the fault queue: a page request, answered SUCCESS, and the read completes.
    dev.attachPt(hwpt);
    const read = dev.dma.read(0x200000n, 8);
    expect(await serve((addr) => (mapPattern(f, ioas, addr, 1, 0x44), U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe(0x200000n);
    expect((await read)[0]).toBe(0x44);
    // Unbound, bound again and attached to the IOAS: reported again.
    dev.unbind();
    dev.bindIommufd(f.fd);
    dev.attachPt(ioas);
    const err = await dev.dma.read(0x300000n, 8).catch((e: unknown) => e);
    expect((err as DmaFault).outcome).toBe('reported');
    expect(f.host.outstandingFaults).toBe(0);
  });

  it('rejects with the response when a page request is answered INVALID, after moving the pages before it', async () => {
    const { f, dev, ioas, serve } = faultingDevice();
    mapPattern(f, ioas, 0x100000n, 1);
    const out = new Uint8Array(8192);
    const read = dev.dma.read(0x100000n, 8192, { into: out }).catch((e: unknown) => e);
    await serve(() => U.IOMMUFD_PAGE_RESP_INVALID);
    const err = await read;
    expect(err).toBeInstanceOf(DmaFault);
    expect((err as DmaFault).outcome).toBe('page-response');
    expect((err as DmaFault).fault.addr).toBe(0x101000n);
    expect(out[0]).toBe(0x5a);
    expect(out[4096]).toBe(0);
  });
});

describe('what the public Host and PciDevice expose instead of the object graph', () => {
  it('devId and groupId: the dev_id while bound (null otherwise) and the iommu group number', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:03.1');
    expect(dev.devId).toBeNull();
    expect(dev.groupId).toBe(3);
    const id = dev.bindIommufd(f.fd);
    expect(dev.devId).toBe(id);
    expect(dev.boundIommufd).toBe(f.fd);
    dev.unbind();
    expect(dev.devId).toBeNull();
    expect(dev.boundIommufd).toBeNull();
  });

  it('units: one HostUnit per profile unit, in profile order, the one a device sits behind at its unitIndex', () => {
    const { host } = mockFixture();
    expect(host.units.map((u) => [u.index, u.id, u.vendor])).toEqual([
      [0, 'mock0', 'mock'],
      [1, 'mock1', 'mock'],
    ]);
    const dev = host.device('0000:80:00.0');
    expect(host.units[dev.unitIndex].id).toBe('mock1');
    expect(host.units[dev.unitIndex].ops).toBe(dev.unitOps);
    // The mock devices are the selftest's: exempt from the MSI check, but the unit still reports the fact.
    expect(typeof host.units[0].msiIsolated).toBe('boolean');
  });

  it('faultStats and outstandingFaults: a page request answered INVALID is counted and leaves nothing waiting', async () => {
    const { f, dev, ioas } = attachedWithOnePage();
    const queue = f.fd.fault.alloc();
    dev.attachPt(f.fd.hwpt.alloc({ devId: dev.devId!, ptId: ioas, faultId: queue.id }));
    const before = { ...f.host.faultStats };
    const pending = dev.dma.read(0x300000n, 8).then(
      () => null,
      (e: unknown) => e,
    );
    await Promise.resolve();
    expect(f.host.faultStats.pageRequests).toBe(before.pageRequests + 1);
    expect(f.host.outstandingFaults).toBe(1);
    dev.detachPt();
    expect(await pending).toBeInstanceOf(DmaFault);
    expect(f.host.outstandingFaults).toBe(0);
    expect(f.host.faultStats.autoResponses).toBe(before.autoResponses + 1);
  });
});
