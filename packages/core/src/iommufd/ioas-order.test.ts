/**
 * Which errno wins when several IOAS checks fail at once: the order of ioas.c and io_pagetable.c.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { ERRNO } from '../uapi/errno.js';
import { bareFixture, rawIoctl } from '../__tests__/helpers.js';
import { mockFixture } from '../__tests__/mock-host.js';

const PAGE = 4096n;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;

describe('IOAS_MAP: every IOVA check before the pages are touched', () => {
  // iopt_map_pages runs iopt_alloc_area_pages (length, iopt_check_iova, iopt_insert_area's page
  // offset) before iopt_fill_domains_pages pins: EEXIST and EINVAL win over EFAULT.
  it('EEXIST over a bad user_va, page offset EINVAL after EEXIST', () => {
    const f = mockFixture();
    const dev = f.host.device('0000:00:01.0');
    dev.bindIommufd(f.fd);
    const ioas = f.fd.ioas.alloc();
    dev.attachPt(ioas); // a domain: the IOAS alignment is now PAGE_SIZE
    const va = f.host.process.mmap(4 * 4096);
    const M = (init: Partial<ReturnType<typeof U.iommu_ioas_map.zero>>) =>
      rawIoctl(f.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, user_va: va, length: PAGE, iova: 0x100000n, ...init })[0];
    expect(M({})).toBe(0);
    // Unmapped user memory over an existing area: EEXIST (the in-place path and the general one).
    expect(M({ user_va: 0x10n << 40n })).toBe(-ERRNO.EEXIST);
    expect(M({ user_va: 1n << 60n })).toBe(-ERRNO.EEXIST);
    // A misaligned user_va over an existing area: EEXIST comes first, then the offset.
    expect(M({ user_va: va + 0x10n })).toBe(-ERRNO.EEXIST);
    expect(M({ user_va: va + 0x10n, iova: 0x200000n })).toBe(-ERRNO.EINVAL);
    // Auto allocation with an unmapped user_va into a full allowed window: ENOSPC, not EFAULT.
    f.fd.ioas.allowIovas(ioas, [{ start: 0x100000n, last: 0x100fffn }]);
    expect(M({ flags: RW, user_va: 0x10n << 40n })).toBe(-ERRNO.ENOSPC);
  });
});

describe('IOAS_COPY order (iommufd_ioas_copy)', () => {
  it('src_iova overflow before READABLE|WRITEABLE; source lookup before the zero length', () => {
    const { fd } = bareFixture();
    const a = fd.ioas.alloc();
    const C = (init: Partial<ReturnType<typeof U.iommu_ioas_copy.zero>>) =>
      rawIoctl(fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, { src_ioas_id: a, dst_ioas_id: a, flags: U.IOMMU_IOAS_MAP_READABLE, length: PAGE, ...init })[0];
    expect(C({ flags: 0, src_iova: U.ULONG_MAX })).toBe(-ERRNO.EOVERFLOW);
    expect(C({ length: 0n, src_ioas_id: 99 })).toBe(-ERRNO.ENOENT);
    expect(C({ length: 0n })).toBe(-ERRNO.EINVAL);
  });
  it('a fixed destination over an area is EEXIST even when the copy asks for write on read-only pages', () => {
    const { host, fd } = bareFixture();
    const a = fd.ioas.alloc();
    const va = host.process.mmap(4 * 4096);
    fd.run(U.iommu_ioas_map, 'IOAS_MAP', { ioas_id: a, flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_FIXED_IOVA, user_va: va, length: PAGE, iova: 0x10000n });
    fd.run(U.iommu_ioas_map, 'IOAS_MAP', { ioas_id: a, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, user_va: va + PAGE, length: PAGE, iova: 0x20000n });
    const C = (dst: bigint) =>
      rawIoctl(fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, { src_ioas_id: a, dst_ioas_id: a, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, length: PAGE, src_iova: 0x10000n, dst_iova: dst })[0];
    // iopt_check_iova (EEXIST) runs before iopt_insert_area refuses writing read-only pages (EPERM).
    expect(C(0x20000n)).toBe(-ERRNO.EEXIST);
    expect(C(0x30000n)).toBe(-ERRNO.EPERM);
  });
  it('allocates the destination from the source pages address, as iopt_alloc_area_pages does', () => {
    const { host, fd } = bareFixture();
    const a = fd.ioas.alloc();
    const b = fd.ioas.alloc();
    // A user VA aligned to 4 KiB but not 64 KiB: the allocation alignment is min(64 KiB, 4 KiB).
    const base = host.process.mmap(64 * 4096);
    const va = ((base + 0xffffn) & ~0xffffn) + 0x1000n;
    const len = 16n * PAGE;
    const [, m] = rawIoctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: a, flags: RW, user_va: va, length: len });
    // Occupy the first 64 KiB-aligned hole so the two alignments pick different addresses.
    fd.run(U.iommu_ioas_map, 'IOAS_MAP', { ioas_id: b, flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, user_va: va, length: PAGE, iova: 0x10000n });
    const [rc, c] = rawIoctl(fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, { src_ioas_id: a, dst_ioas_id: b, flags: RW, length: len, src_iova: m.iova });
    expect(rc).toBe(0);
    // 4 KiB alignment: the first fit after the occupied page (64 KiB alignment would give 0x20000).
    expect(c.dst_iova).toBe(0x11000n);
  });
});

describe('IOMMU_OPTION order (main.c iommufd_option, ioas.c)', () => {
  it('RLIMIT_MODE SET: EBUSY with objects before a bad value; HUGE_PAGES: the IOAS before the op', () => {
    const { fd } = bareFixture();
    const O = (init: Partial<ReturnType<typeof U.iommu_option.zero>>) => rawIoctl(fd, U.IOMMU_OPTION, U.iommu_option, init)[0];
    expect(O({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 2n })).toBe(-ERRNO.EINVAL);
    const ioas = fd.ioas.alloc();
    expect(O({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 2n })).toBe(-ERRNO.EBUSY);
    expect(O({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: 9, object_id: 99 })).toBe(-ERRNO.ENOENT);
    expect(O({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: 9, object_id: ioas })).toBe(-ERRNO.EOPNOTSUPP);
    expect(O({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: 9, object_id: 1 })).toBe(-ERRNO.EOPNOTSUPP);
  });
});

describe('IOMMU_VFIO_IOAS after DESTROY (main.c iommufd_object_remove)', () => {
  it('destroying the compat IOAS forgets it: a new IOAS with the same id is not the compat IOAS', () => {
    const { fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    expect(rawIoctl(fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { ioas_id: ioas, op: U.IOMMU_VFIO_IOAS_SET })[0]).toBe(0);
    fd.destroy(ioas);
    expect(fd.ioas.alloc()).toBe(ioas);
    expect(rawIoctl(fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_GET })[0]).toBe(-ERRNO.ENODEV);
  });
});

describe('IOAS_MAP_FILE order (io_pagetable.c iopt_map_file_pages)', () => {
  it('checks the zero length (EINVAL) and start overflow (EOVERFLOW) before it looks the fd up (EBADF)', () => {
    const { host, fd } = bareFixture();
    const ioas = fd.ioas.alloc();
    const F = (init: Partial<ReturnType<typeof U.iommu_ioas_map_file.zero>>) =>
      rawIoctl(fd, U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file, { ioas_id: ioas, flags: RW, fd: 999, length: PAGE, ...init })[0];
    expect(F({})).toBe(-ERRNO.EBADF);
    expect(F({ length: 0n })).toBe(-ERRNO.EINVAL);
    expect(F({ start: U.U64_MAX - 10n })).toBe(-ERRNO.EOVERFLOW);
    const mfd = host.process.memfd(2 * 4096);
    expect(F({ fd: mfd, length: 0n })).toBe(-ERRNO.EINVAL);
    expect(F({ fd: mfd, start: U.U64_MAX - 10n })).toBe(-ERRNO.EOVERFLOW);
    // The IOAS lookup still comes before the fd.
    expect(F({ ioas_id: 77 })).toBe(-ERRNO.ENOENT);
  });
});
