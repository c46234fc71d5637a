import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { mappedDevice } from '@ioasid/core/testing';
import { plugin, presets } from './index.js';

describe('AMD-Vi walk trace (PciDevice.explain)', () => {
  it('reads the v1 entries root to leaf; each PDE names the next level and points at the next table', () => {
    const { dev } = mappedDevice({ plugins: [plugin], profile: presets[0], iova: 0x1_2345_6000n, length: 4096n });
    const e = dev.explain(0x1_2345_6abcn);
    expect(e.ok).toBe(true);
    const steps = e.stages[0].steps!;
    expect(steps.at(-1)).toMatchObject({ level: 0, kind: 'leaf', index: 0x123456 % 512 });
    for (let i = 0; i + 1 < steps.length; i++) {
      expect(steps[i].kind).toBe('table');
      expect(steps[i].pfn).toBe(steps[i + 1].tablePfn);
      // PR set, NextLevel (bits 11:9) = the level of the table it points to, 1-based.
      expect(steps[i].entry & 1n).toBe(1n);
      expect(Number((steps[i].entry >> 9n) & 7n)).toBe(steps[i + 1].level + 1);
    }
    expect(BigInt(steps.at(-1)!.pfn) * 4096n + 0xabcn).toBe(e.pa);
  });
});
