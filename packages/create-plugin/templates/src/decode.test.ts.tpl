import { describe, expect, it } from 'vitest';
import { PERM_WRITE } from '@ioasid/core/driver';
import { SERVER_CAP, decode, faultCodec, plugin } from './index.js';

describe('decoder (ioasid decode)', () => {
  it('is the plugin\'s optional decoder part', () => {
    expect(plugin.decoder?.vendor).toBe(plugin.id);
  });

  it('explains a CAP value field by field, with its word for a bit diagram', () => {
    const r = decode(`0x${SERVER_CAP.toString(16)}`, 'cap');
    if (!r.ok) throw new Error(r.error);
    expect(r.value.fields).toMatchObject({ VER_MAJOR: 1, IAS: 48, OAS: 52, PS2M: 1, PS1G: 1 });
    expect(r.value.words?.[0]).toMatchObject({ name: 'CAP', value: SERVER_CAP, width: 64 });
  });

  it('explains a fault record from its two words, with the log line and advice', () => {
    const rec = faultCodec.encodeFault({ unit: 0, rid: 0x0310, pasid: -1, addr: 0x7ff000n, perm: PERM_WRITE, failure: 'permission-write', stage2: false, recoverable: false, grpid: 0, last: true });
    const dv = new DataView(rec.buffer);
    const r = decode(`0x${dv.getBigUint64(0, true).toString(16)} 0x${dv.getBigUint64(8, true).toString(16)}`);
    if (!r.ok) throw new Error(r.error);
    expect(r.value.kind).toBe('fault');
    expect(r.value.fields).toMatchObject({ RID: 0x0310, REASON: 3, WR: 1, PV: 0, TYPE: 1, ADDR: '0x7ff000' });
    expect(r.value.summary).toBe('permission-write at 0x7ff000 from 03:02.0');
    expect(r.value.advice?.checks.length).toBeGreaterThan(0);
  });

  it('refuses what it cannot read, saying what it expected', () => {
    expect(decode('hello').ok).toBe(false);
    expect(decode('0x1 0x2 0x3').ok).toBe(false);
    expect(decode('0x0 0x0')).toEqual({ ok: false, error: 'not a fault record: TYPE is 0, a fault is 1' });
  });
});
