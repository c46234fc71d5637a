/**
 * Guards V8's inlining budget on the translation hot path. TurboFan inlines a function into its caller
 * only when its bytecode is at most --max-inlined-bytecode-size (460 bytes in Node 20 to 24), and into
 * one compiled function only while the inlined total stays within --max-inlined-bytecode-size-cumulative
 * (920). Nothing else notices when an edit crosses those lines: the code still works, and `walk` loses
 * about 30 % (docs/performance.md, "walk and iotlb_hit, second part: inlining"). So this test runs
 * __tests__/inline-budget-driver.ts in a child node with --print-bytecode, once per function name (the
 * filter takes one name or prefix), reads each guarded function's bytecode length, and fails naming the
 * function, its size and the limit.
 *
 * What relies on the budget (the comments at each function say why):
 * - VtdPageTable.walk (pte.ts), a small dispatcher, and the walk it picks: walkCompact (a 4-level table
 *   without the paging-structure cache, the `walk` benchmark) is inlined through the unit's translate
 *   into the caller's loop; walkFiveCompact (a 5-level table, the fault round trip) into the unit's miss.
 * - IommuUnit.translate and walkPaging (core translate/unit.ts): inlined into the caller's loop, which
 *   with the IOTLB off then holds translate, Iotlb.hit, walkPaging and the VT-d walk in one piece of
 *   code: the cumulative check below.
 * - Iotlb.hit and Iotlb.probe (core translate/iotlb.ts): the IOTLB hit inlined into a DMA loop.
 * - IommuUnit.miss: the other way round, kept above the limit so that it is never inlined into
 *   walkPaging (and so translate): translate compiled with a walk and an IOTLB fill inlined was too big
 *   to be inlined into a DMA loop. What it inlines (the walk, the failure report, the IOTLB fill) must
 *   fit the cumulative budget: a walk of the fault round trip then makes no call.
 * - PciDevice.movePages (core host/device.ts), the DMA's page loop: the IOTLB hit and the frame copy
 *   (PhysicalMemory.readInFrame) inlined into it, with a few bytes of the cumulative budget to spare.
 * walkStraight and walkFive (the 5-level walk that reports where it stopped) do not rely on it: they are
 * reached through a call and are over the limit.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const PKG_DIR = fileURLToPath(new URL('..', import.meta.url));
const DRIVER = fileURLToPath(new URL('./__tests__/inline-budget-driver.ts', import.meta.url));

/** One guarded function: its name (the bytecode filter), property names its bytecode must use (which class's function it is), and the rule. */
interface Guard {
  readonly label: string;
  readonly name: string;
  /** The --print-bytecode-filter that prints it (a prefix ending in `*` covers several names in one run). */
  readonly filter: string;
  readonly uses: readonly string[];
  /** 'inlined': must stay at or below the single-inlining limit; 'called': must stay above it. */
  readonly rule: 'inlined' | 'called';
  readonly why: string;
}

const GUARDS: readonly Guard[] = [
  {
    label: 'VtdPageTable.walk (packages/vtd/src/pte.ts)',
    name: 'walk',
    filter: 'walk*',
    uses: ['walkCompact', 'walkFiveCompact'],
    rule: 'inlined',
    why: 'the unit would call the walk instead of inlining it, and the `walk` benchmark loses about 30 %; keep it a dispatcher',
  },
  {
    label: 'VtdPageTable.walkCompact (packages/vtd/src/pte.ts)',
    name: 'walkCompact',
    filter: 'walk*',
    uses: ['walkStraight', 'slab32'],
    rule: 'inlined',
    why: 'the walk loop would call the 4-level walk instead of inlining it, and the `walk` benchmark loses about 30 %; move what grew into walkStraight',
  },
  {
    label: 'VtdPageTable.walkFiveCompact (packages/vtd/src/pte.ts)',
    name: 'walkFiveCompact',
    filter: 'walk*',
    uses: ['walkFive', 'slab32'],
    rule: 'inlined',
    why: "the unit's miss would call the 5-level walk (each fault round trip walks twice); move what grew into walkFive",
  },
  {
    label: 'IommuUnit.walkPaging (packages/core/src/translate/unit.ts)',
    name: 'walkPaging',
    filter: 'walk*',
    uses: ['miss', 'walks'],
    rule: 'inlined',
    why: 'translate would call it, and with the IOTLB off every walk would pay a call',
  },
  {
    label: 'IommuUnit.walkFailed (packages/core/src/translate/unit.ts)',
    name: 'walkFailed',
    filter: 'walk*',
    uses: ['contextFault', 'failure'],
    rule: 'inlined',
    why: "the unit's miss would call it on every fault",
  },
  {
    label: 'IommuUnit.translate (packages/core/src/translate/unit.ts)',
    name: 'translate',
    filter: 'translate',
    uses: ['walkPaging', 'hit'],
    rule: 'inlined',
    why: 'a DMA or translation loop would call translate instead of inlining the IOTLB hit',
  },
  {
    label: 'Iotlb.hit (packages/core/src/translate/iotlb.ts)',
    name: 'hit',
    filter: 'hit',
    uses: ['probe'],
    rule: 'inlined',
    why: 'the IOTLB hit would no longer be inlined into translate',
  },
  {
    label: 'Iotlb.probe (packages/core/src/translate/iotlb.ts)',
    name: 'probe',
    filter: 'probe',
    uses: ['slot', 'misses'],
    rule: 'inlined',
    why: 'the IOTLB hit would be a call in every DMA loop (`iotlb_hit`)',
  },
  {
    label: 'Iotlb.slot (packages/core/src/translate/iotlb.ts)',
    name: 'slot',
    filter: 'slot',
    uses: ['mask', 'imul'],
    rule: 'inlined',
    why: 'the IOTLB hit and fill would call it',
  },
  {
    label: 'Iotlb.insert (packages/core/src/translate/iotlb.ts)',
    name: 'insert',
    filter: 'insert',
    uses: ['insertWide', 'slot'],
    rule: 'inlined',
    why: "the unit's miss would call the IOTLB fill; move what grew into insertWide",
  },
  {
    label: 'VtdPageTable.markAccess (packages/vtd/src/pte.ts)',
    name: 'markAccess',
    filter: 'markAccess',
    uses: ['hwAccessDirty'],
    rule: 'inlined',
    why: "the DMA's page loop would call it for every page",
  },
  {
    label: 'PhysicalMemory.readInFrame (packages/core/src/memory/physical.ts)',
    name: 'readInFrame',
    filter: 'readInFrame',
    uses: ['dense', 'readInFrameSlow'],
    rule: 'inlined',
    why: "the DMA's page loop would call the frame copy for every page",
  },
  {
    label: 'IommuUnit.miss (packages/core/src/translate/unit.ts)',
    name: 'miss',
    filter: 'miss',
    uses: ['walkFailed', 'insert'],
    rule: 'called',
    why: 'it is large on purpose: inlined into walkPaging it makes translate too big to be inlined into a DMA loop',
  },
];

/**
 * The functions each hot loop inlines, in the order TurboFan takes them (callers first, then by how
 * often each call ran), and where they go: the cumulative checks below.
 */
const CHAINS: readonly { readonly label: string; readonly names: readonly string[] }[] = [
  // The `walk` benchmark's loop (the IOTLB off): translate and the 4-level walk in one piece of code.
  { label: 'the walk loop', names: ['translate', 'hit', 'walkPaging', 'walk', 'walkCompact'] },
  // IommuUnit.miss (an IOTLB miss, twice per fault round trip): the 5-level walk, the report of a walk
  // that failed and the IOTLB fill.
  { label: "the IOTLB miss (IommuUnit.miss)", names: ['walk', 'walkFiveCompact', 'walkFailed', 'insert', 'slot'] },
  // PciDevice.movePages (every DMA): the IOTLB hit, the frame copy and the A/D update.
  { label: "the DMA's page loop (PciDevice.movePages)", names: ['translate', 'walkPaging', 'hit', 'probe', 'slot', 'markAccess', 'readInFrame'] },
];

/** One function's bytecode as --print-bytecode shows it. */
interface PrintedBytecode {
  readonly name: string;
  readonly length: number;
  /** The strings of its constant pool (property and global names it uses). */
  readonly strings: ReadonlySet<string>;
}

const HEADER = '[generated bytecode for function: ';

/**
 * The functions in --print-bytecode output. The length is V8's "Bytecode length" line, or, where a V8
 * prints none, the end of the last instruction (`@ offset : hex bytes`).
 */
function parseBytecode(text: string): PrintedBytecode[] {
  const out: PrintedBytecode[] = [];
  for (const block of text.split(HEADER).slice(1)) {
    const name = /^(\S*)/.exec(block)?.[1] ?? '';
    let length = -1;
    const stated = /^Bytecode length: (\d+)$/m.exec(block);
    if (stated !== null) {
      length = Number(stated[1]);
    } else {
      for (const m of block.matchAll(/@\s*(\d+) : ((?:[0-9a-f]{2} )*[0-9a-f]{2})/g)) {
        length = Math.max(length, Number(m[1]) + m[2].split(' ').length);
      }
    }
    const pool = block.split(/^Constant pool/m)[1]?.split(/^Handler Table/m)[0] ?? '';
    const strings = new Set<string>();
    for (const m of pool.matchAll(/<(?:Internalized)?String\[\d+\]: #([^>]*)>/g)) strings.add(m[1]);
    out.push({ name, length, strings });
  }
  return out;
}

/** A V8 flag's default as `node --v8-options` prints it, or `fallback` where it prints none. */
function v8Default(options: string, flag: string, fallback: number): number {
  const m = new RegExp(`default: --${flag}=([0-9.]+)`).exec(options);
  return m === null ? fallback : Number(m[1]);
}

/**
 * The child's --print-bytecode output. Its stdout is a file, not a pipe: V8 prints with C stdio, and on a
 * pipe that node has made non-blocking, whatever does not fit while the parent is busy is lost.
 */
async function printBytecode(filter: string, dir: string): Promise<string> {
  const file = join(dir, `${filter.replace(/\W/g, '_')}.txt`);
  const fd = openSync(file, 'w');
  try {
    // Through tsx with the source condition, as `npm run bench` runs; NODE_OPTIONS cleared so that
    // nothing inherited changes the compiler's flags.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=@ioasid/source', '--print-bytecode', `--print-bytecode-filter=${filter}`, DRIVER],
      { cwd: PKG_DIR, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', fd, 'pipe'], timeout: 60_000 },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 4096)));
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (code !== 0) throw new Error(`the bytecode driver (filter ${filter}) exited with ${code ?? signal}:\n${stderr}`);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
}

describe('V8 inlining budget of the translation hot path', () => {
  let printed: PrintedBytecode[] = [];
  let single = 460;
  let cumulative = 920;
  let reserve = 1.2;

  beforeAll(async () => {
    const { stdout: options } = await run(process.execPath, ['--v8-options'], { maxBuffer: 16 << 20 });
    single = v8Default(options, 'max-inlined-bytecode-size', single);
    cumulative = v8Default(options, 'max-inlined-bytecode-size-cumulative', cumulative);
    reserve = v8Default(options, 'reserve-inline-budget-scale-factor', reserve);
    const filters = [...new Set(GUARDS.map((g) => g.filter))];
    const dir = mkdtempSync(join(tmpdir(), 'ioasid-bytecode-'));
    try {
      printed = (await Promise.all(filters.map((f) => printBytecode(f, dir)))).flatMap(parseBytecode);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  /** The guarded function's length; fails when it is missing or ambiguous. */
  function lengthOf(name: string): number {
    const g = GUARDS.find((x) => x.name === name);
    if (g === undefined) throw new Error(`no guard named ${name}`);
    const found = printed.filter((p) => p.name === g.name && g.uses.every((u) => p.strings.has(u)));
    expect(
      found.length,
      `${g.label}: expected exactly one printed function named "${g.name}" whose bytecode uses ${g.uses.join(', ')}; ` +
        `found ${found.length}. If it was renamed or its fields changed, update GUARDS in this test.`,
    ).toBe(1);
    const { length } = found[0];
    expect(length, `${g.label}: no bytecode length in the printed output`).toBeGreaterThan(0);
    return length;
  }

  function skipWithoutOutput(ctx: { skip: (note?: string) => void }): void {
    if (printed.length === 0) ctx.skip(`${process.version} printed no bytecode with --print-bytecode`);
  }

  it.for(GUARDS.map((g) => [g.label, g] as const))('%s', ([, g], ctx) => {
    skipWithoutOutput(ctx);
    const n = lengthOf(g.name);
    if (g.rule === 'inlined') {
      expect(
        n,
        `${g.label} is ${n} bytes of bytecode, over V8's inlining limit of ${single} (--max-inlined-bytecode-size): ` +
          `${g.why}. Bring it back to ${single} or less (docs/performance.md, "walk and iotlb_hit, second part: inlining").`,
      ).toBeLessThanOrEqual(single);
    } else {
      expect(
        n,
        `${g.label} is ${n} bytes of bytecode, at or under V8's inlining limit of ${single}, so it may now be inlined: ${g.why}.`,
      ).toBeGreaterThan(single);
    }
  });

  it.for(CHAINS.map((c) => [c.label, c] as const))('%s fits the cumulative budget', ([, chain], ctx) => {
    skipWithoutOutput(ctx);
    // TurboFan inlines a candidate only while what it inlined so far plus the candidate's size times
    // the reserve factor stays within the cumulative budget.
    let total = 0;
    for (const name of chain.names) {
      const n = lengthOf(name);
      const needed = total + Math.floor(n * reserve);
      expect(
        needed,
        `${chain.label}'s inlining: ${chain.names.join(' + ')}; at ${name} (${n} bytes) it needs ${total} + ${n} x ${reserve} = ${needed}, ` +
          `over --max-inlined-bytecode-size-cumulative ${cumulative}, so ${name} would be called, not inlined. ` +
          `Shrink one of them (docs/performance.md, "walk and iotlb_hit, second part: inlining").`,
      ).toBeLessThanOrEqual(cumulative);
      total += n;
    }
  });

  it('reads lengths from a V8 that prints no "Bytecode length" line', () => {
    const text =
      `${HEADER}walk (0x1 <SharedFunctionInfo walk>)]\nParameter count 3\n` +
      ' 10 S> 0x2 @    0 : 0c                LdaZero\n' +
      '       0x3 @    1 : 2d 02 00 01       GetNamedProperty <this>, [0], [1]\n' +
      '       0x4 @    5 : a9                Return\n' +
      'Constant pool (size = 1)\n           0: 0x5 <String[6]: #slab32>\nHandler Table (size = 0)\n' +
      `${HEADER}hit (0x6 <SharedFunctionInfo hit>)]\nBytecode length: 41\nConstant pool (size = 0)\n`;
    const parsed = parseBytecode(text);
    expect(parsed.map((p) => [p.name, p.length])).toEqual([
      ['walk', 6],
      ['hit', 41],
    ]);
    expect([...parsed[0].strings]).toEqual(['slab32']);
  });
});
