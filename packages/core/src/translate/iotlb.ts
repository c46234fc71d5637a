/**
 * An IOTLB in typed arrays: direct-mapped, entries tagged by (domain tag, PASID, IOVA page). It caches
 * what a walk returned, and keeps it until someone invalidates: exactly the hardware behaviour that
 * makes a missing invalidation visible as a stale translation.
 */

const NO_PASID = -1;

export class Iotlb {
  readonly size: number;
  private readonly mask: number;
  private readonly keyPfn: Float64Array;
  private readonly keyTag: Int32Array;
  private readonly keyPasid: Int32Array;
  private readonly outPfn: Float64Array;
  private readonly outPerm: Uint8Array;
  private readonly valid: Uint8Array;
  enabled = true;
  hits = 0;
  misses = 0;

  constructor(log2Entries = 12) {
    this.size = 1 << log2Entries;
    this.mask = this.size - 1;
    this.keyPfn = new Float64Array(this.size);
    this.keyTag = new Int32Array(this.size);
    this.keyPasid = new Int32Array(this.size);
    this.outPfn = new Float64Array(this.size);
    this.outPerm = new Uint8Array(this.size);
    this.valid = new Uint8Array(this.size);
  }

  private slot(tag: number, pasid: number, iovaPfn: number): number {
    // Low page bits spread sequential pages; the tag and PASID perturb so two domains don't collide.
    return ((iovaPfn ^ (iovaPfn / 4294967296) ^ Math.imul(tag, 0x9e3779b1) ^ Math.imul(pasid + 1, 0x85ebca6b)) >>> 0) & this.mask;
  }

  /** The cached output page for the key, or -1; `perm` of the hit is left in `lastPerm`. */
  lookup(tag: number, pasid: number, iovaPfn: number): number {
    if (!this.enabled) return -1;
    const s = this.slot(tag, pasid, iovaPfn);
    if (this.valid[s] === 1 && this.keyPfn[s] === iovaPfn && this.keyTag[s] === tag && this.keyPasid[s] === pasid) {
      this.hits++;
      this.lastPerm = this.outPerm[s];
      return this.outPfn[s];
    }
    this.misses++;
    return -1;
  }

  lastPerm = 0;

  insert(tag: number, pasid: number, iovaPfn: number, outPfn: number, perm: number): void {
    if (!this.enabled) return;
    const s = this.slot(tag, pasid, iovaPfn);
    this.keyPfn[s] = iovaPfn;
    this.keyTag[s] = tag;
    this.keyPasid[s] = pasid;
    this.outPfn[s] = outPfn;
    this.outPerm[s] = perm;
    this.valid[s] = 1;
  }

  /** Invalidates [iovaPfn, iovaPfn + npages) of `tag`; `pasid` -1 matches every PASID. */
  flushRange(tag: number, pasid: number, iovaPfn: number, npages: number): void {
    if (npages <= 64 && pasid !== NO_PASID) {
      for (let i = 0; i < npages; i++) {
        const p = iovaPfn + i;
        const s = this.slot(tag, pasid, p);
        if (this.keyPfn[s] === p && this.keyTag[s] === tag && this.keyPasid[s] === pasid) this.valid[s] = 0;
      }
      return;
    }
    const end = iovaPfn + npages;
    for (let s = 0; s < this.size; s++) {
      if (this.valid[s] === 1 && this.keyTag[s] === tag && (pasid === NO_PASID || this.keyPasid[s] === pasid) && this.keyPfn[s] >= iovaPfn && this.keyPfn[s] < end) this.valid[s] = 0;
    }
  }

  /** Invalidates a range for the RID (no PASID) and every PASID. */
  flushRangeAllPasids(tag: number, iovaPfn: number, npages: number): void {
    this.flushRange(tag, NO_PASID, iovaPfn, npages);
  }

  flushTag(tag: number): void {
    for (let s = 0; s < this.size; s++) if (this.keyTag[s] === tag) this.valid[s] = 0;
  }

  flushAll(): void {
    this.valid.fill(0);
  }

  /** Valid entries (for tests and statistics). */
  get occupancy(): number {
    let n = 0;
    for (let s = 0; s < this.size; s++) n += this.valid[s];
    return n;
  }
}
