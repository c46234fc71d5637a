import { describe, expect, it } from 'vitest';
import { runDemo } from './demo.js';
import { memoryOutput } from '../output.js';

describe('ioasid demo', () => {
  it('runs end to end: IOAS tour, a VT-d PRI fault answered through the pipeline, SMMUv3 nesting with a vEVENT', async () => {
    const out = memoryOutput();
    const { hosts } = await runDemo(out);
    const text = out.text();
    expect(text).toContain('IOMMU_IOAS_ALLOC -> ioas_id 1');
    expect(text).toContain('EEXIST');
    expect(text).toMatch(/boot: DMAR: dmar0: reg_base_addr/);
    expect(text).toContain('"faulted-in page!"');
    expect(text).toMatch(/kernel log: DMAR: \[DMA Write NO_PASID\] Request device/);
    expect(text).toContain('"guest data via S1+S2"');
    expect(text).toMatch(/vEVENT seq 0: event id 0x10, StreamID 0x8/);
    expect(hosts[0].process.lockedPages).toBe(0);
    expect(hosts[1].faults.stats.duplicateResponses).toBe(0);
    expect(hosts[1].faults.outstanding).toBe(0);
  });
});
