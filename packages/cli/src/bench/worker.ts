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
  const result = await runWorkload(name, flags.includes('--quick') ? QUICK : FULL);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
