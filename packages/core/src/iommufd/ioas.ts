/**
 * IOAS objects and their ioctls (ioas.c): ALLOC, IOVA_RANGES, ALLOW_IOVAS, MAP, MAP_FILE, COPY,
 * UNMAP, OPTION, VFIO_IOAS and CHANGE_PROCESS. Validation follows the kernel's order: flags and
 * reserved fields (EOPNOTSUPP), overflow (EOVERFLOW), semantic errors (EINVAL), then lookups.
 */
import { fail } from '../uapi/errno.js';
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  U64_MAX,
  ULONG_MAX,
  iommu_iova_range,
  iommu_ioas_map,
  iommu_ioas_unmap,
  type ValueOfLayout,
  type iommu_destroy,
  type iommu_ioas_alloc,
  type iommu_ioas_allow_iovas,
  type iommu_ioas_change_process,
  type iommu_ioas_copy,
  type iommu_ioas_iova_ranges,
  type iommu_ioas_map_file,
  type iommu_option,
  type iommu_vfio_ioas,
  type iommu_ioas_noiommu_get_pa,
} from '../uapi/iommufd.js';
import { PAGE_SIZE } from '../memory/physical.js';
import { setU64Number, u32At, u64NumberAt } from '../uapi/struct.js';
import { MemFile, MemoryObject, type HostProcess } from '../memory/process.js';
import { IommufdObject, ObjType } from './objects.js';
import { CopyList, IoPagetable, IoptPages, protFromMapFlags, type IovaRange, type MapElement } from './io-pagetable.js';
import type { RunPages } from './run-pages.js';
import type { PagesSource } from './pages.js';
import type { IommufdCtx, Ucmd } from './context.js';

const PAGE = BigInt(PAGE_SIZE);
const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

export class Ioas extends IommufdObject {
  readonly type = ObjType.IOAS;
  readonly iopt: IoPagetable;
  /** Automatically created HWPT_PAGING domains, reused by later attaches (ioas->hwpt_list). */
  readonly autoHwpts: IommufdObject[] = [];

  constructor(
    /** The iommufd's run entries (IommufdCtx.runPages): IOAS_COPY shares them between its IOASes. */
    runs: RunPages,
  ) {
    super();
    this.iopt = new IoPagetable(runs);
  }

  destroy(): void {
    this.iopt.unmapAll();
  }
}

type V<L> = ValueOfLayout<L>;

export function getIoas(ctx: IommufdCtx, id: number): Ioas {
  // An IOAS is found by its class, not by `type`: the table holds objects of every class, so a load of
  // `type` there is a megamorphic property lookup on every IOAS call. Anything else takes the typed
  // lookup, which fails as before (ENOENT).
  const o = ctx.objects.peek(id);
  return o instanceof Ioas ? o : ctx.objects.get<Ioas>(id, ObjType.IOAS);
}

// --- DESTROY -------------------------------------------------------------------------------------

export function iommufdDestroy(ctx: IommufdCtx, cmd: V<typeof iommu_destroy>): void {
  ctx.objects.remove(cmd.id);
  // iommufd_object_remove forgets the VFIO compatibility IOAS when it is the object destroyed, so
  // an IOAS that later takes the same id is not the compat IOAS.
  if (cmd.id === ctx.vfioIoasId) ctx.vfioIoasId = 0;
}

// --- IOAS_ALLOC ----------------------------------------------------------------------------------

export function iommufdIoasAlloc(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_alloc>, ucmd: Ucmd): void {
  if (cmd.flags !== 0) fail('EOPNOTSUPP', 'flags must be 0');
  const ioas = ctx.newObject(ucmd, new Ioas(ctx.runPages));
  cmd.out_ioas_id = ioas.id;
}

// --- IOAS_IOVA_RANGES ----------------------------------------------------------------------------

export function ioasIovaRanges(ctx: IommufdCtx, ioasId: number): { ranges: IovaRange[]; alignment: bigint } {
  const ioas = getIoas(ctx, ioasId);
  return { ranges: ioas.iopt.usableRanges(), alignment: ioas.iopt.iovaAlignment };
}

export function iommufdIoasIovaRanges(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_iova_ranges>, ucmd: Ucmd): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  const { ranges, alignment } = ioasIovaRanges(ctx, cmd.ioas_id);
  const capacity = cmd.num_iovas;
  const n = Math.min(capacity, ranges.length);
  if (n > 0) {
    const buf = new Uint8Array(n * iommu_iova_range.size);
    for (let i = 0; i < n; i++) iommu_iova_range.encode({ start: ranges[i].start, last: ranges[i].last }, buf, i * iommu_iova_range.size);
    ctx.copyToUser(cmd.allowed_iovas, buf);
  }
  cmd.num_iovas = ranges.length;
  cmd.out_iova_alignment = alignment;
  if (ranges.length > capacity) {
    ucmd.respondOnError = true;
    fail('EMSGSIZE', `${ranges.length} ranges do not fit in ${capacity}`);
  }
}

// --- IOAS_ALLOW_IOVAS ----------------------------------------------------------------------------

export function ioasAllowIovas(ctx: IommufdCtx, ioasId: number, ranges: IovaRange[]): void {
  getIoas(ctx, ioasId).iopt.setAllowed(ranges.length, (i) => ranges[i]);
}

export function iommufdIoasAllowIovas(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_allow_iovas>): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  const ioas = getIoas(ctx, cmd.ioas_id);
  const size = iommu_iova_range.size;
  // iommufd_ioas_load_iovas copies each range in turn: a bad range is EINVAL even when a later one
  // is unreadable (EFAULT only when the copy of the range itself faults).
  ioas.iopt.setAllowed(cmd.num_iovas, (i) => {
    const r = iommu_iova_range.decode(ctx.copyFromUser(cmd.allowed_iovas + BigInt(i * size), size), 0);
    return { start: r.start, last: r.last };
  });
}

// --- IOAS_MAP / MAP_FILE -------------------------------------------------------------------------

function checkMapFlags(flags: number, iova: bigint, length: bigint): void {
  if (flags & ~MAP_FLAGS) fail('EOPNOTSUPP', 'unknown flags');
  if (iova >= ULONG_MAX || length >= ULONG_MAX) fail('EOVERFLOW', 'iova or length too large');
  if (!(flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE))) fail('EINVAL', 'neither READABLE nor WRITEABLE');
}

function mapProt(flags: number): number {
  return protFromMapFlags((flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0, (flags & IOMMU_IOAS_MAP_READABLE) !== 0);
}

/**
 * iopt_alloc_user_pages: the pages object of user memory [uptr, uptr + length). Nothing is pinned
 * yet (pages are pinned when a domain or an access needs them). uptr + length past ULONG_MAX is
 * EOVERFLOW; then iopt_alloc_pages refuses a zero length (and one within a page of SIZE_MAX) with
 * EINVAL.
 */
function userPages(ctx: IommufdCtx, uptr: bigint, length: bigint, writable: boolean): IoptPages {
  const u = Number(uptr);
  const len = Number(length);
  // Both exact and their sum below 2^53: no overflow, and the page arithmetic is exact in numbers.
  if (u <= Number.MAX_SAFE_INTEGER && len <= Number.MAX_SAFE_INTEGER - u) return userPagesNum(ctx, u, len, writable);
  if (uptr + length > ULONG_MAX) fail('EOVERFLOW', 'user_va + length overflows');
  if (length === 0n || length > ULONG_MAX - PAGE) fail('EINVAL', 'bad length');
  const pageOffset = uptr % PAGE;
  const npages = Number((pageOffset + length + PAGE - 1n) / PAGE);
  return new IoptPages(npages, writable, ctx.process, { kind: 'user', mm: ctx.process, firstPage: Number(uptr / PAGE) });
}

/** The source record of userPagesNum, reused: IoptPages copies it and keeps nothing of it. */
const userSource: { kind: 'user'; mm: HostProcess | null; firstPage: number } = { kind: 'user', mm: null, firstPage: 0 };

/** userPages of [u, u + len) given as numbers with u + len <= 2^53 - 1 (exact). */
function userPagesNum(ctx: IommufdCtx, u: number, len: number, writable: boolean): IoptPages {
  if (len === 0) fail('EINVAL', 'length is zero');
  const pageOffset = u % PAGE_SIZE;
  const npages = Math.ceil((pageOffset + len) / PAGE_SIZE);
  userSource.mm = ctx.process;
  userSource.firstPage = (u - pageOffset) / PAGE_SIZE;
  const pages = new IoptPages(npages, writable, ctx.process, userSource as PagesSource);
  userSource.mm = null;
  return pages;
}

/** Byte offset of a user address inside its page. */
function pageOffsetOf(uptr: bigint): number {
  const u = Number(uptr);
  return u <= Number.MAX_SAFE_INTEGER ? u % PAGE_SIZE : Number(uptr % PAGE);
}

export function iommufdIoasMap(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_map>): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  checkMapFlags(cmd.flags, cmd.iova, cmd.length);
  const ioas = getIoas(ctx, cmd.ioas_id);
  const fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  cmd.iova = mapUser(ctx, ioas, cmd.user_va, cmd.length, fixed ? cmd.iova : null, cmd.flags);
}

/**
 * iopt_map_user_pages: the pages object (EOVERFLOW, EINVAL), then the IOVA side (length alignment,
 * allocation or fixed-IOVA checks, page offset), then the fill of the attached domains, which pins
 * (EFAULT, ENOMEM). Returns the IOVA.
 */
export function mapUser(ctx: IommufdCtx, ioas: Ioas, userVa: bigint, length: bigint, iova: bigint | null, flags: number): bigint {
  const pages = userPages(ctx, userVa, length, (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0);
  const pageOffset = pageOffsetOf(userVa);
  const at = placeMap(ioas, iova, length, userVa, pageOffset);
  return ioas.iopt.mapOne(pages, 0, pageOffset, length, at, mapProt(flags), userVa);
}

const UNMAP_SIZE = iommu_ioas_unmap.size;
const UNMAP_IOAS_ID = iommu_ioas_unmap.offsetof('ioas_id');
const UNMAP_IOVA = iommu_ioas_unmap.offsetof('iova');
const UNMAP_LENGTH = iommu_ioas_unmap.offsetof('length');

/**
 * The number `hi * 2^32 + lo` of a u64 held as two 32-bit words, `lo` signed or not (an Int32Array
 * word: bit 31 set makes it negative, worth 2^32 more). The sum is a double from the first operation
 * (4294967296 is not a small integer), so the compiled code never assumes a 32-bit result.
 */
function u64Words(hi: number, lo: number): number {
  return hi * 4294967296 + lo + (lo < 0 ? 4294967296 : 0);
}

/**
 * IOAS_MAP on the caller's struct in place, for the per-page path a vIOMMU drives: a FIXED_IOVA map
 * whose user_va + length and iova + length are below 2^53, with valid flags and a zero __reserved, in a
 * 4-byte aligned struct of the kernel's size. It runs iommufdIoasMap's steps in the same order with numbers instead of
 * bigints (no decode, no BigInt) and writes nothing back: the general handler's response rewrites
 * `iova` with the value it read, so the caller's bytes stay as they are.
 * Returns false, having done nothing, for any other command: the dispatcher then runs the general
 * handler, which gives the same result and the same errors.
 */
export function iommufdIoasMapFast(ctx: IommufdCtx, arg: Uint8Array): boolean {
  // The struct as little-endian 32-bit words, one load each (the view is made once per buffer):
  // 1 flags, 2 ioas_id, 3 __reserved, 4-5 user_va, 6-7 length, 8-9 iova. The flag values are written
  // out here (FIXED_IOVA 1, WRITEABLE 2, READABLE 4; IOMMU_READ 1, IOMMU_WRITE 2): an imported constant
  // is a load from the module context with a check at every use in compiled code.
  const w = ctx.mapWords.of(arg, 40);
  // Word 0 is `size`: only the kernel's, 40 (see IoctlOp.fast).
  if (w === null || w[0] !== 40) return false;
  const flags = w[1];
  if (w[3] !== 0 || (flags & ~7) !== 0 || (flags & 1) === 0 || (flags & 6) === 0) return false;
  const uLo = w[4];
  const uHi = w[5];
  const iovaLo = w[8];
  const iovaHi = w[9];
  // One page of page-aligned memory at a page-aligned IOVA, both below 2^53 (high words below 2^21, so
  // the range ends below 2^53): a fault handler's map. Anything else: mapFastNum. This part is small so
  // that the dispatcher's call of the fast path takes it in.
  // An object id from 2^31 up names no object: the general handler says ENOENT.
  if (w[6] !== 4096 || w[7] !== 0 || (uHi | iovaHi) >>> 21 !== 0 || ((uLo | iovaLo) & 0xfff) !== 0 || w[2] < 0) return mapFastNum(ctx, w, flags);
  const ioas = getIoas(ctx, w[2]);
  const writable = (flags & 2) !== 0;
  // The page numbers go as their high word and bits 31:12 of the low one, small integers whatever bit 31
  // of the low word (`>>> 12` is below 2^20; mapUserPage).
  ioas.iopt.mapUserPage(ctx.process, uHi, uLo >>> 12, writable, iovaHi, iovaLo >>> 12, (flags & 4) !== 0 ? (writable ? 3 : 1) : 2);
  return true;
}

/**
 * iommufdIoasMapFast of any other struct (`w` its words, `flags` valid): a map whose user_va + length
 * and iova + length are below 2^53, in numbers; false, having done nothing, for anything else.
 */
function mapFastNum(ctx: IommufdCtx, w: Int32Array, flags: number): boolean {
  // Each value below 2^53: its high word below 2^21. Also excluded: a zero length and sums that could
  // pass 2^53 - 1.
  const uHi = w[5];
  const lenHi = w[7];
  const iovaHi = w[9];
  // An object id from 2^31 up names no object: the general handler says ENOENT.
  if ((uHi | lenHi | iovaHi) >>> 21 !== 0 || w[2] < 0) return false;
  // Each value as high * 2^32 + the low word, the low word's sign bit worth 2^32 (see u64Words): no
  // `w[i] >>> 0`, which V8 compiles as a 32-bit integer while the words it saw were below 2^31, and
  // deoptimizes at the first IOVA (or user address, or length) whose bit 31 is set.
  const uLo = w[4];
  const lenLo = w[6];
  const iovaLo = w[8];
  const u = u64Words(uHi, uLo);
  const len = u64Words(lenHi, lenLo);
  const iova = u64Words(iovaHi, iovaLo);
  if (len === 0 || len > 9007199254740991 - u || iova > 9007199254740991 - len) return false;
  const ioas = getIoas(ctx, w[2]);
  const writable = (flags & 2) !== 0;
  const prot = (flags & 4) !== 0 ? (writable ? 3 : 1) : 2;
  // Page-aligned memory needs no pages object up front (iopt_alloc_user_pages checks nothing more
  // for it): the IOAS keeps such an area as a compact record.
  const offset = uLo & 0xfff;
  if ((offset | (lenLo & 0xfff)) === 0) ioas.iopt.mapUserNum(ctx.process, u / 4096, writable, len, iova, prot);
  else ioas.iopt.mapOneNum(userPagesNum(ctx, u, len, writable), 0, offset, len, iova, prot);
  return true;
}

/**
 * IOAS_UNMAP on the caller's struct in place, of the kernel's size, when iova + length - 1 is below
 * 2^53 and length is not zero: iommufdIoasUnmap's steps in numbers; writes back `length`. Returns false, having done
 * nothing, for any other command (the general handler runs).
 */
export function iommufdIoasUnmapFast(ctx: IommufdCtx, arg: Uint8Array): boolean {
  // `size` must be the kernel's (see IoctlOp.fast).
  if (arg.length < UNMAP_SIZE || u32At(arg, 0) !== UNMAP_SIZE) return false;
  const iova = u64NumberAt(arg, UNMAP_IOVA);
  const len = u64NumberAt(arg, UNMAP_LENGTH);
  if (iova < 0 || len <= 0 || iova > Number.MAX_SAFE_INTEGER - len + 1) return false;
  const ioas = getIoas(ctx, u32At(arg, UNMAP_IOAS_ID));
  if (ioas.iopt.accesses.size > 0) return false;
  const bytes = ioas.iopt.unmapRangeNum(iova, iova + len - 1);
  // iommufd_ioas_unmap: an empty range is ENOENT here (the VFIO compat unmap accepts it).
  if (bytes === 0) fail('ENOENT', 'nothing is mapped in the range');
  setU64Number(arg, UNMAP_LENGTH, bytes);
  return true;
}

/**
 * The IOVA side of a map before anything is pinned, in the kernel's order (iopt_alloc_area_pages and
 * iopt_insert_area run before iopt_fill_domains_pages pins): the length, the allocated or checked
 * IOVA (EINVAL, EOVERFLOW, EEXIST, ENOSPC), then the page offset. Returns the IOVA to map at.
 */
function placeMap(ioas: Ioas, iova: bigint | null, length: bigint, uptrHint: bigint, pageOffset: number): bigint {
  const at = ioas.iopt.placeRange(length, iova, uptrHint);
  ioas.iopt.checkPageOffset(pageOffset);
  return at;
}

export function iommufdIoasMapFile(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_map_file>): void {
  checkMapFlags(cmd.flags, cmd.iova, cmd.length);
  const ioas = getIoas(ctx, cmd.ioas_id);
  // io_pagetable.c iopt_map_file_pages (since it takes dma-bufs too): a zero length (EINVAL) and
  // start + length overflowing (EOVERFLOW) come before the fd is looked up (dma_buf_get, then fget:
  // EBADF). iopt_alloc_file_pages takes any file and checks nothing against its size: a file that is
  // not a memfd, or a range past its end, fails only when the pages are pinned (memfd_pin_folios
  // refuses other files, shmem_get_folio an index past i_size: EINVAL), which is at map time only
  // when a domain is attached, and at attach or access pin time otherwise.
  if (cmd.length === 0n) fail('EINVAL', 'length is zero');
  if (cmd.start + cmd.length - 1n > U64_MAX) fail('EOVERFLOW', 'start + length overflows');
  const file = ctx.process.file(cmd.fd);
  if (file === undefined) fail('EBADF', `fd ${cmd.fd} is not open`);
  // Not a memfd: no page of it can ever be pinned, as an empty memfd's.
  const object = file instanceof MemFile ? file.object : new MemoryObject(0, 'memfd');
  const fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const pageOffset = Number(cmd.start % PAGE);
  const first = Number(cmd.start / PAGE);
  const npages = Math.ceil((pageOffset + Number(cmd.length)) / PAGE_SIZE);
  const pages = new IoptPages(npages, (cmd.flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0, ctx.process, { kind: 'file', object, firstPage: first, alloc: ctx.frames });
  const iova = placeMap(ioas, fixed ? cmd.iova : null, cmd.length, cmd.start, pageOffset);
  cmd.iova = ioas.iopt.mapOne(pages, 0, pageOffset, cmd.length, iova, mapProt(cmd.flags), cmd.start);
}

// --- IOAS_COPY -----------------------------------------------------------------------------------

/**
 * iommufd_ioas_copy: flags, then all three of length/src_iova/dst_iova against ULONG_MAX, then
 * READABLE|WRITEABLE; then the source IOAS, iopt_get_pages (zero length EINVAL, overflow, holes
 * ENOENT), the destination IOAS, and iopt_map_pages (the dst IOVA checks, then EPERM per element).
 * In numbers (copyNum) when every value is below 2^53 and the ranges end there, else over MapElement
 * objects (iommufdIoasCopyElements); both give the same result and errors.
 */
export function iommufdIoasCopy(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_copy>): void {
  checkCopyFlags(cmd.flags, cmd.length, cmd.src_iova, cmd.dst_iova);
  const len = Number(cmd.length);
  const srcIova = Number(cmd.src_iova);
  const dstIova = Number(cmd.dst_iova);
  if (numberRanges(cmd.flags, len, srcIova, dstIova)) {
    const at = copyNum(ctx, cmd.flags, cmd.src_ioas_id, cmd.dst_ioas_id, len, srcIova, dstIova);
    if (at >= 0) {
      cmd.dst_iova = BigInt(at);
      return;
    }
  }
  iommufdIoasCopyElements(ctx, cmd);
}

/** iommufd_ioas_copy's checks before the source IOAS is looked up. */
function checkCopyFlags(flags: number, length: bigint, srcIova: bigint, dstIova: bigint): void {
  if (flags & ~MAP_FLAGS) fail('EOPNOTSUPP', 'unknown flags');
  if (length >= ULONG_MAX || srcIova >= ULONG_MAX || dstIova >= ULONG_MAX) fail('EOVERFLOW', 'iova or length too large');
  if (!(flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE))) fail('EINVAL', 'neither READABLE nor WRITEABLE');
}

/**
 * Whether copyNum can take a copy whose flags passed checkCopyFlags: a non-zero length, the source
 * range and (when FIXED_IOVA) the destination range ending below 2^53, and dst_iova below 2^53 in any
 * case (the rest is left to the element path).
 */
function numberRanges(flags: number, len: number, srcIova: number, dstIova: number): boolean {
  const max = Number.MAX_SAFE_INTEGER;
  if (len <= 0 || len > max || srcIova < 0 || srcIova > max - len + 1 || dstIova < 0 || dstIova > max) return false;
  return (flags & IOMMU_IOAS_MAP_FIXED_IOVA) === 0 || dstIova <= max - len + 1;
}

/**
 * iommufd_ioas_copy after checkCopyFlags, over MapElement objects and bigints: any range. The
 * general path, and the reference copyNum is tested against.
 */
export function iommufdIoasCopyElements(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_copy>): void {
  checkCopyFlags(cmd.flags, cmd.length, cmd.src_iova, cmd.dst_iova);
  const src = getIoas(ctx, cmd.src_ioas_id);
  if (cmd.length === 0n) fail('EINVAL', 'length is zero');
  if (cmd.src_iova + cmd.length - 1n > ULONG_MAX) fail('EOVERFLOW', 'src_iova + length overflows');
  const elements: MapElement[] = src.iopt.getElements(cmd.src_iova, cmd.length);
  const dst = getIoas(ctx, cmd.dst_ioas_id);
  const fixed = (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  // The allocation hint is the address of the first copied byte in its pages (user VA or file
  // offset), as iopt_alloc_area_pages takes it from the first element.
  const e0 = elements[0];
  const hint = e0.pages.base + BigInt(e0.pageIndex) * PAGE + BigInt(e0.pageOffset);
  cmd.dst_iova = dst.iopt.mapElements(elements, fixed ? cmd.dst_iova : null, mapProt(cmd.flags), hint);
}

/** The elements of the copy being made (reused; see CopyList). */
const copyList = new CopyList();

/**
 * iommufd_ioas_copy after checkCopyFlags in numbers (numberRanges holds): the source IOAS (ENOENT),
 * iopt_get_pages (gatherNum: ENOENT for a hole), the destination IOAS (ENOENT), iopt_map_pages
 * (mapGatheredNum). A compact source area copied whole becomes a run area and the copy references its
 * entry: no pages object, no IoptArea, no BigInt per area. Returns the destination IOVA, or -1 having
 * changed nothing observable when an allocated IOVA lies past the number range (the general path
 * then runs and gives the same result).
 */
function copyNum(ctx: IommufdCtx, flags: number, srcId: number, dstId: number, len: number, srcIova: number, dstIova: number): number {
  const src = getIoas(ctx, srcId);
  const list = copyList;
  try {
    src.iopt.gatherNum(srcIova, srcIova + len - 1, list);
    const dst = getIoas(ctx, dstId);
    const fixed = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
    return dst.iopt.mapGatheredNum(list, len, fixed ? dstIova : -1, mapProt(flags));
  } finally {
    list.clear();
  }
}

// --- IOAS_UNMAP ----------------------------------------------------------------------------------

export function iommufdIoasUnmap(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_unmap>): void {
  const ioas = getIoas(ctx, cmd.ioas_id);
  if (cmd.iova === 0n && cmd.length === U64_MAX) {
    cmd.length = ioas.iopt.unmapAll();
    return;
  }
  if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) fail('EOVERFLOW', 'iova or length too large');
  const bytes = unmapIova(ioas, cmd.iova, cmd.length);
  // An empty range is ENOENT for IOAS_UNMAP (the VFIO compat unmap accepts it).
  if (bytes === 0n) fail('ENOENT', 'nothing is mapped in the range');
  cmd.length = bytes;
}

/**
 * iopt_unmap_iova: zero length EINVAL, iova + length - 1 past ULONG_MAX EOVERFLOW, then
 * iopt_unmap_iova_range (ENOENT for an area crossing the range, with the areas before it removed).
 */
export function unmapIova(ioas: Ioas, iova: bigint, length: bigint): bigint {
  if (length === 0n) fail('EINVAL', 'length is zero');
  const last = iova + length - 1n;
  if (last > ULONG_MAX) fail('EOVERFLOW', 'iova + length overflows');
  return ioas.iopt.unmapRange(iova, last);
}

// --- OPTION --------------------------------------------------------------------------------------

export function iommufdOption(ctx: IommufdCtx, cmd: V<typeof iommu_option>): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  // The op is checked inside each option, after object_id (RLIMIT_MODE) or the IOAS lookup
  // (HUGE_PAGES: a bad object_id is ENOENT whatever the op).
  const badOp = cmd.op !== IOMMU_OPTION_OP_SET && cmd.op !== IOMMU_OPTION_OP_GET;
  switch (cmd.option_id) {
    case IOMMU_OPTION_RLIMIT_MODE: {
      if (cmd.object_id !== 0) fail('EOPNOTSUPP', 'RLIMIT_MODE is global: object_id must be 0');
      if (badOp) fail('EOPNOTSUPP', 'unknown op');
      if (cmd.op === IOMMU_OPTION_OP_GET) {
        cmd.val64 = BigInt(ctx.rlimitMode);
        return;
      }
      // iommufd_option_rlimit_mode: EPERM, then EBUSY unless the xarray is empty (a tombstone or
      // an id being created counts), then the value.
      if (!ctx.process.capSysResource) fail('EPERM', 'CAP_SYS_RESOURCE is needed');
      if (!ctx.objects.empty) fail('EBUSY', 'objects already exist');
      if (cmd.val64 > 1n) fail('EINVAL', 'value must be 0 or 1');
      ctx.rlimitMode = Number(cmd.val64);
      return;
    }
    case IOMMU_OPTION_HUGE_PAGES: {
      const ioas = getIoas(ctx, cmd.object_id);
      if (badOp) fail('EOPNOTSUPP', 'unknown op');
      if (cmd.op === IOMMU_OPTION_OP_GET) {
        cmd.val64 = ioas.iopt.hugePages ? 1n : 0n;
        return;
      }
      if (cmd.val64 > 1n) fail('EINVAL', 'value must be 0 or 1');
      if (cmd.val64 === 1n) ioas.iopt.hugePages = true;
      else ioas.iopt.disableLargePages();
      return;
    }
    default:
      fail('EOPNOTSUPP', `unknown option ${cmd.option_id}`);
  }
}

// --- VFIO_IOAS -----------------------------------------------------------------------------------

export function iommufdVfioIoas(ctx: IommufdCtx, cmd: V<typeof iommu_vfio_ioas>): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  switch (cmd.op) {
    case IOMMU_VFIO_IOAS_GET:
      if (ctx.vfioIoasId === 0 || ctx.objects.peek(ctx.vfioIoasId)?.type !== ObjType.IOAS) fail('ENODEV', 'no compatibility IOAS');
      cmd.ioas_id = ctx.vfioIoasId;
      return;
    case IOMMU_VFIO_IOAS_SET:
      getIoas(ctx, cmd.ioas_id);
      ctx.vfioIoasId = cmd.ioas_id;
      return;
    case IOMMU_VFIO_IOAS_CLEAR:
      ctx.vfioIoasId = 0;
      return;
    default:
      fail('EOPNOTSUPP', 'unknown op');
  }
}

// --- IOAS_CHANGE_PROCESS -------------------------------------------------------------------------

/**
 * iommufd_ioas_change_process: every area of every IOAS must map a file (EINVAL otherwise); the pins
 * of every pages object charged elsewhere move to the calling process, charged to it all at once
 * first (ENOMEM, nothing moved) and then uncharged from their old process (change_mm).
 */
export function iommufdIoasChangeProcess(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_change_process>): void {
  if (cmd.__reserved !== 0) fail('EOPNOTSUPP', '__reserved must be 0');
  const all = new Set<IoptPages>();
  for (const o of ctx.objects.objects()) {
    if (o.type !== ObjType.IOAS) continue;
    // A compact area (null) maps user memory.
    (o as Ioas).iopt.forEachArea((_pfn, _npages, a) => {
      if (a === null || a.pages.file === null) fail('EINVAL', 'only IOMMU_IOAS_MAP_FILE mappings can change process');
      all.add(a.pages);
    });
  }
  const current = ctx.process;
  let npinned = 0;
  for (const p of all) if (p.account !== current) npinned += p.npinned;
  if (npinned > 0) current.chargePinned(npinned);
  for (const p of all) {
    if (p.account === current) continue;
    p.account.unchargePinned(p.npinned);
    p.account = current;
  }
}

// --- IOAS_NOIOMMU_GET_PA -------------------------------------------------------------------------

export function iommufdIoasNoiommuGetPa(ctx: IommufdCtx, cmd: V<typeof iommu_ioas_noiommu_get_pa>): void {
  if (cmd.flags !== 0 || cmd.__reserved !== 0) fail('EOPNOTSUPP', 'flags and __reserved must be 0');
  if (cmd.length === 0n) fail('EINVAL', 'length is zero');
  const ioas = getIoas(ctx, cmd.ioas_id);
  const area = ioas.iopt.areaAt(cmd.iova);
  if (!area) fail('ENOENT', 'iova is not mapped');
  const byte = Number(cmd.iova - area.iova) + area.pageOffset;
  let idx = area.pageIndex + Math.floor(byte / PAGE_SIZE);
  const pages = area.pages;
  const phys = BigInt(pages.sourceFrame(idx)) * PAGE + BigInt(byte % PAGE_SIZE);
  // Extend while the next page is physically contiguous and still inside the area.
  let contiguous = BigInt(PAGE_SIZE - (byte % PAGE_SIZE));
  const areaEnd = area.last + 1n - cmd.iova;
  while (contiguous < cmd.length && contiguous < areaEnd && idx + 1 < pages.npages && pages.sourceFrame(idx + 1) === pages.sourceFrame(idx) + 1) {
    contiguous += PAGE;
    idx++;
  }
  const limit = [cmd.length, areaEnd, contiguous].reduce((a, b) => (a < b ? a : b));
  cmd.out_phys = phys;
  cmd.length = limit;
}
