/**
 * End to end: a plugin generated with --in-repo into the repository's gitignored tmp/ typechecks and
 * passes its own tests, the conformance kit over its presets included. tsc and vitest run as child
 * processes in the generated package, as its author would run them.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRepoRoot, generatePlugin } from './index.js';

const run = promisify(execFile);
const repo = findRepoRoot(import.meta.dirname);
const bin = (name: string): string => join(repo ?? '.', 'node_modules', '.bin', name);

/** The environment without the outer vitest's variables, so the inner run is an ordinary one. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV') env[k] = v;
  return env;
}

describe.runIf(repo !== null)('a generated plugin (--in-repo)', () => {
  let scratch = '';
  let dir = '';

  beforeAll(async () => {
    const tmp = join(repo!, 'tmp');
    mkdirSync(tmp, { recursive: true });
    scratch = mkdtempSync(join(tmp, 'create-plugin-'));
    dir = join(scratch, 'acme-iommu');
    const r = generatePlugin({ dir, id: 'acme-iommu', name: 'Acme IOMMU', inRepo: true });
    if (!r.ok) throw new Error(r.error);
    // The generated package sees core through its declarations, as every workspace package does:
    // bring them up to date (incremental; CI has built them already).
    await run(process.execPath, [resolve(repo!, 'node_modules/typescript/bin/tsc'), '-b', join(repo!, 'packages/core/tsconfig.lib.json')], { cwd: repo!, env: childEnv() });
  }, 120_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('builds and typechecks as a workspace package (tsc -b over its lib and spec projects)', async () => {
    // The repository's layout: a solution tsconfig.json referencing tsconfig.lib.json (which references
    // core's) and tsconfig.spec.json, so that `nx sync` maintains the references.
    for (const f of ['tsconfig.json', 'tsconfig.lib.json', 'tsconfig.spec.json', 'typedoc.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    // The file roles of docs/plugin-contract.md, as every vendor package in the repository has them.
    for (const f of ['registers.ts', 'probe.ts', 'pgtable.ts', 'unit.ts', 'records.ts', 'fault-codec.ts', 'presets.ts', 'decode.ts', 'vendor.ts', 'index.ts']) {
      expect(existsSync(join(dir, 'src', f)), `src/${f}`).toBe(true);
    }
    expect(existsSync(join(dir, 'src', 'faults.ts')), 'src/faults.ts (split into records.ts and fault-codec.ts)').toBe(false);
    const r = await run(bin('tsc'), ['-b', dir], { cwd: dir, env: childEnv() }).catch((e: { stdout?: string; stderr?: string }) => {
      throw new Error(`tsc failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    });
    expect(r.stdout).toBe('');
  }, 120_000);

  it('passes its tests: register decode, the probe line, records and the conformance kit on every preset, fault codec included', async () => {
    const r = await run(bin('vitest'), ['run', '--reporter=verbose', '--color=false'], { cwd: dir, env: { ...childEnv(), NO_COLOR: '1' } }).catch((e: { stdout?: string; stderr?: string }) => {
      throw new Error(`vitest failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    });
    const out = r.stdout;
    expect(out).toMatch(/Test Files\s+4 passed \(4\)/);
    expect(out).toContain('conformance: acme-iommu on Acme IOMMU server');
    expect(out).toContain('conformance: acme-iommu on Acme IOMMU embedded');
    expect(out).not.toMatch(/\bfailed\b/);
    expect(out).toMatch(/✓ [^\n]*fault codec: has a fault codec whose records round-trip/);
    const passed = /Tests\s+(\d+) passed/.exec(out);
    expect(Number(passed?.[1])).toBeGreaterThanOrEqual(30);
  }, 120_000);
});
