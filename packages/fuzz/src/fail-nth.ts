/**
 * The fail-nth sweep (the kernel's iommufd_fail_nth.c idea) over the creation scenario of one vendor
 * preset: each step is run with the 1st, 2nd, ... injected failure until it succeeds with nothing
 * injected. After each failure: the errno is the one the failing site gives (INJECT_SITES), the state
 * snapshot equals the one before the call, and the step then succeeds. At the end every close order
 * must give everything back.
 */
import { IommufdError } from '@ioasid/core';
import { FailNth, INJECT_SITES, NO_FAULT_INJECTION, type InjectSite } from '@ioasid/core/driver';
import type { VendorHost } from './hosts.js';
import { STEPS, StepSkipped, closeAll, newScenario } from './scenario.js';
import { diffSnapshots, leakCheck, snapshot } from './snapshot.js';

export interface StepReport {
  readonly step: string;
  /** Failure points injected (each one a separate failing call). */
  points: number;
  /** The sites they hit. */
  readonly sites: Set<InjectSite>;
  /** The errno the step fails with when nothing is injected (the preset cannot do it), or null. */
  unsupported: string | null;
}

export interface SweepReport {
  readonly preset: string;
  readonly steps: StepReport[];
  points: number;
  readonly violations: string[];
}

/** Bound on the failure points of one step: far above any step's allocations. */
const MAX_POINTS = 5000;

export function errOf(e: unknown): string {
  return e instanceof IommufdError ? `${e.code} (${e.message})` : `${(e as Error)?.name ?? 'throw'}: ${String((e as Error)?.message ?? e)}`;
}

export function sweepPreset(vh: VendorHost): SweepReport {
  const s = newScenario(vh);
  const report: SweepReport = { preset: vh.name, steps: [], points: 0, violations: [] };
  const fail = (msg: string) => report.violations.push(`${vh.name}: ${msg}`);
  for (const step of STEPS) {
    const r: StepReport = { step: step.name, points: 0, sites: new Set(), unsupported: null };
    report.steps.push(r);
    for (let n = 1; n <= MAX_POINTS; n++) {
      const before = snapshot(s.host, s.fd);
      const inj = new FailNth(n);
      s.host.injector = inj;
      let err: unknown = null;
      try {
        step.run(s);
      } catch (e) {
        err = e;
      } finally {
        s.host.injector = NO_FAULT_INJECTION;
      }
      if (err === null) break;
      const d = diffSnapshots(before, snapshot(s.host, s.fd));
      if (err instanceof StepSkipped) {
        r.unsupported = err.message;
        break;
      }
      if (!inj.hit) {
        // Not an injected failure: the preset cannot do this step (e.g. no nesting). It must still be clean.
        r.unsupported = errOf(err);
        if (!(err instanceof IommufdError)) fail(`${step.name} threw ${errOf(err)}`);
        if (d) fail(`${step.name} failed (${errOf(err)}) and changed ${d}`);
        break;
      }
      r.points++;
      r.sites.add(inj.hitSite!);
      const want = INJECT_SITES[inj.hitSite!];
      if (!(err instanceof IommufdError) || err.code !== want) fail(`${step.name} #${n} at ${inj.hitSite}: ${errOf(err)}, expected ${want}`);
      if (d) fail(`${step.name} #${n} at ${inj.hitSite} failed and changed ${d}`);
      if (n === MAX_POINTS) fail(`${step.name} still fails after ${MAX_POINTS} injected failures`);
    }
    report.points += r.points;
  }
  closeAll(s);
  for (const l of leakCheck(s.host, s.fd, s.base)) fail(`after close: ${l}`);
  return report;
}

/** Runs the whole scenario without injection and closes its files in `order` (of [iommufd, ...queues]). */
export function closeOrderLeaks(vh: VendorHost, order: (files: number[]) => number[]): string[] {
  const s = newScenario(vh);
  for (const step of STEPS) {
    try {
      step.run(s);
    } catch {
      // Unsupported on this preset: the sweep reports those.
    }
  }
  closeAll(s, order([s.fd.fd, ...s.queueFds]));
  return leakCheck(s.host, s.fd, s.base);
}
