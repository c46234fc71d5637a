/**
 * Fuzzing on real vendors. A campaign is a series of sessions; each session builds a fresh host from a
 * vendor preset and runs a seeded sequence of operations (typed uAPI calls, raw ioctls with hostile
 * bytes, queue-fd reads and writes, page responses, device DMA), then closes every file in a random order.
 * Checked: nothing throws but IommufdError (DmaFault for DMA), after every failed call the state snapshot
 * (translations, dirty bits, pins, frames, fds, attachments, queues) equals the one before, and after the
 * close nothing is held (leakCheck). Operations are plain data, so a violation replays and shrinks.
 */
import { DmaFault, IommufdError, PROT_READ, uapi as U, type Host, type Iommufd, type PciDevice } from '@ioasid/core';
import type { VendorHost } from './hosts.js';
import { diffSnapshots, leakCheck, openMeasured, snapshot, type Baseline } from './snapshot.js';

/** One operation: a kind and its arguments (numbers; bigints travel as decimal strings). */
export interface Op {
  readonly k: string;
  readonly a: readonly (number | string)[];
}

/** mulberry32: small, fast, seedable. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAGE = 4096;
const USER_PAGES = 512;
const KINDS = ['ioas_alloc', 'map', 'map', 'map_file', 'unmap', 'copy', 'destroy', 'bind', 'unbind', 'attach', 'attach', 'detach', 'hwpt_alloc', 'hwpt_alloc', 'dirty_set', 'dirty_get', 'fault_alloc', 'viommu_alloc', 'vdevice_alloc', 'veventq_alloc', 'invalidate', 'ioctl', 'ioctl', 'read', 'write', 'respond', 'dma', 'dma', 'close_queue', 'hw_info'] as const;

/** The session's world: what operations refer to by index. */
export interface Session {
  readonly host: Host;
  readonly fd: Iommufd;
  readonly devs: PciDevice[];
  readonly va: bigint;
  /** A read-only mapping of a memfd (for EFAULT on write-back paths). */
  readonly roVa: bigint;
  readonly memfd: number;
  /** Ids handed out by successful allocations (operations pick from these and from random ids). */
  readonly ids: number[];
  readonly queueFds: number[];
  readonly base: Baseline;
  dmas: Promise<unknown>[];
}

export function newSession(vh: VendorHost): Session {
  const host = vh.make();
  const va = host.process.mmap(USER_PAGES * PAGE);
  host.process.poke(va, new Uint8Array(USER_PAGES * PAGE).fill(0x5a));
  const memfd = host.process.memfd(64 * PAGE);
  host.process.write(memfd, new Uint8Array(64 * PAGE).fill(0x6b));
  const roVa = host.process.mmap(64 * PAGE, { prot: PROT_READ, fd: memfd });
  const { fd, base } = openMeasured(host);
  return { host, fd, devs: [...host.devices.values()], va, roVa, memfd, ids: [], queueFds: [], base, dmas: [] };
}

/** Draws the next operation from the seeded stream, using what the session has created so far. */
export function genOp(r: () => number, s: Session): Op {
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[], other: () => T): T => (xs.length > 0 && r() < 0.85 ? xs[int(xs.length)] : other());
  const id = () => pick(s.ids, () => int(40));
  const dev = () => int(s.devs.length + (r() < 0.05 ? 1 : 0));
  const iova = () => String((BigInt(int(64)) << BigInt([12, 16, 21, 30, 34][int(5)])) + (r() < 0.05 ? BigInt(int(4096)) : 0n));
  const len = () => String(BigInt(1 + int(16)) * BigInt([PAGE, PAGE, 2 << 20][int(3)]) + (r() < 0.05 ? 1n : 0n));
  const pasid = () => (r() < 0.7 ? -1 : [0, 1, 5, 0xfffff, 1 << 20][int(5)]);
  // Any fd number but the session's memfd, whose pages and fd the leak check counts as the user's own.
  const anyFd = () => {
    const f = int(12);
    return f === s.memfd ? s.fd.fd : f;
  };
  const k = KINDS[int(KINDS.length)];
  switch (k) {
    case 'ioas_alloc':
    case 'fault_alloc':
      return { k, a: [] };
    case 'map':
      return { k, a: [id(), int(USER_PAGES), 1 + int(64), r() < 0.6 ? iova() : '-1', int(4)] };
    case 'map_file':
      return { k, a: [id(), r() < 0.9 ? s.memfd : int(20), int(80), 1 + int(80), r() < 0.6 ? iova() : '-1'] };
    case 'unmap':
      return { k, a: [id(), iova(), r() < 0.1 ? String(U.U64_MAX) : len()] };
    case 'copy':
      return { k, a: [id(), id(), iova(), len(), r() < 0.6 ? iova() : '-1'] };
    case 'destroy':
      return { k, a: [id()] };
    case 'bind':
    case 'unbind':
      return { k, a: [dev()] };
    case 'attach':
      return { k, a: [dev(), id(), pasid()] };
    case 'detach':
      return { k, a: [dev(), pasid()] };
    case 'hwpt_alloc':
      return { k, a: [dev(), id(), int(32), r() < 0.3 ? id() : -1] };
    case 'dirty_set':
      return { k, a: [id(), int(2)] };
    case 'dirty_get':
      return { k, a: [id(), iova(), len(), [12, 12, 13, 21, 40][int(5)], int(4)] };
    case 'viommu_alloc':
      return { k, a: [dev(), id(), [U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, 0xdeadbeef, 0, int(5)][int(4)]] };
    case 'vdevice_alloc':
      return { k, a: [id(), dev(), int(0x100)] };
    case 'veventq_alloc':
      return { k, a: [id(), [U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 0xbeefbeef, 0, int(5)][int(4)], int(6) === 0 ? 0 : 1 + int(16)] };
    case 'invalidate':
      return { k, a: [id(), int(3), [0, 8, 16, 24, 32, 4097][int(6)], int(5), int(0x7fffffff)] };
    case 'ioctl':
      return { k, a: [int(0x20), int(120), int(0x7fffffff)] };
    case 'read':
      return { k, a: [pick(s.queueFds, anyFd), [0, 1, 7, 8, 16, 40, 80, 4096, 1 << 20][int(9)]] };
    case 'write':
      return { k, a: [pick(s.queueFds, anyFd), [0, 1, 8, 16, 24, 64][int(6)], int(0x7fffffff)] };
    case 'respond':
      return { k, a: [int(3)] };
    case 'dma':
      return { k, a: [dev(), iova(), 1 + int(3 * PAGE), int(2), pasid()] };
    case 'close_queue':
      return { k, a: [pick(s.queueFds, anyFd)] };
    case 'hw_info':
      return { k, a: [dev(), [0, 4, 8, 64, 256][int(5)]] };
  }
}

function bytesFrom(seed: number, n: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

const big = (v: number | string) => BigInt(v);
const num = (v: number | string) => Number(v);

function devId(s: Session, i: number): number {
  return s.devs[i]?.devId ?? 0xffff;
}

/** Answers every group waiting on the session's fault fds: SUCCESS, INVALID, or a mix. */
function respondAll(s: Session, mode: number): void {
  for (const qfd of s.queueFds) {
    const f = s.host.process.file(qfd);
    if (f?.kind !== '[iommufd-pgfault]') continue;
    const recs = s.host.process.read(qfd, 40 * 64);
    for (let off = 0; off < recs.length; off += 40) {
      const rec = U.iommu_hwpt_pgfault.decode(recs, off);
      if (!(rec.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE)) continue;
      const code = mode === 2 ? (off / 40) % 2 : mode;
      s.host.process.write(qfd, U.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code }));
    }
  }
}

/** Runs one operation. Returns what a synchronous call returned, or throws what it threw. */
export function execOp(s: Session, op: Op): void {
  const a = op.a;
  const fd = s.fd;
  switch (op.k) {
    case 'ioas_alloc':
      s.ids.push(fd.ioas.alloc());
      return;
    case 'map': {
      const iova = a[3] === '-1' ? undefined : big(a[3]);
      const prot = num(a[4]);
      fd.ioas.map({ ioasId: num(a[0]), userVa: s.va + BigInt(num(a[1]) * PAGE), length: BigInt(num(a[2]) * PAGE), iova, readable: (prot & 1) !== 0 || prot === 0, writeable: (prot & 2) !== 0 });
      return;
    }
    case 'map_file':
      fd.ioas.mapFile({ ioasId: num(a[0]), fd: num(a[1]), start: BigInt(num(a[2]) * PAGE), length: BigInt(num(a[3]) * PAGE), iova: a[4] === '-1' ? undefined : big(a[4]) });
      return;
    case 'unmap':
      fd.ioas.unmap(num(a[0]), big(a[1]), big(a[2]));
      return;
    case 'copy':
      fd.ioas.copy({ dstIoasId: num(a[0]), srcIoasId: num(a[1]), srcIova: big(a[2]), length: big(a[3]), dstIova: a[4] === '-1' ? undefined : big(a[4]) });
      return;
    case 'destroy':
      fd.destroy(num(a[0]));
      return;
    case 'bind': {
      const d = s.devs[num(a[0])];
      if (!d) throw new IommufdError('ENODEV', 'VFIO_DEVICE_BIND_IOMMUFD', 'no such device');
      s.ids.push(d.bindIommufd(fd));
      return;
    }
    case 'unbind':
      s.devs[num(a[0])]?.unbind();
      return;
    case 'attach': {
      const d = s.devs[num(a[0])];
      if (!d) throw new IommufdError('ENODEV', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'no such device');
      const p = num(a[2]);
      d.attachPt(num(a[1]), p < 0 ? {} : { pasid: p });
      return;
    }
    case 'detach': {
      const d = s.devs[num(a[0])];
      if (!d) throw new IommufdError('ENODEV', 'VFIO_DEVICE_DETACH_IOMMUFD_PT', 'no such device');
      const p = num(a[1]);
      d.detachPt(p < 0 ? {} : { pasid: p });
      return;
    }
    case 'hwpt_alloc': {
      const f = num(a[2]);
      const faultId = num(a[3]);
      s.ids.push(fd.hwpt.alloc({ devId: devId(s, num(a[0])), ptId: num(a[1]), nestParent: (f & 1) !== 0, dirtyTracking: (f & 2) !== 0, pasid: (f & 4) !== 0, faultId: faultId < 0 ? undefined : faultId }));
      return;
    }
    case 'dirty_set':
      fd.hwpt.setDirtyTracking(num(a[0]), num(a[1]) === 1);
      return;
    case 'dirty_get': {
      const pageSize = 1n << BigInt(num(a[3]));
      const length = big(a[2]);
      // The typed call sizes its buffer by length / page_size: keep it inside the 64 KiB scratch.
      if (length / pageSize > 65536n * 8n) throw new IommufdError('EINVAL', 'HWPT_GET_DIRTY_BITMAP', 'bitmap larger than the fuzzer scratch');
      if (num(a[4]) === 0) {
        // A read-only bitmap: EFAULT, and no dirty bit may be lost.
        fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: num(a[0]), iova: big(a[1]), length, page_size: pageSize, data: s.roVa });
        return;
      }
      fd.hwpt.getDirtyBitmap(num(a[0]), { iova: big(a[1]), length, pageSize, noClear: num(a[4]) === 3 });
      return;
    }
    case 'fault_alloc': {
      const q = fd.fault.alloc();
      s.ids.push(q.id);
      s.queueFds.push(q.fd);
      return;
    }
    case 'viommu_alloc':
      s.ids.push(fd.viommu.alloc({ devId: devId(s, num(a[0])), hwptId: num(a[1]), type: num(a[2]) }));
      return;
    case 'vdevice_alloc':
      s.ids.push(fd.vdevice.alloc({ viommuId: num(a[0]), devId: devId(s, num(a[1])), virtId: BigInt(num(a[2])) }));
      return;
    case 'veventq_alloc': {
      const q = fd.veventq.alloc({ viommuId: num(a[0]), type: num(a[1]), depth: num(a[2]) });
      s.ids.push(q.id);
      s.queueFds.push(q.fd);
      return;
    }
    case 'invalidate': {
      const len = num(a[2]);
      const n = num(a[3]);
      fd.hwpt.invalidate(num(a[0]), { dataType: [0, 1, 0xdeadbeef][num(a[1])], entryLen: len, entryNum: n, entries: bytesFrom(num(a[4]), Math.min(len * n, 65536)) });
      return;
    }
    case 'ioctl': {
      const nr = U.IOMMUFD_CMD_BASE + num(a[0]);
      const bytes = bytesFrom(num(a[2]), num(a[1]));
      if (bytes.length >= 4) new DataView(bytes.buffer).setUint32(0, bytes.length, true);
      const rc = fd.ioctl(U.iommufdIoctl(nr), bytes);
      if (rc < 0) throw fd.lastError ?? new IommufdError('EINVAL', 'ioctl', `rc ${rc}`);
      return;
    }
    case 'read':
      s.host.process.read(num(a[0]), num(a[1]));
      return;
    case 'write':
      s.host.process.write(num(a[0]), bytesFrom(num(a[2]), num(a[1])));
      return;
    case 'respond':
      respondAll(s, num(a[0]));
      return;
    case 'dma': {
      const d = s.devs[num(a[0])];
      if (!d) return;
      const p = num(a[4]);
      const opts = p < 0 ? { maxRetries: 1 } : { pasid: p, maxRetries: 1 };
      const t = num(a[3]) === 1 ? d.dma.write(big(a[1]), new Uint8Array(num(a[2])).fill(0xee), opts) : d.dma.read(big(a[1]), num(a[2]), opts);
      s.dmas.push(t.catch((e: unknown) => e));
      return;
    }
    case 'close_queue': {
      const f = num(a[0]);
      s.host.process.close(f);
      const i = s.queueFds.indexOf(f);
      if (i >= 0) s.queueFds.splice(i, 1);
      return;
    }
    case 'hw_info':
      fd.getHwInfo(devId(s, num(a[0])), { dataLen: num(a[1]) });
      return;
  }
}

/** Calls whose failure may legitimately leave a change behind (the kernel's own partial effects). */
const PARTIAL_ON_FAILURE = new Set(['unmap', 'write', 'respond', 'dma', 'close_queue', 'unbind']);

export interface Violation {
  readonly index: number;
  readonly op: Op;
  readonly what: string;
}

/**
 * Runs `ops` on a fresh session and returns the first violation, or null. `onOp` sees every operation
 * before it runs (the campaign generates them on the fly through it).
 */
export async function runOps(vh: VendorHost, count: number, next: (s: Session, i: number) => Op, closeSeed: number, check = true): Promise<{ violation: Violation | null; ops: Op[]; failed: number }> {
  const s = newSession(vh);
  const ops: Op[] = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    const op = next(s, i);
    ops.push(op);
    const before = check && !PARTIAL_ON_FAILURE.has(op.k) ? snapshot(s.host, s.fd) : null;
    try {
      execOp(s, op);
    } catch (e) {
      failed++;
      if (!(e instanceof IommufdError)) return { violation: { index: i, op, what: `threw ${(e as Error)?.name}: ${(e as Error)?.message}` }, ops, failed };
      if (before) {
        const d = diffSnapshots(before, snapshot(s.host, s.fd));
        if (d) return { violation: { index: i, op, what: `failed with ${e.code} and changed ${d}` }, ops, failed };
      }
    }
    // Let interrupt threads and devices run now and then, as time passes for a real process.
    if ((i & 63) === 63) await new Promise((r) => setImmediate(r));
  }
  // Close in a seeded order; then every DMA must settle and nothing may be held.
  const files = [s.fd.fd, ...s.queueFds];
  const r = rng(closeSeed);
  for (let i = files.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [files[i], files[j]] = [files[j], files[i]];
  }
  // Only what is still open: a session may have closed any fd (the iommufd itself included) on the way.
  for (const f of files) if (s.host.process.file(f)) s.host.process.close(f);
  for (let i = 0; i < 4; i++) await new Promise((res) => setImmediate(res));
  const results = await Promise.all(s.dmas);
  const bad = results.find((x) => x !== undefined && !(x instanceof Uint8Array) && !(x instanceof DmaFault) && !(x instanceof IommufdError));
  if (bad) return { violation: { index: count, op: { k: 'dma-settle', a: [] }, what: `a DMA rejected with ${String(bad)}` }, ops, failed };
  const leaks = leakCheck(s.host, s.fd, s.base);
  if (leaks.length > 0) return { violation: { index: count, op: { k: 'close', a: files }, what: leaks.join('; ') }, ops, failed };
  return { violation: null, ops, failed };
}

/** Replays fixed operations (a reproducer) on a fresh session. */
export function replay(vh: VendorHost, ops: readonly Op[], closeSeed: number) {
  return runOps(vh, ops.length, (_s, i) => ops[i], closeSeed);
}

/**
 * Delta debugging on a list: drops chunks (halves, quarters, ... single items) as long as `stillFails`
 * holds for what is left. The result fails and no single item of it can go.
 */
export async function shrinkList<T>(items: readonly T[], stillFails: (cand: T[]) => Promise<boolean>): Promise<T[]> {
  let cur = [...items];
  for (let chunk = Math.max(1, cur.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let i = 0; i + chunk <= cur.length; ) {
      const cand = [...cur.slice(0, i), ...cur.slice(i + chunk)];
      if (await stillFails(cand)) cur = cand;
      else i += chunk;
    }
  }
  return cur;
}

/** Shrinks a failing session's operations, keeping a violation of the same kind. */
export function shrink(vh: VendorHost, ops: readonly Op[], closeSeed: number, kind: string): Promise<Op[]> {
  return shrinkList(ops, async (cand) => {
    const r = await replay(vh, cand, closeSeed);
    return r.violation !== null && violationKind(r.violation) === kind;
  });
}

/** A coarse kind for a violation, so that shrinking keeps the same bug. */
export function violationKind(v: Violation): string {
  return `${v.op.k}:${v.what.replace(/\b(0x[0-9a-f]+|\d+)\b/g, '#').slice(0, 60)}`;
}
