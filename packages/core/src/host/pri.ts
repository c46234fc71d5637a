/**
 * The device side of PCIe PRI flow control. A function may have at most `allocation` page requests
 * outstanding (the Outstanding Page Request Allocation register, which the OS writes when it enables
 * PRI: Linux pci_enable_pri(pdev, reqs) takes min(capacity, reqs)), and must not reuse a Page Request
 * Group Index while a group with that index waits for its response. A request that finds no credit or
 * no free index waits in the function (the transaction stalls) until a response frees one: it never
 * turns into a fault.
 */

/** PRG indexes are 9 bits; the model leaves index 0 unused, so 511 groups can be outstanding. */
export const PRG_INDEX_LAST = 511;

interface Waiting {
  readonly pages: number;
  readonly resolve: (grpid: number) => void;
}

export class PriFlowControl {
  /** Page requests the function may have outstanding (Outstanding Page Request Allocation). */
  private alloc: number;
  /** Page requests sent and not yet answered. */
  private inFlight = 0;
  /**
   * Outstanding groups: page requests held by each PRG index, 0 when it is free (a typed array: taking
   * and giving back an index allocates nothing, where a Map's delete reallocates its table as it shrinks).
   */
  private readonly groups = new Int32Array(PRG_INDEX_LAST + 1);
  private groupCount = 0;
  /** The next index to try: handed out in turn, skipping the outstanding ones. */
  private next = 1;
  /** Requests waiting for credit or an index, oldest first. */
  private readonly waiting: Waiting[] = [];
  private waitHead = 0;
  /** Most page requests ever outstanding at once, and how many requests had to wait. */
  peak = 0;
  stalled = 0;

  constructor(
    /** Outstanding Page Request Capacity: the most the function can track. */
    readonly capacity: number,
    requested: number,
  ) {
    this.alloc = Math.max(1, Math.min(capacity, requested));
  }

  /** Outstanding Page Request Allocation as the OS programmed it (capped by the capacity, at least 1). */
  get allocation(): number {
    return this.alloc;
  }

  /** pci_enable_pri(pdev, reqs): the OS sets the allocation; waiting requests may now proceed. */
  setAllocation(requested: number): void {
    if (!Number.isSafeInteger(requested) || requested < 1) throw new RangeError('the PRI allocation must be a positive integer');
    this.alloc = Math.min(this.capacity, requested);
    this.wake();
  }

  get outstandingRequests(): number {
    return this.inFlight;
  }

  get outstandingGroups(): number {
    return this.groupCount;
  }

  /** Requests waiting for credit or a free group index. */
  get waitingRequests(): number {
    return this.waiting.length - this.waitHead;
  }

  isOutstanding(grpid: number): boolean {
    return this.pagesOf(grpid) !== 0;
  }

  /**
   * Takes credit for a group of `pages` requests and a free PRG index. Returns the index at once when
   * both are free and nobody waits before it, otherwise a promise that resolves when they are.
   */
  acquire(pages: number): number | Promise<number> {
    if (this.waitHead === this.waiting.length) {
      const grpid = this.tryTake(pages);
      if (grpid > 0) return grpid;
    }
    this.stalled++;
    return new Promise<number>((resolve) => this.waiting.push({ pages, resolve }));
  }

  /** Takes credit under an index the caller chose; false when the index is outstanding or no credit. */
  acquireIndex(grpid: number, pages: number): boolean {
    if (this.pagesOf(grpid) !== 0 || this.inFlight + pages > this.alloc) return false;
    this.take(grpid, pages);
    return true;
  }

  /** The group's response arrived: its credit and its index are free again. */
  release(grpid: number): void {
    const pages = this.pagesOf(grpid);
    if (pages === 0) return;
    this.groups[grpid] = 0;
    this.groupCount--;
    this.inFlight -= pages;
    this.wake();
  }

  private wake(): void {
    while (this.waitHead < this.waiting.length) {
      const w = this.waiting[this.waitHead];
      const grpid = this.tryTake(w.pages);
      if (grpid === 0) break;
      this.waitHead++;
      w.resolve(grpid);
    }
    if (this.waitHead > 1024 && this.waitHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitHead);
      this.waitHead = 0;
    }
  }

  /** A free index with credit for `pages`, taken; 0 when either is missing. */
  private tryTake(pages: number): number {
    // 511 is PRG_INDEX_LAST, a literal here and in pagesOf: a module constant is a load and a hole
    // check in compiled code, and every page request takes an index and gives it back.
    if (this.inFlight + pages > this.alloc || this.groupCount >= 511) return 0;
    let g = this.next;
    while (this.groups[g] !== 0) g = g === 511 ? 1 : g + 1;
    this.next = g === 511 ? 1 : g + 1;
    this.take(g, pages);
    return g;
  }

  /** Page requests outstanding under `grpid`; 0 when it is free or not an index (1 to 511). */
  private pagesOf(grpid: number): number {
    return (grpid | 0) === grpid && grpid >= 1 && grpid <= 511 ? this.groups[grpid] : 0;
  }

  private take(grpid: number, pages: number): void {
    this.groups[grpid] = pages;
    this.groupCount++;
    this.inFlight += pages;
    if (this.inFlight > this.peak) this.peak = this.inFlight;
  }
}
