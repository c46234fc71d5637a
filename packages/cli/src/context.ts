/** What every command gets: the streams, colours, the plugin host and the exit code to return. */
import { PluginHost, PluginContractError, type IommuVendor } from '@ioasid/core/driver';
import { CliError, colours, type CliIo, type Colours } from './io.js';

export class CommandContext {
  readonly c: Colours;
  exitCode = 0;
  private host: PluginHost | null = null;

  constructor(readonly io: CliIo) {
    this.c = colours(io);
  }

  out(line = ''): void {
    this.io.stdout.write(`${line}\n`);
  }

  err(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  async pluginHost(): Promise<PluginHost> {
    if (this.host) return this.host;
    const plugins = this.io.plugins ? await this.io.plugins() : (await import('./plugins.js')).allPlugins();
    const host = new PluginHost();
    for (const p of plugins) {
      try {
        host.load(p);
      } catch (e) {
        const why = e instanceof PluginContractError ? e.message : String(e);
        throw new CliError(`a vendor plugin could not be loaded: ${why}`, 1, 'reinstall @ioasid/cli so that its vendor packages match @ioasid/core');
      }
    }
    this.host = host;
    return host;
  }

  async vendors(): Promise<IommuVendor[]> {
    return (await this.pluginHost()).vendors();
  }
}
