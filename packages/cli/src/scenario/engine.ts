/**
 * Scripted scenarios: a sequence of uAPI commands, device operations and DMA, each step traced. A
 * scenario names values with `as:` and refers to them with `$name`; a step may `expect` an errno or data.
 *
 *   steps:
 *     - ioas_alloc: { as: ioas }
 *     - mmap: { length: 0x200000, as: buf }
 *     - poke: { va: $buf, text: "hello" }
 *     - ioas_map: { ioas: $ioas, user_va: $buf, length: 0x200000, iova: 0x100000 }
 *     - bind: { device: "0000:00:02.0", as: dev }
 *     - attach: { device: "0000:00:02.0", pt: $ioas }
 *     - dma_read: { device: "0000:00:02.0", iova: 0x100000, length: 5, expect: { text: hello } }
 *     - ioas_unmap: { ioas: $ioas, iova: 0x100000, length: 0x1000, expect: { errno: ENOENT } }
 */
import { createHost, DmaFault, IommufdError, uapi, type Host, type HostProfile, type Iommufd, type PageFaultGroup } from '@ioasid/core';
import { FailNth, INJECT_SITES, NO_FAULT_INJECTION, type InjectSite, type IommuPlugin } from '@ioasid/core/driver';

export interface ScenarioStep {
  [op: string]: unknown;
}

export interface Scenario {
  name?: string;
  description?: string;
  steps: ScenarioStep[];
}

export interface TraceEntry {
  step: number;
  op: string;
  args: Record<string, unknown>;
  ok: boolean;
  result: string;
}

export class ScenarioError extends Error {
  constructor(
    readonly step: number,
    readonly op: string,
    message: string,
  ) {
    super(`step ${step} (${op}): ${message}`);
    this.name = 'ScenarioError';
  }
}

type Vars = Map<string, unknown>;

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function num(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v.trim())) return BigInt(v.trim());
  throw new Error(`${what}: expected a number or hex string, got ${JSON.stringify(v)}`);
}

function flag(v: unknown): boolean {
  return v === true || v === 'true' || v === 1;
}

export interface RunOptions {
  plugins: readonly IommuPlugin[];
  profile: HostProfile;
  onTrace?: (t: TraceEntry) => void;
  /** iommufd's allow_unsafe_interrupts module parameter (HostOptions.allowUnsafeInterrupts). */
  allowUnsafeInterrupts?: boolean;
}

export interface RunResult {
  host: Host;
  trace: TraceEntry[];
  failed: TraceEntry | null;
}

/** Validates the scenario's shape before anything runs. */
export function checkScenario(s: unknown): Scenario {
  if (!s || typeof s !== 'object') throw new Error('scenario: expected a mapping with a `steps` list');
  const steps = (s as { steps?: unknown }).steps;
  if (!Array.isArray(steps) || steps.length === 0) throw new Error('scenario.steps: expected a non-empty list');
  steps.forEach((st, i) => {
    if (!st || typeof st !== 'object' || Object.keys(st).length !== 1) throw new Error(`scenario.steps[${i}]: expected one operation, like "- ioas_alloc: { as: ioas }"`);
    const op = Object.keys(st)[0];
    // Own properties only: 'constructor', '__proto__' or 'toString' are unknown steps, not Object's methods.
    if (!Object.hasOwn(OPS, op)) throw new Error(`scenario.steps[${i}]: unknown operation '${op}' (known: ${Object.keys(OPS).join(', ')})`);
  });
  return s as Scenario;
}

interface Ctx {
  host: Host;
  fd: Iommufd;
  vars: Vars;
  pending: Map<string, Promise<Uint8Array | void>>;
}

type Op = (c: Ctx, a: Record<string, unknown>) => Promise<string> | string;

function resolve(vars: Vars, v: unknown): unknown {
  if (typeof v === 'string' && v.startsWith('$')) {
    const name = v.slice(1);
    if (!vars.has(name)) throw new Error(`unknown variable ${v}`);
    return vars.get(name);
  }
  if (Array.isArray(v)) return v.map((x) => resolve(vars, x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'expect' ? x : resolve(vars, x)]));
  return v;
}

/** The most bytes one step may carry (poke data, DMA reads): a scenario is a script, not a memory test. */
export const MAX_STEP_BYTES = 64 * 1024 * 1024;

/** A byte count from the scenario, refused past MAX_STEP_BYTES before anything is sized by it. */
function byteCount(v: unknown, what: string): number {
  const n = num(v, what);
  if (n > BigInt(MAX_STEP_BYTES)) throw new Error(`${what}: ${n} bytes is more than a step may carry (${MAX_STEP_BYTES / 2 ** 20} MiB)`);
  return Number(n);
}

function bytesOf(a: Record<string, unknown>): Uint8Array {
  if (typeof a.text === 'string') return new TextEncoder().encode(a.text);
  if (typeof a.hex === 'string') return Uint8Array.from(a.hex.replace(/\s+/g, '').match(/../g) ?? [], (h) => parseInt(h, 16));
  if (a.fill !== undefined) return new Uint8Array(byteCount(a.length, 'length')).fill(Number(a.fill));
  throw new Error('give the data as text:, hex: or fill: with length:');
}

const OPS: Record<string, Op> = {
  mmap: (c, a) => {
    const va = c.host.process.mmap(num(a.length, 'length'));
    return `user VA ${hex(va)}` + save(c, a, va);
  },
  poke: (c, a) => {
    const data = bytesOf(a);
    c.host.process.poke(num(a.va, 'va'), data);
    return `${data.length} bytes at ${hex(num(a.va, 'va'))}`;
  },
  /**
   * Fault injection (`fail_nth: { n: 3, sites: [map, table-alloc] }`, `fail_nth: { off: true }`): the
   * n-th operation at those sites (all by default) from here on fails with the kernel's errno.
   */
  fail_nth: (c, a) => {
    if (flag(a.off)) {
      c.host.injector = NO_FAULT_INJECTION;
      return 'fault injection off';
    }
    const n = Number(num(a.n, 'n'));
    const known = Object.keys(INJECT_SITES);
    const sites = a.sites === undefined ? undefined : (Array.isArray(a.sites) ? a.sites : [a.sites]).map(String);
    for (const s of sites ?? []) if (!Object.hasOwn(INJECT_SITES, s)) throw new Error(`fail_nth: unknown site '${s}' (known: ${known.join(', ')})`);
    if (!(n >= 1 && n <= 1_000_000)) throw new Error('fail_nth: n must be from 1 to 1000000');
    c.host.injector = new FailNth(n, sites as InjectSite[] | undefined);
    return `operation ${n} at ${sites?.join(', ') ?? 'any site'} will fail`;
  },
  memfd: (c, a) => {
    const fd = c.host.process.memfd(num(a.size, 'size'));
    return `memfd fd ${fd}` + save(c, a, fd);
  },
  ioas_alloc: (c, a) => {
    const id = c.fd.ioas.alloc();
    return `ioas_id ${id}` + save(c, a, id);
  },
  ioas_map: (c, a) => {
    const iova = c.fd.ioas.map({
      ioasId: Number(a.ioas),
      userVa: num(a.user_va, 'user_va'),
      length: num(a.length, 'length'),
      iova: a.iova !== undefined ? num(a.iova, 'iova') : undefined,
      readable: a.readable === undefined ? true : flag(a.readable),
      writeable: a.writeable === undefined ? true : flag(a.writeable),
    });
    return `iova ${hex(iova)}` + save(c, a, iova);
  },
  ioas_unmap: (c, a) => {
    const n = a.all ? c.fd.ioas.unmapAll(Number(a.ioas)) : c.fd.ioas.unmap(Number(a.ioas), num(a.iova, 'iova'), num(a.length, 'length'));
    return `unmapped ${hex(n)} bytes`;
  },
  ioas_copy: (c, a) => {
    const iova = c.fd.ioas.copy({ dstIoasId: Number(a.dst), srcIoasId: Number(a.src), srcIova: num(a.src_iova, 'src_iova'), length: num(a.length, 'length'), dstIova: a.dst_iova !== undefined ? num(a.dst_iova, 'dst_iova') : undefined });
    return `dst iova ${hex(iova)}` + save(c, a, iova);
  },
  iova_ranges: (c, a) => {
    const r = c.fd.ioas.iovaRanges(Number(a.ioas));
    return `${r.ranges.map((x) => `[${hex(x.start)}, ${hex(x.last)}]`).join(' ')} alignment ${r.alignment}`;
  },
  bind: (c, a) => {
    const id = c.host.device(String(a.device)).bindIommufd(c.fd);
    return `dev_id ${id}` + save(c, a, id);
  },
  unbind: (c, a) => {
    c.host.device(String(a.device)).unbind();
    return 'unbound';
  },
  attach: (c, a) => {
    const id = c.host.device(String(a.device)).attachPt(Number(a.pt), { pasid: a.pasid !== undefined ? Number(a.pasid) : undefined });
    return `attached to hwpt ${id}` + save(c, a, id);
  },
  detach: (c, a) => {
    c.host.device(String(a.device)).detachPt({ pasid: a.pasid !== undefined ? Number(a.pasid) : undefined });
    return 'detached';
  },
  hwpt_alloc: (c, a) => {
    const data = a.data ? { type: Number((a.data as Record<string, unknown>).type), bytes: bytesOf(a.data as Record<string, unknown>) } : undefined;
    const id = c.fd.hwpt.alloc({
      devId: Number(a.dev),
      ptId: Number(a.pt),
      nestParent: flag(a.nest_parent),
      dirtyTracking: flag(a.dirty_tracking),
      pasid: flag(a.pasid),
      faultId: a.fault !== undefined ? Number(a.fault) : undefined,
      data,
    });
    return `hwpt_id ${id}` + save(c, a, id);
  },
  hw_info: (c, a) => {
    const r = c.fd.getHwInfo(Number(a.dev));
    return `type ${r.type}, ${r.dataLen} bytes, max_pasid_log2 ${r.maxPasidLog2}, capabilities ${hex(r.capabilities)}`;
  },
  fault_alloc: (c, a) => {
    const r = c.fd.fault.alloc();
    c.vars.set(`${String(a.as ?? 'fault')}_fd`, r.fd);
    return `fault_id ${r.id} fd ${r.fd}` + save(c, a, r.id);
  },
  destroy: (c, a) => {
    c.fd.destroy(Number(a.id));
    return `destroyed ${a.id}`;
  },
  close: (c, a) => {
    c.host.process.close(Number(a.fd));
    return `closed fd ${a.fd}`;
  },
  dma_read: async (c, a) => {
    const data = await c.host.device(String(a.device)).dma.read(num(a.iova, 'iova'), byteCount(a.length, 'length'), { pasid: a.pasid !== undefined ? Number(a.pasid) : undefined });
    checkData(a, data);
    return `read ${data.length} bytes: ${preview(data)}`;
  },
  dma_write: async (c, a) => {
    const data = bytesOf(a);
    await c.host.device(String(a.device)).dma.write(num(a.iova, 'iova'), data, { pasid: a.pasid !== undefined ? Number(a.pasid) : undefined });
    return `wrote ${data.length} bytes`;
  },
  /** Starts a DMA that is expected to wait for a page response; `wait` collects it later. */
  dma_start: (c, a) => {
    const dev = c.host.device(String(a.device));
    const p = a.write ? dev.dma.write(num(a.iova, 'iova'), bytesOf(a)) : dev.dma.read(num(a.iova, 'iova'), byteCount(a.length, 'length'));
    p.catch(() => undefined);
    c.pending.set(String(a.as ?? 'dma'), p);
    return `DMA ${a.write ? 'write' : 'read'} at ${hex(num(a.iova, 'iova'))} in flight`;
  },
  wait: async (c, a) => {
    const p = c.pending.get(String(a.dma ?? 'dma'));
    if (!p) throw new Error(`no DMA named ${String(a.dma ?? 'dma')} in flight`);
    c.pending.delete(String(a.dma ?? 'dma'));
    const r = await p;
    if (r instanceof Uint8Array) checkData(a, r);
    return r instanceof Uint8Array ? `completed: ${preview(r)}` : 'completed';
  },
  /** Reads fault groups from a fault fd and answers each: map the page first when respond is success. */
  handle_faults: async (c, a) => {
    await new Promise((r) => setTimeout(r, 0));
    const reader = c.fd.fault.reader(Number(a.fd));
    const groups: PageFaultGroup[] = reader.readAvailable();
    const lines: string[] = [];
    for (const g of groups) {
      if (a.map_from !== undefined && a.respond !== 'invalid') {
        for (const f of g.faults as { addr: bigint }[]) c.fd.ioas.map({ ioasId: Number(a.ioas), userVa: num(a.map_from, 'map_from'), length: 4096n, iova: f.addr });
      }
      reader.respond(g, a.respond === 'invalid' ? 'invalid' : 'success');
      lines.push(`cookie ${g.cookie} dev ${g.devId} ${g.faults.map((f) => hex(f.addr)).join(',')} -> ${a.respond === 'invalid' ? 'INVALID' : 'SUCCESS'}`);
    }
    await new Promise((r) => setTimeout(r, 0));
    return `${groups.length} group(s)${lines.length ? ': ' + lines.join('; ') : ''}`;
  },
  log: (c, a) => {
    const lines = c.host.log.lines;
    const n = Math.min(Number(num(a.last ?? 1, 'last')), lines.length);
    const tail = lines.slice(-n);
    if (typeof a.expect_contains === 'string' && !tail.some((l) => l.includes(String(a.expect_contains)))) throw new Error(`no log line contains '${a.expect_contains}'`);
    return tail.join(' | ');
  },
  ioctl: (c, a) => {
    // A raw ioctl with a struct given field by field: { cmd: IOMMU_IOAS_MAP, fields: {...}, size: 40 }.
    const name = String(a.cmd).replace(/^IOMMU_/, '');
    const entry = Object.entries(uapi.IOMMUFD_CMD).find(([k]) => k === name);
    if (!entry) throw new Error(`unknown command ${String(a.cmd)}`);
    const layout = ioctlLayout(name);
    const fields = (a.fields ?? {}) as Record<string, unknown>;
    const init: Record<string, unknown> = {};
    for (const f of layout.fields) if (f.name in fields) init[f.name] = f.type === 'u64' ? num(fields[f.name], f.name) : Number(num(fields[f.name], f.name));
    const buf = layout.encode(layout.make({ size: Number(a.size ?? layout.size), ...init } as never));
    const rc = c.fd.ioctl(uapi.iommufdIoctl(entry[1]), buf);
    if (rc < 0) throw new IommufdError(errnoCode(-rc), `IOMMU_${name}`, c.fd.lastError?.detail);
    return `rc ${rc}`;
  },
};

function ioctlLayout(name: string) {
  const map: Record<string, { fields: readonly { name: string; type: string }[]; size: number; encode(v: never): Uint8Array; make(v: never): never }> = {
    DESTROY: uapi.iommu_destroy as never,
    IOAS_ALLOC: uapi.iommu_ioas_alloc as never,
    IOAS_MAP: uapi.iommu_ioas_map as never,
    IOAS_UNMAP: uapi.iommu_ioas_unmap as never,
    IOAS_COPY: uapi.iommu_ioas_copy as never,
    OPTION: uapi.iommu_option as never,
    HWPT_ALLOC: uapi.iommu_hwpt_alloc as never,
    VIOMMU_ALLOC: uapi.iommu_viommu_alloc as never,
    VDEVICE_ALLOC: uapi.iommu_vdevice_alloc as never,
  };
  const l = map[name];
  if (!l) throw new Error(`ioctl step supports ${Object.keys(map).join(', ')}`);
  return l;
}

function errnoCode(n: number) {
  const codes = Object.entries({ EPERM: 1, ENOENT: 2, EIO: 5, E2BIG: 7, EBADF: 9, ENOMEM: 12, EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, ENOTTY: 25, ENOSPC: 28, ESPIPE: 29, EOVERFLOW: 75, EMSGSIZE: 90, EOPNOTSUPP: 95, EADDRINUSE: 98 });
  return (codes.find(([, v]) => v === n)?.[0] ?? 'EINVAL') as 'EINVAL';
}

function save(c: Ctx, a: Record<string, unknown>, v: unknown): string {
  if (typeof a.as === 'string') {
    c.vars.set(a.as, v);
    return ` -> $${a.as}`;
  }
  return '';
}

function preview(b: Uint8Array): string {
  const printable = b.every((x) => x === 0 || (x >= 0x20 && x < 0x7f));
  if (printable) return JSON.stringify(new TextDecoder().decode(b).replace(/\0+$/, ''));
  return [...b.subarray(0, 16)].map((x) => x.toString(16).padStart(2, '0')).join(' ') + (b.length > 16 ? ' …' : '');
}

function checkData(a: Record<string, unknown>, data: Uint8Array): void {
  const e = a.expect as Record<string, unknown> | undefined;
  if (!e) return;
  if (typeof e.text === 'string' && new TextDecoder().decode(data) !== e.text) throw new Error(`expected ${JSON.stringify(e.text)}, read ${preview(data)}`);
  if (e.fill !== undefined && !data.every((x) => x === Number(e.fill))) throw new Error(`expected every byte ${e.fill}, read ${preview(data)}`);
}

/** Runs a scenario; stops at the first step whose outcome differs from its expectation. */
export async function runScenario(s: Scenario, opts: RunOptions): Promise<RunResult> {
  checkScenario(s);
  const host = createHost({ plugins: opts.plugins, profile: opts.profile, allowUnsafeInterrupts: opts.allowUnsafeInterrupts ?? false });
  const c: Ctx = { host, fd: host.openIommufd(), vars: new Map(), pending: new Map() };
  const trace: TraceEntry[] = [];
  for (let i = 0; i < s.steps.length; i++) {
    const op = Object.keys(s.steps[i])[0];
    const raw = (s.steps[i][op] ?? {}) as Record<string, unknown>;
    let args: Record<string, unknown>;
    let entry: TraceEntry;
    try {
      args = resolve(c.vars, raw) as Record<string, unknown>;
    } catch (e) {
      entry = { step: i + 1, op, args: raw, ok: false, result: (e as Error).message };
      trace.push(entry);
      opts.onTrace?.(entry);
      return { host, trace, failed: entry };
    }
    const expectErr = (args.expect as { errno?: string } | undefined)?.errno;
    try {
      const result = await OPS[op](c, args);
      entry = expectErr ? { step: i + 1, op, args, ok: false, result: `expected ${expectErr} but it succeeded: ${result}` } : { step: i + 1, op, args, ok: true, result };
    } catch (e) {
      const code = e instanceof IommufdError ? e.code : e instanceof DmaFault ? 'DMA_FAULT' : null;
      const message = e instanceof Error ? e.message : String(e);
      entry = expectErr && code === expectErr ? { step: i + 1, op, args, ok: true, result: `failed as expected: ${message}` } : { step: i + 1, op, args, ok: false, result: message };
    }
    trace.push(entry);
    opts.onTrace?.(entry);
    if (!entry.ok) return { host, trace, failed: entry };
  }
  return { host, trace, failed: null };
}
