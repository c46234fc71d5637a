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
