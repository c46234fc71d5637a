/**
 * One SMMUv3 instance (struct arm_smmu_device + the iommu_ops of arm-smmu-v3.c): paging domains on the
 * VMSAv8-64 formats, hw_info, the event / PRI queue codecs, and the vSMMU it hands out (nested.ts, the
 * arm-smmu-v3-iommufd.c part).
 */
import type {
  DecodedUnit,
  DeviceInfo,
  IoPageTable,
  NormalizedCaps,
  PageTableConfig,
  PageTableMemory,
  PagingAllocFlags,
  PagingDomainOps,
  UnitInit,
  UnitOps,
  VendorError,
  ViommuOps,
} from '@ioasid/core/driver';
import { PluginContractError, uapi } from '@ioasid/core/driver';
import { errnoName } from '@ioasid/core';
import type { SmmuRegisters } from './registers.js';
import { encodeHwInfoSmmuv3 } from './registers.js';
import { smmuLinuxProbe, type LinuxSmmuProbe } from './features.js';
import { parseProfileRegisters } from './probe.js';
import type { ParsedProfileRegisters } from './probe.js';
import { SmmuFaultCodec } from './fault-codec.js';
import { renderProbeLine, renderQueueAllocLine, withDevicePrefix } from './logs.js';
import { ARM_LPAE_S1_FORMAT, ARM_LPAE_S2_FORMAT } from './pgtable-lpae.js';
import { SmmuViommu, granuleSizes } from './nested.js';

const { IOMMU_HW_INFO_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_ARM_SMMUV3 } = uapi;

/** Queue depths of the model: the hardware's (IDR1 EVENTQS / PRIQS, as the kernel caps them), at most 2^8. */
export const MODEL_QUEUE_SHIFT_MAX = 8;

function err(errno: VendorError['errno'], reason: string): VendorError {
  return { errno, reason };
}

// ---------------------------------------------------------------------------------------------
// Paging domains
// ---------------------------------------------------------------------------------------------

/** The granule io-pgtable-arm picks for a 4K-page kernel: 4K when supported, else 16K, else 64K. */
export function linuxGranuleLog2(pgsizeBitmap: bigint): number {
  for (const g of [12, 14, 16]) if ((pgsizeBitmap >> BigInt(g)) & 1n) return g;
  return 0;
}

export class SmmuPagingDomain implements PagingDomainOps {
  readonly pgsizeBitmap: bigint;
  readonly apertureStart = 0n;
  readonly apertureLast: bigint;
  readonly enforceCacheCoherency: boolean;
  readonly granuleLog2: number;
  setDirtyTracking?: (enable: boolean) => VendorError | null;

  constructor(
    readonly owner: SmmuUnit,
    readonly pt: IoPageTable,
    /** 1: an ASID-tagged stage-1 domain; 2: a VMID-tagged stage-2 domain. */
    readonly stage: 1 | 2,
    readonly nestParent: boolean,
    readonly tag: number,
    dirtyTracking: boolean,
  ) {
    this.pgsizeBitmap = pt.cfg.pgsizeBitmap;
    this.apertureLast = (1n << BigInt(pt.cfg.ias)) - 1n;
    this.enforceCacheCoherency = owner.caps.coherent;
    this.granuleLog2 = Math.log2(pt.cfg.granule ?? 4096);
    if (dirtyTracking) {
      // arm_smmu_set_dirty_tracking: nothing to switch. HD and DBM stay on for the life of the domain
      // (a cleaned writable leaf must stay writable), and iommufd cleans the dirty state before enabling.
      this.setDirtyTracking = () => null;
    }
  }

  /** arm_smmu_attach_dev(): a domain belongs to the SMMU it was finalised on. */
  checkAttach(_dev: DeviceInfo, unit: UnitOps): VendorError | null {
    if (unit !== this.owner) return err('EINVAL', `domain was allocated on ${this.owner.name}, not on ${unit.name}`);
    return null;
  }

  free(): void {
    this.pt.free();
  }
}

// ---------------------------------------------------------------------------------------------
// The unit
// ---------------------------------------------------------------------------------------------

export class SmmuUnit implements UnitOps {
  readonly vendor = 'smmuv3';
  readonly decoded: DecodedUnit;
  readonly caps: NormalizedCaps;
  readonly name: string;
  readonly regs: SmmuRegisters;
  readonly rawRegisters: ParsedProfileRegisters['raw'];
  /** What Linux's arm_smmu_device_hw_probe() derived. */
  readonly probe: LinuxSmmuProbe;
  readonly viommuTypes: readonly number[];
  readonly faults: SmmuFaultCodec;
  readonly faultQueueDepth: number;
  readonly pageRequestQueueDepth: number;
  /** log2 of the granule Linux uses for this SMMU's domains. */
  readonly granuleLog2: number;
  private readonly formats: UnitInit['formats'];
  readonly allocTag: () => number;

  constructor(init: UnitInit) {
    const parsed = parseProfileRegisters(init.raw);
    // decodeRegisters() accepted these registers: anything else is a host that skipped it.
    if (!parsed.ok) throw new PluginContractError('smmuv3', parsed.error);
    const probe = smmuLinuxProbe(parsed.value.regs);
    if (!probe.ok) throw new PluginContractError('smmuv3', `arm-smmu-v3 ${init.id}: ${probe.error}`);
    this.decoded = init.decoded;
    this.caps = init.decoded.caps;
    this.name = init.id;
    this.regs = parsed.value.regs;
    this.rawRegisters = parsed.value.raw;
    this.probe = probe.value;
    this.formats = init.formats;
    this.allocTag = () => init.allocTag();
    this.granuleLog2 = linuxGranuleLog2(probe.value.pgsizeBitmap);
    // get_viommu_size() answers 0 without FEAT_NESTING: viommuAlloc() then returns EOPNOTSUPP.
    this.viommuTypes = [IOMMU_VIOMMU_TYPE_ARM_SMMUV3];
    this.faults = new SmmuFaultCodec();
    this.faultQueueDepth = 2 ** Math.min(this.probe.evtqShift, MODEL_QUEUE_SHIFT_MAX);
    this.pageRequestQueueDepth = this.has('PRI') ? 2 ** Math.min(this.probe.priqShift, MODEL_QUEUE_SHIFT_MAX) : 0;
  }

  private has(f: LinuxSmmuProbe['featureNames'][number]): boolean {
    return this.probe.featureNames.includes(f);
  }

  hwInfo(_dev: DeviceInfo, requestedType: number): { type: number; data: Uint8Array } | VendorError {
    if (requestedType !== 0 && requestedType !== IOMMU_HW_INFO_TYPE_ARM_SMMUV3) {
      return err('EOPNOTSUPP', `hw_info type ${requestedType} is not IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (${IOMMU_HW_INFO_TYPE_ARM_SMMUV3})`);
    }
    const r = this.rawRegisters;
    const data = encodeHwInfoSmmuv3({ flags: 0, idr: r.idr, iidr: r.iidr, aidr: r.aidr });
    return { type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, data };
  }

  /**
   * arm_smmu_domain_alloc_paging_flags(): stage 1 unless the SMMU only has stage 2 or a nest parent is asked
   * for; NEST_PARENT alone, or any of DIRTY_TRACKING / PASID on a stage-1 capable SMMU.
   */
  domainAllocPaging(_dev: DeviceInfo, flags: PagingAllocFlags, memory: PageTableMemory): PagingDomainOps | VendorError {
    let stage: 1 | 2;
    if (flags.nestParent) {
      if (flags.dirtyTracking || flags.pasid) return err('EOPNOTSUPP', 'NEST_PARENT cannot be combined with DIRTY_TRACKING or PASID');
      if (!this.has('NESTING')) return err('EOPNOTSUPP', `${this.name} has no nesting (needs S1P and S2P, and no nesting erratum)`);
      stage = 2;
    } else if (flags.dirtyTracking || flags.pasid) {
      if (!this.has('TRANS_S1')) return err('EOPNOTSUPP', `${this.name} has no stage 1`);
      stage = 1;
    } else stage = this.has('TRANS_S1') ? 1 : 2;
    // arm_smmu_dbm_capable(): HTTU dirty state and coherent table walks.
    if (flags.dirtyTracking && !this.caps.dirtyTracking) return err('EOPNOTSUPP', `${this.name} has no HTTU dirty-state support`);
    if (flags.pasid && this.probe.ssidBits === 0) return err('EOPNOTSUPP', `${this.name} has no substreams (IDR1.SSIDSIZE = 0)`);
    const g = this.granuleLog2;
    if (g === 0) return err('EOPNOTSUPP', `${this.name} implements no translation granule`);
    // Stage 1 takes a VA (48 bits: the kernel's VA_BITS with 4K pages) and outputs up to the SMMU's IAS;
    // stage 2 takes an IPA of the SMMU's IAS and outputs up to its OAS.
    const ias = stage === 1 ? 48 : this.probe.ias;
    const oas = stage === 1 ? this.probe.ias : this.probe.oas;
    const formatId = stage === 1 ? ARM_LPAE_S1_FORMAT : ARM_LPAE_S2_FORMAT;
    const format = this.formats.get(formatId);
    if (!format) return err('EOPNOTSUPP', `page-table format ${formatId} is not registered`);
    const cfg: PageTableConfig = {
      pgsizeBitmap: granuleSizes(g, oas) & this.probe.pgsizeBitmap,
      ias: Math.min(ias, 52),
      oas: Math.min(oas, 52),
      granule: 1 << g,
      dirtyTracking: flags.dirtyTracking,
      coherent: this.caps.coherent,
      ...(stage === 2 && flags.nestParent && this.has('S2FWB') ? { options: { s2fwb: true } } : {}),
    };
    const pt = format.alloc(cfg, memory);
    if (typeof pt === 'number') return err(errnoName(pt) ?? 'EINVAL', `${formatId} refused ias ${cfg.ias} oas ${cfg.oas} granule ${cfg.granule}`);
    return new SmmuPagingDomain(this, pt, stage, flags.nestParent, this.allocTag(), flags.dirtyTracking);
  }

  /** arm_vsmmu_init() and get_viommu_size(). */
  viommuAlloc(type: number, parent: PagingDomainOps, _data: Uint8Array): ViommuOps | VendorError {
    if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) return err('EOPNOTSUPP', `vIOMMU type ${type} is not IOMMU_VIOMMU_TYPE_ARM_SMMUV3`);
    if (!this.has('NESTING')) return err('EOPNOTSUPP', `${this.name} has no nesting`);
    // The guest's stage 1 must not make the S2 mapping non-coherent: S2FWB, or masters the firmware marks CANWBS
    // (approximated by a coherent SMMU: ViommuAlloc is not told the device).
    if (!this.has('S2FWB') && !this.caps.coherent) return err('EOPNOTSUPP', `${this.name} has neither S2FWB nor coherent (CANWBS) masters`);
    if (!(parent instanceof SmmuPagingDomain) || parent.owner !== this) {
      return err('EINVAL', `the parent domain does not belong to ${this.name}`);
    }
    if (parent.stage !== 2 || !parent.nestParent) return err('EINVAL', 'the parent must be a stage-2 NEST_PARENT domain');
    const s1 = this.formats.get(ARM_LPAE_S1_FORMAT);
    if (!s1?.walkForeign) return err('EOPNOTSUPP', `page-table format ${ARM_LPAE_S1_FORMAT} with walkForeign is not registered`);
    return new SmmuViommu(this, parent, s1);
  }

  /** The lines arm_smmu_device_probe() prints: warnings, the feature line, the queue sizes. */
  bootLog(): string[] {
    const p = this.probe;
    const lines = [
      ...p.messages,
      renderProbeLine({ ias: p.ias, oas: p.oas, features: p.features }),
      renderQueueAllocLine(2 ** p.cmdqShift, 'cmdq'),
      renderQueueAllocLine(2 ** p.evtqShift, 'evtq'),
      ...(this.has('PRI') ? [renderQueueAllocLine(2 ** p.priqShift, 'priq')] : []),
    ];
    return lines.map((l) => withDevicePrefix(this.name, l));
  }
}
