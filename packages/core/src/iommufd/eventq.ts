/**
 * Event queues (eventq.c): the FAULT object with its fd (read page-fault groups, write responses)
 * and the vEVENTQ of a vIOMMU (read-only stream of vendor events with sequence numbers).
 */
import { fail } from '../uapi/errno.js';
import {
  INT_MAX,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMUFD_PAGE_RESP_INVALID,
  iommu_hwpt_pgfault,
} from '../uapi/iommufd.js';
import type { IommuFault, PageRequestFields } from '../driver/fault.js';
import { LeWordView } from '../driver/le.js';
import { POLLIN, POLLRDNORM, type FileOps } from '../memory/process.js';
import { IommufdObject, ObjType } from './objects.js';
import type { Viommu } from './viommu.js';

const PGFAULT_FLAGS = iommu_hwpt_pgfault.offsetof('flags');
const PGFAULT_DEV_ID = iommu_hwpt_pgfault.offsetof('dev_id');
const PGFAULT_PASID = iommu_hwpt_pgfault.offsetof('pasid');
const PGFAULT_GRPID = iommu_hwpt_pgfault.offsetof('grpid');
const PGFAULT_PERM = iommu_hwpt_pgfault.offsetof('perm');
const PGFAULT_ADDR = iommu_hwpt_pgfault.offsetof('addr');
const PGFAULT_COOKIE = iommu_hwpt_pgfault.offsetof('cookie');
const PGFAULT_RESERVED = iommu_hwpt_pgfault.offsetof('__reserved');
const PGFAULT_LENGTH = iommu_hwpt_pgfault.offsetof('length');

/** The little-endian u32 at `off` as a signed int32 (as an Int32Array view reads it): see write(). */
function readI32(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24);
}

/** Stores the low 32 bits of `v` little-endian, as DataView.setUint32 would. */
function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = v >>> 24;
}

/**
 * Every field of one struct iommu_hwpt_pgfault at `off` but the address (__reserved and length are 0),
 * the u32 fields modulo 2^32 as DataView.setUint32 stores them.
 */
function writeRecord(out: Uint8Array, off: number, pasid: number, flagsLast: number, devId: number, grpid: number, perm: number, cookie: number): void {
  writeU32(out, off + PGFAULT_FLAGS, (pasid >= 0 ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0) | flagsLast);
  writeU32(out, off + PGFAULT_DEV_ID, devId);
  writeU32(out, off + PGFAULT_PASID, pasid >= 0 ? pasid : 0);
  writeU32(out, off + PGFAULT_GRPID, grpid);
  writeU32(out, off + PGFAULT_PERM, pgfaultPerm(perm));
  writeU32(out, off + PGFAULT_RESERVED, 0);
  writeU32(out, off + PGFAULT_LENGTH, 0);
  writeU32(out, off + PGFAULT_COOKIE, cookie);
}

/**
 * writeRecord and the address, as 32-bit words of `w` from word `i` (the record's offset / 4), the whole
 * record. The word indexes and flag bits are literals (a module constant is a load and a hole check in
 * compiled code; every fault's record is written here): flags 0, dev_id 1, pasid 2, grpid 3, perm 4,
 * __reserved 5, addr 6-7, length 8, cookie 9; IOMMU_PGFAULT_FLAGS_PASID_VALID is 1 (eventq.test.ts checks
 * them against the struct).
 */
function writeRecordWords(w: Int32Array, i: number, pasid: number, flagsLast: number, devId: number, grpid: number, perm: number, cookie: number, addrLo: number, addrHi: number): void {
  w[i] = (pasid >= 0 ? 1 : 0) | flagsLast;
  w[i + 1] = devId;
  w[i + 2] = pasid >= 0 ? pasid : 0;
  w[i + 3] = grpid;
  w[i + 4] = pgfaultPerm(perm);
  w[i + 5] = 0;
  w[i + 6] = addrLo;
  w[i + 7] = addrHi;
  w[i + 8] = 0;
  w[i + 9] = cookie;
}


/** iommufd_fault_fops_read: ESPIPE unless the count is whole records (40 bytes: a literal, as in writeRecordWords). */
function checkReadCount(count: number): void {
  if (count % 40 !== 0) fail('ESPIPE', 'count must be a multiple of sizeof(struct iommu_hwpt_pgfault)');
}

/** A page request group (iopf_group): whole groups are delivered and answered with one response. */
export interface FaultGroup {
  readonly devId: number;
  readonly pasid: number;
  /** The attach handle the group was routed to: (device object, pasid, HWPT). */
  readonly handle: { readonly idev: object; readonly pasid: number; readonly hwpt: object };
  /** Number of page requests in the group (1 for a stall), and the i-th one, in order; the last is LAST. */
  readonly count: number;
  fault(i: number): IommuFault;
  /**
   * The i-th request's numbers, what read(2) writes from, valid until the next call (the pipeline's groups
   * have it, and allocate nothing); without it read(2) takes fault(i).
   */
  request?(i: number): Readonly<PageRequestFields>;
  /**
   * Sends the response to the device through the vendor's page-response path. Called exactly once;
   * `auto` when the kernel answers on its own (the attach handle went away), not user space.
   */
  respond(code: number, auto?: boolean): void;
  cookie: number;
}

/**
 * The IOMMU_PGFAULT_PERM_* bits of an access's PERM_* bits. PERM_READ, WRITE, EXEC and PRIV are bits 0 to 3,
 * as IOMMU_PGFAULT_PERM_READ, WRITE, EXEC and PRIV are (eventq.test.ts checks both): the same bits, masked
 * by a literal (a module constant is a load and a hole check in compiled code).
 */
export function pgfaultPerm(perm: number): number {
  return perm & 0xf;
}

/** Readers blocked in a poll/read of a queue fd, woken when something is queued. */
class Readers {
  /** Made by the first reader that waits: a queue nobody waits on checks one field per group it queues. */
  private waiters: Set<() => void> | null = null;

  wait(ready: () => boolean, signal?: AbortSignal): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters?.delete(wake);
        reject(signal!.reason ?? new Error('aborted'));
      };
      const wake = () => {
        this.waiters?.delete(wake);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      (this.waiters ??= new Set()).add(wake);
    });
  }

  wake(): void {
    // The loop in a call of its own: a queue nobody waits on inlines two compares into the iopf handler.
    if (this.waiters !== null && this.waiters.size > 0) this.wakeAll(this.waiters);
  }

  private wakeAll(w: Set<() => void>): void {
    for (const f of [...w]) f();
  }
}

export class FaultQueue extends IommufdObject {
  readonly type = ObjType.FAULT;
  /**
   * Groups waiting to be read, oldest first: a ring of `queued` groups from `head` whose capacity (a
   * power of two) only grows, so that queueing and reading a group allocate nothing.
   */
  private ring: (FaultGroup | null)[] = new Array<FaultGroup | null>(16).fill(null);
  private head = 0;
  private queued = 0;
  /**
   * Groups read and waiting for a response, indexed by cookie (cookies are small: the lowest free from
   * 1). An array, not a Map: a Map's delete reallocates its table as it shrinks, once per response.
   */
  private readonly response: (FaultGroup | undefined)[] = [undefined];
  /**
   * Cookies come from xa_alloc on an XA_FLAGS_ALLOC1 xarray: the lowest free index from 1, so an
   * answered group's cookie is handed out again. Free = the min-heap (every entry below cookieHigh), and
   * all from cookieHigh.
   */
  private readonly freeCookies: number[] = [];
  private cookieHigh = 1;
  fd = -1;
  private readonly readers = new Readers();

  get pending(): number {
    return this.queued;
  }

  get awaitingResponse(): number {
    // Every cookie below cookieHigh that is not free holds a group (see freeCookies): no counter to keep
    // on every read(2) and write(2).
    return this.cookieHigh - 1 - this.freeCookies.length;
  }

  /** The iopf handler: queues a whole group and wakes readers. */
  addGroup(g: FaultGroup): void {
    this.push(g);
    this.readers.wake();
  }

  /** Queues `g` behind the queued groups. */
  private push(g: FaultGroup): void {
    if (this.queued === this.ring.length) this.grow();
    this.ring[(this.head + this.queued) & (this.ring.length - 1)] = g;
    this.queued++;
  }

  /** The oldest queued group, taken out of the ring (there must be one). */
  private take(): FaultGroup {
    const g = this.ring[this.head]!;
    this.ring[this.head] = null;
    // Emptied, the ring starts again at its first entry (one cache line for a reader that keeps up).
    if (--this.queued === 0) this.head = 0;
    else this.head = (this.head + 1) & (this.ring.length - 1);
    return g;
  }

  /** Doubles the ring, its groups moved to the front in order. */
  private grow(): void {
    const old = this.ring;
    const next = new Array<FaultGroup | null>(old.length * 2).fill(null);
    for (let i = 0; i < this.queued; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.ring = next;
    this.head = 0;
  }

  /** Resolves when a group is queued (for async readers). */
  waitReadable(signal?: AbortSignal): Promise<void> {
    return this.readers.wait(() => this.pending > 0, signal);
  }

  /** read(): whole groups of 40-byte records; a group that does not fit stays queued. */
  read(count: number): Uint8Array {
    checkReadCount(count);
    const out = new Uint8Array(this.fitting(count));
    this.readRecords(out, false);
    return out;
  }

  /**
   * read(2) into the caller's buffer: whole groups of 40-byte records up to `out.length` bytes (a group
   * that does not fit stays queued); returns the bytes written. Nothing is allocated.
   */
  readInto(out: Uint8Array): number {
    return this.readRecords(out, true);
  }

  /** readInto; `reused`: `out` is the caller's buffer, which may come again (written by words when it allows). */
  private readRecords(out: Uint8Array, reused: boolean): number {
    const count = out.length;
    // 40 is sizeof(struct iommu_hwpt_pgfault), 2 IOMMU_PGFAULT_FLAGS_LAST_PAGE: literals, as in writeRecordWords.
    checkReadCount(count);
    // Each record is written field by field (struct iommu_hwpt_pgfault), by words when the buffer allows.
    let words: Int32Array | null = null;
    let off = 0;
    // Whole groups from the oldest, while they fit.
    while (this.queued > 0) {
      const g = this.ring[this.head]!;
      const n = g.count;
      if (off + n * 40 > count) break;
      if (off === 0 && reused === true) words = this.readWords.of(out, count);
      this.take();
      const cookie = this.allocCookie();
      g.cookie = cookie;
      this.setResponse(cookie, g);
      if (g.request !== undefined) {
        for (let i = 0; i < n; i++) {
          const r = g.request(i);
          const flagsLast = i === n - 1 ? 2 : 0;
          if (words !== null) writeRecordWords(words, off >> 2, r.pasid, flagsLast, g.devId, r.grpid, r.perm, cookie, r.addrLo, r.addrHi);
          else {
            writeRecord(out, off, r.pasid, flagsLast, g.devId, r.grpid, r.perm, cookie);
            writeU32(out, off + PGFAULT_ADDR, r.addrLo);
            writeU32(out, off + PGFAULT_ADDR + 4, r.addrHi);
          }
          off += 40;
        }
        continue;
      }
      for (let i = 0; i < n; i++) {
        const f = g.fault(i);
        writeRecord(out, off, f.pasid, i === n - 1 ? 2 : 0, g.devId, f.grpid, f.perm, cookie);
        // The address modulo 2^64, as the struct codec (setBigUint64) stores it.
        const a = BigInt.asUintN(64, f.addr);
        writeU32(out, off + PGFAULT_ADDR, Number(a & 0xffff_ffffn));
        writeU32(out, off + PGFAULT_ADDR + 4, Number(a >> 32n));
        off += 40;
      }
    }
    return off;
  }

  /** The caller's read(2) buffer as words: a fault thread reads into one buffer again and again, as C does. */
  private readonly readWords = new LeWordView();

  /** Bytes of the whole groups, from the oldest queued one, that fit in `count`. */
  private fitting(count: number): number {
    let bytes = 0;
    let i = 0;
    const mask = this.ring.length - 1;
    while (i < this.queued) {
      const n = this.ring[(this.head + i) & mask]!.count * 40;
      if (bytes + n > count) break;
      bytes += n;
      i++;
    }
    return bytes;
  }

  /**
   * write(): 8-byte responses; returns the bytes consumed before the first error (iommufd_fault_fops_write:
   * ESPIPE for a count that is not whole responses; then per response EINVAL for a code other than SUCCESS
   * or INVALID, or a cookie no group waits under, returned only when it is the first).
   */
  write(bytes: Uint8Array): number {
    const length = bytes.length;
    // 8 is sizeof(struct iommu_hwpt_page_response) { u32 cookie; u32 code; }; codes SUCCESS 0 and INVALID 1:
    // literals, as in readRecords.
    if ((length & 7) !== 0) fail('ESPIPE', 'count must be a multiple of sizeof(struct iommu_hwpt_page_response)');
    // A fault thread answers from one buffer again and again: its responses are read as words.
    const words = this.writeWords.of(bytes, length);
    let done = 0;
    while (done < length) {
      // The u32 cookie and code as signed words (from 2^31 up negative), compared as such: `>>> 0` on
      // every response was compiled as a 32-bit integer and deoptimized at the first value past 2^31.
      const cookie = words !== null ? words[done >> 2] : readI32(bytes, done);
      const code = words !== null ? words[(done >> 2) + 1] : readI32(bytes, done + 4);
      if (code !== 0 && code !== 1) {
        if (done === 0) fail('EINVAL', 'unknown response code');
        break;
      }
      const g = cookie >= 0 && cookie < this.response.length ? this.response[cookie] : undefined;
      // Cookie 0 is never given (XA_FLAGS_ALLOC1): response[0] stays undefined.
      if (g === undefined) {
        if (done === 0) fail('EINVAL', `unknown cookie ${cookie >>> 0}`);
        break;
      }
      this.takeResponse(cookie);
      g.respond(code);
      done += 8;
    }
    return done;
  }

  /** The caller's write(2) buffer as words (see readWords). */
  private readonly writeWords = new LeWordView();

  poll(): number {
    // POLLOUT | (POLLIN | POLLRDNORM when a group is queued), literals (4, 0x41) as in readRecords.
    return this.queued > 0 ? 0x45 : 0x4;
  }

  /** Answers INVALID every group (queued or read) of an attach handle that is going away. */
  autoRespond(match: (g: FaultGroup) => boolean): number {
    let n = 0;
    // The queued groups leave the ring, and those that stay go back in their order.
    const queued: FaultGroup[] = [];
    while (this.queued > 0) queued.push(this.take());
    for (const g of queued) {
      if (match(g)) {
        g.respond(IOMMUFD_PAGE_RESP_INVALID, true);
        n++;
      } else this.push(g);
    }
    // In cookie order, as xa_for_each walks the response xarray (iommufd_auto_response_faults).
    for (let cookie = 1; cookie < this.response.length; cookie++) {
      const g = this.response[cookie];
      if (g === undefined || !match(g)) continue;
      this.takeResponse(cookie);
      g.respond(IOMMUFD_PAGE_RESP_INVALID, true);
      n++;
    }
    return n;
  }

  private setResponse(cookie: number, g: FaultGroup): void {
    while (this.response.length <= cookie) this.response.push(undefined);
    this.response[cookie] = g;
  }

  /** Forgets the group waiting under `cookie` and frees the cookie. */
  private takeResponse(cookie: number): void {
    this.response[cookie] = undefined;
    this.freeCookie(cookie);
  }

  private allocCookie(): number {
    return this.freeCookies.length === 0 ? this.cookieHigh++ : this.allocCookieBelow();
  }

  /** allocCookie when a cookie below the highest is free: the heap's least. */
  private allocCookieBelow(): number {
    const h = this.freeCookies;
    const min = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1] < h[l] ? l + 1 : l;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return min;
  }

  private freeCookie(cookie: number): void {
    // The highest cookie given: the free ones from cookieHigh now start at it (every cookie in the heap is
    // below it). A fault thread that answers what it read keeps one cookie and never touches the heap.
    if (cookie === this.cookieHigh - 1) this.cookieHigh = cookie;
    else this.freeCookieBelow(cookie);
  }

  /** freeCookie of a cookie below the highest given: into the min-heap. */
  private freeCookieBelow(cookie: number): void {
    const h = this.freeCookies;
    let i = h.length;
    h.push(cookie);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= cookie) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = cookie;
  }


  destroy(): void {
    this.autoRespond(() => true);
  }

  /** The FAULT fd's file; `onRelease` runs after the queue lets go of the fd on its last close. */
  fileOps(onRelease: () => void): FileOps {
    return new FaultFile(this, onRelease);
  }
}

/**
 * The FAULT fd's file (iommufd_fault_fops): a class whose methods call the queue's, not an object of
 * closures, so that a fault thread's poll/read(2)/write(2) through the process's fd table reach the queue
 * after one map check (V8 folds a prototype method to a constant; a closure field is a load and a compare).
 */
class FaultFile implements FileOps {
  readonly kind = '[iommufd-pgfault]';

  constructor(
    private readonly queue: FaultQueue,
    private readonly onRelease: () => void,
  ) {}

  read(count: number): Uint8Array {
    return this.queue.read(count);
  }

  readInto(out: Uint8Array): number {
    return this.queue.readInto(out);
  }

  write(bytes: Uint8Array): number {
    return this.queue.write(bytes);
  }

  poll(): number {
    return this.queue.poll();
  }

  release(): void {
    // The fd number is free again (the next open file may reuse it): forget it.
    this.queue.fd = -1;
    this.queue.users--;
    this.onRelease();
  }
}

interface QueuedEvent {
  lost: boolean;
  sequence: number;
  data: Uint8Array;
}

export class VEventQueue extends IommufdObject {
  readonly type = ObjType.VEVENTQ;
  private items: QueuedEvent[] = [];
  private numEvents = 0;
  private sequence = 0;
  private readonly lostHeader: QueuedEvent = { lost: true, sequence: 0, data: new Uint8Array(0) };
  fd = -1;

  /** Size of one event's data, for splitting a read stream (0 when events vary). */
  eventDataSize = 0;

  constructor(
    readonly viommu: Viommu,
    readonly eventType: number,
    readonly depth: number,
  ) {
    super();
  }

  link(): void {
    this.viommu.users++;
    this.viommu.veventqs.set(this.eventType, this);
  }

  private readonly readers = new Readers();

  /** Resolves when an event (or a LOST_EVENTS header) is queued. */
  waitReadable(signal?: AbortSignal): Promise<void> {
    return this.readers.wait(() => this.items.length > 0, signal);
  }

  /** iommufd_viommu_report_event. */
  report(data: Uint8Array): void {
    let ev: QueuedEvent;
    if (this.numEvents === this.depth) {
      ev = this.lostHeader;
      const i = this.items.indexOf(ev);
      if (i >= 0) this.items.splice(i, 1);
    } else {
      ev = { lost: false, sequence: 0, data };
      this.numEvents++;
      this.eventDataSize = data.length;
    }
    ev.sequence = this.sequence;
    this.sequence = (this.sequence + 1) & INT_MAX;
    this.items.push(ev);
    this.readers.wake();
  }

  get queued(): number {
    return this.items.length;
  }

  read(count: number): Uint8Array {
    // iommufd_veventq_fops_read: a count that cannot hold the next header (or header + data) reads
    // nothing and returns 0, leaving the event queued; it is not an error.
    let bytes = 0;
    let n = 0;
    for (; n < this.items.length; n++) {
      const need = 8 + this.items[n].data.length;
      if (bytes + need > count) break;
      bytes += need;
    }
    // Each event as its header (flags, sequence) and data, written once into the buffer returned.
    const out = new Uint8Array(bytes);
    let off = 0;
    for (const ev of this.items.splice(0, n)) {
      writeU32(out, off, ev.lost ? IOMMU_VEVENTQ_FLAG_LOST_EVENTS : 0);
      writeU32(out, off + 4, ev.sequence);
      out.set(ev.data, off + 8);
      off += 8 + ev.data.length;
      if (!ev.lost) this.numEvents--;
    }
    return out;
  }

  poll(): number {
    return this.items.length > 0 ? POLLIN | POLLRDNORM : 0;
  }

  destroy(): void {
    this.viommu.veventqs.delete(this.eventType);
    this.viommu.users--;
    this.items = [];
  }

  fileOps(): FileOps {
    return {
      kind: '[iommufd-viommu-event]',
      read: (n) => this.read(n),
      poll: () => this.poll(),
      release: () => {
        // The fd number is free again (the next open file may reuse it): forget it.
        this.fd = -1;
        this.users--;
      },
    };
  }
}
