/**
 * Plain-language advice for a DMA fault, shared by the vendor decoders: a vendor maps its reason code
 * (VT-d fault reason, SMMUv3 event ID, AMD-Vi event code and flags, virtio-iommu fault reason) to core's
 * `TranslationFailure` and adds what is particular to its hardware; the usual causes and what to check
 * next for that kind of failure are written once, here, naming the device and the address.
 */
import type { DecodeAdvice } from './decoder.js';
import type { TranslationFailure } from './fault.js';

/** The access a fault record names: 'read', 'write', or '' when it does not say. */
export type FaultAccess = 'read' | 'write' | '';

/** What a fault record says about the access. */
export interface FaultSubject {
  /** The requester as the record names it, e.g. '0000:5c:00.0' or 'StreamID 0x100'. */
  readonly device: string;
  /** The faulting address (an IOVA; for a stage-2 fault of a nested domain, the guest-physical address). */
  readonly address: bigint;
  /** 'read', 'write', or '' when the record does not say. */
  readonly access: FaultAccess;
  /** The PASID / SubstreamID the request carried, -1 without one. */
  readonly pasid: number;
  /** The fault is in stage 2 of a nested domain (the host's table), when the record says so. */
  readonly stage2?: boolean;
  /** What `address` is when it is not a DMA address, e.g. 'interrupt index'. */
  readonly addressIs?: string;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** What to check first whatever the failure: who asked, and for which address. */
export function faultSubjectChecks(s: FaultSubject): string[] {
  const bdf = /^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(s.device) ? s.device : null;
  return [
    bdf
      ? `Which device: ${bdf}. 'lspci -vvs ${bdf}' names it; '/sys/bus/pci/devices/${bdf.length === 7 ? `0000:${bdf}` : bdf}/driver' says which driver owns it (a host driver, or vfio-pci for a device assigned to a VM).`
      : `Which device: ${s.device}. Map it to a PCI device (for SMMUv3 the StreamID is usually the requester ID, see the IORT) and find its driver.`,
    s.addressIs
      ? `Which ${s.addressIs}: ${hex(s.address)}.`
      : `Which address: ${hex(s.address)}${s.access ? `, a ${s.access}` : ''}${s.pasid >= 0 ? ` with PASID ${s.pasid}` : ' without a PASID'}.`,
  ];
}

const STAGE2_CAUSES = [
  'The VMM has not mapped this guest-physical address into the IOAS (IOMMU_IOAS_MAP / VFIO_IOMMU_MAP_DMA): guest memory added later (hot-plug, balloon deflate) or a region the VMM left out.',
  'The VMM unmapped guest memory the device still uses, e.g. during a live-migration or a memory unplug.',
];

const BY_FAILURE: Readonly<Record<TranslationFailure, (s: FaultSubject) => DecodeAdvice>> = {
  'not-present': (s) => ({
    causes: [
      `DMA to an IOVA no mapping covers: the driver gave the device ${hex(s.address)} without mapping it, or after unmapping it.`,
      'A driver using a buffer it already freed or unmapped: a stale descriptor or ring entry that still points at the old address.',
      'Teardown in the wrong order: the device was not stopped (or its queues drained) before its buffers were unmapped.',
      'With VFIO or iommufd: a missing IOAS map (IOMMU_IOAS_MAP / VFIO_IOMMU_MAP_DMA) for the range the device uses, or an IOMMU_IOAS_UNMAP while it still runs.',
      ...(s.pasid >= 0 ? [`A wrong PASID: ${s.pasid} does not map this address (a PASID the driver never bound, or the address space it was bound to has gone).`] : []),
      'A range firmware set up (RMRR, IVMD or IORT RMR) that is not mapped for this device.',
    ],
    checks: [
      ...faultSubjectChecks(s),
      'Does it repeat at one address (a stale descriptor) or move forward page by page (a buffer overrun past the mapped length)?',
      "Trace the driver's maps and unmaps ('trace-cmd record -e iommu:map -e iommu:unmap') or boot a kernel with CONFIG_DMA_API_DEBUG, which names the buffer.",
      'For a device in a VM: compare the address with the guest memory map and the VMM\'s IOAS mappings.',
    ],
  }),
  'permission-write': (s) => ({
    causes: [
      `The device wrote to ${hex(s.address)}, which is mapped read-only: a buffer mapped DMA_TO_DEVICE used for a transfer to memory, or an IOAS mapping without IOMMU_IOAS_MAP_WRITEABLE.`,
      'A driver reusing a transmit buffer as a receive buffer without mapping it again in the other direction.',
    ],
    checks: [...faultSubjectChecks(s), "Check the direction the driver mapped the buffer with (dma_map_*: DMA_TO_DEVICE is read-only for the device), or the IOAS map's flags."],
  }),
  'permission-read': (s) => ({
    causes: [
      `The device read ${hex(s.address)}, which is mapped without read permission: a buffer mapped DMA_FROM_DEVICE (write-only for the device) that it reads back.`,
      'An IOAS mapping without IOMMU_IOAS_MAP_READABLE.',
    ],
    checks: [...faultSubjectChecks(s), 'Check the direction the driver mapped the buffer with: a buffer the device both reads and writes needs DMA_BIDIRECTIONAL.'],
  }),
  'permission-exec': (s) => ({
    causes: [`The device asked to execute from ${hex(s.address)} (an execute request with a PASID) and the page forbids execution (NX / XN).`],
    checks: [...faultSubjectChecks(s), 'Check the process address space bound to this PASID (SVA): executable pages only where the device is meant to fetch code.'],
  }),
  'permission-priv': (s) => ({
    causes: [`A privilege mismatch at ${hex(s.address)}: a user-mode request to a supervisor page (or the reverse) in a PASID-tagged (SVA) address space.`],
    checks: [...faultSubjectChecks(s), "Check whether the device issued the request as privileged (the PRIV/PnU bit) and how the page is mapped for it."],
  }),
  'address-size': (s) => ({
    causes: [
      `The address ${hex(s.address)} is wider than the domain's input size (MGAW, IAS, the table's levels): a DMA mask larger than the IOMMU supports, or a corrupted descriptor with stray high bits.`,
      'A 64-bit device given an address the driver never got from the DMA API (a physical address, or a pointer).',
    ],
    checks: [...faultSubjectChecks(s), "Compare the address with the unit's width ('ioasid decode' of its CAP / IDR5 / EFR register) and the driver's dma_set_mask()."],
  }),
  'table-fault': (s) => ({
    causes: [
      'The unit could not read a page-table page: for a nested domain, a page of the guest\'s stage-1 table (or its CD / PASID table) is not mapped in stage 2.',
      ...STAGE2_CAUSES,
    ],
    checks: [...faultSubjectChecks(s), "Check that every guest page holding the guest's IOMMU tables is in the IOAS, and that the guest did not point a table at memory it does not own."],
  }),
  blocked: (s) => ({
    causes: [
      `The device is not attached to any domain, so all its DMA is blocked: DMA before its driver set up the IOMMU domain, or after a detach (driver unbind, VFIO device closed, a VM shut down while ${s.device} still runs).`,
      'DMA during a reset or a driver probe failure, when the kernel puts the device in a blocking domain.',
    ],
    checks: [...faultSubjectChecks(s), "'cat /sys/bus/pci/devices/<bdf>/iommu_group/type' and the kernel log around the fault: was the device being bound, unbound or reset?"],
  }),
  'no-context': (s) => ({
    causes: [
      'The device\'s context (context entry, STE, CD, DTE or PASID entry) is missing or invalid: the device is not set up in the IOMMU, or a guest wrote a bad stage-1 configuration.',
      ...(s.pasid >= 0 ? [`A wrong PASID: ${s.pasid} has no entry (never bound, already unbound, or beyond the PASID table).`] : []),
    ],
    checks: [...faultSubjectChecks(s), 'For a nested domain, decode the guest\'s configuration (its CD / PASID entry); otherwise check that the device was attached before it started DMA.'],
  }),
};

/**
 * The usual causes of a fault of kind `failure` and what to check next, naming `subject`'s device and
 * address; `extra` (what is particular to the vendor's reason code) goes first.
 */
export function faultAdvice(failure: TranslationFailure, subject: FaultSubject, extra: Partial<DecodeAdvice> = {}): DecodeAdvice {
  const base = BY_FAILURE[failure](subject);
  const stage2 = subject.stage2 && failure !== 'table-fault' ? [`Stage 2 (the host's table) refused guest-physical ${hex(subject.address)}.`, ...STAGE2_CAUSES] : [];
  return {
    causes: [...(extra.causes ?? []), ...stage2, ...base.causes],
    checks: [...base.checks.slice(0, 2), ...(extra.checks ?? []), ...base.checks.slice(2)],
  };
}

/** Advice for a record core has no failure kind for (a hardware error, an interrupt fault): the subject's checks first. */
export function recordAdvice(subject: FaultSubject, causes: readonly string[], checks: readonly string[]): DecodeAdvice {
  return { causes: [...causes], checks: [...faultSubjectChecks(subject), ...checks] };
}
