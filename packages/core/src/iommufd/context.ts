/**
 * iommufd_ctx: one open /dev/iommu. Holds the object table and the fd-wide options, and gives
 * handlers the user process they act for.
 */
import { ObjectTable, type IommufdObject } from './objects.js';
import { RunPages } from './run-pages.js';
import type { FileOps, HostProcess } from '../memory/process.js';
import type { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import { Errno, fail } from '../uapi/errno.js';
import { INJECT_SITES, type InjectSite, type FaultInjector } from '../driver/inject.js';
import type { IotlbFlush } from '../driver/vendor.js';
import type { PageTableMemory } from '../driver/pgtable.js';
import { LeWordView } from '../driver/le.js';

/** How a HWPT reaches the IOTLBs of every unit its tags may be cached in. */
export interface TlbInvalidator extends IotlbFlush {
  /** Invalidate [iovaPfn, iovaPfn + npages) of `tag` for every PASID. */
  flushRange(tag: number, iovaPfn: number, npages: number): void;
}

/**
 * The host services the commands of a context run on (the host implements it). Declared here, at the
 * bottom of the iommufd layer, so that every layer above can take it without importing upwards.
 */
export interface IommufdEnv {
  readonly tlb: TlbInvalidator;
  readonly tableMemory: PageTableMemory;
  /** Asked at every allocation and fallible driver operation (driver/inject.ts). */
  readonly injector: FaultInjector;
}

/** Per-command state (struct iommufd_ucmd). */
export interface Ucmd {
  /** Copy the struct back even though the command fails (EMSGSIZE, entry_num progress...). */
  respondOnError: boolean;
  /** Objects created by this command: finalized on success, aborted on failure. */
  readonly newObjects: IommufdObject[];
  /**
   * Steps the kernel only takes once the reply reached the user (fd_install after
   * iommufd_ucmd_respond): the model takes them early and undoes them, newest first, when the
   * command fails after all.
   */
  readonly undo: (() => void)[];
}

export function newUcmd(): Ucmd {
  return { respondOnError: false, newObjects: [], undo: [] };
}

export class IommufdCtx {
  readonly objects = new ObjectTable();
  /** The pages objects kept as numbers that IOAS_COPY shares between this iommufd's IOASes (run-pages.ts). */
  readonly runPages = new RunPages();
  /** IOMMU_OPTION_RLIMIT_MODE: 0 = per user (default), 1 = per process. */
  rlimitMode = 0;
  /** The IOAS used by the VFIO compatibility container, 0 when none. */
  vfioIoasId = 0;
  /** ictx->no_iommu_mode: a no-IOMMU VFIO device joined the container (only VFIO_NOIOMMU_IOMMU then). */
  noIommuMode = false;
  /** The /dev/iommu fd was closed: no more ioctls. The context lives on while `refs` > 0. */
  closed = false;
  /**
   * References on the context (iommufd_ctx_get): the /dev/iommu file and every open event-queue file
   * (eventq.c iommufd_eventq_init). The objects are torn down when the last one goes.
   */
  private refs = 1;
  /** Set once the last reference went and every object was destroyed. */
  released = false;
  /** Objects the teardown could not destroy (a reference-count bug), for diagnostics and tests. */
  leaks: string[] = [];
  /** The words of the struct IOAS_MAP's fast path reads (a caller hands the same buffer again and again). */
  readonly mapWords = new LeWordView();

  constructor(
    /** The calling process (current); Iommufd.asProcess runs commands as another one. */
    public process: HostProcess,
    readonly mem: PhysicalMemory,
    readonly frames: FrameAllocator,
    /** Host services for the device-side commands. */
    readonly env: IommufdEnv,
  ) {}

  /** Reserves an id for a new object created by `ucmd`; the dispatcher finalizes or aborts it. */
  newObject<T extends IommufdObject>(ucmd: Ucmd, obj: T): T {
    if (this.env.injector.shouldFail('object-alloc')) {
      // iommufd_object_alloc failed: undo what the caller set up for the object, which has no id yet.
      obj.abort();
      fail('ENOMEM', 'iommufd_object_alloc failed (injected)');
    }
    this.objects.reserve(obj);
    ucmd.newObjects.push(obj);
    return obj;
  }

  /**
   * A reference on the context for an event-queue file, dropped by the returned function (the file's last
   * close; once, however often it is called): closing /dev/iommu first defers the teardown to that close
   * instead of leaking what the queue pins.
   */
  hold(): () => void {
    this.refs++;
    let open = true;
    return () => {
      if (open) {
        open = false;
        this.put();
      }
    };
  }

  /** `ops` holding a reference on the context until its last close (see hold). */
  holdFile(ops: FileOps): FileOps {
    const drop = this.hold();
    return {
      ...ops,
      release: () => {
        ops.release();
        drop();
      },
    };
  }

  /** Close of the /dev/iommu file itself. */
  closeFile(): void {
    if (this.closed) return;
    this.closed = true;
    this.put();
  }

  /** iommufd_ctx_put: the last reference destroys every object (iommufd_fops_release). */
  private put(): void {
    if (--this.refs > 0) return;
    this.leaks = this.objects.destroyAll();
    this.released = true;
  }

  /** copy_from_user with EFAULT on a bad pointer. */
  copyFromUser(uptr: bigint, length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    if (uptr === 0n) fail('EFAULT', 'NULL user pointer');
    this.injectUserCopy();
    return this.process.copyFromUser(uptr, length);
  }

  /** Faults (EFAULT) when `length` bytes at `uptr` are not all accessible, without copying. */
  checkUser(uptr: bigint, length: number, write: boolean): void {
    if (length === 0) return;
    if (uptr === 0n) fail('EFAULT', 'NULL user pointer');
    this.injectUserCopy();
    this.process.checkAccess(uptr, length, write);
  }

  copyToUser(uptr: bigint, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (uptr === 0n) fail('EFAULT', 'NULL user pointer');
    this.injectUserCopy();
    this.process.copyToUser(uptr, bytes);
  }

  private injectUserCopy(): void {
    if (this.env.injector.shouldFail('user-copy')) fail('EFAULT', 'user copy failed (injected)');
  }

  /** Asks the injector about `site` and fails with its errno (INJECT_SITES) when told to. */
  inject(site: InjectSite): void {
    if (this.env.injector.shouldFail(site)) fail(INJECT_SITES[site], `${site} failed (injected)`);
  }
}

export { Errno };
