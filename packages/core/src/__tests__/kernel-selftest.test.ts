/**
 * The kernel's iommufd selftest (tools/testing/selftests/iommu/iommufd.c) as the project's own
 * conformance suite: one test per TEST_F and fixture variant that the model can express, named after
 * it, the mock domain of selftest.c replaced by the mock vendor. Differences of the mock vendor: its
 * page size is 4 KiB (the kernel mock uses PAGE_SIZE / 2) and its aperture is [0, 2^39 - 1];
 * IOMMU_TEST_OP_ADD_RESERVED becomes a reserved range added to the IOAS directly. The VFIO, access
 * and fork cases live beside their modules (iommufd/vfio-compat.test.ts, iommufd/access.test.ts);
 * docs/kernel-conformance.md lists every kernel test and where it is.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { ERRNO, errnoName } from '../uapi/errno.js';
import type { StructLayout, FieldSpec } from '../uapi/struct.js';
import { ObjType } from '../iommufd/objects.js';
import type { Ioas } from '../iommufd/ioas.js';
import type { PciDevice } from '../host/device.js';
import { IOMMU_HWPT_DATA_MOCK } from '../testing/mock-vendor.js';
import { errCode, rawIoctl } from './helpers.js';
import { mockFixture, type MockFixture } from './mock-host.js';

const PAGE = 4096n;
const MOCK_PAGE = 4096n;
const BUFFER_SIZE = 16n * PAGE;
const MOCK_APERTURE_START = 1n << 24n;
const MOCK_APERTURE_LAST = (1n << 39n) - 1n;
// Devices without reserved regions, on two units, so that every domain's only hole is its aperture.
const DEVICES = ['0000:00:02.0', '0000:80:00.0'];

/** IOMMU_HWPT_ALLOC with the data copied into the process first (test_cmd_hwpt_alloc[_nested]). */
function hwptAlloc(f: MockFixture, devId: number, ptId: number, flags = 0, dataType = 0, data: Uint8Array | null = null): [string, number] {
  let uptr = 0n;
  if (data) {
    uptr = f.host.process.mmap(4096);
    f.host.process.poke(uptr, data);
  }
  const [rc, out] = rawIoctl(f.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ptId, flags, data_type: dataType, data_len: data ? data.length : 0, data_uptr: uptr });
  return [rc === 0 ? 'ok' : errnoName(-rc) ?? String(rc), out.out_hwpt_id];
}

function raw<F extends readonly FieldSpec[]>(f: MockFixture, request: number, layout: StructLayout<F>, init: Parameters<typeof rawIoctl<F>>[3]): number {
  return rawIoctl(f.fd, request, layout, init)[0];
}

// --- FIXTURE(iommufd) ----------------------------------------------------------------------------

describe('iommufd', () => {
  it('simple_close', () => {
    const f = mockFixture();
    f.host.process.close(f.fd.fd);
    expect(f.fd.ctx.closed).toBe(true);
  });

  it('cmd_fail', () => {
    const f = mockFixture();
    // Object id is invalid.
    expect(raw(f, U.IOMMU_DESTROY, U.iommu_destroy, { id: 0 })).toBe(-ERRNO.ENOENT);
    // Bad pointer.
    expect(f.fd.ioctl(U.IOMMU_DESTROY, 0n)).toBe(-ERRNO.EFAULT);
    // Unknown ioctl.
    expect(f.fd.ioctl(U.iommufdIoctl(U.IOMMUFD_CMD_BASE - 1), U.iommu_destroy.encode({ size: 8, id: 0 }))).toBe(-ERRNO.ENOTTY);
  });

  it('cmd_length', () => {
    const f = mockFixture();
    const cases: [number, StructLayout<readonly FieldSpec[]>, string][] = [
      [U.IOMMU_DESTROY, U.iommu_destroy as never, 'id'],
      [U.IOMMU_GET_HW_INFO, U.iommu_hw_info as never, '__reserved'],
      [U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc as never, '__reserved'],
      [U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate as never, '__reserved'],
      [U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc as never, 'out_ioas_id'],
      [U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges as never, 'out_iova_alignment'],
      [U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas as never, 'allowed_iovas'],
      [U.IOMMU_IOAS_MAP, U.iommu_ioas_map as never, 'iova'],
      [U.IOMMU_IOAS_COPY, U.iommu_ioas_copy as never, 'src_iova'],
      [U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap as never, 'length'],
      [U.IOMMU_OPTION, U.iommu_option as never, 'val64'],
      [U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas as never, '__reserved'],
    ];
    for (const [ioctl, layout, last] of cases) {
      const minSize = layout.offsetofend(last as never);
      // struct { struct _struct cmd; uint8_t extra; } with extra = UINT8_MAX.
      const cmd = new Uint8Array(layout.size + 1);
      const setSize = (n: number) => new DataView(cmd.buffer).setUint32(0, n, true);
      cmd[layout.size] = 0xff;
      setSize(minSize - 1);
      expect(f.fd.ioctl(ioctl, cmd), `${layout.name} min - 1`).toBe(-ERRNO.EINVAL);
      setSize(layout.size + 1);
      expect(f.fd.ioctl(ioctl, cmd), `${layout.name} + 1`).toBe(-ERRNO.E2BIG);
      setSize(layout.size);
      const rc = f.fd.ioctl(ioctl, cmd);
      setSize(layout.size + 1);
      cmd[layout.size] = 0;
      expect(f.fd.ioctl(ioctl, cmd), `${layout.name} zero tail`).toBe(rc);
    }
  });

  it('cmd_ex_fail', () => {
    const f = mockFixture();
    const cmd = new Uint8Array(16);
    const dv = new DataView(cmd.buffer);
    dv.setUint32(0, 16, true);
    // Object id is invalid and the command is longer.
    expect(f.fd.ioctl(U.IOMMU_DESTROY, cmd)).toBe(-ERRNO.ENOENT);
    // The future area is non-zero.
    dv.setBigUint64(8, 1n, true);
    expect(f.fd.ioctl(U.IOMMU_DESTROY, cmd)).toBe(-ERRNO.E2BIG);
    // The original command "works".
    dv.setUint32(0, 8, true);
    expect(f.fd.ioctl(U.IOMMU_DESTROY, cmd)).toBe(-ERRNO.ENOENT);
    // A short command fails.
    dv.setUint32(0, 7, true);
    expect(f.fd.ioctl(U.IOMMU_DESTROY, cmd)).toBe(-ERRNO.EINVAL);
  });

  it('global_options', () => {
    const f = mockFixture();
    const opt = (init: Partial<ReturnType<typeof U.iommu_option.zero>>) => rawIoctl(f.fd, U.IOMMU_OPTION, U.iommu_option, { option_id: U.IOMMU_OPTION_RLIMIT_MODE, ...init });
    let [rc, out] = opt({ op: U.IOMMU_OPTION_OP_GET, val64: 1n });
    expect([rc, out.val64]).toEqual([0, 0n]);
    // This requires root (CAP_SYS_RESOURCE).
    expect(opt({ op: U.IOMMU_OPTION_OP_SET, val64: 1n })[0]).toBe(0);
    expect(opt({ op: U.IOMMU_OPTION_OP_SET, val64: 2n })[0]).toBe(-ERRNO.EINVAL);
    [rc, out] = opt({ op: U.IOMMU_OPTION_OP_GET });
    expect([rc, out.val64]).toEqual([0, 1n]);
    expect(opt({ op: U.IOMMU_OPTION_OP_SET, val64: 0n })[0]).toBe(0);
    expect(opt({ op: U.IOMMU_OPTION_OP_GET, option_id: U.IOMMU_OPTION_HUGE_PAGES })[0]).toBe(-ERRNO.ENOENT);
    expect(opt({ op: U.IOMMU_OPTION_OP_SET, option_id: U.IOMMU_OPTION_HUGE_PAGES })[0]).toBe(-ERRNO.ENOENT);
  });
});

// --- FIXTURE(iommufd_ioas) -----------------------------------------------------------------------

interface IoasFixture extends MockFixture {
  ioas: number;
  devs: PciDevice[];
  stdevId: number;
  hwptId: number;
  baseIova: bigint;
  buffer: bigint;
}

/** FIXTURE_SETUP(iommufd_ioas): an IOAS with `domains` mock domains; `memoryLimit` pages of RLIMIT_MEMLOCK. */
function iommufdIoas(domains: number, memoryLimit = 0, devices = DEVICES): IoasFixture {
  const f = mockFixture();
  const ioas = f.fd.ioas.alloc();
  if (memoryLimit) f.host.process.rlimitMemlock = memoryLimit * 4096;
  const devs: PciDevice[] = [];
  let stdevId = 0;
  let hwptId = 0;
  for (let i = 0; i < domains; i++) {
    const d = f.host.device(devices[i]);
    const id = d.bindIommufd(f.fd);
    const h = d.attachPt(ioas);
    // The first mock device is the one the single-device cases use.
    if (i === 0) [stdevId, hwptId] = [id, h];
    devs.push(d);
  }
  const buffer = f.host.process.mmap(BUFFER_SIZE, { shared: true });
  return { ...f, ioas, devs, stdevId, hwptId, baseIova: domains ? MOCK_APERTURE_START : 0n, buffer };
}

const iopt = (f: IoasFixture, id = f.ioas) => f.fd.ctx.objects.get<Ioas>(id, ObjType.IOAS).iopt;

/** IOMMU_TEST_OP_ADD_RESERVED. */
function addReserved(f: IoasFixture, start: bigint, length: bigint): string {
  return errCode(() =>
    f.fd.call('IOMMU_TEST_OP_ADD_RESERVED', () => iopt(f).addReserved({}, [{ start, last: start + length - 1n }])),
  );
}

describe.each([
  ['no_domain', 0, 0],
  ['mock_domain', 1, 0],
  ['two_mock_domain', 2, 0],
] as const)('iommufd_ioas (%s)', (_variant, domains, memoryLimit) => {
  const setup = () => iommufdIoas(domains, memoryLimit);
  const mapFixed = (f: IoasFixture, va: bigint, length: bigint, iova: bigint, ioas = f.ioas) => f.fd.ioas.map({ ioasId: ioas, userVa: va, length, iova });
  const unmapErr = (f: IoasFixture, iova: bigint, length: bigint) => errCode(() => f.fd.ioas.unmap(f.ioas, iova, length));

  it('ioas_auto_destroy', () => {
    const f = setup();
    f.host.process.close(f.fd.fd);
    expect(f.fd.ctx.objects.count).toBe(0);
  });

  it('ioas_destroy', () => {
    const f = setup();
    // An IOAS cannot be freed while a device has a HWPT using it.
    expect(errCode(() => f.fd.destroy(f.ioas))).toBe(domains ? 'EBUSY' : 'ok');
  });

  it('alloc_hwpt_nested (the negative cases and the parent lifetime)', () => {
    const f = setup();
    const data = new Uint8Array(16);
    if (domains) {
      const devId = f.stdevId;
      expect(hwptAlloc(f, f.ioas, devId)[0]).toBe('ENOENT');
      expect(hwptAlloc(f, devId, devId)[0]).toBe('EINVAL');
      const [, parent] = hwptAlloc(f, devId, f.ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
      const [, notParent] = hwptAlloc(f, devId, f.ioas);
      const nested = (ptId: number, dataType: number, d: Uint8Array | null, flags = 0) => hwptAlloc(f, devId, ptId, flags, dataType, d)[0];
      expect(nested(parent, U.IOMMU_HWPT_DATA_NONE, data)).toBe('EINVAL');
      expect(nested(parent, IOMMU_HWPT_DATA_MOCK + 1, data)).toBe('EOPNOTSUPP');
      expect(nested(parent, IOMMU_HWPT_DATA_MOCK, data.subarray(0, 3))).toBe('EINVAL');
      expect(raw(f, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: parent, data_type: IOMMU_HWPT_DATA_MOCK, data_len: 16, data_uptr: 0n })).toBe(-ERRNO.EFAULT);
      expect(nested(parent, IOMMU_HWPT_DATA_MOCK, data, U.IOMMU_HWPT_ALLOC_NEST_PARENT)).toBe('EOPNOTSUPP');
      expect(nested(notParent, IOMMU_HWPT_DATA_MOCK, data)).toBe('EINVAL');
      const [, n0] = hwptAlloc(f, devId, parent, 0, IOMMU_HWPT_DATA_MOCK, data);
      const [, n1] = hwptAlloc(f, devId, parent, 0, IOMMU_HWPT_DATA_MOCK, data);
      // A nested HWPT on top of a nested HWPT.
      expect(nested(n0, IOMMU_HWPT_DATA_MOCK, data)).toBe('EINVAL');
      // The parent cannot be freed now.
      expect(errCode(() => f.fd.destroy(parent))).toBe('EBUSY');
      // HWPT_INVALIDATE takes only a nested HWPT (or a vIOMMU): entry_num comes back 0.
      const [rc, out] = rawIoctl(f.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { hwpt_id: parent, data_uptr: f.buffer, data_type: 0, entry_len: 16, entry_num: 1 });
      expect([rc, out.entry_num]).toEqual([-ERRNO.EINVAL, 0]);
      // Attach to n0, switch to n1, back to the parent, then to the IOAS.
      const dev = f.devs[0];
      dev.attachPt(n0);
      expect(errCode(() => f.fd.destroy(n0))).toBe('EBUSY');
      dev.attachPt(n1);
      expect(errCode(() => f.fd.destroy(n1))).toBe('EBUSY');
      f.fd.destroy(n0);
      dev.attachPt(parent);
      f.fd.destroy(n1);
      dev.attachPt(f.ioas);
      f.fd.destroy(parent);
      f.fd.destroy(notParent);
    } else {
      expect(hwptAlloc(f, 0, f.ioas)[0]).toBe('ENOENT');
      expect(hwptAlloc(f, 0, 0, 0, IOMMU_HWPT_DATA_MOCK, data)[0]).toBe('ENOENT');
    }
  });

  it('hwpt_attach', () => {
    const f = setup();
    // A device attached directly to a HWPT.
    const d = f.host.device('0000:00:01.0');
    d.bindIommufd(f.fd);
    expect(errCode(() => d.attachPt(f.hwptId))).toBe(domains ? 'ok' : 'ENOENT');
  });

  it('ioas_area_destroy', () => {
    const f = setup();
    // Adding an area does not change the ability to destroy.
    mapFixed(f, f.buffer, PAGE, f.baseIova);
    expect(errCode(() => f.fd.destroy(f.ioas))).toBe(domains ? 'EBUSY' : 'ok');
  });

  it('ioas_area_auto_destroy', () => {
    const f = setup();
    for (let i = 0n; i < 10n; i++) mapFixed(f, f.buffer, PAGE, f.baseIova + i * PAGE);
    f.host.process.close(f.fd.fd);
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('get_hw_info', () => {
    const f = setup();
    if (domains) {
      expect(f.fd.getHwInfo(f.stdevId, { dataLen: 0 }).type).toBeGreaterThan(0);
      const exact = f.fd.getHwInfo(f.stdevId);
      const larger = f.fd.getHwInfo(f.stdevId, { dataLen: exact.data.length + 8 });
      expect(larger.data.subarray(exact.data.length).every((b) => b === 0)).toBe(true);
      expect(f.fd.getHwInfo(f.stdevId, { dataLen: 4 }).data.length).toBe(4);
    } else expect(errCode(() => f.fd.getHwInfo(0))).toBe('ENOENT');
  });

  it('area', () => {
    const f = setup();
    // Unmap fails if nothing is mapped.
    for (let i = 0n; i < 10n; i++) expect(unmapErr(f, i * PAGE, PAGE)).toBe('ENOENT');
    // Unmap works.
    for (let i = 0n; i < 10n; i++) mapFixed(f, f.buffer, PAGE, f.baseIova + i * PAGE);
    for (let i = 0n; i < 10n; i++) f.fd.ioas.unmap(f.ioas, f.baseIova + i * PAGE, PAGE);
    // Split fails.
    mapFixed(f, f.buffer, 2n * PAGE, f.baseIova + 16n * PAGE);
    expect(unmapErr(f, f.baseIova + 16n * PAGE, PAGE)).toBe('ENOENT');
    expect(unmapErr(f, f.baseIova + 17n * PAGE, PAGE)).toBe('ENOENT');
    // Over map fails.
    for (const [len, at] of [
      [2n, 16n],
      [1n, 16n],
      [1n, 17n],
      [2n, 15n],
      [3n, 15n],
    ]) {
      expect(errCode(() => mapFixed(f, f.buffer, len * PAGE, f.baseIova + at * PAGE))).toBe('EEXIST');
    }
    // Unmap all works, and succeeds on an empty IOAS.
    f.fd.ioas.unmapAll(f.ioas);
    expect(f.fd.ioas.unmapAll(f.ioas)).toBe(0n);
  });

  it('unmap_fully_contained_areas', () => {
    const f = setup();
    const base = f.baseIova + 4n * PAGE;
    for (let i = 0n; i < 4n; i++) mapFixed(f, f.buffer, 8n * PAGE, base + i * 16n * PAGE);
    // Unmapping a range that does not fully contain an area does not work.
    expect(unmapErr(f, base - 4n * PAGE, 8n * PAGE)).toBe('ENOENT');
    expect(unmapErr(f, base + 3n * 16n * PAGE + 8n * PAGE - 4n * PAGE, 8n * PAGE)).toBe('ENOENT');
    // Unmapping fully contained areas works.
    expect(f.fd.ioas.unmap(f.ioas, base - 4n * PAGE, 3n * 16n * PAGE + 8n * PAGE + 4n * PAGE)).toBe(32n * PAGE);
  });

  it('area_auto_iova', () => {
    const f = setup();
    const ffsAlign = (length: bigint) => length & -length;
    // Simple 4k pages.
    const iovas: bigint[] = [];
    for (let i = 0; i < 10; i++) iovas.push(f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: PAGE }));
    for (const iova of iovas) f.fd.ioas.unmap(f.ioas, iova, PAGE);
    // The kernel aligns IOVAs automatically.
    iovas.length = 0;
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE * i;
      const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: domains ? f.buffer : 1n << 31n, length });
      expect(iova % ffsAlign(length)).toBe(0n);
      iovas.push(iova);
    }
    iovas.forEach((iova, i) => f.fd.ioas.unmap(f.ioas, iova, PAGE * BigInt(i + 1)));
    // Avoids a reserved region.
    expect(addReserved(f, PAGE * 4n, PAGE * 100n)).toBe('ok');
    iovas.length = 0;
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE * i;
      const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length });
      expect(iova % ffsAlign(length)).toBe(0n);
      expect(iova > PAGE * 4n && iova < PAGE * 104n).toBe(false);
      iovas.push(iova);
    }
    iovas.forEach((iova, i) => f.fd.ioas.unmap(f.ioas, iova, PAGE * BigInt(i + 1)));
    // An allowed region intersecting a reserved region.
    expect(errCode(() => f.fd.ioas.allowIovas(f.ioas, [{ start: PAGE, last: PAGE * 600n }]))).toBe('EADDRINUSE');
    // Allocate from an allowed region.
    const range = domains ? { start: MOCK_APERTURE_START + PAGE, last: MOCK_APERTURE_START + PAGE * 600n - 1n } : { start: PAGE * 200n, last: PAGE * 600n - 1n };
    f.fd.ioas.allowIovas(f.ioas, [range]);
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE * i;
      const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length });
      expect(iova % ffsAlign(length)).toBe(0n);
      expect(iova >= range.start && iova <= range.last && iova + length > range.start && iova + length <= range.last + 1n).toBe(true);
    }
  });

  it('area_allowed', () => {
    const f = setup();
    // A reserved range intersecting an allowed one.
    f.fd.ioas.allowIovas(f.ioas, [{ start: f.baseIova, last: f.baseIova + PAGE * 600n }]);
    expect(addReserved(f, f.baseIova + PAGE, PAGE)).toBe('EADDRINUSE');
    f.fd.ioas.allowIovas(f.ioas, []);
    // An allowed range intersecting a reserved one.
    expect(addReserved(f, f.baseIova + PAGE, PAGE)).toBe('ok');
    expect(errCode(() => f.fd.ioas.allowIovas(f.ioas, [{ start: f.baseIova, last: f.baseIova + PAGE * 600n }]))).toBe('EADDRINUSE');
  });

  it('copy_area', () => {
    const f = setup();
    mapFixed(f, f.buffer, PAGE, f.baseIova);
    // Copy inside a single IOAS.
    f.fd.ioas.copy({ dstIoasId: f.ioas, srcIoasId: f.ioas, srcIova: f.baseIova, length: PAGE, dstIova: f.baseIova + PAGE });
    // Copy between IOASes.
    const dst = f.fd.ioas.alloc();
    expect(f.fd.ioas.copy({ dstIoasId: dst, srcIoasId: f.ioas, srcIova: f.baseIova, length: PAGE, dstIova: 0n })).toBe(0n);
  });

  it('iova_ranges', () => {
    const f = setup();
    const ranges = (num: number) => {
      const buf = f.host.process.mmap(4096);
      const [rc, out] = rawIoctl(f.fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: f.ioas, num_iovas: num, allowed_iovas: buf });
      const got = f.host.process.peek(buf, 32);
      const dv = new DataView(got.buffer);
      return { rc, num: out.num_iovas, align: out.out_iova_alignment, r: [dv.getBigUint64(0, true), dv.getBigUint64(8, true), dv.getBigUint64(16, true), dv.getBigUint64(24, true)] };
    };
    let r = ranges(256);
    expect([r.rc, r.num]).toEqual([0, 1]);
    if (!domains) expect([r.r[0], r.r[1], r.align]).toEqual([0n, U.U64_MAX, 1n]);
    else expect([r.r[0], r.r[1], r.align]).toEqual([0n, MOCK_APERTURE_LAST, MOCK_PAGE]);
    // Buffer too small.
    r = ranges(0);
    expect([r.rc, r.num, r.r[0], r.r[1]]).toEqual([-ERRNO.EMSGSIZE, 1, 0n, 0n]);
    // Two ranges.
    expect(addReserved(f, PAGE, PAGE)).toBe('ok');
    r = ranges(256);
    if (!domains) expect([r.rc, r.num, ...r.r]).toEqual([0, 2, 0n, PAGE - 1n, PAGE * 2n, U.U64_MAX]);
    else expect([r.rc, r.num, ...r.r]).toEqual([0, 2, 0n, PAGE - 1n, PAGE * 2n, MOCK_APERTURE_LAST]);
    // Buffer too small: the first range is written, the count says two.
    r = ranges(1);
    expect([r.rc, r.num, r.r[0], r.r[1], r.r[2], r.r[3]]).toEqual([-ERRNO.EMSGSIZE, 2, 0n, PAGE - 1n, 0n, 0n]);
  });

  it('ioas_option_huge_pages', () => {
    const f = setup();
    expect(f.fd.ioas.getHugePages(f.ioas)).toBe(true);
    f.fd.ioas.setHugePages(f.ioas, false);
    expect(f.fd.ioas.getHugePages(f.ioas)).toBe(false);
    expect(raw(f, U.IOMMU_OPTION, U.iommu_option, { option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_SET, object_id: f.ioas, val64: 2n })).toBe(-ERRNO.EINVAL);
    f.fd.ioas.setHugePages(f.ioas, true);
  });

  it('ioas_iova_alloc', () => {
    const f = setup();
    for (let length = 1n; length < PAGE * 2n; length += 97n) {
      if (domains && length % MOCK_PAGE) expect(errCode(() => f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length }))).toBe('EINVAL');
      else f.fd.ioas.unmap(f.ioas, f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length }), length);
    }
    for (const length of [PAGE, PAGE * 2n - 1n]) {
      if (domains && length % MOCK_PAGE) expect(errCode(() => f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length }))).toBe('EINVAL');
      else f.fd.ioas.unmap(f.ioas, f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length }), length);
    }
  });

  it.runIf(domains === 0)('ioas_align_change (only without domains, as the kernel test returns early)', () => {
    const f = setup();
    // Upgrading to PAGE_SIZE alignment works when things are aligned right.
    mapFixed(f, f.buffer, PAGE, MOCK_APERTURE_START);
    f.fd.ioas.setHugePages(f.ioas, false);
    // Misalignment is rejected at map time.
    expect(errCode(() => mapFixed(f, f.buffer + 2048n, PAGE, MOCK_APERTURE_START + PAGE))).toBe('EINVAL');
    f.fd.ioas.setHugePages(f.ioas, false);
    // Reduce alignment.
    f.fd.ioas.setHugePages(f.ioas, true);
    // Misalignment is rejected during an alignment upgrade.
    mapFixed(f, f.buffer + 2048n, PAGE, MOCK_APERTURE_START + PAGE);
    expect(errCode(() => f.fd.ioas.setHugePages(f.ioas, false))).toBe('EADDRINUSE');
    f.fd.ioas.unmap(f.ioas, MOCK_APERTURE_START + PAGE, PAGE);
    f.fd.ioas.unmap(f.ioas, MOCK_APERTURE_START, PAGE);
  });

  it('copy_sweep', () => {
    const f = setup();
    const dst = f.fd.ioas.alloc();
    const lastIova = domains ? MOCK_APERTURE_START + BUFFER_SIZE - 1n : MOCK_APERTURE_START + BUFFER_SIZE - 2n;
    mapFixed(f, f.buffer, lastIova - MOCK_APERTURE_START + 1n, MOCK_APERTURE_START);
    for (let iova = MOCK_APERTURE_START - PAGE; iova <= lastIova; iova += 511n) {
      const copy = () => f.fd.ioas.copy({ dstIoasId: dst, srcIoasId: f.ioas, srcIova: iova, length: MOCK_PAGE, dstIova: MOCK_APERTURE_START });
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE - 1n > lastIova) expect(errCode(copy)).toBe('ENOENT');
      else {
        copy();
        f.fd.ioas.unmap(dst, MOCK_APERTURE_START, MOCK_PAGE);
      }
    }
    f.fd.destroy(dst);
  });
});

// --- FIXTURE(iommufd_mock_domain) ----------------------------------------------------------------

describe.each([
  ['one_domain', 1, false],
  ['two_domains', 2, false],
  ['one_domain_hugepage', 1, true],
  ['two_domains_hugepage', 2, true],
] as const)('iommufd_mock_domain (%s)', (_variant, domains, hugepages) => {
  const setup = () => {
    // Two identical mock devices (the second one's group has a sibling, which the cases here ignore).
    const f = iommufdIoas(domains, 0, ['0000:00:02.0', '0000:00:03.1']);
    const bufSize = hugepages ? 4n << 20n : 8n * PAGE;
    const mmap = () => f.host.process.mmap(bufSize, hugepages ? { hugePageSize: 2 << 20 } : { shared: true });
    return { f, bufSize, mmap };
  };
  /** check_mock_iova on every domain. */
  const checkMockIova = (f: IoasFixture, va: bigint, iova: bigint, length: bigint) => {
    const first = Number(va / PAGE);
    const n = Number((va + length - 1n) / PAGE) - first + 1;
    const frames = new Float64Array(n);
    f.host.process.resolvePages(first, n, false, frames);
    for (const d of f.devs) for (let i = 0; i < n; i++) expect(d.translatePage(Number(iova / PAGE) + i, 1)).toBe(frames[i]);
  };

  it('basic', () => {
    const { f, bufSize, mmap } = setup();
    // A simple one-page map.
    const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: PAGE });
    checkMockIova(f, f.buffer, iova, PAGE);
    const buf = mmap();
    // EFAULT half way through the mapping, then on the first page.
    f.host.process.munmap(buf + bufSize / 2n, bufSize / 2n);
    expect(errCode(() => f.fd.ioas.map({ ioasId: f.ioas, userVa: buf, length: bufSize }))).toBe('EFAULT');
    f.host.process.munmap(buf, bufSize / 2n);
    expect(errCode(() => f.fd.ioas.map({ ioasId: f.ioas, userVa: buf, length: bufSize }))).toBe('EFAULT');
  });

  it('ro_unshare (a read-only map keeps its frame when the page is written later)', () => {
    const { f } = setup();
    const buf = f.host.process.mmap(4096);
    const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: buf, length: PAGE, writeable: false });
    checkMockIova(f, buf, iova, PAGE);
    f.host.process.poke(buf, new Uint8Array(4096).fill(1));
    checkMockIova(f, buf, iova, PAGE);
  });

  it('all_aligns', () => {
    const { f, bufSize, mmap } = setup();
    const buf = mmap();
    const step = hugepages ? bufSize / 16n : MOCK_PAGE;
    for (let start = 0n; start < bufSize; start += step) {
      for (let end = hugepages ? bufSize : start + MOCK_PAGE; end < bufSize || (hugepages && end === bufSize && start === 0n); end += MOCK_PAGE) {
        const length = end - start;
        const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: buf + start, length });
        checkMockIova(f, buf + start, iova, length);
        f.fd.ioas.unmap(f.ioas, iova, length);
        if (hugepages) break;
      }
    }
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('all_aligns_copy', () => {
    const { f, bufSize, mmap } = setup();
    const buf = mmap();
    const step = hugepages ? bufSize / 16n : MOCK_PAGE;
    for (let start = 0n; start < bufSize; start += step) {
      for (let end = start + MOCK_PAGE; end < bufSize; end += hugepages ? bufSize : MOCK_PAGE) {
        const length = end - start;
        const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: buf + start, length });
        // Add and destroy a domain while the area exists.
        const d = f.host.device('0000:00:01.0');
        d.bindIommufd(f.fd);
        d.attachPt(f.ioas);
        checkMockIova(f, buf + start, iova, length);
        expect(d.translatePage(Number(iova / PAGE), 1)).toBe(f.devs[0].translatePage(Number(iova / PAGE), 1));
        d.unbind();
        f.fd.ioas.unmap(f.ioas, iova, length);
      }
    }
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('replace', () => {
    const { f } = setup();
    const ioas = f.fd.ioas.alloc();
    const dev = f.devs[0];
    dev.attachPt(ioas);
    // Replacing the IOAS frees the prior automatic HWPT: using it is ENOENT.
    if (domains === 1) expect(errCode(() => dev.attachPt(f.hwptId))).toBe('ENOENT');
    dev.attachPt(ioas);
    if (domains >= 2) {
      dev.attachPt(f.hwptId);
      dev.attachPt(f.hwptId);
    }
    dev.attachPt(f.ioas);
    f.fd.destroy(ioas);
  });

  it('alloc_hwpt', () => {
    const { f } = setup();
    for (const dev of f.devs) {
      const idev = [...f.fd.ctx.objects.objects()].find((o) => o.type === ObjType.DEVICE && (o as unknown as { dev: PciDevice }).dev === dev)!;
      expect(hwptAlloc(f, idev.id, f.ioas, ~U.IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0)[0]).toBe('EOPNOTSUPP');
      const [, h0] = hwptAlloc(f, idev.id, f.ioas);
      const [, h1] = hwptAlloc(f, idev.id, f.ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
      // A hw_pagetable rotation.
      dev.attachPt(h0);
      expect(errCode(() => f.fd.destroy(h0))).toBe('EBUSY');
      dev.attachPt(h1);
      expect(errCode(() => f.fd.destroy(h1))).toBe('EBUSY');
      dev.attachPt(f.ioas);
      f.fd.destroy(h1);
      const other = f.host.device('0000:00:01.0');
      other.bindIommufd(f.fd);
      other.attachPt(h0);
      other.unbind();
      f.fd.destroy(h0);
    }
  });
});

// --- FIXTURE(iommufd_dirty_tracking) -------------------------------------------------------------

// The cases below do not depend on the fixture's buffer size, so they run once instead of once per
// domain_dirty* variant; get_dirty_bitmap[_no_clear] run per variant further down.
describe('iommufd_dirty_tracking', () => {
  const setup = () => iommufdIoas(1);

  it('enforce_dirty', () => {
    const f = setup();
    // Regular case: a dirty-tracking HWPT takes a device of a unit with dirty tracking.
    const [rc, hwpt] = hwptAlloc(f, f.stdevId, f.ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(rc).toBe('ok');
    const d = f.host.device('0000:00:03.1');
    d.bindIommufd(f.fd);
    d.attachPt(hwpt);
    d.unbind();
    f.fd.destroy(hwpt);
    // The IOMMU of the other device has no dirty tracking (MOCK_FLAGS_DEVICE_NO_DIRTY).
    const ioas = f.fd.ioas.alloc();
    const nd = f.host.device('0000:80:00.0');
    const idevId = nd.bindIommufd(f.fd);
    nd.attachPt(ioas);
    expect(hwptAlloc(f, idevId, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING)[0]).toBe('EOPNOTSUPP');
  });

  it('set_dirty_tracking', () => {
    const f = setup();
    const [, hwpt] = hwptAlloc(f, f.stdevId, f.ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = f.host.device('0000:00:03.1');
    d.bindIommufd(f.fd);
    d.attachPt(hwpt);
    const set = (flags: number) => raw(f, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags });
    expect(set(U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE)).toBe(0);
    expect(set(0)).toBe(0);
    d.unbind();
    f.fd.destroy(hwpt);
  });

  it('device_dirty_capability', () => {
    const f = setup();
    const [, hwpt] = hwptAlloc(f, f.stdevId, f.ioas, 0);
    const d = f.host.device('0000:00:03.1');
    d.bindIommufd(f.fd);
    d.attachPt(hwpt);
    expect(f.fd.getHwInfo(f.stdevId).capabilities & U.IOMMU_HW_CAP_DIRTY_TRACKING).toBe(U.IOMMU_HW_CAP_DIRTY_TRACKING);
    d.unbind();
    f.fd.destroy(hwpt);
  });
});

/**
 * get_dirty_bitmap and get_dirty_bitmap_no_clear, per FIXTURE_VARIANT(iommufd_dirty_tracking). The
 * kernel marks every other mock PTE dirty with IOMMU_TEST_OP_DIRTY; here the device writes one byte
 * through every other leaf (the mock unit sets D on a write with tracking on), so the test also
 * covers the IOTLB: each of the three rounds dirties the same leaves again after the previous read
 * cleared them. The bitmap is read at a page-aligned address, at 2 KiB past it and at 0xff1 past it
 * (not u64 aligned), with the mock's 4 KiB page as the bitmap's page_size; the leaves are 4 KiB, or
 * 2 MiB for the huge variants (the kernel mock's huge IOVA pages are 1 MiB).
 */
const DIRTY_VARIANTS = [
  ['domain_dirty8k', 8n << 10n, false],
  ['domain_dirty16k', 16n << 10n, false],
  ['domain_dirty128k', 128n << 10n, false],
  ['domain_dirty256k', 256n << 10n, false],
  ['domain_dirty640k', 640n << 10n, false],
  ['domain_dirty128M', 128n << 20n, false],
  ['domain_dirty128M_huge', 128n << 20n, true],
  ['domain_dirty256M', 256n << 20n, false],
  ['domain_dirty256M_huge', 256n << 20n, true],
] as const;

/**
 * The 128 MiB and 256 MiB variants with 4 KiB leaves take seconds each (tens of thousands of leaves
 * mapped, written and read three times): they run with KERNEL_SELFTEST_LONG=1 only.
 */
const LONG = process.env.KERNEL_SELFTEST_LONG === '1';

describe.each(DIRTY_VARIANTS)('iommufd_dirty_tracking (%s)', (_variant, bufferSize, hugepages) => {
  const HUGE = 2n << 20n;
  const runs = LONG || hugepages || bufferSize < 1n << 20n;
  const setup = () => {
    const f = iommufdIoas(1);
    const buffer = f.host.process.mmap(bufferSize, hugepages ? { hugePageSize: Number(HUGE) } : { shared: true });
    const nbits = Number(bufferSize / MOCK_PAGE);
    // Room for the bitmap at the three offsets the kernel test uses.
    const bitmap = f.host.process.mmap(Math.ceil(nbits / 8) + 2 * 4096);
    // A second IOAS with the buffer at MOCK_APERTURE_START and a dirty-tracking HWPT on it; the
    // fixture's device moves to it, so that its writes reach the HWPT's leaves.
    const ioas = f.fd.ioas.alloc();
    f.fd.ioas.map({ ioasId: ioas, userVa: buffer, length: bufferSize, iova: MOCK_APERTURE_START });
    const [rc, hwpt] = hwptAlloc(f, f.stdevId, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(rc).toBe('ok');
    f.devs[0].attachPt(hwpt);
    f.fd.hwpt.setDirtyTracking(hwpt, true);
    return { f, hwpt, nbits, bitmap };
  };

  /** test_mock_dirty_bitmaps: dirty every other leaf, read twice, check both reads bit by bit. */
  const dirtyBitmaps = (s: ReturnType<typeof setup>, bitmap: bigint, flags: number) => {
    const { f, hwpt, nbits } = s;
    const pteSize = hugepages ? HUGE : MOCK_PAGE;
    const npte = Number(pteSize / MOCK_PAGE);
    const dev = f.devs[0];
    const one = new Uint8Array([0xd1]);
    for (let iova = MOCK_APERTURE_START; iova < MOCK_APERTURE_START + bufferSize; iova += 2n * pteSize) expect(dev.dma.writeSync(iova, one)).toBe(1);
    const bytes = Math.ceil(nbits / 8);
    const read = () => {
      f.host.process.poke(bitmap, new Uint8Array(bytes));
      const rc = raw(f, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwpt, flags, iova: MOCK_APERTURE_START, length: bufferSize, page_size: MOCK_PAGE, data: bitmap });
      expect(rc).toBe(0);
      return f.host.process.peek(bitmap, bytes);
    };
    /** The bits that differ from `want(bit)`, as a short list for the failure message. */
    const wrongBits = (got: Uint8Array, want: (bit: number) => boolean) => {
      const wrong: number[] = [];
      for (let i = 0; i < nbits && wrong.length < 8; i++) if (((got[i >> 3] >> (i & 7)) & 1) !== (want(i) ? 1 : 0)) wrong.push(i);
      return wrong;
    };
    const dirtied = (bit: number) => Math.floor(bit / npte) % 2 === 0;
    // Every page of every dirtied leaf, none of the others.
    expect(wrongBits(read(), dirtied)).toEqual([]);
    // Read again: cleared by the first read, unless it did not clear.
    const noClear = (flags & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
    expect(wrongBits(read(), (bit) => noClear && dirtied(bit))).toEqual([]);
    if (noClear) {
      // Leave the leaves clean for the next round, as the kernel's next IOMMU_TEST_OP_DIRTY starts over.
      raw(f, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwpt, flags: 0, iova: MOCK_APERTURE_START, length: bufferSize, page_size: MOCK_PAGE, data: bitmap });
    }
  };

  for (const [name, flags] of [
    ['get_dirty_bitmap', 0],
    ['get_dirty_bitmap_no_clear', U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR],
  ] as const) {
    it.runIf(runs)(name, () => {
      const s = setup();
      dirtyBitmaps(s, s.bitmap, flags);
      // PAGE_SIZE unaligned bitmap.
      dirtyBitmaps(s, s.bitmap + 2048n, flags);
      // u64 unaligned bitmap.
      dirtyBitmaps(s, s.bitmap + 0xff1n, flags);
      s.f.devs[0].attachPt(s.f.ioas);
      s.f.fd.destroy(s.hwpt);
    });
  }
});
