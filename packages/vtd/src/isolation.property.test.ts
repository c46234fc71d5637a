/**
 * DMA isolation on the real VT-d second-stage format: `IsolationWorld` (core) on the Sapphire Rapids unit,
 * whose SAGAW offers 4-level tables only, so every paging domain is a 4-level second-stage table and its walks
 * go through the paging-structure cache (pte.ts) by default. No nest parent: with one, the IOAS would refuse
 * read-only mappings (ERRATA_772415_SPR17). The window of small pages crosses a 2 MiB
 * boundary (two leaf tables), and unmaps that empty a leaf table free it: a stale table pointer in the cache
 * would show as a translation the reference model does not have.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { HostProfile } from '@ioasid/core';
import { ISOLATION_OP_WORDS, IsolationWorld, WINDOW_START, isolationOp } from '@ioasid/core/testing';
import { PERM_READ } from '@ioasid/core/driver';
import { plugin } from './index.js';
import { findVtdPreset } from './presets.js';

const DEVICES = ['0000:00:02.0', '0000:00:03.0', '0000:00:04.0'];

function profile(): HostProfile {
  const spr = findVtdPreset('sapphire-rapids-class');
  if (!spr) throw new Error('missing preset');
  const u = spr.units[0];
  return {
    name: 'VT-d isolation',
    units: [{ id: u.id, vendor: 'vtd', registers: { ver: u.ver, cap: u.cap, ecap: u.ecap } }],
    devices: DEVICES.map((bdf, i) => ({ bdf, unit: u.id, group: i + 1 })),
  };
}

const steps = fc.array(fc.array(fc.nat(1000), { minLength: ISOLATION_OP_WORDS, maxLength: ISOLATION_OP_WORDS }), { minLength: 1, maxLength: 30, size: 'max' });

describe('DMA isolation on VT-d second-stage tables (property)', () => {
  it('every device reaches exactly what its IOAS maps, after every step', async () => {
    await fc.assert(
      fc.asyncProperty(steps, fc.array(fc.nat(200), { minLength: 2, maxLength: 2 }), async (words, pick) => {
        const w = new IsolationWorld({ plugins: [plugin], profile: profile(), devices: DEVICES, nestParent: false });
        await w.run(words.map((x) => isolationOp(x)), pick);
      }),
      { numRuns: 25 },
    );
  });

  it('sees the new leaf table after the old one was freed and a new one took its 2 MiB region', () => {
    const w = new IsolationWorld({ plugins: [plugin], profile: profile(), devices: DEVICES, nestParent: false });
    w.apply({ op: 'attach', dev: 0, target: 0 });
    w.apply({ op: 'map', ioas: 0, start: 0, n: 4, read: true, write: true });
    // Walks fill the IOTLB and the paging-structure cache with the leaf table of this region.
    for (let p = 0; p < 4; p++) expect(w.devs[0].translatePage(WINDOW_START + p, PERM_READ)).toBeGreaterThan(0);
    w.apply({ op: 'unmapAll', ioas: 0 });
    w.apply({ op: 'map', ioas: 0, start: 2, n: 4, read: true, write: false });
    w.checkTranslations();
  });
});
