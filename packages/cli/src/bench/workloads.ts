/**
 * The workloads of docs/performance.md. Each one builds its machine, warms up on the same code path,
 * then measures; `runWorkload` returns the metrics it produced. The orchestrator (run.ts) runs each
 * workload in a fresh process through worker.ts.
 *
 * All workloads use the VT-d second-stage format, 4 levels (48-bit input), 4 KiB pages only where the
 * workload says "huge pages off".
 */
import { POLLIN, createHost, uapi, type Host, type Iommufd } from '@ioasid/core';
import { BIND_PAGING, Binding, TranslateResult, deviceBinding, hostUnits, type IommuUnit } from '@ioasid/core/internal';
import { IOMMU_READ, IOMMU_WRITE, PERM_READ, type IoPageTable, type PageTableConfig } from '@ioasid/core/driver';
import { findVtdPreset, plugin as vtdPlugin, vtdPresetProfile, vtdSecondStage } from '@ioasid/vtd';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkloadResult } from './spec.js';

/** 1 GiB of IOVA in 4 KiB pages. */
export const GIB_PAGES = 262144;
/** PA = 1 GiB + iova. */
const PA_BASE_PFN = GIB_PAGES;
const XORSHIFT_SEED = 2463534242;
const SZ_4K = 1n << 12n;
/** The preset whose device 0000:f2:01.0 does ATS + PRI + 20-bit PASID (Granite Rapids, VT-d 7.0). */
const PRESET = 'granite-rapids-2s';
const PRI_DEVICE = '0000:f2:01.0';

export interface Scale {
  translations: number;
  iotlbTranslations: number;
  mapRounds: number;
  ioasCalls: number;
  faults: number;
  /** 4 KiB DMA transfers of each direction. */
  dmaTransfers: number;
  /** Areas that exist before the random IOAS_MAP / IOAS_UNMAP pairs, and the pairs measured. */
  randomAreas: number;
  randomPairs: number;
  /** GiB of the huge-page IOAS_MAP. */
  hugeGib: number;
  /** Process launches of each command (`ioasid --help`, `node -e 0`). */
  launches: number;
}

export const FULL: Scale = {
  translations: 10_000_000,
  iotlbTranslations: 10_000_000,
  mapRounds: 40,
  ioasCalls: 100_000,
  faults: 1_000_000,
  dmaTransfers: 1_000_000,
  randomAreas: 1_000_000,
  randomPairs: 200_000,
  hugeGib: 64,
  launches: 7,
};
export const QUICK: Scale = {
  translations: 1_000_000,
  iotlbTranslations: 2_000_000,
  mapRounds: 2,
  ioasCalls: 10_000,
  faults: 5_000,
  dmaTransfers: 50_000,
  randomAreas: 50_000,
  randomPairs: 10_000,
  hugeGib: 64,
  launches: 3,
};

function vtdHost(): Host {
  const preset = findVtdPreset(PRESET);
  if (!preset) throw new Error(`VT-d preset ${PRESET} is missing`);
  return createHost({ plugins: [vtdPlugin], profile: vtdPresetProfile(preset) });
}

/** A 4-level second-stage table with 4 KiB pages only, in the host's table memory. */
function ssTable(host: Host): IoPageTable {
  const cfg: PageTableConfig = { pgsizeBitmap: SZ_4K, ias: 48, oas: 52, levels: 4 };
  const pt = vtdSecondStage.alloc(cfg, host.tableMemory);
  if (typeof pt === 'number') throw new Error(`vtd-ss alloc failed: ${pt}`);
  return pt;
}

function mapGib(pt: IoPageTable): void {
  const rc = pt.map(0, PA_BASE_PFN, GIB_PAGES, IOMMU_READ | IOMMU_WRITE);
  if (rc !== 0) throw new Error(`map of 1 GiB failed: ${rc}`);
}

/**
 * The clock of every throughput figure: CPU time of this process (user + system, all its threads, so
 * garbage collection on helper threads counts too), in ms. The development machine is shared: a run
 * often gets a fraction of a CPU, and wall time would then measure the scheduler rather than the code.
 * Latencies (fault round trips) and process launches are wall time.
 */
function now(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const wallNow = (): number => performance.now();

/** One step of xorshift32 (13, 17, 5) on an int32 state. */
function xorshift32(x: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  return x ^ (x << 5);
}

// ------------------------------------------------------------------------------ walk / iotlb_hit

/**
 * `count` translations of pages drawn from xorshift32 (page = x mod `modulo`) through
 * IommuUnit.translate; each result is checked against PA = 1 GiB + iova. Returns elapsed ms.
 */
function translateLoop(host: Host, b: Binding, count: number, modulo: number, out: TranslateResult): number {
  const unit = unitOf(host);
  const mask = modulo - 1;
  // Locals rather than imported or module bindings inside the loop: the C reference's loop has the
  // same constants as immediates.
  const perm = PERM_READ;
  const base = PA_BASE_PFN;
  let x = XORSHIFT_SEED | 0;
  const t0 = now();
  for (let i = 0; i < count; i++) {
    x = xorshift32(x);
    // x mod 2^k of the unsigned value is its low k bits.
    const page = x & mask;
    if (!unit.translate(b, -1, page, perm, out) || out.pfn !== base + page) throw new Error(`translation of page ${page} failed (${out.failure})`);
  }
  return now() - t0;
}

/** The translation engine of unit 0 (the public Host.units lists only what applications see of a unit). */
function unitOf(host: Host): IommuUnit {
  return hostUnits(host)[0];
}

function translateSetup(): { host: Host; pt: IoPageTable; b: Binding; out: TranslateResult } {
  const host = vtdHost();
  const pt = ssTable(host);
  mapGib(pt);
  // A paging-domain context entry of tag 1 on unit 0, no PASID.
  const b = new Binding(BIND_PAGING, 1, pt, null, null);
  return { host, pt, b, out: new TranslateResult() };
}

/** The VT-d format's paging-structure cache switch (see VtdPageTable.pagingStructureCache). */
function setPsc(pt: IoPageTable, on: boolean): void {
  if (!('pagingStructureCache' in pt)) throw new Error('the vtd-ss table has no paging-structure cache switch');
  (pt as IoPageTable & { pagingStructureCache: boolean }).pagingStructureCache = on;
}

/** walk: the full walk (every level read), no paging-structure cache, no IOTLB. walk_psc: with the cache. */
function walk(scale: Scale, psc: boolean): WorkloadResult {
  const { host, pt, b, out } = translateSetup();
  const unit = unitOf(host);
  unit.iotlb.enabled = false;
  setPsc(pt, psc);
  translateLoop(host, b, Math.min(2_000_000, scale.translations), GIB_PAGES, out);
  const walksBefore = unit.walks;
  const ms = translateLoop(host, b, scale.translations, GIB_PAGES, out);
  if (unit.walks - walksBefore !== scale.translations) throw new Error('IOTLB was not bypassed');
  return { metrics: { [psc ? 'walk_psc' : 'walk']: { value: (scale.translations / ms) * 1000, unit: 'translations/s' } }, extra: { ns_per_translation: (ms * 1e6) / scale.translations } };
}

function iotlbHit(scale: Scale): WorkloadResult {
  const { host, b, out } = translateSetup();
  const unit = unitOf(host);
  unit.iotlb.enabled = true;
  translateLoop(host, b, Math.min(2_000_000, scale.iotlbTranslations), 512, out);
  const walksBefore = unit.walks;
  const ms = translateLoop(host, b, scale.iotlbTranslations, 512, out);
  const walks = unit.walks - walksBefore;
  if (walks !== 0) throw new Error(`${walks} translations missed the IOTLB`);
  return { metrics: { iotlb_hit: { value: (scale.iotlbTranslations / ms) * 1000, unit: 'translations/s' } }, extra: { ns_per_translation: (ms * 1e6) / scale.iotlbTranslations } };
}

// ------------------------------------------------------------------------------ map_4k / unmap_4k

function mapUnmap(scale: Scale): WorkloadResult {
  const host = vtdHost();
  const pt = ssTable(host);
  // Warm-up: the first map also backs the table chunks; later rounds recycle the same frames. The
  // recursive per-level functions run a few times per round, so V8 optimizes them only after many
  // rounds: with 10 warm-ups their compilation (on V8's helper threads, which the process clock counts)
  // still fell inside the measured rounds (--trace-opt); with 40 none does, and runs agree within 2 %.
  for (let i = 0; i < 40; i++) {
    mapGib(pt);
    if (pt.unmap(0, GIB_PAGES) !== GIB_PAGES) throw new Error('unmap did not remove every page');
  }
  let mapMs = 0;
  let unmapMs = 0;
  for (let r = 0; r < scale.mapRounds; r++) {
    const t0 = now();
    mapGib(pt);
    const t1 = now();
    const removed = pt.unmap(0, GIB_PAGES);
    const t2 = now();
    if (removed !== GIB_PAGES) throw new Error(`unmap removed ${removed} pages`);
    mapMs += t1 - t0;
    unmapMs += t2 - t1;
  }
  const pages = scale.mapRounds * GIB_PAGES;
  return {
    metrics: {
      map_4k: { value: (pages / mapMs) * 1000, unit: 'pages/s' },
      unmap_4k: { value: (pages / unmapMs) * 1000, unit: 'pages/s' },
    },
    extra: { map_ns_per_page: (mapMs * 1e6) / pages, unmap_ns_per_page: (unmapMs * 1e6) / pages, table_pages: pt.tablePages },
  };
}

// ------------------------------------------------------------------------------ bytes_per_mapped_page

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('bytes_per_mapped_page needs node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

function bytesPerMappedPage(): WorkloadResult {
  // Warm-up on another machine: compiles the map path and settles its one-time heap state (feedback,
  // code) without backing any memory of the host that is measured.
  const warm = ssTable(vtdHost());
  mapGib(warm);
  warm.free();
  const host = vtdHost();
  const mu0 = process.memoryUsage();
  const heap0 = heapUsed();
  const backed0 = host.mem.backedBytes;
  const frames0 = host.frames.framesInUse;
  const pt = ssTable(host);
  mapGib(pt);
  const heap1 = heapUsed();
  const mu1 = process.memoryUsage();
  const backed = host.mem.backedBytes - backed0;
  const heap = heap1 - heap0;
  const frames = host.frames.framesInUse - frames0;
  if (pt.tablePages !== frames) throw new Error(`table pages ${pt.tablePages} != frames ${frames}`);
  return {
    metrics: { bytes_per_mapped_page: { value: (heap + backed) / GIB_PAGES, unit: 'bytes' } },
    extra: {
      heap_growth_bytes: heap,
      backed_growth_bytes: backed,
      table_frames: frames,
      frames_bytes_per_page: (heap + frames * 4096) / GIB_PAGES,
      array_buffers_growth_bytes: mu1.arrayBuffers - mu0.arrayBuffers,
    },
  };
}

// ------------------------------------------------------------------------------ ioas_map_4k_calls

const MAP_FLAGS = uapi.IOMMU_IOAS_MAP_FIXED_IOVA | uapi.IOMMU_IOAS_MAP_READABLE | uapi.IOMMU_IOAS_MAP_WRITEABLE;
/** User pages the maps cycle through (one 2 MiB chunk of backing), faulted in before timing. */
const USER_PAGES = 512;
/** The measured IOVAs start at 4 GiB: clear of the MSI window and of the warm-up range. */
const IOVA_BASE_PFN = 0x100000;

interface IoasRig {
  host: Host;
  fd: Iommufd;
  ioasId: number;
  userVaPfn: number;
  mapBuf: Uint8Array;
  mapView: DataView;
  unmapBuf: Uint8Array;
  unmapView: DataView;
}

function ioasRig(host: Host, bdf: string): IoasRig & { devId: number } {
  const fd = host.openIommufd();
  const dev = host.device(bdf);
  const devId = dev.bindIommufd(fd);
  const ioasId = fd.ioas.alloc();
  const userVa = host.process.mmap(USER_PAGES * 4096);
  host.process.poke(userVa, new Uint8Array(USER_PAGES * 4096).fill(0xa5));
  const mapBuf = new Uint8Array(uapi.iommu_ioas_map.size);
  const mapView = new DataView(mapBuf.buffer);
  mapView.setUint32(0, uapi.iommu_ioas_map.size, true);
  mapView.setUint32(4, MAP_FLAGS, true);
  mapView.setUint32(8, ioasId, true);
  mapView.setUint32(uapi.iommu_ioas_map.offsetof('length'), 4096, true);
  const unmapBuf = new Uint8Array(uapi.iommu_ioas_unmap.size);
  const unmapView = new DataView(unmapBuf.buffer);
  unmapView.setUint32(0, uapi.iommu_ioas_unmap.size, true);
  unmapView.setUint32(4, ioasId, true);
  unmapView.setUint32(uapi.iommu_ioas_unmap.offsetof('length'), 4096, true);
  return { host, fd, ioasId, devId, userVaPfn: Number(userVa / 4096n), mapBuf, mapView, unmapBuf, unmapView };
}

/** Writes a u64 that is a page number times 4096 as two u32 halves (no BigInt in the harness). */
function setPageAddr(v: DataView, offset: number, pfn: number): void {
  v.setUint32(offset, (pfn % 1048576) * 4096, true);
  v.setUint32(offset + 4, Math.floor(pfn / 1048576), true);
}

const MAP_USER_VA = uapi.iommu_ioas_map.offsetof('user_va');
const MAP_IOVA = uapi.iommu_ioas_map.offsetof('iova');
const UNMAP_IOVA = uapi.iommu_ioas_unmap.offsetof('iova');

function ioasMap(r: IoasRig, iovaPfn: number, userPage: number): void {
  setPageAddr(r.mapView, MAP_USER_VA, r.userVaPfn + userPage);
  setPageAddr(r.mapView, MAP_IOVA, iovaPfn);
  const rc = r.fd.ioctl(uapi.IOMMU_IOAS_MAP, r.mapBuf);
  if (rc !== 0) throw new Error(`IOMMU_IOAS_MAP at page 0x${iovaPfn.toString(16)} failed: ${rc} ${r.fd.lastError?.message ?? ''}`);
}

function ioasUnmap(r: IoasRig, iovaPfn: number): void {
  setPageAddr(r.unmapView, UNMAP_IOVA, iovaPfn);
  const rc = r.fd.ioctl(uapi.IOMMU_IOAS_UNMAP, r.unmapBuf);
  if (rc !== 0) throw new Error(`IOMMU_IOAS_UNMAP at page 0x${iovaPfn.toString(16)} failed: ${rc} ${r.fd.lastError?.message ?? ''}`);
}

function mapUnmapCalls(r: IoasRig, basePfn: number, n: number): { mapMs: number; unmapMs: number } {
  const t0 = now();
  for (let i = 0; i < n; i++) ioasMap(r, basePfn + i, i % USER_PAGES);
  const t1 = now();
  for (let i = 0; i < n; i++) ioasUnmap(r, basePfn + i);
  const t2 = now();
  return { mapMs: t1 - t0, unmapMs: t2 - t1 };
}

function ioasMap4kCalls(scale: Scale): WorkloadResult {
  const host = vtdHost();
  const r = ioasRig(host, PRI_DEVICE);
  const hwptId = host.device(PRI_DEVICE).attachPt(r.ioasId);
  if (hwptId <= 0) throw new Error('attach failed');
  mapUnmapCalls(r, 0x10000, Math.min(20_000, scale.ioasCalls));
  const { mapMs, unmapMs } = mapUnmapCalls(r, IOVA_BASE_PFN, scale.ioasCalls);
  const n = scale.ioasCalls;
  return {
    metrics: { ioas_map_4k_calls: { value: ((2 * n) / (mapMs + unmapMs)) * 1000, unit: 'calls/s' } },
    extra: { map_calls_per_s: (n / mapMs) * 1000, unmap_calls_per_s: (n / unmapMs) * 1000, us_per_map: (mapMs * 1000) / n, us_per_unmap: (unmapMs * 1000) / n },
  };
}

// ------------------------------------------------------------------------------ fault_roundtrip

const PGFAULT = uapi.iommu_hwpt_pgfault;
const PGFAULT_ADDR = PGFAULT.offsetof('addr');
const PGFAULT_COOKIE = PGFAULT.offsetof('cookie');
const RESPONSE = uapi.iommu_hwpt_page_response;

async function faultRoundtrip(scale: Scale): Promise<WorkloadResult> {
  const host = vtdHost();
  const r = ioasRig(host, PRI_DEVICE);
  const dev = host.device(PRI_DEVICE);
  const fault = r.fd.run(uapi.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
  const hwpt = r.fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', {
    flags: uapi.IOMMU_HWPT_FAULT_ID_VALID,
    dev_id: r.devId,
    pt_id: r.ioasId,
    fault_id: fault.out_fault_id,
  });
  dev.attachPt(hwpt.out_hwpt_id);
  const faultFd = fault.out_fault_fd;
  const resp = new Uint8Array(RESPONSE.size);
  const respView = new DataView(resp.buffer);
  respView.setUint32(4, uapi.IOMMUFD_PAGE_RESP_SUCCESS, true);
  const proc = host.process;
  // As a C fault thread: one record buffer for read(2), one response buffer, one DMA buffer (`into`).
  const rec = new Uint8Array(PGFAULT.size);
  const rv = new DataView(rec.buffer);
  const readOpts = { into: new Uint8Array(8) };

  /**
   * Round trips on IOVA pages [basePfn, basePfn + n), one at a time; each one's latency (ms) goes to
   * `lat` when given. One async loop, as a user's fault thread would be: no promise per round trip
   * beyond the DMA's and the polls'.
   */
  const roundTrips = async (basePfn: number, n: number, lat: Float64Array | null): Promise<void> => {
    // One clock read per round trip: a round trip starts where the previous one ended (only the loop's
    // own bookkeeping lies between them, and it is counted in the next one's latency).
    let t0 = wallNow();
    for (let i = 0; i < n; i++) {
      const pfn = basePfn + i;
      // The IOVA as a number (below 2^53), as a simulator passes it: no BigInt per DMA.
      const dma = dev.dma.read(pfn * 4096, 8, readOpts);
      // The user's fault thread: wait until the interrupt thread has queued the group, then serve it
      // (the interrupt thread runs after the DMA's call returns: the first poll comes after a yield).
      do await null;
      while ((proc.poll(faultFd) & POLLIN) === 0);
      if (proc.readInto(faultFd, rec) !== PGFAULT.size) throw new Error('short page fault read');
      const addrPfn = rv.getUint32(PGFAULT_ADDR, true) / 4096 + rv.getUint32(PGFAULT_ADDR + 4, true) * 1048576;
      if (addrPfn !== pfn) throw new Error(`fault for page 0x${addrPfn.toString(16)}, expected 0x${pfn.toString(16)}`);
      ioasMap(r, addrPfn, i % USER_PAGES);
      respView.setUint32(0, rv.getUint32(PGFAULT_COOKIE, true), true);
      if (proc.write(faultFd, resp) !== RESPONSE.size) throw new Error('short page response write');
      const data = await dma;
      if (data[0] !== 0xa5) throw new Error('DMA read the wrong page');
      if (lat !== null) {
        const t1 = wallNow();
        lat[i] = t1 - t0;
        t0 = t1;
      }
    }
  };

  await roundTrips(0x10000, Math.min(5_000, scale.faults), null);
  const lat = new Float64Array(scale.faults);
  const t0 = now();
  await roundTrips(IOVA_BASE_PFN, scale.faults, lat);
  const ms = now() - t0;
  lat.sort();
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)] * 1000;
  const metrics: WorkloadResult['metrics'] = {
    fault_roundtrip: { value: (scale.faults / ms) * 1000, unit: 'round trips/s' },
    fault_p99_us: { value: pct(0.99), unit: 'us' },
    fault_p999_us: { value: pct(0.999), unit: 'us' },
    fault_max_us: { value: lat[lat.length - 1] * 1000, unit: 'us' },
  };
  const extra = { faults: scale.faults, p50_us: pct(0.5), p90_us: pct(0.9) };
  // After the figures above are taken: the skeleton reuses `lat` as its scratch.
  metrics.fault_skeleton = { value: await faultSkeleton(scale.faults, lat), unit: 'round trips/s' };
  return { metrics, extra };
}

/**
 * The ceiling the round trip's shape leaves on this machine: faultRoundtrip's loop with every step of the
 * model taken out and only its asynchrony kept, done as cheaply as the pipeline does it. The DMA is a
 * promise made with a shared executor whose resolve function is kept; the interrupt thread is one promise
 * job that marks the fault readable; the loop yields until a poll sees it; the response is one promise
 * job that resolves the DMA with the caller's buffer; the loop awaits it and reads the clock once. No
 * IOAS_MAP, no walk, no record, no routing, no copy. Returns round trips/s (process CPU time, as
 * fault_roundtrip); `lat` is scratch for the latencies, stored as the real loop stores them.
 */
async function faultSkeleton(n: number, lat: Float64Array): Promise<number> {
  const resolved = Promise.resolve();
  const buf = new Uint8Array(8);
  buf[0] = 0xa5;
  let readable = false;
  let resolveDma: ((b: Uint8Array) => void) | null = null;
  const capture = (r: (b: Uint8Array) => void): void => {
    resolveDma = r;
  };
  const interrupt = (): void => {
    readable = true;
  };
  const respond = (): void => {
    const r = resolveDma!;
    resolveDma = null;
    r(buf);
  };
  const poll = (): number => (readable ? POLLIN : 0);
  const loop = async (count: number): Promise<void> => {
    let t0 = wallNow();
    for (let i = 0; i < count; i++) {
      const dma = new Promise<Uint8Array>(capture);
      void resolved.then(interrupt);
      do await null;
      while ((poll() & POLLIN) === 0);
      readable = false;
      void resolved.then(respond);
      const data = await dma;
      if (data[0] !== 0xa5) throw new Error('skeleton DMA read the wrong buffer');
      const t1 = wallNow();
      lat[i] = t1 - t0;
      t0 = t1;
    }
  };
  await loop(Math.min(5_000, n));
  const t0 = now();
  await loop(n);
  return (n / (now() - t0)) * 1000;
}

// ------------------------------------------------------------------------------ dma_read_4k / dma_write_4k

/** Pages of the DMA workloads' mapping (IOVA 4 GiB, one IOAS_MAP), the same 512 as iotlb_hit. */
const DMA_PAGES = 512;

async function dma(scale: Scale): Promise<WorkloadResult> {
  const host = vtdHost();
  const r = ioasRig(host, PRI_DEVICE);
  const dev = host.device(PRI_DEVICE);
  if (dev.attachPt(r.ioasId) <= 0) throw new Error('attach failed');
  setPageAddr(r.mapView, MAP_USER_VA, r.userVaPfn);
  setPageAddr(r.mapView, MAP_IOVA, IOVA_BASE_PFN);
  r.mapView.setUint32(uapi.iommu_ioas_map.offsetof('length'), DMA_PAGES * 4096, true);
  if (r.fd.ioctl(uapi.IOMMU_IOAS_MAP, r.mapBuf) !== 0) throw new Error(`IOMMU_IOAS_MAP failed: ${r.fd.lastError?.message ?? ''}`);
  const unit = unitOf(host);
  unit.iotlb.enabled = true;
  const iovas: bigint[] = [];
  for (let i = 0; i < DMA_PAGES; i++) iovas.push(BigInt(IOVA_BASE_PFN + i) * 4096n);
  const data = new Uint8Array(4096).fill(0x5a);
  /** The async read into one reused buffer (`into`), or into a new Uint8Array per read (`alloc`). */
  const readOpts = { into: new Uint8Array(4096) };
  const reads = async (n: number, alloc = false): Promise<number> => {
    let x = XORSHIFT_SEED | 0;
    let sum = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      x = xorshift32(x);
      const got = alloc ? await dev.dma.read(iovas[x & (DMA_PAGES - 1)], 4096) : await dev.dma.read(iovas[x & (DMA_PAGES - 1)], 4096, readOpts);
      sum += got[i & 4095];
    }
    if (sum === 0) throw new Error('DMA read nothing');
    return now() - t0;
  };
  const writes = async (n: number): Promise<number> => {
    let x = XORSHIFT_SEED | 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      x = xorshift32(x);
      data[0] = i;
      await dev.dma.write(iovas[x & (DMA_PAGES - 1)], data);
    }
    return now() - t0;
  };
  /** The synchronous path into one reused buffer: nothing allocated per transfer. */
  const buf = new Uint8Array(4096);
  const syncLoop = (n: number, write: boolean): number => {
    let x = XORSHIFT_SEED | 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      x = xorshift32(x);
      const iova = iovas[x & (DMA_PAGES - 1)];
      if (write) {
        buf[0] = i;
        if (dev.dma.writeSync(iova, buf) !== 4096) throw new Error('short synchronous DMA write');
      } else if (dev.dma.readSync(iova, buf) !== 4096) throw new Error('short synchronous DMA read');
    }
    return now() - t0;
  };
  const n = scale.dmaTransfers;
  await reads(Math.min(n, 100_000));
  const walks0 = unit.walks;
  const readMs = await reads(n);
  await reads(Math.min(n, 100_000), true);
  const allocReadMs = await reads(n, true);
  await writes(Math.min(n, 100_000));
  const writeMs = await writes(n);
  syncLoop(Math.min(n, 100_000), false);
  const syncReadMs = syncLoop(n, false);
  syncLoop(Math.min(n, 100_000), true);
  const syncWriteMs = syncLoop(n, true);
  if (unit.walks !== walks0) throw new Error(`${unit.walks - walks0} DMA transfers missed the IOTLB`);
  return {
    metrics: {
      dma_read_4k: { value: ((n * 4096) / readMs) * 1000, unit: 'bytes/s' },
      dma_write_4k: { value: ((n * 4096) / writeMs) * 1000, unit: 'bytes/s' },
      dma_read_4k_sync: { value: ((n * 4096) / syncReadMs) * 1000, unit: 'bytes/s' },
      dma_write_4k_sync: { value: ((n * 4096) / syncWriteMs) * 1000, unit: 'bytes/s' },
    },
    extra: { us_per_read: (readMs * 1000) / n, us_per_read_alloc: (allocReadMs * 1000) / n, us_per_write: (writeMs * 1000) / n, us_per_sync_read: (syncReadMs * 1000) / n, us_per_sync_write: (syncWriteMs * 1000) / n },
  };
}

// ------------------------------------------------------------------------------ ioas_map_random_1m_areas

/**
 * `randomAreas` single-page areas at every other page from 4 GiB, then `randomPairs` IOAS_MAP +
 * IOAS_UNMAP pairs of one page in the gap after a random existing area (xorshift32).
 */
function ioasMapRandom(scale: Scale): WorkloadResult {
  const host = vtdHost();
  const r = ioasRig(host, PRI_DEVICE);
  if (host.device(PRI_DEVICE).attachPt(r.ioasId) <= 0) throw new Error('attach failed');
  const areas = scale.randomAreas;
  const t0 = now();
  for (let i = 0; i < areas; i++) ioasMap(r, IOVA_BASE_PFN + 2 * i, i % USER_PAGES);
  const setupMs = now() - t0;
  const pairs = (n: number): number => {
    let x = XORSHIFT_SEED | 0;
    const t = now();
    for (let i = 0; i < n; i++) {
      x = xorshift32(x);
      const gap = IOVA_BASE_PFN + 2 * ((x >>> 0) % areas) + 1;
      ioasMap(r, gap, i % USER_PAGES);
      ioasUnmap(r, gap);
    }
    return now() - t;
  };
  pairs(Math.min(20_000, scale.randomPairs));
  const ms = pairs(scale.randomPairs);
  return {
    metrics: { ioas_map_random_1m_areas: { value: ((2 * scale.randomPairs) / ms) * 1000, unit: 'calls/s' } },
    extra: { areas, us_per_call: (ms * 1000) / (2 * scale.randomPairs), setup_maps_per_s: (areas / setupMs) * 1000 },
  };
}

// ------------------------------------------------------------------------------ bytes_per_mapped_page_uapi

function gcAll(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('memory workloads need node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
}

/** An attached VT-d device, an IOAS with IOMMU_OPTION_HUGE_PAGES off, and `bytes` of fresh user memory. */
function uapiMapRig(bytes: number): { r: IoasRig; userVa: bigint } {
  const host = vtdHost();
  const r = ioasRig(host, PRI_DEVICE);
  r.fd.run(uapi.iommu_option, 'OPTION', { option_id: uapi.IOMMU_OPTION_HUGE_PAGES, op: uapi.IOMMU_OPTION_OP_SET, object_id: r.ioasId, val64: 0n });
  if (host.device(PRI_DEVICE).attachPt(r.ioasId) <= 0) throw new Error('attach failed');
  return { r, userVa: host.process.mmap(bytes) };
}

function mapUser(r: IoasRig, userVa: bigint, bytes: number, iovaPfn: number): void {
  const v = r.mapView;
  v.setBigUint64(MAP_USER_VA, userVa, true);
  setPageAddr(v, MAP_IOVA, iovaPfn);
  v.setBigUint64(uapi.iommu_ioas_map.offsetof('length'), BigInt(bytes), true);
  if (r.fd.ioctl(uapi.IOMMU_IOAS_MAP, r.mapBuf) !== 0) throw new Error(`IOMMU_IOAS_MAP of ${bytes} bytes failed: ${r.fd.lastError?.message ?? ''}`);
}

/**
 * RSS growth of one IOMMU_IOAS_MAP of 1 GiB in 4 KiB pages (huge pages off) of not yet populated
 * user memory on an attached VT-d device, per page: page tables, pins, the area, the frames faulted in.
 */
function bytesPerMappedPageUapi(): WorkloadResult {
  // Warm-up on other hosts: two maps of 256 MiB take every function of the path to its optimized code,
  // so that no compilation (whose scratch memory the C allocator keeps resident after it is freed)
  // falls inside a measured map.
  const hosts: IoasRig[] = [];
  for (let i = 0; i < 2; i++) {
    const w = uapiMapRig(256 << 20);
    mapUser(w.r, w.userVa, 256 << 20, IOVA_BASE_PFN);
    hosts.push(w.r);
  }
  // Three measured maps, each on a fresh host; every host stays alive to the end, so that no map gets
  // memory another one freed. RSS moves in whole pages and with what the allocators recycle (one
  // MiB is 4 bytes per page here): the median of the three is the figure, each is printed.
  const samples: { rss: number; heap: number; ab: number }[] = [];
  let frames = 0;
  for (let i = 0; i < 3; i++) {
    const { r, userVa } = uapiMapRig(1 << 30);
    hosts.push(r);
    gcAll();
    const mu0 = process.memoryUsage();
    mapUser(r, userVa, 1 << 30, IOVA_BASE_PFN);
    gcAll();
    const mu = process.memoryUsage();
    samples.push({ rss: mu.rss - mu0.rss, heap: mu.heapUsed - mu0.heapUsed, ab: mu.arrayBuffers - mu0.arrayBuffers });
    frames = r.host.frames.framesInUse;
  }
  if (hosts.length !== 5) throw new Error('a host is gone');
  const m = [...samples].sort((x, y) => x.rss - y.rss)[1];
  return {
    metrics: { bytes_per_mapped_page_uapi: { value: m.rss / GIB_PAGES, unit: 'bytes' } },
    extra: {
      rss_growth_bytes: m.rss,
      heap_growth_bytes: m.heap,
      array_buffers_growth_bytes: m.ab,
      per_map_bytes_per_page: samples.map((x) => (x.rss / GIB_PAGES).toFixed(2)).join('/'),
      frames_in_use: frames,
    },
  };
}

// ------------------------------------------------------------------------------ map_64g_huge_ms

/** One IOMMU_IOAS_MAP of `hugeGib` GiB of 1 GiB-huge-page memory (MAP_HUGETLB) on an attached device. */
function map64gHuge(scale: Scale): WorkloadResult {
  const bytes = scale.hugeGib * 2 ** 30;
  const warm = vtdHost();
  const wr = ioasRig(warm, PRI_DEVICE);
  if (warm.device(PRI_DEVICE).attachPt(wr.ioasId) <= 0) throw new Error('attach failed');
  mapUser(wr, warm.process.mmap(2 ** 30, { hugePageSize: 2 ** 30 }), 2 ** 30, 0x4000000);
  const host = vtdHost();
  const r = ioasRig(host, PRI_DEVICE);
  if (host.device(PRI_DEVICE).attachPt(r.ioasId) <= 0) throw new Error('attach failed');
  const userVa = host.process.mmap(bytes, { hugePageSize: 2 ** 30 });
  gcAll();
  const rss0 = process.memoryUsage().rss;
  const t0 = now();
  mapUser(r, userVa, bytes, 0x4000000);
  const ms = now() - t0;
  const rss = process.memoryUsage().rss - rss0;
  const pt = deviceBinding(host.device(PRI_DEVICE)).pt;
  if (pt === null) throw new Error('the device has no paging table after attach');
  return {
    metrics: { map_64g_huge_ms: { value: ms, unit: 'ms' } },
    extra: { gib: scale.hugeGib, rss_growth_mb: rss / 2 ** 20, table_pages: pt.tablePages },
  };
}

// ------------------------------------------------------------------------------ cli_help_ratio

/** Median wall time of `launches` runs of `node args`, in ms. */
function launchMs(args: readonly string[], launches: number): number {
  const ts: number[] = [];
  for (let i = 0; i < launches; i++) {
    const t0 = wallNow();
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    ts.push(wallNow() - t0);
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${r.status}: ${String(r.stderr)}`);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}

/**
 * `ioasid --help` (the built CLI, dist/bin.js, as an installed package runs it) against a bare
 * `node -e 0`, alternating launches; the ratio of the medians.
 */
function cliHelp(scale: Scale): WorkloadResult {
  const bin = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../dist/bin.js' : '../bin.js', import.meta.url));
  // Degrades, never fails: from a checkout that is not built there is nothing fair to launch.
  if (!existsSync(bin)) return { metrics: {}, extra: { skipped: 'the CLI is not built (npm run build)' } };
  launchMs([bin, '--help'], 1);
  let help = 0;
  let bare = 0;
  for (let i = 0; i < 3; i++) {
    bare += launchMs(['-e', '0'], scale.launches);
    help += launchMs([bin, '--help'], scale.launches);
  }
  return {
    metrics: { cli_help_ratio: { value: help / bare, unit: 'x node -e 0' } },
    extra: { help_ms: help / 3, node_ms: bare / 3 },
  };
}

// ------------------------------------------------------------------------------ registry

export async function runWorkload(name: string, scale: Scale): Promise<WorkloadResult> {
  switch (name) {
    case 'walk':
      return walk(scale, false);
    case 'walk_psc':
      return walk(scale, true);
    case 'dma':
      return dma(scale);
    case 'ioas_map_random_1m_areas':
      return ioasMapRandom(scale);
    case 'bytes_per_mapped_page_uapi':
      return bytesPerMappedPageUapi();
    case 'map_64g_huge':
      return map64gHuge(scale);
    case 'cli_help':
      return cliHelp(scale);
    case 'iotlb_hit':
      return iotlbHit(scale);
    case 'map_unmap':
      return mapUnmap(scale);
    case 'ioas_map_4k_calls':
      return ioasMap4kCalls(scale);
    case 'fault_roundtrip':
      return faultRoundtrip(scale);
    case 'bytes_per_mapped_page':
      return bytesPerMappedPage();
    default:
      throw new Error(`unknown workload ${name}`);
  }
}
