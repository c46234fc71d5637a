/**
 * The generator: writes a complete vendor plugin package (sources, tests wired to core's conformance
 * kit, presets, README, LICENSE, package and TypeScript configuration) into an empty directory.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Result } from './result.js';
import { validateId, validateName, validatePackageName } from './validate.js';
import { pluginVersions, type PluginVersions } from './versions.js';

export interface GenerateOptions {
  /** Where the package goes; created when absent, refused when it exists and is not empty. */
  dir: string;
  /** The vendor id (a host profile's `vendor`, the plugin id): lowercase, npm-safe, e.g. 'acme-iommu'. */
  id: string;
  /** The human vendor name, e.g. 'Acme IOMMU'. */
  name: string;
  /** The npm package name; default `@ioasid/<id>` in this repository, `ioasid-<id>` outside it. */
  packageName?: string;
  /**
   * A package inside the ioasid monorepo: extends its tsconfig.base.json and vitest.shared.ts, resolves
   * core through the `@ioasid/source` condition, and has no tool dependencies of its own.
   */
  inRepo?: boolean;
  /** Where to look for the monorepo when `inRepo` is set; default: the directories above `dir`. */
  repoRoot?: string;
}

export interface GenerateResult {
  /** The absolute directory written. */
  dir: string;
  /** The npm name written into the generated package.json (`--package`, or the default for where it was written). */
  packageName: string;
  /** Files written, relative to `dir`, sorted. */
  files: string[];
  /** What to run next, one command a line. */
  nextSteps: string[];
}

/** The package root (templates/ and LICENSE sit beside src/ and dist/). */
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TEMPLATES = join(PACKAGE_ROOT, 'templates');

/** Walks up from `start` to the ioasid monorepo: a package.json with workspaces and a tsconfig.base.json. */
export function findRepoRoot(start: string): string | null {
  let dir = resolve(start);
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'tsconfig.base.json')) && existsSync(join(dir, 'vitest.shared.ts'))) {
      try {
        const manifest = JSON.parse(readFileSync(pkg, 'utf8')) as { workspaces?: unknown };
        if (Array.isArray(manifest.workspaces)) return dir;
      } catch {
        // An unreadable package.json is not the repository root: keep looking above it.
      }
    }
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** A path from `from` to `to` with forward slashes, as configuration files want it. */
function rel(from: string, to: string): string {
  const r = relative(from, to).split(sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function templateFiles(dir: string, base = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, base), { withFileTypes: true })) {
    const path = base ? `${base}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...templateFiles(dir, path));
    else if (entry.name.endsWith('.tpl')) out.push(path);
  }
  return out;
}

function fill(text: string, vars: Readonly<Record<string, string>>): string {
  let out = text;
  for (const [key, value] of Object.entries(vars)) out = out.split(`__${key}__`).join(value);
  return out;
}

function packageJson(o: { packageName: string; name: string; inRepo: boolean; relFromRepo: string; versions: PluginVersions }): Record<string, unknown> {
  const entry: Record<string, string> = { types: './dist/index.d.ts' };
  if (o.inRepo) entry['@ioasid/source'] = './src/index.ts';
  entry.import = './dist/index.js';
  entry.default = './dist/index.js';
  const v = o.versions;
  const peers = { '@ioasid/core': v.core, tsyringe: v.tsyringe, 'reflect-metadata': v.reflectMetadata };
  return {
    name: o.packageName,
    version: '0.1.0',
    description: `${o.name} plugin for ioasid`,
    license: 'Apache-2.0',
    type: 'module',
    ...(o.inRepo ? { repository: { type: 'git', url: 'https://github.com/ioasid/ioasid.git', directory: o.relFromRepo } } : {}),
    keywords: ['iommu', 'iommufd', 'ioasid', 'ioasid-plugin'],
    exports: { '.': entry, './package.json': './package.json' },
    types: './dist/index.d.ts',
    main: './dist/index.js',
    // The sources ship beside dist so that source maps and stack traces point at real files.
    files: ['dist', 'src', 'README.md', 'LICENSE', '!dist/**/*.tsbuildinfo', '!dist/**/*.test.*', '!src/**/*.test.ts'],
    sideEffects: false,
    engines: { node: '>=20.19' },
    ...(o.inRepo
      ? { publishConfig: { access: 'public' } }
      : { scripts: { build: 'tsc -p tsconfig.lib.json', typecheck: 'tsc --noEmit -p tsconfig.json', test: 'vitest run' } }),
    peerDependencies: peers,
    devDependencies: o.inRepo
      ? { '@ioasid/core': '*' }
      : { ...peers, '@types/node': v.typesNode, typescript: v.typescript, vitest: v.vitest },
  };
}

/** The options a standalone package sets itself; inside the repository they come from tsconfig.base.json. */
const STANDALONE_COMPILER_OPTIONS = {
  target: 'ES2022',
  lib: ['ES2023'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  noImplicitOverride: true,
  experimentalDecorators: true,
  isolatedModules: true,
  declaration: true,
  declarationMap: true,
  sourceMap: true,
  skipLibCheck: true,
  forceConsistentCasingInFileNames: true,
};

/**
 * Inside the repository a package has the workspace's TypeScript layout, so that `nx sync` keeps its
 * project references (and those of its dependents) up to date: a solution tsconfig.json referencing
 * tsconfig.lib.json (the composite build of src, referencing core's) and tsconfig.spec.json (the tests,
 * referencing the library), and a typedoc.json like every published package's.
 */
function inRepoTsconfigs(dir: string, repoRoot: string): Record<string, string> {
  const base = rel(dir, join(repoRoot, 'tsconfig.base.json'));
  return {
    'tsconfig.json': json({ extends: base, files: [], include: [], references: [{ path: './tsconfig.lib.json' }, { path: './tsconfig.spec.json' }] }),
    'tsconfig.lib.json': json({
      extends: base,
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/tsconfig.lib.tsbuildinfo', types: ['node'] },
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts'],
      references: [{ path: rel(dir, join(repoRoot, 'packages/core/tsconfig.lib.json')) }],
    }),
    'tsconfig.spec.json': json({
      extends: base,
      compilerOptions: { outDir: './out-tsc/vitest', types: ['node'], tsBuildInfoFile: './out-tsc/vitest/tsconfig.tsbuildinfo' },
      include: ['src/**/*.test.ts'],
      references: [{ path: './tsconfig.lib.json' }],
    }),
    'typedoc.json': json({
      $schema: 'https://typedoc.org/schema.json',
      entryPoints: ['src/index.ts'],
      tsconfig: 'tsconfig.lib.json',
      includeVersion: true,
      readme: 'README.md',
      validation: { notExported: true, invalidLink: true, notDocumented: true },
      compilerOptions: { customConditions: ['@ioasid/source'] },
    }),
  };
}

function configFiles(dir: string, inRepo: boolean, repoRoot: string | null): Record<string, string> {
  // tsconfig.json checks everything (tests too) and emits only into out-tsc; tsconfig.lib.json builds dist.
  const check = {
    compilerOptions: { ...STANDALONE_COMPILER_OPTIONS, composite: false, rootDir: 'src', outDir: 'out-tsc/check', types: ['node'] },
    include: ['src/**/*.ts'],
  };
  const lib = {
    extends: './tsconfig.json',
    compilerOptions: { outDir: 'dist', tsBuildInfoFile: 'dist/tsconfig.lib.tsbuildinfo' },
    include: ['src/**/*.ts'],
    exclude: ['src/**/*.test.ts'],
  };
  const vitest = inRepo
    ? [
        `import { packageTestConfig } from '${rel(dir, join(repoRoot!, 'vitest.shared.ts'))}';`,
        '',
        'export default packageTestConfig(import.meta.dirname);',
        '',
      ].join('\n')
    : [
        "import { defineConfig } from 'vitest/config';",
        '',
        "export default defineConfig({ test: { include: ['src/**/*.test.ts'], environment: 'node', testTimeout: 60_000 } });",
        '',
      ].join('\n');
  if (inRepo) return { ...inRepoTsconfigs(dir, repoRoot!), 'vitest.config.ts': vitest };
  return {
    'tsconfig.json': json(check),
    'tsconfig.lib.json': json(lib),
    'vitest.config.ts': vitest,
    '.gitignore': 'node_modules/\ndist/\nout-tsc/\n*.tsbuildinfo\n',
  };
}

/** Whether `dir` is absent or an empty directory; a file or a directory with entries is refused. */
function checkTarget(dir: string): Result<void> {
  if (!existsSync(dir)) return { ok: true, value: undefined };
  if (!statSync(dir).isDirectory()) return { ok: false, error: `${dir} exists and is not a directory` };
  if (readdirSync(dir).length > 0) return { ok: false, error: `${dir} exists and is not empty: choose a new directory` };
  return { ok: true, value: undefined };
}

/** Validates the options and writes the package; nothing is written when a check fails. */
export function generatePlugin(options: GenerateOptions): Result<GenerateResult> {
  const id = validateId(options.id);
  if (!id.ok) return id;
  const name = validateName(options.name);
  if (!name.ok) return name;
  const inRepo = options.inRepo === true;
  const packageName = options.packageName ?? (inRepo ? `@ioasid/${options.id}` : `ioasid-${options.id}`);
  const pkg = validatePackageName(packageName);
  if (!pkg.ok) return pkg;
  if (typeof options.dir !== 'string' || options.dir.length === 0) return { ok: false, error: 'a target directory is required' };
  const dir = resolve(options.dir);
  const target = checkTarget(dir);
  if (!target.ok) return target;
  const repoRoot = inRepo ? findRepoRoot(options.repoRoot ?? dirname(dir)) : null;
  if (inRepo && !repoRoot) return { ok: false, error: `--in-repo: no ioasid monorepo (package.json with workspaces, tsconfig.base.json, vitest.shared.ts) above ${dir}` };
  if (repoRoot && !dir.startsWith(repoRoot + sep)) return { ok: false, error: `--in-repo: ${dir} is not inside ${repoRoot}` };

  let versions: PluginVersions;
  try {
    versions = pluginVersions();
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }

  const vars = { ID: options.id, NAME: options.name, PACKAGE: packageName };
  const files: Record<string, string> = {};
  for (const t of templateFiles(TEMPLATES)) files[t.slice(0, -'.tpl'.length)] = fill(readFileSync(join(TEMPLATES, t), 'utf8'), vars);
  files['LICENSE'] = readFileSync(join(PACKAGE_ROOT, 'LICENSE'), 'utf8');
  files['package.json'] = json(packageJson({ packageName, name: options.name, inRepo, relFromRepo: repoRoot ? rel(repoRoot, dir).replace(/^\.\//, '') : '', versions }));
  Object.assign(files, configFiles(dir, inRepo, repoRoot));

  for (const [path, text] of Object.entries(files)) {
    const abs = join(dir, path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, text);
  }
  const shown = rel(process.cwd(), dir);
  const nextSteps = inRepo
    ? ['npm install', 'npx nx sync', `npx nx run ${packageName}:typecheck`, `npx nx run ${packageName}:test`]
    : [`cd ${shown}`, 'npm install', 'npm run typecheck', 'npm test'];
  return { ok: true, value: { dir, packageName, files: Object.keys(files).sort(), nextSteps } };
}
