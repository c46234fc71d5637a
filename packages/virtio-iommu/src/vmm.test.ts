import { describe, expect, it } from 'vitest';
import { DmaFault, IommufdError, createHost } from '@ioasid/core';
import { mockPlugin } from '@ioasid/core/testing';
import { LINUX_DRIVER_FEATURES, VirtioIommuConfigError } from './config.js';
import { decodeFault } from './records.js';
import { encodeProbe, parseProperties } from './requests.js';
import {
  CONFIG_OFFSET,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  VIRTIO_IOMMU_PROBE_T_RESV_MEM,
  VIRTIO_IOMMU_RESV_MEM_T_MSI,
  VIRTIO_IOMMU_RESV_MEM_T_RESERVED,
  VIRTIO_IOMMU_S_FAULT,
  VIRTIO_IOMMU_S_OK,
  VIRTIO_IOMMU_S_RANGE,
  VIRTIO_IOMMU_S_UNSUPP,
} from './spec.js';
import { createVirtioIommu, ramPieces } from './vmm.js';
import { attach, detach, map, mockHost, unmap, vmm } from './__tests__/rig.js';

const EP = 0x10;

describe('createVirtioIommu over iommufd', () => {
  it('defaults the configuration to what every endpoint\'s host IOMMU can do', () => {
    const { dev } = vmm();
    const c = dev.configValues;
    // The mock IOMMU maps 4K and 2M pages and translates 39-bit IOVAs.
    expect(c.page_size_mask).toBe(0x201000n);
    expect(c.input_range).toEqual({ start: 0n, end: (1n << 39n) - 1n });
    expect(c.domain_range).toEqual({ start: 0, end: 0xffff_ffff });
    expect(c.probe_size).toBe(512);
    expect(c.bypass).toBe(1);
    expect(() => vmm({ config: { page_size_mask: 0x200n } })).toThrow(VirtioIommuConfigError);
  });

  it('binds the endpoints and lets unattached endpoints bypass into guest RAM at IOVA = GPA', async () => {
    const { host, dev } = vmm();
    expect(dev.endpointDevice(EP)?.devId).not.toBeNull();
    host.process.poke(dev.guestRam[0].va + 0x5000n, Uint8Array.of(1, 2, 3));
    expect([...(await dev.dma(EP).read(0x5000n, 3))]).toEqual([1, 2, 3]);
  });

  it('turns MAP into IOMMU_IOAS_MAP at a fixed IOVA: the endpoint\'s DMA reaches the guest page the driver mapped', async () => {
    const { host, dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    const ioasId = dev.domain(1)!.handle;
    expect(map(dev, 1, 0x8000_0000n, 0x8000_1fffn, 0x20_0000n)).toBe(VIRTIO_IOMMU_S_OK);
    // The IOAS holds the area at the IOVA the guest chose.
    expect(dev.iommufd.ioas.iovaRanges(ioasId).ranges.length).toBeGreaterThan(0);
    await dev.dma(EP).write(0x8000_1010n, Uint8Array.of(0xde, 0xad));
    expect([...dev.readGuest(0x20_1010n, 2)]).toEqual([0xde, 0xad]);
    expect([...host.process.peek(dev.guestRam[0].va + 0x20_1010n, 2)]).toEqual([0xde, 0xad]);
    // Translated, not bypassing any more.
    await expect(dev.dma(EP).read(0x20_1010n, 2)).rejects.toBeInstanceOf(DmaFault);
  });

  it('maps a guest-physical range that spans two RAM regions piece by piece', async () => {
    const host = mockHost();
    const a = host.process.mmap(1 << 20);
    const b = host.process.mmap(1 << 20);
    const dev = createVirtioIommu(host, {
      endpoints: { [EP]: '0000:00:02.0' },
      guestRam: [
        { gpa: 0n, va: a, size: 1n << 20n },
        { gpa: 1n << 20n, va: b, size: 1n << 20n },
      ],
    });
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(ramPieces(dev.guestRam, 0xff000n, 0x2000n)).toEqual([
      { va: a + 0xff000n, length: 0x1000n },
      { va: b, length: 0x1000n },
    ]);
    expect(ramPieces(dev.guestRam, 0x1ff000n, 0x2000n)).toBeNull();
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 0x40_0000n, 0x40_1fffn, 0xff000n)).toBe(VIRTIO_IOMMU_S_OK);
    host.process.poke(a + 0xffffen, Uint8Array.of(1, 2));
    host.process.poke(b, Uint8Array.of(3, 4));
    expect([...(await dev.dma(EP).read(0x40_0ffen, 4))]).toEqual([1, 2, 3, 4]);
    expect(unmap(dev, 1, 0x40_0000n, 0x40_1fffn)).toBe(VIRTIO_IOMMU_S_OK);
    await expect(dev.dma(EP).read(0x40_1000n, 1)).rejects.toBeInstanceOf(DmaFault);
  });

  it('answers FAULT for a guest-physical range that is not RAM, and keeps MMIO mappings in the device only', () => {
    const { dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 0x1000n, 0x1fffn, 0x8000_0000n)).toBe(VIRTIO_IOMMU_S_FAULT);
    expect(dev.domain(1)!.mappings.size).toBe(0);
    expect(map(dev, 1, 0x1000n, 0x1fffn, 0x8000_0000n, VIRTIO_IOMMU_MAP_F_MMIO | VIRTIO_IOMMU_MAP_F_WRITE)).toBe(VIRTIO_IOMMU_S_OK);
    expect(dev.domain(1)!.mappings.size).toBe(1);
  });

  it('answers RANGE when the host IOMMU refuses the IOVA (beyond its aperture, with QEMU\'s missing checks)', () => {
    const { dev } = vmm({ quirks: 'qemu' });
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 1n << 40n, (1n << 40n) + 0xfffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
  });

  it('UNMAP removes the IOAS area: the endpoint\'s DMA faults and the fault arrives as virtio_iommu_fault', async () => {
    const { dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 0x10_0000n, 0x10_0fffn, 0x3000n, VIRTIO_IOMMU_MAP_F_READ)).toBe(VIRTIO_IOMMU_S_OK);
    await expect(dev.dma(EP).write(0x10_0008n, Uint8Array.of(1))).rejects.toBeInstanceOf(DmaFault);
    expect(unmap(dev, 1, 0x10_0000n, 0x10_0fffn)).toBe(VIRTIO_IOMMU_S_OK);
    await expect(dev.dma(EP).read(0x10_0000n, 4)).rejects.toBeInstanceOf(DmaFault);
    const events = dev.takeEvents().map((e) => decodeFault(e));
    expect(events).toEqual([
      { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_WRITE, endpoint: EP, address: 0x10_0008n, reservedNonZero: false },
      { reason: VIRTIO_IOMMU_FAULT_R_MAPPING, flags: VIRTIO_IOMMU_FAULT_F_ADDRESS | VIRTIO_IOMMU_FAULT_F_READ, endpoint: EP, address: 0x10_0000n, reservedNonZero: false },
    ]);
  });

  it('blocks a detached endpoint when bypass = 0 (fault R_DOMAIN) and destroys the domain\'s IOAS', async () => {
    const { dev } = vmm({ config: { bypass: 0 } });
    dev.negotiate(LINUX_DRIVER_FEATURES);
    await expect(dev.dma(EP).read(0n, 4)).rejects.toBeInstanceOf(DmaFault);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    const ioasId = dev.domain(1)!.handle;
    expect(map(dev, 1, 0x1000n, 0x1fffn, 0x1000n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(detach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(dev.endpointDevice(EP)!.attachedPt()).toBe(0);
    expect(() => dev.iommufd.ioas.iovaRanges(ioasId)).toThrow(IommufdError);
    await expect(dev.dma(EP).read(0x1000n, 4)).rejects.toBeInstanceOf(DmaFault);
    expect(dev.takeEvents().map((e) => decodeFault(e)?.reason)).toEqual([VIRTIO_IOMMU_FAULT_R_DOMAIN, VIRTIO_IOMMU_FAULT_R_DOMAIN]);
  });

  it('switches unattached endpoints when the driver writes bypass, and attaches bypass domains to the identity IOAS', async () => {
    const { dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    dev.writeConfig(CONFIG_OFFSET.bypass, Uint8Array.of(0));
    await expect(dev.dma(EP).read(0n, 1)).rejects.toBeInstanceOf(DmaFault);
    expect(attach(dev, 5, EP, VIRTIO_IOMMU_ATTACH_F_BYPASS)).toBe(VIRTIO_IOMMU_S_OK);
    dev.writeGuest(0x7000n, Uint8Array.of(9));
    expect([...(await dev.dma(EP).read(0x7000n, 1))]).toEqual([9]);
  });

  it('moves an endpoint between domains atomically (implicit detach) and shares a domain between two endpoints', async () => {
    const { dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 0x1000n, 0x1fffn, 0x4000n)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(dev, 1, 0x18)).toBe(VIRTIO_IOMMU_S_OK);
    dev.writeGuest(0x4000n, Uint8Array.of(42));
    expect([...(await dev.dma(0x18).read(0x1000n, 1))]).toEqual([42]);
    expect(attach(dev, 2, EP)).toBe(VIRTIO_IOMMU_S_OK);
    await expect(dev.dma(EP).read(0x1000n, 1)).rejects.toBeInstanceOf(DmaFault);
    expect([...(await dev.dma(0x18).read(0x1000n, 1))]).toEqual([42]);
  });

  it('reports the host device\'s reserved regions in PROBE: the MSI window as MSI, the rest as RESERVED', () => {
    const { dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    const a = dev.request(encodeProbe({ endpoint: 0x18 }), 516);
    expect(a[512]).toBe(VIRTIO_IOMMU_S_OK);
    expect(parseProperties(a.subarray(0, 512))).toEqual([
      { type: VIRTIO_IOMMU_PROBE_T_RESV_MEM, subtype: VIRTIO_IOMMU_RESV_MEM_T_RESERVED, start: 0x4000_0000n, end: 0x4000_ffffn },
      { type: VIRTIO_IOMMU_PROBE_T_RESV_MEM, subtype: VIRTIO_IOMMU_RESV_MEM_T_MSI, start: 0xfee0_0000n, end: 0xfeef_ffffn },
    ]);
    expect(attach(dev, 1, 0x18)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 0x4000_0000n, 0x4000_0fffn, 0n)).toBe(VIRTIO_IOMMU_S_RANGE);
  });

  it('refuses guest RAM that is not page aligned or overlaps', () => {
    expect(() => vmm({ guestRam: [{ gpa: 0x800n, va: 0n, size: 0x1000n }] })).toThrow(/page aligned/);
    expect(() => vmm({ guestRam: [{ gpa: 0n, va: 0n, size: 0x2000n }, { gpa: 0x1000n, va: 0x10000n, size: 0x1000n }] })).toThrow(/overlap/);
  });

  it('uses the write flag alone for a write-only mapping', async () => {
    const { dev } = vmm();
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, EP)).toBe(VIRTIO_IOMMU_S_OK);
    expect(map(dev, 1, 0x1000n, 0x1fffn, 0x9000n, VIRTIO_IOMMU_MAP_F_WRITE)).toBe(VIRTIO_IOMMU_S_OK);
    await dev.dma(EP).write(0x1000n, Uint8Array.of(5));
    expect(dev.readGuest(0x9000n, 1)[0]).toBe(5);
  });

  it('refuses with UNSUPP to put two endpoints of one host IOMMU group in different domains (they cannot be isolated)', () => {
    const host = createHost({
      plugins: [mockPlugin()],
      profile: {
        name: 'one group, two functions',
        units: [{ id: 'mock0', vendor: 'mock', registers: {} }],
        devices: [
          { bdf: '0000:00:05.0', unit: 'mock0', group: 7 },
          { bdf: '0000:00:05.1', unit: 'mock0', group: 7 },
        ],
      },
    });
    const va = host.process.mmap(1 << 20);
    const dev = createVirtioIommu(host, { endpoints: { 0x28: '0000:00:05.0', 0x29: '0000:00:05.1' }, guestRam: [{ gpa: 0n, va, size: 1n << 20n }], config: { bypass: 0 } });
    dev.negotiate(LINUX_DRIVER_FEATURES);
    expect(attach(dev, 1, 0x28)).toBe(VIRTIO_IOMMU_S_OK);
    expect(attach(dev, 2, 0x29)).toBe(VIRTIO_IOMMU_S_UNSUPP);
    expect(dev.domain(2)).toBeUndefined();
    expect(attach(dev, 1, 0x29)).toBe(VIRTIO_IOMMU_S_OK);
  });

  it('hot-plugs an endpoint: bound, unattached (blocked without bypass), refused when its IOMMU cannot map the frozen granule', async () => {
    const host = mockHost();
    const va = host.process.mmap(1 << 20);
    const dev = createVirtioIommu(host, { endpoints: { [EP]: '0000:00:02.0' }, guestRam: [{ gpa: 0n, va, size: 1n << 20n }], config: { bypass: 0 } });
    dev.negotiate(LINUX_DRIVER_FEATURES);
    dev.hotplug(0x18, '0000:00:03.0');
    expect(dev.endpointDevice(0x18)?.devId).not.toBeNull();
    await expect(dev.dma(0x18).read(0n, 1)).rejects.toBeInstanceOf(DmaFault);
    expect(attach(dev, 1, 0x18)).toBe(VIRTIO_IOMMU_S_OK);
    expect(() => dev.hotplug(0x18, '0000:00:03.0')).toThrow(/exists/);
    // The mock IOMMU maps 4K and 2M pages: a guest that booted with either granule takes it, one with 1G pages only does not.
    const fine = createVirtioIommu(mockHost(), { endpoints: {}, guestRam: [], config: { page_size_mask: 0x1000n } });
    expect(() => fine.hotplug(0x10, '0000:00:02.0')).not.toThrow();
    const coarse = createVirtioIommu(mockHost(), { endpoints: {}, guestRam: [], config: { page_size_mask: 0x200000n } });
    expect(() => coarse.hotplug(0x10, '0000:00:02.0')).not.toThrow();
    const odd = createVirtioIommu(mockHost(), { endpoints: {}, guestRam: [], config: { page_size_mask: 0x40000000n } });
    expect(() => odd.hotplug(0x10, '0000:00:02.0')).toThrow(/frozen granule 0x40000000/);
  });
});
