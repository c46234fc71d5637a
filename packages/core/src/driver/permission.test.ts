import { describe, expect, it } from 'vitest';
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, permAllowed, permNeeded, permOf } from './index.js';

describe('permOf', () => {
  it('maps each flag to its PERM_* request bit, booleans and record bits alike', () => {
    expect(permOf({})).toBe(0);
    expect(permOf({ read: true })).toBe(PERM_READ);
    expect(permOf({ write: 1 })).toBe(PERM_WRITE);
    expect(permOf({ exec: 1 << 20 })).toBe(PERM_EXEC);
    expect(permOf({ priv: true })).toBe(PERM_PRIV);
    expect(permOf({ read: 0, write: false, exec: 0, priv: false })).toBe(0);
    expect(permOf({ read: 1, write: 1, exec: 1, priv: 1 })).toBe(PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV);
  });

  it('gives request bits the grant checks read at the right privilege level', () => {
    const userRead = permOf({ read: 1 });
    const privWrite = permOf({ write: 1, priv: 1 });
    expect(permNeeded(userRead)).toBe(PERM_READ);
    expect(permNeeded(privWrite)).toBe(PERM_WRITE << 4);
    expect(permAllowed(PERM_WRITE, privWrite)).toBe(false);
    expect(permAllowed(PERM_WRITE << 4, privWrite)).toBe(true);
  });
});
