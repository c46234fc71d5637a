/**
 * `ioasid --plugin <package or path>`: third-party vendor plugins loaded into every command. A plugin
 * module exports an `IommuPlugin` (as `plugin`, as the default export, or under any name) and may export
 * `presets`, host profiles of real machines, which join the built-in profiles.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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
  return typeof p.id === 'string' && typeof p.coreApi === 'string' && typeof p.register === 'function';
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

export async function loadPluginModule(spec: string, cwd: string): Promise<LoadedPluginModule> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(locate(spec, cwd))) as Record<string, unknown>;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new CliError(`--plugin ${spec}: cannot import it: ${why}`, 2, 'give an installed package name or a path to the plugin module (./my-plugin/dist/index.js)');
  }
  const plugins: IommuPlugin[] = [];
  const add = (v: unknown) => {
    if (isPlugin(v) && !plugins.includes(v)) plugins.push(v);
  };
  add(mod.plugin);
  add(mod.default);
  for (const v of Object.values(mod)) add(v);
  if (plugins.length === 0) {
    throw new CliError(`--plugin ${spec}: the module exports no IommuPlugin`, 2, 'a plugin module exports { id, coreApi, register(container) }, usually as `plugin`');
  }
  const presets = Array.isArray(mod.presets) ? mod.presets.filter(isProfile) : [];
  return { spec, plugins, presets };
}
