/**
 * Registrations are checked before they take effect: a vendor id, format id or core service another
 * plugin (or core) owns is refused with an error naming both, unless the plugin lists it in overrides.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, PluginHost, type IommuPlugin, type PluginRegistrar } from './plugin.js';
import { MockVendor, mockPlugin } from '../testing/mock-vendor.js';
import { mockFormat } from '../testing/mock-format.js';
import { HOST_LOG, RingLog } from '../fault/stages.js';
import { PluginContractError } from '../uapi/errno.js';

function plugin(id: string, register: (c: PluginRegistrar) => void, overrides?: string[]): IommuPlugin {
  return { id, register, ...(overrides ? { overrides } : {}) };
}

const otherMock = (overrides?: string[]) =>
  plugin('other', (c) => c.register(IOMMU_VENDOR, { useValue: Object.assign(new MockVendor(), { name: 'Other mock' }) }), overrides);

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof PluginContractError) return e.message;
    throw e;
  }
  return 'loaded';
}

describe('plugin registrations', () => {
  it("refuses a vendor id another plugin owns, naming both, and registers nothing of it", () => {
    const ph = new PluginHost();
    ph.load(mockPlugin());
    const msg = refusal(() => ph.load(otherMock()));
    expect(msg).toMatch(/other/);
    expect(msg).toMatch(/vendor:mock belongs to plugin 'mock'/);
    expect(ph.vendors().length).toBe(1);
    expect(ph.plugins.map((p) => p.id)).toEqual(['mock']);
  });

  it('lets a plugin that says so override a vendor; the override is the one found', () => {
    const ph = new PluginHost();
    ph.load(mockPlugin());
    ph.load(otherMock(['vendor:mock']));
    expect(ph.vendor('mock')?.name).toBe('Other mock');
    expect(ph.owner('vendor:mock')).toBe('other');
  });

  it('refuses a format id another plugin owns', () => {
    const ph = new PluginHost();
    ph.load(mockPlugin());
    expect(refusal(() => ph.load(plugin('fmt', (c) => c.register(PAGE_TABLE_FORMAT, { useValue: mockFormat }))))).toMatch(/format:mock-pt belongs to plugin 'mock'/);
    expect(ph.formats().length).toBe(1);
  });

  it('refuses to replace a core service unless declared', () => {
    const ph = new PluginHost();
    const logger = (overrides?: string[]) => plugin('logger', (c) => c.register(HOST_LOG, { useValue: new RingLog() }), overrides);
    expect(refusal(() => ph.load(logger()))).toMatch(/service:ioasid.HostLog belongs to core/);
    expect(ph.container.isRegistered(HOST_LOG, true)).toBe(false);
    ph.load(logger(['service:ioasid.HostLog']));
    expect(ph.container.isRegistered(HOST_LOG, true)).toBe(true);
  });

  it('refuses the same vendor twice from one plugin', () => {
    const twice = plugin('twice', (c) => {
      c.register(IOMMU_VENDOR, { useValue: new MockVendor() });
      c.register(IOMMU_VENDOR, { useValue: new MockVendor() });
    });
    expect(refusal(() => new PluginHost().load(twice))).toMatch(/registers vendor:mock twice/);
  });
});

describe('PluginRegistrar', () => {
  it('is all register() gets; tsyringe containers satisfy it, and what it adds lands in the host', () => {
    const seen: string[] = [];
    const p = plugin('narrow', (c: PluginRegistrar) => {
      c.register(IOMMU_VENDOR, { useValue: Object.assign(new MockVendor(), { id: 'narrow' }) });
      c.registerInstance(PAGE_TABLE_FORMAT, { ...mockFormat, id: 'narrow-pt' });
      seen.push(typeof (c as unknown as { resolve?: unknown }).resolve);
    });
    const ph = new PluginHost();
    ph.load(p);
    expect(ph.vendor('narrow')?.id).toBe('narrow');
    expect(ph.formats().map((f) => f.id)).toEqual(['narrow-pt']);
    // A child container is a PluginRegistrar (the type check is the compile of this line).
    const child: PluginRegistrar = ph.container.createChildContainer();
    expect(typeof child.register).toBe('function');
    expect(seen).toEqual(['function']);
  });
});

describe('decoders', () => {
  const decoder = (vendor: string, name: string) => ({ vendor, decode: () => ({ ok: false as const, error: name }) });

  it('a plugin without a decoder loads and works; decoder(id) is then undefined', () => {
    const ph = new PluginHost();
    ph.load(plugin('bare', (c) => c.register(IOMMU_VENDOR, { useValue: Object.assign(new MockVendor(), { id: 'bare' }) })));
    expect(ph.vendor('bare')?.id).toBe('bare');
    expect(ph.decoder('bare')).toBeUndefined();
    expect(ph.decoders()).toEqual([]);
  });

  it("refuses a decoder for a vendor whose decoder another plugin brings, unless it overrides 'decoder:<id>'", () => {
    const ph = new PluginHost();
    ph.load(mockPlugin());
    expect(refusal(() => ph.load({ ...plugin('explainer', () => {}), decoder: decoder('mock', 'explainer') }))).toMatch(/decoder:mock belongs to plugin 'mock'/);
    ph.load({ ...plugin('explainer', () => {}, ['decoder:mock']), decoder: decoder('mock', 'explainer') });
    expect(ph.decoder('mock')?.decode('')).toEqual({ ok: false, error: 'explainer' });
    expect(ph.owner('decoder:mock')).toBe('explainer');
  });

  it('refuses a decoder without a vendor id or decode()', () => {
    const bad = { ...plugin('bad', () => {}), decoder: { vendor: 'x' } } as unknown as IommuPlugin;
    expect(refusal(() => new PluginHost().load(bad))).toMatch(/decoder: needs a vendor id and decode\(\)/);
  });
});

describe('the @ioasid/core peer range of a plugin package', () => {
  it('accepts a range that includes the core version and says why it refuses the others', async () => {
    const { checkCorePeerRange } = await import('./plugin.js');
    const pkg = (range?: unknown) => ({ name: 'ioasid-acme', peerDependencies: range === undefined ? { tsyringe: '^4' } : { '@ioasid/core': range } });
    expect(checkCorePeerRange(pkg('^0.1.0'), '0.1.3')).toEqual({ ok: true, value: '^0.1.0' });
    expect(checkCorePeerRange(pkg('>=0.1.0 <0.3.0'), '0.2.0')).toEqual({ ok: true, value: '>=0.1.0 <0.3.0' });
    expect(checkCorePeerRange(pkg('^0.1.0'), '0.2.0')).toEqual({ ok: false, error: 'ioasid-acme needs @ioasid/core ^0.1.0, this core is 0.2.0' });
    expect(checkCorePeerRange(pkg(), '0.1.0')).toMatchObject({ ok: false, error: expect.stringMatching(/ioasid-acme declares no peerDependencies\["@ioasid\/core"\]/) });
    expect(checkCorePeerRange(pkg('soon'), '0.1.0')).toMatchObject({ ok: false, error: expect.stringMatching(/is not a semver range: 'soon'/) });
    expect(checkCorePeerRange(pkg(7), '0.1.0').ok).toBe(false);
    expect(checkCorePeerRange(null, '0.1.0')).toMatchObject({ ok: false, error: expect.stringMatching(/^the plugin package declares no/) });
  });
});

describe('semver ranges', () => {
  it("follow npm's semver rules", async () => {
    const { satisfies } = await import('./plugin.js');
    expect(satisfies('1.2.3', '^1.0.0')).toBe(true);
    expect(satisfies('2.0.0', '^1.0.0')).toBe(false);
    expect(satisfies('0.2.0', '^0.1.0')).toBe(false);
    expect(satisfies('1.4.0', '>=1.2.0 <2.0.0')).toBe(true);
    expect(satisfies('1.4.0', '1.x || 2.x')).toBe(true);
    expect(satisfies('1.4.0', '~1.3.0')).toBe(false);
    expect(satisfies('1.4.0', 'not a range')).toBe(false);
    expect(satisfies('one', '*')).toBe(false);
  });
});
