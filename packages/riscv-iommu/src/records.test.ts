/**
 * Fault and page-request records, the ATS.PRGR page response and the command queue's commands, against
 * doublewords worked out by hand from the specification's layouts (literals, not computed by the code).
 */
import { describe, expect, it } from 'vitest';
import { PAGE_RESP_FAILURE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, type FailedAccess } from '@ioasid/core/driver';
import { causeName, decodeCommand, encodeCommand, faultCodec, linuxDcUpdateCommands, linuxIotlbInvalCommands, type Command } from './index.js';

function dws(b: Uint8Array): bigint[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: b.length / 8 }, (_, i) => dv.getBigUint64(i * 8, true));
}
function bytes(...w: bigint[]): Uint8Array {
  const b = new Uint8Array(w.length * 8);
  const dv = new DataView(b.buffer);
  w.forEach((x, i) => dv.setBigUint64(i * 8, x, true));
  return b;
}

const access: FailedAccess = { unit: 0, rid: 0x10, pasid: -1, addr: 0x1000n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true };

describe('fault queue record', () => {
  it('packs CAUSE, TTYP and DID into dw0 and the IOVA into iotval', () => {
    // CAUSE 13 (read page fault) | TTYP 2 (untranslated read) << 34 | DID 0x10 << 40.
    expect(dws(faultCodec.encodeFault(access))).toEqual([0x0000_1008_0000_000dn, 0n, 0x1000n, 0n]);
    // Write: CAUSE 15, TTYP 3. Exec: CAUSE 12, TTYP 1.
    expect(dws(faultCodec.encodeFault({ ...access, perm: PERM_WRITE }))[0]).toBe(0x0000_100c_0000_000fn);
    expect(dws(faultCodec.encodeFault({ ...access, perm: PERM_READ | PERM_EXEC }))[0]).toBe(0x0000_1004_0000_000cn);
    // PASID 5 with PRIV: PID 5 << 12, PV bit 32, PRIV bit 33.
    expect(dws(faultCodec.encodeFault({ ...access, pasid: 5, perm: PERM_READ | PERM_PRIV }))[0]).toBe(0x0000_100b_0000_500dn);
  });

  it('gives each failure its cause', () => {
    const cause = (a: Partial<FailedAccess>) => Number(dws(faultCodec.encodeFault({ ...access, ...a }))[0] & 0xfffn);
    expect(cause({ failure: 'blocked' })).toBe(258);
    expect(cause({ failure: 'no-context' })).toBe(266);
    expect(cause({ failure: 'table-fault' })).toBe(5);
    expect(cause({ failure: 'table-fault', perm: PERM_WRITE })).toBe(7);
    expect(cause({ failure: 'permission-write', perm: PERM_WRITE })).toBe(15);
    expect(cause({ failure: 'address-size' })).toBe(13);
    expect(cause({ failure: 'not-present', stage2: true })).toBe(21);
    expect(cause({ failure: 'not-present', stage2: true, perm: PERM_WRITE })).toBe(23);
    expect(cause({ failure: 'not-present', stage2: true, perm: PERM_READ | PERM_EXEC })).toBe(20);
    expect(cause({ failure: 'table-fault', perm: PERM_READ | PERM_EXEC })).toBe(1);
  });

  it('decodes a record written by hardware', () => {
    // CAUSE 23 | PID 7 | PV | TTYP 3 | DID 0xabcdef, iotval 0xdead000, iotval2 0x8000_0001 (GPA, implicit access).
    const f = faultCodec.decodeFault(bytes(0xabcd_ef0d_0000_7017n, 0n, 0xdead000n, 0x8000_0001n), 2);
    expect(f).toMatchObject({ kind: 'dma', unit: 2, rid: 0xabcdef, pasid: 7, addr: 0xdead000n, perm: PERM_WRITE, reason: 23, reasonText: 'Write/AMO guest-page fault', stage2: true });
    expect([causeName(1), causeName(256), causeName(274), causeName(275), causeName(3000)]).toEqual(['Instruction access fault', 'All inbound transactions disallowed', 'First/second-stage PT data corruption', 'reserved cause 275', 'custom cause 3000']);
  });

  it('renders the line riscv_iommu_fault prints', () => {
    const f = faultCodec.decodeFault(faultCodec.encodeFault({ ...access, addr: 0x7ff000n }), 0);
    expect(faultCodec.renderLog(f, '0000:00:02.0', 'riscv-iommu@0000:00:01.0')).toEqual(['iommu_pci 0000:00:01.0: Fault 13 devid: 0x10 iotval: 7ff000 iotval2: 0']);
    expect(faultCodec.renderLog(f, '0000:00:02.0', 'riscv-iommu@3010000.iommu')).toEqual(['riscv,iommu 3010000.iommu: Fault 13 devid: 0x10 iotval: 7ff000 iotval2: 0']);
    expect(faultCodec.renderOverflow!('fault', 'riscv-iommu@3010000.iommu')).toEqual(['riscv,iommu 3010000.iommu: Queue #1 error; memory fault:0 overflow:1']);
  });
});

describe('page-request record and response', () => {
  it('packs PID / PV / DID and the PCIe payload (R, W, L, PRGI, page)', () => {
    const rec = faultCodec.encodePageRequest({ ...access, rid: 0x100, pasid: 5, addr: 0x7123n, recoverable: true, grpid: 3, last: true });
    // dw0: PID 5 << 12 | PV << 32 | DID 0x100 << 40; dw1: R | L | PRGI 3 << 3 | 0x7000.
    expect(dws(rec)).toEqual([0x0001_0001_0000_5000n, 0x701dn]);
    const f = faultCodec.decodePageRequest(rec, 0);
    expect(f).toMatchObject({ kind: 'page-request', rid: 0x100, pasid: 5, addr: 0x7000n, grpid: 3, last: true, perm: PERM_READ });
    // A Stop Marker: PASID, L, no R or W.
    expect(faultCodec.decodePageRequest(bytes(0x0001_0001_0000_5000n, 0x4n), 0).reasonText).toBe('stop marker');
  });

  it('answers with ATS.PRGR: RID, PRG index, response code, destination', () => {
    // opcode 4 | func3 1 << 7 | RID 0x100 << 40; payload PRGI 0x1a3 << 32 | code << 44 | DST 0x100 << 48.
    expect(dws(faultCodec.encodePageResponse({ rid: 0x100, pasid: -1, grpid: 0x1a3, code: PAGE_RESP_SUCCESS }))).toEqual([0x0001_0000_0000_0084n, 0x0100_01a3_0000_0000n]);
    expect(dws(faultCodec.encodePageResponse({ rid: 0x100, pasid: -1, grpid: 0x1a3, code: PAGE_RESP_FAILURE }))[1]).toBe(0x0100_f1a3_0000_0000n);
    expect(dws(faultCodec.encodePageResponse({ rid: 0x100, pasid: -1, grpid: 0x1a3, code: PAGE_RESP_INVALID }))[1]).toBe(0x0100_11a3_0000_0000n);
    // With a PASID: PID 9 << 12 | PV << 32.
    expect(dws(faultCodec.encodePageResponse({ rid: 0x100, pasid: 9, grpid: 1, code: PAGE_RESP_SUCCESS }))[0]).toBe(0x0001_0001_0000_9084n);
    expect(faultCodec.decodePageResponse(bytes(0x0001_0000_0000_0084n, 0x0100_f1a3_0000_0000n))).toEqual({ rid: 0x100, pasid: -1, grpid: 0x1a3, code: PAGE_RESP_FAILURE });
  });
});

describe('commands', () => {
  const vma: Command = { op: 'IOTINVAL.VMA', AV: 1, PSCID: 5, PSCV: 1, GV: 0, NL: 0, GSCID: 0, S: 0, ADDR: 0x1234_5000n };

  it('encodes every command as its two doublewords', () => {
    // IOTINVAL.VMA: opcode 1, AV bit 10, PSCID 5 << 12, PSCV bit 32; ADDR[63:12] at dw1 bit 10.
    expect(dws(encodeCommand(vma))).toEqual([0x1_0000_5401n, 0x48d_1400n]);
    // IOTINVAL.GVMA, GV, GSCID 0x22 << 44: opcode 1, func3 1.
    expect(dws(encodeCommand({ op: 'IOTINVAL.GVMA', AV: 0, PSCID: 0, PSCV: 0, GV: 1, NL: 0, GSCID: 0x22, S: 0, ADDR: 0n }))[0]).toBe(0x0002_2002_0000_0081n);
    // IOFENCE.C PR PW: opcode 2 | bit 12 | bit 13; with AV, DATA 0x55 << 32 and ADDR >> 2 in dw1.
    expect(dws(encodeCommand({ op: 'IOFENCE.C', AV: 0, WSI: 0, PR: 1, PW: 1, DATA: 0, ADDR: 0n }))).toEqual([0x3002n, 0n]);
    expect(dws(encodeCommand({ op: 'IOFENCE.C', AV: 1, WSI: 0, PR: 0, PW: 0, DATA: 0x55, ADDR: 0x2800_0000n }))).toEqual([0x55_0000_0402n, 0xa00_0000n]);
    // IODIR.INVAL_DDT DV, DID 0x10: opcode 3 | DV bit 33 | DID << 40; INVAL_PDT: func3 1, PID 4.
    expect(dws(encodeCommand({ op: 'IODIR.INVAL_DDT', PID: 0, DV: 1, DID: 0x10 }))).toEqual([0x1002_0000_0003n, 0n]);
    expect(dws(encodeCommand({ op: 'IODIR.INVAL_PDT', PID: 4, DV: 1, DID: 0x10 }))[0]).toBe(0x1002_0000_4083n);
    // ATS.INVAL: opcode 4, RID 0x300 << 40, DSEG 1 << 56, DSV; payload: G, address 0x5000.
    expect(dws(encodeCommand({ op: 'ATS.INVAL', PID: 0, PV: 0, DSV: 1, RID: 0x300, DSEG: 1, G: 1, S: 0, ADDR: 0x5000n }))).toEqual([0x0103_0002_0000_0004n, 0x5001n]);
  });

  it('decodes what it encodes', () => {
    for (const c of [vma, ...linuxIotlbInvalCommands(7, { start: 0x1000n, length: 0x3000n }), ...linuxDcUpdateCommands(0x10, 3)]) {
      const d = decodeCommand(encodeCommand(c));
      expect(d).toEqual({ ok: true, value: c });
    }
  });

  it('refuses reserved encodings and bits, GVMA with PSCV, INVAL_PDT without DV', () => {
    expect(decodeCommand(bytes(0x5n, 0n))).toEqual({ ok: false, error: 'opcode 5 is reserved: illegal command' });
    expect(decodeCommand(bytes(0x40n, 0n)).ok).toBe(false);
    expect(decodeCommand(bytes(0x1_0000_0081n, 0n))).toEqual({ ok: false, error: 'IOTINVAL.GVMA: PSCV must be 0: illegal command' });
    expect(decodeCommand(bytes(0x1083n, 0n))).toEqual({ ok: false, error: 'IODIR.INVAL_PDT: DV must be 1: illegal command' });
    expect(decodeCommand(bytes(0x3002n | (1n << 20n), 0n)).ok).toBe(false);
    expect(decodeCommand(bytes(0x1_0000_5401n | (1n << 11n), 0n)).ok).toBe(false);
    expect(decodeCommand(bytes(0x3n, 1n)).ok).toBe(false);
    expect(decodeCommand(bytes(0x1_0000_5401n, 0x48d_1400n | (1n << 62n))).ok).toBe(false);
    // Unsupported on this unit: ATS without capabilities.ATS, NL without capabilities.NL; WSI fence without wired interrupts.
    expect(decodeCommand(bytes(0x84n, 0n), { caps: { ATS: 0, NL: 0, S: 0 } }).ok).toBe(false);
    expect(decodeCommand(bytes(0x4_0000_0001n, 0n), { caps: { ATS: 1, NL: 0, S: 0 } }).ok).toBe(false);
    expect(decodeCommand(bytes(0x802n, 0n), { fctlWsi: false }).ok).toBe(false);
    expect(decodeCommand(new Uint8Array(8)).ok).toBe(false);
  });

  it('flushes the way the driver does: per page under 2 MiB, PSCID-wide above, then a fence', () => {
    expect(linuxIotlbInvalCommands(7, { start: 0x1000n, length: 0x2000n }).map((c) => c.op)).toEqual(['IOTINVAL.VMA', 'IOTINVAL.VMA', 'IOFENCE.C']);
    const wide = linuxIotlbInvalCommands(7, { start: 0n, length: 4n << 20n });
    expect(wide).toHaveLength(2);
    expect(wide[0]).toMatchObject({ AV: 0, PSCV: 1, PSCID: 7 });
  });
});
