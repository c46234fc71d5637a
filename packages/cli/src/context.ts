/** What every command gets: the streams, colours, the plugin host and the exit code to return. */
import type { PluginHost, IommuVendor } from '@ioasid/core/driver';
import { CliError, colours, type CliIo, type Colours } from './io.js';
import { loadPluginModule, type LoadedPluginModule } from './plugin-loader.js';
import type { VendorPresets } from './profiles.js';

/** The state one `ioasid` invocation shares between its commands (`buildProgram` makes one per run). */
export class CommandContext {
  /** Colour functions, plain when the output is not a terminal or NO_COLOR is set. */
  readonly c: Colours;
  /** The exit code the run returns (a command sets it on failure). */
  exitCode = 0;
  private host: PluginHost | null = null;
  private pluginSpecs: readonly string[] = [];
  private modules: Promise<LoadedPluginModule[]> | null = null;

  /** @param io - the streams, environment and working directory the commands use. */
  constructor(readonly io: CliIo) {
    this.c = colours(io);
  }

  /** Writes `line` and a newline to stdout. */
  out(line = ''): void {
    this.io.stdout.write(`${line}\n`);
  }

  /** Writes `line` and a newline to stderr. */
  err(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  /** The modules named with --plugin, loaded into every command beside the CLI's own plugins. */
  usePlugins(specs: readonly string[]): void {
    this.pluginSpecs = specs;
    this.modules = null;
    this.host = null;
  }

  private thirdParty(): Promise<LoadedPluginModule[]> {
    this.modules ??= (async () => {
      const out: LoadedPluginModule[] = [];
      for (const spec of this.pluginSpecs) out.push(await loadPluginModule(spec, this.io.cwd ?? process.cwd()));
      return out;
    })();
    return this.modules;
  }

  /**
   * The plugin host with the CLI's vendor plugins and those of every `--plugin` module, loaded on first use;
   * a plugin that cannot be loaded is a CliError naming it.
   */
  async pluginHost(): Promise<PluginHost> {
    if (this.host) return this.host;
    const builtin = this.io.plugins ? await this.io.plugins() : (await import('./plugins.js')).allPlugins();
    const plugins = [...builtin, ...(await this.thirdParty()).flatMap((m) => m.plugins)];
    // Loaded here, not at import: `ioasid --help` and commands without vendors never need it.
    const { PluginHost, PluginContractError } = await import('@ioasid/core/driver');
    const host = new PluginHost();
    for (const p of plugins) {
      try {
        host.load(p);
      } catch (e) {
        const why = e instanceof PluginContractError ? e.message : String(e);
        const hint = builtin.includes(p)
          ? 'reinstall @ioasid/cli so that its vendor packages match @ioasid/core'
          : 'check the modules given with --plugin: each plugin id once, built for this @ioasid/core';
        throw new CliError(`a vendor plugin could not be loaded: ${why}`, 1, hint);
      }
    }
    this.host = host;
    return host;
  }

  /** The vendors of {@link CommandContext.pluginHost}'s plugins. */
  async vendors(): Promise<IommuVendor[]> {
    return (await this.pluginHost()).vendors();
  }

  /** The presets of the shipped vendor packages, then those of every --plugin module. */
  async presets(): Promise<VendorPresets[]> {
    const shipped = await (await import('./profiles.js')).shippedPresets();
    const extra = (await this.thirdParty()).filter((m) => m.presets.length > 0).map((m) => ({ vendor: m.plugins[0].id, presets: m.presets }));
    return [...shipped, ...extra];
  }
}
