import { errCode } from '../__tests__/helpers.js';
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { ERRNO } from '../uapi/errno.js';
import { createHost, HostProfileError } from '../host/host.js';
import { DmaFault } from '../host/device.js';
import { mockPlugin, IOMMU_HW_INFO_TYPE_MOCK, IOMMU_HWPT_DATA_MOCK, IOMMU_VIOMMU_TYPE_MOCK, IOMMU_VEVENTQ_TYPE_MOCK, IOMMU_HWPT_INVALIDATE_DATA_MOCK, mockWriteGuestTable } from '../testing/index.js';
import { rawIoctl } from '../__tests__/helpers.js';
import { mapPattern, mockFixture, mockProfile } from '../__tests__/mock-host.js';
import { IOMMU_READ, IOMMU_WRITE, PERM_READ } from '../driver/pgtable.js';

const code = errCode;

describe('host model', () => {
  it('builds units and devices from a profile and rejects bad profiles precisely', () => {
    const f = mockFixture();
    expect(f.host.units.map((u) => u.id)).toEqual(['mock0', 'mock1']);
    expect(f.host.devices.get('0000:00:01.0')?.info.pri).toBe(true);
    expect(() => createHost({ profile: mockProfile() })).toThrow(/units\[0\]\.vendor: no plugin for vendor 'mock'/);
    expect(() => createHost({ plugins: [mockPlugin()], profile: { name: 'x', units: [{ id: 'm', vendor: 'mock', registers: { pasidBits: 'x' } }], devices: [] } })).toThrow(HostProfileError);
    expect(() => createHost({ plugins: [mockPlugin()], profile: { name: 'x', units: [{ id: 'm', vendor: 'mock', registers: {} }], devices: [{ bdf: '00:02.0', unit: 'm' }] } })).toThrow(/devices\[0\]\.bdf/);
    expect(() => createHost({ plugins: [mockPlugin()], profile: { name: 'x', units: [], devices: [{ bdf: '0000:00:02.0', unit: 'nope' }] } })).toThrow(/devices\[0\]\.unit: no unit 'nope'/);
    expect(() => createHost({ plugins: [mockPlugin(), mockPlugin()] })).toThrow(/already loaded/);
  });
});

describe('bind / attach / detach', () => {
  it('binds once (EBUSY twice), attaches to an IOAS with an automatic domain, and DMA reaches the mapped memory', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    expect(devId).toBeGreaterThan(0);
    expect(code(() => dev.bindIommufd(f.fd))).toBe('EBUSY');
    expect(code(() => f.fd.destroy(devId))).toBe('EBUSY');
    const ioas = f.fd.ioas.alloc();
    const va = mapPattern(f, ioas, 0x100000n, 4);
    const hwptId = dev.attachPt(ioas);
    expect(f.fd.ctx.objects.peek(hwptId)?.type).toBe(2);
    expect((await dev.dma.read(0x100000n, 16)).every((b) => b === 0x5a)).toBe(true);
    await dev.dma.write(0x101000n, new Uint8Array([1, 2, 3]));
    expect([...f.host.process.peek(va + 0x1000n, 3)]).toEqual([1, 2, 3]);
    // Mapping after attach mirrors into the domain; unmap removes it before returning.
    mapPattern(f, ioas, 0x200000n, 1, 0x77);
    expect((await dev.dma.read(0x200000n, 1))[0]).toBe(0x77);
    f.fd.ioas.unmap(ioas, 0x200000n, 4096n);
    await expect(dev.dma.read(0x200000n, 1)).rejects.toBeInstanceOf(DmaFault);
    // Attaching raised the IOAS alignment to the domain's smallest page.
    expect(f.fd.ioas.iovaRanges(ioas).alignment).toBe(4096n);
    // The device's MSI window is reserved in the IOAS.
    expect(code(() => f.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0xfee00000n }))).toBe('EINVAL');
    dev.detachPt();
    expect(f.fd.ctx.objects.peek(hwptId)).toBeUndefined();
    await expect(dev.dma.read(0x100000n, 1)).rejects.toBeInstanceOf(DmaFault);
  });

  it('reuses a compatible automatic domain and enforces one HWPT per group', () => {
    const f = mockFixture();
    const a = f.host.device('0000:00:03.0');
    const b = f.host.device('0000:00:03.1');
    const c = f.host.device('0000:00:02.0');
    for (const d of [a, b, c]) d.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const ioas2 = f.fd.ioas.alloc();
    const h = a.attachPt(ioas);
    expect(c.attachPt(ioas)).toBe(h);
    expect(code(() => b.attachPt(ioas2))).toBe('EINVAL');
    expect(b.attachPt(ioas)).toBe(h);
    // A device on another unit of the same vendor still shares the automatic domain here (mock allows it).
    const far = f.host.device('0000:80:00.0');
    far.bindIommufd(f.fd);
    expect(far.attachPt(ioas)).toBe(h);
  });

  it('refuses reserved-region conflicts with EADDRINUSE and leaves the IOAS unchanged', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    mapPattern(f, ioas, 0xfee00000n, 1);
    expect(code(() => dev.attachPt(ioas))).toBe('EADDRINUSE');
    expect(f.fd.ctx.objects.count).toBe(2);
    expect(f.fd.ioas.iovaRanges(ioas).alignment).toBe(1n);
  });

  it('replaces atomically and frees the old automatic domain', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const h1 = dev.attachPt(ioas);
    const [rc, out] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev.idev!.id, pt_id: ioas });
    expect(rc).toBe(0);
    expect(dev.attachPt(out.out_hwpt_id)).toBe(out.out_hwpt_id);
    expect(f.fd.ctx.objects.peek(h1)).toBeUndefined();
    expect(code(() => f.fd.destroy(out.out_hwpt_id))).toBe('EBUSY');
    dev.detachPt();
    f.fd.destroy(out.out_hwpt_id);
  });

  it('applies the PASID rules', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const noPasid = f.host.device('0000:00:03.0');
    dev.bindIommufd(f.fd);
    noPasid.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    expect(code(() => dev.attachPt(ioas, { pasid: 5 }))).toBe('EINVAL');
    const alloc = (devId: number, flags: number) => rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags });
    const [rc, p] = alloc(dev.idev!.id, U.IOMMU_HWPT_ALLOC_PASID);
    expect(rc).toBe(0);
    const [, plain] = alloc(dev.idev!.id, 0);
    expect(code(() => dev.attachPt(plain.out_hwpt_id, { pasid: 5 }))).toBe('EINVAL');
    expect(dev.attachPt(p.out_hwpt_id, { pasid: 5 })).toBe(p.out_hwpt_id);
    expect(code(() => dev.attachPt(plain.out_hwpt_id))).toBe('EINVAL');
    expect(dev.attachPt(p.out_hwpt_id)).toBe(p.out_hwpt_id);
    expect(code(() => noPasid.attachPt(p.out_hwpt_id, { pasid: 1 }))).toBe('EINVAL');
    expect(code(() => dev.attachPt(p.out_hwpt_id, { pasid: 1 << 20 }))).toBe('EINVAL');
  });
});

describe('IOMMU_HWPT_ALLOC order of checks (hw_pagetable.c)', () => {
  // iommufd_hwpt_alloc: __reserved and data_type/data_len, then dev_id, then pt_id; the flag checks
  // live in the per-kind allocators; the driver copies the user data after those checks; fault_id is
  // looked up last, after the HWPT exists. __reserved2 is never checked.
  it('checks flags after the lookups, copies data after the parent checks, looks fault_id up last', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const A = (init: Partial<ReturnType<typeof U.iommu_hwpt_alloc.zero>>) => rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, ...init });
    expect(A({ flags: 1 << 4, dev_id: 999 })[0]).toBe(-ERRNO.ENOENT);
    expect(A({ flags: 1 << 4, pt_id: 999 })[0]).toBe(-ERRNO.EINVAL);
    const [, plain] = A({});
    // Not a nesting parent (EINVAL) wins over a data pointer that would fault.
    expect(A({ pt_id: plain.out_hwpt_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: 0x10n })[0]).toBe(-ERRNO.EINVAL);
    // Paging domains take no data: EOPNOTSUPP before the pointer is touched.
    expect(A({ data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: 0x10n })[0]).toBe(-ERRNO.EOPNOTSUPP);
    // A bad fault_id aborts the new HWPT: its id is free again and nothing else changed.
    const before = [...f.fd.ctx.objects.objects()].length;
    expect(A({ flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: 999 })[0]).toBe(-ERRNO.ENOENT);
    expect([...f.fd.ctx.objects.objects()].length).toBe(before);
    const [rc, next] = A({ __reserved2: 0xdead });
    expect(rc).toBe(0);
    expect(next.out_hwpt_id).toBe(plain.out_hwpt_id + 1);
  });
});

describe('IOMMU_HWPT_ALLOC errno table', () => {
  it('follows the kernel', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const weak = f.host.device('0000:80:00.0');
    const devId = dev.bindIommufd(f.fd);
    const weakId = weak.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const A = (init: Partial<ReturnType<typeof U.iommu_hwpt_alloc.zero>>) => rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, ...init });
    expect(A({ flags: 1 << 4 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(A({ pt_id: 999 })[0]).toBe(-ERRNO.EINVAL);
    expect(A({ dev_id: ioas })[0]).toBe(-ERRNO.ENOENT);
    expect(A({ pt_id: devId })[0]).toBe(-ERRNO.EINVAL);
    // iommufd_hwpt_paging_alloc refuses FAULT_ID_VALID | NEST_PARENT before fault_id is looked up.
    expect(A({ flags: U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_NEST_PARENT, fault_id: 0 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(A({ dev_id: weakId, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(A({ dev_id: weakId, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT })[0]).toBe(-ERRNO.EOPNOTSUPP);
    const [, parent] = A({ flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const [, plain] = A({});
    const data = f.host.process.mmap(4096);
    f.host.process.poke(data, new Uint8Array(16));
    const N = (pt: number, init: Partial<ReturnType<typeof U.iommu_hwpt_alloc.zero>> = {}) =>
      A({ pt_id: pt, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: data, ...init })[0];
    expect(N(plain.out_hwpt_id)).toBe(-ERRNO.EINVAL);
    expect(N(parent.out_hwpt_id, { flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT })).toBe(-ERRNO.EOPNOTSUPP);
    expect(N(parent.out_hwpt_id, { data_type: 77 })).toBe(-ERRNO.EOPNOTSUPP);
    expect(N(parent.out_hwpt_id, { data_uptr: 0x10n })).toBe(-ERRNO.EFAULT);
    expect(N(parent.out_hwpt_id)).toBe(0);
    // Nested on nested.
    const [, nested] = A({ pt_id: parent.out_hwpt_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: data });
    expect(N(nested.out_hwpt_id)).toBe(-ERRNO.EINVAL);
    // The parent and the IOAS are referenced.
    expect(code(() => f.fd.destroy(parent.out_hwpt_id))).toBe('EBUSY');
    expect(code(() => f.fd.destroy(ioas))).toBe('EBUSY');
  });
});

describe('IOMMU_GET_HW_INFO', () => {
  it('returns the vendor payload, capabilities and PASID width with the buffer rules', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const buf = f.host.process.mmap(4096);
    f.host.process.poke(buf, new Uint8Array(16).fill(0xff));
    const [rc, out] = rawIoctl(f.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, data_len: 16, data_uptr: buf });
    expect(rc).toBe(0);
    expect(out.data_type).toBe(IOMMU_HW_INFO_TYPE_MOCK);
    expect(out.data_len).toBe(8);
    expect(out.out_max_pasid_log2).toBe(20);
    expect(out.out_capabilities & U.IOMMU_HW_CAP_DIRTY_TRACKING).toBe(U.IOMMU_HW_CAP_DIRTY_TRACKING);
    expect(out.out_capabilities & U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED).toBe(0n);
    const bytes = f.host.process.peek(buf, 16);
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(0xdeadbeef);
    expect([...bytes.subarray(8)]).toEqual(new Array(8).fill(0));
    expect(rawIoctl(f.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, flags: 1, data_type: 5 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    const [rc0, out0] = rawIoctl(f.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId });
    expect(rc0).toBe(0);
    expect(out0.data_len).toBe(8);
  });
});

describe('nesting, invalidation and the IOTLB', () => {
  it('walks guest stage 1 through the parent, keeps stale entries until the guest invalidates', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    // Guest memory: 64 pages of GPA 0..; the guest's tables and data live in it.
    const gmemVa = f.host.process.mmap(64 * 4096);
    f.fd.ioas.map({ ioasId: ioas, userVa: gmemVa, length: 64n * 4096n, iova: 0n });
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    // The guest's view of its own memory: GPA page -> the host frame behind that user page.
    const gpaToHpa = (gpa: number) => {
      const out = new Float64Array(1);
      f.host.process.resolvePages(Number(gmemVa / 4096n) + gpa, 1, false, out);
      return out[0];
    };
    dev.attachPt(parent.out_hwpt_id);
    expect(gpaToHpa(3)).toBe(dev.translatePage(3, PERM_READ));
    let nextGuest = 1;
    const root = 0;
    mockWriteGuestTable(f.host.mem, () => nextGuest++, root, 0x400, 40, IOMMU_READ | IOMMU_WRITE, gpaToHpa);
    f.host.process.poke(gmemVa + 40n * 4096n, new TextEncoder().encode('guest page 40'));
    f.host.process.poke(gmemVa + 41n * 4096n, new TextEncoder().encode('guest page 41'));
    const data = f.host.process.mmap(4096);
    f.host.process.poke(data, new Uint8Array(16));
    const [rc, nested] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: parent.out_hwpt_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: data });
    expect(rc).toBe(0);
    dev.attachPt(nested.out_hwpt_id);
    expect(new TextDecoder().decode(await dev.dma.read(0x400000n, 13))).toBe('guest page 40');
    // The guest repoints its PTE without invalidating: the IOTLB still has the old translation.
    mockWriteGuestTable(f.host.mem, () => nextGuest++, root, 0x400, 41, IOMMU_READ | IOMMU_WRITE, gpaToHpa);
    expect(new TextDecoder().decode(await dev.dma.read(0x400000n, 13))).toBe('guest page 40');
    // IOMMU_HWPT_INVALIDATE with one mock entry covering the page.
    const inv = f.host.process.mmap(4096);
    const entry = new Uint8Array(16);
    new DataView(entry.buffer).setBigUint64(0, 0x400000n, true);
    new DataView(entry.buffer).setBigUint64(8, 1n, true);
    f.host.process.poke(inv, entry);
    const [irc, iout] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: nested.out_hwpt_id, data_uptr: inv, data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, entry_len: 16, entry_num: 1 });
    expect(irc).toBe(0);
    expect(iout.entry_num).toBe(1);
    expect(new TextDecoder().decode(await dev.dma.read(0x400000n, 13))).toBe('guest page 41');
    // Errors report progress in entry_num.
    const [brc, bout] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: nested.out_hwpt_id, data_uptr: inv, data_type: 99, entry_len: 16, entry_num: 1 });
    expect(brc).toBe(-ERRNO.EINVAL);
    expect(bout.entry_num).toBe(0);
    expect(rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: parent.out_hwpt_id, data_type: 0, entry_len: 16, entry_num: 0 })[0]).toBe(-ERRNO.EINVAL);
    // A host unmap of the parent is never stale.
    f.fd.ioas.unmap(ioas, 0n, 64n * 4096n);
    await expect(dev.dma.read(0x400000n, 1)).rejects.toBeInstanceOf(DmaFault);
  });
});

describe('vIOMMU, vDEVICE and vEVENTQ', () => {
  it('allocates with the kernel rules, reports guest faults as vEVENTs with the virtual id, tombstones on unbind', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const [, plain] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas });
    const V = (init: Partial<ReturnType<typeof U.iommu_viommu_alloc.zero>>) => rawIoctl(f.fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { dev_id: devId, type: IOMMU_VIOMMU_TYPE_MOCK, hwpt_id: parent.out_hwpt_id, ...init });
    expect(V({ type: 7 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(V({ hwpt_id: plain.out_hwpt_id })[0]).toBe(-ERRNO.EINVAL);
    expect(V({ hwpt_id: ioas })[0]).toBe(-ERRNO.ENOENT);
    // iommufd_viommu_alloc_ioctl checks flags and type only: __reserved is not looked at.
    const [rrc, rv] = V({ __reserved: 1 });
    expect(rrc).toBe(0);
    f.fd.destroy(rv.out_viommu_id);
    const [vrc, viommu] = V({});
    expect(vrc).toBe(0);
    const D = (virt: bigint) => rawIoctl(f.fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: viommu.out_viommu_id, dev_id: devId, virt_id: virt });
    const [drc, vdev] = D(0x42n);
    expect(drc).toBe(0);
    expect(D(0x43n)[0]).toBe(-ERRNO.EEXIST);
    const Q = (init: Partial<ReturnType<typeof U.iommu_veventq_alloc.zero>>) => rawIoctl(f.fd, U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: viommu.out_viommu_id, type: IOMMU_VEVENTQ_TYPE_MOCK, veventq_depth: 2, ...init });
    const [qrc, q] = Q({});
    expect(qrc).toBe(0);
    expect(Q({})[0]).toBe(-ERRNO.EEXIST);
    // iommufd_veventq_alloc checks flags, __reserved, DEFAULT and the depth only: a type the driver
    // never reports is accepted (its queue just stays empty).
    const [orc, other] = Q({ type: 9 });
    expect(orc).toBe(0);
    f.host.process.close(other.out_veventq_fd);
    f.fd.destroy(other.out_veventq_id);
    // Nested HWPT on the vIOMMU whose stage 1 is empty: every DMA faults into the vEVENTQ.
    const data = f.host.process.mmap(4096);
    f.host.process.poke(data, new Uint8Array(16));
    const [nrc, nested] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: viommu.out_viommu_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: data });
    expect(nrc).toBe(0);
    dev.attachPt(nested.out_hwpt_id);
    for (let i = 0; i < 4; i++) await expect(dev.dma.read(BigInt(i) * 4096n, 4)).rejects.toBeInstanceOf(DmaFault);
    await new Promise((r) => setTimeout(r, 0));
    const bytes = f.host.process.read(q.out_veventq_fd, 4096);
    const dv = new DataView(bytes.buffer);
    // Two events fit (depth 2), then one LOST_EVENTS header carrying the next sequence.
    expect(dv.getUint32(0, true)).toBe(0);
    expect(dv.getUint32(4, true)).toBe(0);
    expect(dv.getBigUint64(8, true)).toBe(0x42n);
    expect(dv.getUint32(24 + 4, true)).toBe(1);
    expect(dv.getUint32(48, true)).toBe(U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS);
    expect(dv.getUint32(52, true)).toBe(3);
    expect(bytes.length).toBe(56);
    expect(f.host.process.read(q.out_veventq_fd, 4).length).toBe(0);
    expect(code(() => f.host.process.write(q.out_veventq_fd, new Uint8Array(8)))).toBe('EINVAL');
    // Unbind with a live vDEVICE leaves a tombstone.
    dev.unbind();
    expect(code(() => f.fd.destroy(vdev.out_vdevice_id))).toBe('ENOENT');
    expect(code(() => f.fd.destroy(viommu.out_viommu_id))).toBe('EBUSY');
    f.host.process.close(q.out_veventq_fd);
    f.fd.destroy(q.out_veventq_id);
    f.fd.destroy(nested.out_hwpt_id);
    f.fd.destroy(viommu.out_viommu_id);
    // Only the tombstone is left: the xarray is not empty, so RLIMIT_MODE cannot change (EBUSY).
    f.fd.destroy(parent.out_hwpt_id);
    f.fd.destroy(plain.out_hwpt_id);
    f.fd.destroy(ioas);
    expect(f.fd.ctx.objects.count).toBe(0);
    const opt = { option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 1n };
    expect(rawIoctl(f.fd, U.IOMMU_OPTION, U.iommu_option, opt)[0]).toBe(-ERRNO.EBUSY);
  });
});

describe('dirty tracking', () => {
  it('reports written pages, clears unless NO_CLEAR, and accepts unaligned bitmaps', async () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const [, h] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING });
    mapPattern(f, ioas, 0x100000n, 8);
    dev.attachPt(h.out_hwpt_id);
    // iommufd_hwpt_set_dirty_tracking checks flags only: a non-zero __reserved is ignored.
    expect(rawIoctl(f.fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: h.out_hwpt_id, flags: 2 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(f.fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: h.out_hwpt_id, flags: 1, __reserved: 7 })[0]).toBe(0);
    await dev.dma.write(0x102000n, new Uint8Array([1]));
    await dev.dma.write(0x105000n, new Uint8Array([1]));
    const bm = f.host.process.mmap(4096);
    const get = (flags: number) => {
      f.host.process.poke(bm + 0xff1n, new Uint8Array(8));
      const [rc] = rawIoctl(f.fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: h.out_hwpt_id, iova: 0x100000n, length: 8n * 4096n, page_size: 4096n, data: bm + 0xff1n, flags });
      expect(rc).toBe(0);
      return f.host.process.peek(bm + 0xff1n, 1)[0];
    };
    expect(get(U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)).toBe(0b100100);
    expect(get(0)).toBe(0b100100);
    expect(get(0)).toBe(0);
    const G = (init: Partial<ReturnType<typeof U.iommu_hwpt_get_dirty_bitmap.zero>>) => rawIoctl(f.fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: h.out_hwpt_id, iova: 0x100000n, length: 4096n, page_size: 4096n, data: bm, ...init })[0];
    expect(G({ page_size: 0n })).toBe(-ERRNO.EINVAL);
    expect(G({ iova: 0x100800n })).toBe(-ERRNO.EINVAL);
    expect(G({ iova: U.U64_MAX - 10n })).toBe(-ERRNO.EOVERFLOW);
    expect(G({ hwpt_id: ioas })).toBe(-ERRNO.ENOENT);
  });
});

describe('regressions found by the uAPI fuzz', () => {
  it('reserved regions follow the nesting parent: replace by a nested HWPT of the same IOAS keeps them, detach drops them', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const data = f.host.process.mmap(4096);
    f.host.process.poke(data, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    const [rc, nested] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: parent.out_hwpt_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: data });
    expect(rc).toBe(0);
    const MSI_WINDOW = { start: 0xfee00000n, last: 0xfeefffffn };
    const iopt = () => (f.fd.ctx.objects.peek(ioas) as unknown as { iopt: { reservedRanges(): unknown[] } }).iopt;
    dev.attachPt(parent.out_hwpt_id);
    expect(iopt().reservedRanges()).toContainEqual(MSI_WINDOW);
    dev.attachPt(nested.out_hwpt_id);
    // The nested HWPT still translates through the parent's IOAS (find_hwpt_paging): the window stays.
    expect(iopt().reservedRanges()).toContainEqual(MSI_WINDOW);
    dev.detachPt();
    expect(iopt().reservedRanges()).not.toContainEqual(MSI_WINDOW);
    const va = f.host.process.mmap(4096);
    f.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0xfee00000n });
  });

  it('refuses a PASID that is not an integer (EINVAL) instead of attaching at PASID 1.5', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const [, p] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_PASID });
    for (const pasid of [1.5, NaN, -2]) expect(code(() => dev.attachPt(p.out_hwpt_id, { pasid }))).toBe('EINVAL');
    expect([...dev.idev!.attachments.keys()]).toEqual([]);
  });

  it('GET_HW_INFO and HWPT_INVALIDATE with huge lengths over small buffers fault (EFAULT) before allocating', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const buf = f.host.process.mmap(4096);
    expect(rawIoctl(f.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, data_len: 0xffffffff, data_uptr: buf })[0]).toBe(-ERRNO.EFAULT);
    const ioas = f.fd.ioas.alloc();
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    f.host.process.poke(buf, new Uint8Array(16));
    const [, nested] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: parent.out_hwpt_id, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: buf });
    // Valid mock entries (addr 0x1000, one page) every 16 bytes.
    const entries = new Uint8Array(4096);
    const dv = new DataView(entries.buffer);
    for (let o = 0; o < 4096; o += 16) {
      dv.setBigUint64(o, 0x1000n, true);
      dv.setBigUint64(o + 8, 1n, true);
    }
    f.host.process.poke(buf, entries.subarray(0, 16));
    const [rc, out] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, {
      hwpt_id: nested.out_hwpt_id,
      data_uptr: buf,
      data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK,
      entry_len: 4096,
      entry_num: 1 << 19,
    });
    // No limit on entry_len or entry_num beyond the kernel's: the first entry (a 4096-byte entry
    // whose tail past the mock's 16 bytes is zero) is handled, the copy of the second faults, and entry_num says so.
    expect(rc).toBe(-ERRNO.EFAULT);
    expect(out.entry_num).toBe(1);
    // Entries copied one by one: the third crosses into an unmapped page and faults after two.
    f.host.process.poke(buf, entries);
    const tail = buf + 4096n - 32n;
    const [trc, tout] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: nested.out_hwpt_id, data_uptr: tail, data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, entry_len: 16, entry_num: 3 });
    expect([trc, tout.entry_num]).toEqual([-ERRNO.EFAULT, 2]);
    // A non-zero byte in the tail of a longer entry is E2BIG from the driver's copy, after the
    // entries before it.
    f.host.process.poke(buf, new Uint8Array(4096));
    for (const o of [0n, 32n, 64n]) f.host.process.poke(buf + o, entries.subarray(0, 16));
    f.host.process.poke(buf + 32n + 20n, new Uint8Array([1]));
    const [erc, eout] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: nested.out_hwpt_id, data_uptr: buf, data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, entry_len: 32, entry_num: 3 });
    expect([erc, eout.entry_num]).toEqual([-ERRNO.E2BIG, 1]);
  });

  it('HWPT_ALLOC nested with an unknown data_type is EOPNOTSUPP from the driver before it copies data_uptr', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const alloc = (data_type: number) => rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: parent.out_hwpt_id, data_type, data_len: 16, data_uptr: 0x10n })[0];
    expect(alloc(IOMMU_HWPT_DATA_MOCK + 7)).toBe(-ERRNO.EOPNOTSUPP);
    // A known type copies the data: the bad pointer faults.
    expect(alloc(IOMMU_HWPT_DATA_MOCK)).toBe(-ERRNO.EFAULT);
  });

  // iommufd_hwpt_invalidate: done_num starts at 0 and is written back on every return, so every
  // error before the driver runs reports 0 entries (selftest alloc_hwpt_nested: assert(!num_inv)).
  it('HWPT_INVALIDATE writes entry_num 0 when the driver never ran (struct, lookup and type errors)', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:02.0');
    const devId = dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    const [, parent] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const buf = f.host.process.mmap(4096);
    const inv = (hwpt_id: number) => rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id, data_uptr: buf, data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, entry_len: 16, entry_num: 3 });
    // No such object: ENOENT; a nesting parent is neither nested nor a vIOMMU: EINVAL.
    for (const [id, errno] of [
      [999, ERRNO.ENOENT],
      [parent.out_hwpt_id, ERRNO.EINVAL],
    ]) {
      const [rc, out] = inv(id);
      expect(rc).toBe(-errno);
      expect(out.entry_num).toBe(0);
    }
    // The struct checks answer through the same exit: __reserved (EOPNOTSUPP), no data_uptr (EINVAL).
    const [rrc, rout] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: parent.out_hwpt_id, data_uptr: buf, entry_len: 16, entry_num: 3, __reserved: 1 });
    expect([rrc, rout.entry_num]).toEqual([-ERRNO.EOPNOTSUPP, 0]);
    const [nrc, nout] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: parent.out_hwpt_id, entry_len: 16, entry_num: 3 });
    expect([nrc, nout.entry_num]).toEqual([-ERRNO.EINVAL, 0]);
  });
});
