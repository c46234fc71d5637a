/**
 * The fault-routing pipeline:
 *   device DMA fails -> vendor encodes the real record -> hardware queue -> (interrupt thread) vendor
 *   decode -> normalized IommuFault -> user stages -> route by (device, PASID) -> sink:
 *     recoverable: group partial requests until LAST -> the HWPT's fault queue -> read() / write()
 *                  -> vendor page response -> the device retries or aborts;
 *     stalled (SMMUv3 stall model): the event record (Stall = 1, STAG) goes through the fault queue of
 *                  the hardware, then exactly like a one-request page group; the response goes back
 *                  as the vendor's resume command (CMD_RESUME) and the transaction retries or aborts;
 *     unrecoverable under a vIOMMU with a vEVENTQ: vendor vEVENT with the virtual id;
 *     otherwise: the exact Linux line in the host log.
 * Every page request and every stall is answered exactly once, whatever happens to its domain.
 */
import { PAGE_RESP_FAILURE, PAGE_RESP_INVALID, codecPageRequestFields, codecPageRequests, codecPageRequestsInPlace, pageRequestFault, pageRequestFieldsOf, type FailedAccess, type FaultCodec, type IommuFault, type PageRequestFields, type PageRequestFieldsCodec, type PageResponse } from '../driver/fault.js';
import type { DeviceInfo } from '../driver/vendor.js';
import { HwptNested, type Hwpt } from '../iommufd/hwpt.js';
import type { IommufdDevice } from '../iommufd/device.js';
import type { FaultGroup, FaultQueue } from '../iommufd/eventq.js';
import type { Vdevice } from '../iommufd/viommu.js';
import { HardwareQueue } from './queue.js';
import type { FaultStage, FaultTrace, HostLog } from './stages.js';

/** A device as the pipeline sees it. */
export interface PipelineDevice {
  readonly bdf: string;
  readonly unitIndex: number;
  readonly info: DeviceInfo;
  /** The iommufd device object while bound. */
  readonly idev: IommufdDevice | null;
}

/** The host services the pipeline routes through. */
export interface PipelineHost {
  /** The fault codec of `unit`: once it has one, the same one for the host's life (the pipeline keeps what it derived from it). */
  codec(unit: number): FaultCodec | undefined;
  unitName(unit: number): string;
  /** The device with requester id (or StreamID) `rid` behind `unit`: the same answer for the host's life (the pipeline remembers the last one). */
  deviceByRid(unit: number, rid: number): PipelineDevice | undefined;
  queueDepths(unit: number): { faults: number; pageRequests: number };
}

interface UnitQueues {
  faults: HardwareQueue;
  pageRequests: HardwareQueue;
  scheduled: boolean;
  /** The interrupt thread of this unit (FaultPipeline.interruptThread), made once: no closure per scheduled drain. */
  drain: () => void;
  /** Waiters and partial groups of the unit. */
  space: GroupSpace;
  /** space.partial.size, kept here so that the interrupt thread's common case reads no Map. */
  partialGroups: number;
  /** The unit's codec (PipelineHost.codec never changes once defined), undefined until it has one. */
  codec: FaultCodec | undefined;
  /** codecPageRequests(codec), codecPageRequestsInPlace(codec), codecPageRequestFields(codec). */
  pageRequestsOk: boolean;
  inPlace: boolean;
  fields: boolean;
  /** The codec screens page requests (FaultCodec.screenPageRequest). */
  screens: boolean;
  /** `fields` and the pipeline is unwatched: page requests are decoded into the numbers of pooled groups. */
  numbers: boolean;
  /**
   * The response record of an in-place codec (PageRequestInPlace), pageResponseSize bytes, encoded into and
   * decoded from by every response of the unit (the codec reads it synchronously).
   */
  responseRecord: Uint8Array;
}

/**
 * A device transfer waiting for the response to its page request group: told the code the device read
 * back from the vendor's response record, from a microtask (as a promise's continuation would be), never
 * from inside the call that answered the group.
 */
export interface PageResponseSink {
  /** The group was answered: `code` is PAGE_RESP_* as the device decoded it. */
  pageResponse(code: number): void;
}

/** A promise's resolve function (called at once: the promise defers), or a sink (deferred by the pipeline). */
type Waiter = ((code: number) => void) | PageResponseSink;


/**
 * A group key inside one (unit, page request | stall) space, for the tables that are off the hot path
 * (partial groups, the rare waiters the slots below do not hold): a number when rid < 2^16,
 * -1 <= pasid < 2^21 - 1 and grpid < 2^16 (53 bits, exact), otherwise a string (never equal to a number).
 */
type GroupKey = number | string;

/** Group indexes below this have a slot in their stream's array: every PRG index (9 bits). */
const SLOT_GROUPS = 512;

/** The waiters of one (rid, pasid) stream by group index, and how many are live. */
interface Stream {
  readonly slots: (Waiter | null)[];
  live: number;
}

/**
 * The waiting device of each outstanding group. A device's requests come from one (rid, pasid) stream
 * and carry small group indexes, so each stream has an array of slots by index, and the stream used last
 * is remembered: registering and taking a waiter is an index into an array, with no hashing and nothing
 * allocated. Indexes past the slots (stall tags) and streams whose numbers do not fit go to a Map.
 */
class WaiterTable {
  private readonly streams = new Map<number, Stream>();
  /** streams.size, kept in a field: a Map's size is three loads, and every response reads it. */
  private streamCount = 0;
  /** The (rid, pasid) of the stream used last (-1: none), and that stream. */
  private lastRid = -1;
  private lastPasid = -1;
  private lastStream: Stream | null = null;
  private readonly other = new Map<GroupKey, Waiter>();

  /** Live entries (counted when asked: registering and taking a waiter count only their stream's). */
  get size(): number {
    let n = this.other.size;
    for (const st of this.streams.values()) n += st.live;
    return n;
  }

  /** The stream of (rid, pasid), made when `create`; null when it has none or does not fit a number. */
  private stream(rid: number, pasid: number, create: boolean): Stream | null {
    // The stream used last, by two compares (its numbers fit: they were checked when it was remembered).
    if (rid === this.lastRid && pasid === this.lastPasid) return this.lastStream;
    const p = pasid + 1;
    // `(x & mask) === x` holds only for an integer in [0, mask].
    if ((rid & 0xffff) !== rid || (p & 0x1fffff) !== p) return null;
    const key = rid * 0x200000 + p;
    let st = this.streams.get(key) ?? null;
    if (st === null) {
      if (!create) return null;
      // Streams kept while they have no waiter, before a new one drops the empty ones: 64.
      if (this.streamCount >= 64) this.dropIdle();
      st = { slots: new Array<Waiter | null>(SLOT_GROUPS).fill(null), live: 0 };
      this.streams.set(key, st);
      this.streamCount = this.streams.size;
    }
    this.lastRid = rid;
    this.lastPasid = pasid;
    this.lastStream = st;
    return st;
  }

  /**
   * Registers `w` as the waiter of the group; false, having changed nothing, when the group already has
   * one. One lookup of the stream, where a check and then a set made two.
   */
  add(rid: number, pasid: number, grpid: number, w: Waiter): boolean {
    // 511 is SLOT_GROUPS - 1, a literal here and in take: a module constant is a load and a hole check
    // in compiled code, and every page request registers a waiter and takes it. The stream used last is
    // compared here, not in a call of stream(), which the page request's compiled code did not inline.
    const st = (grpid & 511) !== grpid ? null : rid === this.lastRid && pasid === this.lastPasid ? this.lastStream : this.stream(rid, pasid, true);
    if (st === null) return this.addOther(rid, pasid, grpid, w);
    if (st.slots[grpid] !== null) return false;
    st.slots[grpid] = w;
    st.live++;
    return true;
  }

  /** add for a group without a slot (see WaiterTable). */
  private addOther(rid: number, pasid: number, grpid: number, w: Waiter): boolean {
    const key = groupKey(rid, pasid, grpid);
    if (this.other.has(key)) return false;
    this.other.set(key, w);
    return true;
  }

  /** The waiter of the group, forgotten; null when there is none. */
  take(rid: number, pasid: number, grpid: number): Waiter | null {
    // The stream used last, inline; any other (or none: lastStream is null then) through takeOther.
    const st = rid === this.lastRid && pasid === this.lastPasid && (grpid & 511) === grpid ? this.lastStream : null;
    if (st === null) return this.takeOther(rid, pasid, grpid);
    const w = st.slots[grpid];
    if (w !== null) {
      st.slots[grpid] = null;
      st.live--;
    }
    return w;
  }

  /** take for a group of another stream than the last one, or without a slot. */
  private takeOther(rid: number, pasid: number, grpid: number): Waiter | null {
    if ((grpid & 511) === grpid) {
      const st = this.stream(rid, pasid, false);
      if (st !== null) {
        const w = st.slots[grpid];
        if (w !== null) {
          st.slots[grpid] = null;
          st.live--;
        }
        return w;
      }
      if ((rid & 0xffff) === rid && ((pasid + 1) & 0x1fffff) === pasid + 1) return null;
    }
    const key = groupKey(rid, pasid, grpid);
    const w = this.other.get(key);
    if (w === undefined) return null;
    this.other.delete(key);
    return w;
  }

  /** Forgets the streams without waiters (a bound on what many short-lived PASIDs leave behind; `stream` calls it before it makes a 65th). */
  private dropIdle(): void {
    for (const [k, st] of this.streams) if (st.live === 0) this.streams.delete(k);
    this.streamCount = this.streams.size;
    this.lastRid = -1;
    this.lastStream = null;
  }
}

/** The groups of one unit, page requests and stalls in separate name spaces (a PRG index is not a stall tag). */
class GroupSpace {
  /**
   * The device waiting for the response to each outstanding group. One per key: a function never reuses
   * an outstanding PRG index (PCIe) or stall tag, so a response reaches exactly the request it answers.
   */
  readonly waiters = new WaiterTable();
  /** Partial page requests waiting for their group's LAST request. */
  readonly partial = new Map<GroupKey, IommuFault[]>();
  readonly stallWaiters = new WaiterTable();
  readonly stallPartial = new Map<GroupKey, IommuFault[]>();
}

/** The resolve function of the promise created last (a shared executor: no closure per promise). */
let capturedResolve: Waiter | null = null;
function captureResolve(resolve: Waiter): void {
  capturedResolve = resolve;
}
/** A promise whose resolve function is registered as the waiter of the group (see addWaiter). */
function waiterPromise(waiters: WaiterTable, rid: number, pasid: number, grpid: number): Promise<number> {
  const promise = new Promise<number>(captureResolve);
  const resolve = capturedResolve!;
  capturedResolve = null;
  addWaiter(waiters, rid, pasid, grpid, resolve);
  return promise;
}

/** Counters of a host's fault pipeline since it was created (FaultPipeline.stats). */
export interface PipelineStats {
  /** Page requests devices sent, whether or not they fit the page request queue. */
  pageRequests: number;
  /** Stalled transactions (stall model), each answered once like a one-request group. */
  stalls: number;
  /** Responses user space (or a tool) sent for a group or stall. */
  responses: number;
  /** Responses the kernel sent on its own: queue overflow, no handler, a dropped or refused request, groups of a detaching device. */


  autoResponses: number;
  /** Responses to a group already answered, ignored. */
  duplicateResponses: number;
  /** Unrecoverable faults devices reported. */
  faults: number;
  /** Faults delivered as vEVENTs to a vIOMMU's queue. */
  vevents: number;
  /** Faults written to the host log (no vEVENTQ took them). */
  logged: number;
  /** Records lost because the fault/event or page request queue was full. */
  overflows: number;
}


export class FaultPipeline {
  private readonly queues: UnitQueues[] = [];
  readonly stats: PipelineStats = { pageRequests: 0, stalls: 0, responses: 0, autoResponses: 0, duplicateResponses: 0, faults: 0, vevents: 0, logged: 0, overflows: 0 };
  /**
   * Answered groups of the numbers path, for the next page requests: nothing outside the pipeline and
   * the fault queue ever holds one (stages and traces are shown fresh IommuFaults, never a group), and
   * the queue forgets a group before answering it. The one answered last waits in `spareGroup` (a field,
   * not an array's push and pop), those before it in `groupPool`.
   */
  private spareGroup: IopfGroup | null = null;
  private readonly groupPool: IopfGroup[] = [];
  /** No stage and no tracer: nobody outside the pipeline and the fault queue sees a page request (the numbers path). */
  private readonly unwatched: boolean;
  /**
   * Every microtask of the pipeline hangs off this promise: `then` queues one job, without the AsyncResource
   * and bound function Node's queueMicrotask makes per call. A field, not a module constant (a load and a
   * hole check in compiled code).
   */
  private readonly resolved: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: PipelineHost,
    private readonly stages: readonly FaultStage[],
    private readonly log: HostLog,
    /** Tools that watch the pipeline (FAULT_TRACE); null on the hot path. */
    private readonly trace: FaultTrace | null = null,
  ) {
    this.unwatched = stages.length === 0 && trace === null;
  }

  private unitQueues(unit: number): UnitQueues {
    const q = this.queues[unit];
    return q !== undefined ? q : this.newUnitQueues(unit);
  }

  /** The queues of a unit seen for the first time (out of unitQueues, which stays small enough to be inlined). */
  private newUnitQueues(unit: number): UnitQueues {
    let q = this.queues[unit];
    if (!q) {
      const d = this.host.queueDepths(unit);
      q = {
        faults: new HardwareQueue('fault', d.faults),
        pageRequests: new HardwareQueue('page-request', d.pageRequests),
        scheduled: false,
        drain: NO_DRAIN,
        space: new GroupSpace(),
        partialGroups: 0,
        codec: undefined,
        pageRequestsOk: false,
        inPlace: false,
        fields: false,
        screens: false,
        numbers: false,
        responseRecord: NO_RECORD,
      };
      q.drain = this.interruptThread(q, unit);
      this.queues[unit] = q;
    }
    return q;
  }

  /** The unit's queues with its codec and the flags of that codec (looked up until the unit has one). */
  private unitWithCodec(unit: number): UnitQueues {
    const q = this.queues[unit];
    // The common case, small enough to be inlined: the unit's codec, which never changes, is known.
    if (q !== undefined && q.codec !== undefined) return q;
    return this.refreshCodec(unit);
  }

  /** unitWithCodec for a unit seen for the first time or that has no codec (yet). */
  private refreshCodec(unit: number): UnitQueues {
    const q = this.unitQueues(unit);
    const codec = this.host.codec(unit);
    if (codec !== q.codec) {
      q.codec = codec;
      q.pageRequestsOk = codecPageRequests(codec);
      q.inPlace = codecPageRequestsInPlace(codec);
      q.fields = codecPageRequestFields(codec);
      q.screens = typeof codec?.screenPageRequest === 'function';
      q.numbers = q.fields && this.unwatched;
      q.responseRecord = q.inPlace ? new Uint8Array(codec!.pageResponseSize!) : NO_RECORD;
    }
    return q;
  }

  hardwareQueues(unit: number): { faults: HardwareQueue; pageRequests: HardwareQueue } {
    return this.unitQueues(unit);
  }

  /**
   * Device side of PRI: sends one page request and resolves with the response code when its group is
   * answered (-1 at once for a request that is not LAST). Records are drained by the interrupt thread in a
   * microtask, like a threaded IRQ.
   */
  pageRequest(dev: PipelineDevice, access: FailedAccess): Promise<number> {
    // No codec, or one without page requests (virtio-iommu): nothing can carry the request.
    if (!this.unitWithCodec(dev.unitIndex).pageRequestsOk) return Promise.resolve(PAGE_RESP_INVALID);
    if (!access.last) {
      this.sendRequest(dev, access, null);
      return Promise.resolve(-1);
    }
    const promise = new Promise<number>(captureResolve);
    const resolve = capturedResolve!;
    capturedResolve = null;
    this.sendRequest(dev, access, resolve);
    return promise;
  }

  /**
   * pageRequest for a device's own DMA engine: the LAST request of a group whose response goes to `sink`
   * (from a microtask) instead of resolving a promise, so that a faulting transfer allocates no promise
   * per page request. Throws what pageRequest would reject with.
   */
  sendPageRequest(dev: PipelineDevice, access: FailedAccess & { readonly last: true }, sink: PageResponseSink): void {
    if (!this.unitWithCodec(dev.unitIndex).pageRequestsOk) {
      this.deferResponse(sink, PAGE_RESP_INVALID);
      return;
    }
    this.sendRequest(dev, access, sink);
  }

  /**
   * sendPageRequest with the request in numbers (`f.last` must be true), for a unit whose codec encodes
   * from them (PageRequestFieldsCodec): nothing allocated. Returns false, having done nothing, when the
   * codec cannot: the caller then sends the FailedAccess through sendPageRequest.
   */
  sendPageRequestFields(dev: PipelineDevice, f: Readonly<PageRequestFields>, sink: PageResponseSink): boolean {
    const unit = dev.unitIndex;
    const q = this.unitWithCodec(unit);
    // `!== true`: one compare, where a truthiness test of a field checks every kind of value.
    if (q.fields !== true || f.last !== true) return false;
    const codec = q.codec as FaultCodec & PageRequestFieldsCodecOf;
    this.stats.pageRequests++;
    const waiters = q.space.waiters;
    addWaiter(waiters, f.rid, f.pasid, f.grpid, sink);
    const record = q.pageRequests.slot(codec.pageRequestSize);
    try {
      codec.encodePageRequestFields(f, record);
    } catch (e) {
      // The codec refused the request: nothing was sent, nobody waits for a response.
      waiters.take(f.rid, f.pasid, f.grpid);
      throw e;
    }
    this.queueRequest(dev, q, record, f.rid, f.pasid, f.grpid, true);
    return true;
  }

  /** Queues the page request record; `waiter` (LAST requests only) hears the group's response. */
  private sendRequest(dev: PipelineDevice, access: FailedAccess, waiter: Waiter | null): void {
    const q = this.unitWithCodec(dev.unitIndex);
    const codec = q.codec!;
    this.stats.pageRequests++;
    const waiters = q.space.waiters;
    if (waiter !== null) addWaiter(waiters, access.rid, access.pasid, access.grpid, waiter);
    // The record goes straight into a slot of the queue when the codec can write in place.
    let record: Uint8Array;
    try {
      if (q.inPlace) {
        record = q.pageRequests.slot(codec.pageRequestSize!);
        codec.encodePageRequestInto!(access, record);
      } else record = codec.encodePageRequest!(access);
    } catch (e) {
      // The codec refused the request: nothing was sent, nobody waits for a response.
      if (waiter !== null) waiters.take(access.rid, access.pasid, access.grpid);
      throw e;
    }
    this.queueRequest(dev, q, record, access.rid, access.pasid, access.grpid, access.last);
  }

  /** Pushes an encoded page request (a slot when `q.inPlace`) and schedules the interrupt thread; a full queue answers it. */
  private queueRequest(dev: PipelineDevice, q: UnitQueues, record: Uint8Array, rid: number, pasid: number, grpid: number, last: boolean): void {
    // The rare cases are calls: what V8 inlines into a compiled caller is bounded by bytecode size, and the
    // page request's path is one compiled function.
    if (q.pageRequests.push(record) !== true) {
      this.requestLost(dev, rid, pasid, grpid, last);
      return;
    }
    if (this.trace !== null) this.traceRecord(dev, q, record);
    if (q.scheduled !== true) {
      q.scheduled = true;
      void this.resolved.then(q.drain);
    }
  }

  /** Queue full: the request is lost, and the hardware answers the device itself. */
  private requestLost(dev: PipelineDevice, rid: number, pasid: number, grpid: number, last: boolean): void {
    this.trace?.event({ step: 'overflow', unit: dev.unitIndex, queue: 'page-request' });
    this.stats.overflows++;
    this.log.write(`${this.host.unitName(dev.unitIndex)}: page request queue overflow, request from ${dev.bdf} dropped`);
    if (last) this.complete(dev.unitIndex, rid, pasid, grpid, PAGE_RESP_FAILURE, true, false);
  }

  /** A tool may keep what it is shown: a copy of a slot, which the queue reuses. */
  private traceRecord(dev: PipelineDevice, q: UnitQueues, record: Uint8Array): void {
    this.trace?.event({ step: 'record', unit: dev.unitIndex, queue: 'page-request', record: q.inPlace ? record.slice() : record });
  }

  /**
   * Responses waiting for their sinks' microtask: the first of a hop (the common case of a device waiting for
   * one group at a time) in two fields, the others in a ring of [sink, code] pairs that only grows.
   */
  private firstSink: PageResponseSink | null = null;
  private firstCode = 0;
  private readonly deferredSinks: (PageResponseSink | null)[] = [];
  private readonly deferredCodes: number[] = [];
  private deferredHead = 0;
  private deferredTail = 0;
  private deferredScheduled = false;

  /** Tells `sink` its code from a microtask; every response queued before that microtask runs goes in the same hop. */
  private deferResponse(sink: PageResponseSink, code: number): void {
    if (this.deferredScheduled === true || this.deferredHead !== this.deferredTail) {
      this.deferLater(sink, code);
      return;
    }
    this.firstSink = sink;
    this.firstCode = code;
    this.deferredScheduled = true;
    void this.resolved.then(this.deliverDeferred);
  }

  /** deferResponse behind other responses: into the ring (the hop is scheduled, or a sink that threw left some). */
  private deferLater(sink: PageResponseSink, code: number): void {
    this.deferredSinks[this.deferredTail] = sink;
    this.deferredCodes[this.deferredTail++] = code;
    if (this.deferredScheduled === true) return;
    this.deferredScheduled = true;
    void this.resolved.then(this.deliverDeferred);
  }

  /** The responses queued so far, in order (the first, then the ring); those their sinks cause are left for the next microtask. */
  private readonly deliverDeferred = (): void => {
    this.deferredScheduled = false;
    const first = this.firstSink;
    this.firstSink = null;
    const end = this.deferredTail;
    try {
      if (first !== null) first.pageResponse(this.firstCode);
      while (this.deferredHead < end) {
        const i = this.deferredHead++;
        const sink = this.deferredSinks[i]!;
        this.deferredSinks[i] = null;
        sink.pageResponse(this.deferredCodes[i]);
      }
    } finally {
      // A sink that threw leaves the rest for the next hop: none is ever dropped.
      if (this.deferredHead === this.deferredTail) this.deferredHead = this.deferredTail = 0;
      else if (!this.deferredScheduled) {
        this.deferredScheduled = true;
        void this.resolved.then(this.deliverDeferred);
      }
    }
  };

  /**
   * Device side of the stall model: the transaction stalls, the unit writes a stall record (event with
   * Stall = 1 and the tag in `access.grpid`) into its fault/event queue, and the promise resolves with
   * the code that the resume command carried (PAGE_RESP_SUCCESS: retry; anything else: terminated).
   */
  stall(dev: PipelineDevice, access: FailedAccess): Promise<number> {
    const codec = this.host.codec(dev.unitIndex);
    if (!codec?.encodeStall) return Promise.resolve(PAGE_RESP_INVALID);
    const q = this.unitQueues(dev.unitIndex);
    // The record first: a codec that throws on this access leaves no waiter behind, which would never be
    // woken and would refuse the next stall under the same tag.
    const record = codec.encodeStall({ ...access, recoverable: true, kind: 'stall', last: true });
    const promise = waiterPromise(q.space.stallWaiters, access.rid, access.pasid, access.grpid);
    this.stats.stalls++;
    if (!q.faults.push(record)) {
      // Model approximation: no back-pressure on the event queue, so a stall whose record does not fit
      // is terminated at once rather than left stalled with nobody told.
      this.trace?.event({ step: 'overflow', unit: dev.unitIndex, queue: 'fault' });
      this.stats.overflows++;
      this.log.write(`${this.host.unitName(dev.unitIndex)}: fault queue overflow, stalled transaction from ${dev.bdf} terminated`);
      this.complete(dev.unitIndex, access.rid, access.pasid, access.grpid, PAGE_RESP_FAILURE, true, true);
      return promise;
    }
    this.trace?.event({ step: 'record', unit: dev.unitIndex, queue: 'fault', record });
    this.schedule(dev.unitIndex);
    return promise;
  }

  /** Device side of an unrecoverable fault. Resolves with the normalized fault once it was handled. */
  reportFault(dev: PipelineDevice, access: FailedAccess): void {
    const codec = this.host.codec(dev.unitIndex);
    this.stats.faults++;
    if (!codec) {
      this.log.write(`${dev.bdf}: DMA fault at 0x${access.addr.toString(16)} (${access.failure})`);
      this.stats.logged++;
      return;
    }
    const q = this.unitQueues(dev.unitIndex);
    const record = codec.encodeFault(access);
    if (!q.faults.push(record)) {
      this.trace?.event({ step: 'overflow', unit: dev.unitIndex, queue: 'fault' });
      this.stats.overflows++;
      this.log.write(`${this.host.unitName(dev.unitIndex)}: fault queue overflow, fault from ${dev.bdf} lost`);
      return;
    }
    this.trace?.event({ step: 'record', unit: dev.unitIndex, queue: 'fault', record });
    this.schedule(dev.unitIndex);
  }

  private schedule(unit: number): void {
    const q = this.unitQueues(unit);
    if (q.scheduled) return;
    q.scheduled = true;
    void this.resolved.then(q.drain);
  }

  /**
   * The driver's interrupt thread of unit `unit` (whose queues are `q`): decodes every queued record and
   * routes it. The microtask runs this function itself (a closure per unit, made once), not a closure that
   * calls a method: one call fewer per page request. The fault/event records, the general page request path
   * and the overflow report are calls, so that the common case (page requests in numbers) stays small.
   */
  private interruptThread(q: UnitQueues, unit: number): () => void {
    return () => {
      // The unit's codec, once it has one, never changes (PipelineHost.codec).
      if (q.codec === undefined) this.refreshCodec(unit);
      q.scheduled = false;
      if (q.faults.length !== 0) this.drainFaults(q, unit);
      // Only a codec with page requests ever queues one (pageRequest above).
      if (q.numbers === true) {
        // Nobody but the fault queue sees these requests: each is decoded into the numbers of a pooled group.
        const codec = q.codec as FaultCodec & PageRequestFieldsCodecOf;
        // One pop per request (two call sites would be inlined twice, out of the same budget).
        for (;;) {
          const rec = q.pageRequests.pop();
          if (rec === null) break;
          let g = this.spareGroup;
          if (g !== null) this.spareGroup = null;
          else g = this.groupPool.pop() ?? new IopfGroup(this);
          codec.decodePageRequestFields(rec, g.req);
          this.routeFields(g, unit, q);
        }
      } else if (q.pageRequestsOk === true) this.drainPageRequests(q, unit);
      if (q.faults.overflow === true || q.pageRequests.overflow === true) this.reportOverflow(q, unit);
    };
  }

  /** drain's fault/event records (stall records included). */
  private drainFaults(q: UnitQueues, unit: number): void {
    const codec = q.codec!;
    for (let rec = q.faults.pop(); rec !== null; rec = q.faults.pop()) {
      const f = codec.decodeFault(rec, unit);
      this.trace?.event({ step: 'decoded', fault: f });
      // A stalled transaction is recoverable: it takes the page-request route (arm_smmu_handle_event -> iopf).
      if (f.kind === 'stall') this.routePageRequest(f);
      else this.routeFault(f);
    }
  }

  /** drain's page requests when they are not decoded into numbers: each one an IommuFault that stages and traces see. */
  private drainPageRequests(q: UnitQueues, unit: number): void {
    const codec = q.codec!;
    for (let rec = q.pageRequests.pop(); rec !== null; rec = q.pageRequests.pop()) {
      const f = codec.decodePageRequest!(rec, unit);
      this.trace?.event({ step: 'decoded', fault: f });
      if (codec.screenPageRequest && this.refusedByDriver(codec, f)) continue;
      this.routePageRequest(f);
    }
  }

  /**
   * The driver clears the sticky overflow bits after reporting them, with its own lines when it has some
   * (AMD-Vi: "IOMMU Event log restarting").
   */
  private reportOverflow(q: UnitQueues, unit: number): void {
    const codec = q.codec!;
    if (codec.renderOverflow) {
      if (q.faults.overflow) for (const line of codec.renderOverflow('fault', this.host.unitName(unit))) this.log.write(line);
      if (q.pageRequests.overflow) for (const line of codec.renderOverflow('page-request', this.host.unitName(unit))) this.log.write(line);
    }
    q.faults.overflow = false;
    q.pageRequests.overflow = false;
  }

  /**
   * routePageRequest for a request decoded into the numbers of `g` (no stages, no trace): a LAST request
   * with no partial group pending and a handler becomes `g` in the fault queue; anything else takes the
   * general route with an IommuFault, and `g` goes back to the pool.
   */
  private routeFields(g: IopfGroup, unit: number, q: UnitQueues): void {
    const r = g.req;
    if (q.screens === true || r.last !== true || q.partialGroups > 0) {
      this.routeFieldsAsFault(g, unit, q);
      return;
    }
    const dev = this.deviceOf(unit, r.rid);
    const idev = dev !== undefined ? dev.idev : null;
    const hwpt = idev !== null ? idev.attachedFor(r.pasid) : null;
    const fault = hwpt !== null ? (hwpt.fault as FaultQueue | null) : null;
    if (fault === null) {
      this.noHandler(g, unit, q);
      return;
    }
    g.initNumbers(unit, idev!, hwpt!, q);
    fault.addGroup(g);
  }

  /** routeFields for a request that a screen, a partial group or no LAST bit sends the general way: as an IommuFault. */
  private routeFieldsAsFault(g: IopfGroup, unit: number, q: UnitQueues): void {
    const f = pageRequestFault(g.req, unit);
    this.groupPool.push(g);
    if (q.screens && this.refusedByDriver(q.codec!, f)) return;
    this.routePageRequest(f);
  }

  /** routeFields without an iopf handler: the driver answers the device itself. */
  private noHandler(g: IopfGroup, unit: number, q: UnitQueues): void {
    const r = g.req;
    this.groupPool.push(g);
    this.complete(unit, r.rid, r.pasid, r.grpid, PAGE_RESP_INVALID, true, false, q);
  }

  /** (unit << 16 | rid) of the last deviceOf() answer, and that answer: a device's requests come in runs. */
  private lastRid = -1;
  private lastDevice: PipelineDevice | undefined = undefined;

  /** host.deviceByRid(unit, rid), remembered for the next request from the same requester (a 16-bit rid). */
  private deviceOf(unit: number, rid: number): PipelineDevice | undefined {
    return unit * 0x10000 + rid === this.lastRid && (rid & 0xffff) === rid ? this.lastDevice : this.lookUpDevice(unit, rid);
  }

  /** deviceOf for another requester than the last one. */
  private lookUpDevice(unit: number, rid: number): PipelineDevice | undefined {
    if ((rid & 0xffff) !== rid) return this.host.deviceByRid(unit, rid);
    this.lastDevice = this.host.deviceByRid(unit, rid);
    this.lastRid = unit * 0x10000 + rid;
    return this.lastDevice;
  }

  private runStages(f: IommuFault): boolean {
    for (const s of this.stages) if (!s.process(f)) return false;
    return true;
  }

  /** Page requests and stalls: group, find the handler, or answer INVALID when there is none. */
  /**
   * The driver's own verdict on a page request (FaultCodec.screenPageRequest): a refused request is answered
   * at once with the driver's code, for every request of a group (AMD-Vi completes each PPR entry).
   */
  private refusedByDriver(codec: FaultCodec, f: IommuFault): boolean {
    const verdict = codec.screenPageRequest?.(f, this.host.deviceByRid(f.unit, f.rid)?.info, this.host.unitName(f.unit)) ?? null;
    if (verdict === null) return false;
    for (const line of verdict.lines) this.log.write(line);
    this.trace?.event({ step: 'routed', fault: f, sink: 'refused' });
    this.complete(f.unit, f.rid, f.pasid, f.grpid, verdict.code, true, false);
    return true;
  }

  private routePageRequest(f: IommuFault): void {
    const stall = f.kind === 'stall';
    if (!this.runStages(f)) {
      this.trace?.event({ step: 'routed', fault: f, sink: 'dropped' });
      if (f.last) this.complete(f.unit, f.rid, f.pasid, f.grpid, PAGE_RESP_INVALID, true, stall);
      return;
    }
    const q = this.unitQueues(f.unit);
    const space = q.space;
    const partial = stall ? space.stallPartial : space.partial;
    // A group of one request (LAST, nothing pending: the common case) has no array at all.
    let rest: IommuFault[] | null = null;
    if (partial.size > 0) {
      const key = groupKey(f.rid, f.pasid, f.grpid);
      const pending = partial.get(key);
      if (pending !== undefined) {
        pending.push(f);
        if (!f.last) return;
        partial.delete(key);
        q.partialGroups = space.partial.size;
        rest = pending;
      }
    }
    if (rest === null && !f.last) {
      partial.set(groupKey(f.rid, f.pasid, f.grpid), [f]);
      q.partialGroups = space.partial.size;
      return;
    }
    const dev = this.host.deviceByRid(f.unit, f.rid);
    const idev = dev?.idev ?? null;
    const hwpt = idev?.attachments.get(f.pasid) ?? null;
    const fault = (hwpt?.fault ?? null) as FaultQueue | null;
    if (!idev || !hwpt || !fault) {
      // No iopf handler: the driver answers the device itself (a stall is resumed with Abort).
      this.trace?.event({ step: 'routed', fault: f, sink: 'no-handler' });
      this.complete(f.unit, f.rid, f.pasid, f.grpid, PAGE_RESP_INVALID, true, stall);
      return;
    }
    this.trace?.event({ step: 'routed', fault: f, sink: 'fault-queue' });
    // A group that stages or a trace have seen is never pooled: what they were shown stays as it was.
    const g = new IopfGroup(this);
    g.init(f.unit, rest ?? [f], stall, idev, hwpt, q);
    fault.addGroup(g);
  }

  /**
   * Sends a page response (or, for a stall, the resume command) through the vendor's encoding and
   * wakes the device waiting for the group (rid, pasid, grpid) in the unit's page request or stall space.
   * @internal
   */
  complete(unit: number, rid: number, pasid: number, grpid: number, code: number, auto: boolean, stall: boolean, known?: UnitQueues): void {
    if (auto) this.stats.autoResponses++;
    else this.stats.responses++;
    // `known`: the unit's queues, which a group routed there remembers (its codec never changes).
    const q = known !== undefined ? known : this.unitWithCodec(unit);
    if (!stall && q.inPlace) {
      const deviceCode = this.responseInPlace(q, rid, pasid, grpid, code);
      // The trace gets a copy of the record, which the next response overwrites.
      this.trace?.event({ step: 'response', unit, rid, pasid, grpid, code, deviceCode, auto, stall, record: q.responseRecord.slice() });
      this.wake(q.space.waiters, rid, pasid, grpid, deviceCode);
      return;
    }
    const codec = q.codec;
    let deviceCode = code;
    // One response record in flight at a time: the codec reads it synchronously.
    const r = this.response;
    r.rid = rid;
    r.pasid = pasid;
    r.grpid = grpid;
    r.code = code;
    let record: Uint8Array | null = null;
    if (stall) {
      if (codec?.encodeResume && codec.decodeResume) {
        record = codec.encodeResume(r);
        deviceCode = codec.decodeResume(record).code;
      }
    } else if (q.pageRequestsOk) {
      record = codec!.encodePageResponse!(r);
      deviceCode = codec!.decodePageResponse!(record).code;
    }
    this.trace?.event({ step: 'response', unit, rid, pasid, grpid, code, deviceCode, auto, stall, record });
    this.wake(stall ? q.space.stallWaiters : q.space.waiters, rid, pasid, grpid, deviceCode);
  }

  /**
   * complete() for a group of the numbers path (IopfGroup held in numbers): a page request group of a unit
   * with an in-place codec, in a pipeline without a trace, so without complete's other cases; then the
   * group goes back to the pool (nothing reads it once answered). One function where there were three
   * (the group's numbers read here, not passed down), so that the write(2) that answers it stays one piece
   * of compiled code.
   * @internal
   */
  answerNumbers(g: IopfGroup, q: UnitQueues, code: number): void {
    const req = g.req;
    // One response record in flight at a time: the codec reads it synchronously.
    const r = this.response;
    r.rid = req.rid;
    r.pasid = req.pasid;
    r.grpid = req.grpid;
    r.code = code;
    const codec = q.codec!;
    const record = q.responseRecord;
    codec.encodePageResponseInto!(r, record);
    codec.decodePageResponseInto!(record, this.deviceView);
    this.recycle(g);
    this.wake(q.space.waiters, r.rid, r.pasid, r.grpid, this.deviceView.code);
  }

  /**
   * The page response encoded into the unit's response record (an in-place codec's) and decoded back as the
   * device reads it: the code the device hears.
   */
  private responseInPlace(q: UnitQueues, rid: number, pasid: number, grpid: number, code: number): number {
    // One response record in flight at a time: the codec reads it synchronously.
    const r = this.response;
    r.rid = rid;
    r.pasid = pasid;
    r.grpid = grpid;
    r.code = code;
    const codec = q.codec!;
    codec.encodePageResponseInto!(r, q.responseRecord);
    codec.decodePageResponseInto!(q.responseRecord, this.deviceView);
    return this.deviceView.code;
  }

  /** Tells the device waiting for the group (if any) the code it decoded from the response. */
  private wake(waiters: WaiterTable, rid: number, pasid: number, grpid: number, deviceCode: number): void {
    const w = waiters.take(rid, pasid, grpid);
    if (w === null) return;
    if (typeof w === 'function') w(deviceCode);
    else this.deferResponse(w, deviceCode);
  }

  /** An answered group of the numbers path, back to the pool. */
  private recycle(g: IopfGroup): void {
    if (this.spareGroup === null) this.spareGroup = g;
    else this.pool(g);
  }

  /** recycle when the spare is taken: at most 64 more are kept (a literal: a module constant is a load and a hole check in compiled code). */
  private pool(g: IopfGroup): void {
    if (this.groupPool.length < 64) this.groupPool.push(g);
  }

  /** The response complete() hands the codec (reused: nothing allocated per response). */
  private readonly response: PageResponse = { rid: 0, pasid: 0, grpid: 0, code: 0 };
  /** What the device decodes from an in-place codec's response record (UnitQueues.responseRecord). */
  private readonly deviceView: PageResponse = { rid: 0, pasid: 0, grpid: 0, code: 0 };

  private routeFault(f: IommuFault): void {
    if (!this.runStages(f)) {
      this.trace?.event({ step: 'routed', fault: f, sink: 'dropped' });
      return;
    }
    const dev = this.host.deviceByRid(f.unit, f.rid);
    const idev = dev?.idev ?? null;
    const hwpt: Hwpt | null = idev?.attachments.get(f.pasid) ?? idev?.attachments.get(-1) ?? null;
    const codec = this.host.codec(f.unit)!;
    if (idev && hwpt instanceof HwptNested && hwpt.viommu && codec.encodeVEvent) {
      const vdev = idev.vdevice as Vdevice | null;
      if (vdev && vdev.viommu === hwpt.viommu) {
        const ev = codec.encodeVEvent(f, vdev.virtId);
        const q = ev ? (vdev.viommu.veventqs.get(ev.type) as { report(d: Uint8Array): void } | undefined) : undefined;
        if (ev && q) {
          this.trace?.event({ step: 'routed', fault: f, sink: 'vevent' });
          q.report(ev.data);
          this.stats.vevents++;
          return;
        }
      }
    }
    this.trace?.event({ step: 'routed', fault: f, sink: 'log' });
    for (const line of codec.renderLog(f, dev?.bdf ?? ridToBdf(f.rid), this.host.unitName(f.unit))) this.log.write(line);
    this.stats.logged++;
  }

  /** Groups a detach left waiting: nothing recoverable may stay unanswered (see device.ts autoRespondFaults). */
  get outstanding(): number {
    let n = 0;
    for (const q of this.queues) if (q) n += q.space.waiters.size + q.space.stallWaiters.size;
    return n;
  }
}

/** The codec members the numbers path uses (PageRequestFieldsCodec and the request size). */
type PageRequestFieldsCodecOf = PageRequestFieldsCodec & { readonly pageRequestSize: number };

/** UnitQueues.drain until the queues' interrupt thread is made. */
const NO_DRAIN = (): void => {};

/** The response record of a unit whose codec has no in-place members (none is ever written). */
const NO_RECORD = new Uint8Array(0);

/**
 * A delivered page request group (iopf_group), or a stall as a one-request group: what the fault
 * queue holds until user space answers it. It is its own attach handle (`handle` returns itself).
 * A group of one page request decoded by a PageRequestFieldsCodec holds it in numbers (`req`, with
 * `faults` null) and is pooled once answered; any other holds its IommuFaults.
 */
class IopfGroup implements FaultGroup {
  devId = 0;
  pasid = 0;
  idev: IommufdDevice | null = null;
  hwpt: Hwpt | null = null;
  cookie = 0;
  private answered = false;
  private unit = 0;
  /** The queues of the unit the group came from (the pipeline's, for the lifetime of the host). */
  private queues: UnitQueues | undefined = undefined;
  /** The LAST request in numbers: the whole group when `faults` is null; otherwise its rid, pasid and grpid. */
  readonly req: PageRequestFields = { rid: 0, pasid: 0, addrLo: 0, addrHi: 0, perm: 0, grpid: 0, last: true, reason: 0, reasonText: '', stage2: false };
  /** The requests in order (LAST last), or null for a group of one request held in `req`. */
  private faults: readonly IommuFault[] | null = null;
  private stall = false;
  /** request(i)'s record for a group of IommuFaults. */
  private converted: PageRequestFields | null = null;

  constructor(private readonly pipeline: FaultPipeline) {}

  /** init for a group of one request held in numbers (`req`, already decoded), in fewer bytes of bytecode (see routeFields). */
  initNumbers(unit: number, idev: IommufdDevice, hwpt: Hwpt, queues: UnitQueues | undefined): void {
    this.unit = unit;
    this.queues = queues;
    this.faults = null;
    this.stall = false;
    this.devId = idev.id;
    this.pasid = this.req.pasid;
    this.idev = idev;
    this.hwpt = hwpt;
    this.cookie = 0;
    this.answered = false;
  }

  /** Makes this the group of `faults` (null: of `req`, already decoded) routed to (idev, hwpt). */
  init(unit: number, faults: readonly IommuFault[] | null, stall: boolean, idev: IommufdDevice, hwpt: Hwpt, queues: UnitQueues | undefined): void {
    if (faults !== null) {
      const last = faults[faults.length - 1];
      this.req.rid = last.rid;
      this.req.pasid = last.pasid;
      this.req.grpid = last.grpid;
    }
    // The rest is initNumbers' (the group's PASID read from `req` after the lines above), then what a
    // group of IommuFaults or a stall has besides.
    this.initNumbers(unit, idev, hwpt, queues);
    this.faults = faults;
    this.stall = stall;
  }

  get handle(): { readonly idev: object; readonly pasid: number; readonly hwpt: object } {
    return this as unknown as { readonly idev: object; readonly pasid: number; readonly hwpt: object };
  }

  get count(): number {
    return this.faults === null ? 1 : this.faults.length;
  }

  /** The i-th request as an IommuFault: a new object for a group held in numbers. */
  fault(i: number): IommuFault {
    return this.faults === null ? pageRequestFault(this.req, this.unit) : this.faults[i];
  }

  /** The i-th request's numbers (what read(2) writes), valid until the next call: nothing allocated for a group held in numbers. */
  request(i: number): Readonly<PageRequestFields> {
    if (this.faults === null) return this.req;
    const out = (this.converted ??= { ...this.req });
    pageRequestFieldsOf(this.faults[i], out);
    return out;
  }

  respond(code: number, auto = false): void {
    if (this.answered === true || this.faults !== null) {
      this.respondFaults(code, auto);
      return;
    }
    this.answered = true;
    // Held in numbers: only the numbers path (an in-place codec, no trace, not a stall) makes such a group.
    // The counter and the references let go here, not in answerNumbers: what V8 inlines into this function
    // (the compiled response) is bounded by the callees' bytecode, not by its own.
    const p = this.pipeline;
    if (auto === true) p.stats.autoResponses++;
    else p.stats.responses++;
    this.idev = null;
    this.hwpt = null;
    p.answerNumbers(this, this.queues!, code);
  }

  /** respond for a group answered already, or one of IommuFaults. */
  private respondFaults(code: number, auto: boolean): void {
    if (this.answered === true) {
      this.pipeline.stats.duplicateResponses++;
      return;
    }
    this.answered = true;
    const r = this.req;
    this.pipeline.complete(this.unit, r.rid, r.pasid, r.grpid, code, auto, this.stall, this.queues);
  }
}

/**
 * Registers the device waiting for a group's response. Refuses a second request under an outstanding
 * (RID, PASID, index): that breaks the PCIe rule the device model keeps (host/pri.ts), and its response
 * could not be told apart from the first one's.
 */
function addWaiter(waiters: WaiterTable, rid: number, pasid: number, grpid: number, w: Waiter): void {
  if (waiters.add(rid, pasid, grpid, w) !== true) throwOutstanding(rid, pasid, grpid);
}

function throwOutstanding(rid: number, pasid: number, grpid: number): never {
  throw new RangeError(`page request group ${String(groupKey(rid, pasid, grpid))} is already outstanding: a group index is never reused before its response`);
}

/** The key of a group inside its unit's page request (or stall) space: see GroupKey. */
function groupKey(rid: number, pasid: number, grpid: number): GroupKey {
  const p = pasid + 1;
  // `(x & mask) === x` holds only for an integer in [0, mask].
  if ((rid & 0xffff) === rid && (p & 0x1fffff) === p && (grpid & 0xffff) === grpid) return (rid * 0x200000 + p) * 0x10000 + grpid;
  return `${rid}:${pasid}:${grpid}`;
}

export function ridToBdf(rid: number, segment = 0): string {
  const hex = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${hex(segment, 4)}:${hex(rid >> 8, 2)}:${hex((rid >> 3) & 0x1f, 2)}.${rid & 7}`;
}

