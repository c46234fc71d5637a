import { readLe64Words } from '@ioasid/core/driver';
import { describe, it, expect } from 'vitest';
import { SmmuV3Vendor } from './vendor.js';
import { smmuDecoder } from './decode.js';
import { mmu700Platform, nvidiaGrace, presets, qemuVirtSmmuv3 } from './presets.js';
import { encodeEvent } from './records.js';
import { encodeCommandWords } from './commands.js';
import { encodePriRequest } from './records.js';

const vendor = new SmmuV3Vendor();
const q = qemuVirtSmmuv3.units[0];
const qemuRaw = { idr: [...q.idr], iidr: q.iidr, aidr: q.aidr };

function errorOf(r: { ok: boolean; error?: string }): string {
  if (r.ok) throw new TypeError('expected an error');
  return r.error!;
}

describe('decodeRegisters', () => {
  it('decodes every preset unit and normalizes the profile registers', () => {
    for (const p of presets) {
      for (const u of p.units) {
        const d = vendor.decodeRegisters({ idr: [...u.idr], iidr: u.iidr, aidr: u.aidr });
        expect(d.ok, `${p.id}/${u.id}`).toBe(true);
        if (!d.ok) continue;
        expect(d.value.vendor).toBe('smmuv3');
        expect(d.value.registers.map((r) => r.name)).toEqual(['IDR0', 'IDR1', 'IDR2', 'IDR3', 'IDR4', 'IDR5', 'IIDR', 'AIDR']);
        expect(d.value.profileRegisters).toEqual({ idr: u.idr.map((s) => s.toLowerCase()), iidr: u.iidr, aidr: u.aidr });
      }
    }
  });

  it('accepts numbers and bare hex, and writes back 8-digit hex', () => {
    const d = vendor.decodeRegisters({ idr: [0x0d44101a, '2730010', 0, '0x1404', 0, '0x74'], iidr: 0, aidr: '1' });
    expect(d.ok && d.value.profileRegisters).toEqual({
      idr: ['0x0d44101a', '0x02730010', '0x00000000', '0x00001404', '0x00000000', '0x00000074'],
      iidr: '0x00000000',
      aidr: '0x00000001',
    });
    expect(d.ok && d.value.registers[0].fields).toMatchObject({ S1P: 1, S2P: 0, ST_LEVEL: 1 });
    expect(d.ok && d.value.caps).toMatchObject({ vendor: 'smmuv3', nesting: false, pasidBits: 0, version: '3.1' });
  });

  it('names the field and what was expected', () => {
    expect(errorOf(vendor.decodeRegisters([] as unknown as Record<string, unknown>))).toBe(
      'smmuv3 registers: expected an object { idr: [6 values], iidr, aidr }, got an array of 0',
    );
    expect(errorOf(vendor.decodeRegisters({ iidr: '0', aidr: '0' }))).toBe(
      'smmuv3 registers: idr: expected an array of 6 hex u32 values (IDR0..IDR5), got nothing',
    );
    expect(errorOf(vendor.decodeRegisters({ ...qemuRaw, idr: qemuRaw.idr.slice(0, 5) }))).toBe(
      'smmuv3 registers: idr: expected 6 values (IDR0..IDR5), got 5',
    );
    expect(errorOf(vendor.decodeRegisters({ ...qemuRaw, idr: [...qemuRaw.idr.slice(0, 2), 'zz', ...qemuRaw.idr.slice(3)] }))).toBe(
      "smmuv3 registers: idr[2] (IDR2): expected a 32-bit hex value such as '0x00000000', got 'zz' (not hexadecimal)",
    );
    expect(errorOf(vendor.decodeRegisters({ ...qemuRaw, idr: ['0x100000000', ...qemuRaw.idr.slice(1)] }))).toContain('idr[0] (IDR0)');
    expect(errorOf(vendor.decodeRegisters({ ...qemuRaw, idr: [-1, ...qemuRaw.idr.slice(1)] }))).toContain('got -1 (not an integer in 0..0xffffffff)');
    expect(errorOf(vendor.decodeRegisters({ idr: qemuRaw.idr, aidr: '1' }))).toBe(
      "smmuv3 registers: iidr (SMMU_IIDR): expected a 32-bit hex value such as '0x00000000', got nothing",
    );
    expect(errorOf(vendor.decodeRegisters({ ...qemuRaw, cap: '0x1' }))).toBe(
      "smmuv3 registers: unknown field 'cap'; the fields are idr (IDR0..IDR5), iidr and aidr",
    );
  });

  it('refuses what the Linux probe refuses, with its message', () => {
    expect(errorOf(vendor.decodeRegisters({ ...qemuRaw, idr: ['0x0d441018', ...qemuRaw.idr.slice(1)] }))).toBe(
      'smmuv3 registers: Linux refuses this SMMU: "no translation support!"',
    );
  });
});

describe('decode', () => {
  it('one register by name=value, or bare with a kind', () => {
    const r = smmuDecoder.decode('idr0=0x0d44101a');
    expect(r.ok && r.value).toMatchObject({ vendor: 'smmuv3', kind: 'IDR0', fields: { S1P: 1, S2P: 0, TTF: 2, STALL_MODEL: 1 }, linux: '' });
    expect(r.ok && r.value.summary).toMatch(/^IDR0: S1, AArch64 tables, little-endian, 2-level stream table, no stall/);
    const b = smmuDecoder.decode('0x00000075', 'idr5');
    expect(b.ok && b.value).toMatchObject({ kind: 'IDR5', fields: { OAS: 5, GRAN4K: 1, GRAN16K: 1, GRAN64K: 1 }, summary: 'IDR5: 48-bit OAS, 4K/16K/64K granules, 48-bit VA, STALL_MAX 0' });
    const i = smmuDecoder.decode('0x4871143b', 'IIDR');
    expect(i.ok && i.value.summary).toBe('IIDR: Arm MMU-700 r1p1');
    expect(i.ok && i.value.fields).toEqual({ Implementer: 0x43b, Revision: 1, Variant: 1, ProductID: 0x487 });
    expect(errorOf(smmuDecoder.decode('0x75'))).toMatch(/^a bare value needs a kind: idr0..idr5, iidr or aidr/);
  });

  it('a whole register set gives the HW ID and the probe line', () => {
    const u = nvidiaGrace.units[0];
    const r = smmuDecoder.decode(`idr=${u.idr.join(',')} iidr=${u.iidr} aidr=${u.aidr}`);
    expect(r.ok && r.value).toMatchObject({ kind: 'registers', linux: 'ias 48-bit, oas 48-bit (features 0x001e1fbf)', fields: { SSIDSIZE: 20, OAS: 5, PRI: 1 } });
    expect(r.ok && r.value.summary).toMatch(/^Arm SMMUv3\.1 \(vendor 0x36b product 0x0\), S1\+S2/);
    expect(errorOf(smmuDecoder.decode('idr0=0x1 idr1=0x2'))).toBe('registers: missing IDR2, IDR3, IDR4, IDR5, IIDR, AIDR; give one register, or all of IDR0..IDR5, IIDR and AIDR');
  });

  it('an event record as four raw dwords', () => {
    const words = readLe64Words(encodeEvent({ ID: 0x10, StreamID: 0x100, RnW: 1, CLASS: 2, InputAddr: 0xffff0000n }), 4);
    const r = smmuDecoder.decode(words.map((w) => `0x${w.toString(16).padStart(16, '0')}`).join('\n'.replace('\n', ' ')));
    expect(r.ok && r.value).toMatchObject({
      kind: 'event',
      fields: { ID: 0x10, StreamID: 0x100, SSV: 0, RnW: 1, CLASS: 2, InputAddr: '0xffff0000', IPA: '0x0' },
      linux: 'event: F_TRANSLATION client: (unassigned sid) sid: 0x100 ssid: 0x0 iova: 0xffff0000 ipa: 0x0\nunpriv data read s1 "Input address caused fault" stag: 0x0',
    });
    expect(r.ok && r.value.summary).toBe('F_TRANSLATION (0x10) at stage 1: unprivileged data read of IOVA 0xffff0000 by StreamID 0x100; Input address caused fault');
  });

  it.each([
    [0x04, 'C_BAD_STE'],
    [0x0a, 'C_BAD_CD'],
  ])('a %s record (%s) has no address in its third word', (id, name) => {
    const words = readLe64Words(encodeEvent({ ID: id, StreamID: 0x100 }), 4);
    const r = smmuDecoder.decode(words.map((w) => `0x${w.toString(16).padStart(16, '0')}`).join(' '));
    expect(r.ok && r.value.fields).toEqual({ ID: id, SSV: 0, SubstreamID: 0, StreamID: 0x100 });
    expect(r.ok && r.value.summary).toBe(`${name} (0x${id.toString(16).padStart(2, '0')}) for StreamID 0x100`);
  });

  it('a whole older-kernel event dump', () => {
    const dump = [
      '[  12.345678] arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:',
      '[  12.345679] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000010000000010',
      '[  12.345680] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020800000000',
      '[  12.345681] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x00000000ffff0000',
      '[  12.345682] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000',
    ].join('\n');
    const r = smmuDecoder.decode(dump);
    expect(r.ok && r.value.kind).toBe('event');
    expect(r.ok && r.value.fields['StreamID']).toBe(0x100);
  });

  it('a command and a PRI entry as two dwords', () => {
    const c = encodeCommandWords('CMD_TLBI_NH_VA', { VMID: 3, ASID: 7, Addr: 0x1234000n, TG: 1, NUM: 3 });
    if (!c.ok) throw new TypeError(c.error);
    const r = smmuDecoder.decode(c.value.map((w) => `0x${w.toString(16)}`).join(' '));
    expect(r.ok && r.value).toMatchObject({ kind: 'command', fields: { op: 0x12, VMID: 3, ASID: 7, NUM: 3, TG: 1, Addr: '0x1234000' }, linux: '' });
    expect(r.ok && r.value.summary).toBe('CMD_TLBI_NH_VA (0x12) VMID=3 ASID=7 NUM=3 TG=1 Addr=0x1234000');
    const pri = readLe64Words(encodePriRequest({ SID: 0x100, SSID: 0x42, SSV: 1, READ: 1, WRITE: 1, LAST: 1, PRGIndex: 3, Addr: 0x7000n }), 2);
    const p = smmuDecoder.decode(pri.map((w) => w.toString(16)).join(','), 'pri');
    expect(p.ok && p.value).toMatchObject({
      kind: 'pri',
      fields: { SID: 0x100, SSID: 0x42, SSV: 1, READ: 1, WRITE: 1, LAST: 1, PRGIndex: 3, Addr: '0x7000' },
      linux: 'unexpected PRI request received:\n\tsid 0x00000100.0x00042: [3L] unprivileged RW access at iova 0x0000000000007000',
    });
  });

  it('kernel log lines', () => {
    const line = 'Jan 02 03:04:05 grace kernel: arm-smmu-v3 arm-smmu-v3.10.auto: ias 48-bit, oas 48-bit (features 0x001e1fbf)';
    const r = smmuDecoder.decode(line);
    expect(r.ok && r.value).toMatchObject({ kind: 'probe', fields: { ias: 48, oas: 48, features: '0x001e1fbf', FEAT_NESTING: true, FEAT_RANGE_INV: false }, linux: line });
    const e = smmuDecoder.decode('arm-smmu-v3 arm-smmu-v3.0.auto: event: F_PERMISSION client: 0000:01:00.0 sid: 0x100 ssid: 0x5 iova: 0x1000 ipa: 0x0');
    expect(e.ok && e.value).toMatchObject({ kind: 'event-line', fields: { name: 'F_PERMISSION', StreamID: 0x100, SubstreamID: 5, client: '0000:01:00.0', InputAddr: '0x1000' } });
    const d = smmuDecoder.decode('priv data write s2 "Stage 1 translation table fetch" ttd_read stall stag: 0x3');
    expect(d.ok && d.value).toMatchObject({ kind: 'event-detail', fields: { PnU: 1, RnW: 0, S2: 1, CLASS: 1, TTRnW: 1, Stall: 1, STAG: 3 } });
    expect(smmuDecoder.decode('allocated 262144 entries for cmdq')).toMatchObject({ ok: true, value: { kind: 'queue', fields: { entries: 262144, queue: 'cmdq' } } });
    expect(smmuDecoder.decode('CMDQ error (cons 0x01000005): Illegal command')).toMatchObject({ ok: true, value: { kind: 'cmdq-error', fields: { ERR: 1 } } });
    expect(errorOf(smmuDecoder.decode('hello world'))).toBe('not an SMMUv3 register, record or arm-smmu-v3 log line: hello world');
  });
});

describe('probeLine', () => {
  it('builds a unit from the probe lines, with what Linux does not print marked unknown', () => {
    const lines = [
      '[    1.000000] arm-smmu-v3 arm-smmu-v3.0.auto: option mask 0x0',
      '[    1.000000] arm-smmu-v3 arm-smmu-v3.0.auto: ias 48-bit, oas 48-bit (features 0x00001fff)',
      '[    1.000000] arm-smmu-v3 arm-smmu-v3.0.auto: allocated 262144 entries for cmdq',
      '[    1.000000] arm-smmu-v3 arm-smmu-v3.0.auto: allocated 131072 entries for evtq',
      '[    1.000000] arm-smmu-v3 arm-smmu-v3.0.auto: allocated 262144 entries for priq',
    ];
    const registers: Record<string, unknown> = {};
    for (const l of lines) {
      const r = vendor.probeLine(l);
      expect(r?.ok && r.value.id).toBe('arm-smmu-v3.0.auto');
      if (r?.ok) Object.assign(registers, r.value.registers);
    }
    expect(registers).toEqual({ options: '0x0', ias: 48, oas: 48, features: '0x00001fff', cmdqEntries: 262144, evtqEntries: 131072, priqEntries: 262144 });
    const d = vendor.decodeRegisters(registers);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.value.caps).toMatchObject({ nesting: true, pri: true, ats: true, stall: true });
    expect(d.value.profileRegisters).toMatchObject({
      features: '0x00001fff',
      unknown: ['IDR0.ASID16', 'IDR0.VMID16', 'IDR1.SIDSIZE', 'IDR1.SSIDSIZE', 'IDR5.GRAN4K', 'IDR5.GRAN16K', 'IDR5.GRAN64K', 'IDR5.STALL_MAX', 'IIDR', 'AIDR', 'IDR3.BBML'],
    });
    expect(d.value.hwId).toMatch(/\[from the boot log; unknown: IDR0\.ASID16, /);
    // Every feature the log printed comes back from the rebuilt registers.
    const decoded = smmuDecoder.decode(`idr=${(d.value.registers.slice(0, 6).map((r) => `0x${r.value.toString(16)}`)).join(',')} iidr=0x0 aidr=0x0`);
    const probe = decoded.ok ? /features 0x([0-9a-f]{8})/.exec(decoded.value.linux) : null;
    expect(probe && (Number.parseInt(probe[1], 16) & 0x1fff)).toBe(0x1fff);
    expect(vendor.decodeRegisters({ cmdqEntries: 256 }).ok).toBe(false);
  });
  it('ignores other lines and reads a register dump line', () => {
    expect(vendor.probeLine('[    1.0] pci 0000:00:00.0: something')).toBeNull();
    const u = mmu700Platform.units[0];
    const r = vendor.probeLine(`arm-smmu-v3 arm-smmu-v3.0.auto: idr=${u.idr.join(',')} iidr=${u.iidr} aidr=${u.aidr}`);
    expect(r).toEqual({ ok: true, value: { id: 'arm-smmu-v3.0.auto', registers: { idr: [...u.idr], iidr: u.iidr, aidr: u.aidr } } });
    const bad = vendor.probeLine('arm-smmu-v3 arm-smmu-v3.0.auto: idr0=0x1 iidr=0x0');
    expect(bad && !bad.ok && bad.error).toBe('arm-smmu-v3 arm-smmu-v3.0.auto: register line lacks IDR1, IDR2, IDR3, IDR4, IDR5, AIDR');
  });
});
