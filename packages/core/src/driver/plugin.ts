/**
 * Plugins and DI. A plugin is an object, never an import side effect: `register(container)` adds its
 * classes to the container it is given, under core's tokens. One child container per host.
 */
import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer, type InjectionToken } from 'tsyringe';
import type { IommuVendor } from './vendor.js';
import type { PageTableFormat } from './pgtable.js';
import { PluginContractError } from '../uapi/errno.js';

/** The version of the plugin contract this core implements. Plugins state the range they need. */
export const CORE_API_VERSION = '1.0.0';

export interface IommuPlugin {
  /** Unique id, e.g. 'vtd'. */
  readonly id: string;
  /** Semver range of CORE_API_VERSION the plugin was written against, e.g. '^1.0.0'. */
  readonly coreApi: string;
  readonly description?: string;
  register(container: DependencyContainer): void;
}

/** Vendor families (multi-registered; found with resolveAll). */
export const IOMMU_VENDOR: InjectionToken<IommuVendor> = Symbol.for('ioasid.IommuVendor');
/** Page-table formats (multi-registered). */
export const PAGE_TABLE_FORMAT: InjectionToken<PageTableFormat> = Symbol.for('ioasid.PageTableFormat');

/** Loads plugins into a fresh child container and answers what they registered. */
export class PluginHost {
  readonly container: DependencyContainer;
  private readonly loaded = new Map<string, IommuPlugin>();

  constructor(parent: DependencyContainer = rootContainer) {
    this.container = parent.createChildContainer();
  }

  load(plugin: IommuPlugin): void {
    if (!plugin || typeof plugin.id !== 'string' || typeof plugin.register !== 'function') {
      throw new PluginContractError(String((plugin as { id?: unknown } | undefined)?.id ?? '?'), 'not an IommuPlugin: needs id, coreApi and register()');
    }
    if (this.loaded.has(plugin.id)) throw new PluginContractError(plugin.id, 'a plugin with this id is already loaded');
    if (!satisfies(CORE_API_VERSION, plugin.coreApi)) {
      throw new PluginContractError(plugin.id, `needs core API ${plugin.coreApi}, this core implements ${CORE_API_VERSION}`);
    }
    plugin.register(this.container);
    this.loaded.set(plugin.id, plugin);
  }

  get plugins(): IommuPlugin[] {
    return [...this.loaded.values()];
  }

  vendors(): IommuVendor[] {
    return this.container.isRegistered(IOMMU_VENDOR, true) ? this.container.resolveAll(IOMMU_VENDOR) : [];
  }

  vendor(id: string): IommuVendor | undefined {
    return this.vendors().find((v) => v.id === id);
  }

  formats(): PageTableFormat[] {
    return this.container.isRegistered(PAGE_TABLE_FORMAT, true) ? this.container.resolveAll(PAGE_TABLE_FORMAT) : [];
  }
}

/** Minimal semver range check: '^x.y.z', '~x.y.z', '>=x.y.z', 'x.y.z' and '*'. */
export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  if (!v) return false;
  const r = range.trim();
  if (r === '*' || r === '') return true;
  const m = /^(\^|~|>=)?\s*(\d+)\.(\d+)\.(\d+)$/.exec(r);
  if (!m) return false;
  const want = [Number(m[2]), Number(m[3]), Number(m[4])];
  const cmp = compare(v, want);
  switch (m[1]) {
    case '^':
      return cmp >= 0 && (want[0] > 0 ? v[0] === want[0] : v[0] === 0 && v[1] === want[1]);
    case '~':
      return cmp >= 0 && v[0] === want[0] && v[1] === want[1];
    case '>=':
      return cmp >= 0;
    default:
      return cmp === 0;
  }
}

function parse(s: string): number[] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(s);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
