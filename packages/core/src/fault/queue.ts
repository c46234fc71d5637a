/**
 * A bounded hardware record queue (VT-d fault recording / page request queue, SMMUv3 event and PRI
 * queues, AMD event and PPR logs): records wait here until the driver's interrupt thread drains them.
 * When it is full the hardware sets its overflow flag and drops the record.
 */
export class HardwareQueue {
  private readonly ring: (Uint8Array | null)[];
  private head = 0;
  private count = 0;
  /** Ring position of the next push (head + count, wrapped): kept so that no push, pop or slot divides. */
  private tail = 0;
  /** Sticky overflow flag (VT-d PRO/PFO, SMMUv3 Q_OVF, AMD overflow): cleared by the driver. */
  overflow = false;
  /** Records dropped because the queue was full. */
  dropped = 0;

  constructor(
    readonly name: string,
    readonly depth: number,
  ) {
    this.ring = new Array<Uint8Array | null>(depth).fill(null);
  }

  get length(): number {
    return this.count;
  }

  /** Record buffers the queue owns (see slot), by ring position; position `depth` stands in while the queue is full. */
  private slots: (Uint8Array | undefined)[] = [];
  private slotSize = 0;

  /**
   * Hardware side: the queue's own buffer for the next record, `size` bytes, which the unit writes the
   * record into and then pushes, so that a queued record allocates nothing. A popped slot stays as it
   * is until the ring comes round to its position again, or until the next push once the queue is
   * empty (the driver decodes each record as it pops it). While the queue is full this is a spare that
   * the push then drops.
   */
  slot(size: number): Uint8Array {
    if (size !== this.slotSize) {
      this.slots = [];
      this.slotSize = size;
    }
    const i = this.count === this.depth ? this.depth : this.tail;
    let b = this.slots[i];
    if (b === undefined) {
      b = new Uint8Array(size);
      this.slots[i] = b;
    }
    return b;
  }

  /** Hardware side: false when the record was dropped because the queue is full. */
  push(record: Uint8Array): boolean {
    if (this.count === this.depth) {
      this.overflow = true;
      this.dropped++;
      return false;
    }
    this.ring[this.tail] = record;
    if (++this.tail === this.depth) this.tail = 0;
    this.count++;
    return true;
  }

  /**
   * Driver side. Emptied, the ring starts again at its first position: a unit whose requests are
   * drained as they come (one fault at a time) writes them all into the same slot, which stays in
   * the cache, instead of going round every slot of the queue.
   */
  pop(): Uint8Array | null {
    if (this.count === 0) return null;
    const r = this.ring[this.head];
    this.ring[this.head] = null;
    if (--this.count === 0) this.head = this.tail = 0;
    else if (++this.head === this.depth) this.head = 0;
    return r;
  }
}
