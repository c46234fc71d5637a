/**
 * The mappings of one domain: non-overlapping [start, end] ranges (end inclusive), each created by
 * one MAP request and removable only whole. Sorted by start; lookups are binary searches.
 */

export interface Mapping {
  /** First IOVA of the mapping (`virt_start`). */
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
  /** Guest-physical address `start` translates to (`phys_start`). */
  readonly phys: bigint;
  /** VIRTIO_IOMMU_MAP_F_* */
  readonly flags: number;
}

/** The mappings of one domain, ordered by IOVA, as the device keeps them between MAP and UNMAP requests (Linux's driver keeps the same set in an interval tree, `viommu_add_mapping` / `viommu_del_mappings`). */
export class MappingStore {
  private readonly items: Mapping[] = [];

  /** Number of mappings held. */
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

  /** Removes exactly this mapping object; nothing happens if it is not held. */
  remove(m: Mapping): void {
    const i = this.firstEndingAtOrAfter(m.start);
    if (this.items[i] === m) this.items.splice(i, 1);
  }

  /** Every mapping in address order (the live array: do not modify it). */
  all(): readonly Mapping[] {
    return this.items;
  }

  /** Removes every mapping, as when the domain is destroyed. */
  clear(): void {
    this.items.length = 0;
  }
}
