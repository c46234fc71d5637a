import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePlugin, main, parseCommandLine, validateId, validateName, validatePackageName } from './index.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'create-plugin-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('validation', () => {
  it('accepts lowercase npm-safe ids and refuses the rest with the reason', () => {
    for (const id of ['acme', 'acme-iommu', 'sifive-iommu', 'x2']) expect(validateId(id)).toEqual({ ok: true, value: id });
    // The RISC-V IOMMU plugin is ioasid's own now.
    expect(validateId('riscv-iommu')).toEqual({ ok: false, error: "--id 'riscv-iommu' is taken by a plugin of ioasid itself" });
    for (const id of ['', 'Acme', 'acme_iommu', '-acme', 'acme-', 'acme--iommu', '2acme', 'a'.repeat(41), 'ac me', '../x']) expect(validateId(id).ok, id).toBe(false);
    expect(validateId('vtd')).toEqual({ ok: false, error: "--id 'vtd' is taken by a plugin of ioasid itself" });
  });

  it('refuses names that would break the sources and bad package names', () => {
    expect(validateName('Acme IOMMU (v2)').ok).toBe(true);
    for (const name of ['', "Acme's", 'a\\b', 'line\nbreak', '`x`', '*/', 'x'.repeat(65)]) expect(validateName(name).ok, name).toBe(false);
    expect(validatePackageName('@acme/ioasid-plugin').ok).toBe(true);
    expect(validatePackageName('Acme').ok).toBe(false);
  });
});

describe('generatePlugin', () => {
  it('writes the complete package and nothing but it', () => {
    const dir = join(scratch(), 'acme');
    const r = generatePlugin({ dir, id: 'acme-iommu', name: 'Acme IOMMU' });
    if (!r.ok) throw new Error(r.error);
    expect(r.value.packageName).toBe('ioasid-acme-iommu');
    expect(r.value.files).toEqual([
      '.gitignore',
      'LICENSE',
      'README.md',
      'package.json',
      'src/conformance.test.ts',
      'src/decode.test.ts',
      'src/decode.ts',
      'src/fault-codec.ts',
      'src/ids.ts',
      'src/index.ts',
      'src/pgtable.ts',
      'src/presets.ts',
      'src/probe.ts',
      'src/records.test.ts',
      'src/records.ts',
      'src/registers.test.ts',
      'src/registers.ts',
      'src/unit.ts',
      'src/vendor.ts',
      'tsconfig.json',
      'tsconfig.lib.json',
      'vitest.config.ts',
    ]);
    for (const f of r.value.files) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text, `${f} keeps a placeholder`).not.toMatch(/__[A-Z]+__/);
      expect(text, `${f} has a TODO`).not.toMatch(/TODO|FIXME/);
    }
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(pkg.type).toBe('module');
    expect(pkg.engines).toEqual({ node: '>=20.19' });
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' });
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['@ioasid/core', 'reflect-metadata', 'tsyringe']);
    expect(pkg.files).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'dist']));
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toContain('Apache License');
    expect(readFileSync(join(dir, 'src/ids.ts'), 'utf8')).toContain("export const VENDOR_ID = 'acme-iommu';");
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain("import { plugin, presets } from 'ioasid-acme-iommu';");
    expect(r.value.nextSteps).toEqual([expect.stringMatching(/^cd /), 'npm install', 'npm run typecheck', 'npm test']);
  });

  it('adds the source condition and the repository files with --in-repo', () => {
    const root = scratch();
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'ws', private: true, workspaces: ['packages/*'] }));
    writeFileSync(join(root, 'tsconfig.base.json'), '{}');
    writeFileSync(join(root, 'vitest.shared.ts'), '');
    const dir = join(root, 'packages', 'acme');
    const r = generatePlugin({ dir, id: 'acme', name: 'Acme', inRepo: true });
    if (!r.ok) throw new Error(r.error);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('@ioasid/acme');
    expect(Object.keys(pkg.exports['.'])).toEqual(['types', '@ioasid/source', 'import', 'default']);
    expect(pkg.repository.directory).toBe('packages/acme');
    expect(pkg.devDependencies).toEqual({ '@ioasid/core': '*' });
    // The workspace layout nx sync maintains: a solution tsconfig.json, the library referencing core's.
    const solution = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8'));
    expect(solution).toEqual({ extends: '../../tsconfig.base.json', files: [], include: [], references: [{ path: './tsconfig.lib.json' }, { path: './tsconfig.spec.json' }] });
    expect(JSON.parse(readFileSync(join(dir, 'tsconfig.lib.json'), 'utf8')).references).toEqual([{ path: '../core/tsconfig.lib.json' }]);
    expect(JSON.parse(readFileSync(join(dir, 'tsconfig.spec.json'), 'utf8')).references).toEqual([{ path: './tsconfig.lib.json' }]);
    expect(existsSync(join(dir, 'typedoc.json'))).toBe(true);
    expect(readFileSync(join(dir, 'vitest.config.ts'), 'utf8')).toContain("from '../../vitest.shared.ts'");
    expect(existsSync(join(dir, '.gitignore'))).toBe(false);
  });

  it('refuses a non-empty directory, a file, and --in-repo outside the monorepo, writing nothing', () => {
    const base = scratch();
    mkdirSync(join(base, 'full'));
    writeFileSync(join(base, 'full', 'keep.txt'), 'x');
    expect(generatePlugin({ dir: join(base, 'full'), id: 'acme', name: 'Acme' })).toEqual({ ok: false, error: `${join(base, 'full')} exists and is not empty: choose a new directory` });
    writeFileSync(join(base, 'file'), 'x');
    expect(generatePlugin({ dir: join(base, 'file'), id: 'acme', name: 'Acme' }).ok).toBe(false);
    const r = generatePlugin({ dir: join(base, 'out'), id: 'acme', name: 'Acme', inRepo: true, repoRoot: base });
    expect(r.ok).toBe(false);
    expect(generatePlugin({ dir: join(base, 'bad'), id: 'Bad', name: 'Acme' }).ok).toBe(false);
    expect(existsSync(join(base, 'out'))).toBe(false);
    expect(existsSync(join(base, 'bad'))).toBe(false);
    mkdirSync(join(base, 'empty'));
    expect(generatePlugin({ dir: join(base, 'empty'), id: 'acme', name: 'Acme' }).ok).toBe(true);
  });
});

describe('command line', () => {
  it('parses the npm create arguments', () => {
    expect(parseCommandLine(['acme', '--id', 'acme', '--name', 'Acme IOMMU', '--in-repo'])).toEqual({ ok: true, value: { dir: 'acme', id: 'acme', name: 'Acme IOMMU', inRepo: true } });
    expect(parseCommandLine(['acme', '--id', 'acme', '--name', 'A', '--package', '@x/y'])).toMatchObject({ ok: true, value: { packageName: '@x/y', inRepo: false } });
    expect(parseCommandLine(['--help'])).toEqual({ ok: true, value: 'help' });
    expect(parseCommandLine(['--id', 'acme', '--name', 'A'])).toEqual({ ok: false, error: 'a target directory is required' });
    expect(parseCommandLine(['d', '--name', 'A'])).toEqual({ ok: false, error: '--id is required' });
    expect(parseCommandLine(['d', '--id', 'a'])).toEqual({ ok: false, error: '--name is required' });
    expect(parseCommandLine(['d', '--id', 'a', '--name', 'A', '--bogus']).ok).toBe(false);
  });

  it('prints what it wrote and the next steps, and exits non-zero with the reason on errors', () => {
    const dir = join(scratch(), 'acme');
    let out = '';
    let errOut = '';
    expect(main([dir, '--id', 'acme', '--name', 'Acme'], (s) => (out += s), (s) => (errOut += s))).toBe(0);
    expect(out).toContain('Wrote ioasid-acme in');
    expect(out).toContain('  src/index.ts\n');
    expect(out).toContain('Next steps:\n');
    expect(errOut).toBe('');
    expect(main([dir, '--id', 'acme', '--name', 'Acme'], (s) => (out += s), (s) => (errOut += s))).toBe(1);
    expect(errOut).toContain('exists and is not empty');
    errOut = '';
    expect(main(['--id', 'acme'], (s) => (out += s), (s) => (errOut += s))).toBe(2);
    expect(errOut).toContain('usage: create-ioasid-plugin');
  });
});
