/**
 * An IOTLB in typed arrays: direct-mapped, entries tagged by (domain tag, PASID, IOVA page). It caches
 * what a walk returned, and keeps it until someone invalidates: exactly the hardware behaviour that
 * makes a missing invalidation visible as a stale translation.
 *
 * The set an entry lives in depends on (tag, IOVA page) only, not on the PASID: translations of one
 * page of one domain through different PASIDs compete for the same slot (as in a set-associative
 * hardware IOTLB indexed by address), and an invalidation of a page for every PASID probes exactly
 * one slot per page instead of scanning the whole array. An empty slot has KEY_EMPTY as its high key
 * word (its other words keep their old values: no page has that high word, so nothing matches them).
 *
 * Layout: one ArrayBuffer of 32-byte entries (8 int32 words), read through an Int32Array view `w`, so
 * that a hit touches one cache line and one typed array; a Float64Array view `f` of the same bytes holds
 * only output pages of 2^31 and above:
 *   w[8s]      key IOVA page, low 32 bits (as int32)
 *   w[8s + 1]  key IOVA page, the bits above (KEY_EMPTY when the slot is empty)
 *   w[8s + 2]  key tag          w[8s + 3]  key PASID (-1 = none)
 *   w[8s + 4]  output page, or -1 when it is 2^31 or more: then it is f[4s + 3]
 *   w[8s + 5]  PERM_* bits granted
 *   f[4s + 3]  output page (words 8s + 6 and 8s + 7)
 * The page is compared as two int32 words: for a page that is an int32 (the common case), the high
 * word is 0 and the compiler folds its computation away. Only pages that are integers in [0, 2^53) are
 * cached (`insert` ignores others); a page that is not (a fraction, a negative number) gets a high word
 * that no stored entry has, so it misses. Tag and PASID are compared as int32: a tag or PASID that is
 * not an int32 can never equal a stored one (the stored values are int32), so it misses rather than
 * hitting falsely; `insert` of such a key is ignored.
 *
 * Statistics: `misses` counts every lookup that did not hit (always, it is off the hit path); `hits` is
 * counted only while `statistics` is true, so the hit path stays a few loads and compares.
 */

const NO_PASID = -1;
/** The high key word of an empty slot: no page below 2^53 has it. */
const KEY_EMPTY = 0x7fffffff;
/** 2^-32: multiplying by it is exact, unlike a division it needs no rounding step. */
const INV_2_32 = 1 / 4294967296;
const MAX_PAGE = 2 ** 53 - 1;

/**
 * The high key word of a page: its bits above 32 for an integer in [0, 2^53); for an int32 that is 0
 * (or -1 when negative), which the compiler folds when it knows the page is an int32; for anything else
 * a value no entry holds (a negative number, a fraction, 0.5 at or above 2^53). The hit path has it
 * written out (2.3283064365386963e-10 is 2^-32, 9007199254740991 MAX_PAGE).
 */
function keyHigh(iovaPfn: number): number {
  if ((iovaPfn | 0) === iovaPfn) return iovaPfn >> 31;
  return iovaPfn <= MAX_PAGE ? (iovaPfn - (iovaPfn >>> 0)) * INV_2_32 : 0.5;
}

const NO_F64 = new Float64Array(0);
const NO_I32 = new Int32Array(0);

export class Iotlb {
  // Every field has an initializer of its final type, so that V8 gives it a precise representation (a
  // field declared without one starts as undefined, and its loads then need a type dispatch).
  readonly size: number = 0;
  private readonly mask: number = 0;
  /** Entry words as int32 (see the layout above). */
  private readonly w: Int32Array = NO_I32;
  /** The same bytes as float64 (output page at 4s + 3). */
  private readonly f: Float64Array = NO_F64;
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
    for (let s = 0; s < this.size; s++) this.w[8 * s + 1] = KEY_EMPTY;
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
    // that aliases 2^32 pages apart, and two domains, don't collide. The high part is 0 for an int32
    // page (and below 2^32 pages `^` truncates it to 0 anyway); the test lets the compiler drop the
    // float multiply when it knows the page is an int32.
    const hi = (iovaPfn | 0) === iovaPfn ? 0 : iovaPfn * INV_2_32;
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
    const w = this.w;
    const high = (iovaPfn | 0) === iovaPfn ? iovaPfn >> 31 : iovaPfn <= 9007199254740991 ? (iovaPfn - (iovaPfn >>> 0)) * 2.3283064365386963e-10 : 0.5;
    if (w[e] === (iovaPfn | 0) && w[e | 1] === high && w[e | 2] === tag && w[e | 3] === pasid) {
      const granted = w[e | 5];
      // permNeeded(perm), inline: a privileged request (PERM_PRIV, 8) needs the privileged grant bits.
      const need = perm < 8 ? perm : (perm & 7) << 4;
      if ((granted & need) === need) {
        if (this.countHits !== 0) this.hits++;
        const o = w[e | 4];
        out.pfn = o >= 0 ? o : this.f[(e >> 1) | 3];
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
    if (this.holds(e, iovaPfn) && this.w[e | 2] === tag && this.w[e | 3] === pasid) {
      if (this.countHits !== 0) this.hits++;
      this.lastPerm = this.w[e | 5];
      const o = this.w[e | 4];
      return o >= 0 ? o : this.f[(e >> 1) | 3];
    }
    this.misses++;
    return -1;
  }

  /**
   * Caches a translation (ignored while disabled, and for keys that cannot be cached: see above). The
   * common case, a page below 2^32 to a page below 2^31 (every walk of a DMA that missed ends here,
   * nearly always with those), is written out small: the unit's miss inlines it with the walk, within
   * V8's cumulative inlining budget (inline-budget.test.ts); anything else is insertWide's.
   */
  insert(tag: number, pasid: number, iovaPfn: number, outPfn: number, perm: number): void {
    // `(p >>> 0) === p`: p is an integer in [0, 2^32), so its high key word is 0 and its low word is
    // `p | 0` (an Int32Array store wraps it so); `(o | 0) === o && o >= 0`: the output page goes in the
    // int32 word (w[e | 4]). e is a multiple of 8, so `e | k` is e + k.
    if ((iovaPfn >>> 0) === iovaPfn && (outPfn | 0) === outPfn && outPfn >= 0 && (tag | 0) === tag && (pasid | 0) === pasid && this.on !== 0) {
      const e = this.slot(tag, iovaPfn) << 3;
      const w = this.w;
      w[e] = iovaPfn;
      w[e | 1] = 0;
      w[e | 2] = tag;
      w[e | 3] = pasid;
      w[e | 4] = outPfn;
      w[e | 5] = perm;
      return;
    }
    this.insertWide(tag, pasid, iovaPfn, outPfn, perm);
  }

  /** insert() of a page or an output page that is not a non-negative int32, or of a key that cannot be cached. */
  private insertWide(tag: number, pasid: number, iovaPfn: number, outPfn: number, perm: number): void {
    if (this.on === 0 || (tag | 0) !== tag || (pasid | 0) !== pasid) return;
    let high = 0;
    if ((iovaPfn | 0) !== iovaPfn || iovaPfn < 0) {
      if (!(iovaPfn >= 0 && iovaPfn <= MAX_PAGE) || Math.floor(iovaPfn) !== iovaPfn) return;
      high = (iovaPfn - (iovaPfn >>> 0)) * INV_2_32;
    }
    const e = this.slot(tag, iovaPfn) << 3;
    const w = this.w;
    w[e] = iovaPfn | 0;
    w[e | 1] = high;
    w[e | 2] = tag;
    w[e | 3] = pasid;
    // The float64 word is read only for an output page that is not an int32 (w[e | 4] -1).
    if (outPfn >= 0 && outPfn <= 0x7fffffff) w[e | 4] = outPfn;
    else {
      w[e | 4] = -1;
      this.f[(e >> 1) | 3] = outPfn;
    }
    w[e | 5] = perm;
  }

  /** Whether entry `e` (int32 index) holds page `iovaPfn`. */
  private holds(e: number, iovaPfn: number): boolean {
    return this.w[e] === (iovaPfn | 0) && this.w[e + 1] === keyHigh(iovaPfn);
  }

  /** The page entry `e` holds (its high word is not KEY_EMPTY). */
  private keyPage(e: number): number {
    return this.w[e + 1] * 4294967296 + (this.w[e] >>> 0);
  }

  /** Invalidates [iovaPfn, iovaPfn + npages) of `tag`; `pasid` -1 matches every PASID. */
  flushRange(tag: number, pasid: number, iovaPfn: number, npages: number): void {
    const w = this.w;
    if (npages < this.size) {
      // Each page can only sit in its own slot: probe one slot per page.
      for (let i = 0; i < npages; i++) {
        const p = iovaPfn + i;
        const e = this.slot(tag, p) << 3;
        if (this.holds(e, p) && w[e + 2] === tag && (pasid === NO_PASID || w[e + 3] === pasid)) w[e + 1] = KEY_EMPTY;
      }
      return;
    }
    const end = iovaPfn + npages;
    for (let e = 0; e < w.length; e += 8) {
      if (w[e + 1] === KEY_EMPTY || w[e + 2] !== tag || (pasid !== NO_PASID && w[e + 3] !== pasid)) continue;
      const p = this.keyPage(e);
      if (p >= iovaPfn && p < end) w[e + 1] = KEY_EMPTY;
    }
  }

  /** Invalidates a range for the RID (no PASID) and every PASID. */
  flushRangeAllPasids(tag: number, iovaPfn: number, npages: number): void {
    this.flushRange(tag, NO_PASID, iovaPfn, npages);
  }

  flushTag(tag: number): void {
    for (let e = 0; e < this.w.length; e += 8) if (this.w[e + 2] === tag) this.w[e + 1] = KEY_EMPTY;
  }

  flushAll(): void {
    for (let e = 0; e < this.w.length; e += 8) this.w[e + 1] = KEY_EMPTY;
  }

  /** Valid entries (for tests and statistics). */
  get occupancy(): number {
    let n = 0;
    for (let e = 0; e < this.w.length; e += 8) if (this.w[e + 1] !== KEY_EMPTY) n++;
    return n;
  }
}
