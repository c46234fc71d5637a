import { describe, expect, it } from 'vitest';
import { describeProfileValue, parseProfileRegister } from './profile-register.js';

describe('parseProfileRegister', () => {
  it('reads hex strings with or without 0x, and bigints', () => {
    expect(parseProfileRegister('cap', '0x19ed008c40780c66', 64, '0x1')).toEqual({ ok: true, value: 0x19ed008c40780c66n });
    expect(parseProfileRegister('cap', ' 58f77ef22294a5a ', 64, '0x1')).toEqual({ ok: true, value: 0x58f77ef22294a5an });
    expect(parseProfileRegister('cap', 5n, 64, '0x1')).toEqual({ ok: true, value: 5n });
  });
  it('takes a plain number only for registers of 32 bits or fewer', () => {
    expect(parseProfileRegister('ver', 0x60, 32, '0x60')).toEqual({ ok: true, value: 0x60n });
    expect(parseProfileRegister('capPtr', 0x40, 8, '0x40')).toEqual({ ok: true, value: 0x40n });
    expect(parseProfileRegister('cap', 42, 64, '0x19ed008c40780c66')).toEqual({ ok: false, error: 'registers.cap: expected a 64-bit hex string like 0x19ed008c40780c66, got 42' });
  });
  it('refuses values that do not fit, and says what it got', () => {
    expect(parseProfileRegister('capPtr', '0x100', 8, '0x40')).toEqual({ ok: false, error: 'registers.capPtr: expected a 8-bit hex string like 0x40, got "0x100" (the value does not fit in 8 bits)' });
    expect(parseProfileRegister('ecap', undefined, 64, '0x1')).toEqual({ ok: false, error: 'registers.ecap: expected a 64-bit hex string like 0x1, got nothing' });
    expect(parseProfileRegister('ecap', -1n, 64, '0x1').ok).toBe(false);
  });
  it('describes any value without throwing', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(describeProfileValue(cyclic)).toBe('[object Object]');
    expect(describeProfileValue(7n)).toBe('7n');
  });
});
