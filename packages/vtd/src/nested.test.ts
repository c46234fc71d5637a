import { describe, expect, expectTypeOf, it } from 'vitest';
import { uapi } from '@ioasid/core/driver';
import {
  type IommuHwptVtdS1,
  type IommuHwptVtdS1Invalidate,
  type VtdS1Invalidation,
  type VtdNestedAllocRequest,
  decodeHwptVtdS1,
  decodeHwptVtdS1Invalidate,
  decodeHwptVtdS1InvalidateArray,
  encodeHwptVtdS1,
  encodeHwptVtdS1Invalidate,
  validateHwptVtdS1,
  vtdNestedAttachCheck,
  vtdNestedDomainAlloc,
  vtdS1Levels,
  vtdS1WriteProtectEnabled,
} from './nested.js';

const { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_VTD_S1, IOMMU_VTD_INV_FLAGS_LEAF, IOMMU_VTD_S1_EAFE, IOMMU_VTD_S1_SRE, IOMMU_VTD_S1_WPE } = uapi;
import { U64_MAX } from './registers.js';

// Granite Rapids: nesting, FL5LP, SRS, EAFS.
const GNR = { cap: 0xf9ed008cee780c66n, ecap: 0x3fef9ea6f0efdfn };
// Sapphire Rapids-class: nesting but no FL5LP.
const SPR = { cap: 0x9ed008c40780466n, ecap: 0x3ee9e86f050dfn };
// Arrow Lake-U: scalable mode without NEST.
const ARL = { cap: 0xc9de008cee690462n, ecap: 0x12ca9a00f0ef5en };

const S1: IommuHwptVtdS1 = { flags: 0n, pgtbl_addr: 0x1234000n, addr_width: 48, __reserved: 0 };

function request(over: Partial<VtdNestedAllocRequest> = {}, s1: Partial<IommuHwptVtdS1> = {}): VtdNestedAllocRequest {
  return {
    ...GNR,
    flags: 0,
    dataType: IOMMU_HWPT_DATA_VTD_S1,
    data: encodeHwptVtdS1({ ...S1, ...s1 }),
    parentIsNestParent: true,
    ...over,
  };
}

describe('struct iommu_hwpt_vtd_s1', () => {
  it('is 24 bytes and round-trips', () => {
    const bytes = encodeHwptVtdS1({ flags: 7n, pgtbl_addr: 0xdead000n, addr_width: 57, __reserved: 0 });
    expect(bytes.byteLength).toBe(24);
    expect(decodeHwptVtdS1(bytes)).toEqual({
      ok: true,
      value: { flags: 7n, pgtbl_addr: 0xdead000n, addr_width: 57, __reserved: 0 },
    });
  });

  it('applies iommu_copy_struct_from_user length rules: exactly offsetofend(__reserved) = sizeof = 24 bytes', () => {
    const bytes = encodeHwptVtdS1(S1);
    expect(decodeHwptVtdS1(bytes.subarray(0, 23))).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    // __iommu_copy_struct_from_user(): data_len < src_data->len is EINVAL, even with a zero tail.
    const longer = new Uint8Array(32);
    longer.set(bytes);
    expect(decodeHwptVtdS1(longer)).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
  });
});

describe('nested domain allocation', () => {
  it('accepts a 4-level table on a nesting-capable unit', () => {
    expect(validateHwptVtdS1(request())).toEqual({ ok: true, value: S1 });
    expect(vtdNestedDomainAlloc(request({ flags: IOMMU_HWPT_ALLOC_PASID })).ok).toBe(true);
  });

  it('refuses units without nesting and unsupported alloc flags or data types', () => {
    expect(vtdNestedDomainAlloc(request(ARL))).toMatchObject({ ok: false, error: { errno: 'EOPNOTSUPP' } });
    expect(vtdNestedDomainAlloc(request({ flags: 1 }))).toMatchObject({ ok: false, error: { errno: 'EOPNOTSUPP' } });
    expect(vtdNestedDomainAlloc(request({ dataType: 2 }))).toMatchObject({ ok: false, error: { errno: 'EOPNOTSUPP' } });
  });

  it('needs a nest-parent', () => {
    expect(vtdNestedDomainAlloc(request({ parentIsNestParent: false }))).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
  });

  it('checks the address width at attach', () => {
    expect(validateHwptVtdS1(request({}, { addr_width: 57 }))).toMatchObject({ ok: true });
    expect(validateHwptVtdS1(request(SPR, { addr_width: 57 }))).toMatchObject({
      ok: false,
      error: { errno: 'EINVAL', reason: expect.stringContaining('5-level paging not supported') },
    });
    expect(validateHwptVtdS1(request({}, { addr_width: 39 }))).toMatchObject({
      ok: false,
      error: { errno: 'EINVAL', reason: 'Invalid stage-1 address width 39' },
    });
  });

  it('checks SRE against ECAP.SRS and EAFE against ECAP.EAFS', () => {
    const noSrs = { ...GNR, ecap: GNR.ecap & ~(1n << 31n) };
    const noEafs = { ...GNR, ecap: GNR.ecap & ~(1n << 34n) };
    expect(vtdNestedAttachCheck({ ...S1, flags: IOMMU_VTD_S1_SRE }, noSrs)).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    expect(vtdNestedAttachCheck({ ...S1, flags: IOMMU_VTD_S1_EAFE }, noEafs)).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    expect(vtdNestedAttachCheck({ ...S1, flags: IOMMU_VTD_S1_SRE | IOMMU_VTD_S1_EAFE }, GNR).ok).toBe(true);
  });

  it('lets unknown flags, __reserved and a misaligned root through, as mainline does', () => {
    const loose = request({}, { flags: 1n << 5n, __reserved: 1, pgtbl_addr: 0x1234567n });
    expect(validateHwptVtdS1(loose).ok).toBe(true);
  });

  it('rejects them in strict mode', () => {
    expect(validateHwptVtdS1(request({}, { flags: 1n << 5n }), { strict: true })).toMatchObject({ ok: false, error: { errno: 'EOPNOTSUPP' } });
    expect(validateHwptVtdS1(request({}, { __reserved: 1 }), { strict: true })).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    expect(validateHwptVtdS1(request({}, { pgtbl_addr: 0x1234567n }), { strict: true })).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
  });

  it('derives the paging depth and write protection', () => {
    expect(vtdS1Levels({ ...S1, addr_width: 57 })).toBe(5);
    expect(vtdS1Levels(S1)).toBe(4);
    expect(vtdS1WriteProtectEnabled({ ...S1, flags: IOMMU_VTD_S1_WPE })).toBe(false);
    expect(vtdS1WriteProtectEnabled({ ...S1, flags: IOMMU_VTD_S1_WPE | IOMMU_VTD_S1_SRE })).toBe(true);
  });
});

describe('struct iommu_hwpt_vtd_s1_invalidate', () => {
  const entry = { addr: 0x10000n, npages: 16n, flags: IOMMU_VTD_INV_FLAGS_LEAF, __reserved: 0 };

  it('is 24 bytes and decodes a range', () => {
    const bytes = encodeHwptVtdS1Invalidate(entry);
    expect(bytes.byteLength).toBe(24);
    expect(decodeHwptVtdS1Invalidate(bytes)).toEqual({
      ok: true,
      value: { ...entry, leaf: true, scope: { kind: 'range', start: 0x10000n, last: 0x1ffffn } },
    });
  });

  it('treats addr 0 with npages U64_MAX as everything', () => {
    const r = decodeHwptVtdS1Invalidate(encodeHwptVtdS1Invalidate({ ...entry, addr: 0n, npages: U64_MAX, flags: 0 }));
    expect(r).toMatchObject({ ok: true, value: { leaf: false, scope: { kind: 'all' } } });
  });

  it('has the kernel errnos', () => {
    const dec = (e: Partial<typeof entry>) => decodeHwptVtdS1Invalidate(encodeHwptVtdS1Invalidate({ ...entry, ...e }));
    expect(dec({ flags: 2 })).toMatchObject({ ok: false, error: { errno: 'EOPNOTSUPP' } });
    expect(dec({ __reserved: 1 })).toMatchObject({ ok: false, error: { errno: 'EOPNOTSUPP' } });
    expect(dec({ addr: 0x10001n })).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    expect(dec({ addr: 0x1000n, npages: U64_MAX })).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    expect(dec({ npages: 0n })).toMatchObject({ ok: true, value: { scope: { kind: 'none' } } });
    expect(dec({ addr: 0xffff_ffff_ffff_f000n, npages: 2n })).toMatchObject({
      ok: true,
      value: { scope: { kind: 'range', last: U64_MAX } },
    });
  });

  it('walks an array and stops at the first bad entry with the handled count', () => {
    const good = encodeHwptVtdS1Invalidate(entry);
    const bad = encodeHwptVtdS1Invalidate({ ...entry, flags: 4 });
    const data = new Uint8Array(72);
    data.set(good, 0);
    data.set(good, 24);
    data.set(bad, 48);
    const r = decodeHwptVtdS1InvalidateArray(data, 24, 3);
    expect(r.processed).toBe(2);
    expect(r.entries).toHaveLength(2);
    expect(r.error).toMatchObject({ index: 2, errno: 'EOPNOTSUPP' });
  });

  it('applies the entry_len rules', () => {
    const good = encodeHwptVtdS1Invalidate(entry);
    expect(decodeHwptVtdS1InvalidateArray(good, 16, 1).error).toMatchObject({ index: 0, errno: 'EINVAL' });
    const wide = new Uint8Array(64);
    wide.set(good, 0);
    wide.set(good, 32);
    // iommu_copy_struct_from_user_array(): an entry_len past sizeof is EINVAL, whatever the tail holds.
    expect(decodeHwptVtdS1InvalidateArray(wide, 32, 2).error).toMatchObject({ index: 0, errno: 'EINVAL' });
    expect(decodeHwptVtdS1InvalidateArray(good, 24, 2).error).toMatchObject({ index: 1, errno: 'EFAULT' });
    expect(decodeHwptVtdS1InvalidateArray(good, 24, 1, 1).error).toMatchObject({ errno: 'EINVAL' });
    expect(decodeHwptVtdS1InvalidateArray(new Uint8Array(0), 24, 0)).toEqual({ processed: 0, entries: [] });
  });
});

describe('the declared uAPI shapes match core\'s uapi layouts', () => {
  // Compile-time half (npm run typecheck): each declared interface and the value type core's layout decodes are
  // assignable both ways, so a field added, renamed or retyped on either side fails the build.
  expectTypeOf<IommuHwptVtdS1>().toExtend<uapi.ValueOfLayout<typeof uapi.iommu_hwpt_vtd_s1>>();
  expectTypeOf<uapi.ValueOfLayout<typeof uapi.iommu_hwpt_vtd_s1>>().toExtend<IommuHwptVtdS1>();
  expectTypeOf<IommuHwptVtdS1Invalidate>().toExtend<uapi.ValueOfLayout<typeof uapi.iommu_hwpt_vtd_s1_invalidate>>();
  expectTypeOf<uapi.ValueOfLayout<typeof uapi.iommu_hwpt_vtd_s1_invalidate>>().toExtend<IommuHwptVtdS1Invalidate>();
  expectTypeOf<VtdS1Invalidation>().toExtend<IommuHwptVtdS1Invalidate>();

  it('names exactly the fields of struct iommu_hwpt_vtd_s1 and struct iommu_hwpt_vtd_s1_invalidate', () => {
    const s1: IommuHwptVtdS1 = uapi.iommu_hwpt_vtd_s1.zero();
    const inv: IommuHwptVtdS1Invalidate = uapi.iommu_hwpt_vtd_s1_invalidate.zero();
    expect(Object.keys(s1)).toEqual(['flags', 'pgtbl_addr', 'addr_width', '__reserved']);
    expect(Object.keys(inv)).toEqual(['addr', 'npages', 'flags', '__reserved']);
    const entry = decodeHwptVtdS1Invalidate(encodeHwptVtdS1Invalidate({ addr: 0x5000n, npages: 2n, flags: IOMMU_VTD_INV_FLAGS_LEAF, __reserved: 0 }));
    expect(entry.ok && entry.value).toMatchObject({ addr: 0x5000n, npages: 2n, flags: IOMMU_VTD_INV_FLAGS_LEAF, __reserved: 0, leaf: true });
  });
});
