/** `ioasid bench`: the workloads of docs/performance.md, each in its own process. */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { CliError } from '../io.js';
import { BENCH_METRICS, BenchUsageError, parseBenchArgs, runBench } from '../bench/run.js';

interface BenchOpts {
  json?: boolean;
  quick?: boolean;
  only?: string;
  runs?: string;
  cpuProf?: string;
}

export function registerBench(program: Command, ctx: () => CommandContext): void {
  program
    .command('bench')
    .description('measure the hot paths: walks, IOTLB hits, map/unmap, IOAS_MAP calls, fault round trips, memory per page')
    .option('--json', 'print one JSON object { workload: { value, unit } } and nothing else on stdout')
    .option('--quick', 'reduced counts (same code paths), for CI')
    .option('--only <workloads>', `comma-separated subset of: ${BENCH_METRICS.join(', ')}`)
    .option('--runs <n>', 'runs per workload; the median is reported (default 3, 1 with --quick)')
    .option('--cpu-prof <dir>', 'write a V8 CPU profile of each workload process into <dir>')
    .addHelpText('after', '\nExamples:\n  $ ioasid bench\n  $ ioasid bench --quick --only walk,iotlb_hit\n  $ ioasid bench --json > results.json\n')
    .action(async (opts: BenchOpts) => {
      const c = ctx();
      const argv: string[] = [];
      if (opts.json) argv.push('--json');
      if (opts.quick) argv.push('--quick');
      if (opts.only) argv.push('--only', opts.only);
      if (opts.runs) argv.push('--runs', opts.runs);
      if (opts.cpuProf) argv.push('--cpu-prof', opts.cpuProf);
      try {
        await runBench(parseBenchArgs(argv), c.io);
      } catch (e) {
        if (e instanceof BenchUsageError) throw new CliError(e.message, 2);
        throw new CliError(`the benchmark failed: ${(e as Error).message}`, 1);
      }
    });
}
