import { describe, expect, it } from 'vitest';
import { createHost, uapi } from '@ioasid/core';
import { createAmdViPlugin, plugin } from './index.js';
import { decodeDte } from './dte.js';
import { CLEAR_DTE, INITIAL_DTE } from './device-table.js';
import { gcr3Levels } from './dte-build.js';
import { AmdPagingDomain, AmdUnit } from './unit.js';
import { ANY_VIOMMU_TYPE, guestDteBytes, nestProfile } from './__tests__/nest-profile.js';
import type { AmdCommand } from './commands.js';
import { iommufdCtx } from '@ioasid/core/internal';

const PAGE = 4096n;
/** 0000:0a:00.0 of the nest profile: ATS, PRI, 16 PASID bits. */
const DEVID = 0x0a00;
const ALL = 0x7ffffffffffff000n;

const invDte = (devid = DEVID): AmdCommand => ({ op: 'INVALIDATE_DEVTAB_ENTRY', devid });
const iotlbAll = (devid = DEVID): AmdCommand => ({ op: 'INVALIDATE_IOTLB_PAGES', devid, maxPending: 0, queueId: devid, pasid: 0, gn: false, size: true, address: ALL });
const flushDom = (domainId: number, pasid = -1): AmdCommand => ({ op: 'INVALIDATE_IOMMU_PAGES', domainId, pasid: pasid < 0 ? 0 : pasid, gn: pasid >= 0, pde: true, size: true, address: ALL });
/** A COMPLETION_WAIT, whatever its semaphore value. */
const WAIT = { op: 'COMPLETION_WAIT' };
const shape = (cmds: readonly AmdCommand[]) => cmds.map((c) => (c.op === 'COMPLETION_WAIT' ? WAIT : c));

function env(p = plugin) {
  const host = createHost({ plugins: [p], profile: nestProfile });
  const unit = host.units[0].ops as AmdUnit;
  const fd = host.openIommufd();
  const dev = host.device('0000:0a:00.0');
  const devId = dev.bindIommufd(fd);
  /** Commands queued by bind (the blocked domain's DTE). */
  const bound = unit.commandBuffer.length;
  const ioas = fd.ioas.alloc();
  const hwpt = (flags: number) => fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags }).out_hwpt_id;
  const domainOf = (id: number) => (iommufdCtx(fd).objects.peek(id) as unknown as { ops: AmdPagingDomain }).ops;
  const dte = () => decodeDte(unit.deviceTableEntry(DEVID));
  const since = (n: number) => shape(unit.commandBuffer.slice(n));
  return { host, unit, fd, dev, devId, ioas, hwpt, domainOf, dte, since, bound };
}

describe('device table entries for every domain kind (set_dte_entry and friends)', () => {
  it('holds the boot-time entry (V, TV, no permission) before bind, and the blocked domain\'s cleared DTE after it', () => {
    const host = createHost({ plugins: [plugin], profile: nestProfile });
    const unit = host.units[0].ops as AmdUnit;
    const dev = host.device('0000:0a:00.0');
    expect(unit.deviceTableEntry(DEVID)).toEqual(INITIAL_DTE);
    expect(unit.commandBuffer).toEqual([]);
    dev.bindIommufd(host.openIommufd());
    // iommu_device_claim_dma_owner(): the group moves to the blocked domain, whose attach writes
    // amd_iommu_make_clear_dte() through amd_iommu_update_dte() (no ATS yet: no IOTLB flush).
    expect(unit.deviceTableEntry(DEVID)).toEqual(CLEAR_DTE);
    const d = decodeDte(unit.deviceTableEntry(DEVID));
    expect([d.V, d.TV, d.Mode, d.IR, d.IW, d.DomainID]).toEqual([1, 0, 0, 0, 0, 0]);
    expect(shape(unit.commandBuffer)).toEqual([invDte(), WAIT, invDte(), WAIT]);
    expect(unit.deviceTable.domainOf(DEVID)).toBeNull();
    // Other DeviceIDs keep the boot-time entry.
    expect(unit.deviceTableEntry(0xffff)).toEqual(INITIAL_DTE);
  });

  it('v1: TV, Mode = levels, host root, IR/IW, DomainID = the domain, I for an ATS device; no guest fields', () => {
    const e = env();
    const h = e.hwpt(0);
    e.dev.attachPt(h);
    const d = e.dte();
    const dom = e.domainOf(h);
    expect([d.V, d.TV, d.Mode, d.IR, d.IW, d.I, d.HAD]).toEqual([1, 1, 3, 1, 1, 1, 0]);
    expect(d.hostRoot).toBe(BigInt(dom.pt.rootPfn) * PAGE);
    expect(d.DomainID).toBe(dom.tag);
    expect([d.GV, d.GIoV, d.GLX, d.PPR, d.gcr3Root]).toEqual([0, 0, 0, 0, 0n]);
    // update_dte256 (flush, wait), device_flush_dte (DTE, then the IOTLB of the ATS device), wait.
    expect(e.since(e.bound)).toEqual([invDte(), WAIT, invDte(), iotlbAll(), WAIT]);
  });

  it('v1 with dirty tracking on: HAD = 3 once enabled', () => {
    const e = env();
    const h = e.hwpt(uapi.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    e.fd.run(uapi.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: h, flags: uapi.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    e.dev.attachPt(h);
    expect(e.dte().HAD).toBe(3);
  });

  it('v2 (a PASID-capable domain): Mode 0, GV + GIoV with a GCR3 table whose PASID 0 entry is the v2 root, per-device DomainID, PPR', () => {
    const e = env();
    const h = e.hwpt(uapi.IOMMU_HWPT_ALLOC_PASID);
    const dom = e.domainOf(h);
    expect(dom.mode).toBe('v2');
    e.dev.attachPt(h);
    const d = e.dte();
    expect([d.V, d.TV, d.Mode, d.HostPageTableRootPtr, d.GV, d.GIoV, d.IR, d.IW, d.I, d.PPR, d.GuestPagingMode]).toEqual([1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0]);
    // get_gcr3_levels(min(65535 (PASmax 15), 65536 (16 PASID bits))): two GCR3 levels.
    expect(d.GLX).toBe(gcr3Levels(65535));
    expect(d.GLX).toBe(1);
    // The GCR3 table's own domain ID, not the domain's.
    expect(d.DomainID).not.toBe(dom.tag);
    expect(d.DomainID).toBeGreaterThan(0);
    // GCR3 level 1 entry 0 -> level 0 table; its entry 0 = the v2 root with GCR3_VALID.
    const mem = e.host.mem;
    const l1 = mem.readU64(Number(d.gcr3Root >> 12n), 0);
    expect(l1 & 1n).toBe(1n);
    expect(mem.readU64(Number(l1 >> 12n), 0)).toBe((BigInt(dom.pt.rootPfn) << 12n) | 1n);
    expect(e.since(e.bound)).toEqual([invDte(), WAIT, invDte(), iotlbAll(), WAIT]);
  });

  it('blocked (detach): the cleared DTE (V only) after detach_device flushed the domain; v2 frees the GCR3 table', () => {
    const e = env();
    const v1 = e.hwpt(0);
    e.dev.attachPt(v1);
    const tag1 = e.domainOf(v1).tag;
    let n = e.unit.commandBuffer.length;
    e.dev.detachPt();
    expect(e.unit.deviceTableEntry(DEVID)).toEqual(CLEAR_DTE);
    const d = e.dte();
    expect([d.V, d.TV, d.Mode, d.IR, d.IW, d.DomainID]).toEqual([1, 0, 0, 0, 0, 0]);
    expect(e.unit.deviceTable.domainOf(DEVID)).toBeNull();
    // detach_device(): cleared DTE (ATS already off: no IOTLB flush), the domain flushed; then the blocked domain's own update.
    expect(e.since(n)).toEqual([invDte(), WAIT, invDte(), WAIT, flushDom(tag1), WAIT, invDte(), WAIT, invDte(), WAIT]);

    const v2 = e.hwpt(uapi.IOMMU_HWPT_ALLOC_PASID);
    const tables = e.host.mem;
    e.dev.attachPt(v2);
    const gdom = e.dte().DomainID;
    const gcr3 = Number(e.dte().gcr3Root >> 12n);
    n = e.unit.commandBuffer.length;
    e.dev.detachPt();
    expect(e.unit.deviceTableEntry(DEVID)).toEqual(CLEAR_DTE);
    // v2: the flush goes by the GCR3 domain ID with GN; destroy_gcr3_table() clears GCR3[0] and flushes PASID 0.
    expect(e.since(n)).toEqual([invDte(), WAIT, invDte(), WAIT, flushDom(gdom, 0), WAIT, flushDom(gdom, 0), WAIT, invDte(), WAIT, invDte(), WAIT]);
    expect(tables.readU64(gcr3, 0)).toBe(0n);
  });

  it('replace v1 -> v2: detach_device() of the old domain first, then the new DTE and a flush of the DomainID it overwrote', () => {
    const e = env();
    const v1 = e.hwpt(0);
    const v2 = e.hwpt(uapi.IOMMU_HWPT_ALLOC_PASID);
    e.dev.attachPt(v1);
    const n = e.unit.commandBuffer.length;
    e.dev.attachPt(v2);
    const tag1 = e.domainOf(v1).tag;
    expect(e.dte().GV).toBe(1);
    // The cleared DTE has DomainID 0, so set_dte_entry() flushes no old domain ID.
    expect(e.since(n)).toEqual([invDte(), WAIT, invDte(), WAIT, flushDom(tag1), WAIT, invDte(), WAIT, invDte(), iotlbAll(), WAIT]);
    expect(e.unit.deviceTable.domainOf(DEVID)).toBe(e.domainOf(v2));
  });

  it('nested (the posted series): the parent v1 fields with the hDomID, GV, and only PPR, GLX, GIoV, GCR3 root and paging mode from the guest', () => {
    const e = env(createAmdViPlugin({ nestedOnViommu: true }));
    const parent = e.hwpt(uapi.IOMMU_HWPT_ALLOC_NEST_PARENT);
    e.dev.attachPt(parent);
    const viommu = e.fd.run(uapi.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: e.devId, type: ANY_VIOMMU_TYPE, hwpt_id: parent }).out_viommu_id;
    e.fd.run(uapi.iommu_vdevice_alloc, 'VDEVICE_ALLOC', { viommu_id: viommu, dev_id: e.devId, virt_id: 1n });
    const guest = guestDteBytes({ V: 1, GV: 1, GIoV: 1, PPR: 1, GLX: 1, gcr3Root: 0x5000n, DomainID: 0x33, IR: 0, IW: 0, IV: 1, IntCtl: 2, SA: 1, GuestPagingMode: 0 });
    const p = e.host.process.mmap(32);
    e.host.process.poke(p, guest);
    const n = e.fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: e.devId, pt_id: viommu, data_type: uapi.IOMMU_HWPT_DATA_AMD_GUEST, data_len: 32, data_uptr: p }).out_hwpt_id;
    const hdom = (iommufdCtx(e.fd).objects.peek(n) as unknown as { ops: { tag: number } }).ops.tag;
    const pdom = e.domainOf(parent);
    const before = e.unit.commandBuffer.length;
    e.dev.attachPt(n);
    const d = e.dte();
    expect([d.V, d.TV, d.Mode, d.IR, d.IW, d.I]).toEqual([1, 1, pdom.pt.levels, 1, 1, 1]);
    expect(d.hostRoot).toBe(BigInt(pdom.pt.rootPfn) * PAGE);
    expect(d.DomainID).toBe(hdom);
    expect(hdom).not.toBe(0x33);
    expect([d.GV, d.GIoV, d.PPR, d.GLX, d.GuestPagingMode]).toEqual([1, 1, 1, 1, 0]);
    expect(d.gcr3Root).toBe(0x5000n);
    // The guest's interrupt and suppress bits are not taken.
    expect([d.IV, d.IntCtl, d.SA]).toEqual([0, 0, 0]);
    // nested_attach_device(): amd_iommu_update_dte() only (old GV 0: flushed), no domain flush.
    expect(e.since(before)).toEqual([invDte(), WAIT, invDte(), iotlbAll(), WAIT]);
    // Leaving the nested domain: detach_device() of the parent (still dev_data->domain), then blocked.
    e.dev.detachPt();
    expect(e.unit.deviceTableEntry(DEVID)).toEqual(CLEAR_DTE);
  });
});
