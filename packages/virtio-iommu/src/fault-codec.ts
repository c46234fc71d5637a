/**
 * The FaultCodec of a virtio-iommu unit: a failed access of an endpoint as the device reports it on its
 * event queue (`struct virtio_iommu_fault`), and the line Linux's viommu_fault_handler prints for it.
 * virtio-iommu has no page requests, stall or PASID: the codec has no page-request half
 * (PageRequestCodec), so core answers any page request INVALID and the conformance kit reports the
 * page-request checks as skipped.
 */
import { PERM_EXEC, PERM_READ, PERM_WRITE, type FailedAccess, type FaultCodec, type IommuFault } from '@ioasid/core/driver';
import { FAULT_REASON_NAMES, decodeFault, encodeFault, renderFaultLine } from './records.js';
import {
  FAULT_SIZE,
  VIRTIO_IOMMU_FAULT_F_ADDRESS,
  VIRTIO_IOMMU_FAULT_F_EXEC,
  VIRTIO_IOMMU_FAULT_F_READ,
  VIRTIO_IOMMU_FAULT_F_WRITE,
  VIRTIO_IOMMU_FAULT_R_DOMAIN,
  VIRTIO_IOMMU_FAULT_R_MAPPING,
  VIRTIO_IOMMU_FAULT_R_UNKNOWN,
} from './spec.js';

/** What the codec needs from its unit: whether an endpoint sits on the driver's empty blocking domain. */
export interface BlockingState {
  /** True when the driver parked `endpoint` on its empty blocking domain (from the bind on, and after every detach). */
  onBlockingDomain(endpoint: number): boolean;
}

/**
 * The reason the device gives. A missing or too weak mapping is R_MAPPING. DMA that core blocks finds the
 * endpoint on the driver's empty blocking domain once the device is bound to an iommufd (the bind claims
 * the DMA ownership, which attaches it; a detach parks it there again), and the device finds no mapping
 * there: R_MAPPING. Only an endpoint the driver never attached (a device never bound, whose default
 * domain the model does not have) reaches no domain: R_DOMAIN. A failure of a table or a context has no
 * counterpart in a device without tables: R_UNKNOWN.
 */
function reasonOf(a: FailedAccess, state: BlockingState): number {
  switch (a.failure) {
    case 'blocked':
      return state.onBlockingDomain(a.rid) ? VIRTIO_IOMMU_FAULT_R_MAPPING : VIRTIO_IOMMU_FAULT_R_DOMAIN;
    case 'table-fault':
    case 'no-context':
      return VIRTIO_IOMMU_FAULT_R_UNKNOWN;
    default:
      return VIRTIO_IOMMU_FAULT_R_MAPPING;
  }
}

/** The virtio-iommu unit's FaultCodec: the event queue's fault record, no page-request half. */
export class VirtioFaultCodec implements FaultCodec {
  /** sizeof(struct virtio_iommu_fault): 24 bytes. */
  readonly faultRecordSize = FAULT_SIZE;

  /** `state` tells the codec where the driver parked an endpoint (the unit's blocking domain). */
  constructor(private readonly state: BlockingState) {}

  /** The device knows the address it translated: F_ADDRESS is always set, with the access's direction. */
  encodeFault(a: FailedAccess): Uint8Array {
    const flags =
      VIRTIO_IOMMU_FAULT_F_ADDRESS |
      (a.perm & PERM_READ ? VIRTIO_IOMMU_FAULT_F_READ : 0) |
      (a.perm & PERM_WRITE ? VIRTIO_IOMMU_FAULT_F_WRITE : 0) |
      (a.perm & PERM_EXEC ? VIRTIO_IOMMU_FAULT_F_EXEC : 0);
    return encodeFault({ reason: reasonOf(a, this.state), flags, endpoint: a.rid, address: a.addr });
  }

  /** The endpoint ID is the requester ID; a record without F_ADDRESS gives address 0. */
  decodeFault(record: Uint8Array, unit: number): IommuFault {
    const f = decodeFault(record);
    const flags = f?.flags ?? 0;
    const reason = f?.reason ?? VIRTIO_IOMMU_FAULT_R_UNKNOWN;
    return {
      kind: 'dma',
      unit,
      rid: f?.endpoint ?? 0,
      pasid: -1,
      addr: f && flags & VIRTIO_IOMMU_FAULT_F_ADDRESS ? f.address : 0n,
      perm: (flags & VIRTIO_IOMMU_FAULT_F_READ ? PERM_READ : 0) | (flags & VIRTIO_IOMMU_FAULT_F_WRITE ? PERM_WRITE : 0) | (flags & VIRTIO_IOMMU_FAULT_F_EXEC ? PERM_EXEC : 0),
      grpid: 0,
      last: true,
      reason,
      reasonText: `VIRTIO_IOMMU_FAULT_R_${FAULT_REASON_NAMES[reason] ?? 'UNKNOWN'}`,
      stage2: false,
    };
  }

  /** dev_err on the virtio device (`virtio_iommu virtio0: page fault from EP 8 at 0x1000 [R]`), not on the endpoint. */
  renderLog(f: IommuFault, _device: string, unitName: string): string[] {
    const flags = VIRTIO_IOMMU_FAULT_F_ADDRESS | (f.perm & PERM_READ ? VIRTIO_IOMMU_FAULT_F_READ : 0) | (f.perm & PERM_WRITE ? VIRTIO_IOMMU_FAULT_F_WRITE : 0) | (f.perm & PERM_EXEC ? VIRTIO_IOMMU_FAULT_F_EXEC : 0);
    const line = renderFaultLine({ reason: f.reason, flags, endpoint: f.rid, address: f.addr }, unitName);
    return line === null ? [] : [line];
  }
}
