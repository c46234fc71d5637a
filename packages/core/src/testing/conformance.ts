/**
 * The plugin conformance kit: the contract every IOMMU plugin, ours or a third party's, must meet,
 * as a vitest suite. A vendor package runs it from one test file:
 *
 *   import { describeConformance } from '@ioasid/core/conformance';
 *   import { plugin, presets } from '../src/index.js';
 *   describeConformance({ plugin, profile: presets[0], device: '0000:00:02.0' });
 *
 * It drives the plugin only through core's public, kernel-shaped entry points (createHost, the iommufd
 * uAPI, VFIO-style bind/attach, device DMA and the fault fd), plus the plugin's own page-table formats
 * and fault codec on their own. vitest is an optional peer of @ioasid/core: only this module needs it.
 */
import { describe, expect, it } from 'vitest';
import { errCode } from './err-code.js';
import { checkCorePeerRange, PluginHost, type IommuPlugin } from '../driver/plugin.js';
import { readFileSync } from 'node:fs';
import { log2PageSizes, type NormalizedCaps, type StageCaps } from '../driver/caps.js';
import {
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  WALK_OK,
  WalkResult,
  type IoPageTable,
  type PageTableConfig,
  type PageTableFormat,
  type PageTableMemory,
} from '../driver/pgtable.js';
import { PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, codecPageRequestFields, codecPageRequests, codecPageRequestsInPlace, codecStalls, pageRequestFault, type FailedAccess, type FaultCodec, type IommuFault, type PageRequestFields, type PageResponse } from '../driver/fault.js';
import type { DecodedUnit } from '../driver/vendor.js';
import { permAllowed } from '../driver/permission.js';
import { FrameAllocator, PAGE_SIZE, PhysicalMemory } from '../memory/physical.js';
import { POLLIN } from '../memory/process.js';

import * as U from '../uapi/iommufd.js';
import { createHost, type Host } from '../host/host.js';
import { DmaFault, type PciDevice } from '../host/device.js';
import type { HostProfile } from '../host/profile.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import { ObjType } from '../iommufd/objects.js';
import type { HwptPaging } from '../iommufd/hwpt.js';

/** How the kit builds a nested HWPT for a vendor that supports nesting (ConformanceOptions.nested). */
export interface ConformanceNestedOptions {
  /** The IOMMU_HWPT_DATA_* type of the vendor's nested user data. */
  dataType: number;
  /**
   * Builds valid user data for a nested HWPT whose guest stage-1 root table is the zeroed guest page
   * `rootGpa` (a guest-physical page number; guest memory is identity-mapped by the parent at IOVA 0).
   */
  data(env: { host: Host; device: PciDevice; rootGpa: number }): Uint8Array;
  /** Allocate the nested HWPT on a vIOMMU of this type (SMMUv3); omitted: on the parent HWPT (VT-d). */
  viommuType?: number;
  /** virt_id of the vDEVICE created when `viommuType` is set (default 1). */
  virtId?: bigint;
  /** The vIOMMU type's user data (IOMMU_VIOMMU_ALLOC data_uptr/data_len), when the type needs one. */
  viommuData?: () => Uint8Array;
}

/** What the conformance kit runs against: the plugin, a host profile for it and the devices to use. */
export interface ConformanceOptions {
  /** The plugin under test. */
  plugin: IommuPlugin;
  /**
   * The plugin package's package.json (a path or file URL, e.g. `new URL('../package.json', import.meta.url)`):
   * the kit checks that its `peerDependencies['@ioasid/core']` range includes the core running the kit.
   * Without it that check is reported as skipped.
   */
  packageJson?: string | URL;
  /** A host profile with units of the plugin's vendor and the devices below. */
  profile: HostProfile;
  /** BDF of a device used for the paging and DMA checks. */
  device: string;
  /** BDF of a device with PASID + PRI, if the hardware has one: enables the page-request round trip. */
  priDevice?: string;
  /**
   * Run the page-request round trip with this PASID, on a HWPT allocated with IOMMU_HWPT_ALLOC_PASID and
   * attached at it, for a driver that refuses page requests without a PASID itself (AMD-Vi: FAILURE).
   */
  priPasid?: number;
  /** The vendor's nested data builder: enables the nesting check when the unit can nest. */
  nested?: ConformanceNestedOptions;
  /** Page-table configurations to try first, by format id (the kit otherwise derives them from caps). */
  formatConfigs?: Readonly<Record<string, readonly PageTableConfig[]>>;
  /** Suite title; defaults to `conformance: <plugin id> on <profile name>`. */
  name?: string;
}

const PAGE = BigInt(PAGE_SIZE);
const SZ_2M = 2n << 20n;

/** A user buffer of `bytes` whose start is aligned to `align` (mmap over-allocates and trims nothing). */
function alignedBuffer(host: Host, bytes: bigint, align: bigint): bigint {
  const a = align > PAGE ? align : PAGE;
  const va = host.process.mmap(bytes + a);
  return ((va + a - 1n) / a) * a;
}

function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function checkStage(s: StageCaps, what: string): void {
  expect(s.inputBits.length, `${what}.inputBits is empty`).toBeGreaterThan(0);
  for (const b of s.inputBits) {
    expect(Number.isInteger(b), `${what}.inputBits holds ${b}`).toBe(true);
    expect(b, `${what}.inputBits`).toBeGreaterThanOrEqual(32);
    expect(b, `${what}.inputBits`).toBeLessThanOrEqual(64);
  }
  expect(Number.isInteger(s.outputBits) && s.outputBits >= 32 && s.outputBits <= 64, `${what}.outputBits = ${s.outputBits}`).toBe(true);
  expect(s.pageSizes & (1n << 12n), `${what}.pageSizes must include 4K`).toBe(1n << 12n);
  // A page no larger than the output space: RISC-V Sv57's top-level leaf is 2^48 bytes (256 TiB).
  for (const l of log2PageSizes(s.pageSizes)) expect(l >= 12 && l < s.outputBits, `${what}.pageSizes has 2^${l} (outputBits ${s.outputBits})`).toBe(true);
}

function checkCaps(caps: NormalizedCaps, vendor: string): void {
  expect(caps.vendor).toBe(vendor);
  expect(typeof caps.version === 'string' && caps.version.length > 0, 'caps.version is empty').toBe(true);
  expect(caps.hostStage, 'caps.hostStage: a unit that maps host DMA needs a stage').not.toBeNull();
  checkStage(caps.hostStage!, 'hostStage');
  if (caps.userStage) checkStage(caps.userStage, 'userStage');
  expect(Number.isInteger(caps.pasidBits) && caps.pasidBits >= 0 && caps.pasidBits <= 20, `caps.pasidBits = ${caps.pasidBits}`).toBe(true);
  for (const k of ['pri', 'stall', 'ats', 'nesting', 'dirtyTracking', 'coherent', 'cachingMode', 'rangeInvalidation', 'interruptRemapping'] as const) {
    expect(typeof caps[k], `caps.${k}`).toBe('boolean');
  }
  if (caps.nesting) expect(caps.userStage, 'caps.nesting without a userStage').not.toBeNull();
  expect(Array.isArray(caps.features)).toBe(true);
}

/** A PageTableMemory on its own physical memory that counts table pages and can be made to fail. */
class CountingMemory implements PageTableMemory {
  readonly mem = new PhysicalMemory();
  private readonly frames = new FrameAllocator(this.mem);
  live = 0;
  /** Allocations still allowed before allocTable fails (ENOMEM paths); Infinity: never fails. */
  allowed = Number.POSITIVE_INFINITY;
  allocTable(): number {
    if (this.allowed <= 0) return -1;
    this.allowed--;
    const pfn = this.frames.alloc();
    if (pfn >= 0) this.live++;
    return pfn;
  }
  releaseTable(pfn: number): void {
    this.live--;
    this.frames.release(pfn);
  }
}

/**
 * Candidate configurations for a format: the caller's, then ones derived from the unit's stages (the
 * output size capped at the 52 bits of the simulated physical address space).
 */
function formatCandidates(id: string, caps: readonly NormalizedCaps[], extra: Readonly<Record<string, readonly PageTableConfig[]>> | undefined): PageTableConfig[] {
  const out: PageTableConfig[] = [...(extra?.[id] ?? []).map((c) => ({ ...c }))];
  for (const c of caps) {
    for (const s of [c.hostStage, c.userStage]) {
      if (!s) continue;
      for (const ias of [...s.inputBits].sort((a, b) => a - b)) {
        for (const options of [undefined, { stage: 1 }, { stage: 2 }]) {
          out.push({ pgsizeBitmap: s.pageSizes, ias, oas: Math.min(s.outputBits, 52), granule: 4096, coherent: true, ...(options ? { options } : {}) });
        }
      }
    }
  }
  return out;
}

function allocFormat(f: PageTableFormat, candidates: PageTableConfig[], memory: PageTableMemory): { pt: IoPageTable; cfg: PageTableConfig } | null {
  for (const cfg of candidates) {
    const pt = f.alloc({ ...cfg }, memory);
    if (typeof pt !== 'number') return { pt, cfg };
  }
  return null;
}

/** The iommu_hwpt_pgfault fields of a record read from a fault fd. */
function readPgfaults(bytes: Uint8Array): ReturnType<typeof U.iommu_hwpt_pgfault.decode>[] {
  const out = [];
  for (let off = 0; off < bytes.length; off += U.iommu_hwpt_pgfault.size) out.push(U.iommu_hwpt_pgfault.decode(bytes, off));
  return out;
}

function responseBytes(cookie: number, code: number): Uint8Array {
  return U.iommu_hwpt_page_response.encode({ cookie, code });
}

/** Waits for the fault pipeline's interrupt thread (microtasks) and any timers to run. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

interface Env {
  host: Host;
  fd: Iommufd;
  dev: PciDevice;
  devId: number;
  caps: NormalizedCaps;
}

/** One check of the kit: `optional` names the optional op (or capability) it needs, `absent` says it is missing. */
/** One check of the kit, as conformanceChecks lists it. */
export interface ConformanceCheck {
  /** The check's title, prefixed with its optional part ('nesting: ...') when it has one. */
  readonly name: string;
  /** The optional operation or capability the check exercises ('hw_info', 'nesting', 'dirty tracking', ...). */
  readonly optional: string | null;
  /** True when that optional part is absent: the check is reported as skipped, by name. */
  readonly absent: boolean;
  /** Runs the check; it throws (or its promise rejects) on failure. */
  run(): unknown;
}

/** What the plugin offers of the optional parts, read from a host built on the profile. */
interface OptionalParts {
  hwInfo: boolean;
  bootLog: boolean;
  dirty: boolean;
  nesting: boolean;
  codec: boolean;
  /** The codec has the page-request half (PageRequestCodec). */
  pageRequests: boolean;
  pri: boolean;
}

function probeOptional(options: ConformanceOptions): OptionalParts {
  try {
    // These check the vendor, not the platform's MSI isolation: bind as a VMM does on a host without
    // interrupt remapping (virtio-iommu, RISC-V), with iommufd.allow_unsafe_interrupts=1.
    const host = createHost({ plugins: [options.plugin], profile: options.profile, allowUnsafeInterrupts: true });
    const dev = host.device(options.device);
    const ops = dev.unitOps;
    let pri = false;
    if (options.priDevice) {
      const p = host.device(options.priDevice);
      pri = p.unitOps.caps.pri && p.info.pri;
    }
    return {
      hwInfo: typeof ops.hwInfo === 'function',
      bootLog: host.units.some((u) => typeof u.ops.bootLog === 'function'),
      dirty: ops.caps.dirtyTracking,
      nesting: ops.caps.nesting && options.nested !== undefined,
      codec: ops.faults !== undefined,
      pageRequests: codecPageRequests(ops.faults),
      pri,
    };
  } catch {
    // A plugin that cannot even build its host fails the mandatory checks; run every optional one too.
    return { hwInfo: true, bootLog: true, dirty: true, nesting: true, codec: true, pageRequests: true, pri: true };
  }
}

/**
 * The checks of the kit for `plugin` on `profile`, in order. Each builds its own host, so they are
 * independent and can run in any order; a check throws (vitest's expect) when the plugin breaks the
 * contract. describeConformance registers them as tests; runConformance runs them directly.
 */
export function conformanceChecks(options: ConformanceOptions): ConformanceCheck[] {
  const { plugin, profile } = options;
  const parts = probeOptional(options);
  const checks: ConformanceCheck[] = [];
  const check = (name: string, run: () => unknown, optional: string | null = null, present = true): void => {
    checks.push({ name: optional ? `${optional}: ${name}` : name, optional, absent: !present, run });
  };

  // These check the vendor, not the platform's MSI isolation: bind as a VMM does on a host without
  // interrupt remapping (virtio-iommu, RISC-V), with iommufd.allow_unsafe_interrupts=1.
  const newHost = (): Host => createHost({ plugins: [plugin], profile, allowUnsafeInterrupts: true });
  const env = (bdf = options.device): Env => {
    const host = newHost();
    const fd = host.openIommufd();
    const dev = host.device(bdf);
    const devId = dev.bindIommufd(fd);
    return { host, fd, dev, devId, caps: dev.unitOps.caps };
  };
  const hwptAlloc = (e: Env, ptId: number, flags = 0, extra: Partial<ReturnType<typeof U.iommu_hwpt_alloc.zero>> = {}): number =>
    e.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: e.devId, pt_id: ptId, flags, ...extra }).out_hwpt_id;
  /**
   * Maps fresh user memory holding `data` (padded to the IOAS alignment) at an IOVA the IOAS picks;
   * returns the IOVA, the user VA and the mapped length.
   */
  const mapFresh = (e: Env, ioas: number, data: Uint8Array, writeable = true): { iova: bigint; va: bigint; length: bigint } => {
    const align = e.fd.ioas.iovaRanges(ioas).alignment;
    const a = align > PAGE ? align : PAGE;
    const length = ((BigInt(data.length) + a - 1n) / a) * a;
    const va = alignedBuffer(e.host, length, a);
    e.host.process.poke(va, data);
    const iova = e.fd.ioas.map({ ioasId: ioas, userVa: va, length, writeable });
    return { iova, va, length };
  };
  const unitProfiles = profile.units;

  check(
    'declares a @ioasid/core peer range that includes this core',
    () => {
      // This module is src/testing/conformance.ts or dist/testing/conformance.js: core's package.json is two up.
      const core = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      const pkg = JSON.parse(readFileSync(options.packageJson!, 'utf8')) as unknown;
      const r = checkCorePeerRange(pkg, core.version);
      if (!r.ok) throw new Error(r.error);
    },
    'package.json',
    options.packageJson !== undefined,
  );

  {
    check('is a well-formed plugin that registers its vendor', () => {
      expect(typeof plugin.id === 'string' && plugin.id.length > 0).toBe(true);
      expect(typeof plugin.register).toBe('function');
      const ph = new PluginHost();
      ph.load(plugin);
      const vendors = ph.vendors();
      expect(vendors.length, 'register() added no IOMMU_VENDOR').toBeGreaterThan(0);
      for (const v of vendors) expect(typeof v.name === 'string' && v.name.length > 0, `vendor ${v.id} has no name`).toBe(true);
      expect(unitProfiles.length, 'the profile has no units').toBeGreaterThan(0);
      for (const u of unitProfiles) expect(ph.vendor(u.vendor), `no vendor '${u.vendor}' after register()`).toBeDefined();
      expect(profile.devices.some((d) => d.bdf === options.device), `device ${options.device} is not in the profile`).toBe(true);
    });

    check('decodes the profile registers into sane normalized capabilities', () => {
      const ph = new PluginHost();
      ph.load(plugin);
      for (const u of unitProfiles) {
        const vendor = ph.vendor(u.vendor)!;
        const r = vendor.decodeRegisters(u.registers ?? {});
        if (!r.ok) throw new Error(`${u.id}: decodeRegisters failed: ${r.error}`);
        const d: DecodedUnit = r.value;
        expect(d.vendor).toBe(u.vendor);
        checkCaps(d.caps, u.vendor);
        expect(typeof d.hwId === 'string' && d.hwId.length > 0, `${u.id}: empty hwId`).toBe(true);
        expect(Array.isArray(d.registers)).toBe(true);
        for (const reg of d.registers) {
          expect(typeof reg.name === 'string' && reg.name.length > 0).toBe(true);
          expect(typeof reg.value).toBe('bigint');
        }
        // The normalized registers written back into a profile decode to the same capabilities.
        const again = vendor.decodeRegisters(d.profileRegisters);
        if (!again.ok) throw new Error(`${u.id}: profileRegisters do not decode: ${again.error}`);
        expect(again.value.caps).toEqual(d.caps);
        // Bad input is a Result, never an exception: a failure names what is wrong; a vendor that
        // ignores unknown names still decodes sane capabilities.
        const bad = vendor.decodeRegisters({ __conformance__: 'not a register' });
        expect(typeof bad === 'object' && bad !== null && typeof bad.ok === 'boolean', `${u.id}: decodeRegisters did not return a Result`).toBe(true);
        if (!bad.ok) expect(typeof bad.error === 'string' && bad.error.length > 0, `${u.id}: a refused register set needs a reason`).toBe(true);
        else checkCaps(bad.value.caps, u.vendor);
      }
    });

    check(
      "writes each unit's boot lines to the host log",
      () => {
        const host = newHost();
        let units = 0;
        for (const unit of host.units) {
          if (!unit.ops.bootLog) continue;
          units++;
          const lines = unit.ops.bootLog();
          expect(Array.isArray(lines) && lines.length > 0, `unit ${unit.id}: bootLog gave no line`).toBe(true);
          for (const l of lines) {
            expect(typeof l === 'string' && l.length > 0, `unit ${unit.id}: empty boot line`).toBe(true);
            expect(host.log.lines).toContain(l);
          }
        }
        expect(units).toBeGreaterThan(0);
      },
      'boot log',
      parts.bootLog,
    );

    check('builds named units', () => {
      const host = newHost();
      expect(host.units.length).toBe(unitProfiles.length);
      for (const unit of host.units) {
        const ops = unit.ops;
        expect(ops.vendor).toBe(unitProfiles[unit.index].vendor);
        expect(typeof ops.name === 'string' && ops.name.length > 0, `unit ${unit.id} has no name`).toBe(true);
        expect(ops.caps).toEqual(ops.decoded.caps);
        if (ops.faultQueueDepth !== undefined) expect(Number.isInteger(ops.faultQueueDepth) && ops.faultQueueDepth >= 0).toBe(true);
        if (ops.pageRequestQueueDepth !== undefined) expect(Number.isInteger(ops.pageRequestQueueDepth) && ops.pageRequestQueueDepth >= 0).toBe(true);
        if (ops.caps.pri && ops.faults) {
          expect(ops.pageRequestQueueDepth ?? 512, `unit ${unit.id}: PRI without a page request queue`).toBeGreaterThan(0);
          expect(codecPageRequests(ops.faults), `unit ${unit.id}: PRI without the page-request half of its fault codec`).toBe(true);
        }
      }
    });

    check('answers IOMMU_GET_HW_INFO with the PASID width and capabilities (type NONE without hw_info)', () => {
      const e = env();
      const buf = e.host.process.mmap(4096);
      const out = e.fd.run(U.iommu_hw_info, 'GET_HW_INFO', { dev_id: e.devId, data_len: 4096, data_uptr: buf });
      expect(out.out_max_pasid_log2).toBe(Math.min(e.caps.pasidBits, e.dev.info.pasidBits));
      expect((out.out_capabilities & U.IOMMU_HW_CAP_DIRTY_TRACKING) !== 0n).toBe(e.caps.dirtyTracking);
      if (!e.dev.unitOps.hwInfo) expect(out.data_type).toBe(U.IOMMU_HW_INFO_TYPE_NONE);
      else expect(out.data_type).not.toBe(U.IOMMU_HW_INFO_TYPE_NONE);
    });

    check(
      'reports its hw_info data through IOMMU_GET_HW_INFO',
      () => {
        const e = env();
        const ops = e.dev.unitOps;
        const buf = e.host.process.mmap(4096);
        const out = e.fd.run(U.iommu_hw_info, 'GET_HW_INFO', { dev_id: e.devId, data_len: 4096, data_uptr: buf });
        const direct = ops.hwInfo!(e.dev.info, 0);
        if ('errno' in direct) throw new Error(`hwInfo(default) failed: ${direct.errno} ${direct.reason}`);
        expect(direct.type, 'hw_info type must be non-zero').not.toBe(0);
        expect(direct.data.length).toBeGreaterThan(0);
        expect(out.data_type).toBe(direct.type);
        expect(out.data_len).toBe(direct.data.length);
        expect([...e.host.process.peek(buf, direct.data.length)]).toEqual([...direct.data]);
        // Asking for the type it reports explicitly works too.
        const typed = e.fd.run(U.iommu_hw_info, 'GET_HW_INFO', { dev_id: e.devId, flags: U.IOMMU_HW_INFO_FLAG_INPUT_TYPE, data_type: direct.type });
        expect(typed.data_type).toBe(direct.type);
      },
      'hw_info',
      parts.hwInfo,
    );

    check('allocates paging domains and DMA reaches exactly the mapped bytes', async () => {
      const e = env();
      expect(e.dev.unitOps.domainAllocPaging, 'domainAllocPaging is required').toBeTypeOf('function');
      const ioas = e.fd.ioas.alloc();
      const hwpt = hwptAlloc(e, ioas);
      expect(e.fd.ctx.objects.peek(hwpt)?.type).toBe(ObjType.HWPT_PAGING);
      expect(e.dev.attachPt(hwpt)).toBe(hwpt);
      const data = pattern(4 * PAGE_SIZE, 1);
      const { iova, va, length } = mapFresh(e, ioas, data);
      // Reads see the user memory, page crossings included.
      expect([...(await e.dev.dma.read(iova, data.length))]).toEqual([...data]);
      expect([...(await e.dev.dma.read(iova + 4000n, 200))]).toEqual([...data.subarray(4000, 4200)]);
      // Writes land in the user memory and nowhere else.
      const w = pattern(300, 2);
      await e.dev.dma.write(iova + 0x1f00n, w);
      const expected = data.slice();
      expected.set(w, 0x1f00);
      expect([...e.host.process.peek(va, data.length)]).toEqual([...expected]);
      // The bytes just outside the mapping are not reachable.
      await expect(e.dev.dma.read(iova + length, 1)).rejects.toBeInstanceOf(DmaFault);
      if (iova >= PAGE) await expect(e.dev.dma.read(iova - 1n, 1)).rejects.toBeInstanceOf(DmaFault);
      // Read-only mappings refuse writes.
      const { iova: roIova } = mapFresh(e, ioas, pattern(PAGE_SIZE, 3), false);
      expect((await e.dev.dma.read(roIova, 8)).length).toBe(8);
      await expect(e.dev.dma.write(roIova, new Uint8Array([1]))).rejects.toBeInstanceOf(DmaFault);
      // Unmap invalidates before it returns: no stale IOTLB entry survives (the reads above cached them).
      e.fd.ioas.unmap(ioas, iova, length);
      for (let p = 0; p < 4; p++) expect(e.dev.translatePage(Number(iova / PAGE) + p, PERM_READ)).toBe(-1);
      await expect(e.dev.dma.read(iova, 1)).rejects.toBeInstanceOf(DmaFault);
      await expect(e.dev.dma.write(iova + 0x1000n, new Uint8Array([9]))).rejects.toBeInstanceOf(DmaFault);
      // Detach blocks DMA, and the HWPT can then be destroyed.
      e.dev.detachPt();
      await expect(e.dev.dma.read(roIova, 1)).rejects.toBeInstanceOf(DmaFault);
      e.fd.destroy(hwpt);
      e.fd.destroy(ioas);
    });

    check('attaches to an IOAS through an automatic domain', async () => {
      const e = env();
      const ioas = e.fd.ioas.alloc();
      const before = mapFresh(e, ioas, pattern(2 * PAGE_SIZE, 4));
      const hwpt = e.dev.attachPt(ioas);
      expect(e.fd.ctx.objects.peek(hwpt)?.type).toBe(ObjType.HWPT_PAGING);
      // Mappings made before and after the attach are both visible.
      expect([...(await e.dev.dma.read(before.iova, 2 * PAGE_SIZE))]).toEqual([...pattern(2 * PAGE_SIZE, 4)]);
      const after = mapFresh(e, ioas, pattern(PAGE_SIZE, 5));
      expect([...(await e.dev.dma.read(after.iova, PAGE_SIZE))]).toEqual([...pattern(PAGE_SIZE, 5)]);
      e.dev.detachPt();
      expect(e.fd.ctx.objects.peek(hwpt), 'the automatic domain is freed by the last detach').toBeUndefined();
    });

    check('maps 2 MiB aligned huge mappings correctly and unmaps them whole', async () => {
      const e = env();
      const ioas = e.fd.ioas.alloc();
      const hwptId = hwptAlloc(e, ioas);
      e.dev.attachPt(hwptId);
      // Physically aligned, contiguous backing so that a format with 2M blocks can use one.
      const va = alignedBuffer(e.host, SZ_2M, SZ_2M);
      for (let i = 0; i < 1024; i++) {
        const p = e.host.frames.alloc();
        if ((p + 1) % 512 === 0) break;
      }
      const data = pattern(Number(SZ_2M), 6);
      e.host.process.poke(va, data);
      const iova = e.fd.ioas.map({ ioasId: ioas, userVa: va, length: SZ_2M });
      expect(iova % SZ_2M).toBe(0n);
      const frames = new Float64Array(512);
      e.host.process.resolvePages(Number(va / PAGE), 512, false, frames);
      for (const p of [0, 1, 255, 256, 511]) expect(e.dev.translatePage(Number(iova / PAGE) + p, PERM_READ)).toBe(frames[p]);
      for (const off of [0, 0x1234, 0xfffff, 0x1ff000]) {
        expect([...(await e.dev.dma.read(iova + BigInt(off), 64))]).toEqual([...data.subarray(off, off + 64)]);
      }
      await e.dev.dma.write(iova + 0x100000n, new Uint8Array([0xa5, 0x5a]));
      expect([...e.host.process.peek(va + 0x100000n, 2)]).toEqual([0xa5, 0x5a]);
      const hwpt = e.fd.ctx.objects.peek(hwptId) as HwptPaging;
      const contiguous = frames[0] % 512 === 0 && frames.every((f, i) => f === frames[0] + i);
      if (contiguous && hwpt.pgsizeBitmap & SZ_2M) {
        const wr = new WalkResult();
        expect(hwpt.ops.pt.walk(Number(iova / PAGE) + 7, wr)).toBe(true);
        expect(wr.pageShift, 'a 2M aligned, contiguous mapping should use a 2M block').toBeGreaterThanOrEqual(21);
        expect(wr.pfn).toBe(frames[7]);
      }
      expect(e.fd.ioas.unmap(ioas, iova, SZ_2M)).toBe(SZ_2M);
      for (const p of [0, 7, 300, 511]) expect(e.dev.translatePage(Number(iova / PAGE) + p, PERM_READ)).toBe(-1);
      await expect(e.dev.dma.read(iova + 0x80000n, 1)).rejects.toBeInstanceOf(DmaFault);
    });

    check('has page-table formats that round-trip map / walk / unmap on their own', () => {
      const ph = new PluginHost();
      ph.load(plugin);
      const formats = ph.formats();
      const caps: NormalizedCaps[] = [];
      for (const u of unitProfiles) {
        const r = ph.vendor(u.vendor)?.decodeRegisters(u.registers ?? {});
        if (r?.ok) caps.push(r.value.caps);
      }
      const ids = new Set<string>();
      for (const f of formats) {
        expect(typeof f.id === 'string' && f.id.length > 0).toBe(true);
        expect(ids.has(f.id), `format id '${f.id}' registered twice`).toBe(false);
        ids.add(f.id);
        expect(typeof f.describe === 'string' && f.describe.length > 0, `${f.id}: describe is empty`).toBe(true);
        const memory = new CountingMemory();
        const got = allocFormat(f, formatCandidates(f.id, caps, options.formatConfigs), memory);
        if (!got) throw new Error(`format ${f.id}: alloc accepted none of the configurations derived from the unit caps; pass formatConfigs['${f.id}'] to describeConformance`);
        const { pt } = got;
        expect(pt.format).toBe(f.id);
        expect(memory.live).toBeGreaterThan(0);
        const sizes = log2PageSizes(pt.cfg.pgsizeBitmap);
        expect(sizes.length, `${f.id}: empty pgsizeBitmap`).toBeGreaterThan(0);
        const unit = 2 ** (sizes[0] - 12);
        const ias = pt.cfg.ias;
        const topPfn = 2 ** (ias - 12);
        const wr = new WalkResult();
        // 4K-granule pages at a few places, read-only and read-write, including the top of the input space.
        const cases: { pfn: number; pa: number; n: number; prot: number }[] = [
          { pfn: unit * 16, pa: 0x40000 + unit * 3, n: unit * 3, prot: IOMMU_READ | IOMMU_WRITE },
          { pfn: unit * 1000, pa: 0x50000, n: unit, prot: IOMMU_READ },
          { pfn: topPfn - unit, pa: 0x60000, n: unit, prot: IOMMU_READ | IOMMU_WRITE },
        ];
        const block = sizes.find((s) => s > sizes[0] && s <= 30);
        if (block !== undefined) {
          const bp = 2 ** (block - 12);
          cases.push({ pfn: bp * 4, pa: bp * 8, n: bp, prot: IOMMU_READ | IOMMU_WRITE });
        }
        for (const c of cases) {
          expect(pt.map(c.pfn, c.pa, c.n, c.prot), `${f.id}: map(0x${c.pfn.toString(16)}, ${c.n})`).toBe(0);
        }
        for (const c of cases) {
          for (const i of [0, c.n - 1, Math.floor(c.n / 2)]) {
            expect(pt.walk(c.pfn + i, wr), `${f.id}: walk(0x${(c.pfn + i).toString(16)})`).toBe(true);
            expect(wr.fault).toBe(WALK_OK);
            expect(wr.pfn).toBe(c.pa + i);
            // A mapping without IOMMU_PRIV serves unprivileged requests; one without IOMMU_NOEXEC
            // lets them execute (permission.ts: grant bits per privilege level).
            expect(permAllowed(wr.perm, PERM_READ), `${f.id}: an unprivileged read of a page mapped without IOMMU_PRIV`).toBe(true);
            expect(permAllowed(wr.perm, PERM_WRITE), `${f.id}: an unprivileged write, prot ${c.prot}`).toBe((c.prot & IOMMU_WRITE) !== 0);
            expect(permAllowed(wr.perm, PERM_EXEC), `${f.id}: an unprivileged execute of a page mapped without IOMMU_NOEXEC`).toBe(true);
          }
          // Something mapped there already: EEXIST, and nothing changes.
          expect(pt.map(c.pfn, 0x70000, unit, c.prot)).toBe(-17);
          expect(pt.walk(c.pfn, wr) && wr.pfn === c.pa).toBe(true);
        }
        expect(pt.walk(unit * 16 + unit * 3, wr), `${f.id}: the page after a mapping is not present`).toBe(false);
        expect(pt.walk(unit * 15, wr)).toBe(false);
        // IOMMU_NOEXEC takes execute away where the format can express it, and never read.
        const nx = unit * 2000;
        expect(pt.map(nx, 0x58000, unit, IOMMU_READ | IOMMU_NOEXEC)).toBe(0);
        expect(pt.walk(nx, wr) && permAllowed(wr.perm, PERM_READ), `${f.id}: IOMMU_NOEXEC took read away`).toBe(true);
        expect(pt.unmap(nx, unit)).toBe(unit);
        // One-granule maps one after another in one leaf table, as a fault handler makes them (the radix
        // engine maps the next one into the table it remembers), with the prot changing between them:
        // each page keeps its own frame and grants (RadixCodec.leafBits answers per prot).
        const seq = unit * 4096;
        const prots = [IOMMU_READ | IOMMU_WRITE, IOMMU_READ | IOMMU_WRITE, IOMMU_READ, IOMMU_READ | IOMMU_WRITE, IOMMU_READ, IOMMU_READ];
        prots.forEach((prot, k) => expect(pt.map(seq + k * unit, 0x90000 + k * unit, unit, prot), `${f.id}: one-page map ${k} of a run`).toBe(0));
        prots.forEach((prot, k) => {
          expect(pt.walk(seq + k * unit, wr) && wr.pfn === 0x90000 + k * unit, `${f.id}: page ${k} of a run of one-page maps`).toBe(true);
          expect(permAllowed(wr.perm, PERM_WRITE), `${f.id}: page ${k} of a run of one-page maps, prot ${prot}`).toBe((prot & IOMMU_WRITE) !== 0);
        });
        expect(pt.map(seq + unit, 0x70000, unit, IOMMU_READ), `${f.id}: a one-page map over the run`).toBe(-17);
        expect(pt.unmap(seq, prots.length * unit)).toBe(prots.length * unit);
        expect(pt.walk(seq, wr)).toBe(false);
        // A superpage goes only whole: a range covering part of one removes nothing of it.
        const big = cases[3];
        if (big) {
          const removed = pt.unmap(big.pfn + unit, unit);
          expect(removed, `${f.id}: unmap of one page inside a ${big.n}-page leaf`).toBe(0);
          for (const i of [0, unit, big.n - 1]) expect(pt.walk(big.pfn + i, wr) && wr.pfn === big.pa + i, `${f.id}: the superpage lost page ${i}`).toBe(true);
        }
        // ENOMEM at any depth leaves the table exactly as it was: let the 1st, 2nd, ... table
        // allocation of a map far from everything fail, until the map needs no more.
        const far = 2 ** Math.min(ias - 13, 40);
        for (let k = 0; k < 16; k++) {
          const before = memory.live;
          memory.allowed = k;
          const rc = pt.map(far, 0x80000, unit, IOMMU_READ);
          memory.allowed = Number.POSITIVE_INFINITY;
          if (rc === 0) {
            expect(pt.unmap(far, unit)).toBe(unit);
            break;
          }
          expect(rc, `${f.id}: a failed table allocation is -ENOMEM`).toBe(-12);
          expect(pt.walk(far, wr)).toBe(false);
          expect(memory.live, `${f.id}: a map failing at table allocation ${k + 1} leaked table pages`).toBe(before);
          expect(pt.tablePages, `${f.id}: tablePages after a failed map`).toBe(memory.live);
        }
        for (const c of cases) expect(pt.walk(c.pfn, wr) && wr.pfn === c.pa).toBe(true);
        // Unmap removes exactly what was mapped.
        for (const c of cases) {
          expect(pt.unmap(c.pfn, c.n), `${f.id}: unmap(0x${c.pfn.toString(16)}, ${c.n})`).toBe(c.n);
          expect(pt.walk(c.pfn, wr)).toBe(false);
          expect(pt.walk(c.pfn + c.n - 1, wr)).toBe(false);
        }
        expect(pt.unmap(unit * 16, unit)).toBe(0);
        // Free gives every table page back.
        pt.free();
        expect(memory.live, `${f.id}: free() leaked table pages`).toBe(0);
      }
    });

    check('refuses HWPT flags the capabilities deny with EOPNOTSUPP and accepts the others', async () => {
      const e = env();
      const ioas = e.fd.ioas.alloc();
      const alloc = (flags: number) => errCode(() => hwptAlloc(e, ioas, flags));
      expect(alloc(U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING)).toBe(e.caps.dirtyTracking ? 'ok' : 'EOPNOTSUPP');
      expect(alloc(U.IOMMU_HWPT_ALLOC_NEST_PARENT)).toBe(e.caps.nesting ? 'ok' : 'EOPNOTSUPP');
      expect(alloc(U.IOMMU_HWPT_ALLOC_PASID)).toBe(e.caps.pasidBits > 0 ? 'ok' : 'EOPNOTSUPP');
      expect(alloc(1 << 30)).toBe('EOPNOTSUPP');
    });

    check(
      'reports exactly the pages a DMA wrote, whole leaves, through GET_DIRTY_BITMAP',
      async () => {
        const e = env();
        const ioas = e.fd.ioas.alloc();
        const h = hwptAlloc(e, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        e.dev.attachPt(h);
        const { iova } = mapFresh(e, ioas, pattern(4 * PAGE_SIZE, 7));
        e.fd.run(U.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: h, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
        // A read dirties nothing; the write below dirties its leaf.
        await e.dev.dma.read(iova, 4 * PAGE_SIZE);
        await e.dev.dma.write(iova + 2n * PAGE + 5n, new Uint8Array([1]));
        const bm = e.host.process.mmap(4096);
        e.fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', { hwpt_id: h, iova, length: 4n * PAGE, page_size: PAGE, data: bm });
        // The dirty bit lives in the leaf: a format that maps the pages with a larger page (AMD v1's
        // 8K/16K sizes) reports every 4K page of that leaf, as the hardware does.
        const wr = new WalkResult();
        expect((e.fd.ctx.objects.peek(h) as HwptPaging).ops.pt.walk(Number(iova / PAGE) + 2, wr)).toBe(true);
        const leafPages = 2 ** (wr.pageShift - 12);
        const first = Math.floor(2 / leafPages) * leafPages;
        let expected = 0;
        for (let p = first; p < Math.min(first + leafPages, 4); p++) expected |= 1 << p;
        expect(e.host.process.peek(bm, 1)[0] & 0b1111).toBe(expected);
      },
      'dirty tracking',
      parts.dirty,
    );

    check(
      'allocates nested HWPTs from vendor data',
      () => {
        const e = env();
        const n = options.nested!;
        const ioas = e.fd.ioas.alloc();
        const parent = hwptAlloc(e, ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
        // Guest memory: 16 zeroed pages at GPA 0.
        const align = e.fd.ioas.iovaRanges(ioas).alignment;
        const gmem = alignedBuffer(e.host, 16n * PAGE, align);
        e.host.process.poke(gmem, new Uint8Array(16 * PAGE_SIZE));
        e.fd.ioas.map({ ioasId: ioas, userVa: gmem, length: 16n * PAGE, iova: 0n });
        let ptId = parent;
        if (n.viommuType !== undefined) {
          const vdata = n.viommuData?.() ?? new Uint8Array(0);
          const vptr = vdata.length ? e.host.process.mmap(vdata.length) : 0n;
          if (vdata.length) e.host.process.poke(vptr, vdata);
          ptId = e.fd.run(U.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: e.devId, type: n.viommuType, hwpt_id: parent, data_len: vdata.length, data_uptr: vptr }).out_viommu_id;
          e.fd.run(U.iommu_vdevice_alloc, 'VDEVICE_ALLOC', { viommu_id: ptId, dev_id: e.devId, virt_id: n.virtId ?? 1n });
        }
        const bytes = n.data({ host: e.host, device: e.dev, rootGpa: 1 });
        const uptr = e.host.process.mmap(Math.max(bytes.length, 1));
        e.host.process.poke(uptr, bytes);
        const nested = (dataType: number) => hwptAlloc(e, ptId, 0, { data_type: dataType, data_len: bytes.length, data_uptr: uptr });
        expect(errCode(() => nested(0x7ffe_fffe))).toBe('EOPNOTSUPP');
        const id = nested(n.dataType);
        expect(e.fd.ctx.objects.peek(id)?.type).toBe(ObjType.HWPT_NESTED);
        expect(errCode(() => e.fd.destroy(parent))).toBe('EBUSY');
        expect(e.dev.attachPt(id)).toBe(id);
        e.dev.detachPt();
        e.fd.destroy(id);
      },
      'nesting',
      parts.nesting,
    );

    /** A decoded record names the access it was encoded from: who, where (to the page) and read/write. */
    const expectDecoded = (f: IommuFault, what: string, want: Pick<IommuFault, 'kind' | 'unit' | 'rid' | 'pasid' | 'addr' | 'perm'>): void => {
      expect(f.kind, what).toBe(want.kind);
      expect(f.unit, what).toBe(want.unit);
      expect(f.rid, what).toBe(want.rid);
      expect(f.pasid, what).toBe(want.pasid);
      expect(f.addr >> 12n, what).toBe(want.addr >> 12n);
      expect(f.perm & (PERM_READ | PERM_WRITE), what).toBe(want.perm);
    };

    const codecOf = (): { codec: FaultCodec | undefined; rid: number; pasidBits: number; inputBits: number; unit: number } => {
      const host = newHost();
      const dev = host.device(options.device);
      const caps = dev.unitOps.caps;
      return { codec: dev.unitOps.faults, rid: dev.info.rid, pasidBits: caps.pasidBits, inputBits: Math.max(...caps.hostStage!.inputBits), unit: dev.unitIndex };
    };

    check(
      'has a fault codec whose records round-trip and tell a blocked DMA from an unmapped page',
      () => {
        const { codec: present, rid, pasidBits, inputBits, unit } = codecOf();
        const codec = present!;
        expect(codec.faultRecordSize).toBeGreaterThan(0);
        // The page-request half is all or nothing.
        const prMembers = [codec.pageRequestSize, codec.encodePageRequest, codec.decodePageRequest, codec.encodePageResponse, codec.decodePageResponse];
        expect(prMembers.every((m) => m === undefined) || codecPageRequests(codec), 'the page-request members of a FaultCodec are all present or all absent').toBe(true);
        const pasids = pasidBits > 0 ? [-1, 1, 2 ** pasidBits - 1] : [-1];
        const addrs = [0x1234_5000n, (1n << BigInt(Math.min(inputBits, 64))) - PAGE];
        const base: FailedAccess = { unit, rid, pasid: -1, addr: 0n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true };
        for (const pasid of pasids) {
          for (const addr of addrs) {
            for (const perm of [PERM_READ, PERM_WRITE]) {
              const a: FailedAccess = { ...base, pasid, addr: addr + 0x123n, perm };
              const rec = codec.encodeFault(a);
              expect(rec.length).toBe(codec.faultRecordSize);
              const f = codec.decodeFault(rec, unit);
              const what = `fault pasid ${pasid} addr 0x${addr.toString(16)} perm ${perm}`;
              expectDecoded(f, what, { kind: 'dma', unit, rid, pasid, addr, perm });
              expect(typeof f.reasonText === 'string' && f.reasonText.length > 0, `${what}: empty reasonText`).toBe(true);
              const lines = codec.renderLog(f, options.device, 'unit0');
              expect(lines.length, `${what}: renderLog gave no line`).toBeGreaterThan(0);
              for (const l of lines) expect(typeof l === 'string' && l.length > 0).toBe(true);
            }
            if (codecStalls(codec)) {
              // Stall model: the stalled record decodes as kind 'stall' with its tag; a resume carries
              // SUCCESS back as a retry and INVALID as a termination.
              for (const stag of [0, 0x1234, 0xffff]) {
                const a: FailedAccess = { ...base, pasid, addr, perm: PERM_READ, recoverable: true, kind: 'stall', grpid: stag, last: true };
                const rec = codec.encodeStall!(a);
                expect(rec.length).toBe(codec.faultRecordSize);
                const f = codec.decodeFault(rec, unit);
                const what = `stall pasid ${pasid} addr 0x${addr.toString(16)} stag ${stag}`;
                expect(f.kind, what).toBe('stall');
                expect(f.rid, what).toBe(rid);
                expect(f.pasid, what).toBe(pasid);
                expect(f.addr >> 12n, what).toBe(addr >> 12n);
                expect(f.grpid, what).toBe(stag);
                expect(f.last, what).toBe(true);
                expect(codec.decodeResume!(codec.encodeResume!({ rid, pasid, grpid: stag, code: PAGE_RESP_SUCCESS })).code, what).toBe(PAGE_RESP_SUCCESS);
                const abort = codec.decodeResume!(codec.encodeResume!({ rid, pasid, grpid: stag, code: PAGE_RESP_INVALID }));
                expect(abort.code, what).not.toBe(PAGE_RESP_SUCCESS);
                expect(abort.grpid, what).toBe(stag);
              }
            }
          }
        }
        // A blocked DMA and an unmapped page are different causes in every IOMMU's records.
        const access: FailedAccess = { ...base, addr: 0x4000n, tag: 7 };
        expect([...codec.encodeFault({ ...access, failure: 'blocked' })], 'a blocked DMA is recorded exactly as a not-present page').not.toEqual([...codec.encodeFault({ ...access, failure: 'not-present' })]);
      },
      'fault codec',
      parts.codec,
    );

    check(
      'has page request and page response records that round-trip',
      () => {
        const { codec: present, rid, pasidBits, inputBits, unit } = codecOf();
        const codec = present!;
        expect(codecPageRequests(codec), 'a codec with page requests has every member of PageRequestCodec').toBe(true);
        if (!codecPageRequests(codec)) return;
        expect(codec.pageRequestSize).toBeGreaterThan(0);
        // The in-place members (PageRequestInPlace) are all or nothing, and give what the allocating ones give.
        const inPlaceMembers = [codec.encodePageRequestInto, codec.encodePageResponseInto, codec.decodePageResponseInto];
        const inPlace = codecPageRequestsInPlace(codec);
        expect(inPlace || inPlaceMembers.every((m) => m === undefined), 'the in-place page-request methods of a FaultCodec are all absent, or all present with pageResponseSize').toBe(true);
        // The members in numbers (PageRequestFieldsCodec): both or none, only beside the in-place ones, and
        // they give what the allocating ones give.
        const fieldsMembers = [codec.encodePageRequestFields, codec.decodePageRequestFields];
        const inFields = codecPageRequestFields(codec);
        expect(inFields || fieldsMembers.every((m) => m === undefined), 'encodePageRequestFields and decodePageRequestFields are both absent, or both present beside the in-place page-request methods').toBe(true);
        const pasids = pasidBits > 0 ? [-1, 1, 2 ** pasidBits - 1] : [-1];
        // Also the top page below 4 GiB (bit 31 of the low word set: where dma-iommu's 32-bit IOVAs start).
        const addrs = [0x1234_5000n, ...(inputBits > 32 ? [0xffff_f000n] : []), (1n << BigInt(Math.min(inputBits, 64))) - PAGE];
        const base: FailedAccess = { unit, rid, pasid: -1, addr: 0n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: true, grpid: 0, last: true };
        for (const pasid of pasids) {
          for (const addr of addrs) {
            for (const perm of [PERM_READ, PERM_WRITE, PERM_READ | PERM_WRITE]) {
              for (const [grpid, last] of [[1, true], [0x1ff, false], [0x42, true]] as const) {
                const rec = codec.encodePageRequest({ ...base, pasid, addr, perm, grpid, last });
                expect(rec.length).toBe(codec.pageRequestSize);
                if (inPlace) {
                  // Into a dirty buffer: every byte of the record is written.
                  const slot = new Uint8Array(codec.pageRequestSize).fill(0xee);
                  codec.encodePageRequestInto({ ...base, pasid, addr, perm, grpid, last }, slot);
                  expect([...slot], 'encodePageRequestInto writes what encodePageRequest returns').toEqual([...rec]);
                }
                const f = codec.decodePageRequest(rec, unit);
                const what = `page request pasid ${pasid} addr 0x${addr.toString(16)} perm ${perm} grpid ${grpid}`;
                if (inFields) {
                  const a64 = BigInt.asUintN(64, addr);
                  // The halves as core hands them over (signed 32-bit words) and unsigned: the same record.
                  const lo = Number(a64 & 0xffff_ffffn);
                  const hi = Number(a64 >> 32n);
                  for (const [addrLo, addrHi] of [[lo | 0, hi | 0], [lo, hi]]) {
                    const req: PageRequestFields = { rid, pasid, addrLo, addrHi, perm, grpid, last, reason: -1, reasonText: 'unread', stage2: true };
                    const slot = new Uint8Array(codec.pageRequestSize).fill(0xee);
                    codec.encodePageRequestFields(req, slot);
                    expect([...slot], `encodePageRequestFields writes what encodePageRequest returns (${what}, halves ${addrLo}, ${addrHi})`).toEqual([...rec]);
                  }
                  const back: PageRequestFields = { rid: -2, pasid: -2, addrLo: -2, addrHi: -2, perm: -2, grpid: -2, last: false, reason: -2, reasonText: '', stage2: true };
                  codec.decodePageRequestFields(rec, back);
                  expect(pageRequestFault(back, unit), `decodePageRequestFields gives what decodePageRequest returns (${what})`).toEqual(f);
                }
                expectDecoded(f, what, { kind: 'page-request', unit, rid, pasid, addr, perm });
                expect(f.grpid, what).toBe(grpid);
                expect(f.last, what).toBe(last);
              }
            }
          }
          for (const code of [PAGE_RESP_SUCCESS, PAGE_RESP_INVALID]) {
            const bytes = codec.encodePageResponse({ rid, pasid, grpid: 0x1a3, code });
            const r = codec.decodePageResponse(bytes);
            if (inPlace) {
              expect(bytes.length).toBe(codec.pageResponseSize);
              const buf = new Uint8Array(codec.pageResponseSize).fill(0xee);
              codec.encodePageResponseInto({ rid, pasid, grpid: 0x1a3, code }, buf);
              expect([...buf], 'encodePageResponseInto writes what encodePageResponse returns').toEqual([...bytes]);
              const into: PageResponse = { rid: -2, pasid: -2, grpid: -2, code: -2 };
              codec.decodePageResponseInto(buf, into);
              expect(into, 'decodePageResponseInto gives what decodePageResponse returns').toEqual(r);
            }
            expect(r.code).toBe(code);
            expect(r.rid).toBe(rid);
            expect(r.grpid).toBe(0x1a3);
            if (pasid >= 0) expect(r.pasid).toBe(pasid);
          }
        }
      },
      'page-request codec',
      parts.pageRequests,
    );

    check('routes an unrecoverable DMA fault to the host log as the vendor renders it', async () => {
      const e = env();
      const ioas = e.fd.ioas.alloc();
      e.dev.attachPt(ioas);
      const { iova, length } = mapFresh(e, ioas, pattern(PAGE_SIZE, 8));
      e.fd.ioas.unmap(ioas, iova, length);
      const logged = e.host.faults.stats.logged;
      const err = await e.dev.dma.read(iova + 8n, 4).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(DmaFault);
      const f = (err as DmaFault).fault;
      expect(f.rid).toBe(e.dev.info.rid);
      expect(f.addr >> 12n).toBe(iova >> 12n);
      await settle();
      if (e.dev.unitOps.faults) {
        expect(e.host.faults.stats.logged).toBe(logged + 1);
        const lines = e.dev.unitOps.faults.renderLog(f, e.dev.bdf, e.dev.unitOps.name);
        for (const l of lines) expect(e.host.log.lines).toContain(l);
      }
    });

    check(
      'completes a page request round trip through the fault pipeline',
      async () => {
        const e = env(options.priDevice);
        expect(codecPageRequests(e.dev.unitOps.faults), 'a PRI-capable unit needs a fault codec with page requests').toBe(true);
        const ioas = e.fd.ioas.alloc();
        const fault = e.fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
        const pasid = options.priPasid;
        const dmaOpts = pasid === undefined ? {} : { pasid };
        const hwpt = hwptAlloc(e, ioas, U.IOMMU_HWPT_FAULT_ID_VALID | (pasid === undefined ? 0 : U.IOMMU_HWPT_ALLOC_PASID), { fault_id: fault.out_fault_id });
        e.dev.attachPt(hwpt, dmaOpts);
        // A known-usable IOVA: map and unmap one page there.
        const data = pattern(PAGE_SIZE, 9);
        const { iova, va, length } = mapFresh(e, ioas, data);
        e.fd.ioas.unmap(ioas, iova, length);
        const ffd = fault.out_fault_fd;
        expect(e.host.process.poll(ffd) & POLLIN).toBe(0);
        let settled = false;
        const dma = e.dev.dma.read(iova + 16n, 32, dmaOpts).finally(() => {
          settled = true;
        });
        await settle();
        expect(settled, 'the DMA waits for its page response').toBe(false);
        expect(e.host.process.poll(ffd) & POLLIN).toBe(POLLIN);
        const rec = e.host.process.read(ffd, 64 * U.iommu_hwpt_pgfault.size);
        expect(rec.length).toBe(U.iommu_hwpt_pgfault.size);
        const [pf] = readPgfaults(rec);
        expect(pf.dev_id).toBe(e.devId);
        expect(pf.addr >> 12n).toBe(iova >> 12n);
        expect(pf.perm & U.IOMMU_PGFAULT_PERM_READ).toBe(U.IOMMU_PGFAULT_PERM_READ);
        expect(pf.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE).toBe(U.IOMMU_PGFAULT_FLAGS_LAST_PAGE);
        if (pasid === undefined) expect(pf.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID).toBe(0);
        else {
          expect(pf.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID).toBe(U.IOMMU_PGFAULT_FLAGS_PASID_VALID);
          expect(pf.pasid).toBe(pasid);
        }
        expect(pf.cookie).not.toBe(0);
        // The handler maps the page and answers SUCCESS: the device retries and completes.
        e.fd.ioas.map({ ioasId: ioas, userVa: va, length, iova });
        expect(e.host.process.write(ffd, responseBytes(pf.cookie, U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe(8);
        expect([...(await dma)]).toEqual([...data.subarray(16, 48)]);
        // A second fault answered INVALID aborts the DMA.
        e.fd.ioas.unmap(ioas, iova, length);
        const bad = e.dev.dma.write(iova, new Uint8Array([1]), dmaOpts);
        const badResult = bad.catch((x: unknown) => x);
        await settle();
        const [pf2] = readPgfaults(e.host.process.read(ffd, 64 * U.iommu_hwpt_pgfault.size));
        expect(pf2.perm & U.IOMMU_PGFAULT_PERM_WRITE).toBe(U.IOMMU_PGFAULT_PERM_WRITE);
        e.host.process.write(ffd, responseBytes(pf2.cookie, U.IOMMUFD_PAGE_RESP_INVALID));
        const err = await badResult;
        expect(err).toBeInstanceOf(DmaFault);
        expect((err as DmaFault).outcome).toBe('page-response');
        expect(e.host.faults.outstanding).toBe(0);
        expect(e.host.faults.stats.duplicateResponses).toBe(0);
      },
      'PRI',
      parts.pri,
    );
  }
  return checks;
}


/**
 * Registers the conformance suite for `plugin` on `profile` as vitest tests. A check whose optional
 * part the plugin lacks (hw_info, boot log, dirty tracking, nesting, fault codec, page-request codec, PRI) is registered
 * with its name and reported as skipped, never passed without checking.
 */
export function describeConformance(options: ConformanceOptions): void {
  const title = options.name ?? `conformance: ${options.plugin.id} on ${options.profile.name}`;
  const checks = conformanceChecks(options);
  describe(title, () => {
    for (const c of checks) it.skipIf(c.absent)(c.name, async () => {
      await c.run();
    });
  });
}

/** The outcome of one check in runConformance. */
export interface ConformanceResult {
  /** The check's name (ConformanceCheck.name). */
  readonly name: string;
  /** 'skipped' when its optional part is absent; 'failed' also for a check that timed out. */
  readonly status: 'passed' | 'failed' | 'skipped';

  /** The failure's message, for a failed check. */
  readonly error?: string;
}

/**
 * Runs every check outside a test runner's collection (tools, and the kit's own mutation test). A
 * check that does not settle within `timeoutMs` (a DMA that waits forever on a broken plugin) fails.
 */
export async function runConformance(options: ConformanceOptions, timeoutMs = 5000): Promise<ConformanceResult[]> {
  const results: ConformanceResult[] = [];
  for (const c of conformanceChecks(options)) {
    if (c.absent) {
      results.push({ name: c.name, status: 'skipped' });
      continue;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.resolve().then(() => c.run()), timeout]);
      results.push({ name: c.name, status: 'passed' });
    } catch (e) {
      results.push({ name: c.name, status: 'failed', error: e instanceof Error ? e.message : String(e) });
    } finally {
      clearTimeout(timer);
    }
  }
  return results;
}
