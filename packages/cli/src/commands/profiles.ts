/** `ioasid profiles`: the built-in host profiles that plan accepts by name. */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { table, toJson } from '../io.js';
import { builtinProfiles } from '../profiles.js';

export function registerProfiles(program: Command, ctx: () => CommandContext): void {
  program
    .command('profiles')
    .description('list the built-in host profiles (vendor presets of real machines, and mixed hosts)')
    .option('--json', 'print the profiles themselves as JSON')
    .addHelpText('after', '\nExamples:\n  $ ioasid profiles\n  $ ioasid plan mixed-vtd\n')
    .action(async (opts: { json?: boolean }) => {
      const c = ctx();
      const all = builtinProfiles(await c.vendors(), await c.presets());
      if (opts.json) {
        c.io.stdout.write(toJson(all));
        return;
      }
      const rows = [['ID', 'UNITS', 'DEVICES', 'NAME'].map((h) => c.c.bold(h))];
      for (const b of all) rows.push([b.id, String(b.profile.units.length), String(b.profile.devices.length), b.profile.name]);
      table(rows).forEach((l) => c.out(l));
    });
}
