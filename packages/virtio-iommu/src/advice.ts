/**
 * What a virtio-iommu fault report usually means and what to check next (`DecodeOutput.advice`): the
 * guest's view of a DMA fault, so the checks are about the guest driver's MAP requests and the endpoint's
 * ATTACH, not host tables.
 */
import { faultAdvice, recordAdvice, type DecodeAdvice, type FaultSubject } from '@ioasid/core/driver';
import { VIRTIO_IOMMU_FAULT_R_DOMAIN, VIRTIO_IOMMU_FAULT_R_MAPPING, VIRTIO_IOMMU_FAULT_R_UNKNOWN } from './spec.js';

const GUEST_SIDE = "In the guest: the virtio-iommu driver's MAP and UNMAP requests for this endpoint (its iommu tracepoints), and which guest driver owns the endpoint.";

/** Advice for fault `reason` about `subject` (`subject.access` from the READ / WRITE flags). */
export function virtioFaultAdvice(reason: number, subject: FaultSubject): DecodeAdvice | undefined {
  switch (reason) {
    case VIRTIO_IOMMU_FAULT_R_DOMAIN:
      return faultAdvice('blocked', subject, {
        causes: ['R_DOMAIN: the endpoint is not attached to any domain (no ATTACH, or a DETACH while it still does DMA), and the device does not let unattached endpoints bypass.'],
        checks: [GUEST_SIDE],
      });
    case VIRTIO_IOMMU_FAULT_R_MAPPING:
      return faultAdvice('not-present', subject, {
        causes: ['R_MAPPING: no MAP request covers this address in the endpoint\'s domain, or the mapping lacks the READ or WRITE flag this access needs.'],
        checks: [GUEST_SIDE],
      });
    case VIRTIO_IOMMU_FAULT_R_UNKNOWN:
      return recordAdvice(subject, ['R_UNKNOWN: the device reports an internal error or a reason it does not name (in a VMM, often a failure of the host mapping behind the guest\'s).'], [GUEST_SIDE, 'On the host: the VMM\'s log around the fault.']);
    default:
      return undefined;
  }
}
