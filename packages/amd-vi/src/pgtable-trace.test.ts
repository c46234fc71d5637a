import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { createHost } from '@ioasid/core';
import { plugin, presets } from './index.js';

describe('AMD-Vi walk trace (PciDevice.explain)', () => {
  it('reads the v1 entries root to leaf; each PDE names the next level and points at the next table', () => {
    const profile = presets[0];
    const host = createHost({ plugins: [plugin], profile });
    const dev = host.device(profile.devices[0].bdf);
    const fd = host.openIommufd();
    dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    const va = host.process.mmap(4096);
    fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0x1_2345_6000n });
    dev.attachPt(ioas);
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
