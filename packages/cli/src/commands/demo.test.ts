import { describe, expect, it } from 'vitest';
import { runDemo } from './demo.js';
import { memoryOutput } from '../output.js';

describe('ioasid demo', () => {
  it('runs end to end: IOAS tour, a VT-d PRI fault answered through the pipeline, SMMUv3 nesting with a vEVENT', async () => {
    const out = memoryOutput();
    const { hosts } = await runDemo(out);
    const text = out.text();
    expect(text).toContain('IOMMU_IOAS_ALLOC -> ioas_id 1');
    expect(text).toContain('EEXIST');
    expect(text).toMatch(/boot: DMAR: dmar0: reg_base_addr/);
    expect(text).toContain('"faulted-in page!"');
    expect(text).toMatch(/kernel log: DMAR: \[DMA Write NO_PASID\] Request device/);
    expect(text).toContain('"guest data via S1+S2"');
    expect(text).toMatch(/vEVENT seq 0: event id 0x10, StreamID 0x8/);
    // virtio-iommu: the guest's MAP reaches the device's DMA through IOMMU_IOAS_MAP; the fault comes back on the event queue.
    expect(text).toContain("plan: -device virtio-iommu-pci,granule=4k,aw-bits=39,id=iommu0; libvirt <iommu model='virtio'/>");
    expect(text).toContain('PROBE -> OK: RESV_MEM MSI 0xfee00000-0xfeefffff');
    expect(text).toContain('device DMA read at IOVA 0x80000000 -> "guest page" (guest-physical 0x200000)');
    expect(text).toContain('the guest reads "from the device" at GPA 0x200010');
    expect(text).toContain('"virtio_iommu virtio0: page fault from EP 16 at 0x80000000 [R]"');
    // AMD: four IOMMUs probed from their boot lines, dirty tracking, an IO_PAGE_FAULT line, a mixed fleet.
    expect(text).toContain('boot: AMD-Vi: Extended features (0x841f77e022094ace, 0x0): PPR X2APIC NX IA GA PC SNP');
    expect(text).toMatch(/probe: ivhd3 -> AMD-Vi IOMMU v2/);
    expect(text).toContain('plan (policy host): amd-iommu dma-remap=true,intremap=on,xtsup=true,device-iotlb=true');
    expect(text).toMatch(/IOMMU_HWPT_GET_DIRTY_BITMAP -> 0000(?:1|11)000? \(page\(s\) (?:2, )?3:/);
    expect(text).toMatch(/kernel log: vfio-pci 0000:c1:00\.0: AMD-Vi: Event logged \[IO_PAGE_FAULT domain=0x0001 address=0x20000000 flags=0x0000\]/);
    expect(text).toMatch(/policy baseline\): intel-iommu /);
    expect(hosts[0].process.lockedPages).toBe(0);
    expect(hosts[1].faultStats.duplicateResponses).toBe(0);
    expect(hosts[1].outstandingFaults).toBe(0);
  });
});
