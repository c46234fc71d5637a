/**
 * The VFIO type1 container ioctls on /dev/iommu (vfio_compat.c), ported from the kernel selftest's
 * `iommufd` VFIO cases and the `vfio_compat_mock_domain` fixture (variants Ver1v2 and Ver1v0), plus
 * a DPDK-style session end to end with device DMA.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import * as V from '../uapi/vfio.js';
import { ERRNO } from '../uapi/errno.js';
import { errCode, rawIoctl } from '../__tests__/helpers.js';
import { mockFixture, type MockFixture } from '../__tests__/mock-host.js';

const PAGE = 4096n;
const BUFFER_SIZE = 16 * 4096;
const MOCK_APERTURE_START = 1n << 24n;
const MOCK_APERTURE_LAST = (1n << 39n) - 1n;
const HUGEPAGE = 2n * 1024n * 1024n;

function mapCmd(init: Partial<ReturnType<typeof V.vfio_iommu_type1_dma_map.zero>>): Uint8Array {
  return V.vfio_iommu_type1_dma_map.encode({ ...V.vfio_iommu_type1_dma_map.zero(), argsz: V.vfio_iommu_type1_dma_map.size, ...init });
}

function unmapCmd(init: Partial<ReturnType<typeof V.vfio_iommu_type1_dma_unmap.zero>>): Uint8Array {
  return V.vfio_iommu_type1_dma_unmap.encode({ ...V.vfio_iommu_type1_dma_unmap.zero(), argsz: V.vfio_iommu_type1_dma_unmap.size, ...init });
}

describe('iommufd fixture: the VFIO ioctls without a compat IOAS', () => {
  it('simple_ioctls', () => {
    const { fd } = mockFixture();
    expect(fd.ioctl(V.VFIO_GET_API_VERSION)).toBe(V.VFIO_API_VERSION);
    expect(fd.ioctl(V.VFIO_CHECK_EXTENSION, V.VFIO_TYPE1v2_IOMMU)).toBe(1);
  });

  it('unmap_cmd', () => {
    const { fd } = mockFixture();
    const cmd = (init: Partial<ReturnType<typeof V.vfio_iommu_type1_dma_unmap.zero>>) => fd.ioctl(V.VFIO_IOMMU_UNMAP_DMA, unmapCmd({ iova: MOCK_APERTURE_START, size: PAGE, ...init }));
    expect(cmd({ argsz: 1 })).toBe(-ERRNO.EINVAL);
    expect(cmd({ flags: 1 << 31 })).toBe(-ERRNO.EINVAL);
    expect(cmd({ flags: 0 })).toBe(-ERRNO.ENODEV);
  });

  it('map_cmd', () => {
    const { host, fd } = mockFixture();
    const buffer = host.process.mmap(BUFFER_SIZE);
    const cmd = (init: Partial<ReturnType<typeof V.vfio_iommu_type1_dma_map.zero>>) => fd.ioctl(V.VFIO_IOMMU_MAP_DMA, mapCmd({ iova: MOCK_APERTURE_START, size: PAGE, vaddr: buffer, ...init }));
    expect(cmd({ argsz: 1 })).toBe(-ERRNO.EINVAL);
    expect(cmd({ flags: 1 << 31 })).toBe(-ERRNO.EINVAL);
    // Requires a compat IOAS.
    expect(cmd({ flags: V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE })).toBe(-ERRNO.ENODEV);
  });

  it('info_cmd', () => {
    const { fd } = mockFixture();
    const info = (argsz: number) => fd.ioctl(V.VFIO_IOMMU_GET_INFO, V.vfio_iommu_type1_info.encode({ ...V.vfio_iommu_type1_info.zero(), argsz }));
    expect(info(1)).toBe(-ERRNO.EINVAL);
    expect(info(V.vfio_iommu_type1_info.size)).toBe(-ERRNO.ENODEV);
  });

  it('set_iommu_cmd', () => {
    const { fd } = mockFixture();
    expect(fd.ioctl(V.VFIO_SET_IOMMU, V.VFIO_TYPE1v2_IOMMU)).toBe(-ERRNO.ENODEV);
    expect(fd.ioctl(V.VFIO_SET_IOMMU, V.VFIO_TYPE1_IOMMU)).toBe(-ERRNO.ENODEV);
  });

  it('answers CHECK_EXTENSION as vfio_compat.c does, and ENOTTY for what it does not handle', () => {
    const { fd } = mockFixture();
    const ext = (t: number) => fd.ioctl(V.VFIO_CHECK_EXTENSION, t);
    expect([V.VFIO_TYPE1_IOMMU, V.VFIO_TYPE1v2_IOMMU, V.VFIO_UNMAP_ALL, V.VFIO_NOIOMMU_IOMMU].map(ext)).toEqual([1, 1, 1, 1]);
    expect([V.VFIO_RESERVED_TYPE1_NESTING_IOMMU, V.VFIO_UPDATE_VADDR, V.VFIO_SPAPR_TCE_IOMMU, V.VFIO_EEH, 1234].map(ext)).toEqual([0, 0, 0, 0, 0]);
    // DMA_CC_IOMMU asks the compat IOAS: its errno is the answer without one.
    expect(ext(V.VFIO_DMA_CC_IOMMU)).toBe(-ERRNO.ENODEV);
    expect(fd.ioctl(V.VFIO_SET_IOMMU, V.VFIO_SPAPR_TCE_IOMMU)).toBe(-ERRNO.EINVAL);
    expect(fd.ioctl(V.VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(16))).toBe(-ERRNO.ENOTTY);
    expect(fd.ioctl(0x3b00 | 0x7f, new Uint8Array(16))).toBe(-ERRNO.ENOTTY);
    // A struct argument behind a NULL pointer faults (selftest cmd_fail).
    expect(fd.ioctl(U.IOMMU_DESTROY, 0n)).toBe(-ERRNO.EFAULT);
  });
});

interface CompatFixture extends MockFixture {
  ioas: number;
  buffer: bigint;
}

/** FIXTURE_SETUP(vfio_compat_mock_domain): an IOAS with a mock domain, made the compat IOAS. */
function vfioCompatMockDomain(version: number): CompatFixture {
  const f = mockFixture();
  const ioas = f.fd.ioas.alloc();
  const dev = f.host.device('0000:00:02.0');
  dev.bindIommufd(f.fd);
  dev.attachPt(ioas);
  expect(rawIoctl(f.fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioas })[0]).toBe(0);
  expect(f.fd.ioctl(V.VFIO_SET_IOMMU, version)).toBe(0);
  const buffer = f.host.process.mmap(BUFFER_SIZE);
  return { ...f, ioas, buffer };
}

/** The selftest's shuffle: every index once, in a fixed pseudo-random order. */
function shuffled<T>(xs: T[], seed = 7): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe.each([
  ['Ver1v2', V.VFIO_TYPE1v2_IOMMU],
  ['Ver1v0', V.VFIO_TYPE1_IOMMU],
] as const)('vfio_compat_mock_domain (%s)', (_variant, version) => {
  it('simple_close', () => {
    const f = vfioCompatMockDomain(version);
    f.host.process.close(f.fd.fd);
    expect(f.fd.ctx.objects.count).toBe(0);
  });

  it('option_huge_pages', () => {
    const f = vfioCompatMockDomain(version);
    expect(f.fd.ioas.getHugePages(f.ioas)).toBe(version !== V.VFIO_TYPE1_IOMMU);
  });

  it('get_info', () => {
    const f = vfioCompatMockDomain(version);
    const buffer = new Uint8Array(BUFFER_SIZE);
    const flags = V.VFIO_IOMMU_INFO_PGSIZES | V.VFIO_IOMMU_INFO_CAPS;
    // ioctl_check_buf: the kernel never writes past argsz.
    const checkBuf = (argsz: number) => {
      buffer.fill(0);
      buffer.set(V.vfio_iommu_type1_info.encode({ ...V.vfio_iommu_type1_info.zero(), argsz }));
      const len = Math.max(argsz, 4);
      buffer.fill(0xaa, len);
      expect(f.fd.ioctl(V.VFIO_IOMMU_GET_INFO, buffer)).toBe(0);
      expect(buffer.subarray(len).every((b) => b === 0xaa)).toBe(true);
      return V.vfio_iommu_type1_info.decode(buffer);
    };
    // Pre-cap ABI.
    let info = checkBuf(V.vfio_iommu_type1_info.offsetof('cap_offset'));
    expect(info.iova_pgsizes).not.toBe(0n);
    expect(info.flags).toBe(flags);
    // Read the cap chain size.
    info = checkBuf(V.vfio_iommu_type1_info.size);
    expect(info.iova_pgsizes).not.toBe(0n);
    expect(info.flags).toBe(flags);
    expect(info.cap_offset).toBe(0);
    expect(info.argsz).toBeGreaterThan(V.vfio_iommu_type1_info.size);
    // Read the caps at every size: the kernel never writes a corrupted chain.
    const caplen = info.argsz;
    let chains = 0;
    for (let i = V.vfio_iommu_type1_info.size; i < caplen + 8; i++) {
      info = checkBuf(i);
      expect(info.flags).toBe(flags);
      if (info.cap_offset === 0) continue;
      chains++;
      // check_vfio_info_cap_chain
      const argsz = i;
      let at = info.cap_offset;
      const seen: number[] = [];
      for (;;) {
        expect(argsz).toBeGreaterThanOrEqual(at + V.vfio_info_cap_header.size);
        const h = V.vfio_info_cap_header.decode(buffer, at);
        seen.push(h.id);
        expect(h.version).toBe(1);
        if (h.id === V.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          const c = V.vfio_iommu_type1_info_cap_iova_range.decode(buffer, at);
          expect(c.nr_iovas).toBe(1);
          const r = V.vfio_iova_range.decode(buffer, at + V.vfio_iommu_type1_info_cap_iova_range.size);
          // The mock device has no reserved regions: the hole is the mock domain's aperture.
          expect([r.start, r.end]).toEqual([0n, MOCK_APERTURE_LAST]);
        } else if (h.id === V.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
          expect(V.vfio_iommu_type1_info_dma_avail.decode(buffer, at).avail).toBe(0xffff_ffff);
          // Capabilities start 8-byte aligned: the 12-byte cap takes 16 before the next one.
          if (h.next) expect(h.next - at).toBe(16);
        } else throw new Error(`unexpected capability ${h.id}`);
        if (!h.next) break;
        expect(h.next).toBeGreaterThan(at);
        at = h.next;
      }
      expect(seen).toEqual([V.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, V.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]);
    }
    expect(chains).toBe(8);
  });

  it('map', () => {
    const f = vfioCompatMockDomain(version);
    const map = (init: Partial<ReturnType<typeof V.vfio_iommu_type1_dma_map.zero>>) =>
      f.fd.ioctl(V.VFIO_IOMMU_MAP_DMA, mapCmd({ flags: V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE, vaddr: f.buffer, size: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START, ...init }));
    const unmap = (init: Partial<ReturnType<typeof V.vfio_iommu_type1_dma_unmap.zero>>): [number, bigint] => {
      const buf = unmapCmd({ size: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START, ...init });
      const rc = f.fd.ioctl(V.VFIO_IOMMU_UNMAP_DMA, buf);
      return [rc, V.vfio_iommu_type1_dma_unmap.decode(buf).size];
    };
    // Simple map/unmap.
    expect(map({})).toBe(0);
    expect(unmap({})).toEqual([0, BigInt(BUFFER_SIZE)]);
    // Unmap of empty is success.
    expect(unmap({})).toEqual([0, 0n]);
    // UNMAP_FLAG_ALL requires 0 iova/size.
    expect(map({})).toBe(0);
    expect(unmap({ flags: V.VFIO_DMA_UNMAP_FLAG_ALL })[0]).toBe(-ERRNO.EINVAL);
    expect(unmap({ flags: V.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n })).toEqual([0, BigInt(BUFFER_SIZE)]);
    // Small pages.
    const pages: bigint[] = [];
    for (let i = 0n; i < BigInt(BUFFER_SIZE) / PAGE; i++) {
      pages.push(MOCK_APERTURE_START + i * PAGE);
      expect(map({ iova: MOCK_APERTURE_START + i * PAGE, vaddr: f.buffer + i * PAGE, size: PAGE })).toBe(0);
    }
    for (const iova of shuffled(pages)) expect(unmap({ iova, size: PAGE })[0]).toBe(0);
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('huge_map', () => {
    const f = vfioCompatMockDomain(version);
    const bufSize = HUGEPAGE * 2n;
    const buf = f.host.process.mmap(bufSize);
    const map = mapCmd({ flags: V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE, size: bufSize, iova: MOCK_APERTURE_START, vaddr: buf });
    expect(f.fd.ioctl(V.VFIO_IOMMU_MAP_DMA, map)).toBe(0);
    const piece = bufSize / 16n;
    const iovas = shuffled([...Array(16).keys()].map((i) => MOCK_APERTURE_START + BigInt(i) * piece));
    // type1 mode can cut up larger mappings, type1v2 always fails.
    for (const iova of iovas) {
      const rc = f.fd.ioctl(V.VFIO_IOMMU_UNMAP_DMA, unmapCmd({ iova, size: piece }));
      expect(rc).toBe(version === V.VFIO_TYPE1_IOMMU ? 0 : -ERRNO.ENOENT);
    }
    expect(f.host.process.lockedPages).toBe(version === V.VFIO_TYPE1_IOMMU ? 0 : Number(bufSize / PAGE));
  });
});

describe('VFIO compatibility end to end', () => {
  it('a DPDK-style container session: version, extensions, SET_IOMMU, GET_INFO, MAP_DMA, device DMA, UNMAP_DMA, UNMAP_ALL', async () => {
    const { host, fd } = mockFixture();
    const vfio = fd.vfio;
    expect(vfio.apiVersion()).toBe(V.VFIO_API_VERSION);
    expect(vfio.checkExtension(V.VFIO_TYPE1v2_IOMMU)).toBe(1);
    // No group in the container yet: SET_IOMMU fails as VFIO does.
    expect(errCode(() => vfio.setIommu(V.VFIO_TYPE1v2_IOMMU))).toBe('ENODEV');

    // VFIO_GROUP_SET_CONTAINER: the compat IOAS is created and the group's device attached to it.
    const ioas = vfio.compatIoas();
    expect(fd.vfioIoas.get()).toBe(ioas);
    expect(vfio.compatIoas()).toBe(ioas);
    const dev = host.device('0000:00:02.0');
    dev.bindIommufd(fd);
    dev.attachPt(ioas);
    expect(vfio.checkExtension(V.VFIO_DMA_CC_IOMMU)).toBe(1);
    vfio.setIommu(V.VFIO_TYPE1v2_IOMMU);

    const info = vfio.getInfo();
    expect(info.flags).toBe(V.VFIO_IOMMU_INFO_PGSIZES | V.VFIO_IOMMU_INFO_CAPS);
    // The mock domain maps 4 KiB and 2 MiB pages.
    expect(info.iovaPgsizes).toBe(PAGE | HUGEPAGE);
    expect(info.dmaAvail).toBe(0xffff_ffff);
    expect(info.iovaRanges).toEqual([{ start: 0n, last: MOCK_APERTURE_LAST }]);

    // A hugepage-backed buffer, as DPDK's memory segments are.
    const va = host.process.mmap(HUGEPAGE);
    const pattern = Uint8Array.from({ length: 64 }, (_, i) => i * 3);
    host.process.poke(va + 0x1000n, pattern);
    const iova = 0x1_0000_0000n;
    vfio.mapDma({ vaddr: va, iova, size: HUGEPAGE });
    expect(host.process.lockedPages).toBe(512);
    expect(await dev.dma.read(iova + 0x1000n, 64)).toEqual(pattern);
    await dev.dma.write(iova + 0x3000n, Uint8Array.of(0xde, 0xad));
    expect(host.process.peek(va + 0x3000n, 2)).toEqual(Uint8Array.of(0xde, 0xad));
    // A read-only map refuses device writes: a DMA fault for the write (PERM_WRITE 2) at that address.
    const ro = host.process.mmap(PAGE);
    vfio.mapDma({ vaddr: ro, iova: iova + HUGEPAGE, size: PAGE, write: false });
    await expect(dev.dma.write(iova + HUGEPAGE, Uint8Array.of(1))).rejects.toMatchObject({ fault: { kind: 'dma', addr: iova + HUGEPAGE, perm: 2 } });

    expect(vfio.unmapDma(iova, HUGEPAGE)).toBe(HUGEPAGE);
    await expect(dev.dma.read(iova, 4)).rejects.toMatchObject({ fault: { kind: 'dma', addr: iova } });
    // Unmapping an empty range succeeds with 0 bytes (VFIO type1 semantics).
    expect(vfio.unmapDma(iova, HUGEPAGE)).toBe(0n);
    // Errno of the underlying map: an overlapping fixed IOVA is EEXIST.
    vfio.mapDma({ vaddr: va, iova, size: HUGEPAGE });
    expect(errCode(() => vfio.mapDma({ vaddr: va, iova: iova + PAGE, size: PAGE }))).toBe('EEXIST');
    expect(vfio.unmapAll()).toBe(HUGEPAGE + PAGE);
    expect(host.process.lockedPages).toBe(0);
  });

  it('TYPE1 (v1) needs page-aligned areas; a group joining a no-IOMMU container is refused', () => {
    const { host, fd } = mockFixture();
    const ioas = fd.vfio.compatIoas();
    const va = host.process.mmap(PAGE);
    // Without a domain any alignment maps; large pages cannot go off with a sub-page area.
    fd.ioas.map({ ioasId: ioas, userVa: va + 0x10n, length: 0x100n, iova: 0x2010n });
    expect(errCode(() => fd.vfio.setIommu(V.VFIO_TYPE1_IOMMU))).toBe('EADDRINUSE');
    fd.ioas.unmapAll(ioas);
    fd.vfio.setIommu(V.VFIO_TYPE1_IOMMU);
    expect(fd.ioas.getHugePages(ioas)).toBe(false);
    fd.ctx.noIommuMode = true;
    fd.vfioIoas.clear();
    expect(errCode(() => fd.vfio.compatIoas())).toBe('EINVAL');
    expect(errCode(() => fd.vfio.setIommu(V.VFIO_TYPE1v2_IOMMU))).toBe('EINVAL');
    expect(fd.ioctl(V.VFIO_SET_IOMMU, V.VFIO_NOIOMMU_IOMMU)).toBe(0);
    host.process.capSysRawio = false;
    expect(fd.ioctl(V.VFIO_SET_IOMMU, V.VFIO_NOIOMMU_IOMMU)).toBe(-ERRNO.EPERM);
  });
});
