import { describe, expect, it } from 'vitest';
import { DTE0_LAYOUT, DTE1_LAYOUT, DTE2_LAYOUT, decodeDte, dteFieldList, encodeDte } from './dte.js';

describe('device table entries', () => {
  it('place every field at its Linux bit', () => {
    const r = encodeDte({ V: 1, TV: 1, HAD: 3, Mode: 3, hostRoot: 0x12345000n, IR: 1, IW: 1, DomainID: 0xe, I: 1, GuestPagingMode: 1, IntCtl: 2, IV: 1, IntTabLen: 9 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [d0, d1, d2] = r.value;
    expect(d0).toBe(1n | 2n | (3n << 7n) | (3n << 9n) | 0x12345000n | (1n << 61n) | (1n << 62n));
    expect(d1).toBe(0xen | (1n << 32n));
    expect(d2).toBe(1n | (9n << 1n) | (1n << 54n) | (2n << 60n));
  });

  it('splits the GCR3 table root over 14:12, 30:15 and 51:31 and assembles it back', () => {
    const root = 0xf_edcb_a987_6000n;
    const r = encodeDte({ V: 1, GV: 1, GLX: 1, gcr3Root: root });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = root >> 12n;
    expect((r.value[0] >> 58n) & 7n).toBe(p & 7n);
    expect((r.value[1] >> 16n) & 0xffffn).toBe((p >> 3n) & 0xffffn);
    expect(r.value[1] >> 43n).toBe(p >> 19n);
    const d = decodeDte(r.value);
    expect([d.gcr3Root, d.GLX, d.GV]).toEqual([root, 1, 1]);
    expect(encodeDte({ gcr3Root: 0x1001n }).ok).toBe(false);
    expect(encodeDte({ Mode: 8 }).ok).toBe(false);
  });

  it('round-trips any entry losslessly, reserved bits and data[3] included', () => {
    const q: [bigint, bigint, bigint, bigint] = [0xffffffffffffffffn, 0xfedcba9876543210n, 0x0123456789abcdefn, 0x5555n];
    const d = decodeDte(q);
    expect(d.reserved).toEqual([(0x1fn << 2n) | (1n << 63n), 1n << 42n, (1n << 52n) | (1n << 53n) | (1n << 59n), 0x5555n].map((m, i) => q[i] & m));
    const names = Object.fromEntries([...DTE0_LAYOUT, ...DTE1_LAYOUT, ...DTE2_LAYOUT].map((f) => [f.name, d[f.name]]));
    const back = encodeDte({ ...names, data3: q[3] });
    expect(back.ok && back.value.map((w, i) => w | d.reserved[i])).toEqual(q);
    expect(dteFieldList(d).DomainID).toBe(0x3210);
  });
});
