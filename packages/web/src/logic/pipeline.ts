/**
 * The page-request view's logic: a PRI device on a built-in host faults on an unmapped IOVA and its page
 * request travels the whole pipeline, recorded through FAULT_TRACE: the device's request, the record the
 * unit writes into its page request queue, the driver's decode, the fault queue, user space reading the
 * fault fd and answering, the response descriptor the driver sends, and the device's retry.
 */
import { container } from 'tsyringe';
import { createHost, uapi, FAULT_TRACE, type FaultTraceEvent, type HostProfile } from '@ioasid/core';
import type { IommuFault } from '@ioasid/core/driver';
import { presetList, VENDOR_SETS } from './plugins.js';

export interface PipelineStep {
  readonly title: string;
  readonly text: string;
  /** A record as bytes, shown in hex. */
  readonly bytes?: Uint8Array;
  /** Decoded fields of the record or struct. */
  readonly fields?: Readonly<Record<string, string>>;
}

export interface PipelineRun {
  readonly presetId: string;
  readonly presetName: string;
  readonly device: string;
  readonly steps: readonly PipelineStep[];
}

/** Presets with a device that can send page requests (PRI and a unit whose codec has page requests). */
export function priPresets(): Array<{ id: string; profile: HostProfile; bdf: string }> {
  const out: Array<{ id: string; profile: HostProfile; bdf: string }> = [];
  for (const p of presetList()) {
    const d = p.profile.devices.find((x) => x.pri);
    if (d) out.push({ id: p.id, profile: p.profile, bdf: d.bdf });
  }
  return out;
}

const hex = (v: number | bigint) => `0x${v.toString(16)}`;

function faultFields(f: Readonly<IommuFault>): Record<string, string> {
  return {
    kind: f.kind,
    unit: String(f.unit),
    rid: hex(f.rid),
    pasid: f.pasid < 0 ? 'none' : hex(f.pasid),
    addr: hex(f.addr),
    perm: `${f.perm & 1 ? 'R' : ''}${f.perm & 2 ? 'W' : ''}${f.perm & 4 ? 'X' : ''}${f.perm & 8 ? 'P' : ''}` || '-',
    'group index': String(f.grpid),
    last: String(f.last),
    reason: f.reasonText || String(f.reason),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

export async function runPageRequest(presetId: string | undefined, answer: 'success' | 'invalid'): Promise<PipelineRun> {
  const all = priPresets();
  const chosen = all.find((p) => p.id === presetId) ?? all[0];
  if (!chosen) throw new Error('no built-in host has a device with PRI');
  const events: FaultTraceEvent[] = [];
  const parent = container.createChildContainer();
  parent.register(FAULT_TRACE, { useValue: { event: (e: FaultTraceEvent) => events.push(e) } });
  // Every preset binds, virtio-iommu and RISC-V too: as a VMM with iommufd.allow_unsafe_interrupts=1.
  const host = createHost({ plugins: VENDOR_SETS.map((s) => s.plugin), profile: chosen.profile, container: parent, allowUnsafeInterrupts: true });
  const steps: PipelineStep[] = [];
  const take = () => events.splice(0, events.length);

  const fd = host.openIommufd();
  const dev = host.device(chosen.bdf);
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const fq = fd.fault.alloc();
  const hwpt = fd.hwpt.alloc({ devId, ptId: ioas, faultId: fq.id });
  dev.attachPt(hwpt);
  steps.push({
    title: 'User space sets up',
    text: `VFIO_DEVICE_BIND_IOMMUFD ${chosen.bdf} -> dev_id ${devId}; IOMMU_IOAS_ALLOC -> ${ioas}; IOMMU_FAULT_QUEUE_ALLOC -> fault_id ${fq.id}, fd ${fq.fd}; IOMMU_HWPT_ALLOC with the fault queue -> hwpt ${hwpt}; attached. Nothing is mapped yet.`,
  });

  const iova = 0x4000_0000n;
  const dma = dev.dma.read(iova, 16);
  dma.catch(() => undefined);
  await settle();
  steps.push({ title: 'The device faults', text: `${chosen.bdf} reads 16 bytes at IOVA ${hex(iova)}; the IOMMU finds no translation and the device, having PRI, sends a page request and waits.` });
  for (const e of take()) {
    if (e.step === 'record') steps.push({ title: `The unit writes a ${e.queue} record`, text: `${host.units[e.unit]?.id ?? `unit ${e.unit}`} puts the request into its ${e.queue === 'page-request' ? 'page request' : 'fault/event'} queue in the hardware's own format:`, bytes: e.record });
    else if (e.step === 'decoded') steps.push({ title: 'The driver decodes it', text: 'The interrupt thread reads the record into the normalized fault:', fields: faultFields(e.fault) });
    else if (e.step === 'routed') steps.push({ title: 'Routed by (device, PASID)', text: e.sink === 'fault-queue' ? `The attached HWPT ${hwpt} has fault queue ${fq.id}: the group waits there for user space.` : `Sink: ${e.sink}.` });
    else if (e.step === 'overflow') steps.push({ title: 'Queue overflow', text: `The ${e.queue} queue was full; the record is lost.` });
  }

  // read(2) on the fault fd, exactly as a VMM's handler does: one struct iommu_hwpt_pgfault per request.
  const size = uapi.iommu_hwpt_pgfault.size;
  const raw = host.process.read(fq.fd, size * 8);
  if (raw.length >= size) {
    const rec = uapi.iommu_hwpt_pgfault.decode(raw, 0);
    steps.push({
      title: 'User space reads the fault fd',
      text: `read() returns ${raw.length / size} struct iommu_hwpt_pgfault (${size} bytes each):`,
      bytes: raw.subarray(0, size),
      fields: Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, typeof v === 'bigint' || typeof v === 'number' ? (k === 'addr' ? hex(v) : String(v)) : String(v)])),
    });
    if (answer === 'success') {
      const page = host.process.mmap(4096);
      host.process.poke(page, new TextEncoder().encode('faulted-in page!'));
      fd.ioas.map({ ioasId: ioas, userVa: page, length: 4096n, iova });
    }
    const code = answer === 'success' ? uapi.IOMMUFD_PAGE_RESP_SUCCESS : uapi.IOMMUFD_PAGE_RESP_INVALID;
    const response = uapi.iommu_hwpt_page_response.encode({ cookie: rec.cookie, code });
    host.process.write(fq.fd, response);
    steps.push({
      title: 'The handler answers',
      text: `${answer === 'success' ? `It maps a page at ${hex(iova)} (IOMMU_IOAS_MAP) and writes` : 'It cannot serve the address and writes'} struct iommu_hwpt_page_response { cookie ${rec.cookie}, code ${answer.toUpperCase()} } to the fault fd:`,
      bytes: response,
    });
  }
  for (const e of take()) {
    if (e.step === 'response') {
      steps.push({
        title: 'The driver responds to the device',
        text: `The response travels to ${chosen.bdf} in the vendor's encoding${e.auto ? ' (sent by the kernel itself)' : ''}; the device decodes code ${e.deviceCode}:`,
        ...(e.record ? { bytes: e.record } : {}),
      });
    }
  }
  try {
    const bytes = await dma;
    steps.push({ title: 'The device retries', text: `The DMA completes: ${JSON.stringify(new TextDecoder().decode(bytes))}` });
  } catch (e) {
    steps.push({ title: 'The device gives up', text: `The DMA fails: ${e instanceof Error ? e.message : String(e)}` });
  }
  host.process.close(fd.fd);
  return { presetId: chosen.id, presetName: chosen.profile.name, device: chosen.bdf, steps };
}
