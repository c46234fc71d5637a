/**
 * The stall model end to end on a Kunpeng-920-like host: a stall-capable platform device behind an SMMU with
 * STALL_MODEL = 0 stalls on a fault; the event record (Stall = 1, STAG) goes through the event queue, Linux's
 * event thread turns it into a one-request iopf group on the HWPT's fault queue, and the answer written to
 * the fault fd comes back as CMD_RESUME (Retry or Abort). Also: a nested context fault is recorded as the
 * event the guest configuration caused (C_BAD_CD), not as a translation fault.
 */
import { describe, expect, it, vi } from 'vitest';
import { DmaFault, createHost, uapi, type Host } from '@ioasid/core';
import { errCode } from '@ioasid/core/testing';
import { plugin, presetToHostProfile } from './index.js';
import { kunpeng920 } from './presets.js';
import { EVT_ID, decodeEvent, eventWords } from './records.js';
import { CMDQ_RESUME_0_RESP, decodeCommand } from './commands.js';
import { STE_CFG, encodeCd, encodeSteWords } from './ste.js';
import type { SmmuFaultCodec } from './fault-codec.js';

const ACC = '0000:75:00.0';
const PCIE = '0000:7d:00.0';

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

function kunpeng(): Host {
  return createHost({ plugins: [plugin], profile: presetToHostProfile(kunpeng920) });
}

/** The device bound, on an IOAS through a HWPT with a fault queue. */
function stallEnv(bdf = ACC) {
  const host = kunpeng();
  const dev = host.device(bdf);
  const fd = host.openIommufd();
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const fq = fd.fault.alloc();
  const hwpt = fd.hwpt.alloc({ devId, ptId: ioas, faultId: fq.id });
  dev.attachPt(hwpt);
  const reader = fd.fault.reader(fq.fd);
  const codec = dev.unitOps.faults as SmmuFaultCodec;
  return { host, dev, fd, devId, ioas, fq, hwpt, reader, codec };
}

function mapPage(e: ReturnType<typeof stallEnv>, iova: bigint, text: string): void {
  const va = e.host.process.mmap(4096);
  e.host.process.poke(va, new TextEncoder().encode(text));
  e.fd.ioas.map({ ioasId: e.ioas, userVa: va, length: 4096n, iova });
}

describe('Kunpeng 920: stall-capable accelerator', () => {
  it('the unit can stall (STALL_MODEL 0) and the device is stall-capable, without PRI', () => {
    const host = kunpeng();
    const dev = host.device(ACC);
    expect(dev.unitOps.caps.stall).toBe(true);
    expect(dev.unitOps.caps.pri).toBe(false);
    expect(dev.info).toMatchObject({ stall: true, pri: false, streamId: 0x7500 });
    expect(host.device(PCIE).info.stall).toBe(false);
  });

  it('a DMA to an unmapped IOVA stalls; the handler maps the page and answers SUCCESS; CMD_RESUME Retry; the DMA completes', async () => {
    const e = stallEnv();
    const stall = vi.spyOn(e.codec, 'encodeStall');
    const resume = vi.spyOn(e.codec, 'encodeResume');
    let settled = false;
    const dma = e.dev.dma.read(0x4000_0010n, 12).finally(() => {
      settled = true;
    });
    await settle();
    expect(settled).toBe(false);

    // The event record the SMMU wrote: F_TRANSLATION, Stall = 1, a STAG, the device's StreamID.
    expect(stall).toHaveBeenCalledTimes(1);
    const rec = decodeEvent(stall.mock.results[0].value as Uint8Array);
    if (!rec.ok) throw new TypeError(rec.error);
    expect(rec.value).toMatchObject({ ID: EVT_ID.F_TRANSLATION, Stall: 1, StreamID: 0x7500, SSV: 0, RnW: 1, InputAddr: 0x4000_0000n });
    const stag = rec.value.STAG;
    expect(e.host.faultStats).toMatchObject({ stalls: 1, pageRequests: 0, logged: 0 });
    // Nothing went to the kernel log: the event was handled as an iopf.
    expect(e.host.log.lines.some((l) => l.includes('event 0x10 received'))).toBe(false);

    // User space reads one single-request group whose grpid is the STAG.
    const groups = e.reader.readAvailable();
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ devId: e.devId, pasid: null, grpid: stag });
    expect(groups[0].faults).toEqual([{ addr: 0x4000_0000n, perm: uapi.IOMMU_PGFAULT_PERM_READ, flags: uapi.IOMMU_PGFAULT_FLAGS_LAST_PAGE }]);

    mapPage(e, 0x4000_0000n, '0123456789abcdefghijklmnopqrstuv');
    e.reader.respond(groups[0], 'success');
    expect(new TextDecoder().decode(await dma)).toBe('ghijklmnopqr');

    // The response went back as CMD_RESUME {SID, STAG, Resp = Retry}.
    expect(resume).toHaveBeenCalledTimes(1);
    const cmd = decodeCommand(resume.mock.results[0].value as Uint8Array);
    if (!cmd.ok) throw new TypeError(cmd.error);
    expect(cmd.value).toMatchObject({ name: 'CMD_RESUME', fields: { SID: 0x7500, STAG: stag, Resp: CMDQ_RESUME_0_RESP.RETRY } });
    expect(e.host.outstandingFaults).toBe(0);
    stall.mockRestore();
    resume.mockRestore();
  });

  it('INVALID terminates the stalled transaction: CMD_RESUME Abort, the DMA rejects with a DmaFault', async () => {
    const e = stallEnv();
    const resume = vi.spyOn(e.codec, 'encodeResume');
    const dma = e.dev.dma.write(0x5000_0000n, new Uint8Array([1, 2, 3])).catch((x: unknown) => x);
    await settle();
    const [g] = e.reader.readAvailable();
    expect(g.faults[0]).toMatchObject({ addr: 0x5000_0000n, perm: uapi.IOMMU_PGFAULT_PERM_WRITE });
    e.reader.respond(g, 'invalid');
    const err = await dma;
    expect(err).toBeInstanceOf(DmaFault);
    expect((err as DmaFault).outcome).toBe('stall-abort');
    expect((err as DmaFault).fault).toMatchObject({ kind: 'stall', reason: EVT_ID.F_TRANSLATION, reasonText: 'F_TRANSLATION', grpid: g.grpid, addr: 0x5000_0000n });
    const cmd = decodeCommand(resume.mock.results[0].value as Uint8Array);
    expect(cmd.ok && cmd.value.fields).toMatchObject({ SID: 0x7500, STAG: g.grpid, Resp: CMDQ_RESUME_0_RESP.ABORT });
    resume.mockRestore();
  });

  it('detaching while stalled aborts the transaction exactly once', async () => {
    const e = stallEnv();
    const dma = e.dev.dma.read(0x6000_0000n, 4).catch((x: unknown) => x);
    await settle();
    const [g] = e.reader.readAvailable();
    e.dev.detachPt();
    expect(((await dma) as DmaFault).outcome).toBe('stall-abort');
    // iommufd_fault_fops_write(): the group was answered automatically, its cookie is gone: EINVAL.
    expect(errCode(() => e.reader.respond(g, 'success'))).toBe('EINVAL');
    expect(e.host.faultStats).toMatchObject({ autoResponses: 1, responses: 0, duplicateResponses: 0 });
    expect(e.host.outstandingFaults).toBe(0);
  });

  it('without a fault queue the device does not stall: the event is logged without Stall', async () => {
    const host = kunpeng();
    const dev = host.device(ACC);
    const fd = host.openIommufd();
    dev.bindIommufd(fd);
    dev.attachPt(fd.ioas.alloc());
    const err = await dev.dma.read(0x4000_0000n, 4).catch((x: unknown) => x);
    expect((err as DmaFault).outcome).toBe('reported');
    await settle();
    expect(host.faultStats.stalls).toBe(0);
    const lines = host.log.lines.filter((l) => l.includes('smmu-acc'));
    expect(lines).toContain('arm-smmu-v3 smmu-acc: event: F_TRANSLATION client: 0000:75:00.0 sid: 0x7500 ssid: 0x0 iova: 0x40000000 ipa: 0x0');
    expect(lines).toContain('arm-smmu-v3 smmu-acc: unpriv data read s1 "Input address caused fault" stag: 0x0');
  });

  it('a device that cannot stall reports the fault even with a fault queue', async () => {
    const e = stallEnv(PCIE);
    const err = await e.dev.dma.read(0x4000_0000n, 4).catch((x: unknown) => x);
    expect((err as DmaFault).outcome).toBe('reported');
    expect(e.host.faultStats.stalls).toBe(0);
  });
});

describe('nested context faults', () => {
  it('a guest CD with V = 0 is recorded as C_BAD_CD and forwarded to the vSMMU as a vEVENT', async () => {
    const host = kunpeng();
    const dev = host.device(ACC);
    const fd = host.openIommufd();
    const devId = dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    // Guest RAM at GPA 0; the CD table at GPA 0x10000 holds one invalid CD.
    const gmem = host.process.mmap(32 * 4096);
    fd.ioas.map({ ioasId: ioas, userVa: gmem, length: BigInt(32 * 4096), iova: 0n });
    const cdGpa = 0x10n * 4096n;
    host.process.poke(gmem + cdGpa, encodeCd({ V: 0, AA64: 1, T0SZ: 25, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASET: 1, ASID: 3 }));
    const s2 = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const viommuId = fd.viommu.alloc({ devId, type: uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwptId: s2 });
    fd.vdevice.alloc({ viommuId, devId, virtId: 0x9n });
    const q = fd.veventq.alloc({ viommuId, type: uapi.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 8 });
    const w = encodeSteWords({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: cdGpa });
    const ste = new Uint8Array(16);
    new DataView(ste.buffer).setBigUint64(0, w[0], true);
    new DataView(ste.buffer).setBigUint64(8, w[1], true);
    dev.attachPt(fd.hwpt.alloc({ devId, ptId: viommuId, data: { type: uapi.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: ste } }));

    const err = await dev.dma.read(0x1000n, 4).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DmaFault);
    expect((err as DmaFault).fault).toMatchObject({ kind: 'dma', reason: EVT_ID.C_BAD_CD, reasonText: 'C_BAD_CD' });
    await settle();
    const events = fd.veventq.read(q.fd);
    expect(events).toHaveLength(1);
    const w0 = eventWords(events[0].data)[0];
    expect(Number(w0 & 0xffn)).toBe(EVT_ID.C_BAD_CD);
    expect(w0 >> 32n).toBe(0x9n);
  });
});
