/**
 * `ioasid bench [--json] [--quick] [--only walk,map_4k] [--runs N] [--cpu-prof DIR]` (and `npm run bench`)
 *
 * Runs the workloads of docs/performance.md, each in its own process (--expose-gc; under tsx with the
 * @ioasid/source condition when running from source), N times one after the other, and reports the
 * median of the runs. With --json, stdout carries exactly one JSON object; progress goes to stderr.
 */
import { spawn } from 'node:child_process';
import cliProgress from 'cli-progress';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORKERS, type Metric, type WorkloadResult } from './spec.js';

const here = dirname(fileURLToPath(import.meta.url));
const requireFromHere = createRequire(import.meta.url);

/** Metric key -> target and whether bigger is better. */
const TARGETS: Record<string, { target: number; higher: boolean; label: string }> = {
  walk: { target: 50e6, higher: true, label: '>= 50 M/s' },
  iotlb_hit: { target: 100e6, higher: true, label: '>= 100 M/s' },
  map_4k: { target: 50e6, higher: true, label: '>= 50 M/s' },
  unmap_4k: { target: 50e6, higher: true, label: '>= 50 M/s' },
  ioas_map_4k_calls: { target: 1e6, higher: true, label: '>= 1 M/s' },
  fault_roundtrip: { target: 1e6, higher: true, label: '>= 1 M/s' },
  fault_p99_us: { target: 20, higher: false, label: '<= 20 us' },
  bytes_per_mapped_page: { target: 8.5, higher: false, label: '<= 8.5' },
};

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
      if (!Number.isInteger(o.runs) || o.runs < 1) usage('--runs takes a positive integer');
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
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`workload ${name} exited with ${code}\n${err}`));
      try {
        resolvePromise(JSON.parse(out.trim().split('\n').pop() ?? '') as WorkloadResult);
      } catch {
        reject(new Error(`workload ${name} printed no result\n${out}${err}`));
      }
    });
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(key: string, v: number): number {
  if (key === 'fault_p99_us' || key === 'bytes_per_mapped_page') return Math.round(v * 100) / 100;
  return Math.round(v);
}

function human(key: string, v: number): string {
  if (key === 'fault_p99_us' || key === 'bytes_per_mapped_page') return v.toFixed(2);
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
}

/** Runs the selected workloads and prints the table (or the JSON object) to `io.stdout`. */
export async function runBench(o: BenchOptions, io: BenchSink): Promise<Record<string, Metric>> {
  const selected = Object.entries(WORKERS).filter(([, keys]) => keys.some((k) => o.only.has(k)));
  // A progress bar for people on a terminal; plain progress lines otherwise (CI logs, pipes).
  const bar =
    io.stderr.isTTY === true && !process.env.NO_COLOR
      ? new cliProgress.SingleBar(
          { format: 'bench [{bar}] {value}/{total} {workload}', stream: io.stderr as NodeJS.WritableStream, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
  bar?.start(selected.length * o.runs, 0, { workload: '' });
  const lines: string[] = [];
  const log = (s: string) => (bar ? lines.push(s) : io.stderr.write(`${s}\n`));
  const samples = new Map<string, number[]>();
  const units = new Map<string, string>();
  const extras: string[] = [];
  for (const [worker, keys] of selected) {
    for (let run = 1; run <= o.runs; run++) {
      bar?.update({ workload: `${worker} run ${run}/${o.runs}` });
      const t0 = performance.now();
      let r: WorkloadResult;
      try {
        r = await runWorker(worker, o);
      } catch (e) {
        bar?.stop();
        throw e;
      }
      bar?.increment();
      for (const [k, m] of Object.entries(r.metrics) as [string, Metric][]) {
        if (!o.only.has(k)) continue;
        units.set(k, m.unit);
        samples.set(k, [...(samples.get(k) ?? []), m.value]);
      }
      const took = ((performance.now() - t0) / 1000).toFixed(1);
      log(`bench: ${worker} run ${run}/${o.runs} (${took} s): ${keys.map((k) => `${k}=${human(k, r.metrics[k].value)}`).join(' ')}  ${fmtExtra(r.extra)}`);
      if (run === o.runs) extras.push(`${worker}: ${fmtExtra(r.extra)}`);
    }
  }
  bar?.stop();
  for (const l of lines) io.stderr.write(`${l}\n`);
  const result: Record<string, Metric> = {};
  for (const k of METRICS) {
    const s = samples.get(k);
    if (s) result[k] = { value: round(k, median(s)), unit: units.get(k)! };
  }
  if (o.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  }
  const rows = [['workload', 'median', 'unit', 'target', 'status', `runs (${o.runs}${o.quick ? ', quick' : ''})`]];
  for (const [k, m] of Object.entries(result)) {
    const t = TARGETS[k];
    const met = t.higher ? m.value >= t.target : m.value <= t.target;
    rows.push([k, human(k, m.value), m.unit, t.label, met ? 'met' : 'NOT met', samples.get(k)!.map((v) => human(k, v)).join(', ')]);
  }
  io.stdout.write(`${table(rows)}\n\n${extras.join('\n')}\n`);
  io.stdout.write('(VT-d second stage, 4 levels; the machine is noisy: compare ratios from one run. Method: docs/performance.md)\n');
  return result;
}
