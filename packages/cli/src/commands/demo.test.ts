import { describe, expect, it } from 'vitest';
import { runDemo } from './demo.js';
import { memoryOutput } from '../output.js';

describe('ioasid demo', () => {
  it('runs end to end and leaves nothing pinned', () => {
    const out = memoryOutput();
    const host = runDemo(out);
    expect(out.text()).toContain('IOMMU_IOAS_ALLOC -> ioas_id 1');
    expect(out.text()).toContain('EEXIST');
    expect(host.process.lockedPages).toBe(0);
  });
});
