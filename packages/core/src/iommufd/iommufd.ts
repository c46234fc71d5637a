/**
 * An open /dev/iommu: the raw `ioctl(request, bytes)` entry and a typed API over the same handlers.
 */
import { Errno, ERRNO, IommufdError } from '../uapi/errno.js';
import * as U from '../uapi/iommufd.js';
import type { FileOps, HostProcess } from '../memory/process.js';
import { createAccess, type AccessOps, type IommufdAccess } from './access.js';
import type { FieldLayout } from '../uapi/struct.js';
import { newUcmd, IommufdCtx } from './context.js';
import { abortNew, buildIoctlTable, dispatchIoctl, ioctlName, type IoctlOp } from './dispatch.js';
import { bufferArg, valueArg, vfioIoctl } from './vfio-compat.js';
import { vfioApi, type VfioContainer } from './vfio-api.js';
import type { DeviceCommandHandlers } from './device-commands.js';
import * as ioas from './ioas.js';
import type { IovaRange } from './io-pagetable.js';
import { deviceApi, UserScratch } from './typed-device.js';

/** Arguments of {@link Iommufd.ioas}.map, the typed IOMMU_IOAS_MAP (struct iommu_ioas_map). */
export interface MapOptions {
  /** IOAS object id to map into (`ioas_id`). */
  ioasId: number;
  /** Start of the calling process's memory to map, in bytes (`user_va`); it is pinned, so it must be mapped in that process. */
  userVa: bigint;
  /** Bytes to map (`length`); 0 is EINVAL. */
  length: bigint;
  /** Fixed IOVA; allocated when omitted. */
  iova?: bigint;
  /** IOMMU_IOAS_MAP_READABLE: devices may read the range (default true). */
  readable?: boolean;
  /** IOMMU_IOAS_MAP_WRITEABLE: devices may write the range (default true). */
  writeable?: boolean;
}

/** Arguments of {@link Iommufd.ioas}.mapFile, the typed IOMMU_IOAS_MAP_FILE (struct iommu_ioas_map_file). */
export interface MapFileOptions {
  /** IOAS object id to map into (`ioas_id`). */
  ioasId: number;
  /** Memory file (memfd) descriptor in the calling process whose pages are mapped (`fd`). */
  fd: number;
  /** Byte offset into the file of the first byte mapped (`start`). */
  start: bigint;
  /** Bytes to map (`length`). */
  length: bigint;
  /** Fixed IOVA (IOMMU_IOAS_MAP_FIXED_IOVA); allocated by iopt_alloc_iova when omitted. */
  iova?: bigint;
  /** IOMMU_IOAS_MAP_READABLE (default true). */
  readable?: boolean;
  /** IOMMU_IOAS_MAP_WRITEABLE (default true). */
  writeable?: boolean;
}

/** Arguments of {@link Iommufd.ioas}.copy, the typed IOMMU_IOAS_COPY (struct iommu_ioas_copy): maps pages already pinned by one IOAS into another without pinning them again. */
export interface CopyOptions {
  /** IOAS that receives the mapping (`dst_ioas_id`). */
  dstIoasId: number;
  /** IOAS whose existing areas supply the pages (`src_ioas_id`); may equal `dstIoasId`. */
  srcIoasId: number;
  /** First IOVA of the source range, in bytes (`src_iova`); the range must be fully covered by source areas. */
  srcIova: bigint;
  /** Bytes to copy (`length`). */
  length: bigint;
  /** Fixed destination IOVA (IOMMU_IOAS_MAP_FIXED_IOVA); allocated when omitted. */
  dstIova?: bigint;
  /** IOMMU_IOAS_MAP_READABLE on the new mapping (default true). */
  readable?: boolean;
  /** IOMMU_IOAS_MAP_WRITEABLE on the new mapping (default true). */
  writeable?: boolean;
}

function fitsU64(v: unknown): boolean {
  return typeof v === 'bigint' && v >= 0n && v <= U.U64_MAX;
}

const FIELD_MAX: Record<string, number> = { u8: 0xff, u16: 0xffff, u32: 0xffff_ffff };

/**
 * The typed API takes JavaScript values where C has fixed-width fields: a value the field cannot
 * hold (negative, fractional, NaN, too wide) is EINVAL, never silently wrapped (destroy(1.5) must
 * not destroy object 1) nor handed to a handler that assumes the C range.
 */
function checkFieldTypes(fields: readonly FieldLayout[], v: Record<string, unknown>): void {
  for (const f of fields) {
    const xs = f.count > 1 ? (v[f.name] as unknown[]) : [v[f.name]];
    for (const x of Array.isArray(xs) ? xs : [xs]) {
      const ok =
        f.type === 'u64'
          ? fitsU64(x)
          : typeof x === 'number' && Number.isInteger(x) && (f.type === 's32' ? x >= -0x8000_0000 && x <= 0x7fff_ffff : x >= 0 && x <= FIELD_MAX[f.type]);
      if (!ok) throw new Errno('EINVAL', `${f.name} = ${String(x)} does not fit a ${f.type}`);
    }
  }
}

function mapFlags(o: { iova?: bigint; readable?: boolean; writeable?: boolean }): number {
  return (
    (o.iova !== undefined ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0) |
    (o.readable ?? true ? U.IOMMU_IOAS_MAP_READABLE : 0) |
    (o.writeable ?? true ? U.IOMMU_IOAS_MAP_WRITEABLE : 0)
  );
}

/**
 * One open `/dev/iommu` file (struct iommufd_ctx plus its file): the raw {@link Iommufd.ioctl} entry that takes
 * the uAPI structs as bytes, and typed groups (`ioas`, `hwpt`, `fault`, `viommu`, ...) that run the same
 * handlers on struct values. Typed calls throw {@link IommufdError} carrying the kernel's errno; raw ioctls
 * return it negated and keep it in {@link Iommufd.lastError}.
 */
export class Iommufd {
  /** This open file's number in the process's file table. */
  readonly fd: number;
  /**
   * The per-file state (struct iommufd_ctx): object table, owning process, rlimit mode, VFIO compat IOAS.
   * @internal
   */
  readonly ctx: IommufdCtx;
  private readonly table: IoctlOp[];
  /** The last error a raw ioctl returned, with the kernel-side reason, for diagnostics. */
  lastError: IommufdError | null = null;

  /** IOAS commands: allocation, map/unmap/copy, IOVA ranges, the HUGE_PAGES option and CHANGE_PROCESS. */
  readonly ioas = {
    /** IOMMU_IOAS_ALLOC: a new empty IOAS; returns its object id (`out_ioas_id`). */
    alloc: (): number => this.run(U.iommu_ioas_alloc, 'IOAS_ALLOC', {}).out_ioas_id,
    /** IOMMU_IOAS_MAP (iopt_map_user_pages): pins `userVa` and maps it into the IOAS and every attached domain; returns the IOVA used. */
    map: (o: MapOptions): bigint =>
      this.run(U.iommu_ioas_map, 'IOAS_MAP', { flags: mapFlags(o), ioas_id: o.ioasId, user_va: o.userVa, length: o.length, iova: o.iova ?? 0n }).iova,
    /** IOMMU_IOAS_MAP_FILE (iopt_map_file_pages): maps pages of a memfd; returns the IOVA used. */
    mapFile: (o: MapFileOptions): bigint =>
      this.run(U.iommu_ioas_map_file, 'IOAS_MAP_FILE', { flags: mapFlags(o), ioas_id: o.ioasId, fd: o.fd, start: o.start, length: o.length, iova: o.iova ?? 0n }).iova,
    /** IOMMU_IOAS_COPY (iopt_get_pages + iopt_map_pages): shares the source areas' pages with the destination IOAS; returns the destination IOVA. */
    copy: (o: CopyOptions): bigint =>
      this.run(U.iommu_ioas_copy, 'IOAS_COPY', {
        flags: mapFlags({ iova: o.dstIova, readable: o.readable, writeable: o.writeable }),
        dst_ioas_id: o.dstIoasId,
        src_ioas_id: o.srcIoasId,
        length: o.length,
        dst_iova: o.dstIova ?? 0n,
        src_iova: o.srcIova,
      }).dst_iova,
    /** Returns the bytes unmapped. */
    unmap: (ioasId: number, iova: bigint, length: bigint): bigint => this.run(U.iommu_ioas_unmap, 'IOAS_UNMAP', { ioas_id: ioasId, iova, length }).length,
    /** IOMMU_IOAS_UNMAP with iova 0 and length U64_MAX (iopt_unmap_all): removes every area; returns the bytes unmapped. */
    unmapAll: (ioasId: number): bigint => this.run(U.iommu_ioas_unmap, 'IOAS_UNMAP', { ioas_id: ioasId, iova: 0n, length: U.U64_MAX }).length,
    /** IOMMU_IOAS_IOVA_RANGES: the holes between the reserved ranges (devices' reserved regions, domains' out-of-aperture space); the allowed list does not narrow it. */
    iovaRanges: (ioasId: number): {
      /** Usable ranges, ascending, `last` inclusive. */
      ranges: IovaRange[];
      /** `out_iova_alignment`: bytes every IOVA and length must be a multiple of (at least the attached domains' smallest page size). */
      alignment: bigint;
    } => this.call('IOMMU_IOAS_IOVA_RANGES', () => ioas.ioasIovaRanges(this.ctx, ioasId)),
    /** IOMMU_IOAS_ALLOW_IOVAS (iopt_set_allow_iova): replaces the allowed list, inside which automatic IOVAs are then chosen. EINVAL for start >= last or overlapping ranges, EADDRINUSE when one meets a reserved range. */

    allowIovas: (ioasId: number, ranges: IovaRange[]): void =>
      this.call('IOMMU_IOAS_ALLOW_IOVAS', () => {
        for (const r of ranges) if (!fitsU64(r.start) || !fitsU64(r.last)) throw new Errno('EINVAL', 'an IOVA range bound does not fit a u64');
        ioas.ioasAllowIovas(this.ctx, ioasId, ranges);
      }),
    /** IOMMU_OPTION HUGE_PAGES, OP_GET on this IOAS: whether domains may use pages larger than 4 KiB. */
    getHugePages: (ioasId: number): boolean =>
      this.run(U.iommu_option, 'OPTION', { option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET, object_id: ioasId }).val64 === 1n,
    /** IOMMU_OPTION HUGE_PAGES, OP_SET (iopt_disable_large_pages / iopt_enable_large_pages). */
    setHugePages: (ioasId: number, enable: boolean): void => {
      this.run(U.iommu_option, 'OPTION', { option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_SET, object_id: ioasId, val64: enable ? 1n : 0n });
    },
    /** IOMMU_IOAS_CHANGE_PROCESS: moves the pin accounting of every file-backed area to the calling process; EINVAL if any area maps user memory. */
    changeProcess: (): void => {
      this.run(U.iommu_ioas_change_process, 'IOAS_CHANGE_PROCESS', {});
    },
  };

  /** IOMMU_OPTION on the iommufd itself (object_id 0). */
  readonly option = {
    /** RLIMIT_MODE, OP_GET: 0 charges pins to the user's RLIMIT_MEMLOCK, 1 to the process's pinned_vm. */
    getRlimitMode: (): number => Number(this.run(U.iommu_option, 'OPTION', { option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET }).val64),
    /** RLIMIT_MODE, OP_SET (iommufd_option_rlimit_mode): EPERM without CAP_SYS_RESOURCE, EBUSY once any object exists. */
    setRlimitMode: (mode: 0 | 1): void => {
      this.run(U.iommu_option, 'OPTION', { option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: BigInt(mode) });
    },
  };

  /** IOMMU_VFIO_IOAS: the IOAS the VFIO type1 compatibility layer uses on this fd. */
  readonly vfioIoas = {
    /** IOMMU_VFIO_IOAS_GET: its id; ENODEV when none is set. */
    get: (): number => this.run(U.iommu_vfio_ioas, 'VFIO_IOAS', { op: U.IOMMU_VFIO_IOAS_GET }).ioas_id,
    /** IOMMU_VFIO_IOAS_SET: uses this IOAS (ENOENT if it is not one). */
    set: (ioasId: number): void => {
      this.run(U.iommu_vfio_ioas, 'VFIO_IOAS', { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioasId });
    },
    /** IOMMU_VFIO_IOAS_CLEAR: forgets the compatibility IOAS (the IOAS itself stays). */
    clear: (): void => {
      this.run(U.iommu_vfio_ioas, 'VFIO_IOAS', { op: U.IOMMU_VFIO_IOAS_CLEAR });
    },
  };

  /** Emulated-device accesses (IOMMUFD_OBJ_ACCESS), as an mdev-like device model creates them. */
  readonly access = {
    /** iommufd_access_create: `ops.unmap` makes it an access that may pin pages. */
    create: (ops: AccessOps = {}): IommufdAccess => this.call('iommufd_access_create', () => createAccess(this.ctx, ops)),
  };

  /**
   * Runs `fn` with `proc` as the calling process (current): its memory is what user pointers and
   * user_va point into, and new pins are charged to it. For a forked child using the same fd.
   */
  asProcess<T>(proc: HostProcess, fn: () => T): T {
    const prev = this.ctx.process;
    this.ctx.process = proc;
    try {
      return fn();
    } finally {
      this.ctx.process = prev;
    }
  }

  /** The VFIO type1 container ioctls on this fd (vfio_compat.c). */
  readonly vfio: VfioContainer;

  private readonly dev: ReturnType<typeof deviceApi>;
  /** IOMMU_HWPT_ALLOC, HWPT_INVALIDATE, dirty tracking. */
  get hwpt() {
    return this.dev.hwpt;
  }
  /** IOMMU_FAULT_QUEUE_ALLOC and a reader for fault fds. */
  get fault() {
    return this.dev.fault;
  }
  /** IOMMU_VIOMMU_ALLOC and HWPT_INVALIDATE through a vIOMMU. */
  get viommu() {
    return this.dev.viommu;
  }
  /** IOMMU_VDEVICE_ALLOC: a device's ID as the guest's vIOMMU sees it. */
  get vdevice() {
    return this.dev.vdevice;
  }
  /** IOMMU_VEVENTQ_ALLOC and a reader for vEVENTQ fds. */
  get veventq() {
    return this.dev.veventq;
  }
  /** IOMMU_GET_HW_INFO. */
  getHwInfo(devId: number, opts?: { type?: number; dataLen?: number }) {
    return this.dev.getHwInfo(devId, opts);
  }

  /**
   * Opened by `Host.openIommufd()`.
   * @internal
   */
  constructor(ctx: IommufdCtx, devHandlers: DeviceCommandHandlers, installFd: (ops: FileOps) => number) {
    this.ctx = ctx;
    this.dev = deviceApi(this, new UserScratch(ctx.process));
    this.vfio = vfioApi(ctx);
    this.table = buildIoctlTable(devHandlers);
    this.fd = installFd({ kind: 'iommufd', release: () => this.release() });
  }

  /** Records a failed command as `lastError` (made once: a closure per call would be garbage per ioctl). */
  private readonly onError = (e: Errno, name: string): void => {
    this.lastError = new IommufdError(e.code, name, e.detail);
  };
  private readonly onDispatchError = (e: Errno, o: IoctlOp | undefined): void => this.onError(e, o?.name ?? 'ioctl');

  /**
   * ioctl(fd, request, arg): 0 (or the value the command returns, such as VFIO_CHECK_EXTENSION's 1)
   * or a negative errno. `arg` is the caller's struct as bytes (outputs are written back into it),
   * or an integer: VFIO_CHECK_EXTENSION's and VFIO_SET_IOMMU's type, or for every other command a
   * pointer into the calling process's memory (0 faults).
   */
  ioctl(request: number, arg: Uint8Array | number | bigint = 0n): number {
    if (this.ctx.closed) return -9; // EBADF
    this.lastError = null;
    const req = request >>> 0;
    const nr = req & 0xff;
    const onError = this.onError;
    // iommufd_fops_ioctl: a number outside the iommufd table goes to the VFIO compatibility layer.
    if (nr < U.IOMMUFD_CMD_BASE || nr - U.IOMMUFD_CMD_BASE >= this.table.length) {
      try {
        return vfioIoctl(this.ctx, req, arg instanceof Uint8Array ? bufferArg(arg) : valueArg(this.ctx, BigInt(arg)));
      } catch (e) {
        if (!(e instanceof Errno)) throw e;
        onError(e, `ioctl 0x${req.toString(16)}`);
        return -ERRNO[e.code];
      }
    }
    if (arg instanceof Uint8Array) return dispatchIoctl(this.ctx, this.table, req, arg, this.onDispatchError);
    return this.ioctlAt(req, BigInt(arg), onError);
  }

  /** ioctl with a pointer argument: the struct is read from the calling process and written back. */
  private ioctlAt(req: number, ptr: bigint, onError: (e: Errno, name: string) => void): number {
    const proc = this.ctx.process;
    let buf: Uint8Array;
    try {
      // copy_struct_from_user reads `size` first, then as many bytes as it says.
      const head = this.ctx.copyFromUser(ptr, 4);
      const size = (head[0] | (head[1] << 8) | (head[2] << 16) | (head[3] << 24)) >>> 0;
      buf = this.ctx.copyFromUser(ptr, Math.max(4, Math.min(size, proc.readableBytes(ptr, size))));
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      onError(e, ioctlName(this.table, req));
      return -ERRNO[e.code];
    }
    const before = buf.slice();
    // The reply goes back to the process inside the command (dispatchIoctl's `respond`), only the
    // bytes the command changed: nothing is copied for a command that answers nothing.
    return dispatchIoctl(
      this.ctx,
      this.table,
      req,
      buf,
      (e, o) => onError(e, o?.name ?? 'ioctl'),
      (reply) => {
        if (reply.some((b, i) => b !== before[i])) this.ctx.copyToUser(ptr, reply);
      },
    );
  }

  /** IOMMU_DESTROY. */
  destroy(id: number): void {
    this.run(U.iommu_destroy, 'DESTROY', { id });
  }

  /** Runs a handler on a struct value: the typed path through the same code as `ioctl`. */
  run<L extends {
    /** The struct with every field zero. */
    zero(): object;
    /** The struct from a partial value (missing fields zero). */
    make(v: never): object;
  }>(layout: L, name: keyof typeof U.IOMMUFD_CMD, init: Partial<U.ValueOfLayout<L>>): U.ValueOfLayout<L> {
    const o = this.table[U.IOMMUFD_CMD[name] - U.IOMMUFD_CMD_BASE];
    const cmd = (layout.make as (v: unknown) => U.ValueOfLayout<L>)({ size: (layout as unknown as { size: number }).size, ...init });
    const ucmd = newUcmd();
    return this.call(o.name, () => {
      checkFieldTypes((layout as unknown as { fields: readonly FieldLayout[] }).fields, cmd as Record<string, unknown>);
      try {
        o.handler(this.ctx, cmd as never, ucmd);
      } catch (e) {
        abortNew(this.ctx, ucmd);
        throw e;
      }
      for (const obj of ucmd.newObjects) this.ctx.objects.finalize(obj);
      return cmd;
    });
  }

  /** Runs `fn`, turning an Errno into an IommufdError that names `command`. */
  call<T>(command: string, fn: () => T): T {
    if (this.ctx.closed) throw new IommufdError('EBADF', command, 'the iommufd is closed');
    try {
      return fn();
    } catch (e) {
      if (e instanceof Errno) throw new IommufdError(e.code, command, e.detail);
      throw e;
    }
  }

  private release(): void {
    this.ctx.closeFile();
  }
}
