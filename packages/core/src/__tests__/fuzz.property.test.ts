/**
 * Robustness fuzz of the whole uAPI surface: random sequences of raw ioctls (with buffers biased to be
 * plausible), typed calls, file operations on the fault / vEVENTQ / memfd / iommufd fds and on garbage
 * fds, device attach / detach / bind / unbind and DMA, against a fully populated mock host.
 *
 * After every step:
 *  - a raw ioctl returned 0 or a negative errno from the set the kernel uses, and never threw;
 *  - the typed, process and device APIs threw nothing but IommufdError (DMA: DmaFault);
 *  - a step that failed left the observable state exactly as it was (the project's rule: "a failed
 *    command leaves state unchanged"), with the kernel's documented exceptions spelled out below;
 *  - a step that succeeded left the state internally consistent (reference counts match the
 *    references, accounting matches the pinned pages, reserved ranges match the attached devices).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as U from '../uapi/iommufd.js';
import { ERRNO, IommufdError, errnoName } from '../uapi/errno.js';
import type { FieldSpec, StructLayout } from '../uapi/struct.js';
import { DmaFault, type PciDevice } from '../host/device.js';
import { PROT_READ } from '../memory/process.js';
import { ObjType, type IommufdObject } from '../iommufd/objects.js';
import type { Ioas } from '../iommufd/ioas.js';
import { HwptNested, HwptPaging, type Hwpt } from '../iommufd/hwpt.js';
import type { IommufdDevice } from '../iommufd/device.js';
import type { FaultQueue, VEventQueue } from '../iommufd/eventq.js';
import type { Vdevice, Viommu } from '../iommufd/viommu.js';
import type { IoptPages } from '../iommufd/io-pagetable.js';
import {
  IOMMU_HWPT_DATA_MOCK,
  IOMMU_HWPT_INVALIDATE_DATA_MOCK,
  IOMMU_HW_INFO_TYPE_MOCK,
  IOMMU_VEVENTQ_TYPE_MOCK,
  IOMMU_VIOMMU_TYPE_MOCK,
  MOCK_HWPT_DATA_SIZE,
} from '../testing/mock-vendor.js';
import { mockFixture, type MockFixture } from './mock-host.js';

const PAGE = 4096n;
const U64_MAX = U.U64_MAX;

/** The errnos the kernel returns from the iommufd uAPI (and the file operations on its fds). */
const KERNEL_ERRNOS = new Set(['EPERM', 'ENOENT', 'EIO', 'E2BIG', 'EBADF', 'ENOMEM', 'EFAULT', 'EBUSY', 'EEXIST', 'ENODEV', 'EINVAL', 'ENOTTY', 'ENOSPC', 'ESPIPE', 'ERANGE', 'EOVERFLOW', 'EMSGSIZE', 'EOPNOTSUPP', 'EADDRINUSE']);

const INTERESTING_U64 = [0n, 1n, 0xfffn, 0x1000n, 0x2000n, 0x200000n, 1n << 39n, 1n << 52n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, U64_MAX, U64_MAX - 4095n];
const INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 0xff, 0x1000, 0x7fffffff, 0x80000000, 0xffffffff];

// --- a deterministic PRNG per step (fast-check provides and shrinks the seed) -----------------------

/** Outcome counts per command, printed with FUZZ_STATS=1 (FUZZ_RUNS=n runs longer campaigns). */
const STATS = new Map<string, number>();
class Rng {
  constructor(private s: number) {}
  next(): number {
    // mulberry32
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  u32(): number {
    return (this.next() * 4294967296) >>> 0;
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

// --- the populated world ----------------------------------------------------------------------------

const BDFS = ['0000:00:01.0', '0000:00:02.0', '0000:00:03.0', '0000:00:03.1', '0000:80:00.0'];
const USER_LEN = 64 * 4096;

class World {
  readonly f: MockFixture = mockFixture();
  readonly devs: PciDevice[] = BDFS.map((b) => this.f.host.device(b));
  /** A read-write user buffer with plausible command payloads at fixed offsets. */
  readonly user: bigint;
  /** A read-only mapping. */
  readonly ro: bigint;
  readonly memfd: number;
  readonly faultFd: number;
  readonly veventqFd: number;
  /** DMA still in flight, and anything a DMA rejected with other than DmaFault. */
  readonly dmas: Promise<void>[] = [];
  readonly unexpected: unknown[] = [];

  constructor(rlimitPages: number | null) {
    const { host, fd } = this.f;
    const p = host.process;
    this.user = p.mmap(USER_LEN);
    p.poke(this.user, new Uint8Array(USER_LEN).fill(0x5a));
    // 0x0: iova ranges (three good ones, then one with start > last).
    const ranges: [bigint, bigint][] = [
      [0x100000n, 0x3fffffn],
      [0x10000000n, 0x1fffffffn],
      [0x8000000000n, 0xffffffffffn],
      [0x5000n, 0x4000n],
    ];
    ranges.forEach(([s, l], i) => p.poke(this.user + BigInt(i * 16), U.iommu_iova_range.encode({ start: s, last: l })));
    // 0x1000: mock HWPT data, bypass / translate / abort.
    for (let mode = 0; mode < 3; mode++) {
      const d = new Uint8Array(MOCK_HWPT_DATA_SIZE);
      new DataView(d.buffer).setUint32(8, [1, 0, 2][mode], true);
      p.poke(this.user + 0x1000n + BigInt(mode * 16), d);
    }
    // 0x2000: mock invalidation entries: all, a range, a misaligned one.
    const inv = new Uint8Array(48);
    const dv = new DataView(inv.buffer);
    dv.setBigUint64(8, U64_MAX, true);
    dv.setBigUint64(16, 0x100000n, true);
    dv.setBigUint64(24, 4n, true);
    dv.setBigUint64(32, 0x123n, true);
    dv.setBigUint64(40, 1n, true);
    p.poke(this.user + 0x2000n, inv);
    this.ro = p.mmap(4 * 4096, { prot: PROT_READ });
    this.memfd = p.memfd(16 * 4096);

    const [a, b, , , c] = this.devs;
    const devA = a.bindIommufd(fd);
    const devB = b.bindIommufd(fd);
    c.bindIommufd(fd);
    const ioas1 = fd.ioas.alloc();
    const ioas2 = fd.ioas.alloc();
    fd.ioas.map({ ioasId: ioas1, userVa: this.user + 0x10000n, length: 4n * PAGE, iova: 0x100000n });
    fd.ioas.map({ ioasId: ioas1, userVa: this.user + 0x20000n, length: 2n * PAGE, iova: 0x200000n, writeable: false });
    fd.ioas.map({ ioasId: ioas1, userVa: this.ro, length: 2n * PAGE, iova: 0x300000n, writeable: false });
    fd.ioas.mapFile({ ioasId: ioas1, fd: this.memfd, start: 0n, length: 4n * PAGE, iova: 0x400000n });
    fd.ioas.map({ ioasId: ioas2, userVa: this.user + 0x30000n, length: 8n * PAGE, iova: 0x100000n });
    const fq = fd.fault.alloc();
    this.faultFd = fq.fd;
    // Device A (PRI, PASID) on a fault-capable, PASID-capable paging HWPT: its DMA misses become page requests.
    const hwptFault = fd.hwpt.alloc({ devId: devA, ptId: ioas1, faultId: fq.id, pasid: true });
    a.attachPt(hwptFault);
    a.attachPt(hwptFault, { pasid: 5 });
    const parent = fd.hwpt.alloc({ devId: devA, ptId: ioas1, nestParent: true });
    fd.hwpt.alloc({ devId: devA, ptId: parent, data: { type: IOMMU_HWPT_DATA_MOCK, bytes: p.peek(this.user + 0x1000n, MOCK_HWPT_DATA_SIZE) } });
    const viommu = fd.viommu.alloc({ devId: devA, type: IOMMU_VIOMMU_TYPE_MOCK, hwptId: parent });
    fd.vdevice.alloc({ viommuId: viommu, devId: devB, virtId: 0x42n });
    const vq = fd.veventq.alloc({ viommuId: viommu, type: IOMMU_VEVENTQ_TYPE_MOCK, depth: 4 });
    this.veventqFd = vq.fd;
    // Device B on a stage-1 translating nested HWPT of the vIOMMU: its faults become vEVENTs.
    const nestedV = fd.hwpt.alloc({ devId: devB, ptId: viommu, data: { type: IOMMU_HWPT_DATA_MOCK, bytes: p.peek(this.user + 0x1010n, MOCK_HWPT_DATA_SIZE) } });
    b.attachPt(nestedV);
    // Device C (another unit) on the second IOAS through an automatic domain.
    c.attachPt(ioas2);
    // A dirty-tracking domain on the second IOAS.
    fd.hwpt.alloc({ devId: devA, ptId: ioas2, dirtyTracking: true });
    if (rlimitPages !== null) p.rlimitMemlock = (p.lockedPages + rlimitPages) * 4096;
  }

  get fd() {
    return this.f.fd;
  }

  objects(): IommufdObject[] {
    return [...this.fd.ctx.objects.objects()];
  }

  ioases(): Ioas[] {
    return this.objects().filter((o): o is Ioas => o.type === ObjType.IOAS);
  }

  /** Ids worth trying: every live id, tombstones, 0 and garbage. */
  idPool(): number[] {
    const ids = this.objects().map((o) => o.id);
    const max = ids.length ? Math.max(...ids) : 0;
    return [...ids, ...ids, 0, max + 1, 0xffffffff, 0x80000000];
  }

  idOf(type: ObjType, rng: Rng): number {
    const xs = this.objects().filter((o) => o.type === type);
    return xs.length && !rng.chance(0.1) ? rng.pick(xs).id : rng.pick(this.idPool());
  }

  fdPool(): number[] {
    return [this.faultFd, this.veventqFd, this.memfd, this.fd.fd, ...this.f.host.process.openFds, -1, 0, 1, 2, 999, 0x7fffffff];
  }

  pointer(rng: Rng): bigint {
    const u = this.user;
    return rng.pick([
      u,
      u,
      u + 0x1000n,
      u + 0x1010n,
      u + 0x1020n,
      u + 0x2000n,
      u + 0x10000n,
      u + BigInt(rng.int(USER_LEN)),
      u + BigInt(rng.int(USER_LEN / 4096)) * PAGE,
      u + BigInt(USER_LEN) - 8n,
      u + BigInt(USER_LEN),
      this.ro,
      this.ro + 0x10n,
      0n,
      ...INTERESTING_U64,
      rng.u64(),
    ]);
  }

  iova(rng: Rng): bigint {
    const areas = this.ioases().flatMap((i) => [...i.iopt.iterAreas()]);
    const a = areas.length ? rng.pick(areas) : undefined;
    const fromArea = a ? [a.iova, a.last + 1n, a.iova + PAGE, a.iova - PAGE, a.last] : [];
    return rng.pick([...INTERESTING_U64, ...fromArea, ...fromArea, BigInt(rng.int(0x800)) * PAGE, 0x100000n, 0x200000n, 0xfee00000n, rng.u64()]);
  }

  length(rng: Rng): bigint {
    return rng.pick([...INTERESTING_U64, PAGE, 2n * PAGE, 4n * PAGE, 8n * PAGE, 16n * PAGE, BigInt(1 + rng.int(16)) * PAGE, BigInt(rng.int(0x10000)), rng.u64()]);
  }
}

// --- snapshots -------------------------------------------------------------------------------------

function objectTable(w: World): unknown[] {
  const slots = [...(w.fd.ctx.objects as unknown as { slots: unknown[] }).slots];
  // A reserved-then-released id leaves an empty slot at the end: the next id handed out is the same.
  while (slots.length > 1 && slots[slots.length - 1] === undefined) slots.pop();
  return slots.map((s, id) => (typeof s === 'object' && s !== null ? [id, ObjType[(s as IommufdObject).type], (s as IommufdObject).users] : [id, typeof s === 'symbol' ? s.description : s]));
}

function snapshot(w: World): unknown {
  const { host, fd } = w.f;
  const objs = w.objects();
  return {
    closed: fd.ctx.closed,
    table: objectTable(w),
    rlimitMode: fd.ctx.rlimitMode,
    vfioIoas: fd.ctx.vfioIoasId,
    ioas: w.ioases().map((i) => ({
      id: i.id,
      areas: [...i.iopt.iterAreas()].map((a) => [a.iova, a.last, a.prot, a.pageOffset, a.pages.users]),
      allowed: i.iopt.allowedRanges(),
      reserved: i.iopt.reservedRanges(),
      alignment: i.iopt.iovaAlignment,
      huge: i.iopt.hugePages,
      domains: i.iopt.domains.length,
      auto: i.autoHwpts.map((h) => h.id),
    })),
    hwpts: objs
      .filter((o): o is Hwpt => o instanceof HwptPaging || o instanceof HwptNested)
      .map((h) => [h.id, h.fault?.id ?? 0, h.pasidCompat, h instanceof HwptPaging ? [h.dirtyTrackingEnabled, h.children.size] : 0]),
    lockedPages: host.process.lockedPages,
    fds: host.process.openFds,
    devices: w.devs.map((d) => ({
      bound: d.idev?.id ?? 0,
      attachments: d.idev ? [...d.idev.attachments].map(([pasid, h]) => [pasid, h.id]) : [],
      vdevice: d.idev?.vdevice?.id ?? 0,
      group: [...d.group.attach].map(([pasid, g]) => [pasid, g.hwpt.id, [...g.devices].map((x) => x.id)]),
    })),
    faults: objs.filter((o): o is FaultQueue => o.type === ObjType.FAULT).map((q) => [q.id, q.pending, q.awaitingResponse]),
    veventqs: objs.filter((o): o is VEventQueue => o.type === ObjType.VEVENTQ).map((q) => [q.id, q.queued]),
    viommus: objs.filter((o): o is Viommu => o.type === ObjType.VIOMMU).map((v) => [v.id, [...v.vdevices.keys()], [...v.veventqs.keys()]]),
  };
}

type Snap = { ioas: { areas: unknown[] }[]; lockedPages: number };

/** The step just run was an IOAS_UNMAP (raw or typed). */
function isUnmapStep(trace: string[]): boolean {
  const step = trace[trace.length - 2] ?? '';
  return step.startsWith(`ioctl ${U.IOMMU_IOAS_UNMAP.toString(16)} `) || step === 'typed unmap';
}

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x), 1);
}

function diffLines(before: string, after: string): string {
  const b = before.split('\n');
  const a = after.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < 20; i++) if (a[i] !== b[i]) out.push(`@${i}: ${b[i]} -> ${a[i]}`);
  return out.join('\n');
}

/** Internal consistency after a successful step. */
function checkConsistent(w: World, ctx: string): void {
  const { host, fd } = w.f;
  if (fd.ctx.closed) return;
  const objs = w.objects();
  const fds = new Set(host.process.openFds);
  // Reference counts: every object's users equal the references the others hold on it.
  const expected = new Map<IommufdObject, number>(objs.map((o) => [o, o.type === ObjType.DEVICE ? 2 : 1]));
  const inc = (o: IommufdObject | null | undefined) => {
    if (o) expected.set(o, (expected.get(o) ?? 0) + 1);
  };
  for (const o of objs) {
    if (o instanceof HwptPaging) {
      inc(o.ioas);
      inc(o.fault);
    } else if (o instanceof HwptNested) {
      inc(o.viommu ?? o.parent);
      inc(o.fault);
    } else if (o.type === ObjType.VIOMMU) inc((o as Viommu).parent);
    else if (o.type === ObjType.VDEVICE) inc((o as Vdevice).viommu);
    else if (o.type === ObjType.VEVENTQ) {
      inc((o as VEventQueue).viommu);
      if (fds.has((o as VEventQueue).fd)) inc(o);
    } else if (o.type === ObjType.FAULT && fds.has((o as FaultQueue).fd)) inc(o);
    else if (o.type === ObjType.DEVICE) for (const h of (o as IommufdDevice).attachments.values()) inc(h);
  }
  for (const o of objs) expect(o.users, `${ctx}: users of ${ObjType[o.type]} ${o.id}`).toBe(expected.get(o));
  // Every reference points at a published object.
  const live = new Set(objs);
  for (const o of objs) {
    if (o instanceof HwptPaging) expect(live.has(o.ioas), `${ctx}: HWPT ${o.id} on a dead IOAS`).toBe(true);
    if (o instanceof HwptNested) expect(live.has(o.parent) && (!o.viommu || live.has(o.viommu)), `${ctx}: nested ${o.id} on a dead parent`).toBe(true);
    if (o.type === ObjType.DEVICE) for (const h of (o as IommufdDevice).attachments.values()) expect(live.has(h), `${ctx}: device ${o.id} on a dead HWPT`).toBe(true);
  }
  // Areas: ordered, disjoint, exact numbers; accounting matches the distinct pinned pages.
  const pinned = new Map<IoptPages, number>();
  // One walk per IOAS: an area kept as a compact record is a new snapshot (with its own pages object)
  // on each walk, so the pins below are read from the same snapshots.
  const areasOf = new Map(w.ioases().map((i) => [i, [...i.iopt.iterAreas()]]));
  for (const i of w.ioases()) {
    let prev = -1n;
    let n = 0;
    for (const a of areasOf.get(i)!) {
      n++;
      expect(a.iova > prev && a.iova <= a.last, `${ctx}: IOAS ${i.id} areas out of order`).toBe(true);
      expect(Number.isFinite(a.iovaNum) && Number.isFinite(a.lastNum) && Number.isInteger(a.npages), `${ctx}: NaN in an area`).toBe(true);
      prev = a.last;
      pinned.set(a.pages, (pinned.get(a.pages) ?? 0) + 1);
    }
    expect(i.iopt.areaCount, `${ctx}: IOAS ${i.id} area count`).toBe(n);
    // Reserved ranges are exactly the regions of the devices attached (RID) to a HWPT of this IOAS (a
    // nested HWPT counts through its parent, as find_hwpt_paging does), plus what lies outside the
    // aperture of every domain of the IOAS (iopt_table_add_domain).
    const want: string[] = [];
    for (const d of w.devs) {
      const h = d.idev?.attachments.get(-1);
      const paging = h instanceof HwptPaging ? h : h instanceof HwptNested ? h.parent : null;
      if (paging && paging.ioas === i) for (const r of d.reservedRegions) want.push(`${r.start}-${r.last}`);
    }
    for (const dom of i.iopt.domains) {
      if (dom.apertureStart > 0n) want.push(`0-${dom.apertureStart - 1n}`);
      if (dom.apertureLast < U.ULONG_MAX) want.push(`${dom.apertureLast + 1n}-${U.ULONG_MAX}`);
    }
    const got = i.iopt.reservedRanges().map((r) => `${r.start}-${r.last}`);
    expect(got.sort(), `${ctx}: reserved ranges of IOAS ${i.id}`).toEqual(want.sort());
  }
  // Pins: each area of an IOAS with a domain holds one pin on each of its pages (lazy pinning: none
  // without a domain); every pinned page is charged once. Checked by a sweep over the pinned
  // intervals of each pages object: the pages covered, and the pin count at every interval edge.
  const spans = new Map<IoptPages, [number, number][]>();
  for (const i of w.ioases()) {
    if (i.iopt.domains.length === 0) continue;
    for (const a of areasOf.get(i)!) {
      const l = spans.get(a.pages) ?? [];
      spans.set(a.pages, l);
      l.push([a.pageIndex, a.pageIndex + a.npages]);
    }
  }
  let charged = 0;
  for (const [pages, n] of pinned) {
    expect(pages.users, `${ctx}: users of a pages object`).toBe(n);
    const l = spans.get(pages) ?? [];
    const edges = [...new Set(l.flatMap(([a, b]) => [a, b]))].sort((x, y) => x - y);
    let covered = 0;
    for (let k = 0; k + 1 < edges.length; k++) {
      const depth = l.filter(([a, b]) => a <= edges[k] && b > edges[k]).length;
      if (depth > 0) covered += edges[k + 1] - edges[k];
      expect(pages.pinCount(edges[k]), `${ctx}: pins of page ${edges[k]}`).toBe(depth);
    }
    expect(pages.npinned, `${ctx}: pinned pages of a pages object`).toBe(covered);
    charged += pages.npinned;
  }
  expect(host.process.lockedPages, `${ctx}: lockedPages`).toBe(charged);
  // Group attachments agree with the devices'.
  for (const d of w.devs) {
    if (!d.idev) continue;
    for (const [pasid, h] of d.idev.attachments) expect(d.group.attach.get(pasid)?.hwpt, `${ctx}: group attach of ${d.bdf} pasid ${pasid}`).toBe(h);
  }
}

// --- steps -----------------------------------------------------------------------------------------

interface Cmd {
  nr: number;
  layout: StructLayout<readonly FieldSpec[]>;
  min: number;
}

const CMDS: Cmd[] = [
  [U.IOMMUFD_CMD.DESTROY, U.iommu_destroy, 8],
  [U.IOMMUFD_CMD.IOAS_ALLOC, U.iommu_ioas_alloc, 12],
  [U.IOMMUFD_CMD.IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, 24],
  [U.IOMMUFD_CMD.IOAS_COPY, U.iommu_ioas_copy, 40],
  [U.IOMMUFD_CMD.IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, 32],
  [U.IOMMUFD_CMD.IOAS_MAP, U.iommu_ioas_map, 40],
  [U.IOMMUFD_CMD.IOAS_UNMAP, U.iommu_ioas_unmap, 24],
  [U.IOMMUFD_CMD.OPTION, U.iommu_option, 24],
  [U.IOMMUFD_CMD.VFIO_IOAS, U.iommu_vfio_ioas, 12],
  [U.IOMMUFD_CMD.HWPT_ALLOC, U.iommu_hwpt_alloc, 24],
  [U.IOMMUFD_CMD.GET_HW_INFO, U.iommu_hw_info, 32],
  [U.IOMMUFD_CMD.HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, 16],
  [U.IOMMUFD_CMD.HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, 48],
  [U.IOMMUFD_CMD.HWPT_INVALIDATE, U.iommu_hwpt_invalidate, 32],
  [U.IOMMUFD_CMD.FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, 16],
  [U.IOMMUFD_CMD.IOAS_MAP_FILE, U.iommu_ioas_map_file, 40],
  [U.IOMMUFD_CMD.VIOMMU_ALLOC, U.iommu_viommu_alloc, 24],
  [U.IOMMUFD_CMD.VDEVICE_ALLOC, U.iommu_vdevice_alloc, 24],
  [U.IOMMUFD_CMD.IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process, 8],
  [U.IOMMUFD_CMD.VEVENTQ_ALLOC, U.iommu_veventq_alloc, 28],
  [U.IOMMUFD_CMD.HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, 40],
  [U.IOMMUFD_CMD.IOAS_NOIOMMU_GET_PA, U.iommu_ioas_noiommu_get_pa, 40],
].map(([nr, layout, min]) => ({ nr: nr as number, layout: layout as unknown as StructLayout<readonly FieldSpec[]>, min: min as number }));

const ID_FIELDS: Record<string, ObjType> = {
  ioas_id: ObjType.IOAS,
  dst_ioas_id: ObjType.IOAS,
  src_ioas_id: ObjType.IOAS,
  dev_id: ObjType.DEVICE,
  hwpt_id: ObjType.HWPT_PAGING,
  viommu_id: ObjType.VIOMMU,
  fault_id: ObjType.FAULT,
  object_id: ObjType.IOAS,
  id: ObjType.ANY,
  pt_id: ObjType.ANY,
};
const PTR_FIELDS = new Set(['user_va', 'data_uptr', 'allowed_iovas', 'data']);
const DATA_TYPES = [0, IOMMU_HWPT_DATA_MOCK, IOMMU_HWPT_INVALIDATE_DATA_MOCK, IOMMU_HW_INFO_TYPE_MOCK, IOMMU_VIOMMU_TYPE_MOCK, IOMMU_VEVENTQ_TYPE_MOCK, 1, 2];

/** A field value biased to be plausible for its name. */
function fieldValue(w: World, rng: Rng, name: string, type: string): number | bigint {
  if (name.startsWith('__reserved')) return rng.chance(0.9) ? 0 : rng.pick(INTERESTING_U32.slice(1));
  if (name.startsWith('out_')) return rng.chance(0.8) ? 0 : rng.u32();
  if (name in ID_FIELDS) {
    const t = ID_FIELDS[name];
    if (name === 'hwpt_id' && rng.chance(0.5)) return w.idOf(rng.pick([ObjType.HWPT_NESTED, ObjType.VIOMMU]), rng);
    if (t === ObjType.ANY || rng.chance(0.2)) return rng.pick(w.idPool());
    return w.idOf(t, rng);
  }
  if (name === 'fd') return rng.pick(w.fdPool());
  if (name === 'flags') return rng.chance(0.3) ? 0 : rng.chance(0.8) ? rng.int(16) : rng.chance(0.5) ? 1 << rng.int(32) : rng.u32();
  if (type === 'u64') {
    if (PTR_FIELDS.has(name)) return w.pointer(rng);
    if (name === 'iova' || name === 'src_iova' || name === 'dst_iova' || name === 'nesting_parent_iova') return w.iova(rng);
    if (name === 'length' || name === 'start' || name === 'page_size') return name === 'page_size' && rng.chance(0.5) ? PAGE : w.length(rng);
    if (name === 'val64') return rng.pick([0n, 1n, 2n, U64_MAX]);
    return rng.chance(0.5) ? rng.pick(INTERESTING_U64) : BigInt(rng.int(1 << 12));
  }
  if (name === 'data_type' || name === 'type') return rng.chance(0.8) ? rng.pick(DATA_TYPES) : rng.u32();
  if (name === 'entry_len') return rng.pick([0, 8, 16, 17, 24, 4096, 4097, rng.u32()]);
  if (name === 'data_len') return rng.pick([0, 4, 8, 16, 32, 256, 4096, 0x10000, rng.u32()]);
  if (type === 'u16') return rng.chance(0.8) ? rng.int(4) : rng.int(0x10000);
  if (type === 'u8') return rng.int(256);
  return rng.chance(0.7) ? rng.int(5) : rng.pick(INTERESTING_U32);
}

const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;

/**
 * A failed ioctl copies nothing back (iommufd_ucmd_respond runs only on success) except where the
 * kernel responds on error: IOMMU_IOAS_IOVA_RANGES with EMSGSIZE writes num_iovas (the ranges needed)
 * and out_iova_alignment; IOMMU_HWPT_INVALIDATE always writes entry_num back, the entries the driver
 * handled (never more than asked), 0 when the driver never ran (struct checks, lookup and type errors).
 */
function checkFailedArg(cmd: Cmd | undefined, errno: string, before: Uint8Array, after: Uint8Array): void {
  let allowed: [number, number][] = [];
  if (cmd?.nr === U.IOMMUFD_CMD.IOAS_IOVA_RANGES && errno === 'EMSGSIZE') allowed = [field(U.iommu_ioas_iova_ranges, 'num_iovas'), field(U.iommu_ioas_iova_ranges, 'out_iova_alignment')];
  if (cmd?.nr === U.IOMMUFD_CMD.HWPT_INVALIDATE) {
    const at = U.iommu_hwpt_invalidate.offsetof('entry_num');
    if (after.length >= at + 4) {
      const dvB = new DataView(before.buffer, before.byteOffset);
      const dvA = new DataView(after.buffer, after.byteOffset);
      const asked = dvB.getUint32(at, true);
      const got = dvA.getUint32(at, true);
      expect(got <= asked, `HWPT_INVALIDATE wrote back entry_num ${got} > ${asked}`).toBe(true);
      if (errno === 'ENOENT' || errno === 'EOPNOTSUPP') expect(got, 'HWPT_INVALIDATE wrote back entries handled although the driver never ran').toBe(0);
    }
    allowed = [field(U.iommu_hwpt_invalidate, 'entry_num')];
  }
  for (let i = 0; i < after.length; i++) {
    if (after[i] === before[i] || allowed.some(([s, e]) => i >= s && i < e)) continue;
    throw new Error(`a failed ioctl (${errno}) changed byte ${i} of the user's struct`);
  }
}

function field<F extends readonly FieldSpec[]>(layout: StructLayout<F>, name: F[number][0]): [number, number] {
  return [layout.offsetof(name), layout.offsetofend(name)];
}

/** A command that should mostly work: the fuzz then mutates a field or two of it. */
function template(w: World, rng: Rng, nr: number): Record<string, unknown> {
  const C = U.IOMMUFD_CMD;
  const ioas = () => w.idOf(ObjType.IOAS, rng);
  const dev = () => w.idOf(ObjType.DEVICE, rng);
  const paging = () => w.idOf(ObjType.HWPT_PAGING, rng);
  const page = () => BigInt(rng.int(0x800)) * PAGE;
  const flags = () => rng.pick([RW, U.IOMMU_IOAS_MAP_READABLE, RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_FIXED_IOVA]);
  const len = () => BigInt(1 + rng.int(4)) * PAGE;
  switch (nr) {
    case C.DESTROY:
      return { id: rng.pick(w.idPool()) };
    case C.IOAS_ALLOW_IOVAS:
      return { ioas_id: ioas(), num_iovas: rng.int(4), allowed_iovas: w.user + BigInt(16 * rng.int(2)) };
    case C.IOAS_COPY:
      return { flags: flags(), dst_ioas_id: ioas(), src_ioas_id: ioas(), length: len(), dst_iova: page(), src_iova: rng.pick([0x100000n, 0x200000n, 0x400000n]) };
    case C.IOAS_IOVA_RANGES:
      return { ioas_id: ioas(), num_iovas: rng.int(4), allowed_iovas: w.user + 0x8000n };
    case C.IOAS_MAP:
      return { flags: flags(), ioas_id: ioas(), user_va: w.user + BigInt(rng.int(60)) * PAGE, length: len(), iova: page() };
    case C.IOAS_UNMAP: {
      const iova = w.iova(rng);
      return { ioas_id: ioas(), iova, length: rng.chance(0.2) ? U64_MAX : len() };
    }
    case C.OPTION:
      return { option_id: rng.int(2), op: rng.int(2), object_id: rng.chance(0.5) ? 0 : ioas(), val64: BigInt(rng.int(2)) };
    case C.VFIO_IOAS:
      return { ioas_id: ioas(), op: rng.int(3) };
    case C.HWPT_ALLOC: {
      const nested = rng.chance(0.5);
      return {
        flags: rng.pick([0, 0, U.IOMMU_HWPT_ALLOC_NEST_PARENT, U.IOMMU_HWPT_ALLOC_PASID, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, U.IOMMU_HWPT_FAULT_ID_VALID]),
        dev_id: dev(),
        pt_id: nested ? w.idOf(rng.pick([ObjType.HWPT_PAGING, ObjType.VIOMMU]), rng) : ioas(),
        data_type: nested ? IOMMU_HWPT_DATA_MOCK : 0,
        data_len: nested ? MOCK_HWPT_DATA_SIZE : 0,
        data_uptr: nested ? w.user + 0x1000n + BigInt(16 * rng.int(3)) : 0n,
        fault_id: w.idOf(ObjType.FAULT, rng),
      };
    }
    case C.GET_HW_INFO:
      return { dev_id: dev(), data_len: rng.pick([0, 8, 64]), data_uptr: w.user + 0x9000n };
    case C.HWPT_SET_DIRTY_TRACKING:
      return { flags: rng.int(2), hwpt_id: paging() };
    case C.HWPT_GET_DIRTY_BITMAP:
      return { hwpt_id: paging(), iova: rng.pick([0n, 0x100000n]), length: rng.pick([PAGE, 0x100000n, 0x200000n]), page_size: PAGE, data: w.user + 0xa000n };
    case C.HWPT_INVALIDATE:
      return { hwpt_id: w.idOf(rng.pick([ObjType.HWPT_NESTED, ObjType.VIOMMU]), rng), data_uptr: w.user + 0x2000n, data_type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, entry_len: 16, entry_num: rng.int(4) };
    case C.IOAS_MAP_FILE:
      return { flags: flags(), ioas_id: ioas(), fd: w.memfd, start: BigInt(rng.int(8)) * PAGE, length: len(), iova: page() };
    case C.VIOMMU_ALLOC:
      return { type: IOMMU_VIOMMU_TYPE_MOCK, dev_id: dev(), hwpt_id: paging() };
    case C.VDEVICE_ALLOC:
      return { viommu_id: w.idOf(ObjType.VIOMMU, rng), dev_id: dev(), virt_id: BigInt(rng.int(0x50)) };
    case C.VEVENTQ_ALLOC:
      return { viommu_id: w.idOf(ObjType.VIOMMU, rng), type: IOMMU_VEVENTQ_TYPE_MOCK, veventq_depth: 1 + rng.int(8) };
    case C.HW_QUEUE_ALLOC:
      return { viommu_id: w.idOf(ObjType.VIOMMU, rng), type: 1, length: PAGE, nesting_parent_iova: 0x100000n };
    case C.IOAS_NOIOMMU_GET_PA:
      return { ioas_id: ioas(), iova: w.iova(rng), length: len() };
    default:
      return {};
  }
}

function rawIoctlStep(w: World, rng: Rng, trace: string[]): boolean {
  let request: number;
  let cmd: Cmd | undefined;
  if (rng.chance(0.93)) {
    cmd = rng.pick(CMDS);
    request = U.iommufdIoctl(cmd.nr);
  } else request = rng.pick([0x3b7f, 0x3b96, 0x3ba0, 0x3bff, 0, 0x3b, 0x80, 0xffffffff, 0x13b80, rng.u32()]);
  let buf: Uint8Array;
  if (cmd) {
    const v = cmd.layout.zero() as Record<string, unknown>;
    const random = (f: (typeof cmd.layout.fields)[number]) => (f.count > 1 ? Array.from({ length: f.count }, () => (rng.chance(0.9) ? 0 : rng.int(256))) : fieldValue(w, rng, f.name, f.type));
    if (rng.chance(0.7)) {
      // A plausible command with zero, one or two fields mutated.
      Object.assign(v, template(w, rng, cmd.nr));
      const n = rng.pick([0, 1, 1, 2]);
      for (let i = 0; i < n; i++) {
        const f = rng.pick(cmd.layout.fields);
        v[f.name] = random(f);
      }
    } else for (const f of cmd.layout.fields) v[f.name] = random(f);
    const k = cmd.layout.size;
    const size = rng.chance(0.8) ? k : rng.pick([cmd.min, k - 1, k + 1, k + 8, cmd.min - 1, 0, 4, rng.u32()]);
    v.size = size >>> 0;
    const len = rng.chance(0.85) ? Math.max(k, Math.min(size >>> 0, k + 64)) : rng.int(k + 16);
    buf = new Uint8Array(len);
    const enc = cmd.layout.encode(v as never);
    buf.set(enc.subarray(0, Math.min(len, enc.length)));
    // A non-zero tail past the kernel's struct (E2BIG) now and then.
    if (len > k && rng.chance(0.2)) buf[k + rng.int(len - k)] = 1 + rng.int(255);
    trace.push(`ioctl ${request.toString(16)} ${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x))} len=${len}`);
  } else {
    buf = rng.bytes(rng.int(64));
    trace.push(`ioctl ${request.toString(16)} garbage len=${buf.length}`);
  }
  const argBefore = buf.slice();
  let rc: number;
  try {
    rc = w.fd.ioctl(request, buf);
  } catch (e) {
    throw new Error(`raw ioctl threw: ${String(e)}${e instanceof Error ? `\n${e.stack}` : ''}`);
  }
  expect(Number.isInteger(rc) && rc <= 0, `rc ${rc}`).toBe(true);
  if (rc < 0) {
    const name = errnoName(-rc);
    expect(name !== undefined && KERNEL_ERRNOS.has(name), `errno ${rc} (${name}) is not one the kernel returns`).toBe(true);
    trace.push(`  -> ${name}${w.fd.lastError?.detail ? ` (${w.fd.lastError.detail})` : ''}`);
    checkFailedArg(cmd, name!, argBefore, buf);
    STATS.set(`${cmd ? cmd.nr.toString(16) : 'bad'} ${name}`, (STATS.get(`${cmd ? cmd.nr.toString(16) : 'bad'} ${name}`) ?? 0) + 1);
    return false;
  }
  trace.push('  -> 0');
  STATS.set(`${cmd ? cmd.nr.toString(16) : 'bad'} ok`, (STATS.get(`${cmd ? cmd.nr.toString(16) : 'bad'} ok`) ?? 0) + 1);
  return true;
}

/** Typed calls with plausible and implausible values. */
function typedStep(w: World, rng: Rng, trace: string[]): void {
  const { fd } = w;
  const ioas = () => w.idOf(ObjType.IOAS, rng);
  const devId = () => w.idOf(ObjType.DEVICE, rng);
  const ops: [string, () => unknown][] = [
    ['map', () => fd.ioas.map({ ioasId: ioas(), userVa: w.pointer(rng), length: w.length(rng), iova: rng.chance(0.7) ? w.iova(rng) : undefined, readable: rng.chance(0.8), writeable: rng.chance(0.6) })],
    ['mapFile', () => fd.ioas.mapFile({ ioasId: ioas(), fd: rng.pick(w.fdPool()), start: rng.pick([0n, PAGE, 0x10n, w.length(rng)]), length: w.length(rng), iova: rng.chance(0.7) ? w.iova(rng) : undefined })],
    ['unmap', () => fd.ioas.unmap(ioas(), w.iova(rng), w.length(rng))],
    ['unmapAll', () => fd.ioas.unmapAll(ioas())],
    ['copy', () => fd.ioas.copy({ srcIoasId: ioas(), dstIoasId: ioas(), srcIova: w.iova(rng), length: w.length(rng), dstIova: rng.chance(0.7) ? w.iova(rng) : undefined, writeable: rng.chance(0.5) })],
    ['iovaRanges', () => fd.ioas.iovaRanges(ioas())],
    ['allowIovas', () => fd.ioas.allowIovas(ioas(), rng.chance(0.3) ? [] : [{ start: w.iova(rng), last: w.iova(rng) }, { start: 0x100000n, last: 0x7fffffn }].slice(0, 1 + rng.int(2)))],
    ['setHugePages', () => fd.ioas.setHugePages(ioas(), rng.chance(0.5))],
    ['destroy', () => fd.destroy(rng.pick(w.idPool()))],
    ['getHwInfo', () => fd.getHwInfo(devId(), { type: rng.chance(0.5) ? undefined : rng.pick([0, IOMMU_HW_INFO_TYPE_MOCK, 7]), dataLen: rng.pick([0, 4, 8, 64, 256]) })],
    [
      'hwpt.alloc',
      () =>
        fd.hwpt.alloc({
          devId: devId(),
          ptId: rng.pick(w.idPool()),
          nestParent: rng.chance(0.3),
          dirtyTracking: rng.chance(0.2),
          pasid: rng.chance(0.3),
          faultId: rng.chance(0.2) ? w.idOf(ObjType.FAULT, rng) : undefined,
          data: rng.chance(0.5) ? { type: rng.pick([IOMMU_HWPT_DATA_MOCK, 1]), bytes: rng.chance(0.5) ? w.f.host.process.peek(w.user + 0x1000n + BigInt(16 * rng.int(3)), 16) : rng.bytes(rng.int(24)) } : undefined,
        }),
    ],
    [
      'hwpt.invalidate',
      () => fd.hwpt.invalidate(rng.pick(w.idPool()), { dataType: rng.pick([IOMMU_HWPT_INVALIDATE_DATA_MOCK, 0]), entryLen: rng.pick([0, 8, 16, 24]), entries: w.f.host.process.peek(w.user + 0x2000n, 48), entryNum: rng.int(4) }),
    ],
    ['setDirtyTracking', () => fd.hwpt.setDirtyTracking(w.idOf(ObjType.HWPT_PAGING, rng), rng.chance(0.5))],
    ['getDirtyBitmap', () => fd.hwpt.getDirtyBitmap(w.idOf(ObjType.HWPT_PAGING, rng), { iova: rng.pick([0n, 0x100000n, 0x1000n]), length: rng.pick([PAGE, 16n * PAGE, 0x200000n]), noClear: rng.chance(0.5) })],
    ['viommu.alloc', () => fd.viommu.alloc({ devId: devId(), type: rng.pick([IOMMU_VIOMMU_TYPE_MOCK, 0, 1]), hwptId: w.idOf(ObjType.HWPT_PAGING, rng) })],
    ['vdevice.alloc', () => fd.vdevice.alloc({ viommuId: w.idOf(ObjType.VIOMMU, rng), devId: devId(), virtId: rng.pick([0n, 0x42n, 0x43n, U64_MAX]) })],
    ['veventq.alloc', () => fd.veventq.alloc({ viommuId: w.idOf(ObjType.VIOMMU, rng), type: rng.pick([IOMMU_VEVENTQ_TYPE_MOCK, 0, 1]), depth: rng.pick([0, 1, 4, 1 << 20]) })],
    ['veventq.read', () => fd.veventq.read(rng.pick(w.fdPool()), rng.pick([0, 7, 8, 24, 4096]))],
    ['fault.alloc', () => fd.fault.alloc()],
    ['fault.readAvailable', () => fd.fault.reader(rng.pick(w.fdPool())).readAvailable(rng.int(4))],
    ['fault.respond', () => fd.fault.reader(rng.pick(w.fdPool())).respond(rng.int(6), rng.pick(['success', 'invalid', 2] as const))],
    [
      'fault.roundtrip',
      () => {
        const r = fd.fault.reader(w.faultFd);
        for (const g of r.readAvailable(1 + rng.int(3))) if (rng.chance(0.8)) r.respond(g, rng.pick(['success', 'invalid'] as const));
      },
    ],
    ['option.rlimit', () => fd.option.setRlimitMode(rng.chance(0.5) ? 0 : 1)],
    ['vfioIoas.set', () => fd.vfioIoas.set(ioas())],
    ['vfioIoas.get', () => fd.vfioIoas.get()],
    ['changeProcess', () => fd.ioas.changeProcess()],
    // Values no C field can hold.
    ['destroy(1.5)', () => fd.destroy(rng.pick([1.5, -1, NaN, 2 ** 32]))],
    ['map(negative)', () => fd.ioas.map({ ioasId: ioas(), userVa: w.user, length: PAGE, iova: rng.pick([-PAGE, 1n << 64n]) })],
    ['unmap(negative)', () => fd.ioas.unmap(ioas(), rng.pick([-PAGE, 0n]), rng.pick([-1n, 1n << 64n, PAGE]))],
    ['allowIovas(negative)', () => fd.ioas.allowIovas(ioas(), [{ start: -PAGE, last: PAGE }])],
    ['hwpt.alloc(fractional)', () => fd.hwpt.alloc({ devId: devId() + 0.5, ptId: ioas() })],
  ];
  const [name, run] = rng.pick(ops);
  trace.push(`typed ${name}`);
  run();
}

function fileStep(w: World, rng: Rng, trace: string[]): void {
  const p = w.f.host.process;
  const fdn = rng.chance(0.4) ? w.faultFd : rng.chance(0.3) ? w.veventqFd : rng.pick(w.fdPool());
  const op = rng.int(10);
  if (op < 4) {
    const len = rng.pick([0, 1, 7, 8, 39, 40, 80, 120, 4096, -1, 1 << 30]);
    trace.push(`read(${fdn}, ${len})`);
    p.read(fdn, len);
  } else if (op < 8) {
    let bytes: Uint8Array;
    if (rng.chance(0.6)) {
      // Page responses with plausible cookies and codes.
      const n = 1 + rng.int(3);
      bytes = new Uint8Array(n * 8);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < n; i++) {
        dv.setUint32(i * 8, rng.int(8), true);
        dv.setUint32(i * 8 + 4, rng.pick([0, 1, 1, 2, 0xffffffff]), true);
      }
      if (rng.chance(0.1)) bytes = bytes.subarray(0, bytes.length - 1 - rng.int(7));
    } else bytes = rng.bytes(rng.int(48));
    trace.push(`write(${fdn}, ${bytes.length} bytes)`);
    p.write(fdn, bytes);
  } else if (op < 9) {
    trace.push(`poll(${fdn})`);
    const r = p.poll(fdn);
    expect(Number.isInteger(r)).toBe(true);
  } else {
    // Closing the iommufd itself is rare: most later steps then see EBADF.
    if (fdn === w.fd.fd && rng.chance(0.8)) return;
    trace.push(`close(${fdn})`);
    p.close(fdn);
  }
}

function deviceStep(w: World, rng: Rng, trace: string[]): void {
  const d = rng.pick(w.devs);
  const pasid = rng.chance(0.5) ? undefined : rng.pick([0, 1, 5, 255, 256, (1 << 20) - 1, 1 << 20, -2, 0xffffffff, 1.5, NaN]);
  const op = rng.int(10);
  if (op < 5) {
    const pt = rng.chance(0.7) ? w.idOf(rng.pick([ObjType.IOAS, ObjType.HWPT_PAGING, ObjType.HWPT_NESTED]), rng) : rng.pick(w.idPool());
    trace.push(`${d.bdf}.attachPt(${pt}, pasid ${pasid})`);
    d.attachPt(pt, { pasid });
  } else if (op < 8) {
    trace.push(`${d.bdf}.detachPt(pasid ${pasid})`);
    d.detachPt({ pasid });
  } else if (op < 9) {
    trace.push(`${d.bdf}.bindIommufd`);
    d.bindIommufd(w.fd);
  } else {
    trace.push(`${d.bdf}.unbind`);
    d.unbind();
  }
}

function dmaStep(w: World, rng: Rng, trace: string[]): void {
  // Device A's misses become page requests, device B's become vEVENTs.
  const d = rng.chance(0.5) ? w.devs[rng.int(2)] : rng.pick(w.devs);
  let iova = rng.chance(0.7) ? w.iova(rng) : BigInt(rng.int(0x500)) * PAGE + BigInt(rng.int(4096));
  const length = rng.chance(0.95) ? rng.pick([0, 1, 8, 4096, 4097, 8192, rng.int(3 * 4096)]) : rng.pick([-1, 1.5, NaN]);
  const pasid = rng.chance(0.6) ? undefined : rng.pick([0, 5, 255, (1 << 20) - 1, 1 << 20, -1, 2.5]);
  if (rng.chance(0.05)) iova = rng.pick([-1n, -PAGE, 1n << 64n, U64_MAX]);
  const write = rng.chance(0.5);
  trace.push(`${d.bdf}.dma.${write ? 'write' : 'read'}(0x${iova.toString(16)}, ${length}, pasid ${pasid})`);
  const p = write ? d.dma.write(iova, new Uint8Array(Number.isSafeInteger(length) && length > 0 ? length : 0).fill(0xab), { pasid }) : d.dma.read(iova, length, { pasid });
  w.dmas.push(
    (p as Promise<unknown>).then(
      () => undefined,
      (e: unknown) => {
        // A fault, or a transaction the bus cannot carry (EINVAL before anything is translated).
        if (!(e instanceof DmaFault) && !(e instanceof IommufdError && e.code === 'EINVAL')) w.unexpected.push(e);
      },
    ),
  );
}

/** Lets the interrupt threads (microtasks) and woken DMA run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

type StepKind = 'ioctl' | 'typed' | 'file' | 'device' | 'dma';
const KINDS: StepKind[] = [...Array<StepKind>(10).fill('ioctl'), ...Array<StepKind>(3).fill('typed'), ...Array<StepKind>(3).fill('file'), ...Array<StepKind>(3).fill('device'), ...Array<StepKind>(2).fill('dma')];

async function runSequence(seeds: number[], rlimit: number | null): Promise<void> {
  const w = new World(rlimit);
  const trace: string[] = [];
  const fail = (msg: string): never => {
    throw new Error(`${msg}\ntrace:\n${trace.slice(-12).join('\n')}`);
  };
  try {
    checkConsistent(w, 'setup');
    for (const seed of seeds) {
      const rng = new Rng(seed);
      const kind = rng.pick(KINDS);
      const before = snapshot(w);
      let ok = true;
      let code = '';
      if (kind === 'ioctl') ok = rawIoctlStep(w, rng, trace);
      else if (kind === 'dma') {
        dmaStep(w, rng, trace);
        // DMA changes state on purpose: faults are queued, reported, logged.
        await settle();
        checkConsistent(w, trace[trace.length - 1]);
        continue;
      } else {
        try {
          if (kind === 'typed') typedStep(w, rng, trace);
          else if (kind === 'file') fileStep(w, rng, trace);
          else deviceStep(w, rng, trace);
        } catch (e) {
          if (!(e instanceof IommufdError)) fail(`${kind} step threw a non-IommufdError: ${e instanceof Error ? e.stack : String(e)}`);
          const err = e as IommufdError;
          if (!KERNEL_ERRNOS.has(err.code)) fail(`${kind} step failed with ${err.code}, not a kernel errno`);
          ok = false;
          code = err.code;
          trace.push(`  -> ${code} (${err.detail ?? ''})`);
        }
      }
      if (kind !== 'ioctl' && process.env.FUZZ_STATS) {
        const label = `${kind} ${(trace[trace.length - (ok ? 1 : 2)] ?? '').split(/[ (]/)[0]}`;
        STATS.set(`${label} ${ok ? 'ok' : code}`, (STATS.get(`${label} ${ok ? 'ok' : code}`) ?? 0) + 1);
      }
      if (!ok) {
        // A failed command changes nothing. The kernel's exceptions all lie outside this snapshot and
        // are checked where they happen: HWPT_INVALIDATE's entry_num and IOVA_RANGES' EMSGSIZE
        // num_iovas are written to the user's struct (checkFailedArg), IOVA_RANGES' partial array to
        // user memory; a fault write() that consumed some responses returns a byte count (a success).
        // (The typed path writes back nothing on failure.)
        // One exception is inside it: IOAS_UNMAP stopping with ENOENT at an area that crosses the
        // range has already removed the areas before it (iopt_unmap_iova_range). Those may go (and
        // with them their pins), nothing else may change.
        const after = snapshot(w) as Snap;
        const partial = code === 'ENOENT' || trace[trace.length - 1].startsWith('  -> ENOENT') ? isUnmapStep(trace) : false;
        if (partial) {
          const bs = before as Snap;
          for (let i = 0; i < after.ioas.length; i++) {
            // An area is its range, prot and page offset; the last number is how many areas share its
            // pages (IOAS_COPY shares them). An area removed before the stop drops the count of every
            // area that shared its pages, in any IOAS (iopt_unmap_iova_range puts the area's pages), so
            // a count may fall but never rise, and the area itself must have been there.
            const users = new Map(bs.ioas[i].areas.map((x) => [show((x as unknown[]).slice(0, 4)), (x as unknown[])[4] as number]));
            for (const x of after.ioas[i].areas as unknown[][]) {
              const was = users.get(show(x.slice(0, 4)));
              expect(was, `a partial unmap added an area ${show(x)}`).toBeDefined();
              expect(x[4] as number, `a partial unmap raised the users of ${show(x)}`).toBeLessThanOrEqual(was!);
              expect(x[4] as number).toBeGreaterThanOrEqual(1);
            }
            after.ioas[i].areas = bs.ioas[i].areas;
          }
          after.lockedPages = bs.lockedPages;
        }
        const a = show(after);
        const b = show(before);
        if (a !== b) fail(`a failed ${kind} step changed state:\n${diffLines(b, a)}`);
        if (partial) checkConsistent(w, trace[trace.length - 2]);
      } else {
        try {
          checkConsistent(w, trace[trace.length - 1]);
        } catch (e) {
          fail(`inconsistent after a successful ${kind} step: ${(e as Error).message}`);
        }
      }
      await settle();
      if (w.unexpected.length) fail(`DMA rejected with a non-DmaFault: ${String(w.unexpected[0])}`);
    }
  } finally {
    // Tear down: closing /dev/iommu unbinds every device, which answers every pending group.
    const p = w.f.host.process;
    if (!w.fd.ctx.closed) p.close(w.fd.fd);
    await settle();
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), 2000)));
  const outcome = await Promise.race([Promise.all(w.dmas).then(() => 'done'), timeout]);
  clearTimeout(timer);
  expect(outcome, `a DMA never completed\n${trace.slice(-12).join('\n')}`).toBe('done');
  if (w.unexpected.length) fail(`DMA rejected with a non-DmaFault: ${String(w.unexpected[0])}`);
  expect(w.f.host.faults.outstanding).toBe(0);
  if (process.env.FUZZ_STATS) for (const [k, v] of Object.entries(w.f.host.faults.stats)) STATS.set(`faults.${k}`, (STATS.get(`faults.${k}`) ?? 0) + v);
}

describe('uAPI fuzz (property)', () => {
  it('never crashes, returns only kernel errnos, and a failed step changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { minLength: 1, maxLength: 80, size: 'max' }), fc.option(fc.integer({ min: 0, max: 64 }), { freq: 3 }), async (seeds, rlimit) => {
        await runSequence(seeds, rlimit);
      }),
      {
        numRuns: Number(process.env.FUZZ_RUNS ?? 300),
        // Found by a random run: a typed unmap that stops with ENOENT after removing an area whose pages
        // an IOAS_COPY shared with an area that stays (that area's count of users falls).
        examples: [[[1805353522, 975148028, 0], null]],
      },
    );
    if (process.env.FUZZ_STATS) console.log([...STATS].sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
    // 300 runs take about 35 s of one core; a machine shared with other work may give it a fraction of that.
  }, Number(process.env.FUZZ_RUNS ?? 0) > 300 ? 3_600_000 : 240_000);
});

// Sanity: the world builds, and the errno numbers the fuzz checks against are Linux's.
describe('fuzz fixture', () => {
  it('builds a populated host, and ERRNO has the numbers of asm-generic/errno-base.h and errno.h', () => {
    const w = new World(null);
    const types = w.objects().map((o) => ObjType[o.type]);
    for (const t of ['IOAS', 'DEVICE', 'HWPT_PAGING', 'HWPT_NESTED', 'FAULT', 'VIOMMU', 'VDEVICE', 'VEVENTQ']) expect(types).toContain(t);
    // Every errno the fuzz accepts, with its number from the kernel headers (x86-64 / arm64 / generic).
    const linux: Record<string, number> = { EPERM: 1, ENOENT: 2, EIO: 5, E2BIG: 7, EBADF: 9, ENOMEM: 12, EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, ENOTTY: 25, ENOSPC: 28, ESPIPE: 29, ERANGE: 34, EOVERFLOW: 75, EMSGSIZE: 90, EOPNOTSUPP: 95, EADDRINUSE: 98 };
    expect([...KERNEL_ERRNOS].sort()).toEqual(Object.keys(linux).sort());
    for (const [name, n] of Object.entries(linux)) expect(ERRNO[name as keyof typeof ERRNO], name).toBe(n);
  });
});
