/**
 * One __NAME__ instance (the kernel's struct iommu_device with its per-device ops): paging domains on
 * the '__ID__-pt' format, sized by the unit's CAP register, and its fault records. Operations the hardware lacks (nesting,
 * PASID, a vIOMMU) are absent or refused with EOPNOTSUPP, which core turns into the uAPI's answer.
 */
import type {
  DecodedUnit,
  DeviceInfo,
  IoPageTable,
  NormalizedCaps,
  PageTableMemory,
  PagingAllocFlags,
  PagingDomainOps,
  UnitInit,
  FaultCodec,
  UnitOps,
  VendorError,
} from '@ioasid/core/driver';
import { faultCodec } from './fault-codec.js';
import { VENDOR_ID } from './ids.js';
import { format } from './pgtable.js';
import { capPageSizes, type CapFields } from './registers.js';

/** A paging domain: one '__ID__-pt' table and the domain id the IOTLB tags it with. */
export class PagingDomain implements PagingDomainOps {
  readonly apertureStart = 0n;
  readonly apertureLast: bigint;
  constructor(
    readonly pt: IoPageTable,
    readonly tag: number,
    readonly enforceCacheCoherency: boolean,
    private readonly dirtyCapable: boolean,
  ) {
    this.apertureLast = (1n << BigInt(pt.cfg.ias)) - 1n;
  }
  get pgsizeBitmap(): bigint {
    return this.pt.cfg.pgsizeBitmap;
  }
  checkAttach(_dev: DeviceInfo, unit: UnitOps): VendorError | null {
    return unit.vendor === VENDOR_ID ? null : { errno: 'EINVAL', reason: `the domain belongs to a ${VENDOR_ID} unit, the device to a ${unit.vendor} one` };
  }
  setDirtyTracking(_enable: boolean): VendorError | null {
    return this.dirtyCapable ? null : { errno: 'EOPNOTSUPP', reason: 'CAP.AD is clear: no dirty tracking' };
  }
  free(): void {
    this.pt.free();
  }
}

export class Unit implements UnitOps {
  readonly vendor = VENDOR_ID;
  readonly caps: NormalizedCaps;
  readonly name: string;
  readonly faults: FaultCodec = faultCodec;

  constructor(
    private readonly init: UnitInit,
    private readonly cap: CapFields,
  ) {
    this.caps = init.decoded.caps;
    this.name = init.id;
  }

  get decoded(): DecodedUnit {
    return this.init.decoded;
  }

  domainAllocPaging(_dev: DeviceInfo, flags: PagingAllocFlags, memory: PageTableMemory): PagingDomainOps | VendorError {
    if (flags.nestParent) return { errno: 'EOPNOTSUPP', reason: 'no nesting' };
    if (flags.pasid) return { errno: 'EOPNOTSUPP', reason: 'no PASID support' };
    if (flags.dirtyTracking && this.cap.AD === 0) return { errno: 'EOPNOTSUPP', reason: 'CAP.AD is clear: no dirty tracking' };
    const pt = format.alloc({ pgsizeBitmap: capPageSizes(this.cap), ias: this.cap.IAS, oas: this.cap.OAS, dirtyTracking: flags.dirtyTracking, coherent: this.cap.COH === 1 }, memory);
    if (typeof pt === 'number') return { errno: pt === -12 ? 'ENOMEM' : 'EINVAL', reason: `page table allocation failed (${pt})` };
    return new PagingDomain(pt, this.init.allocTag(), this.cap.COH === 1, this.cap.AD === 1);
  }

  bootLog(): string[] {
    return [`${VENDOR_ID} ${this.name}: ${this.init.decoded.hwId}`];
  }
}
