import { describe, expect, it } from 'vitest';
import { LeWordView, readLe32, readLe64, readLe64Words, writeLe32, writeLe64, writeLe64Words } from './le.js';

describe('little-endian record access', () => {
  it('reads the byte order the hardware writes (least significant byte first)', () => {
    const b = Uint8Array.of(0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, 0xff);
    expect(readLe32(b, 0)).toBe(0x89abcdef);
    expect(readLe64(b, 0)).toBe(0x0123456789abcdefn);
    expect(readLe32(b, 5)).toBe(0xff012345);
  });

  it('writes what it reads, and takes values modulo the width', () => {
    const b = new Uint8Array(12);
    writeLe64(b, 2, 0xfedcba9876543210n);
    expect([...b]).toEqual([0, 0, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0, 0]);
    writeLe64(b, 0, -1n);
    expect(readLe64(b, 0)).toBe(0xffff_ffff_ffff_ffffn);
    writeLe32(b, 8, 0x1_0000_0001);
    expect(readLe32(b, 8)).toBe(1);
  });

  it('reads from a view at an offset into a larger buffer', () => {
    const backing = new Uint8Array(24);
    backing.set([1, 0, 0, 0, 0, 0, 0, 0x80], 8);
    expect(readLe64(backing.subarray(8), 0)).toBe(0x8000_0000_0000_0001n);
  });

  it('word lists: whole words by default, zeros past the end', () => {
    const b = writeLe64Words([1n, 2n ** 63n]);
    expect(b.length).toBe(16);
    expect(readLe64Words(b)).toEqual([1n, 2n ** 63n]);
    expect(readLe64Words(b.subarray(0, 12))).toEqual([1n]);
    expect(readLe64Words(b.subarray(0, 12), 3)).toEqual([1n, 0n, 0n]);
  });

  it('word view: little-endian words of an aligned buffer, kept per buffer; null where bytes must be written', () => {
    const view = new LeWordView();
    const b = new Uint8Array(new ArrayBuffer(40), 8, 32);
    const w = view.of(b, 32)!;
    expect(w).not.toBeNull();
    w[1] = 0x89abcdef | 0;
    expect(readLe32(b, 4)).toBe(0x89abcdef);
    // The same buffer again: the same view, not a new one.
    expect(view.of(b, 32)).toBe(w);
    // Words that do not cover the bytes asked for, and a misaligned buffer: bytes.
    expect(view.of(b, 36)).toBeNull();
    expect(view.of(new Uint8Array(new ArrayBuffer(40), 2, 32), 32)).toBeNull();
    // A buffer detached since its view was made: its view, like the bytes, drops stores and reads nothing.
    const ab = new ArrayBuffer(32);
    const d = new Uint8Array(ab);
    const dw = view.of(d, 32)!;
    expect(dw).not.toBeNull();
    structuredClone(ab, { transfer: [ab] });
    expect(d.length).toBe(0);
    expect(view.of(d, d.length)).toBe(dw);
    dw[0] = 5;
    expect(dw[0]).toBeUndefined();
    // A resizable buffer may shrink under a view: bytes, always.
    const rab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(32, { maxByteLength: 64 });
    expect(view.of(new Uint8Array(rab), 32)).toBeNull();
    expect(view.of(new Uint8Array(rab, 0, 32), 32)).toBeNull();
  });
});
