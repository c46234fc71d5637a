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
import { PAGE_RESP_FAILURE, PAGE_RESP_INVALID, type FailedAccess, type FaultCodec, type IommuFault } from '../driver/fault.js';
import type { DeviceInfo } from '../driver/vendor.js';
import { HwptNested, type Hwpt } from '../iommufd/hwpt.js';
import type { IommufdDevice } from '../iommufd/device.js';
import type { FaultGroup, FaultQueue } from '../iommufd/eventq.js';
import type { Vdevice } from '../iommufd/viommu.js';
import { HardwareQueue } from './queue.js';
import type { FaultStage, HostLog } from './stages.js';

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
  codec(unit: number): FaultCodec | undefined;
  unitName(unit: number): string;
  deviceByRid(unit: number, rid: number): PipelineDevice | undefined;
  queueDepths(unit: number): { faults: number; pageRequests: number };
}

interface UnitQueues {
  faults: HardwareQueue;
  pageRequests: HardwareQueue;
  scheduled: boolean;
}

type Waiter = (code: number) => void;

export interface PipelineStats {
  pageRequests: number;
  /** Stalled transactions (stall model), each answered once like a one-request group. */
  stalls: number;
  responses: number;
  autoResponses: number;
  duplicateResponses: number;
  faults: number;
  vevents: number;
  logged: number;
  overflows: number;
}

export class FaultPipeline {
  private readonly queues: UnitQueues[] = [];
  /** Devices waiting for the response to a group, by group key. */
  private readonly waiters = new Map<string, Waiter[]>();
  /** Partial page requests waiting for their group's LAST request. */
  private readonly partial = new Map<string, IommuFault[]>();
  readonly stats: PipelineStats = { pageRequests: 0, stalls: 0, responses: 0, autoResponses: 0, duplicateResponses: 0, faults: 0, vevents: 0, logged: 0, overflows: 0 };

  constructor(
    private readonly host: PipelineHost,
    private readonly stages: readonly FaultStage[],
    private readonly log: HostLog,
  ) {}

  private unitQueues(unit: number): UnitQueues {
    let q = this.queues[unit];
    if (!q) {
      const d = this.host.queueDepths(unit);
      q = { faults: new HardwareQueue('fault', d.faults), pageRequests: new HardwareQueue('page-request', d.pageRequests), scheduled: false };
      this.queues[unit] = q;
    }
    return q;
  }

  hardwareQueues(unit: number): { faults: HardwareQueue; pageRequests: HardwareQueue } {
    return this.unitQueues(unit);
  }

  /**
   * Device side of PRI: sends one page request and resolves with the response code when its group is
   * answered. Records are drained by the interrupt thread in a microtask, like a threaded IRQ.
   */
  pageRequest(dev: PipelineDevice, access: FailedAccess): Promise<number> {
    const codec = this.host.codec(dev.unitIndex);
    if (!codec) return Promise.resolve(PAGE_RESP_INVALID);
    const key = groupKey(dev.unitIndex, access.rid, access.pasid, access.grpid, false);
    this.stats.pageRequests++;
    const q = this.unitQueues(dev.unitIndex);
    const promise = access.last ? new Promise<number>((resolve) => this.addWaiter(key, resolve)) : Promise.resolve(-1);
    if (!q.pageRequests.push(codec.encodePageRequest(access))) {
      // Queue full: the request is lost, and the hardware answers the device itself.
      this.stats.overflows++;
      this.log.write(`${this.host.unitName(dev.unitIndex)}: page request queue overflow, request from ${dev.bdf} dropped`);
      if (access.last) this.complete(key, dev.unitIndex, access.rid, access.pasid, access.grpid, PAGE_RESP_FAILURE, true, false);
      return promise;
    }
    this.schedule(dev.unitIndex);
    return promise;
  }

  /**
   * Device side of the stall model: the transaction stalls, the unit writes a stall record (event with
   * Stall = 1 and the tag in `access.grpid`) into its fault/event queue, and the promise resolves with
   * the code that the resume command carried (PAGE_RESP_SUCCESS: retry; anything else: terminated).
   */
  stall(dev: PipelineDevice, access: FailedAccess): Promise<number> {
    const codec = this.host.codec(dev.unitIndex);
    if (!codec?.encodeStall) return Promise.resolve(PAGE_RESP_INVALID);
    const key = groupKey(dev.unitIndex, access.rid, access.pasid, access.grpid, true);
    this.stats.stalls++;
    const q = this.unitQueues(dev.unitIndex);
    const promise = new Promise<number>((resolve) => this.addWaiter(key, resolve));
    if (!q.faults.push(codec.encodeStall({ ...access, recoverable: true, kind: 'stall', last: true }))) {
      // Model approximation: no back-pressure on the event queue, so a stall whose record does not fit
      // is terminated at once rather than left stalled with nobody told.
      this.stats.overflows++;
      this.log.write(`${this.host.unitName(dev.unitIndex)}: fault queue overflow, stalled transaction from ${dev.bdf} terminated`);
      this.complete(key, dev.unitIndex, access.rid, access.pasid, access.grpid, PAGE_RESP_FAILURE, true, true);
      return promise;
    }
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
    if (!q.faults.push(codec.encodeFault(access))) {
      this.stats.overflows++;
      this.log.write(`${this.host.unitName(dev.unitIndex)}: fault queue overflow, fault from ${dev.bdf} lost`);
      return;
    }
    this.schedule(dev.unitIndex);
  }

  private schedule(unit: number): void {
    const q = this.unitQueues(unit);
    if (q.scheduled) return;
    q.scheduled = true;
    queueMicrotask(() => this.drain(unit));
  }

  /** The driver's interrupt thread: decode every queued record and route it. */
  drain(unit: number): void {
    const q = this.unitQueues(unit);
    q.scheduled = false;
    const codec = this.host.codec(unit)!;
    for (let rec = q.faults.pop(); rec !== null; rec = q.faults.pop()) {
      const f = codec.decodeFault(rec, unit);
      // A stalled transaction is recoverable: it takes the page-request route (arm_smmu_handle_event -> iopf).
      if (f.kind === 'stall') this.routePageRequest(f);
      else this.routeFault(f);
    }
    for (let rec = q.pageRequests.pop(); rec !== null; rec = q.pageRequests.pop()) this.routePageRequest(codec.decodePageRequest(rec, unit));
    if (q.faults.overflow || q.pageRequests.overflow) {
      // The driver clears the sticky overflow bits after reporting them.
      q.faults.overflow = false;
      q.pageRequests.overflow = false;
    }
  }

  private runStages(f: IommuFault): boolean {
    for (const s of this.stages) if (!s.process(f)) return false;
    return true;
  }

  /** Page requests and stalls: group, find the handler, or answer INVALID when there is none. */
  private routePageRequest(f: IommuFault): void {
    const stall = f.kind === 'stall';
    const key = groupKey(f.unit, f.rid, f.pasid, f.grpid, stall);
    if (!this.runStages(f)) {
      if (f.last) this.complete(key, f.unit, f.rid, f.pasid, f.grpid, PAGE_RESP_INVALID, true, stall);
      return;
    }
    let group = this.partial.get(key);
    if (group) {
      group.push(f);
      if (!f.last) return;
      this.partial.delete(key);
    } else if (f.last) {
      // A group of one request (the common case): it never waits in `partial`.
      group = [f];
    } else {
      this.partial.set(key, [f]);
      return;
    }
    const dev = this.host.deviceByRid(f.unit, f.rid);
    const idev = dev?.idev ?? null;
    const hwpt = idev?.attachments.get(f.pasid) ?? null;
    const fault = (hwpt?.fault ?? null) as FaultQueue | null;
    if (!idev || !hwpt || !fault) {
      // No iopf handler: the driver answers the device itself (a stall is resumed with Abort).
      this.complete(key, f.unit, f.rid, f.pasid, f.grpid, PAGE_RESP_INVALID, true, stall);
      return;
    }
    let answered = false;
    const g: FaultGroup = {
      devId: idev.id,
      pasid: f.pasid,
      handle: { idev, pasid: f.pasid, hwpt },
      faults: group,
      cookie: 0,
      respond: (code, auto = false) => {
        if (answered) {
          this.stats.duplicateResponses++;
          return;
        }
        answered = true;
        this.complete(key, f.unit, f.rid, f.pasid, f.grpid, code, auto, stall);
      },
    };
    fault.addGroup(g);
  }

  /**
   * Sends a page response (or, for a stall, the resume command) through the vendor's encoding and
   * wakes the device; `key` is groupKey(unit, rid, pasid, grpid, stall).
   */
  private complete(key: string, unit: number, rid: number, pasid: number, grpid: number, code: number, auto: boolean, stall: boolean): void {
    if (auto) this.stats.autoResponses++;
    else this.stats.responses++;
    const codec = this.host.codec(unit);
    let deviceCode = code;
    const r = { rid, pasid, grpid, code };
    if (stall) {
      if (codec?.encodeResume && codec.decodeResume) deviceCode = codec.decodeResume(codec.encodeResume(r)).code;
    } else if (codec) deviceCode = codec.decodePageResponse(codec.encodePageResponse(r)).code;
    const ws = this.waiters.get(key);
    if (!ws) return;
    this.waiters.delete(key);
    for (const w of ws) w(deviceCode);
  }

  private addWaiter(key: string, w: Waiter): void {
    const ws = this.waiters.get(key);
    if (ws) ws.push(w);
    else this.waiters.set(key, [w]);
  }

  private routeFault(f: IommuFault): void {
    if (!this.runStages(f)) return;
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
          q.report(ev.data);
          this.stats.vevents++;
          return;
        }
      }
    }
    for (const line of codec.renderLog(f, dev?.bdf ?? ridToBdf(f.rid), this.host.unitName(f.unit))) this.log.write(line);
    this.stats.logged++;
  }

  /** Groups a detach left waiting: nothing recoverable may stay unanswered (see onDetach). */
  get outstanding(): number {
    let n = 0;
    for (const ws of this.waiters.values()) n += ws.length;
    return n;
  }
}

/** Page request groups and stalls live in separate name spaces (a PRG index is not a stall tag). */
function groupKey(unit: number, rid: number, pasid: number, grpid: number, stall: boolean): string {
  return `${stall ? 's' : 'p'}${unit}:${rid}:${pasid}:${grpid}`;
}

export function ridToBdf(rid: number, segment = 0): string {
  const hex = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${hex(segment, 4)}:${hex(rid >> 8, 2)}:${hex((rid >> 3) & 0x1f, 2)}.${rid & 7}`;
}
