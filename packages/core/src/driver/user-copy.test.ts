import { describe, expect, it } from 'vitest';
import { iommu_hwpt_vtd_s1, iommu_hwpt_vtd_s1_invalidate, iommu_viommu_arm_smmuv3_invalidate, IOMMU_HWPT_DATA_VTD_S1 } from '../uapi/iommufd.js';
import { copyStructFromUser, iommuCopyStructFromFullUserArray, iommuCopyStructFromUser, iommuCopyStructFromUserArray } from './user-copy.js';

const bytes = (n: number, fill = 0): Uint8Array => new Uint8Array(n).fill(fill);

describe('copy_struct_from_user', () => {
  it('zero-extends a shorter user struct', () => {
    const r = copyStructFromUser(8, Uint8Array.of(1, 2, 3));
    expect(r).toEqual({ ok: true, value: Uint8Array.of(1, 2, 3, 0, 0, 0, 0, 0) });
  });

  it('accepts a longer struct whose tail is zero and truncates it', () => {
    const r = copyStructFromUser(4, Uint8Array.of(1, 2, 3, 4, 0, 0));
    expect(r).toEqual({ ok: true, value: Uint8Array.of(1, 2, 3, 4) });
  });

  it('gives E2BIG for a non-zero byte past the kernel struct', () => {
    const r = copyStructFromUser(4, Uint8Array.of(1, 2, 3, 4, 0, 9));
    expect(r.ok ? 'ok' : r.error.errno).toBe('E2BIG');
  });
});

describe('iommu_copy_struct_from_user (iommu_hwpt_vtd_s1, min_last __reserved)', () => {
  // sizeof(struct iommu_hwpt_vtd_s1) = 24 = offsetofend(__reserved).
  const errnoOf = (data: Uint8Array, type = IOMMU_HWPT_DATA_VTD_S1): string => {
    const r = iommuCopyStructFromUser(iommu_hwpt_vtd_s1, { type, data }, IOMMU_HWPT_DATA_VTD_S1, '__reserved');
    return r.ok ? 'ok' : r.error.errno;
  };

  it('takes exactly sizeof(*kdst) bytes', () => {
    const data = iommu_hwpt_vtd_s1.encode(iommu_hwpt_vtd_s1.make({ pgtbl_addr: 0x1000n, addr_width: 48 }));
    const r = iommuCopyStructFromUser(iommu_hwpt_vtd_s1, { type: IOMMU_HWPT_DATA_VTD_S1, data }, IOMMU_HWPT_DATA_VTD_S1, '__reserved');
    expect(r.ok && iommu_hwpt_vtd_s1.decode(r.value)).toMatchObject({ pgtbl_addr: 0x1000n, addr_width: 48 });
  });

  it('rejects another data type, fewer bytes than offsetofend(min_last) and more than sizeof with EINVAL', () => {
    expect(errnoOf(bytes(24), 2)).toBe('EINVAL');
    expect(errnoOf(bytes(23))).toBe('EINVAL');
    // data_len < src_data->len: even an all-zero tail is refused before copy_struct_from_user runs.
    expect(errnoOf(bytes(32))).toBe('EINVAL');
    expect(errnoOf(bytes(24))).toBe('ok');
  });

  it('zero-extends between offsetofend(min_last) and sizeof', () => {
    // min_last = addr_width (offsetofend 20): 20 bytes are enough and __reserved reads as 0.
    const data = bytes(20, 0xff);
    const r = iommuCopyStructFromUser(iommu_hwpt_vtd_s1, { type: 1, data }, 1, 'addr_width');
    expect(r.ok && iommu_hwpt_vtd_s1.decode(r.value)).toMatchObject({ addr_width: 0xffff_ffff, __reserved: 0 });
  });
});

describe('iommu_copy_struct_from_user_array (iommu_hwpt_vtd_s1_invalidate)', () => {
  const array = (entryLen: number, entryNum: number, data = bytes(entryLen * entryNum)) => ({ type: 0, entryLen, entryNum, data });
  const errnoOf = (a: ReturnType<typeof array>, index: number, type = 0): string => {
    const r = iommuCopyStructFromUserArray(iommu_hwpt_vtd_s1_invalidate, a, type, index, '__reserved');
    return r.ok ? 'ok' : r.error.errno;
  };

  it('copies entry `index` at entry_len * index', () => {
    const data = bytes(48);
    data[24] = 0x42; // addr of entry 1
    const r = iommuCopyStructFromUserArray(iommu_hwpt_vtd_s1_invalidate, array(24, 2, data), 0, 1, '__reserved');
    expect(r.ok && iommu_hwpt_vtd_s1_invalidate.decode(r.value).addr).toBe(0x42n);
  });

  it('applies the single-struct length rules to entry_len, and EINVAL for an index past entry_num', () => {
    expect(errnoOf(array(24, 1), 0, 1)).toBe('EINVAL');
    expect(errnoOf(array(16, 1), 0)).toBe('EINVAL');
    expect(errnoOf(array(32, 1), 0)).toBe('EINVAL');
    expect(errnoOf(array(24, 1), 1)).toBe('EINVAL');
    expect(errnoOf(array(24, 2, bytes(30)), 1)).toBe('EFAULT');
  });
});

describe('iommu_copy_struct_from_full_user_array (16-byte SMMUv3 commands)', () => {
  const layout = iommu_viommu_arm_smmuv3_invalidate;
  const run = (entryLen: number, data: Uint8Array, entryNum = data.byteLength / entryLen, type = 1) =>
    iommuCopyStructFromFullUserArray(layout, { type, entryLen, entryNum, data }, 1);

  it('zero-extends short entries and truncates zero-tailed long ones', () => {
    const r = run(8, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0));
    expect(r.ok && r.value.map((e) => Array.from(e))).toEqual([
      [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]);
    const long = bytes(48);
    long[24] = 7;
    const r2 = run(24, long);
    expect(r2.ok && r2.value[1][0]).toBe(7);
  });

  it('E2BIG for a non-zero byte past 16 in any entry; EINVAL for another type or no entries', () => {
    const long = bytes(48);
    long[24 + 20] = 1;
    const r = run(24, long);
    expect(r.ok ? 'ok' : r.error.errno).toBe('E2BIG');
    const wrongType = run(16, bytes(16), 1, 0);
    expect(wrongType.ok ? 'ok' : wrongType.error.errno).toBe('EINVAL');
    const none = run(16, bytes(0), 0);
    expect(none.ok ? 'ok' : none.error.errno).toBe('EINVAL');
  });
});
