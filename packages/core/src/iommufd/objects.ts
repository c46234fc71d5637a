/**
 * The per-fd object table (main.c's xarray): ids from 1, the lowest free id first, two-phase
 * creation, typed lookup, `users` reference counts and leaf-first teardown.
 */
import { fail } from '../uapi/errno.js';

/** Object types of the per-fd table, numbered as the kernel's enum iommufd_object_type (IOMMUFD_OBJ_*). */
export enum ObjType {
  /** IOMMUFD_OBJ_ANY: a lookup that accepts any type (never an object's own type). */
  ANY = 0,
  /** IOMMUFD_OBJ_DEVICE: a bound VFIO device (struct iommufd_device). */
  DEVICE = 1,
  /** IOMMUFD_OBJ_HWPT_PAGING: a page table mirroring an IOAS (struct iommufd_hwpt_paging). */
  HWPT_PAGING = 2,
  /** IOMMUFD_OBJ_HWPT_NESTED: a user-owned stage-1 table over a parent (struct iommufd_hwpt_nested). */
  HWPT_NESTED = 3,
  /** IOMMUFD_OBJ_IOAS: an I/O address space (struct iommufd_ioas). */
  IOAS = 4,
  /** IOMMUFD_OBJ_ACCESS: an emulated device's access to an IOAS (struct iommufd_access). */
  ACCESS = 5,
  /** IOMMUFD_OBJ_FAULT: a fault queue with its fd (struct iommufd_fault). */
  FAULT = 6,
  /** IOMMUFD_OBJ_VIOMMU: a virtual IOMMU instance (struct iommufd_viommu). */
  VIOMMU = 7,
  /** IOMMUFD_OBJ_VDEVICE: a device as a vIOMMU knows it (struct iommufd_vdevice). */
  VDEVICE = 8,
  /** IOMMUFD_OBJ_VEVENTQ: a vIOMMU event queue with its fd (struct iommufd_veventq). */
  VEVENTQ = 9,
  /** IOMMUFD_OBJ_HW_QUEUE: a guest-owned hardware queue of a vIOMMU (struct iommufd_hw_queue). */
  HW_QUEUE = 10,
}

/**
 * An object of an iommufd's object table (struct iommufd_object): what an object id names. The typed API
 * hands out ids for most objects; an {@link IommufdAccess} is handed out as the object itself.
 */
export abstract class IommufdObject {
  /** Its IOMMUFD_OBJ_* type. */
  abstract readonly type: ObjType;
  /** Its object id in the iommufd's table (what IOMMU_DESTROY takes); 0 until the id is reserved. */
  id = 0;
  /**
   * Long-term references. The table holds one while the object is published; dependants (a HWPT on
   * its IOAS, an open fd on its FAULT...) hold the others. IOMMU_DESTROY needs users === 1.
   * @internal
   */
  users = 1;
  /**
   * Undo everything the object holds. Never fails (the kernel's "destroy never fails").
   * @internal
   */
  abstract destroy(): void;
  /**
   * Called instead of destroy when creation failed after the object was set up; defaults to destroy.
   * @internal
   */
  abort(): void {
    this.destroy();
  }
}

const RESERVED = Symbol('reserved');
const TOMBSTONE = Symbol('tombstone');
type Slot = IommufdObject | typeof RESERVED | typeof TOMBSTONE | undefined;

export class ObjectTable {
  private readonly slots: Slot[] = [undefined];
  /** Free ids below slots.length, kept sorted descending so pop() yields the lowest. */
  private free: number[] = [];

  /** Phase one: reserve an id for `obj`; lookups cannot see it yet. */
  reserve(obj: IommufdObject): number {
    let id: number;
    if (this.free.length > 0) id = this.free.pop()!;
    else {
      id = this.slots.length;
      if (id > 0xffff_ffff) fail('ENOSPC', 'object ids exhausted');
      this.slots.push(undefined);
    }
    this.slots[id] = RESERVED;
    obj.id = id;
    return id;
  }

  /** Phase two: publish the object; creation can no longer fail. */
  finalize(obj: IommufdObject): void {
    this.slots[obj.id] = obj;
  }

  /** Creation failed: undo the object and give its id back. */
  abort(obj: IommufdObject, setUp: boolean): void {
    if (setUp) obj.abort();
    this.release(obj.id);
  }

  private release(id: number): void {
    this.slots[id] = undefined;
    // Keep `free` sorted descending: ids are small and frees are rare next to lookups.
    let i = this.free.length;
    this.free.push(id);
    while (i > 0 && this.free[i - 1] < id) {
      this.free[i] = this.free[i - 1];
      i--;
    }
    this.free[i] = id;
  }

  /** Typed lookup: a missing, reserved, tombstoned or wrongly typed id is ENOENT. */
  get<T extends IommufdObject>(id: number, type: ObjType): T {
    const o = id > 0 && id < this.slots.length ? this.slots[id] : undefined;
    if (o === undefined || typeof o === 'symbol' || (type !== ObjType.ANY && o.type !== type)) fail('ENOENT', `no object ${id} of that type`);
    return o as T;
  }

  /** Lookup that returns undefined instead of failing. */
  peek(id: number): IommufdObject | undefined {
    const o = id > 0 && id < this.slots.length ? this.slots[id] : undefined;
    return typeof o === 'object' ? o : undefined;
  }

  /** IOMMU_DESTROY: only when the table holds the last reference. */
  remove(id: number): void {
    const o = this.peek(id);
    if (!o) fail('ENOENT', `no object ${id}`);
    if (o.users > 1) fail('EBUSY', `object ${id} still has ${o.users - 1} user(s)`);
    o.users = 0;
    this.slots[id] = undefined;
    o.destroy();
    this.release(id);
  }

  /** Removes an object on behalf of the kernel (unbind), regardless of user-space destroy rules. */
  removeInternal(obj: IommufdObject, tombstone = false): void {
    if (this.slots[obj.id] !== obj) return;
    obj.users = 0;
    this.slots[obj.id] = tombstone ? TOMBSTONE : undefined;
    obj.destroy();
    if (!tombstone) this.release(obj.id);
  }

  /** Published objects, in id order. */
  *objects(): IterableIterator<IommufdObject> {
    for (const s of this.slots) if (typeof s === 'object') yield s;
  }

  /** xa_empty: no slot holds anything, not even a reserved id or a tombstone. */
  get empty(): boolean {
    for (let id = 1; id < this.slots.length; id++) if (this.slots[id] !== undefined) return false;
    return true;
  }

  get count(): number {
    let n = 0;
    for (const s of this.slots) if (typeof s === 'object') n++;
    return n;
  }

  /**
   * Close of the fd: destroy leaves first (objects only the table references) until the table is
   * empty. A pass without progress is a reference-count bug: report it instead of looping.
   */
  destroyAll(): string[] {
    const leaks: string[] = [];
    for (;;) {
      let progress = false;
      let remaining = 0;
      for (let id = 1; id < this.slots.length; id++) {
        const o = this.slots[id];
        if (typeof o !== 'object') continue;
        remaining++;
        if (o.users === 1) {
          this.removeInternal(o);
          progress = true;
        }
      }
      if (remaining === 0) break;
      if (!progress) {
        for (const o of this.objects()) leaks.push(`${ObjType[o.type]} ${o.id} users=${o.users}`);
        break;
      }
    }
    this.slots.length = 1;
    this.free = [];
    return leaks;
  }
}
