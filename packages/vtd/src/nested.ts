/**
 * VT-d nesting uAPI payloads: `struct iommu_hwpt_vtd_s1` (IOMMU_HWPT_ALLOC with
 * IOMMU_HWPT_DATA_VTD_S1) and `struct iommu_hwpt_vtd_s1_invalidate` (IOMMU_HWPT_INVALIDATE with
 * IOMMU_HWPT_INVALIDATE_DATA_VTD_S1), checked the way the intel-iommu driver checks them.
 *
 * Where the kernel checks what (mainline nested.c / pasid.c):
 * - intel_iommu_domain_alloc_nested(): nested_supported() and hwpt flags ⊆ {ALLOC_PASID}, else
 *   EOPNOTSUPP; data type must be VTD_S1 (EOPNOTSUPP); the parent must be a second-stage paging
 *   domain allocated with NEST_PARENT (EINVAL); then iommu_copy_struct_from_user() (core's
 *   `iommuCopyStructFromUser`): any length other than 24 = offsetofend(__reserved) = sizeof → EINVAL.
 * - intel_pasid_setup_nested(), at attach: addr_width 48 or 57 (57 needs CAP.FL5LP), else EINVAL;
 *   SRE needs ECAP.SRS and EAFE needs ECAP.EAFS, else EINVAL. WPE only takes effect with SRE.
 * - Mainline does not reject unknown `flags` bits, a non-zero `__reserved` or a misaligned
 *   `pgtbl_addr` (pasid_set_flptr() drops the low 12 bits). `strict` adds those checks for callers
 *   that want uAPI hygiene beyond the kernel's.
 * - intel_nested_cache_invalidate_user(): per entry, iommu_copy_struct_from_user_array() (the same
 *   length rules on entry_len), then unknown flags or a
 *   non-zero __reserved → EOPNOTSUPP, misaligned addr or npages = U64_MAX with addr ≠ 0 → EINVAL.
 */
import { err, iommuCopyStructFromUser, iommuCopyStructFromUserArray, ok, uapi, type IommuUserDataArray, type Result, type VendorError } from '@ioasid/core/driver';
import { U64_MAX, decodeCap, decodeEcap, hex64, nestedSupported } from './registers.js';

const { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_VTD_S1, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_VTD_INV_FLAGS_LEAF, IOMMU_VTD_S1_EAFE, IOMMU_VTD_S1_SRE, IOMMU_VTD_S1_WPE, iommu_hwpt_vtd_s1, iommu_hwpt_vtd_s1_invalidate } = uapi;

function reject<T>(errno: VendorError['errno'], reason: string): Result<T, VendorError> {
  return err({ errno, reason });
}

const IOMMU_VTD_S1_KNOWN_FLAGS = IOMMU_VTD_S1_SRE | IOMMU_VTD_S1_EAFE | IOMMU_VTD_S1_WPE;

/** First-stage paging depths a guest can ask for (ADDR_WIDTH_4LEVEL / ADDR_WIDTH_5LEVEL). */
export const ADDR_WIDTH_4LEVEL = 48;
/** First-stage input width of 5-level paging (iommu_hwpt_vtd_s1.addr_width 57); needs CAP_REG.FL5LP. */
export const ADDR_WIDTH_5LEVEL = 57;

const VTD_PAGE_SIZE = 4096n;

/**
 * `struct iommu_hwpt_vtd_s1` (IOMMU_HWPT_DATA_VTD_S1), decoded: the guest's first-stage page table that a nested
 * HWPT translates through before the parent's second stage. Field for field what core's `uapi.iommu_hwpt_vtd_s1`
 * layout encodes and decodes.
 */
export interface IommuHwptVtdS1 {
  /** IOMMU_VTD_S1_SRE (supervisor requests), IOMMU_VTD_S1_EAFE (extended access flag), IOMMU_VTD_S1_WPE (write protect). */
  flags: bigint;
  /** Guest physical address of the first-stage page table root (pasid_set_flptr() uses bits 63:12). */
  pgtbl_addr: bigint;
  /** The guest's input address width: 48 for 4-level or 57 for 5-level paging ({@link ADDR_WIDTH_4LEVEL}, {@link ADDR_WIDTH_5LEVEL}). */
  addr_width: number;
  /** Must be 0 in the uAPI; mainline does not check it (`strict` validation does). */
  __reserved: number;
}

/**
 * `struct iommu_hwpt_vtd_s1_invalidate` (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1), decoded: one entry of an
 * IOMMU_HWPT_INVALIDATE array, a first-stage cache invalidation the guest asks for. Field for field what core's
 * `uapi.iommu_hwpt_vtd_s1_invalidate` layout encodes and decodes.
 */
export interface IommuHwptVtdS1Invalidate {
  /** First byte to invalidate; 4 KiB aligned, and 0 when `npages` is U64_MAX. */
  addr: bigint;
  /** Number of 4 KiB pages from `addr`; U64_MAX (with `addr` 0) invalidates the whole address space, 0 nothing. */
  npages: bigint;
  /** IOMMU_VTD_INV_FLAGS_LEAF: only leaf entries changed, so paging-structure caches may be kept; no other bit is accepted. */
  flags: number;
  /** Must be 0 (EOPNOTSUPP otherwise). */
  __reserved: number;
}

/** The unit's registers, as the driver sees them when it checks a request. */
export interface VtdUnitRegs {
  /** CAP_REG (offset 0x8): FL5LP is checked when the request asks for 57-bit (5-level) first-stage paging. */
  readonly cap: bigint;
  /** ECAP_REG (offset 0x10): SMTS and NEST for nesting at all, SRS and EAFS for the SRE and EAFE flags. */
  readonly ecap: bigint;
}

/** Encode a `struct iommu_hwpt_vtd_s1` (IOMMU_HWPT_DATA_VTD_S1) as user space passes it to IOMMU_HWPT_ALLOC. */
export function encodeHwptVtdS1(s1: IommuHwptVtdS1): Uint8Array {
  return iommu_hwpt_vtd_s1.encode({ ...s1 });
}

/**
 * intel_iommu_domain_alloc_nested(): iommu_copy_struct_from_user(&vtd, user_data, IOMMU_HWPT_DATA_VTD_S1, __reserved);
 * no field checks.
 */
export function decodeHwptVtdS1(data: Uint8Array): Result<IommuHwptVtdS1, VendorError> {
  const copy = iommuCopyStructFromUser(iommu_hwpt_vtd_s1, { type: IOMMU_HWPT_DATA_VTD_S1, data }, IOMMU_HWPT_DATA_VTD_S1, '__reserved');
  return copy.ok ? ok(iommu_hwpt_vtd_s1.decode(copy.value)) : copy;
}

// ---------------------------------------------------------------------------------------------
// IOMMU_HWPT_ALLOC of a nested (first-stage) domain
// ---------------------------------------------------------------------------------------------

/** An IOMMU_HWPT_ALLOC of a nested VT-d first-stage domain: the request, its data and the unit it targets. */
export interface VtdNestedAllocRequest extends VtdUnitRegs {
  /** iommu_hwpt_alloc.flags. */
  readonly flags: number;
  /** iommu_hwpt_alloc.data_type. */
  readonly dataType: number;
  /** The user buffer (data_len bytes at data_uptr). */
  readonly data: Uint8Array;
  /** The parent is an intel second-stage paging domain allocated with IOMMU_HWPT_ALLOC_NEST_PARENT. */
  readonly parentIsNestParent: boolean;
}

/** intel_iommu_domain_alloc_nested(): what allocation itself accepts or rejects. */
export function vtdNestedDomainAlloc(req: VtdNestedAllocRequest): Result<IommuHwptVtdS1, VendorError> {
  if (!nestedSupported(decodeEcap(req.ecap))) {
    return reject('EOPNOTSUPP', 'the IOMMU has no nested translation in scalable mode (ECAP.SMTS and ECAP.NEST)');
  }
  if (req.flags & ~IOMMU_HWPT_ALLOC_PASID) {
    return reject('EOPNOTSUPP', `hwpt flags 0x${req.flags.toString(16)}: a nested domain takes only IOMMU_HWPT_ALLOC_PASID`);
  }
  if (req.dataType !== IOMMU_HWPT_DATA_VTD_S1) {
    return reject('EOPNOTSUPP', `data_type ${req.dataType} is not IOMMU_HWPT_DATA_VTD_S1`);
  }
  if (!req.parentIsNestParent) {
    return reject('EINVAL', 'the parent is not a second-stage paging domain allocated with IOMMU_HWPT_ALLOC_NEST_PARENT');
  }
  return decodeHwptVtdS1(req.data);
}

/** intel_pasid_setup_nested(): the checks made when the nested domain is attached to a device. */
export function vtdNestedAttachCheck(s1: IommuHwptVtdS1, unit: VtdUnitRegs): Result<IommuHwptVtdS1, VendorError> {
  const cap = decodeCap(unit.cap);
  const ecap = decodeEcap(unit.ecap);
  if (s1.addr_width === ADDR_WIDTH_5LEVEL) {
    if (!cap.FL5LP) return reject('EINVAL', '5-level paging not supported (CAP.FL5LP is clear)');
  } else if (s1.addr_width !== ADDR_WIDTH_4LEVEL) {
    return reject('EINVAL', `Invalid stage-1 address width ${s1.addr_width}`);
  }
  if (s1.flags & IOMMU_VTD_S1_SRE && !ecap.SRS) {
    return reject('EINVAL', 'No supervisor request support (IOMMU_VTD_S1_SRE without ECAP.SRS)');
  }
  if (s1.flags & IOMMU_VTD_S1_EAFE && !ecap.EAFS) {
    return reject('EINVAL', 'No extended access flag support (IOMMU_VTD_S1_EAFE without ECAP.EAFS)');
  }
  return ok(s1);
}

/** Checks mainline does not make; see the module comment. */
function strictS1Check(s1: IommuHwptVtdS1): Result<IommuHwptVtdS1, VendorError> {
  const unknown = s1.flags & ~IOMMU_VTD_S1_KNOWN_FLAGS;
  if (unknown) return reject('EOPNOTSUPP', `unknown iommu_hwpt_vtd_s1 flags ${hex64(unknown)}`);
  if (s1.__reserved !== 0) return reject('EINVAL', `__reserved is 0x${s1.__reserved.toString(16)}, must be 0`);
  if (s1.pgtbl_addr % VTD_PAGE_SIZE !== 0n) return reject('EINVAL', `pgtbl_addr ${hex64(s1.pgtbl_addr)} is not 4 KiB aligned`);
  return ok(s1);
}

/** Options of `validateHwptVtdS1`. */
export interface VtdS1ValidateOptions {
  /** Also reject unknown flags, a non-zero __reserved and a misaligned pgtbl_addr (mainline does not). */
  readonly strict?: boolean;
}

/** The whole path a nested HWPT goes through up to a successful attach: alloc checks, then attach checks. */
export function validateHwptVtdS1(
  req: VtdNestedAllocRequest,
  opts: VtdS1ValidateOptions = {},
): Result<IommuHwptVtdS1, VendorError> {
  const alloc = vtdNestedDomainAlloc(req);
  if (!alloc.ok) return alloc;
  if (opts.strict) {
    const strict = strictS1Check(alloc.value);
    if (!strict.ok) return strict;
  }
  return vtdNestedAttachCheck(alloc.value, req);
}

/** The first-stage page-table depth a valid request selects (FLPM in the PASID entry). */
export function vtdS1Levels(s1: IommuHwptVtdS1): 4 | 5 {
  return s1.addr_width === ADDR_WIDTH_5LEVEL ? 5 : 4;
}

/** Whether WPE takes effect: intel_pasid_setup_nested() sets it only together with SRE. */
export function vtdS1WriteProtectEnabled(s1: IommuHwptVtdS1): boolean {
  return (s1.flags & IOMMU_VTD_S1_SRE) !== 0n && (s1.flags & IOMMU_VTD_S1_WPE) !== 0n;
}

// ---------------------------------------------------------------------------------------------
// IOMMU_HWPT_INVALIDATE entries
// ---------------------------------------------------------------------------------------------

/** What one accepted entry invalidates. */
export type VtdS1InvalidateScope =
  | {
      /** npages = U64_MAX with addr 0: the whole address space. */
      readonly kind: 'all';
    }
  | {
      /** `npages` 4 KiB pages from `addr`. */
      readonly kind: 'range';
      /** First byte invalidated. */
      readonly start: bigint;
      /** Last byte invalidated (inclusive), clamped to the top of the 64-bit space. */
      readonly last: bigint;
    }
  | {
      /** npages = 0: nothing. */
      readonly kind: 'none';
    };

/** One invalidation entry that passed intel_nested_cache_invalidate_user()'s checks: the entry and what it invalidates. */
export interface VtdS1Invalidation extends IommuHwptVtdS1Invalidate {
  /** Only leaf entries were changed: paging-structure caches may be kept. */
  readonly leaf: boolean;
  /** The address range the entry invalidates. */
  readonly scope: VtdS1InvalidateScope;
}

/** Encode a `struct iommu_hwpt_vtd_s1_invalidate` entry as user space passes it to IOMMU_HWPT_INVALIDATE. */
export function encodeHwptVtdS1Invalidate(e: IommuHwptVtdS1Invalidate): Uint8Array {
  return iommu_hwpt_vtd_s1_invalidate.encode({ ...e });
}

function invalidateScope(addr: bigint, npages: bigint): VtdS1InvalidateScope {
  if (npages === U64_MAX) return { kind: 'all' };
  if (npages === 0n) return { kind: 'none' };
  // The kernel computes addr + (npages << 12) - 1 in u64 and lets it wrap; a range past the top of
  // the address space is clamped here instead, which flushes at least as much.
  const last = addr + npages * VTD_PAGE_SIZE - 1n;
  return { kind: 'range', start: addr, last: last > U64_MAX ? U64_MAX : last };
}

/** The checks intel_nested_cache_invalidate_user() makes on one copied entry. */
function checkInvalidation(e: IommuHwptVtdS1Invalidate): Result<VtdS1Invalidation, VendorError> {
  if (e.flags & ~IOMMU_VTD_INV_FLAGS_LEAF) {
    return reject('EOPNOTSUPP', `unknown invalidation flags 0x${e.flags.toString(16)}`);
  }
  if (e.__reserved !== 0) return reject('EOPNOTSUPP', `__reserved is 0x${e.__reserved.toString(16)}, must be 0`);
  if (e.addr % VTD_PAGE_SIZE !== 0n) return reject('EINVAL', `addr ${hex64(e.addr)} is not 4 KiB aligned`);
  if (e.npages === U64_MAX && e.addr !== 0n) {
    return reject('EINVAL', `npages U64_MAX (invalidate all) needs addr 0, got ${hex64(e.addr)}`);
  }
  return ok({ ...e, leaf: (e.flags & IOMMU_VTD_INV_FLAGS_LEAF) !== 0, scope: invalidateScope(e.addr, e.npages) });
}

/** One `struct iommu_hwpt_vtd_s1_invalidate` of any length, copied and checked as the kernel does. */
export function decodeHwptVtdS1Invalidate(entry: Uint8Array): Result<VtdS1Invalidation, VendorError> {
  return copyInvalidation({ type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, entryLen: entry.byteLength, entryNum: 1, data: entry }, 0);
}

function copyInvalidation(array: IommuUserDataArray, index: number): Result<VtdS1Invalidation, VendorError> {
  const copy = iommuCopyStructFromUserArray(iommu_hwpt_vtd_s1_invalidate, array, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, index, '__reserved');
  return copy.ok ? checkInvalidation(iommu_hwpt_vtd_s1_invalidate.decode(copy.value)) : copy;
}

/** The result of the kernel's invalidation loop over an IOMMU_HWPT_INVALIDATE array. */
export interface VtdS1InvalidateArrayResult {
  /** Entries handled before the first failure: what the kernel writes back to entry_num. */
  readonly processed: number;
  /** The entries accepted, in order. */
  readonly entries: VtdS1Invalidation[];
  /** The failure that stopped the loop, with the entry index. */
  readonly error?: {
    /** Index of the entry that failed. */
    readonly index: number;
    /** The errno the ioctl returns (EINVAL, EOPNOTSUPP, EFAULT, ...). */
    readonly errno: VendorError['errno'];
    /** Why the entry was refused. */
    readonly reason: string;
  };
}

/**
 * intel_nested_cache_invalidate_user(): for each of `entryNum` entries of `entryLen` bytes,
 * iommu_copy_struct_from_user_array(..., IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, index, __reserved), then
 * the field checks; it stops at the first bad entry.
 */
export function decodeHwptVtdS1InvalidateArray(
  data: Uint8Array,
  entryLen: number,
  entryNum: number,
  dataType: number = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
): VtdS1InvalidateArrayResult {
  const entries: VtdS1Invalidation[] = [];
  const array = { type: dataType, entryLen, entryNum, data };
  if (dataType !== IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) {
    return { processed: 0, entries, error: { index: 0, errno: 'EINVAL', reason: `data_type ${dataType} is not VTD_S1` } };
  }
  for (let index = 0; index < entryNum; index++) {
    const r = copyInvalidation(array, index);
    if (!r.ok) return { processed: index, entries, error: { index, ...r.error } };
    entries.push(r.value);
  }
  return { processed: entryNum, entries };
}
