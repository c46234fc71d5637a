/**
 * The program representation.test.ts runs in a child node with `--trace-deopt`: the fault round trip of the
 * `fault_roundtrip` benchmark (a PRI device's DMA read faults, the fault thread reads the record, maps the
 * page with IOMMU_IOAS_MAP from the raw struct, answers SUCCESS, the read completes) on a Granite Rapids unit.
 * It warms up at small IOVAs (small integers to V8, pinned total small) until the hot path is compiled,
 * prints `phase cross`, then charges almost 2 GiB pinned and goes on at IOVAs past 4 GiB whose low 32 bits
 * cross 2^31 while the pinned total crosses 2 GiB: the values whose representation changed there (the IOVA
 * a caller passes becomes a heap number, the address's low word, the pinned bytes) deoptimized the hot path.
 * Prints `phase done` at the end. Its own loop keeps one representation (IOVAs come from two arrays, page
 * words are written with `<< 12`), so that a deoptimization the trace shows is the model's.
 *
 * Run through tsx with the `@ioasid/source` condition, as the benchmark runs.
 */
import { POLLIN, createHost, uapi } from '@ioasid/core';
import { findVtdPreset, vtdPresetProfile } from '../presets.js';
import { plugin } from '../index.js';

const WARM = Number(process.argv[2] ?? 6000);
const CROSS = Number(process.argv[3] ?? 3000);

const preset = findVtdPreset('granite-rapids-2s');
if (preset === undefined) throw new Error('the granite-rapids-2s preset is missing');
const host = createHost({ plugins: [plugin], profile: vtdPresetProfile(preset) });
const fd = host.openIommufd();
const dev = host.device('0000:f2:01.0');
const devId = dev.bindIommufd(fd);
const ioasId = fd.ioas.alloc();
const USER_PAGES = 512;
const userVa = host.process.mmap(USER_PAGES * 4096);
host.process.poke(userVa, new Uint8Array(USER_PAGES * 4096).fill(0xa5));
// The user pages' address words (user addresses are past 2^43: their page numbers are not int32s).
const userLo = new Int32Array(USER_PAGES);
const userHi = new Int32Array(USER_PAGES);
for (let i = 0; i < USER_PAGES; i++) {
  const va = userVa + BigInt(i * 4096);
  userLo[i] = Number(BigInt.asIntN(32, va));
  userHi[i] = Number(BigInt.asIntN(32, va >> 32n));
}
const MAP = uapi.iommu_ioas_map;
const mapBuf = new Uint8Array(MAP.size);
const mapView = new DataView(mapBuf.buffer);
mapView.setUint32(0, MAP.size, true);
mapView.setUint32(4, uapi.IOMMU_IOAS_MAP_FIXED_IOVA | uapi.IOMMU_IOAS_MAP_READABLE | uapi.IOMMU_IOAS_MAP_WRITEABLE, true);
mapView.setUint32(8, ioasId, true);
mapView.setUint32(MAP.offsetof('length'), 4096, true);
const MAP_USER_VA = MAP.offsetof('user_va');
const MAP_IOVA = MAP.offsetof('iova');
const fault = fd.run(uapi.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
const hwpt = fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { flags: uapi.IOMMU_HWPT_FAULT_ID_VALID, dev_id: devId, pt_id: ioasId, fault_id: fault.out_fault_id });
dev.attachPt(hwpt.out_hwpt_id);
const faultFd = fault.out_fault_fd;
const PGFAULT = uapi.iommu_hwpt_pgfault;
const A = PGFAULT.offsetof('addr');
const C = PGFAULT.offsetof('cookie');
const resp = new Uint8Array(uapi.iommu_hwpt_page_response.size);
const respView = new DataView(resp.buffer);
respView.setUint32(4, uapi.IOMMUFD_PAGE_RESP_SUCCESS, true);
const proc = host.process;
const rec = new Uint8Array(PGFAULT.size);
const rv = new DataView(rec.buffer);
const readOpts = { into: new Uint8Array(8) };

/** A page number's address words, as int32s (`<< 12` and `>> 20` never leave them, for any page below 2^31). */
function setPageAddr(v: DataView, offset: number, pfn: number): void {
  v.setInt32(offset, pfn << 12, true);
  v.setInt32(offset + 4, pfn >> 20, true);
}

/** Round trips on the pages `pfns` (below 2^31), the DMA at `iovas[i]` (each pfns[i] * 4096). */
async function roundTrips(pfns: Int32Array, iovas: readonly number[]): Promise<void> {
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i];
    const dma = dev.dma.read(iovas[i], 8, readOpts);
    do await null;
    while ((proc.poll(faultFd) & POLLIN) === 0);
    if (proc.readInto(faultFd, rec) !== PGFAULT.size) throw new Error('short read');
    if (rv.getInt32(A, true) !== pfn << 12 || rv.getInt32(A + 4, true) !== pfn >> 20) throw new Error(`wrong address for page ${pfn}`);
    mapView.setInt32(MAP_USER_VA, userLo[i & (USER_PAGES - 1)], true);
    mapView.setInt32(MAP_USER_VA + 4, userHi[i & (USER_PAGES - 1)], true);
    setPageAddr(mapView, MAP_IOVA, pfn);
    if (fd.ioctl(uapi.IOMMU_IOAS_MAP, mapBuf) !== 0) throw new Error(`map: ${fd.lastError?.message ?? ''}`);
    respView.setInt32(0, rv.getInt32(C, true), true);
    if (proc.write(faultFd, resp) !== 8) throw new Error('short write');
    const data = await dma;
    if (data[0] !== 0xa5) throw new Error('wrong data');
  }
}

/**
 * `n` pages from `first`, and their IOVAs as numbers (small integers below 2^31, heap numbers from there),
 * in an array of V8's generic elements kind (it held a null first): the loop's load from it is the same
 * for both phases' arrays and hands over each number as it is, so the only change the model sees is the
 * IOVA's own representation.
 */
function pages(first: number, n: number): [Int32Array, number[]] {
  const pfns = new Int32Array(n);
  const tagged: unknown[] = [null];
  tagged.pop();
  const iovas = tagged as number[];
  for (let i = 0; i < n; i++) {
    pfns[i] = first + i;
    iovas.push((first + i) * 4096);
  }
  return [pfns, iovas];
}

// Warm-up: IOVAs from 64 MiB, small integers to V8.
const [warmPfns, warmIovas] = pages(0x4000, WARM);
await roundTrips(warmPfns, warmIovas);
console.log('phase cross');
// Almost 2 GiB pinned, charged as by another pin of the same user (locked_vm is per user): the cross phase
// passes 2 GiB half-way. (Charged directly, not by a large map, so that only the round trip runs.)
proc.chargePinned(2 ** 19 - proc.lockedPages - (CROSS >> 1));
const before = proc.lockedPages;
// IOVAs past 4 GiB (heap numbers from the first call) whose low word crosses 2^31 half-way.
const [crossPfns, crossIovas] = pages(0x180000 - (CROSS >> 1), CROSS);
await roundTrips(crossPfns, crossIovas);
if (before * 4096 >= 2 ** 31 || proc.lockedPages * 4096 <= 2 ** 31) throw new Error(`the pinned total did not cross 2 GiB: ${before} -> ${proc.lockedPages} pages`);
console.log('phase done');
