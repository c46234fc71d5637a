import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../__tests__/run.js';

const hasCompiler = ['cc', 'gcc', 'clang'].some((cc) => spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0);
const SCENARIO = fileURLToPath(new URL('../../scenarios/pri-fault.yaml', import.meta.url));

describe('ioasid run', () => {
  it('runs the shipped PRI scenario step by step', async () => {
    const r = await run(['run', SCENARIO]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('handle_faults  1 group(s)');
    expect(r.stdout).toContain('all 19 steps behaved as expected');
  });

  it('prints a JSON trace', async () => {
    const r = await run(['run', SCENARIO, '--json']);
    const j = JSON.parse(r.stdout) as { ok: boolean; trace: { op: string; ok: boolean }[] };
    expect(j.ok).toBe(true);
    expect(j.trace.map((t) => t.op)).toContain('wait');
  });

  it('fails with exit 1 at the first step that does not behave as expected', async () => {
    const text = 'host: granite\nsteps:\n  - ioas_alloc: { as: a }\n  - ioas_unmap: { ioas: $a, iova: 0x1000, length: 0x1000 }\n  - ioas_alloc: {}\n';
    const r = await run(['run', '-'], { stdin: text });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/2 ERR ioas_unmap .*ENOENT/);
    expect(r.stdout).not.toContain('  3 ');
  });

  it('binds on a virtio-iommu guest only with --allow-unsafe-interrupts, as iommufd_device_bind does', async () => {
    const refused = 'host: virtio-iommu-qemu-q35-guest\nsteps:\n  - bind: { device: "0000:00:03.0", expect: { errno: EPERM } }\n';
    expect((await run(['run', '-'], { stdin: refused })).code).toBe(0);
    const bound = 'host: virtio-iommu-qemu-q35-guest\nsteps:\n  - bind: { device: "0000:00:03.0", as: dev }\n';
    expect((await run(['run', '-'], { stdin: bound })).code).toBe(1);
    const r = await run(['run', '-', '--allow-unsafe-interrupts'], { stdin: bound });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('all 1 steps behaved as expected');
  });

  it('explains a malformed scenario', async () => {
    const r = await run(['run', '-'], { stdin: 'host: granite\nsteps:\n  - frobnicate: {}\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown operation 'frobnicate'");
  });
});

describe('ioasid bench', () => {
  it('runs a workload in its own process and prints one JSON object', async () => {
    const r = await run(['bench', '--quick', '--only', 'bytes_per_mapped_page', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, { value: number; unit: string }>;
    expect(Object.keys(j)).toEqual(['bytes_per_mapped_page']);
    // The value is a measurement (heap growth can even be negative after a GC): only its shape is checked.
    expect(Number.isFinite(j.bytes_per_mapped_page.value)).toBe(true);
    expect(j.bytes_per_mapped_page.unit).toBe('bytes');
  });

  it.runIf(hasCompiler)('compares with the C reference compiled in the same session', async () => {
    const r = await run(['bench', '--quick', '--only', 'unmap_4k', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, { value: number; unit: string; c: number; ratio_to_c: number }>;
    expect(Object.keys(j)).toEqual(['unmap_4k']);
    expect(j.unmap_4k.c).toBeGreaterThan(0);
    expect(j.unmap_4k.ratio_to_c).toBeCloseTo(j.unmap_4k.value / j.unmap_4k.c, 2);
  });

  it('without a C compiler it says so on one line and reports no ratios', async () => {
    const r = await run(['bench', '--quick', '--only', 'unmap_4k', '--json'], { env: { CC: '/nonexistent/cc' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^bench: no working C compiler \(\/nonexistent\/cc: not found\): ratios to C are not reported$/m);
    const j = JSON.parse(r.stdout) as Record<string, { value: number; c?: number }>;
    expect(j.unmap_4k.value).toBeGreaterThan(0);
    expect(j.unmap_4k.c).toBeUndefined();
  });

  it('rejects an unknown workload with exit 2', async () => {
    const r = await run(['bench', '--only', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown workload 'nope'");
  });
});
