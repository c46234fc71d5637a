/**
 * The part of a unit's Device Table and command buffer the model writes: the DTE of every device
 * attached to a v1 paging domain (set_dte_entry), and the commands the driver queues after changing
 * one (device_flush_dte, iommu_completion_wait). v2, nested and blocked attachments drop the device's
 * entry here: their DTEs (GCR3 tables, guest fields) are not modelled.
 */
import type { DeviceInfo } from '@ioasid/core/driver';
import { CMD_BUFFER_ENTRIES, type AmdCommand } from './commands.js';

/** A DTE's four 64-bit words, data[0] first. */
export type DteWords = readonly [bigint, bigint, bigint, bigint];

interface DteSlot {
  readonly dev: DeviceInfo;
  /** The domain the DTE points to. */
  readonly owner: object;
  readonly dte: DteWords;
}

/** One unit's modelled device table (by DeviceID) and command buffer. */
export class AmdDeviceTable {
  private readonly slots = new Map<number, DteSlot>();
  private readonly cmds: AmdCommand[] = [];
  private waits = 0n;

  /** The modelled DTE of DeviceID `devid`, or null. */
  entry(devid: number): DteWords | null {
    return this.slots.get(devid & 0xffff)?.dte ?? null;
  }

  /** The domain the modelled DTE of `devid` points to, or null. */
  domainOf(devid: number): object | null {
    return this.slots.get(devid & 0xffff)?.owner ?? null;
  }

  /** The commands queued so far, oldest first (the last CMD_BUFFER_ENTRIES). */
  get commands(): readonly AmdCommand[] {
    return this.cmds;
  }

  /** set_dte_entry(): `dev`'s DTE now points to `owner`. */
  write(dev: DeviceInfo, owner: object, dte: DteWords): void {
    this.slots.set(dev.rid & 0xffff, { dev, owner, dte });
  }

  /** The device left `owner` (null: whatever it used); a DTE another domain wrote since stays. */
  forget(dev: DeviceInfo, owner: object | null): void {
    const id = dev.rid & 0xffff;
    const s = this.slots.get(id);
    if (s !== undefined && (owner === null || s.owner === owner)) this.slots.delete(id);
  }

  /** The devices whose DTE points to `owner`. */
  devicesOf(owner: object): DeviceInfo[] {
    const out: DeviceInfo[] = [];
    for (const s of this.slots.values()) if (s.owner === owner) out.push(s.dev);
    return out;
  }

  /** Queues a command; the oldest drop out past CMD_BUFFER_ENTRIES (the ring wraps). */
  issue(cmd: AmdCommand): void {
    this.cmds.push(cmd);
    if (this.cmds.length > CMD_BUFFER_ENTRIES) this.cmds.splice(0, this.cmds.length - CMD_BUFFER_ENTRIES);
  }

  /** iommu_completion_wait(): COMPLETION_WAIT storing the next semaphore value (its address is not modelled: 0). */
  completionWait(): void {
    this.waits++;
    this.issue({ op: 'COMPLETION_WAIT', store: true, interrupt: false, flush: false, storeAddress: 0n, storeData: this.waits });
  }
}

/** The device table of `unit` when it is an AMD unit (the `deviceTable` it carries), else null. */
export function deviceTableOf(unit: object): AmdDeviceTable | null {
  const t = (unit as { deviceTable?: unknown }).deviceTable;
  return t instanceof AmdDeviceTable ? t : null;
}
