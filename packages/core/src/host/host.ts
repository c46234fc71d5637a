/**
 * The simulated machine: physical memory, the user process, IOMMU units (from vendor plugins and
 * raw registers) and the PCI devices behind them. `createHost` is the entry point; `openIommufd` is
 * open("/dev/iommu").
 */
import 'reflect-metadata';
import type { DependencyContainer } from 'tsyringe';
import { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import { HostProcess } from '../memory/process.js';
import { IommufdCtx, type TlbInvalidator } from '../iommufd/context.js';
import { Iommufd } from '../iommufd/iommufd.js';
import { deviceHandlers } from '../iommufd/device-layer.js';
import { DeviceGroup } from '../iommufd/device.js';
import { PluginHost, type IommuPlugin } from '../driver/plugin.js';
import type { PageTableFormat, PageTableMemory } from '../driver/pgtable.js';
import type { FaultCodec } from '../driver/fault.js';
import type { FormatRegistry, UnitOps } from '../driver/vendor.js';
import { FAULT_INJECTOR, NO_FAULT_INJECTION, type FaultInjector } from '../driver/inject.js';
import { IommuUnit } from '../translate/unit.js';
import { FaultPipeline, type PipelineStats } from '../fault/pipeline.js';
import { FAULT_STAGE, FAULT_TRACE, HOST_LOG, RingLog, type FaultStage, type HostLog } from '../fault/stages.js';
import { PciDevice } from './device.js';
import { PriFlowControl } from './pri.js';
import { BARE_PROFILE, parseBdf, parseProfileNumber, type HostProfile } from './profile.js';

/** A host profile that cannot be built: names the path and what was expected. */
export class HostProfileError extends Error {
  constructor(
    /** Where in the profile the problem is, e.g. 'units[0].vendor' or 'devices[2].pasidBits'. */
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'HostProfileError';
  }
}

/** What {@link createHost} builds a host from. */
export interface HostOptions {
  /** Vendor plugins to load (each registers into this host's own DI container). */
  plugins?: readonly IommuPlugin[];
  /** The machine: units and devices. Defaults to a bare host. */
  profile?: HostProfile;
  /** Parent container; the host always works in a child of it. */
  container?: DependencyContainer;
  /**
   * iommufd's `allow_unsafe_interrupts` module parameter (`iommufd.allow_unsafe_interrupts=1`): bind
   * accepts a device whose MSIs the platform cannot isolate, with a warning in the kernel log, instead
   * of EPERM. Default false, as the kernel's. Changeable later through Host.allowUnsafeInterrupts.
   */
  allowUnsafeInterrupts?: boolean;
}

/**
 * An IOMMU unit of a {@link Host} as applications and tools see it: which unit it is, the vendor driver that
 * runs it, and the platform facts bind reads. `Host.units` lists them in profile order; a device's unit is
 * `host.units[dev.unitIndex]`. The translation engine behind it (IOTLB, walks) is not part of the API.
 */
export interface HostUnit {
  /** Its index in `Host.units`, the profile's order; `IommuFault.unit` and `PciDevice.unitIndex` use it. */
  readonly index: number;
  /** The profile's unit id, e.g. 'dmar0'. */
  readonly id: string;
  /** The vendor id of the plugin that drives it, e.g. 'vtd' (`ops.vendor`). */
  readonly vendor: string;
  /** The vendor's driver instance for the unit (its caps, decoded registers, fault codec, boot log lines). */
  readonly ops: UnitOps;
  /**
   * Whether the platform isolates the MSIs of the devices behind it (iommu_group_has_isolated_msi): the
   * profile's `msiIsolated`, else the vendor's caps (isolatedMsi, else interruptRemapping). Bind refuses a
   * device that is not isolated (EPERM) unless `Host.allowUnsafeInterrupts` is set.
   */
  readonly msiIsolated: boolean;
}

/**
 * A simulated machine built from a {@link HostProfile}: physical memory, one user process, the IOMMU units the
 * plugins' vendors drive, the PCI devices behind them with their iommu groups, the fault pipeline and the
 * kernel log. `openIommufd()` opens /dev/iommu on it.
 */
export class Host {
  /** The host's physical memory (page tables, queues and DMA target live here). */
  readonly mem = new PhysicalMemory();
  /** Allocator of free 4 KiB frames of `mem` (page tables, pinned pages). */
  readonly frames = new FrameAllocator(this.mem);
  /** The user process that opens /dev/iommu: its mappings are what IOAS_MAP pins. */
  readonly process = new HostProcess(this.mem, this.frames);
  /** The loaded plugins and their DI container. */
  readonly plugins: PluginHost;
  /**
   * The translation engines of the units, one per profile unit, in profile order (IommuFault.unit indexes this).
   * @internal
   */
  readonly iommuUnits: IommuUnit[] = [];
  /** Devices by BDF, e.g. '0000:00:02.0'. */
  readonly devices = new Map<string, PciDevice>();
  /**
   * iommu groups by number; devices of one group share every attach.
   * @internal
   */
  readonly groups = new Map<number, DeviceGroup>();
  /** The profile the host was built from (BARE_PROFILE when none was given). */
  readonly profile: HostProfile;
  /** The kernel log: driver boot lines, fault lines, overflow lines. */
  readonly log: HostLog;
  /**
   * Carries device faults and page requests through the vendor's records to user space and back.
   * @internal
   */
  readonly faults: FaultPipeline;
  /**
   * iommufd's `allow_unsafe_interrupts` module parameter, writable at run time as
   * /sys/module/iommufd/parameters/allow_unsafe_interrupts is: read by every bind (device.c
   * iommufd_device_bind).
   */
  allowUnsafeInterrupts: boolean;
  private readonly devicesByRid = new Map<number, PciDevice>();
  private readonly formats = new Map<string, PageTableFormat>();
  private nextTag = 1;
  private faultInjector: FaultInjector = NO_FAULT_INJECTION;

  /** Where every domain's page tables come from: frames of `frames`, asked to the injector as 'table-alloc'. */
  readonly tableMemory: PageTableMemory = {
    mem: this.mem,
    allocTable: () => {
      if (this.faultInjector.shouldFail('table-alloc')) return -1;
      return this.frames.alloc();
    },
    releaseTable: (pfn) => this.frames.release(pfn),
    allocTables: (frames) => {
      // One contiguous multi-frame table is one allocation: one question to the injector.
      if (this.faultInjector.shouldFail('table-alloc')) return -1;
      return this.frames.allocRun(frames);
    },
    releaseTables: (pfn, frames) => {
      for (let i = 0; i < frames; i++) this.frames.release(pfn + i);
    },
    releaseTableRun: (from, to) => this.frames.releaseRun(from, to),
  };

  /**
   * IOTLB invalidation by tag, applied to every unit's IOTLB.
   * @internal
   */
  readonly tlb: TlbInvalidator = {
    flushRange: (tag, iovaPfn, npages) => {
      for (const u of this.iommuUnits) u.iotlb.flushRange(tag, -1, iovaPfn, npages);
    },
    flushStage1: (tag, pasid, iovaPfn, npages) => {
      for (const u of this.iommuUnits) u.iotlb.flushRange(tag, pasid, iovaPfn, npages);
    },
    flushTag: (tag) => {
      for (const u of this.iommuUnits) u.iotlb.flushTag(tag);
    },
  };

  constructor(opts: HostOptions = {}) {
    this.plugins = new PluginHost(opts.container);
    for (const p of opts.plugins ?? []) this.plugins.load(p);
    const c = this.plugins.container;
    this.log = c.isRegistered(HOST_LOG, true) ? c.resolve(HOST_LOG) : new RingLog();
    if (c.isRegistered(FAULT_INJECTOR, true)) this.injector = c.resolve(FAULT_INJECTOR);
    const stages: FaultStage[] = c.isRegistered(FAULT_STAGE, true) ? c.resolveAll(FAULT_STAGE) : [];
    this.faults = new FaultPipeline(this, stages, this.log, c.isRegistered(FAULT_TRACE, true) ? c.resolve(FAULT_TRACE) : null);
    for (const f of this.plugins.formats()) this.formats.set(f.id, f);
    this.allowUnsafeInterrupts = opts.allowUnsafeInterrupts ?? false;
    this.profile = opts.profile ?? BARE_PROFILE;
    this.build(this.profile);
  }

  /**
   * The fault injector asked at every allocation and fallible vendor operation (see driver/inject.ts):
   * FAULT_INJECTOR from the container, or set here (tests, `ioasid run`).
   */
  get injector(): FaultInjector {
    return this.faultInjector;
  }

  /** Replaces the fault injector, for the host's tables, commands and process alike. */
  set injector(i: FaultInjector) {
    this.faultInjector = i;
    this.process.injector = i;
  }

  /** The profile's name. */
  get name(): string {
    return this.profile.name;
  }

  /** The IOMMU units, one per profile unit, in profile order (`IommuFault.unit` and `PciDevice.unitIndex` index it). */
  get units(): readonly HostUnit[] {
    return this.iommuUnits;
  }

  /**
   * Counters of the fault pipeline since the host was built: page requests and stalls devices sent, responses
   * from user space and from the kernel itself, unrecoverable faults and where they went, queue overflows.
   * The object is live: it keeps counting.
   */
  get faultStats(): Readonly<PipelineStats> {
    return this.faults.stats;
  }

  /**
   * Page request groups and stalled transactions still waiting for a response, on every unit: 0 once every
   * recoverable fault has been answered (by user space, by auto-response or by a detach).
   */
  get outstandingFaults(): number {
    return this.faults.outstanding;
  }

  private build(profile: HostProfile): void {
    if (!profile || typeof profile !== 'object') throw new HostProfileError('profile', 'expected an object with units and devices');
    if (!Array.isArray(profile.units)) throw new HostProfileError('units', 'expected an array');
    if (!Array.isArray(profile.devices)) throw new HostProfileError('devices', 'expected an array');
    const cpu = profile.cpu ?? {};
    if (typeof cpu !== 'object' || cpu === null) throw new HostProfileError('cpu', 'expected an object');
    if (cpu.fiveLevelPaging !== undefined && typeof cpu.fiveLevelPaging !== 'boolean') throw new HostProfileError('cpu.fiveLevelPaging', 'expected a boolean');
    const cpuInfo = Object.freeze({ fiveLevelPaging: cpu.fiveLevelPaging ?? false });
    const registry: FormatRegistry = { get: (id) => this.formats.get(id), ids: () => [...this.formats.keys()] };
    const unitById = new Map<string, IommuUnit>();
    profile.units.forEach((u, index) => {
      const path = `units[${index}]`;
      if (typeof u?.id !== 'string' || u.id === '') throw new HostProfileError(`${path}.id`, 'expected a non-empty string');
      if (unitById.has(u.id)) throw new HostProfileError(`${path}.id`, `duplicate unit id '${u.id}'`);
      const vendor = this.plugins.vendor(u.vendor);
      if (!vendor) {
        const known = this.plugins.vendors().map((v) => v.id);
        throw new HostProfileError(`${path}.vendor`, `no plugin for vendor '${u.vendor}' (loaded: ${known.length ? known.join(', ') : 'none'})`);
      }
      const decoded = vendor.decodeRegisters(u.registers ?? {});
      if (!decoded.ok) throw new HostProfileError(`${path}.registers`, decoded.error);
      const ops = vendor.createUnit({ index, id: u.id, decoded: decoded.value, raw: u.registers ?? {}, mem: this.mem, formats: registry, allocTag: () => this.nextTag++, cpu: cpuInfo });
      if (u.msiIsolated !== undefined && typeof u.msiIsolated !== 'boolean') throw new HostProfileError(`${path}.msiIsolated`, 'expected a boolean');
      const unit = new IommuUnit(index, u.id, ops, this.mem, u.msiIsolated ?? ops.caps.isolatedMsi ?? ops.caps.interruptRemapping);
      this.iommuUnits.push(unit);
      unitById.set(u.id, unit);
      for (const line of ops.bootLog?.() ?? []) this.log.write(line);
    });
    profile.devices.forEach((d, i) => {
      const path = `devices[${i}]`;
      const bdf = parseBdf(String(d?.bdf));
      if (!bdf) throw new HostProfileError(`${path}.bdf`, `expected segment:bus:device.function like 0000:00:02.0, got '${String(d?.bdf)}'`);
      if (this.devices.has(d.bdf)) throw new HostProfileError(`${path}.bdf`, `duplicate device ${d.bdf}`);
      const unit = unitById.get(d.unit);
      if (!unit) throw new HostProfileError(`${path}.unit`, `no unit '${d.unit}' (units: ${[...unitById.keys()].join(', ') || 'none'})`);
      const groupId = d.group ?? 1000 + i;
      let group = this.groups.get(groupId);
      if (!group) {
        group = new DeviceGroup(groupId);
        this.groups.set(groupId, group);
      }
      const reserved = (d.reservedRegions ?? []).map((r, k) => {
        const start = parseProfileNumber(r.start);
        const last = parseProfileNumber(r.last);
        if (start === null || last === null || last < start) throw new HostProfileError(`${path}.reservedRegions[${k}]`, 'expected start <= last as hex strings');
        return { start, last };
      });
      const pasidBits = d.pasidBits ?? 0;
      if (!Number.isInteger(pasidBits) || pasidBits < 0 || pasidBits > 20) throw new HostProfileError(`${path}.pasidBits`, 'expected an integer from 0 to 20');
      const info = {
        bdf: d.bdf,
        rid: bdf.rid,
        streamId: d.streamId ?? bdf.rid,
        ats: d.ats ?? false,
        pri: d.pri ?? false,
        pasidBits,
        pasidExec: d.pasidExec ?? false,
        pasidPriv: d.pasidPriv ?? false,
        noSnoop: d.noSnoop ?? false,
        isVf: d.vf ?? false,
        stall: d.stall ?? false,
      };
      const priCapacity = d.priCapacity ?? 512;
      if (!Number.isSafeInteger(priCapacity) || priCapacity < 1 || priCapacity > 0xffff_ffff) throw new HostProfileError(`${path}.priCapacity`, 'expected an integer from 1 to 2^32 - 1');
      // The OS programs the allocation when it enables PRI; Linux's VT-d driver asks for its page
      // request queue depth, so that one function can never overflow the queue on its own.
      const pri = new PriFlowControl(priCapacity, this.queueDepths(unit.index).pageRequests);
      const dev = new PciDevice(this, d.bdf, info, unit, group, reserved, d.description ?? '', pri);
      group.devices.push(dev);
      this.devices.set(d.bdf, dev);
      this.devicesByRid.set(unit.index * 0x10000 + info.rid, dev);
      if (info.streamId !== info.rid) this.devicesByRid.set(unit.index * 0x10000 + info.streamId, dev);
    });
  }

  /** open("/dev/iommu", O_RDWR). */
  openIommufd(): Iommufd {
    const ctx = new IommufdCtx(this.process, this.mem, this.frames, this);
    const fd = new Iommufd(ctx, deviceHandlers, (ops) =>
      this.process.installFile({
        ...ops,
        release: () => {
          // Closing /dev/iommu with devices still bound: VFIO would hold the file open; here the
          // devices are unbound first so that nothing leaks.
          for (const d of this.devices.values()) if (d.idev?.ctx === ctx) d.unbind();
          ops.release();
        },
      }),
    );
    return fd;
  }

  /** A device by BDF, throwing a clear error when absent. */
  device(bdf: string): PciDevice {
    const d = this.devices.get(bdf);
    if (!d) throw new HostProfileError('devices', `no device ${bdf} on ${this.name} (devices: ${[...this.devices.keys()].join(', ') || 'none'})`);
    return d;
  }

  // --- PipelineHost ------------------------------------------------------------------------------

  /**
   * The fault codec of unit `unit` (its UnitOps.faults), undefined when it has none.
   * @internal
   */
  codec(unit: number): FaultCodec | undefined {
    return this.iommuUnits[unit]?.ops.faults;
  }

  /**
   * The Linux name of unit `unit` (UnitOps.name), `iommu<n>` when unknown.
   * @internal
   */
  unitName(unit: number): string {
    return this.iommuUnits[unit]?.ops.name ?? `iommu${unit}`;
  }

  /**
   * The device behind `unit` with requester id (or StreamID) `rid`.
   * @internal
   */
  deviceByRid(unit: number, rid: number): PciDevice | undefined {
    return this.devicesByRid.get(unit * 0x10000 + rid);
  }

  /**
   * The depths of unit `unit`'s hardware queues, as the fault pipeline sizes them.
   * @internal
   */
  queueDepths(unit: number): {

    /** Records the fault/event queue holds (UnitOps.faultQueueDepth, 256 by default). */
    faults: number;
    /** Records the page request queue holds (UnitOps.pageRequestQueueDepth, 512 by default). */
    pageRequests: number;
  } {
    const ops = this.iommuUnits[unit]?.ops;
    return { faults: ops?.faultQueueDepth ?? 256, pageRequests: ops?.pageRequestQueueDepth ?? 512 };
  }
}

/** Builds a {@link Host}; throws HostProfileError for a profile it cannot build, PluginContractError for a bad plugin. */
export function createHost(opts: HostOptions = {}): Host {

  return new Host(opts);
}
