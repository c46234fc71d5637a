/**
 * The blocked domain at bind (iommu_device_claim_dma_owner -> blocked_domain_attach_device): the DTE of every
 * device of the group becomes amd_iommu_make_clear_dte() (V only) with amd_iommu_update_dte()'s flushes, and
 * DMA before the first attach walks into TV=0 and logs IO_PAGE_FAULT.
 */
import { describe, expect, it } from 'vitest';
import { createHost, DmaFault, uapi, type HostProfile } from '@ioasid/core';
import { AMD_BLOCKED_DOMAIN, CLEAR_DTE, INITIAL_DTE, amdPresetById, isAmdIommuFault, plugin, AMD_EVENT, EVENT_FLAG, type AmdUnit } from './index.js';

const raphael = amdPresetById('amd-zen4-raphael');
/** The Raphael preset with its NVMe SSD and Ethernet controller put in one iommu group. */
const oneGroup: HostProfile = {
  ...raphael,
  devices: raphael.devices.map((d) => (d.bdf === '0000:0b:00.0' ? { ...d, group: 14 } : d)),
};
const NVME = 0x0100;
const ETH = 0x0b00;
const GPU = 0x0a00;

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('the blocked domain at bind (UnitOps.blockingDomain)', () => {
  it('is the driver\'s one static blocked domain', () => {
    const host = createHost({ plugins: [plugin], profile: raphael });
    const unit = host.units[0].ops as AmdUnit;
    const dev = host.device('0000:01:00.0');
    expect(unit.blockingDomain(dev.info)).toBe(AMD_BLOCKED_DOMAIN);
  });

  it('writes the cleared DTE for every device of the group when the first one is bound, and nothing for the second', () => {
    const host = createHost({ plugins: [plugin], profile: oneGroup });
    const unit = host.units[0].ops as AmdUnit;
    const fd = host.openIommufd();
    host.device('0000:01:00.0').bindIommufd(fd);
    expect(unit.deviceTableEntry(NVME)).toEqual(CLEAR_DTE);
    expect(unit.deviceTableEntry(ETH)).toEqual(CLEAR_DTE);
    // A device of another group keeps the boot-time entry.
    expect(unit.deviceTableEntry(GPU)).toEqual(INITIAL_DTE);
    const ops = unit.commandBuffer.map((c) => (c.op === 'INVALIDATE_DEVTAB_ENTRY' ? `DTE ${c.devid.toString(16)}` : c.op));
    expect(ops).toEqual(['DTE 100', 'COMPLETION_WAIT', 'DTE 100', 'COMPLETION_WAIT', 'DTE b00', 'COMPLETION_WAIT', 'DTE b00', 'COMPLETION_WAIT']);
    // The second device of the group only counts as an owner: no DTE is written.
    const n = unit.commandBuffer.length;
    host.device('0000:0b:00.0').bindIommufd(fd);
    expect(unit.commandBuffer.length).toBe(n);
  });

  it('blocks DMA between bind and attach: TV clear logs IO_PAGE_FAULT with DomainID 0', async () => {
    const host = createHost({ plugins: [plugin], profile: raphael });
    const dev = host.device('0000:01:00.0');
    dev.bindIommufd(host.openIommufd());
    const err = await dev.dma.read(0x4000n, 8).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DmaFault);
    const f = (err as DmaFault).fault;
    expect(isAmdIommuFault(f)).toBe(true);
    if (!isAmdIommuFault(f)) return;
    expect(f.event.code).toBe(AMD_EVENT.IO_PAGE_FAULT);
    expect(f.event.devid).toBe(NVME);
    expect(f.domain).toBe(0);
    expect(f.flags & (EVENT_FLAG.PR | EVENT_FLAG.RW)).toBe(0);
    await settle();
    expect(host.log.lines.at(-1)).toBe('vfio-pci 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x4000 flags=0x0000]');
  });

  it('takes the device off its paging domain when re-bound after an unbind that left it attached nowhere', async () => {
    const host = createHost({ plugins: [plugin], profile: raphael });
    const unit = host.units[0].ops as AmdUnit;
    const dev = host.device('0000:01:00.0');
    let fd = host.openIommufd();
    const devId = dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    const hwpt = fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: 0 }).out_hwpt_id;
    dev.attachPt(hwpt);
    expect(unit.deviceTableEntry(NVME)[0] & 2n).toBe(2n);
    dev.detachPt();
    expect(unit.deviceTableEntry(NVME)).toEqual(CLEAR_DTE);
    dev.unbind();
    // The model has no default domain to return to: the DTE stays blocked, and a new bind writes it again.
    expect(unit.deviceTableEntry(NVME)).toEqual(CLEAR_DTE);
    fd = host.openIommufd();
    const n = unit.commandBuffer.length;
    dev.bindIommufd(fd);
    expect(unit.commandBuffer.length).toBe(n + 4);
    expect(unit.deviceTableEntry(NVME)).toEqual(CLEAR_DTE);
    await expect(dev.dma.read(0n, 4)).rejects.toBeInstanceOf(DmaFault);
  });
});
