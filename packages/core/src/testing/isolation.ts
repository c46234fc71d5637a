/**
 * DMA isolation as a property any vendor can run: an `IsolationWorld` applies map / unmap / copy / attach /
 * replace / detach (and, when the vendor gives a nested payload, invalidate) on three devices and two IOAS,
 * and checks after every step, against a plain reference model, that every device reaches exactly the frame
 * and permissions its IOAS maps, or faults: never a stale or foreign translation.
 *
 * The world has no test runner in it (a violation throws an `Error`): a test generates arrays of
 * `ISOLATION_OP_WORDS` integers per step (fast-check shrinks the steps of a failing run, and each step's
 * numbers), turns each into an operation with `isolationOp`, and calls `apply`, `checkTranslations` and
 * `checkDma` after each.
 */
import * as U from '../uapi/iommufd.js';
import { PERM_READ, PERM_WRITE } from '../driver/pgtable.js';
import type { IommuPlugin } from '../driver/plugin.js';
import { createHost, type Host } from '../host/host.js';
import { DmaFault, type PciDevice } from '../host/device.js';
import type { HostProfile } from '../host/profile.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import { errCode } from './err-code.js';

const PAGE = 4096n;
/** The small-page window: IOVA pages [WINDOW_START, WINDOW_START + WINDOW_PAGES); it crosses a 2 MiB boundary. */
export const WINDOW_START = 0x1e8;
/** Length of the small-page window, in 4 KiB pages. */
export const WINDOW_PAGES = 48;
/** Two 2 MiB slots for huge mappings (IOVA pages). */
export const HUGE_SLOTS = [0x40000, 0x40200] as const;
const HUGE_SAMPLE = [0, 1, 256, 511];

/** One step. Positions are relative to the window; `target` picks the IOAS (target % 2) and the kind (IOAS, paging HWPT, nested or nest-parent HWPT). */
export type IsolationOp =
  | {
      /** IOMMU_IOAS_MAP of fresh user pages at a fixed IOVA in the window (EEXIST expected over an existing area). */
      op: 'map';
      /** Which of the world's two IOAS: 0 or 1. */
      ioas: number;
      /** First page, relative to WINDOW_START. */
      start: number;
      /** Pages to map (1 to 8). */
      n: number;
      /** IOMMU_IOAS_MAP_READABLE. */
      read: boolean;
      /** IOMMU_IOAS_MAP_WRITEABLE. */
      write: boolean;
    }
  | {
      /** IOMMU_IOAS_MAP of a physically contiguous 2 MiB buffer into a huge slot, read/write. */
      op: 'mapHuge';
      /** Which of the two IOAS. */
      ioas: number;
      /** Index into HUGE_SLOTS. */
      slot: number;
    }
  | {
      /** IOMMU_IOAS_UNMAP of a window range (ENOENT expected when it cuts an area or finds nothing). */
      op: 'unmap';
      /** Which of the two IOAS. */
      ioas: number;
      /** First page, relative to WINDOW_START. */
      start: number;
      /** Pages to unmap (1 to 16). */
      n: number;
    }
  | {
      /** IOMMU_IOAS_UNMAP of a whole huge slot. */
      op: 'unmapHuge';
      /** Which of the two IOAS. */
      ioas: number;
      /** Index into HUGE_SLOTS. */
      slot: number;
    }
  | {
      /** IOMMU_IOAS_UNMAP of everything (iova 0, length U64_MAX). */
      op: 'unmapAll';
      /** Which of the two IOAS. */
      ioas: number;
    }
  | {
      /** IOMMU_IOAS_COPY between window ranges (ENOENT, EEXIST or EPERM expected as the kernel checks them). */
      op: 'copy';
      /** Source IOAS: 0 or 1. */
      src: number;
      /** Destination IOAS: 0 or 1 (may equal `src`). */
      dst: number;
      /** First source page, relative to WINDOW_START. */
      srcStart: number;
      /** Pages to copy (1 to 6). */
      n: number;
      /** First destination page, relative to WINDOW_START. */
      dstStart: number;
      /** IOMMU_IOAS_MAP_READABLE on the copy. */
      read: boolean;
      /** IOMMU_IOAS_MAP_WRITEABLE on the copy (EPERM when a source page was pinned read-only). */
      write: boolean;
    }
  | {
      /** VFIO_DEVICE_ATTACH_IOMMUFD_PT (attach or replace); must succeed. */
      op: 'attach';
      /** Index of the device in IsolationOptions.devices. */
      dev: number;
      /** 0 to 5: IOAS `target % 2`, as the IOAS itself, its paging HWPT, or its nested (or nest-parent) HWPT. */
      target: number;
    }
  | {
      /** VFIO_DEVICE_DETACH_IOMMUFD_PT; must succeed. */
      op: 'detach';
      /** Index of the device. */
      dev: number;
    }
  | {
      /** IOMMU_HWPT_INVALIDATE of one entry on the IOAS's nested HWPT; nothing without IsolationOptions.nested. */
      op: 'invalidate';
      /** Which of the two IOAS. */
      ioas: number;
      /** First page, relative to WINDOW_START. */
      start: number;
      /** Pages to invalidate (1 to 8). */
      n: number;
      /** Invalidate everything instead of the range. */
      all: boolean;
    };

/** A nested HWPT that bypasses stage 1 (so stage 2 alone decides), and how to invalidate it. */
export interface IsolationNested {
  /** IOMMU_HWPT_DATA_* of the nested HWPT's payload. */
  readonly dataType: number;
  /** The vendor struct (e.g. a stage-1 bypass STE or PASID entry) passed as HWPT_ALLOC data. */
  readonly data: Uint8Array;
  /** How to build an IOMMU_HWPT_INVALIDATE entry for it; absent: `invalidate` steps do nothing. */
  readonly invalidate?: {
    /** IOMMU_HWPT_INVALIDATE_DATA_* of the entry. */
    readonly dataType: number;
    /** Bytes of one entry (`entry_len`). */
    readonly entryLen: number;
    /** One entry: everything (`all`), or `npages` pages at `iova`. */
    entry(all: boolean, iova: bigint, npages: number): Uint8Array;
  };
}

/** How to build an {@link IsolationWorld}: the vendor under test and a host with three devices on it. */
export interface IsolationOptions {
  /** Plugins the host loads (the vendor under test). */
  readonly plugins: readonly IommuPlugin[];
  /** A host profile with at least the three devices. */
  readonly profile: HostProfile;
  /** Three devices (BDFs); the first allocates the HWPTs. */
  readonly devices: readonly string[];
  /** Without it, the third attach kind is a nest-parent paging HWPT and `invalidate` steps do nothing. */
  readonly nested?: IsolationNested;
  /**
   * Allocate the second target with IOMMU_HWPT_ALLOC_NEST_PARENT (default true). VT-d refuses read-only
   * mappings in an IOAS with a nest parent (ERRATA_772415_SPR17), so a VT-d world that maps read-only pages
   * turns it off.
   */
  readonly nestParent?: boolean;
  /**
   * The formats can express a write-only mapping (default true). VMSAv8-64 stage 1 cannot (its AP field has
   * no write-only encoding, and io-pgtable-arm maps write-only as read/write): with false, write-only map and
   * copy steps are issued read/write.
   */
  readonly writeOnly?: boolean;
}

/** How many integers `isolationOp` reads per step. */
export const ISOLATION_OP_WORDS = 7;

/** Relative weights of the operations a step picks: mostly maps, unmaps, copies and attaches. */
const OP_WEIGHTS: readonly [IsolationOp['op'], number][] = [
  ['map', 6],
  ['mapHuge', 1],
  ['unmap', 4],
  ['unmapHuge', 1],
  ['unmapAll', 1],
  ['copy', 3],
  ['attach', 4],
  ['detach', 2],
  ['invalidate', 1],
];
const WEIGHT_SUM = OP_WEIGHTS.reduce((s, [, w]) => s + w, 0);
const PERMS: readonly [boolean, boolean][] = [
  [true, true],
  [true, false],
  [false, true],
];

/** One step from `ISOLATION_OP_WORDS` non-negative integers (any values: each is reduced to its range). */
export function isolationOp(w: readonly number[], devices = 3): IsolationOp {
  const at = (i: number): number => Math.abs(Math.trunc(w[i] ?? 0));
  let pick = at(0) % WEIGHT_SUM;
  let op: IsolationOp['op'] = 'map';
  for (const [name, weight] of OP_WEIGHTS) {
    if (pick < weight) {
      op = name;
      break;
    }
    pick -= weight;
  }
  const ioas = at(1) % 2;
  const start = at(2) % WINDOW_PAGES;
  const [read, write] = PERMS[at(4) % PERMS.length];
  switch (op) {
    case 'map':
      return { op, ioas, start, n: 1 + (at(3) % 8), read, write };
    case 'mapHuge':
    case 'unmapHuge':
      return { op, ioas, slot: at(2) % HUGE_SLOTS.length };
    case 'unmap':
      return { op, ioas, start, n: 1 + (at(3) % 16) };
    case 'unmapAll':
      return { op, ioas };
    case 'copy':
      return { op, src: ioas, dst: at(5) % 2, srcStart: start, n: 1 + (at(3) % 6), dstStart: at(6) % WINDOW_PAGES, read, write };
    case 'attach':
      return { op, dev: at(5) % devices, target: at(6) % 6 };
    case 'detach':
      return { op, dev: at(5) % devices };
    case 'invalidate':
      return { op, ioas, start, n: 1 + (at(3) % 8), all: at(4) % 2 === 1 };
  }
}

/** The reference model's view of one mapped page: which frame backs it and what it holds. */
export interface RefPage {
  /** The physical frame the page is pinned to. */
  frame: number;
  /** The tag written at the start of the user page. */
  tag: number;
  /** The pin is writable (the pages were first mapped WRITEABLE). */
  pinWritable: boolean;
  /** The user address the page was mapped from. */
  va: bigint;
}

/** The reference model's view of one area of an IOAS (a successful map, possibly cut by later unmaps). */
export interface RefArea {
  /** First IOVA page of the area (4 KiB units inside the window). */
  start: number;
  /** Its pages, in IOVA order. */
  pages: RefPage[];
  /** Mapped IOMMU_IOAS_MAP_READABLE. */
  read: boolean;
  /** Mapped IOMMU_IOAS_MAP_WRITEABLE. */
  write: boolean;
}

function same(got: unknown, want: unknown, what: string): void {
  if (got !== want) throw new Error(`isolation: ${what}: got ${String(got)}, expected ${String(want)}`);
}

/**
 * Three devices bound to one iommufd with two IOAS, each IOAS with a paging HWPT and a nested (or nest-parent)
 * HWPT, plus a reference model of what every device must reach; see the module comment.
 */
export class IsolationWorld {
  /** The host built from IsolationOptions. */
  readonly host: Host;
  /** The iommufd every device is bound to. */
  readonly fd: Iommufd;
  /** The three devices, in IsolationOptions.devices order. */
  readonly devs: PciDevice[];
  /** The two IOAS ids. */
  readonly ioas: number[];
  /** Per IOAS: the explicit attach targets [paging, nested or nest parent]. */
  readonly hwpts: number[][] = [];
  /** Reference: per IOAS, its areas. */
  readonly areas: RefArea[][] = [[], []];
  /** Reference: per device, the IOAS index it translates through, or -1. */
  readonly attached: number[];
  private nextTag = 1;
  private readonly invData: bigint;

  constructor(private readonly opts: IsolationOptions) {
    // These check the vendor, not the platform's MSI isolation: bind as a VMM does on a host without
    // interrupt remapping (virtio-iommu, RISC-V), with iommufd.allow_unsafe_interrupts=1.
    this.host = createHost({ plugins: [...opts.plugins], profile: opts.profile, allowUnsafeInterrupts: true });
    this.fd = this.host.openIommufd();
    const { host, fd } = this;
    this.devs = opts.devices.map((b) => host.device(b));
    this.attached = opts.devices.map(() => -1);
    for (const d of this.devs) d.bindIommufd(fd);
    this.ioas = [fd.ioas.alloc(), fd.ioas.alloc()];
    const devId = this.devs[0].idev!.id;
    const data = host.process.mmap(4096);
    if (opts.nested) host.process.poke(data, opts.nested.data);
    for (const ioas of this.ioas) {
      const alloc = (init: Partial<ReturnType<typeof U.iommu_hwpt_alloc.zero>>) => fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, ...init }).out_hwpt_id;
      const paging = alloc({ pt_id: ioas });
      // A unit without nesting refuses NEST_PARENT (EOPNOTSUPP): the second target is then another paging HWPT.
      let parent = -1;
      if (opts.nestParent === false || errCode(() => (parent = alloc({ pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }))) === 'EOPNOTSUPP') parent = alloc({ pt_id: ioas });
      const second = opts.nested ? alloc({ pt_id: parent, data_type: opts.nested.dataType, data_len: opts.nested.data.byteLength, data_uptr: data }) : parent;
      this.hwpts.push([paging, second]);
    }
    this.invData = host.process.mmap(4096);
  }

  /** Fresh user pages, each tagged, faulted in, with their frames. */
  private userPages(n: number): RefPage[] {
    const { host } = this;
    const va = host.process.mmap(n * 4096);
    for (let i = 0; i < n; i++) {
      const tag = this.nextTag + i;
      const b = new Uint8Array(8);
      new DataView(b.buffer).setUint32(0, tag, true);
      new DataView(b.buffer).setUint32(4, ~tag >>> 0, true);
      host.process.poke(va + BigInt(i) * PAGE, b);
    }
    const frames = new Float64Array(n);
    host.process.resolvePages(Number(va / PAGE), n, false, frames);
    const out: RefPage[] = [];
    for (let i = 0; i < n; i++) out.push({ frame: frames[i], tag: this.nextTag + i, pinWritable: false, va: va + BigInt(i) * PAGE });
    this.nextTag += n;
    return out;
  }

  /** A 2 MiB buffer whose frames are physically contiguous and 2 MiB aligned (so a block can be used). */
  private hugePages(): RefPage[] {
    for (let i = 0; i < 1024; i++) if ((this.host.frames.alloc() + 1) % 512 === 0) break;
    return this.userPages(512);
  }

  private overlaps(ioas: number, start: number, n: number): RefArea[] {
    return this.areas[ioas].filter((a) => a.start < start + n && a.start + a.pages.length > start);
  }

  /** Runs one step on the model and on the reference; throws when the errno differs from the reference's. */
  apply(step: IsolationOp): void {
    const o = (step.op === 'map' || step.op === 'copy') && this.opts.writeOnly === false && step.write && !step.read ? { ...step, read: true } : step;
    const { fd } = this;
    const what = JSON.stringify(o);
    switch (o.op) {
      case 'map':
      case 'mapHuge': {
        const start = o.op === 'map' ? WINDOW_START + o.start : HUGE_SLOTS[o.slot];
        const pages = o.op === 'map' ? this.userPages(o.n) : this.hugePages();
        const read = o.op === 'map' ? o.read : true;
        const write = o.op === 'map' ? o.write : true;
        const expected = this.overlaps(o.ioas, start, pages.length).length > 0 ? 'EEXIST' : 'ok';
        const got = errCode(() =>
          fd.ioas.map({ ioasId: this.ioas[o.ioas], userVa: pages[0].va, length: BigInt(pages.length) * PAGE, iova: BigInt(start) * PAGE, readable: read, writeable: write }),
        );
        same(got, expected, what);
        if (got === 'ok') {
          for (const p of pages) p.pinWritable = write;
          this.areas[o.ioas].push({ start, pages, read, write });
        }
        return;
      }
      case 'unmap':
      case 'unmapHuge': {
        const start = o.op === 'unmap' ? WINDOW_START + o.start : HUGE_SLOTS[o.slot];
        const n = o.op === 'unmap' ? o.n : 512;
        // iopt_unmap_iova_range: areas go in IOVA order until one crosses either end (ENOENT); those before it
        // stay unmapped. Nothing mapped in the range is ENOENT too.
        const removed: RefArea[] = [];
        let crossing = false;
        for (const a of [...this.overlaps(o.ioas, start, n)].sort((x, y) => x.start - y.start)) {
          if (a.start < start || a.start + a.pages.length > start + n) {
            crossing = true;
            break;
          }
          removed.push(a);
        }
        const expected = removed.length === 0 || crossing ? 'ENOENT' : 'ok';
        let bytes = -1n;
        const got = errCode(() => (bytes = fd.ioas.unmap(this.ioas[o.ioas], BigInt(start) * PAGE, BigInt(n) * PAGE)));
        same(got, expected, what);
        if (got === 'ok') same(bytes, BigInt(removed.reduce((s, a) => s + a.pages.length, 0)) * PAGE, `${what}: bytes unmapped`);
        this.areas[o.ioas] = this.areas[o.ioas].filter((a) => !removed.includes(a));
        return;
      }
      case 'unmapAll': {
        const total = this.areas[o.ioas].reduce((s, a) => s + a.pages.length, 0);
        same(fd.ioas.unmapAll(this.ioas[o.ioas]), BigInt(total) * PAGE, what);
        this.areas[o.ioas] = [];
        return;
      }
      case 'copy': {
        const srcStart = WINDOW_START + o.srcStart;
        const dstStart = WINDOW_START + o.dstStart;
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
        same(got, expected, what);
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
        same(errCode(() => this.devs[o.dev].attachPt(pt)), 'ok', what);
        this.attached[o.dev] = ioas;
        return;
      }
      case 'detach':
        same(errCode(() => this.devs[o.dev].detachPt()), 'ok', what);
        this.attached[o.dev] = -1;
        return;
      case 'invalidate': {
        const inv = this.opts.nested?.invalidate;
        if (!inv) return;
        this.host.process.poke(this.invData, inv.entry(o.all, BigInt(WINDOW_START + o.start) * PAGE, o.n));
        const out = fd.run(U.iommu_hwpt_invalidate, 'HWPT_INVALIDATE', { hwpt_id: this.hwpts[o.ioas][1], data_uptr: this.invData, data_type: inv.dataType, entry_len: inv.entryLen, entry_num: 1 });
        same(out.entry_num, 1, `${what}: entries handled`);
        return;
      }
    }
  }

  /** Applies each step, checking every translation and a few DMAs after each. */
  async run(steps: readonly IsolationOp[], pick: readonly number[]): Promise<void> {
    for (const o of steps) {
      this.apply(o);
      this.checkTranslations();
      await this.checkDma(pick);
    }
  }

  /** What device `d` should reach at IOVA page `pfn`: the user page and permissions, or null. */
  expected(
    d: number,
    pfn: number,
  ): {
    /** The user page the IOVA maps. */
    page: RefPage;
    /** The mapping is readable. */
    read: boolean;
    /** The mapping is writeable. */
    write: boolean;
  } | null {

    const ioas = this.attached[d];
    if (ioas < 0) return null;
    for (const a of this.areas[ioas]) if (pfn >= a.start && pfn < a.start + a.pages.length) return { page: a.pages[pfn - a.start], read: a.read, write: a.write };
    return null;
  }

  /** The pages checked: the whole window and a little past it, and four pages of each huge slot. */
  samplePfns(): number[] {
    const out: number[] = [];
    for (let p = 0; p < WINDOW_PAGES + 8; p++) out.push(WINDOW_START + p);
    for (const h of HUGE_SLOTS) for (const s of HUGE_SAMPLE) out.push(h + s);
    return out;
  }

  /** Every device reaches exactly what the reference says, for every sampled page. */
  checkTranslations(): void {
    for (let d = 0; d < this.devs.length; d++) {
      for (const pfn of this.samplePfns()) {
        const e = this.expected(d, pfn);
        const ctx = `${this.opts.devices[d]} iova page 0x${pfn.toString(16)}`;
        same(this.devs[d].translatePage(pfn, PERM_READ), e?.read ? e.page.frame : -1, `${ctx} read`);
        same(this.devs[d].translatePage(pfn, PERM_WRITE), e?.write ? e.page.frame : -1, `${ctx} write`);
      }
    }
  }

  /** DMA through the whole path for a couple of pages per device: reads see the tag, writes land. */
  async checkDma(pick: readonly number[]): Promise<void> {
    const pfns = this.samplePfns();
    for (let d = 0; d < this.devs.length; d++) {
      for (const k of pick) {
        const pfn = pfns[(k + d * 7) % pfns.length];
        const e = this.expected(d, pfn);
        const iova = BigInt(pfn) * PAGE;
        const ctx = `${this.opts.devices[d]} DMA at page 0x${pfn.toString(16)}`;
        const r = await this.devs[d].dma.read(iova, 8).catch((x: unknown) => x);
        if (e?.read) {
          if (!(r instanceof Uint8Array)) throw new Error(`isolation: ${ctx}: read failed: ${String(r)}`);
          same(new DataView(r.buffer, r.byteOffset).getUint32(0, true), e.page.tag, `${ctx}: tag read`);
        } else if (!(r instanceof DmaFault)) throw new Error(`isolation: ${ctx}: read must fault, got ${String(r)}`);
        const off = 2048n + BigInt(d) * 8n;
        const value = new Uint8Array([k & 0xff, d, 0xa5, pfn & 0xff]);
        const w = await this.devs[d].dma.write(iova + off, value).then(
          () => 'ok' as const,
          (x: unknown) => x,
        );
        if (e?.write) {
          if (w !== 'ok') throw new Error(`isolation: ${ctx}: write failed: ${String(w)}`);
          same([...this.host.process.peek(e.page.va + off, 4)].join(), [...value].join(), `${ctx}: bytes written`);
        } else if (!(w instanceof DmaFault)) throw new Error(`isolation: ${ctx}: write must fault, got ${String(w)}`);
      }
    }
  }
}

