/**
 * What an SMMUv3 event usually means and what to check next (`DecodeOutput.advice`): the translation
 * faults map to core's failure kinds (F_TRANSLATION -> not mapped, F_PERMISSION -> the access RnW names),
 * the configuration errors (C_BAD_STE, C_BAD_CD...) to a missing or invalid context; what is particular
 * to the SMMU (the Access flag, the STE and CD, stage 2 in S2) is added here.
 */
import { faultAdvice, recordAdvice, type DecodeAdvice, type FaultSubject } from '@ioasid/core/driver';
import { EVT_ID } from './records.js';

const GUEST_CONFIG = 'For a device in a VM with a nested (vSMMU) stage 1: the guest wrote this STE or CD itself, so its own SMMU driver chose the configuration.';

/** Advice for event `id` about `subject` (`write` from RnW = 0), or undefined for an event with none. */
export function smmuEventAdvice(id: number, subject: FaultSubject): DecodeAdvice | undefined {
  switch (id) {
    case EVT_ID.F_TRANSLATION:
      return faultAdvice('not-present', subject, {
        causes: ['F_TRANSLATION: the table walk found an invalid descriptor for this address, or the address is outside the range the CD (T0SZ) or STE (S2T0SZ) allows, or walks were disabled (EPD0).'],
      });
    case EVT_ID.F_PERMISSION:
      return faultAdvice(subject.access === 'write' ? 'permission-write' : 'permission-read', subject, {
        causes: ['F_PERMISSION: the descriptor exists but its access permissions (AP / S2AP, or XN for an instruction fetch) refuse this access.'],
      });
    case EVT_ID.F_ADDR_SIZE:
      return faultAdvice('address-size', subject, { causes: ['F_ADDR_SIZE: an output or table address wider than the configured output size (IPS / S2PS, SMMU_IDR5.OAS).'] });
    case EVT_ID.F_ACCESS:
      return recordAdvice(
        subject,
        [
          'F_ACCESS: the descriptor has its Access flag clear and the SMMU does not set it by itself (hardware Access-flag update off in the CD or STE): the page-table code wrote the entry without AF.',
        ],
        ['Check whether the SMMU implements hardware Access-flag updates (SMMU_IDR0.HTTU) and whether the driver enabled them, or writes AF = 1.'],
      );
    case EVT_ID.F_WALK_EABT:
    case EVT_ID.F_CD_FETCH:
    case EVT_ID.F_STE_FETCH:
      return faultAdvice('table-fault', subject, {
        causes: ['An external abort while the SMMU read its own tables (the stream table, a CD or a page-table page): the table address is not backed by memory, or for a guest CD table its address is not mapped in stage 2.'],
      });
    case EVT_ID.C_BAD_STREAMID:
      return faultAdvice('no-context', subject, { causes: ['C_BAD_STREAMID: the StreamID is beyond the stream table or its level-2 table is missing: a device the kernel did not set up (a StreamID missing from the IORT or device tree).'] });
    case EVT_ID.C_BAD_STE:
      return faultAdvice('no-context', subject, { causes: ['C_BAD_STE: the stream table entry is invalid (V = 0 or an illegal configuration): the device has no domain at this SMMU.', GUEST_CONFIG] });
    case EVT_ID.F_STREAM_DISABLED:
      return faultAdvice('no-context', subject, { causes: ['F_STREAM_DISABLED: a transaction without a SubstreamID on a stream whose STE terminates those (S1DSS): the device must use a PASID here.'] });
    case EVT_ID.C_BAD_SUBSTREAMID:
      return faultAdvice('no-context', subject, { causes: ['C_BAD_SUBSTREAMID: the SubstreamID (PASID) is beyond the CD table (S1CDMax) or its CD table entry is missing.', GUEST_CONFIG] });
    case EVT_ID.C_BAD_CD:
      return faultAdvice('no-context', subject, { causes: ['C_BAD_CD: the context descriptor is invalid (V = 0 or an unsupported granule, size or format).', GUEST_CONFIG] });
    default:
      return undefined;
  }
}
