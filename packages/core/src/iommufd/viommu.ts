/**
 * vIOMMU and vDEVICE objects (viommu.c): a slice of one physical IOMMU wrapping a nesting parent,
 * and the virtual id of a device on it.
 */
import type { ViommuOps } from '../driver/vendor.js';
import { IommufdObject, ObjType } from './objects.js';
import type { HwptPaging } from './hwpt.js';
import type { IommufdDevice } from './device.js';

export class Viommu extends IommufdObject {
  readonly type = ObjType.VIOMMU;
  readonly vdevices = new Map<bigint, Vdevice>();
  /** vEVENTQs by type. */
  readonly veventqs = new Map<number, IommufdObject>();

  constructor(
    readonly parent: HwptPaging,
    readonly ops: ViommuOps,
    readonly unitIndex: number,
  ) {
    super();
  }

  link(): void {
    this.parent.users++;
  }

  destroy(): void {
    this.ops.destroy();
    this.parent.users--;
  }
}

export class Vdevice extends IommufdObject {
  readonly type = ObjType.VDEVICE;
  private live = true;

  constructor(
    readonly viommu: Viommu,
    readonly idev: IommufdDevice,
    readonly virtId: bigint,
  ) {
    super();
  }

  link(): void {
    this.viommu.users++;
    this.viommu.vdevices.set(this.virtId, this);
    this.idev.vdevice = this;
  }

  /** Unbind of the physical device destroys the vDEVICE and leaves its id unusable. */
  tombstone(): void {
    this.idev.ctx.objects.removeInternal(this, true);
  }

  destroy(): void {
    if (!this.live) return;
    this.live = false;
    this.viommu.vdevices.delete(this.virtId);
    this.viommu.users--;
    if (this.idev.vdevice === this) this.idev.vdevice = null;
  }
}
