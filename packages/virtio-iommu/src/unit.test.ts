import { describe, expect, it } from 'vitest';
import { createHost, uapi, IommufdError } from '@ioasid/core';
import { FailNth, NO_FAULT_INJECTION, WalkResult } from '@ioasid/core/driver';
import { VirtioIommuVendor } from './vendor.js';
import { VirtioIommuUnit, type VirtioPagingDomain } from './unit.js';
import { cloudHypervisor, presets, qemuQ35, qemuQ35Vfio } from './presets.js';
import { plugin } from './plugin.js';
import { decodeRequest } from './requests.js';
import { TAIL_SIZE, VIRTIO_IOMMU_S_NOMEM, VIRTIO_IOMMU_S_OK, VIRTIO_IOMMU_T_ATTACH, VIRTIO_IOMMU_T_MAP } from './spec.js';
import { iommufdCtx } from '@ioasid/core/internal';

const vendor = new VirtioIommuVendor();

function rig(profile = qemuQ35) {
  const host = createHost({ plugins: [plugin], profile, allowUnsafeInterrupts: true });
  const fd = host.openIommufd();
  const dev = host.device(profile.devices[0].bdf);
  const devId = dev.bindIommufd(fd);
  const unit = dev.unitOps as VirtioIommuUnit;
  return { host, fd, dev, devId, unit };
}

/** The rig with a byte 0x42 mapped at IOVA 0x10_0000 of an IOAS the device is attached to. */
function attachedRig() {
  const r = rig();
  const ioas = r.fd.ioas.alloc();
  const va = r.host.process.mmap(0x1000);
  r.host.process.poke(va, Uint8Array.of(0x42));
  r.fd.ioas.map({ ioasId: ioas, userVa: va, length: 0x1000n, iova: 0x10_0000n });
  r.dev.attachPt(ioas);
  return { ...r, ioas };
}

describe('virtio-iommu as the host IOMMU: probe', () => {
  it('refuses what Linux\'s probe refuses, naming the field', () => {
    expect(vendor.decodeRegisters({ features: '0x4', page_size_mask: '0x1000' })).toMatchObject({ ok: false, error: expect.stringMatching(/VERSION_1.*-ENODEV/) });
    expect(vendor.decodeRegisters({ features: '0x100000004', page_size_mask: '0x0' })).toMatchObject({ ok: false, error: expect.stringMatching(/page_size_mask/) });
    expect(vendor.decodeRegisters({ features: '0x100000004', page_size_mask: '0x1000', idr0: 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/unknown key 'idr0'/) });
    expect(vendor.decodeRegisters({ features: 'zz', page_size_mask: '0x1000' })).toMatchObject({ ok: false, error: expect.stringMatching(/^features:/) });
  });

  it('derives the capabilities: host stage only, coherent, no nesting, PASID, PRI or dirty tracking', () => {
    const d = vendor.decodeRegisters(qemuQ35Vfio.units[0].registers);
    if (!d.ok) throw new Error(d.error);
    expect(d.value.caps).toMatchObject({
      vendor: 'virtio-iommu',
      hostStage: { inputBits: [39], outputBits: 64, pageSizes: 0x40201000n, accessDirty: false },
      userStage: null,
      nesting: false,
      pasidBits: 0,
      pri: false,
      dirtyTracking: false,
      coherent: true,
    });
    expect(d.value.hwId).toBe('virtio-iommu (INPUT_RANGE DOMAIN_RANGE MAP_UNMAP PROBE MMIO BYPASS_CONFIG VERSION_1): page mask 0x40201000, 39-bit input, domains 1-4294967295, PROBE 512 bytes, boot bypass');
  });

  it('prints the driver\'s boot lines: input address bits (order_base_2 of the aperture end) and the page mask', () => {
    expect(rig().host.log.lines).toEqual(expect.arrayContaining(['virtio_iommu virtio0: input address: 39 bits', 'virtio_iommu virtio0: page mask: 0xfffffffffffff000']));
    // cloud-hypervisor offers no INPUT_RANGE: the aperture is the whole 64-bit space.
    expect(rig(cloudHypervisor).host.log.lines).toEqual(expect.arrayContaining(['virtio_iommu virtio0: input address: 64 bits', 'virtio_iommu virtio0: page mask: 0x201000']));
  });

  it('answers GET_HW_INFO with type NONE, as mainline (no hw_info op) and refuses nesting, dirty tracking and PASID', () => {
    const { fd, devId } = rig();
    expect(fd.getHwInfo(devId).type).toBe(uapi.IOMMU_HW_INFO_TYPE_NONE);
    const ioas = fd.ioas.alloc();
    for (const flags of [uapi.IOMMU_HWPT_ALLOC_NEST_PARENT, uapi.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, uapi.IOMMU_HWPT_ALLOC_PASID]) {
      expect(() => fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags })).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP' }));
    }
    expect(() => fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: uapi.IOMMU_HWPT_ALLOC_NEST_PARENT })).toThrow(IommufdError);
  });
});

describe('virtio-iommu as the host IOMMU: domains are requests to the device', () => {
  it('keeps the first domain ID for the identity domain with BYPASS_CONFIG and allocates from the next (the bind\'s blocking domain first)', () => {
    const { fd, devId, unit, dev } = rig();
    const ioas = fd.ioas.alloc();
    const h1 = fd.hwpt.alloc({ devId, ptId: ioas });
    const h2 = fd.hwpt.alloc({ devId, ptId: ioas });
    expect(unit.probe.identityDomain).toBe(0);
    // iommufd_device_bind claimed the DMA ownership: the empty blocking domain took ID 1 and holds the endpoint.
    expect(unit.device.domainOf(dev.info.rid)?.id).toBe(1);
    const tags = [h1, h2].map((h) => (iommufdCtx(fd).objects.peek(h) as unknown as { tag: number }).tag);
    expect(tags).toEqual([2, 3]);
  });

  it('sends ATTACH on attach, MAP and UNMAP for the IOAS, and DMA goes through the device\'s mappings', async () => {
    const { host, fd, dev, unit } = rig();
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(0x4000);
    host.process.poke(va + 0x1000n, Uint8Array.of(0x11, 0x22));
    dev.attachPt(ioas);
    // The bind's ATTACH to the blocking domain, then the attach's.
    expect(unit.requests.map((r) => r.type)).toEqual(['PROBE', 'ATTACH', 'ATTACH']);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 0x4000n, iova: 0x10_0000n });
    // One MAP per physically contiguous run of the user pages, covering the four pages.
    const maps = unit.requests.slice(3);
    expect(maps.every((r) => r.type === 'MAP' && r.status === VIRTIO_IOMMU_S_OK)).toBe(true);
    const ranges = maps.map((r) => decodeRequest(r.bytes)).map((d) => (d.ok && d.request.type === 3 ? [d.request.virtStart, d.request.virtEnd] : []));
    expect(ranges[0][0]).toBe(0x10_0000n);
    expect(ranges.at(-1)![1]).toBe(0x10_3fffn);
    expect([...(await dev.dma.read(0x10_1000n, 2))]).toEqual([0x11, 0x22]);
    fd.ioas.unmap(ioas, 0x10_0000n, 0x4000n);
    expect(unit.requests.at(-1)).toMatchObject({ type: 'UNMAP', status: VIRTIO_IOMMU_S_OK });
    await expect(dev.dma.read(0x10_1000n, 2)).rejects.toThrow(/faulted/);
    expect(unit.device.domains.every((d) => d.mappings.size === 0)).toBe(true);
  });

  it('replays the mappings of a domain when its first endpoint attaches, and the device detaches implicitly on replace', () => {
    const { host, fd, dev, devId, unit } = rig();
    const ioas = fd.ioas.alloc();
    const h1 = fd.hwpt.alloc({ devId, ptId: ioas });
    const va = host.process.mmap(0x2000);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 0x2000n, iova: 0x20_0000n });
    // No endpoint yet: the driver keeps the mapping in its tree and sends nothing (the ATTACH is the bind's, to the blocking domain).
    expect(unit.requests.map((r) => r.type)).toEqual(['PROBE', 'ATTACH']);
    dev.attachPt(h1);
    expect(unit.requests.map((r) => r.type)).toEqual(['PROBE', 'ATTACH', 'ATTACH', 'MAP']);
    const d1 = (iommufdCtx(fd).objects.peek(h1) as unknown as { ops: VirtioPagingDomain }).ops;
    expect(unit.device.domainOf(dev.info.rid)?.id).toBe(d1.tag);
    const h2 = fd.hwpt.alloc({ devId, ptId: ioas });
    dev.attachPt(h2);
    const d2 = (iommufdCtx(fd).objects.peek(h2) as unknown as { ops: VirtioPagingDomain }).ops;
    // One ATTACH moves the endpoint; the old domain is gone from the device, kept by the driver.
    expect(unit.requests.slice(4).map((r) => r.type)).toEqual(['ATTACH', 'MAP']);
    expect(unit.device.domain(d1.tag)).toBeUndefined();
    expect(d1.pt.mappings.size).toBe(1);
    expect(unit.device.domainOf(dev.info.rid)?.id).toBe(d2.tag);
    // Detach moves the endpoint to the empty blocking domain: one more ATTACH, and d2 is gone from the device.
    dev.detachPt();
    expect(unit.requests.at(-1)?.type).toBe('ATTACH');
    const blocking = unit.device.domainOf(dev.info.rid);
    expect(blocking?.id).not.toBe(d2.tag);
    expect(blocking?.mappings.size).toBe(0);
    expect(unit.device.domain(d2.tag)).toBeUndefined();
    // Destroying the detached domain sends nothing: no endpoint of it is left in the device.
    const sent = unit.requests.length;
    fd.destroy(h2);
    expect(unit.requests.length).toBe(sent);
  });

  it('blocks a detached endpoint even when the device bypasses unattached ones (boot bypass): an empty domain, not DETACH', async () => {
    const { host, fd, dev, unit } = rig(qemuQ35);
    expect(unit.device.unattachedBypass).toBe(true);
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(0x1000);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 0x1000n, iova: 0x10_0000n });
    dev.attachPt(ioas);
    await dev.dma.read(0x10_0000n, 1);
    dev.detachPt();
    expect(unit.requests.some((r) => r.type === 'DETACH')).toBe(false);
    await expect(dev.dma.read(0x10_0000n, 1)).rejects.toThrow(/faulted/);
    // A second attach leaves the blocking domain with one ATTACH and replays the IOAS's mappings.
    dev.attachPt(ioas);
    expect([...(await dev.dma.read(0x10_0000n, 1))]).toHaveLength(1);
  });

  it('sends nothing for an attach that fails after the checks: the device stays on the old domain (fail-nth at attach_dev)', async () => {
    const { host, fd, dev, devId, unit, ioas } = attachedRig();
    const h2 = fd.hwpt.alloc({ devId, ptId: ioas });
    const before = unit.requests.length;
    const onDevice = unit.device.domainOf(dev.info.rid)?.id;
    host.injector = new FailNth(1, ['attach']);
    expect(() => dev.attachPt(h2)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    host.injector = NO_FAULT_INJECTION;
    expect(unit.requests.length).toBe(before);
    expect(unit.device.domainOf(dev.info.rid)?.id).toBe(onDevice);
    expect([...(await dev.dma.read(0x10_0000n, 1))]).toEqual([0x42]);
  });

  it('puts the endpoint back on its old domain when the device refuses the replay of the new one', async () => {
    const { host, fd, dev, devId, unit } = attachedRig();
    const ioas2 = fd.ioas.alloc();
    const h2 = fd.hwpt.alloc({ devId, ptId: ioas2 });
    fd.ioas.map({ ioasId: ioas2, userVa: host.process.mmap(0x1000), length: 0x1000n, iova: 0x20_0000n });
    const d2 = (iommufdCtx(fd).objects.peek(h2) as unknown as { ops: VirtioPagingDomain }).ops;
    // The device refuses MAPs into d2 (a VMM out of memory): the replay of d2 fails after its ATTACH.
    const request = unit.device.request.bind(unit.device);
    unit.device.request = (out: Uint8Array, inLen: number) => {
      const d = decodeRequest(out);
      if (out[0] !== VIRTIO_IOMMU_T_MAP || !d.ok || d.request.type !== VIRTIO_IOMMU_T_MAP || d.request.domain !== d2.tag) return request(out, inLen);
      const answer = new Uint8Array(inLen);
      answer[inLen - TAIL_SIZE] = VIRTIO_IOMMU_S_NOMEM;
      return answer;
    };
    expect(() => dev.attachPt(h2)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    unit.device.request = request;
    const types = unit.requests.slice(-4).map((r) => r.type);
    // ATTACH to d2, its refused replay, then ATTACH back to the old domain and its replay.
    expect(types).toEqual(['ATTACH', 'MAP', 'ATTACH', 'MAP']);
    expect(unit.requests.slice(-4).map((r) => r.status)).toEqual([VIRTIO_IOMMU_S_OK, VIRTIO_IOMMU_S_NOMEM, VIRTIO_IOMMU_S_OK, VIRTIO_IOMMU_S_OK]);
    expect(unit.device.domainOf(dev.info.rid)?.id).not.toBe(d2.tag);
    expect([...(await dev.dma.read(0x10_0000n, 1))]).toEqual([0x42]);
  });

  it('binding parks the endpoint on the blocking domain, and a bind the driver cannot do that for fails', () => {
    // iommufd_device_bind -> iommu_device_claim_dma_owner: an empty paging domain (no blocked domain op)
    // and an ATTACH to it; the second device of another group shares the model's one blocking domain.
    const { fd, dev, unit, host } = rig();
    expect(unit.requests.map((r) => r.type)).toEqual(['PROBE', 'ATTACH']);
    const blocking = unit.device.domainOf(dev.info.rid);
    expect(blocking?.mappings.size).toBe(0);
    const other = host.device(qemuQ35.devices[1].bdf);
    other.bindIommufd(fd);
    expect(unit.device.domainOf(other.info.rid)?.id).toBe(blocking?.id);

    // No domain ID left for the blocking domain: viommu_domain_alloc_paging's ida_alloc_range, ENOSPC.
    const full = structuredClone(qemuQ35);
    full.units[0].registers = { ...full.units[0].registers, domain_start: 0, domain_end: 0 };
    const f = createHost({ plugins: [plugin], profile: full, allowUnsafeInterrupts: true });
    const d = f.device(full.devices[0].bdf);
    expect(() => d.bindIommufd(f.openIommufd())).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(d.devId).toBeNull();

    // The device refuses the ATTACH: the bind fails with its status, and nothing is bound.
    const g = createHost({ plugins: [plugin], profile: qemuQ35, allowUnsafeInterrupts: true });
    const gd = g.device(qemuQ35.devices[0].bdf);
    const gu = gd.unitOps as VirtioIommuUnit;
    const request = gu.device.request.bind(gu.device);
    gu.device.request = (out: Uint8Array, inLen: number) => {
      if (out[0] !== VIRTIO_IOMMU_T_ATTACH) return request(out, inLen);
      const answer = new Uint8Array(inLen);
      answer[inLen - TAIL_SIZE] = VIRTIO_IOMMU_S_NOMEM;
      return answer;
    };
    const gfd = g.openIommufd();
    expect(() => gd.bindIommufd(gfd)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(gd.devId).toBeNull();
    gu.device.request = request;
    expect(() => gd.bindIommufd(gfd)).not.toThrow();
  });

  it('unmaps like Linux: whole mappings, the UNMAP widened to the end of the last one; a split is refused', () => {
    const { fd, dev, devId, unit } = rig();
    const ioas = fd.ioas.alloc();
    const h = fd.hwpt.alloc({ devId, ptId: ioas });
    dev.attachPt(h);
    const pt = (iommufdCtx(fd).objects.peek(h) as unknown as { ops: VirtioPagingDomain }).ops.pt;
    expect(pt.map(0x100, 0x500, 1, 3)).toBe(0);
    expect(pt.map(0x101, 0x600, 2, 3)).toBe(0);
    expect(pt.map(0x101, 0x700, 1, 3)).toBe(-17);
    // A range starting inside a mapping removes nothing.
    expect(pt.unmap(0x102, 1)).toBe(0);
    expect(pt.mappings.size).toBe(2);
    // Two pages asked, three removed: the second mapping goes whole.
    expect(pt.unmap(0x100, 2)).toBe(3);
    const last = decodeRequest(unit.requests.at(-1)!.bytes);
    expect(last).toMatchObject({ ok: true, request: { type: 4, virtStart: 0x100000n, virtEnd: 0x102fffn } });
    const wr = new WalkResult();
    expect(pt.walk(0x101, wr)).toBe(false);
  });

  it('refuses an MMIO mapping unless F_MMIO was negotiated (map_flags)', () => {
    const { fd, dev, devId } = rig(cloudHypervisor);
    const ioas = fd.ioas.alloc();
    const h = fd.hwpt.alloc({ devId, ptId: ioas });
    dev.attachPt(h);
    const pt = (iommufdCtx(fd).objects.peek(h) as unknown as { ops: VirtioPagingDomain }).ops.pt;
    expect(pt.map(0x100, 0x500, 1, 1 | (1 << 4))).toBe(-22);
    expect(pt.map(0x100, 0x500, 1, 1)).toBe(0);
  });

  it('ships presets for QEMU and cloud-hypervisor that all decode', () => {
    expect(presets.map((p) => p.name)).toHaveLength(4);
    for (const p of presets) expect(vendor.decodeRegisters(p.units[0].registers).ok).toBe(true);
  });
});
