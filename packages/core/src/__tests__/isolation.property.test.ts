/**
 * DMA isolation as a property: random sequences of map / unmap / copy / attach / replace / detach /
 * invalidate on three devices of the mock host and two IOAS, checked after every step against a plain
 * reference model (which IOAS each device translates through; per IOAS, IOVA page -> user page and
 * permissions). Every device must reach exactly the frame the reference says, with exactly the
 * permissions it says, or fault: never a stale or foreign translation.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as U from '../uapi/iommufd.js';

import { PERM_READ, PERM_WRITE } from '../driver/pgtable.js';
import { errCode } from '../testing/err-code.js';
import { DmaFault, type PciDevice } from '../host/device.js';
import { IOMMU_HWPT_DATA_MOCK, IOMMU_HWPT_INVALIDATE_DATA_MOCK, MOCK_HWPT_DATA_SIZE } from '../testing/mock-vendor.js';
import { mockFixture, type MockFixture } from './mock-host.js';

const PAGE = 4096n;
/** The small-page window: IOVA pages [WIN, WIN + WIN_PAGES). */
const WIN = 0x100;
const WIN_PAGES = 48;
/** Two 2 MiB slots for huge mappings. */
const HUGE = [0x40000, 0x40200];
const HUGE_SAMPLE = [0, 1, 256, 511];
const DEVICES = ['0000:00:02.0', '0000:80:00.0', '0000:00:01.0'];

interface RefPage {
  frame: number;
  /** The tag written at the start of the user page. */
  tag: number;
  /** The pin is writable (the pages were first mapped WRITEABLE). */
  pinWritable: boolean;
  va: bigint;
}

interface RefArea {
  start: number;
  pages: RefPage[];
  read: boolean;
  write: boolean;
}

type Op =
  | { op: 'map'; ioas: number; start: number; n: number; read: boolean; write: boolean }
  | { op: 'mapHuge'; ioas: number; slot: number }
  | { op: 'unmap'; ioas: number; start: number; n: number }
  | { op: 'unmapHuge'; ioas: number; slot: number }
  | { op: 'unmapAll'; ioas: number }
  | { op: 'copy'; src: number; dst: number; srcStart: number; n: number; dstStart: number; read: boolean; write: boolean }
  | { op: 'attach'; dev: number; target: number }
  | { op: 'detach'; dev: number }
  | { op: 'invalidate'; ioas: number; start: number; n: number; all: boolean };

const perms = fc.constantFrom([true, true], [true, false], [false, true]);
const ioasIdx = fc.integer({ min: 0, max: 1 });
const winStart = fc.integer({ min: 0, max: WIN_PAGES - 1 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ ioas: ioasIdx, start: winStart, n: fc.integer({ min: 1, max: 8 }), p: perms }).map(({ p, ...r }): Op => ({ op: 'map', ...r, read: p[0], write: p[1] })) },
  { weight: 1, arbitrary: fc.record({ ioas: ioasIdx, slot: fc.integer({ min: 0, max: 1 }) }).map((r): Op => ({ op: 'mapHuge', ...r })) },
  { weight: 4, arbitrary: fc.record({ ioas: ioasIdx, start: winStart, n: fc.integer({ min: 1, max: 16 }) }).map((r): Op => ({ op: 'unmap', ...r })) },
  { weight: 1, arbitrary: fc.record({ ioas: ioasIdx, slot: fc.integer({ min: 0, max: 1 }) }).map((r): Op => ({ op: 'unmapHuge', ...r })) },
  { weight: 1, arbitrary: ioasIdx.map((ioas): Op => ({ op: 'unmapAll', ioas })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ src: ioasIdx, dst: ioasIdx, srcStart: winStart, n: fc.integer({ min: 1, max: 6 }), dstStart: winStart, p: perms })
      .map(({ p, ...r }): Op => ({ op: 'copy', ...r, read: p[0], write: p[1] })),
  },
  { weight: 4, arbitrary: fc.record({ dev: fc.integer({ min: 0, max: DEVICES.length - 1 }), target: fc.integer({ min: 0, max: 5 }) }).map((r): Op => ({ op: 'attach', ...r })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: DEVICES.length - 1 }).map((dev): Op => ({ op: 'detach', dev })) },
  { weight: 1, arbitrary: fc.record({ ioas: ioasIdx, start: winStart, n: fc.integer({ min: 1, max: 8 }), all: fc.boolean() }).map((r): Op => ({ op: 'invalidate', ...r })) },
);

class World {
  readonly f: MockFixture = mockFixture();
  readonly devs: PciDevice[] = DEVICES.map((b) => this.f.host.device(b));
  readonly ioas: number[];
  /** Per IOAS: the explicit attach targets [paging, nested-bypass]. */
  readonly hwpts: number[][] = [];
  /** Reference: per IOAS, its areas. */
  readonly areas: RefArea[][] = [[], []];
  /** Reference: per device, the IOAS index it translates through, or -1. */
  readonly attached: number[] = DEVICES.map(() => -1);
  private nextTag = 1;
  private readonly invData: bigint;

  constructor() {
    const { host, fd } = this.f;
    for (const d of this.devs) d.bindIommufd(fd);
    this.ioas = [fd.ioas.alloc(), fd.ioas.alloc()];
    const devId = this.devs[0].idev!.id;
    const data = host.process.mmap(4096);
    const nestedData = new Uint8Array(MOCK_HWPT_DATA_SIZE);
    new DataView(nestedData.buffer).setUint32(8, 1, true); // mode 1: bypass stage 1
    host.process.poke(data, nestedData);
    for (const ioas of this.ioas) {
      const alloc = (init: Partial<ReturnType<typeof U.iommu_hwpt_alloc.zero>>) => fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, ...init }).out_hwpt_id;
      const paging = alloc({ pt_id: ioas });
      const parent = alloc({ pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT });
      const nested = alloc({ pt_id: parent, data_type: IOMMU_HWPT_DATA_MOCK, data_len: MOCK_HWPT_DATA_SIZE, data_uptr: data });
      this.hwpts.push([paging, nested]);
    }
    this.invData = host.process.mmap(4096);
  }

  /** Fresh user pages, each tagged, faulted in, with their frames. */
  private userPages(n: number): RefPage[] {
    const { host } = this.f;
    const va = host.process.mmap(n * 4096);
    const out: RefPage[] = [];
    for (let i = 0; i < n; i++) {
      const tag = this.nextTag++;
      const b = new Uint8Array(8);
      new DataView(b.buffer).setUint32(0, tag, true);
      new DataView(b.buffer).setUint32(4, ~tag >>> 0, true);
      host.process.poke(va + BigInt(i) * PAGE, b);
    }
    const frames = new Float64Array(n);
    host.process.resolvePages(Number(va / PAGE), n, false, frames);
    for (let i = 0; i < n; i++) out.push({ frame: frames[i], tag: this.nextTag - n + i, pinWritable: false, va: va + BigInt(i) * PAGE });
    return out;
  }

  /** A 2 MiB buffer whose frames are physically contiguous and 2 MiB aligned (so a block can be used). */
  private hugePages(): RefPage[] {
    const { host } = this.f;
    for (let i = 0; i < 1024; i++) if ((host.frames.alloc() + 1) % 512 === 0) break;
    return this.userPages(512);
  }

  private overlaps(ioas: number, start: number, n: number): RefArea[] {
    return this.areas[ioas].filter((a) => a.start < start + n && a.start + a.pages.length > start);
  }

  apply(o: Op): void {
    const { fd } = this.f;
    switch (o.op) {
      case 'map':
      case 'mapHuge': {
        const start = o.op === 'map' ? WIN + o.start : HUGE[o.slot];
        const pages = o.op === 'map' ? this.userPages(o.n) : this.hugePages();
        const read = o.op === 'map' ? o.read : true;
        const write = o.op === 'map' ? o.write : true;
        const expected = this.overlaps(o.ioas, start, pages.length).length > 0 ? 'EEXIST' : 'ok';
        const got = errCode(() =>
          fd.ioas.map({ ioasId: this.ioas[o.ioas], userVa: pages[0].va, length: BigInt(pages.length) * PAGE, iova: BigInt(start) * PAGE, readable: read, writeable: write }),
        );
        expect(got, JSON.stringify(o)).toBe(expected);
        if (got === 'ok') {
          for (const p of pages) p.pinWritable = write;
          this.areas[o.ioas].push({ start, pages, read, write });
        }
        return;
      }
      case 'unmap':
      case 'unmapHuge': {
        const start = o.op === 'unmap' ? WIN + o.start : HUGE[o.slot];
        const n = o.op === 'unmap' ? o.n : 512;
        const victims = this.overlaps(o.ioas, start, n);
        const crossing = victims.some((a) => a.start < start || a.start + a.pages.length > start + n);
        const expected = victims.length === 0 || crossing ? 'ENOENT' : 'ok';
        let bytes = -1n;
        const got = errCode(() => (bytes = fd.ioas.unmap(this.ioas[o.ioas], BigInt(start) * PAGE, BigInt(n) * PAGE)));
        expect(got, JSON.stringify(o)).toBe(expected);
        if (got === 'ok') {
          expect(bytes).toBe(BigInt(victims.reduce((s, a) => s + a.pages.length, 0)) * PAGE);
          this.areas[o.ioas] = this.areas[o.ioas].filter((a) => !victims.includes(a));
        }
        return;
      }
      case 'unmapAll': {
        const total = this.areas[o.ioas].reduce((s, a) => s + a.pages.length, 0);
        expect(fd.ioas.unmapAll(this.ioas[o.ioas])).toBe(BigInt(total) * PAGE);
        this.areas[o.ioas] = [];
        return;
      }
      case 'copy': {
        const srcStart = WIN + o.srcStart;
        const dstStart = WIN + o.dstStart;
        // The source must be covered without holes; each source area slice becomes one new area.
        const slices: RefArea[] = [];
        let cur = srcStart;
        for (const a of [...this.overlaps(o.src, srcStart, o.n)].sort((x, y) => x.start - y.start)) {
          if (a.start > cur) break;
          const from = cur - a.start;
          const to = Math.min(a.start + a.pages.length, srcStart + o.n) - a.start;
          slices.push({ start: 0, pages: a.pages.slice(from, to), read: o.read, write: o.write });
          cur = a.start + to;
        }
        let expected = 'ok';
        if (cur < srcStart + o.n) expected = 'ENOENT';
        // iopt_alloc_area_pages: iopt_check_iova (EEXIST) runs before iopt_insert_area (EPERM).
        else if (this.overlaps(o.dst, dstStart, o.n).length > 0) expected = 'EEXIST';
        else if (o.write && slices.some((s) => s.pages.some((p) => !p.pinWritable))) expected = 'EPERM';
        const got = errCode(() =>
          fd.ioas.copy({ srcIoasId: this.ioas[o.src], dstIoasId: this.ioas[o.dst], srcIova: BigInt(srcStart) * PAGE, length: BigInt(o.n) * PAGE, dstIova: BigInt(dstStart) * PAGE, readable: o.read, writeable: o.write }),
        );
        expect(got, JSON.stringify(o)).toBe(expected);
        if (got === 'ok') {
          let at = dstStart;
          for (const s of slices) {
            this.areas[o.dst].push({ ...s, start: at });
            at += s.pages.length;
          }
        }
        return;
      }
      case 'attach': {
        const ioas = o.target % 2;
        const kind = Math.floor(o.target / 2);
        const pt = kind === 0 ? this.ioas[ioas] : this.hwpts[ioas][kind - 1];
        expect(errCode(() => this.devs[o.dev].attachPt(pt)), JSON.stringify(o)).toBe('ok');
        this.attached[o.dev] = ioas;
        return;
      }
      case 'detach':
        expect(errCode(() => this.devs[o.dev].detachPt())).toBe('ok');
        this.attached[o.dev] = -1;
        return;
      case 'invalidate': {
        const entry = new Uint8Array(16);
        const dv = new DataView(entry.buffer);
        dv.setBigUint64(0, o.all ? 0n : BigInt(WIN + o.start) * PAGE, true);
        dv.setBigUint64(8, o.all ? U.U64_MAX : BigInt(o.n), true);
        this.f.host.process.poke(this.invData, entry);
        const out = fd.run(U.iommu_hwpt_invalidate, 'HWPT_INVALIDATE', { hwpt_id: this.hwpts[o.ioas][1], data_uptr: this.invData, data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, entry_len: 16, entry_num: 1 });
        expect(out.entry_num).toBe(1);
        return;
      }
    }
  }

  /** What device `d` should reach at IOVA page `pfn`: the user page and permissions, or null. */
  expected(d: number, pfn: number): { page: RefPage; read: boolean; write: boolean } | null {
    const ioas = this.attached[d];
    if (ioas < 0) return null;
    for (const a of this.areas[ioas]) if (pfn >= a.start && pfn < a.start + a.pages.length) return { page: a.pages[pfn - a.start], read: a.read, write: a.write };
    return null;
  }

  samplePfns(): number[] {
    const out: number[] = [];
    for (let p = 0; p < WIN_PAGES + 8; p++) out.push(WIN + p);
    for (const h of HUGE) for (const s of HUGE_SAMPLE) out.push(h + s);
    return out;
  }

  /** Every device reaches exactly what the reference says, for every sampled page. */
  checkTranslations(): void {
    for (let d = 0; d < this.devs.length; d++) {
      for (const pfn of this.samplePfns()) {
        const e = this.expected(d, pfn);
        const ctx = `${DEVICES[d]} iova page 0x${pfn.toString(16)}`;
        expect(this.devs[d].translatePage(pfn, PERM_READ), `${ctx} read`).toBe(e?.read ? e.page.frame : -1);
        expect(this.devs[d].translatePage(pfn, PERM_WRITE), `${ctx} write`).toBe(e?.write ? e.page.frame : -1);
      }
    }
  }

  /** DMA through the whole path for a couple of pages per device: reads see the tag, writes land. */
  async checkDma(pick: number[]): Promise<void> {
    const pfns = this.samplePfns();
    for (let d = 0; d < this.devs.length; d++) {
      for (const k of pick) {
        const pfn = pfns[(k + d * 7) % pfns.length];
        const e = this.expected(d, pfn);
        const iova = BigInt(pfn) * PAGE;
        const r = await this.devs[d].dma.read(iova, 8).catch((x: unknown) => x);
        if (e?.read) {
          expect(r, `${DEVICES[d]} DMA read at page 0x${pfn.toString(16)}`).toBeInstanceOf(Uint8Array);
          expect(new DataView((r as Uint8Array).buffer).getUint32(0, true)).toBe(e.page.tag);
        } else expect(r, `${DEVICES[d]} DMA read at page 0x${pfn.toString(16)} must fault`).toBeInstanceOf(DmaFault);
        const off = 2048n + BigInt(d) * 8n;
        const value = new Uint8Array([k & 0xff, d, 0xa5, pfn & 0xff]);
        const w = await this.devs[d].dma.write(iova + off, value).then(
          () => 'ok',
          (x: unknown) => x,
        );
        if (e?.write) {
          expect(w).toBe('ok');
          expect([...this.f.host.process.peek(e.page.va + off, 4)]).toEqual([...value]);
        } else expect(w, `${DEVICES[d]} DMA write at page 0x${pfn.toString(16)} must fault`).toBeInstanceOf(DmaFault);
      }
    }
  }
}

describe('DMA isolation (property)', () => {
  it('every device reaches exactly what its IOAS maps, after every step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(200), { minLength: 2, maxLength: 2 }), async (ops, pick) => {
        const w = new World();
        for (const o of ops) {
          w.apply(o);
          w.checkTranslations();
          await w.checkDma(pick);
        }
        // Nothing the devices did left a page request waiting.
        expect(w.f.host.faults.outstanding).toBe(0);
      }),
      { numRuns: 50 },
    );
  });

  it('keeps an unmap that returned free of stale IOTLB entries on every unit and domain kind', async () => {
    const w = new World();
    // Every device on IOAS 0 through a different kind of domain, all caching the same pages.
    w.apply({ op: 'map', ioas: 0, start: 0, n: 4, read: true, write: true });
    w.apply({ op: 'attach', dev: 0, target: 0 });
    w.apply({ op: 'attach', dev: 1, target: 2 });
    w.apply({ op: 'attach', dev: 2, target: 4 });
    for (const d of w.devs) for (let p = 0; p < 4; p++) expect(d.translatePage(WIN + p, PERM_READ)).toBeGreaterThan(0);
    w.apply({ op: 'unmap', ioas: 0, start: 0, n: 4 });
    w.checkTranslations();
    await w.checkDma([0, 1, 2, 3]);
  });
});
