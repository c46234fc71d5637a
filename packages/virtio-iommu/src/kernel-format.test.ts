/**
 * The fault lines checked against an independent source: the format strings of virtio-iommu.c
 * viommu_fault_handler() (dev_err_ratelimited on the virtio device, so the line starts with the driver name
 * KBUILD_MODNAME "virtio_iommu" and the device name) applied by a printf of their own (kernelPrintf), then read
 * back by parseFaultLine. No expected value comes from this package's renderer.
 */
import { describe, expect, it } from 'vitest';
import { PERM_EXEC, PERM_READ, PERM_WRITE, type FailedAccess } from '@ioasid/core/driver';
import { kernelPrintf } from '@ioasid/core/testing';
import { VirtioFaultCodec } from './fault-codec.js';
import { parseFaultLine, renderFaultLine } from './records.js';
import {
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_EXEC,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
  VIRTIO_IOMMU_FAULT_R_UNKNOWN,
} from './spec.js';

// dev_printk's "<driver> <device>: " prefix, then viommu_fault_handler()'s two formats.
const WITH_ADDRESS = '%s %s: %s fault from EP %u at %#llx [%s%s%s]';
const WITHOUT_ADDRESS = '%s %s: %s fault from EP %u';
const DRIVER = 'virtio_iommu';

/** The reason_str of viommu_fault_handler(): R_DOMAIN "domain", R_MAPPING "page", anything else "unknown". */
const REASON_STR: Record<number, string> = {
  [VIRTIO_IOMMU_FAULT_R_DOMAIN]: 'domain',
  [VIRTIO_IOMMU_FAULT_R_MAPPING]: 'page',
  [VIRTIO_IOMMU_FAULT_R_UNKNOWN]: 'unknown',
  7: 'unknown',
};

function expected(reason: number, flags: number, endpoint: number, address: bigint, device: string): string {
  if (!(flags & VIRTIO_IOMMU_FAULT_F_ADDRESS)) return kernelPrintf(WITHOUT_ADDRESS, DRIVER, device, REASON_STR[reason], endpoint);
  return kernelPrintf(
    WITH_ADDRESS,
    DRIVER,
    device,
    REASON_STR[reason],
    endpoint,
    address,
    flags & VIRTIO_IOMMU_FAULT_F_READ ? 'R' : '',
    flags & VIRTIO_IOMMU_FAULT_F_WRITE ? 'W' : '',
    flags & VIRTIO_IOMMU_FAULT_F_EXEC ? 'X' : ''
  );
}

function access(over: Partial<FailedAccess>): FailedAccess {
  return { unit: 0, rid: 0, pasid: -1, addr: 0n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true, ...over };
}

const F_A = VIRTIO_IOMMU_FAULT_F_ADDRESS;
const F_R = VIRTIO_IOMMU_FAULT_F_READ;
const F_W = VIRTIO_IOMMU_FAULT_F_WRITE;
const F_X = VIRTIO_IOMMU_FAULT_F_EXEC;

describe('virtio-iommu fault lines against viommu_fault_handler() formats', () => {
  it.each([
    // endpoint, address, perm, the flags the device sets
    [8, 0x1000n, PERM_READ, F_A | F_R],
    [0x10, 0xfffff000n, PERM_WRITE, F_A | F_W],
    [0x0100, 0x7f_ffff_f000n, PERM_READ | PERM_WRITE, F_A | F_R | F_W],
    [0xffff, 0n, PERM_READ | PERM_EXEC, F_A | F_R | F_X],
  ] as const)('EP %i at %s: the line a failed access makes Linux print, and back', (endpoint, addr, perm, flags) => {
    const codec = new VirtioFaultCodec({ onBlockingDomain: () => false });
    const f = codec.decodeFault(codec.encodeFault(access({ rid: endpoint, addr, perm })), 0);
    const line = expected(VIRTIO_IOMMU_FAULT_R_MAPPING, flags, endpoint, addr, 'virtio0');
    expect(codec.renderLog(f, '', 'virtio0')).toEqual([line]);
    expect(parseFaultLine(line)).toEqual({
      device: 'virtio0',
      reason: VIRTIO_IOMMU_FAULT_R_MAPPING,
      flags,
      endpoint,
      address: addr,
    });
  });

  it.each([
    // reason, flags, endpoint, address
    [VIRTIO_IOMMU_FAULT_R_DOMAIN, F_A | F_W, 3, 0xdead_b000n],
    [VIRTIO_IOMMU_FAULT_R_DOMAIN, 0, 0x20, 0n],
    [VIRTIO_IOMMU_FAULT_R_MAPPING, 0, 0xffff_ffff, 0n],
    [VIRTIO_IOMMU_FAULT_R_UNKNOWN, F_A, 1, 0xffff_ffff_ffff_f000n],
    [VIRTIO_IOMMU_FAULT_R_UNKNOWN, 0, 1, 0n],
  ] as const)('reason %i flags %i EP %i: both formats, every reason string', (reason, flags, endpoint, address) => {
    const line = expected(reason, flags, endpoint, address, 'virtio1');
    expect(renderFaultLine({ reason, flags, endpoint, address }, 'virtio1')).toBe(line);
    expect(parseFaultLine(line)).toEqual({
      device: 'virtio1',
      reason,
      flags,
      endpoint,
      address,
    });
  });

  it('a reason the driver does not know prints as "unknown"', () => {
    expect(renderFaultLine({ reason: 7, flags: F_A | F_R, endpoint: 2, address: 0x2000n }, 'virtio0')).toBe(expected(7, F_A | F_R, 2, 0x2000n, 'virtio0'));
  });
});
