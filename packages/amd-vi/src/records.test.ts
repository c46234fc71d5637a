import { readLe32 } from '@ioasid/core/driver';
import { describe, expect, it } from 'vitest';
import { AMD_EVENT, EVENT_FLAG, PPR_FLAG, amdEventName, decodeEvent, decodePprEntry, encodeEvent, encodePprEntry, invalidPprFields, linuxDecodesEvent, rmpFields, splitEventFlags } from './records.js';
import { AMD_CMD, CMD_INV_IOMMU_ALL_PAGES_ADDRESS, amdCommandName, decodeCommand, encodeCommand, invAddress, invRange, type AmdCommand } from './commands.js';

describe('event log entries', () => {
  it('put every field where iommu_print_event() reads it', () => {
    const b = encodeEvent({ code: AMD_EVENT.IO_PAGE_FAULT, devid: 0x0100, pasidOrDomain: 0x5000e, flags: 0x020, address: 0xfffd0000n });
    expect(readLe32(b, 0)).toBe(0x00050100);
    expect(readLe32(b, 4)).toBe(0x2020000e);
    expect(readLe32(b, 8)).toBe(0xfffd0000);
    expect(readLe32(b, 12)).toBe(0);
    const e = decodeEvent(b);
    expect(e.ok && e.value).toMatchObject({ code: 2, devid: 0x100, pasidOrDomain: 0x5000e, flags: 0x20, address: 0xfffd0000n });
  });

  it('names every event code and knows which ones Linux decodes', () => {
    for (const [name, code] of Object.entries(AMD_EVENT)) {
      expect(amdEventName(code)).toBe(name);
      const e = decodeEvent(encodeEvent({ code, devid: 1 }));
      expect(e.ok && e.value.code).toBe(code);
    }
    expect([0xa, 0xb, 0xc].map(linuxDecodesEvent)).toEqual([false, false, false]);
    expect([1, 2, 9, 0xd, 0xe].map(linuxDecodesEvent)).toEqual([true, true, true, true, true]);
    expect(decodeEvent(new Uint8Array(8)).ok).toBe(false);
  });

  it('splits the IO_PAGE_FAULT flags into GN NX US I PR RW PE RZ TR and Type', () => {
    const all = splitEventFlags(0xfff);
    expect(Object.values(all).slice(0, 9)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(all.Type).toBe(7);
    expect(splitEventFlags(0x0050)).toMatchObject({ PR: 1, PE: 1, RW: 0, GN: 0 });
    expect(splitEventFlags(EVENT_FLAG.I).I).toBe(1);
  });

  it('reads the RMP and INVALID_PPR_REQUEST specific fields', () => {
    const e = decodeEvent(encodeEvent({ code: AMD_EVENT.RMP_PAGE_FAULT, devid: 0x10, pasidOrDomain: 0x1234, word0High: 0xa }));
    expect(e.ok && rmpFields(e.value)).toEqual({ flagsRmp: 0xa0, vmgTag: 0x1234 });
    const p = decodeEvent(encodeEvent({ code: AMD_EVENT.INVALID_PPR_REQUEST, devid: 0x10, pasidOrDomain: 0x2ab }));
    expect(p.ok && invalidPprFields(p.value).tag).toBe(0x2ab);
  });
});

describe('PPR log entries', () => {
  it('round-trip with the 20-bit PASID split over 31:16 and 45:42, and LAST in tag bit 9', () => {
    const flags = PPR_FLAG.READ | PPR_FLAG.WRITE | PPR_FLAG.US | PPR_FLAG.GN;
    const b = encodePprEntry({ devid: 0x0a00, pasid: 0xf1234, tag: 0x1ff, last: true, flags, address: 0x7fff0000n });
    const r = decodePprEntry(b);
    expect(r.ok && r.value).toEqual({ devid: 0xa00, pasid: 0xf1234, tag: 0x1ff, last: true, flags, type: 1, address: 0x7fff0000n });
    // PPR_TAG() is bits 41:32: the 9-bit tag with LAST on top.
    expect(readLe32(b, 4) & 0x3ff).toBe(0x3ff);
  });
});

describe('commands', () => {
  const samples: AmdCommand[] = [
    { op: 'COMPLETION_WAIT', store: true, interrupt: false, flush: false, storeAddress: 0x12345678f8n, storeData: 0x1122334455667788n },
    { op: 'INVALIDATE_DEVTAB_ENTRY', devid: 0x0a00 },
    { op: 'INVALIDATE_IOMMU_PAGES', domainId: 0xe, pasid: 0x12345, gn: true, pde: true, size: true, address: 0x7ffffffffffff000n },
    { op: 'INVALIDATE_IOTLB_PAGES', devid: 0x0a00, maxPending: 0x20, queueId: 0x0a00, pasid: 0xabcd, gn: true, size: false, address: 0x4000n },
    { op: 'INVALIDATE_INTERRUPT_TABLE', devid: 0x0100 },
    { op: 'PREFETCH_IOMMU_PAGES', devid: 0x0100, pasid: 3, gn: true, address: 0x1000n },
    { op: 'COMPLETE_PPR_REQUEST', devid: 0x0a00, pasid: 0x12, gn: true, tag: 0x1ff, status: 2 },
    { op: 'INVALIDATE_IOMMU_ALL' },
    { op: 'INSERT_GUEST_EVENT', words: [1, 2, 0x90000003 & 0x0fffffff | 0x90000000, 4] },
  ];

  it('round-trip every command with its opcode in bits 63:60', () => {
    for (const c of samples) {
      const b = encodeCommand(c);
      expect(readLe32(b, 4) >>> 28, c.op).toBe(AMD_CMD[c.op]);
      expect(amdCommandName(readLe32(b, 4) >>> 28)).toBe(c.op);
      const d = decodeCommand(b);
      if (c.op === 'INSERT_GUEST_EVENT') expect(d.ok && d.value.op).toBe('INSERT_GUEST_EVENT');
      else expect(d.ok && d.value, c.op).toEqual(c);
    }
  });

  it('COMPLETE_PPR_REQUEST puts the PASID in data[1] only with GN (c94252cd5bbc)', () => {
    const b = encodeCommand({ op: 'COMPLETE_PPR_REQUEST', devid: 1, pasid: 0x55, gn: false, tag: 3, status: 0 });
    expect(readLe32(b, 4) & 0x0fffffff).toBe(0);
    expect(readLe32(b, 8)).toBe(0);
    expect(readLe32(b, 12)).toBe(3);
    expect(readLe32(encodeCommand({ op: 'COMPLETE_PPR_REQUEST', devid: 1, pasid: 0, gn: false, tag: 0x1ff, status: 1 }), 12)).toBe(0x11ff);
  });

  it('refuses unknown opcodes as the IOMMU does (ILLEGAL_COMMAND_ERROR)', () => {
    const b = new Uint8Array(16);
    b[7] = 0xf0;
    const r = decodeCommand(b);
    expect(r.ok).toBe(false);
    expect(decodeCommand(new Uint8Array(15)).ok).toBe(false);
  });

  it('encodes page ranges as build_inv_address() does and decodes them back', () => {
    expect(invAddress(0x5000n, 0x1000n)).toEqual({ address: 0x5000n, size: false });
    expect(invAddress(0x5123n, 0x10n)).toEqual({ address: 0x5000n, size: false });
    expect(invAddress(0n, 0x2000n)).toEqual({ address: 0n, size: true });
    expect(invAddress(0n, 0x4000n)).toEqual({ address: 0x1000n, size: true });
    expect(invAddress(0x200000n, 0x200000n)).toEqual({ address: 0x2ff000n, size: true });
    expect(invAddress(0n, 1n << 60n)).toEqual({ address: CMD_INV_IOMMU_ALL_PAGES_ADDRESS, size: true });
    for (const [a, s] of [[0n, 0x2000n], [0x200000n, 0x200000n], [0x40000000n, 0x40000000n]] as const) {
      const e = invAddress(a, s);
      expect(invRange(e.address, e.size)).toEqual({ first: a, last: a + s - 1n });
    }
    // A range that is not naturally aligned widens to the aligned block holding it.
    const e = invAddress(0x3000n, 0x2000n);
    const r = invRange(e.address, e.size);
    expect(r.first <= 0x3000n && r.last >= 0x4fffn).toBe(true);
    expect(invRange(CMD_INV_IOMMU_ALL_PAGES_ADDRESS, true)).toEqual({ first: 0n, last: (1n << 64n) - 1n });
  });
});
