import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, run } from './__tests__/run.js';

const PLUGIN = join(FIXTURES, 'third-party-plugin.mjs');

describe('ioasid --plugin', () => {
  it('adds the vendor of a third-party module to every command', async () => {
    const without = await run(['decode', 'mock', '0x1']);
    expect(without.code).toBe(2);
    expect(without.stderr).toContain('unknown vendor "mock"');
    const withPlugin = await run(['--plugin', PLUGIN, 'decode', 'mock', '0x1']);
    expect(withPlugin.stderr).not.toContain('unknown vendor');
  });

  it("lists the module's presets among the built-in profiles and plans them by name", async () => {
    const profiles = await run(['--plugin', PLUGIN, 'profiles']);
    expect(profiles.code).toBe(0);
    expect(profiles.stdout).toMatch(/^acme-iommu-acme-test-server +1 +1 +Acme test server$/m);
    const planned = await run(['--plugin', PLUGIN, 'plan', 'acme-iommu-acme-test-server', '--json']);
    expect(planned.stderr).toBe('');
    expect(JSON.parse(planned.stdout).devices.map((d: { bdf: string }) => d.bdf)).toEqual(['0000:00:01.0']);
  });

  it('resolves a relative path against the working directory', async () => {
    const r = await run(['--plugin', './third-party-plugin.mjs', 'profiles', '--json'], { cwd: FIXTURES });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).map((b: { id: string }) => b.id)).toContain('acme-iommu-acme-test-server');
  });

  it('refuses a module that is missing or exports no plugin, as bad usage', async () => {
    const missing = await run(['--plugin', join(FIXTURES, 'no-such-plugin.mjs'), 'profiles']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot import it');
    const empty = await run(['--plugin', join(FIXTURES, 'not-a-plugin.mjs'), 'profiles']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('exports no IommuPlugin');
  });

  it("refuses a plugin package whose @ioasid/core peer range excludes the running core, naming both", async () => {
    const r = await run(['--plugin', join(FIXTURES, 'plugin-for-old-core', 'index.mjs'), 'profiles']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ioasid-plugin-for-old-core needs @ioasid\/core \^0\.0\.1, this core is \d+\.\d+\.\d+/);
  });

  it('refuses a plugin whose id is already loaded, naming it', async () => {
    const r = await run(['--plugin', PLUGIN, '--plugin', PLUGIN, 'profiles']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('acme-iommu');
  });
});
