/**
 * `ioasid demo`: a guided tour printed for people. It walks the IOAS uAPI, then a real VT-d server
 * (registers from a real boot log) with a PRI device whose page fault travels the whole pipeline as
 * VT-d records, then an Arm SMMUv3 host where a guest owns stage 1 through a vIOMMU, then the
 * virtio-iommu device a VMM exposes, its guest's MAP reaching the device's DMA through iommufd, then an
 * AMD EPYC server (four IOMMUs, EFR from its boot log) with dirty tracking, an event log entry and a
 * plan for a fleet that mixes it with an Intel server.
 */
import { createHost, uapi, ERRNO, errnoName, DmaFault, PhysicalMemory, FrameAllocator, type Host, type HostProfile } from '@ioasid/core';
import { PERM_READ, PERM_WRITE, IOMMU_READ, IOMMU_WRITE, codecPageRequests, pageSizesFromLog2 } from '@ioasid/core/driver';
import * as vtd from '@ioasid/vtd';
import * as smmu from '@ioasid/smmuv3';
import * as virtio from '@ioasid/virtio-iommu';
import * as amd from '@ioasid/amd-vi';
import type { IommuPlugin } from '@ioasid/core/driver';
import { PluginHost } from '@ioasid/core/driver';
import { plan, probeDmesg } from '@ioasid/planner';
import type { Output } from '../output.js';

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const bytesHex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const tick = () => new Promise((r) => setTimeout(r, 0));

/** What the demo leaves behind for inspection. */
export interface DemoResult {
  /** The hosts the tour built, in the order it printed them. */
  hosts: Host[];
}

/** Prints the tour (see the module comment) to `out`; resolves with the hosts it built so that tests can inspect them. */
export async function runDemo(out: Output): Promise<DemoResult> {

  const hosts = [ioasTour(out), await vtdTour(out), await smmuTour(out), await virtioTour(out), await amdTour(out)];
  out.heading('Done');
  out.line('Next: `ioasid probe <dmesg>` on a real boot log, `ioasid plan <profile>` for the vIOMMU, `ioasid decode vtd <value>`, `ioasid decode amd-vi <EFR | event | line>`, `ioasid decode virtio-iommu <request bytes>`.');
  return { hosts };
}

function ioasTour(out: Output): Host {
  const host = createHost();
  out.heading('1. The uAPI on a bare host: open("/dev/iommu"), IOAS map/unmap/copy');
  const fd = host.openIommufd();
  const ioas = fd.ioas.alloc();
  out.line(`iommufd is fd ${fd.fd}; IOMMU_IOAS_ALLOC -> ioas_id ${ioas}`);
  const len = 2n << 20n;
  const va = host.process.mmap(len);
  const fixed = fd.ioas.map({ ioasId: ioas, userVa: va, length: len, iova: 0x1000_0000n });
  out.line(`IOMMU_IOAS_MAP ${len >> 10n} KiB of user VA ${hex(va)} at IOVA ${hex(fixed)} (FIXED_IOVA)`);
  const auto = fd.ioas.map({ ioasId: ioas, userVa: va, length: 1n << 20n });
  out.line(`IOMMU_IOAS_MAP 1 MiB at an allocated IOVA ${hex(auto)} (aligned to the length, never 0)`);
  const buf = uapi.iommu_ioas_map.encode(
    uapi.iommu_ioas_map.make({ size: 40, flags: uapi.IOMMU_IOAS_MAP_FIXED_IOVA | uapi.IOMMU_IOAS_MAP_READABLE, ioas_id: ioas, user_va: va, length: 4096n, iova: fixed }),
  );
  const rc = fd.ioctl(uapi.IOMMU_IOAS_MAP, buf);
  out.line(`raw ioctl(0x${uapi.IOMMU_IOAS_MAP.toString(16)}) over an existing area -> ${rc} (${errnoName(rc)}): ${fd.lastError?.detail ?? ''}`);
  const short = new Uint8Array(40);
  new DataView(short.buffer).setUint32(0, 39, true);
  out.line(`size 39 < min_size 40 -> ${fd.ioctl(uapi.IOMMU_IOAS_MAP, short)} (-EINVAL is -${ERRNO.EINVAL})`);
  const ioas2 = fd.ioas.alloc();
  const copied = fd.ioas.copy({ dstIoasId: ioas2, srcIoasId: ioas, srcIova: fixed, length: 64n << 10n });
  out.line(`IOMMU_IOAS_COPY 64 KiB into IOAS ${ioas2} @ ${hex(copied)}: the pinned pages are shared (${host.process.lockedPages} pages pinned)`);
  try {
    fd.ioas.unmap(ioas, fixed + 4096n, 4096n);
  } catch (e) {
    out.line(`unmap of one page inside a 2 MiB area -> ${(e as Error).message}`);
  }
  out.line(`unmap-all removed ${fd.ioas.unmapAll(ioas)} + ${fd.ioas.unmapAll(ioas2)} bytes; pinned pages now ${host.process.lockedPages}`);
  host.process.close(fd.fd);
  return host;
}

function findPriPreset(presets: readonly HostProfile[]): { profile: HostProfile; bdf: string } {
  for (const p of presets) {
    const d = p.devices.find((x) => x.pri && (x.pasidBits ?? 0) > 0);
    if (d) return { profile: p, bdf: d.bdf };
  }
  throw new Error('no preset with a PRI device');
}

async function vtdTour(out: Output): Promise<Host> {
  const { profile, bdf } = findPriPreset(vtd.presets);
  const host = createHost({ plugins: [vtd.plugin], profile });
  out.heading(`2. An Intel VT-d host: ${profile.name}`);
  for (const line of host.log.lines) out.line(`boot: ${line}`);
  probeAndPlan(out, host.log.lines, profile, vtd.plugin);
  const dev = host.device(bdf);
  const fd = host.openIommufd();
  const devId = dev.bindIommufd(fd);
  const info = fd.getHwInfo(devId);
  out.line(`VFIO_DEVICE_BIND_IOMMUFD ${bdf} -> dev_id ${devId}; IOMMU_GET_HW_INFO: type ${info.type} (INTEL_VTD), ${info.dataLen} bytes, max_pasid_log2 ${info.maxPasidLog2}, capabilities ${hex(info.capabilities)}`);

  out.heading('3. Attach to an IOAS and do DMA through the second-stage table');
  const ioas = fd.ioas.alloc();
  const va = host.process.mmap(1 << 20);
  host.process.poke(va, new TextEncoder().encode('written by the CPU'));
  fd.ioas.map({ ioasId: ioas, userVa: va, length: 1n << 20n, iova: 0x4000_0000n });
  const fq = fd.fault.alloc();
  const hwpt = fd.hwpt.alloc({ devId, ptId: ioas, faultId: fq.id });
  dev.attachPt(hwpt);
  out.line(`IOMMU_FAULT_QUEUE_ALLOC -> fault_id ${fq.id} fd ${fq.fd}; IOMMU_HWPT_ALLOC(FAULT_ID_VALID) -> hwpt ${hwpt}; attached`);
  const read = await dev.dma.read(0x4000_0000n, 18);
  out.line(`device DMA read at IOVA 0x40000000 -> ${JSON.stringify(new TextDecoder().decode(read))}`);
  await dev.dma.write(0x4000_1000n, new TextEncoder().encode('written by the device'));
  out.line(`device DMA write at 0x40001000 -> user memory now reads ${JSON.stringify(new TextDecoder().decode(host.process.peek(va + 0x1000n, 21)))}`);

  out.heading('4. A page fault from a PRI device, through the whole pipeline as VT-d records');
  const iova = 0x5000_0000n;
  const pending = dev.dma.read(iova, 16);
  pending.catch(() => undefined);
  await tick();
  const codec = dev.unitOps.faults;
  if (!codecPageRequests(codec)) throw new Error('the VT-d fault codec has page requests');
  const prq = codec.encodePageRequest({ unit: dev.unitIndex, rid: dev.info.rid, pasid: -1, addr: iova, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: true, grpid: 1, last: true });
  out.line(`the device found IOVA ${hex(iova)} unmapped and sent a page request; the IOMMU queued a 256-bit page request descriptor:`);
  out.line(`  ${bytesHex(prq)}`);
  out.line(`  decoded: ${describe(codec.decodePageRequest(prq, dev.unitIndex))}`);
  const reader = fd.fault.reader(fq.fd);
  const groups = reader.readAvailable();
  const g = groups[0];
  out.line(`read(fault fd) -> ${groups.length} group: cookie ${g.cookie}, dev_id ${g.devId}, addr ${hex(g.faults[0].addr)}, perm ${g.faults[0].perm} (READ)`);
  const page = host.process.mmap(4096);
  host.process.poke(page, new TextEncoder().encode('faulted-in page!'));
  fd.ioas.map({ ioasId: ioas, userVa: page, length: 4096n, iova });
  reader.respond(g, 'success');
  const resp = codec.encodePageResponse({ rid: dev.info.rid, pasid: -1, grpid: 1, code: 0 });
  out.line(`the handler mapped the page and wrote {cookie ${g.cookie}, SUCCESS}; the driver sent a page group response descriptor:`);
  out.line(`  ${bytesHex(resp)}`);
  out.line(`the device retried: DMA read -> ${JSON.stringify(new TextDecoder().decode(await pending))}`);
  out.line(`pipeline: ${host.faultStats.pageRequests} page request(s), ${host.faultStats.responses} response(s), ${host.faultStats.duplicateResponses} duplicates`);

  out.heading('5. An unrecoverable fault, as the Linux log line');
  const plain = host.devices.get(profile.devices.find((d) => !d.pri)!.bdf)!;
  plain.bindIommufd(fd);
  plain.attachPt(ioas);
  try {
    await plain.dma.write(0x7000_0000n, new Uint8Array(4));
  } catch (e) {
    out.line(`${plain.bdf} DMA write to an unmapped IOVA -> ${(e as DmaFault).name}: ${(e as DmaFault).fault.reasonText}`);
  }
  await tick();
  out.line(`kernel log: ${host.log.lines[host.log.lines.length - 1]}`);
  return host;
}

/**
 * What `ioasid probe` and `ioasid plan` do: read the boot lines back into a host profile through the
 * registered vendors, then choose the vIOMMU a VMM should expose for the host's devices.
 */
function probeAndPlan(out: Output, bootLines: readonly string[], real: HostProfile, plugin: IommuPlugin): void {
  const plugins = new PluginHost();
  plugins.load(plugin);
  const vendors = plugins.vendors();
  const probed = probeDmesg(bootLines.join('\n'), vendors, { name: real.name });
  for (const u of probed.units) out.line(`probe: ${u.id} -> ${u.hwId}`);
  // The boot log names the units; the devices behind them come from the machine's inventory.
  const profile: HostProfile = { ...probed.profile, devices: real.devices };
  const p = plan({ profiles: [profile], policy: 'host', vendors });
  out.line(`plan (policy host): ${p.viommu.model} ${Object.entries(p.viommu.properties).map(([k, v]) => `${k}=${String(v)}`).join(',')}`);
  for (const d of p.devices) out.line(`  ${d.bdf}: ${d.mode}${d.reasons.length ? ` (${d.reasons[0]})` : ''}`);
  out.line(`  QEMU: ${p.qemu}`);
}

function describe(f: { rid: number; pasid: number; addr: bigint; perm: number; grpid: number; last: boolean }): string {
  const rw = `${f.perm & PERM_READ ? 'R' : ''}${f.perm & PERM_WRITE ? 'W' : ''}`;
  return `requester ${hex(f.rid)}, ${f.pasid >= 0 ? `PASID ${f.pasid}` : 'no PASID'}, addr ${hex(f.addr)}, ${rw}, PRG index ${f.grpid}${f.last ? ', last' : ''}`;
}

/** An Arm host: a guest owns stage 1 (its CD table and page tables in guest memory) nested on stage 2. */
async function smmuTour(out: Output): Promise<Host> {
  const profile = smmu.presets.find((p) => p.units.length > 0 && p.devices.some((d) => d.pri)) ?? smmu.presets[0];
  const host = createHost({ plugins: [smmu.plugin], profile });
  const d0 = profile.devices[0];
  const dev = host.device(d0.bdf);
  out.heading(`6. An Arm SMMUv3 host: ${profile.name}`);
  out.line(`${host.units[dev.unitIndex].id}: ${dev.unitOps.decoded.hwId}`);
  const fd = host.openIommufd();
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  // Guest RAM: 256 pages at GPA 0 backed by one user mapping (what QEMU does for guest memory).
  const guestPages = 256;
  const gmem = host.process.mmap(guestPages * 4096);
  fd.ioas.map({ ioasId: ioas, userVa: gmem, length: BigInt(guestPages * 4096), iova: 0n });
  const s2 = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
  const viommuId = fd.viommu.alloc({ devId, type: uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwptId: s2 });
  const vsid = 0x8n;
  fd.vdevice.alloc({ viommuId, devId, virtId: vsid });
  const q = fd.veventq.alloc({ viommuId, type: uapi.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 16 });
  out.line(`stage 2: nest-parent HWPT ${s2}; IOMMU_VIOMMU_ALLOC(ARM_SMMUV3) -> ${viommuId}; vDEVICE with virtual SID ${hex(vsid)}; vEVENTQ fd ${q.fd}`);

  // The guest builds its own stage-1 table and CD in its memory (guest-physical page numbers).
  const guest = new PhysicalMemory();
  const gframes = new FrameAllocator(guest, 0x40, guestPages);
  const s1 = smmu.armLpaeS1.alloc({ pgsizeBitmap: pageSizesFromLog2(12), ias: 39, oas: 48, granule: 4096 }, { mem: guest, allocTable: () => gframes.alloc(), releaseTable: (p) => gframes.release(p) });
  if (typeof s1 === 'number') throw new Error(`guest stage-1 alloc failed: ${s1}`);
  const dataGpa = 0x20;
  s1.map(0x1000, dataGpa, 1, IOMMU_READ | IOMMU_WRITE);
  const cdGpa = 0x10;
  guest.write(cdGpa * 4096, smmu.encodeCd({ V: 1, AA64: 1, T0SZ: 25, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASET: 1, ASID: 7, TTB0: BigInt(s1.rootPfn) << 12n }));
  const page = new Uint8Array(4096);
  for (let p = 0; p < guestPages; p++) {
    if (!guest.chunkIfBacked(p)) continue;
    guest.read(p * 4096, page);
    if (page.some((b) => b !== 0)) host.process.poke(gmem + BigInt(p * 4096), page);
  }
  host.process.poke(gmem + BigInt(dataGpa * 4096), new TextEncoder().encode('guest data via S1+S2'));
  const steWords = smmu.encodeSteWords({ V: 1, Config: smmu.STE_CFG.S1_TRANS, S1ContextPtr: BigInt(cdGpa) << 12n });
  const steBytes = new Uint8Array(16);
  new DataView(steBytes.buffer).setBigUint64(0, steWords[0], true);
  new DataView(steBytes.buffer).setBigUint64(8, steWords[1], true);
  const nested = fd.hwpt.alloc({ devId, ptId: viommuId, data: { type: uapi.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: steBytes } });
  dev.attachPt(nested);
  out.line(`the guest wrote a CD (ASID 7, TTB0 at GPA ${hex(s1.rootPfn * 4096)}) and its stage-1 table; IOMMU_HWPT_ALLOC with its STE -> nested HWPT ${nested}; attached`);
  const r = await dev.dma.read(0x1000n * 4096n, 20);
  out.line(`device DMA at guest IOVA 0x1000000 -> stage 1 -> GPA ${hex(dataGpa * 4096)} -> stage 2 -> ${JSON.stringify(new TextDecoder().decode(r))}`);
  try {
    await dev.dma.read(0x2000n * 4096n, 4);
  } catch (e) {
    out.line(`DMA at guest IOVA 0x2000000 (not in the guest's table) -> ${(e as DmaFault).fault.reasonText}`);
  }
  await tick();
  const events = fd.veventq.read(q.fd);
  for (const ev of events) {
    const dv = new DataView(ev.data.buffer, ev.data.byteOffset, ev.data.byteLength);
    const w0 = ev.data.length >= 8 ? dv.getBigUint64(0, true) : 0n;
    out.line(`vEVENT seq ${ev.sequence}: event id ${hex(Number(w0 & 0xffn))}, StreamID ${hex(w0 >> 32n)} (the virtual SID the guest knows), raw ${bytesHex(ev.data.subarray(0, 16))}…`);
  }
  return host;
}

/**
 * The VMM side of virtio-iommu: the guest's driver sends requests through a virtqueue in guest memory,
 * the device turns a MAP into IOMMU_IOAS_MAP at a fixed IOVA, and the assigned device's DMA reaches
 * the guest page; after UNMAP the DMA faults and the fault arrives on the event queue.
 */
async function virtioTour(out: Output): Promise<Host> {
  const profile = vtd.presets[0];
  const host = createHost({ plugins: [vtd.plugin], profile });
  const bdf = profile.devices[0].bdf;
  out.heading(`7. virtio-iommu: the VMM's vIOMMU on ${profile.name}, backed by iommufd`);
  const p = plan({ profiles: [profile], devices: [bdf], policy: 'strict', viommu: 'virtio-iommu-pci,granule=4k,aw-bits=39', vendors: host.plugins.vendors() });
  out.line(`plan: -device ${p.qemuArgs.find((a) => a.startsWith('virtio-iommu-pci')) ?? p.viommu.model}; libvirt ${p.libvirt.split('\n').find((l) => l.includes('<iommu'))?.trim() ?? ''}`.trim());
  const ramSize = 64n << 20n;
  const ram = host.process.mmap(ramSize);
  const EP = 0x10;
  const viommu = virtio.createVirtioIommu(host, { endpoints: { [EP]: bdf }, guestRam: [{ gpa: 0n, va: ram, size: ramSize }], config: { bypass: 0 } });
  const cfg = viommu.configValues;
  out.line(`endpoint ${hex(EP)} = ${bdf}, bound to iommufd ${viommu.iommufd.fd}; config: page_size_mask ${hex(cfg.page_size_mask)} (the host's page sizes), input_range ${hex(cfg.input_range.start)}-${hex(cfg.input_range.end)}, probe_size ${cfg.probe_size}, bypass ${cfg.bypass}`);
  out.line(`the guest's Linux prints: virtio_iommu virtio0: input address: ${virtio.orderBase2(cfg.input_range.end)} bits / page mask: ${hex(cfg.page_size_mask)}`);
  viommu.negotiate(virtio.LINUX_DRIVER_FEATURES);
  const transport = new virtio.VirtioIommuTransport(viommu, viommu);
  const reqq = virtio.layoutAt(0x10_0000n, 64);
  const evtq = virtio.layoutAt(0x11_0000n, 64);
  const driver = new virtio.VirtqueueDriver(viommu, reqq, { gpa: 0x12_0000n, size: 0x1_0000n });
  const events = new virtio.VirtqueueDriver(viommu, evtq, { gpa: 0x13_0000n, size: 0x1_0000n });
  transport.setQueue(0, reqq);
  transport.setQueue(1, evtq);
  for (let i = 0; i < 4; i++) events.add(new Uint8Array(0), virtio.FAULT_SIZE);
  transport.notify(1);
  const send = (req: Uint8Array, inLen = 4): Uint8Array => {
    driver.add(req, inLen);
    transport.notify(0);
    return driver.collect()[0]?.data ?? new Uint8Array(0);
  };
  const probe = send(virtio.encodeProbe({ endpoint: EP }), cfg.probe_size + 4);
  const props = virtio.parseProperties(probe.subarray(0, cfg.probe_size));
  out.line(`PROBE -> ${virtio.statusName(virtio.answerStatus(probe))}: ${props.map((x) => ('subtype' in x ? `RESV_MEM ${x.subtype === virtio.VIRTIO_IOMMU_RESV_MEM_T_MSI ? 'MSI' : 'RESERVED'} ${hex(x.start)}-${hex(x.end)}` : `property ${x.type}`)).join(', ') || 'no property'}`);
  const st = (b: Uint8Array) => virtio.statusName(virtio.answerStatus(b));
  out.line(`ATTACH endpoint ${hex(EP)} to domain 1 -> ${st(send(virtio.encodeAttach({ domain: 1, endpoint: EP })))}: domain 1 is IOAS ${viommu.domain(1)?.handle}`);
  const iova = 0x8000_0000n;
  const gpa = 0x20_0000n;
  const map = virtio.encodeMap({ domain: 1, virtStart: iova, virtEnd: iova + 0xfffn, physStart: gpa, flags: virtio.VIRTIO_IOMMU_MAP_F_READ | virtio.VIRTIO_IOMMU_MAP_F_WRITE });
  out.line(`MAP ${bytesHex(map)} -> ${st(send(map))}: IOMMU_IOAS_MAP(FIXED_IOVA ${hex(iova)}, user_va ${hex(ram + gpa)})`);
  viommu.writeGuest(gpa, new TextEncoder().encode('guest page'));
  const ep = viommu.dma(EP);
  out.line(`device DMA read at IOVA ${hex(iova)} -> ${JSON.stringify(new TextDecoder().decode(await ep.read(iova, 10)))} (guest-physical ${hex(gpa)})`);
  await ep.write(iova + 0x10n, new TextEncoder().encode('from the device'));
  out.line(`device DMA write at ${hex(iova + 0x10n)} -> the guest reads ${JSON.stringify(new TextDecoder().decode(viommu.readGuest(gpa + 0x10n, 15)))} at GPA ${hex(gpa + 0x10n)}`);
  out.line(`UNMAP -> ${st(send(virtio.encodeUnmap({ domain: 1, virtStart: iova, virtEnd: iova + 0xfffn })))}: IOMMU_IOAS_UNMAP`);
  try {
    await ep.read(iova, 4);
  } catch (e) {
    out.line(`device DMA at ${hex(iova)} again -> ${(e as DmaFault).fault.reasonText}`);
  }
  for (const ev of events.collect()) {
    const f = virtio.decodeFault(ev.data);
    if (f) out.line(`event queue: virtio_iommu_fault ${bytesHex(ev.data)} -> the guest's Linux prints "${virtio.renderFaultLine(f, 'virtio0')}"`);
  }
  return host;
}

/**
 * An AMD EPYC server: its boot lines probed back into four IOMMUs, DMA through the v1 table, dirty
 * tracking (HDSup), an IO_PAGE_FAULT as the event log entry and the Linux line, and a migration-safe
 * vIOMMU for a fleet of this host and an Intel server.
 */
async function amdTour(out: Output): Promise<Host> {
  const profile = amd.amdPresetById('amd-zen3-milan-epyc');
  const host = createHost({ plugins: [amd.plugin], profile });
  out.heading(`8. An AMD EPYC host: ${profile.name}`);
  for (const line of host.log.lines) out.line(`boot: ${line}`);
  probeAndPlan(out, host.log.lines, profile, amd.plugin);
  const bdf = profile.devices[0].bdf;
  const dev = host.device(bdf);
  const fd = host.openIommufd();
  const devId = dev.bindIommufd(fd);
  const info = fd.getHwInfo(devId);
  out.line(`IOMMU_GET_HW_INFO: type ${info.type} (AMD), ${info.dataLen} bytes: iommu_hw_info_amd { efr, efr2 }, capabilities ${hex(info.capabilities)} (dirty tracking)`);
  const ioas = fd.ioas.alloc();
  const va = host.process.mmap(1 << 20);
  fd.ioas.map({ ioasId: ioas, userVa: va, length: 1n << 20n, iova: 0x1000_0000n });
  const hwpt = fd.hwpt.alloc({ devId, ptId: ioas, dirtyTracking: true });
  dev.attachPt(hwpt);
  fd.hwpt.setDirtyTracking(hwpt, true);
  await dev.dma.write(0x1000_3000n, new TextEncoder().encode('dirty'));
  const bitmap = fd.hwpt.getDirtyBitmap(hwpt, { iova: 0x1000_0000n, length: 0x10000n });
  const dirty = [...Array(8).keys()].filter((i) => (bitmap[0] >> i) & 1);
  out.line(
    `IOMMU_HWPT_ALLOC(DIRTY_TRACKING) on the v1 table, DMA write at 0x10003000; IOMMU_HWPT_GET_DIRTY_BITMAP -> ${bitmap[0].toString(2).padStart(8, '0')} ` +
      `(page(s) ${dirty.join(', ')}: the D bit of the leaf that took the write covers every 4K page it maps)`,
  );
  try {
    await dev.dma.read(0x2000_0000n, 4);
  } catch (e) {
    out.line(`${bdf} DMA read of an unmapped IOVA -> ${(e as DmaFault).fault.reasonText}`);
  }
  await tick();
  const codec = dev.unitOps.faults;
  if (!codecPageRequests(codec)) throw new Error('the VT-d fault codec has page requests');
  const rec = codec.encodeFault({ unit: dev.unitIndex, rid: dev.info.rid, pasid: -1, addr: 0x2000_0000n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true, tag: 1 });
  out.line(`the IOMMU wrote a 128-bit event log entry: ${bytesHex(rec)}`);
  out.line(`kernel log: ${host.log.lines[host.log.lines.length - 1]}`);
  // A fleet mixing this host with an Intel server: the baseline plan is a vIOMMU both can back.
  const plugins = new PluginHost();
  plugins.load(vtd.plugin);
  plugins.load(amd.plugin);
  const intel = vtd.presets.find((p) => p.name.includes('R770')) ?? vtd.presets[0];
  const fleet = plan({ profiles: [intel, profile], policy: 'baseline', vendors: plugins.vendors() });
  out.line(`plan for ${intel.name} + ${profile.name} (policy baseline): ${fleet.viommu.model} ${Object.entries(fleet.viommu.properties).map(([k, v]) => `${k}=${String(v)}`).join(',')}`);
  return host;
}
