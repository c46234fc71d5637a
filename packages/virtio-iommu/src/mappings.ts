/**
 * The mappings of one domain: non-overlapping [start, end] ranges (end inclusive), each created by
 * one MAP request and removable only whole. Sorted by start; lookups are binary searches.
 */

export interface Mapping {
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
  readonly phys: bigint;
  /** VIRTIO_IOMMU_MAP_F_* */
  readonly flags: number;
}

export class MappingStore {
  private readonly items: Mapping[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Index of the first mapping whose end is >= addr. */
  private firstEndingAtOrAfter(addr: bigint): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid].end < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The mappings that overlap [start, end], in address order. */
  overlapping(start: bigint, end: bigint): Mapping[] {
    const out: Mapping[] = [];
    for (let i = this.firstEndingAtOrAfter(start); i < this.items.length && this.items[i].start <= end; i++) out.push(this.items[i]);
    return out;
  }

  /** The mapping that contains `addr`, if any. */
  lookup(addr: bigint): Mapping | undefined {
    const m = this.items[this.firstEndingAtOrAfter(addr)];
    return m && m.start <= addr ? m : undefined;
  }

  /** Inserts a mapping; the caller has checked that nothing overlaps it. */
  insert(m: Mapping): void {
    this.items.splice(this.firstEndingAtOrAfter(m.start), 0, m);
  }

  remove(m: Mapping): void {
    const i = this.firstEndingAtOrAfter(m.start);
    if (this.items[i] === m) this.items.splice(i, 1);
  }

  all(): readonly Mapping[] {
    return this.items;
  }

  clear(): void {
    this.items.length = 0;
  }
}
