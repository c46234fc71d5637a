/**
 * VFIO type1 container compatibility on /dev/iommu (vfio_compat.c iommufd_vfio_ioctl): the ioctls
 * DPDK and older QEMU send to a VFIO container, answered on the compatibility IOAS chosen with
 * IOMMU_VFIO_IOAS (or created when a VFIO group joins the container).
 *
 * main.c iommufd_fops_ioctl hands every request whose number is outside the iommufd table to
 * iommufd_vfio_ioctl; whatever that does not know is ENOTTY.
 */
import { Errno, fail } from '../uapi/errno.js';
import { IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, ULONG_MAX } from '../uapi/iommufd.js';
import * as V from '../uapi/vfio.js';
import { PAGE_SIZE } from '../memory/physical.js';
import { Ioas, mapUser, unmapIova } from './ioas.js';
import type { IommufdCtx } from './context.js';
import type { HwptPaging } from './hwpt.js';

const PAGE = BigInt(PAGE_SIZE);

/**
 * The argument of an ioctl: an integer (VFIO_CHECK_EXTENSION's type), or the user memory a pointer
 * argument points at. A byte array stands for the caller's buffer: reading or writing past its end
 * faults, as it would past the end of a user mapping.
 */
export interface UserArg {
  /** The argument as an integer (a pointer argument is its address; a byte array has none). */
  readonly value: bigint | null;
  read(offset: number, length: number): Uint8Array;
  write(offset: number, bytes: Uint8Array): void;
}

/** A byte array as the user memory behind a pointer argument. */
export function bufferArg(buf: Uint8Array): UserArg {
  return {
    value: null,
    read(offset, length) {
      if (offset + length > buf.length) fail('EFAULT', 'read past the end of the argument');
      return buf.slice(offset, offset + length);
    },
    write(offset, bytes) {
      if (offset + bytes.length > buf.length) fail('EFAULT', 'write past the end of the argument');
      buf.set(bytes, offset);
    },
  };
}

/** An integer argument: as a pointer it points into the calling process (NULL faults). */
export function valueArg(ctx: IommufdCtx, v: bigint): UserArg {
  return {
    value: v,
    read: (offset, length) => ctx.copyFromUser(v === 0n ? 0n : v + BigInt(offset), length),
    write: (offset, bytes) => ctx.copyToUser(v === 0n ? 0n : v + BigInt(offset), bytes),
  };
}

/** get_compat_ioas: the compatibility IOAS, ENODEV when there is none. */
export function compatIoas(ctx: IommufdCtx): Ioas {
  const o = ctx.vfioIoasId === 0 ? undefined : ctx.objects.peek(ctx.vfioIoasId);
  if (!(o instanceof Ioas)) fail('ENODEV', 'no compatibility IOAS (IOMMU_VFIO_IOAS or a VFIO group)');
  return o;
}

/**
 * iommufd_vfio_compat_ioas_create: what a VFIO group joining the container does. Creates an IOAS
 * and makes it the compatibility IOAS unless one exists; EINVAL once the container is in no-IOMMU
 * mode. Returns the compatibility IOAS id.
 */
export function vfioCompatIoasCreate(ctx: IommufdCtx): number {
  if (ctx.noIommuMode) fail('EINVAL', 'the container is in no-IOMMU mode');
  const cur = ctx.vfioIoasId === 0 ? undefined : ctx.objects.peek(ctx.vfioIoasId);
  if (cur instanceof Ioas) return cur.id;
  const ioas = new Ioas(ctx.runPages);
  ctx.objects.reserve(ioas);
  ctx.objects.finalize(ioas);
  ctx.vfioIoasId = ioas.id;
  return ioas.id;
}

/**
 * iommufd_vfio_ioctl. Returns the ioctl's value (0, 1 for a supported extension, VFIO_API_VERSION)
 * or throws Errno; ENOTTY for a request it does not handle (ENOIOCTLCMD).
 */
export function vfioIoctl(ctx: IommufdCtx, request: number, arg: UserArg): number {
  switch (request) {
    case V.VFIO_GET_API_VERSION:
      return V.VFIO_API_VERSION;
    case V.VFIO_SET_IOMMU:
      return setIommu(ctx, arg.value ?? -1n);
    case V.VFIO_CHECK_EXTENSION:
      return checkExtension(ctx, arg.value ?? -1n);
    case V.VFIO_IOMMU_GET_INFO:
      return getInfo(ctx, arg);
    case V.VFIO_IOMMU_MAP_DMA:
      return mapDma(ctx, arg);
    case V.VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(ctx, arg);
    default:
      // VFIO_IOMMU_DIRTY_PAGES and everything else.
      return fail('ENOTTY', `ioctl 0x${request.toString(16)} is not a VFIO container ioctl iommufd answers`);
  }
}

/** iommufd_vfio_check_extension: 1 when supported; DMA_CC_IOMMU asks the compat IOAS's domains. */
function checkExtension(ctx: IommufdCtx, type: bigint): number {
  switch (type) {
    case BigInt(V.VFIO_TYPE1_IOMMU):
    case BigInt(V.VFIO_TYPE1v2_IOMMU):
    case BigInt(V.VFIO_UNMAP_ALL):
      return 1;
    case BigInt(V.VFIO_NOIOMMU_IOMMU):
      // IS_ENABLED(CONFIG_VFIO_NOIOMMU): distribution kernels build it.
      return 1;
    case BigInt(V.VFIO_DMA_CC_IOMMU): {
      // iommufd_vfio_cc_iommu: the errno of get_compat_ioas is the ioctl's result.
      const ioas = compatIoas(ctx);
      return ioas.autoHwpts.every((h) => (h as HwptPaging).ops.enforceCacheCoherency) ? 1 : 0;
    }
    default:
      // The reserved type1 nesting, VFIO_UPDATE_VADDR (not implementable safely) and the rest.
      return 0;
  }
}

/**
 * iommufd_vfio_set_iommu: only TYPE1 and TYPE1v2 (EINVAL otherwise, or in no-IOMMU mode), on the
 * compat IOAS (ENODEV: VFIO fails SET_IOMMU without a group). TYPE1 disables large pages so that
 * unmaps can cut mappings (iopt_disable_large_pages: EINVAL with mapped domains, EADDRINUSE for
 * areas that are not page aligned).
 */
function setIommu(ctx: IommufdCtx, type: bigint): number {
  if (type === BigInt(V.VFIO_NOIOMMU_IOMMU) && ctx.noIommuMode) {
    if (!ctx.process.capSysRawio) fail('EPERM', 'VFIO_NOIOMMU_IOMMU needs CAP_SYS_RAWIO');
    return 0;
  }
  if ((type !== BigInt(V.VFIO_TYPE1_IOMMU) && type !== BigInt(V.VFIO_TYPE1v2_IOMMU)) || ctx.noIommuMode) fail('EINVAL', `IOMMU type ${type} is not TYPE1 or TYPE1v2`);
  const ioas = compatIoas(ctx);
  if (type === BigInt(V.VFIO_TYPE1_IOMMU)) ioas.iopt.disableLargePages();
  return 0;
}

/** iommufd_get_pagesizes: the page sizes every domain maps, sub-page sizes folded into PAGE_SIZE. */
function pageSizes(ioas: Ioas): bigint {
  let bitmap = ULONG_MAX;
  for (const d of ioas.iopt.domains) bitmap &= d.pgsizeBitmap;
  if (bitmap & (PAGE - 1n)) bitmap = (bitmap & ~(PAGE - 1n) & ULONG_MAX) | PAGE;
  const align = ioas.iopt.iovaAlignment;
  return bitmap > align ? bitmap : align;
}

const INFO_MINSZ = V.vfio_iommu_type1_info.offsetofend('iova_pgsizes');
const CAP_IOVA_HEAD = V.vfio_iommu_type1_info_cap_iova_range.size;
const IOVA_RANGE = V.vfio_iova_range.size;

/** A capability filler: writes what fits in `avail` bytes at `at` and returns the capability's size. */
type FillCap = (ioas: Ioas, arg: UserArg, at: number, avail: number) => number;

/** iommufd_fill_cap_dma_avail: U32_MAX mappings (s390 QEMU needs more than VFIO's U16_MAX). */
const fillDmaAvail: FillCap = (_ioas, arg, at, avail) => {
  const size = V.vfio_iommu_type1_info_dma_avail.size;
  if (avail >= size) arg.write(at, V.vfio_iommu_type1_info_dma_avail.encode({ id: V.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 0, avail: 0xffff_ffff }));
  return size;
};

/** iommufd_fill_cap_iova: the holes of the reserved ranges, each written when it fits. */
const fillIova: FillCap = (ioas, arg, at, avail) => {
  const ranges = ioas.iopt.usableRanges();
  let n = 0;
  for (const r of ranges) {
    if (avail >= CAP_IOVA_HEAD + (n + 1) * IOVA_RANGE) arg.write(at + CAP_IOVA_HEAD + n * IOVA_RANGE, V.vfio_iova_range.encode({ start: r.start, end: r.last }));
    n++;
  }
  if (avail >= CAP_IOVA_HEAD + n * IOVA_RANGE) {
    arg.write(at, V.vfio_iommu_type1_info_cap_iova_range.encode({ id: V.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0, nr_iovas: n, reserved: 0 }));
  }
  return CAP_IOVA_HEAD + n * IOVA_RANGE;
};

const FILL_CAPS: readonly FillCap[] = [fillDmaAvail, fillIova];

/**
 * iommufd_vfio_iommu_get_info: argsz below the pre-capability size is EINVAL; the capability chain
 * (DMA available, then IOVA ranges, each 8-byte aligned) is written after the struct as far as
 * argsz allows, `next` links written only for caps that fit, cap_offset set only when all fit, and
 * argsz comes back as the size the whole chain needs.
 */
function getInfo(ctx: IommufdCtx, arg: UserArg): number {
  const info = V.vfio_iommu_type1_info.decode(padTo(arg.read(0, INFO_MINSZ), V.vfio_iommu_type1_info.size));
  if (info.argsz < INFO_MINSZ) fail('EINVAL', `argsz ${info.argsz} is below ${INFO_MINSZ}`);
  const minsz = Math.min(info.argsz, V.vfio_iommu_type1_info.size);
  const ioas = compatIoas(ctx);
  info.flags = V.VFIO_IOMMU_INFO_PGSIZES;
  info.iova_pgsizes = pageSizes(ioas);
  info.cap_offset = 0;
  let total = V.vfio_iommu_type1_info.size;
  let lastCap = -1;
  for (const fill of FILL_CAPS) {
    const size = info.argsz > total ? fill(ioas, arg, total, info.argsz - total) : fill(ioas, arg, 0, 0);
    const aligned = (size + 7) & ~7;
    if (lastCap >= 0 && info.argsz >= total) arg.write(lastCap + V.vfio_info_cap_header.offsetof('next'), u32le(total));
    lastCap = total;
    total += aligned;
  }
  if (info.argsz >= total) info.cap_offset = V.vfio_iommu_type1_info.size;
  info.argsz = total;
  info.flags |= V.VFIO_IOMMU_INFO_CAPS;
  arg.write(0, V.vfio_iommu_type1_info.encode(info).subarray(0, minsz));
  return 0;
}

const MAP_MINSZ = V.vfio_iommu_type1_dma_map.offsetofend('size');

/**
 * iommufd_vfio_map_dma: argsz and flags (READ, WRITE only; EINVAL), the compat IOAS (ENODEV), then
 * iopt_map_user_pages at the fixed iova (its errnos: EOVERFLOW, EINVAL, EEXIST, EFAULT, ENOMEM...).
 * A map without READ or WRITE is accepted with no access rights, as the kernel does.
 */
function mapDma(ctx: IommufdCtx, arg: UserArg): number {
  const map = V.vfio_iommu_type1_dma_map.decode(arg.read(0, MAP_MINSZ));
  if (map.argsz < MAP_MINSZ || map.flags & ~(V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE)) fail('EINVAL', 'argsz too small or unsupported flags');
  const ioas = compatIoas(ctx);
  const flags = (map.flags & V.VFIO_DMA_MAP_FLAG_READ ? IOMMU_IOAS_MAP_READABLE : 0) | (map.flags & V.VFIO_DMA_MAP_FLAG_WRITE ? IOMMU_IOAS_MAP_WRITEABLE : 0);
  mapUser(ctx, ioas, map.vaddr, map.size, map.iova, flags);
  return 0;
}

const UNMAP_MINSZ = V.vfio_iommu_type1_dma_unmap.offsetofend('size');

/**
 * iommufd_vfio_unmap_dma: argsz and flags (only UNMAP_ALL; GET_DIRTY_BITMAP and VADDR are EINVAL),
 * the compat IOAS (ENODEV); UNMAP_ALL needs iova and size 0 (EINVAL). Under TYPE1 (large pages off)
 * the range's ends are cut first, so an unmap inside a mapping works. An empty range is success
 * (VFIO type1 semantics). `size` is written back with the bytes unmapped, also when the unmap
 * stopped part-way.
 */
function unmapDma(ctx: IommufdCtx, arg: UserArg): number {
  const unmap = V.vfio_iommu_type1_dma_unmap.decode(arg.read(0, UNMAP_MINSZ));
  if (unmap.argsz < UNMAP_MINSZ || unmap.flags & ~V.VFIO_DMA_UNMAP_FLAG_ALL) fail('EINVAL', 'argsz too small or unsupported flags');
  const ioas = compatIoas(ctx);
  let error: Errno | null = null;
  let unmapped = 0n;
  if (unmap.flags & V.VFIO_DMA_UNMAP_FLAG_ALL) {
    if (unmap.iova !== 0n || unmap.size !== 0n) fail('EINVAL', 'UNMAP_ALL takes iova 0 and size 0');
    unmapped = ioas.iopt.unmapAll();
  } else {
    if (!ioas.iopt.hugePages) {
      // unsigned long arithmetic: iova + size - 1 and iova - 1 wrap.
      const cuts = [(unmap.iova + unmap.size - 1n) & ULONG_MAX];
      if (unmap.iova !== 0n) cuts.push(unmap.iova - 1n);
      ioas.iopt.cutIova(cuts);
    }
    ioas.iopt.lastUnmapped = 0n;
    try {
      unmapped = unmapIova(ioas, unmap.iova, unmap.size);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      error = e;
      unmapped = ioas.iopt.lastUnmapped;
    }
  }
  unmap.size = unmapped;
  arg.write(0, V.vfio_iommu_type1_dma_unmap.encode(unmap));
  if (error) throw error;
  return 0;
}

function padTo(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes);
  return out;
}

function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}
