/**
 * iommufd_ctx: one open /dev/iommu. Holds the object table and the fd-wide options, and gives
 * handlers the user process they act for.
 */
import { ObjectTable, type IommufdObject } from './objects.js';
import type { HostProcess } from '../memory/process.js';
import type { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import { Errno, fail } from '../uapi/errno.js';
import type { DeviceEnv } from './device.js';

/** Per-command state (struct iommufd_ucmd). */
export interface Ucmd {
  /** Copy the struct back even though the command fails (EMSGSIZE, entry_num progress...). */
  respondOnError: boolean;
  /** Objects created by this command: finalized on success, aborted on failure. */
  readonly newObjects: IommufdObject[];
}

export function newUcmd(): Ucmd {
  return { respondOnError: false, newObjects: [] };
}

export class IommufdCtx {
  readonly objects = new ObjectTable();
  /** IOMMU_OPTION_RLIMIT_MODE: 0 = per user (default), 1 = per process. */
  rlimitMode = 0;
  /** The IOAS used by the VFIO compatibility container, 0 when none. */
  vfioIoasId = 0;
  closed = false;

  constructor(
    readonly process: HostProcess,
    readonly mem: PhysicalMemory,
    readonly frames: FrameAllocator,
    /** Host services for the device-side commands. */
    readonly env: DeviceEnv,
  ) {}

  /** Reserves an id for a new object created by `ucmd`; the dispatcher finalizes or aborts it. */
  newObject<T extends IommufdObject>(ucmd: Ucmd, obj: T): T {
    this.objects.reserve(obj);
    ucmd.newObjects.push(obj);
    return obj;
  }

  /** copy_from_user with EFAULT on a bad pointer. */
  copyFromUser(uptr: bigint, length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    if (uptr === 0n) fail('EFAULT', 'NULL user pointer');
    return this.process.copyFromUser(uptr, length);
  }

  /** Faults (EFAULT) when `length` bytes at `uptr` are not all accessible, without copying. */
  checkUser(uptr: bigint, length: number, write: boolean): void {
    if (length === 0) return;
    if (uptr === 0n) fail('EFAULT', 'NULL user pointer');
    this.process.checkAccess(uptr, length, write);
  }

  copyToUser(uptr: bigint, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (uptr === 0n) fail('EFAULT', 'NULL user pointer');
    this.process.copyToUser(uptr, bytes);
  }
}

export { Errno };
