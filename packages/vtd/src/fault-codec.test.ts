import { describe, expect, it } from 'vitest';
import { readLe64, uapi } from '@ioasid/core/driver';
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, PAGE_RESP_FAILURE, PAGE_RESP_INVALID, PAGE_RESP_SUCCESS, PluginContractError, pageRequestAddress, type FailedAccess } from '@ioasid/core/driver';
import { VtdFaultCodec, vtdFaultReasonFor } from './fault-codec.js';
import { DmaFault, createHost } from '@ioasid/core';
import { GNR, SKL, makeUnit } from './__tests__/fixtures.js';
import { encodeHwptVtdS1 } from './nested.js';
import { PAGE_GRP_RESP_DSC_SIZE, PAGE_REQ_DSC_SIZE, PRQ_TYPE_PAGE_REQUEST, QI_PGRP_RESP_TYPE, QI_RESP_FAILURE, QI_RESP_INVALID, QI_RESP_SUCCESS, decodePageGroupResponse, decodePageReqDsc } from './records.js';

const { IOMMU_HWPT_DATA_VTD_S1 } = uapi;
import { plugin, presets } from './index.js';

function access(over: Partial<FailedAccess> = {}): FailedAccess {
  return {
    unit: 0,
    rid: 0x10,
    pasid: -1,
    addr: 0xfffe0000n,
    perm: PERM_READ,
    failure: 'not-present',
    stage2: false,
    recoverable: false,
    grpid: 0,
    last: true,
    ...over,
  };
}

const legacy = new VtdFaultCodec({ scalableMode: false });
const sm = new VtdFaultCodec({ scalableMode: true });

describe('fault recording register', () => {
  it('encodes an unmapped read as FRCD with reason 0x06 and decodes it back', () => {
    const rec = legacy.encodeFault(access());
    expect(rec.length).toBe(16);
    expect(readLe64(rec, 0)).toBe(0xfffe0000n);
    // F (127) | T1 (126) | FR 0x06 (103:96) | SID 0x10.
    expect(readLe64(rec, 8)).toBe(0xc000000600000010n);
    expect(legacy.decodeFault(rec, 3)).toEqual({
      kind: 'dma',
      unit: 3,
      rid: 0x10,
      pasid: -1,
      addr: 0xfffe0000n,
      perm: PERM_READ,
      grpid: 0,
      last: true,
      reason: 0x06,
      reasonText: 'PTE Read access is not set',
      stage2: false,
    });
  });

  it('round-trips writes with a PASID, dropping the page offset as the hardware does', () => {
    const f = legacy.decodeFault(legacy.encodeFault(access({ perm: PERM_WRITE, pasid: 0x5, addr: 0x123456789abcn, rid: 0x0310 })), 0);
    expect(f).toMatchObject({ rid: 0x310, pasid: 5, addr: 0x123456789000n, perm: PERM_WRITE, reason: 0x05, reasonText: 'PTE Write access is not set' });
    const x = legacy.decodeFault(legacy.encodeFault(access({ perm: PERM_READ | PERM_EXEC | PERM_PRIV })), 0);
    expect(x.perm).toBe(PERM_READ | PERM_EXEC | PERM_PRIV);
  });

  it('maps failures to legacy and scalable-mode reason codes by stage', () => {
    const codes = (codec: boolean, firstStage: boolean, a: Partial<FailedAccess>) => vtdFaultReasonFor({ ...access(), ...a }, codec, firstStage);
    expect(codes(false, false, { failure: 'not-present', perm: PERM_WRITE })).toBe(0x05);
    expect(codes(false, false, { failure: 'address-size' })).toBe(0x04);
    expect(codes(false, false, { failure: 'blocked' })).toBe(0x02);
    expect(codes(true, false, { failure: 'not-present' })).toBe(0x79);
    expect(codes(true, false, { failure: 'blocked' })).toBe(0x59);
    expect(codes(true, true, { failure: 'not-present' })).toBe(0x71);
    expect(codes(true, true, { failure: 'permission-write' })).toBe(0x85);
    expect(codes(true, true, { failure: 'permission-priv' })).toBe(0x81);
    expect(codes(true, true, { failure: 'address-size' })).toBe(0x80);
    expect(codes(true, true, { failure: 'table-fault', stage2: true })).toBe(0x76);
    expect(codes(true, true, { failure: 'not-present', stage2: true })).toBe(0x79);
    // The decoded fault says which stage: SS codes set stage2.
    expect(sm.decodeFault(sm.encodeFault(access({ stage2: true })), 0)).toMatchObject({ reason: 0x79, stage2: true });
  });

  it('takes the stage from the format of the table that faulted (FailedAccess.format)', () => {
    const faults = makeUnit(GNR).unit.faults!;
    const reason = (a: Partial<FailedAccess>) => faults.decodeFault(faults.encodeFault(access(a)), 0);
    // No format (a record built by hand) and the second stage: second-stage codes.
    expect(reason({}).reason).toBe(0x79);
    expect(reason({ format: 'vtd-ss' }).reason).toBe(0x79);
    expect(reason({ format: 'vtd-fs' })).toMatchObject({ reason: 0x71, stage2: false });
    expect(reason({ format: 'vtd-fs', failure: 'permission-write', perm: PERM_WRITE }).reason).toBe(0x85);
    // The parent of a nested walk: core names the second-stage format and sets stage2.
    expect(reason({ format: 'vtd-ss', stage2: true })).toMatchObject({ reason: 0x79, stage2: true });
    expect(reason({ format: 'vtd-ss', stage2: true, failure: 'table-fault' }).reason).toBe(0x76);
    // Legacy units always use the legacy codes.
    expect(makeUnit(SKL).unit.faults!.decodeFault(makeUnit(SKL).unit.faults!.encodeFault(access({ format: 'vtd-fs' })), 0).reason).toBe(0x06);
  });

  it('a DMA through a nested domain gets first-stage codes, through the parent second-stage ones', async () => {
    const profile = presets.find((p) => p.name.includes('Granite Rapids'))!;
    const host = createHost({ plugins: [plugin], profile });
    const dev = [...host.devices.values()].find((d) => d.unitOps.caps.nesting)!;
    const fd = host.openIommufd();
    const devId = dev.bindIommufd(fd);
    const ioas = fd.ioas.alloc();
    // 16 zeroed pages of guest RAM at GPA 0: an empty first-stage root at GPA 0x1000.
    const gmem = host.process.mmap(16 * 4096);
    fd.ioas.map({ ioasId: ioas, userVa: gmem, length: 16n * 4096n, iova: 0n });
    const parent = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
    const s1 = (pgtbl: bigint) => fd.hwpt.alloc({ devId, ptId: parent, data: { type: IOMMU_HWPT_DATA_VTD_S1, bytes: encodeHwptVtdS1({ flags: 0n, pgtbl_addr: pgtbl, addr_width: 48, __reserved: 0 }) } });
    const reasonOf = async (iova: bigint) => ((await dev.dma.read(iova, 4).catch((x: unknown) => x)) as DmaFault).fault.reason;
    dev.attachPt(s1(0x1000n));
    expect(await reasonOf(0x40_0000n)).toBe(0x71);
    // A first-stage root that stage 2 does not map: the second stage failed on a first-stage table pointer.
    dev.attachPt(s1(0x100_0000n));
    expect(await reasonOf(0x40_0000n)).toBe(0x76);
    // The parent alone (a second-stage paging domain): 0x79, whatever the device was attached to before.
    dev.attachPt(parent);
    expect(await reasonOf(0x100_0000n)).toBe(0x79);
  });

  it('refuses a PASID wider than 20 bits as a contract error', () => {
    expect(() => legacy.encodeFault(access({ pasid: 1 << 20 }))).toThrow(PluginContractError);
  });
});

describe('renderLog', () => {
  it('prints the mainline NO_PASID and PASID lines', () => {
    const f = legacy.decodeFault(legacy.encodeFault(access()), 0);
    expect(legacy.renderLog(f, '0000:00:02.0', 'dmar0')).toEqual([
      'DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfffe0000 [fault reason 0x06] PTE Read access is not set',
    ]);
    const w = sm.decodeFault(sm.encodeFault(access({ rid: (0xf2 << 8) | (1 << 3), pasid: 0x1f, perm: PERM_WRITE, addr: 0x7f0012345000n })), 0);
    expect(sm.renderLog(w, '0000:f2:01.0', 'dmar1')).toEqual([
      'DMAR: [DMA Write PASID 0x1f] Request device [f2:01.0] fault addr 0x7f0012345000 [fault reason 0x79] SM: Read/Write permission error in second-level paging entry',
    ]);
  });

  it('prints an undeliverable page request the way prq.c does', () => {
    const pr = sm.decodePageRequest(sm.encodePageRequest(access({ recoverable: true, grpid: 3, perm: PERM_READ })), 0);
    expect(sm.renderLog(pr, '0000:00:02.0', 'dmar0')).toEqual(['dmar0: Invalid page request: 00100001 fffe001d']);
  });
});

describe('page requests and responses', () => {
  it('round-trips a page request descriptor', () => {
    const a = access({ recoverable: true, pasid: 0x42, perm: PERM_READ | PERM_WRITE, grpid: 0x1ff, last: false, addr: 0x7000_0000_1000n });
    const rec = sm.encodePageRequest(a);
    expect(rec.length).toBe(32);
    expect(readLe64(rec, 0)).toBe(0x0000004200100101n);
    expect(readLe64(rec, 8)).toBe(0x7000_0000_1000n | (0x1ffn << 3n) | 3n);
    expect(sm.decodePageRequest(rec, 1)).toEqual({
      kind: 'page-request',
      unit: 1,
      rid: 0x10,
      pasid: 0x42,
      addr: 0x7000_0000_1000n,
      perm: PERM_READ | PERM_WRITE,
      grpid: 0x1ff,
      last: false,
      reason: 0,
      reasonText: 'page request',
      stage2: false,
    });
    expect(() => sm.encodePageRequest(access({ grpid: 512 }))).toThrow(PluginContractError);
  });

  it('encodes page group responses with the PCIe response codes', () => {
    const codes: Array<[number, number]> = [
      [PAGE_RESP_SUCCESS, 0x0],
      [PAGE_RESP_INVALID, 0x1],
      [PAGE_RESP_FAILURE, 0xf],
    ];
    for (const [code, wire] of codes) {
      const bytes = sm.encodePageResponse({ rid: 0x10, pasid: 7, grpid: 3, code });
      expect(bytes.length).toBe(32);
      expect(readLe64(bytes, 0)).toBe(0x9n | (1n << 4n) | (BigInt(wire) << 12n) | (0x10n << 16n) | (7n << 32n));
      expect(readLe64(bytes, 8)).toBe(3n << 3n);
      expect(sm.decodePageResponse(bytes)).toEqual({ rid: 0x10, pasid: 7, grpid: 3, code });
    }
    expect(sm.decodePageResponse(sm.encodePageResponse({ rid: 1, pasid: -1, grpid: 0, code: 0 }))).toEqual({ rid: 1, pasid: -1, grpid: 0, code: 0 });
    expect(() => sm.encodePageResponse({ rid: 1, pasid: -1, grpid: 0, code: 3 })).toThrow(PluginContractError);
  });
});

/** xorshift32 from a fixed seed: the same cases on every run. */
function rng(seed: number): () => number {
  let x = seed | 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

describe('page requests and responses written and read as 32-bit words (the buffers core reuses)', () => {

  it('gives the bytes and fields of the byte path in a reused aligned buffer, an unaligned one, and after the buffer is detached', () => {
    const next = rng(0x2545f491);
    const codec = new VtdFaultCodec({ scalableMode: true });
    // One reused aligned buffer (core's slot and response record), and views at offsets 1 to 3 of a larger one.
    const reused = new Uint8Array(32);
    const big = new Uint8Array(64 + 3);
    for (let i = 0; i < 400; i++) {
      const req = {
        rid: next() & 0xffff,
        pasid: i % 3 === 0 ? -1 : next() & 0xfffff,
        addrLo: next() & ~0xfff,
        addrHi: next(),
        perm: next() & (PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV),
        grpid: next() & 0x1ff,
        last: (i & 1) === 0,
        reason: 0,
        reasonText: 'page request',
        stage2: false,
      };
      const addr = (BigInt(req.addrHi) << 32n) | BigInt(req.addrLo >>> 0);
      const want = codec.encodePageRequest({ unit: 0, rid: req.rid, pasid: req.pasid, addr, perm: req.perm, failure: 'not-present', stage2: false, recoverable: true, grpid: req.grpid, last: req.last });
      const unaligned = big.subarray(1 + (i % 3), 33 + (i % 3));
      for (const out of [reused, unaligned]) {
        // The halves unsigned (addrHi from next()) and as the signed words core hands over: the same bytes.
        for (const halves of [req, { ...req, addrLo: req.addrLo | 0, addrHi: req.addrHi | 0 }]) {
          out.fill(0xee);
          codec.encodePageRequestFields(halves, out);
          expect([...out], `request ${i}`).toEqual([...want]);
        }
        const back = { ...req, rid: -1, pasid: -2, addrLo: -1, addrHi: -1, perm: -1, grpid: -1, last: !req.last };
        codec.decodePageRequestFields(out, back);
        // Decoded as signed 32-bit words (PageRequestFields), whatever the address.
        expect(back, `request ${i}`).toEqual({ ...req, addrLo: req.addrLo | 0, addrHi: req.addrHi | 0 });
        expect(pageRequestAddress(back), `request ${i}`).toBe(addr);
      }
      const r = { rid: next() & 0xffff, pasid: i % 3 === 0 ? -1 : next() & 0xfffff, grpid: next() & 0x1ff, code: [PAGE_RESP_SUCCESS, PAGE_RESP_INVALID, PAGE_RESP_FAILURE][i % 3] };
      const wantResp = codec.encodePageResponse(r);
      for (const out of [reused, unaligned]) {
        out.fill(0xee);
        codec.encodePageResponseInto(r, out);
        expect([...out], `response ${i}`).toEqual([...wantResp]);
        const back = { rid: -1, pasid: -1, grpid: -1, code: -1 };
        codec.decodePageResponseInto(out, back);
        expect(back, `response ${i}`).toEqual(codec.decodePageResponse(wantResp));
      }
    }
    // A buffer the codec has seen, then detached (its memory transferred): nothing is written through an
    // old view of it, as with byte stores, and the next buffer is served.
    const gone = new Uint8Array(32);
    codec.encodePageResponseInto({ rid: 1, pasid: -1, grpid: 1, code: PAGE_RESP_SUCCESS }, gone);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expect(gone.length).toBe(0);
    codec.encodePageResponseInto({ rid: 2, pasid: -1, grpid: 2, code: PAGE_RESP_SUCCESS }, gone);
    expect(gone.length).toBe(0);
    const fresh = new Uint8Array(32);
    codec.encodePageResponseInto({ rid: 3, pasid: 4, grpid: 5, code: PAGE_RESP_INVALID }, fresh);
    expect(codec.decodePageResponse(fresh)).toEqual({ rid: 3, pasid: 4, grpid: 5, code: PAGE_RESP_INVALID });
  });

  it('refuses what the allocating encoders refuse, with their errors in their order, whatever the buffer', () => {
    const codec = new VtdFaultCodec({ scalableMode: true });
    const message = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(PluginContractError);
        return (e as Error).message;
      }
      throw new Error('did not throw');
    };
    const reused = new Uint8Array(32);
    const unaligned = new Uint8Array(35).subarray(1, 33);
    // Bad PASIDs (wider than 20 bits, negative other than -1, not an integer), bad codes (3, 1.5, -1, 0xf), and both at once:
    // the PASID is reported first, as encodePageResponse checks it first.
    const responses = [
      { rid: 1, pasid: 1 << 20, grpid: 2, code: PAGE_RESP_SUCCESS },
      { rid: 1, pasid: -2, grpid: 2, code: PAGE_RESP_SUCCESS },
      { rid: 1, pasid: 1.5, grpid: 2, code: PAGE_RESP_SUCCESS },
      { rid: 1, pasid: 7, grpid: 2, code: 3 },
      { rid: 1, pasid: 7, grpid: 2, code: 1.5 },
      { rid: 1, pasid: -1, grpid: 2, code: -1 },
      { rid: 1, pasid: 7, grpid: 2, code: 0xf },
      { rid: 1, pasid: 1 << 20, grpid: 2, code: 3 },
    ];
    for (const r of responses) {
      const want = message(() => codec.encodePageResponse(r));
      for (const out of [reused, unaligned]) expect(message(() => codec.encodePageResponseInto(r, out)), JSON.stringify(r)).toBe(want);
    }
    const base = { rid: 1, pasid: 7, addrLo: 0x1000, addrHi: 0, perm: PERM_READ, grpid: 3, last: true, reason: 0, reasonText: 'page request', stage2: false };
    const requests = [
      { ...base, pasid: 1 << 20 },
      { ...base, pasid: -2 },
      { ...base, grpid: 512 },
      { ...base, grpid: -1 },
      { ...base, grpid: 1.5 },
      { ...base, pasid: 1 << 20, grpid: 512 },
    ];
    for (const f of requests) {
      const want = message(() => codec.encodePageRequest({ unit: 0, rid: f.rid, pasid: f.pasid, addr: 0x1000n, perm: f.perm, failure: 'not-present', stage2: false, recoverable: true, grpid: f.grpid, last: true }));
      for (const out of [reused, unaligned]) expect(message(() => codec.encodePageRequestFields(f, out)), JSON.stringify(f)).toBe(want);
    }
  });
});

describe('the word decoders read any bytes as the descriptor decoders of records.ts do', () => {
  it('page request descriptors and page group responses, random bytes in a reused buffer and an unaligned one', () => {
    const next = rng(0x7a3c15e9);
    const codec = new VtdFaultCodec({ scalableMode: true });
    const reused = new Uint8Array(32);
    const big = new Uint8Array(35);
    const fill = (b: Uint8Array) => {
      for (let i = 0; i < b.length; i++) b[i] = next() & 0xff;
    };
    const qiCode: Record<number, number> = { [QI_RESP_SUCCESS]: PAGE_RESP_SUCCESS, [QI_RESP_INVALID]: PAGE_RESP_INVALID, [QI_RESP_FAILURE]: PAGE_RESP_FAILURE };
    for (let i = 0; i < 600; i++) {
      for (const out of [reused, big.subarray(1 + (i % 3), 33 + (i % 3))]) {
        fill(out);
        // A page request descriptor: every field from the bytes, whatever they hold.
        const d = decodePageReqDsc(out);
        if (!d.ok) throw new Error(d.error);
        const fields = { rid: -1, pasid: -1, addrLo: -1, addrHi: -1, perm: -1, grpid: -1, last: false, reason: -1, reasonText: '', stage2: true };
        codec.decodePageRequestFields(out, fields);
        const addr = d.value.addr;
        expect(fields, `request ${i}`).toEqual({
          rid: d.value.rid,
          pasid: d.value.pasid_present ? d.value.pasid : -1,
          // Signed 32-bit words (PageRequestFields).
          addrLo: Number(BigInt.asIntN(32, addr)),
          addrHi: Number(BigInt.asIntN(32, addr >> 32n)),
          perm: (d.value.rd_req ? PERM_READ : 0) | (d.value.wr_req ? PERM_WRITE : 0) | (d.value.exe_req ? PERM_EXEC : 0) | (d.value.pm_req ? PERM_PRIV : 0),
          grpid: d.value.prg_index,
          last: d.value.lpig === 1,
          reason: 0,
          reasonText: 'page request',
          stage2: false,
        });
        // A page group response: half the cases get type 0x9 and a response code of every kind, known or not.
        if (i % 2 === 0) {
          out[0] = (out[0] & 0xf0) | 0x9;
          out[1] = (out[1] & 0x01) | ([0x0, 0x1, 0xf, 0x2, 0x7][i % 5] << 4);
        }
        const r = decodePageGroupResponse(out);
        const back = { rid: -1, pasid: -2, grpid: -1, code: -1 };
        const known = r.ok && r.value.resp_code in qiCode;
        if (!known) {
          expect(() => codec.decodePageResponseInto(out, back), `response ${i}`).toThrow(PluginContractError);
          continue;
        }
        codec.decodePageResponseInto(out, back);
        expect(back, `response ${i}`).toEqual({ rid: r.value.rid, pasid: r.value.pasid_present ? r.value.pasid : -1, grpid: r.value.prg_index, code: qiCode[r.value.resp_code] });
      }
    }
  });

  it('the literals of the word paths are the constants they stand for', () => {
    // fault-codec.ts writes and reads these as literals (a module constant costs a load and a hole check).
    expect([PAGE_REQ_DSC_SIZE, PAGE_GRP_RESP_DSC_SIZE, PRQ_TYPE_PAGE_REQUEST, QI_PGRP_RESP_TYPE]).toEqual([32, 32, 0x1, 0x9]);
    expect([QI_RESP_SUCCESS, QI_RESP_INVALID, QI_RESP_FAILURE]).toEqual([0x0, 0x1, 0xf]);
    expect([PAGE_RESP_SUCCESS, PAGE_RESP_INVALID, PAGE_RESP_FAILURE]).toEqual([0, 1, 2]);
    expect([PERM_READ, PERM_WRITE, PERM_EXEC, PERM_PRIV]).toEqual([1, 2, 4, 8]);
  });
});
