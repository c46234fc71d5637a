/**
 * Guards the fault round trip's number representations. V8 compiles arithmetic, compares and object
 * fields for the kinds of numbers it saw: small integers (31/32-bit "Smis") or doubles. A value that
 * leaves the small integers later (an IOVA the caller passes from 2^31 up, an address word with bit 31
 * set, a pinned total in bytes past 2 GiB) then deoptimizes the compiled code, and a field that takes such
 * a value changes the shape of its object, which deoptimizes every function that reads objects of that
 * shape: in the `fault_roundtrip` benchmark, ~15 functions at once in the batch where the IOVA's low word
 * reached 2^31 and the pinned total 2 GiB, and the functions of the IOAS_MAP path when the IOVAs passed
 * 4 GiB (docs/performance.md, "fault_roundtrip, representation"). Nothing else notices: the results are
 * the same, only slower.
 *
 * So this test runs __tests__/representation-driver.ts in a child node with --trace-deopt-verbose and
 * --trace-opt: the benchmark's round trip warmed up at small IOVAs until the hot path is compiled, then
 * at IOVAs past 4 GiB whose low word crosses 2^31 while the pinned total crosses 2 GiB. It fails on any
 * deoptimization after the crossing starts whose position is in a package's source, naming the
 * function, the reason and the file. Deoptimizations for missing type feedback are let through: they
 * mark a path first taken after compilation (a new gap between reserved IOVA ranges, a new 1 GiB region
 * whose upper table is missing), not a representation that changed; those of the driver's own loop too.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const PKG_DIR = fileURLToPath(new URL('..', import.meta.url));
const DRIVER = fileURLToPath(new URL('./__tests__/representation-driver.ts', import.meta.url));

/** One deoptimization as --trace-deopt-verbose prints it. */
interface Deopt {
  readonly kind: string;
  readonly reason: string;
  readonly fn: string;
  /** The innermost source position (`file:line:column`), '' when none is printed (a lazy deoptimization). */
  readonly at: string;
  /** After the driver printed `phase cross`. */
  readonly crossing: boolean;
}

/** The deoptimizations in the trace, in order, and the functions TurboFan finished compiling before `phase cross`. */
function parseTrace(text: string): { deopts: Deopt[]; optimizedBefore: Set<string>; phases: string[] } {
  const deopts: Deopt[] = [];
  const optimizedBefore = new Set<string>();
  const phases: string[] = [];
  let crossing = false;
  let open: { kind: string; reason: string; fn: string; at: string } | null = null;
  const close = () => {
    if (open !== null) deopts.push({ ...open, crossing });
    open = null;
  };
  for (const line of text.split('\n')) {
    const phase = /^phase (\w+)$/.exec(line);
    if (phase !== null) {
      close();
      phases.push(phase[1]);
      if (phase[1] === 'cross') crossing = true;
      continue;
    }
    const b = /^\[bailout \(kind: ([^,]+), reason: (.*)\): begin\. deoptimizing \S+ <JSFunction ([^ >]*)/.exec(line);
    if (b !== null) {
      close();
      open = { kind: b[1], reason: b[2], fn: b[3], at: '' };
      continue;
    }
    const at = /;;; deoptimize at <([^>]*)>/.exec(line);
    if (at !== null && open !== null && open.at === '') {
      open.at = at[1];
      continue;
    }
    if (line.startsWith('[bailout end')) close();
    const opt = /^\[completed (?:optimizing|compiling) \S+ <JSFunction ([^ >]*)[^\]]*TURBOFAN/.exec(line);
    if (opt !== null && !crossing) optimizedBefore.add(opt[1]);
  }
  close();
  return { deopts, optimizedBefore, phases };
}

/** Whether a deoptimization is the model's doing: positioned in a package's source (not a test), and not for missing feedback. */
function isModelDeopt(d: Deopt): boolean {
  if (d.reason.startsWith('Insufficient type feedback')) return false;
  return /\/packages\/[^/]+\/src\//.test(d.at) && !/\/__tests__\//.test(d.at) && !/\.test\.ts/.test(d.at);
}

/**
 * Compiled before the crossing, or the test checks nothing: the driver's loop, into which TurboFan inlines
 * much of the model (deoptimizations there are told apart by their innermost position). Which model
 * functions get code of their own depends on the inlining budget, so none is named.
 */
const COMPILED = ['roundTrips'];

describe('V8 number representations of the fault round trip', () => {
  let trace = '';

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ioasid-deopt-'));
    const file = join(dir, 'trace.txt');
    // Stdout to a file, not a pipe: V8 prints with C stdio (see inline-budget.test.ts).
    const fd = openSync(file, 'w');
    try {
      // Through tsx with the source condition, as `npm run bench` runs; NODE_OPTIONS cleared so that nothing
      // inherited changes the compiler's flags.
      const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@ioasid/source', '--trace-deopt-verbose', '--trace-opt', DRIVER], {
        cwd: PKG_DIR,
        env: { ...process.env, NODE_OPTIONS: '' },
        stdio: ['ignore', fd, 'pipe'],
        timeout: 60_000,
      });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 4096)));
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      if (code !== 0) throw new Error(`the round-trip driver exited with ${code ?? signal}:\n${stderr}`);
      trace = readFileSync(file, 'utf8');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('the driver warmed up, crossed and finished, with the hot path compiled before the crossing', () => {
    const { phases, optimizedBefore } = parseTrace(trace);
    expect(phases).toEqual(['cross', 'done']);
    const missing = COMPILED.filter((f) => !optimizedBefore.has(f));
    expect(missing, `not compiled by TurboFan before the crossing (the warm-up is too short for this V8?): ${missing.join(', ')}`).toEqual([]);
  });

  it('no function of the model deoptimizes when IOVAs pass 4 GiB, their low word 2^31 and the pinned total 2 GiB', () => {
    const bad = parseTrace(trace).deopts.filter((d) => d.crossing && isModelDeopt(d));
    expect(
      bad.map((d) => `${d.fn}: ${d.reason} (${d.kind}) at ${d.at.replace(/^.*\/packages\//, 'packages/')}`),
      'a value on the round trip changed representation (see the comments at the top of this file and docs/performance.md); ' +
        'keep 32-bit words signed (`| 0`), compare pages rather than bytes, start IOVA arithmetic from a double, give fields that hold IOVAs a double from construction',
    ).toEqual([]);
  });

  it('reads the trace format: bailouts with and without a position, the phases and the compiled functions', () => {
    const text = [
      '[completed optimizing 0x1 <JSFunction movePages (sfi = 0x2)> (target TURBOFAN) - took 0.1, 1.0, 0.1 ms]',
      '[bailout (kind: deopt-eager, reason: wrong map): begin. deoptimizing 0x3 <JSFunction early (sfi = 0x4)>, 0x5 <Code TURBOFAN>, opt id 1]',
      '            ;;; deoptimize at <file:///x/packages/core/src/a.ts:1:10>',
      '[bailout end. took 0.1 ms]',
      'phase cross',
      '[bailout (kind: deopt-eager, reason: lost precision): begin. deoptimizing 0x3 <JSFunction setFields (sfi = 0x4)>, 0x5 <Code TURBOFAN>, opt id 2]',
      '  reading input frame setFields => bytecode_offset=44, args=6, height=1, retval=0(#0); inputs:',
      '            ;;; deoptimize at <file:///x/packages/vtd/src/fault-codec.ts:1:99> inlined at <file:///x/packages/core/src/b.ts:1:5>',
      '[bailout end. took 0.1 ms]',
      '[bailout (kind: deopt-eager, reason: Insufficient type feedback for compare operation): begin. deoptimizing 0x3 <JSFunction walkStraight (sfi = 0x4)>, 0x5 <Code TURBOFAN>]',
      '            ;;; deoptimize at <file:///x/packages/vtd/src/pte.ts:1:9>',
      '[bailout (kind: deopt-eager, reason: overflow): begin. deoptimizing 0x3 <JSFunction roundTrips (sfi = 0x4)>, 0x5 <Code TURBOFAN>]',
      '            ;;; deoptimize at <file:///x/packages/vtd/src/__tests__/representation-driver.ts:1:9>',
      '[bailout (kind: deopt-lazy, reason: (unknown)): begin. deoptimizing 0x3 <JSFunction drain (sfi = 0x4)>, 0x5 <Code TURBOFAN>]',
      '[completed optimizing 0x1 <JSFunction late (sfi = 0x2)> (target TURBOFAN) - took 0.1, 1.0, 0.1 ms]',
      'phase done',
    ].join('\n');
    const { deopts, optimizedBefore, phases } = parseTrace(text);
    expect(phases).toEqual(['cross', 'done']);
    expect([...optimizedBefore]).toEqual(['movePages']);
    expect(deopts.map((d) => [d.fn, d.reason, d.crossing, isModelDeopt(d)])).toEqual([
      ['early', 'wrong map', false, true],
      ['setFields', 'lost precision', true, true],
      ['walkStraight', 'Insufficient type feedback for compare operation', true, false],
      ['roundTrips', 'overflow', true, false],
      ['drain', '(unknown)', true, false],
    ]);
    expect(deopts[1].at).toBe('file:///x/packages/vtd/src/fault-codec.ts:1:99');
  });
});
