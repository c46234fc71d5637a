/**
 * The event lines of amd_iommu_report_page_fault() / iommu_print_event() checked against their format
 * strings applied by a printf of their own (kernelPrintf), not against this package's renderer.
 */
import { describe, expect, it } from 'vitest';
import { kernelPrintf } from '@ioasid/core/testing';
import { AMD_EVENT, decodeEvent, encodeEvent } from './records.js';
import { renderAmdEventLines } from './logs.js';

// iommu.c: pr_fmt / dev_fmt "AMD-Vi: "; pci_err() and dev_err() put "<driver> <dev_name>: " first.
const KNOWN = '%s %04x:%02x:%02x.%d: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x%04x address=0x%llx flags=0x%04x]';
const UNKNOWN = 'AMD-Vi: Event logged [IO_PAGE_FAULT device=%04x:%02x:%02x.%x domain=0x%04x address=0x%llx flags=0x%04x]';
const ILL_DEV = 'iommu ivhd%d: AMD-Vi: Event logged [ILLEGAL_DEV_TABLE_ENTRY device=%04x:%02x:%02x.%x pasid=0x%05x address=0x%llx flags=0x%04x]';

/** PCI_BUS_NUM, PCI_SLOT, PCI_FUNC of a DeviceID. */
function bdf(devid: number): [number, number, number] {
  return [devid >> 8, (devid >> 3) & 0x1f, devid & 7];
}

function event(code: number, devid: number, pasidOrDomain: number, flags: number, address: bigint) {
  const r = decodeEvent(encodeEvent({ code, devid, pasidOrDomain, flags, address }));
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('AMD-Vi event lines against the kernel formats', () => {
  it.each([
    [0x0100, 0x000e, 0x0020, 0xfffd0000n],
    [0xc2f7, 0xffff, 0x0fff, 0xffff_ffff_ffff_f000n],
    [0x0000, 0x0000, 0x0000, 0n],
  ] as const)('IO_PAGE_FAULT devid %#x domain %#x', (devid, domain, flags, address) => {
    const e = event(AMD_EVENT.IO_PAGE_FAULT, devid, domain, flags, address);
    expect(renderAmdEventLines(e, { era: 'v6', deviceKnown: true, driver: 'vfio-pci', segment: 0 })).toEqual([
      kernelPrintf(KNOWN, 'vfio-pci', 0, ...bdf(devid), domain, address, flags),
    ]);
    expect(renderAmdEventLines(e, { era: 'v6', deviceKnown: false, segment: 1 })).toEqual([kernelPrintf(UNKNOWN, 1, ...bdf(devid), domain, address, flags)]);
  });

  it('ILLEGAL_DEV_TABLE_ENTRY through the IOMMU device (6.x)', () => {
    const e = event(AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY, 0x0318, 0x12345, 0x0100, 0x1000n);
    expect(renderAmdEventLines(e, { era: 'v6', ivhd: 2, segment: 0 })).toEqual([kernelPrintf(ILL_DEV, 2, 0, ...bdf(0x0318), 0x12345, 0x1000n, 0x0100)]);
  });
});
