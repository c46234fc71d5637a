/**
 * The ranges a generated package states are the repository's real versions, read independently here
 * from the files a release changes (core's package.json, the root devDependencies, the in-repo plugins'
 * peer ranges), so that a core release or a tool upgrade that the generator missed fails this test.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePlugin, loadPluginVersions, pluginVersions, versionsFromRepository } from './index.js';

const repo = join(import.meta.dirname, '../../..');
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const corePkg = readJson(join(repo, 'packages/core/package.json')) as { version: string };
const rootDev = (readJson(join(repo, 'package.json')) as { devDependencies: Record<string, string> }).devDependencies;

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'create-plugin-versions-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The @ioasid/core peer range of every published in-repo package that states one. */
function inRepoCorePeers(): Map<string, string> {
  const out = new Map<string, string>();
  for (const dir of readdirSync(join(repo, 'packages'))) {
    const file = join(repo, 'packages', dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = readJson(file) as { name: string; private?: boolean; peerDependencies?: Record<string, string> };
    const range = pkg.peerDependencies?.['@ioasid/core'];
    if (!pkg.private && range) out.set(pkg.name, range);
  }
  return out;
}

describe('the ranges of a generated package', () => {
  it('are the repository’s current versions, for a standalone package', () => {
    const dir = join(scratch(), 'acme');
    const r = generatePlugin({ dir, id: 'acme-iommu', name: 'Acme IOMMU' });
    if (!r.ok) throw new Error(r.error);
    const pkg = readJson(join(dir, 'package.json')) as { peerDependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.peerDependencies).toEqual({
      '@ioasid/core': `^${corePkg.version}`,
      tsyringe: rootDev.tsyringe,
      'reflect-metadata': rootDev['reflect-metadata'],
    });
    expect(pkg.devDependencies).toEqual({
      ...pkg.peerDependencies,
      '@types/node': rootDev['@types/node'],
      typescript: rootDev.typescript,
      vitest: rootDev.vitest,
    });
  });

  it('state the same core range as every plugin of this repository', () => {
    const peers = inRepoCorePeers();
    expect(peers.size).toBeGreaterThanOrEqual(6);
    for (const [name, range] of peers) expect(range, name).toBe(pluginVersions().core);
  });
});

describe('loadPluginVersions', () => {
  const core = { name: '@ioasid/core', version: '0.7.3' };
  const root = { name: 'ioasid-workspace', devDependencies: { tsyringe: '^4.11.0', 'reflect-metadata': '^0.2.2', typescript: '~6.0.1', vitest: '~5.0.0', '@types/node': '^22.1.0' } };
  const expected = { core: '^0.7.3', tsyringe: '^4.11.0', reflectMetadata: '^0.2.2', typescript: '~6.0.1', vitest: '~5.0.0', typesNode: '^22.1.0' };

  function layout(files: Record<string, unknown>): { pinned: URL; core: URL; root: URL } {
    const d = scratch();
    for (const [path, value] of Object.entries(files)) {
      mkdirSync(join(d, path, '..'), { recursive: true });
      writeFileSync(join(d, path), JSON.stringify(value));
    }
    return { pinned: pathToFileURL(join(d, 'versions.json')), core: pathToFileURL(join(d, 'core/package.json')), root: pathToFileURL(join(d, 'package.json')) };
  }

  it('derives the ranges from core’s version and the root devDependencies inside the repository', () => {
    expect(loadPluginVersions(layout({ 'core/package.json': core, 'package.json': root }))).toEqual(expected);
    expect(versionsFromRepository(core, root)).toEqual(expected);
  });

  it('prefers the live repository over a stale pinned file', () => {
    expect(loadPluginVersions(layout({ 'core/package.json': core, 'package.json': root, 'versions.json': { ...expected, core: '^0.1.0' } }))).toEqual(expected);
  });

  it('reads the pinned file of a packed generator, and not a foreign project’s files', () => {
    const consumer = { name: 'my-app', devDependencies: {} };
    expect(loadPluginVersions(layout({ 'versions.json': expected, 'package.json': consumer, 'core/package.json': { name: '@ioasid/core', version: '9.9.9' } }))).toEqual(expected);
  });

  it('refuses to guess: no repository and no pinned file, a missing tool, a bad pinned file', () => {
    expect(() => loadPluginVersions(layout({ 'package.json': { name: 'my-app' } }))).toThrow(/neither the ioasid repository nor a packed versions.json/);
    const { tsyringe: _dropped, ...noTsyringe } = root.devDependencies;
    expect(() => versionsFromRepository(core, { ...root, devDependencies: noTsyringe })).toThrow(/no devDependency tsyringe/);
    expect(() => versionsFromRepository({ name: 'other', version: '1.0.0' }, root)).toThrow(/not the package.json of @ioasid\/core/);
    expect(() => loadPluginVersions(layout({ 'versions.json': { core: '^0.1.0' } }))).toThrow(/has no tsyringe/);
  });
});
