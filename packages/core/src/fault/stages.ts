/**
 * Pluggable stages of the fault pipeline. A user registers extra stages (tracing, statistics, rate
 * limiting) under FAULT_STAGE in the host's container; they run in registration order between the
 * vendor decode and the router, and may drop a fault (a dropped page request is answered INVALID).
 */
import type { InjectionToken } from 'tsyringe';
import type { IommuFault } from '../driver/fault.js';

/** A user-supplied step of the fault pipeline, registered under FAULT_STAGE; it sees every decoded fault. */
export interface FaultStage {
  /** Name for traces and error messages. */
  readonly name: string;
  /** Return false to drop the fault. */
  process(fault: Readonly<IommuFault>): boolean;
}

/** tsyringe token for FaultStage (multi-registered; stages run in registration order). */
export const FAULT_STAGE: InjectionToken<FaultStage> = Symbol.for('ioasid.FaultStage');

/**
 * What the pipeline did with one record, for tools that show a fault's journey (the web page's
 * page-request view, `ioasid run` traces). Records are the vendor's real bytes, as the hardware wrote
 * them or as the driver wrote the response.
 */
export type FaultTraceEvent =
  /** The unit wrote a record into its fault/event queue or page request queue. */
  | {
      /** Which step of the journey this event reports. */
      readonly step: 'record';
      /** Index of the IOMMU unit in the host. */
      readonly unit: number;
      /** Which hardware queue took it: the fault/event queue or the page request queue. */
      readonly queue: 'fault' | 'page-request';
      /** The record's bytes in the vendor's format. */
      readonly record: Uint8Array;
    }
  /** The queue was full: the record was lost (a page request is answered by the hardware itself). */
  | {
      /** Which step of the journey this event reports. */
      readonly step: 'overflow';
      /** Index of the IOMMU unit in the host. */
      readonly unit: number;
      /** The queue that was full. */
      readonly queue: 'fault' | 'page-request';
    }
  /** The driver's interrupt thread decoded a record. */
  | {
      /** Which step of the journey this event reports. */
      readonly step: 'decoded';
      /** The record in vendor-neutral form. */
      readonly fault: Readonly<IommuFault>;
    }
  /** Where the fault went: a HWPT's fault queue (as a group), a vEVENTQ, the kernel log, or nowhere (no handler: answered INVALID). */
  | {
      /** Which step of the journey this event reports. */
      readonly step: 'routed';
      /** The decoded fault or page request that was routed. */
      readonly fault: Readonly<IommuFault>;
      /** Its destination; 'dropped' by a FaultStage, 'refused' by the driver's screenPageRequest. */
      readonly sink: 'fault-queue' | 'vevent' | 'log' | 'no-handler' | 'dropped' | 'refused';
    }
  /** A page response (or resume command) on its way to the device, in the vendor's encoding. */
  | {
      /** Which step of the journey this event reports. */
      readonly step: 'response';
      /** Index of the IOMMU unit in the host. */
      readonly unit: number;
      /** Requester id (or StreamID) of the device answered. */
      readonly rid: number;
      /** PASID of the group, -1 without one. */
      readonly pasid: number;
      /** PRG index of the group, or the stall tag. */
      readonly grpid: number;
      /** The code user space (or the kernel, when `auto`) answered, and what the device decoded from the record. */
      readonly code: number;
      /** The code the device reads back from the encoded response (equal to `code` unless the encoding cannot carry it). */
      readonly deviceCode: number;
      /** The kernel answered on its own (overflow, no handler, dropped, refused), not user space. */
      readonly auto: boolean;
      /** A stall resume rather than a PRI page response. */
      readonly stall: boolean;
      /** The encoded response or resume command; null when the codec has none. */
      readonly record: Uint8Array | null;
    };

/** Receives every FaultTraceEvent of a host's pipeline; register one under FAULT_TRACE. */
export interface FaultTrace {
  /** Called synchronously for each step, in pipeline order. */
  event(e: FaultTraceEvent): void;
}

/** tsyringe token of the host's FaultTrace (none by default). */
export const FAULT_TRACE: InjectionToken<FaultTrace> = Symbol.for('ioasid.FaultTrace');

/** Where unrecoverable faults nobody else takes end up: the kernel log. */
export interface HostLog {
  /** Appends one line, without its trailing newline, as the driver would print it. */
  write(line: string): void;
  /** The lines kept, oldest first. */
  readonly lines: readonly string[];
}

/** tsyringe token of the host's HostLog (a RingLog by default); a plugin may override it as `service:ioasid.HostLog`. */
export const HOST_LOG: InjectionToken<HostLog> = Symbol.for('ioasid.HostLog');

/** The default host log: keeps the most recent lines (like the kernel ring buffer). */
export class RingLog implements HostLog {
  private readonly buf: string[] = [];
  constructor(private readonly capacity = 4096) {}
  write(line: string): void {
    this.buf.push(line);
    if (this.buf.length > this.capacity) this.buf.splice(0, this.buf.length - this.capacity);
  }
  get lines(): readonly string[] {
    return this.buf;
  }
}

/** A ready-made statistics stage. */
export class FaultStatistics implements FaultStage {
  /** Always 'statistics'. */
  readonly name = 'statistics';
  /** Faults seen, by kind. */
  readonly byKind = {
    /** Unrecoverable faults. */
    dma: 0,
    /** Page requests. */
    'page-request': 0,
    /** Stalled transactions. */
    stall: 0,
  };
  /** Faults seen, by the vendor's reason text (IommuFault.reasonText). */
  readonly byReason = new Map<string, number>();

  process(f: Readonly<IommuFault>): boolean {
    this.byKind[f.kind]++;
    this.byReason.set(f.reasonText, (this.byReason.get(f.reasonText) ?? 0) + 1);
    return true;
  }
}
