/**
 * The part of a unit's Device Table and command buffer the model writes, with the commands the driver
 * queues around each write (drivers/iommu/amd/iommu.c):
 *
 * - amd_iommu_update_dte(): update_dte256() on the device's DeviceID (with its own flush and wait unless
 *   both the old and the new entry have a guest table of the same depth), clone_aliases() (the same
 *   256 bits on every alias DeviceID), device_flush_dte() (INVALIDATE_DEVTAB_ENTRY for the device and
 *   each PCI DMA alias, then for the IVRS alias, and INVALIDATE_IOTLB_PAGES for the whole space when ATS
 *   is on), then COMPLETION_WAIT.
 * - A DeviceID nothing wrote holds what init.c leaves there: V and TV set, no translation and no
 *   permission, so DMA is blocked (the model has no SNP, which would leave TV clear).
 *
 * Aliases are the unit's IVRS alias table (`ivrsAliases` of the unit profile): the DeviceID a
 * device's requests carry, whose DTE the driver keeps equal to the device's. An IVRS alias on the
 * device's own bus is also one of its PCI DMA aliases (setup_aliases(), pci_add_dma_alias()).
 */
import type { DeviceInfo } from '@ioasid/core/driver';
import { CMD_BUFFER_ENTRIES, CMD_INV_IOMMU_ALL_PAGES_ADDRESS, type AmdCommand } from './commands.js';

/** A DTE's four 64-bit words, data[0] first. */
export type DteWords = readonly [bigint, bigint, bigint, bigint];

const DTE_FLAG_V = 1n;
const DTE_FLAG_TV = 2n;
const DTE_FLAG_GV = 1n << 55n;
/** data[2] bits 55:54, the guest paging mode. */
const DTE_GPT_LEVEL_SHIFT = 54n;

/** What init.c writes into every DeviceID before any domain is attached (DMA blocked). */
export const INITIAL_DTE: DteWords = [DTE_FLAG_V | DTE_FLAG_TV, 0n, 0n, 0n];

/** amd_iommu_make_clear_dte(): V set, everything else clear; also the blocked domain's DTE. */
export const CLEAR_DTE: DteWords = [DTE_FLAG_V, 0n, 0n, 0n];

/** A domain a device can be detached from (the driver's dev_data->domain: the last paging domain attached). */
export interface AmdDevDomain {
  /** detach_device(): clear the DTE, flush the domain, drop the device's GCR3 table. */
  detachDevice(dev: DeviceInfo, table: AmdDeviceTable): void;
}

/** A device's GCR3 table: its pages (top first) and what the DTE points to. */
export interface AmdGcr3Table {
  /** Byte address of the top GCR3 table (the DTE's GCR3 root). */
  readonly root: bigint;
  /** GCR3 levels beyond the first (the DTE's GLX). */
  readonly glx: number;
  /** The domain ID the driver allocated for the table (the DTE's DomainID). */
  readonly domid: number;
  /** The table pages along PASID 0's path, top first. */
  readonly pages: readonly number[];
}

/** The driver's per-device state (struct iommu_dev_data) the DTEs depend on. */
export interface AmdDevData {
  /** dev_data->domain: the paging domain attached last; a nested attach leaves it as it was. */
  domain: AmdDevDomain | null;
  /** dev_data->ats_enabled. */
  ats: boolean;
  /** dev_data->ppr: IOPF is on for the device. */
  ppr: boolean;
  /** dev_data->gcr3_info, when the device has a GCR3 table. */
  gcr3: AmdGcr3Table | null;
}

interface DteSlot {
  readonly dev: DeviceInfo;
  /** The domain the DTE points to, or null for the blocked domain. */
  readonly owner: object | null;
  readonly dte: DteWords;
  /** The DeviceID is an alias of `dev`, not the device's own. */
  readonly alias: boolean;
}

/** One unit's modelled device table (by DeviceID) and command buffer. */
export class AmdDeviceTable {
  private readonly slots = new Map<number, DteSlot>();
  private readonly devs = new Map<number, AmdDevData>();
  private readonly cmds: AmdCommand[] = [];
  private waits = 0n;
  /** iommu->need_sync: a command was queued since the last COMPLETION_WAIT. */
  private needSync = false;

  /**
   * @param ivrsAlias - the IVRS alias table (pci_seg->alias_table): the DeviceID a device's requests
   *   carry; the device's own DeviceID when it has none.
   */
  constructor(readonly ivrsAlias: (devid: number) => number = (devid) => devid) {}

  /** The DTE of DeviceID `devid` as the model last wrote it, or the boot-time entry. */
  entry(devid: number): DteWords {
    return this.slots.get(devid & 0xffff)?.dte ?? INITIAL_DTE;
  }

  /** The paging or nested domain the DTE of `devid` points to, or null (blocked, never attached). */
  domainOf(devid: number): object | null {
    return this.slots.get(devid & 0xffff)?.owner ?? null;
  }

  /** The driver's state of `dev` (iommu_dev_data), made on first use. */
  devData(dev: DeviceInfo): AmdDevData {
    const devid = dev.rid & 0xffff;
    let d = this.devs.get(devid);
    if (!d) {
      d = { domain: null, ats: false, ppr: false, gcr3: null };
      this.devs.set(devid, d);
    }
    return d;
  }

  /** The driver has set up a device with requester ID `devid` (its iommu_dev_data exists). */
  hasDevData(devid: number): boolean {
    return this.devs.has(devid & 0xffff);
  }

  /** DeviceIDs written for `dev` itself (not as an alias of another device) so far. */
  isDevice(devid: number): boolean {
    const s = this.slots.get(devid & 0xffff);
    return s !== undefined && !s.alias;
  }

  /** The commands queued so far, oldest first (the last CMD_BUFFER_ENTRIES). */
  get commands(): readonly AmdCommand[] {
    return this.cmds;
  }

  /** The devices (not their aliases) whose DTE points to `owner`. */
  devicesOf(owner: object): DeviceInfo[] {
    const out: DeviceInfo[] = [];
    for (const s of this.slots.values()) if (s.owner === owner && !s.alias) out.push(s.dev);
    return out;
  }

  /**
   * The PCI DMA aliases of `dev` other than itself, in pci_for_each_dma_alias() order: here only an IVRS
   * alias on the device's bus, which setup_aliases() adds with pci_add_dma_alias().
   */
  pciDmaAliases(dev: DeviceInfo): number[] {
    const devid = dev.rid & 0xffff;
    const a = this.ivrsAlias(devid);
    return a !== devid && a >> 8 === devid >> 8 ? [a] : [];
  }

  /**
   * amd_iommu_update_dte(): `dte` into `dev`'s DeviceID and every alias, the flushes, the wait.
   * `ats`: the device's ATS is enabled (device_flush_dte() then flushes its IOTLB).
   */
  update(dev: DeviceInfo, owner: object | null, dte: DteWords, ats: boolean): void {
    const devid = dev.rid & 0xffff;
    this.write256(devid, dte);
    this.slots.set(devid, { dev, owner, dte, alias: false });
    // clone_aliases(): the IVRS alias, then the PCI DMA aliases (the device itself is skipped).
    for (const alias of [this.ivrsAlias(devid), ...this.pciDmaAliases(dev)]) {
      if (alias === devid) continue;
      this.write256(alias, dte);
      this.slots.set(alias, { dev, owner, dte, alias: true });
    }
    this.flushDeviceDte(dev, ats);
    this.completionWait();
  }

  /**
   * device_flush_dte(): INVALIDATE_DEVTAB_ENTRY for the device and its PCI DMA aliases, then for its IVRS
   * alias, then, with ATS on, INVALIDATE_IOTLB_PAGES for its whole IOTLB (no PASID).
   */
  flushDeviceDte(dev: DeviceInfo, ats: boolean): void {
    const devid = dev.rid & 0xffff;
    for (const id of [devid, ...this.pciDmaAliases(dev)]) this.issue({ op: 'INVALIDATE_DEVTAB_ENTRY', devid: id });
    const ivrs = this.ivrsAlias(devid);
    if (ivrs !== devid) this.issue({ op: 'INVALIDATE_DEVTAB_ENTRY', devid: ivrs });
    // build_inv_iotlb_pages(0, ~0UL): the queue depth is the ATS capability's, which the model does not
    // know (0 means 32 outstanding).
    if (ats) this.issue({ op: 'INVALIDATE_IOTLB_PAGES', devid, maxPending: 0, queueId: devid, pasid: 0, gn: false, size: true, address: CMD_INV_IOMMU_ALL_PAGES_ADDRESS });
  }

  /**
   * update_dte256(): the IOMMU reads a DTE in one 256-bit access but the driver writes it as two
   * 128-bit halves, so it orders the halves around V and GV and flushes (INVALIDATE_DEVTAB_ENTRY and a
   * wait) after every change except one that keeps a guest table of the same depth; a change of
   * guest table depth clears V first, flushes, then writes and flushes again.
   */
  private write256(devid: number, dte: DteWords): void {
    const old = this.entry(devid);
    const oldV = (old[0] & DTE_FLAG_V) !== 0n;
    const newV = (dte[0] & DTE_FLAG_V) !== 0n;
    const oldGv = (old[0] & DTE_FLAG_GV) !== 0n;
    const newGv = (dte[0] & DTE_FLAG_GV) !== 0n;
    const gpt = (d: DteWords) => (d[2] >> DTE_GPT_LEVEL_SHIFT) & 3n;
    const s = this.slots.get(devid);
    if (s) this.slots.set(devid, { ...s, dte });
    if (!oldV || !newV || !oldGv || !newGv) this.flushDteSync(devid);
    else if (gpt(old) !== gpt(dte)) {
      this.flushDteSync(devid);
      this.flushDteSync(devid);
    }
  }

  /** iommu_flush_dte_sync(). */
  private flushDteSync(devid: number): void {
    this.issue({ op: 'INVALIDATE_DEVTAB_ENTRY', devid });
    this.completionWait();
  }

  /** The device left whatever domain it used: its DTE is the cleared one (the blocked domain). */
  block(dev: DeviceInfo): void {
    this.update(dev, null, CLEAR_DTE, false);
  }

  /** INVALIDATE_IOMMU_PAGES of the whole address space of `domainId` (PDE set; `pasid` with GN when >= 0). */
  flushDomain(domainId: number, pasid = -1): void {
    this.issue({ op: 'INVALIDATE_IOMMU_PAGES', domainId: domainId & 0xffff, pasid: pasid >= 0 ? pasid : 0, gn: pasid >= 0, pde: true, size: true, address: CMD_INV_IOMMU_ALL_PAGES_ADDRESS });
  }

  /** Queues a command; the oldest drop out past CMD_BUFFER_ENTRIES (the ring wraps). */
  issue(cmd: AmdCommand): void {
    this.cmds.push(cmd);
    if (cmd.op !== 'COMPLETION_WAIT') this.needSync = true;
    if (this.cmds.length > CMD_BUFFER_ENTRIES) this.cmds.splice(0, this.cmds.length - CMD_BUFFER_ENTRIES);
  }

  /**
   * iommu_completion_wait(): COMPLETION_WAIT storing the next semaphore value (its address is not
   * modelled: 0), only when a command was queued since the last one (need_sync).
   */
  completionWait(): void {
    if (!this.needSync) return;
    this.needSync = false;
    this.waits++;
    this.issue({ op: 'COMPLETION_WAIT', store: true, interrupt: false, flush: false, storeAddress: 0n, storeData: this.waits });
  }
}

/** The device table of `unit` when it is an AMD unit (the `deviceTable` it carries), else null. */
export function deviceTableOf(unit: object): AmdDeviceTable | null {
  const t = (unit as { deviceTable?: unknown }).deviceTable;
  return t instanceof AmdDeviceTable ? t : null;
}
