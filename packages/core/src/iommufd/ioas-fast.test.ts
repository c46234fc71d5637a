import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as U from '../uapi/iommufd.js';
import { bareFixture } from '../__tests__/helpers.js';
import type { Iommufd } from './iommufd.js';
import type { IoctlOp } from './dispatch.js';
import { getIoas } from './ioas.js';

/** The same fixture twice: `fast` with the IOAS_MAP / IOAS_UNMAP fast paths, `slow` without them. */
function pair() {
  const make = (fast: boolean) => {
    const f = bareFixture();
    if (!fast) {
      const t = (f.fd as unknown as { table: IoctlOp[] }).table;
      for (let i = 0; i < t.length; i++) if (t[i]?.fast) t[i] = { ...t[i], fast: undefined };
    }
    const ioas = f.fd.ioas.alloc();
    const va = f.host.process.mmap(64 * 4096);
    return { ...f, ioas, va };
  };
  return [make(true), make(false)] as const;
}

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 1n << 22n }),
  fc.bigInt({ min: 0n, max: 64n }).map((p) => p * 4096n),
  fc.bigInt({ min: (1n << 53n) - 8192n, max: (1n << 53n) + 8192n }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constantFrom(0n, 4096n, (1n << 64n) - 1n, (1n << 64n) - 4096n),
);

type Op = { map: boolean; flags: number; reserved: number; ioasDelta: number; userPage: number | null; userVa: bigint; iova: bigint; length: bigint; size: number; at: number };
const op: fc.Arbitrary<Op> = fc.record({
  map: fc.boolean(),
  flags: fc.oneof(fc.constant(U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE), fc.integer({ min: 0, max: 15 })),
  reserved: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 3 })),
  ioasDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.constant(1)),
  userPage: fc.option(fc.integer({ min: 0, max: 70 })),
  userVa: u64,
  iova: fc.oneof(fc.bigInt({ min: 0n, max: 32n }).map((p) => p * 4096n), u64),
  length: fc.oneof(fc.bigInt({ min: 0n, max: 8n }).map((p) => p * 4096n), u64),
  size: fc.constantFrom(0, 0, 0, 8, -1),
  /** Where the struct starts in its buffer: 4-byte aligned (the fast path reads it as words) or not. */
  at: fc.constantFrom(0, 0, 0, 4, 1, 2),
});

function run(fd: Iommufd, ioas: number, va: bigint, o: Op): [number, string, number[]] {
  const layout = o.map ? U.iommu_ioas_map : U.iommu_ioas_unmap;
  const userVa = o.userPage === null ? o.userVa : va + BigInt(o.userPage * 4096);
  const init = o.map
    ? { size: layout.size, flags: o.flags, ioas_id: ioas + o.ioasDelta, __reserved: o.reserved, user_va: userVa, length: o.length, iova: o.iova }
    : { size: layout.size, ioas_id: ioas + o.ioasDelta, iova: o.iova, length: o.length };
  // size: exact, a larger zero-tailed struct, or a shorter one (zero-extended by the kernel).
  const size = o.size === -1 ? layout.size - 4 : layout.size + o.size;
  const buf = new Uint8Array(o.at + Math.max(size, layout.size)).subarray(o.at);
  layout.encode(init as never, buf);
  new DataView(buf.buffer, buf.byteOffset).setUint32(0, size, true);
  const rc = fd.ioctl(o.map ? U.IOMMU_IOAS_MAP : U.IOMMU_IOAS_UNMAP, buf);
  return [rc, fd.lastError ? `${fd.lastError.code} ${fd.lastError.message}` : '', Array.from(buf)];
}

describe('IOAS_MAP / IOAS_UNMAP fast paths', () => {
  it('give the results, errors, bytes and state of the general handlers', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const [a, b] = pair();
        for (const o of ops) {
          expect(run(a.fd, a.ioas, a.va, o)).toEqual(run(b.fd, b.ioas, b.va, o));
          expect(a.host.process.lockedPages).toBe(b.host.process.lockedPages);
        }
        const areas = (f: typeof a) => [...getIoas(f.fd.ctx, f.ioas).iopt.iterAreas()].map((x) => [x.iova, x.last, x.pageOffset, x.prot]);
        expect(areas(a)).toEqual(areas(b));
      }),
      { numRuns: 300 },
    );
  });
});

describe('IOAS_MAP fast path with bit 31 of a low word set', () => {
  it('maps at IOVAs, from user addresses and of lengths whose low 32 bits are 2^31 or more exactly as the general handler, and refuses an IOAS id from 2^31 up as it does', () => {
    const [a, b] = pair();
    const rw = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
    // user_va with bit 31 set: a 2 GiB + 64 KiB mapping of the process holds one.
    const big = (f: typeof a) => f.host.process.mmap(0x8001_0000);
    const vaA = big(a);
    expect(big(b)).toBe(vaA);
    const lowBit31 = (vaA + 0x8000_0000n) & ~0x7fff_ffffn;
    const ops: Op[] = [
      // The top page below 4 GiB (dma-iommu's first IOVA for a 32-bit mask), 2^31, and past 4 GiB with bit 31 set.
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: 0, userVa: 0n, iova: 0xffff_f000n, length: 4096n, size: 0, at: 0 },
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: 1, userVa: 0n, iova: 0x8000_0000n, length: 8192n, size: 0, at: 0 },
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: 3, userVa: 0n, iova: 0x1_8000_0000n, length: 4096n, size: 0, at: 4 },
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: 4, userVa: 0n, iova: 0x1f_ffff_f000n, length: 4096n, size: 0, at: 0 },
      // A length of 2 GiB (bit 31 of its low word), and a user address whose low word has bit 31 set.
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: null, userVa: vaA, iova: 0x2_0000_0000n, length: 0x8000_0000n, size: 0, at: 0 },
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: null, userVa: lowBit31, iova: 0x3_8000_0000n, length: 4096n, size: 0, at: 0 },
      // EEXIST at a bit-31 IOVA, and an IOAS id of 2^31 + ioas (ENOENT).
      { map: true, flags: rw, reserved: 0, ioasDelta: 0, userPage: 5, userVa: 0n, iova: 0x8000_1000n, length: 4096n, size: 0, at: 0 },
      { map: true, flags: rw, reserved: 0, ioasDelta: 0x8000_0000, userPage: 6, userVa: 0n, iova: 0x9000_0000n, length: 4096n, size: 0, at: 0 },
    ];
    const results = ops.map((o) => {
      const r = run(a.fd, a.ioas, a.va, o);
      expect(r).toEqual(run(b.fd, b.ioas, b.va, o));
      return r[1];
    });
    expect(results).toEqual(['', '', '', '', '', '', expect.stringMatching(/^EEXIST/), expect.stringMatching(/^ENOENT/)]);
    const areas = (f: typeof a) => [...getIoas(f.fd.ctx, f.ioas).iopt.iterAreas()].map((x) => [x.iova, x.last]);
    expect(areas(a)).toEqual(areas(b));
    expect(areas(a)).toEqual([
      [0x8000_0000n, 0x8000_1fffn],
      [0xffff_f000n, 0xffff_ffffn],
      [0x1_8000_0000n, 0x1_8000_0fffn],
      [0x2_0000_0000n, 0x2_7fff_ffffn],
      [0x3_8000_0000n, 0x3_8000_0fffn],
      [0x1f_ffff_f000n, 0x1f_ffff_ffffn],
    ]);
  });
});
