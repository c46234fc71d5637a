import { describe, expect, it } from 'vitest';
import { faultAdvice, recordAdvice, type FaultSubject } from './advice.js';
import type { TranslationFailure } from './fault.js';

const subject: FaultSubject = { device: '0000:5c:00.0', address: 0x7ff000n, access: 'read', pasid: -1 };

describe('fault advice', () => {
  it('names the device and the address first, for every failure kind', () => {
    const kinds: TranslationFailure[] = ['not-present', 'permission-read', 'permission-write', 'permission-exec', 'permission-priv', 'address-size', 'table-fault', 'blocked', 'no-context'];
    for (const k of kinds) {
      const a = faultAdvice(k, subject);
      expect(a.causes.length, k).toBeGreaterThan(0);
      expect(a.checks[0], k).toContain("lspci -vvs 0000:5c:00.0");
      expect(a.checks[1], k).toBe('Which address: 0x7ff000, a read without a PASID.');
    }
  });

  it('an unmapped IOVA: use after unmap, a missing IOAS map, and a wrong PASID only when there is one', () => {
    const a = faultAdvice('not-present', subject);
    expect(a.causes.join('\n')).toMatch(/already freed or unmapped/);
    expect(a.causes.join('\n')).toMatch(/IOMMU_IOAS_MAP/);
    expect(a.causes.join('\n')).not.toMatch(/wrong PASID/);
    expect(faultAdvice('not-present', { ...subject, pasid: 3 }).causes.join('\n')).toMatch(/wrong PASID: 3/);
  });

  it("puts the vendor's causes first and its checks after the subject's; a stage-2 fault names the VMM's map", () => {
    const a = faultAdvice('permission-write', { ...subject, access: 'write', stage2: true }, { causes: ['vendor cause'], checks: ['vendor check'] });
    expect(a.causes[0]).toBe('vendor cause');
    expect(a.causes[1]).toMatch(/^Stage 2 .* guest-physical 0x7ff000/);
    expect(a.checks[2]).toBe('vendor check');
  });

  it('a record without a failure kind keeps its own causes, with the subject checks; a bare requester is not taken for a BDF', () => {
    const a = recordAdvice({ device: 'StreamID 0x100', address: 5n, access: '', pasid: -1, addressIs: 'interrupt index' }, ['c'], ['k']);
    expect(a.causes).toEqual(['c']);
    expect(a.checks[0]).toMatch(/^Which device: StreamID 0x100\. Map it/);
    expect(a.checks[1]).toBe('Which interrupt index: 0x5.');
    expect(a.checks.at(-1)).toBe('k');
    expect(faultAdvice('blocked', { ...subject, device: '5c:00.0' }).checks[0]).toContain("lspci -vvs 5c:00.0");
  });
});
