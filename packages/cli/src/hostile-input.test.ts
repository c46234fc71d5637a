/**
 * Hostile input to the CLI and the scenario runner: oversized and binary files are refused in one line
 * without echoing them, steps are looked up as own properties only, sizes past what the model allows are
 * IommufdErrors (never a RangeError or a multi-gigabyte allocation), numeric options are bounded.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './__tests__/run.js';
import { MAX_INPUT_BYTES } from './io.js';

const dir = mkdtempSync(join(tmpdir(), 'ioasid-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scenario = (steps: string) => run(['run', '-'], { stdin: `host: granite\nsteps:\n${steps}` });

describe('input files', () => {
  it('a file past the 64 MiB cap is refused before it is read, in one line', async () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, 'steps: []\n');
    // Sparse: 100 MB of size without 100 MB of disk or memory.
    truncateSync(big, 100_000_000);
    // Load both commands' modules first (a small file), so that what the big file costs is measured alone.
    const small = join(dir, 'small.yaml');
    writeFileSync(small, 'steps: []\n');
    for (const argv of [['run', small], ['plan', small]]) await run(argv);
    const before = process.memoryUsage().rss;
    for (const argv of [['run', big], ['plan', big]]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr).toContain(`larger than the ${MAX_INPUT_BYTES / 2 ** 20} MiB input limit`);
      expect(r.stderr.split('\n').filter((l) => l.includes('limit')).length).toBe(1);
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
  });

  it('a binary file is refused without echoing its bytes', async () => {
    const bin = join(dir, 'bin.yaml');
    writeFileSync(bin, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0x1b, 0x5b, 0x32, 0x4a, 0xff]));
    const r = await run(['run', bin]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is a binary file');
    expect(r.stderr).not.toContain('\x1b[2J');
    expect(r.stderr).not.toContain('ELF');
    const bad = join(dir, 'latin1.yaml');
    writeFileSync(bad, Buffer.from([0x73, 0x74, 0x65, 0x70, 0x73, 0x3a, 0xe9, 0x0a]));
    expect((await run(['run', bad])).stderr).toContain('is not UTF-8 text');
  });
});

describe('scenario steps', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])('%s is an unknown step, not a method of Object', async (op) => {
    const r = await scenario(`  - ${op}: {}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`unknown operation '${op}'`);
  });

  it('sizes past what the model allows fail with the kernel errno, not a RangeError', async () => {
    const r = await scenario(
      [
        '  - mmap: { length: 0x4000000000000, expect: { errno: ENOMEM } }',
        '  - mmap: { length: 0x10000000000, expect: { errno: ENOMEM } }',
        '  - memfd: { size: 0x100000000000, expect: { errno: ENOMEM } }',
        '  - mmap: { length: 0x1000, as: buf }',
        '  - poke: { va: $buf, fill: 1, length: 0x100000000000 }',
        '',
      ].join('\n'),
    );
    expect(r.stdout).toMatch(/4 ok +mmap/);
    // The poke of 16 TiB is refused by the step's byte cap, before any buffer is sized by it.
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/5 \S+ +poke .*more than a step may carry/);
    expect(r.stdout + r.stderr).not.toMatch(/RangeError|Invalid typed array length|Array buffer allocation failed/);
  });

  it('fail_nth injects the n-th failure: the command fails with its site errno and the retry succeeds', async () => {
    const r = await scenario(
      [
        '  - ioas_alloc: { as: ioas }',
        '  - fail_nth: { n: 1, sites: [object-alloc] }',
        '  - ioas_alloc: { expect: { errno: ENOMEM } }',
        '  - ioas_alloc: { as: again }',
        '  - fail_nth: { n: 1, sites: [nonsense] }',
        '',
      ].join('\n'),
    );
    expect(r.stdout).toMatch(/3 ok +ioas_alloc +failed as expected/);
    expect(r.stdout).toMatch(/4 ok +ioas_alloc +ioas_id 2/);
    expect(r.stdout).toMatch(/5 \S+ +fail_nth .*unknown site 'nonsense'/);
  });
});

describe('numeric options', () => {
  it('bench --runs is bounded', async () => {
    const r = await run(['bench', '--runs', '1000000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--runs takes an integer from 1 to 100');
  });
});
