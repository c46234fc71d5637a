/**
 * Device-side command handlers on a host without devices: every command validates its struct
 * exactly as the kernel does and then fails the lookup of the object it references.
 */
import { fail } from '../uapi/errno.js';
import { ObjType } from './objects.js';
import type { DeviceCommandHandlers } from './device-commands.js';
import * as val from './hwpt-validate.js';

export const bareDeviceHandlers: DeviceCommandHandlers = {
  hwptAlloc(ctx, cmd) {
    val.validateHwptAlloc(cmd);
    ctx.objects.get(cmd.dev_id, ObjType.DEVICE);
    fail('ENOENT');
  },
  getHwInfo(ctx, cmd) {
    val.validateHwInfo(cmd);
    ctx.objects.get(cmd.dev_id, ObjType.DEVICE);
    fail('ENOENT');
  },
  setDirtyTracking(ctx, cmd) {
    val.validateSetDirtyTracking(cmd);
    ctx.objects.get(cmd.hwpt_id, ObjType.HWPT_PAGING);
    fail('ENOENT');
  },
  getDirtyBitmap(ctx, cmd) {
    val.validateGetDirtyBitmap(cmd);
    ctx.objects.get(cmd.hwpt_id, ObjType.HWPT_PAGING);
    fail('ENOENT');
  },
  invalidate(ctx, cmd, ucmd) {
    val.validateInvalidate(cmd);
    ucmd.respondOnError = true;
    cmd.entry_num = 0;
    const o = ctx.objects.get(cmd.hwpt_id, ObjType.ANY);
    if (o.type !== ObjType.HWPT_NESTED && o.type !== ObjType.VIOMMU) fail('EINVAL', 'not a nested HWPT or vIOMMU');
    fail('ENOENT');
  },
  faultQueueAlloc(_ctx, cmd) {
    val.validateFaultAlloc(cmd);
    fail('ENODEV', 'fault queues need the device layer');
  },
  viommuAlloc(ctx, cmd) {
    val.validateViommuAlloc(cmd);
    ctx.objects.get(cmd.dev_id, ObjType.DEVICE);
    fail('ENOENT');
  },
  vdeviceAlloc(ctx, cmd) {
    val.validateVdeviceAlloc(cmd);
    ctx.objects.get(cmd.viommu_id, ObjType.VIOMMU);
    fail('ENOENT');
  },
  veventqAlloc(ctx, cmd) {
    val.validateVeventqAlloc(cmd);
    ctx.objects.get(cmd.viommu_id, ObjType.VIOMMU);
    fail('ENOENT');
  },
  hwQueueAlloc(ctx, cmd) {
    val.validateHwQueueAlloc(cmd);
    ctx.objects.get(cmd.viommu_id, ObjType.VIOMMU);
    fail('ENOENT');
  },
};
