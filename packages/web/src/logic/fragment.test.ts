import { describe, expect, it } from 'vitest';
import { formatFragment, parseFragment } from './fragment.js';

describe('URL fragment state', () => {
  it('round-trips a pasted fault line with spaces, brackets, ampersands and newlines', () => {
    const input = 'DMAR: [DMA Read NO_PASID] Request device [5c:00.0] fault addr 0x7ff000 & more\nsecond line #2';
    const hash = formatFragment({ view: 'decode', input, params: { vendor: 'vtd' } });
    expect(hash.startsWith('#decode=')).toBe(true);
    expect(hash).not.toContain(' ');
    expect(hash.split('&')).toHaveLength(2);
    expect(parseFragment(hash)).toEqual({ view: 'decode', input, params: { vendor: 'vtd' } });
  });

  it('falls back to the decode view for an empty or unknown fragment', () => {
    expect(parseFragment('')).toEqual({ view: 'decode', input: '', params: {} });
    expect(parseFragment('#nonsense=1').view).toBe('decode');
  });

  it('keeps a malformed percent sequence as text instead of throwing', () => {
    expect(parseFragment('#decode=100%25%zz').input).toBe('100%25%zz');
  });

  it('ignores inherited property names and repeated keys', () => {
    const s = parseFragment('#walk=0x1000&__proto__=x&preset=a&preset=b');
    expect(s.params.preset).toBe('a');
    expect(Object.getPrototypeOf(s.params)).toBe(Object.prototype);
    expect(Object.keys(s.params)).toEqual(['__proto__', 'preset']);
  });
});
