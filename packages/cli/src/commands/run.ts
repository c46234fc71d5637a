/** `ioasid run <scenario.yaml>`: a scripted sequence of uAPI commands and DMA, traced step by step. */
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { CommandContext } from '../context.js';
import { CliError, readInput, toJson } from '../io.js';
import { checkScenario, runScenario, type TraceEntry } from '../scenario/engine.js';
import { resolveProfiles } from './plan.js';

interface RunOpts {
  json?: boolean;
  host?: string;
  allowUnsafeInterrupts?: boolean;
}

export function registerRun(program: Command, ctx: () => CommandContext): void {
  program
    .command('run')
    .description('run a scripted scenario of uAPI commands, device attaches and DMA, with a trace')
    .argument('<scenario>', 'a YAML or JSON scenario file, or - for standard input')
    .option('--host <profile>', 'host profile file or built-in id (overrides the scenario\'s `host:`)')
    .option('--json', 'print the trace as JSON')
    .option('--allow-unsafe-interrupts', 'set iommufd.allow_unsafe_interrupts=1: bind devices whose MSIs the platform cannot isolate (virtio-iommu, RISC-V guests) instead of EPERM')
    .addHelpText(
      'after',
      `
A scenario names its host and lists steps; each step is one operation. Values saved with "as:" are used
later as $name; a step may expect an errno (expect: { errno: EINVAL }) or data (expect: { text: ... }).

  host: granite-rapids
  steps:
    - ioas_alloc: { as: ioas }
    - mmap: { length: 0x100000, as: buf }
    - poke: { va: $buf, text: hello }
    - ioas_map: { ioas: $ioas, user_va: $buf, length: 0x100000, iova: 0x100000 }
    - bind: { device: "0000:f2:01.0", as: dev }
    - attach: { device: "0000:f2:01.0", pt: $ioas }
    - dma_read: { device: "0000:f2:01.0", iova: 0x100000, length: 5, expect: { text: hello } }

Examples:
  $ ioasid run packages/cli/scenarios/pri-fault.yaml
  $ ioasid run my-scenario.yaml --host mixed-vtd --json

Exit status: 0 when every step behaved as expected, 1 when one did not, 2 on bad usage.`,
    )
    .action(async (file: string, opts: RunOpts) => runRun(ctx(), file, opts));
}

export async function runRun(c: CommandContext, file: string, opts: RunOpts): Promise<void> {
  const text = await readInput(c.io, file);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CliError(`${file} is not valid YAML: ${(e as Error).message}`, 1, 'check the indentation around the line named above');
  }
  let scenario;
  try {
    scenario = checkScenario(doc);
  } catch (e) {
    throw new CliError(`${file}: ${(e as Error).message}`, 1, 'see `ioasid run --help` for the scenario format');
  }
  const hostSpec = opts.host ?? (doc as { host?: unknown }).host;
  if (typeof hostSpec !== 'string') throw new CliError(`${file}: no host: name a built-in profile (ioasid profiles) or a profile file`, 1);
  const [profile] = await resolveProfiles(c, [hostSpec]);
  const plugins = (await c.pluginHost()).plugins;
  const show = (t: TraceEntry) => {
    if (opts.json) return;
    const mark = t.ok ? c.c.green('ok ') : c.c.red('ERR');
    c.out(`${String(t.step).padStart(3)} ${mark} ${t.op.padEnd(14)} ${t.result}`);
  };
  if (!opts.json) c.out(`${scenario.name ?? file} on ${profile.name}`);
  const r = await runScenario(scenario, { plugins, profile, onTrace: show, allowUnsafeInterrupts: opts.allowUnsafeInterrupts === true });
  if (opts.json) c.io.stdout.write(toJson({ scenario: scenario.name ?? file, host: profile.name, ok: r.failed === null, trace: r.trace }));
  else c.out(r.failed ? c.c.red(`step ${r.failed.step} (${r.failed.op}) did not behave as expected`) : c.c.green(`all ${r.trace.length} steps behaved as expected`));
  if (r.failed) c.exitCode = 1;
}
