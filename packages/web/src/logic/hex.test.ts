import { describe, expect, it } from 'vitest';
import { hexWords } from './hex.js';

describe('hexWords', () => {
  it('prints little-endian dwords, a short tail as its own bytes', () => {
    expect(hexWords(new Uint8Array([0x10, 0, 0, 0, 0x78, 0x56, 0x34, 0x12, 0xab]))).toBe('00000010 12345678 ab');
    expect(hexWords(new Uint8Array([]))).toBe('');
  });
});
