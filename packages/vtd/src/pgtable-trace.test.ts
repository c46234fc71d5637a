import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { mappedDevice } from '@ioasid/core/testing';
import { plugin, presets } from './index.js';

// A VT-d server preset (scalable mode, 4-level second stage), a device attached to an IOAS.
function attached() {
  const profile = presets.find((p) => p.name.includes('Sapphire Rapids')) ?? presets[0];
  return mappedDevice({ plugins: [plugin], profile, iova: 0x12345000n, length: 8192n });
}

describe('VT-d walk trace (PciDevice.explain)', () => {
  it('reads one entry per level, root to leaf, at the indices the IOVA selects', () => {
    const { dev } = attached();
    const e = dev.explain(0x12345678n);
    expect(e.ok).toBe(true);
    const steps = e.stages[0].steps!;
    // 0x12345 as a page number: level 3..0 indices (pfn / 512^l) mod 512 = 0, 0, 0x91, 0x145.
    expect(steps.map((s) => [s.level, s.index, s.kind])).toEqual([
      [steps.length - 1, 0, 'table'],
      ...(steps.length === 5 ? [[3, 0, 'table']] : []),
      [2, 0, 'table'],
      [1, 0x91, 'table'],
      [0, 0x145, 'leaf'],
    ]);
    // Each table entry points at the table the next step read; the leaf's address is the result's page.
    for (let i = 0; i + 1 < steps.length; i++) expect(steps[i].pfn).toBe(steps[i + 1].tablePfn);
    expect(BigInt(steps.at(-1)!.pfn) * 4096n + 0x678n).toBe(e.pa);
    // Second-stage leaf of a read/write mapping: R (bit 0) and W (bit 1) set, the address in 51:12.
    const leaf = steps.at(-1)!.entry;
    expect(leaf & 3n).toBe(3n);
    expect((leaf >> 12n) & ((1n << 40n) - 1n)).toBe(BigInt(steps.at(-1)!.pfn));
  });

  it('says the IOTLB missed first and hit after the translation filled it', () => {
    const { dev } = attached();
    expect(dev.explain(0x12345000n).iotlb).toBe('miss');
    expect(dev.explain(0x12345000n).iotlb).toBe('hit');
  });

  it('for an unmapped IOVA shows where the walk stopped, the fault record and the DMAR line', () => {
    const { dev } = attached();
    const e = dev.explain(0x7000_0000n, { write: true });
    expect(e.ok).toBe(false);
    expect(e.failure).toBe('not-present');
    expect(e.stages[0].steps!.at(-1)!.kind).toBe('invalid');
    expect(e.record?.length).toBe(16);
    // Scalable mode reports a second-stage entry with neither R nor W as reason 0x79 (dmar.c fault reason table).
    expect(e.linux?.[0]).toMatch(/^DMAR: \[DMA Write NO_PASID\] Request device \[[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\] fault addr 0x70000000 \[fault reason 0x79\] SM: Read\/Write permission error in second-level paging entry$/);
  });
});

describe('decode words', () => {
  it('a register value carries its word and layout for a bit diagram', async () => {
    const { vtdDecoder } = await import('./decode.js');
    const r = vtdDecoder.decode('0xd2008c40660462', 'cap');
    expect(r.ok).toBe(true);
    const w = r.ok ? r.value.words?.[0] : undefined;
    expect(w).toMatchObject({ name: 'CAP_REG', value: 0xd2008c40660462n, width: 64 });
    const mgaw = w!.layout.find((f) => f.name === 'MGAW');
    expect(mgaw).toEqual({ name: 'MGAW', hi: 21, lo: 16 });
  });
});
