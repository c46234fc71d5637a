import { describe, expect, it } from 'vitest';
import { uapi } from '@ioasid/core/driver';
import { PhysicalMemory, FrameAllocator } from '@ioasid/core';
import {
  IOMMU_READ,
  IOMMU_WRITE,
  PERM_READ,
  PERM_WRITE,
  WALK_NOT_PRESENT,
  WALK_OK,
  WALK_TABLE_FAULT,
  WalkResult,
  type IotlbFlush,
  type NestedDomainOps,
  type PagingDomainOps,
  type PageTableMemory,
  type VendorError,
} from '@ioasid/core/driver';
import { GNR, NO_FLAGS, QEMU, SKL, SPR, device, makeUnit } from './__tests__/fixtures.js';
import { VtdPagingDomain, VTD_PRQ_DEPTH, vtdSecondStageGeometry } from './unit.js';
import { decodeCap } from './registers.js';
import { encodeHwptVtdS1, encodeHwptVtdS1Invalidate } from './nested.js';

const { IOMMU_HWPT_DATA_VTD_S1 } = uapi;
import { vtdFirstStage } from './pgtable-fs.js';

function isError(x: unknown): x is VendorError {
  return typeof x === 'object' && x !== null && 'errno' in x;
}

function paging(x: PagingDomainOps | VendorError): PagingDomainOps {
  if (isError(x)) throw new Error(`${x.errno}: ${x.reason}`);
  return x;
}

function nested(x: NestedDomainOps | VendorError): NestedDomainOps {
  if (isError(x)) throw new Error(`${x.errno}: ${x.reason}`);
  return x;
}

describe('VtdUnit basics', () => {
  it('is named after the profile id and carries the decoded caps', () => {
    const { unit } = makeUnit(GNR, { id: 'dmar1' });
    expect(unit.name).toBe('dmar1');
    expect(unit.vendor).toBe('vtd');
    expect(unit.caps.nesting).toBe(true);
    expect(unit.caps.pasidBits).toBe(20);
  });

  it('GET_HW_INFO: iommu_hw_info_vtd with the SPR17 erratum flag, CAP and ECAP little-endian', () => {
    const { unit } = makeUnit(SPR);
    for (const requested of [0, 1]) {
      const r = unit.hwInfo(device(), requested);
      if (isError(r)) throw new Error(r.reason);
      expect(r.type).toBe(1);
      expect([...r.data]).toEqual([
        0x01, 0, 0, 0, 0, 0, 0, 0,
        0x66, 0x04, 0x78, 0x40, 0x8c, 0x00, 0xed, 0x09,
        0xdf, 0x50, 0xf0, 0x86, 0x9e, 0xee, 0x03, 0x00,
      ]);
    }
    expect(unit.hwInfo(device(), 2)).toMatchObject({ errno: 'EOPNOTSUPP' });
  });

  it('fault queue depths: NFR + 1 fault recording registers, the PRQ only with page requests', () => {
    expect(makeUnit(GNR).unit.faultQueueDepth).toBe(1);
    expect(makeUnit({ ver: '0x10', cap: '0x8d2078c106f0466', ecap: '0xf020df' }).unit.faultQueueDepth).toBe(8);
    expect(makeUnit(GNR).unit.pageRequestQueueDepth).toBe(VTD_PRQ_DEPTH);
    expect(VTD_PRQ_DEPTH).toBe(2048);
    expect(makeUnit(SPR).unit.pageRequestQueueDepth).toBeUndefined();
  });

  it('boot line: the exact alloc_iommu() line, with the profile reg base or fed90000', () => {
    expect(makeUnit({ ...GNR, regBase: '0xcbfe0000' }).unit.bootLog()).toEqual([
      'DMAR: dmar0: reg_base_addr cbfe0000 ver 7:0 cap f9ed008cee780c66 ecap 3fef9ea6f0efdf',
    ]);
    expect(makeUnit(SKL, { id: 'dmar1' }).unit.bootLog()).toEqual([
      'DMAR: dmar1: reg_base_addr fed90000 ver 1:0 cap 1c0000c40660462 ecap 7e3ff0501e',
    ]);
  });
});

describe('domainAllocPaging', () => {
  it('rejects what the unit cannot do with EOPNOTSUPP', () => {
    const skl = makeUnit(SKL);
    expect(skl.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, skl.tables)).toMatchObject({ errno: 'EOPNOTSUPP' });
    expect(skl.unit.domainAllocPaging(device(), { ...NO_FLAGS, dirtyTracking: true }, skl.tables)).toMatchObject({ errno: 'EOPNOTSUPP' });
    expect(skl.unit.domainAllocPaging(device(), { ...NO_FLAGS, pasid: true }, skl.tables)).toMatchObject({ errno: 'EOPNOTSUPP' });
    // SPR: nesting and dirty tracking, but no PASID.
    const spr = makeUnit(SPR);
    expect(spr.unit.domainAllocPaging(device(), { ...NO_FLAGS, pasid: true }, spr.tables)).toMatchObject({ errno: 'EOPNOTSUPP' });
    expect(isError(spr.unit.domainAllocPaging(device(), { nestParent: true, dirtyTracking: true, pasid: false }, spr.tables))).toBe(false);
    expect(skl.tags).toEqual([]);
  });

  it('sizes the second stage from SAGAW/MGAW and SLLPS: the deepest SAGAW table, as mainline', () => {
    const gnr = makeUnit(GNR);
    const d = paging(gnr.unit.domainAllocPaging(device(), NO_FLAGS, gnr.tables));
    expect(d.pt.format).toBe('vtd-ss');
    expect(d.pt.levels).toBe(5);
    expect(d.apertureLast).toBe((1n << 57n) - 1n);
    expect(d.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(d.enforceCacheCoherency).toBe(true);
    expect(d.tag).toBe(1);
    expect(d.setDirtyTracking).toBeUndefined();
    // Skylake client: MGAW 39 on a 4-level-only SAGAW: a 4-level table with a 39-bit aperture.
    const skl = makeUnit(SKL);
    const s = paging(skl.unit.domainAllocPaging(device(), NO_FLAGS, skl.tables));
    expect([s.pt.levels, s.apertureLast]).toEqual([4, (1n << 39n) - 1n]);
    expect(s.enforceCacheCoherency).toBe(false);
    // QEMU intel-iommu: SAGAW 39-bit only, so a 3-level table; SLLPS 2M and 1G; caching mode.
    const q = makeUnit(QEMU);
    const qd = paging(q.unit.domainAllocPaging(device(), NO_FLAGS, q.tables));
    expect([qd.pt.levels, qd.apertureLast, qd.pgsizeBitmap]).toEqual([3, (1n << 39n) - 1n, (1n << 12n) | (1n << 21n) | (1n << 30n)]);
  });

  it('geometry follows the kernel width choice', () => {
    // Mainline: the deepest SAGAW table (iommu->agaw), limited to MGAW.
    expect(vtdSecondStageGeometry(decodeCap(BigInt(GNR.cap)))).toEqual({ levels: 5, ias: 57 });
    expect(vtdSecondStageGeometry(decodeCap(BigInt(GNR.cap)), 48)).toEqual({ levels: 4, ias: 48 });
    expect(vtdSecondStageGeometry(decodeCap(BigInt(SPR.cap)))).toEqual({ levels: 4, ias: 48 });
    expect(paging(makeUnit(GNR).unit.domainAllocPaging(device(), NO_FLAGS, makeUnit(GNR).tables)).pt.levels).toBe(5);
    const gnr4 = makeUnit(GNR, { vendor: { domainAddressWidth: 48 } });
    expect(paging(gnr4.unit.domainAllocPaging(device(), NO_FLAGS, gnr4.tables)).pt.levels).toBe(4);
  });

  it('maps and walks through PagingDomainOps.pt, with snoop and dirty tracking', () => {
    const gnr = makeUnit(GNR);
    const d = paging(gnr.unit.domainAllocPaging(device(), { ...NO_FLAGS, dirtyTracking: true }, gnr.tables));
    expect(d.pt.map(0x1000, 0x40000, 512, IOMMU_READ | IOMMU_WRITE)).toBe(0);
    const out = new WalkResult();
    expect(d.pt.walk(0x1005, out)).toBe(true);
    expect(out.fault).toBe(WALK_OK);
    expect(out.pfn).toBe(0x40005);
    expect(out.perm & (PERM_READ | PERM_WRITE)).toBe(PERM_READ | PERM_WRITE);
    expect(d.pt.walk(0x2000, out)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    expect(d.setDirtyTracking?.(true)).toBeNull();
    expect(d.pt.unmap(0x1000, 512)).toBe(512);
    d.free();
    expect(gnr.unit.domainCount).toBe(0);
  });

  it('a nest parent refuses read-only mappings (ERRATA_772415_SPR17)', () => {
    const gnr = makeUnit(GNR);
    const d = paging(gnr.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, gnr.tables));
    expect(d.pt.map(0, 0x100, 1, IOMMU_READ)).toBeLessThan(0);
    expect(d.pt.map(0, 0x100, 1, IOMMU_READ | IOMMU_WRITE)).toBe(0);
  });

  it('checkAttach: EINVAL when another unit cannot walk or honour the domain', () => {
    const mem = new PhysicalMemory();
    const frames = new FrameAllocator(mem);
    const gnr5 = makeUnit(GNR, { mem, frames, vendor: { domainAddressWidth: 57 } });
    const spr = makeUnit(SPR, { mem, frames, id: 'dmar1' });
    const skl = makeUnit(SKL, { mem, frames, id: 'dmar2' });
    const five = paging(gnr5.unit.domainAllocPaging(device(), NO_FLAGS, gnr5.tables));
    expect(five.checkAttach!(device(), gnr5.unit)).toBeNull();
    expect(five.checkAttach!(device(), spr.unit)).toMatchObject({ errno: 'EINVAL' });
    const four = paging(spr.unit.domainAllocPaging(device(), NO_FLAGS, spr.tables));
    expect(four.checkAttach!(device(), gnr5.unit)).toBeNull();
    // Skylake: MGAW 39 is narrower than the 48-bit domain, and there is no snoop control.
    expect(four.checkAttach!(device(), skl.unit)).toMatchObject({ errno: 'EINVAL' });
    // A device that can issue non-snooped DMA cannot join a domain that forces snooping.
    expect(four.checkAttach!(device({ noSnoop: true }), spr.unit)).toMatchObject({ errno: 'EINVAL' });
    // Dirty tracking and nest parents need the same support on the other unit.
    const dirty = paging(gnr5.unit.domainAllocPaging(device(), { ...NO_FLAGS, dirtyTracking: true }, gnr5.tables));
    expect(dirty.checkAttach!(device(), skl.unit)).toMatchObject({ errno: 'EINVAL' });
    expect(dirty).toBeInstanceOf(VtdPagingDomain);
  });
});

describe('nested (IOMMU_HWPT_DATA_VTD_S1)', () => {
  function s1(pgtblAddr: bigint, addrWidth = 48, flags = 0n): Uint8Array {
    return encodeHwptVtdS1({ flags, pgtbl_addr: pgtblAddr, addr_width: addrWidth, __reserved: 0 });
  }

  it('allocation errnos follow intel_iommu_domain_alloc_nested()', () => {
    const gnr = makeUnit(GNR);
    const parent = paging(gnr.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, gnr.tables));
    const plain = paging(gnr.unit.domainAllocPaging(device(), NO_FLAGS, gnr.tables));
    expect(gnr.unit.domainAllocNested(device(), parent, 2, s1(0x1000n))).toMatchObject({ errno: 'EOPNOTSUPP' });
    expect(gnr.unit.domainAllocNested(device(), plain, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n))).toMatchObject({ errno: 'EINVAL' });
    expect(gnr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n).subarray(0, 23))).toMatchObject({ errno: 'EINVAL' });
    // __iommu_copy_struct_from_user(): more than sizeof(struct iommu_hwpt_vtd_s1) is EINVAL, even zero-filled.
    const long = new Uint8Array(32);
    long.set(s1(0x1000n));
    expect(gnr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, long)).toMatchObject({ errno: 'EINVAL' });
    expect(isError(gnr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n)))).toBe(false);
    // No nesting on Skylake at all.
    const skl = makeUnit(SKL);
    const sklDomain = paging(skl.unit.domainAllocPaging(device(), NO_FLAGS, skl.tables));
    expect(skl.unit.domainAllocNested(device(), sklDomain, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n))).toMatchObject({ errno: 'EOPNOTSUPP' });
  });

  it('attach checks follow intel_pasid_setup_nested(): address width and SRE/EAFE', () => {
    const spr = makeUnit(SPR);
    const parent = paging(spr.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, spr.tables));
    const n39 = nested(spr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n, 39)));
    expect(n39.checkAttach!(device(), false)).toMatchObject({ errno: 'EINVAL' });
    // SPR has no FL5LP.
    const n57 = nested(spr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n, 57)));
    expect(n57.checkAttach!(device(), false)).toMatchObject({ errno: 'EINVAL' });
    const ok = nested(spr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n, 48)));
    expect(ok.checkAttach!(device(), false)).toBeNull();
    expect(ok.mode).toBe('translate');
    expect(ok.guestPasidTable).toBe(false);
    expect(ok.parent).toBe(parent);
  });

  it('walks and traces a guest first-stage table through an offset stage 2', () => {
    // The guest builds its table in guest-physical memory; the host keeps guest page g at host page g + OFFSET.
    const OFFSET = 0x80000;
    const guestMem = new PhysicalMemory();
    const guestFrames = new FrameAllocator(guestMem, 0x200);
    const used: number[] = [];
    const guestTables: PageTableMemory = {
      mem: guestMem,
      allocTable: () => {
        const p = guestFrames.alloc();
        used.push(p);
        return p;
      },
      releaseTable: (p) => guestFrames.release(p),
    };
    const gpt = vtdFirstStage.alloc({ pgsizeBitmap: (1n << 12n) | (1n << 21n), ias: 48, oas: 48, levels: 4 }, guestTables);
    if (typeof gpt === 'number') throw new Error(`alloc ${gpt}`);
    expect(gpt.map(0x12345, 0x777, 1, IOMMU_READ)).toBe(0);
    expect(gpt.map(0x200, 0x4000, 512, IOMMU_READ | IOMMU_WRITE)).toBe(0);

    const gnr = makeUnit(GNR);
    const page = new Uint8Array(4096);
    for (const p of used) {
      guestMem.read(p * 4096, page);
      gnr.mem.write((p + OFFSET) * 4096, page);
    }
    const parent = paging(gnr.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, gnr.tables));
    const n = nested(gnr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(BigInt(gpt.rootPfn) << 12n)));
    expect(n.tag).not.toBe(parent.tag);
    const toHost = (g: number) => g + OFFSET;
    const out = new WalkResult();
    expect(n.walkStage1(0x12345, -1, gnr.mem, out, toHost)).toBe(true);
    expect(out.pfn).toBe(0x777);
    expect(out.perm & PERM_WRITE).toBe(0);
    expect(n.walkStage1(0x2ff, -1, gnr.mem, out, toHost)).toBe(true);
    expect([out.pfn, out.pageShift]).toEqual([0x40ff, 21]);
    expect(n.walkStage1(0x99999, -1, gnr.mem, out, toHost)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    // Stage 2 refuses the root table pointer: a table fault naming the guest page.
    expect(n.walkStage1(0x12345, -1, gnr.mem, out, () => -1)).toBe(false);
    expect([out.fault, out.tablePfn]).toEqual([WALK_TABLE_FAULT, gpt.rootPfn]);

    // The trace reads the same four levels, each table page where stage 2 puts it.
    const s2 = (g: number) => ({ pfn: g + OFFSET, steps: [] });
    const steps = n.traceStage1!(0x12345, -1, gnr.mem, s2);
    expect(steps.map((st) => [st.level, st.kind])).toEqual([[3, 'table'], [2, 'table'], [1, 'table'], [0, 'leaf']]);
    expect(steps[0].tableGpaPfn).toBe(gpt.rootPfn);
    for (let i = 0; i < steps.length; i++) {
      expect(steps[i].tablePfn).toBe(steps[i].tableGpaPfn! + OFFSET);
      if (i > 0) expect(steps[i].tableGpaPfn).toBe(steps[i - 1].pfn);
    }
    expect(steps[3].pfn).toBe(0x777);
    // A 2M first-stage leaf ends the trace at level 1; a refused table page ends it at the root.
    expect(n.traceStage1!(0x2ff, -1, gnr.mem, s2).map((st) => [st.level, st.kind, st.pfn])).toEqual([[3, 'table', expect.any(Number)], [2, 'table', expect.any(Number)], [1, 'leaf', 0x4000]]);
    expect(n.traceStage1!(0x12345, -1, gnr.mem, () => ({ pfn: -1, steps: null }))).toEqual([
      { level: 3, tablePfn: -1, index: 0, entry: 0n, kind: 'invalid', pfn: 0, tableGpaPfn: gpt.rootPfn, stage2: null },
    ]);
  });

  describe('invalidate (iommu_hwpt_vtd_s1_invalidate)', () => {
    function setup() {
      const gnr = makeUnit(GNR);
      const parent = paging(gnr.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, gnr.tables));
      const n = nested(gnr.unit.domainAllocNested(device(), parent, IOMMU_HWPT_DATA_VTD_S1, s1(0x1000n)));
      const calls: string[] = [];
      const flush: IotlbFlush = {
        flushStage1: (tag, pasid, iovaPfn, npages) => calls.push(`s1 ${tag} ${pasid} ${iovaPfn.toString(16)} ${npages}`),
        flushTag: (tag) => calls.push(`tag ${tag}`),
      };
      return { n, calls, flush };
    }
    const entry = (addr: bigint, npages: bigint, flags = 0, reserved = 0) => encodeHwptVtdS1Invalidate({ addr, npages, flags, __reserved: reserved });
    function concat(...parts: Uint8Array[]): Uint8Array {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    }

    it('flushes ranges and "all", reporting every entry handled', () => {
      const { n, calls, flush } = setup();
      const data = concat(entry(0x10000n, 4n), entry(0n, (1n << 64n) - 1n), entry(0x200000n, 1n, 1));
      expect(n.invalidate!(0, 24, data, 3, flush)).toEqual({ handled: 3, error: null });
      expect(calls).toEqual([`s1 ${n.tag} -1 10 4`, `tag ${n.tag}`, `s1 ${n.tag} -1 200 1`]);
    });

    it('stops at the first bad entry with the kernel errno; earlier entries took effect', () => {
      const { n, calls, flush } = setup();
      let r = n.invalidate!(0, 24, concat(entry(0x1000n, 1n), entry(0x1001n, 1n)), 2, flush);
      expect(r.handled).toBe(1);
      expect(r.error).toMatchObject({ errno: 'EINVAL' });
      expect(calls).toHaveLength(1);
      r = n.invalidate!(0, 24, concat(entry(0n, 1n, 2)), 1, flush);
      expect([r.handled, r.error?.errno]).toEqual([0, 'EOPNOTSUPP']);
      r = n.invalidate!(0, 24, concat(entry(0n, 1n, 0, 1)), 1, flush);
      expect([r.handled, r.error?.errno]).toEqual([0, 'EOPNOTSUPP']);
      r = n.invalidate!(0, 24, entry(0x1000n, (1n << 64n) - 1n), 1, flush);
      expect([r.handled, r.error?.errno]).toEqual([0, 'EINVAL']);
    });

    it('checks the data type and the entry length', () => {
      const { n, flush } = setup();
      expect(n.invalidate!(1, 24, entry(0n, 1n), 1, flush)).toMatchObject({ handled: 0, error: { errno: 'EINVAL' } });
      expect(n.invalidate!(0, 16, entry(0n, 1n), 1, flush)).toMatchObject({ handled: 0, error: { errno: 'EINVAL' } });
      // iommu_copy_struct_from_user_array(): entry_len past sizeof is EINVAL at the first entry.
      const wide = concat(entry(0n, 1n), new Uint8Array(8), entry(0x1000n, 1n), new Uint8Array(8));
      expect(n.invalidate!(0, 32, wide, 2, flush)).toMatchObject({ handled: 0, error: { errno: 'EINVAL' } });
    });
  });
});
