/**
 * The RISC-V IOMMU page-table format ('riscv-iommu-pt'): a radix tree of 512 64-bit entries per level, 3 levels
 * for a 39-bit IOVA or 4 for 48 bits, 4 KiB pages and 2 MiB / 1 GiB blocks. It is built on core's radix
 * engine, so it supplies only its entry encoding; map, unmap, walk, dirty tracking and freeing (with
 * their EEXIST / ENOMEM / superpage rules) are the engine's.
 *
 * Entry bits: 0 V (valid), 1 R, 2 W, 3 X, 5 A (accessed), 6 D (dirty), 7 LEAF (a block above level 0),
 * 12..51 the output page number. The format has no privilege levels: a page grants the same to
 * privileged and unprivileged requests. Hardware sets A on every access and D on a write while dirty
 * tracking is on.
 */
import {
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  RadixLayout,
  RadixPageTable,
  grantBoth,
  pageSizesFromLog2,
  type LeafBits,
  type PageTableFormat,
  type RadixCodec,
} from '@ioasid/core/driver';
import { FORMAT_ID, VENDOR_NAME } from './ids.js';

export const PTE_V = 1;
export const PTE_R = 2;
export const PTE_W = 4;
export const PTE_X = 8;
export const PTE_A = 32;
export const PTE_D = 64;
export const PTE_LEAF = 128;

/** The page sizes the format can hold: 4K, 2M, 1G. */
export const FORMAT_PAGE_SIZES = pageSizesFromLog2(12, 21, 30);

/** The entry encoding: everything the radix engine needs to know about the format. */
export const codec: RadixCodec = {
  presentMask: PTE_V,
  tableMask: PTE_LEAF,
  tableValue: [0, 0, 0, 0],
  tableLo: [PTE_V, PTE_V, PTE_V, PTE_V],
  tableHi: [0, 0, 0, 0],
  leafTypeLo: [0, PTE_LEAF, PTE_LEAF, PTE_LEAF],
  addrShift: 12,
  addrHiMask: 0xfffff,
  leafBits(prot: number, bits: LeafBits): number {
    bits.lo = PTE_V | (prot & IOMMU_READ ? PTE_R : 0) | (prot & IOMMU_WRITE ? PTE_W : 0) | (prot & IOMMU_NOEXEC ? 0 : PTE_X);
    bits.hi = 0;
    return 0;
  },
  leafGrant(lo: number): number {
    return grantBoth((lo & PTE_R ? PERM_READ : 0) | (lo & PTE_W ? PERM_WRITE : 0) | (lo & PTE_X ? PERM_EXEC : 0));
  },
  leafDirty(lo: number): boolean {
    return (lo & PTE_D) !== 0;
  },
  leafClean(lo: number): number {
    return lo & ~PTE_D;
  },
  leafAccessed(lo: number, _hi: number, write: boolean, hwDirty: boolean): number {
    return lo | PTE_A | (write && hwDirty && (lo & PTE_W) !== 0 ? PTE_D : 0);
  },
};

const layouts = new Map<string, RadixLayout>();

/** The geometry for 3 or 4 levels with leaves where the page sizes allow (level 1: 2M, level 2: 1G). */
export function layoutFor(levels: 3 | 4, pgsizeBitmap: bigint, oas: number): RadixLayout {
  const leafLevels = 1 | (pgsizeBitmap & (1n << 21n) ? 2 : 0) | (pgsizeBitmap & (1n << 30n) ? 4 : 0);
  const key = `${levels}:${leafLevels}:${oas}`;
  let layout = layouts.get(key);
  if (!layout) {
    layout = new RadixLayout({
      levels,
      entryBits: levels === 3 ? [9, 9, 9] : [9, 9, 9, 9],
      spanShift: levels === 3 ? [0, 9, 18] : [0, 9, 18, 27],
      leafLevels,
      ias: levels === 3 ? 39 : 48,
      oas,
    });
    layouts.set(key, layout);
  }
  return layout;
}

export const format: PageTableFormat = {
  id: FORMAT_ID,
  describe: `${VENDOR_NAME} radix table: 3 or 4 levels (39/48-bit input), 4K pages, 2M and 1G blocks`,
  alloc(cfg, memory) {
    const levels = cfg.ias <= 39 ? 3 : cfg.ias <= 48 ? 4 : 0;
    if (levels === 0 || cfg.oas < 32) return -22;
    const oas = Math.min(cfg.oas, 52);
    const pgsizeBitmap = cfg.pgsizeBitmap & FORMAT_PAGE_SIZES;
    if ((pgsizeBitmap & (1n << 12n)) === 0n) return -22;
    const layout = layoutFor(levels, pgsizeBitmap, oas);
    const root = RadixPageTable.rootFor(memory, layout);
    if (root < 0) return root;
    return new RadixPageTable(FORMAT_ID, { ...cfg, pgsizeBitmap, ias: levels === 3 ? 39 : 48, oas }, codec, layout, memory, root);
  },
};
