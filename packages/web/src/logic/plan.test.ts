import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { loadHost, planHosts } from './plan.js';
import { presetList, vendors } from './plugins.js';

// Boot lines as drivers/iommu/intel/dmar.c prints them (alloc_iommu), with the registers of real machines:
// a Sapphire Rapids server (scalable mode, nesting) and a Broadwell desktop (legacy mode).
const SERVER = [
  '[    0.011234] DMAR: dmar0: reg_base_addr aa3fc000 ver 6:0 cap 9ed008c40780466 ecap 3ee9e86f050df',
  '[    0.412345] pci 0000:00:02.0: Adding to iommu group 0',
].join('\n');
const LAPTOP = '[    0.020000] DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap c0000020660462 ecap f0101a';

describe('loadHost', () => {
  it('probes a boot log into a host with its unit', () => {
    const h = loadHost({ name: 'server.log', text: SERVER }, vendors());
    expect(h.ok).toBe(true);
    if (h.ok) {
      expect(h.source).toBe('boot log');
      expect(h.profile.units.map((u) => u.id)).toEqual(['dmar0']);
    }
  });

  it('reads a JSON host profile as a profile', () => {
    const preset = presetList()[0].profile;
    const h = loadHost({ name: 'p.json', text: JSON.stringify(preset) }, vendors());
    expect(h.ok && h.source).toBe('profile');
  });

  it('says what is wrong with a log that has no IOMMU and a broken profile', () => {
    const none = loadHost({ name: 'x', text: 'Linux version 6.8\nhello' }, vendors());
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.error).toContain('no IOMMU unit found');
    const bad = loadHost({ name: 'bad.json', text: '{"name": 1}' }, vendors());
    expect(bad.ok).toBe(false);
  });
});

describe('planHosts', () => {
  it('plans one host with the host and baseline policies', () => {
    const h = loadHost({ name: 'server', text: SERVER }, vendors());
    if (!h.ok) throw new Error(h.error);
    const answers = planHosts([h.profile], vendors());
    expect(answers.map((a) => a.policy)).toEqual(['host', 'baseline']);
    expect(answers[0].plan?.qemu).toContain('-device intel-iommu');
  });

  it('names the host that limits a fleet baseline', () => {
    const a = loadHost({ name: 'server', text: SERVER }, vendors());
    const b = loadHost({ name: 'laptop', text: LAPTOP }, vendors());
    if (!a.ok || !b.ok) throw new Error('probe failed');
    const [base] = planHosts([a.profile, b.profile], vendors());
    expect(base.policy).toBe('baseline');
    expect(base.plan).toBeDefined();
    expect(base.limitedBy).toEqual(['laptop']);
  });
});
