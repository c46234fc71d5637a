import { describe, expect, it } from 'vitest';
import { DmaFault } from '@ioasid/core';
import { LINUX_DRIVER_FEATURES } from './config.js';
import { decodeFault, renderFaultLine } from './records.js';
import { answerStatus, encodeAttach, encodeMap, encodeProbe, parseProperties } from './requests.js';
import { FAULT_SIZE, VIRTIO_IOMMU_FAULT_R_MAPPING, VIRTIO_IOMMU_S_OK } from './spec.js';
import { DESC_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VirtioIommuTransport, VirtqueueDriver, VirtqueueError, layoutAt, virtqueueBytes } from './virtqueue.js';
import { RW, vmm } from './__tests__/rig.js';

const EP = 0x10;
const RING = 0x10_0000n;
const EVT_RING = 0x11_0000n;
const DATA = 0x20_0000n;
const EVT_DATA = 0x30_0000n;

function rig(size = 8) {
  const { host, dev } = vmm();
  dev.negotiate(LINUX_DRIVER_FEATURES);
  const transport = new VirtioIommuTransport(dev, dev);
  const req = layoutAt(RING, size);
  const evt = layoutAt(EVT_RING, size);
  const driver = new VirtqueueDriver(dev, req, { gpa: DATA, size: 0x10000n });
  const events = new VirtqueueDriver(dev, evt, { gpa: EVT_DATA, size: 0x10000n });
  transport.setQueue(0, req);
  transport.setQueue(1, evt);
  return { host, dev, transport, driver, events, req };
}

describe('split virtqueues in guest memory', () => {
  it('computes the ring layout of the specification', () => {
    expect(virtqueueBytes(256)).toEqual({ desc: 4096, avail: 518, used: 2054, total: 4616 + 2054 });
    expect(layoutAt(0x1000n, 4)).toEqual({ size: 4, desc: 0x1000n, avail: 0x1040n, used: 0x1050n });
    expect(() => layoutAt(0n, 3) && new VirtqueueDriver({ readGuest: () => new Uint8Array(0), writeGuest: () => {} }, layoutAt(0n, 3), { gpa: 0n, size: 0n })).toThrow(VirtqueueError);
  });

  it('drives the request handler: ATTACH, MAP and PROBE through the request queue, answers in the used ring', async () => {
    const { dev, transport, driver } = rig();
    const a = driver.add(encodeAttach({ domain: 3, endpoint: EP }), 4);
    const m = driver.add(encodeMap({ domain: 3, virtStart: 0x9000_0000n, virtEnd: 0x9000_0fffn, physStart: 0x5000n, flags: RW }), 4);
    const p = driver.add(encodeProbe({ endpoint: EP }), 512 + 4);
    expect(transport.notify(0)).toBe(3);
    const used = driver.collect();
    expect(used.map((u) => [u.id, u.len, answerStatus(u.data)])).toEqual([
      [a, 4, VIRTIO_IOMMU_S_OK],
      [m, 4, VIRTIO_IOMMU_S_OK],
      [p, 516, VIRTIO_IOMMU_S_OK],
    ]);
    expect(parseProperties(used[2].data.subarray(0, 512)).length).toBe(1);
    dev.writeGuest(0x5000n, Uint8Array.of(0x5a));
    expect([...(await dev.dma(EP).read(0x9000_0000n, 1))]).toEqual([0x5a]);
    // Descriptors went back to the free list: a full queue's worth fits again.
    for (let i = 0; i < 4; i++) driver.add(encodeAttach({ domain: 3, endpoint: EP }), 4);
    expect(transport.notify(0)).toBe(4);
    expect(driver.collect().every((u) => answerStatus(u.data) === VIRTIO_IOMMU_S_OK)).toBe(true);
  });

  it('returns an unknown request with used length 0', () => {
    const { transport, driver } = rig();
    driver.add(Uint8Array.of(0x42, 0, 0, 0), 4);
    transport.notify(0);
    expect(driver.collect()[0]).toMatchObject({ len: 0 });
  });

  it('puts a DMA fault into the next event buffer as struct virtio_iommu_fault, and holds it until a buffer comes', async () => {
    const { dev, transport, driver, events } = rig();
    driver.add(encodeAttach({ domain: 1, endpoint: EP }), 4);
    transport.notify(0);
    await expect(dev.dma(EP).read(0xabc000n, 8)).rejects.toBeInstanceOf(DmaFault);
    expect(dev.pendingEvents).toBe(1);
    events.add(new Uint8Array(0), FAULT_SIZE);
    events.add(new Uint8Array(0), FAULT_SIZE);
    transport.notify(1);
    const got = events.collect();
    expect(got.length).toBe(1);
    expect(got[0].len).toBe(FAULT_SIZE);
    const f = decodeFault(got[0].data)!;
    expect(f).toMatchObject({ reason: VIRTIO_IOMMU_FAULT_R_MAPPING, endpoint: EP, address: 0xabc000n });
    expect(renderFaultLine(f, 'virtio0')).toBe('virtio_iommu virtio0: page fault from EP 16 at 0xabc000 [R]');
    // The second buffer is still available: the next fault goes straight in.
    await expect(dev.dma(EP).write(0xdef000n, Uint8Array.of(1))).rejects.toBeInstanceOf(DmaFault);
    expect(decodeFault(events.collect()[0].data)?.address).toBe(0xdef000n);
  });

  it('stops with DEVICE_NEEDS_RESET on a descriptor loop, an index past the table or an indirect descriptor', () => {
    for (const corrupt of ['loop', 'index', 'indirect'] as const) {
      const { dev, transport, driver, req } = rig(4);
      const head = driver.add(encodeAttach({ domain: 1, endpoint: EP }), 4);
      const d = dev.readGuest(req.desc + BigInt(DESC_SIZE * head), DESC_SIZE);
      const v = new DataView(d.buffer);
      if (corrupt === 'loop') {
        v.setUint16(12, VIRTQ_DESC_F_NEXT, true);
        v.setUint16(14, head, true);
      } else if (corrupt === 'index') {
        v.setUint16(12, VIRTQ_DESC_F_NEXT, true);
        v.setUint16(14, 99, true);
      } else v.setUint16(12, VIRTQ_DESC_F_INDIRECT, true);
      dev.writeGuest(req.desc + BigInt(DESC_SIZE * head), d);
      expect(transport.notify(0)).toBe(0);
      expect(transport.needsReset).toBe(true);
      expect(transport.error).toMatch(/loops|past the table|indirect/);
      expect(transport.notify(0)).toBe(0);
    }
  });

  it('never throws on random descriptor tables and rings: it completes requests or needs a reset', () => {
    let x = 0x1234567;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    for (let round = 0; round < 40; round++) {
      const { dev, transport, driver, req } = rig(8);
      for (let i = 0; i < 3; i++) driver.add(encodeAttach({ domain: 1, endpoint: EP }), 4);
      // Scribble over a few bytes of the descriptor table or the available ring.
      for (let k = 0; k < 4; k++) {
        const base = next() & 1 ? req.desc : req.avail;
        dev.writeGuest(base + BigInt(next() % 128), Uint8Array.of(next() & 0xff));
      }
      expect(() => transport.notify(0)).not.toThrow();
      expect(transport.needsReset || transport.completed <= 8).toBe(true);
    }
  });
});
