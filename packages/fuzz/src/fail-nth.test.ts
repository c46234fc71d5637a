/**
 * Fail-nth on every vendor preset: every failure point of every creation path gives the site's errno,
 * changes nothing, and the scenario then completes and closes without a leak, in every close order.
 */
import { describe, expect, it } from 'vitest';
import { vendorHosts } from './hosts.js';
import { mockHost } from './__tests__/mock-host.js';
import { closeOrderLeaks, sweepPreset } from './fail-nth.js';

const hosts = [mockHost(), ...vendorHosts()];

describe('fail-nth sweep', () => {
  it.each(hosts.map((h) => [h.name, h] as const))('%s: every failure point is clean', (_name, vh) => {
    const r = sweepPreset(vh);
    expect(r.violations).toEqual([]);
    // The paths every vendor has were all reached with failures injected.
    for (const step of ['IOAS_ALLOC', 'IOAS_MAP 2 MiB into the domain', 'bind', 'attach IOAS (automatic domain)', 'HWPT_ALLOC paging', 'replace with the paging HWPT', 'FAULT_QUEUE_ALLOC'])
      expect(r.steps.find((s) => s.step === step)?.points, `${vh.name} ${step}`).toBeGreaterThan(0);
    // virtio-iommu has no dirty tracking, nest parent or vIOMMU: those steps are unsupported there.
    expect(r.points).toBeGreaterThanOrEqual(vh.vendor === 'virtio-iommu' ? 30 : 40);
  });

  it.each(hosts.map((h) => [h.name, h] as const))('%s: iommufd and queue fds closed in any order leak nothing', (_name, vh) => {
    const rotations = [(f: number[]) => f, (f: number[]) => [...f].reverse(), (f: number[]) => [...f.slice(1), f[0]]];
    for (const order of rotations) expect(closeOrderLeaks(vh, order)).toEqual([]);
  });

  it('the mock preset reaches every injection site', () => {
    const r = sweepPreset(mockHost());
    const sites = new Set(r.steps.flatMap((s) => [...s.sites]));
    expect([...sites].sort()).toEqual(['attach', 'domain-alloc', 'fd-alloc', 'invalidate', 'map', 'object-alloc', 'pin', 'queue-alloc', 'table-alloc', 'user-copy', 'vdevice-alloc', 'viommu-alloc']);
  });
});
