/**
 * Page-request storms that check routing. Many PRI devices, each with several PASIDs attached to
 * fault-capable HWPTs, send single-page request groups (the address names the request); a responder
 * reads the fault fds and answers SUCCESS or INVALID, leaves some groups unanswered, and detach, replace
 * and HWPT destroy are interleaved. A hardware queue smaller than the devices' PRI allocations overflows
 * (those requests get FAILURE from the hardware).
 *
 * The judge is independent of the pipeline: for every request it knows which device and PASID sent
 * it; a record read from a fault fd must carry exactly that device and PASID, every request resolves
 * exactly once, with the responder's code when the responder answered it, INVALID when it was read but
 * its handle went away, and INVALID or FAILURE when no handler ever saw it.
 */
import { createHost, uapi as U, type Host, type HostProfile, type Iommufd, type PciDevice } from '@ioasid/core';
import type { IommuPlugin } from '@ioasid/core/driver';
import { rng } from './fuzz.js';
import { iommufdCtx, devicePri } from '@ioasid/core/internal';

const PAGE = 4096n;
const SUCCESS = 0;
const INVALID = 1;
const FAILURE = 2;

export interface StormOptions {
  plugin: IommuPlugin;
  /** The unit every device sits behind: vendor and registers (with a small page request queue). */
  unit: HostProfile['units'][number];
  requests: number;
  devices?: number;
  pasidsPerDevice?: number;
  /** Requests in flight at most (the devices' PRI allocation also limits them). */
  concurrency?: number;
  /** Operations (detach/re-attach, replace, destroy) per this many requests. */
  chaosEvery?: number;
  seed?: number;
}

export interface StormReport {
  requests: number;
  /** Outcomes as the devices saw them. */
  success: number;
  invalid: number;
  failure: number;
  /** Requests the responder read (and answered, or left to the kernel). */
  delivered: number;
  chaos: number;
  violations: string[];
  /** Peak resident set and heap, sampled during the storm. */
  peakRssMiB: number;
  peakHeapMiB: number;
  ms: number;
}

interface Req {
  dev: number;
  pasid: number;
  /** The response the device got, -1 until then. */
  got: number;
  /** Times the device's promise settled. */
  settled: number;
  /** The responder's code, -1 if it never answered; -2 if read but left unanswered. */
  answered: number;
}


export async function pageRequestStorm(o: StormOptions): Promise<StormReport> {
  const nDev = o.devices ?? 16;
  const nPasid = o.pasidsPerDevice ?? 4;
  const conc = o.concurrency ?? 4096;
  const chaosEvery = o.chaosEvery ?? 500;
  const r = rng(o.seed ?? 1);
  const profile: HostProfile = {
    name: 'storm',
    units: [o.unit],
    devices: Array.from({ length: nDev }, (_, i) => ({ bdf: `0000:${(0x10 + i).toString(16).padStart(2, '0')}:00.0`, unit: o.unit.id, group: 100 + i, ats: true, pri: true, pasidBits: 20 })),
  };
  // Bound as a VMM binds on a platform without interrupt remapping (iommufd.allow_unsafe_interrupts=1).
  const host: Host = createHost({ plugins: [o.plugin], profile, allowUnsafeInterrupts: true });
  const fd: Iommufd = host.openIommufd();
  const devs: PciDevice[] = [...host.devices.values()];
  const devIds = devs.map((d) => d.bindIommufd(fd));
  const ioas = fd.ioas.alloc();
  // Two fault queues, and two fault-capable PASID-compatible HWPTs on each (A and B per queue).
  const queues = [fd.fault.alloc(), fd.fault.alloc()];
  const hwpts = queues.flatMap((q) => [0, 1].map(() => fd.hwpt.alloc({ devId: devIds[0], ptId: ioas, faultId: q.id, pasid: true })));
  const attached = new Map<string, number>();
  const key = (d: number, p: number) => `${d}:${p}`;
  const pasidOf = (i: number) => (i === 0 ? -1 : i);
  for (let d = 0; d < nDev; d++)
    for (let i = 0; i < nPasid; i++) {
      const h = hwpts[(d + i) % hwpts.length];
      devs[d].attachPt(h, i === 0 ? {} : { pasid: pasidOf(i) });
      attached.set(key(d, pasidOf(i)), h);
    }

  const reqs: Req[] = [];
  const violations: string[] = [];
  const v = (m: string) => {
    if (violations.length < 20) violations.push(m);
  };
  let inflight = 0;
  let chaos = 0;
  let delivered = 0;
  let peakRss = 0;
  let peakHeap = 0;
  const started = performance.now();
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  // The address names the request: page number = request index + 1 (0 stays unused).
  const issue = (id: number) => {
    const d = Math.floor(r() * nDev);
    const p = pasidOf(Math.floor(r() * nPasid));
    reqs.push({ dev: d, pasid: p, got: -1, settled: 0, answered: -1 });
    inflight++;
    devs[d].requestPages([{ addr: BigInt(id + 1) * PAGE, perm: 1 }], p < 0 ? {} : { pasid: p }).then(
      (code) => {
        const q = reqs[id];
        q.settled++;
        q.got = code;
        inflight--;
      },
      (e: unknown) => {
        v(`request ${id} rejected: ${String(e)}`);
        inflight--;
      },
    );
  };
  const respond = () => {
    for (const q of queues) {
      const bytes = host.process.read(q.fd, 40 * 512);
      const out: Uint8Array[] = [];
      for (let off = 0; off < bytes.length; off += 40) {
        const rec = U.iommu_hwpt_pgfault.decode(bytes, off);
        const id = Number(rec.addr / PAGE) - 1;
        const req = reqs[id];
        delivered++;
        if (!req) {
          v(`record for unknown request at 0x${rec.addr.toString(16)}`);
          continue;
        }
        // Routing: the record carries the sender's device and PASID.
        const pasid = rec.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID ? rec.pasid : -1;
        if (rec.dev_id !== devIds[req.dev] || pasid !== req.pasid) v(`request ${id} from dev ${devIds[req.dev]} pasid ${req.pasid} delivered as dev ${rec.dev_id} pasid ${pasid}`);
        if (req.answered !== -1) v(`request ${id} delivered twice`);
        const x = r();
        if (x < 0.1) {
          req.answered = -2; // left for the kernel to answer when its handle goes away
          continue;
        }
        req.answered = x < 0.55 ? SUCCESS : INVALID;
        out.push(U.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code: req.answered }));
      }
      for (const b of out) host.process.write(q.fd, b);
    }
  };
  const chaosOp = () => {
    chaos++;
    const d = Math.floor(r() * nDev);
    const p = pasidOf(Math.floor(r() * nPasid));
    const opts = p < 0 ? {} : { pasid: p };
    const x = r();
    if (x < 0.4) {
      // Detach and attach back: the handle's pending groups are answered INVALID by the kernel.
      devs[d].detachPt(opts);
      devs[d].attachPt(attached.get(key(d, p))!, opts);
    } else if (x < 0.8) {
      const now = attached.get(key(d, p))!;
      const to = hwpts[(hwpts.indexOf(now) + 1 + Math.floor(r() * (hwpts.length - 1))) % hwpts.length];
      devs[d].attachPt(to, opts);
      attached.set(key(d, p), to);
    } else {
      // Destroy a HWPT: every handle on it moves away first, then a new one takes its place.
      const victim = hwpts[Math.floor(r() * hwpts.length)];
      const qi = Math.floor(hwpts.indexOf(victim) / 2);
      const fresh = fd.hwpt.alloc({ devId: devIds[0], ptId: ioas, faultId: queues[qi].id, pasid: true });
      for (const [k, h] of attached) {
        if (h !== victim) continue;
        const [dd, pp] = k.split(':').map(Number);
        devs[dd].attachPt(fresh, pp < 0 ? {} : { pasid: pp });
        attached.set(k, fresh);
      }
      fd.destroy(victim);
      hwpts[hwpts.indexOf(victim)] = fresh;
    }
  };

  let next = 0;
  let sinceChaos = 0;
  while (next < o.requests || inflight > 0) {
    while (inflight < conc && next < o.requests) {
      issue(next++);
      if (++sinceChaos >= chaosEvery) {
        sinceChaos = 0;
        chaosOp();
      }
    }
    await new Promise((res) => setImmediate(res));
    respond();
    if ((next & 0x3fff) < 64) sample();
    if (next >= o.requests && inflight > 0 && delivered > 0) {
      // The tail: answer whatever is still queued; groups left unanswered go with one last detach round.
      respond();
      await new Promise((res) => setImmediate(res));
      if (inflight > 0) {
        for (let d = 0; d < nDev; d++)
          for (let i = 0; i < nPasid; i++) {
            const p = pasidOf(i);
            devs[d].detachPt(p < 0 ? {} : { pasid: p });
            devs[d].attachPt(attached.get(key(d, p))!, p < 0 ? {} : { pasid: p });
          }
        await new Promise((res) => setImmediate(res));
        respond();
      }
    }
  }
  sample();
  const rep: StormReport = { requests: reqs.length, success: 0, invalid: 0, failure: 0, delivered, chaos, violations, peakRssMiB: peakRss / 2 ** 20, peakHeapMiB: peakHeap / 2 ** 20, ms: performance.now() - started };
  reqs.forEach((q, id) => {
    if (q.settled !== 1) return v(`request ${id} settled ${q.settled} times`);
    if (q.got === SUCCESS) rep.success++;
    else if (q.got === INVALID) rep.invalid++;
    else if (q.got === FAILURE) rep.failure++;
    if (q.answered >= 0 && q.got !== q.answered) v(`request ${id} was answered ${q.answered} but its device got ${q.got}`);
    if (q.answered === -2 && q.got !== INVALID) v(`request ${id} was left to the kernel but got ${q.got}, not INVALID`);
    if (q.answered === -1 && q.got !== INVALID && q.got !== FAILURE) v(`request ${id} never reached a handler but got ${q.got}`);
  });
  for (const d of devs) if (devicePri(d).outstandingRequests !== 0) v(`${d.bdf} still has ${devicePri(d).outstandingRequests} PRI credit(s) in use`);
  for (const q of queues) host.process.close(q.fd);
  host.process.close(fd.fd);
  const ctx = iommufdCtx(fd);
  if (!ctx.released || ctx.leaks.length > 0) v(`teardown: released ${ctx.released}, leaks ${ctx.leaks.join(', ')}`);
  return rep;
}

export interface VEventStormReport {
  events: number;
  reads: number;
  lostHeaders: number;
  violations: string[];
}

/**
 * A vEVENTQ flooded past its depth with random reads in between, against a reference queue: every read
 * returns exactly the reference's records: sequence numbers (31-bit, wrapping) and LOST_EVENTS headers.
 */
export function veventqStorm(q: { report(d: Uint8Array): void }, read: (count: number) => Uint8Array, depth: number, events: number, seed = 1): VEventStormReport {
  const r = rng(seed);
  // The reference: a list of [lost, sequence, payload] with at most `depth` events and one lost header.
  const ref: { lost: boolean; seq: number; id: number }[] = [];
  let seq = 0;
  let count = 0;
  const rep: VEventStormReport = { events: 0, reads: 0, lostHeaders: 0, violations: [] };
  const check = (bytes: Uint8Array) => {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let off = 0;
    while (off < bytes.length) {
      const e = ref.shift();
      if (!e) {
        rep.violations.push(`read returned a record the reference does not have at byte ${off}`);
        return;
      }
      const lost = (dv.getUint32(off, true) & U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0;
      const s = dv.getUint32(off + 4, true);
      if (lost !== e.lost || s !== e.seq) rep.violations.push(`expected ${e.lost ? 'LOST_EVENTS' : 'event'} seq ${e.seq}, got ${lost ? 'LOST_EVENTS' : 'event'} seq ${s}`);
      if (lost) {
        rep.lostHeaders++;
        off += 8;
      } else {
        if (dv.getUint32(off + 8, true) !== e.id) rep.violations.push(`event seq ${s} carries the wrong payload`);
        off += 16;
        count--;
      }
      if (rep.violations.length > 10) return;
    }
  };
  for (let i = 0; i < events; i++) {
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setUint32(0, i, true);
    q.report(payload);
    rep.events++;
    if (count === depth) {
      // Full: the lost header moves to the tail with the new sequence number.
      const at = ref.findIndex((e) => e.lost);
      if (at >= 0) ref.splice(at, 1);
      ref.push({ lost: true, seq, id: -1 });
    } else {
      ref.push({ lost: false, seq, id: i });
      count++;
    }
    seq = (seq + 1) & 0x7fffffff;
    if (r() < 0.05) {
      rep.reads++;
      check(read([8, 16, 24, 40, 4096][Math.floor(r() * 5)]));
    }
  }
  for (let guard = 0; ref.length > 0 && guard < events + 2; guard++) check(read(4096));
  return rep;
}
