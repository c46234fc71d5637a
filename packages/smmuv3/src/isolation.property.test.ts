/**
 * DMA isolation on the real SMMUv3 formats: `IsolationWorld` (core) on a QEMU virt SMMUv3 unit. Paging HWPTs
 * and the automatic domain use the VMSAv8-64 tables of arm-lpae-s1 / arm-lpae-s2 (a nest parent is a stage-2
 * table), with 4 KiB granules; huge mappings use 2 MiB blocks. Stage 1 cannot express write-only
 * permissions (io-pgtable-arm maps them read/write), so the world issues write-only steps read/write.
 */
import { describe, it } from 'vitest';
import fc from 'fast-check';
import type { HostProfile } from '@ioasid/core';
import { ISOLATION_OP_WORDS, IsolationWorld, isolationOp } from '@ioasid/core/testing';
import { plugin } from './index.js';
import { qemuVirtSmmuv3Nested } from './presets.js';

const DEVICES = ['0000:00:02.0', '0000:00:03.0', '0000:00:04.0'];

function profile(): HostProfile {
  const u = qemuVirtSmmuv3Nested.units[0];
  return {
    name: 'SMMUv3 isolation',
    units: [{ id: u.id, vendor: 'smmuv3', registers: { idr: [...u.idr], iidr: u.iidr, aidr: u.aidr } }],
    devices: DEVICES.map((bdf, i) => ({ bdf, unit: u.id, group: i + 1, streamId: 0x10 + i * 8 })),
  };
}

const steps = fc.array(fc.array(fc.nat(1000), { minLength: ISOLATION_OP_WORDS, maxLength: ISOLATION_OP_WORDS }), { minLength: 1, maxLength: 30, size: 'max' });

describe('DMA isolation on SMMUv3 VMSAv8-64 tables (property)', () => {
  it('every device reaches exactly what its IOAS maps, after every step', async () => {
    await fc.assert(
      fc.asyncProperty(steps, fc.array(fc.nat(200), { minLength: 2, maxLength: 2 }), async (words, pick) => {
        const w = new IsolationWorld({ plugins: [plugin], profile: profile(), devices: DEVICES, writeOnly: false });
        await w.run(words.map((x) => isolationOp(x)), pick);
      }),
      { numRuns: 25 },
    );
  });
});
