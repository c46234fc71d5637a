import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { ERRNO } from '../uapi/errno.js';
import { bareFixture, encodeCmd, rawIoctl } from '../__tests__/helpers.js';
import type { FieldSpec, StructLayout } from '../uapi/struct.js';

/** [ioctl, layout, expected sizeof, expected min_size] for every command, from the kernel header. */
const COMMANDS = [
  ['IOMMU_DESTROY', U.IOMMU_DESTROY, U.iommu_destroy, 8, 8],
  ['IOMMU_IOAS_ALLOC', U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, 12, 12],
  ['IOMMU_IOAS_ALLOW_IOVAS', U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, 24, 24],
  ['IOMMU_IOAS_COPY', U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, 40, 40],
  ['IOMMU_IOAS_IOVA_RANGES', U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, 32, 32],
  ['IOMMU_IOAS_MAP', U.IOMMU_IOAS_MAP, U.iommu_ioas_map, 40, 40],
  ['IOMMU_IOAS_UNMAP', U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, 24, 24],
  ['IOMMU_OPTION', U.IOMMU_OPTION, U.iommu_option, 24, 24],
  ['IOMMU_VFIO_IOAS', U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, 12, 12],
  ['IOMMU_HWPT_ALLOC', U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, 48, 24],
  ['IOMMU_GET_HW_INFO', U.IOMMU_GET_HW_INFO, U.iommu_hw_info, 40, 32],
  ['IOMMU_HWPT_SET_DIRTY_TRACKING', U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, 16, 16],
  ['IOMMU_HWPT_GET_DIRTY_BITMAP', U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, 48, 48],
  ['IOMMU_HWPT_INVALIDATE', U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, 32, 32],
  ['IOMMU_FAULT_QUEUE_ALLOC', U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, 16, 16],
  ['IOMMU_IOAS_MAP_FILE', U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file, 40, 40],
  ['IOMMU_VIOMMU_ALLOC', U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, 40, 24],
  ['IOMMU_VDEVICE_ALLOC', U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, 24, 24],
  ['IOMMU_IOAS_CHANGE_PROCESS', U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process, 8, 8],
  ['IOMMU_VEVENTQ_ALLOC', U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, 32, 28],
  ['IOMMU_HW_QUEUE_ALLOC', U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, 40, 40],
  ['IOMMU_IOAS_NOIOMMU_GET_PA', U.IOMMU_IOAS_NOIOMMU_GET_PA, U.iommu_ioas_noiommu_get_pa, 40, 40],
] as const;

describe('ioctl numbers and struct sizes', () => {
  it('numbers every command 0x3b00 | nr from 0x80 to 0x95', () => {
    COMMANDS.forEach(([, ioctl], i) => expect(ioctl).toBe(0x3b80 + i));
  });
  it.each(COMMANDS)('%s has the kernel struct size', (_n, _i, layout, size) => {
    expect(layout.size).toBe(size);
  });
  it('lays out fields at the kernel offsets', () => {
    expect(U.iommu_option.offsetof('op')).toBe(8);
    expect(U.iommu_option.offsetof('object_id')).toBe(12);
    expect(U.iommu_option.offsetof('val64')).toBe(16);
    expect(U.iommu_hwpt_alloc.offsetof('data_uptr')).toBe(32);
    expect(U.iommu_hwpt_alloc.offsetof('fault_id')).toBe(40);
    expect(U.iommu_hw_info.offsetof('out_max_pasid_log2')).toBe(28);
    expect(U.iommu_hw_info.offsetof('out_capabilities')).toBe(32);
    expect(U.iommu_hwpt_invalidate.offsetof('entry_num')).toBe(24);
    expect(U.iommu_viommu_alloc.offsetof('data_uptr')).toBe(32);
    expect(U.iommu_veventq_alloc.offsetof('out_veventq_fd')).toBe(24);
    expect(U.iommu_hwpt_pgfault.size).toBe(40);
    expect(U.iommu_hwpt_pgfault.offsetof('addr')).toBe(24);
    expect(U.iommu_hwpt_pgfault.offsetof('cookie')).toBe(36);
    expect(U.iommu_hw_info_arm_smmuv3.offsetof('iidr')).toBe(32);
    // The Tegra241 CMDQV payloads of include/uapi/linux/iommufd.h.
    expect(U.iommu_hw_info_tegra241_cmdqv.size).toBe(8);
    expect(U.iommu_hw_info_tegra241_cmdqv.offsetof('log2vsids')).toBe(6);
    expect(U.iommu_viommu_tegra241_cmdqv.offsetof('out_vintf_mmap_length')).toBe(8);
    expect(U.iommu_vevent_tegra241_cmdqv.size).toBe(16);
  });
});

describe('TEST_LENGTH on every command', () => {
  it.each(COMMANDS)('%s: min - 1 is EINVAL, a non-zero tail E2BIG, a zero tail as exact', (_name, ioctl, layout, size, min) => {
    const { fd } = bareFixture();
    // min_size - 1 -> EINVAL
    const short = new Uint8Array(size + 8);
    new DataView(short.buffer).setUint32(0, min - 1, true);
    expect(fd.ioctl(ioctl, short)).toBe(-ERRNO.EINVAL);

    // One byte larger than the kernel struct with a non-zero tail -> E2BIG
    const big = new Uint8Array(size + 1);
    new DataView(big.buffer).setUint32(0, size + 1, true);
    big[size] = 0xaa;
    expect(fd.ioctl(ioctl, big)).toBe(-ERRNO.E2BIG);

    // A zero tail behaves as the exact size
    const exact = encodeCmd(layout as StructLayout<readonly FieldSpec[]>, {});
    const rcExact = fd.ioctl(ioctl, exact);
    const { fd: fd2 } = bareFixture();
    const longer = new Uint8Array(size + 1);
    longer.set(encodeCmd(layout as StructLayout<readonly FieldSpec[]>, {}));
    new DataView(longer.buffer).setUint32(0, size + 1, true);
    expect(fd2.ioctl(ioctl, longer)).toBe(rcExact);
    expect(rcExact).not.toBe(-ERRNO.E2BIG);
    expect(rcExact).not.toBe(-ERRNO.ENOTTY);
  });

  it('zero-extends a struct between min_size and sizeof', () => {
    const { fd } = bareFixture();
    // HWPT_ALLOC with the 24-byte first ABI version: fields after __reserved read as zero.
    const buf = new Uint8Array(24);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, 24, true);
    dv.setUint32(8, 77, true); // dev_id that does not exist
    expect(fd.ioctl(U.IOMMU_HWPT_ALLOC, buf)).toBe(-ERRNO.ENOENT);
  });

  it('copies outputs back only up to the caller size', () => {
    const { fd } = bareFixture();
    // IOAS_ALLOC at exactly 12 bytes writes out_ioas_id; the caller's bytes past its size are neither read
    // (a non-zero tail there is no E2BIG: it lies outside the struct) nor written.
    const buf = new Uint8Array(16).fill(0);
    new DataView(buf.buffer).setUint32(0, 12, true);
    buf.fill(0xa5, 12);
    expect(fd.ioctl(U.IOMMU_IOAS_ALLOC, buf)).toBe(0);
    expect(new DataView(buf.buffer).getUint32(8, true)).toBe(1);
    expect(Array.from(buf.subarray(12))).toEqual([0xa5, 0xa5, 0xa5, 0xa5]);
  });
});

describe('dispatch errors', () => {
  it('returns ENOTTY for unknown requests', () => {
    const { fd } = bareFixture();
    const buf = new Uint8Array(64);
    new DataView(buf.buffer).setUint32(0, 64, true);
    expect(fd.ioctl(0x3b7f, buf)).toBe(-ERRNO.ENOTTY);
    expect(fd.ioctl(0x3b96, buf)).toBe(-ERRNO.ENOTTY);
    expect(fd.ioctl(0x3ba0, buf)).toBe(-ERRNO.ENOTTY);
    expect(fd.ioctl(0x4b85, buf)).toBe(-ERRNO.ENOTTY);
  });
  it('returns EFAULT when the buffer is shorter than its size field', () => {
    const { fd } = bareFixture();
    const buf = new Uint8Array(8);
    new DataView(buf.buffer).setUint32(0, 40, true);
    expect(fd.ioctl(U.IOMMU_IOAS_MAP, buf)).toBe(-ERRNO.EFAULT);
    expect(fd.ioctl(U.IOMMU_IOAS_MAP, new Uint8Array(2))).toBe(-ERRNO.EFAULT);
  });
  it('never throws for garbage input', () => {
    const { fd } = bareFixture();
    for (let nr = 0x80; nr <= 0x95; nr++) {
      for (let trial = 0; trial < 50; trial++) {
        const buf = new Uint8Array(64);
        for (let i = 0; i < buf.length; i++) buf[i] = (Math.imul(trial + 1, 2654435761) >>> (i % 24)) & 0xff;
        new DataView(buf.buffer).setUint32(0, 8 + ((trial * 7) % 56), true);
        expect(() => fd.ioctl(0x3b00 | nr, buf)).not.toThrow();
      }
    }
  });
  it('validates reserved fields and flags of device-side commands before lookups', () => {
    const { fd } = bareFixture();
    expect(rawIoctl(fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { __reserved: 1 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { data_len: 4 })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { data_type: 1 })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: 5 })[0]).toBe(-ERRNO.ENOENT);
    expect(rawIoctl(fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { flags: 2 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { __reserved: [0, 1, 0] })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: 1 })[0]).toBe(-ERRNO.ENOENT);
    expect(rawIoctl(fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { flags: 2 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { flags: 2 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, { entry_num: 1 })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, { flags: 1 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: 0 })[0]).toBe(-ERRNO.EOPNOTSUPP);
    expect(rawIoctl(fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: 1, dev_id: 3 })[0]).toBe(-ERRNO.ENOENT);
    expect(rawIoctl(fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: 3 })[0]).toBe(-ERRNO.ENOENT);
    expect(rawIoctl(fd, U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { type: 1, veventq_depth: 0 })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { type: 1, veventq_depth: 4, viommu_id: 9 })[0]).toBe(-ERRNO.ENOENT);
    expect(rawIoctl(fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, { type: 1, length: 0n })[0]).toBe(-ERRNO.EINVAL);
    expect(rawIoctl(fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, { type: 1, length: 16n, nesting_parent_iova: U.U64_MAX })[0]).toBe(-ERRNO.EOVERFLOW);
  });
});
