/**
 * The typed side of the VFIO type1 compatibility ioctls: what a DPDK-style container user calls,
 * through the same handlers as the raw `ioctl`.
 */
import { Errno, IommufdError } from '../uapi/errno.js';
import * as V from '../uapi/vfio.js';
import type { IovaRange } from './io-pagetable.js';
import type { IommufdCtx } from './context.js';
import { bufferArg, valueArg, vfioCompatIoasCreate, vfioIoctl } from './vfio-compat.js';

/** Result of the typed VFIO_IOMMU_GET_INFO (struct vfio_iommu_type1_info and its capability chain). */
export interface VfioIommuInfo {
  /** VFIO_IOMMU_INFO_* flags as returned (VFIO_IOMMU_INFO_PGSIZES, VFIO_IOMMU_INFO_CAPS). */
  flags: number;
  /** Page sizes every domain of the compat IOAS maps (VFIO_IOMMU_INFO_PGSIZES). */
  iovaPgsizes: bigint;
  /** VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL. */
  dmaAvail: number;
  /** VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, `last` inclusive (the uAPI calls it `end`). */
  iovaRanges: IovaRange[];
}

/** Arguments of the typed VFIO_IOMMU_MAP_DMA (struct vfio_iommu_type1_dma_map). */
export interface VfioMapDma {
  /** Start of the process memory to map, in bytes (`vaddr`). */
  vaddr: bigint;
  /** IOVA to map at, in bytes; always fixed in type1 (`iova`). */
  iova: bigint;
  /** Bytes to map (`size`). */
  size: bigint;

  /** VFIO_DMA_MAP_FLAG_READ, default true. */
  read?: boolean;
  /** VFIO_DMA_MAP_FLAG_WRITE, default true. */
  write?: boolean;
}

const NAMES: Record<number, string> = {
  [V.VFIO_GET_API_VERSION]: 'VFIO_GET_API_VERSION',
  [V.VFIO_CHECK_EXTENSION]: 'VFIO_CHECK_EXTENSION',
  [V.VFIO_SET_IOMMU]: 'VFIO_SET_IOMMU',
  [V.VFIO_IOMMU_GET_INFO]: 'VFIO_IOMMU_GET_INFO',
  [V.VFIO_IOMMU_MAP_DMA]: 'VFIO_IOMMU_MAP_DMA',
  [V.VFIO_IOMMU_UNMAP_DMA]: 'VFIO_IOMMU_UNMAP_DMA',
};

/**
 * The VFIO type1 container ioctls on an iommufd (vfio_compat.c), typed: what a DPDK-style container user
 * calls, through the same handlers as the raw `ioctl`. Every call throws {@link IommufdError} with the
 * kernel's errno. Reached as `Iommufd.vfio`.
 */
export interface VfioContainer {
  /** VFIO_GET_API_VERSION: VFIO_API_VERSION (0). */
  apiVersion(): number;
  /** VFIO_CHECK_EXTENSION: 1 when the extension `type` (VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, ...) is supported, 0 when not. */
  checkExtension(type: number): number;
  /** VFIO_SET_IOMMU (VFIO_TYPE1_IOMMU or VFIO_TYPE1v2_IOMMU): selects the IOMMU model of the container. */
  setIommu(type: number): void;
  /** VFIO_IOMMU_GET_INFO with the whole capability chain (asks for its size first, as users do). */
  getInfo(): VfioIommuInfo;
  /** VFIO_IOMMU_MAP_DMA at a fixed IOVA. */
  mapDma(o: VfioMapDma): void;
  /** VFIO_IOMMU_UNMAP_DMA of `size` bytes at `iova`; returns the bytes unmapped (0 for an empty range). */
  unmapDma(iova: bigint, size: bigint): bigint;
  /** VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL; returns the bytes unmapped. */
  unmapAll(): bigint;
  /**
   * iommufd_vfio_compat_ioas_create, what VFIO_GROUP_SET_CONTAINER does on an iommufd-backed container:
   * the compat IOAS id (created when there is none).
   */
  compatIoas(): number;
}

/** The typed VFIO container calls on the iommufd `ctx`. */
export function vfioApi(ctx: IommufdCtx): VfioContainer {
  const call = (request: number, arg: bigint | Uint8Array): number => {
    const name = NAMES[request] ?? 'VFIO';
    if (ctx.closed) throw new IommufdError('EBADF', name, 'the iommufd is closed');
    try {
      return vfioIoctl(ctx, request, arg instanceof Uint8Array ? bufferArg(arg) : valueArg(ctx, arg));
    } catch (e) {
      if (e instanceof Errno) throw new IommufdError(e.code, name, e.detail);
      throw e;
    }
  };
  const unmap = (flags: number, iova: bigint, size: bigint): bigint => {
    const buf = V.vfio_iommu_type1_dma_unmap.encode({ argsz: V.vfio_iommu_type1_dma_unmap.size, flags, iova, size });
    call(V.VFIO_IOMMU_UNMAP_DMA, buf);
    return V.vfio_iommu_type1_dma_unmap.decode(buf).size;
  };
  return {
    /** VFIO_GET_API_VERSION. */
    apiVersion: (): number => call(V.VFIO_GET_API_VERSION, 0n),
    /** VFIO_CHECK_EXTENSION: 1 when supported, 0 when not. */
    checkExtension: (type: number): number => call(V.VFIO_CHECK_EXTENSION, BigInt(type)),
    /** VFIO_SET_IOMMU (VFIO_TYPE1_IOMMU or VFIO_TYPE1v2_IOMMU). */
    setIommu: (type: number): void => {
      call(V.VFIO_SET_IOMMU, BigInt(type));
    },
    /** VFIO_IOMMU_GET_INFO with the whole capability chain (asks for its size first, as users do). */
    getInfo: (): VfioIommuInfo => {
      const head = V.vfio_iommu_type1_info.encode({ argsz: V.vfio_iommu_type1_info.size, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 });
      call(V.VFIO_IOMMU_GET_INFO, head);
      const need = V.vfio_iommu_type1_info.decode(head).argsz;
      const buf = new Uint8Array(need);
      buf.set(V.vfio_iommu_type1_info.encode({ argsz: need, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 }));
      call(V.VFIO_IOMMU_GET_INFO, buf);
      return parseInfo(buf);
    },
    /** VFIO_IOMMU_MAP_DMA at a fixed IOVA. */
    mapDma: (o: VfioMapDma): void => {
      const flags = (o.read ?? true ? V.VFIO_DMA_MAP_FLAG_READ : 0) | (o.write ?? true ? V.VFIO_DMA_MAP_FLAG_WRITE : 0);
      call(V.VFIO_IOMMU_MAP_DMA, V.vfio_iommu_type1_dma_map.encode({ argsz: V.vfio_iommu_type1_dma_map.size, flags, vaddr: o.vaddr, iova: o.iova, size: o.size }));
    },
    /** VFIO_IOMMU_UNMAP_DMA; returns the bytes unmapped (0 for an empty range). */
    unmapDma: (iova: bigint, size: bigint): bigint => unmap(0, iova, size),
    /** VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL. */
    unmapAll: (): bigint => unmap(V.VFIO_DMA_UNMAP_FLAG_ALL, 0n, 0n),
    /**
     * iommufd_vfio_compat_ioas_create, what VFIO_GROUP_SET_CONTAINER does on an iommufd-backed
     * container: the compat IOAS id (created when there is none).
     */
    compatIoas: (): number => {
      try {
        return vfioCompatIoasCreate(ctx);
      } catch (e) {
        if (e instanceof Errno) throw new IommufdError(e.code, 'VFIO_GROUP_SET_CONTAINER', e.detail);
        throw e;
      }
    },
  };
}

/** Walks the capability chain of a filled vfio_iommu_type1_info. */
function parseInfo(buf: Uint8Array): VfioIommuInfo {
  const info = V.vfio_iommu_type1_info.decode(buf);
  const out: VfioIommuInfo = { flags: info.flags, iovaPgsizes: info.iova_pgsizes, dmaAvail: 0, iovaRanges: [] };
  let at = info.cap_offset;
  // Each capability is visited once: `next` only moves forward.
  while (at !== 0 && at + V.vfio_info_cap_header.size <= buf.length) {
    const h = V.vfio_info_cap_header.decode(buf, at);
    if (h.id === V.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) out.dmaAvail = V.vfio_iommu_type1_info_dma_avail.decode(buf, at).avail;
    if (h.id === V.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const c = V.vfio_iommu_type1_info_cap_iova_range.decode(buf, at);
      for (let i = 0; i < c.nr_iovas; i++) {
        const r = V.vfio_iova_range.decode(buf, at + V.vfio_iommu_type1_info_cap_iova_range.size + i * V.vfio_iova_range.size);
        out.iovaRanges.push({ start: r.start, last: r.end });
      }
    }
    if (h.next <= at) break;
    at = h.next;
  }
  return out;
}
