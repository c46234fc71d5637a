/**
 * Emulated-device access (IOMMUFD_OBJ_ACCESS, device.c iommufd_access_*): a device model without an
 * IOMMU of its own (an mdev, or a VMM's emulated DMA) that reaches guest memory through an IOAS. It
 * pins pages to get their frames, or reads and writes through the IOAS without pinning, and it must
 * unpin when the IOAS unmaps a range it pinned: the unmap calls its `unmap` op first
 * (iommufd_access_notify_unmap).
 */
import { Errno, IommufdError, fail } from '../uapi/errno.js';
import { ULONG_MAX } from '../uapi/iommufd.js';
import { PAGE_SIZE } from '../memory/physical.js';
import { IOMMU_READ, IOMMU_WRITE } from '../driver/pgtable.js';
import { IommufdObject, ObjType } from './objects.js';
import type { IoptArea } from './area-index.js';
import type { Ioas } from './ioas.js';
import type { IommufdCtx } from './context.js';

const PAGE = BigInt(PAGE_SIZE);

/** struct iommufd_access_ops, as a device model gives it. */
export interface AccessOps {
  /**
   * Set for a model that pins pages (needs_pin_pages): the IOAS is about to unmap
   * [iova, iova + length) and every pin inside it must be dropped before this returns.
   */
  unmap?(iova: bigint, length: bigint): void;
}

/** IOMMUFD_ACCESS_RW_* flags of iommufd_access_rw. */
export interface AccessRwOptions {
  /** IOMMUFD_ACCESS_RW_WRITE: copy into the IOAS's memory instead of out of it. */
  write?: boolean;
}

/** One contiguous piece of an IOVA range inside an area (iopt_for_each_contig_area). */
interface Piece {
  area: IoptArea;
  /** First and last byte of the piece. */
  start: bigint;
  last: bigint;
}

/**
 * An emulated-device access (struct iommufd_access) made by {@link Iommufd.access}: attach it to an IOAS,
 * then pin pages or read and write through it (iommufd_access_pin_pages, iommufd_access_rw).
 */
export class IommufdAccess extends IommufdObject {
  /** Always IOMMUFD_OBJ_ACCESS. */
  readonly type = ObjType.ACCESS;
  /**
   * What IOVAs and lengths of the IOAS must be multiples of for this access (struct iommufd_access's
   * iova_alignment): a page for a model that pins, 1 otherwise.
   * @internal
   */
  readonly iovaAlignment: bigint;
  /**
   * The IOAS it is attached to, null when detached.
   * @internal
   */
  ioas: Ioas | null = null;

  /**
   * Use {@link Iommufd.access}.create: it also registers the object.
   * @internal
   */
  constructor(
    private readonly ctx: IommufdCtx,
    /** The device model's callbacks (struct iommufd_access_ops). */
    readonly ops: AccessOps,
  ) {

    super();
    // iommufd_access_create: a model that pins pages works in whole pages.
    this.iovaAlignment = ops.unmap ? PAGE : 1n;
  }

  /**
   * iommufd_access_notify_unmap: the IOAS is about to unmap [iova, iova + length).
   * @internal
   */
  notifyUnmap(iova: bigint, length: bigint): void {
    this.ops.unmap?.(iova, length);
  }

  /** iommufd_access_attach: EINVAL when already attached; the IOAS must exist (ENOENT). */
  attach(ioasId: number): void {
    asCall('iommufd_access_attach', () => {
      if (this.ioas) fail('EINVAL', 'the access is already attached');
      this.changeIoas(ioasId);
    });
  }

  /** iommufd_access_replace: ENOENT when not attached; the pins of the old IOAS must be gone. */
  replace(ioasId: number): void {
    asCall('iommufd_access_replace', () => {
      if (!this.ioas) fail('ENOENT', 'the access is not attached');
      this.changeIoas(ioasId);
    });
  }

  /** iommufd_access_detach. */
  detach(): void {
    if (!this.ioas) return;
    this.unpinAllBeforeLeaving(this.ioas);
    this.ioas.iopt.removeAccess(this);
    this.ioas.users--;
    this.ioas = null;
  }

  private changeIoas(ioasId: number): void {
    const next = this.ctx.objects.get<Ioas>(ioasId, ObjType.IOAS);
    if (next === this.ioas) return;
    next.iopt.addAccess(this);
    next.users++;
    const cur = this.ioas;
    if (cur) {
      this.unpinAllBeforeLeaving(cur);
      cur.iopt.removeAccess(this);
      cur.users--;
    }
    this.ioas = next;
  }

  /** The model is told to drop every pin it holds in the IOAS it leaves (the kernel WARNs if it did not). */
  private unpinAllBeforeLeaving(ioas: Ioas): void {
    // The areas it pins first (a compact area has no access pins), then the callbacks: the driver's
    // unmap unpins, which must not run while the areas are being walked.
    const pinned: IoptArea[] = [];
    ioas.iopt.forEachArea((_pfn, _npages, a) => {
      if (a !== null && a.numAccesses > 0) pinned.push(a);
    });
    for (const a of pinned) this.ops.unmap?.(a.iova, a.length);
  }

  /**
   * The areas covering [iova, iova + length) without a hole (iopt_for_each_contig_area); length 0 is
   * EINVAL, an overflowing range EOVERFLOW, no IOAS ENOENT, a hole ENOENT (after `each` ran on the
   * pieces before it).
   */
  private pieces(
    iova: bigint,
    length: bigint,
    each: (p: Piece, index: number) => void
  ): void {
    if (length === 0n) fail('EINVAL', 'length is zero');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) fail('EOVERFLOW', 'iova + length overflows');
    if (!this.ioas) fail('ENOENT', 'the access is not attached to an IOAS');
    let expect = iova;
    let i = 0;
    for (const a of this.ioas.iopt.iterAreas(iova, last)) {
      if (a.iova > expect) break;
      const end = a.last < last ? a.last : last;
      each({ area: a, start: expect, last: end }, i++);
      expect = end + 1n;
      if (expect > last) return;
    }
    fail('ENOENT', 'the range is not fully mapped');
  }

  /**
   * iommufd_access_pin_pages: pins every page of the range (iopt_area_add_access: EFAULT, ENOMEM) and
   * returns their frames. A piece must start and end on page boundaries inside the area where it
   * meets another one (iopt_area_contig_is_aligned, EINVAL); a write pin of a read-only area, or a
   * read pin of a write-only one, is EPERM. On failure every pin taken is dropped again.
   */
  pinPages(
    iova: bigint,
    length: bigint,
    opts: AccessRwOptions = {}
  ): Float64Array {
    return asCall('iommufd_access_pin_pages', () => {
      if (!this.ops.unmap)
        fail(
          'EINVAL',
          'the access cannot take unmap notifications, so it may not pin'
        );
      const taken: [IoptArea, number, number][] = [];
      const frames: number[] = [];
      try {
        const pieces: Piece[] = [];
        this.pieces(iova, length, (p) => pieces.push(p));
        const iopt = this.ioas!.iopt;
        pieces.forEach((p, i) => {
          // The pins go into the area's pages object (a compact area's becomes a pages area's, still a
          // record) and the count into the area (addAccesses).
          const a = iopt.accessArea(p.area);
          const startByte = p.start - a.iova + BigInt(a.pageOffset);
          const endByte = p.last - a.iova + BigInt(a.pageOffset);
          if (
            (i > 0 && startByte % PAGE !== 0n) ||
            (i < pieces.length - 1 && (endByte + 1n) % PAGE !== 0n)
          )
            fail('EINVAL', 'the range crosses areas off a page boundary');
          checkProt(a, opts);
          const first = a.pageIndex + Number(startByte / PAGE);
          const n = Number(endByte / PAGE) - Number(startByte / PAGE) + 1;
          // iopt_area_add_access: the kzalloc of the access record, then the pins (iopt_pages_fill_xarray).
          this.ctx.inject('alloc');
          a.pages.pin(first, n);
          iopt.addAccesses(a, 1);
          taken.push([a, first, n]);
          for (let k = 0; k < n; k++) frames.push(a.pages.frame(first + k));
        });
      } catch (e) {
        for (const [a, first, n] of taken) {
          a.pages.unpin(first, n);
          this.ioas!.iopt.addAccesses(a, -1);
        }
        throw e;
      }
      return Float64Array.from(frames);
    });
  }

  /** iommufd_access_unpin_pages: drops the pins pinPages took on the same range. */
  unpinPages(iova: bigint, length: bigint): void {
    asCall('iommufd_access_unpin_pages', () => {
      this.pieces(iova, length, (p) => {
        const a = p.area;
        const startByte = p.start - a.iova + BigInt(a.pageOffset);
        const endByte = p.last - a.iova + BigInt(a.pageOffset);
        const first = a.pageIndex + Number(startByte / PAGE);
        const n = Number(endByte / PAGE) - Number(startByte / PAGE) + 1;
        if (a.numAccesses === 0) return;
        a.pages.unpin(first, n);
        this.ioas!.iopt.addAccesses(a, -1);
      });
    });
  }

  /**
   * iommufd_access_rw: copies between `data` and the memory behind [iova, iova + data.length), area
   * by area (EPERM for the wrong direction, ENOENT for a hole after the bytes before it were
   * copied). Pinned pages are used directly; other pages are read or written through the process
   * that mapped them (access_remote_vm: EFAULT when that memory is gone).
   */
  rw(iova: bigint, data: Uint8Array, opts: AccessRwOptions = {}): void {
    asCall('iommufd_access_rw', () => {
      let done = 0;
      this.pieces(iova, BigInt(data.length), (p) => {
        const a = p.area;
        checkProt(a, opts);
        // iopt_pages_rw_access: the copy to or from the memory's owner (copy_{to,from}_user, or the
        // slow path's pin) can fault; the pieces before it were already copied.
        this.ctx.inject('user-copy');
        const n = Number(p.last - p.start + 1n);
        let byte = Number(p.start - a.iova) + a.pageOffset;
        let left = n;
        while (left > 0) {
          const idx = a.pageIndex + Math.floor(byte / PAGE_SIZE);
          const off = byte % PAGE_SIZE;
          const k = Math.min(left, PAGE_SIZE - off);
          const pfn = a.pages.sourceFrame(idx);
          const pa = pfn * PAGE_SIZE + off;
          if (opts.write) this.ctx.mem.write(pa, data, done, k);
          else this.ctx.mem.read(pa, data, done, k);
          done += k;
          byte += k;
          left -= k;
        }
      });
    });
  }

  /**
   * The teardown IOMMU_DESTROY of its id runs (iommufd_access_destroy): detaches it. Destroy it with
   * `fd.destroy(access.id)`, which also frees the id.
   * @internal
   */
  destroy(): void {
    this.detach();
  }
}

/** Runs a kernel-side step for the typed API: an Errno becomes an IommufdError naming `command`. */
function asCall<T>(command: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Errno) throw new IommufdError(e.code, command, e.detail);
    throw e;
  }
}

/** check_area_prot. */
function checkProt(a: IoptArea, opts: AccessRwOptions): void {
  if (opts.write ? !(a.prot & IOMMU_WRITE) : !(a.prot & IOMMU_READ))
    fail('EPERM', `the area is not ${opts.write ? 'writable' : 'readable'}`);
}

/**
 * iommufd_access_create: a new ACCESS object. A model that pins must take unmap notifications; the
 * kernel WARNs and refuses otherwise, the model gives EINVAL from pinPages.
 */
export function createAccess(ctx: IommufdCtx, ops: AccessOps): IommufdAccess {
  // iommufd_object_alloc can fail (ENOMEM) before anything exists.
  ctx.inject('object-alloc');
  const access = new IommufdAccess(ctx, ops);
  ctx.objects.reserve(access);
  ctx.objects.finalize(access);
  return access;
}
