import { describe, it, expect } from 'vitest';
import { presets } from './presets.js';
import { parseSmmuRegistersHex } from './registers.js';
import { smmuNormalizedCaps } from './features.js';

describe('presets', () => {
  it('have six hex IDRs per unit and decodable registers', () => {
    for (const p of presets) {
      for (const u of p.units) {
        expect(u.idr).toHaveLength(6);
        expect(parseSmmuRegistersHex(u).ok).toBe(true);
      }
      for (const d of p.devices) expect(p.units.some((u) => u.id === d.unit)).toBe(true);
    }
  });
  it('offer a PASID-capable recoverable-fault device where the unit has substreams', () => {
    for (const p of presets) {
      const u = parseSmmuRegistersHex(p.units[0]);
      if (!u.ok) throw new TypeError(u.error);
      const caps = smmuNormalizedCaps(u.value);
      if (caps.pasidBits > 0 && (caps.pri || caps.stall)) {
        expect(p.devices.some((d) => (d.pri || d.stall) && (d.pasidBits ?? 0) > 0)).toBe(true);
      }
    }
  });
});
