/**
 * IOMMU_IOAS_COPY in numbers (copyNum: gatherNum + mapGatheredNum, run areas over the iommufd's
 * RunPages) against the path over MapElement objects that every copy took before
 * (iommufdIoasCopyElements: getElements + mapElements). Two hosts run the same ops; one copies through
 * the uAPI (the raw ioctl or the typed call), the other through the element path. Every result and errno, the areas of every IOAS with the state of their pages (users,
 * pins and frame of every page), the pins charged and every domain's page table must be the same.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { WalkResult } from '../driver/pgtable.js';
import { FailNth, NO_FAULT_INJECTION } from '../driver/inject.js';
import { xorshiftRandom } from '../__tests__/helpers.js';
import { mockFixture } from '../__tests__/mock-host.js';
import type { HwptPaging } from './hwpt.js';
import { getIoas, iommufdIoasCopyElements } from './ioas.js';
import type { IoPagetable } from './io-pagetable.js';
import type { AreaIndex } from './area-index.js';

const PAGE = 4096;
const BASE = 1 << 24;
const USER_PAGES = 256;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
const FIXED = U.IOMMU_IOAS_MAP_FIXED_IOVA;

/** How a side copies: through the uAPI (raw ioctl or typed call) or through the element path. */
type Via = 'raw' | 'typed' | 'elements';

function side(reference: boolean) {
  const f = mockFixture();
  const dev = f.host.device('0000:00:02.0');
  const devId = dev.bindIommufd(f.fd);
  const src = f.fd.ioas.alloc();
  const dst = f.fd.ioas.alloc();
  // An IOAS without a domain: nothing it maps or copies is pinned.
  const lazy = f.fd.ioas.alloc();
  const proc = f.host.process;
  const va = proc.mmap(USER_PAGES * PAGE);
  // Pages faulted in from the top down: a map of several of them has frames in several runs.
  for (let p = USER_PAGES - 1; p >= USER_PAGES / 2; p--) proc.poke(va + BigInt(p * PAGE), new Uint8Array([p]));
  proc.poke(va, new Uint8Array((USER_PAGES / 2) * PAGE).fill(3));
  const roVa = proc.mmap(16 * PAGE);
  proc.poke(roVa, new Uint8Array(16 * PAGE).fill(4));
  const mfd = proc.memfd(32 * PAGE);
  const mapBuf = new Uint8Array(U.iommu_ioas_map.size);
  /** A raw IOAS_MAP (the fast handler: compact areas for page-aligned memory). */
  const rawMap = (ioas: number, iova: number, userVa: bigint, pages: number, flags = FIXED | RW): string => {
    U.iommu_ioas_map.encode(U.iommu_ioas_map.make({ size: U.iommu_ioas_map.size, flags, ioas_id: ioas, user_va: userVa, length: BigInt(pages * PAGE), iova: BigInt(iova) }), mapBuf);
    const rc = f.fd.ioctl(U.IOMMU_IOAS_MAP, mapBuf);
    return rc === 0 ? 'ok' : `${f.fd.lastError?.code}`;
  };
  const copyBuf = new Uint8Array(U.iommu_ioas_copy.size);
  const copy = (via: Via, from: number, to: number, srcIova: number, length: number, dstIova: number | null, flags = RW): string => {
    const cmd = { size: U.iommu_ioas_copy.size, flags: dstIova === null ? flags : flags | FIXED, src_ioas_id: from, dst_ioas_id: to, length: BigInt(length), src_iova: BigInt(srcIova), dst_iova: BigInt(dstIova ?? 0) };
    if (reference) via = 'elements';
    if (via === 'raw') {
      U.iommu_ioas_copy.encode(U.iommu_ioas_copy.make(cmd), copyBuf);
      const rc = f.fd.ioctl(U.IOMMU_IOAS_COPY, copyBuf);
      return rc === 0 ? `ok ${U.iommu_ioas_copy.decode(copyBuf).dst_iova}` : `${f.fd.lastError?.code}`;
    }
    try {
      if (via === 'typed') return `ok ${f.fd.run(U.iommu_ioas_copy, 'IOAS_COPY', cmd).dst_iova}`;
      const value = U.iommu_ioas_copy.make(cmd);
      f.fd.call('IOMMU_IOAS_COPY', () => iommufdIoasCopyElements(f.fd.ctx, value));
      return `ok ${value.dst_iova}`;
    } catch (e) {
      return `${(e as { code?: string }).code ?? String(e)}`;
    }
  };
  const iopt = (ioas: number): IoPagetable => getIoas(f.fd.ctx, ioas).iopt;
  return { f, dev, devId, src, dst, lazy, va, roVa, mfd, rawMap, copy, iopt };
}

type Side = ReturnType<typeof side>;

/** An IOAS's areas with the state of their pages: users, pins and the frame of every page. */
function areasOf(iopt: IoPagetable): unknown[] {
  return [...iopt.iterAreas()].map((a) => {
    const pages: string[] = [];
    for (let k = 0; k < a.npages; k++) pages.push(`${a.pages.frame(a.pageIndex + k)}x${a.pages.pinCount(a.pageIndex + k)}`);
    return [a.iova, a.last, a.prot, a.pageIndex, a.pageOffset, a.numAccesses, a.pages.users, a.pages.npinned, a.pages.segments, a.pages.base, a.pages.writable, pages.join(' ')];
  });
}

/** Everything the two sides must agree on: pins charged, areas, and every domain at every page of every area (and around it). */
function state(s: Side): unknown[] {
  const out: unknown[] = [s.f.host.process.lockedPages];
  const pfns = new Set<number>();
  // An IOAS destroyed by the test is left out.
  const ids = [s.src, s.dst, s.lazy].filter((id) => s.f.fd.ctx.objects.peek(id) !== undefined);
  for (const id of ids) {
    out.push(areasOf(s.iopt(id)));
    for (const a of s.iopt(id).iterAreas()) {
      const first = Math.floor(a.iovaNum / PAGE);
      for (let p = first - 1; p <= Math.floor(a.lastNum / PAGE) + 1; p++) pfns.add(p);
    }
  }
  const wr = new WalkResult();
  for (const id of ids) {
    for (const d of s.iopt(id).domains) out.push([...pfns].sort((x, y) => x - y).map((p) => ((d as HwptPaging).ops.pt.walk(p, wr) ? `${p}:${wr.pfn}:${wr.perm}` : `${p}:-`)));
  }
  return out;
}

/** Run areas whose entry is still numbers, in an IOAS's index (white box). */
function liveRuns(iopt: IoPagetable): number {
  const low = (iopt as unknown as { low: AreaIndex }).low;
  let n = 0;
  for (let c = 0; c < low.chunkCount; c++) for (let i = 0; i < low.chunkLength(c); i++) if (low.runAt(c, i) >= 0) n++;
  return n;
}

/**
 * The source's areas, every kind: compact single pages and runs of pages (before and after the
 * domain came), pages in several runs of frames, read-only memory, an area of the typed call's
 * general handler, a memfd; the destination gets a domain of its own. Returns the slots used, and
 * those before the read-only areas.
 */
function populate(s: Side): { slots: number; rw: number } {
  const { f, src, dst, va, roVa, rawMap } = s;
  let slot = 0;
  const at = (n: number) => BASE + (slot += n) * PAGE - n * PAGE;
  // Compact areas mapped before any domain (pinned when the domain comes).
  for (let k = 0; k < 40; k++) expect(rawMap(src, at(1), va + BigInt(k * PAGE), 1)).toBe('ok');
  for (let k = 0; k < 6; k++) expect(rawMap(src, at(4), va + BigInt((40 + 4 * k) * PAGE), 4)).toBe('ok');
  expect(s.dev.attachPt(src)).toBeGreaterThan(0);
  for (let k = 0; k < 40; k++) expect(rawMap(src, at(1), va + BigInt((70 + (k % 20)) * PAGE), 1)).toBe('ok');
  // Pages faulted in from the top down: frames in several runs (an object area).
  for (let k = 0; k < 4; k++) expect(rawMap(src, at(3), va + BigInt((USER_PAGES - 20 + 3 * k) * PAGE), 3)).toBe('ok');
  // The typed call (an area with its own pages object) and a memfd.
  f.fd.ioas.map({ ioasId: src, userVa: va + BigInt(100 * PAGE), length: BigInt(2 * PAGE), iova: BigInt(at(2)) });
  f.fd.ioas.mapFile({ ioasId: src, fd: s.mfd, start: 0n, length: BigInt(8 * PAGE), iova: BigInt(at(8)) });
  for (let k = 0; k < 20; k++) expect(rawMap(src, at(1), va + BigInt((110 + k) * PAGE), 1)).toBe('ok');
  const rw = slot;
  // Read-only memory mapped READABLE only, last (EPERM for a WRITEABLE copy of it).
  for (let k = 0; k < 4; k++) expect(rawMap(src, at(1), roVa + BigInt(k * PAGE), 1, FIXED | U.IOMMU_IOAS_MAP_READABLE)).toBe('ok');
  f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.devId, pt_id: dst });
  return { slots: slot, rw };
}

function twoSides() {
  const a = side(false);
  const b = side(true);
  const both = (fn: (s: Side) => unknown): unknown => {
    const x = fn(a);
    expect(x).toEqual(fn(b));
    expect(state(a)).toEqual(state(b));
    return x;
  };
  return { a, b, both };
}

describe('IOAS_COPY in numbers', () => {
  it('gives the results, errors, areas, pins and page tables of the element path over areas of every kind', () => {
    const { a, b, both } = twoSides();
    const { slots, rw } = populate(a);
    expect(populate(b)).toEqual({ slots, rw });
    expect(state(a)).toEqual(state(b));
    const rnd = xorshiftRandom(2463534242);
    const vias: Via[] = ['raw', 'typed'];
    let ok = 0;
    const errors = new Set<string>();
    const tally = (r: unknown) => {
      if (typeof r === 'string' && r.startsWith('ok')) ok++;
      else errors.add(String(r));
    };
    // Whole-window copies first: every kind at once, fixed and allocated, into a domain and into none.
    expect(both((s) => s.copy('raw', s.src, s.dst, BASE, rw * PAGE, BASE))).toBe(`ok ${BASE}`);
    expect(both((s) => s.copy('typed', s.src, s.lazy, BASE, slots * PAGE, null, U.IOMMU_IOAS_MAP_READABLE))).toMatch(/^ok /);
    expect(both((s) => s.copy('raw', s.src, s.lazy, BASE, slots * PAGE, null))).toBe('EPERM');
    // Most copied areas stay records over shared numbers.
    expect(liveRuns(a.iopt(a.dst))).toBeGreaterThan(80);
    expect(liveRuns(a.iopt(a.src))).toBeGreaterThan(80);
    for (let k = 0; k < 400; k++) {
      const via = vias[k % 2];
      const r = rnd(12);
      const start = BASE + rnd(slots) * PAGE;
      const pages = 1 + rnd(k % 4 === 0 ? 60 : 6);
      const off = rnd(16) === 0 ? PAGE / 2 : 0;
      if (r < 4) {
        // Into the destination: fixed past the window (EEXIST when it lands on an earlier copy), or
        // allocated; read-only or read-write (EPERM over read-only memory); off a page (EINVAL).
        const fixed = rnd(2) === 0 ? BASE + (slots + 100 + rnd(slots)) * PAGE : null;
        const flags = rnd(3) === 0 ? U.IOMMU_IOAS_MAP_READABLE : RW;
        tally(both((s) => s.copy(via, s.src, s.dst, start + off, pages * PAGE, fixed, flags)));
      } else if (r < 6) {
        // Into the IOAS without a domain (byte IOVAs allowed there).
        tally(both((s) => s.copy(via, s.src, s.lazy, start + off, pages * PAGE - off, null)));
      } else if (r < 7) {
        // Copies of copies: from the destination and from the lazy IOAS back into the source past its window.
        const fromDst = rnd(2) === 0;
        const srcAreas = [...(fromDst ? b.iopt(b.dst) : b.iopt(b.lazy)).iterAreas()];
        if (srcAreas.length === 0) continue;
        const x = srcAreas[rnd(srcAreas.length)];
        const n = 1 + rnd(3);
        const y = srcAreas[Math.min(srcAreas.length - 1, srcAreas.indexOf(x) + n)];
        tally(both((s) => s.copy(via, fromDst ? s.dst : s.lazy, s.src, x.iovaNum, y.lastNum - x.iovaNum + 1, null)));
      } else if (r < 8) {
        // Within one IOAS.
        tally(both((s) => s.copy(via, s.src, s.src, start, pages * PAGE, null)));
      } else if (r < 9) {
        // Bad ids, zero length, overflow, unknown flags: the order of iommufd_ioas_copy's checks.
        const bad = rnd(5);
        tally(
          both((s) =>
            bad === 0
              ? s.copy(via, 999, s.dst, start, PAGE, null)
              : bad === 1
                ? s.copy(via, s.src, 999, start, PAGE, null)
                : bad === 2
                  ? s.copy(via, s.src, s.dst, start, 0, null)
                  : bad === 3
                    ? s.copy(via, s.src, s.dst, start, PAGE, Number.MAX_SAFE_INTEGER - 10)
                    : s.copy(via, s.src, s.dst, start, PAGE, null, RW | 0x100),
          ),
        );
      } else if (r < 11) {
        // Unmaps: of the source (the copies keep the shared pages and their pins), and of copies.
        const which = rnd(3);
        both((s) => {
          const id = which === 0 ? s.src : which === 1 ? s.dst : s.lazy;
          try {
            return s.f.fd.ioas.unmap(id, BigInt(start), BigInt(pages * PAGE));
          } catch (e) {
            return (e as { code: string }).code;
          }
        });
      } else {
        // New compact areas where the source has room.
        const user = rnd(USER_PAGES / 2);
        both((s) => s.rawMap(s.src, start, s.va + BigInt(user * PAGE), 1));
      }
    }
    expect(ok).toBeGreaterThan(60);
    for (const code of ['ENOENT', 'EEXIST', 'EPERM', 'EINVAL', 'EOPNOTSUPP']) expect(errors, code).toContain(code);
  });

  it('fails at every pin, domain map and table page with both IOASes left as they were, then maps the same pages', () => {
    const { a, b, both } = twoSides();
    const all = [a, b];
    const { rw: slots } = populate(a);
    populate(b);
    // The IOAS without a domain gets compact areas of its own, never pinned: copying them into the
    // destination pins them for the first time (pages in several runs of frames among them).
    both((s) => {
      for (let k = 0; k < slots - 15; k++) expect(s.rawMap(s.lazy, BASE + k * PAGE, s.va + BigInt((k % 60) * PAGE), 1)).toBe('ok');
      for (let k = 0; k < 5; k++) expect(s.rawMap(s.lazy, BASE + (slots - 15 + 3 * k) * PAGE, s.va + BigInt((USER_PAGES - 40 + 3 * k) * PAGE), 3)).toBe('ok');
    });
    for (const [from, label] of [
      ['src', 'copy of every kind of area'],
      ['lazy', 'copy of unpinned compact areas'],
    ] as const) {
      const sites = new Set<string>();
      let n = 1;
      for (; ; n++) {
        expect(n, label).toBeLessThan(2000);
        const before = state(a);
        const inj = all.map((s) => (s.f.host.injector = new FailNth(n, ['pin', 'map', 'table-alloc'])));
        const rc = both((s) => s.copy(n % 2 === 0 ? 'raw' : 'typed', from === 'src' ? s.src : s.lazy, s.dst, BASE, slots * PAGE, BASE + (from === 'src' ? 0 : 4 * slots) * PAGE));
        expect(inj[0].hitSite, label).toBe(inj[1].hitSite);
        for (const s of all) s.f.host.injector = NO_FAULT_INJECTION;
        if (!inj[0].hit) {
          expect(rc).toMatch(/^ok /);
          break;
        }
        sites.add(String(inj[0].hitSite));
        expect(rc, label).toBe('ENOMEM');
        // Nothing pinned, mapped, charged or referenced that was not before (the record kinds aside).
        expect(state(a), label).toEqual(before);
      }
      // Failures were injected at steps of many areas before the copy went through.
      expect(n, label).toBeGreaterThan(slots / 2);
      expect([...sites].sort(), label).toEqual(from === 'src' ? ['map', 'table-alloc'] : ['map', 'pin', 'table-alloc']);
    }
    // The destination's domain maps each copied page to the frame the source's maps it to (shared pages).
    const wr = new WalkResult();
    for (const s of all) {
      const srcDomain = s.iopt(s.src).domains[0] as HwptPaging;
      const dstDomain = s.iopt(s.dst).domains[0] as HwptPaging;
      let same = 0;
      for (let p = 0; p < slots; p++) {
        const pfn = BASE / PAGE + p;
        if (!srcDomain.ops.pt.walk(pfn, wr)) continue;
        const frame = wr.pfn;
        expect(dstDomain.ops.pt.walk(pfn, wr)).toBe(true);
        expect(wr.pfn).toBe(frame);
        // The copy of the IOAS without a domain: the frames its pages were pinned at, which its own
        // areas (sharing those pages) now report.
        const lazyArea = s.iopt(s.lazy).areaAt(BigInt(BASE + p * PAGE))!;
        expect(dstDomain.ops.pt.walk(pfn + 4 * slots, wr)).toBe(true);
        expect(wr.pfn).toBe(lazyArea.pages.frame(lazyArea.pageIndex + (p - Math.floor(lazyArea.iovaNum / PAGE) + BASE / PAGE)));
        same++;
      }
      expect(same).toBe(slots);
    }
    // A detach and an attach again fill the domains from the shared numbers; an access pin makes a
    // run's entry an object, shared by the areas over it.
    both((s) => s.dev.detachPt());
    both((s) => s.dev.attachPt(s.dst) > 0);
    both((s) => {
      const acc = s.f.fd.access.create({ unmap: (iova, length) => acc.unpinPages(iova, length) });
      acc.attach(s.dst);
      const pinned = [...acc.pinPages(BigInt(BASE), BigInt(3 * PAGE), { write: true })];
      acc.detach();
      return pinned;
    });
    // The source, the lazy IOAS and then the destination unmapped: every pin given back.
    both((s) => s.f.fd.ioas.unmapAll(s.src));
    both((s) => s.f.fd.ioas.unmapAll(s.lazy));
    both((s) => s.f.fd.ioas.unmapAll(s.dst));
    expect(a.f.host.process.lockedPages).toBe(0);
    expect(a.f.fd.ctx.runPages.size).toBe(0);
  });

  it('leaves run areas that a cut, IOAS_CHANGE_PROCESS, a destroyed source and a closed iommufd treat as the element path does', () => {
    const { a, b, both } = twoSides();
    const { rw } = populate(a);
    populate(b);
    // An IOAS with large pages off (type1's cuts), copied into whole: its multi-page areas can be cut.
    both((s) => s.f.fd.ioas.setHugePages(s.lazy, false));
    expect(both((s) => s.copy('typed', s.src, s.lazy, BASE, rw * PAGE, BASE))).toBe(`ok ${BASE}`);
    expect(liveRuns(a.iopt(a.lazy))).toBeGreaterThan(80);
    // iopt_cut_iova inside the first four-page area (slots 40 to 43) and at an area's last byte (no cut).
    both((s) => s.iopt(s.lazy).cutIova([BigInt(BASE + 41 * PAGE - 1), BigInt(BASE + 44 * PAGE - 1), BigInt(BASE + 3 * PAGE - 1)]));
    both((s) => s.f.fd.ioas.unmap(s.lazy, BigInt(BASE + 40 * PAGE), BigInt(PAGE)));
    // The halves copied back: a copy of object areas over a shared run entry's pages.
    expect(both((s) => s.copy('raw', s.lazy, s.dst, BASE + 41 * PAGE, 3 * PAGE, null))).toMatch(/^ok /);
    // Every area must map a file.
    expect(
      both((s) => {
        try {
          s.f.fd.ioas.changeProcess();
          return 'ok';
        } catch (e) {
          return (e as { code: string }).code;
        }
      }),
    ).toBe('EINVAL');
    // The source goes (its device detached first): the copies keep the shared pages and their pins.
    both((s) => s.dev.detachPt());
    both((s) => s.f.fd.destroy(s.src));
    expect(a.f.host.process.lockedPages).toBeGreaterThan(0);
    expect(a.f.fd.ctx.runPages.size).toBeGreaterThan(0);
    // Closing the iommufd destroys the rest: every pin given back, every entry gone.
    for (const s of [a, b]) {
      s.f.host.process.close(s.f.fd.fd);
      expect(s.f.host.process.lockedPages).toBe(0);
    }
    expect(a.f.fd.ctx.runPages.size).toBe(0);
  });
});
