import { readLe64Words } from '@ioasid/core/driver';
import { describe, it, expect } from 'vitest';
import { encodeCommand, decodeCommand, encodeCommandWords, tlbiCoverage, linuxTlbiRangeChunks, atcInvCoverage, linuxAtcInvFields, validateViommuInvalidation, cmdqErrorName, CMDQ_OP } from './commands.js';

describe('command encode/decode', () => {
  it('places TLBI_NH_VA fields', () => {
    const r = encodeCommandWords('CMD_TLBI_NH_VA', { VMID: 3, ASID: 0x55, NUM: 1, SCALE: 2, TG: 1, TTL: 3, Leaf: 1, Addr: 0x40000000n });
    expect(r).toEqual({ ok: true, value: [0x0055000300201012n, 0x40000000n | (1n << 10n) | (3n << 8n) | 1n] });
  });
  it('round-trips every opcode', () => {
    for (const name of Object.keys(CMDQ_OP) as (keyof typeof CMDQ_OP)[]) {
      const e = encodeCommand(name, {});
      expect(e.ok).toBe(true);
      const d = e.ok ? decodeCommand(e.value) : undefined;
      expect(d?.ok && d.value.name).toBe(name);
    }
    const sync = encodeCommand('CMD_SYNC', { CS: 1, MSH: 3, MSIAttr: 0xf, MSIData: 0, MSIAddr: 0x1000n });
    const d = sync.ok ? decodeCommand(sync.value) : undefined;
    expect(d?.ok && d.value.fields).toEqual({ CS: 1, MSH: 3, MSIAttr: 0xf, MSIData: 0, MSIAddr: 0x1000n });
  });
  it('rejects foreign fields and unknown opcodes', () => {
    expect(encodeCommand('CMD_SYNC', { SID: 1 }).ok).toBe(false);
    expect(encodeCommand('CMD_TLBI_NH_ALL', { VMID: 0x10000 }).ok).toBe(false);
    const b = new Uint8Array(16); b[0] = 0x7f;
    expect(decodeCommand(b).ok).toBe(false);
    expect(cmdqErrorName(3)).toBe('CERROR_ATC_INV_SYNC');
  });
});

describe('range helpers', () => {
  it('computes TLBI range coverage', () => {
    expect(tlbiCoverage({ Addr: 0x200000n, NUM: 1, SCALE: 2, TG: 1 })).toMatchObject({ kind: 'range', start: 0x200000n, last: 0x200000n + 8n * 4096n - 1n });
    expect(tlbiCoverage({ Addr: 0x1000n, TG: 0 })).toEqual({ kind: 'address', addr: 0x1000n });
  });
  it('splits like Linux and covers the request', () => {
    const chunks = linuxTlbiRangeChunks(0x100000n, 0x25000n, 12, true);
    let covered = 0n;
    for (const c of chunks) {
      const cov = tlbiCoverage(c);
      if (cov.kind === 'range') covered += cov.last - cov.start + 1n;
      expect(c.TTL).toBe(3);
    }
    expect(covered).toBe(0x25000n);
  });
  it('ATC_INV spans', () => {
    expect(linuxAtcInvFields(0x3000n, 0x2000n)).toEqual({ Addr: 0x0n, Size: 3 });
    expect(atcInvCoverage({ Addr: 0x0n, Size: 3 })).toEqual({ start: 0n, last: 0x7fffn });
  });
});

describe('vSMMU invalidation', () => {
  const ctx = { vmid: 9, vsidToSid: (v: number) => (v === 1 ? 0x100 : undefined) };
  const words = (name: Parameters<typeof encodeCommandWords>[0], f: Parameters<typeof encodeCommandWords>[1]) => {
    const r = encodeCommandWords(name, f);
    if (!r.ok) throw new TypeError(r.error);
    return r.value;
  };
  it('turns NSNH_ALL into NH_ALL in the vSMMU VMID', () => {
    expect(validateViommuInvalidation(words('CMD_TLBI_NSNH_ALL', {}), ctx)).toEqual({ ok: true, value: { op: 'CMD_TLBI_NH_ALL', cmd: [0x10n | (9n << 32n), 0n] } });
  });
  it('forces the VMID and translates vSIDs', () => {
    const r = validateViommuInvalidation(words('CMD_TLBI_NH_ASID', { VMID: 1, ASID: 2 }), ctx);
    expect(r.ok && readLe64Words(new Uint8Array(new BigUint64Array([r.value.cmd[0], r.value.cmd[1]]).buffer), 1)[0]).toBe(0x11n | (9n << 32n) | (2n << 48n));
    const c = validateViommuInvalidation(words('CMD_CFGI_CD', { SID: 1, SSID: 3 }), ctx);
    expect(c.ok && c.value.cmd[0]).toBe(0x05n | (3n << 12n) | (0x100n << 32n));
    expect(validateViommuInvalidation(words('CMD_ATC_INV', { SID: 2 }), ctx)).toMatchObject({ ok: false, error: { errno: 'EIO' } });
  });
  it('rejects other opcodes with EIO', () => {
    expect(validateViommuInvalidation(words('CMD_CFGI_STE', { SID: 1 }), ctx)).toMatchObject({ ok: false, error: { errno: 'EIO' } });
    expect(validateViommuInvalidation(words('CMD_TLBI_S12_VMALL', {}), ctx)).toMatchObject({ ok: false, error: { errno: 'EIO' } });
  });
  it('strict mode rejects RES0 bits', () => {
    const strict = { ...ctx, strict: { asidBits: 8, ssidBits: 0, rangeInvalidation: false, ats: true } };
    expect(validateViommuInvalidation(words('CMD_TLBI_NH_ASID', { ASID: 0x100 }), strict)).toMatchObject({ ok: false });
    expect(validateViommuInvalidation(words('CMD_TLBI_NH_ASID', { ASID: 0xff }), strict).ok).toBe(true);
  });
});
