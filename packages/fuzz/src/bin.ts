/**
 * npm run fuzz -- [--calls N] [--seed S] [--session N] [--vendor vtd|smmuv3|amd-vi|virtio-iommu]
 * A long fuzz campaign on the real vendor presets; prints the rate and, for each violation, a shrunk
 * reproducer. Exit status 1 when anything was found.
 */
import { parseArgs } from 'node:util';
import { vendorHosts } from './hosts.js';
import { reproducer, runCampaign } from './campaign.js';

function bounded(name: string, v: string | undefined, def: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    process.stderr.write(`fuzz: --${name} must be an integer from 0 to ${max}\n`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({ options: { calls: { type: 'string' }, seed: { type: 'string' }, session: { type: 'string' }, vendor: { type: 'string' } } });
const calls = bounded('calls', values.calls, 100_000, 1e9);
const seed = bounded('seed', values.seed, 1, 0xffff_ffff);
const session = Math.max(1, bounded('session', values.session, 2000, 1e6));
const hosts = vendorHosts().filter((h) => !values.vendor || h.vendor === values.vendor);
if (hosts.length === 0) {
  process.stderr.write(`fuzz: no preset of vendor '${values.vendor}'\n`);
  process.exit(2);
}
let last = 0;
const rep = await runCampaign({
  calls,
  seed,
  sessionCalls: session,
  hosts,
  onProgress: (done, v) => {
    if (done - last >= 100_000 || done === calls) {
      last = done;
      process.stdout.write(`  ${done.toLocaleString('en')} calls, ${v} violation(s), rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB\n`);
    }
  },
});
const rate = rep.calls / (rep.ms / 1000);
process.stdout.write(
  `fuzz: ${rep.calls.toLocaleString('en')} calls (${rep.failedCalls.toLocaleString('en')} failed as intended) in ${rep.sessions} sessions over ${hosts.length} presets, ` +
    `${(rep.ms / 1000).toFixed(1)} s, ${Math.round(rate).toLocaleString('en')} calls/s, seed ${seed}: ${rep.findings.length} violation(s)\n`,
);
for (const [v, n] of Object.entries(rep.perVendor)) process.stdout.write(`  ${v}: ${n.toLocaleString('en')} calls\n`);
for (const f of rep.findings) process.stdout.write(`\n${reproducer(f)}\n`);
process.exitCode = rep.findings.length > 0 ? 1 : 0;
