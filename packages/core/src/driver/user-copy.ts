/**
 * Copying a vendor's uAPI payload in from user space, as include/linux/iommu.h and uaccess.h do it, so that
 * every vendor applies the same size rules (the kernel's `iommu_copy_struct_from_user` family). Core has
 * already read the user buffer (`data_uptr`, `data_len`) into bytes: an `IommuUserData` is
 * `struct iommu_user_data` and an `IommuUserDataArray` is `struct iommu_user_data_array`, with the bytes
 * in place of the user pointer. Each helper returns the kernel-side image (`layout.size` bytes, zero-extended),
 * which the caller decodes with the layout from `uapi` (core is the only uAPI header).
 */
import type { StructLayout, FieldSpec } from '../uapi/struct.js';
import type { VendorError } from './fault.js';
import { err, ok, type Result } from './result.js';

/** struct iommu_user_data: the payload type and the bytes user space passed. */
export interface IommuUserData {
  /** `type`: the IOMMU_HWPT_DATA_* / IOMMU_VIOMMU_TYPE_* value the user says the bytes are. */
  readonly type: number;
  /** The user buffer's bytes (`uptr`, `len` bytes long), as user space wrote them. */
  readonly data: Uint8Array;
}

/** struct iommu_user_data_array: `entryNum` entries of `entryLen` bytes each. */
export interface IommuUserDataArray {
  /** `type`: the IOMMU_HWPT_INVALIDATE_DATA_* value of every entry. */
  readonly type: number;
  /** `entry_len`: bytes per entry in user space (may differ from the kernel's struct size). */
  readonly entryLen: number;
  /** `entry_num`: entries in the array. */
  readonly entryNum: number;
  /** The array's bytes, `entryNum * entryLen` long. */
  readonly data: Uint8Array;
}

/** A copy helper's answer: the kernel-side struct image, or the errno the copy fails with (EINVAL, E2BIG, EFAULT). */
export type UserCopyResult = Result<Uint8Array, VendorError>;


function fault(errno: VendorError['errno'], reason: string): { readonly ok: false; readonly error: VendorError } {
  return err({ errno, reason });
}

/**
 * uaccess.h copy_struct_from_user(dst, ksize, src, usize): a shorter user struct is zero-extended to
 * `ksize`; a longer one is accepted only when every byte past `ksize` is zero, else E2BIG.
 */
export function copyStructFromUser(ksize: number, src: Uint8Array, what = 'struct'): UserCopyResult {
  for (let i = ksize; i < src.byteLength; i++) {
    if (src[i] !== 0) return fault('E2BIG', `${what}: byte ${i} past the ${ksize}-byte kernel struct is not zero`);
  }
  const dst = new Uint8Array(ksize);
  dst.set(src.byteLength > ksize ? src.subarray(0, ksize) : src);
  return ok(dst);
}

/**
 * iommu.h __iommu_copy_struct_from_user() behind iommu_copy_struct_from_user(kdst, user_data, data_type,
 * min_last): a type other than `dataType` → EINVAL; fewer bytes than offsetofend(min_last) or more than
 * sizeof(*kdst) → EINVAL; then copy_struct_from_user() zero-extends the rest.
 */
export function iommuCopyStructFromUser<F extends readonly FieldSpec[]>(
  layout: StructLayout<F>,
  user: IommuUserData,
  dataType: number,
  minLast: F[number][0],
): UserCopyResult {
  if (user.type !== dataType) return fault('EINVAL', `${layout.name}: data type ${user.type} is not ${dataType}`);
  const minLen = layout.offsetofend(minLast);
  const len = user.data.byteLength;
  if (len < minLen) return fault('EINVAL', `${layout.name}: ${len} bytes is shorter than the ${minLen} up to ${minLast}`);
  if (len > layout.size) return fault('EINVAL', `${layout.name}: ${len} bytes is longer than the kernel's ${layout.size}-byte struct`);
  return copyStructFromUser(layout.size, user.data, layout.name);
}

/** The bytes of entry `index`, or EFAULT when they lie past what user space passed. */
function entryBytes(array: IommuUserDataArray, index: number): Result<Uint8Array, VendorError> {
  const start = array.entryLen * index;
  const end = start + array.entryLen;
  if (end > array.data.byteLength) return fault('EFAULT', `entry ${index} lies past the user buffer`);
  return ok(array.data.subarray(start, end));
}

/**
 * iommu.h __iommu_copy_struct_from_user_array() behind iommu_copy_struct_from_user_array(kdst, user_array,
 * data_type, index, min_last): one entry, with the rules of iommuCopyStructFromUser() applied to `entryLen`.
 */
export function iommuCopyStructFromUserArray<F extends readonly FieldSpec[]>(
  layout: StructLayout<F>,
  array: IommuUserDataArray,
  dataType: number,
  index: number,
  minLast: F[number][0],
): UserCopyResult {
  if (!(index >= 0 && index < array.entryNum)) return fault('EINVAL', `${layout.name}: entry ${index} of ${array.entryNum}`);
  if (array.type !== dataType) return fault('EINVAL', `${layout.name}: data type ${array.type} is not ${dataType}`);
  const minLen = layout.offsetofend(minLast);
  if (array.entryLen < minLen) return fault('EINVAL', `${layout.name}: entry_len ${array.entryLen} is shorter than the ${minLen} up to ${minLast}`);
  if (array.entryLen > layout.size) return fault('EINVAL', `${layout.name}: entry_len ${array.entryLen} is longer than the kernel's ${layout.size}-byte struct`);
  const bytes = entryBytes(array, index);
  if (!bytes.ok) return bytes;
  return copyStructFromUser(layout.size, bytes.value, layout.name);
}

/**
 * iommu.h iommu_copy_struct_from_full_user_array(kdst, kdst_entry_size, user_array, data_type): every entry,
 * each through copy_struct_from_user() (shorter entries zero-extended, a non-zero byte past the kernel's
 * struct → E2BIG); a type other than `dataType` or no entries → EINVAL. Nothing is handled when any entry fails.
 */
export function iommuCopyStructFromFullUserArray<F extends readonly FieldSpec[]>(
  layout: StructLayout<F>,
  array: IommuUserDataArray,
  dataType: number,
): Result<Uint8Array[], VendorError> {
  if (array.type !== dataType) return fault('EINVAL', `${layout.name}: data type ${array.type} is not ${dataType}`);
  if (array.entryNum === 0) return fault('EINVAL', `${layout.name}: no entries`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < array.entryNum; i++) {
    const bytes = entryBytes(array, i);
    if (!bytes.ok) return bytes;
    const copy = copyStructFromUser(layout.size, bytes.value, `${layout.name} entry ${i}`);
    if (!copy.ok) return copy;
    out.push(copy.value);
  }
  return ok(out);
}
