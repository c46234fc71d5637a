/**
 * Plugins and DI. A plugin is an object, never an import side effect: `register(container)` adds its
 * classes to the container it is given, under core's tokens. One child container per host.
 */
import 'reflect-metadata';
import semver from 'semver';
import { container as rootContainer, type ClassProvider, type DependencyContainer, type FactoryProvider, type InjectionToken, type RegistrationOptions, type ValueProvider } from 'tsyringe';
import type { IommuVendor } from './vendor.js';
import type { PageTableFormat } from './pgtable.js';
import type { IommuDecoder } from './decoder.js';
import { PluginContractError } from '../uapi/errno.js';
import { err, ok, type Result } from './result.js';

/**
 * What a plugin's `register()` may do with the container core hands it: add values, classes and factories
 * under core's tokens, nothing else (no resolving, no child containers, no disposal). It is a narrow view of
 * tsyringe's `DependencyContainer`, which satisfies it, so the host passes its own container (through a
 * recording proxy, see PluginHost.load) and a test may pass any child container.
 */
export interface PluginRegistrar {
  /** Adds `provider.useValue` under `token` (the usual form: `{ useValue: new Vendor() }`). */
  register<T>(token: InjectionToken<T>, provider: ValueProvider<T>): unknown;
  /** Adds what `provider.useFactory` builds under `token`. */
  register<T>(token: InjectionToken<T>, provider: FactoryProvider<T>): unknown;
  /** Adds `provider.useClass` under `token`; its constructor parameters need explicit `@inject(TOKEN)`. */
  register<T>(token: InjectionToken<T>, provider: ClassProvider<T>, options?: RegistrationOptions): unknown;
  /** Adds `instance` under `token` (the same as `register(token, { useValue: instance })`). */
  registerInstance<T>(token: InjectionToken<T>, instance: T): unknown;
}

/**
 * A vendor plugin: an object whose `register` adds the vendor's classes to the container it is given.
 * Which cores it works with is not part of the object: it is the plugin package's
 * `peerDependencies['@ioasid/core']` range (the one version axis, docs/versioning.md), which npm checks at
 * install, `ioasid --plugin` checks at load ({@link checkCorePeerRange}) and the conformance kit checks.
 */
export interface IommuPlugin {
  /** Unique id, e.g. 'vtd'. */
  readonly id: string;
  /** One line for `ioasid plugins` and error messages. */
  readonly description?: string;
  /**
   * What this plugin deliberately replaces: `vendor:<id>` or `format:<id>` owned by another plugin,
   * `service:<name>` for a core service (`service:ioasid.HostLog`). Anything else it registers under an
   * id or a core token someone already owns is refused with a PluginContractError naming both.
   */
  readonly overrides?: readonly string[];
  /** Adds the plugin's vendors, formats and stages to the host's container under core's tokens. */
  register(container: PluginRegistrar): void;
  /**
   * The optional presentation part: explains its vendor's registers, records and log lines
   * (`ioasid decode`, the web page). Claimed as `decoder:<vendor>` like a vendor id.
   */
  readonly decoder?: IommuDecoder;
}

/** Vendor families (multi-registered; found with resolveAll). */
export const IOMMU_VENDOR: InjectionToken<IommuVendor> = Symbol.for('ioasid.IommuVendor');
/** Page-table formats (multi-registered). */
export const PAGE_TABLE_FORMAT: InjectionToken<PageTableFormat> = Symbol.for('ioasid.PageTableFormat');

/** Core tokens plugins contribute to (multi-registered); every other `ioasid.*` token is a core service. */
const CONTRIBUTIONS: ReadonlySet<unknown> = new Set<unknown>([IOMMU_VENDOR, PAGE_TABLE_FORMAT, Symbol.for('ioasid.FaultStage')]);

type Registration = (c: DependencyContainer) => void;

/**
 * The container a plugin's register() sees: registrations go to a scratch child container (so that
 * they can be checked before they take effect) and are recorded for replay into the real one.
 */
function recordingContainer(real: DependencyContainer, scratch: DependencyContainer, log: { token: InjectionToken<unknown>; replay: Registration }[]): DependencyContainer {
  const methods = new Set(['register', 'registerInstance', 'registerSingleton', 'registerType']);
  const proxy: DependencyContainer = new Proxy(real, {
    get(target, prop) {
      if (typeof prop === 'string' && methods.has(prop)) {
        return (token: InjectionToken<unknown>, ...rest: unknown[]) => {
          const call = (c: DependencyContainer) => (c as unknown as Record<string, (...a: unknown[]) => unknown>)[prop](token, ...rest);
          call(scratch);
          log.push({ token, replay: call });
          return proxy;
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return proxy;
}

function tokenName(token: InjectionToken<unknown>): string {
  if (typeof token === 'symbol') return Symbol.keyFor(token) ?? token.toString();
  if (typeof token === 'function') return token.name;
  return String(token);
}

/** Loads plugins into a fresh child container and answers what they registered. */
export class PluginHost {
  /** The child container every plugin registers into; the host resolves vendors, formats and services from it. */
  readonly container: DependencyContainer;
  private readonly loaded = new Map<string, IommuPlugin>();
  /** Who registered each vendor id, format id and core service ('core' for the host's own). */
  private readonly owners = new Map<string, string>();
  /** Decoders by vendor id; an override replaces the one it names. */
  private readonly decoderById = new Map<string, IommuDecoder>();

  constructor(parent: DependencyContainer = rootContainer) {
    this.container = parent.createChildContainer();
  }

  /**
   * Runs `plugin.register` on a recording proxy, checks every registration (a second plugin with the same id,
   * a vendor, format, decoder or core service another plugin owns without `overrides`) and only then applies
   * them: a refused plugin leaves the host unchanged. Throws PluginContractError naming both plugins.
   */
  load(plugin: IommuPlugin): void {
    if (!plugin || typeof plugin.id !== 'string' || typeof plugin.register !== 'function') {
      throw new PluginContractError(String((plugin as { id?: unknown } | undefined)?.id ?? '?'), 'not an IommuPlugin: needs id and register()');
    }
    if (this.loaded.has(plugin.id)) throw new PluginContractError(plugin.id, 'a plugin with this id is already loaded');
    const log: { token: InjectionToken<unknown>; replay: Registration }[] = [];
    const scratch = this.container.createChildContainer();
    plugin.register(recordingContainer(this.container, scratch, log));
    // Check everything before any of it takes effect.
    const claims: [string, IommuVendor | PageTableFormat | null][] = [];
    const own = <T>(token: InjectionToken<T>): T[] => (scratch.isRegistered(token, false) ? scratch.resolveAll(token) : []);
    const vendors = own(IOMMU_VENDOR);
    const formats = own(PAGE_TABLE_FORMAT);
    for (const v of vendors) claims.push([`vendor:${v.id}`, v]);
    for (const f of formats) claims.push([`format:${f.id}`, f]);
    const decoder = plugin.decoder;
    if (decoder !== undefined) {
      if (typeof decoder !== 'object' || decoder === null || typeof decoder.vendor !== 'string' || typeof decoder.decode !== 'function') {
        throw new PluginContractError(plugin.id, 'decoder: needs a vendor id and decode()');
      }
      claims.push([`decoder:${decoder.vendor}`, null]);
    }
    for (const { token } of log) {
      if (CONTRIBUTIONS.has(token) || typeof token !== 'symbol' || !Symbol.keyFor(token)?.startsWith('ioasid.')) continue;
      const key = `service:${tokenName(token)}`;
      if (!this.owners.has(key) && this.container.isRegistered(token, true)) this.owners.set(key, 'core');
      claims.push([key, null]);
    }
    const overrides = new Set(plugin.overrides ?? []);
    const seen = new Set<string>();
    for (const [key] of claims) {
      if (seen.has(key)) throw new PluginContractError(plugin.id, `registers ${key} twice`);
      seen.add(key);
      const owner = this.owners.get(key) ?? (key.startsWith('service:') ? 'core' : undefined);
      if (owner !== undefined && !overrides.has(key)) {
        throw new PluginContractError(plugin.id, `${key} belongs to ${owner === 'core' ? 'core' : `plugin '${owner}'`}; plugin '${plugin.id}' may only replace it by listing '${key}' in overrides`);
      }
    }
    // Vendors and formats as the instances just checked; everything else as it was registered.
    for (const v of vendors) this.container.register(IOMMU_VENDOR, { useValue: v });
    for (const f of formats) this.container.register(PAGE_TABLE_FORMAT, { useValue: f });
    for (const { token, replay } of log) if (token !== IOMMU_VENDOR && token !== PAGE_TABLE_FORMAT) replay(this.container);
    for (const [key] of claims) this.owners.set(key, plugin.id);
    if (decoder !== undefined) this.decoderById.set(decoder.vendor, decoder);
    this.loaded.set(plugin.id, plugin);
  }

  /** The plugin (or 'core') that owns `vendor:<id>`, `format:<id>` or `service:<token>`. */
  owner(key: string): string | undefined {
    return this.owners.get(key);
  }

  /** The loaded plugins, in load order. */
  get plugins(): IommuPlugin[] {
    return [...this.loaded.values()];
  }

  /** Every vendor registered under IOMMU_VENDOR, in registration order (overridden ones included). */
  vendors(): IommuVendor[] {
    return this.container.isRegistered(IOMMU_VENDOR, true) ? this.container.resolveAll(IOMMU_VENDOR) : [];
  }

  /** The vendor registered last under `id` (an override replaces the vendor it names). */
  vendor(id: string): IommuVendor | undefined {
    return this.vendors().findLast((v) => v.id === id);
  }

  /** Every loaded plugin's decoder, one per vendor id. */
  decoders(): IommuDecoder[] {
    return [...this.decoderById.values()];
  }

  /** The decoder of vendor `id`, or undefined when no plugin brings one. */
  decoder(id: string): IommuDecoder | undefined {
    return this.decoderById.get(id);
  }

  /** Every page-table format registered under PAGE_TABLE_FORMAT, in registration order. */
  formats(): PageTableFormat[] {

    return this.container.isRegistered(PAGE_TABLE_FORMAT, true) ? this.container.resolveAll(PAGE_TABLE_FORMAT) : [];
  }
}

/**
 * Whether `version` is inside the semver `range` (npm's own rules, from the `semver` package); an
 * invalid version or range is not.
 */
export function satisfies(version: string, range: string): boolean {
  return semver.valid(version) !== null && semver.validRange(range) !== null && semver.satisfies(version, range);
}

/**
 * Whether a plugin package works with the core of version `coreVersion`: its package.json (`pkg`, as parsed)
 * must name `@ioasid/core` in `peerDependencies` with a semver range that includes `coreVersion`. The error
 * says what is missing or which range excludes which version.
 */
export function checkCorePeerRange(pkg: unknown, coreVersion: string): Result<string> {
  const p = (typeof pkg === 'object' && pkg !== null ? pkg : {}) as { name?: unknown; peerDependencies?: unknown };
  const name = typeof p.name === 'string' ? p.name : 'the plugin package';
  const peers = (typeof p.peerDependencies === 'object' && p.peerDependencies !== null ? p.peerDependencies : {}) as Record<string, unknown>;
  const range = peers['@ioasid/core'];
  if (typeof range !== 'string') return err(`${name} declares no peerDependencies["@ioasid/core"]: a plugin states the cores it works with there`);
  if (semver.validRange(range) === null) return err(`${name}: peerDependencies["@ioasid/core"] is not a semver range: '${range}'`);
  if (!satisfies(coreVersion, range)) return err(`${name} needs @ioasid/core ${range}, this core is ${coreVersion}`);
  return ok(range);
}
