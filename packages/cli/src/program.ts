/** The `ioasid` command line. */
import { Command } from 'commander';
import { runDemo } from './commands/demo.js';
import { registerRun } from './commands/run.js';
import { registerBench } from './commands/bench.js';
import { registerDecode } from './commands/decode.js';
import { registerPlan } from './commands/plan.js';
import { registerProbe } from './commands/probe.js';
import { registerProfiles } from './commands/profiles.js';
import { CommandContext } from './context.js';
import { CliError, processIo, type CliIo } from './io.js';
import { consoleOutput } from './output.js';

export function buildProgram(io: CliIo = processIo(), ctx: CommandContext = new CommandContext(io)): Command {
  const program = new Command('ioasid')
    .description('An executable model of the Linux iommufd (/dev/iommu) uAPI and IOMMU hardware')
    .option('--plugin <package-or-path>', 'load a third-party vendor plugin into every command (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  program
    .command('demo')
    .description('walk through the model: IOAS, map/unmap/copy through the uAPI')
    .addHelpText('after', '\nExample:\n  $ ioasid demo\n')
    .action(async () => {
      await runDemo(consoleOutput(io.stdout));
    });
  // Global options come before the command: `ioasid --plugin ./riscv.js decode riscv-iommu ...`.
  program.hook('preAction', () => ctx.usePlugins(program.opts<{ plugin: string[] }>().plugin));
  registerRun(program, () => ctx);
  registerBench(program, () => ctx);
  registerProbe(program, () => ctx);
  registerPlan(program, () => ctx);
  registerDecode(program, () => ctx);
  registerProfiles(program, () => ctx);
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 bad usage). */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const ctx = new CommandContext(io);
  const program = buildProgram(io, ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return err.code === 'commander.executeSubCommandAsync' ? 1 : 2;
    if (e instanceof CliError) {
      io.stderr.write(`ioasid: ${e.message}\n`);
      if (e.hint) io.stderr.write(`  hint: ${e.hint}\n`);
      return e.exitCode;
    }
    io.stderr.write(`ioasid: ${err.message ?? String(e)}\n`);
    return 1;
  }
}
