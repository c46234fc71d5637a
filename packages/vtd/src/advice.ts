/**
 * What a DMAR fault reason usually means and what to check next (`DecodeOutput.advice`). The reason
 * codes map to core's failure kinds as fault-codec.ts writes them (legacy 0x02-0x07, scalable-mode
 * 0x41/0x59/0x71-0x86); what is particular to VT-d is added here: a second-stage entry has no present
 * bit, so an unmapped IOVA is reported as a missing read or write permission.
 */
import { faultAdvice, recordAdvice, type DecodeAdvice, type FaultSubject, type TranslationFailure } from '@ioasid/core/driver';

const NO_PRESENT_BIT =
  'VT-d second-stage entries have no present bit: DMA to an IOVA nothing maps is reported as a missing read (0x06) or write (0x05) permission, so this is far more often an unmapped address than a mapping without that permission.';
const SM_NO_PRESENT_BIT =
  'Scalable-mode second-stage entries have no present bit: DMA to an IOVA nothing maps is reported as this read/write permission fault (0x79), so it is far more often an unmapped address than a permission mismatch.';
const RID_ALIAS =
  'A requester ID the kernel did not set up: a device that issues DMA with another function\'s or a bridge\'s ID (a DMA alias, e.g. behind a PCIe-to-PCI bridge or a quirky multi-function device).';

/** Reason code -> failure kind, and the VT-d specific causes that go first. */
const BY_REASON: ReadonlyMap<number, readonly [TranslationFailure, readonly string[]]> = new Map([
  [0x01, ['no-context', ['The root entry for the bus is not present: no device on this bus was set up in this DMAR unit.', RID_ALIAS]]],
  [0x02, ['no-context', ['The context entry is not present: the device has no domain at this unit (DMA before its driver attached it, after a detach, or while it was blocked).', RID_ALIAS]]],
  [0x03, ['no-context', ['The context entry is invalid (reserved or unsupported settings): a kernel or firmware bug rather than a driver one.']]],
  [0x04, ['address-size', []]],
  [0x05, ['not-present', [NO_PRESENT_BIT, 'If the IOVA is mapped: a write to a read-only mapping (a buffer mapped DMA_TO_DEVICE).']]],
  [0x06, ['not-present', [NO_PRESENT_BIT, 'If the IOVA is mapped: a read of a write-only mapping (a buffer mapped DMA_FROM_DEVICE).']]],
  [0x07, ['table-fault', ['A page-table pointer the unit could not follow: freed or corrupted table memory.']]],
  [0x41, ['no-context', ['SM: the context entry is not present: the device has no domain at this unit.', RID_ALIAS]]],
  [0x59, ['blocked', ['SM: the PASID table entry is not present: the device (or this PASID) is blocked or was never attached.']]],
  [0x71, ['not-present', ['SM: the first-stage entry is not present (P clear): the IOVA or virtual address is not mapped in this PASID\'s table.']]],
  [0x76, ['table-fault', ['SM: the second stage could not translate the address of a first-stage table page (nested translation).']]],
  [0x78, ['table-fault', ['SM: the unit could not read a second-stage entry.']]],
  [0x79, ['not-present', [SM_NO_PRESENT_BIT]]],
  [0x80, ['address-size', ['SM: a non-canonical first-stage address (bits above the table\'s width not a sign extension).']]],
  [0x81, ['permission-priv', []]],
  [0x82, ['permission-exec', []]],
  [0x83, ['address-size', ['SM: the address is beyond what the second stage translates (the domain\'s address width).']]],
  [0x85, ['permission-write', []]],
  [0x86, ['permission-read', []]],
]);

const INTERRUPT_CAUSES = [
  'The device sent an interrupt the remapping table does not allow: an MSI address and data left over from a previous driver (after a reload or a reset without re-enabling MSI), or programmed by firmware.',
  'A device that writes to the 0xFEExxxxx interrupt window as if it were memory (a bad DMA address).',
];

/** Advice for fault reason `fr` (DMAR "[fault reason 0x..]"), or undefined for a reason with none. */
export function vtdFaultAdvice(fr: number, subject: FaultSubject): DecodeAdvice | undefined {
  if (fr >= 0x20 && fr <= 0x26) {
    return recordAdvice({ ...subject, addressIs: 'interrupt index' }, INTERRUPT_CAUSES, [
      "Check the device's MSI/MSI-X setup ('lspci -vvs <bdf>': the MSI capability's address and data) and that its driver requested its interrupts.",
    ]);
  }
  const r = BY_REASON.get(fr);
  return r === undefined ? undefined : faultAdvice(r[0], subject, { causes: r[1] });
}
