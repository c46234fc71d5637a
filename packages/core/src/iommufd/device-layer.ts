/**
 * The device-side command handlers: HWPT_ALLOC, GET_HW_INFO, dirty tracking, HWPT_INVALIDATE,
 * FAULT_QUEUE_ALLOC, VIOMMU_ALLOC, VDEVICE_ALLOC, VEVENTQ_ALLOC, HW_QUEUE_ALLOC. Each validates its
 * struct first (hwpt-validate.ts), then looks objects up, then asks the vendor, and only then commits.
 */
import { fail } from '../uapi/errno.js';
import * as U from '../uapi/iommufd.js';
import { PAGE_SIZE } from '../memory/physical.js';
import { ObjType } from './objects.js';
import type { DeviceCommandHandlers } from './device-commands.js';
import * as val from './hwpt-validate.js';
import { Hwpt, HwptNested, HwptPaging, checkDirtyRange, isVendorError, vendorFail } from './hwpt.js';
import type { IommufdDevice } from './device.js';
import type { Ioas } from './ioas.js';
import { Vdevice, Viommu } from './viommu.js';
import { FaultQueue, VEventQueue } from './eventq.js';
import type { IommufdCtx, Ucmd } from './context.js';
import type { VendorError } from '../driver/fault.js';

function getDevice(ctx: IommufdCtx, id: number): IommufdDevice {
  return ctx.objects.get<IommufdDevice>(id, ObjType.DEVICE);
}

function userData(ctx: IommufdCtx, uptr: bigint, len: number): Uint8Array {
  return ctx.copyFromUser(uptr, len);
}

/** Bytes of invalidation entries copied in per driver call. */
const INVALIDATE_BATCH_BYTES = 1 << 16;

export const deviceHandlers: DeviceCommandHandlers = {
  hwptAlloc(ctx, cmd, ucmd) {
    // Kernel order (iommufd_hwpt_alloc): __reserved and data_type/data_len, the device, pt_id, then
    // the per-kind flag checks, the driver (which copies the user data), and only then fault_id.
    val.validateHwptAlloc(cmd);
    const idev = getDevice(ctx, cmd.dev_id);
    const dev = idev.dev;
    const pt = ctx.objects.peek(cmd.pt_id);
    if (!pt) fail('EINVAL', `pt_id ${cmd.pt_id} does not exist`);
    const hasData = cmd.data_type !== U.IOMMU_HWPT_DATA_NONE;
    let hwpt: Hwpt;
    if (pt.type === ObjType.IOAS) {
      if (cmd.flags & ~val.HWPT_ALLOC_FLAGS) fail('EOPNOTSUPP', 'unknown flags');
      if (cmd.flags & U.IOMMU_HWPT_FAULT_ID_VALID && cmd.flags & U.IOMMU_HWPT_ALLOC_NEST_PARENT) fail('EOPNOTSUPP', 'a nesting parent cannot take faults');
      if (cmd.flags & U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING && !dev.unitOps.caps.dirtyTracking) fail('EOPNOTSUPP', 'the IOMMU has no dirty tracking');
      if (!dev.unitOps.domainAllocPaging) fail('EOPNOTSUPP', 'the IOMMU driver has no domain_alloc_paging_flags');
      if (hasData) fail('EOPNOTSUPP', 'paging domains take no driver data');
      ctx.inject('domain-alloc');
      const ops = dev.unitOps.domainAllocPaging(
        dev.info,
        {
          nestParent: (cmd.flags & U.IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0,
          dirtyTracking: (cmd.flags & U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0,
          pasid: (cmd.flags & U.IOMMU_HWPT_ALLOC_PASID) !== 0,
        },
        ctx.env.tableMemory,
      );
      if (isVendorError(ops)) vendorFail(ops);
      const paging = new HwptPaging(pt as Ioas, ops, dev.unitIndex, dev.unitOps.vendor, ctx.env.tlb, ctx.env);
      paging.nestParent = (cmd.flags & U.IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0;
      paging.dirtyTrackingAllowed = (cmd.flags & U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
      try {
        paging.link();
      } catch (e) {
        ops.free();
        throw e;
      }
      hwpt = paging;
    } else if (pt.type === ObjType.HWPT_PAGING) {
      const parent = pt as HwptPaging;
      if (cmd.flags & ~(U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID)) fail('EOPNOTSUPP', 'flags not allowed for a nested HWPT');
      if (!hasData) fail('EOPNOTSUPP', 'a nested HWPT needs driver data');
      if (!dev.unitOps.domainAllocNested) fail('EOPNOTSUPP', 'the IOMMU driver nests only through a vIOMMU');
      // The driver refuses an unknown data_type before it copies the data (a bad data_uptr with an
      // unknown type is EOPNOTSUPP, not EFAULT).
      if (dev.unitOps.nestedDataTypes && !dev.unitOps.nestedDataTypes.includes(cmd.data_type)) fail('EOPNOTSUPP', `data_type ${cmd.data_type} is not one the driver nests with`);
      if (parent.autoDomain || !parent.nestParent) fail('EINVAL', 'the parent is not a NEST_PARENT HWPT');
      if (parent.vendor !== dev.unitOps.vendor) fail('EINVAL', 'the parent belongs to another IOMMU driver');
      const data = userData(ctx, cmd.data_uptr, cmd.data_len);
      ctx.inject('domain-alloc');
      const ops = dev.unitOps.domainAllocNested(dev.info, parent.ops, cmd.data_type, data);
      if (isVendorError(ops)) vendorFail(ops);
      const nested = new HwptNested(parent, ops, null, ctx.env.tlb);
      nested.link();
      hwpt = nested;
    } else if (pt.type === ObjType.VIOMMU) {
      const viommu = pt as Viommu;
      if (viommu.unitIndex !== dev.unitIndex) fail('EINVAL', 'the vIOMMU is backed by another physical IOMMU');
      if (cmd.flags & ~(U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID)) fail('EOPNOTSUPP', 'flags not allowed for a nested HWPT');
      if (!hasData) fail('EOPNOTSUPP', 'a nested HWPT needs driver data');
      if (viommu.ops.nestedDataTypes && !viommu.ops.nestedDataTypes.includes(cmd.data_type)) fail('EOPNOTSUPP', `data_type ${cmd.data_type} is not one the vIOMMU nests with`);
      const data = userData(ctx, cmd.data_uptr, cmd.data_len);
      ctx.inject('domain-alloc');
      const ops = viommu.ops.allocNested(dev.info, cmd.data_type, data);
      if (isVendorError(ops)) vendorFail(ops);
      const nested = new HwptNested(viommu.parent, ops, viommu, ctx.env.tlb);
      nested.link();
      hwpt = nested;
    } else {
      return fail('EINVAL', 'pt_id is not an IOAS, a HWPT_PAGING or a vIOMMU');
    }
    hwpt.pasidCompat = (cmd.flags & U.IOMMU_HWPT_ALLOC_PASID) !== 0;
    // The HWPT exists (with its id) before fault_id is looked up: a bad fault_id aborts it.
    ctx.newObject(ucmd, hwpt);
    if (cmd.flags & U.IOMMU_HWPT_FAULT_ID_VALID) {
      const fault = ctx.objects.get<FaultQueue>(cmd.fault_id, ObjType.FAULT);
      hwpt.fault = fault;
      fault.users++;
    }
    cmd.out_hwpt_id = hwpt.id;
  },

  getHwInfo(ctx, cmd) {
    val.validateHwInfo(cmd);
    const idev = getDevice(ctx, cmd.dev_id);
    const dev = idev.dev;
    const requested = cmd.flags & U.IOMMU_HW_INFO_FLAG_INPUT_TYPE ? cmd.data_type : U.IOMMU_HW_INFO_TYPE_DEFAULT;
    let type = U.IOMMU_HW_INFO_TYPE_NONE;
    let data: Uint8Array = new Uint8Array(0);
    if (dev.unitOps.hwInfo) {
      const r = dev.unitOps.hwInfo(dev.info, requested);
      if (isVendorError(r)) vendorFail(r);
      type = r.type;
      data = r.data;
    } else if (requested !== U.IOMMU_HW_INFO_TYPE_DEFAULT) fail('EOPNOTSUPP', 'the IOMMU driver reports no hw_info');
    if (cmd.data_len > 0) {
      // Copy what fits and clear the rest of the user's buffer (clear_user faults on a bad buffer
      // before anything is sized by data_len).
      ctx.checkUser(cmd.data_uptr, cmd.data_len, true);
      const out = new Uint8Array(cmd.data_len);
      out.set(data.subarray(0, Math.min(cmd.data_len, data.length)));
      ctx.copyToUser(cmd.data_uptr, out);
    }
    cmd.data_len = data.length;
    cmd.data_type = type;
    const caps = dev.unitOps.caps;
    const pasidBits = Math.min(caps.pasidBits, dev.info.pasidBits);
    cmd.out_max_pasid_log2 = pasidBits;
    let hwcaps = 0n;
    if (caps.dirtyTracking) hwcaps |= U.IOMMU_HW_CAP_DIRTY_TRACKING;
    if (pasidBits > 0 && dev.info.pasidExec) hwcaps |= U.IOMMU_HW_CAP_PCI_PASID_EXEC;
    if (pasidBits > 0 && dev.info.pasidPriv) hwcaps |= U.IOMMU_HW_CAP_PCI_PASID_PRIV;
    if (!(caps.ats && dev.info.ats)) hwcaps |= U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED;
    cmd.out_capabilities = hwcaps;
  },

  setDirtyTracking(ctx, cmd) {
    val.validateSetDirtyTracking(cmd);
    const hwpt = ctx.objects.get<HwptPaging>(cmd.hwpt_id, ObjType.HWPT_PAGING);
    if (!hwpt.ops.setDirtyTracking) fail('EOPNOTSUPP', 'the domain has no dirty tracking');
    const enable = (cmd.flags & U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
    // iopt_set_dirty_tracking: tracking starts from clean PTEs (iopt_clear_dirty_data). Formats such as
    // Arm's map writable leaves writable-dirty (DBM), so without this every page would read as dirty.
    const pt = hwpt.ops.pt;
    if (enable && pt.readAndClearDirty) {
      // Every area's pages, compact areas read as records (no objects made for them).
      const readAndClear = pt.readAndClearDirty.bind(pt);
      hwpt.ioas.iopt.forEachArea((pfn, npages) => readAndClear(pfn, npages, false, () => {}));
      ctx.env.tlb.flushTag(hwpt.tag);
    }
    const e = hwpt.ops.setDirtyTracking(enable);
    if (e) vendorFail(e);
    hwpt.dirtyTrackingEnabled = enable;
  },

  getDirtyBitmap(ctx, cmd) {
    val.validateGetDirtyBitmap(cmd);
    const hwpt = ctx.objects.get<HwptPaging>(cmd.hwpt_id, ObjType.HWPT_PAGING);
    checkDirtyRange(cmd.iova, cmd.length, cmd.page_size, hwpt.ioas.iopt.iovaAlignment);
    const pt = hwpt.ops.pt;
    if (!pt.readAndClearDirty) fail('EOPNOTSUPP', 'the domain has no dirty bits');
    const readAndClear = pt.readAndClearDirty.bind(pt);
    const nbits = cmd.length / cmd.page_size;
    const nbytes = Number((nbits + 63n) / 64n) * 8;
    // iova_bitmap_get pins the user bitmap writable before any dirty bit is read (and cleared): a bitmap
    // that cannot be written fails the command with every dirty bit still in the table.
    ctx.checkUser(cmd.data, nbytes, true);
    const bitmap = ctx.copyFromUser(cmd.data, nbytes);
    const page = BigInt(PAGE_SIZE);
    const noClear = (cmd.flags & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
    const onDirty = (pfn: number, n: number) => {
      let start = (BigInt(pfn) * page - cmd.iova) / cmd.page_size;
      if (start < 0n) start = 0n;
      const end = ((BigInt(pfn + n) * page - cmd.iova) + cmd.page_size - 1n) / cmd.page_size;
      for (let b = start; b < end && b < nbits; b++) bitmap[Number(b >> 3n)] |= 1 << Number(b & 7n);
    };
    // Only mapped IOVA can have dirty entries: walk the areas inside the range rather than every page
    // of it (with a large page_size the range is far larger than anything the table maps), as the
    // kernel's page-table walkers skip empty levels.
    const last = cmd.iova + cmd.length - 1n;
    hwpt.ioas.iopt.forEachAreaIn(cmd.iova, last, (aIova, aLast) => {
      const from = (aIova > cmd.iova ? aIova : cmd.iova) / page;
      const to = (aLast < last ? aLast : last) / page;
      readAndClear(Number(from), Number(to - from + 1n), noClear, onDirty);
    });
    if (!noClear) ctx.env.tlb.flushTag(hwpt.tag);
    ctx.copyToUser(cmd.data, bitmap);
  },

  invalidate(ctx, cmd, ucmd) {
    const requested = cmd.entry_num;
    // iommufd_hwpt_invalidate writes entry_num back on every return, also for the struct checks: the
    // entries the driver handled, 0 when the driver never ran (its done count starts at 0; the
    // kernel selftest asserts num_inv == 0 after EINVAL on a nesting parent).
    ucmd.respondOnError = true;
    cmd.entry_num = 0;
    val.validateInvalidate({ ...cmd, entry_num: requested });
    const o = ctx.objects.get(cmd.hwpt_id, ObjType.ANY);
    let run: (entries: Uint8Array, count: number) => { handled: number; error: VendorError | null };
    if (o.type === ObjType.HWPT_NESTED) {
      const n = o as HwptNested;
      const op = n.ops.invalidate?.bind(n.ops);
      if (!op) fail('EOPNOTSUPP', 'the nested domain has no cache_invalidate_user');
      run = (entries, count) => op(cmd.data_type, cmd.entry_len, entries, count, ctx.env.tlb);
    } else if (o.type === ObjType.VIOMMU) {
      const v = o as Viommu;
      const op = v.ops.invalidate?.bind(v.ops);
      if (!op) fail('EOPNOTSUPP', 'the vIOMMU has no cache_invalidate');
      run = (entries, count) => op(cmd.data_type, cmd.entry_len, entries, count, ctx.env.tlb, (virtId) => v.vdevices.get(virtId)?.idev.dev.info);
    } else return fail('EINVAL', 'hwpt_id is neither a nested HWPT nor a vIOMMU');
    // The driver copies entry after entry (iommu_copy_struct_from_user_array): an entry it cannot
    // read faults there, and entry_num reports the entries handled before it. Entries go to the
    // driver in batches of the readable ones; it handles them in order, so that is the same walk.
    let handled = 0;
    const len = cmd.entry_len;
    const batch = Math.max(1, Math.floor(INVALIDATE_BATCH_BYTES / Math.max(len, 1)));
    do {
      const want = Math.min(requested - handled, batch);
      const base = cmd.data_uptr + BigInt(handled) * BigInt(len);
      const readable = want === 0 ? 0 : Math.min(want, Math.floor(ctx.process.readableBytes(base, want * len) / len));
      ctx.inject('invalidate');
      const r = run(readable > 0 ? ctx.copyFromUser(base, readable * len) : new Uint8Array(0), readable);
      handled += r.handled;
      cmd.entry_num = handled;
      if (r.error) vendorFail(r.error);
      if (readable < want) fail('EFAULT', `entry ${handled} cannot be read`);
    } while (handled < requested);
  },

  faultQueueAlloc(ctx, cmd, ucmd) {
    val.validateFaultAlloc(cmd);
    const fault = ctx.newObject(ucmd, new FaultQueue());
    // iommufd_eventq_init: the file, then the fd number; a failure aborts the object.
    ctx.inject('queue-alloc');
    ctx.inject('fd-alloc');
    // The open file holds a reference on the object: destroy is EBUSY until the fd is closed.
    fault.users++;
    fault.fd = ctx.process.installFile(fault.fileOps(ctx.hold()));
    closeIfFailed(ctx, ucmd, fault.fd);
    cmd.out_fault_id = fault.id;
    cmd.out_fault_fd = fault.fd;
  },

  viommuAlloc(ctx, cmd, ucmd) {
    val.validateViommuAlloc(cmd);
    const idev = getDevice(ctx, cmd.dev_id);
    const dev = idev.dev;
    // iommufd_viommu_alloc_ioctl: no get_viommu_size/viommu_init, or get_viommu_size() 0 for the type.
    const ops = dev.unitOps;
    const typeOk = ops.viommuTypeSupported ? ops.viommuTypeSupported(cmd.type) : (ops.viommuTypes?.includes(cmd.type) ?? false);
    if (!ops.viommuAlloc || !typeOk) fail('EOPNOTSUPP', `the IOMMU cannot back vIOMMU type ${cmd.type}`);
    const parent = ctx.objects.get<HwptPaging>(cmd.hwpt_id, ObjType.HWPT_PAGING);
    if (!parent.nestParent) fail('EINVAL', 'the HWPT is not a nesting parent');
    if (parent.vendor !== dev.unitOps.vendor) fail('EINVAL', 'the parent belongs to another IOMMU driver');
    const data = cmd.data_len > 0 ? ctx.copyFromUser(cmd.data_uptr, cmd.data_len) : new Uint8Array(0);
    ctx.inject('viommu-alloc');
    const vops = ops.viommuAlloc(cmd.type, parent.ops, data);
    if (isVendorError(vops)) vendorFail(vops);
    const viommu = new Viommu(parent, vops, dev.unitIndex);
    viommu.link();
    ctx.newObject(ucmd, viommu);
    cmd.out_viommu_id = viommu.id;
  },

  vdeviceAlloc(ctx, cmd, ucmd) {
    val.validateVdeviceAlloc(cmd);
    const viommu = ctx.objects.get<Viommu>(cmd.viommu_id, ObjType.VIOMMU);
    const idev = getDevice(ctx, cmd.dev_id);
    if (idev.dev.unitIndex !== viommu.unitIndex) fail('EINVAL', 'the device sits behind another physical IOMMU');
    if (idev.vdevice) fail('EEXIST', 'the device already has a vDEVICE');
    if (viommu.vdevices.has(cmd.virt_id)) fail('EEXIST', `virt_id ${cmd.virt_id} is already used on this vIOMMU`);
    ctx.inject('vdevice-alloc');
    const vdev = new Vdevice(viommu, idev, cmd.virt_id);
    vdev.link();
    ctx.newObject(ucmd, vdev);
    cmd.out_vdevice_id = vdev.id;
  },

  veventqAlloc(ctx, cmd, ucmd) {
    val.validateVeventqAlloc(cmd);
    const viommu = ctx.objects.get<Viommu>(cmd.viommu_id, ObjType.VIOMMU);
    // No check of the type against the driver: the kernel accepts any non-DEFAULT type here.
    if (viommu.veventqs.has(cmd.type)) fail('EEXIST', 'a vEVENTQ of that type already exists');
    const q = new VEventQueue(viommu, cmd.type, cmd.veventq_depth);
    q.link();
    ctx.newObject(ucmd, q);
    ctx.inject('queue-alloc');
    ctx.inject('fd-alloc');
    q.users++;
    q.fd = ctx.process.installFile(ctx.holdFile(q.fileOps()));
    closeIfFailed(ctx, ucmd, q.fd);
    cmd.out_veventq_id = q.id;
    cmd.out_veventq_fd = q.fd;
  },

  hwQueueAlloc(ctx, cmd) {
    val.validateHwQueueAlloc(cmd);
    ctx.objects.get<Viommu>(cmd.viommu_id, ObjType.VIOMMU);
    fail('EOPNOTSUPP', 'no modelled vIOMMU has hardware-accelerated queues');
  },
};

/**
 * eventq.c: the kernel installs the queue's fd only after the reply reached the user, so a failed
 * copy-out leaves no fd behind; the model installs it at once and closes it if the command fails.
 */
function closeIfFailed(ctx: IommufdCtx, ucmd: Ucmd, fd: number): void {
  const proc = ctx.process;
  ucmd.undo.push(() => proc.close(fd));
}
