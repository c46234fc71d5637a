/**
 * Entry bits of the two VT-d page-table formats and the page sizes they hold. Second stage: VT-d spec
 * 9.8 (Linux VTDSS_FMT_*), no present bit (an entry is present when R or W is set). First stage: the
 * IA-32e (x86-64) paging entry; XD is bit 63, i.e. bit 31 of the high word.
 */
export const SS_R = 1 << 0;
export const SS_W = 1 << 1;
export const SS_X = 1 << 2;
export const SS_PS = 1 << 7;
export const SS_A = 1 << 8;
export const SS_D = 1 << 9;
export const SS_SNP = 1 << 11;

export const FS_P = 1 << 0;
export const FS_RW = 1 << 1;
export const FS_US = 1 << 2;
export const FS_PWT = 1 << 3;
export const FS_PCD = 1 << 4;
export const FS_A = 1 << 5;
export const FS_D = 1 << 6;
export const FS_PS = 1 << 7;
export const FS_G = 1 << 8;
export const FS_XD_HI = 0x80000000 | 0;

/** Output address bits 51:32 of an entry live in bits 19:0 of its high word. */
export const HI_ADDR_MASK = 0xfffff;

/** pgsize_bitmap bits of the three VT-d page sizes. */
export const SZ_4K = 1n << 12n;
export const SZ_2M = 1n << 21n;
export const SZ_1G = 1n << 30n;

/** Bit `level` set when a leaf may sit at that level (0 = 4K, 1 = 2M, 2 = 1G). */
export function leafLevelsFromBitmap(bitmap: bigint): number {
  return ((bitmap & SZ_4K) !== 0n ? 1 : 0) | ((bitmap & SZ_2M) !== 0n ? 2 : 0) | ((bitmap & SZ_1G) !== 0n ? 4 : 0);
}
