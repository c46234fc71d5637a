import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { priPresets, runPageRequest } from './pipeline.js';

describe('runPageRequest', () => {
  it('walks a VT-d page request from the device to the retry, with the real records', async () => {
    const vtd = priPresets().find((p) => p.id.startsWith('vtd:'));
    expect(vtd).toBeDefined();
    const run = await runPageRequest(vtd!.id, 'success');
    const titles = run.steps.map((s) => s.title);
    expect(titles).toEqual([
      'User space sets up',
      'The device faults',
      'The unit writes a page-request record',
      'The driver decodes it',
      'Routed by (device, PASID)',
      'User space reads the fault fd',
      'The handler answers',
      'The driver responds to the device',
      'The device retries',
    ]);
    // VT-d page request descriptors and page group responses are 256-bit descriptors.
    expect(run.steps[2].bytes?.length).toBe(32);
    expect(run.steps[5].bytes?.length).toBe(40);
    expect(run.steps[5].fields?.addr).toBe('0x40000000');
    expect(run.steps[8].text).toContain('faulted-in page!');
  });

  it('an INVALID answer makes the device give up', async () => {
    const run = await runPageRequest(undefined, 'invalid');
    expect(run.steps.at(-1)?.title).toBe('The device gives up');
  });

  it('offers a PRI preset of every vendor that has one', () => {
    const vendors = new Set(priPresets().map((p) => p.id.split(':')[0]));
    expect(vendors.has('vtd')).toBe(true);
    expect(vendors.has('smmuv3')).toBe(true);
  });
});
