/**
 * VT-d first-stage page table (`vtd-fs`): the IA-32e (x86-64) paging format of FSPTPTR, used for
 * PASID/SVA domains and for a guest's stage 1 in nesting (`iommu_hwpt_vtd_s1`).
 *
 * 4 levels for 48-bit input, 5 levels for 57-bit input (needs CAP.FL5LP: `cfg.options.fl5lp`). Leaves
 * at level 0 (4K), 1 (2M) and, when CAP.FL1GP allows (`cfg.pgsizeBitmap` and `cfg.options.fl1gp`),
 * 2 (1G). Entries: P, R/W, U/S, PWT, PCD, A, D, PS, G, XD (bit 63).
 *
 * Leaves are written the way Linux writes them: P|U/S|A, R/W and D for writable mappings (D left clear
 * when `cfg.dirtyTracking` so the hardware reports writes), U/S clear for IOMMU_PRIV, XD for
 * IOMMU_NOEXEC, PCD|PWT (UC) for IOMMU_MMIO, G when `cfg.options.global`.
 */
import type { PhysicalMemory } from '@ioasid/core';
import type { IoPageTable, PageTableConfig, PageTableFormat, PageTableMemory, WalkResult } from '@ioasid/core/driver';
import { EINVAL, ENOMEM, SZ_1G, SZ_2M, SZ_4K, VtdPageTable, leafLevelsFromBitmap, walkForeignVtd } from './pte.js';

/** Format id of the VT-d first-stage (IA-32e, PASID entry PGTT = 001b) page table. */
export const VTD_FS_FORMAT = 'vtd-fs';

function allocFirstStage(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
  const opts = cfg.options ?? {};
  const ias = cfg.ias;
  if (!Number.isInteger(ias) || ias < 12 || ias > 57) return -EINVAL;
  const levels = cfg.levels ?? (ias > 48 ? 5 : 4);
  if (levels !== 4 && levels !== 5) return -EINVAL;
  if (ias > 12 + 9 * levels) return -EINVAL;
  if (levels === 5 && opts['fl5lp'] === false) return -EINVAL;
  const oas = cfg.oas;
  if (!Number.isInteger(oas) || oas < 12 || oas > 52) return -EINVAL;
  let pgsize = cfg.pgsizeBitmap & (SZ_4K | SZ_2M | SZ_1G);
  if (opts['fl1gp'] === false) pgsize &= ~SZ_1G;
  if ((pgsize & SZ_4K) === 0n) return -EINVAL;
  const root = memory.allocTable();
  if (root < 0) return -ENOMEM;
  cfg.pgsizeBitmap = pgsize;
  const effective: Readonly<PageTableConfig> = Object.freeze({ ...cfg, pgsizeBitmap: pgsize, levels, options: Object.freeze({ ...opts }) });
  return new VtdPageTable(
    { format: VTD_FS_FORMAT, firstStage: true, executeEnable: true, snoop: false, forceWriteable: false, global: opts['global'] === true },
    effective,
    { levels, ias, oas, leafLevels: leafLevelsFromBitmap(pgsize) },
    memory,
    root,
  );
}

function walkForeignFirstStage(
  cfg: Readonly<PageTableConfig>,
  rootPfn: number,
  mem: PhysicalMemory,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: (pfn: number) => number,
): boolean {
  return walkForeignVtd(cfg, true, cfg.options?.['fl1gp'] === false ? 3 : 7, rootPfn, mem, iovaPfn, out, tableToPhys);
}

/**
 * The VT-d first-stage page table format: x86-64 paging entries reached through a scalable-mode PASID entry (Linux
 * intel/pasid.c first-level setup).
 */
export const vtdFirstStage: PageTableFormat = {
  id: VTD_FS_FORMAT,
  describe: 'Intel VT-d first-stage (IA-32e): 4K pages, 2M and 1G (FL1GP) superpages, 48/57-bit input (4/5 levels, FL5LP), up to 52-bit output',
  alloc: allocFirstStage,
  walkForeign: walkForeignFirstStage,
};
