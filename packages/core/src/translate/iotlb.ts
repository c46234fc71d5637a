/**
 * An IOTLB in typed arrays: direct-mapped, entries tagged by (domain tag, PASID, IOVA page). It caches
 * what a walk returned, and keeps it until someone invalidates: exactly the hardware behaviour that
 * makes a missing invalidation visible as a stale translation.
 *
 * The set an entry lives in depends on (tag, IOVA page) only, not on the PASID: translations of one
 * page of one domain through different PASIDs compete for the same slot (as in a set-associative
 * hardware IOTLB indexed by address), and an invalidation of a page for every PASID probes exactly
 * one slot per page instead of scanning the whole array. An empty slot holds key page -1.
 */

const NO_PASID = -1;
const EMPTY = -1;
/** 2^-32: multiplying by it is exact, unlike a division it needs no rounding step. */
const INV_2_32 = 1 / 4294967296;

export class Iotlb {
  readonly size: number;
  private readonly mask: number;
  private readonly keyPfn: Float64Array;
  private readonly keyTag: Int32Array;
  private readonly keyPasid: Int32Array;
  private readonly outPfn: Float64Array;
  private readonly outPerm: Uint8Array;
  enabled = true;
  hits = 0;
  misses = 0;
  /** PERM_* bits of the last hit. */
  lastPerm = 0;

  constructor(log2Entries = 12) {
    this.size = 1 << log2Entries;
    this.mask = this.size - 1;
    this.keyPfn = new Float64Array(this.size).fill(EMPTY);
    this.keyTag = new Int32Array(this.size);
    this.keyPasid = new Int32Array(this.size);
    this.outPfn = new Float64Array(this.size);
    this.outPerm = new Uint8Array(this.size);
  }

  private slot(tag: number, iovaPfn: number): number {
    // Low page bits spread sequential pages; the page bits above 32 and the tag perturb the index so
    // that aliases 2^32 pages apart, and two domains, don't collide.
    return (iovaPfn ^ (iovaPfn * INV_2_32) ^ Math.imul(tag, 0x9e3779b1)) & this.mask;
  }

  /** The cached output page for the key, or -1; `perm` of the hit is left in `lastPerm`. */
  lookup(tag: number, pasid: number, iovaPfn: number): number {
    if (!this.enabled) return -1;
    const s = this.slot(tag, iovaPfn);
    if (this.keyPfn[s] === iovaPfn && this.keyTag[s] === tag && this.keyPasid[s] === pasid) {
      this.hits++;
      this.lastPerm = this.outPerm[s];
      return this.outPfn[s];
    }
    this.misses++;
    return -1;
  }

  insert(tag: number, pasid: number, iovaPfn: number, outPfn: number, perm: number): void {
    if (!this.enabled) return;
    const s = this.slot(tag, iovaPfn);
    this.keyPfn[s] = iovaPfn;
    this.keyTag[s] = tag;
    this.keyPasid[s] = pasid;
    this.outPfn[s] = outPfn;
    this.outPerm[s] = perm;
  }

  /** Invalidates [iovaPfn, iovaPfn + npages) of `tag`; `pasid` -1 matches every PASID. */
  flushRange(tag: number, pasid: number, iovaPfn: number, npages: number): void {
    const keyPfn = this.keyPfn;
    if (npages < this.size) {
      // Each page can only sit in its own slot: probe one slot per page.
      for (let i = 0; i < npages; i++) {
        const p = iovaPfn + i;
        const s = this.slot(tag, p);
        if (keyPfn[s] === p && this.keyTag[s] === tag && (pasid === NO_PASID || this.keyPasid[s] === pasid)) keyPfn[s] = EMPTY;
      }
      return;
    }
    const end = iovaPfn + npages;
    for (let s = 0; s < this.size; s++) {
      const p = keyPfn[s];
      if (p >= iovaPfn && p < end && this.keyTag[s] === tag && (pasid === NO_PASID || this.keyPasid[s] === pasid)) keyPfn[s] = EMPTY;
    }
  }

  /** Invalidates a range for the RID (no PASID) and every PASID. */
  flushRangeAllPasids(tag: number, iovaPfn: number, npages: number): void {
    this.flushRange(tag, NO_PASID, iovaPfn, npages);
  }

  flushTag(tag: number): void {
    for (let s = 0; s < this.size; s++) if (this.keyTag[s] === tag) this.keyPfn[s] = EMPTY;
  }

  flushAll(): void {
    this.keyPfn.fill(EMPTY);
  }

  /** Valid entries (for tests and statistics). */
  get occupancy(): number {
    let n = 0;
    for (let s = 0; s < this.size; s++) if (this.keyPfn[s] !== EMPTY) n++;
    return n;
  }
}
