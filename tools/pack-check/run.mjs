#!/usr/bin/env node
// Packs every published package the way `npm publish` would, installs each tarball alone in an empty
// project with only its peers, checks what the tarball holds, and runs the first ```js example of the
// package's README against the installed copy. Run after `npm run build` (CI does).
//
//   node tools/pack-check/run.mjs [--keep] [package-name ...]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const only = new Set(args.filter((a) => !a.startsWith('--')));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Workspace packages that are published (not private), by name. */
function workspacePackages() {
  const out = new Map();
  for (const dir of readdirSync(join(root, 'packages'))) {
    const file = join(root, 'packages', dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    if (manifest.private) continue;
    out.set(manifest.name, { dir: join(root, 'packages', dir), manifest });
  }
  return out;
}

/** The workspace packages a package needs at run time: dependencies and peers, transitively. */
function closure(name, packages, seen = new Set()) {
  if (seen.has(name)) return seen;
  seen.add(name);
  const { manifest } = packages.get(name);
  for (const dep of [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]) {
    if (packages.has(dep)) closure(dep, packages, seen);
  }
  return seen;
}

/** Registry packages the consumer must add itself: the non-optional peers outside the workspace. */
function externalPeers(names, packages) {
  const peers = new Map();
  for (const name of names) {
    const { manifest } = packages.get(name);
    const optional = manifest.peerDependenciesMeta ?? {};
    for (const [peer, range] of Object.entries(manifest.peerDependencies ?? {})) {
      if (packages.has(peer) || optional[peer]?.optional) continue;
      peers.set(peer, range);
    }
  }
  return peers;
}

/** The first fenced ```js block of a README: the example a user copies first. */
function firstJsExample(readme) {
  const m = /^```js\n([\s\S]*?)^```/m.exec(readme);
  return m ? m[1] : undefined;
}

/** Problems with what a tarball holds. `files` are the paths npm put in it. */
function checkContents(name, files, unpacked) {
  const problems = [];
  for (const required of ['package.json', 'README.md', 'LICENSE']) {
    if (!files.includes(required)) problems.push(`${name}: the tarball has no ${required}`);
  }
  const have = new Set(files);
  for (const file of files) {
    const text = readFileSync(join(unpacked, file), 'utf8');
    if (/DESIGN\.md|STYLE\.md|\.\.\/shared\//.test(text)) problems.push(`${name}: ${file} refers to a document outside the repository`);
    if (!file.endsWith('.map')) continue;
    const map = JSON.parse(text);
    for (const source of map.sources ?? []) {
      const target = posix.normalize(posix.join(posix.dirname(file), map.sourceRoot ?? '', source));
      if (!have.has(target)) problems.push(`${name}: ${file} points at ${target}, which is not shipped`);
    }
  }
  return problems;
}

function run(cmd, argv, cwd) {
  return execFileSync(cmd, argv, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const packages = workspacePackages();
const targets = [...packages.keys()].filter((n) => only.size === 0 || only.has(n)).sort();
const work = mkdtempSync(join(tmpdir(), 'ioasid-pack-'));
const tarballs = new Map();
let passed = 0;
let failed = 0;

try {
  for (const [name, { dir }] of packages) {
    if (!existsSync(join(dir, 'dist'))) throw new Error(`${name} is not built: run \`npm run build\` first`);
    const [info] = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', work], dir));
    tarballs.set(name, { file: join(work, info.filename), files: info.files.map((f) => f.path) });
  }

  for (const name of targets) {
    const problems = [];
    const { dir } = packages.get(name);
    const { file, files } = tarballs.get(name);
    const unpacked = join(work, 'unpacked', name.replace('/', '+'));
    mkdirSync(unpacked, { recursive: true });
    run('tar', ['-xzf', file, '-C', unpacked, '--strip-components=1'], work);
    problems.push(...checkContents(name, files, unpacked));

    const example = firstJsExample(readFileSync(join(dir, 'README.md'), 'utf8'));
    if (!example) problems.push(`${name}: README.md has no \`\`\`js example`);

    const consumer = join(work, 'consumer', name.replace('/', '+'));
    mkdirSync(consumer, { recursive: true });
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
    const needed = closure(name, packages);
    // The example may bring in other workspace packages (a plugin beside the planner): install those too.
    for (const [, dep] of (example ?? '').matchAll(/from '(@ioasid\/[a-z0-9-]+)/g)) if (packages.has(dep)) closure(dep, packages, needed);
    const installs = [...needed].map((n) => tarballs.get(n).file);
    for (const [peer, range] of externalPeers(needed, packages)) installs.push(`${peer}@${range}`);
    const install = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...installs], {
      cwd: consumer,
      encoding: 'utf8',
    });
    if (install.status !== 0) problems.push(`${name}: npm install of the tarball failed:\n${install.stderr}`);
    else if (example) {
      writeFileSync(join(consumer, 'example.mjs'), example);
      const r = spawnSync(process.execPath, ['example.mjs'], { cwd: consumer, encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) problems.push(`${name}: the README example failed (exit ${r.status}):\n${r.stderr || r.stdout}`);
    }

    if (problems.length === 0) {
      passed++;
      console.log(`ok   ${name} (${files.length} files)`);
    } else {
      failed++;
      console.log(`FAIL ${name}`);
      for (const p of problems) console.log(`     ${p.replace(/\n/g, '\n     ')}`);
    }
  }
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

console.log(`pack-check: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
