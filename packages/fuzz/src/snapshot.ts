/**
 * What a failed call must leave exactly as it was: the object table, every IOAS's areas, every paging
 * domain's translations (output page, permission, dirty bit) over sampled pages, pins, frames in use,
 * open fds, attachments and queue contents. And what a close must give back: `leakCheck`.
 */
import { ObjType, type Host, type Iommufd } from '@ioasid/core';
import { WalkResult, type IoPageTable } from '@ioasid/core/driver';
import { iommufdCtx, iommufdDevice, objectUsers } from '@ioasid/core/internal';

/** The parts of core's objects a snapshot reads (core keeps the classes internal). */
interface IoasLike {
  iopt: { iterAreas(): IterableIterator<{ iovaNum: number; lastNum: number; npages: number; prot: number }> };
}
interface PagingLike {
  ops: { pt: IoPageTable };
  dirtyTrackingEnabled: boolean;
}
interface QueueLike {
  pending?: number;
  awaitingResponse?: number;
  queued?: number;
}

const PAGE = 4096;

/** Pages around the edges and middle of every area, plus a few fixed probes. */
function samplePages(fd: Iommufd): number[] {
  const out = new Set<number>([0, 0x100, 0x40000]);
  for (const o of iommufdCtx(fd).objects.objects()) {
    if (o.type !== ObjType.IOAS) continue;
    for (const a of (o as unknown as IoasLike).iopt.iterAreas()) {
      const first = Math.floor(a.iovaNum / PAGE);
      const last = Math.floor(a.lastNum / PAGE);
      for (const p of [first - 1, first, first + 1, (first + last) >> 1, last, last + 1]) if (p >= 0) out.add(p);
    }
  }
  return [...out].sort((a, b) => a - b);
}

export interface Snapshot {
  objects: string[];
  areas: string[];
  translations: string[];
  lockedPages: number;
  framesInUse: number;
  openFds: number[];
  attachments: string[];
  queues: string[];
}

export function snapshot(host: Host, fd: Iommufd): Snapshot {
  const wr = new WalkResult();
  const pages = samplePages(fd);
  const s: Snapshot = { objects: [], areas: [], translations: [], lockedPages: host.process.lockedPages, framesInUse: host.frames.framesInUse, openFds: [...host.process.openFds].sort((a, b) => a - b), attachments: [], queues: [] };
  if (iommufdCtx(fd).released) return s;
  for (const o of iommufdCtx(fd).objects.objects()) {
    s.objects.push(`${o.id}:${ObjType[o.type]}:${objectUsers(o)}`);
    if (o.type === ObjType.IOAS) for (const a of (o as unknown as IoasLike).iopt.iterAreas()) s.areas.push(`${o.id}:${a.iovaNum}-${a.lastNum}:${a.prot}`);
    if (o.type === ObjType.HWPT_PAGING) {
      const h = o as unknown as PagingLike;
      const row = pages.map((p) => (h.ops.pt.walk(p, wr) ? `${wr.pfn}/${wr.perm}${wr.dirty ? 'd' : ''}` : '-'));
      s.translations.push(`${o.id}${h.dirtyTrackingEnabled ? ' tracking' : ''}: ${row.join(' ')}`);
    }
    if (o.type === ObjType.FAULT || o.type === ObjType.VEVENTQ) {
      const q = o as unknown as QueueLike;
      s.queues.push(`${o.id}: ${q.pending ?? q.queued ?? 0}/${q.awaitingResponse ?? 0}`);
    }
  }
  for (const [bdf, d] of host.devices) {
    const idev = iommufdDevice(d);
    if (idev === null || idev.ctx !== iommufdCtx(fd)) continue;
    for (const [pasid, h] of idev.attachments) s.attachments.push(`${bdf}@${pasid}:${h.id}`);
  }
  return s;
}

export interface Baseline {
  lockedPages: number;
  framesInUse: number;
  openFds: number;
}

/**
 * open("/dev/iommu") for a measured run: the typed API's 64 KiB scratch buffer is faulted in first (a
 * failing call that touched it for the first time would look like a leak), then the baseline that every
 * close must give back to is taken (its fd count from before the open).
 */
export function openMeasured(host: Host): { fd: Iommufd; base: Baseline } {
  const openFds = host.process.openFds.length;
  const fd = host.openIommufd();
  try {
    fd.hwpt.getDirtyBitmap(0, { iova: 0n, length: 1n << 31n });
  } catch {
    // ENOENT (there is no HWPT 0): only the scratch buffer was wanted.
  }
  return { fd, base: { lockedPages: host.process.lockedPages, framesInUse: host.frames.framesInUse, openFds } };
}

/** After every file of an iommufd is closed: what is still held, as readable lines (empty = clean). */
export function leakCheck(host: Host, fd: Iommufd, base: Baseline): string[] {
  const out: string[] = [];
  const ctx = iommufdCtx(fd);
  if (!ctx.released) out.push('the iommufd context was never released');
  if (ctx.leaks.length > 0) out.push(`objects leaked at teardown: ${ctx.leaks.join(', ')}`);
  if (!ctx.objects.empty) out.push('the object table is not empty');
  if (host.process.lockedPages !== base.lockedPages) out.push(`pinned pages: ${host.process.lockedPages}, expected ${base.lockedPages}`);
  if (host.frames.framesInUse !== base.framesInUse) out.push(`frames in use: ${host.frames.framesInUse}, expected ${base.framesInUse}`);
  if (host.process.openFds.length !== base.openFds) out.push(`open fds: ${host.process.openFds.length}, expected ${base.openFds}`);
  if (host.outstandingFaults !== 0) out.push(`${host.outstandingFaults} page request(s) never answered`);
  return out;
}

/** The first difference between two snapshots, or null when equal. */
export function diffSnapshots(a: Snapshot, b: Snapshot): string | null {
  for (const k of Object.keys(a) as (keyof Snapshot)[]) {
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    if (x !== y) return `${k}: before ${x.slice(0, 300)} after ${y.slice(0, 300)}`;
  }
  return null;
}
