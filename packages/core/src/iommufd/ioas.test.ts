import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as U from '../uapi/iommufd.js';
import { ERRNO, IommufdError } from '../uapi/errno.js';
import { bareFixture, errCode, rawIoctl } from '../__tests__/helpers.js';
import { mockFixture } from '../__tests__/mock-host.js';
import { ObjType } from './objects.js';
import type { Ioas } from './ioas.js';

const MiB = 1n << 20n;
const PAGE = 4096n;

function expectErr(fn: () => unknown, code: string): void {
  expect(errCode(fn)).toBe(code);
}

describe('IOMMU_IOAS_ALLOC and DESTROY', () => {
  it('allocates ids from 1 and reuses the lowest free id', () => {
    const { fd } = bareFixture();
    expect(fd.ioas.alloc()).toBe(1);
    expect(fd.ioas.alloc()).toBe(2);
    expect(fd.ioas.alloc()).toBe(3);
    fd.destroy(2);
    expect(fd.ioas.alloc()).toBe(2);
  });
  it('rejects flags with EOPNOTSUPP and leaves no object behind', () => {
    const { fd } = bareFixture();
    expect(rawIoctl(fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, { flags: 1 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(fd.ctx.objects.count).toBe(0);
    expect(fd.ioas.alloc()).toBe(1);
  });
  it('destroy of a missing id is ENOENT', () => {
    const { fd } = bareFixture();
    expectErr(() => fd.destroy(7), 'ENOENT');
    expect(rawIoctl(fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 0 })[0]).toBe(-ERRNO.ENOENT);
  });
});

describe('IOMMU_IOAS_MAP / UNMAP', () => {
  it('maps at a fixed IOVA, rejects overlaps with EEXIST and unmaps', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(1 * Number(MiB));
    expect(fd.ioas.map({ ioasId: ioas, userVa: va, length: MiB, iova: 0x100000n })).toBe(0x100000n);
    expectErr(() => fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE, iova: 0x1ff000n }), 'EEXIST');
    expect(fd.ioas.unmap(ioas, 0x100000n, MiB)).toBe(MiB);
    expectErr(() => fd.ioas.unmap(ioas, 0x100000n, MiB), 'ENOENT');
  });
  it('follows the kernel validation order', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(65536);
    const m = (init: Partial<ReturnType<typeof U.iommu_ioas_map.zero>>) =>
      rawIoctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: va, length: PAGE, flags: U.IOMMU_IOAS_MAP_READABLE, ...init })[0];
    expect(m({ flags: 1 << 3 })).toBe(-ERRNO.EOPNOTSUPP);
    expect(m({ __reserved: 1 })).toBe(-ERRNO.EOPNOTSUPP);
    expect(m({ length: U.ULONG_MAX })).toBe(-ERRNO.EOVERFLOW);
    expect(m({ iova: U.ULONG_MAX, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_FIXED_IOVA })).toBe(-ERRNO.EOVERFLOW);
    expect(m({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA })).toBe(-ERRNO.EINVAL);
    expect(m({ ioas_id: 99 })).toBe(-ERRNO.ENOENT);
    // iopt_alloc_user_pages: user_va + length past ULONG_MAX first, then the zero length.
    expect(m({ user_va: U.ULONG_MAX - 0xfffn, length: 0x1000n })).toBe(-ERRNO.EOVERFLOW);
    expect(m({ length: 0n })).toBe(-ERRNO.EINVAL);
    expect(m({ length: 0n, user_va: U.ULONG_MAX })).toBe(-ERRNO.EINVAL);
    expect(fd.ctx.objects.count).toBe(1);
    // Nothing is pinned without a domain: memory that is not mapped at all maps fine (lazy pinning).
    expect(m({ user_va: 0x1000n })).toBe(0);
    expect(host.process.lockedPages).toBe(0);
  });
  it('maps read-only memory WRITEABLE lazily; the pin at attach faults (EFAULT, check_vma_flags)', () => {
    const f = mockFixture();
    const { host, fd } = f;
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(8192, { prot: 1 });
    const iova = fd.ioas.map({ ioasId: ioas, userVa: va, length: 8192n });
    expect(iova).toBeGreaterThan(0n);
    const dev = host.device('0000:00:02.0');
    dev.bindIommufd(fd);
    expectErr(() => dev.attachPt(ioas), 'EFAULT');
    fd.ioas.unmap(ioas, iova, 8192n);
    expect(fd.ioas.map({ ioasId: ioas, userVa: va, length: 8192n, writeable: false })).toBeGreaterThan(0n);
    dev.attachPt(ioas);
    expect(host.process.lockedPages).toBe(2);
  });
  it('allocates IOVAs aligned to the length, never 0, avoiding existing areas', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4 * Number(MiB));
    const a = fd.ioas.map({ ioasId: ioas, userVa: va, length: 2n * MiB });
    expect(a).not.toBe(0n);
    expect(a % (2n * MiB)).toBe(0n);
    const b = fd.ioas.map({ ioasId: ioas, userVa: va, length: 2n * MiB });
    expect(b).not.toBe(a);
    expect(b % (2n * MiB)).toBe(0n);
    const c = fd.ioas.map({ ioasId: ioas, userVa: va + 0x1000n, length: PAGE });
    expect(c % PAGE).toBe(0n);
  });
  it('caps the automatic alignment at HPAGE_SIZE (iopt_alloc_iova)', () => {
    const { fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    // A 4 MiB map from a VA aligned to 2^40: min(roundup(4 MiB), 2^40) capped at 2 MiB, so the
    // first hole from PAGE_SIZE gives 2 MiB, which is not 4 MiB aligned. Nothing is pinned, so the
    // VA need not be mapped.
    const iova = fd.ioas.map({ ioasId: ioas, userVa: 1n << 40n, length: 4n * MiB });
    expect(iova).toBe(2n * MiB);
    // Without an address the alignment is roundup_pow_of_two(length), capped the same way.
    expect(fd.ioas.map({ ioasId: ioas, userVa: 0n, length: 3n * PAGE, writeable: false })).toBe(0x1000n * 4n);
    // Allowed ranges are clamped to [PAGE_SIZE, ULONG_MAX - PAGE_SIZE] before allocating in them.
    const b = fd.ioas.alloc();
    fd.ioas.allowIovas(b, [{ start: 0n, last: 0xffffn }]);
    expect(fd.ioas.map({ ioasId: b, userVa: 0x7000n, length: PAGE })).toBe(0x1000n);
  });
  it('keeps the sub-page offset of the user address when allocating', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(8192);
    const iova = fd.ioas.map({ ioasId: ioas, userVa: va + 0x10n, length: 0x100n });
    expect(iova % PAGE).toBe(0x10n);
  });
  it('allocates inside the allowed ranges only, ENOSPC when none fits', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    fd.ioas.allowIovas(ioas, [{ start: 0x40000000n, last: 0x40001fffn }]);
    const va = host.process.mmap(65536);
    expect(fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE })).toBe(0x40000000n);
    expect(fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE })).toBe(0x40001000n);
    expectErr(() => fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE }), 'ENOSPC');
    // iopt_check_iova looks at alignment, reserved ranges and areas only: the allowed list steers
    // allocation, so a FIXED_IOVA map outside it succeeds.
    expect(fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE, iova: 0x1000n })).toBe(0x1000n);
  });
  it('does not split: an area crossing the range is ENOENT, the areas before it already removed', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(65536);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 2n * PAGE, iova: 0x10000n });
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 2n * PAGE, iova: 0x12000n });
    // iopt_unmap_iova_range removes [0x10000, 0x12000) before it meets the crossing area.
    expectErr(() => fd.ioas.unmap(ioas, 0x10000n, 3n * PAGE), 'ENOENT');
    expect([...fd.ctx.objects.get<Ioas>(ioas, ObjType.IOAS).iopt.iterAreas()].map((a) => a.iova)).toEqual([0x12000n]);
    // A crossing first area removes nothing.
    expectErr(() => fd.ioas.unmap(ioas, 0x13000n, PAGE), 'ENOENT');
    expect(fd.ioas.unmap(ioas, 0x10000n, 4n * PAGE)).toBe(2n * PAGE);
    // An empty range is ENOENT for IOAS_UNMAP.
    expectErr(() => fd.ioas.unmap(ioas, 0x10000n, 4n * PAGE), 'ENOENT');
  });
  it('unmap-all with iova 0 and length U64_MAX succeeds even when empty', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    expect(fd.ioas.unmapAll(ioas)).toBe(0n);
    const va = host.process.mmap(65536);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 3n * PAGE, iova: 0x10000n });
    fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE, iova: 0x80000n });
    expect(fd.ioas.unmapAll(ioas)).toBe(4n * PAGE);
    const [rc, out] = rawIoctl(fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: 0n, length: U.U64_MAX });
    expect(rc).toBe(0);
    expect(out.length).toBe(0n);
    expect(rawIoctl(fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: 0x1000n, length: 0n })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: U.U64_MAX - 1n, length: 4n })[0]).toBe(-ERRNO.EOVERFLOW);
  });
});

describe('IOMMU_IOAS_IOVA_RANGES and ALLOW_IOVAS', () => {
  it('reports [0, ULONG_MAX] with alignment 1 for an empty IOAS', () => {
    const { fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const r = fd.ioas.iovaRanges(ioas);
    expect(r.ranges).toEqual([{ start: 0n, last: U.ULONG_MAX }]);
    expect(r.alignment).toBe(1n);
  });
  it('returns EMSGSIZE with the needed count when the array is too small', () => {
    // A device with an MSI window attached: the holes are [0, window) and (window, aperture end].
    const { host, fd } = mockFixture();
    const ioas = fd.ioas.alloc();
    const dev = host.device('0000:00:01.0');
    dev.bindIommufd(fd);
    dev.attachPt(ioas);
    const buf = host.process.mmap(4096);
    const [rc, out] = rawIoctl(fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: 1, allowed_iovas: buf });
    expect(rc).toBe(-ERRNO.EMSGSIZE);
    expect(out.num_iovas).toBe(2);
    const [rc2, out2] = rawIoctl(fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: 2, allowed_iovas: buf });
    expect(rc2).toBe(0);
    expect(out2.num_iovas).toBe(2);
    const first = U.iommu_iova_range.decode(host.process.peek(buf, 16));
    const second = U.iommu_iova_range.decode(host.process.peek(buf + 16n, 16));
    expect(first).toEqual({ start: 0n, last: 0xfedfffffn });
    expect(second).toEqual({ start: 0xfef00000n, last: (1n << 39n) - 1n });
    expect(out2.out_iova_alignment).toBe(4096n);
    expect(rawIoctl(fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, __reserved: 1 })[0]).toBe(-ERRNO.EOPNOTSUPP);
  });
  it('rejects bad allowed lists and keeps the old list', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    fd.ioas.allowIovas(ioas, [{ start: 0x1000n, last: 0xffffn }]);
    expectErr(() => fd.ioas.allowIovas(ioas, [{ start: 0x2000n, last: 0x2000n }]), 'EINVAL');
    expectErr(
      () =>
        fd.ioas.allowIovas(ioas, [
          { start: 0x1000n, last: 0x3fffn },
          { start: 0x3000n, last: 0x5fffn },
        ]),
      'EINVAL',
    );
    const iopt = (fd.ctx.objects.peek(ioas) as unknown as { iopt: { allowedRanges(): unknown[] } }).iopt;
    expect(iopt.allowedRanges()).toEqual([{ start: 0x1000n, last: 0xffffn }]);
    // The allowed list restricts allocation, not what IOVA_RANGES reports (the reserved tree's holes).
    expect(fd.ioas.iovaRanges(ioas).ranges).toEqual([{ start: 0n, last: U.ULONG_MAX }]);
    // Through the raw path with a bad pointer: EFAULT.
    expect(rawIoctl(fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 1, allowed_iovas: 0x10n })[0]).toBe(-ERRNO.EFAULT);
    void host;
  });
});

describe('IOMMU_IOAS_COPY', () => {
  it('shares pages (each page pinned once) and requires a fully mapped source', () => {
    const { host, fd } = mockFixture();
    const a = fd.ioas.alloc();
    const b = fd.ioas.alloc();
    const va = host.process.mmap(65536);
    fd.ioas.map({ ioasId: a, userVa: va, length: 4n * PAGE, iova: 0x10000n });
    // Lazy pinning: nothing is pinned until a domain needs the pages.
    expect(host.process.lockedPages).toBe(0);
    const d1 = host.device('0000:00:01.0');
    d1.bindIommufd(fd);
    d1.attachPt(a);
    expect(host.process.lockedPages).toBe(4);
    const dst = fd.ioas.copy({ dstIoasId: b, srcIoasId: a, srcIova: 0x11000n, length: 2n * PAGE });
    expect(dst % PAGE).toBe(0n);
    const d2 = host.device('0000:00:02.0');
    d2.bindIommufd(fd);
    d2.attachPt(b);
    expect(host.process.lockedPages).toBe(4);
    expectErr(() => fd.ioas.copy({ dstIoasId: b, srcIoasId: a, srcIova: 0x13000n, length: 2n * PAGE }), 'ENOENT');
    expectErr(() => fd.ioas.copy({ dstIoasId: b, srcIoasId: 42, srcIova: 0x10000n, length: PAGE }), 'ENOENT');
    // The pages only the unmapped area covered are unpinned; the copy keeps its two pinned.
    fd.ioas.unmapAll(a);
    expect(host.process.lockedPages).toBe(2);
    fd.ioas.unmapAll(b);
    expect(host.process.lockedPages).toBe(0);
  });
});

describe('accounting, options, VFIO_IOAS, MAP_FILE', () => {
  it('charges pinned pages against RLIMIT_MEMLOCK with ENOMEM and no leak', () => {
    const { host, fd } = mockFixture();
    host.process.rlimitMemlock = 4 * 4096;
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(65536);
    const dev = host.device('0000:00:02.0');
    dev.bindIommufd(fd);
    dev.attachPt(ioas);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 3n * PAGE });
    expectErr(() => fd.ioas.map({ ioasId: ioas, userVa: va + 3n * PAGE, length: 2n * PAGE }), 'ENOMEM');
    expect(host.process.lockedPages).toBe(3);
    // A second MAP of the same memory is a second pages object, charged again (as the kernel does).
    expectErr(() => fd.ioas.map({ ioasId: ioas, userVa: va, length: 3n * PAGE }), 'ENOMEM');
    // Without a domain the map is lazy and charges nothing; attaching pins and hits the limit.
    const other = fd.ioas.alloc();
    fd.ioas.map({ ioasId: other, userVa: va + 3n * PAGE, length: 2n * PAGE });
    const dev2 = host.device('0000:00:01.0');
    dev2.bindIommufd(fd);
    expectErr(() => dev2.attachPt(other), 'ENOMEM');
    expect(host.process.lockedPages).toBe(3);
  });
  it('gets and sets options with the kernel errnos', () => {
    const { host, fd } = bareFixture();
    expect(fd.option.getRlimitMode()).toBe(0);
    fd.option.setRlimitMode(1);
    expect(fd.option.getRlimitMode()).toBe(1);
    const ioas = fd.ioas.alloc();
    expectErr(() => fd.option.setRlimitMode(0), 'EBUSY');
    expect(fd.ioas.getHugePages(ioas)).toBe(true);
    fd.ioas.setHugePages(ioas, false);
    expect(fd.ioas.getHugePages(ioas)).toBe(false);
    expect(fd.ioas.iovaRanges(ioas).alignment).toBe(4096n);
    expect(rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, { option_id: 1, op: 0, object_id: ioas, val64: 2n })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, { option_id: 1, op: 1, object_id: 77 })[0]).toBe(-ERRNO.ENOENT);
    expect(rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, { option_id: 9, op: 1 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, { option_id: 0, op: 2 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, { option_id: 0, op: 1, object_id: 1 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    host.process.capSysResource = false;
    expect(rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, { option_id: 0, op: 0, val64: 0n })[0]).toBe(-ERRNO.EPERM);
  });
  it('VFIO_IOAS get/set/clear', () => {
    const { fd } = bareFixture();
    expectErr(() => fd.vfioIoas.get(), 'ENODEV');
    expectErr(() => fd.vfioIoas.set(3), 'ENOENT');
    const ioas = fd.ioas.alloc();
    fd.vfioIoas.set(ioas);
    expect(fd.vfioIoas.get()).toBe(ioas);
    fd.vfioIoas.clear();
    expectErr(() => fd.vfioIoas.get(), 'ENODEV');
  });
  it('maps memfds with MAP_FILE; a range past the end fails only when it is pinned (memfd_pin_folios)', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const mfd = host.process.memfd(8 * 4096);
    expect(fd.ioas.mapFile({ ioasId: ioas, fd: mfd, start: 0n, length: 8n * PAGE, iova: 0x200000n })).toBe(0x200000n);
    // Without a domain nothing is pinned: past the end of the file maps, and so does a file that is
    // not a memfd (here the iommufd itself); an access pin of them then fails with EINVAL.
    const past = fd.ioas.mapFile({ ioasId: ioas, fd: mfd, start: 4096n, length: 8n * PAGE });
    const notMemfd = fd.ioas.mapFile({ ioasId: ioas, fd: fd.fd, start: 0n, length: PAGE });
    const access = fd.access.create({ unmap: () => undefined });
    access.attach(ioas);
    expectErr(() => access.pinPages(past, 8n * PAGE), 'EINVAL');
    expectErr(() => access.pinPages(notMemfd, PAGE), 'EINVAL');
    access.pinPages(past, 7n * PAGE);
    access.unpinPages(past, 7n * PAGE);
    fd.destroy(access.id);
    fd.ioas.unmap(ioas, past, 8n * PAGE);
    fd.ioas.unmap(ioas, notMemfd, PAGE);
    expectErr(() => fd.ioas.mapFile({ ioasId: ioas, fd: 99, start: 0n, length: PAGE }), 'EBADF');
    fd.ioas.changeProcess();
    const va = host.process.mmap(4096);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE });
    expectErr(() => fd.ioas.changeProcess(), 'EINVAL');
  });
  it('closing the fd destroys every object', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4096);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: PAGE });
    host.process.close(fd.fd);
    expect(fd.ctx.objects.count).toBe(0);
    expect(host.process.lockedPages).toBe(0);
    expectErr(() => fd.ioas.alloc(), 'EBADF');
  });
});

describe('property: IOAS matches a reference address space', () => {
  type Op = { kind: 'map'; page: number; pages: number } | { kind: 'unmap'; page: number; pages: number } | { kind: 'copy'; page: number; pages: number; dst: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('map' as const), page: fc.integer({ min: 0, max: 63 }), pages: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('unmap' as const), page: fc.integer({ min: 0, max: 63 }), pages: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('copy' as const), page: fc.integer({ min: 0, max: 63 }), pages: fc.integer({ min: 1, max: 4 }), dst: fc.integer({ min: 64, max: 120 }) }),
  );

  it('holds exactly what the reference holds; failed commands change nothing', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const { host, fd } = bareFixture();
        const ioas = fd.ioas.alloc();
        const va = host.process.mmap(256 * 4096);
        // Reference: page -> [area id, user page]; areas are [startPage, pages].
        const ref = new Map<number, { area: number; upage: number }>();
        const areas = new Map<number, { start: number; pages: number }>();
        let nextArea = 1;
        for (const o of ops) {
          const start = BigInt(o.page) * PAGE;
          if (o.kind === 'map') {
            const overlap = [...Array(o.pages).keys()].some((i) => ref.has(o.page + i));
            let ok = true;
            try {
              fd.ioas.map({ ioasId: ioas, userVa: va + start, length: BigInt(o.pages) * PAGE, iova: start });
            } catch (e) {
              ok = false;
              expect((e as IommufdError).code).toBe('EEXIST');
            }
            expect(ok).toBe(!overlap);
            if (ok) {
              const id = nextArea++;
              areas.set(id, { start: o.page, pages: o.pages });
              for (let i = 0; i < o.pages; i++) ref.set(o.page + i, { area: id, upage: o.page + i });
            }
          } else if (o.kind === 'unmap') {
            const hit = new Set<number>();
            for (let i = 0; i < o.pages; i++) if (ref.has(o.page + i)) hit.add(ref.get(o.page + i)!.area);
            // iopt_unmap_iova_range goes in IOVA order and stops at the first area crossing the range,
            // the areas before it already removed.
            const inOrder = [...hit].sort((x, y) => areas.get(x)!.start - areas.get(y)!.start);
            const crossing = inOrder.findIndex((id) => {
              const a = areas.get(id)!;
              return a.start < o.page || a.start + a.pages > o.page + o.pages;
            });
            let got: bigint | string;
            try {
              got = fd.ioas.unmap(ioas, start, BigInt(o.pages) * PAGE);
            } catch (e) {
              got = (e as IommufdError).code;
            }
            let bytes = 0n;
            for (const id of crossing < 0 ? inOrder : inOrder.slice(0, crossing)) {
              const a = areas.get(id)!;
              bytes += BigInt(a.pages) * PAGE;
              for (let i = 0; i < a.pages; i++) ref.delete(a.start + i);
              areas.delete(id);
            }
            expect(got).toBe(hit.size === 0 || crossing >= 0 ? 'ENOENT' : bytes);
          } else {
            const full = [...Array(o.pages).keys()].every((i) => ref.has(o.page + i));
            const dstFree = [...Array(o.pages).keys()].every((i) => !ref.has(o.dst + i));
            let ok = true;
            try {
              fd.ioas.copy({ dstIoasId: ioas, srcIoasId: ioas, srcIova: start, length: BigInt(o.pages) * PAGE, dstIova: BigInt(o.dst) * PAGE });
            } catch (e) {
              ok = false;
              expect(['ENOENT', 'EEXIST']).toContain((e as IommufdError).code);
            }
            expect(ok).toBe(full && dstFree);
            if (ok) {
              // One destination area per source area piece.
              let i = 0;
              while (i < o.pages) {
                const srcArea = ref.get(o.page + i)!.area;
                let n = 0;
                while (i + n < o.pages && ref.get(o.page + i + n)!.area === srcArea) n++;
                const id = nextArea++;
                areas.set(id, { start: o.dst + i, pages: n });
                for (let k = 0; k < n; k++) ref.set(o.dst + i + k, { area: id, upage: ref.get(o.page + i + k)!.upage });
                i += n;
              }
            }
          }
          // Compare: every reference page resolves to the same user page's frame.
          const iopt = (fd.ctx.objects.peek(ioas) as unknown as { iopt: import('./io-pagetable.js').IoPagetable }).iopt;
          let mappedPages = 0;
          for (const a of iopt.iterAreas()) mappedPages += a.npages;
          expect(mappedPages).toBe(ref.size);
          for (const [page, r] of ref) {
            const a = iopt.areaAt(BigInt(page) * PAGE);
            expect(a).toBeDefined();
            const idx = a!.pageIndex + Number((BigInt(page) * PAGE - a!.iova) / PAGE);
            const frames = new Float64Array(1);
            host.process.resolvePages(Number(va / PAGE) + r.upage, 1, false, frames);
            expect(a!.pages.sourceFrame(idx)).toBe(frames[0]);
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('regressions found by the uAPI fuzz', () => {
  it('IOAS_MAP of a huge length over a small mapping is lazy without a domain and faults (EFAULT) at attach, sizing nothing by it', () => {
    const { host, fd } = mockFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4 * 4096);
    let iova = 0x100000n;
    for (const length of [1n << 36n, 1n << 34n, 1n << 32n]) {
      const [rc] = rawIoctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: 7, ioas_id: ioas, user_va: va, length, iova });
      expect(rc).toBe(0);
      iova += length;
    }
    const dev = host.device('0000:00:02.0');
    dev.bindIommufd(fd);
    expectErr(() => dev.attachPt(ioas), 'EFAULT');
    fd.ioas.unmapAll(ioas);
    dev.attachPt(ioas);
    // With the domain attached the pin happens at MAP: EFAULT there, also for read-only memory
    // mapped WRITEABLE (check_vma_flags).
    for (const length of [1n << 36n, 1n << 32n]) {
      expect(rawIoctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: 7, ioas_id: ioas, user_va: va, length, iova: 0x100000n })[0]).toBe(-ERRNO.EFAULT);
    }
    const ro = host.process.mmap(4096, { prot: 1 });
    expect(rawIoctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: 7, ioas_id: ioas, user_va: ro, length: 1n << 32n, iova: 0x100000n })[0]).toBe(-ERRNO.EFAULT);
    expect(host.process.lockedPages).toBe(0);
    expect(fd.ioas.iovaRanges(ioas).ranges.length).toBeGreaterThan(0);
  });

  it('IOAS_ALLOW_IOVAS copies range by range: EFAULT at the first unreadable one, EINVAL for a bad earlier one', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4096);
    host.process.poke(va, new Uint8Array(4096).fill(0));
    // Ranges of zeros (start >= last) are EINVAL at the first one.
    expect(rawIoctl(fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: (1 << 26) - 1, allowed_iovas: va })[0]).toBe(-ERRNO.EINVAL);
    // Valid ranges up to the end of the buffer, then the copy of the next one faults.
    const bytes = new Uint8Array(4096);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < 256; i++) {
      dv.setBigUint64(i * 16, BigInt(i) * 0x10000n + 0x1000n, true);
      dv.setBigUint64(i * 16 + 8, BigInt(i) * 0x10000n + 0x1fffn, true);
    }
    host.process.poke(va, bytes);
    expect(rawIoctl(fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 257, allowed_iovas: va })[0]).toBe(-ERRNO.EFAULT);
    // A bad range before the unreadable one is EINVAL.
    dv.setBigUint64(8 * 16 + 8, 0n, true);
    host.process.poke(va, bytes);
    expect(rawIoctl(fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 257, allowed_iovas: va })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 8, allowed_iovas: va })[0]).toBe(0);
  });

  it('IOAS_COPY whose source range overflows is EOVERFLOW (iopt_get_pages check_add_overflow), not ENOENT', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4096);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: U.U64_MAX - 4095n });
    const [rc] = rawIoctl(fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, { flags: 6, dst_ioas_id: ioas, src_ioas_id: ioas, src_iova: U.U64_MAX - 4095n, length: 0x2000n });
    expect(rc).toBe(-ERRNO.EOVERFLOW);
  });

  it('HUGE_PAGES = 0 is EADDRINUSE while an area starts inside its first page (page_offset misaligned)', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(2 * 4096);
    // A page-aligned IOVA and length, but the user address sits 0x10 into its page.
    fd.ioas.map({ ioasId: ioas, userVa: va + 0x10n, length: 4096n, iova: 0x1000n });
    expectErr(() => fd.ioas.setHugePages(ioas, false), 'EADDRINUSE');
    expect(fd.ioas.getHugePages(ioas)).toBe(true);
    expect(fd.ioas.iovaRanges(ioas).alignment).toBe(1n);
  });

  it('the typed API refuses values its C fields cannot hold (EINVAL) instead of wrapping or trusting them', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4096);
    expectErr(() => fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: -4096n }), 'EINVAL');
    expectErr(() => fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 1n << 64n }), 'EINVAL');
    expectErr(() => fd.ioas.unmap(ioas, -4096n, 8192n), 'EINVAL');
    expectErr(() => fd.ioas.allowIovas(ioas, [{ start: -4096n, last: 4096n }]), 'EINVAL');
    // destroy(1.5) must not destroy object 1.
    expectErr(() => fd.destroy(ioas + 0.5), 'EINVAL');
    expectErr(() => fd.destroy(-1), 'EINVAL');
    expectErr(() => fd.ioas.map({ ioasId: NaN, userVa: va, length: 4096n }), 'EINVAL');
    expect(fd.ctx.objects.peek(ioas)).toBeDefined();
    expect([...(fd.ctx.objects.peek(ioas) as unknown as { iopt: { iterAreas(): Iterable<unknown> } }).iopt.iterAreas()]).toHaveLength(0);
    expect(host.process.lockedPages).toBe(0);
  });
});
