/**
 * The Device Table Entry (256 bits, `struct dev_table_entry { u64 data[4]; }`): one per DeviceID,
 * selecting the host (v1) table, the guest GCR3 table and the interrupt remapping table. Field names
 * follow the specification; the Linux macros are in the comments. Bits no field names (data[3], the
 * vIOMMU fields, and the reserved ones) are kept so that decode → encode is lossless.
 */
import { decodeBitFields, err, fieldFits, fieldPrep, ok, uncoveredMask, bitLayout, type BitFieldName, type Result } from '@ioasid/core/driver';
import { hex } from './bits.js';

/** data[0]. */
export const DTE0_LAYOUT = bitLayout([
  { name: 'V', hi: 0, lo: 0 }, // DTE_FLAG_V
  { name: 'TV', hi: 1, lo: 1 }, // DTE_FLAG_TV
  { name: 'HAD', hi: 8, lo: 7 }, // DTE_FLAG_HAD: host access/dirty updates
  { name: 'Mode', hi: 11, lo: 9 }, // DTE_MODE_MASK: 0 = no translation, 1-6 = levels
  { name: 'HostPageTableRootPtr', hi: 51, lo: 12 }, // DTE_HOST_TRP (address >> 12)
  { name: 'PPR', hi: 52, lo: 52 }, // DTE_FLAG_PPR
  { name: 'GPRP', hi: 53, lo: 53 },
  { name: 'GIoV', hi: 54, lo: 54 }, // DTE_FLAG_GIOV
  { name: 'GV', hi: 55, lo: 55 }, // DTE_FLAG_GV
  { name: 'GLX', hi: 57, lo: 56 }, // DTE_GLX
  { name: 'GCR3TRP_14_12', hi: 60, lo: 58 }, // DTE_GCR3_14_12
  { name: 'IR', hi: 61, lo: 61 },
  { name: 'IW', hi: 62, lo: 62 },
]);

/** data[1]. */
export const DTE1_LAYOUT = bitLayout([
  { name: 'DomainID', hi: 15, lo: 0 }, // DTE_DOMID_MASK
  { name: 'GCR3TRP_30_15', hi: 31, lo: 16 }, // DTE_GCR3_30_15
  { name: 'I', hi: 32, lo: 32 }, // DTE_FLAG_IOTLB: ATS
  { name: 'SE', hi: 33, lo: 33 }, // suppress I/O page fault events
  { name: 'SA', hi: 34, lo: 34 }, // suppress all (Linux DEV_ENTRY_NO_PAGE_FAULT)
  { name: 'IoCtl', hi: 36, lo: 35 },
  { name: 'Cache', hi: 37, lo: 37 },
  { name: 'SD', hi: 38, lo: 38 },
  { name: 'EX', hi: 39, lo: 39 }, // DEV_ENTRY_EX
  { name: 'SysMgt', hi: 41, lo: 40 }, // DTE_DATA1_SYSMGT_MASK
  { name: 'GCR3TRP_51_31', hi: 63, lo: 43 }, // DTE_GCR3_51_31
]);

/** data[2]. */
export const DTE2_LAYOUT = bitLayout([
  { name: 'IV', hi: 0, lo: 0 }, // DTE_IRQ_REMAP_ENABLE
  { name: 'IntTabLen', hi: 4, lo: 1 }, // 2^n entries: 9 → 512, 11 → 2048
  { name: 'IG', hi: 5, lo: 5 },
  { name: 'IntTableRootPtr', hi: 51, lo: 6 }, // DTE_IRQ_PHYS_ADDR_MASK (address >> 6)
  { name: 'GuestPagingMode', hi: 55, lo: 54 }, // DTE_GPT_LEVEL_MASK: 0 = 4-level, 1 = 5-level
  { name: 'InitPass', hi: 56, lo: 56 },
  { name: 'EIntPass', hi: 57, lo: 57 },
  { name: 'NMIPass', hi: 58, lo: 58 },
  { name: 'IntCtl', hi: 61, lo: 60 }, // 0 abort, 1 pass through, 2 remapped
  { name: 'Lint0Pass', hi: 62, lo: 62 },
  { name: 'Lint1Pass', hi: 63, lo: 63 },
]);

/** The name of a DTE field of data[0..2] (`V`, `Mode`, `DomainID`, `IntCtl`, ...). */
export type DteFieldName = BitFieldName<typeof DTE0_LAYOUT> | BitFieldName<typeof DTE1_LAYOUT> | BitFieldName<typeof DTE2_LAYOUT>;

/** A decoded DTE: every field, the GCR3 table root assembled, and what no field covers. */
export type AmdDte = { readonly [K in DteFieldName]: number } & {
  /** Guest CR3 table root, the byte address assembled from its three pieces (51:12). */
  readonly gcr3Root: bigint;
  /** Host (v1) page table root, the byte address of HostPageTableRootPtr (51:12). */
  readonly hostRoot: bigint;
  /** Unnamed bits of data[0..2] and all of data[3]. */
  readonly reserved: readonly [bigint, bigint, bigint, bigint];
};

/** Bytes of one device table entry (256 bits, data[0..3]). */
export const DTE_SIZE = 32;

/** DTE GuestPagingMode values (GUEST_PGTABLE_4_LEVEL / _5_LEVEL): a 4- or 5-level v2 table. */
export const GUEST_PGTABLE_4_LEVEL = 0;
/** See GUEST_PGTABLE_4_LEVEL. */
export const GUEST_PGTABLE_5_LEVEL = 1;
const LAYOUTS = [DTE0_LAYOUT, DTE1_LAYOUT, DTE2_LAYOUT] as const;

/** Splits the four qwords of a DTE into its named fields, the two table roots and the leftover bits. */
export function decodeDte(qw: readonly [bigint, bigint, bigint, bigint]): AmdDte {
  const f = { ...decodeBitFields(DTE0_LAYOUT, qw[0]), ...decodeBitFields(DTE1_LAYOUT, qw[1]), ...decodeBitFields(DTE2_LAYOUT, qw[2]) };
  const gcr3Pfn = BigInt(f.GCR3TRP_14_12) | (BigInt(f.GCR3TRP_30_15) << 3n) | (BigInt(f.GCR3TRP_51_31) << 19n);
  return {
    ...f,
    gcr3Root: gcr3Pfn << 12n,
    hostRoot: BigInt(f.HostPageTableRootPtr) << 12n,
    reserved: [qw[0] & uncoveredMask(DTE0_LAYOUT), qw[1] & uncoveredMask(DTE1_LAYOUT), qw[2] & uncoveredMask(DTE2_LAYOUT), qw[3]],
  };
}

/** The DTE fields {@link encodeDte} writes; absent ones are 0. */
export type DteFields = Partial<Record<DteFieldName, number>> & {
  /** Sets GCR3TRP_14_12 / _30_15 / _51_31 from one 4 KiB-aligned address. */
  gcr3Root?: bigint;
  /** Sets HostPageTableRootPtr from a 4 KiB-aligned address. */
  hostRoot?: bigint;
  /** data[3] as a whole (vIOMMU and reserved bits). */
  data3?: bigint;
};

/** Encodes a DTE, refusing values that do not fit their field. */
export function encodeDte(fields: DteFields): Result<[bigint, bigint, bigint, bigint]> {
  const { gcr3Root: _g, hostRoot: _h, data3: _d, ...named } = fields;
  const f: Partial<Record<string, number>> = named;
  if (fields.gcr3Root !== undefined) {
    if (fields.gcr3Root & 0xfffn || fields.gcr3Root >= 1n << 52n || fields.gcr3Root < 0n) return err(`gcr3Root ${hex(fields.gcr3Root)} is not a 4 KiB-aligned 52-bit address`);
    const p = fields.gcr3Root >> 12n;
    f.GCR3TRP_14_12 = Number(p & 7n);
    f.GCR3TRP_30_15 = Number((p >> 3n) & 0xffffn);
    f.GCR3TRP_51_31 = Number(p >> 19n);
  }
  if (fields.hostRoot !== undefined) {
    if (fields.hostRoot & 0xfffn || fields.hostRoot >= 1n << 52n || fields.hostRoot < 0n) return err(`hostRoot ${hex(fields.hostRoot)} is not a 4 KiB-aligned 52-bit address`);
    f.HostPageTableRootPtr = Number(fields.hostRoot >> 12n);
  }
  const out: [bigint, bigint, bigint, bigint] = [0n, 0n, 0n, BigInt.asUintN(64, fields.data3 ?? 0n)];
  for (let i = 0; i < 3; i++) {
    for (const field of LAYOUTS[i]) {
      const v = f[field.name] ?? 0;
      if (!fieldFits(v, field.hi, field.lo)) return err(`DTE.${field.name} = ${v} does not fit in bits ${field.hi}:${field.lo} of data[${i}]`);
      out[i] |= fieldPrep(BigInt(v), field.hi, field.lo);
    }
  }
  return ok(out);
}

/** The DTE fields by data word, for decode output. */
export function dteFieldList(d: AmdDte): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const l of LAYOUTS) for (const f of l) out[f.name] = d[f.name];
  out.gcr3Root = hex(d.gcr3Root);
  out.hostRoot = hex(d.hostRoot);
  d.reserved.forEach((r, i) => {
    if (r !== 0n) out[`reserved${i}`] = hex(r);
  });
  return out;
}
