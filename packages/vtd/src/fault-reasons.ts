/**
 * The fault reasons of a DMAR unit as Linux prints them (dmar.c dmar_get_fault_reason()): the legacy DMA
 * remapping reasons, the interrupt-remapping reasons and the scalable-mode reasons, by fault reason number.
 */

/** Legacy (non-scalable-mode) reasons, indexed by FR 0x00..0x0D. */
export const DMA_REMAP_FAULT_REASONS: readonly string[] = [
  'Software',
  'Present bit in root entry is clear',
  'Present bit in context entry is clear',
  'Invalid context entry',
  'Access beyond MGAW',
  'PTE Write access is not set',
  'PTE Read access is not set',
  'Next page table ptr is invalid',
  'Root table address invalid',
  'Context table ptr is invalid',
  'non-zero reserved fields in RTP',
  'non-zero reserved fields in CTP',
  'non-zero reserved fields in PTE',
  'PCE for translation request specifies blocking',
];

/** Interrupt-remapping reasons, indexed by FR - 0x20 (0x20..0x26). */
export const IRQ_REMAP_FAULT_REASONS: readonly string[] = [
  'Detected reserved fields in the decoded interrupt-remapped request',
  'Interrupt index exceeded the interrupt-remapping table size',
  'Present field in the IRTE entry is clear',
  'Error accessing interrupt-remapping table pointed by IRTA_REG',
  'Detected reserved fields in the IRTE entry',
  'Blocked a compatibility format interrupt request',
  'Blocked an interrupt request due to source-id verification failure',
];

const SM_FAULT_REASON_BASE = 0x30;
const SM_FAULT_REASON_LAST = 0x90;

/** The scalable-mode reasons Linux names; every other code in 0x30..0x90 prints "Unknown". */
const SM_NAMED_REASONS: ReadonlyArray<readonly [number, string]> = [
  [0x30, 'SM: Invalid Root Table Address'],
  [0x31, 'SM: TTM 0 for request with PASID'],
  [0x32, 'SM: TTM 0 for page group request'],
  [0x38, 'SM: Error attempting to access Root Entry'],
  [0x39, 'SM: Present bit in Root Entry is clear'],
  [0x3a, 'SM: Non-zero reserved field set in Root Entry'],
  [0x40, 'SM: Error attempting to access Context Entry'],
  [0x41, 'SM: Present bit in Context Entry is clear'],
  [0x42, 'SM: Non-zero reserved field set in the Context Entry'],
  [0x43, 'SM: Invalid Context Entry'],
  [0x44, 'SM: DTE field in Context Entry is clear'],
  [0x45, 'SM: PASID Enable field in Context Entry is clear'],
  [0x46, 'SM: PASID is larger than the max in Context Entry'],
  [0x47, 'SM: PRE field in Context-Entry is clear'],
  [0x48, 'SM: RID_PASID field error in Context-Entry'],
  [0x50, 'SM: Error attempting to access the PASID Directory Entry'],
  [0x51, 'SM: Present bit in Directory Entry is clear'],
  [0x52, 'SM: Non-zero reserved field set in PASID Directory Entry'],
  [0x58, 'SM: Error attempting to access PASID Table Entry'],
  [0x59, 'SM: Present bit in PASID Table Entry is clear'],
  [0x5a, 'SM: Non-zero reserved field set in PASID Table Entry'],
  [0x5b, 'SM: Invalid Scalable-Mode PASID Table Entry'],
  [0x5c, 'SM: ERE field is clear in PASID Table Entry'],
  [0x5d, 'SM: SRE field is clear in PASID Table Entry'],
  [0x70, 'SM: Error attempting to access first-level paging entry'],
  [0x71, 'SM: Present bit in first-level paging entry is clear'],
  [0x72, 'SM: Non-zero reserved field set in first-level paging entry'],
  [0x73, 'SM: Error attempting to access FL-PML4 entry'],
  [0x74, 'SM: First-level entry address beyond MGAW in Nested translation'],
  [0x75, 'SM: Read permission error in FL-PML4 entry in Nested translation'],
  [0x76, 'SM: Read permission error in first-level paging entry in Nested translation'],
  [0x77, 'SM: Write permission error in first-level paging entry in Nested translation'],
  [0x78, 'SM: Error attempting to access second-level paging entry'],
  [0x79, 'SM: Read/Write permission error in second-level paging entry'],
  [0x7a, 'SM: Non-zero reserved field set in second-level paging entry'],
  [0x7b, 'SM: Invalid second-level page table pointer'],
  [0x7c, 'SM: A/D bit update needed in second-level entry when set up in no snoop'],
  [0x80, 'SM: Address in first-level translation is not canonical'],
  [0x81, 'SM: U/S set 0 for first-level translation with user privilege'],
  [0x82, 'SM: No execute permission for request with PASID and ER=1'],
  [0x83, 'SM: Address beyond the DMA hardware max'],
  [0x84, 'SM: Second-level entry address beyond the max'],
  [0x85, 'SM: No write permission for Write/AtomicOp request'],
  [0x86, 'SM: No read permission for Read/AtomicOp request'],
  [0x87, 'SM: Invalid address-interrupt address'],
  [0x90, 'SM: A/D bit update needed in first-level entry when set up in no snoop'],
];

/** Scalable-mode reasons, indexed by FR - 0x30 (97 entries, 0x30..0x90), gaps filled with "Unknown". */
export const DMA_REMAP_SM_FAULT_REASONS: readonly string[] = (() => {
  const table: string[] = new Array<string>(SM_FAULT_REASON_LAST - SM_FAULT_REASON_BASE + 1).fill('Unknown');
  for (const [code, text] of SM_NAMED_REASONS) table[code - SM_FAULT_REASON_BASE] = text;
  return table;
})();

/** Which dmar_fault_do_one() format the kernel uses: INTR-REMAP only for the IR table, DMA otherwise. */
export type VtdFaultType = 'dma' | 'intr-remap' | 'unknown';

/** A fault reason as dmar_get_fault_reason() classifies it. */
export interface VtdFaultReason {
  /** Fault reason number (FRCD.FR), 8 bits. */
  readonly code: number;
  /** The reason string the kernel prints ("Unknown" for a code it has no text for). */
  readonly text: string;
  /** Which line format the kernel prints it with: DMA remapping, interrupt remapping or unknown. */
  readonly type: VtdFaultType;
}

/**
 * The string and class of a fault reason, in the kernel's lookup order: interrupt-remapping first,
 * then scalable mode, then legacy; anything else is "Unknown" (printed with the DMA format).
 */
export function dmarFaultReason(code: number): VtdFaultReason {
  const fr = code & 0xff;
  if (fr >= 0x20 && fr - 0x20 < IRQ_REMAP_FAULT_REASONS.length) {
    return { code: fr, text: IRQ_REMAP_FAULT_REASONS[fr - 0x20], type: 'intr-remap' };
  }
  if (fr >= SM_FAULT_REASON_BASE && fr - SM_FAULT_REASON_BASE < DMA_REMAP_SM_FAULT_REASONS.length) {
    return { code: fr, text: DMA_REMAP_SM_FAULT_REASONS[fr - SM_FAULT_REASON_BASE], type: 'dma' };
  }
  if (fr < DMA_REMAP_FAULT_REASONS.length) return { code: fr, text: DMA_REMAP_FAULT_REASONS[fr], type: 'dma' };
  return { code: fr, text: 'Unknown', type: 'unknown' };
}

/** Fault reasons a translation model raises, by what went wrong (legacy and scalable-mode codes). */
export const VTD_FR = {
  /** Legacy 0x01: the root entry of the request's bus has P = 0. */
  ROOT_ENTRY_P: 0x01,
  /** Legacy 0x02: the context entry of the device has P = 0 (no domain attached). */
  CONTEXT_ENTRY_P: 0x02,
  /** Legacy 0x03: the context entry is invalid (reserved bits, unsupported AW or TT). */
  CONTEXT_ENTRY_INV: 0x03,
  /** Legacy 0x04: the address is above the guest address width (MGAW / the domain's AGAW). */
  ADDR_BEYOND_MGAW: 0x04,
  /** Legacy 0x05: a write to a page whose second-stage entry lacks W. */
  WRITE: 0x05,
  /** Legacy 0x06: a read to a page whose second-stage entry lacks R. */
  READ: 0x06,
  /** Legacy 0x07: reading the next-level table a paging entry points to failed (an address above HAW, or an error). */
  PAGING_ENTRY_INV: 0x07,
  /** Legacy 0x0C: reserved bits set in a second-stage paging entry. */
  PAGING_ENTRY_RSVD: 0x0c,
  /** Interrupt remapping 0x21: the interrupt index is beyond the IRTA_REG table size. */
  IR_INDEX_OVER: 0x21,
  /** Interrupt remapping 0x22: the IRTE for the index has P = 0. */
  IR_ENTRY_P: 0x22,
  /** Interrupt remapping 0x26: the request's source id failed the IRTE's SID/SQ/SVT check. */
  IR_SID_ERR: 0x26,
  /** Scalable mode 0x41: the scalable-mode context entry has P = 0. */
  SM_CONTEXT_ENTRY_P: 0x41,
  /** Scalable mode 0x51: the PASID directory entry has P = 0. */
  SM_PASID_DIR_ENTRY_P: 0x51,
  /** Scalable mode 0x59: the PASID table entry has P = 0. */
  SM_PASID_ENTRY_P: 0x59,
  /** Scalable mode 0x71: a first-stage paging entry has P = 0. */
  SM_FS_PAGING_ENTRY_P: 0x71,
  /** Scalable mode 0x79: a second-stage paging entry denies the read or write. */
  SM_SS_RW_PERMISSION: 0x79,
  /** Scalable mode 0x80: the first-stage input address is not canonical. */
  SM_FS_NON_CANONICAL: 0x80,
  /** Scalable mode 0x81: a user-mode request met a first-stage entry with U/S = 0. */
  SM_FS_US: 0x81,
  /** Scalable mode 0x83: the address is beyond the hardware's maximum (MGAW). */
  SM_ADDR_BEYOND_MAX: 0x83,
  /** Scalable mode 0x85: a write or AtomicOp without write permission. */
  SM_WRITE: 0x85,
  /** Scalable mode 0x86: a read or AtomicOp without read permission. */
  SM_READ: 0x86,
} as const;
