/**
 * Sizes past what the model allows are IommufdErrors with the kernel's errno, decided before anything is
 * sized by them: never a RangeError from a typed array, never a multi-gigabyte allocation.
 */
import { describe, expect, it } from 'vitest';
import { errCode } from '../__tests__/helpers.js';
import { FrameAllocator, PhysicalMemory } from './physical.js';
import { HostProcess, MAX_OBJECT_PAGES } from './process.js';
import { Errno } from '../uapi/errno.js';

/** The errno chargePinned throws (an Errno, which the ioctl turns into the IommufdError), or 'ok'. */
function charge(p: HostProcess, pages: number): string {
  try {
    p.chargePinned(pages);
  } catch (e) {
    if (e instanceof Errno) return e.code;
    throw e;
  }
  return 'ok';
}

function proc(): HostProcess {
  const mem = new PhysicalMemory();
  return new HostProcess(mem, new FrameAllocator(mem));
}


describe('user memory limits', () => {
  it('mmap: no room below TASK_SIZE is ENOMEM, an object past 64 GiB of 4 KiB pages is ENOMEM', () => {
    const p = proc();
    expect(errCode(() => p.mmap(2n ** 50n))).toBe('ENOMEM');
    expect(errCode(() => p.mmap((MAX_OBJECT_PAGES + 1) * 4096))).toBe('ENOMEM');
    expect(errCode(() => p.mmap(0))).toBe('EINVAL');
    expect(errCode(() => p.mmap(-4096))).toBe('EINVAL');
    // Huge pages index one entry per huge page: 64 GiB of 1 GiB pages is fine.
    expect(errCode(() => p.mmap(64 * 2 ** 30, { hugePageSize: 2 ** 30 }))).toBe('ok');
    expect(errCode(() => p.mmap(4096))).toBe('ok');
  });

  it('memfd, ftruncate and write past the cap are ENOMEM; nonsense sizes EINVAL', () => {
    const p = proc();
    expect(errCode(() => p.memfd(2 ** 45))).toBe('ENOMEM');
    expect(errCode(() => p.memfd(-1))).toBe('EINVAL');
    const fd = p.memfd(4096);
    expect(errCode(() => p.ftruncate(fd, 2 ** 50))).toBe('ENOMEM');
    expect(errCode(() => p.ftruncate(fd, Number.NaN))).toBe('EINVAL');
    expect(errCode(() => p.mmap(4096, { fd, offset: MAX_OBJECT_PAGES * 4096 }))).toBe('ENOMEM');
    expect(errCode(() => p.ftruncate(fd, 8192))).toBe('ok');
  });
});

describe('RLIMIT_MEMLOCK in pages (pages.c incr_user_locked_vm)', () => {
  it('compares the pages pinned with the limit shifted down to pages, a limit that is not whole pages included', () => {
    const p = proc();
    // 4 pages and 100 bytes: RLIMIT_MEMLOCK >> PAGE_SHIFT is 4.
    p.rlimitMemlock = 4 * 4096 + 100;
    p.chargePinned(3);
    p.chargePinned(1);
    expect(charge(p, 1)).toBe('ENOMEM');
    expect(p.lockedPages).toBe(4);
    p.unchargePinned(4);
    p.rlimitMemlock = 4095;
    expect(charge(p, 1)).toBe('ENOMEM');
    expect(p.lockedPages).toBe(0);
  });

  it('charges past 2 GiB and 4 GiB pinned up to the limit exactly, and refuses the page after it', () => {
    const p = proc();
    // 8 GiB of pages, 2^21: the byte totals pass 2^31 and 2^32 on the way.
    p.rlimitMemlock = 2 ** 33;
    p.chargePinned(2 ** 19 - 1);
    p.chargePinned(1);
    p.chargePinned(1);
    expect(p.lockedPages).toBe(2 ** 19 + 1);
    p.chargePinned(2 ** 21 - p.lockedPages);
    expect(p.lockedPages).toBe(2 ** 21);
    expect(charge(p, 1)).toBe('ENOMEM');
    expect(p.lockedPages).toBe(2 ** 21);
    // Unlimited (Infinity, `ulimit -l unlimited`) takes anything.
    p.rlimitMemlock = Number.POSITIVE_INFINITY;
    p.chargePinned(2 ** 30);
    expect(p.lockedPages).toBe(2 ** 21 + 2 ** 30);
  });
});
