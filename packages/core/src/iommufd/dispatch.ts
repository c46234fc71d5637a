/**
 * The ioctl table and dispatcher (main.c). The order of checks is the kernel's: the command number,
 * then the user's `size` against min_size, then copy_struct_from_user (zero-extend a shorter struct,
 * E2BIG for non-zero bytes past the kernel's struct), then the handler; the reply is copied back
 * truncated to the caller's size.
 */
import { Errno, ERRNO } from '../uapi/errno.js';
import * as U from '../uapi/iommufd.js';
import type { StructLayout, FieldSpec } from '../uapi/struct.js';
import { newUcmd, type IommufdCtx, type Ucmd } from './context.js';
import * as ioas from './ioas.js';
import type { DeviceCommandHandlers } from './device-commands.js';

type Handler = (ctx: IommufdCtx, cmd: never, ucmd: Ucmd) => void;

export interface IoctlOp {
  readonly name: string;
  readonly nr: number;
  readonly ioctl: number;
  readonly layout: StructLayout<readonly FieldSpec[]>;
  /** offsetofend of the last member of the first ABI version. */
  readonly minSize: number;
  readonly handler: Handler;
  /**
   * Optional fast path on the caller's struct in place, tried before anything else once the request
   * number is known: it reads `size` itself and runs only when `size` is exactly the kernel's struct
   * size and `arg` holds that many bytes (the checks of `size` then all pass). Returns true when it
   * ran the command successfully (reply written in place), false when it did nothing and the general
   * path must run; a thrown Errno is the command's error, exactly as the handler would have failed. It
   * must create no objects and never set respondOnError.
   */
  readonly fast?: (ctx: IommufdCtx, arg: Uint8Array) => boolean;
}

function op<F extends readonly FieldSpec[]>(
  name: keyof typeof U.IOMMUFD_CMD,
  layout: StructLayout<F>,
  lastMember: F[number][0],
  handler: (ctx: IommufdCtx, cmd: ReturnType<StructLayout<F>['zero']>, ucmd: Ucmd) => void,
  fast?: (ctx: IommufdCtx, arg: Uint8Array) => boolean,
): IoctlOp {
  const nr = U.IOMMUFD_CMD[name];
  return {
    name: `IOMMU_${name}`,
    nr,
    ioctl: U.iommufdIoctl(nr),
    layout: layout as unknown as StructLayout<readonly FieldSpec[]>,
    minSize: layout.offsetofend(lastMember),
    handler: handler as unknown as Handler,
    fast,
  };
}

/** Builds the table; device-side handlers come from the device layer. */
export function buildIoctlTable(dev: DeviceCommandHandlers): IoctlOp[] {
  const ops = [
    op('DESTROY', U.iommu_destroy, 'id', ioas.iommufdDestroy),
    op('IOAS_ALLOC', U.iommu_ioas_alloc, 'out_ioas_id', ioas.iommufdIoasAlloc),
    op('IOAS_ALLOW_IOVAS', U.iommu_ioas_allow_iovas, 'allowed_iovas', ioas.iommufdIoasAllowIovas),
    op('IOAS_COPY', U.iommu_ioas_copy, 'src_iova', ioas.iommufdIoasCopy),
    op('IOAS_IOVA_RANGES', U.iommu_ioas_iova_ranges, 'out_iova_alignment', ioas.iommufdIoasIovaRanges),
    op('IOAS_MAP', U.iommu_ioas_map, 'iova', ioas.iommufdIoasMap, ioas.iommufdIoasMapFast),
    op('IOAS_UNMAP', U.iommu_ioas_unmap, 'length', ioas.iommufdIoasUnmap, ioas.iommufdIoasUnmapFast),
    op('OPTION', U.iommu_option, 'val64', ioas.iommufdOption),
    op('VFIO_IOAS', U.iommu_vfio_ioas, '__reserved', ioas.iommufdVfioIoas),
    op('HWPT_ALLOC', U.iommu_hwpt_alloc, '__reserved', dev.hwptAlloc),
    op('GET_HW_INFO', U.iommu_hw_info, '__reserved', dev.getHwInfo),
    op('HWPT_SET_DIRTY_TRACKING', U.iommu_hwpt_set_dirty_tracking, '__reserved', dev.setDirtyTracking),
    op('HWPT_GET_DIRTY_BITMAP', U.iommu_hwpt_get_dirty_bitmap, 'data', dev.getDirtyBitmap),
    op('HWPT_INVALIDATE', U.iommu_hwpt_invalidate, '__reserved', dev.invalidate),
    op('FAULT_QUEUE_ALLOC', U.iommu_fault_alloc, 'out_fault_fd', dev.faultQueueAlloc),
    op('IOAS_MAP_FILE', U.iommu_ioas_map_file, 'iova', ioas.iommufdIoasMapFile),
    op('VIOMMU_ALLOC', U.iommu_viommu_alloc, 'out_viommu_id', dev.viommuAlloc),
    op('VDEVICE_ALLOC', U.iommu_vdevice_alloc, 'virt_id', dev.vdeviceAlloc),
    op('IOAS_CHANGE_PROCESS', U.iommu_ioas_change_process, '__reserved', ioas.iommufdIoasChangeProcess),
    op('VEVENTQ_ALLOC', U.iommu_veventq_alloc, 'out_veventq_fd', dev.veventqAlloc),
    op('HW_QUEUE_ALLOC', U.iommu_hw_queue_alloc, 'length', dev.hwQueueAlloc),
    op('IOAS_NOIOMMU_GET_PA', U.iommu_ioas_noiommu_get_pa, 'out_phys', ioas.iommufdIoasNoiommuGetPa),
  ];
  const table: IoctlOp[] = [];
  for (const o of ops) table[o.nr - U.IOMMUFD_CMD_BASE] = o;
  return table;
}

/** Ioctl name for a request number, for error messages. */
export function ioctlName(table: readonly IoctlOp[], request: number): string {
  const o = table[(request & 0xff) - U.IOMMUFD_CMD_BASE];
  return o && o.ioctl === request ? o.name : `ioctl 0x${request.toString(16)}`;
}

/**
 * Runs one ioctl against `arg`, the user's buffer. Returns 0 or a negative errno; never throws for
 * bad input. `onError` sees the Errno for diagnostics.
 */
export function dispatchIoctl(
  ctx: IommufdCtx,
  table: readonly IoctlOp[],
  request: number,
  arg: Uint8Array,
  onError?: (e: Errno, op: IoctlOp | undefined) => void,
  respond?: (reply: Uint8Array) => void,
): number {
  // IOMMUFD_TYPE (0x3b) and IOMMUFD_CMD_BASE (0x80) written out, and the entry compared with undefined
  // rather than tested for truthiness: an imported constant is a context load with a check at each use,
  // and `!o` tests every kind of value in compiled code (every IOAS_MAP of a fault handler comes here).
  const nr = request & 0xff;
  const o = (request >>> 8) === 0x3b && nr >= 0x80 ? table[nr - 0x80] : undefined;
  if (o === undefined || o.ioctl !== request) return -ERRNO.ENOTTY;
  if (o.fast !== undefined) {
    try {
      if (o.fast(ctx, arg)) {
        respond?.(arg);
        return 0;
      }
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      onError?.(e, o);
      return -ERRNO[e.code];
    }
  }
  if (arg.length < 4) return -ERRNO.EFAULT;
  const userSize = (arg[0] | (arg[1] << 8) | (arg[2] << 16) | (arg[3] << 24)) >>> 0;
  if (userSize < o.minSize) return -ERRNO.EINVAL;
  // The kernel reads `size` bytes from the user pointer: a buffer shorter than that faults.
  if (userSize > arg.length) return -ERRNO.EFAULT;
  const kSize = o.layout.size;
  for (let i = kSize; i < userSize; i++) if (arg[i] !== 0) return -ERRNO.E2BIG;
  // copy_struct_from_user: a caller struct at least as large as the kernel's is read in place (its
  // tail was just checked to be zero); a shorter one is zero-extended into a kernel copy first.
  const whole = userSize >= kSize;
  let kbuf = arg;
  if (!whole) {
    kbuf = new Uint8Array(kSize);
    kbuf.set(arg.subarray(0, userSize));
  }
  const cmd = o.layout.decode(kbuf);
  const ucmd = newUcmd();
  // One step of the command: 0, or the negative errno it failed with (anything else aborts and rethrows).
  const step = (fn: () => void): number => {
    try {
      fn();
      return 0;
    } catch (e) {
      if (!(e instanceof Errno)) {
        abortNew(ctx, ucmd);
        throw e;
      }
      onError?.(e, o);
      return -ERRNO[e.code];
    }
  };
  let rc = step(() => o.handler(ctx, cmd as never, ucmd));
  if (rc === 0 || ucmd.respondOnError) {
    // iommufd_ucmd_respond: copy_to_user of min(user size, kernel size) bytes, inside the handler,
    // so that a fault there aborts the command's new objects (main.c iommufd_fops_ioctl aborts
    // ucmd->new_obj when execute fails) and overrides the command's own errno.
    if (whole) o.layout.encode(cmd, arg);
    else arg.set(o.layout.encode(cmd).subarray(0, userSize));
    if (respond) rc = step(() => respond(arg)) || rc;
  }
  if (rc === 0) for (const obj of ucmd.newObjects) ctx.objects.finalize(obj);
  else abortNew(ctx, ucmd);
  return rc;
}

/** A failed command: undo its early steps, then abort the objects it created (iommufd_object_abort_and_destroy). */
export function abortNew(ctx: IommufdCtx, ucmd: Ucmd): void {
  for (let i = ucmd.undo.length - 1; i >= 0; i--) ucmd.undo[i]();
  for (let i = ucmd.newObjects.length - 1; i >= 0; i--) ctx.objects.abort(ucmd.newObjects[i], true);
}
