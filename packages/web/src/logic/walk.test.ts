import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { openWalk, parseIova, walkPresets } from './walk.js';

describe('walk view logic', () => {
  it('explains a mapped IOVA on every vendor preset that has a table format with a trace', () => {
    const seen = new Set<string>();
    for (const p of walkPresets()) {
      const w = openWalk(p.id);
      const e = w.explain(w.base + 0x1234n, false);
      if (!e.ok) continue;
      expect(e.pa! & 0xfffn).toBe(0x234n);
      const steps = e.stages[0]?.steps;
      if (steps) {
        expect(steps.at(-1)!.kind).toBe('leaf');
        seen.add(p.id.split(':')[0]);
      }
    }
    expect([...seen].sort()).toEqual(['amd-vi', 'smmuv3', 'vtd']);
  });

  it('parses IOVAs in hex or decimal and refuses the rest', () => {
    expect(parseIova('0x4000_1000')).toBe(0x40001000n);
    expect(parseIova('4096')).toBe(4096n);
    expect(parseIova('0x1' + '0'.repeat(16))).toBeNull();
    expect(parseIova('page')).toBeNull();
  });
});
