/**
 * The kernel's fail-nth selftest (tools/testing/selftests/iommu/iommufd_fail_nth.c) on the model's
 * FAULT_INJECTOR: one test per TEST_FAIL_NTH, named after it. Each test is a sequence of calls that
 * succeeds; the harness first runs it with nothing injected, then runs it again from a fresh host
 * with the Nth injection point (every site of driver/inject.ts, counted from the sequence's
 * fail_nth_enable) failing, for N = 1, 2, ... until a run no longer reaches an Nth point, as the
 * kernel's harness sweeps /proc/self/task/<tid>/fail-nth.
 *
 * The kernel test only looks for splats; the port checks the contract behind them on every run:
 * - the call that meets the injected failure either absorbs it and succeeds, or fails with the errno
 *   of that site (ENOMEM for an allocation, EFAULT for a user copy, EMFILE for an fd), and no call
 *   fails without an injection;
 * - right after the failure every paging domain still mirrors its IOAS and no half-made object is
 *   visible in the object table;
 * - the fixture teardown (destroy the access, close the iommufd) leaves zero objects, zero pinned
 *   pages and exactly the frames of the process memory.
 *
 * The selftest-only commands map as in kernel-selftest.test.ts: IOMMU_TEST_OP_MOCK_DOMAIN is a mock
 * PCI device bound and attached, destroying its stdev_id is the unbind, the access ops are
 * `fd.access`. IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT has no model counterpart (the model has no
 * temporary pfn-batch memory) and is left out of the sequences.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { ERRNO, IommufdError } from '../uapi/errno.js';
import type { StructLayout, FieldSpec, StructValue } from '../uapi/struct.js';
import { FailNth, INJECT_SITES, type FaultInjector, type InjectSite } from '../driver/inject.js';
import { WalkResult } from '../driver/pgtable.js';
import { ObjType } from '../iommufd/objects.js';
import type { HwptPaging } from '../iommufd/hwpt.js';
import type { Ioas } from '../iommufd/ioas.js';
import type { IommufdAccess } from '../iommufd/access.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import { IOMMU_HWPT_DATA_MOCK, IOMMU_VEVENTQ_TYPE_MOCK, IOMMU_VIOMMU_TYPE_MOCK, MOCK_HWPT_DATA_SIZE } from '../testing/mock-vendor.js';
import { createHost, type Host } from '../host/host.js';
import { mockPlugin } from '../testing/mock-vendor.js';
import { mockProfile } from './mock-host.js';

const PAGE = 4096n;
/** iommufd_fail_nth.c's BUFFER_SIZE: 2 MiB of MAP_SHARED anonymous memory, and a memfd as large. */
const BUFFER_SIZE = 2n << 20n;
const MOCK_APERTURE_START = 1n << 24n;
/** The kernel harness gives up past this many iterations (fail_nth_next's ASSERT_GT(400, ...)). */
const MAX_ITERATIONS = 400;
/** A mock device with PASID support (MOCK_FLAGS_DEVICE_PASID). */
const DEV = '0000:00:02.0';
/** A mock device behind the other mock unit: attached to the same IOAS it needs a domain of its own. */
const DEV_OTHER_UNIT = '0000:80:00.0';

/** Arms a FailNth only from fail_nth_enable() on, as writing the task's fail-nth file does. */
class EnableAt implements FaultInjector {
  armed = false;
  constructor(readonly nth: FailNth | null) {}
  shouldFail(site: InjectSite): boolean {
    return this.armed && this.nth !== null && this.nth.shouldFail(site);
  }
}

/** A call of the sequence failed: the TEST_FAIL_NTH body returns -1 there. */
class Stop extends Error {}

interface Failure {
  step: string;
  error: unknown;
  /** The injection points asked before and after the step. */
  callsBefore: number;
  callsAfter: number;
}

/** FIXTURE(basic_fail_nth) plus what a run recorded. */
class NthRun {
  readonly host: Host;
  fd: Iommufd | null = null;
  /** self->access_id: destroyed by the teardown when the body left it. */
  access: IommufdAccess | null = null;
  failure: Failure | null = null;
  /** Process memory for the command structs the raw ioctls point at (the C test's stack). */
  private stack = 0n;
  readonly buffer: bigint;
  readonly memfd: number;

  constructor(readonly injector: EnableAt) {
    this.host = createHost({ plugins: [mockPlugin()], profile: mockProfile() });
    // setup_buffer: the buffer and the memfd, faulted in up front so that every run uses the same frames.
    this.buffer = this.host.process.mmap(BUFFER_SIZE, { shared: true });
    this.host.process.poke(this.buffer, new Uint8Array(Number(BUFFER_SIZE)).fill(0x5a));
    this.memfd = this.host.process.memfd(BUFFER_SIZE);
    const view = this.host.process.mmap(BUFFER_SIZE, { fd: this.memfd, shared: true });
    this.host.process.poke(view, new Uint8Array(Number(BUFFER_SIZE)).fill(0xa5));
    this.stack = this.host.process.mmap(4 * 4096);
    this.host.process.poke(this.stack, new Uint8Array(4 * 4096));
    this.host.injector = injector;
  }

  get iommufd(): Iommufd {
    if (!this.fd) throw new Error('the iommufd is not open');
    return this.fd;
  }

  /** fail_nth_enable(). */
  enable(): void {
    this.injector.armed = true;
  }

  /** One call of the sequence: a failure stops the body (`if (...) return -1;`). */
  step<T>(name: string, fn: () => T): T {
    const callsBefore = this.injector.nth?.calls ?? 0;
    try {
      return fn();
    } catch (error) {
      this.failure = { step: name, error, callsBefore, callsAfter: this.injector.nth?.calls ?? 0 };
      throw new Stop(name);
    }
  }

  /** A call whose failure the test ignores (the kernel's "failure path of no IOVA to unmap"). */
  tryStep(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof IommufdError)) throw e;
    }
  }

  /** A raw ioctl with the struct in process memory, as the C test passes it; throws on failure. */
  ioctl<F extends readonly FieldSpec[]>(request: number, layout: StructLayout<F>, init: Partial<StructValue<F>>, at = 0): StructValue<F> {
    const va = this.stack + BigInt(at);
    const fd = this.iommufd;
    this.host.process.poke(va, layout.encode(layout.make({ size: layout.size, ...init } as Partial<StructValue<F>>)));
    const rc = fd.ioctl(request, va);
    if (rc < 0) throw fd.lastError ?? new IommufdError(codeOf(-rc), 'ioctl');
    return layout.decode(this.host.process.peek(va, layout.size));
  }

  /** Writes `bytes` to the scratch stack at `at` and returns their address. */
  put(bytes: Uint8Array, at: number): bigint {
    this.host.process.poke(this.stack + BigInt(at), bytes);
    return this.stack + BigInt(at);
  }

  ioasAlloc(): number {
    return this.ioctl(U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, {}).out_ioas_id;
  }

  ioasMap(ioasId: number, va: bigint, length: bigint, iova?: bigint): bigint {
    const flags = U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE | (iova !== undefined ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    return this.ioctl(U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags, ioas_id: ioasId, user_va: va, length, iova: iova ?? 0n }).iova;
  }

  /** _test_cmd_mock_domain: a mock device bound to the iommufd and attached to `ptId`. */
  mockDomain(bdf: string, ptId: number): { stdev: string; idevId: number; hwptId: number } {
    const d = this.host.device(bdf);
    const idevId = d.bindIommufd(this.iommufd);
    const hwptId = d.attachPt(ptId);
    return { stdev: bdf, idevId, hwptId };
  }

  /** _test_ioctl_destroy(stdev_id): the mock device goes away. */
  destroyStdev(bdf: string): void {
    this.host.device(bdf).unbind();
  }

  hwptAlloc(idevId: number, ptId: number, flags: number, data?: { type: number; bytes: Uint8Array; faultId?: number }): number {
    const uptr = data ? this.put(data.bytes, 8192) : 0n;
    return this.ioctl(U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      flags,
      dev_id: idevId,
      pt_id: ptId,
      data_type: data?.type ?? U.IOMMU_HWPT_DATA_NONE,
      data_len: data?.bytes.length ?? 0,
      data_uptr: uptr,
      fault_id: data?.faultId ?? 0,
    }).out_hwpt_id;
  }

  /** FIXTURE_TEARDOWN(basic_fail_nth): destroy the access, then teardown_iommufd. */
  teardown(): void {
    this.injector.armed = false;
    if (this.access) this.iommufd.destroy(this.access.id);
    if (this.fd) this.host.process.close(this.fd.fd);
  }
}

function codeOf(errno: number): keyof typeof ERRNO {
  return (Object.keys(ERRNO) as (keyof typeof ERRNO)[]).find((k) => ERRNO[k] === errno) ?? 'EINVAL';
}

/** Pages around every area edge of every IOAS and in between: where a domain is compared with its IOAS. */
function samplePfns(fd: Iommufd): number[] {
  const out = new Set<number>();
  for (const o of fd.ctx.objects.objects()) {
    if (o.type !== ObjType.IOAS) continue;
    for (const a of (o as Ioas).iopt.iterAreas()) {
      const first = Number(a.iova / PAGE);
      const last = Number(a.last / PAGE);
      for (const p of [first - 1, first, first + 1, (first + last) >> 1, last - 1, last, last + 1]) if (p >= 0) out.add(p);
    }
  }
  return [...out];
}

/** Every paging domain maps exactly its IOAS's areas at the sampled pages, to the areas' frames. */
function expectDomainsMirrorIoas(fd: Iommufd, why: string): void {
  const wr = new WalkResult();
  const pfns = samplePfns(fd);
  for (const o of fd.ctx.objects.objects()) {
    if (o.type !== ObjType.HWPT_PAGING) continue;
    const h = o as HwptPaging;
    for (const p of pfns) {
      const a = h.ioas.iopt.areaAt(BigInt(p) * PAGE);
      const mapped = h.ops.pt.walk(p, wr);
      expect(mapped, `${why}: HWPT ${h.id} page 0x${p.toString(16)}`).toBe(a !== undefined);
      if (a) expect(wr.pfn, `${why}: HWPT ${h.id} page 0x${p.toString(16)}`).toBe(a.pages.frame(a.pageIndex + Number((BigInt(p) * PAGE - a.iova) / PAGE)));
    }
  }
}

interface SweepResult {
  /** Runs with an injection that fired (the kernel's iterations). */
  points: number;
  /** Of those, the runs in which a call failed, by step. */
  failedSteps: Map<string, number>;
  /** Runs in which the injected failure was absorbed and the sequence still succeeded. */
  absorbed: number;
  sites: Set<InjectSite>;
}

/**
 * TEST_FAIL_NTH: runs `body` once without injection (it must succeed), then with the Nth point from
 * fail_nth_enable() failing for N = 1, 2, ... until the injector is no longer reached.
 */
function sweep(body: (t: NthRun) => void): SweepResult {
  const clean = new NthRun(new EnableAt(null));
  body(clean);
  expect(clean.failure).toBeNull();
  const framesBefore = clean.host.frames.framesInUse;
  clean.teardown();
  expect(clean.host.frames.framesInUse, 'the clean run frees what its sequence allocated').toBeLessThanOrEqual(framesBefore);
  const baseline = clean.host.frames.framesInUse;

  const result: SweepResult = { points: 0, failedSteps: new Map(), absorbed: 0, sites: new Set() };
  for (let n = 1; ; n++) {
    expect(n, 'the sequence never runs out of injection points').toBeLessThan(MAX_ITERATIONS);
    const nth = new FailNth(n);
    const t = new NthRun(new EnableAt(nth));
    try {
      body(t);
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
    }
    const run = `nth ${n}${nth.hitSite ? ` (${nth.hitSite})` : ''}`;
    if (t.failure) {
      const { step, error, callsBefore, callsAfter } = t.failure;
      expect(error, `${run}: ${step} threw ${String(error)}`).toBeInstanceOf(IommufdError);
      // Only the injected failure makes a call fail, and the call that met it reports its errno.
      expect(nth.hit, `${run}: ${step} failed with ${(error as IommufdError).code} without an injection`).toBe(true);
      expect(callsBefore < n && n <= callsAfter, `${run}: ${step} failed although the injection hit another call`).toBe(true);
      expect((error as IommufdError).code, `${run}: ${step}`).toBe(INJECT_SITES[nth.hitSite!]);
      result.failedSteps.set(step, (result.failedSteps.get(step) ?? 0) + 1);
    } else if (nth.hit) result.absorbed++;
    if (t.fd) {
      expectDomainsMirrorIoas(t.fd, run);
      // No object is left half made: every id the table hands out resolves to a finished object.
      for (const o of t.fd.ctx.objects.objects()) expect(o.id, run).toBeGreaterThan(0);
    }
    t.teardown();
    if (t.fd) {
      expect(t.fd.ctx.objects.count, `${run}: objects left after teardown`).toBe(0);
      expect(t.fd.ctx.leaks, run).toEqual([]);
    }
    expect(t.host.process.lockedPages, `${run}: pages left pinned`).toBe(0);
    expect(t.host.frames.framesInUse, `${run}: frames leaked`).toBe(baseline);
    if (!nth.hit) break;
    result.points++;
    result.sites.add(nth.hitSite!);
  }
  if (process.env.FAIL_NTH_REPORT) console.log(JSON.stringify({ points: result.points, absorbed: result.absorbed, sites: [...result.sites], failed: Object.fromEntries(result.failedSteps) }));
  return result;
}

describe('basic_fail_nth', () => {
  /** Cover ioas.c. */
  it('basic', () => {
    const r = sweep((t) => {
      t.enable();
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      const ranges = 10;
      t.step('IOAS_IOVA_RANGES', () => t.ioctl(U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: ranges, allowed_iovas: t.put(new Uint8Array(16 * ranges), 4096) }));
      t.step('IOAS_ALLOW_IOVAS', () => {
        const r0 = U.iommu_iova_range.encode({ start: 16n * 1024n, last: BUFFER_SIZE + 16n * 1024n * 600n - 1n });
        t.ioctl(U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 1, allowed_iovas: t.put(r0, 4096) });
      });
      const iova = t.step('IOAS_MAP', () => t.ioasMap(ioas, t.buffer, BUFFER_SIZE));
      t.step('IOAS_COPY', () =>
        t.ioctl(U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, {
          flags: U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE,
          dst_ioas_id: ioas,
          src_ioas_id: ioas,
          src_iova: iova,
          length: BigInt(16 * ranges),
        }),
      );
      t.step('IOAS_UNMAP', () => t.ioctl(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova, length: BUFFER_SIZE }));
      // The failure path of no IOVA to unmap.
      t.tryStep(() => t.ioctl(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova, length: BUFFER_SIZE }));
    });
    expect(r.points).toBeGreaterThan(8);
    for (const s of ['IOAS_ALLOC', 'IOAS_IOVA_RANGES', 'IOAS_ALLOW_IOVAS', 'IOAS_MAP', 'IOAS_COPY', 'IOAS_UNMAP']) expect(r.failedSteps.has(s), s).toBe(true);
  });

  /** iopt_area_fill_domains() and iopt_area_fill_domain(). */
  it('map_domain', () => {
    const r = sweep((t) => {
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      t.enable();
      let dev = t.step('mock_domain', () => t.mockDomain(DEV, ioas));
      t.step('IOAS_MAP', () => t.ioasMap(ioas, t.buffer, 262144n));
      t.step('destroy stdev', () => t.destroyStdev(dev.stdev));
      dev = t.step('mock_domain again', () => t.mockDomain(DEV, ioas));
    });
    for (const s of ['mock_domain', 'IOAS_MAP', 'mock_domain again']) expect(r.failedSteps.has(s), s).toBe(true);
    expect(r.sites.has('table-alloc') && r.sites.has('pin') && r.sites.has('map')).toBe(true);
  });

  /** The same with the pages coming from a memfd (IOMMU_IOAS_MAP_FILE). */
  it('map_file_domain', () => {
    const r = sweep((t) => {
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      t.enable();
      let dev = t.step('mock_domain', () => t.mockDomain(DEV, ioas));
      t.step('IOAS_MAP_FILE', () =>
        t.ioctl(U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file, { flags: U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE, ioas_id: ioas, fd: t.memfd, start: 0n, length: 262144n }),
      );
      t.step('destroy stdev', () => t.destroyStdev(dev.stdev));
      dev = t.step('mock_domain again', () => t.mockDomain(DEV, ioas));
    });
    for (const s of ['mock_domain', 'IOAS_MAP_FILE', 'mock_domain again']) expect(r.failedSteps.has(s), s).toBe(true);
  });

  it('map_two_domains', () => {
    const r = sweep((t) => {
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      let dev = t.step('mock_domain', () => t.mockDomain(DEV, ioas));
      t.enable();
      let dev2 = t.step('mock_domain 2', () => t.mockDomain(DEV_OTHER_UNIT, ioas));
      t.step('IOAS_MAP', () => t.ioasMap(ioas, t.buffer, 262144n));
      t.step('destroy stdev', () => t.destroyStdev(dev.stdev));
      t.step('destroy stdev 2', () => t.destroyStdev(dev2.stdev));
      dev = t.step('mock_domain again', () => t.mockDomain(DEV, ioas));
      dev2 = t.step('mock_domain 2 again', () => t.mockDomain(DEV_OTHER_UNIT, ioas));
    });
    for (const s of ['mock_domain 2', 'IOAS_MAP', 'mock_domain again', 'mock_domain 2 again']) expect(r.failedSteps.has(s), s).toBe(true);
  });

  it('access_rw', () => {
    const r = sweep((t) => {
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      const iova = t.step('IOAS_MAP', () => t.ioasMap(ioas, t.buffer, 262144n));
      t.enable();
      t.access = t.step('create_access', () => {
        const a = t.iommufd.access.create();
        try {
          a.attach(ioas);
        } catch (e) {
          t.iommufd.destroy(a.id);
          throw e;
        }
        return a;
      });
      const a = t.access;
      const tmp = new Uint8Array(64);
      // The kernel test reads, writes, and does both again on the slow path; the model has one path.
      t.step('ACCESS_RW read', () => a.rw(iova, tmp));
      t.step('ACCESS_RW write', () => a.rw(iova, tmp, { write: true }));
      t.step('ACCESS_RW slow read', () => a.rw(iova, tmp));
      t.step('ACCESS_RW slow write', () => a.rw(iova, tmp, { write: true }));
      t.step('ACCESS_RW big', () => a.rw(iova, new Uint8Array(8 * 4096)));
      t.step('destroy_access', () => t.iommufd.destroy(a.id));
      t.access = null;
    });
    expect(r.failedSteps.has('create_access')).toBe(true);
    expect(r.failedSteps.has('ACCESS_RW read')).toBe(true);
  });

  /**
   * The access_pin sequences: an access that pins the whole buffer, unpins it and goes away, with a
   * mock domain already filled from the same pages when `withDomain`.
   */
  const accessPin = (withDomain: boolean) =>
    sweep((t) => {
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      const dev = withDomain ? t.step('mock_domain', () => t.mockDomain(DEV, ioas)) : null;
      const iova = t.step('IOAS_MAP', () => t.ioasMap(ioas, t.buffer, BUFFER_SIZE));
      t.access = t.step('create_access', () => {
        const a = t.iommufd.access.create({ unmap: () => undefined });
        a.attach(ioas);
        return a;
      });
      const a = t.access;
      t.enable();
      t.step('ACCESS_PAGES', () => a.pinPages(iova, BUFFER_SIZE));
      t.step('DESTROY_ACCESS_PAGES', () => a.unpinPages(iova, BUFFER_SIZE));
      t.step('destroy_access', () => t.iommufd.destroy(a.id));
      t.access = null;
      if (dev) t.step('destroy stdev', () => t.destroyStdev(dev.stdev));
    });

  /** pages.c access functions. */
  it('access_pin', () => {
    const r = accessPin(false);
    expect(r.failedSteps.has('ACCESS_PAGES')).toBe(true);
    expect(r.sites.has('pin')).toBe(true);
  });

  /** iopt_pages_fill_xarray(): the pages come from the domain's pins. */
  it('access_pin_domain', () => {
    const r = accessPin(true);
    expect(r.failedSteps.has('ACCESS_PAGES')).toBe(true);
  });

  /** device.c: bind, hw_info, HWPT alloc and replace, vIOMMU, vDEVICE, fault queue, vEVENTQ, PASID. */
  it('device', () => {
    const r = sweep((t) => {
      t.fd = t.host.openIommufd();
      const ioas = t.step('IOAS_ALLOC', () => t.ioasAlloc());
      const ioas2 = t.step('IOAS_ALLOC 2', () => t.ioasAlloc());
      t.step('IOAS_MAP', () => t.ioasMap(ioas, t.buffer, PAGE, MOCK_APERTURE_START));
      t.step('IOAS_MAP 2', () => t.ioasMap(ioas2, t.buffer, PAGE, MOCK_APERTURE_START));
      t.enable();
      const dev = t.step('mock_domain', () => t.mockDomain(DEV, ioas));
      const d = t.host.device(dev.stdev);
      t.step('GET_HW_INFO', () => t.ioctl(U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: dev.idevId, data_len: 8, data_uptr: t.put(new Uint8Array(8), 8192) }));
      let hwpt = t.step('HWPT_ALLOC', () => t.hwptAlloc(dev.idevId, ioas, U.IOMMU_HWPT_ALLOC_PASID));
      t.step('mock_domain_replace ioas2', () => d.attachPt(ioas2));
      t.step('mock_domain_replace hwpt', () => d.attachPt(hwpt));
      hwpt = t.step('HWPT_ALLOC nest parent', () => t.hwptAlloc(dev.idevId, ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_PASID));
      const viommu = t.step('VIOMMU_ALLOC', () => t.ioctl(U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: IOMMU_VIOMMU_TYPE_MOCK, dev_id: dev.idevId, hwpt_id: hwpt }).out_viommu_id);
      t.step('VDEVICE_ALLOC', () => t.ioctl(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: viommu, dev_id: dev.idevId, virt_id: 0n }));
      // IOMMU_HW_QUEUE_ALLOC is left out: no modelled vIOMMU has hardware queues (EOPNOTSUPP).
      const fault = t.step('FAULT_QUEUE_ALLOC', () => t.ioctl(U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, {}));
      t.host.process.close(fault.out_fault_fd);
      t.step('HWPT_ALLOC nested with fault', () =>
        t.hwptAlloc(dev.idevId, hwpt, U.IOMMU_HWPT_FAULT_ID_VALID, { type: IOMMU_HWPT_DATA_MOCK, bytes: new Uint8Array(MOCK_HWPT_DATA_SIZE), faultId: fault.out_fault_id }),
      );
      const q = t.step('VEVENTQ_ALLOC', () => t.ioctl(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: viommu, type: IOMMU_VEVENTQ_TYPE_MOCK, veventq_depth: 2 }));
      t.host.process.close(q.out_veventq_fd);
      const hwpt2 = t.step('HWPT_ALLOC pasid 2', () => t.hwptAlloc(dev.idevId, ioas, U.IOMMU_HWPT_ALLOC_PASID));
      const pasid = 100;
      t.step('pasid_attach', () => d.attachPt(hwpt, { pasid }));
      t.step('pasid_replace', () => d.attachPt(hwpt2, { pasid }));
      t.step('pasid_detach', () => d.detachPt({ pasid }));
    });
    for (const s of ['mock_domain', 'GET_HW_INFO', 'HWPT_ALLOC', 'HWPT_ALLOC nest parent', 'VIOMMU_ALLOC', 'VDEVICE_ALLOC', 'FAULT_QUEUE_ALLOC', 'HWPT_ALLOC nested with fault', 'VEVENTQ_ALLOC', 'pasid_attach', 'pasid_replace'])
      expect(r.failedSteps.has(s), s).toBe(true);
  });
});
