/** The `ioasid` command line. */
import { Command } from 'commander';
import { runDemo } from './commands/demo.js';
import { consoleOutput } from './output.js';

export function buildProgram(): Command {
  const program = new Command('ioasid')
    .description('An executable model of the Linux iommufd (/dev/iommu) uAPI and IOMMU hardware')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('demo')
    .description('walk through the model: IOAS, map/unmap/copy through the uAPI')
    .addHelpText('after', '\nExample:\n  $ ioasid demo\n')
    .action(() => {
      runDemo(consoleOutput());
    });
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 bad usage). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return 2;
    process.stderr.write(`ioasid: ${err.message ?? String(e)}\n`);
    return 1;
  }
}
