/**
 * One RISC-V IOMMU (the kernel's struct riscv_iommu_device with riscv_iommu_ops), as mainline Linux drives
 * it: paging domains on the first stage in the largest mode the unit has (Sv57 > Sv48 > Sv39), tagged
 * with a PSCID; the fault queue's records and lines. What the driver does not implement is absent, so
 * core answers as the kernel does: no `hw_info` (GET_HW_INFO reports IOMMU_HW_INFO_TYPE_NONE), no
 * nesting, vIOMMU, PASID, PRI or dirty tracking (EOPNOTSUPP).
 */
import type {
  DecodedUnit,
  DeviceInfo,
  FaultCodec,
  PageRequestCodec,
  IoPageTable,
  NormalizedCaps,
  PageTableMemory,
  PagingAllocFlags,
  PagingDomainOps,
  UnitInit,
  UnitOps,
  VendorError,
} from '@ioasid/core/driver';
import { linuxPagingContext, type DeviceContext } from './context.js';
import { faultCodec } from './fault-codec.js';
import { VENDOR_ID } from './ids.js';
import { bootLines } from './logs.js';
import { SV39, SV48, SV57, svFormat, type SvMode } from './pgtable.js';
import { linuxPageSizes, linuxPagingWidth } from './probe.js';
import type { CapFields } from './registers.js';

/** PSCIDs come from a 20-bit IDA starting at 1 (riscv_iommu_pscids, RISCV_IOMMU_MAX_PSCID). */
export const MAX_PSCID = (1 << 20) - 1;
/** Fault queue entries the driver allocates (RISCV_IOMMU_DEF_FQ_COUNT). */
export const LINUX_FQ_ENTRIES = 4096;
/** Command queue entries the driver allocates (RISCV_IOMMU_DEF_CQ_COUNT). */
export const LINUX_CQ_ENTRIES = 8192;

const MODE_BY_WIDTH: Readonly<Record<number, SvMode>> = { 39: SV39, 48: SV48, 57: SV57 };

/** A paging domain: a first-stage table, its iosatp mode and its PSCID (the IOTLB tag). */
export class PagingDomain implements PagingDomainOps {
  readonly apertureStart = 0n;
  /** Last IOVA of the aperture: 2^(VA-1) - 1, the lower half of the sign-extended IOVA space. */
  readonly apertureLast: bigint;
  /** Linux's domains do not implement enforce_cache_coherency. */
  readonly enforceCacheCoherency = false;
  constructor(
    /** The first-stage table of the domain. */
    readonly pt: IoPageTable,
    /** The first-stage mode: the largest the unit has (Sv57, Sv48 or Sv39). */
    readonly mode: SvMode,
    /** The domain's PSCID, written to the device context's `ta.PSCID` and used in IOTINVAL.VMA. */
    readonly tag: number,
  ) {
    // The IOVA is sign-extended from bit VA-1: iommufd gets the lower half.
    this.apertureLast = (1n << BigInt(mode.ias - 1)) - 1n;
  }
  /** Page sizes the domain maps, as Linux sets them: 4 KiB, 2 MiB, 1 GiB, and 512 GiB in Sv48 and Sv57. */
  get pgsizeBitmap(): bigint {
    return this.pt.cfg.pgsizeBitmap;
  }
  /** riscv_iommu_attach_paging_domain: a unit without the domain's mode refuses with -ENODEV. */
  checkAttach(_dev: DeviceInfo, unit: UnitOps): VendorError | null {
    if (unit.vendor !== VENDOR_ID) return { errno: 'EINVAL', reason: `the domain belongs to a ${VENDOR_ID} unit, the device to a ${unit.vendor} one` };
    if (!unit.caps.hostStage?.inputBits.includes(this.mode.ias)) return { errno: 'ENODEV', reason: `${unit.name} has no ${this.mode.name} first stage (riscv_iommu_pt_supported)` };
    return null;
  }
  /** The device context Linux writes for a device attached to this domain (root PPN = the table's root). */
  deviceContext(): DeviceContext {
    return linuxPagingContext(this.mode.mode, this.pt.rootPfn, this.tag);
  }
  /** Frees the domain's page table (riscv_iommu_free_paging_domain). */
  free(): void {
    this.pt.free();
  }
}

/** A RISC-V IOMMU unit as the Linux driver drives it (`UnitOps`). */
export class Unit implements UnitOps {
  /** Always `'riscv-iommu'`. */
  readonly vendor = VENDOR_ID;
  /** Capabilities in core's vocabulary, from the decoded `capabilities` register. */
  readonly caps: NormalizedCaps;
  readonly name: string;
  readonly faults: FaultCodec & PageRequestCodec = faultCodec;
  readonly faultQueueDepth = LINUX_FQ_ENTRIES;
  /** The page-request queue is never enabled by the driver. */
  readonly pageRequestQueueDepth = 0;
  /** The probe's lines; absent for a PCI unit, whose probe prints nothing. */
  readonly bootLog?: () => string[];

  constructor(
    private readonly init: UnitInit,
    /** Every field of the unit's `capabilities` register. */
    readonly cap: CapFields,
  ) {
    this.caps = init.decoded.caps;
    this.name = init.id;
    const lines = bootLines(init.id, init.decoded.registers[1]?.fields.WSI === 1);
    if (lines.length) this.bootLog = () => [...lines];
  }

  /** The unit as decoded from its host profile. */
  get decoded(): DecodedUnit {
    return this.init.decoded;
  }

  /** riscv_iommu_alloc_paging_domain: the largest first stage, a PSCID from [1, 2^20 - 1]. */
  domainAllocPaging(_dev: DeviceInfo, flags: PagingAllocFlags, memory: PageTableMemory): PagingDomainOps | VendorError {
    if (flags.nestParent) return { errno: 'EOPNOTSUPP', reason: 'the driver has no second-stage (nesting parent) domains' };
    if (flags.pasid) return { errno: 'EOPNOTSUPP', reason: 'the driver has no PASID support' };
    if (flags.dirtyTracking) return { errno: 'EOPNOTSUPP', reason: 'the driver has no dirty tracking' };
    const mode = MODE_BY_WIDTH[linuxPagingWidth(this.cap)];
    if (mode === undefined) return { errno: 'ENODEV', reason: 'cannot find supported page table mode' };
    const pt = svFormat(mode).alloc(
      { pgsizeBitmap: linuxPageSizes(mode.ias), ias: mode.ias, oas: this.cap.PAS, coherent: true, options: { svpbmt: this.cap.Svpbmt === 1, svrsw60t59b: this.cap.Svrsw60t59b === 1 } },
      memory,
    );
    if (typeof pt === 'number') return { errno: pt === -12 ? 'ENOMEM' : 'EINVAL', reason: `page table allocation failed (${pt})` };
    const tag = this.init.allocTag();
    if (tag > MAX_PSCID) {
      pt.free();
      return { errno: 'ENOMEM', reason: 'no PSCID left (ida_alloc_range)' };
    }
    return new PagingDomain(pt, mode, tag);
  }
}
