import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { IommufdError } from '@ioasid/core';
import { nestable, openWalk, parseIova, walkPresets } from './walk.js';

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

  it('a nested domain explains both stages: each stage-1 table page found by stage 2, then stage 2 of the output', () => {
    const nested = new Set<string>();
    for (const p of walkPresets().filter((q) => nestable(q.id))) {
      let w;
      try {
        w = openWalk(p.id, 'nested');
      } catch (e) {
        // A unit without nesting refuses through the uAPI, which the view shows.
        expect(e).toBeInstanceOf(IommufdError);
        continue;
      }
      const e = w.explain(w.base + 0x1234n, false);
      expect(e).toMatchObject({ binding: 'nested', ok: true });
      expect(e.pa! & 0xfffn).toBe(0x234n);
      expect(e.stages.map((s) => s.stage)).toEqual(['stage 1', 'stage 2']);
      const s1 = e.stages[0].steps!;
      expect(s1.at(-1)!.kind).toBe('leaf');
      for (const st of s1) expect(st.stage2!.at(-1)).toMatchObject({ kind: 'leaf', pfn: st.tablePfn });
      expect(BigInt(e.stages[1].steps!.at(-1)!.pfn) * 4096n + 0x234n).toBe(e.pa);
      // Outside what the guest mapped: a stage-1 fault, no stage 2.
      const miss = w.explain(w.base + (4n << 20n), false);
      expect(miss).toMatchObject({ ok: false, stage2: false });
      nested.add(p.id.split(':')[0]);
    }
    expect([...nested].sort()).toEqual(['smmuv3', 'vtd']);
  });

  it('parses IOVAs in hex or decimal and refuses the rest', () => {
    expect(parseIova('0x4000_1000')).toBe(0x40001000n);
    expect(parseIova('4096')).toBe(4096n);
    expect(parseIova('0x1' + '0'.repeat(16))).toBeNull();
    expect(parseIova('page')).toBeNull();
  });
});
