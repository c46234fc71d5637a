/**
 * `node --expose-gc --import tsx --conditions=@ioasid/source tools/bench/compact-areas.ts [areas] [attach|bare] [iter|areaAt|copy|copy-domain|unmap-access]`:
 * the in-process measurement of docs/performance.md ("Reading, copying and access pins over the records"):
 * `areas` (1,000,000) single-page compact areas mapped in order by raw FIXED_IOVA IOMMU_IOAS_MAP calls
 * into an IOAS (with a VT-d device attached, or bare), then one of: two full passes of
 * `IoPagetable.iterAreas`, `areas` `areaAt` lookups at random pages (xorshift32), one IOMMU_IOAS_COPY
 * of the whole range into a second IOAS (then a pass of `iterAreas` over the copy and an
 * IOMMU_IOAS_UNMAP of everything in both IOASes; `copy-domain`: the second IOAS has a domain of its own), or (`unmap-access`) one IOMMU_IOAS_UNMAP of everything with an
 * emulated-device access attached to the IOAS (the unmap that checks each area for access pins). Prints one JSON line: CPU ms of each step and the heap kept
 * after `gc()`. Run one step per process so that each starts from records.
 */
import { createHost, uapi } from '@ioasid/core';
import { iommufdCtx } from '@ioasid/core/internal';
import { findVtdPreset, plugin, vtdPresetProfile } from '@ioasid/vtd';
import { getIoas } from '../../packages/core/src/iommufd/ioas.js';

const areas = Number(process.argv[2] ?? 1_000_000);
const attach = (process.argv[3] ?? 'attach') === 'attach';
const step = process.argv[4] ?? 'iter';
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const heapMb = (): number => {
  gc();
  return process.memoryUsage().heapUsed / 1e6;
};

const preset = findVtdPreset('granite-rapids-2s');
if (preset === undefined) throw new Error('preset missing');
const host = createHost({ plugins: [plugin], profile: vtdPresetProfile(preset) });
const fd = host.openIommufd();
const dev = host.device('0000:f2:01.0');
const devId = dev.bindIommufd(fd);
const src = fd.ioas.alloc();
const dst = fd.ioas.alloc();
if (attach && dev.attachPt(src) <= 0) throw new Error('attach failed');
const USER_PAGES = 64;
const PAGE = 4096;
const userVa = host.process.mmap(USER_PAGES * PAGE);
host.process.poke(userVa, new Uint8Array(USER_PAGES * PAGE).fill(1));
const FLAGS = uapi.IOMMU_IOAS_MAP_FIXED_IOVA | uapi.IOMMU_IOAS_MAP_READABLE | uapi.IOMMU_IOAS_MAP_WRITEABLE;
const buf = new Uint8Array(uapi.iommu_ioas_map.size);
const view = new DataView(buf.buffer);
view.setUint32(0, uapi.iommu_ioas_map.size, true);
view.setUint32(4, FLAGS, true);
view.setUint32(8, src, true);
view.setBigUint64(uapi.iommu_ioas_map.offsetof('length'), BigInt(PAGE), true);
/** From 4 GiB. */
const BASE_PFN = 1 << 20;

const out: Record<string, number | string> = { areas, attach: String(attach), step };
let t = cpuMs();
for (let i = 0; i < areas; i++) {
  view.setBigUint64(uapi.iommu_ioas_map.offsetof('user_va'), userVa + BigInt((i % USER_PAGES) * PAGE), true);
  view.setBigUint64(uapi.iommu_ioas_map.offsetof('iova'), BigInt((BASE_PFN + i) * PAGE), true);
  if (fd.ioctl(uapi.IOMMU_IOAS_MAP, buf) !== 0) throw new Error(`map failed: ${fd.lastError?.message}`);
}
out.setup_ms = cpuMs() - t;
const iopt = getIoas(iommufdCtx(fd), src).iopt;
const heap0 = heapMb();

if (step === 'iter') {
  for (const round of [1, 2]) {
    t = cpuMs();
    let n = 0;
    let pages = 0;
    for (const a of iopt.iterAreas()) {
      n++;
      pages += a.npages;
    }
    out[`iter${round}_ms`] = cpuMs() - t;
    if (n !== areas || pages !== areas) throw new Error('iterAreas gave the wrong areas');
  }
} else if (step === 'areaAt') {
  t = cpuMs();
  let x = 2463534242 | 0;
  for (let i = 0; i < areas; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const pfn = BASE_PFN + ((x >>> 0) % areas);
    if (iopt.areaAt(BigInt(pfn * PAGE + 5)) === undefined) throw new Error('areaAt missed');
  }
  out.areaAt_ms = cpuMs() - t;
} else if (step === 'copy' || step === 'copy-domain') {
  // The source's domain stays attached, so that the copy shares pinned pages; the destination has none,
  // or (copy-domain) a domain of its own that the copy fills.
  if (step === 'copy-domain') fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: dst });
  t = cpuMs();
  const length = BigInt(areas * PAGE);
  const iova = BigInt(BASE_PFN * PAGE);
  fd.run(uapi.iommu_ioas_copy, 'IOAS_COPY', { src_ioas_id: src, dst_ioas_id: dst, flags: FLAGS, length, src_iova: iova, dst_iova: iova });
  out.copy_ms = cpuMs() - t;
  const dstIopt = getIoas(iommufdCtx(fd), dst).iopt;
  if (dstIopt.areaCount !== areas) throw new Error('the copy has the wrong areas');
  const heap1 = heapMb();
  out.copy_heap_kept_mb = heap1 - heap0;
  out.copy_array_buffers_mb = process.memoryUsage().arrayBuffers / 1e6;
  // The copied areas read back (a full pass of iterAreas over the destination), then every area of
  // the destination and of the source unmapped (the shared pages released by both).
  t = cpuMs();
  let n = 0;
  for (const a of dstIopt.iterAreas()) n += a.npages;
  out.iter_dst_ms = cpuMs() - t;
  if (n !== areas) throw new Error('iterAreas gave the wrong areas');
  out.iter_dst_heap_kept_mb = heapMb() - heap1;
  t = cpuMs();
  const bytes = fd.ioas.unmap(dst, 0n, 1n << 60n) + fd.ioas.unmap(src, 0n, 1n << 60n);
  out.unmap_both_ms = cpuMs() - t;
  if (bytes !== BigInt(2 * areas * PAGE)) throw new Error('the unmap removed the wrong bytes');
} else if (step === 'unmap-access') {
  const acc = fd.access.create({ unmap: () => {} });
  acc.attach(src);
  t = cpuMs();
  const bytes = fd.ioas.unmap(src, 0n, 1n << 60n);
  out.unmap_ms = cpuMs() - t;
  if (bytes !== BigInt(areas * PAGE)) throw new Error('the unmap removed the wrong bytes');
} else throw new Error(`unknown step ${step}`);
out.heap_kept_mb = heapMb() - heap0;
console.log(JSON.stringify(out));
