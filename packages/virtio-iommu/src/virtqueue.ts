/**
 * Split virtqueues in guest memory (virtio 1.x "Split Virtqueues"): the descriptor table, the
 * available ring the driver fills and the used ring the device fills. `VirtioIommuTransport` is the
 * device side a VMM runs on a notify: it walks the request queue's chains into `device.request` and
 * puts fault records into the event queue's buffers. `VirtqueueDriver` is the driver side (the
 * guest), for tests, the host-IOMMU plugin and the demo.
 */
import { TAIL_SIZE, VIOMMU_EVENT_VQ, VIOMMU_REQUEST_VQ, le16, put16 } from './spec.js';
import { virtq_desc, virtq_used_elem } from './layouts.js';
import type { VirtioIommuDevice } from './device.js';

/** `virtq_desc.flags` bit: the chain continues at the descriptor in `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** `virtq_desc.flags` bit: the buffer is device-writable (otherwise device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** `virtq_desc.flags` bit: the buffer holds a table of descriptors; this device does not offer VIRTIO_F_INDIRECT_DESC and stops on it. */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Bytes of one `struct virtq_desc`: le64 `addr`, le32 `len`, le16 `flags`, le16 `next`. */
export const DESC_SIZE = 16;
/** Largest queue size of a split virtqueue. */
export const MAX_QUEUE_SIZE = 32768;
/** The device status bit a device sets when it stops on a malformed queue. */
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;

/** Guest-physical memory as the device reaches it. */
export interface GuestMemory {
  /** Reads `length` bytes at a guest-physical address. */
  readGuest(gpa: bigint, length: number): Uint8Array;
  /** Writes bytes at a guest-physical address. */
  writeGuest(gpa: bigint, bytes: Uint8Array): void;
}

/** Where a queue lives (queue_desc, queue_driver, queue_device) and its size. */
export interface VirtqueueLayout {
  /** Number of descriptors (`queue_size`): a power of two up to 32768. */
  size: number;
  /** Guest-physical address of the descriptor table (`queue_desc`, 16-byte aligned). */
  desc: bigint;
  /** Guest-physical address of the available ring (`queue_driver`, 2-byte aligned). */
  avail: bigint;
  /** Guest-physical address of the used ring (`queue_device`, 4-byte aligned). */
  used: bigint;
}

/** Bytes a queue of `size` entries takes: descriptors, available ring, used ring (aligned to 4). */
export function virtqueueBytes(size: number): {
  /** Bytes of the descriptor table (16 per entry). */
  desc: number;
  /** Bytes of the available ring: flags, idx, ring[size], used_event. */
  avail: number;
  /** Bytes of the used ring: flags, idx, ring[size] of 8-byte elements, avail_event. */
  used: number;
  /** Bytes of the whole queue laid out contiguously, the used ring aligned to 4. */
  total: number;
} {
  const desc = DESC_SIZE * size;
  const avail = 6 + 2 * size;
  const usedOff = Math.ceil((desc + avail) / 4) * 4;
  const used = 6 + 8 * size;
  return { desc, avail, used, total: usedOff + used };
}

/** A contiguous layout at `base` (16-byte aligned). */
export function layoutAt(base: bigint, size: number): VirtqueueLayout {
  const b = virtqueueBytes(size);
  return { size, desc: base, avail: base + BigInt(b.desc), used: base + BigInt(Math.ceil((b.desc + b.avail) / 4) * 4) };
}

/** A malformed virtqueue (bad layout, descriptor index past the table, a loop, a full queue): on the device side it sets DEVICE_NEEDS_RESET. */
export class VirtqueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VirtqueueError';
  }
}

function checkLayout(l: VirtqueueLayout): void {
  if (!Number.isInteger(l.size) || l.size < 1 || l.size > MAX_QUEUE_SIZE || (l.size & (l.size - 1)) !== 0) {
    throw new VirtqueueError(`queue size ${l.size}: expected a power of two up to ${MAX_QUEUE_SIZE}`);
  }
  if (l.desc % 16n !== 0n || l.avail % 2n !== 0n || l.used % 4n !== 0n) throw new VirtqueueError('queue addresses misaligned (desc 16, avail 2, used 4)');
}

/** A descriptor chain the device popped from the available ring. */
export interface Chain {
  /** Index of the chain's first descriptor: the `id` the device puts in the used ring. */
  head: number;
  /** The device-readable buffers, concatenated. */
  readable: Uint8Array;
  /** The device-writable buffers, in order. */
  writable: Array<{
    /** Guest-physical address of the buffer. */
    gpa: bigint;
    /** Bytes of the buffer. */
    len: number;
  }>;
}

/** Largest readable part the device copies out of one chain. */
const MAX_READABLE = 1 << 16;

/** The device's side of one split virtqueue. */
export class DeviceVirtqueue {
  private lastAvail = 0;

  constructor(
    private readonly mem: GuestMemory,
    /** Where the queue lives and its size. */
    readonly layout: VirtqueueLayout,
  ) {
    checkLayout(layout);
  }

  private availIdx(): number {
    return le16(this.mem.readGuest(this.layout.avail + 2n, 2), 0);
  }

  /** Whether the driver made a chain available that the device has not popped yet. */
  get hasAvailable(): boolean {
    return this.availIdx() !== this.lastAvail;
  }

  /**
   * The next chain the driver made available, or null. A malformed chain (an index past the table,
   * a loop, a readable buffer after a writable one, an indirect descriptor this device never
   * offered) throws VirtqueueError: the device then needs a reset.
   */
  pop(): Chain | null {
    const idx = this.availIdx();
    if (idx === this.lastAvail) return null;
    if (((idx - this.lastAvail) & 0xffff) > this.layout.size) throw new VirtqueueError(`available index moved by more than the queue size (${idx} after ${this.lastAvail})`);
    const slot = this.lastAvail % this.layout.size;
    const head = le16(this.mem.readGuest(this.layout.avail + 4n + BigInt(2 * slot), 2), 0);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    const readable: Uint8Array[] = [];
    let readableLen = 0;
    const writable: Array<{ gpa: bigint; len: number }> = [];
    let i = head;
    for (let n = 0; ; n++) {
      if (i >= this.layout.size) throw new VirtqueueError(`descriptor index ${i} is past the table (size ${this.layout.size})`);
      if (n >= this.layout.size) throw new VirtqueueError('descriptor chain loops');
      const { addr, len, flags, next } = virtq_desc.decode(this.mem.readGuest(this.layout.desc + BigInt(DESC_SIZE * i), DESC_SIZE));
      if (flags & VIRTQ_DESC_F_INDIRECT) throw new VirtqueueError('indirect descriptor without VIRTIO_F_INDIRECT_DESC');
      if (flags & VIRTQ_DESC_F_WRITE) writable.push({ gpa: addr, len });
      else {
        if (writable.length > 0) throw new VirtqueueError('a device-readable descriptor follows a device-writable one');
        readableLen += len;
        if (readableLen > MAX_READABLE) throw new VirtqueueError(`device-readable part larger than ${MAX_READABLE} bytes`);
        readable.push(this.mem.readGuest(addr, len));
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      i = next;
    }
    const out = new Uint8Array(readableLen);
    let off = 0;
    for (const r of readable) {
      out.set(r, off);
      off += r.length;
    }
    return { head, readable: out, writable };
  }

  /** Writes `bytes` across the chain's writable buffers; returns the count written. */
  fill(chain: Chain, bytes: Uint8Array): number {
    let off = 0;
    for (const w of chain.writable) {
      if (off >= bytes.length) break;
      const n = Math.min(w.len, bytes.length - off);
      this.mem.writeGuest(w.gpa, bytes.subarray(off, off + n));
      off += n;
    }
    return off;
  }

  /** Returns the chain to the driver with the used length (bytes written). */
  push(head: number, len: number): void {
    const usedIdx = le16(this.mem.readGuest(this.layout.used + 2n, 2), 0);
    const entry = virtq_used_elem.encode({ id: head, len });
    this.mem.writeGuest(this.layout.used + 4n + BigInt(8 * (usedIdx % this.layout.size)), entry);
    const idx = new Uint8Array(2);
    put16(idx, 0, (usedIdx + 1) & 0xffff);
    this.mem.writeGuest(this.layout.used + 2n, idx);
  }
}

/** The device side of the virtio-iommu queues: request queue 0, event queue 1. */
export class VirtioIommuTransport {
  private readonly queues: Array<DeviceVirtqueue | null> = [null, null];
  /** Set when the device met a malformed queue (DEVICE_NEEDS_RESET); it processes nothing more. */
  needsReset = false;
  /** Why the device needs a reset. */
  error: string | null = null;
  /** Requests completed. */
  completed = 0;

  constructor(
    /** The device the request queue's chains go to and whose fault records fill the event queue. */
    readonly device: VirtioIommuDevice,
    private readonly mem: GuestMemory,
  ) {
    device.eventSink = (record) => this.deliverEvent(record);
  }

  /** Programs a queue's addresses and size (the transport's queue registers). */
  setQueue(index: number, layout: VirtqueueLayout): void {
    if (index !== VIOMMU_REQUEST_VQ && index !== VIOMMU_EVENT_VQ) throw new VirtqueueError(`virtio-iommu has queues 0 and 1, not ${index}`);
    this.queues[index] = new DeviceVirtqueue(this.mem, layout);
  }

  /** The driver's notification: processes the request queue, or retries pending events. */
  notify(index: number): number {
    if (this.needsReset) return 0;
    if (index === VIOMMU_EVENT_VQ) {
      this.device.flushEvents();
      return 0;
    }
    const q = this.queues[VIOMMU_REQUEST_VQ];
    if (index !== VIOMMU_REQUEST_VQ || !q) return 0;
    let done = 0;
    try {
      // At most one pass over the ring per notify: a driver that keeps adding cannot hang it.
      for (let n = 0; n < q.layout.size; n++) {
        const chain = q.pop();
        if (!chain) break;
        const inLen = chain.writable.reduce((s, w) => s + w.len, 0);
        const answer = inLen >= TAIL_SIZE ? this.device.request(chain.readable, inLen) : new Uint8Array(0);
        q.push(chain.head, q.fill(chain, answer));
        done++;
      }
    } catch (e) {
      if (!(e instanceof VirtqueueError || e instanceof RangeError)) throw e;
      this.needsReset = true;
      this.error = e.message;
    }
    this.completed += done;
    return done;
  }

  private deliverEvent(record: Uint8Array): boolean {
    const q = this.queues[VIOMMU_EVENT_VQ];
    if (!q || this.needsReset) return false;
    try {
      const chain = q.pop();
      if (!chain) return false;
      q.push(chain.head, q.fill(chain, record));
      return true;
    } catch (e) {
      if (!(e instanceof VirtqueueError || e instanceof RangeError)) throw e;
      this.needsReset = true;
      this.error = e.message;
      return false;
    }
  }
}

/** A completed buffer as the driver collects it from the used ring. */
export interface UsedBuffer {
  /** Head descriptor index of the chain, as `add` returned it. */
  id: number;
  /** Used length: bytes the device wrote. */
  len: number;
  /** What the device wrote (the first `len` bytes of the writable buffers). */
  data: Uint8Array;
}

/**
 * The driver's side of a split virtqueue: one descriptor chain per buffer pair, the data in a bump
 * area of guest memory reclaimed when every buffer is back.
 */
export class VirtqueueDriver {
  private freeHead = 0;
  private freeCount: number;
  private availIdx = 0;
  private lastUsed = 0;
  private dataNext: bigint;
  private readonly inflight = new Map<number, { count: number; inGpa: bigint; inLen: number }>();

  constructor(
    private readonly mem: GuestMemory,
    /** Where the queue lives and its size. */
    readonly layout: VirtqueueLayout,
    private readonly data: { gpa: bigint; size: bigint },
  ) {
    checkLayout(layout);
    const b = virtqueueBytes(layout.size);
    mem.writeGuest(layout.desc, new Uint8Array(b.desc));
    mem.writeGuest(layout.avail, new Uint8Array(b.avail));
    mem.writeGuest(layout.used, new Uint8Array(b.used));
    // The free list threads the descriptors through their next fields.
    for (let i = 0; i < layout.size; i++) this.writeDesc(i, 0n, 0, 0, (i + 1) % layout.size);
    this.freeCount = layout.size;
    this.dataNext = data.gpa;
  }

  private writeDesc(i: number, addr: bigint, len: number, flags: number, next: number): void {
    this.mem.writeGuest(this.layout.desc + BigInt(DESC_SIZE * i), virtq_desc.encode({ addr, len, flags, next }));
  }

  private allocData(n: number): bigint {
    const gpa = this.dataNext;
    const aligned = BigInt(Math.ceil(n / 8) * 8);
    if (gpa + aligned > this.data.gpa + this.data.size) throw new VirtqueueError('driver data area full: collect used buffers first');
    this.dataNext += aligned;
    return gpa;
  }

  /** Adds one request: `out` device-readable, `inLen` bytes device-writable (either may be empty). Returns the head id. */
  add(out: Uint8Array, inLen: number): number {
    const count = (out.length > 0 ? 1 : 0) + (inLen > 0 ? 1 : 0);
    if (count === 0) throw new VirtqueueError('a buffer needs at least one descriptor');
    if (this.freeCount < count) throw new VirtqueueError('queue full');
    const head = this.freeHead;
    let i = head;
    let inGpa = 0n;
    const parts: Array<{ gpa: bigint; len: number; write: boolean }> = [];
    if (out.length > 0) {
      const gpa = this.allocData(out.length);
      this.mem.writeGuest(gpa, out);
      parts.push({ gpa, len: out.length, write: false });
    }
    if (inLen > 0) {
      inGpa = this.allocData(inLen);
      this.mem.writeGuest(inGpa, new Uint8Array(inLen));
      parts.push({ gpa: inGpa, len: inLen, write: true });
    }
    for (let k = 0; k < parts.length; k++) {
      const nextFree = le16(this.mem.readGuest(this.layout.desc + BigInt(DESC_SIZE * i + 14), 2), 0);
      const last = k === parts.length - 1;
      this.writeDesc(i, parts[k].gpa, parts[k].len, (parts[k].write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : nextFree);
      if (last) this.freeHead = nextFree;
      else i = nextFree;
    }
    this.freeCount -= count;
    this.inflight.set(head, { count, inGpa, inLen });
    const slot = new Uint8Array(2);
    put16(slot, 0, head);
    this.mem.writeGuest(this.layout.avail + 4n + BigInt(2 * (this.availIdx % this.layout.size)), slot);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    put16(slot, 0, this.availIdx);
    this.mem.writeGuest(this.layout.avail + 2n, slot);
    return head;
  }

  /** Collects the buffers the device returned since the last call. */
  collect(): UsedBuffer[] {
    const out: UsedBuffer[] = [];
    const usedIdx = le16(this.mem.readGuest(this.layout.used + 2n, 2), 0);
    while (this.lastUsed !== usedIdx) {
      const { id, len } = virtq_used_elem.decode(this.mem.readGuest(this.layout.used + 4n + BigInt(8 * (this.lastUsed % this.layout.size)), 8));
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      const f = this.inflight.get(id);
      if (!f) continue;
      this.inflight.delete(id);
      out.push({ id, len, data: len > 0 && f.inLen > 0 ? this.mem.readGuest(f.inGpa, Math.min(len, f.inLen)) : new Uint8Array(0) });
      // Return the chain to the free list.
      let last = id;
      for (let k = 1; k < f.count; k++) last = le16(this.mem.readGuest(this.layout.desc + BigInt(DESC_SIZE * last + 14), 2), 0);
      this.writeDesc(last, 0n, 0, 0, this.freeHead);
      this.freeHead = id;
      this.freeCount += f.count;
    }
    if (this.inflight.size === 0) this.dataNext = this.data.gpa;
    return out;
  }

  /** Buffers added and not yet collected. */
  get pending(): number {
    return this.inflight.size;
  }
}
