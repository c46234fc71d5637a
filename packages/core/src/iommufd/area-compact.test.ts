/**
 * Compact areas (area-index.ts): page-aligned user memory mapped by a raw IOAS_MAP is kept as a record
 * of numbers, not as an IoptArea and an IoptPages. Everything observable must be what the general
 * handlers give: each op's errno and bytes, the pins charged, the domain's page table, and the areas,
 * their pages and pins once something asks for them as objects. The same ops run on two hosts, one
 * with the IOAS_MAP / IOAS_UNMAP fast paths and one without, over more areas than a chunk of the
 * index holds, so that chunks split, fill from either side and go away.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { WalkResult } from '../driver/pgtable.js';
import { xorshiftRandom } from '../__tests__/helpers.js';
import { mockFixture } from '../__tests__/mock-host.js';
import type { IoctlOp } from './dispatch.js';
import type { HwptPaging } from './hwpt.js';
import { getIoas } from './ioas.js';
import type { AreaIndex } from './area-index.js';
import { FailNth, NO_FAULT_INJECTION } from '../driver/inject.js';

const PAGE = 4096;
const BASE_IOVA = 1 << 24;
const USER_PAGES = 64;
const DEVICE = '0000:00:02.0';

function side(fast: boolean) {
  const f = mockFixture();
  if (!fast) {
    const t = (f.fd as unknown as { table: IoctlOp[] }).table;
    for (let i = 0; i < t.length; i++) if (t[i]?.fast) t[i] = { ...t[i], fast: undefined };
  }
  const ioas = f.fd.ioas.alloc();
  const dev = f.host.device(DEVICE);
  const devId = dev.bindIommufd(f.fd);
  const va = f.host.process.mmap(USER_PAGES * PAGE);
  // A read-only page: a writeable map of it fails with EFAULT when it is pinned.
  const roVa = f.host.process.mmap(PAGE, { prot: 1 });
  const mapBuf = new Uint8Array(U.iommu_ioas_map.size);
  const unmapBuf = new Uint8Array(U.iommu_ioas_unmap.size);
  const map = (iova: number, userVa: bigint, pages: number, flags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE): string => {
    U.iommu_ioas_map.encode(U.iommu_ioas_map.make({ size: U.iommu_ioas_map.size, flags, ioas_id: ioas, user_va: userVa, length: BigInt(pages * PAGE), iova: BigInt(iova) }), mapBuf);
    const rc = f.fd.ioctl(U.IOMMU_IOAS_MAP, mapBuf);
    return `${rc} ${f.fd.lastError?.code ?? ''}`;
  };
  const unmap = (iova: number, length: number): string => {
    U.iommu_ioas_unmap.encode(U.iommu_ioas_unmap.make({ size: U.iommu_ioas_unmap.size, ioas_id: ioas, iova: BigInt(iova), length: BigInt(length) }), unmapBuf);
    const rc = f.fd.ioctl(U.IOMMU_IOAS_UNMAP, unmapBuf);
    return `${rc} ${f.fd.lastError?.code ?? ''} ${rc === 0 ? U.iommu_ioas_unmap.decode(unmapBuf).length : ''}`;
  };
  const iopt = () => getIoas(f.fd.ctx, ioas).iopt;
  /** The areas as objects (compact ones become objects here), with their pages' state. */
  const areas = () =>
    [...iopt().iterAreas()].map((a) => [a.iova, a.last, a.prot, a.pageIndex, a.pageOffset, a.npages, a.pages.users, a.pages.npinned, a.pages.segments, a.pages.frame(a.pageIndex), a.pages.pinCount(a.pageIndex), a.pages.base, a.pages.writable]);
  /** What the domain translates each page of the window to. */
  const table = (slots: number, domain = 0) => {
    const d = iopt().domains[domain] as HwptPaging | undefined;
    if (d === undefined) return [];
    const out: string[] = [];
    const wr = new WalkResult();
    for (let s = 0; s < slots; s++) out.push(d.ops.pt.walk(BASE_IOVA / PAGE + s, wr) ? `${wr.pfn}:${wr.perm}` : '-');
    return out;
  };
  return { f, ioas, dev, devId, va, roVa, map, unmap, iopt, areas, table };
}

type Side = ReturnType<typeof side>;

/** Compact records left in the IOAS's index (white box: how many areas are still no objects). */
function compactCount(s: Side): number {
  const low = (s.iopt() as unknown as { low: AreaIndex }).low;
  let n = 0;
  for (let c = 0; c < low.chunkCount; c++) for (let i = 0; i < low.chunkLength(c); i++) if (low.isCompact(c, i)) n++;
  return n;
}

/** Object areas (IoptArea kept by the index) of an IOAS's index (white box). */
function objectCount(iopt: ReturnType<Side['iopt']>): number {
  return (iopt as unknown as { low: { objects: Map<number, unknown> } }).low.objects.size;
}

/** An IOAS's areas with their pages' state, as Side.areas gives them. */
function areasOf(iopt: ReturnType<Side['iopt']>) {
  return [...iopt.iterAreas()].map((a) => [a.iova, a.last, a.prot, a.pageIndex, a.pageOffset, a.npages, a.pages.users, a.pages.npinned, a.pages.segments, a.pages.frame(a.pageIndex), a.pages.pinCount(a.pageIndex), a.pages.base, a.pages.writable]);
}

/**
 * The same random ops on a side with the fast handlers and one without (`step`), every result and the
 * pins compared (`both`); `slots` pages of IOVA from BASE_IOVA.
 */
function differential(slots: number) {
  const a = side(true);
  const b = side(false);
  const rnd = xorshiftRandom(2463534242);
  // Every random draw is made outside `fn`, which runs once per side.
  const both = <T>(fn: (s: Side) => T): T | string => {
    const call = (s: Side): T | string => {
      try {
        return fn(s);
      } catch (e) {
        return `thrown ${(e as { code?: string }).code ?? String(e)}`;
      }
    };
    const x = call(a);
    expect(x).toEqual(call(b));
    expect(a.f.host.process.lockedPages).toBe(b.f.host.process.lockedPages);
    return x;
  };
  const step = (n: number, attached: boolean) => {
    for (let k = 0; k < n; k++) {
      const slot = rnd(slots);
      const iova = BASE_IOVA + slot * PAGE;
      const r = rnd(20);
      if (r < 11) {
        // One page: the compact case.
        const user = rnd(USER_PAGES);
        both((s) => s.map(iova, s.va + BigInt(user * PAGE), 1));
      } else if (r < 12) {
        // Several pages: frames of pages faulted in at different times are not one run.
        const user = rnd(USER_PAGES - 4);
        const pages = 1 + rnd(4);
        both((s) => s.map(iova, s.va + BigInt(user * PAGE), pages));
      } else if (r < 13) {
        if (!attached) continue;
        // A read-only page mapped writeable, or no memory at all (the guard page after the buffer):
        // EFAULT when a domain pins it.
        const hole = rnd(2) === 0;
        both((s) => s.map(iova, hole ? s.va + BigInt(USER_PAGES * PAGE) : s.roVa, 1));
      } else if (r < 14) {
        if (!attached) continue;
        // Unaligned user memory (EINVAL with a domain: an area left by it would block the attach
        // below), or not FIXED_IOVA (the general handler).
        both((s) => s.map(iova, s.va + 512n, 1));
        both((s) => s.map(0, s.va, 1, U.IOMMU_IOAS_MAP_READABLE));
      } else if (r < 19) {
        // A range of slots; ENOENT when it cuts an area or holds none.
        const pages = 1 + rnd(6);
        both((s) => s.unmap(iova, pages * PAGE));
      } else {
        // A range that starts inside an area.
        both((s) => s.unmap(iova + PAGE, 2 * PAGE));
      }
    }
  };
  return { a, b, rnd, both, step };
}

describe('compact IOAS areas', () => {
  it('give the errors, bytes, pins, page table and areas of the general handlers over many chunks', () => {
    const slots = 1200;
    const { a, rnd, both, step } = differential(slots);
    // Without a domain nothing is pinned; attaching pins every area (compact ones stay records).
    step(800, false);
    both((s) => s.iopt().areaCount);
    expect(both((s) => s.dev.attachPt(s.ioas) > 0)).toBe(true);
    step(3000, true);
    expect(both((s) => s.iopt().areaCount)).toBeGreaterThan(300);
    both((s) => s.table(slots));
    // Reading the areas gives the same areas, pages and pins, and leaves the records as they are.
    const compact = compactCount(a);
    const objects = objectCount(a.iopt());
    both((s) => s.areas());
    for (let k = 0; k < 200; k++) {
      const iova = BigInt(BASE_IOVA + rnd(slots) * PAGE + rnd(PAGE));
      both((s) => {
        const x = s.iopt().areaAt(iova);
        return x === undefined ? null : [x.iova, x.last, x.pageIndex, x.npages, x.pages.frame(x.pageIndex), x.pages.pinCount(x.pageIndex)];
      });
    }
    expect(compactCount(a)).toBe(compact);
    expect(objectCount(a.iopt())).toBe(objects);
    step(1500, true);
    both((s) => s.table(slots));
    both((s) => s.areas());
    // Detaching unpins everything; the areas stay.
    both((s) => s.dev.detachPt());
    expect(a.f.host.process.lockedPages).toBe(0);
    step(500, false);
    both((s) => s.areas());
    // Ranges of hundreds of slots, attached again: whole chunks of records at once, ENOENT at an area
    // crossing the end with the areas before it gone.
    both((s) => s.dev.attachPt(s.ioas));
    step(1500, true);
    for (let k = 0; k < 12; k++) {
      const from = BASE_IOVA + rnd(slots) * PAGE;
      const pages = 100 + rnd(500);
      // Every other one ends in the middle of a page: ENOENT when an area holds that page.
      const length = pages * PAGE - (k % 2) * (PAGE / 2);
      both((s) => s.unmap(from, length));
      both((s) => s.iopt().areaCount);
      step(100, true);
    }
    both((s) => s.table(slots));
    both((s) => s.areas());
    both((s) => s.unmap(0, 1 << 30));
    expect(both((s) => s.iopt().areaCount)).toBe(0);
  });

  it('stay records through attach and detach, with the errors and partial effects of the object path', () => {
    const slots = 700;
    const { a, b, both, step } = differential(slots);
    const all = [a, b];
    step(500, false);
    expect(compactCount(a)).toBeGreaterThan(128);
    for (let round = 0; round < 3; round++) {
      // iopt_table_add_domain / iopt_fill_domain over the records: pinned, charged and mapped.
      expect(both((s) => s.dev.attachPt(s.ioas) > 0)).toBe(true);
      both((s) => s.table(slots));
      step(300, true);
      both((s) => s.table(slots));
      // A second domain on the same IOAS is filled from the records' frames (no new pins), and
      // destroying it takes them out of it and leaves the pins to the first.
      const hwpt = both((s) => s.f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.devId, pt_id: s.ioas }).out_hwpt_id);
      both((s) => s.table(slots, 1));
      step(100, true);
      both((s) => s.table(slots, 1));
      both((s) => s.f.fd.destroy(hwpt as number));
      both((s) => s.table(slots));
      // iopt_unfill_domain of the last domain: every pin given back, the areas kept.
      both((s) => s.dev.detachPt());
      expect(a.f.host.process.lockedPages).toBe(0);
      step(200, false);
    }
    expect(compactCount(a)).toBeGreaterThan(128);
    // A record that cannot be pinned (a read-only page mapped writeable while nothing pinned it):
    // the attach fails with EFAULT there and takes every area before it out of the domain again.
    const slot = BASE_IOVA + (slots + 10) * PAGE;
    both((s) => s.map(slot, s.roVa, 1));
    expect(both((s) => s.dev.attachPt(s.ioas))).toBe('thrown EFAULT');
    expect(a.f.host.process.lockedPages).toBe(0);
    both((s) => s.table(slots + 20));
    both((s) => s.unmap(slot, PAGE));
    // A record at an IOVA no domain can map (EADDRINUSE before anything is pinned).
    both((s) => s.map(slot + 512, s.va, 1));
    expect(both((s) => s.dev.attachPt(s.ioas))).toBe('thrown EADDRINUSE');
    both((s) => s.unmap(slot + 512, PAGE));
    // Each pin, map and table page of the attach failing in turn: ENOMEM, nothing left pinned or
    // mapped, the same on both sides; then the attach goes through.
    for (let n = 1; ; n++) {
      expect(n).toBeLessThan(4 * slots);
      const inj = all.map((s) => (s.f.host.injector = new FailNth(n, ['pin', 'map', 'table-alloc'])));
      const rc = both((s) => s.dev.attachPt(s.ioas) > 0);
      expect(inj[0].hitSite).toBe(inj[1].hitSite);
      for (const s of all) s.f.host.injector = NO_FAULT_INJECTION;
      if (!inj[0].hit) {
        expect(rc).toBe(true);
        break;
      }
      expect(rc).toBe('thrown ENOMEM');
      expect(a.f.host.process.lockedPages).toBe(0);
    }
    both((s) => s.table(slots));
    expect(compactCount(a)).toBeGreaterThan(128);
    both((s) => s.areas());
    both((s) => s.dev.detachPt());
    both((s) => s.unmap(0, 1 << 30));
    expect(both((s) => s.iopt().areaCount)).toBe(0);
  });

  it('stay records when dirty tracking starts, IOAS_CHANGE_PROCESS checks them and an access leaves', async () => {
    const slots = 800;
    const { a, b, both, step } = differential(slots);
    const all = [a, b];
    step(600, false);
    const hwpt = both((s) => s.f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.devId, pt_id: s.ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }).out_hwpt_id) as number;
    both((s) => s.dev.attachPt(hwpt));
    step(200, true);
    const compact = compactCount(a);
    expect(compact).toBeGreaterThan(128);
    // Writes before tracking starts leave dirty leaves; enabling it clears every area's pages.
    const mapped = both((s) => s.table(slots).flatMap((e, slot) => (e === '-' ? [] : [slot]))) as number[];
    for (const s of all) for (const slot of mapped) await s.dev.dma.write(BigInt(BASE_IOVA + slot * PAGE), new Uint8Array([7]));
    both((s) => s.f.fd.run(U.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: hwpt, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE }));
    for (const s of all) for (const slot of mapped.filter((_, k) => k % 3 === 0)) await s.dev.dma.write(BigInt(BASE_IOVA + slot * PAGE), new Uint8Array([8]));
    const bitmaps = all.map((s) => {
      const bm = s.f.host.process.mmap(4096);
      s.f.fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: hwpt, iova: BigInt(BASE_IOVA), length: BigInt(slots * PAGE), page_size: BigInt(PAGE), data: bm });
      return [...s.f.host.process.peek(bm, slots / 8)];
    });
    expect(bitmaps[0]).toEqual(bitmaps[1]);
    expect(bitmaps[0].reduce((n, byte) => n + ((byte.toString(2).match(/1/g) ?? []).length), 0)).toBe(Math.ceil(mapped.length / 3));
    // Every area must map a file: the first user area refuses it, nothing is moved.
    expect(both((s) => s.f.fd.run(U.iommu_ioas_change_process, 'IOAS_CHANGE_PROCESS', {}))).toBe('thrown EINVAL');
    expect(compactCount(a)).toBe(compact);
    // An access pins two single-page areas (compact ones: they become pages areas, records whose pages
    // object holds the pins) and is told to drop its pins when it leaves. The slots are chosen on the general side, whose areas are objects anyway.
    const single = mapped.filter((slot) => b.iopt().areaAt(BigInt(BASE_IOVA + slot * PAGE))!.length === BigInt(PAGE));
    const told = all.map((s) => {
      const notes: string[] = [];
      const acc = s.f.fd.access.create({ unmap: (iova, length) => (notes.push(`${iova}+${length}`), acc.unpinPages(iova, length)) });
      acc.attach(s.ioas);
      for (const slot of [single[1], single[single.length - 2]]) {
        const area = s.iopt().areaAt(BigInt(BASE_IOVA + slot * PAGE))!;
        acc.pinPages(area.iova, area.length);
      }
      acc.detach();
      return notes;
    });
    expect(told[0]).toEqual(told[1]);
    expect(told[0]).toHaveLength(2);
    expect(compactCount(a)).toBe(compact - 2);
    both((s) => s.areas());
    both((s) => s.dev.detachPt());
    both((s) => s.unmap(0, 1 << 30));
  });

  it('IOAS_COPY shares their pages (they become pages areas, no objects) with the effects of the object path', () => {
    const slots = 600;
    const { a, b, rnd, both, step } = differential(slots);
    const all = [a, b];
    step(400, false);
    both((s) => s.dev.attachPt(s.ioas) > 0);
    step(400, true);
    const objects = objectCount(a.iopt());
    // The destination: a second IOAS with its own domain (HWPT_ALLOC on it), so that a copy pins.
    const dst = both((s) => s.f.fd.ioas.alloc()) as number;
    both((s) => s.f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.devId, pt_id: dst }).out_hwpt_id);
    const dstIopt = (s: Side) => getIoas(s.f.fd.ctx, dst).iopt;
    const flags = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
    const copy = (s: Side, srcIova: number, pages: number, dstIova: number | null, from = s.ioas, to = dst) =>
      s.f.fd.run(U.iommu_ioas_copy, 'IOAS_COPY', {
        src_ioas_id: from,
        dst_ioas_id: to,
        flags: dstIova === null ? flags : flags | U.IOMMU_IOAS_MAP_FIXED_IOVA,
        length: BigInt(pages * PAGE),
        src_iova: BigInt(srcIova),
        dst_iova: BigInt(dstIova ?? 0),
      }).dst_iova;
    const compare = () => {
      both((s) => s.areas());
      both((s) => areasOf(dstIopt(s)));
      both((s) => s.table(slots + 200));
      // The destination's domain, over the same window and the allocated IOVAs.
      both((s) => {
        const d = dstIopt(s).domains[0] as HwptPaging;
        const wr = new WalkResult();
        return [...dstIopt(s).iterAreas()].flatMap((x) => {
          const pfn = Number(x.iova / BigInt(PAGE));
          return [pfn, d.ops.pt.walk(pfn, wr) ? `${wr.pfn}:${wr.perm}` : '-'];
        });
      });
    };
    // Runs of slots, most with holes (ENOENT) or landing on areas already copied (EEXIST); fixed at
    // the same IOVA in the destination, or at an IOVA the destination allocates from the first page.
    let copied = 0;
    for (let k = 0; k < 300; k++) {
      const slot = rnd(slots);
      const pages = 1 + rnd(k % 3 === 0 ? 40 : 4);
      const fixed = rnd(3) !== 0;
      const r = both((s) => copy(s, BASE_IOVA + slot * PAGE, pages, fixed ? BASE_IOVA + slot * PAGE : null));
      if (typeof r === 'bigint') copied++;
      if (k % 50 === 0) compare();
      if (k % 7 === 0) step(20, true);
    }
    expect(copied).toBeGreaterThan(10);
    compare();
    // Copies of copies: the destination's pages areas copied back into the source past the window (a
    // pages object with three users, pinned by both IOASes' domains), and within the destination.
    let again = 0;
    for (let k = 0; k < 60; k++) {
      // One or two areas of the destination (the same on both sides: chosen on the object side).
      const dstAreas = [...dstIopt(b).iterAreas()].filter((x) => x.iovaNum >= BASE_IOVA && x.lastNum < BASE_IOVA + slots * PAGE);
      const from = dstAreas[rnd(dstAreas.length)];
      const to = dstAreas[Math.min(dstAreas.length - 1, dstAreas.indexOf(from) + rnd(2))];
      const start = from.iovaNum;
      const pages = (to.lastNum + 1 - start) / PAGE;
      const back = rnd(2) === 0;
      const r = both((s) => (back ? copy(s, start, pages, start + (slots + 40) * PAGE, dst, s.ioas) : copy(s, start, pages, null, dst, dst)));
      if (typeof r === 'bigint') again++;
    }
    expect(again).toBeGreaterThan(3);
    compare();
    // No copied area became an object on the compact side (the steps in between may have made objects
    // of areas whose frames are in several runs: at most one per step).
    expect(objectCount(a.iopt())).toBeLessThanOrEqual(objects + 43 * 20);
    expect(objectCount(dstIopt(a))).toBe(0);
    // Each pin, map and table page of a copy failing in turn: ENOMEM, nothing pinned, mapped or
    // referenced that was not before; then the copy goes through. A range of single-page areas.
    // Eight single-page compact areas past the window.
    const run = slots + 20;
    for (let k = 0; k < 8; k++) both((s) => s.map(BASE_IOVA + (run + k) * PAGE, s.va + BigInt(k * PAGE), 1));
    for (let n = 1; ; n++) {
      expect(n).toBeLessThan(100);
      const inj = all.map((s) => (s.f.host.injector = new FailNth(n, ['pin', 'map', 'table-alloc', 'alloc'])));
      const rc = both((s) => copy(s, BASE_IOVA + run * PAGE, 8, BASE_IOVA + (run + 100) * PAGE));
      expect(inj[0].hitSite).toBe(inj[1].hitSite);
      for (const s of all) s.f.host.injector = NO_FAULT_INJECTION;
      compare();
      if (!inj[0].hit) {
        expect(typeof rc).toBe('bigint');
        // Failures were injected at every step of the copy before it went through.
        expect(n).toBeGreaterThan(8);
        break;
      }
      expect(rc).toBe('thrown ENOMEM');
    }
    // The source unmapped: the destination keeps the shared pages and their pins; then the
    // destination unmapped: every pin given back once both are gone.
    both((s) => s.unmap(BASE_IOVA, slots * PAGE));
    both((s) => s.unmap(0, 1 << 30));
    compare();
    both((s) => s.f.fd.run(U.iommu_ioas_unmap, 'IOAS_UNMAP', { ioas_id: dst, iova: 0n, length: 1n << 40n }).length);
    both((s) => s.dev.detachPt());
    expect(both((s) => s.f.host.process.lockedPages)).toBe(0);
  });

  it('give an access its reads, writes, pins and unmap notifications with the effects of the object path, and stay records', () => {
    const slots = 300;
    const { a, b, rnd, both, step } = differential(slots);
    step(300, false);
    both((s) => s.dev.attachPt(s.ioas) > 0);
    step(300, true);
    const before = compactCount(a);
    const objects = objectCount(a.iopt());
    const accs = new Map<Side, ReturnType<Side['f']['fd']['access']['create']>>();
    for (const s of [a, b]) {
      const acc = s.f.fd.access.create({ unmap: (iova, length) => acc.unpinPages(iova, length) });
      acc.attach(s.ioas);
      accs.set(s, acc);
    }
    // Reads and writes over runs of areas (ENOENT at a hole after the bytes before it moved).
    for (let k = 0; k < 100; k++) {
      const iova = BigInt(BASE_IOVA + rnd(slots) * PAGE + rnd(PAGE));
      const len = 1 + rnd(6 * PAGE);
      const fill = rnd(256);
      both((s) => {
        accs.get(s)!.rw(iova, new Uint8Array(len).fill(fill), { write: true });
        const back = new Uint8Array(len);
        accs.get(s)!.rw(iova, back);
        return back.every((x) => x === fill);
      });
    }
    expect(compactCount(a)).toBe(before);
    expect(objectCount(a.iopt())).toBe(objects);
    // Pins of runs of areas (EINVAL off a page boundary, EPERM, ENOENT at a hole): a compact area an
    // access pins becomes a pages area (its pins are its pages object's), no object.
    let pinnedAreas = 0;
    for (let k = 0; k < 60; k++) {
      const iova = BigInt(BASE_IOVA + rnd(slots) * PAGE + (k % 9 === 0 ? 512 : 0));
      const len = BigInt((1 + rnd(3)) * PAGE);
      const write = rnd(2) === 0;
      const r = both((s) => [...accs.get(s)!.pinPages(iova, len, { write })]);
      if (Array.isArray(r)) pinnedAreas++;
      both((s) => s.areas());
      if (k % 3 === 0) {
        // Unpin a range pinned before, or one never pinned (nothing happens).
        const at = BigInt(BASE_IOVA + rnd(slots) * PAGE);
        both((s) => accs.get(s)!.unpinPages(at, BigInt(PAGE)));
      }
    }
    expect(pinnedAreas).toBeGreaterThan(5);
    expect(compactCount(a)).toBeLessThan(before);
    expect(objectCount(a.iopt())).toBe(objects);
    // Unmaps of pinned areas: every access is told, unpins, and the area goes (iopt_unmap_iova_range).
    for (let k = 0; k < 20; k++) {
      const at = BASE_IOVA + rnd(slots) * PAGE;
      const pages = 1 + rnd(8);
      both((s) => s.unmap(at, pages * PAGE));
      both((s) => s.areas());
    }
    step(100, true);
    both((s) => s.areas());
    // Leaving the IOAS: the access is told to drop its pins (one unpin per area it pins, as this test's
    // device model does), then everything unmapped (an area pinned twice is still pinned: EDEADLK).
    for (const s of [a, b]) accs.get(s)!.detach();
    both((s) => s.areas());
    both((s) => s.unmap(0, 1 << 30));
    both((s) => s.areas());
    both((s) => s.dev.detachPt());
  });

  it('mapped page after page in IOVA order (a fault handler) give the errors, pins, page table and areas of the general handlers', () => {
    const { a, b, both } = differential(1);
    const all = [a, b];
    const ok = '0 ';
    both((s) => s.dev.attachPt(s.ioas) > 0);
    // IOMMU_IOAS_MAP's one-page path appends each record to the last chunk, and starts a chunk when the
    // last one is full: 300 pages fill two chunks and start a third.
    let next = 0;
    // Every seventh map is read-only (its record says so; the pin is not a write pin).
    const mapNext = (s: Side, k: number) =>
      s.map(BASE_IOVA + k * PAGE, s.va + BigInt((k % USER_PAGES) * PAGE), 1, U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | (k % 7 === 3 ? 0 : U.IOMMU_IOAS_MAP_WRITEABLE));
    for (; next < 300; next++) expect(both((s) => mapNext(s, next))).toBe(ok);
    const chunks = (s: Side) => {
      const low = (s.iopt() as unknown as { low: AreaIndex }).low;
      return Array.from({ length: low.chunkCount }, (_, c) => low.chunkLength(c));
    };
    expect(chunks(a)).toEqual([128, 128, 44]);
    both((s) => s.table(320));
    both((s) => s.areas());
    // Looked up around the chunks' first areas, each byte of a page's edges and the gaps after them.
    for (const k of [0, 1, 127, 128, 129, 255, 256, 257, 299, 300]) {
      for (const at of [k * PAGE - 1, k * PAGE, k * PAGE + PAGE - 1]) {
        both((s) => {
          const x = s.iopt().areaAt(BigInt(BASE_IOVA + at));
          return x === undefined ? null : [x.iova, x.last, x.prot, x.pages.writable];
        });
      }
    }
    // The same page again, and a page inside an area (EEXIST); a read-only page mapped writeable
    // (EFAULT from the pin); a page that a reserved range covers (EINVAL).
    expect(both((s) => s.map(BASE_IOVA + 5 * PAGE, s.va, 1))).toBe('-17 EEXIST');
    expect(both((s) => s.map(BASE_IOVA + next * PAGE, s.roVa, 1))).toBe('-14 EFAULT');
    both((s) => s.iopt().addReserved(s, [{ start: BigInt(BASE_IOVA + (next + 1) * PAGE), last: BigInt(BASE_IOVA + (next + 1) * PAGE) }]));
    expect(both((s) => s.map(BASE_IOVA + (next + 1) * PAGE, s.va, 1))).toBe('-22 EINVAL');
    both((s) => s.iopt().removeReserved(s));
    // RLIMIT_MEMLOCK reached: ENOMEM, nothing mapped or charged.
    for (const s of all) s.f.host.process.rlimitMemlock = (s.f.host.process.lockedPages + 2) * PAGE;
    for (let k = 0; k < 2; k++, next++) expect(both((s) => mapNext(s, next))).toBe(ok);
    expect(both((s) => mapNext(s, next))).toBe('-12 ENOMEM');
    for (const s of all) s.f.host.process.rlimitMemlock = Number.POSITIVE_INFINITY;
    // Each pin, map and table page failing in turn at the next page (the first map into a fresh leaf
    // table allocates it): ENOMEM with nothing pinned or mapped, then the map goes through.
    next = 512;
    for (let n = 1; ; n++) {
      expect(n).toBeLessThan(20);
      const inj = all.map((s) => (s.f.host.injector = new FailNth(n, ['pin', 'map', 'table-alloc'])));
      const rc = both((s) => mapNext(s, next));
      expect(inj[0].hitSite).toBe(inj[1].hitSite);
      for (const s of all) s.f.host.injector = NO_FAULT_INJECTION;
      if (!inj[0].hit) {
        expect(rc).toBe(ok);
        expect(n).toBe(4);
        break;
      }
      expect(rc).toBe('-12 ENOMEM');
      both((s) => s.table(520));
    }
    // Another process's memory (a forked child using the same fd): its records carry that process.
    const children = all.map((s) => s.f.host.process.fork());
    for (let k = 0; k < 3; k++, next++) expect(both((s) => s.f.fd.asProcess(children[all.indexOf(s)], () => mapNext(s, next + 1)))).toBe(ok);
    both((s) => s.areas());
    both((s) => s.table(600));
    // An IOAS alignment above PAGE_SIZE (an access that needs 64 KiB): the length is not a multiple of
    // it, EINVAL before anything else, even for a page that an area covers.
    both((s) => s.unmap(0, 1 << 30));
    const access = { iovaAlignment: 65536n, notifyUnmap: () => {} };
    both((s) => s.iopt().addAccess(access));
    expect(both((s) => mapNext(s, 0))).toBe('-22 EINVAL');
    both((s) => s.iopt().removeAccess(access));
    expect(both((s) => mapNext(s, 0))).toBe(ok);
    expect(both((s) => s.map(BASE_IOVA, s.va, 1))).toBe('-17 EEXIST');
    both((s) => s.unmap(0, 1 << 30));
    both((s) => s.dev.detachPt());
    expect(both((s) => s.f.host.process.lockedPages)).toBe(0);
  });

  it('charge one pin per page and give every pin back on unmap', () => {
    const s = side(true);
    s.dev.attachPt(s.ioas);
    const proc = s.f.host.process;
    for (let i = 0; i < 300; i++) expect(s.map(BASE_IOVA + 2 * i * PAGE, s.va + BigInt((i % USER_PAGES) * PAGE), 1)).toBe('0 ');
    expect(proc.lockedPages).toBe(300);
    // Areas mapped in order fill whole chunks; unmapping from the front and from the back empties them.
    for (let i = 0; i < 100; i++) expect(s.unmap(BASE_IOVA + 2 * i * PAGE, PAGE)).toBe(`0  ${PAGE}`);
    for (let i = 299; i >= 200; i--) expect(s.unmap(BASE_IOVA + 2 * i * PAGE, PAGE)).toBe(`0  ${PAGE}`);
    expect(proc.lockedPages).toBe(100);
    expect(s.iopt().areaCount).toBe(100);
    expect(s.table(600).filter((e) => e !== '-')).toHaveLength(100);
    expect(s.unmap(BASE_IOVA, 600 * PAGE)).toBe(`0  ${100 * PAGE}`);
    expect(proc.lockedPages).toBe(0);
    expect(s.table(600).filter((e) => e !== '-')).toHaveLength(0);
  });
});
