/**
 * A PCI device behind an IOMMU unit: VFIO's view of it (bind to an iommufd, attach, detach) and its
 * DMA engine, which issues reads and writes through the unit and, with PRI, waits for page responses.
 */
import { Errno, IommufdError } from '../uapi/errno.js';
import { PERM_READ, PERM_WRITE } from '../driver/pgtable.js';
import type { FailedAccess, IommuFault, PageRequestFields, TranslationFailure } from '../driver/fault.js';
import type { DeviceInfo, UnitOps } from '../driver/vendor.js';
import { codecStalls } from '../driver/fault.js';
import { PAGE_SIZE } from '../memory/physical.js';
import { BIND_BLOCKED, BIND_NESTED, BIND_PAGING, Binding, TranslateResult, type IommuUnit } from '../translate/unit.js';
import { explainTranslation, type ExplainedTranslation } from '../translate/explain.js';
import { HwptNested, HwptPaging, type Hwpt } from '../iommufd/hwpt.js';
import { IommufdDevice, NO_PASID, attach, claimDmaOwner, detach, releaseDmaOwner, replace, type DeviceGroup } from '../iommufd/device.js';
import type { Iommufd } from '../iommufd/iommufd.js';
import type { IovaRange } from '../iommufd/io-pagetable.js';
import type { PhysicalMemory } from '../memory/physical.js';
import type { FaultPipeline, PageResponseSink } from '../fault/pipeline.js';
import type { HostLog } from '../fault/stages.js';
import { PRG_INDEX_LAST, PriFlowControl } from './pri.js';

/** A DMA that the IOMMU refused; carries the normalized fault. */
export class DmaFault extends Error {
  constructor(
    /** The fault as the vendor's record decodes it (reason, address, PASID, stage). */
    readonly fault: IommuFault,
    /**
     * How it ended: 'page-response' (a PRI page request answered INVALID/FAILURE), 'stall-abort' (a
     * stalled transaction terminated by CMD_RESUME Abort), 'reported' (an unrecoverable fault).
     */
    readonly outcome: string,
  ) {
    super(`DMA ${fault.perm & PERM_WRITE ? 'write' : 'read'} at 0x${fault.addr.toString(16)}${fault.pasid >= 0 ? ` PASID ${fault.pasid}` : ''} faulted: ${fault.reasonText} (${outcome})`);
    this.name = 'DmaFault';
  }
}

/**
 * An IOVA as a device's DMA takes it: a bigint (any 64-bit address), or a number for an address below
 * 2^53 (a non-negative safe integer), which a simulator issuing millions of transfers can pass without
 * making a BigInt per transfer. Both name the same address; anything else is EINVAL.
 */
export type DmaAddress = bigint | number;

/** Options of a device DMA (`dma.read`, `dma.write` and their synchronous forms). */
export interface DmaOptions {
  /** The PASID tagging the transactions; omitted for requests without PASID. */
  pasid?: number;
  /** Retries after a successful page response before the device gives up. */
  maxRetries?: number;
}

/** Options of `dma.read`. */
export interface DmaReadOptions extends DmaOptions {
  /**
   * Read into this buffer instead of a new one: exactly `length` bytes long (EINVAL otherwise); the
   * promise resolves to it. A simulator that reads millions of times reuses one buffer (and one
   * options object) and the read allocates nothing but its promise.
   */
  into?: Uint8Array;
}

const PAGE = BigInt(PAGE_SIZE);
const TWO_53 = 2n ** 53n;
const NO_OPTIONS: DmaOptions = Object.freeze({});

/** The byte address of an IOVA page as a bigint: one BigInt made, not two, below 2^53. */
function pageAddress(iovaPfn: number): bigint {
  return iovaPfn < 2 ** 41 ? BigInt(iovaPfn * PAGE_SIZE) : BigInt(iovaPfn) * PAGE;
}

/** Finished transfers a device keeps for reuse. */
const TRANSFER_POOL = 16;

/**
 * A DMA waiting for page responses, between its page requests: what the loop of an async transfer
 * would keep in its frame. The pipeline calls `pageResponse` (from a microtask) when the group is
 * answered. It is also the page request in numbers that it sends (PageRequestFields: its `pasid` and
 * `perm` are the request's), so that a fault fills one object, not two. Pooled per device, so a
 * faulting read allocates its promise and little else.
 */
class DmaTransfer implements PageResponseSink, PageRequestFields {
  buf: Uint8Array | null = null;
  length = 0;
  /** PERM_READ or PERM_WRITE: the transfer's direction and its page requests' permission. */
  perm = 0;
  /** The PASID of the transactions and of their page requests, -1 for none. */
  pasid = 0;
  maxRetries = 0;
  iovaPfn = 0;
  off = 0;
  done = 0;
  retries = 0;
  // The page request in numbers (PageRequestFields), for a unit whose codec encodes from them: no bigint address.
  rid = 0;
  addrLo = 0;
  addrHi = 0;
  grpid = 0;
  readonly last = true;
  readonly reason = 0;
  readonly reasonText = '';
  readonly stage2 = false;
  /** The access the outstanding page request (or stall) was sent for, refilled for each page that faults. */
  readonly access: FailedAccess = {
    unit: 0,
    rid: 0,
    pasid: 0,
    addr: 0n,
    perm: 0,
    failure: 'not-present',
    stage2: false,
    recoverable: false,
    kind: 'page-request',
    grpid: 0,
    last: true,
    format: '',
    tag: 0,
    contextFault: 0,
  };
  /**
   * The failed translation of the page it stopped at: the device's own result object, taken over when
   * the page failed (the device translates into this transfer's old one from then on), so that the
   * access is described from it when it is needed (`access`, filled only for a stall, a fault
   * reported, an answer that is not SUCCESS, a codec without the numbers path), never copied.
   */
  tr = new TranslateResult();
  /** The outstanding request is a stall (its tag in `access.grpid`), not a page request (its PRG index in `grpid`). */
  stalled = false;
  /** The settling functions of its promise while it runs. */
  settlers: Settlers | null = null;

  constructor(private readonly resume: (t: DmaTransfer, code: number) => void) {}

  pageResponse(code: number): void {
    this.resume(this, code);
  }
}

/**
 * The two settling functions of a transfer's promise, in a new object per promise: the pooled transfer
 * is an old object, and storing a new function into it takes the write barrier's slow path (the
 * remembered set); stored into this new object they take none, and the transfer takes one store of it.
 */
class Settlers {
  constructor(
    readonly resolve: (buf: Uint8Array) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

/**
 * What a PCI device uses of the host it sits in: the memory its DMA reaches and the fault pipeline its
 * failed accesses go to. The host (host.ts), which creates the devices, implements it; declaring it
 * here keeps this module below host.ts.
 */
export interface DeviceHost {
  /** The host's physical memory, which DMA reads and writes after translation. */
  readonly mem: PhysicalMemory;
  /**
   * Where failed accesses, page requests and stalls are reported.
   * @internal
   */
  readonly faults: FaultPipeline;
  /** The kernel log, where bind warns about MSIs that are not isolated. */
  readonly log: HostLog;
  /** iommufd's `allow_unsafe_interrupts` module parameter, read by every bind. */
  readonly allowUnsafeInterrupts: boolean;
}

/**
 * A transaction the bus cannot carry (a 64-bit address, a length, a 20-bit PASID) is refused as
 * EINVAL before anything is sized or translated by it.
 */
function checkDmaArgs(iova: DmaAddress, length: number, opts: DmaOptions): void {
  // `iova * 2^-12 >= 0`, not `iova >= 0`: see copyPages (a compare V8 saw only small integers in is
  // compiled for them, and deoptimizes at the first IOVA from 2^31 up).
  if (typeof iova === 'number' ? !(Number.isSafeInteger(iova) && iova * 0.000244140625 >= 0) : typeof iova !== 'bigint' || iova < 0n || iova > 0xffff_ffff_ffff_ffffn) {
    throw new IommufdError('EINVAL', 'dma', 'the IOVA must be a 64-bit address (a bigint, or a non-negative safe integer)');
  }
  if (!Number.isSafeInteger(length) || length < 0) throw new IommufdError('EINVAL', 'dma', 'the length must be a non-negative integer');
  const pasid = opts.pasid;
  if (pasid !== undefined && pasid !== -1 && !(Number.isInteger(pasid) && pasid >= 0 && pasid < 1 << 20)) throw new IommufdError('EINVAL', 'dma', 'the PASID must be a 20-bit integer');
}

/** The mock vendor's id: its devices are the kernel selftest's mock devices. */
const MOCK_VENDOR = 'mock';

/** The dev_warn of iommufd_device_bind for a device bound with unisolated MSIs (the kernel's text). */
const UNSAFE_MSI_WARNING =
  'MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the "allow_unsafe_interrupts" module parameter to override';

/**
 * A PCI function of a {@link Host}, behind one IOMMU unit: VFIO's device-side calls (bind to an iommufd,
 * attach to an IOAS or HWPT, detach, for the RID or a PASID) and its DMA engine, which translates through the
 * unit, faults, and with PRI or stall waits for the page response.
 */
export class PciDevice {
  /** Index of its IOMMU unit in Host.units. */
  readonly unitIndex: number;
  private ridBinding: Binding = Binding.blocked;
  private readonly pasidBindings = new Map<number, Binding>();
  /**
   * The iommufd device object (struct iommufd_device) while bound, else null.
   * @internal
   */
  idev: IommufdDevice | null = null;
  private boundFd: Iommufd | null = null;
  /** Where translations of its DMA go; a transfer that stops at a page takes it over (see DmaTransfer.tr). */
  private tr = new TranslateResult();
  private nextStag = 0;
  /** Stall tags of transactions stalled in the IOMMU: never handed out twice while outstanding. */
  private readonly stagsOutstanding = new Set<number>();

  /** The device's DMA engine: transfers from the device's point of view, translated by the IOMMU unit. */
  readonly dma = {
    /** Reads `length` bytes at `iova`; rejects with DmaFault when a page does not translate (after PRI or stall, when the device has them). */
    read: (iova: DmaAddress, length: number, opts: DmaReadOptions = NO_OPTIONS): Promise<Uint8Array> => {
      // Not an async function (one promise per read, not two when a page faults), and the read itself
      // rather than a call of a method (a call fewer per read): errors become rejections as an async
      // function's would, and a read that needs page requests is the promise of transfer(), which
      // resolves to `out`.
      try {
        checkDmaArgs(iova, length, opts);
        const into = opts.into;
        if (into !== undefined && !(into instanceof Uint8Array && into.length === length)) throw new IommufdError('EINVAL', 'dma', '`into` must be a Uint8Array of exactly `length` bytes');
        const out = into ?? new Uint8Array(length);
        // Every page translating (the common case) completes here without a closure or a second promise.
        // 1 is PERM_READ (a literal: a module constant is a load and a hole check in compiled code).
        const done = this.copyPages(iova, out, length, 1, opts.pasid ?? -1);
        return done < length ? this.transfer(length, 1, opts, out, done) : Promise.resolve(out);
      } catch (e) {
        return Promise.reject(e as Error);
      }
    },
    /** Writes `data` at `iova`; rejects with DmaFault as read does. */
    write: (iova: DmaAddress, data: Uint8Array, opts: DmaOptions = NO_OPTIONS): Promise<void> => this.dmaWrite(iova, data, opts),
    /**
     * Synchronous read into the caller's buffer, for simulators that issue millions of transfers:
     * `out.length` bytes from `iova`, nothing allocated. Returns the bytes moved, `out.length` when
     * every page translated. At a page that does not translate it stops: a fault the IOMMU can only
     * report (no PRI, no stall) is reported and thrown as a DmaFault, as by read(); a recoverable one
     * is not raised here: the short count tells the caller to go on with the async read(), which
     * sends the page request and waits for the response.
     */
    readSync: (iova: DmaAddress, out: Uint8Array, opts: DmaOptions = NO_OPTIONS): number => this.dmaSync(iova, out, false, opts),
    /** Synchronous write of `data` to `iova`; returns the bytes moved, as readSync. */
    writeSync: (iova: DmaAddress, data: Uint8Array, opts: DmaOptions = NO_OPTIONS): number => this.dmaSync(iova, data, true, opts),
  };

  /**
   * Made by the {@link Host} from its profile.
   * @internal
   */
  constructor(
    /** The host it belongs to. */
    readonly host: DeviceHost,
    /** PCI address, e.g. '0000:00:02.0'. */
    readonly bdf: string,
    /** The facts the vendor sees (requester id, ATS, PRI, PASID width, ...). */
    readonly info: DeviceInfo,
    /**
     * The IOMMU unit that translates its DMA.
     * @internal
     */
    readonly unit: IommuUnit,
    /**
     * Its iommu group.
     * @internal
     */
    readonly group: DeviceGroup,
    /** IOVA ranges the device cannot use (e.g. the MSI window), reserved in every IOAS it attaches to. */
    readonly reservedRegions: readonly IovaRange[],
    /** Free text from the profile, e.g. the device model. */
    readonly description = '',
    /**
     * PRI flow control: credit and group indexes (see pri.ts).
     * @internal
     */
    readonly pri: PriFlowControl = new PriFlowControl(512, 512),
  ) {
    this.unitIndex = unit.index;
    this.mem = host.mem;
    this.rid = info.rid;
    this.priRecovery = info.pri && unit.ops.caps.pri ? 1 : 0;
    this.stallCapable = info.stall && unit.ops.caps.stall;
  }

  /** The host's memory (`host.mem`), which its DMA reads and writes: a load fewer per transfer. */
  private readonly mem: PhysicalMemory;
  /** Its requester id, and whether its function and its unit both stall: fixed facts a failed access reads. */
  private readonly rid: number;
  private readonly stallCapable: boolean;
  /**
   * What recovery() gives a fixable failure of a device that does not stall: 1 (a page request) when it
   * and its unit do PRI, else 0. A number, not a boolean: the compiler tests a boolean field's value
   * with a generic truthiness check, and every page request reads it.
   */
  private readonly priRecovery: number;
  /** recoveryOf(the RID's binding), set with the binding (setHardwareBinding): a RID fault does not look its HWPT up. */
  private ridRecovery = 0;

  /** The vendor's driver for its unit. */
  get unitOps(): UnitOps {
    return this.unit.ops;
  }

  /** VFIO_DEVICE_BIND_IOMMUFD: returns dev_id. */
  bindIommufd(fd: Iommufd): number {
    return this.vfio('VFIO_DEVICE_BIND_IOMMUFD', () => {
      if (this.idev) throw new Errno('EBUSY', `${this.bdf} is already bound to an iommufd`);
      if (fd.ctx.closed) throw new Errno('EBADF', 'the iommufd is closed');
      if (!this.unit.ops.caps.coherent && this.info.noSnoop) throw new Errno('EINVAL', 'the IOMMU cannot enforce cache coherency for this device');
      // iommufd_device_bind: after the coherency check and iommufd_get_group, before the DMA ownership
      // is claimed, so that a refusal leaves the group as it was.
      this.checkIsolatedMsi();
      // iommufd_device_bind: the DMA ownership (the group moves to the blocking domain) before the
      // object; a failed object allocation gives the ownership back (out_release_owner).
      claimDmaOwner(fd.ctx, this);
      let idev: IommufdDevice;
      try {
        fd.ctx.inject('object-alloc');
        idev = new IommufdDevice(fd.ctx, this, fd.ctx.env);
      } catch (e) {
        releaseDmaOwner(this);
        throw e;
      }
      fd.ctx.objects.reserve(idev);
      fd.ctx.objects.finalize(idev);
      this.idev = idev;
      this.boundFd = fd;
      return idev.id;
    });
  }

  /**
   * device.c iommufd_device_bind: a device whose group cannot isolate MSIs (iommu_group_has_isolated_msi,
   * every device of the group) is EPERM unless the `allow_unsafe_interrupts` module parameter is set;
   * then bind goes on and the kernel warns (dev_warn, as the device's driver, vfio-pci). The selftest's
   * mock devices are exempt (iommufd_selftest_is_mock_dev): here, the mock vendor's.
   */
  private checkIsolatedMsi(): void {
    if (this.unit.ops.vendor === MOCK_VENDOR) return;
    const isolated = this.group.devices.every((d) => !(d instanceof PciDevice) || d.unit.msiIsolated);
    if (isolated) return;
    if (!this.host.allowUnsafeInterrupts) throw new Errno('EPERM', 'the platform cannot isolate the MSIs of the iommu group (no interrupt remapping) and iommufd.allow_unsafe_interrupts is not set');
    this.host.log.write(`vfio-pci ${this.bdf}: ${UNSAFE_MSI_WARNING}`);
  }

  /** Closing the VFIO device fd: detaches everything, tombstones the vDEVICE, destroys the object. */
  unbind(): void {
    const idev = this.idev;
    if (!idev) return;
    if (idev.vdevice) idev.vdevice.tombstone();
    idev.ctx.objects.removeInternal(idev);
    // iommufd_device_destroy: iommu_device_release_dma_owner.
    releaseDmaOwner(this);
    this.idev = null;
    this.boundFd = null;
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT: attach, or replace when already attached. Returns the HWPT id. */
  attachPt(ptId: number, opts: { pasid?: number } = {}): number {
    const pasid = opts.pasid ?? NO_PASID;
    return this.vfio('VFIO_DEVICE_ATTACH_IOMMUFD_PT', () => {
      const idev = this.requireBound();
      return idev.attachments.has(pasid) ? replace(idev, ptId, pasid) : attach(idev, ptId, pasid);
    });
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
  detachPt(opts: { pasid?: number } = {}): void {
    this.vfio('VFIO_DEVICE_DETACH_IOMMUFD_PT', () => detach(this.requireBound(), opts.pasid ?? NO_PASID));
  }

  /** The HWPT id attached at (RID or pasid), 0 when none. */
  attachedPt(pasid = NO_PASID): number {
    return this.idev?.attachments.get(pasid)?.id ?? 0;
  }

  private requireBound(): IommufdDevice {
    if (!this.idev) throw new Errno('EINVAL', `${this.bdf} is not bound to an iommufd`);
    if (this.idev.ctx.closed) throw new Errno('EBADF', 'the iommufd is closed');
    return this.idev;
  }

  private vfio<T>(command: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof Errno) throw new IommufdError(e.code, command, e.detail);
      throw e;
    }
  }

  /**
   * The unit's context entry for (this device, pasid).
   * @internal
   */
  setHardwareBinding(pasid: number, hwpt: Hwpt | null): void {
    let b = Binding.blocked;
    if (hwpt instanceof HwptPaging) b = new Binding(BIND_PAGING, hwpt.tag, hwpt.ops.pt, null, hwpt);
    else if (hwpt instanceof HwptNested) b = new Binding(BIND_NESTED, hwpt.tag, hwpt.parent.ops.pt, hwpt.ops, hwpt);
    if (pasid === NO_PASID) {
      this.ridBinding = b;
      this.ridRecovery = this.recoveryOf(b);
    } else if (b.kind === BIND_BLOCKED) this.pasidBindings.delete(pasid);
    else this.pasidBindings.set(pasid, b);
  }

  /**
   * What the unit uses for (this device, pasid): blocked, a paging table or a nested one; NO_PASID (-1) for the RID.
   * @internal
   */
  binding(pasid = NO_PASID): Binding {
    // -1 is NO_PASID, a literal: a module constant is a load and a hole check in compiled code.
    return pasid === -1 ? this.ridBinding : (this.pasidBindings.get(pasid) ?? Binding.blocked);
  }

  /**
   * Explains one access of this device for a person: IOTLB hit or miss, each table entry every stage's
   * walk reads, the result, and for a failure the record the unit would write and the Linux lines.
   * Nothing is queued or logged; the translation fills the IOTLB as a DMA would.
   */
  explain(iova: bigint, opts: { write?: boolean; pasid?: number } = {}): ExplainedTranslation {
    const pasid = opts.pasid ?? NO_PASID;
    return explainTranslation(
      { unit: this.unit, binding: this.binding(pasid), bdf: this.bdf, mem: this.host.mem, failedAccess: (addr, perm, p, tr) => this.failedAccessOf(addr, perm, p, tr) },
      iova,
      pasid,
      opts.write ?? false,
    );
  }

  /** Translates one page as the device's transactions would, without moving data. */
  translatePage(iovaPfn: number, perm: number, pasid = NO_PASID): number {
    return this.unit.translate(this.binding(pasid), pasid, iovaPfn, perm, this.tr) ? this.tr.pfn : -1;
  }

  private async dmaWrite(iova: DmaAddress, data: Uint8Array, opts: DmaOptions): Promise<void> {
    checkDmaArgs(iova, data.length, opts);
    const done = this.copyPages(iova, data, data.length, PERM_WRITE, opts.pasid ?? NO_PASID);
    if (done < data.length) await this.transfer(data.length, PERM_WRITE, opts, data, done);
  }

  private dmaSync(iova: DmaAddress, buf: Uint8Array, write: boolean, opts: DmaOptions): number {
    checkDmaArgs(iova, buf.length, opts);
    const pasid = opts.pasid ?? NO_PASID;
    const done = this.copyPages(iova, buf, buf.length, write ? PERM_WRITE : PERM_READ, pasid);
    if (done === buf.length) return done;
    const access = this.failedAccess(pageAddress(this.stopPfn), write ? PERM_WRITE : PERM_READ, pasid);
    if (access.recoverable) return done;
    this.host.faults.reportFault(this, { ...access, recoverable: false });
    throw new DmaFault(this.normalized(access), 'reported');
  }

  /**
   * Where the last movePages() stopped: the page number and offset of its first byte not moved (the
   * page that did not translate, or the end of the transfer).
   */
  private stopPfn = 0;
  private stopOff = 0;

  /** movePages() from the start of `buf`, at an IOVA as the DMA API takes it. */
  private copyPages(iova: DmaAddress, buf: Uint8Array, length: number, perm: number, pasid: number): number {
    let iovaPfn: number;
    let off: number;
    // `| 0`: the offset is an integer below 4096, and as an int32 the page loop's arithmetic on it and
    // the copy's arguments stay integer operations (computed as a float, it was a double throughout).
    if (typeof iova === 'number') {
      // Scaled by the double 2^-12 first (exact: a power of two), so that every operation here works on a
      // double from the first call: V8 compiles `iova / 4096` for the small integers it saw, and a caller
      // whose IOVAs pass 2^31 (heap numbers from then on, as a 64-bit DMA mask gives) deoptimized here and
      // in every function this was inlined into. The page number stays a small integer below IOVA 2^43.
      const x = iova * 0.000244140625;
      iovaPfn = Math.floor(x);
      off = ((x - iovaPfn) * 4096) | 0;
    } else if (iova < TWO_53) {
      const a = Number(iova);
      iovaPfn = Math.floor(a / PAGE_SIZE);
      off = (a - iovaPfn * PAGE_SIZE) | 0;
    } else {
      iovaPfn = Number(iova / PAGE);
      off = Number(iova % PAGE);
    }
    return this.movePages(iovaPfn, off, buf, 0, length, perm, pasid);
  }

  /**
   * Moves bytes `[done, length)` of `buf` to or from memory from IOVA page `iovaPfn`, byte `off`, page
   * by page while the pages translate (translate, copy, A/D update). Returns the bytes of `buf` moved
   * by then: `length`, or where the first page that did not translate begins (its page and offset are
   * left in stopPfn/stopOff, and its failure in `this.tr`). Nothing is allocated. The first try of a
   * DMA and every retry after a page response take this one path. `perm` is PERM_READ (from memory
   * into `buf`) or PERM_WRITE (from `buf` to memory).
   */
  private movePages(iovaPfn: number, off: number, buf: Uint8Array, done: number, length: number, perm: number, pasid: number): number {
    // binding() written out for the RID (-1, NO_PASID): V8 inlines into one compiled function only so
    // much bytecode, and what binding() took of it kept the frame copy (mem.readInFrame) a call.
    const b = pasid === -1 ? this.ridBinding : this.binding(pasid);
    const unit = this.unit;
    const mem = this.mem;
    const tr = this.tr;
    // Literals on this path (a module constant is a load and a hole check in compiled code): 2 is
    // PERM_WRITE, 1 BIND_PAGING, 4096 PAGE_SIZE. The direction is the permission (a number: a boolean
    // argument is tested with a generic truthiness check, about a dozen instructions).
    const write = perm === 2;
    const pt = b.kind === 1 ? b.pt : null;
    while (done < length) {
      const n = Math.min(4096 - off, length - done);
      if (!unit.translate(b, pasid, iovaPfn, perm, tr)) break;
      if (write) mem.write(tr.pfn * 4096 + off, buf, done, n);
      else mem.readInFrame(tr.pfn, off, buf, done, n);
      if (pt !== null && pt.markAccess) pt.markAccess(iovaPfn, write);
      done += n;
      iovaPfn++;
      off = 0;
    }
    this.stopPfn = iovaPfn;
    this.stopOff = off;
    return done;
  }

  /** Transfers that waited for page responses and finished, kept for the next one (see DmaTransfer). */
  private readonly transferPool: DmaTransfer[] = [];
  /** The transfer finished last, taken before the pool: one DMA faulting at a time touches no array. */
  private spareTransfer: DmaTransfer | null = null;
  /** The sink side of every DmaTransfer of this device: one function, not a closure per transfer. */
  private readonly resumeFn = (t: DmaTransfer, code: number): void => this.resumeTransfer(t, code);

  /**
   * The path that waits for page responses, from byte `start` on: the page holding it is the one
   * movePages() just failed to translate (stopPfn/stopOff), and `this.tr` still holds that failure,
   * so it is not walked again before its page request. Moves bytes between `buf` and memory (`perm`
   * says which way); resolves to `buf`. Its state between page requests is a pooled DmaTransfer that
   * the pipeline calls back with the response (no async frame and no promise per page request).
   */
  private transfer(length: number, perm: number, opts: DmaOptions, buf: Uint8Array, start: number): Promise<Uint8Array> {
    let t = this.spareTransfer;
    if (t !== null) this.spareTransfer = null;
    else t = this.transferPool.pop() ?? new DmaTransfer(this.resumeFn);
    t.buf = buf;
    t.length = length;
    t.perm = perm;
    t.pasid = opts.pasid ?? -1;
    t.maxRetries = opts.maxRetries ?? 3;
    // Page numbers of a 64-bit IOVA are below 2^52: plain numbers from here on, no BigInt per page.
    t.iovaPfn = this.stopPfn;
    t.off = this.stopOff;
    t.done = start;
    t.retries = 0;
    // The executor hands the settling functions to the transfer (see Settlers). A closure per promise,
    // and not one shared executor reading the transfer from a module variable: V8 inlines a closure
    // made at the call into the promise's construction, where the shared function was a call (and the
    // variable a load and a hole check, two stores).
    const promise = new Promise<Uint8Array>((resolve, reject) => {
      t.settlers = new Settlers(resolve, reject);
    });
    try {
      this.pageFailed(t);
    } catch (e) {
      this.settleTransfer(t, e);
    }
    return promise;
  }

  /**
   * The retry after a successful page response: moves the pages from where the transfer stopped
   * until it is done (settles it) or a page does not translate (its page request or fault).
   */
  private runTransfer(t: DmaTransfer): void {
    try {
      const done = this.movePages(t.iovaPfn, t.off, t.buf!, t.done, t.length, t.perm, t.pasid);
      if (done === t.length) {
        this.settleTransfer(t, null);
        return;
      }
      // A page moved: the retries count again for the next page that faults.
      if (done !== t.done) t.retries = 0;
      t.done = done;
      t.iovaPfn = this.stopPfn;
      t.off = this.stopOff;
      this.pageFailed(t);
    } catch (e) {
      this.settleTransfer(t, e);
    }
  }

  /**
   * The page at t.iovaPfn did not translate (`this.tr` holds why): a page request or a stall when the
   * access is recoverable and retries are left (the response resumes the transfer), else the fault
   * is reported and thrown as a DmaFault. The transfer takes the failed translation over (see
   * DmaTransfer.tr): the page request in numbers needs nothing else of it, so its FailedAccess is
   * filled only on the other paths.
   */
  private pageFailed(t: DmaTransfer): void {
    const failed = this.tr;
    this.tr = t.tr;
    t.tr = failed;
    // 1 is a page request (see recovery).
    if (t.retries < t.maxRetries && this.recovery(t.pasid, failed.failure) === 1) {
      // The transaction stalls in the function, it does not fault, until PRI credit and a free group
      // index are there; both are given back with the response.
      t.stalled = false;
      const g = this.pri.acquire(1);
      if (typeof g === 'number') this.sendPageRequest(t, g);
      else void g.then((grpid) => this.sendPageRequest(t, grpid));
      return;
    }
    this.stallOrReport(t);
  }

  /** pageFailed when no page request is sent: a stall, or the fault reported and thrown. */
  private stallOrReport(t: DmaTransfer): void {
    const access = this.fillFailedAccess(t.access, pageAddress(t.iovaPfn), t.perm, t.pasid, t.tr);
    if (access.recoverable && t.retries < t.maxRetries) {
      // A stalled transaction waits in the IOMMU for CMD_RESUME (not the hot path: a promise is fine).
      t.stalled = true;
      this.stallFor(access).then(
        (code) => this.resumeTransfer(t, code),
        (e: unknown) => this.settleTransfer(t, e),
      );
      return;
    }
    this.host.faults.reportFault(this, { ...access, recoverable: false });
    throw new DmaFault(this.normalized(access), 'reported');
  }

  /**
   * The transfer's page request as a FailedAccess (`t.access`, refilled), for the paths that read it:
   * what fillFailedAccess gave when the request was sent, with its PRG index.
   */
  private pageRequestAccess(t: DmaTransfer): FailedAccess {
    const access = this.fillFailedAccess(t.access, pageAddress(t.iovaPfn), t.perm, t.pasid, t.tr);
    // As when it was sent, whatever the binding is now: the request went out as a recoverable page request.
    access.recoverable = true;
    access.kind = 'page-request';
    access.grpid = t.grpid;
    return access;
  }

  private sendPageRequest(t: DmaTransfer, grpid: number): void {
    try {
      // The transfer is the request (its pasid and perm are the access's); the page address's halves
      // as signed int32 words (PageRequestFields): iovaPfn is below 2^52. `pfn << 12` is bits 19:0 of
      // the page number moved up to address bits 31:12 whatever pfn is; `(pfn % 1048576) * 4096` was
      // a number past 2^31 from an IOVA of 2 GiB in its low word on, and that one store turned the
      // field from a small integer into a double (V8 then deoptimized every function reading a transfer).
      const pfn = t.iovaPfn;
      t.rid = this.rid;
      t.addrLo = pfn << 12;
      // An int32 page's high half without the float division.
      t.addrHi = pfn <= 0x7fffffff ? pfn >> 20 : (pfn / 1048576) | 0;
      t.grpid = grpid;
      // `!== true`: the call's result is a boolean, and compared with true it is one compare, not a
      // generic truthiness test.
      if (this.host.faults.sendPageRequestFields(this, t, t) !== true) {
        this.host.faults.sendPageRequest(this, this.pageRequestAccess(t) as FailedAccess & { last: true }, t);
      }
    } catch (e) {
      this.pri.release(grpid);
      this.settleTransfer(t, e);
    }
  }

  /** The response to the transfer's page request (or the resume of its stall) came back: retry, or fail. */
  private resumeTransfer(t: DmaTransfer, code: number): void {
    const stall = t.stalled;
    if (!stall) this.pri.release(t.grpid);
    // 0 is PAGE_RESP_SUCCESS.
    if (code === 0) {
      t.retries++;
      this.runTransfer(t);
      return;
    }
    let err: unknown;
    try {
      // A stall's access was filled when it stalled; a page request's is filled now.
      const access = stall ? t.access : this.pageRequestAccess(t);
      err = new DmaFault(this.normalized(access), stall ? 'stall-abort' : 'page-response');
    } catch (e) {
      err = e;
    }
    this.settleTransfer(t, err);
  }

  /** Resolves the transfer's promise with its buffer (`error` null) or rejects it, and pools the transfer. */
  private settleTransfer(t: DmaTransfer, error: unknown): void {
    const settlers = t.settlers!;
    const buf = t.buf!;
    t.buf = null;
    t.settlers = null;
    if (this.spareTransfer === null) this.spareTransfer = t;
    else if (this.transferPool.length < TRANSFER_POOL) this.transferPool.push(t);
    if (error === null) settlers.resolve(buf);
    else settlers.reject(error);
  }

  private failedAccess(addr: bigint, perm: number, pasid: number): FailedAccess {
    return this.failedAccessOf(addr, perm, pasid, this.tr);
  }

  /** What the device reports for an access that failed with `tr` (the last translation's result). */
  private failedAccessOf(addr: bigint, perm: number, pasid: number, tr: TranslateResult): FailedAccess {
    const a = {} as FailedAccess;
    return this.fillFailedAccess(a, addr, perm, pasid, tr);
  }

  /** failedAccessOf into `a`: every field set, in one order. */
  private fillFailedAccess(a: FailedAccess, addr: bigint, perm: number, pasid: number, tr: TranslateResult): FailedAccess {
    const failure = tr.failure;
    const how = this.recovery(pasid, failure);
    a.unit = this.unitIndex;
    a.rid = this.rid;
    a.pasid = pasid;
    a.addr = addr;
    a.perm = perm;
    a.failure = failure;
    a.stage2 = tr.stage2;
    a.recoverable = how !== 0;
    a.kind = how === 2 ? 'stall' : 'page-request';
    // The PRG index or stall tag is taken when the request is actually sent (transfer/stallFor).
    a.grpid = 0;
    a.last = true;
    a.format = tr.format;
    a.tag = tr.tag;
    a.contextFault = tr.contextFault;
    return a;
  }

  /**
   * How an access of (this device, `pasid`) that failed with `failure` is recovered: 1 by a page
   * request (PRI), 2 by a stall, 0 not at all (the fault is reported).
   */
  private recovery(pasid: number, failure: TranslationFailure): number {
    // A blocked or invalid context is a configuration error that no page-in repairs. -1 is NO_PASID: a
    // RID access reads what its binding gives, computed when the binding was set.
    if (failure === 'blocked' || failure === 'no-context') return 0;
    return pasid === -1 ? this.ridRecovery : this.recoveryOf(this.binding(pasid));
  }

  /** recovery() of a missing or insufficient mapping under binding `b`. */
  private recoveryOf(b: Binding): number {
    const hwpt = b.owner as Hwpt | null;
    // Only a handler (a HWPT with a fault queue) can fix a missing or insufficient mapping. A HWPT's fault
    // queue is set when it is allocated (IOMMU_HWPT_ALLOC's fault_id), before anything attaches to it.
    if (hwpt === null || hwpt.fault === null) return 0;
    // A stall-capable master behind an SMMU whose STALL_MODEL allows stalling stalls rather than failing.
    if (this.stallCapable && codecStalls(this.unit.ops.faults)) return 2;
    return this.priRecovery;
  }

  /** A stalled transaction, under a 16-bit stall tag (EVTQ_1_STAG) no other stalled one holds. */
  private async stallFor(access: FailedAccess): Promise<number> {
    if (this.stagsOutstanding.size > 0xffff) throw new IommufdError('EBUSY', 'dma', 'every stall tag is outstanding');
    let stag = this.nextStag;
    while (this.stagsOutstanding.has(stag)) stag = (stag + 1) & 0xffff;
    this.nextStag = (stag + 1) & 0xffff;
    this.stagsOutstanding.add(stag);
    access.grpid = stag;
    try {
      return await this.host.faults.stall(this, access);
    } finally {
      this.stagsOutstanding.delete(stag);
    }
  }

  private normalized(a: FailedAccess): IommuFault {
    const codec = this.unit.ops.faults;
    if (codec && a.recoverable && a.kind === 'stall' && codec.encodeStall) return codec.decodeFault(codec.encodeStall(a), this.unitIndex);
    if (codec) return codec.decodeFault(codec.encodeFault(a), this.unitIndex);
    return { kind: 'dma', unit: a.unit, rid: a.rid, pasid: a.pasid, addr: a.addr, perm: a.perm, grpid: 0, last: true, reason: 0, reasonText: a.failure, stage2: a.stage2 };
  }

  /**
   * Sends a page request group of several pages (PRI), the last one flagged LAST, and resolves with
   * the response code. Lets tests and scenarios build multi-request groups.
   */
  async requestPages(pages: readonly { addr: bigint; perm: number }[], opts: { pasid?: number; grpid?: number } = {}): Promise<number> {
    const pasid = opts.pasid ?? NO_PASID;
    if (pages.length === 0 || pages.length > this.pri.allocation) throw new IommufdError('EINVAL', 'page request', `a group must hold 1 to ${this.pri.allocation} requests (the PRI allocation)`);
    let grpid: number;
    if (opts.grpid !== undefined) {
      // A caller-chosen index: PCIe forbids reusing one that is outstanding.
      if (!Number.isInteger(opts.grpid) || opts.grpid < 1 || opts.grpid > PRG_INDEX_LAST) throw new IommufdError('EINVAL', 'page request', 'the PRG index must be from 1 to 511');
      if (!this.pri.acquireIndex(opts.grpid, pages.length)) throw new IommufdError('EBUSY', 'page request', `PRG index ${opts.grpid} is outstanding or the PRI allocation is used up`);
      grpid = opts.grpid;
    } else {
      const g = this.pri.acquire(pages.length);
      grpid = typeof g === 'number' ? g : await g;
    }
    const b = this.binding(pasid);
    const format = b.kind === BIND_NESTED ? (b.nested!.format ?? '') : (b.pt?.format ?? '');
    let result: Promise<number> = Promise.resolve(-1);
    pages.forEach((p, i) => {
      const a: FailedAccess = {
        unit: this.unitIndex,
        rid: this.info.rid,
        pasid,
        addr: p.addr,
        perm: p.perm,
        failure: 'not-present',
        stage2: false,
        recoverable: true,
        kind: 'page-request',
        grpid,
        last: i === pages.length - 1,
        format,
        tag: b.tag,
      };
      const r = this.host.faults.pageRequest(this, a);
      if (a.last) result = r;
    });
    try {
      return await result;
    } finally {
      this.pri.release(grpid);
    }
  }

  /** The iommufd device id (`dev_id`, what VFIO_DEVICE_BIND_IOMMUFD returned) while bound, null when unbound. */
  get devId(): number | null {
    return this.idev?.id ?? null;
  }

  /** The number of its iommu group (the profile's `group`): devices of one group share every attach. */
  get groupId(): number {
    return this.group.id;
  }

  /** The iommufd it is bound to, null when unbound. */
  get boundIommufd(): Iommufd | null {

    return this.boundFd;
  }
}
