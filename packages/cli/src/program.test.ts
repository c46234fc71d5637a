import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { FIXTURES, run } from './__tests__/run.js';
import { CommandContext } from './context.js';
import { processIo } from './io.js';
import { COMMANDS } from './program.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/src/bin.ts');
const TSX = join(ROOT, 'node_modules/.bin/tsx');

function spawnCli(args: string[], input?: string) {
  return spawnSync(TSX, ['--conditions=@ioasid/source', BIN, ...args], { cwd: ROOT, input, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

describe('ioasid help', () => {
  it.each(['probe', 'plan', 'decode', 'profiles'])('%s --help shows examples and exits 0', async (cmd) => {
    const r = await run([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Example');
    expect(r.stdout).toContain(`$ ioasid ${cmd === 'profiles' ? 'profiles' : cmd}`);
  });

  it('lists the built-in profiles, the mixed ones included', async () => {
    const r = await run(['profiles']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mixed-vtd +2 +3 +mixed VT-d host/m);
    expect(r.stdout).toMatch(/^arm-multi-smmu +3 +3 +Arm host with several SMMUv3/m);
    expect(r.stdout).toMatch(/^vtd-dell-poweredge-r770/m);
  });

  it('lists every command by the summary its module registers', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    for (const entry of COMMANDS) {
      const full = new Command('ioasid');
      (await entry.load())(full, () => new CommandContext(processIo()));
      const registered = full.commands.find((c) => c.name() === entry.name);
      expect(registered?.description()).toBe(entry.summary);
      expect(top.stdout).toContain(entry.name);
    }
  });

  it('shows the full help of a command through help <command>, and checks its options', async () => {
    const r = await run(['help', 'plan']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--policy <policy>');
    const bad = await run(['profiles', '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--frobnicate'");
  });

  it('an unknown command is bad usage', async () => {
    expect((await run(['fly'])).code).toBe(2);
  });
});

describe('the ioasid binary (tsx, source condition)', () => {
  it('exits 0, 1 and 2 as documented', () => {
    const ok = spawnCli(['plan', join(FIXTURES, 'mixed-host.yaml'), '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).ok).toBe(true);
    const refused = spawnCli(['plan', join(FIXTURES, 'mixed-host.yaml'), '--viommu', 'intel-iommu,aw-bits=48,caching-mode=on']);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain('dmar1: MGAW 39 < aw-bits 48');
    const malformed = spawnCli(['plan', join(FIXTURES, 'malformed-profile.yaml')]);
    expect(malformed.status).toBe(1);
    const usage = spawnCli(['plan', '--policy', 'x', 'a']);
    expect(usage.status).toBe(2);
    const stdin = spawnCli(['probe', '-', '--json'], 'DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c40660462 ecap f050da\n');
    expect(stdin.status).toBe(0);
    expect(JSON.parse(stdin.stdout).profile.units[0].id).toBe('dmar0');
  });
});
