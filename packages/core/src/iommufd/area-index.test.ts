import { describe, expect, it } from 'vitest';
import { bareFixture, xorshiftRandom } from '../__tests__/helpers.js';
import { IommufdError } from '../uapi/errno.js';
import { getIoas } from './ioas.js';

describe('IOAS area index over many chunks', () => {
  it('keeps 2,000 single-page areas in order through random maps and range unmaps, as a plain model does', () => {
    const f = bareFixture();
    const ioas = f.fd.ioas.alloc();
    const va = f.host.process.mmap(4096);
    const slots = 4000;
    const mapped = new Array<boolean>(slots).fill(false);
    const rnd = xorshiftRandom(2463534242);
    const iovaOf = (slot: number) => 0x100000n + BigInt(slot) * 4096n;
    /** Unmaps slots [slot, end): the bytes of the areas inside, ENOENT when it holds none. */
    const unmapSlots = (slot: number, end: number) => {
      let expected = 0n;
      for (let s = slot; s < end; s++) if (mapped[s]) expected += 4096n;
      let got = 0n;
      try {
        got = f.fd.ioas.unmap(ioas, iovaOf(slot), BigInt(end - slot) * 4096n);
      } catch (e) {
        expect((e as IommufdError).code).toBe('ENOENT');
      }
      expect(got).toBe(expected);
      for (let s = slot; s < end; s++) mapped[s] = false;
    };
    for (let step = 0; step < 6000; step++) {
      const slot = rnd(slots);
      if (step < 3000 || rnd(3) !== 0) {
        // Map one page: EEXIST when the slot is taken.
        let code = '';
        try {
          f.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: iovaOf(slot), readable: true });
        } catch (e) {
          code = (e as IommufdError).code;
        }
        expect(code).toBe(mapped[slot] ? 'EEXIST' : '');
        mapped[slot] = true;
      } else {
        // Unmap a range of up to 8 slots.
        unmapSlots(slot, Math.min(slots, slot + 1 + rnd(8)));
      }
    }
    const iopt = getIoas(f.fd.ctx, ioas).iopt;
    const want = mapped.flatMap((m, s) => (m ? [iovaOf(s)] : []));
    expect([...iopt.iterAreas()].map((a) => a.iova)).toEqual(want);
    expect(iopt.areaCount).toBe(want.length);
    expect(want.length).toBeGreaterThan(1000);
    // Areas right after a chunk boundary and the last one are found by address.
    for (const iova of [want[0], want[128], want[129], want[want.length - 1]]) expect(iopt.areaAt(iova + 100n)?.iova).toBe(iova);
    // Ranges of hundreds of slots: whole chunks go at once (areas kept as objects here: typed maps).
    for (let k = 0; k < 12; k++) {
      const slot = rnd(slots);
      unmapSlots(slot, Math.min(slots, slot + 100 + rnd(500)));
      const left = mapped.flatMap((m, s) => (m ? [iovaOf(s)] : []));
      expect([...iopt.iterAreas()].map((a) => a.iova)).toEqual(left);
      for (const iova of [left[0], left[left.length >> 1], left[left.length - 1]]) if (iova !== undefined) expect(iopt.areaAt(iova)?.iova).toBe(iova);
    }
    expect(f.fd.ioas.unmapAll(ioas)).toBe(BigInt(mapped.filter((m) => m).length) * 4096n);
    expect(iopt.areaCount).toBe(0);
  });
});
