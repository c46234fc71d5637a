/**
 * Sizes past what the model allows are IommufdErrors with the kernel's errno, decided before anything is
 * sized by them: never a RangeError from a typed array, never a multi-gigabyte allocation.
 */
import { describe, expect, it } from 'vitest';
import { errCode } from '../__tests__/helpers.js';
import { FrameAllocator, PhysicalMemory } from './physical.js';
import { HostProcess, MAX_OBJECT_PAGES } from './process.js';

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
