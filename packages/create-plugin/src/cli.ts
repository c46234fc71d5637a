/**
 * The command line: `create-ioasid-plugin <dir> --id <vendor-id> --name "<Vendor name>" [--package <npm name>] [--in-repo]`,
 * as `npm create @ioasid/plugin@latest -- <dir> --id ... --name ...` runs it.
 */
import { parseArgs } from 'node:util';
import { generatePlugin, type GenerateOptions } from './generate.js';
import type { Result } from './result.js';

/** The help text `create-ioasid-plugin --help` prints, and prints after a usage error. */
export const USAGE = `usage: create-ioasid-plugin <dir> --id <vendor-id> --name "<Vendor name>" [--package <npm name>] [--in-repo]

  <dir>           where the package goes (absent or empty)
  --id            vendor id: lowercase letters, digits and hyphens, e.g. acme-iommu
  --name          human vendor name, e.g. "Acme IOMMU"
  --package       npm package name (default: ioasid-<id>, or @ioasid/<id> with --in-repo)
  --in-repo       a package inside the ioasid monorepo (e.g. packages/<id>)
`;

/** Parses the command line into generator options. */
export function parseCommandLine(argv: readonly string[]): Result<GenerateOptions | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        id: { type: 'string' },
        name: { type: 'string' },
        package: { type: 'string' },
        'in-repo': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { ok: true, value: 'help' };
  if (positionals.length !== 1) return { ok: false, error: positionals.length === 0 ? 'a target directory is required' : `one target directory, got ${positionals.length}` };
  if (values.id === undefined) return { ok: false, error: '--id is required' };
  if (values.name === undefined) return { ok: false, error: '--name is required' };
  return {
    ok: true,
    value: { dir: positionals[0], id: values.id, name: values.name, ...(values.package !== undefined ? { packageName: values.package } : {}), inRepo: values['in-repo'] === true },
  };
}

/** Runs the command; returns the exit status. Output goes through `out` and `errOut`. */
export function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s), errOut: (s: string) => void = (s) => process.stderr.write(s)): number {
  const opts = parseCommandLine(argv);
  if (!opts.ok) {
    errOut(`create-ioasid-plugin: ${opts.error}\n\n${USAGE}`);
    return 2;
  }
  if (opts.value === 'help') {
    out(USAGE);
    return 0;
  }
  const r = generatePlugin(opts.value);
  if (!r.ok) {
    errOut(`create-ioasid-plugin: ${r.error}\n`);
    return 1;
  }
  const { dir, packageName, files, nextSteps } = r.value;
  out(`Wrote ${packageName} in ${dir}:\n${files.map((f) => `  ${f}\n`).join('')}\nNext steps:\n${nextSteps.map((s) => `  ${s}\n`).join('')}`);
  return 0;
}
