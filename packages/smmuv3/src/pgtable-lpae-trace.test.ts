import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { mappedDevice } from '@ioasid/core/testing';
import { plugin, presets } from './index.js';

describe('SMMUv3 walk trace (PciDevice.explain)', () => {
  it('reads the descriptors of a 4K-granule walk: tables with type 0b11, the page with its output address', () => {
    const { dev } = mappedDevice({ plugins: [plugin], profile: presets[0], iova: 0x4020_3000n, length: 4096n });
    const e = dev.explain(0x4020_3010n);
    expect(e.ok).toBe(true);
    const steps = e.stages[0].steps!;
    expect(steps.at(-1)!.kind).toBe('leaf');
    expect(steps.slice(0, -1).every((s) => s.kind === 'table' && (s.entry & 3n) === 3n)).toBe(true);
    // Level-3 page descriptor: bits 1:0 = 0b11, and the output address is the translated page.
    expect(steps.at(-1)!.entry & 3n).toBe(3n);
    expect(BigInt(steps.at(-1)!.pfn) * 4096n + 0x10n).toBe(e.pa);
    // 4K granule, 512 entries: the level-3 index is IOVA bits 20:12, the level-2 index bits 29:21 (0x40203010: 0x3 and 0x1).
    expect(steps.at(-1)!.index).toBe(0x3);
    expect(steps.at(-2)!.index).toBe(0x1);
    for (let i = 0; i + 1 < steps.length; i++) expect(steps[i].pfn).toBe(steps[i + 1].tablePfn);
  });
});
