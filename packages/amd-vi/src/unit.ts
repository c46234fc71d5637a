/**
 * One AMD IOMMU (struct amd_iommu + the iommu_ops of the amd_iommu driver): GET_HW_INFO, paging
 * domains on the v1 or v2 format, attach compatibility, the event/PPR log formats and boot lines.
 *
 * Where the kernel decides what (drivers/iommu/amd/iommu.c, iommufd.c):
 * - amd_iommufd_hw_info(): IOMMU_HW_INFO_TYPE_AMD (or the default type) with the raw EFR and EFR2;
 *   another requested type is EOPNOTSUPP.
 * - amd_iommu_domain_alloc_paging_flags(): DIRTY_TRACKING and NEST_PARENT get a v1 table (dirty
 *   tracking needs HDSup, a nest parent GT + GIoSup + EFR2 GCR3TRPMode); PASID gets a v2 table (needs
 *   GT + GIoSup); no flag gets the default v1 table; anything else is EOPNOTSUPP.
 * - A v1 table starts at 3 levels (amd_iommu_domain_alloc_paging_v1: generic_pt starting_level 2, the
 *   old PAGE_MODE_3_LEVEL) and grows its top when a mapping needs a higher IOVA, up to the depth HATS
 *   allows (4 + HATS levels); its aperture is that full reach. A growth rewrites the DTE (Mode, host
 *   root) of every device attached to the domain, then flushes them (amd_iommu_change_top).
 * - amd_iommufd_get_viommu_size() / viommu_init(): a vIOMMU of any type but DEFAULT on a v1 nest parent,
 *   the user data ignored; mainline's vIOMMU allocates no nested domain (nested.ts says why), and there
 *   is no nested domain on the parent HWPT either.
 */
import type {
  DecodedUnit,
  DeviceInfo,
  FaultCodec,
  IoPageTable,
  NormalizedCaps,
  PageTableConfig,
  PagingAllocFlags,
  PagingDomainOps,
  PageTableMemory,
  UnitInit,
  UnitOps,
  VendorError,
  ViommuOps,
} from '@ioasid/core/driver';
import { hex } from './bits.js';
import { PPR_LOG_ENTRIES, EVT_LOG_ENTRIES } from './records.js';
import { AmdFaultCodec } from './fault-codec.js';
import { DEFAULT_CAP_PTR, DEFAULT_IOMMU_BDF, renderAmdBootLines, type AmdBootEra, type AmdEventEra } from './logs.js';
import { AmdDeviceTable, CLEAR_DTE, type AmdDevData, type AmdDevDomain, type AmdGcr3Table, type DteWords } from './device-table.js';
import { gcr3Dte, gcr3Levels, v1Dte, type V1TableInfo } from './dte-build.js';
import { CMD_INV_IOMMU_ALL_PAGES_ADDRESS, type AmdCommand } from './commands.js';
import { AMD_V1_FORMAT, AMD_V2_FORMAT, AmdPageTable, amdV1, amdV2 } from './pgtable.js';
import { AmdViommu } from './nested.js';
import { AMD_BLOCKED_DOMAIN, type AmdBlockedDomain } from './blocked.js';
import { IvrsAliasTable, type AmdIvrsAlias } from './ivrs.js';
import {
  AMD_IOMMU_PGSIZES,
  AMD_IOMMU_PGSIZES_V2,
  IOMMU_HW_INFO_TYPE_AMD,
  decodeEfr,
  decodeEfr2,
  dirtyTrackingSupported,
  encodeHwInfoAmd,
  gptLevel,
  gtPprSupported,
  hostLevels,
  maxGlx,
  nestParentSupported,
  v1LevelsWidth,
  v2Supported,
  type AmdEfr,
  type AmdEfr2,
} from './registers.js';

/** An AMD IOMMU's registers as a host profile gives them (validated by {@link parseAmdRegisters}). */
export interface AmdUnitRegisters {
  /** The Extended Feature Register (MMIO 0x30). */
  readonly efr: bigint;
  /** The Extended Feature 2 Register (MMIO 0x1A0); 0 when the profile has none. */
  readonly efr2: bigint;
  /** The IOMMU's PCI function (default `0000:00:00.2`). */
  readonly pciAddress: string;
  /** Offset of the IOMMU's PCI capability block (default 0x40). */
  readonly capPtr: number;
  /** The IVRS alias entries of the unit's PCI segment (ivrs.ts); none when absent or empty. */
  readonly ivrsAliases?: readonly AmdIvrsAlias[];
}

/** Which kernel the unit imitates in the lines it prints. */
export interface AmdUnitOptions {
  /** Which kernel's boot and event lines the unit prints (default: 'v6' boot lines, 'v6' events). */
  readonly bootEra?: AmdBootEra;
  /** Which kernel's event lines the unit prints (default 'v6'). */
  readonly eventEra?: AmdEventEra;
  /**
   * The vIOMMU allocates nested domains from IOMMU_HWPT_DATA_AMD_GUEST (amd_iommu_alloc_domain_nested()
   * in amd_viommu_ops.alloc_domain_nested, as the posted nested-translation series had it). Off by
   * default: mainline's amd_viommu_ops has only `destroy`, so nested HWPT allocation is EOPNOTSUPP.
   */
  readonly nestedOnViommu?: boolean;
}

/** A vIOMMU on a nest parent's viommu_list. */
export interface AmdViommuLink {
  /** The host domain IDs its nested domains use now. */
  readonly hostDomainIds: () => Iterable<number>;
  /** The unit backing it, whose command buffer takes the flushes. */
  readonly unit: AmdUnit;
}

/** A fresh v1 table's depth: Linux's PAGE_MODE_3_LEVEL (generic_pt `starting_level = 2`). */
export const V1_START_LEVELS = 3;

function vendorError(errno: VendorError['errno'], reason: string): VendorError {
  return { errno, reason };
}

/** A protection domain (struct protection_domain) on the v1 or v2 format. */
/** A paging domain of an AMD IOMMU (struct protection_domain): a v1 host table or a v2 guest-format table, with its DomainID. */
export class AmdPagingDomain implements PagingDomainOps, AmdDevDomain {
  /** Page sizes of the table: every power of two from 4 KiB except 512 GiB (v1), or 4 KiB, 2 MiB and 1 GiB (v2). */
  readonly pgsizeBitmap: bigint;
  readonly apertureStart = 0n;
  /** Last IOVA: 2^width - 1 of the v1 table's levels; for v2 the lower half of the 48- or 57-bit space. */
  readonly apertureLast: bigint;
  readonly setDirtyTracking?: (enable: boolean) => VendorError | null;
  /** The depth the v1 table may grow to (HATS of the allocating unit); the v2 table's fixed depth. */
  readonly maxLevels: number;
  private freed = false;
  private hadOn = false;
  /** pdom->dev_list: the devices attached (dev_data->domain is this), with their unit. */
  private readonly devList = new Map<DeviceInfo, AmdUnit>();
  /** vIOMMUs on this nest parent (pdom->viommu_list): their host domain IDs are flushed with it. */
  readonly viommus = new Set<AmdViommuLink>();

  constructor(
    /** The domain's page table. */
    readonly pt: IoPageTable,
    /** The DomainID written to the DTE (data[1] 15:0) and used by INVALIDATE_IOMMU_PAGES. */
    readonly tag: number,
    /** `v1`: the host page table (DTE Mode); `v2`: the x86-64 format table (GCR3). */
    readonly mode: 'v1' | 'v2',
    /** Leaf entries set FC (force coherent): DMA snoops even when the device asks for no-snoop. */
    readonly enforceCacheCoherency: boolean,
    /** Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT: may be the parent of nested guest domains. */
    readonly nestParent: boolean,
    /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING: the DTE's HAD bits can turn dirty tracking on. */
    readonly dirtyTracking: boolean,
    private readonly owner: AmdUnit,
    private readonly memory: PageTableMemory,
  ) {
    this.pgsizeBitmap = pt.cfg.pgsizeBitmap;
    // v2 on PASID 0 has no sign extension: Linux uses 47/56 bits (iommu.c), the lower half.
    const width = mode === 'v2' ? pt.cfg.ias - 1 : pt.cfg.ias;
    this.apertureLast = (1n << BigInt(width)) - 1n;
    this.maxLevels = pt instanceof AmdPageTable ? pt.maxLevels : pt.levels;
    if (pt instanceof AmdPageTable && mode === 'v1') pt.onTopChange = () => this.changeTop();
    if (dirtyTracking) {
      this.setDirtyTracking = (enable: boolean) => {
        // amd_iommu_set_dirty_tracking(): sets or clears the DTE's HAD bits of every attached device.
        pt.setDirtyTracking?.(enable);
        this.hadOn = enable;
        return null;
      };
    }
  }

  /** pt_iommu_amdv1_hw_info(): what a DTE needs of the v1 table. */
  get v1Info(): V1TableInfo {
    return { levels: this.pt.levels, root: BigInt(this.pt.rootPfn) * 4096n, dirtyTracking: this.hadOn };
  }

  /** The DTE of `dev` on this domain, as set_dte_entry() builds it from the device's state. */
  dteFor(dev: DeviceInfo, data: AmdDevData): DteWords {
    if (data.gcr3) return gcr3Dte(data.gcr3, { v2: this.mode === 'v2', ppr: data.ppr, ats: data.ats, fiveLevel: this.pt.levels === 5 });
    return v1Dte(this.v1Info, this.tag, data.ats);
  }

  /**
   * amd_iommu_attach_device(): nothing when the device's current paging domain is this one; otherwise
   * detach_device() from that one, then attach_device(): a GCR3 table for a v2 domain (GCR3[0] pointing
   * to the v2 table), ATS (and PRI for a v2 domain), and set_dte_entry() (the DTE, its flushes, and a
   * flush of the DomainID the old DTE held).
   */
  attachDev(dev: DeviceInfo, unit: UnitOps, pasid: number): VendorError | null {
    if (pasid !== -1 || !(unit instanceof AmdUnit)) return null;
    const table = unit.deviceTable;
    const data = table.devData(dev);
    if (data.domain === this) return null;
    data.domain?.detachDevice(dev, table);
    if (this.mode === 'v2') {
      const g = this.initGcr3Table(dev, unit);
      if ('errno' in g) return g;
      data.gcr3 = g;
    }
    this.devList.set(dev, unit);
    // pdev_enable_caps() / pdev_enable_cap_ats(); PRI (and so IOPF, dev_data->ppr) only on a v2 domain.
    data.ats = dev.ats;
    data.ppr = this.mode === 'v2' && dev.ats && dev.pri && gtPprSupported(unit.efr);
    data.domain = this;
    const oldDomid = Number(table.entry(dev.rid)[1] & 0xffffn);
    table.update(dev, this, this.dteFor(dev, data), data.ats);
    if (oldDomid !== 0) {
      // set_dte_entry(): the TLB entries of the DomainID that was overwritten (amd_iommu_flush_tlb_domid).
      table.flushDomain(oldDomid);
      table.completionWait();
    }
    return null;
  }

  /**
   * init_gcr3_table(): a GCR3 table for the PASIDs the device can use (min of the unit's and the
   * device's, at least one; more GCR3 levels than EFR GLXSup allows is EINVAL), its own domain ID, and
   * GCR3[0] = the v2 table (update_gcr3(): each missing level allocated on the way).
   */
  private initGcr3Table(dev: DeviceInfo, unit: AmdUnit): AmdGcr3Table | VendorError {
    // amd_iommu_probe_device(): max_pasids only when PASIDs are supported at all (amd_iommu_pasid_supported(),
    // which 5-level CPU paging on a 4-level v2 unit turns off: caps.pasidBits 0).
    const maxPasids = gtPprSupported(unit.efr) && unit.caps.pasidBits > 0 && dev.pasidBits > 0 ? Math.min(2 ** (unit.efr.PASmax + 1) - 1, 2 ** dev.pasidBits) : 0;
    const glx = gcr3Levels(maxPasids > 0 ? maxPasids : 1);
    if (glx > maxGlx(unit.efr)) return vendorError('EINVAL', `${dev.bdf} needs ${glx + 1} GCR3 levels, ${unit.name} walks ${maxGlx(unit.efr) + 1}`);
    const pages: number[] = [];
    const release = () => {
      for (const p of pages) this.memory.releaseTable(p);
    };
    for (let l = 0; l <= glx; l++) {
      const p = this.memory.allocTable();
      if (p < 0) {
        release();
        return vendorError('ENOMEM', 'no memory for a GCR3 table');
      }
      pages.push(p);
    }
    // Index 0 at every level: the path of PASID 0.
    for (let l = 0; l < glx; l++) this.memory.mem.writeU64(pages[l], 0, (BigInt(pages[l + 1]) << 12n) | 1n);
    this.memory.mem.writeU64(pages[glx], 0, (BigInt(this.pt.rootPfn) << 12n) | 1n);
    return { root: BigInt(pages[0]) << 12n, glx, domid: this.owner.allocDomainId(), pages };
  }

  /**
   * detach_device(): the DTE cleared and flushed (ATS already off), the whole domain flushed
   * (amd_iommu_domain_flush_all(): v1 by the domain's ID on every unit and each vIOMMU's host domain
   * IDs, v2 by each device's GCR3 domain ID with GN), the GCR3 table cleared and freed.
   */
  detachDevice(dev: DeviceInfo, table: AmdDeviceTable): void {
    const data = table.devData(dev);
    if (data.domain !== this) return;
    data.ats = false;
    data.ppr = false;
    table.update(dev, null, CLEAR_DTE, false);
    // Still on dev_list for the flush (list_del() comes after it).
    this.flushAll();
    if (data.gcr3) {
      // destroy_gcr3_table(): update_gcr3(PASID 0, clear) and its flush (dev_flush_pasid_all).
      this.memory.mem.writeU64(data.gcr3.pages[data.gcr3.glx], 0, 0n);
      table.flushDomain(data.gcr3.domid, 0);
      table.completionWait();
      for (const p of data.gcr3.pages) this.memory.releaseTable(p);
      data.gcr3 = null;
    }
    data.domain = null;
    this.devList.delete(dev);
  }

  /** pdom->iommu_array: the units with a device on this domain. */
  private get units(): Set<AmdUnit> {
    return new Set(this.devList.values());
  }

  /** amd_iommu_domain_flush_all(): the whole address space of the domain on every unit, then the waits. */
  private flushAll(): void {
    if (this.mode === 'v2') {
      // domain_flush_pages_v2(): each device by its GCR3 domain ID, GN set, no PASID.
      for (const [d, unit] of this.devList) {
        const g = unit.deviceTable.devData(d).gcr3;
        if (g) unit.deviceTable.flushDomain(g.domid, 0);
      }
    } else {
      for (const unit of this.units) unit.deviceTable.flushDomain(this.tag);
      for (const v of this.viommus) for (const hdom of v.hostDomainIds()) v.unit.deviceTable.flushDomain(hdom);
    }
    // The IOTLB of every ATS device still on the domain.
    for (const [d, unit] of this.devList) {
      if (unit.deviceTable.devData(d).ats) unit.deviceTable.issue({ op: 'INVALIDATE_IOTLB_PAGES', devid: d.rid & 0xffff, maxPending: 0, queueId: d.rid & 0xffff, pasid: 0, gn: this.mode === 'v2', size: true, address: CMD_INV_IOMMU_ALL_PAGES_ADDRESS });
    }
    for (const unit of this.units) unit.deviceTable.completionWait();
  }

  /** The blocked domain's attach_dev (blocked.ts): detach_device() when the device is on this domain, then the cleared DTE. */
  detachDev(dev: DeviceInfo, unit: UnitOps, pasid: number): void {
    AMD_BLOCKED_DOMAIN.attachDev(dev, unit, pasid);
  }

  /**
   * amd_iommu_change_top(): the table grew, so every DTE pointing to it gets the new Mode and root
   * (set_dte_entry(), with its flushes), then each device's DTE is flushed again (device_flush_dte)
   * and each unit waits (domain_flush_complete).
   */
  private changeTop(): void {
    for (const [dev, unit] of this.devList) {
      const t = unit.deviceTable;
      const data = t.devData(dev);
      const oldDomid = Number(t.entry(dev.rid)[1] & 0xffffn);
      t.update(dev, this, this.dteFor(dev, data), data.ats);
      if (oldDomid !== 0) {
        t.flushDomain(oldDomid);
        t.completionWait();
      }
    }
    for (const [dev, unit] of this.devList) unit.deviceTable.flushDeviceDte(dev, unit.deviceTable.devData(dev).ats);
    for (const unit of this.units) unit.deviceTable.completionWait();
  }

  checkAttach(dev: DeviceInfo, unit: UnitOps): VendorError | null {
    if (!(unit instanceof AmdUnit)) return vendorError('EINVAL', `unit ${unit.name} is not an AMD IOMMU`);
    if (this.mode === 'v1') {
      if (this.maxLevels > hostLevels(unit.efr)) return vendorError('EINVAL', `${unit.name} walks at most ${hostLevels(unit.efr)} host levels (HATS ${unit.efr.HATS})`);
      if (this.dirtyTracking && !dirtyTrackingSupported(unit.efr)) return vendorError('EINVAL', `${unit.name} has no dirty tracking (HDSup)`);
      if (this.nestParent && !nestParentSupported(unit.efr, unit.efr2)) return vendorError('EINVAL', `${unit.name} cannot nest`);
    } else {
      if (!v2Supported(unit.efr)) return vendorError('EINVAL', `${unit.name} has no v2 table for DMA (GTSup and GIoSup)`);
      if (this.pt.levels > unit.gptLevel) return vendorError('EINVAL', `${unit.name} builds ${unit.gptLevel}-level v2 tables (GATS ${unit.efr.GATS}, amd_iommu_gpt_level)`);
    }
    if (this.enforceCacheCoherency && dev.noSnoop) return vendorError('EINVAL', 'the domain forces coherence (FC), which the device cannot honour');
    return null;
  }

  /** Frees the page table and forgets the domain on its unit; a second call does nothing. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.pt.free();
    this.devList.clear();
    this.owner.noteFree(this);
  }
}

/** One AMD IOMMU (an IVHD: Linux's struct amd_iommu) as the amd_iommu driver drives it. */
export class AmdUnit implements UnitOps {
  /** Always `'amd-vi'`. */
  readonly vendor = 'amd-vi';
  readonly name: string;
  /** The unit as decoded from its host profile. */
  readonly decoded: DecodedUnit;
  /** Capabilities in core's vocabulary, derived from EFR and EFR2. */
  readonly caps: NormalizedCaps;
  /** amd_iommu_gpt_level: the depth of the v2 tables the driver builds (5 only with 5-level CPU paging). */
  readonly gptLevel: number;
  /** The raw EFR value. */
  readonly efrValue: bigint;
  /** The raw EFR2 value. */
  readonly efr2Value: bigint;
  /** EFR decoded. */
  readonly efr: AmdEfr;
  /** EFR2 decoded. */
  readonly efr2: AmdEfr2;
  /** The IOMMU's PCI function. */
  readonly pciAddress: string;
  /** Offset of the IOMMU's PCI capability block. */
  readonly capPtr: number;
  readonly faults: FaultCodec;
  /** The event log: 512 entries of 16 bytes (EVTLOG_LEN_MASK_DEF). */
  readonly faultQueueDepth = EVT_LOG_ENTRIES;
  /** The PPR log: 512 entries when the unit can take page requests (GTSup, PPRSup and EPHSup: amd_iommu_gt_ppr_supported), absent otherwise. */
  readonly pageRequestQueueDepth?: number;
  private readonly domains = new Set<AmdPagingDomain>();
  /** The device table and command buffer as the model writes them (device-table.ts). */
  readonly deviceTable: AmdDeviceTable;
  /** The IVRS alias table of the unit's PCI segment (pci_seg->alias_table). */
  readonly aliasTable: IvrsAliasTable;

  constructor(
    private readonly init: UnitInit,
    regs: AmdUnitRegisters,
    private readonly options: AmdUnitOptions = {},
  ) {
    this.name = init.id;
    this.decoded = init.decoded;
    this.efrValue = regs.efr;
    this.efr2Value = regs.efr2;
    this.efr = decodeEfr(regs.efr);
    this.efr2 = decodeEfr2(regs.efr2);
    const cpuFiveLevel = init.cpu?.fiveLevelPaging ?? false;
    this.gptLevel = gptLevel(this.efr, cpuFiveLevel);
    // amd_iommu_pasid_supported: with 5-level CPU paging the v2 table must be 5-level too, or no device
    // gets PASIDs (amd_iommu_probe_device leaves max_pasids 0).
    this.caps = cpuFiveLevel && this.gptLevel !== 5 ? { ...init.decoded.caps, pasidBits: 0 } : init.decoded.caps;
    this.pciAddress = regs.pciAddress;
    this.capPtr = regs.capPtr;
    const aliases = new IvrsAliasTable(regs.ivrsAliases ?? []);
    this.aliasTable = aliases;
    const table = new AmdDeviceTable((devid) => aliases.aliasOf(devid));
    this.deviceTable = table;
    const ivhd = /^ivhd(\d+)$/.exec(init.id);
    this.faults = new AmdFaultCodec({
      ivrsAlias: (devid) => aliases.aliasOf(devid),
      // amd_iommu_report_page_fault() finds a pci_dev with driver data at the DeviceID of the event: a
      // device's own DeviceID always (only devices do DMA), an alias DeviceID once a device with that
      // requester ID has been set up by the driver (bound or attached).
      deviceKnown: (devid) => table.hasDevData(devid) || !aliases.isAliasTarget(devid),
      era: options.eventEra ?? 'v6',
      ivhd: ivhd ? Number(ivhd[1]) : init.index,
      segment: parseInt(regs.pciAddress.slice(0, 4), 16),
      iommuPciAddress: regs.pciAddress,
      maxPasid: this.efr.GTSup ? 2 ** (this.efr.PASmax + 1) - 1 : 0,
    });
    if (this.caps.pri) this.pageRequestQueueDepth = PPR_LOG_ENTRIES;
  }

  /** Paging domains allocated on this unit and not yet freed. */
  get domainCount(): number {
    return this.domains.size;
  }

  /** amd_iommu_pdom_id_alloc(): a domain ID from the same space as the domains' (GCR3 tables, host domain IDs). */
  allocDomainId(): number {
    return this.init.allocTag();
  }

  /**
   * Forgets a freed domain (called by the domain's `free`).
   * @internal
   */
  noteFree(d: AmdPagingDomain): void {
    this.domains.delete(d);
  }

  /** The DTE of DeviceID `devid` as the driver last wrote it (the boot-time blocked entry before that). */
  deviceTableEntry(devid: number): DteWords {
    return this.deviceTable.entry(devid);
  }

  /** The DeviceID the IOMMU sees for requests of requester ID `rid`: its IVRS alias, or itself. */
  deviceIdOf(rid: number): number {
    return this.aliasTable.aliasOf(rid);
  }

  /**
   * The DTE the IOMMU reads for a request of requester ID `rid`: the one at its DeviceID
   * ({@link deviceIdOf}), which the driver keeps equal to the device's own (clone_aliases()).
   */
  requestDte(rid: number): DteWords {
    return this.deviceTable.entry(this.deviceIdOf(rid));
  }

  /** The commands the model has queued on this unit, oldest first (the last CMD_BUFFER_ENTRIES). */
  get commandBuffer(): readonly AmdCommand[] {
    return this.deviceTable.commands;
  }

  /**
   * UnitOps.blockingDomain: the driver's static blocked domain (iommu.c `blocked_domain`), which
   * iommu_device_claim_dma_owner() attaches when the first device of a group is bound to an iommufd.
   * Its attach writes the cleared DTE (V only), so between bind and the first attach DMA is blocked by
   * the DTE and logs IO_PAGE_FAULT.
   */
  blockingDomain(_dev: DeviceInfo): AmdBlockedDomain {
    return AMD_BLOCKED_DOMAIN;
  }

  /** amd_iommufd_hw_info(). */
  hwInfo(
    _dev: DeviceInfo,
    requestedType: number,
  ):
    | {
        /** Always IOMMU_HW_INFO_TYPE_AMD. */
        type: number;
        /** `struct iommu_hw_info_amd`: the raw EFR and EFR2. */
        data: Uint8Array;
      }
    | VendorError {
    if (requestedType !== 0 && requestedType !== IOMMU_HW_INFO_TYPE_AMD) return vendorError('EOPNOTSUPP', `hw_info type ${requestedType} is not IOMMU_HW_INFO_TYPE_AMD`);
    return { type: IOMMU_HW_INFO_TYPE_AMD, data: encodeHwInfoAmd({ efr: this.efrValue, efr2: this.efr2Value }) };
  }

  /** amd_iommu_domain_alloc_paging_flags(). */
  domainAllocPaging(dev: DeviceInfo, flags: PagingAllocFlags, memory: PageTableMemory): PagingDomainOps | VendorError {
    if (hostLevels(this.efr) === 0 && !flags.pasid) {
      // init.c early_amd_iommu_init: with the host (v1) table disabled (amd_iommu_hatdis) the default
      // table becomes v2 when the unit has one, so a domain asking for nothing in particular is v2
      // (iommu.c amd_iommu_domain_alloc_paging_flags, flags 0: the amd_iommu_pgtable default).
      if (!flags.dirtyTracking && !flags.nestParent && v2Supported(this.efr)) return this.allocV2(memory);
      return vendorError('EOPNOTSUPP', `${this.name}: host translation is disabled (HATS 3)`);
    }
    if (flags.pasid) {
      if (flags.dirtyTracking || flags.nestParent) return vendorError('EOPNOTSUPP', 'PASID-capable domains use the v2 table, which has neither dirty tracking nor nesting');
      if (!v2Supported(this.efr)) return vendorError('EOPNOTSUPP', `${this.name} has no v2 table (needs GTSup and GIoSup)`);
      return this.allocV2(memory);
    }
    if (flags.dirtyTracking && !dirtyTrackingSupported(this.efr)) return vendorError('EOPNOTSUPP', `${this.name} has no dirty tracking (needs HDSup)`);
    if (flags.nestParent && !nestParentSupported(this.efr, this.efr2)) {
      return vendorError('EOPNOTSUPP', `${this.name} cannot be a nest parent (needs GTSup, GIoSup and EFR2 GCR3TRPModeSup)`);
    }
    const levels = hostLevels(this.efr);
    const coherent = !dev.noSnoop;
    const cfg: PageTableConfig = {
      pgsizeBitmap: AMD_IOMMU_PGSIZES,
      ias: v1LevelsWidth(levels),
      oas: 52,
      levels,
      dirtyTracking: flags.dirtyTracking,
      coherent,
      options: { startLevels: Math.min(V1_START_LEVELS, levels) },
    };
    const pt = amdV1.alloc(cfg, memory);
    if (typeof pt === 'number') return this.allocError(pt, AMD_V1_FORMAT);
    const d = new AmdPagingDomain(pt, this.init.allocTag(), 'v1', coherent, flags.nestParent, flags.dirtyTracking, this, memory);
    this.domains.add(d);
    return d;
  }

  private allocV2(memory: PageTableMemory): PagingDomainOps | VendorError {
    const levels = this.gptLevel;
    const pt = amdV2.alloc({ pgsizeBitmap: AMD_IOMMU_PGSIZES_V2, ias: 12 + 9 * levels, oas: 52, levels }, memory);
    if (typeof pt === 'number') return this.allocError(pt, AMD_V2_FORMAT);
    const d = new AmdPagingDomain(pt, this.init.allocTag(), 'v2', false, false, false, this, memory);
    this.domains.add(d);
    return d;
  }

  private allocError(rc: number, format: string): VendorError {
    return rc === -12 ? vendorError('ENOMEM', `no memory for the ${format} root table`) : vendorError('EINVAL', `the ${format} format refused the configuration of ${this.name} (${rc})`);
  }

  /**
   * amd_iommufd_get_viommu_size(): the size of struct amd_iommu_viommu whatever the type, so every type
   * core lets through (all but DEFAULT) gets an AMD vIOMMU.
   */
  viommuTypeSupported(_type: number): boolean {
    return true;
  }

  /**
   * amd_iommufd_viommu_init(): the vIOMMU takes the nest parent and joins its viommu_list (so that the
   * parent's flushes reach its host domain IDs); the user data is not read.
   */
  viommuAlloc(type: number, parent: PagingDomainOps, _data: Uint8Array): ViommuOps | VendorError {
    // Core let only a NEST_PARENT HWPT of this driver through, which is always a v1 domain here.
    if (!(parent instanceof AmdPagingDomain) || parent.mode !== 'v1' || !parent.nestParent) return vendorError('EINVAL', 'the parent is not a v1 nest parent of this driver');
    const v = new AmdViommu(type, parent, () => this.allocDomainId(), this.gptLevel, () => parent.v1Info, this.options.nestedOnViommu ?? false);
    const link: AmdViommuLink = { hostDomainIds: () => v.hostDomainIds(), unit: this };
    parent.viommus.add(link);
    v.onDestroy = () => parent.viommus.delete(link);
    return v;
  }

  bootLog(): string[] {
    return renderAmdBootLines({ efr: this.efrValue, efr2: this.efr2Value, pciAddress: this.pciAddress, capPtr: this.capPtr }, this.options.bootEra ?? 'v6', this.init.index === 0);
  }

  toString(): string {
    return `${this.name} (AMD-Vi at ${this.pciAddress}, EFR ${hex(this.efrValue)}, EFR2 ${hex(this.efr2Value)})`;
  }
}

export { DEFAULT_CAP_PTR, DEFAULT_IOMMU_BDF };
