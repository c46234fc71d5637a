/**
 * Pluggable stages of the fault pipeline. A user registers extra stages (tracing, statistics, rate
 * limiting) under FAULT_STAGE in the host's container; they run in registration order between the
 * vendor decode and the router, and may drop a fault (a dropped page request is answered INVALID).
 */
import type { InjectionToken } from 'tsyringe';
import type { IommuFault } from '../driver/fault.js';

export interface FaultStage {
  readonly name: string;
  /** Return false to drop the fault. */
  process(fault: Readonly<IommuFault>): boolean;
}

export const FAULT_STAGE: InjectionToken<FaultStage> = Symbol.for('ioasid.FaultStage');

/**
 * What the pipeline did with one record, for tools that show a fault's journey (the web page's
 * page-request view, `ioasid run` traces). Records are the vendor's real bytes, as the hardware wrote
 * them or as the driver wrote the response.
 */
export type FaultTraceEvent =
  /** The unit wrote a record into its fault/event queue or page request queue. */
  | { readonly step: 'record'; readonly unit: number; readonly queue: 'fault' | 'page-request'; readonly record: Uint8Array }
  /** The queue was full: the record was lost (a page request is answered by the hardware itself). */
  | { readonly step: 'overflow'; readonly unit: number; readonly queue: 'fault' | 'page-request' }
  /** The driver's interrupt thread decoded a record. */
  | { readonly step: 'decoded'; readonly fault: Readonly<IommuFault> }
  /** Where the fault went: a HWPT's fault queue (as a group), a vEVENTQ, the kernel log, or nowhere (no handler: answered INVALID). */
  | { readonly step: 'routed'; readonly fault: Readonly<IommuFault>; readonly sink: 'fault-queue' | 'vevent' | 'log' | 'no-handler' | 'dropped' | 'refused' }
  /** A page response (or resume command) on its way to the device, in the vendor's encoding. */
  | {
      readonly step: 'response';
      readonly unit: number;
      readonly rid: number;
      readonly pasid: number;
      readonly grpid: number;
      /** The code user space (or the kernel, when `auto`) answered, and what the device decoded from the record. */
      readonly code: number;
      readonly deviceCode: number;
      readonly auto: boolean;
      readonly stall: boolean;
      readonly record: Uint8Array | null;
    };

/** Receives every FaultTraceEvent of a host's pipeline; register one under FAULT_TRACE. */
export interface FaultTrace {
  event(e: FaultTraceEvent): void;
}

export const FAULT_TRACE: InjectionToken<FaultTrace> = Symbol.for('ioasid.FaultTrace');

/** Where unrecoverable faults nobody else takes end up: the kernel log. */
export interface HostLog {
  write(line: string): void;
  readonly lines: readonly string[];
}

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
  readonly name = 'statistics';
  readonly byKind = { dma: 0, 'page-request': 0, stall: 0 };
  readonly byReason = new Map<string, number>();
  process(f: Readonly<IommuFault>): boolean {
    this.byKind[f.kind]++;
    this.byReason.set(f.reasonText, (this.byReason.get(f.reasonText) ?? 0) + 1);
    return true;
  }
}
