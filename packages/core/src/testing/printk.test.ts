import { describe, expect, it } from 'vitest';
import { kernelPrintf } from './printk.js';

describe('kernelPrintf (lib/vsprintf.c semantics)', () => {
  it('pads, prefixes and wraps as the kernel does', () => {
    expect(kernelPrintf('[%02x:%02x.%d]', 0x3, 0x1f, 7)).toBe('[03:1f.7]');
    expect(kernelPrintf('0x%04x 0x%llx', 0xe, 0xfffd0000n)).toBe('0x000e 0xfffd0000');
    // The kernel's SPECIAL flag prefixes zero too: %#x of 0 is "0x0", not C's "0".
    expect(kernelPrintf('%#x %#llx', 0, 0n)).toBe('0x0 0x0');
    expect(kernelPrintf('%#x', 0x1234)).toBe('0x1234');
    expect(kernelPrintf('%#06x|%-4d|%5s', 0xa, 3, 'ab')).toBe('0x000a|3   |   ab');
    expect(kernelPrintf('%x %llx', -1, -1n)).toBe('ffffffff ffffffffffffffff');
    expect(kernelPrintf('%d %u %%', -5, -1)).toBe('-5 4294967295 %');
    expect(kernelPrintf('%hhx %hx', 0x1ff, 0x1ffff)).toBe('ff ffff');
  });

  it('refuses arguments that do not match the format', () => {
    expect(() => kernelPrintf('%x')).toThrow(/needs more/);
    expect(() => kernelPrintf('%x', 1, 2)).toThrow(/takes 1/);
    expect(() => kernelPrintf('%x', 'a')).toThrow(/string/);
  });
});
