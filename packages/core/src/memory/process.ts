/**
 * The simulated user process: its address space (what `user_va`, `data_uptr` and bitmap pointers in
 * uAPI structs point into) and its file table (the fds that IOMMU_FAULT_QUEUE_ALLOC and
 * IOMMU_VEVENTQ_ALLOC return). Memory is faulted in on first touch, like anonymous memory.
 */
import { NO_FAULT_INJECTION, type FaultInjector } from '../driver/inject.js';
import { Errno, IommufdError, type ErrnoCode } from '../uapi/errno.js';
import { PAGE_SHIFT, PAGE_SIZE, FrameRuns, type FrameAllocator, type PhysicalMemory } from './physical.js';

/** Object pages per block of a MemoryObject's page index. */
const BLOCK = 512;

/**
 * A block whose faulted-in pages are offsets [lo, hi), page `o` at frame `base + o`: what faulting a
 * block in order from a fresh allocator produces, one small record instead of 512 frame numbers.
 */
class RunBlock {
  constructor(
    public base: number,
    public lo: number,
    public hi: number,
  ) {}
}

/** A block of the page index: nothing faulted in, one run, or one frame per page (0: not faulted in). */
type Block = RunBlock | Float64Array | undefined;

/**
 * Pages of memory behind a VMA or a memfd. The page index is kept in blocks of 512 pages, each
 * either empty, a single run of frames (the usual case: memory faulted in order takes consecutive
 * frames) or one frame per page, so that resolving memory costs far less than 8 bytes per page of
 * bookkeeping. A huge-page object (hugetlbfs-like, `hugePages` > 1) faults in one physically
 * contiguous, naturally aligned run of `hugePages` frames at a time and keeps one entry per huge page.
 */
export class MemoryObject {
  private blocks: Block[];
  /** First frame of each huge page (huge-page objects only), 0 while not faulted in. */
  private hugeBases: Float64Array;
  private npages: number;
  constructor(
    pages: number,
    /** Anonymous memory (mmap MAP_ANONYMOUS) or the pages of a memfd. */
    readonly kind: 'anon' | 'memfd',
    /** 4 KiB pages per page of this object: 1, 512 (2 MiB) or 262144 (1 GiB). */
    readonly hugePages = 1,
  ) {
    this.npages = pages;
    this.blocks = hugePages === 1 ? new Array<Block>(Math.ceil(pages / BLOCK)).fill(undefined) : [];
    this.hugeBases = new Float64Array(hugePages === 1 ? 0 : Math.ceil(pages / hugePages));
  }

  /** Size of the object in 4 KiB pages. */
  get pages(): number {
    return this.npages;
  }

  /** The frame behind page `index`, faulting it in when `alloc`; -1 when memory is exhausted. */
  frame(index: number, frames: FrameAllocator, alloc: boolean): number {
    if (this.hugePages !== 1) return this.hugeFrame(index, frames, alloc);
    const b = Math.floor(index / BLOCK);
    const off = index - b * BLOCK;
    const pfn = blockFrame(this.blocks[b], off);
    if (pfn !== 0 || !alloc) return pfn;
    const got = frames.alloc();
    if (got < 0) return -1;
    this.setRun(b, off, got, 1);
    return got;
  }

  /**
   * Faults in pages [first, first + n) and appends their frames to `out` as runs; pages not faulted in
   * yet take consecutive frames where the allocator has them (FrameAllocator.allocContiguous). False
   * when memory ran out (the pages faulted in before stay, as after a partial fault-in).
   */
  faultRuns(first: number, n: number, frames: FrameAllocator, out: FrameRuns): boolean {
    const end = first + n;
    if (this.hugePages !== 1) {
      const h = this.hugePages;
      let i = first;
      while (i < end) {
        const k = Math.min(end - i, (Math.floor(i / h) + 1) * h - i);
        const pfn = this.hugeFrame(i, frames, true);
        if (pfn < 0) return false;
        out.push(pfn, k);
        i += k;
      }
      return true;
    }
    let i = first;
    while (i < end) {
      const b = Math.floor(i / BLOCK);
      const off = i - b * BLOCK;
      const stop = Math.min(end, (b + 1) * BLOCK) - b * BLOCK;
      const blk = this.blocks[b];
      if (blk instanceof RunBlock && off >= blk.lo && off < blk.hi) {
        const k = Math.min(stop, blk.hi) - off;
        out.push(blk.base + off, k);
        i += k;
        continue;
      }
      const pfn = blockFrame(blk, off);
      if (pfn !== 0) {
        out.push(pfn, 1);
        i++;
        continue;
      }
      // Not faulted in: the stretch up to the next faulted page (or the end of the block or range).
      let k = 1;
      if (blk === undefined) k = stop - off;
      else if (blk instanceof RunBlock) k = (blk.lo > off ? Math.min(stop, blk.lo) : stop) - off;
      else while (off + k < stop && blk[off + k] === 0) k++;
      const got = frames.allocContiguous(k);
      if (got < 0) return false;
      const c = frames.lastCount;
      this.setRun(b, off, got, c);
      out.push(got, c);
      i += c;
    }
    return true;
  }

  /** Records pages [off, off + c) of block `b` at frames [pfn, pfn + c). */
  private setRun(b: number, off: number, pfn: number, c: number): void {
    const blk = this.blocks[b];
    if (blk === undefined) {
      this.blocks[b] = new RunBlock(pfn - off, off, off + c);
      return;
    }
    if (blk instanceof RunBlock) {
      if (pfn - off === blk.base && (off === blk.hi || off + c === blk.lo)) {
        if (off === blk.hi) blk.hi += c;
        else blk.lo = off;
        return;
      }
      const dense = new Float64Array(BLOCK);
      for (let o = blk.lo; o < blk.hi; o++) dense[o] = blk.base + o;
      this.blocks[b] = dense;
      for (let j = 0; j < c; j++) dense[off + j] = pfn + j;
      return;
    }
    for (let j = 0; j < c; j++) blk[off + j] = pfn + j;
  }

  private hugeFrame(index: number, frames: FrameAllocator, alloc: boolean): number {
    const h = Math.floor(index / this.hugePages);
    let base = this.hugeBases[h];
    if (base === 0) {
      if (!alloc) return 0;
      base = frames.allocRun(this.hugePages);
      if (base < 0) return -1;
      this.hugeBases[h] = base;
    }
    return base + (index - h * this.hugePages);
  }

  /**
   * When the block of page `index` is one run of frames, sets `out` to [first, end, frame of first]
   * (object pages [first, end) at consecutive frames) and returns true.
   * @internal
   */
  runAround(index: number, out: Float64Array): boolean {
    if (this.hugePages !== 1) return false;
    const b = Math.floor(index / BLOCK);
    const blk = this.blocks[b];
    if (!(blk instanceof RunBlock)) return false;
    out[0] = b * BLOCK + blk.lo;
    out[1] = b * BLOCK + blk.hi;
    out[2] = blk.base + blk.lo;
    return true;
  }

  /** Grows or shrinks the object to `pages` 4 KiB pages (ftruncate of a memfd); pages cut off are forgotten. */
  resize(pages: number): void {
    if (this.hugePages !== 1) {
      const next = new Float64Array(Math.ceil(pages / this.hugePages));
      next.set(this.hugeBases.subarray(0, Math.min(next.length, this.hugeBases.length)));
      this.hugeBases = next;
    } else {
      const nb = Math.ceil(pages / BLOCK);
      const old = this.blocks;
      this.blocks = new Array<Block>(nb).fill(undefined);
      for (let b = 0; b < Math.min(nb, old.length); b++) this.blocks[b] = old[b];
      // Pages past the new end of a partial last block are gone.
      const tail = pages - (nb - 1) * BLOCK;
      const last = nb > 0 ? this.blocks[nb - 1] : undefined;
      if (pages < this.npages && last !== undefined && tail < BLOCK) {
        if (last instanceof RunBlock) {
          if (last.lo >= tail) this.blocks[nb - 1] = undefined;
          else this.blocks[nb - 1] = new RunBlock(last.base, last.lo, Math.min(last.hi, tail));
        } else {
          const copy = last.slice();
          copy.fill(0, tail);
          this.blocks[nb - 1] = copy;
        }
      }
    }
    this.npages = pages;
  }
}

/** Scratch for HostProcess.rememberRun. */
const runScratch = new Float64Array(3);

function blockFrame(blk: Block, off: number): number {
  if (blk === undefined) return 0;
  if (blk instanceof RunBlock) return off >= blk.lo && off < blk.hi ? blk.base + off : 0;
  return blk[off];
}

/** Sizes `mmap` accepts for `hugePageSize` (MAP_HUGETLB with MAP_HUGE_2MB / MAP_HUGE_1GB). */
export const HUGE_PAGE_SIZES: readonly number[] = [2 << 20, 1 << 30];

/** mmap's PROT_READ: the process may read the mapping. */
export const PROT_READ = 1;
/** mmap's PROT_WRITE: the process may write the mapping (needed for a writeable pin). */
export const PROT_WRITE = 2;

interface Vma {
  /** First page number of the mapping. */
  startPage: number;
  pages: number;
  prot: number;
  object: MemoryObject;
  /** Page offset into `object`. */
  objectPage: number;
  /** MAP_SHARED (or a memfd): a fork shares the memory instead of copying it. */
  shared?: boolean;
}

/** What an fd in the process's file table refers to. */
export interface FileOps {
  /** What the file is, for messages: 'iommufd', 'memfd', 'fault', 'veventq', ... */
  readonly kind: string;
  /** read(2): up to `length` bytes; absent when the file is not readable (EINVAL). */
  read?(length: number): Uint8Array;
  /** read(2) into the caller's buffer: up to `out.length` bytes, returns the count (optional: read() is used without it). */
  readInto?(out: Uint8Array): number;
  /** write(2): returns the bytes consumed; absent when the file is not writable (EINVAL). */
  write?(bytes: Uint8Array): number;
  /** POLLIN / POLLOUT style readiness bits. */
  poll?(): number;
  /** Last close of the fd. */
  release(): void;
}

/** poll(2) POLLIN: there is data to read. */
export const POLLIN = 0x001;
/** poll(2) POLLOUT: writing would not block. */
export const POLLOUT = 0x004;
/** poll(2) POLLRDNORM: normal data to read (fault and vEVENTQ fds set it with POLLIN). */
export const POLLRDNORM = 0x040;

/** An open memfd (memfd_create): a file over a MemoryObject that IOAS_MAP_FILE can map. */
export class MemFile implements FileOps {
  /** Always 'memfd'. */
  readonly kind = 'memfd';
  /** The file offset read and write use and advance, in bytes. */
  position = 0;
  constructor(
    /** The pages behind the file. */
    readonly object: MemoryObject,
    private readonly proc: HostProcess,
    /** File size in bytes (ftruncate). */
    public size: number,
  ) {}
  /** Reads up to `length` bytes from `position`, stopping at `size`. */
  read(length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - this.position));
    const out = new Uint8Array(n);
    this.proc.copyObject(this.object, this.position, out, false);
    this.position += n;
    return out;
  }
  /**
   * Writes at `position`, growing the file when the write ends past `size`. A hugetlbfs memfd
   * (MFD_HUGETLB) has no write op: EINVAL, as write(2) on hugetlbfs answers.
   */
  write(bytes: Uint8Array): number {
    if (this.object.hugePages !== 1) throw new IommufdError('EINVAL', 'write', 'a hugetlbfs file cannot be written: map it');
    const end = this.position + bytes.length;
    if (end > this.size) {
      checkObjectPages(Math.ceil(end / PAGE_SIZE), 'write');
      this.proc.truncate(this, end);
    }
    this.proc.copyObject(this.object, this.position, bytes, true);
    this.position = end;
    return bytes.length;
  }
  release(): void {}
}

const MMAP_BASE_PAGE = 0x7f00_0000_0000 / PAGE_SIZE;
/** TASK_SIZE of x86-64 with 4-level paging: mappings end below it (get_unmapped_area gives ENOMEM). */
const TASK_SIZE_PAGE = 0x7fff_ffff_f000 / PAGE_SIZE;
/**
 * The most 4 KiB pages one memory object (anonymous mapping or memfd) may have: its page index is a
 * dense array, so a larger one would take gigabytes of the simulator's own memory. 64 GiB.
 */
export const MAX_OBJECT_PAGES = 2 ** 24;

function checkObjectPages(pages: number, command: string): void {
  if (pages > MAX_OBJECT_PAGES) throw new IommufdError('ENOMEM', command, `the model backs at most ${MAX_OBJECT_PAGES * (PAGE_SIZE / 2 ** 20) / 1024} GiB of 4 KiB pages in one object`);
}

/**
 * The user process that calls into iommufd: its address space (mmap, munmap, fork), the memory user
 * pointers point into (copy_from_user / copy_to_user), its file table (the iommufd, memfds, fault and
 * vEVENTQ fds) and the pinned-page accounting against RLIMIT_MEMLOCK.
 */
export class HostProcess {
  /** Process id (1000 unless given; each fork gets a new one). */
  readonly pid: number;
  /** RLIMIT_MEMLOCK in bytes; Infinity as for a VMM started with `ulimit -l unlimited`. */
  rlimitMemlock = Number.POSITIVE_INFINITY;
  /** CAP_SYS_RESOURCE, needed to change IOMMU_OPTION_RLIMIT_MODE. */
  capSysResource = true;
  /** CAP_SYS_RAWIO, needed for VFIO_SET_IOMMU of VFIO_NOIOMMU_IOMMU. */
  capSysRawio = true;
  /** Asked before every pin (see driver/inject.ts); the host keeps it in step with its own. */
  injector: FaultInjector = NO_FAULT_INJECTION;
  /** Pages currently pinned and charged to this process / user. */
  lockedPages = 0;
  private readonly vmas: Vma[] = [];
  private nextMmapPage = MMAP_BASE_PAGE;
  private readonly files = new Map<number, { ops: FileOps; refs: number }>();
  /**
   * The open files again, indexed by fd (fds are the lowest free from 3, so the array stays dense): what
   * read, write and poll look an fd up in, an array load instead of a Map lookup on every call.
   */
  private readonly opsByFd: (FileOps | undefined)[] = [];

  constructor(
    private readonly mem: PhysicalMemory,
    private readonly frames: FrameAllocator,
    pid = 1000,
  ) {
    this.pid = pid;
  }

  // --- address space ---------------------------------------------------------------------------

  /**
   * mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_ANONYMOUS|MAP_PRIVATE) or of a memfd. With
   * `hugePageSize` (anonymous only), MAP_HUGETLB: the length is rounded up to the huge page
   * (`ksys_mmap_pgoff`), the address is aligned to it and each huge page is one contiguous, aligned run
   * of frames.
   */
  mmap(length: number | bigint, opts: { prot?: number; fd?: number; offset?: number | bigint; hugePageSize?: number; shared?: boolean } = {}): bigint {
    const len = Number(length);
    if (!(len > 0) || !Number.isSafeInteger(len)) throw new IommufdError('EINVAL', 'mmap', 'length must be a positive integer');
    const pages = Math.ceil(len / PAGE_SIZE);
    // get_unmapped_area: no room below TASK_SIZE is ENOMEM.
    if (this.nextMmapPage + pages > TASK_SIZE_PAGE) throw new IommufdError('ENOMEM', 'mmap', 'no room left in the address space');
    if (opts.hugePageSize !== undefined) {
      if (opts.fd !== undefined || !HUGE_PAGE_SIZES.includes(opts.hugePageSize)) throw new IommufdError('EINVAL', 'mmap', 'MAP_HUGETLB takes an anonymous mapping of 2 MiB or 1 GiB pages');
      const huge = opts.hugePageSize / PAGE_SIZE;
      const hugeLen = Math.ceil(pages / huge) * huge;
      const startPage = Math.ceil(this.nextMmapPage / huge) * huge;
      this.nextMmapPage = startPage + hugeLen + 1;
      this.vmas.push({ startPage, pages: hugeLen, prot: opts.prot ?? PROT_READ | PROT_WRITE, object: new MemoryObject(hugeLen, 'anon', huge), objectPage: 0 });
      return BigInt(startPage) << BigInt(PAGE_SHIFT);
    }
    let object: MemoryObject;
    let objectPage = 0;
    if (opts.fd !== undefined) {
      const f = this.files.get(opts.fd)?.ops;
      if (!f) throw new IommufdError('EBADF', 'mmap');
      if (!(f instanceof MemFile)) throw new IommufdError('ENODEV', 'mmap', 'only memfds can be mapped');
      const off = Number(opts.offset ?? 0);
      if (off % PAGE_SIZE !== 0) throw new IommufdError('EINVAL', 'mmap', 'offset not page aligned');
      object = f.object;
      objectPage = off / PAGE_SIZE;
      if (object.hugePages !== 1) return this.mmapHugeFile(f, pages, objectPage, opts.prot);
      checkObjectPages(objectPage + pages, 'mmap');
      if (objectPage + pages > object.pages) object.resize(objectPage + pages);
    } else {
      checkObjectPages(pages, 'mmap');
      object = new MemoryObject(pages, 'anon');
    }
    const startPage = this.nextMmapPage;
    // One guard page between mappings so an off-by-one overrun faults.
    this.nextMmapPage += pages + 1;
    this.vmas.push({ startPage, pages, prot: opts.prot ?? PROT_READ | PROT_WRITE, object, objectPage, shared: opts.shared === true || opts.fd !== undefined });
    return BigInt(startPage) << BigInt(PAGE_SHIFT);
  }

  /**
   * mmap of a hugetlbfs memfd (MFD_HUGETLB): the offset must be a multiple of the huge page
   * (hugetlb_file_mmap_prepare: EINVAL), the length is rounded up to it and the address aligned to it;
   * a writable mapping past the end of the file grows it (hugetlbfs_file_mmap).
   */
  private mmapHugeFile(f: MemFile, pages: number, objectPage: number, prot: number | undefined): bigint {
    const huge = f.object.hugePages;
    if (objectPage % huge !== 0) throw new IommufdError('EINVAL', 'mmap', 'the offset into a hugetlbfs file must be a multiple of its huge page size');
    const hugeLen = Math.ceil(pages / huge) * huge;
    checkObjectPages(objectPage + hugeLen, 'mmap');
    const startPage = Math.ceil(this.nextMmapPage / huge) * huge;
    if (startPage + hugeLen > TASK_SIZE_PAGE) throw new IommufdError('ENOMEM', 'mmap', 'no room left in the address space');
    this.nextMmapPage = startPage + hugeLen + 1;
    const p = prot ?? PROT_READ | PROT_WRITE;
    if (objectPage + hugeLen > f.object.pages) {
      if (p & PROT_WRITE) this.truncate(f, (objectPage + hugeLen) * PAGE_SIZE);
      else f.object.resize(objectPage + hugeLen);
    }
    this.vmas.push({ startPage, pages: hugeLen, prot: p, object: f.object, objectPage, shared: true });
    return BigInt(startPage) << BigInt(PAGE_SHIFT);
  }

  /** The process has exited: its address space is gone (a later pin of its memory faults). */
  get exited(): boolean {
    return this.dead;
  }
  private dead = false;
  private static nextPid = 2000;

  /**
   * fork(): a child with a copy of the address space and the same open files. Private anonymous
   * memory is copied (eagerly: the model has no copy-on-write); shared mappings, memfds and huge
   * pages (MAP_SHARED | MAP_HUGETLB, as the kernel selftest maps them) are the same memory in both.
   * Pins taken before the fork stay on the parent's frames.
   */
  fork(): HostProcess {
    const child = new HostProcess(this.mem, this.frames, HostProcess.nextPid++);
    child.rlimitMemlock = this.rlimitMemlock;
    child.capSysResource = this.capSysResource;
    child.capSysRawio = this.capSysRawio;
    child.nextMmapPage = this.nextMmapPage;
    const copies = new Map<MemoryObject, MemoryObject>();
    for (const v of this.vmas) {
      let object = v.object;
      if (!v.shared && object.kind === 'anon' && object.hugePages === 1) {
        let copy = copies.get(object);
        if (!copy) {
          copy = new MemoryObject(object.pages, 'anon');
          const page = new Uint8Array(PAGE_SIZE);
          for (let i = 0; i < object.pages; i++) {
            const src = object.frame(i, this.frames, false);
            if (src === 0) continue;
            const dst = copy.frame(i, this.frames, true);
            if (dst < 0) throw new IommufdError('ENOMEM', 'fork', 'out of physical memory');
            this.mem.read(src * PAGE_SIZE, page);
            this.mem.write(dst * PAGE_SIZE, page);
          }
          copies.set(object, copy);
        }
        object = copy;
      }
      child.vmas.push({ ...v, object });
    }
    for (const [fd, e] of this.files) {
      e.refs++;
      child.files.set(fd, e);
      child.setOps(fd, e.ops);
    }
    return child;
  }

  /** exit(): closes every fd and drops the address space. */
  exit(): void {
    for (const fd of [...this.files.keys()]) this.close(fd);
    this.vmas.length = 0;
    this.forgetRun();
    this.dead = true;
  }

  /** munmap: removes whole pages of the range from the address space; pins taken earlier stay. */
  munmap(va: bigint, length: number | bigint): void {
    if (va % BigInt(PAGE_SIZE) !== 0n) throw new IommufdError('EINVAL', 'munmap', 'address not page aligned');
    const first = Number(va >> BigInt(PAGE_SHIFT));
    const end = first + Math.ceil(Number(length) / PAGE_SIZE);
    this.forgetRun();
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i];
      const vEnd = v.startPage + v.pages;
      if (vEnd <= first || v.startPage >= end) continue;
      this.vmas.splice(i, 1);
      if (v.startPage < first) this.vmas.push({ ...v, pages: first - v.startPage });
      if (vEnd > end) this.vmas.push({ ...v, startPage: end, pages: vEnd - end, objectPage: v.objectPage + (end - v.startPage) });
    }
    this.vmas.sort((a, b) => a.startPage - b.startPage);
  }

  private vmaAt(page: number): Vma | undefined {
    for (const v of this.vmas) if (page >= v.startPage && page < v.startPage + v.pages) return v;
    return undefined;
  }

  /**
   * Resolves user pages [page, page+npages) to physical frames, faulting them in. `write` requires
   * PROT_WRITE (EPERM otherwise, as pin_user_pages on a read-only mapping). EFAULT for a hole.
   */
  resolvePages(page: number, npages: number, write: boolean, out: Float64Array, outOffset = 0): void {
    const runs = new FrameRuns();
    this.resolveRuns(page, npages, write, runs);
    let at = outOffset;
    for (let r = 0; r < runs.length; r++) {
      const first = runs.first[r];
      for (let j = 0; j < runs.count[r]; j++) out[at++] = first + j;
    }
  }

  /**
   * resolveRuns of one page: its frame, faulted in (the same frame resolveRuns would give, with the
   * same errors), without a run list.
   * @internal
   */
  resolvePage(page: number, write: boolean): number {
    // `=== true` / `=== false`: a truthiness test checks every kind of value in compiled code. The
    // lookup is a call of its own, so that this part is taken into the caller (a fault handler's map).
    if (page >= this.runStart && page < this.runEnd && (this.runWrite === true || write === false)) return this.runBase + page;
    return this.resolvePageLookup(page, write);
  }

  /** resolvePage of a page outside the remembered run: the VMA, the fault, the run remembered. */
  private resolvePageLookup(page: number, write: boolean): number {
    const v = this.vmaAt(page);
    if (!v) throw new Errno('EFAULT', `user address 0x${(page * PAGE_SIZE).toString(16)} is not mapped`);
    if (write && !(v.prot & PROT_WRITE)) throw new Errno('EPERM', 'mapping is not writable');
    const index = v.objectPage + (page - v.startPage);
    const pfn = v.object.frame(index, this.frames, true);
    if (pfn < 0) throw new Errno('ENOMEM', 'out of physical memory');
    if (v.shared !== true && v.object.kind === 'anon') this.rememberRun(v, page, index);
    return pfn;
  }

  /**
   * The run resolvePage answers without a lookup: user pages [runStart, runEnd), faulted in at frames
   * `runBase + page`, inside one private anonymous mapping (writable when runWrite). A pin of a page
   * otherwise loads the VMA list, the VMA, its memory object, the object's block list and the block,
   * one after the other: a chain of cache misses when the pin runs between other work (a fault
   * handler's IOAS_MAP). The frames of private anonymous memory never change while it is mapped (such
   * an object is never resized and nothing faults a page out), so munmap and exit alone forget the run.
   */
  private runStart = 0;
  private runEnd = 0;
  private runBase = 0;
  private runWrite = false;

  /** Remembers the faulted-in run of frames around user page `page` (object page `index`) of private anonymous `v`. */
  private rememberRun(v: Vma, page: number, index: number): void {
    const r = runScratch;
    if (!v.object.runAround(index, r)) return;
    // Object page i is user page i + delta; the run is clipped to the VMA.
    const delta = page - index;
    this.runStart = Math.max(r[0] + delta, v.startPage);
    this.runEnd = Math.min(r[1] + delta, v.startPage + v.pages);
    this.runBase = r[2] - (r[0] + delta);
    this.runWrite = (v.prot & PROT_WRITE) !== 0;
  }

  /** Forgets the run resolvePage remembers (the address space changed). */
  private forgetRun(): void {
    this.runStart = 0;
    this.runEnd = 0;
  }

  /**
   * resolvePages that appends the frames to `out` as runs of contiguous frames (what pinning uses:
   * no per-page array). Pages resolved before an error stay faulted in.
   */
  resolveRuns(page: number, npages: number, write: boolean, out: FrameRuns): void {
    let done = 0;
    while (done < npages) {
      const v = this.vmaAt(page + done);
      if (!v) throw new Errno('EFAULT', `user address 0x${((page + done) * PAGE_SIZE).toString(16)} is not mapped`);
      if (write && !(v.prot & PROT_WRITE)) throw new Errno('EPERM', 'mapping is not writable');
      const inVma = Math.min(npages - done, v.startPage + v.pages - (page + done));
      if (!v.object.faultRuns(v.objectPage + (page + done - v.startPage), inVma, this.frames, out)) throw new Errno('ENOMEM', 'out of physical memory');
      done += inVma;
    }
  }

  /**
   * Checks that user pages [page, page + npages) are mapped (EFAULT) and, for `write`, writable
   * (EPERM), in the order resolvePages would fail, without faulting anything in or allocating: lets
   * callers refuse a huge bogus range before sizing buffers by it.
   */
  checkPages(page: number, npages: number, write: boolean): void {
    let done = 0;
    while (done < npages) {
      const v = this.vmaAt(page + done);
      if (!v) throw new Errno('EFAULT', `user address 0x${((page + done) * PAGE_SIZE).toString(16)} is not mapped`);
      if (write && !(v.prot & PROT_WRITE)) throw new Errno('EPERM', 'mapping is not writable');
      done += Math.min(npages - done, v.startPage + v.pages - (page + done));
    }
  }

  /** How many bytes from `va` (at most `max`) can be read without a fault. */
  readableBytes(va: bigint, max: number): number {
    if (max <= 0 || va <= 0n || va >= 1n << 57n) return 0;
    const start = Number(va);
    let page = Math.floor(start / PAGE_SIZE);
    let end = start;
    while (end - start < max) {
      const v = this.vmaAt(page);
      if (!v) break;
      page = v.startPage + v.pages;
      end = page * PAGE_SIZE;
    }
    return Math.min(max, end - start);
  }

  /** Checks that access() of `length` bytes at `va` cannot fault, without copying or allocating. */
  checkAccess(va: bigint, length: number, write: boolean): void {
    if (length <= 0) return;
    if (va < 0n || va + BigInt(length) > 1n << 57n) throw new Errno('EFAULT', 'bad user address');
    const first = Number(va / BigInt(PAGE_SIZE));
    const last = Number((va + BigInt(length) - 1n) / BigInt(PAGE_SIZE));
    let page = first;
    while (page <= last) {
      const v = this.vmaAt(page);
      if (!v) throw new Errno('EFAULT', `user address 0x${(page * PAGE_SIZE).toString(16)} is not mapped`);
      if (write && !(v.prot & PROT_WRITE)) throw new Errno('EFAULT', 'write to a read-only mapping');
      page = v.startPage + v.pages;
    }
  }

  /** Copies between user memory and `buf`; throws Errno EFAULT on a hole. */
  access(va: bigint, buf: Uint8Array, write: boolean): void {
    if (va < 0n || va + BigInt(buf.length) > 1n << 57n) throw new Errno('EFAULT', 'bad user address');
    let done = 0;
    const base = Number(va);
    while (done < buf.length) {
      const addr = base + done;
      const page = Math.floor(addr / PAGE_SIZE);
      const off = addr - page * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, buf.length - done);
      const v = this.vmaAt(page);
      if (!v) throw new Errno('EFAULT', `user address 0x${addr.toString(16)} is not mapped`);
      if (write && !(v.prot & PROT_WRITE)) throw new Errno('EFAULT', 'write to a read-only mapping');
      const pfn = v.object.frame(v.objectPage + page - v.startPage, this.frames, true);
      if (pfn < 0) throw new Errno('ENOMEM', 'out of physical memory');
      if (write) this.mem.write(pfn * PAGE_SIZE + off, buf, done, n);
      else this.mem.read(pfn * PAGE_SIZE + off, buf, done, n);
      done += n;
    }
  }

  /** copy_from_user. */
  copyFromUser(va: bigint, length: number): Uint8Array {
    // A bogus length must fault (EFAULT) rather than size a buffer larger than the mapping.
    if (length > PAGE_SIZE) this.checkAccess(va, length, false);
    const buf = new Uint8Array(length);
    if (length > 0) this.access(va, buf, false);
    return buf;
  }

  /** copy_to_user. */
  copyToUser(va: bigint, bytes: Uint8Array): void {
    if (bytes.length > 0) this.access(va, bytes, true);
  }

  /** Reads user memory (test and tooling helper); throws IommufdError EFAULT on a hole. */
  peek(va: bigint, length: number): Uint8Array {
    try {
      return this.copyFromUser(va, length);
    } catch (e) {
      throw asIommufdError(e, 'peek');
    }
  }

  /** Writes user memory (test and tooling helper); throws IommufdError EFAULT on a hole. */
  poke(va: bigint, bytes: Uint8Array): void {
    try {
      this.copyToUser(va, bytes);
    } catch (e) {
      throw asIommufdError(e, 'poke');
    }
  }

  /** Copies between a memory object (at byte `offset`) and `buf`. */
  copyObject(obj: MemoryObject, offset: number, buf: Uint8Array, write: boolean): void {
    let done = 0;
    while (done < buf.length) {
      const addr = offset + done;
      const page = Math.floor(addr / PAGE_SIZE);
      const off = addr - page * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, buf.length - done);
      const pfn = obj.frame(page, this.frames, write);
      if (write) this.mem.write(pfn * PAGE_SIZE + off, buf, done, n);
      else if (pfn === 0) buf.fill(0, done, done + n);
      else this.mem.read(pfn * PAGE_SIZE + off, buf, done, n);
      done += n;
    }
  }

  // --- memfd --------------------------------------------------------------------------------------

  /**
   * memfd_create + ftruncate(size). With `hugePageSize` (2 MiB or 1 GiB), MFD_HUGETLB: a hugetlbfs file
   * whose every huge page is one contiguous, naturally aligned run of frames; its size is a multiple of
   * the huge page (EINVAL otherwise, as hugetlbfs_setattr), it is mapped at huge-page offsets and cannot
   * be written with write(2).
   */
  memfd(size: number | bigint, opts: { hugePageSize?: number } = {}): number {
    const sz = Number(size);
    if (!(sz >= 0) || !Number.isSafeInteger(sz)) throw new IommufdError('EINVAL', 'memfd_create', 'bad size');
    const huge = opts.hugePageSize;
    if (huge !== undefined) {
      if (!HUGE_PAGE_SIZES.includes(huge)) throw new IommufdError('EINVAL', 'memfd_create', 'MFD_HUGETLB takes 2 MiB or 1 GiB pages');
      if (sz % huge !== 0) throw new IommufdError('EINVAL', 'ftruncate', 'a hugetlbfs file size is a multiple of its huge page size');
    }
    checkObjectPages(Math.ceil(sz / PAGE_SIZE), 'memfd_create');
    const obj = new MemoryObject(Math.ceil(sz / PAGE_SIZE), 'memfd', huge === undefined ? 1 : huge / PAGE_SIZE);
    return this.installFile(new MemFile(obj, this, sz));
  }

  /** ftruncate on a memfd. */
  ftruncate(fd: number, size: number | bigint): void {
    const f = this.files.get(fd)?.ops;
    if (!f) throw new IommufdError('EBADF', 'ftruncate');
    if (!(f instanceof MemFile)) throw new IommufdError('EINVAL', 'ftruncate');
    const sz = Number(size);
    if (!(sz >= 0) || !Number.isSafeInteger(sz)) throw new IommufdError('EINVAL', 'ftruncate', 'bad size');
    // hugetlbfs_setattr: a hugetlbfs file is sized in whole huge pages.
    if (f.object.hugePages !== 1 && sz % (f.object.hugePages * PAGE_SIZE) !== 0) throw new IommufdError('EINVAL', 'ftruncate', 'a hugetlbfs file size is a multiple of its huge page size');
    checkObjectPages(Math.ceil(sz / PAGE_SIZE), 'ftruncate');
    this.truncate(f, sz);
  }

  /** Sets a memfd's size in bytes and resizes its pages, without the checks of ftruncate. */
  truncate(f: MemFile, size: number): void {
    f.size = size;
    f.object.resize(Math.ceil(size / PAGE_SIZE));
  }

  // --- file table --------------------------------------------------------------------------------

  /** Installs an open file at the lowest free fd (from 3: 0-2 are stdio). */
  installFile(ops: FileOps): number {
    let fd = 3;
    while (this.files.has(fd)) fd++;
    this.files.set(fd, { ops, refs: 1 });
    this.setOps(fd, ops);
    return fd;
  }

  /** opsByFd[fd] = ops (undefined on close), filling the holes below it. */
  private setOps(fd: number, ops: FileOps | undefined): void {
    while (this.opsByFd.length < fd) this.opsByFd.push(undefined);
    this.opsByFd[fd] = ops;
  }

  /** The open file at `fd`, undefined when none. */
  file(fd: number): FileOps | undefined {
    return this.files.get(fd)?.ops;
  }

  /** read(2) on `fd`: EBADF for no such fd, EINVAL for a file that cannot be read or a bad length. */
  read(fd: number, length: number): Uint8Array {
    const f = this.readable(fd);
    if (!Number.isSafeInteger(length) || length < 0) throw new IommufdError('EINVAL', 'read');
    // The errno conversion in place: no closure per read on a fault fd's hot path.
    try {
      return f.read!(length);
    } catch (e) {
      throw asIommufdError(e, 'read');
    }
  }

  /**
   * read(2) as C calls it: up to `out.length` bytes into the caller's buffer, returns how many. A
   * fault fd's reader that reuses one buffer reads without allocating.
   */
  readInto(fd: number, out: Uint8Array): number {
    const f = this.readable(fd);
    if (!(out instanceof Uint8Array)) throw new IommufdError('EINVAL', 'read', 'the buffer must be a Uint8Array');
    try {
      if (f.readInto !== undefined) return f.readInto(out);
      const got = f.read!(out.length);
      out.set(got);
      return got.length;
    } catch (e) {
      throw asIommufdError(e, 'read');
    }
  }

  /** write(2) on `fd`: EBADF for no such fd, EINVAL for a file that cannot be written. */
  write(fd: number, bytes: Uint8Array): number {
    const f = this.fileOr(fd, 'write');
    if (f.write === undefined) throw new IommufdError('EINVAL', 'write', `${f.kind} is not writable`);
    try {
      return f.write(bytes);
    } catch (e) {
      throw asIommufdError(e, 'write');
    }
  }

  /** poll(2) readiness bits of `fd` (POLLIN | POLLOUT for a file without its own poll); EBADF for no such fd. */
  poll(fd: number): number {
    const f = this.fileOr(fd, 'poll');
    // POLLIN | POLLOUT as a literal (5): a module constant is a load and a hole check in compiled code.
    return f.poll !== undefined ? f.poll() : 5;
  }

  /** close(2): EBADF for no such fd; the file's release runs on its last close. */
  close(fd: number): void {
    const e = this.files.get(fd);
    if (!e) throw new IommufdError('EBADF', 'close');
    this.files.delete(fd);
    this.setOps(fd, undefined);
    if (--e.refs === 0) e.ops.release();
  }

  /** fds currently open. */
  get openFds(): number[] {
    return [...this.files.keys()];
  }

  /** The open file at `fd` for read(2): EBADF for no such fd, EINVAL for a file that cannot be read. */
  private readable(fd: number): FileOps {
    const f = this.fileOr(fd, 'read');
    // `=== undefined`, not `!`: a compare where truthiness tests every kind of value (a fault thread reads
    // millions of times).
    if (f.read === undefined) throw new IommufdError('EINVAL', 'read', `${f.kind} is not readable`);
    return f;
  }

  private fileOr(fd: number, op: string): FileOps {
    // `(fd >>> 0) === fd` holds only for an integer in [0, 2^32): anything else is no fd.
    const f = (fd >>> 0) === fd ? this.opsByFd[fd] : undefined;
    if (f === undefined) throw new IommufdError('EBADF', op);
    return f;
  }

  /** Charges `pages` pinned pages against RLIMIT_MEMLOCK; ENOMEM when it would be exceeded. */
  chargePinned(pages: number): void {
    if (this.injector.shouldFail('pin')) throw new Errno('ENOMEM', 'pin_user_pages failed (injected)');
    // pages.c incr_user_locked_vm: pages against the limit in pages (RLIMIT_MEMLOCK >> PAGE_SHIFT; for a
    // whole number of pages `> limit / 4096` is `> floor(limit / 4096)`), never bytes: the product in bytes
    // left the 32-bit integers at 2 GiB pinned, and the compiled charge then deoptimized. 4096 is PAGE_SIZE
    // written out (a module constant is a context load with a check in compiled code).
    if (this.lockedPages + pages > this.rlimitMemlock / 4096) throw new Errno('ENOMEM', 'RLIMIT_MEMLOCK exceeded');
    this.lockedPages += pages;
  }

  /** Returns `pages` pinned pages to the RLIMIT_MEMLOCK budget (unpin). */
  unchargePinned(pages: number): void {

    this.lockedPages -= pages;
  }
}

export function asIommufdError(e: unknown, command: string): unknown {
  if (e instanceof Errno) return new IommufdError(e.code as ErrnoCode, command, e.detail);
  return e;
}
