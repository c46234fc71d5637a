/**
 * `ioasid bench [--json] [--quick] [--only walk,map_4k] [--runs N] [--cpu-prof DIR]` (and `npm run bench`)
 *
 * Runs the workloads of docs/performance.md, each in its own process (--expose-gc; under tsx with the
 * @ioasid/source condition when running from source), N times one after the other, and reports the
 * median of the runs. With --json, stdout carries exactly one JSON object; progress goes to stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import cliProgress from 'cli-progress';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { C_REFERENCE_SOURCE } from './c-reference.js';
import { C_COUNTERPART, C_METRICS, WORKERS, type Metric, type WorkloadResult } from './spec.js';

const here = dirname(fileURLToPath(import.meta.url));
const requireFromHere = createRequire(import.meta.url);

/**
 * Metric key -> its target: an absolute figure (bigger or smaller is better), or a fraction of the C
 * reference measured in the same session. Metrics without an entry are reported without a target.
 */
const TARGETS: Record<string, { target: number; higher: boolean; label: string; ofC?: boolean }> = {
  walk: { target: 1 / 3, higher: true, label: '>= 1/3 of C', ofC: true },
  iotlb_hit: { target: 1 / 3, higher: true, label: '>= 1/3 of C', ofC: true },
  map_4k: { target: 1 / 4, higher: true, label: '>= 1/4 of C', ofC: true },
  unmap_4k: { target: 1 / 2, higher: true, label: '>= 1/2 of C', ofC: true },
  dma_read_4k: { target: 1 / 10, higher: true, label: '>= 1/10 of C', ofC: true },
  dma_read_4k_sync: { target: 1 / 10, higher: true, label: '>= 1/10 of C', ofC: true },
  ioas_map_4k_calls: { target: 1e6, higher: true, label: '>= 1 M/s' },
  ioas_map_random_1m_areas: { target: 0.5e6, higher: true, label: '>= 0.5 M/s' },
  fault_roundtrip: { target: 1e6, higher: true, label: '>= 1 M/s' },
  fault_p99_us: { target: 20, higher: false, label: '<= 20 us' },
  bytes_per_mapped_page: { target: 8.5, higher: false, label: '<= 8.5' },
  bytes_per_mapped_page_uapi: { target: 12, higher: false, label: '<= 12' },
  map_64g_huge_ms: { target: 50, higher: false, label: '<= 50 ms' },
  cli_help_ratio: { target: 2.5, higher: false, label: '<= 2.5x' },
};

/** Figures printed with two decimals (the rest are rates, rounded to integers). */
const FRACTIONAL = new Set(['fault_p99_us', 'fault_p999_us', 'fault_max_us', 'bytes_per_mapped_page', 'bytes_per_mapped_page_uapi', 'map_64g_huge_ms', 'cli_help_ratio']);

/** Output order of the metrics. */
const METRICS = Object.values(WORKERS).flat();

export interface BenchOptions {
  json: boolean;
  quick: boolean;
  runs: number;
  only: Set<string>;
  cpuProf: string | null;
}
type Options = BenchOptions;

/** Bad options: the CLI maps it to exit code 2. */
export class BenchUsageError extends Error {
  constructor(message: string) {
    super(`${message}\nusage: ioasid bench [--json] [--quick] [--only ${METRICS.join(',')}] [--runs N] [--cpu-prof DIR]`);
    this.name = 'BenchUsageError';
  }
}

function usage(msg: string): never {
  throw new BenchUsageError(msg);
}

export const BENCH_METRICS: readonly string[] = METRICS;

export function parseBenchArgs(argv: readonly string[]): Options {
  const o: Options = { json: false, quick: false, runs: 0, only: new Set(METRICS), cpuProf: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    const flag = a.split('=')[0];
    if (flag === '--json') o.json = true;
    else if (flag === '--quick') o.quick = true;
    else if (flag === '--runs') {
      o.runs = Number(value());
      if (!Number.isInteger(o.runs) || o.runs < 1 || o.runs > 100) usage('--runs takes an integer from 1 to 100');
    } else if (flag === '--only') {
      const names = value()
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      for (const n of names) if (!METRICS.includes(n)) usage(`unknown workload '${n}'`);
      o.only = new Set(names);
    } else if (flag === '--cpu-prof') o.cpuProf = resolve(value());
    else usage(`unknown option ${a}`);
  }
  if (o.runs === 0) o.runs = o.quick ? 1 : 3;
  return o;
}

/** Runs one process that prints a WorkloadResult as its last stdout line. */
function runProcess(label: string, command: string, args: readonly string[]): Promise<WorkloadResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${label} exited with ${code}\n${err}`));
      try {
        resolvePromise(JSON.parse(out.trim().split('\n').pop() ?? '') as WorkloadResult);
      } catch {
        reject(new Error(`${label} printed no result\n${out}${err}`));
      }
    });
  });
}

/**
 * Compiles the C reference into a fresh temporary directory with the first compiler that works ($CC,
 * else cc, gcc, clang). Returns the directory and binary, or the reason there is none: the bench then
 * reports no ratios to C, it does not fail.
 */
function compileCReference(cc: string | undefined): { dir: string; bin: string } | { reason: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ioasid-bench-c-'));
  const src = join(dir, 'reference.c');
  const bin = join(dir, 'reference');
  writeFileSync(src, C_REFERENCE_SOURCE);
  const compilers = cc ? [cc] : ['cc', 'gcc', 'clang'];
  const failures: string[] = [];
  for (const cc of compilers) {
    const r = spawnSync(cc, ['-O2', '-std=c11', '-o', bin, src], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status === 0) return { dir, bin };
    failures.push(r.error ? `${cc}: not found` : `${cc}: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`}`);
  }
  rmSync(dir, { recursive: true, force: true });
  return { reason: `no working C compiler (${failures.join('; ')})` };
}

function runWorker(name: string, o: Options): Promise<WorkloadResult> {
  // From source (tsx) the worker is a .ts file that needs tsx and the source condition; from the
  // published build it is plain JavaScript.
  const fromSource = import.meta.url.endsWith('.ts');
  const args = fromSource ? ['--conditions=@ioasid/source', '--import', requireFromHere.resolve('tsx/esm'), '--expose-gc'] : ['--expose-gc'];
  if (o.cpuProf) {
    mkdirSync(o.cpuProf, { recursive: true });
    args.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProf}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`);
  }
  args.push(join(here, fromSource ? 'worker.ts' : 'worker.js'), name);
  if (o.quick) args.push('--quick');
  return runProcess(`workload ${name}`, process.execPath, args);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(key: string, v: number): number {
  if (FRACTIONAL.has(key)) return Math.round(v * 100) / 100;
  return Math.round(v);
}

function human(key: string, v: number): string {
  if (FRACTIONAL.has(key)) return v.toFixed(2);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(0);
}

function fmtExtra(extra: Record<string, number | string>): string {
  return Object.entries(extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v}`)
    .join(' ');
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export interface BenchSink {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  /** The environment: `CC` names the C compiler of the reference. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Runs the selected workloads and prints the table (or the JSON object) to `io.stdout`. */
export async function runBench(o: BenchOptions, io: BenchSink): Promise<Record<string, Metric>> {
  const selected = Object.entries(WORKERS).filter(([, keys]) => keys.some((k) => o.only.has(k)));
  const cKey = (k: string): string => C_COUNTERPART[k] ?? k;
  const wantC = METRICS.some((k) => o.only.has(k) && C_METRICS.includes(cKey(k)));
  // A progress bar for people on a terminal; plain progress lines otherwise (CI logs, pipes).
  const bar =
    io.stderr.isTTY === true && !process.env.NO_COLOR
      ? new cliProgress.SingleBar(
          { format: 'bench [{bar}] {value}/{total} {workload}', stream: io.stderr as NodeJS.WritableStream, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
  bar?.start((selected.length + (wantC ? 1 : 0)) * o.runs, 0, { workload: '' });
  const lines: string[] = [];
  const log = (s: string) => (bar ? lines.push(s) : io.stderr.write(`${s}\n`));
  const samples = new Map<string, number[]>();
  const cSamples = new Map<string, number[]>();
  const units = new Map<string, string>();
  const extras: string[] = [];
  const add = (into: Map<string, number[]>, r: WorkloadResult) => {
    for (const [k, m] of Object.entries(r.metrics) as [string, Metric][]) {
      if (into === samples ? !o.only.has(k) : !METRICS.some((ours) => o.only.has(ours) && cKey(ours) === k)) continue;
      if (into === samples) units.set(k, m.unit);
      into.set(k, [...(into.get(k) ?? []), m.value]);
    }
  };
  let cNote = '';
  try {
    // The C reference runs first, `runs` times, in the same session as the workloads it is compared with.
    const c = wantC ? compileCReference(io.env?.CC) : null;
    if (c !== null && 'reason' in c) {
      cNote = `bench: ${c.reason}: ratios to C are not reported`;
      log(cNote);
    } else if (c !== null) {
      try {
        for (let run = 1; run <= o.runs; run++) {
          bar?.update({ workload: `C reference run ${run}/${o.runs}` });
          const r = await runProcess('the C reference', c.bin, o.quick ? ['--quick'] : []);
          bar?.increment();
          add(cSamples, r);
          log(`bench: C reference run ${run}/${o.runs}: ${C_METRICS.filter((k) => r.metrics[k]).map((k) => `${k}=${human(k, r.metrics[k].value)}`).join(' ')}`);
        }
      } finally {
        rmSync(c.dir, { recursive: true, force: true });
      }
    }
    for (const [worker, keys] of selected) {
      for (let run = 1; run <= o.runs; run++) {
        bar?.update({ workload: `${worker} run ${run}/${o.runs}` });
        const t0 = performance.now();
        const r = await runWorker(worker, o);
        bar?.increment();
        add(samples, r);
        const took = ((performance.now() - t0) / 1000).toFixed(1);
        const figures = keys.filter((k) => r.metrics[k]).map((k) => `${k}=${human(k, r.metrics[k].value)}`);
        log(`bench: ${worker} run ${run}/${o.runs} (${took} s): ${figures.join(' ')}  ${fmtExtra(r.extra)}`);
        if (run === o.runs) extras.push(`${worker}: ${fmtExtra(r.extra)}`);
      }
    }
  } finally {
    bar?.stop();
  }
  for (const l of lines) io.stderr.write(`${l}\n`);
  const result: Record<string, Metric> = {};
  for (const k of METRICS) {
    const s = samples.get(k);
    if (!s) continue;
    const m: Metric = { value: round(k, median(s)), unit: units.get(k)! };
    const cs = cSamples.get(cKey(k));
    if (cs) {
      m.c = Math.round(median(cs));
      m.ratio_to_c = Math.round((median(s) / median(cs)) * 1e4) / 1e4;
    }
    result[k] = m;
  }
  if (o.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  }
  const rows = [['workload', 'median', 'unit', 'C', 'of C', 'target', 'status', `runs (${o.runs}${o.quick ? ', quick' : ''})`]];
  for (const [k, m] of Object.entries(result)) {
    const t = TARGETS[k] as (typeof TARGETS)[string] | undefined;
    const v = t?.ofC ? m.ratio_to_c : m.value;
    const status = !t ? '' : v === undefined ? 'no C' : (t.higher ? v >= t.target : v <= t.target) ? 'met' : 'NOT met';
    rows.push([
      k,
      human(k, m.value),
      m.unit,
      m.c === undefined ? '' : human(k, m.c),
      m.ratio_to_c === undefined ? '' : m.ratio_to_c.toFixed(3),
      t?.label ?? '',
      status,
      samples.get(k)!.map((x) => human(k, x)).join(', '),
    ]);
  }
  io.stdout.write(`${table(rows)}\n\n${extras.join('\n')}\n`);
  if (cNote) io.stdout.write(`${cNote}\n`);
  io.stdout.write('(VT-d second stage, 4 levels; "of C": the fraction of the C reference reached in this run. Method: docs/performance.md)\n');
  return result;
}
