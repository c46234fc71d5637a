/**
 * `ioasid --plugin <package or path>`: third-party vendor plugins loaded into every command. A plugin
 * module exports an `IommuPlugin` (as `plugin`, as the default export, or under any name) and may export
 * `presets`, host profiles of real machines, which join the built-in profiles.
 *
 * The cores a plugin works with are its package's `peerDependencies['@ioasid/core']`: the nearest
 * package.json above the module is read, and a range that excludes the running core refuses the plugin.
 * A module whose package names no such peer (a single file beside a project) is loaded unchecked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { HostProfile } from '@ioasid/core';
import type { IommuPlugin } from '@ioasid/core/driver';
import { CliError } from './io.js';

export interface LoadedPluginModule {
  /** What the user wrote after --plugin. */
  readonly spec: string;
  readonly plugins: readonly IommuPlugin[];
  readonly presets: readonly HostProfile[];
}

function isPlugin(v: unknown): v is IommuPlugin {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Partial<IommuPlugin>;
  return typeof p.id === 'string' && typeof p.register === 'function';
}

function isProfile(v: unknown): v is HostProfile {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Partial<HostProfile>;
  return typeof p.name === 'string' && Array.isArray(p.units) && Array.isArray(p.devices);
}

/** A path when it looks like one (./x, ../x, /x, C:\x, x.js); otherwise a package name. */
function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || /\.(m?js|cjs|ts|mts)$/.test(spec);
}

/** The URL to import: a file beside the working directory, or a package installed where the user runs ioasid. */
function locate(spec: string, cwd: string): string {
  if (looksLikePath(spec)) return pathToFileURL(resolve(cwd, spec)).href;
  try {
    return pathToFileURL(createRequire(join(cwd, 'noop.js')).resolve(spec)).href;
  } catch {
    // Not installed beside the working directory: let the import below try from the CLI's own location.
    return spec;
  }
}

/** The package.json nearest above a module file, parsed; undefined when there is none (or it does not parse). */
function packageJsonOf(url: string): unknown {
  if (!url.startsWith('file:')) return undefined;
  let dir = dirname(fileURLToPath(url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as unknown;
      } catch {
        return undefined;
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The version of the @ioasid/core this CLI runs on (its package.json is exported for this). */
function coreVersion(): string {
  return (createRequire(import.meta.url)('@ioasid/core/package.json') as { version: string }).version;
}

/**
 * Refuses a plugin module whose package states a @ioasid/core peer range that excludes the running core. Core's
 * driver entry is imported here, not at the top: every command (and `--help`) loads this module, and only
 * `--plugin` needs the check.
 */
async function checkCoreRange(spec: string, url: string): Promise<void> {
  const pkg = packageJsonOf(url) as { peerDependencies?: Record<string, unknown> } | undefined;
  if (pkg?.peerDependencies?.['@ioasid/core'] === undefined) return;
  const { checkCorePeerRange } = await import('@ioasid/core/driver');
  const r = checkCorePeerRange(pkg, coreVersion());
  if (!r.ok) throw new CliError(`--plugin ${spec}: ${r.error}`, 1, 'install a release of the plugin built for this core, or the core release the plugin names');
}

/** Where a bare package name resolved from the CLI's own location ('' when the runtime cannot say). */
function resolvedFromCli(spec: string): string {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve(spec)).href;
  } catch {
    return '';
  }
}

export async function loadPluginModule(spec: string, cwd: string): Promise<LoadedPluginModule> {
  let mod: Record<string, unknown>;
  const url = locate(spec, cwd);
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new CliError(`--plugin ${spec}: cannot import it: ${why}`, 2, 'give an installed package name or a path to the plugin module (./my-plugin/dist/index.js)');
  }
  await checkCoreRange(spec, url.startsWith('file:') ? url : resolvedFromCli(spec));
  const plugins: IommuPlugin[] = [];
  const add = (v: unknown) => {
    if (isPlugin(v) && !plugins.includes(v)) plugins.push(v);
  };
  add(mod.plugin);
  add(mod.default);
  for (const v of Object.values(mod)) add(v);
  if (plugins.length === 0) {
    throw new CliError(`--plugin ${spec}: the module exports no IommuPlugin`, 2, 'a plugin module exports { id, register(container) }, usually as `plugin`');
  }
  const presets = Array.isArray(mod.presets) ? mod.presets.filter(isProfile) : [];
  return { spec, plugins, presets };
}
