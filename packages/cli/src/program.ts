/**
 * The `ioasid` command line. A command's module (and what it imports: the vendor plugins, the planner)
 * is loaded only when that command runs or shows its own help, so `ioasid --help` and a command load
 * only what they use. The top level lists each command by its summary below; a test checks that every
 * summary is the description its module registers.
 */
import { Command } from 'commander';
import { CommandContext } from './context.js';
import { CliError, processIo, type CliIo } from './io.js';

type Register = (program: Command, ctx: () => CommandContext) => void;

interface CommandEntry {
  name: string;
  summary: string;
  /** Registers the full command (options, arguments, help, action) on a program. */
  load: () => Promise<Register>;
}

/** The demo is one action without options: registered here, its module loaded when it runs. */
const registerDemo: Register = (program, ctx) => {
  program
    .command('demo')
    .description(COMMANDS[0].summary)
    .addHelpText('after', '\nExample:\n  $ ioasid demo\n')
    .action(async () => {
      const [{ runDemo }, { consoleOutput }] = await Promise.all([import('./commands/demo.js'), import('./output.js')]);
      await runDemo(consoleOutput(ctx().io.stdout));
    });
};

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'demo', summary: 'walk through the model: IOAS, map/unmap/copy through the uAPI', load: () => Promise.resolve(registerDemo) },
  { name: 'run', summary: 'run a scripted scenario of uAPI commands, device attaches and DMA, with a trace', load: async () => (await import('./commands/run.js')).registerRun },
  {
    name: 'bench',
    summary: 'measure the hot paths: walks, IOTLB hits, map/unmap, IOAS_MAP calls, fault round trips, memory per page',
    load: async () => (await import('./commands/bench.js')).registerBench,
  },
  { name: 'probe', summary: 'read a kernel log (dmesg, dmesg -T, journalctl -k) and build a host profile of its IOMMUs', load: async () => (await import('./commands/probe.js')).registerProbe },
  {
    name: 'capture',
    summary: "collect this host's IOMMU files (sysfs, PCI config, kernel log) into one archive for ioasid probe --sysfs elsewhere",
    load: async () => (await import('./commands/capture.js')).registerCapture,
  },
  { name: 'plan', summary: 'choose the vIOMMU for a VM: model, properties, how each device is backed, QEMU and libvirt options', load: async () => (await import('./commands/plan.js')).registerPlan },
  {
    name: 'decode',
    summary: "explain a capability register, a fault record or a kernel log line, by the specification's field names",
    load: async () => (await import('./commands/decode.js')).registerDecode,
  },
  { name: 'profiles', summary: 'list the built-in host profiles (vendor presets of real machines, and mixed hosts)', load: async () => (await import('./commands/profiles.js')).registerProfiles },
];

function configure(program: Command, io: CliIo): Command {
  return program
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
}

/**
 * The top-level program. Each command is a stand-in that takes its words as they are; when it runs,
 * it loads the command's module and parses them with the full command (so `ioasid plan --help` and
 * `ioasid help plan` show the full help, and options are checked by the real definition).
 */
export function buildProgram(io: CliIo = processIo(), ctx: CommandContext = new CommandContext(io)): Command {
  const program = configure(new Command('ioasid'), io)
    .description('An executable model of the Linux iommufd (/dev/iommu) uAPI and IOMMU hardware')
    .option('--plugin <package-or-path>', 'load a third-party vendor plugin into every command (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .enablePositionalOptions();
  // Global options come before the command: `ioasid --plugin ./riscv.js decode riscv-iommu ...`.
  program.hook('preAction', () => ctx.usePlugins(program.opts<{ plugin: string[] }>().plugin));
  const runFull = async (entry: CommandEntry, words: readonly string[]): Promise<void> => {
    const full = configure(new Command('ioasid'), io);
    (await entry.load())(full, () => ctx);
    await full.parseAsync([entry.name, ...words], { from: 'user' });
  };
  for (const entry of COMMANDS) {
    program
      .command(entry.name)
      .description(entry.summary)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .passThroughOptions()
      .action((_opts: object, cmd: Command) => runFull(entry, cmd.args));
  }
  // `help <command>` shows the full command's help, which only its module knows.
  program.helpCommand(false);
  program
    .command('help')
    .description('display help for command')
    .argument('[command]')
    .action(async (name: string | undefined) => {
      const entry = COMMANDS.find((e) => e.name === name);
      if (entry) return runFull(entry, ['--help']);
      if (name !== undefined) program.error(`error: unknown command '${name}'`, { code: 'commander.unknownCommand', exitCode: 2 });
      program.outputHelp();
    });
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
