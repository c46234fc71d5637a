/**
 * An IOTLB in typed arrays: direct-mapped, entries tagged by (domain tag, PASID, IOVA page). It caches
 * what a walk returned, and keeps it until someone invalidates: exactly the hardware behaviour that
 * makes a missing invalidation visible as a stale translation.
 *
 * The set an entry lives in depends on (tag, IOVA page) only, not on the PASID: translations of one
 * page of one domain through different PASIDs compete for the same slot (as in a set-associative
 * hardware IOTLB indexed by address), and an invalidation of a page for every PASID probes exactly
 * one slot per page instead of scanning the whole array. An empty slot holds key page -1.
 *
 * Layout: one ArrayBuffer of 32-byte entries, read through a Float64Array view `f` and an Int32Array
 * view `w` of the same bytes, so that a hit touches one cache line:
 *   f[4s]      key IOVA page (exact up to 2^53; -1 when empty)
 *   w[8s + 2]  key tag          w[8s + 3]  key PASID (-1 = none)
 *   f[4s + 2]  output page
 *   w[8s + 6]  PERM_* bits granted
 * Tag and PASID are compared as int32: a tag or PASID that is not an int32 can never equal a stored
 * one (the stored values are int32), so it misses rather than hitting falsely; `insert` of such a key
 * is ignored.
 *
 * Statistics: `misses` counts every lookup that did not hit (always, it is off the hit path); `hits` is
 * counted only while `statistics` is true, so the hit path stays a few loads and compares.
 */

const NO_PASID = -1;
const EMPTY = -1;
/** 2^-32: multiplying by it is exact, unlike a division it needs no rounding step. */
const INV_2_32 = 1 / 4294967296;
const NO_F64 = new Float64Array(0);
const NO_I32 = new Int32Array(0);

export class Iotlb {
  // Every field has an initializer of its final type, so that V8 gives it a precise representation (a
  // field declared without one starts as undefined, and its loads then need a type dispatch).
  readonly size: number = 0;
  private readonly mask: number = 0;
  /** Entry words as float64 (key page at 4s, output page at 4s + 2). */
  private readonly f: Float64Array = NO_F64;
  /** The same bytes as int32 (tag at 8s + 2, PASID at 8s + 3, perm at 8s + 6). */
  private readonly w: Int32Array = NO_I32;
  /** 1 while enabled (a small integer, not a boolean: the hit path tests it without a type dispatch). */
  private on = 1;
  /** 1 while `statistics` is on. */
  private countHits = 0;
  /** Hits, counted only while `statistics` is true (so that the hit path stores nothing). */
  hits = 0;
  /** Lookups that found no usable entry while enabled (counted off the hit path). */
  misses = 0;
  /** PERM_* bits of the last hit (set by `lookup`). */
  lastPerm = 0;

  constructor(log2Entries = 12) {
    this.size = 1 << log2Entries;
    this.mask = this.size - 1;
    const buf = new ArrayBuffer(this.size * 32);
    this.f = new Float64Array(buf);
    this.w = new Int32Array(buf);
    for (let s = 0; s < this.size; s++) this.f[4 * s] = EMPTY;
  }

  /** While false, nothing is looked up or inserted (invalidations still apply). */
  get enabled(): boolean {
    return this.on !== 0;
  }

  set enabled(v: boolean) {
    this.on = v ? 1 : 0;
  }

  /** Count hits in `hits` (off by default). */
  get statistics(): boolean {
    return this.countHits !== 0;
  }

  set statistics(v: boolean) {
    this.countHits = v ? 1 : 0;
  }

  private slot(tag: number, iovaPfn: number): number {
    // Low page bits spread sequential pages; the page bits above 32 and the tag perturb the index so
    // that aliases 2^32 pages apart, and two domains, don't collide. The high part is 0 below 2^32
    // pages; the test lets the compiler drop the float multiply when it knows the page is an int32.
    const hi = iovaPfn > 0xffffffff ? iovaPfn * INV_2_32 : 0;
    return (iovaPfn ^ hi ^ Math.imul(tag, 0x9e3779b1)) & this.mask;
  }

  /**
   * The hit path, small enough to be inlined into the DMA loop: when an entry matches the full page
   * number, the tag and the PASID and grants `perm` (request bits, see permission.ts), writes its output page and
   * permissions to `out` and returns true. Otherwise returns false (a miss, or a cached entry without
   * the permission: the hardware re-walks, it may have been upgraded) and `out` is untouched.
   *
   * Only the enabled test is here; the lookup is `probe`. Where the IOTLB is off, `probe` is never
   * called, so the compiler does not inline it into the caller (a call site that never ran has no
   * target to inline) and the caller's inlining budget goes to the walk instead.
   */
  hit(tag: number, pasid: number, iovaPfn: number, perm: number, out: { pfn: number; perm: number }): boolean {
    return this.on !== 0 && this.probe(tag, pasid, iovaPfn, perm, out);
  }

  /** `hit` of an enabled IOTLB. */
  private probe(tag: number, pasid: number, iovaPfn: number, perm: number, out: { pfn: number; perm: number }): boolean {
    // Int32 index of the entry; e is a multiple of 8, so `e | k` is e + k without an overflow check.
    const e = this.slot(tag, iovaPfn) << 3;
    const f = this.f;
    const w = this.w;
    if (f[e >> 1] === iovaPfn && w[e | 2] === tag && w[e | 3] === pasid) {
      const granted = w[e | 6];
      // permNeeded(perm), inline: a privileged request (PERM_PRIV, 8) needs the privileged grant bits.
      const need = perm < 8 ? perm : (perm & 7) << 4;
      if ((granted & need) === need) {
        if (this.countHits !== 0) this.hits++;
        out.pfn = f[(e >> 1) | 2];
        out.perm = granted;
        return true;
      }
    }
    this.misses++;
    return false;
  }

  /** The cached output page for the key, or -1; `perm` of the hit is left in `lastPerm`. */
  lookup(tag: number, pasid: number, iovaPfn: number): number {
    if (this.on === 0) return -1;
    const e = this.slot(tag, iovaPfn) << 3;
    if (this.f[e >> 1] === iovaPfn && this.w[e | 2] === tag && this.w[e | 3] === pasid) {
      if (this.countHits !== 0) this.hits++;
      this.lastPerm = this.w[e | 6];
      return this.f[(e >> 1) | 2];
    }
    this.misses++;
    return -1;
  }

  /** Caches a translation (ignored while disabled; see `hit` for why the body is a second function). */
  insert(tag: number, pasid: number, iovaPfn: number, outPfn: number, perm: number): void {
    if (this.on !== 0) this.store(tag, pasid, iovaPfn, outPfn, perm);
  }

  private store(tag: number, pasid: number, iovaPfn: number, outPfn: number, perm: number): void {
    if ((tag | 0) !== tag || (pasid | 0) !== pasid) return;
    const s = this.slot(tag, iovaPfn);
    this.f[s << 2] = iovaPfn;
    this.w[(s << 3) + 2] = tag;
    this.w[(s << 3) + 3] = pasid;
    this.f[(s << 2) + 2] = outPfn;
    this.w[(s << 3) + 6] = perm;
  }

  /** Invalidates [iovaPfn, iovaPfn + npages) of `tag`; `pasid` -1 matches every PASID. */
  flushRange(tag: number, pasid: number, iovaPfn: number, npages: number): void {
    const f = this.f;
    const w = this.w;
    if (npages < this.size) {
      // Each page can only sit in its own slot: probe one slot per page.
      for (let i = 0; i < npages; i++) {
        const p = iovaPfn + i;
        const s = this.slot(tag, p);
        if (f[s << 2] === p && w[(s << 3) + 2] === tag && (pasid === NO_PASID || w[(s << 3) + 3] === pasid)) f[s << 2] = EMPTY;
      }
      return;
    }
    const end = iovaPfn + npages;
    for (let s = 0; s < this.size; s++) {
      const p = f[s << 2];
      if (p >= iovaPfn && p < end && w[(s << 3) + 2] === tag && (pasid === NO_PASID || w[(s << 3) + 3] === pasid)) f[s << 2] = EMPTY;
    }
  }

  /** Invalidates a range for the RID (no PASID) and every PASID. */
  flushRangeAllPasids(tag: number, iovaPfn: number, npages: number): void {
    this.flushRange(tag, NO_PASID, iovaPfn, npages);
  }

  flushTag(tag: number): void {
    for (let s = 0; s < this.size; s++) if (this.w[(s << 3) + 2] === tag) this.f[s << 2] = EMPTY;
  }

  flushAll(): void {
    for (let s = 0; s < this.size; s++) this.f[s << 2] = EMPTY;
  }

  /** Valid entries (for tests and statistics). */
  get occupancy(): number {
    let n = 0;
    for (let s = 0; s < this.size; s++) if (this.f[s << 2] !== EMPTY) n++;
    return n;
  }
}
