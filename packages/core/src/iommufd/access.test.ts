/**
 * Emulated-device access (IOMMUFD_OBJ_ACCESS) and processes, ported from the kernel selftest's
 * `iommufd_ioas` access and fork cases (variants no_domain, mock_domain, two_mock_domain), its
 * `iommufd_mock_domain` user_copy case and the change-process case. The selftest's mock access
 * ioctls (IOMMU_TEST_OP_ACCESS_*) become the typed `fd.access` API.
 */
import { describe, expect, it } from 'vitest';
import { errCode } from '../__tests__/helpers.js';
import { mockFixture, type MockFixture } from '../__tests__/mock-host.js';
import type { PciDevice } from '../host/device.js';
import type { IommufdAccess } from './access.js';

const PAGE = 4096n;
const BUFFER_SIZE = 16 * 4096;
const MOCK_APERTURE_START = 1n << 24n;
const DEVICES = ['0000:00:02.0', '0000:00:01.0', '0000:00:03.0'];

interface IoasFixture extends MockFixture {
  ioas: number;
  devs: PciDevice[];
  buffer: bigint;
  baseIova: bigint;
}

/** FIXTURE_SETUP(iommufd_ioas): an IOAS with `domains` mock domains and a shared buffer. */
function iommufdIoas(domains: number): IoasFixture {
  const f = mockFixture();
  const ioas = f.fd.ioas.alloc();
  const devs: PciDevice[] = [];
  for (let i = 0; i < domains; i++) {
    const d = f.host.device(DEVICES[i]);
    d.bindIommufd(f.fd);
    d.attachPt(ioas);
    devs.push(d);
  }
  // MAP_SHARED | MAP_ANONYMOUS, as the selftest's buffer: a fork shares it.
  const buffer = f.host.process.mmap(BUFFER_SIZE, { shared: true });
  return { ...f, ioas, devs, buffer, baseIova: domains > 0 ? MOCK_APERTURE_START : 0n };
}

/** A mock device attached to the IOAS (test_cmd_mock_domain). */
function mockDomain(f: MockFixture, ioas: number, bdf = '0000:00:03.1'): PciDevice {
  const d = f.host.device(bdf);
  d.bindIommufd(f.fd);
  d.attachPt(ioas);
  return d;
}

/** IOMMU_TEST_OP_MD_CHECK_MAP: the domain behind `dev` maps every page of the range to the buffer's frame. */
function checkMockIova(f: MockFixture, dev: PciDevice, va: bigint, iova: bigint, length: number): void {
  const frames = new Float64Array(length / 4096);
  f.host.process.resolvePages(Number(va / PAGE), frames.length, false, frames);
  for (let i = 0; i < frames.length; i++) expect(dev.translatePage(Number(iova / PAGE) + i, 1)).toBe(frames[i]);
}

let seed = 1;
function rand16(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed & 0xffff;
}

/**
 * check_access_rw: reads and writes around a page boundary, then the whole buffer. The kernel tries
 * every length from 1 to 63 at every offset; the model tries the lengths at the word and page-size
 * edges (1, 2, 7, 8, 9, 31, 32, 63) at every offset, which crosses the boundary the same ways.
 */
function checkAccessRw(f: IoasFixture, access: IommufdAccess, iova: bigint): void {
  const data = new Uint8Array(BUFFER_SIZE);
  for (let i = 0; i < data.length; i += 2) new DataView(data.buffer).setUint16(i, rand16(), true);
  f.host.process.poke(f.buffer, data);
  for (let at = iova + PAGE - 50n; at < iova + PAGE + 50n; at++) {
    for (const len of [1, 2, 7, 8, 9, 31, 32, 63]) {
      const tmp = new Uint8Array(len);
      access.rw(at, tmp);
      expect(tmp).toEqual(f.host.process.peek(f.buffer + (at - iova), len));
      for (let i = 0; i < len; i++) tmp[i] = rand16() & 0xff;
      access.rw(at, tmp, { write: true });
      expect(f.host.process.peek(f.buffer + (at - iova), len)).toEqual(tmp);
    }
  }
  // Multi-page.
  const all = new Uint8Array(BUFFER_SIZE);
  access.rw(iova, all);
  expect(all).toEqual(f.host.process.peek(f.buffer, BUFFER_SIZE));
}

/** A pinning access that records its pins and drops them when told to unmap (the mock driver). */
function pinningAccess(f: MockFixture): { access: IommufdAccess; pins: Map<number, [bigint, bigint]>; pin: (iova: bigint, length: bigint) => number; unpin: (id: number) => void } {
  const pins = new Map<number, [bigint, bigint]>();
  let next = 1;
  const access: IommufdAccess = f.fd.access.create({
    unmap: (iova, length) => {
      for (const [id, [pi, pl]] of pins) {
        if (pi <= iova + length - 1n && pi + pl - 1n >= iova) {
          access.unpinPages(pi, pl);
          pins.delete(id);
        }
      }
    },
  });
  return {
    access,
    pins,
    pin: (iova, length) => {
      access.pinPages(iova, length);
      pins.set(next, [iova, length]);
      return next++;
    },
    unpin: (id) => {
      const p = pins.get(id);
      if (!p) throw new Error('ENOENT');
      access.unpinPages(p[0], p[1]);
      pins.delete(id);
    },
  };
}

describe.each([
  ['no_domain', 0],
  ['mock_domain', 1],
  ['two_mock_domain', 2],
] as const)('iommufd_ioas (%s): accesses and processes', (_variant, domains) => {
  it('access_domain_destory', () => {
    const f = iommufdIoas(domains);
    const buf = f.host.process.mmap(4 * 1024 * 1024, { hugePageSize: 2 * 1024 * 1024 });
    f.fd.ioas.map({ ioasId: f.ioas, userVa: buf, length: 4n << 20n, iova: f.baseIova });
    const a = pinningAccess(f);
    a.access.attach(f.ioas);
    const id = a.pin(f.baseIova + PAGE, PAGE);
    // Destroying the domains leaves the access's pin in place (an unpin across a huge page).
    for (const d of f.devs) d.unbind();
    expect(f.host.process.lockedPages).toBe(1);
    a.unpin(id);
    f.fd.destroy(a.access.id);
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('access_pin', () => {
    const f = iommufdIoas(domains);
    const a = pinningAccess(f);
    a.access.attach(f.ioas);
    for (let npages = 1; npages < BUFFER_SIZE / 4096; npages++) {
      const length = BigInt(npages) * PAGE;
      // Single map/unmap.
      f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START });
      a.unpin(a.pin(MOCK_APERTURE_START, length));
      // Double user.
      const first = a.pin(MOCK_APERTURE_START, length);
      a.unpin(a.pin(MOCK_APERTURE_START, length));
      a.unpin(first);
      // Add/remove a domain with a user.
      const id = a.pin(MOCK_APERTURE_START, length);
      const dev = mockDomain(f, f.ioas);
      checkMockIova(f, dev, f.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
      dev.unbind();
      a.unpin(id);
      f.fd.ioas.unmap(f.ioas, MOCK_APERTURE_START, BigInt(BUFFER_SIZE));
    }
    f.fd.destroy(a.access.id);
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('access_pin_unmap', () => {
    const f = iommufdIoas(domains);
    const a = pinningAccess(f);
    a.access.attach(f.ioas);
    f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START });
    const id = a.pin(MOCK_APERTURE_START, BigInt(BUFFER_SIZE));
    // Trigger the unmap op: the access is told and unpins.
    f.fd.ioas.unmap(f.ioas, MOCK_APERTURE_START, BigInt(BUFFER_SIZE));
    // The kernel removed the item for us.
    expect(() => a.unpin(id)).toThrow('ENOENT');
    expect(f.host.process.lockedPages).toBe(0);
  });

  it('access_rw', () => {
    const f = iommufdIoas(domains);
    const access = f.fd.access.create();
    access.attach(f.ioas);
    const iova = f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE) });
    checkAccessRw(f, access, iova);
    f.fd.ioas.unmap(f.ioas, iova, BigInt(BUFFER_SIZE));
    f.fd.destroy(access.id);
  });

  it.runIf(domains === 0)('access_rw_unaligned (the mock domain maps 4 KiB pages only, so no_domain)', () => {
    const f = iommufdIoas(domains);
    const access = f.fd.access.create();
    access.attach(f.ioas);
    const iova = f.baseIova + 2048n;
    f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE), iova });
    checkAccessRw(f, access, iova);
    f.fd.ioas.unmap(f.ioas, iova, BigInt(BUFFER_SIZE));
  });

  it('fork_gone', () => {
    const f = iommufdIoas(domains);
    const access = f.fd.access.create();
    access.attach(f.ioas);
    // Create a mapping with a different mm.
    const child = f.host.process.fork();
    f.fd.asProcess(child, () => f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START }));
    child.exit();
    if (domains > 0) {
      // A domain already existed: everything was pinned within the fork, so a new domain is filled
      // from the pinned pages.
      mockDomain(f, f.ioas);
      checkAccessRw(f, access, MOCK_APERTURE_START);
    } else {
      // Pinning now needs the gone process's memory.
      expect(errCode(() => mockDomain(f, f.ioas))).toBe('EFAULT');
    }
  });

  it('fork_present', () => {
    const f = iommufdIoas(domains);
    const access = f.fd.access.create();
    access.attach(f.ioas);
    const child = f.host.process.fork();
    f.fd.asProcess(child, () => f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START }));
    // Read pages from the remote process.
    mockDomain(f, f.ioas);
    checkAccessRw(f, access, MOCK_APERTURE_START);
    // The pins are charged to the process that mapped.
    expect(child.lockedPages).toBe(BUFFER_SIZE / 4096);
    expect(f.host.process.lockedPages).toBe(0);
    child.exit();
  });
});

describe('access errnos (device.c iommufd_access_*)', () => {
  it('checks length, overflow, attachment, holes, protection and alignment as the kernel does', () => {
    const f = iommufdIoas(1);
    const rwOnly = f.fd.access.create();
    expect(errCode(() => rwOnly.rw(0x1000n, new Uint8Array(4)))).toBe('ENOENT');
    expect(errCode(() => rwOnly.rw(0x1000n, new Uint8Array(0)))).toBe('EINVAL');
    expect(errCode(() => rwOnly.replace(f.ioas))).toBe('ENOENT');
    expect(errCode(() => rwOnly.attach(999))).toBe('ENOENT');
    rwOnly.attach(f.ioas);
    expect(errCode(() => rwOnly.attach(f.ioas))).toBe('EINVAL');
    // An access that takes no unmap notifications may not pin.
    expect(errCode(() => rwOnly.pinPages(MOCK_APERTURE_START, PAGE))).toBe('EINVAL');
    const ro = f.host.process.mmap(2 * 4096);
    f.fd.ioas.map({ ioasId: f.ioas, userVa: ro, length: 2n * PAGE, iova: MOCK_APERTURE_START, writeable: false });
    expect(errCode(() => rwOnly.rw(MOCK_APERTURE_START, new Uint8Array(4), { write: true }))).toBe('EPERM');
    expect(errCode(() => rwOnly.rw(MOCK_APERTURE_START + PAGE, new Uint8Array(2 * 4096)))).toBe('ENOENT');
    expect(errCode(() => rwOnly.rw(0xffff_ffff_ffff_fff0n, new Uint8Array(32)))).toBe('EOVERFLOW');
    const a = pinningAccess(f);
    a.access.attach(f.ioas);
    expect(errCode(() => a.access.pinPages(MOCK_APERTURE_START, PAGE, { write: true }))).toBe('EPERM');
    expect(errCode(() => a.access.pinPages(MOCK_APERTURE_START, 3n * PAGE))).toBe('ENOENT');
    // The IOAS cannot be destroyed while accesses hold it.
    expect(errCode(() => f.fd.destroy(f.ioas))).toBe('EBUSY');
    expect(f.host.process.lockedPages).toBe(2);
  });

  it('an access that ignores the unmap notification makes the unmap fail with EDEADLK', () => {
    const f = iommufdIoas(0);
    const stubborn = f.fd.access.create({ unmap: () => undefined });
    stubborn.attach(f.ioas);
    f.fd.ioas.map({ ioasId: f.ioas, userVa: f.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START });
    stubborn.pinPages(MOCK_APERTURE_START, PAGE);
    expect(errCode(() => f.fd.ioas.unmap(f.ioas, MOCK_APERTURE_START, BigInt(BUFFER_SIZE)))).toBe('EDEADLK');
    stubborn.unpinPages(MOCK_APERTURE_START, PAGE);
    expect(f.fd.ioas.unmap(f.ioas, MOCK_APERTURE_START, BigInt(BUFFER_SIZE))).toBe(BigInt(BUFFER_SIZE));
  });
});

describe('iommufd_mock_domain: user_copy', () => {
  it('pins pages in an IOAS without domains, copies them to one with domains, then replaces the IOAS', () => {
    const f = mockFixture();
    const ioas = f.fd.ioas.alloc();
    const dev = mockDomain(f, ioas, '0000:00:02.0');
    const buffer = f.host.process.mmap(BUFFER_SIZE, { shared: true });
    f.host.process.poke(buffer, new Uint8Array(BUFFER_SIZE).fill(0x3c));
    const src = f.fd.ioas.alloc();
    let srcIova = f.fd.ioas.map({ ioasId: src, userVa: buffer, length: BigInt(BUFFER_SIZE) });
    const a = pinningAccess(f);
    a.access.attach(src);
    let id = a.pin(srcIova, BigInt(BUFFER_SIZE));
    f.fd.ioas.copy({ dstIoasId: ioas, srcIoasId: src, srcIova, length: BigInt(BUFFER_SIZE), dstIova: MOCK_APERTURE_START });
    checkMockIova(f, dev, buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    // Now replace the IOAS with a new one.
    const next = f.fd.ioas.alloc();
    srcIova = f.fd.ioas.map({ ioasId: next, userVa: buffer, length: BigInt(BUFFER_SIZE) });
    a.access.replace(next);
    expect(a.pins.has(id)).toBe(false);
    // Destroy the old IOAS and clean up the copied mapping.
    f.fd.ioas.unmap(ioas, MOCK_APERTURE_START, BigInt(BUFFER_SIZE));
    f.fd.destroy(src);
    // Then the same again with the new IOAS.
    id = a.pin(srcIova, BigInt(BUFFER_SIZE));
    f.fd.ioas.copy({ dstIoasId: ioas, srcIoasId: next, srcIova, length: BigInt(BUFFER_SIZE), dstIova: MOCK_APERTURE_START });
    checkMockIova(f, dev, buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    a.unpin(id);
    f.fd.destroy(a.access.id);
    f.fd.ioas.unmap(ioas, MOCK_APERTURE_START, BigInt(BUFFER_SIZE));
    f.fd.destroy(next);
    expect(f.host.process.lockedPages).toBe(0);
  });
});

describe('change_process', () => {
  it('moves the pinned-page charge of MAP_FILE mappings to the calling process', () => {
    const f = mockFixture();
    const ioas = f.fd.ioas.alloc();
    mockDomain(f, ioas, '0000:00:02.0');
    const mfd = f.host.process.memfd(BUFFER_SIZE);
    f.fd.ioas.mapFile({ ioasId: ioas, fd: mfd, start: 0n, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START });
    const parent = f.host.process;
    expect(parent.lockedPages).toBe(16);
    const child = parent.fork();
    f.fd.asProcess(child, () => f.fd.ioas.changeProcess());
    expect([parent.lockedPages, child.lockedPages]).toEqual([0, 16]);
    // The new process's limit applies, nothing moves on ENOMEM.
    parent.rlimitMemlock = 4 * 4096;
    expect(errCode(() => f.fd.ioas.changeProcess())).toBe('ENOMEM');
    expect([parent.lockedPages, child.lockedPages]).toEqual([0, 16]);
    // A user-VA mapping cannot move (its memory is the old process's address space).
    f.fd.ioas.map({ ioasId: ioas, userVa: f.host.process.mmap(4096), length: PAGE, iova: MOCK_APERTURE_START + BigInt(BUFFER_SIZE) });
    expect(errCode(() => f.fd.asProcess(child, () => f.fd.ioas.changeProcess()))).toBe('EINVAL');
  });
});
