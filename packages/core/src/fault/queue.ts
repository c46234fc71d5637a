/**
 * A bounded hardware record queue (VT-d fault recording / page request queue, SMMUv3 event and PRI
 * queues, AMD event and PPR logs): records wait here until the driver's interrupt thread drains them.
 * When it is full the hardware sets its overflow flag and drops the record.
 */
export class HardwareQueue {
  private readonly ring: (Uint8Array | null)[];
  private head = 0;
  private count = 0;
  /** Sticky overflow flag (VT-d PRO/PFO, SMMUv3 Q_OVF, AMD overflow): cleared by the driver. */
  overflow = false;
  dropped = 0;
  total = 0;

  constructor(
    readonly name: string,
    readonly depth: number,
  ) {
    this.ring = new Array<Uint8Array | null>(depth).fill(null);
  }

  get length(): number {
    return this.count;
  }

  /** Hardware side: false when the record was dropped because the queue is full. */
  push(record: Uint8Array): boolean {
    this.total++;
    if (this.count === this.depth) {
      this.overflow = true;
      this.dropped++;
      return false;
    }
    this.ring[(this.head + this.count) % this.depth] = record;
    this.count++;
    return true;
  }

  /** Driver side. */
  pop(): Uint8Array | null {
    if (this.count === 0) return null;
    const r = this.ring[this.head];
    this.ring[this.head] = null;
    this.head = (this.head + 1) % this.depth;
    this.count--;
    return r;
  }
}
