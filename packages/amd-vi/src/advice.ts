/**
 * What an AMD-Vi event usually means and what to check next (`DecodeOutput.advice`). IO_PAGE_FAULT is
 * read from its flags (PR: the entry was present, PE: a permission error, RW: a write, I: an interrupt,
 * RZ: reserved bits, GN: the address is PASID-tagged); the other events the driver prints get their
 * own causes.
 */
import { faultAdvice, recordAdvice, type DecodeAdvice, type FaultSubject } from '@ioasid/core/driver';
import { AMD_EVENT, EVENT_FLAG } from './records.js';

/** Advice for event `code` with `flags` about `subject`, or undefined for an event with none. */
export function amdEventAdvice(code: number, flags: number, subject: FaultSubject): DecodeAdvice | undefined {
  switch (code) {
    case AMD_EVENT.IO_PAGE_FAULT:
      return ioPageFaultAdvice(flags, subject);
    case AMD_EVENT.ILLEGAL_DEV_TABLE_ENTRY:
      return faultAdvice('no-context', subject, {
        causes: ['ILLEGAL_DEV_TABLE_ENTRY: the device table entry for this DeviceID has reserved or inconsistent settings: a kernel, firmware (IVRS) or guest-DTE bug rather than a driver one.'],
      });
    case AMD_EVENT.INVALID_DEVICE_REQUEST:
      return recordAdvice(
        subject,
        ['INVALID_DEVICE_REQUEST: the device sent a request its device table entry does not allow (an ATS translation request with ATS off, a PASID where none is enabled, a request type the IOMMU refuses).'],
        ["Check the device's ATS / PRI / PASID capabilities against what its driver enabled ('lspci -vvs <bdf>')."],
      );
    case AMD_EVENT.IOTLB_INV_TIMEOUT:
      return recordAdvice(
        subject,
        ['IOTLB_INV_TIMEOUT: the device did not complete an ATS invalidation in time: it hung, was reset or hot-removed, or its link is down.'],
        ["Check the device's state and link ('lspci -vvs <bdf>': LnkSta, errors in AER) around the time of the event."],
      );
    case AMD_EVENT.DEV_TAB_HARDWARE_ERROR:
    case AMD_EVENT.PAGE_TAB_HARDWARE_ERROR:
    case AMD_EVENT.COMMAND_HARDWARE_ERROR:
      return recordAdvice(
        subject,
        ['A hardware error while the IOMMU read its device table, a page table or the command buffer: memory or fabric errors, or a table pointer to memory that is not there.'],
        ['Look for machine-check or EDAC errors in the same log, and for firmware updates for the platform.'],
      );
    default:
      return undefined;
  }
}

function ioPageFaultAdvice(flags: number, subject: FaultSubject): DecodeAdvice {
  if (flags & EVENT_FLAG.I) {
    return recordAdvice(
      subject,
      ['An interrupt request the interrupt remapping table refused (the I flag): an MSI left over from a previous driver, or one the device sends before its driver set it up.'],
      ["Check the device's MSI/MSI-X setup and that its driver requested its interrupts."],
    );
  }
  const notes: string[] = [];
  if (flags & EVENT_FLAG.TR) notes.push('TR: an ATS translation request; the device asked for a translation of this address ahead of the access.');
  if (flags & EVENT_FLAG.RZ) {
    return faultAdvice('table-fault', subject, { causes: [...notes, 'RZ: a page-table entry with reserved bits set or an illegal level: corrupted or freed page-table memory.'] });
  }
  if (flags & EVENT_FLAG.PR && flags & EVENT_FLAG.PE) {
    return faultAdvice(flags & EVENT_FLAG.RW ? 'permission-write' : 'permission-read', subject, { causes: [...notes, 'PR and PE: the entry is present but does not allow this access.'] });
  }
  return faultAdvice('not-present', subject, { causes: [...notes, 'PR clear: no present entry maps this address in the domain.'] });
}
