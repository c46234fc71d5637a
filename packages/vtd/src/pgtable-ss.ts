/**
 * VT-d second-stage page table (`vtd-ss`): the format of SSPTPTR, used for kernel-managed (paging)
 * domains and as the parent of a nested domain.
 *
 * 64-bit entries, 512 per 4 KiB table, 3/4/5 levels for 39/48/57-bit input (SAGAW bits 1/2/3, the
 * PASID entry's AW = levels - 2). No present bit: an entry is present when R or W is set. Leaves at
 * level 0 (4K) and, with PS (bit 7), at level 1 (2M) and 2 (1G) when SLLPS reports them; the caller
 * passes SLLPS through `cfg.pgsizeBitmap`.
 *
 * Options (cfg.options):
 * - `sagaw` (number): CAP.SAGAW; the level count must be one of its bits.
 * - `slee` (boolean): execute requests honoured, X (bit 2) set on leaves not mapped IOMMU_NOEXEC.
 * - `forceWriteable` (boolean): nest-parent erratum ERRATA_772415_SPR17, read-only maps → EINVAL.
 * `cfg.coherent` sets SNP (bit 11) on every leaf (force snooping, ECAP.SC); `cfg.dirtyTracking`
 * (ECAP.SLADS) lets the hardware set A (bit 8) / D (bit 9), switched by setDirtyTracking (SSADE).
 */
import type { PhysicalMemory } from '@ioasid/core';
import type { IoPageTable, PageTableConfig, PageTableFormat, PageTableMemory, WalkResult } from '@ioasid/core/driver';
import { EINVAL, ENOMEM, SZ_1G, SZ_2M, SZ_4K, VtdPageTable, leafLevelsFromBitmap, walkForeignVtd } from './pte.js';

/** Format id of the VT-d second-stage page table (legacy context entry, or PASID entry PGTT = 010b). */
export const VTD_SS_FORMAT = 'vtd-ss';

function allocSecondStage(cfg: PageTableConfig, memory: PageTableMemory): IoPageTable | number {
  const opts = cfg.options ?? {};
  const ias = cfg.ias;
  if (!Number.isInteger(ias) || ias < 12 || ias > 57) return -EINVAL;
  // width_to_agaw(): 9 bits per level above the 30 bits of a 2-level table, at least 3 levels.
  const levels = cfg.levels ?? Math.max(3, Math.ceil((ias - 12) / 9));
  if (!Number.isInteger(levels) || levels < 3 || levels > 5 || ias > 12 + 9 * levels) return -EINVAL;
  const sagaw = opts['sagaw'];
  if (sagaw !== undefined && (typeof sagaw !== 'number' || ((sagaw >> (levels - 2)) & 1) === 0)) return -EINVAL;
  const oas = cfg.oas;
  if (!Number.isInteger(oas) || oas < 12 || oas > 52) return -EINVAL;
  const pgsize = cfg.pgsizeBitmap & (SZ_4K | SZ_2M | SZ_1G);
  if ((pgsize & SZ_4K) === 0n) return -EINVAL;
  const root = memory.allocTable();
  if (root < 0) return -ENOMEM;
  // io_pgtable_cfg is in/out: the caller learns which sizes it got.
  cfg.pgsizeBitmap = pgsize;
  const effective: Readonly<PageTableConfig> = Object.freeze({ ...cfg, pgsizeBitmap: pgsize, levels, options: Object.freeze({ ...opts }) });
  return new VtdPageTable(
    {
      format: VTD_SS_FORMAT,
      firstStage: false,
      executeEnable: opts['slee'] === true,
      snoop: cfg.coherent === true,
      forceWriteable: opts['forceWriteable'] === true,
      global: false,
    },
    effective,
    { levels, ias, oas, leafLevels: leafLevelsFromBitmap(pgsize) },
    memory,
    root,
  );
}

function walkForeignSecondStage(
  cfg: Readonly<PageTableConfig>,
  rootPfn: number,
  mem: PhysicalMemory,
  iovaPfn: number,
  out: WalkResult,
  tableToPhys: (pfn: number) => number,
): boolean {
  return walkForeignVtd(cfg, false, 7, rootPfn, mem, iovaPfn, out, tableToPhys);
}

/**
 * The VT-d second-stage page table format: SAGAW-sized tables from a legacy context entry or a scalable-mode PASID
 * entry.
 */
export const vtdSecondStage: PageTableFormat = {
  id: VTD_SS_FORMAT,
  describe: 'Intel VT-d second-stage: 4K pages, 2M/1G superpages (SLLPS), 39/48/57-bit input (3/4/5 levels, SAGAW), up to 52-bit output',
  alloc: allocSecondStage,
  walkForeign: walkForeignSecondStage,
};
