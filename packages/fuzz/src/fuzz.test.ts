/**
 * A short fuzz campaign on every real vendor (the long one is `npm run fuzz`), and the machinery's own
 * checks: a campaign is reproducible from its seed, a reproducer replays, and shrinking keeps the bug.
 */
import { describe, expect, it } from 'vitest';
import { firstPerVendor, vendorHosts } from './hosts.js';
import { mockHost } from './__tests__/mock-host.js';
import { genOp, replay, rng, runOps, shrinkList, violationKind, type Op } from './fuzz.js';
import { reproducer, runCampaign } from './campaign.js';

describe('fuzzing on real vendors', () => {
  it('a short campaign over one preset of every vendor and the mock finds no violation', async () => {
    const rep = await runCampaign({ calls: 12_000, seed: 7, sessionCalls: 1000, hosts: [mockHost(), ...firstPerVendor(vendorHosts())] });
    expect(rep.findings.map(reproducer)).toEqual([]);
    expect(rep.calls).toBe(12_000);
    // Most calls are hostile: they fail, and each failure was checked against the snapshot.
    expect(rep.failedCalls).toBeGreaterThan(rep.calls / 3);
    expect(Object.keys(rep.perVendor).sort()).toEqual(['amd-vi', 'mock', 'smmuv3', 'virtio-iommu', 'vtd']);
  }, 120_000);

  it('a session is a pure function of its seed: the same operations, the same outcome', async () => {
    const vh = firstPerVendor(vendorHosts()).find((h) => h.vendor === 'smmuv3')!;
    const run = async () => {
      const r = rng(42);
      return runOps(vh, 400, (s) => genOp(r, s), 42);
    };
    const [a, b] = [await run(), await run()];
    expect(a.ops).toEqual(b.ops);
    expect(a.failed).toBe(b.failed);
    expect((await replay(vh, a.ops, 42)).failed).toBe(a.failed);
  });

  it('shrinking keeps exactly the operations a failure needs', async () => {
    const ops: Op[] = Array.from({ length: 40 }, (_, i) => ({ k: i === 7 ? 'fault_alloc' : i === 31 ? 'bind' : 'ioas_alloc', a: [i] }));
    // A failure that needs the fault_alloc and the bind, in that order.
    const fails = async (c: Op[]) => {
      const f = c.findIndex((o) => o.k === 'fault_alloc');
      return f >= 0 && c.slice(f).some((o) => o.k === 'bind');
    };
    expect(await shrinkList(ops, fails)).toEqual([ops[7], ops[31]]);
    expect(violationKind({ index: 0, op: ops[0], what: 'frames in use: 812, expected 800' })).toBe('ioas_alloc:frames in use: #, expected #');
  });

  it('a reproducer replays clean operations without a violation', async () => {
    const vh = mockHost();
    const ops: Op[] = [
      { k: 'ioas_alloc', a: [] },
      { k: 'fault_alloc', a: [] },
      { k: 'bind', a: [0] },
      { k: 'hwpt_alloc', a: [0, 1, 0, 2] },
      { k: 'attach', a: [0, 4, -1] },
      { k: 'dma', a: [0, '1048576', 16, 0, -1] },
      { k: 'respond', a: [1] },
    ];
    const r = await replay(vh, ops, 1);
    expect(r.violation).toBeNull();
    expect(r.failed).toBe(0);
  });
});
