/**
 * One benchmark process: `worker.ts <workload> [--quick]`. Runs the workload (warm-up included) and
 * prints its result as one JSON line on stdout; run.ts spawns it with --expose-gc and the
 * @ioasid/source condition so that every run starts from a fresh heap and fresh JIT state.
 */
import { WORKERS } from './spec.js';
import { FULL, QUICK, runWorkload } from './workloads.js';

async function main(): Promise<void> {
  const [name, ...flags] = process.argv.slice(2);
  if (name === undefined || !(name in WORKERS)) {
    process.stderr.write(`usage: worker.ts <${Object.keys(WORKERS).join('|')}> [--quick]\n`);
    process.exitCode = 2;
    return;
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await runWorkload(name, flags.includes('--quick') ? QUICK : FULL);
  // The share of a CPU this process got: well below 1 means other jobs starved it and its wall-clock
  // figures measure the machine's load as much as the code.
  const c = process.cpuUsage(c0);
  result.extra.cpu_share = Math.round(((c.user + c.system) / 1000 / (performance.now() - t0)) * 100) / 100;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
