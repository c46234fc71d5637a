/**
 * iommufd_device (device.c): the object a driver's bind creates, and attach / replace / detach of a
 * (device, PASID) to an IOAS or a HWPT, with the group and PASID rules of the kernel.
 */
import { fail, Errno } from '../uapi/errno.js';
import type { DeviceInfo, DomainAttachHooks, UnitOps } from '../driver/vendor.js';
import { IommufdObject, ObjType } from './objects.js';
import { Hwpt, HwptNested, HwptPaging, isVendorError, vendorFail } from './hwpt.js';
import type { Ioas } from './ioas.js';
import type { IommufdCtx, IommufdEnv } from './context.js';
import type { IovaRange } from './io-pagetable.js';

export const NO_PASID = -1;

/** The device side that core needs: implemented by the host's PCI device. */
export interface BoundDevice {
  readonly bdf: string;
  readonly info: DeviceInfo;
  readonly unitIndex: number;
  readonly unitOps: UnitOps;
  readonly group: DeviceGroup;
  /** Reserved IOVA regions enforced on RID attach (MSI window, RMRRs...). */
  readonly reservedRegions: readonly IovaRange[];
  /** Programs the hardware context for (device, pasid): a HWPT, or null for blocked DMA. */
  setHardwareBinding(pasid: number, hwpt: Hwpt | null): void;
}

/** An iommu_group: its devices share one attachment per PASID. */
export class DeviceGroup {
  readonly devices: BoundDevice[] = [];
  /** pasid -> the HWPT and the bound devices that attached it. */
  readonly attach = new Map<number, { hwpt: Hwpt; devices: Set<IommufdDevice> }>();
  /** The iommufd that owns the group's DMA (iommu_group owner), null while no device of it is bound. */
  owner: IommufdCtx | null = null;
  /** Bound devices of the group (owner_cnt). */
  ownerCount = 0;
  constructor(readonly id: number) {}
}

/**
 * iommu_device_claim_dma_owner(dev, ictx), as iommufd_device_bind calls it before the device object
 * exists: a group owned by another iommufd is EPERM; the first device bound moves the group from its
 * default domain to the blocking domain (__iommu_take_dma_ownership), whose allocation or attach can
 * fail the bind; a later device of the same group only counts.
 */
export function claimDmaOwner(ctx: IommufdCtx, dev: BoundDevice): void {
  const group = dev.group;
  if (group.owner !== null) {
    if (group.owner !== ctx) fail('EPERM', 'a device of the iommu group is bound to another iommufd');
    group.ownerCount++;
    return;
  }
  const unit = dev.unitOps;
  if (unit.blockingDomain) {
    const blocking = unit.blockingDomain(dev.info);
    if (isVendorError(blocking)) vendorFail(blocking);
    // __iommu_group_set_domain: attach_dev of the blocking domain for every device of the group; a
    // failure puts the ones already moved back on their default domain (not modelled: see below).
    for (const d of group.devices) {
      ctx.inject('attach');
      const e = blocking.attachDev?.(d.info, d.unitOps, NO_PASID);
      if (e) vendorFail(e);
    }
  }
  group.owner = ctx;
  group.ownerCount = 1;
}

/**
 * iommu_device_release_dma_owner: the last bound device of the group gives the ownership up. The
 * kernel then sets the group back to its default domain (the DMA API's or identity); the model has no
 * kernel driver doing DMA and so no default domain: the vendor keeps the device where the blocking
 * domain put it, and core's binding stays blocked.
 */
export function releaseDmaOwner(dev: BoundDevice): void {
  const group = dev.group;
  if (group.ownerCount > 1) {
    group.ownerCount--;
    return;
  }
  group.ownerCount = 0;
  group.owner = null;
}

export class IommufdDevice extends IommufdObject {
  readonly type = ObjType.DEVICE;
  /** The HWPT attached for each PASID (NO_PASID: the RID). */
  private readonly attached = new Map<number, Hwpt>();
  /** The PASID of the last attachedFor() answer (-2: none) and that answer; forgotten whenever `attached` changes. */
  private routePasid = -2;
  private routeHwpt: Hwpt | null = null;

  /** The HWPT attached for each PASID (NO_PASID: the RID); changed only by setAttachment and deleteAttachment. */
  get attachments(): ReadonlyMap<number, Hwpt> {
    return this.attached;
  }

  setAttachment(pasid: number, hwpt: Hwpt): void {
    this.attached.set(pasid, hwpt);
    this.forgetRoute();
  }

  deleteAttachment(pasid: number): void {
    this.attached.delete(pasid);
    this.forgetRoute();
  }

  /**
   * attachments.get(pasid) ?? null, remembered until the attachments change: the fault pipeline routes
   * every page request of the device by it, and a device's requests come from few PASIDs. Nothing is
   * kept past a change, so a detached HWPT is not held here.
   */
  attachedFor(pasid: number): Hwpt | null {
    if (pasid !== this.routePasid) {
      this.routeHwpt = this.attached.get(pasid) ?? null;
      this.routePasid = pasid;
    }
    return this.routeHwpt;
  }

  private forgetRoute(): void {
    this.routePasid = -2;
    this.routeHwpt = null;
  }
  /** The vDEVICE of this device, at most one. */
  vdevice: (IommufdObject & { tombstone(): void }) | null = null;

  constructor(
    readonly ctx: IommufdCtx,
    readonly dev: BoundDevice,
    readonly env: IommufdEnv,
  ) {
    super();
    // The table's reference plus the binding driver's: IOMMU_DESTROY on a device is EBUSY.
    this.users = 2;
  }

  destroy(): void {
    for (const pasid of [...this.attachments.keys()]) detach(this, pasid);
  }
}

function pasidLimitOk(idev: IommufdDevice, pasid: number): boolean {
  const bits = Math.min(idev.dev.info.pasidBits, idev.dev.unitOps.caps.pasidBits);
  return bits > 0 && Number.isInteger(pasid) && pasid >= 0 && pasid < 2 ** bits;
}

/** The checks of iommufd_hw_pagetable_attach and the driver's attach_dev, without side effects. */
function checkAttach(idev: IommufdDevice, hwpt: Hwpt, pasid: number, replacing: Hwpt | null): void {
  const dev = idev.dev;
  if (hwpt.vendor !== dev.unitOps.vendor) fail('EINVAL', 'the domain belongs to another IOMMU driver');
  const paging = hwpt instanceof HwptPaging ? hwpt : (hwpt as HwptNested).parent;
  const e = paging.ops.checkAttach?.(dev.info, dev.unitOps);
  if (e) vendorFail(e);
  if (paging.dirtyTrackingAllowed && !dev.unitOps.caps.dirtyTracking) fail('EINVAL', 'the IOMMU of the device has no dirty tracking');
  if (paging.ops.enforceCacheCoherency && dev.info.noSnoop) fail('EINVAL', 'the domain enforces cache coherency but the device can issue non-snooped DMA');
  if (hwpt.fault && dev.info.isVf && dev.info.pri) fail('EINVAL', 'PRI is a PF-shared resource: a VF cannot use a fault-capable domain');
  if (pasid !== NO_PASID) {
    if (!pasidLimitOk(idev, pasid)) fail('EINVAL', `PASID ${pasid} is outside what the device and IOMMU support`);
    if (!hwpt.pasidCompat) fail('EINVAL', 'the HWPT was not allocated with IOMMU_HWPT_ALLOC_PASID');
    const rid = idev.attachments.get(NO_PASID);
    if (rid && !rid.pasidCompat) fail('EINVAL', 'the RID is attached to a HWPT that is not PASID compatible');
  } else {
    const pasids = [...idev.attachments.keys()].some((p) => p !== NO_PASID);
    if (pasids && !hwpt.pasidCompat) fail('EINVAL', 'PASIDs are attached: the RID needs a PASID-compatible HWPT');
  }
  if (hwpt instanceof HwptNested) {
    const e = hwpt.ops.checkAttach?.(dev.info, idev.vdevice !== null);
    if (e) vendorFail(e);
  }
  const g = dev.group.attach.get(pasid);
  if (g && g.hwpt !== hwpt && g.hwpt !== replacing) fail('EINVAL', 'another device of the iommu group is attached to a different HWPT');
}

/** The domain ops of a HWPT, whose attach hooks the driver implements. */
function hooksOf(hwpt: Hwpt): DomainAttachHooks {
  return hwpt instanceof HwptPaging ? hwpt.ops : (hwpt as HwptNested).ops;
}

/** Puts `d` on `old` again, or on blocked DMA when there was none (a path that must not fail). */
function restoreDomain(d: BoundDevice, pasid: number, failed: Hwpt, old: Hwpt | null): void {
  if (old) {
    const e = hooksOf(old).attachDev?.(d.info, d.unitOps, pasid);
    if (!e) return;
    // __iommu_device_set_domain with IOMMU_SET_DOMAIN_MUST_SUCCEED falls back to the blocking domain.
  }
  hooksOf(failed).detachDev?.(d.info, d.unitOps, pasid);
}

/**
 * The driver side of moving the group's `pasid` from `old` (null: blocked) to `hwpt`: attach_dev for every
 * device of the group, in order (iommu.c __iommu_group_set_domain_internal). A failure, injected or the
 * driver's own, puts every device already moved (the failing one included) back on `old` and is thrown
 * with nothing changed.
 */
function driverAttachGroup(idev: IommufdDevice, hwpt: Hwpt, pasid: number, old: Hwpt | null): void {
  const devices = idev.dev.group.devices;
  const hooks = hooksOf(hwpt);
  const undo = (moved: number) => {
    for (let j = 0; j < moved; j++) restoreDomain(devices[j], pasid, hwpt, old);
  };
  for (let i = 0; i < devices.length; i++) {
    const d = devices[i];
    try {
      // The driver's attach_dev can fail (context entries, STE memory), here before it touched anything.
      idev.ctx.inject('attach');
    } catch (err) {
      undo(i);
      throw err;
    }
    const e = hooks.attachDev?.(d.info, d.unitOps, pasid);
    if (e) {
      // The failing device may be half moved: it goes back too.
      undo(i + 1);
      vendorFail(e);
    }
  }
}

/** The IOAS whose reserved regions a RID attach must enforce: the HWPT's, or a nested HWPT's parent's (find_hwpt_paging). */
function ioasOf(hwpt: Hwpt): Ioas | null {
  return hwpt instanceof HwptPaging ? hwpt.ioas : hwpt instanceof HwptNested ? hwpt.parent.ioas : null;
}

/** Reserves the device's regions in the IOAS for a RID attach of a paging HWPT. */
function reserveRegions(idev: IommufdDevice, hwpt: Hwpt, pasid: number): Ioas | null {
  const ioas = pasid === NO_PASID ? ioasOf(hwpt) : null;
  if (ioas && idev.dev.reservedRegions.length > 0) ioas.iopt.addReserved(idev, [...idev.dev.reservedRegions]);
  return ioas;
}

function commitAttach(idev: IommufdDevice, hwpt: Hwpt, pasid: number): void {
  hwpt.users++;
  idev.setAttachment(pasid, hwpt);
  const group = idev.dev.group;
  let g = group.attach.get(pasid);
  if (!g) {
    g = { hwpt, devices: new Set() };
    group.attach.set(pasid, g);
    for (const d of group.devices) d.setHardwareBinding(pasid, hwpt);
  }
  g.devices.add(idev);
}

/**
 * iommufd_hw_pagetable_attach: the checks, the reserved regions of a RID attach, then the driver's
 * attach_dev, only for the first device of the group (the others follow its attachment); a driver
 * failure gives the reserved regions back (err_unresv).
 */
function tryAttach(idev: IommufdDevice, hwpt: Hwpt, pasid: number): void {
  checkAttach(idev, hwpt, pasid, null);
  const ioas = reserveRegions(idev, hwpt, pasid);
  if (!idev.dev.group.attach.has(pasid)) {
    try {
      driverAttachGroup(idev, hwpt, pasid, null);
    } catch (e) {
      if (ioas && idev.dev.reservedRegions.length > 0) ioas.iopt.removeReserved(idev);
      throw e;
    }
  }
  commitAttach(idev, hwpt, pasid);
}

/** Allocates an automatic paging domain for an IOAS (never used for PASID attach). */
function allocAutoHwpt(idev: IommufdDevice, ioas: Ioas): HwptPaging {
  const dev = idev.dev;
  if (!dev.unitOps.domainAllocPaging) fail('EOPNOTSUPP', 'the IOMMU driver cannot allocate paging domains');
  // iommufd_hwpt_paging_alloc: the object first, then the driver's domain.
  idev.ctx.inject('object-alloc');
  idev.ctx.inject('domain-alloc');
  const ops = dev.unitOps.domainAllocPaging(dev.info, { nestParent: false, dirtyTracking: false, pasid: false }, idev.env.tableMemory);
  if (isVendorError(ops)) vendorFail(ops);
  const hwpt = new HwptPaging(ioas, ops, dev.unitIndex, dev.unitOps.vendor, idev.env.tlb, idev.env);
  hwpt.autoDomain = true;
  idev.ctx.objects.reserve(hwpt);
  try {
    hwpt.link();
  } catch (e) {
    ops.free();
    idev.ctx.objects.abort(hwpt, false);
    throw e;
  }
  idev.ctx.objects.finalize(hwpt);
  ioas.autoHwpts.push(hwpt);
  return hwpt;
}

function releaseHwpt(ctx: IommufdCtx, hwpt: Hwpt): void {
  hwpt.users--;
  if (hwpt instanceof HwptPaging && hwpt.autoDomain && hwpt.users === 1) ctx.objects.removeInternal(hwpt);
}

/** Resolves pt_id to a HWPT, creating or reusing an automatic domain for an IOAS. */
function resolvePt(idev: IommufdDevice, ptId: number, pasid: number, attachFn: (h: Hwpt) => void): Hwpt {
  const obj = idev.ctx.objects.get(ptId, ObjType.ANY);
  if (obj.type === ObjType.HWPT_PAGING || obj.type === ObjType.HWPT_NESTED) {
    attachFn(obj as Hwpt);
    return obj as Hwpt;
  }
  if (obj.type !== ObjType.IOAS) fail('EINVAL', 'pt_id is neither an IOAS nor a HWPT');
  if (pasid !== NO_PASID) fail('EINVAL', 'automatic domains are not PASID compatible: attach a HWPT allocated with IOMMU_HWPT_ALLOC_PASID');
  const ioas = obj as Ioas;
  for (const h of [...ioas.autoHwpts] as HwptPaging[]) {
    try {
      attachFn(h);
      return h;
    } catch (e) {
      // EINVAL means "incompatible": try the next automatic domain.
      if (!(e instanceof Errno) || e.code !== 'EINVAL') throw e;
    }
  }
  const hwpt = allocAutoHwpt(idev, ioas);
  try {
    attachFn(hwpt);
  } catch (e) {
    idev.ctx.objects.removeInternal(hwpt);
    throw e;
  }
  return hwpt;
}

/** iommufd_device_attach: returns the HWPT id used. */
export function attach(idev: IommufdDevice, ptId: number, pasid: number): number {
  // The kernel looks pt_id up before it finds the attach handle taken (iommufd_device_change_pt).
  idev.ctx.objects.get(ptId, ObjType.ANY);
  // iommufd_hw_pagetable_attach inserts the device into the (group, pasid) attach's device_array first:
  // a device already there is EBUSY, for the HWPT it is attached to as for any other (the same HWPT
  // twice is not a no-op: only iommufd_device_do_replace returns early for hwpt == old_hwpt, which is
  // what VFIO_DEVICE_ATTACH_IOMMUFD_PT does for an attached device, see PciDevice.attachPt).
  if (idev.attachments.has(pasid)) fail('EBUSY', 'already attached: use replace');
  return resolvePt(idev, ptId, pasid, (h) => tryAttach(idev, h, pasid)).id;
}

/** iommufd_device_replace: atomically moves the group's attachment at `pasid` to a new HWPT. */
export function replace(idev: IommufdDevice, ptId: number, pasid: number): number {
  const old = idev.attachments.get(pasid);
  if (!old) fail('EINVAL', 'not attached: nothing to replace');
  const group = idev.dev.group;
  const g = group.attach.get(pasid)!;
  const members = [...g.devices];
  const hwpt = resolvePt(idev, ptId, pasid, (h) => {
    if (h === old) return;
    for (const m of members) checkAttach(m, h, pasid, old);
    const oldIoas = pasid === NO_PASID ? ioasOf(old) : null;
    const newIoas = pasid === NO_PASID ? ioasOf(h) : null;
    const done: IommufdDevice[] = [];
    const unreserve = () => {
      for (const m of done) newIoas!.iopt.removeReserved(m);
    };
    if (newIoas && newIoas !== oldIoas) {
      try {
        for (const m of members) {
          if (m.dev.reservedRegions.length > 0) newIoas.iopt.addReserved(m, [...m.dev.reservedRegions]);
          done.push(m);
        }
      } catch (e) {
        unreserve();
        throw e;
      }
    }
    // iommufd_hwpt_replace_device: the driver moves the group; on failure the new reservations go (err_unresv).
    try {
      driverAttachGroup(idev, h, pasid, old);
    } catch (e) {
      unreserve();
      throw e;
    }
    // The old IOAS stops reserving the group's regions whenever the group leaves it, also for a
    // HWPT that is not a paging domain (iommufd_device_do_replace removes them, after the driver
    // replaced the domain, unless the new paging HWPT shares the old IOAS).
    if (oldIoas && oldIoas !== newIoas) for (const m of members) oldIoas.iopt.removeReserved(m);
    // Commit: every member moves, the hardware switches in one step.
    g.hwpt = h;
    for (const m of members) {
      h.users++;
      m.setAttachment(pasid, h);
    }
    for (const d of group.devices) d.setHardwareBinding(pasid, h);
    for (const m of members) {
      autoRespondFaults(old, m, pasid);
      releaseHwpt(m.ctx, old);
    }
  });
  return hwpt.id;
}

/** iommufd_device_detach: the device's DMA is blocked once its group has no device left attached. */
export function detach(idev: IommufdDevice, pasid: number): void {
  const hwpt = idev.attachments.get(pasid);
  if (!hwpt) return;
  const group = idev.dev.group;
  const g = group.attach.get(pasid);
  if (g) {
    g.devices.delete(idev);
    if (g.devices.size === 0) {
      group.attach.delete(pasid);
      // The last device of the group leaves: the group goes to the blocking domain (iommu_detach_group).
      const hooks = hooksOf(hwpt);
      for (const d of group.devices) {
        hooks.detachDev?.(d.info, d.unitOps, pasid);
        d.setHardwareBinding(pasid, null);
      }
    }
  }
  idev.deleteAttachment(pasid);
  const ioas = pasid === NO_PASID ? ioasOf(hwpt) : null;
  if (ioas) ioas.iopt.removeReserved(idev);
  autoRespondFaults(hwpt, idev, pasid);
  releaseHwpt(idev.ctx, hwpt);
}

/**
 * An attach handle goes away (detach, or the old side of a replace): the page requests it still has
 * in the HWPT's FAULT queue, delivered or not, are answered INVALID so that no device waits for ever
 * (iommufd_hwpt_detach_device / iommufd_hwpt_replace_device -> iommufd_auto_response_faults).
 */
function autoRespondFaults(hwpt: Hwpt, idev: IommufdDevice, pasid: number): void {
  hwpt.fault?.autoRespond((g) => g.handle.idev === idev && g.handle.pasid === pasid);
}
