/**
 * A fuzz campaign: sessions over every vendor preset in turn, each a seeded stream of operations, until
 * `calls` operations ran. Every violation comes back with a shrunk reproducer.
 */
import type { VendorHost } from './hosts.js';
import { genOp, rng, runOps, shrink, violationKind, type Op, type Violation } from './fuzz.js';

export interface CampaignOptions {
  calls: number;
  seed: number;
  /** Operations per session (a fresh host each). */
  sessionCalls?: number;
  hosts: readonly VendorHost[];
  /** Stop after this many violations. */
  maxViolations?: number;
  onProgress?: (done: number, violations: number) => void;
}

export interface Finding {
  readonly preset: string;
  readonly sessionSeed: number;
  readonly violation: Violation;
  /** The shrunk operations that still show it. */
  readonly ops: readonly Op[];
}

export interface CampaignReport {
  calls: number;
  failedCalls: number;
  sessions: number;
  readonly findings: Finding[];
  /** Operations per vendor. */
  readonly perVendor: Record<string, number>;
  ms: number;
}

/** The seed of session `i` of a campaign: every session can be rerun alone. */
export function sessionSeed(seed: number, i: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0;
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignReport> {
  const per = o.sessionCalls ?? 2000;
  const started = performance.now();
  const rep: CampaignReport = { calls: 0, failedCalls: 0, sessions: 0, findings: [], perVendor: {}, ms: 0 };
  for (let i = 0; rep.calls < o.calls; i++) {
    const vh = o.hosts[i % o.hosts.length];
    const seed = sessionSeed(o.seed, i);
    const n = Math.min(per, o.calls - rep.calls);
    const r = rng(seed);
    const res = await runOps(vh, n, (s) => genOp(r, s), seed);
    rep.calls += n;
    rep.failedCalls += res.failed;
    rep.sessions++;
    rep.perVendor[vh.vendor] = (rep.perVendor[vh.vendor] ?? 0) + n;
    if (res.violation) {
      const upto = res.ops.slice(0, res.violation.index + 1);
      const small = await shrink(vh, upto, seed, violationKind(res.violation));
      rep.findings.push({ preset: vh.name, sessionSeed: seed, violation: res.violation, ops: small });
      if (rep.findings.length >= (o.maxViolations ?? 5)) break;
    }
    o.onProgress?.(rep.calls, rep.findings.length);
  }
  rep.ms = performance.now() - started;
  return rep;
}

/** A reproducer: a test body that replays the shrunk operations. */
export function reproducer(f: Finding): string {
  return [
    `// ${f.preset}: ${f.violation.what}`,
    `// session seed ${f.sessionSeed}; ${f.ops.length} operation(s) after shrinking`,
    `const vh = vendorHosts().find((h) => h.name === ${JSON.stringify(f.preset)})!;`,
    `const ops = ${JSON.stringify(f.ops)};`,
    `expect((await replay(vh, ops, ${f.sessionSeed})).violation).toBeNull();`,
  ].join('\n');
}
