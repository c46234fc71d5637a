/**
 * The typed API of the device-side commands. Buffers passed by the caller are copied into the
 * process's memory (a scratch mapping, as a C wrapper would keep them on its stack) so that the
 * commands run through exactly the handlers the raw ioctl path uses.
 */
import * as U from '../uapi/iommufd.js';
import { IommufdError } from '../uapi/errno.js';
import type { HostProcess } from '../memory/process.js';
import { ObjType } from './objects.js';
import type { FaultQueue, VEventQueue } from './eventq.js';
import type { IommufdCtx } from './context.js';

/**
 * What the typed device API needs of an Iommufd (iommufd.ts, which builds this API and so sits above
 * it): the context and the typed command runner.
 */
export interface CommandRunner {
  readonly ctx: IommufdCtx;
  run<L extends { zero(): object; make(v: never): object }>(layout: L, name: keyof typeof U.IOMMUFD_CMD, init: Partial<U.ValueOfLayout<L>>): U.ValueOfLayout<L>;
}

/** A scratch area in the process for the typed API's user pointers. */
export class UserScratch {
  private va = 0n;
  private size = 0;
  constructor(private readonly process: HostProcess) {}

  /** Copies `bytes` into process memory and returns their address (0 for an empty buffer). */
  put(bytes: Uint8Array, at = 0): bigint {
    if (bytes.length === 0) return 0n;
    this.ensure(at + bytes.length);
    this.process.copyToUser(this.va + BigInt(at), bytes);
    return this.va + BigInt(at);
  }

  /** A zeroed area of `length` bytes. */
  area(length: number, at = 0): bigint {
    this.ensure(at + length);
    if (length > 0) this.process.copyToUser(this.va + BigInt(at), new Uint8Array(length));
    return this.va + BigInt(at);
  }

  get(va: bigint, length: number): Uint8Array {
    return this.process.copyFromUser(va, length);
  }

  private ensure(n: number): void {
    if (n <= this.size) return;
    const size = Math.max(65536, 2 ** Math.ceil(Math.log2(n)));
    if (this.size > 0) this.process.munmap(this.va, this.size);
    this.va = this.process.mmap(size);
    this.size = size;
  }
}

/** Arguments of {@link Iommufd.hwpt}.alloc, the typed IOMMU_HWPT_ALLOC (struct iommu_hwpt_alloc). */
export interface HwptAllocOptions {
  /** Device object id whose IOMMU builds the HWPT (`dev_id`); the device need not be attached. */
  devId: number;
  /** IOAS, nesting-parent HWPT or vIOMMU. */
  ptId: number;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT: a paging HWPT that nested (stage-1) HWPTs may use as their parent. */
  nestParent?: boolean;
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING: the domain must support dirty tracking (EOPNOTSUPP otherwise). */
  dirtyTracking?: boolean;
  /** IOMMU_HWPT_ALLOC_PASID: the HWPT may be attached to a PASID of the device. */
  pasid?: boolean;
  /** A FAULT object: the HWPT reports recoverable faults there. */
  faultId?: number;
  /** Vendor data for nested HWPTs: IOMMU_HWPT_DATA_* type and the struct bytes. */
  data?: {
    /** `data_type`, an IOMMU_HWPT_DATA_* value (e.g. IOMMU_HWPT_DATA_VTD_S1). */
    type: number;
    /** The vendor struct as little-endian bytes (`data_uptr`, `data_len`). */
    bytes: Uint8Array;
  };
}

/** Result of {@link Iommufd.getHwInfo}, the typed IOMMU_GET_HW_INFO (struct iommu_hw_info). */
export interface HwInfo {
  /** `out_data_type`: the IOMMU_HW_INFO_TYPE_* of `data` (e.g. INTEL_VTD, ARM_SMMUV3). */
  type: number;
  /** The vendor's info struct as copied out, at most the requested length. */
  data: Uint8Array;
  /** The kernel's length of the vendor data (may exceed what was copied). */
  dataLen: number;
  /** `out_max_pasid_log2`: PASID width the device supports, in bits (0: no PASID). */
  maxPasidLog2: number;
  /** `out_capabilities`: IOMMU_HW_CAP_* bits (DIRTY_TRACKING, PCI_PASID_EXEC, PCI_PASID_PRIV, PCI_ATS_NOT_SUPPORTED). */

  capabilities: bigint;
}

/** Arguments of an invalidation, the typed IOMMU_HWPT_INVALIDATE (struct iommu_hwpt_invalidate). */
export interface InvalidateOptions {
  /** `data_type`: IOMMU_HWPT_INVALIDATE_DATA_* of every entry (e.g. VTD_S1, ARM_SMMUV3). */
  dataType: number;
  /** `entry_len`: bytes per entry; shorter than the vendor struct's required fields or longer than the kernel's struct is EINVAL. */

  entryLen: number;
  /** The entries back to back, `entryNum * entryLen` bytes. */
  entries: Uint8Array;
  /** `entry_num`: how many entries to process. */
  entryNum: number;
}

/** A page fault group as read from a fault queue. */
export interface PageFaultGroup {
  /** Kernel-assigned cookie of the group; the response echoes it (`iommu_hwpt_page_response.cookie`). */
  cookie: number;
  /** Device object id that faulted (`dev_id`). */
  devId: number;
  /** PASID of the request, or null when IOMMU_PGFAULT_FLAGS_PASID_VALID is clear. */
  pasid: number | null;
  /** PRI page request group index (`grpid`). */
  grpid: number;
  /** The group's requests in arrival order, one per struct iommu_hwpt_pgfault; the last carries IOMMU_PGFAULT_FLAGS_LAST_PAGE. */
  faults: {
    /** Faulting address (`addr`), page aligned. */
    addr: bigint;
    /** IOMMU_PGFAULT_PERM_* bits the access wanted (READ, WRITE, EXEC, PRIV). */
    perm: number;
    /** IOMMU_PGFAULT_FLAGS_* bits of the record (PASID_VALID, LAST_PAGE). */
    flags: number;
  }[];
}

export function deviceApi(fd: CommandRunner, scratch: UserScratch) {
  return {
    hwpt: {
      /** IOMMU_HWPT_ALLOC: a paging HWPT on an IOAS, or a nested one on a parent HWPT or vIOMMU; returns `out_hwpt_id`. */
      alloc: (o: HwptAllocOptions): number => {
        const flags =
          (o.nestParent ? U.IOMMU_HWPT_ALLOC_NEST_PARENT : 0) |
          (o.dirtyTracking ? U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0) |
          (o.pasid ? U.IOMMU_HWPT_ALLOC_PASID : 0) |
          (o.faultId !== undefined ? U.IOMMU_HWPT_FAULT_ID_VALID : 0);
        const data = o.data ? scratch.put(o.data.bytes) : 0n;
        return fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', {
          flags,
          dev_id: o.devId,
          pt_id: o.ptId,
          data_type: o.data?.type ?? 0,
          data_len: o.data?.bytes.length ?? 0,
          data_uptr: data,
          fault_id: o.faultId ?? 0,
        }).out_hwpt_id;
      },
      /** Returns the number of entries handled; on error the IommufdError is thrown after progress. */
      invalidate: (hwptId: number, o: InvalidateOptions): number => {
        const uptr = scratch.put(o.entries);
        return fd.run(U.iommu_hwpt_invalidate, 'HWPT_INVALIDATE', { hwpt_id: hwptId, data_uptr: uptr, data_type: o.dataType, entry_len: o.entryLen, entry_num: o.entryNum }).entry_num;
      },
      /** IOMMU_HWPT_SET_DIRTY_TRACKING: starts or stops dirty tracking on a paging HWPT allocated with dirtyTracking. */
      setDirtyTracking: (hwptId: number, enable: boolean): void => {
        fd.run(U.iommu_hwpt_set_dirty_tracking, 'HWPT_SET_DIRTY_TRACKING', { hwpt_id: hwptId, flags: enable ? U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0 });
      },
      /** Returns the bitmap: bit n set when page n (of page_size) from `iova` is dirty. */
      getDirtyBitmap: (hwptId: number, o: { iova: bigint; length: bigint; pageSize?: bigint; noClear?: boolean }): Uint8Array => {
        const pageSize = o.pageSize ?? 4096n;
        const bytes = Number(((o.length / pageSize + 63n) / 64n) * 8n);
        const uptr = scratch.area(bytes);
        fd.run(U.iommu_hwpt_get_dirty_bitmap, 'HWPT_GET_DIRTY_BITMAP', {
          hwpt_id: hwptId,
          flags: o.noClear ? U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0,
          iova: o.iova,
          length: o.length,
          page_size: pageSize,
          data: uptr,
        });
        return scratch.get(uptr, bytes);
      },
    },
    getHwInfo: (devId: number, o: { type?: number; dataLen?: number } = {}): HwInfo => {
      const len = o.dataLen ?? 256;
      const uptr = len > 0 ? scratch.area(len) : 0n;
      const r = fd.run(U.iommu_hw_info, 'GET_HW_INFO', {
        flags: o.type !== undefined ? U.IOMMU_HW_INFO_FLAG_INPUT_TYPE : 0,
        dev_id: devId,
        data_len: len,
        data_uptr: uptr,
        data_type: o.type ?? 0,
      });
      return { type: r.data_type, data: scratch.get(uptr, Math.min(len, r.data_len)), dataLen: r.data_len, maxPasidLog2: r.out_max_pasid_log2, capabilities: r.out_capabilities };
    },
    fault: {
      /** IOMMU_FAULT_QUEUE_ALLOC: the object id and its fd in the process. */
      alloc: (): {
        /** FAULT object id (`out_fault_id`), to pass as HwptAllocOptions.faultId. */
        id: number;
        /** File descriptor to read faults from and write responses to (`out_fault_fd`). */
        fd: number;
      } => {
        const r = fd.run(U.iommu_fault_alloc, 'FAULT_QUEUE_ALLOC', {});
        return { id: r.out_fault_id, fd: r.out_fault_fd };
      },
      /** An idiomatic reader over a fault fd. */
      reader: (faultFd: number): FaultReader => new FaultReader(fd, faultFd),
    },
    viommu: {
      /** IOMMU_VIOMMU_ALLOC: a vIOMMU of `type` (IOMMU_VIOMMU_TYPE_*) over a nesting-parent HWPT, for the device's IOMMU; returns `out_viommu_id`. */
      alloc: (o: { devId: number; type: number; hwptId: number; data?: Uint8Array }): number => {
        const data = o.data ?? new Uint8Array(0);
        return fd.run(U.iommu_viommu_alloc, 'VIOMMU_ALLOC', { type: o.type, dev_id: o.devId, hwpt_id: o.hwptId, data_len: data.length, data_uptr: scratch.put(data) }).out_viommu_id;
      },
      /** IOMMU_HWPT_INVALIDATE with a vIOMMU id in `hwpt_id` (device cache invalidations); returns the entries handled. */
      invalidate: (viommuId: number, o: InvalidateOptions): number => {
        const uptr = scratch.put(o.entries);
        return fd.run(U.iommu_hwpt_invalidate, 'HWPT_INVALIDATE', { hwpt_id: viommuId, data_uptr: uptr, data_type: o.dataType, entry_len: o.entryLen, entry_num: o.entryNum }).entry_num;
      },
    },
    vdevice: {
      /** IOMMU_VDEVICE_ALLOC: binds a device to a vIOMMU with the guest's ID for it (`virt_id`, e.g. a vSID or vRID); returns `out_vdevice_id`. */
      alloc: (o: { viommuId: number; devId: number; virtId: bigint }): number =>
        fd.run(U.iommu_vdevice_alloc, 'VDEVICE_ALLOC', { viommu_id: o.viommuId, dev_id: o.devId, virt_id: o.virtId }).out_vdevice_id,
    },
    veventq: {
      /** IOMMU_VEVENTQ_ALLOC: an event queue of `type` (IOMMU_VEVENTQ_TYPE_*) on a vIOMMU holding up to `depth` events. */
      alloc: (o: { viommuId: number; type: number; depth: number }): {
        /** VEVENTQ object id (`out_veventq_id`). */
        id: number;
        /** File descriptor the events are read from (`out_veventq_fd`). */
        fd: number;
      } => {
        const r = fd.run(U.iommu_veventq_alloc, 'VEVENTQ_ALLOC', { viommu_id: o.viommuId, type: o.type, veventq_depth: o.depth });
        return { id: r.out_veventq_id, fd: r.out_veventq_fd };
      },
      /** Reads and splits vEVENTs: `{ lost, sequence, data }` records. */
      read: (
        veventqFd: number,
        length = 4096,
      ): {
        /** A LOST_EVENTS header: events were dropped before the next one. */
        lost: boolean;
        /** `sequence` of the struct iommufd_vevent_header, incremented per event (wraps at 2^31). */
        sequence: number;
        /** The vendor's event struct, empty for a LOST_EVENTS header. */
        data: Uint8Array;
      }[] => {
        const q = findQueue<VEventQueue>(fd, veventqFd, ObjType.VEVENTQ);
        if (!q) throw new IommufdError('EBADF', 'read', `fd ${veventqFd} is not a vEVENTQ of this iommufd`);
        const bytes = fd.ctx.process.read(veventqFd, length);
        return splitVEvents(bytes, q.eventDataSize);
      },
      /** An idiomatic reader over a vEVENTQ fd. */
      reader: (veventqFd: number): VEventReader => new VEventReader(fd, veventqFd),
    },
  };
}

/** One record read from a vEVENTQ fd (struct iommufd_vevent_header plus the vendor's event). */
export interface VEvent {
  /** A LOST_EVENTS header: events were dropped before this one (see the sequence gap). */
  lost: boolean;
  /** The header's `sequence`: consecutive per queue, so a gap shows how many events were lost. */
  sequence: number;
  /** The vendor's event (e.g. iommu_vevent_arm_smmuv3), empty for a LOST_EVENTS header. */
  data: Uint8Array;
}

/** Reads vEVENTs: `for await (const ev of reader.events(signal))`. */
export class VEventReader {
  /**
   * Made by the `reader()` of `Iommufd.veventq` / `Iommufd.fault`.
   * @internal
   */
  constructor(
    private readonly fd: CommandRunner,
    /** The vEVENTQ file descriptor this reader reads. */
    readonly veventqFd: number,
  ) {}

  private queue(): VEventQueue {
    const q = findQueue<VEventQueue>(this.fd, this.veventqFd, ObjType.VEVENTQ);
    if (!q) throw new IommufdError('EBADF', 'read', `fd ${this.veventqFd} is not a vEVENTQ of this iommufd`);
    return q;
  }

  /** Every event queued now (possibly none). */
  readAvailable(maxBytes = 65536): VEvent[] {
    const q = this.queue();
    return splitVEvents(this.fd.ctx.process.read(this.veventqFd, maxBytes), q.eventDataSize);
  }

  /** Waits for events and yields them until `signal` aborts. */
  async *events(signal?: AbortSignal): AsyncGenerator<VEvent> {
    for (;;) {
      await this.queue().waitReadable(signal);
      for (const ev of this.readAvailable()) yield ev;
    }
  }
}

function findQueue<T>(fd: CommandRunner, fileFd: number, type: ObjType): T | undefined {
  for (const o of fd.ctx.objects.objects()) if (o.type === type && (o as unknown as { fd: number }).fd === fileFd) return o as unknown as T;
  return undefined;
}

function splitVEvents(bytes: Uint8Array, dataSize: number): { lost: boolean; sequence: number; data: Uint8Array }[] {
  const out: { lost: boolean; sequence: number; data: Uint8Array }[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  while (off + 8 <= bytes.length) {
    const flags = dv.getUint32(off, true);
    const sequence = dv.getUint32(off + 4, true);
    const lost = (flags & U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0;
    const n = lost ? 0 : dataSize;
    out.push({ lost, sequence, data: bytes.slice(off + 8, off + 8 + n) });
    off += 8 + n;
  }
  return out;
}

/**
 * Reads fault groups from a fault fd and answers them: `for await (const g of reader.groups(signal))`
 * then `reader.respond(g, 'success')`.
 */
export class FaultReader {
  /**
   * Made by the `reader()` of `Iommufd.veventq` / `Iommufd.fault`.
   * @internal
   */
  constructor(
    private readonly fd: CommandRunner,
    /** The fault queue file descriptor this reader reads and answers on. */
    readonly faultFd: number,
  ) {}

  private queue(): FaultQueue {
    const q = findQueue<FaultQueue>(this.fd, this.faultFd, ObjType.FAULT);
    if (!q) throw new IommufdError('EBADF', 'read', `fd ${this.faultFd} is not a fault queue of this iommufd`);
    return q;
  }

  /** Reads every group available now (possibly none). */
  readAvailable(maxGroups = 64): PageFaultGroup[] {
    // Only a fault fd yields whole 40-byte records: refuse any other file (EBADF) before decoding.
    this.queue();
    const bytes = this.fd.ctx.process.read(this.faultFd, maxGroups * 16 * U.iommu_hwpt_pgfault.size);
    const groups: PageFaultGroup[] = [];
    let cur: PageFaultGroup | null = null;
    for (let off = 0; off < bytes.length; off += U.iommu_hwpt_pgfault.size) {
      const r = U.iommu_hwpt_pgfault.decode(bytes, off);
      if (!cur || cur.cookie !== r.cookie) {
        cur = { cookie: r.cookie, devId: r.dev_id, pasid: r.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID ? r.pasid : null, grpid: r.grpid, faults: [] };
        groups.push(cur);
      }
      cur.faults.push({ addr: r.addr, perm: r.perm, flags: r.flags });
    }
    return groups;
  }

  /** Waits for groups and yields them until `signal` aborts. */
  async *groups(signal?: AbortSignal): AsyncGenerator<PageFaultGroup> {
    for (;;) {
      await this.queue().waitReadable(signal);
      for (const g of this.readAvailable()) yield g;
    }
  }

  /**
   * Answers a group by writing a struct iommu_hwpt_page_response to the fault fd (iommufd_fault_fops_write):
   * `group` is the group or its cookie, `code` IOMMUFD_PAGE_RESP_SUCCESS / _INVALID or a raw code.
   * The device's pending PRI group completes with that code.
   */
  respond(group: PageFaultGroup | number, code: 'success' | 'invalid' | number): void {

    this.queue();
    const b = U.iommu_hwpt_page_response.encode({
      cookie: typeof group === 'number' ? group : group.cookie,
      code: code === 'success' ? U.IOMMUFD_PAGE_RESP_SUCCESS : code === 'invalid' ? U.IOMMUFD_PAGE_RESP_INVALID : code,
    });
    this.fd.ctx.process.write(this.faultFd, b);
  }
}
