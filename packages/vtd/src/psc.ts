/**
 * The paging-structure cache of a 4-level second-stage table, like the PDE cache of VT-d hardware:
 * direct-mapped, one slot per 2 MiB region of IOVA (key: iovaPfn / 512), indexed by the region
 * number's low bits; 1024 slots cover 2 GiB of IOVA.
 *
 * A slot remembers where the region's leaf table is (its slab of table memory and word offset in it,
 * see PhysicalMemory.slabWords) and the R/W/X bits
 * the three upper levels grant (low bits of the word). It caches table pointers, never a
 * translation: the leaf entry is still read on every walk, so a changed or cleared leaf is seen at
 * once, and "IOTLB bypassed" still holds. Only a table pointer can go stale, and table pointers
 * change only when a table is released (unmap, free, a rolled-back map; map only fills non-present
 * entries and a region has a slot only if its walk went through present table entries): the table
 * then flushes every slot. The arrays are allocated on the first fill, so a table that is never
 * walked pays nothing.
 */
import { SS_R, SS_W, SS_X } from './pte-bits.js';

export const PSC_SLOTS = 1024;
const NO_SLAB = new Uint32Array(0);
/** The slots of a cache that has not been filled yet: every key empty, never written. */
const NO_KEYS = new Int32Array(PSC_SLOTS).fill(-1);
const NO_WORDS = new Int32Array(PSC_SLOTS);
const NO_SLABS: Uint32Array[] = new Array<Uint32Array>(PSC_SLOTS).fill(NO_SLAB);

export class PagingStructureCache {
  /** Region number per slot, -1 when empty. */
  key: Int32Array = NO_KEYS;
  /** Word offset of the leaf table in its slab (a multiple of 1024), ORed with the upper levels' R/W/X. */
  word: Int32Array = NO_WORDS;
  /** The leaf table's slab. */
  slab: Uint32Array[] = NO_SLABS;

  /** Drops every slot (a table was released). */
  flush(): void {
    if (this.key !== NO_KEYS) this.key.fill(-1);
  }

  /** Remembers the leaf table of `region` (slab `c`, word offset `base`) and the upper levels' R/W/X. */
  fill(region: number, c: Uint32Array, base: number, upperPerm: number): void {
    if (this.key === NO_KEYS) {
      this.key = new Int32Array(PSC_SLOTS).fill(-1);
      this.word = new Int32Array(PSC_SLOTS);
      this.slab = new Array<Uint32Array>(PSC_SLOTS).fill(NO_SLAB);
    }
    const s = region & (PSC_SLOTS - 1);
    this.key[s] = region;
    this.word[s] = base | (upperPerm & (SS_R | SS_W | SS_X));
    this.slab[s] = c;
  }
}
