import { describe, it, expect } from 'vitest';
import { FrameAllocator, PhysicalMemory } from '@ioasid/core';
import { writeLe64Words, IOMMU_READ, IOMMU_WRITE, PERM_READ, PERM_WRITE, WALK_CONTEXT_INVALID, WALK_NOT_PRESENT, WALK_OK, WALK_TABLE_FAULT, WalkResult, pageSizesFromLog2 } from '@ioasid/core/driver';
import type { IoPageTable, IotlbFlush, PageTableMemory, VendorError } from '@ioasid/core/driver';
import { NO_FLAGS, device, rigFor } from './__tests__/rig.js';
import { ampereAltraMmu600, mmu700Platform, nvidiaGrace, qemuVirtSmmuv3 } from './presets.js';
import { SmmuPagingDomain } from './unit.js';
import { SmmuNestedDomain, SmmuViommu } from './nested.js';
import { armLpaeS1 } from './pgtable-lpae.js';
import { STE_CFG, STE_S1DSS, STE_S1FMT, encodeCd, encodeCdL1Desc, encodeSteWords } from './ste.js';
import { decodeHwInfoSmmuv3 } from './registers.js';
import { EVT_ID } from './records.js';
import { encodeCommand, type CommandFields, type CommandName } from './commands.js';

function isErr(x: unknown): x is VendorError {
  return typeof x === 'object' && x !== null && 'errno' in x;
}

function must<T>(x: T | VendorError): T {
  if (isErr(x)) throw new TypeError(`${x.errno}: ${x.reason}`);
  return x;
}

function errnoOf(x: unknown): string | undefined {
  return isErr(x) ? x.errno : undefined;
}

/** The 16 bytes of iommu_hwpt_arm_smmuv3 for the first two STE words. */
function vste(init: Parameters<typeof encodeSteWords>[0]): Uint8Array {
  const w = encodeSteWords(init);
  return writeLe64Words([w[0], w[1]]);
}

function nestParent(rig = rigFor(mmu700Platform.units[0])) {
  const s2 = must(rig.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, rig.memory)) as SmmuPagingDomain;
  const viommu = must(rig.unit.viommuAlloc(1, s2, new Uint8Array(0))) as SmmuViommu;
  return { rig, s2, viommu };
}

describe('unit basics', () => {
  it('is named after the profile id and reports hw_info as iommu_hw_info_arm_smmuv3', () => {
    const { unit } = rigFor(mmu700Platform.units[0], 'arm-smmu-v3.0.auto');
    expect(unit.name).toBe('arm-smmu-v3.0.auto');
    expect(unit.vendor).toBe('smmuv3');
    const info = unit.hwInfo(device(), 0);
    if (isErr(info)) throw new TypeError(info.reason);
    expect(info.type).toBe(2);
    expect(info.data.byteLength).toBe(40);
    // struct iommu_hw_info_arm_smmuv3 (include/uapi/linux/iommufd.h), byte by byte at the header's offsets: __u32
    // flags @0, __u32 __reserved @4, __u32 idr[6] @8..28, __u32 iidr @32, __u32 aidr @36; the values are the
    // preset's registers, written out here rather than taken from the plugin.
    const view = new DataView(info.data.buffer, info.data.byteOffset, info.data.byteLength);
    const expected: Array<[offset: number, value: number]> = [
      [0, 0],
      [4, 0],
      [8, 0x080d76bb],
      [12, 0x0a739d10],
      [16, 0],
      [20, 0x00000c00],
      [24, 0],
      [28, 0x00000075],
      [32, 0x4871143b],
      [36, 2],
    ];
    for (const [offset, value] of expected) expect(view.getUint32(offset, true), `offset ${offset}`).toBe(value);
    expect(decodeHwInfoSmmuv3(info.data).ok).toBe(true);
    expect(unit.hwInfo(device(), 2)).toMatchObject({ type: 2 });
    expect(errnoOf(unit.hwInfo(device(), 1))).toBe('EOPNOTSUPP');
    expect(unit.viommuTypes).toEqual([1]);
  });

  it('queue depths from IDR1, capped at 2^8, and the probe lines', () => {
    const { unit } = rigFor(ampereAltraMmu600.units[0], 'arm-smmu-v3.0.auto');
    expect(unit.faultQueueDepth).toBe(256);
    expect(unit.pageRequestQueueDepth).toBe(256);
    expect(unit.faults.faultRecordSize).toBe(32);
    expect(unit.faults.pageRequestSize).toBe(16);
    expect(unit.bootLog()).toEqual([
      `arm-smmu-v3 arm-smmu-v3.0.auto: ias 48-bit, oas 48-bit (features 0x${unit.probe.features.toString(16).padStart(8, '0')})`,
      'arm-smmu-v3 arm-smmu-v3.0.auto: allocated 262144 entries for cmdq',
      'arm-smmu-v3 arm-smmu-v3.0.auto: allocated 131072 entries for evtq',
      'arm-smmu-v3 arm-smmu-v3.0.auto: allocated 262144 entries for priq',
    ]);
    const grace = rigFor(nvidiaGrace.units[0], 'arm-smmu-v3.9.auto').unit;
    expect(grace.bootLog()[0]).toBe('arm-smmu-v3 arm-smmu-v3.9.auto: ias 48-bit, oas 48-bit (features 0x001e1fbf)');
    const qemu = rigFor(qemuVirtSmmuv3.units[0]).unit;
    expect(qemu.pageRequestQueueDepth).toBe(0);
    expect(qemu.bootLog().some((l) => l.endsWith('priq'))).toBe(false);
  });
});

describe('paging domains', () => {
  it('stage 1 by default, with the 4K granule and a 48-bit VA', () => {
    const { unit, memory } = rigFor(mmu700Platform.units[0]);
    const d = must(unit.domainAllocPaging(device(), NO_FLAGS, memory)) as SmmuPagingDomain;
    expect(d.stage).toBe(1);
    expect(d.pt.format).toBe('arm-lpae-s1');
    expect(d.pgsizeBitmap).toBe(pageSizesFromLog2(12, 21, 30));
    expect(d.apertureLast).toBe((1n << 48n) - 1n);
    expect(d.granuleLog2).toBe(12);
    expect(d.enforceCacheCoherency).toBe(true);
    expect(d.setDirtyTracking).toBeUndefined();
    const e = must(unit.domainAllocPaging(device(), NO_FLAGS, memory));
    expect(e.tag).not.toBe(d.tag);
    expect(d.pt.map(0x10, 0x2000, 1, IOMMU_READ | IOMMU_WRITE)).toBe(0);
    const out = new WalkResult();
    expect(d.pt.walk(0x10, out) && out.pfn).toBe(0x2000);
    d.free();
  });

  it('NEST_PARENT gives a stage-2 domain, only with nesting', () => {
    const { unit, memory } = rigFor(mmu700Platform.units[0]);
    const s2 = must(unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, memory)) as SmmuPagingDomain;
    expect(s2.stage).toBe(2);
    expect(s2.nestParent).toBe(true);
    expect(s2.pt.format).toBe('arm-lpae-s2');
    expect(s2.pt.cfg.ias).toBe(48);
    expect(errnoOf(unit.domainAllocPaging(device(), { nestParent: true, dirtyTracking: true, pasid: false }, memory))).toBe('EOPNOTSUPP');
    const qemu = rigFor(qemuVirtSmmuv3.units[0]);
    expect(errnoOf(qemu.unit.domainAllocPaging(device(), { ...NO_FLAGS, nestParent: true }, qemu.memory))).toBe('EOPNOTSUPP');
  });

  it('dirty tracking needs HTTU dirty state; PASID needs substreams', () => {
    const { unit, memory } = rigFor(mmu700Platform.units[0]);
    const d = must(unit.domainAllocPaging(device(), { ...NO_FLAGS, dirtyTracking: true }, memory));
    expect(d.pt.cfg.dirtyTracking).toBe(true);
    expect(d.setDirtyTracking?.(true)).toBeNull();
    const grace = rigFor(nvidiaGrace.units[0]);
    expect(errnoOf(grace.unit.domainAllocPaging(device(), { ...NO_FLAGS, dirtyTracking: true }, grace.memory))).toBe('EOPNOTSUPP');
    expect(must(unit.domainAllocPaging(device(), { ...NO_FLAGS, pasid: true }, memory))).toBeInstanceOf(SmmuPagingDomain);
    const qemu = rigFor(qemuVirtSmmuv3.units[0]);
    expect(errnoOf(qemu.unit.domainAllocPaging(device(), { ...NO_FLAGS, pasid: true }, qemu.memory))).toBe('EOPNOTSUPP');
  });

  it('a domain attaches only to the SMMU it was allocated on', () => {
    const a = rigFor(mmu700Platform.units[0], 'smmu0');
    const b = rigFor(mmu700Platform.units[0], 'smmu1');
    const d = must(a.unit.domainAllocPaging(device(), NO_FLAGS, a.memory));
    expect(d.checkAttach?.(device(), a.unit)).toBeNull();
    expect(d.checkAttach?.(device(), b.unit)?.errno).toBe('EINVAL');
  });
});

describe('vIOMMU', () => {
  it('needs a stage-2 NEST_PARENT domain of the same SMMU', () => {
    const { rig, s2, viommu } = nestParent();
    expect(viommu.type).toBe(1);
    expect(viommu.eventTypes).toEqual([1]);
    expect(viommu.vmid).toBe(s2.tag);
    expect(errnoOf(rig.unit.viommuAlloc(2, s2, new Uint8Array(0)))).toBe('EOPNOTSUPP');
    const s1 = must(rig.unit.domainAllocPaging(device(), NO_FLAGS, rig.memory));
    expect(errnoOf(rig.unit.viommuAlloc(1, s1, new Uint8Array(0)))).toBe('EINVAL');
    const other = rigFor(mmu700Platform.units[0], 'smmu1');
    expect(errnoOf(other.unit.viommuAlloc(1, s2, new Uint8Array(0)))).toBe('EINVAL');
    const qemu = rigFor(qemuVirtSmmuv3.units[0]);
    expect(errnoOf(qemu.unit.viommuAlloc(1, s2, new Uint8Array(0)))).toBe('EOPNOTSUPP');
  });

  it('nested domains from iommu_hwpt_arm_smmuv3, with the kernel errnos', () => {
    const { viommu, s2 } = nestParent();
    const dev = device();
    expect(errnoOf(viommu.allocNested(dev, 1, vste({ V: 1 })))).toBe('EOPNOTSUPP');
    expect(errnoOf(viommu.allocNested(dev, 2, new Uint8Array(8)))).toBe('EINVAL');
    // __iommu_copy_struct_from_user(): more than sizeof(struct iommu_hwpt_arm_smmuv3) is EINVAL, even zero-filled.
    const long = new Uint8Array(24);
    long.set(vste({ V: 1, Config: STE_CFG.BYPASS }));
    expect(errnoOf(viommu.allocNested(dev, 2, long))).toBe('EINVAL');
    expect(errnoOf(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.BYPASS })))).toBeUndefined();
    // Config S2 / nested, bits outside the allowed masks, EATS = S1CHK: EIO.
    expect(errnoOf(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.S2_TRANS })))).toBe('EIO');
    expect(errnoOf(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.NESTED })))).toBe('EIO');
    expect(errnoOf(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, MEV: 1 })))).toBe('EIO');
    expect(errnoOf(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, EATS: 2 })))).toBe('EIO');
    expect(errnoOf(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S2VMID: 0 })))).toBeUndefined();

    const abort = must(viommu.allocNested(dev, 2, vste({ V: 0, Config: STE_CFG.S1_TRANS })));
    const bypass = must(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.BYPASS })));
    const s1 = must(viommu.allocNested(dev, 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: 0x50000n })));
    expect([abort.mode, bypass.mode, s1.mode]).toEqual(['abort', 'bypass', 'translate']);
    expect(s1.guestPasidTable).toBe(true);
    expect(s1.parent).toBe(s2);
    expect(s1.tag).not.toBe(s2.tag);
    expect(s1.checkAttach?.(dev, false)?.errno).toBe('ENOENT');
    expect(s1.checkAttach?.(dev, true)).toBeNull();
    expect(bypass.checkAttach?.(dev, false)).toBeNull();
    expect(abort.checkAttach?.(dev, false)).toBeNull();
    expect(s1.invalidate).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Guest CD tables and stage-1 tables in guest-physical memory, seen by the host at an offset
// ---------------------------------------------------------------------------------------------

const OFFSET = 0x40000;
const CD_TABLE_GPFN = 0x50;

interface Guest {
  mem: PhysicalMemory;
  memory: PageTableMemory;
  tables: IoPageTable[];
}

function guest(): Guest {
  const mem = new PhysicalMemory();
  const frames = new FrameAllocator(mem, 0x100);
  return { mem, memory: { mem, allocTable: () => frames.alloc(), releaseTable: (p) => frames.release(p) }, tables: [] };
}

function guestTable(g: Guest, iovaPfn: number, gpaPfn: number, prot = IOMMU_READ | IOMMU_WRITE): IoPageTable {
  const pt = armLpaeS1.alloc({ pgsizeBitmap: pageSizesFromLog2(12, 21, 30), ias: 39, oas: 48, granule: 4096 }, g.memory);
  if (typeof pt === 'number') throw new TypeError(`alloc ${pt}`);
  expect(pt.map(iovaPfn, gpaPfn, 1, prot)).toBe(0);
  g.tables.push(pt);
  return pt;
}

function writeCd(g: Guest, gpa: number, pt: IoPageTable | null, asid: number, over: Parameters<typeof encodeCd>[0] = {}): void {
  g.mem.write(gpa, encodeCd({ V: 1, AA64: 1, T0SZ: 25, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASET: 1, ASID: asid, TTB0: pt ? BigInt(pt.rootPfn) << 12n : 0n, ...over }));
}

/** Copies guest-physical frames [0, 0x400) into host memory at OFFSET: the stage-2 view. */
function install(g: Guest, host: PhysicalMemory): (gpaPfn: number) => number {
  const buf = new Uint8Array(4096);
  for (let pfn = 0; pfn < 0x400; pfn++) {
    if (!g.mem.chunkIfBacked(pfn)) continue;
    g.mem.read(pfn * 4096, buf);
    host.write((pfn + OFFSET) * 4096, buf);
  }
  return (gpaPfn) => (gpaPfn < 0x400 ? gpaPfn + OFFSET : -1);
}

describe('nested stage-1 walk through the guest CD table', () => {
  it('SSID 0 of a single-CD table, for a transaction without PASID', () => {
    const { rig, viommu } = nestParent();
    const g = guest();
    writeCd(g, CD_TABLE_GPFN * 4096, guestTable(g, 0x10, 0x5000), 0x11);
    const toPhys = install(g, rig.mem);
    const d = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: BigInt(CD_TABLE_GPFN) << 12n })));
    const out = new WalkResult();
    expect(d.walkStage1(0x10, -1, rig.mem, out, toPhys)).toBe(true);
    expect(out).toMatchObject({ fault: WALK_OK, pfn: 0x5000, pageShift: 12 });
    expect(out.perm & (PERM_READ | PERM_WRITE)).toBe(PERM_READ | PERM_WRITE);
    expect(d.walkStage1(0x11, -1, rig.mem, out, toPhys)).toBe(false);
    expect(out.fault).toBe(WALK_NOT_PRESENT);
    // A PASID on a stream without substreams: C_BAD_SUBSTREAMID.
    expect(d.walkStage1(0x10, 1, rig.mem, out, toPhys)).toBe(false);
    expect((d as SmmuNestedDomain).lastContextFault).toBe('C_BAD_SUBSTREAMID');
    // The CD table's IPA does not translate at stage 2.
    expect(d.walkStage1(0x10, -1, rig.mem, out, () => -1)).toBe(false);
    expect(out).toMatchObject({ fault: WALK_TABLE_FAULT, tablePfn: CD_TABLE_GPFN });
  });

  it('a linear CD table with substreams: S1DSS, SSID range and CD.V', () => {
    const { rig, viommu } = nestParent();
    const g = guest();
    const base = CD_TABLE_GPFN * 4096;
    writeCd(g, base, guestTable(g, 0x10, 0x5000), 0x11);
    writeCd(g, base + 1 * 64, null, 0x12, { V: 0 });
    writeCd(g, base + 2 * 64, guestTable(g, 0x10, 0x7000), 0x13, { T0SZ: 10 });
    writeCd(g, base + 3 * 64, guestTable(g, 0x10, 0x6000), 0x14);
    const toPhys = install(g, rig.mem);
    const ctx = BigInt(CD_TABLE_GPFN) << 12n;
    const d = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: ctx, S1CDMax: 2, S1DSS: STE_S1DSS.SSID0 }))) as SmmuNestedDomain;
    const out = new WalkResult();
    expect(d.walkStage1(0x10, 3, rig.mem, out, toPhys) && out.pfn).toBe(0x6000);
    expect(d.walkStage1(0x10, -1, rig.mem, out, toPhys) && out.pfn).toBe(0x5000);
    for (const [pasid, why] of [[0, 'C_BAD_SUBSTREAMID'], [4, 'C_BAD_SUBSTREAMID'], [1, 'C_BAD_CD'], [2, 'C_BAD_CD']] as const) {
      expect(d.walkStage1(0x10, pasid, rig.mem, out, toPhys), `pasid ${pasid}`).toBe(false);
      expect(d.lastContextFault).toBe(why);
      // The walk result itself says so: a context fault with the event the SMMU records.
      expect(out).toMatchObject({ fault: WALK_CONTEXT_INVALID, contextFault: EVT_ID[why] });
    }
    const term = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: ctx, S1CDMax: 2, S1DSS: STE_S1DSS.TERMINATE }))) as SmmuNestedDomain;
    expect(term.walkStage1(0x10, -1, rig.mem, out, toPhys)).toBe(false);
    expect(term.lastContextFault).toBe('F_STREAM_DISABLED');
    expect(out).toMatchObject({ fault: WALK_CONTEXT_INVALID, contextFault: EVT_ID.F_STREAM_DISABLED });
    expect(term.format).toBe('arm-lpae-s1');
    expect(term.walkStage1(0x10, 0, rig.mem, out, toPhys) && out.pfn).toBe(0x5000);
    const byp = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: ctx, S1CDMax: 2, S1DSS: STE_S1DSS.BYPASS })));
    expect(byp.walkStage1(0x1234, -1, rig.mem, out, toPhys) && out.pfn).toBe(0x1234);
  });

  it('a two-level CD table (4 KB leaf tables)', () => {
    const { rig, viommu } = nestParent();
    const g = guest();
    const l1 = 0x60 * 4096;
    const l2 = 0x61 * 4096;
    g.mem.write(l1 + 8, writeLe64Words([encodeCdL1Desc({ V: 1, L2Ptr: BigInt(l2) })]));
    writeCd(g, l2 + (65 & 63) * 64, guestTable(g, 0x20, 0x8000), 0x21);
    const toPhys = install(g, rig.mem);
    const d = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: BigInt(l1), S1CDMax: 7, S1Fmt: STE_S1FMT['4K_L2'], S1DSS: STE_S1DSS.SSID0 }))) as SmmuNestedDomain;
    const out = new WalkResult();
    expect(d.walkStage1(0x20, 65, rig.mem, out, toPhys) && out.pfn).toBe(0x8000);
    expect(d.walkStage1(0x20, 129, rig.mem, out, toPhys)).toBe(false);
    expect(d.lastContextFault).toBe('C_BAD_SUBSTREAMID');
  });

  it('traces what the walk reads: the L1 CD descriptor, the CD, then the stage-1 levels, each page through stage 2', () => {
    const { rig, viommu } = nestParent();
    const g = guest();
    const l1 = 0x60 * 4096;
    const l2 = 0x61 * 4096;
    g.mem.write(l1 + 8, writeLe64Words([encodeCdL1Desc({ V: 1, L2Ptr: BigInt(l2) })]));
    const pt = guestTable(g, 0x20, 0x8000);
    writeCd(g, l2 + (65 & 63) * 64, pt, 0x21);
    const toPhys = install(g, rig.mem);
    const d = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: BigInt(l1), S1CDMax: 7, S1Fmt: STE_S1FMT['4K_L2'], S1DSS: STE_S1DSS.SSID0 }))) as SmmuNestedDomain;
    const s2 = (gpa: number) => ({ pfn: toPhys(gpa), steps: [] });
    const steps = d.traceStage1(0x20, 65, rig.mem, s2);
    expect(steps.map((st) => [st.context !== undefined, st.kind])).toEqual([[true, 'table'], [true, 'table'], [false, 'table'], [false, 'table'], [false, 'leaf']]);
    expect(steps[0]).toMatchObject({ tableGpaPfn: 0x60, index: 1, pfn: 0x61, tablePfn: 0x60 + OFFSET });
    expect(steps[1]).toMatchObject({ tableGpaPfn: 0x61, index: 1 * 8 + 1, pfn: pt.rootPfn });
    expect(steps[1].context).toContain('ASID 33');
    expect(steps[2].tableGpaPfn).toBe(pt.rootPfn);
    for (const st of steps) expect(st.tablePfn).toBe(st.tableGpaPfn! + OFFSET);
    expect(steps[4].pfn).toBe(0x8000);
    // The trace leaves the walk's bookkeeping alone.
    expect(d.lastContextFault).toBeNull();
    // An L1 descriptor that is not valid stops it (SSID 3 is under L1 entry 0, never written); a
    // SubstreamID the STE refuses reads nothing.
    expect(d.traceStage1(0x20, 3, rig.mem, s2).map((st) => st.kind)).toEqual(['invalid']);
    expect(d.traceStage1(0x20, 129, rig.mem, s2)).toEqual([]);
    // The CD table's page outside stage 2: the first step names the guest page and has no host page.
    expect(d.traceStage1(0x20, 65, rig.mem, () => ({ pfn: -1, steps: null }))).toEqual([
      { level: 1, tablePfn: -1, index: 1, entry: 0n, kind: 'invalid', pfn: 0, tableGpaPfn: 0x60, stage2: null, context: 'L1 CD descriptor 1' },
    ]);
  });

  it('bypass and abort vSTEs', () => {
    const { rig, viommu } = nestParent();
    const out = new WalkResult();
    const bypass = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.BYPASS })));
    expect(bypass.walkStage1(0x42, -1, rig.mem, out, (p) => p) && out.pfn).toBe(0x42);
    const abort = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.ABORT })));
    expect(abort.walkStage1(0x42, -1, rig.mem, out, (p) => p)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Invalidation through the vIOMMU
// ---------------------------------------------------------------------------------------------

function cmds(...list: Array<[CommandName, CommandFields]>): Uint8Array {
  const out = new Uint8Array(16 * list.length);
  list.forEach(([name, f], i) => {
    const r = encodeCommand(name, f);
    if (!r.ok) throw new TypeError(r.error);
    out.set(r.value, i * 16);
  });
  return out;
}

function recorder(): { calls: string[]; flush: IotlbFlush } {
  const calls: string[] = [];
  return {
    calls,
    flush: {
      flushStage1: (tag, pasid, iovaPfn, npages) => calls.push(`s1 tag=${tag} pasid=${pasid} pfn=0x${iovaPfn.toString(16)} n=${npages}`),
      flushTag: (tag) => calls.push(`tag=${tag}`),
    },
  };
}

describe('vIOMMU invalidation', () => {
  function setup() {
    const { rig, viommu } = nestParent();
    const g = guest();
    writeCd(g, CD_TABLE_GPFN * 4096, guestTable(g, 0x10, 0x5000), 0x11);
    const toPhys = install(g, rig.mem);
    const d = must(viommu.allocNested(device(), 2, vste({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: BigInt(CD_TABLE_GPFN) << 12n })));
    const out = new WalkResult();
    expect(d.walkStage1(0x10, -1, rig.mem, out, toPhys)).toBe(true);
    const vdev = device({ streamId: 0x100 });
    const lookup = (v: bigint) => (v === 5n ? vdev : undefined);
    return { viommu, d, lookup };
  }

  it('TLBI_NH_VA flushes what the guest ASID mapped, with ranges', () => {
    const { viommu, d, lookup } = setup();
    const { calls, flush } = recorder();
    const entries = cmds(
      ['CMD_TLBI_NH_VA', { ASID: 0x11, Addr: 0x10000n, Leaf: 1 }],
      ['CMD_TLBI_NH_VA', { ASID: 0x11, Addr: 0x10000n, TG: 1, NUM: 3, SCALE: 1 }],
      ['CMD_TLBI_NH_VA', { ASID: 0x99, Addr: 0x10000n }],
      ['CMD_TLBI_NH_VAA', { Addr: 0x20000n, TG: 1, NUM: 1, TTL: 3 }],
      ['CMD_TLBI_NH_ASID', { ASID: 0x11 }],
      ['CMD_TLBI_NSNH_ALL', {}],
      ['CMD_CFGI_CD', { SID: 5, SSID: 0 }],
      ['CMD_ATC_INV', { SID: 5, Size: 52 }],
    );
    expect(viommu.invalidate(1, 16, entries, 8, flush, lookup)).toEqual({ handled: 8, error: null });
    expect(calls).toEqual([
      `s1 tag=${d.tag} pasid=-1 pfn=0x10 n=1`,
      `s1 tag=${d.tag} pasid=-1 pfn=0x10 n=8`,
      `s1 tag=${d.tag} pasid=-1 pfn=0x20 n=2`,
      `s1 tag=${d.tag} pasid=-1 pfn=0x0 n=${2 ** 52}`,
      `tag=${d.tag}`,
    ]);
  });

  it('stops at the first command a vSMMU may not issue, with EIO and the count handled', () => {
    const { viommu, lookup } = setup();
    const { calls, flush } = recorder();
    const r = viommu.invalidate(1, 16, cmds(['CMD_TLBI_NH_ALL', {}], ['CMD_TLBI_NH_ASID', { ASID: 1 }], ['CMD_CFGI_STE', { SID: 5 }], ['CMD_TLBI_NH_ALL', {}]), 4, flush, lookup);
    expect(r.handled).toBe(2);
    expect(r.error?.errno).toBe('EIO');
    expect(calls).toHaveLength(1);
    for (const bad of [
      cmds(['CMD_TLBI_S12_VMALL', { VMID: 1 }]),
      cmds(['CMD_TLBI_EL2_ALL', {}]),
      cmds(['CMD_PRI_RESP', { SID: 5 }]),
      cmds(['CMD_ATC_INV', { SID: 6 }]),
      cmds(['CMD_CFGI_CD_ALL', { SID: 7 }]),
      cmds(['CMD_TLBI_NH_VA', { ASID: 1, Addr: 0x1000n, TG: 1 }]),
    ]) {
      expect(viommu.invalidate(1, 16, bad, 1, flush, lookup)).toMatchObject({ handled: 0, error: { errno: 'EIO' } });
    }
  });

  it('checks the data type and the entry length like the kernel copy helper', () => {
    const { viommu, lookup } = setup();
    const { flush } = recorder();
    const one = cmds(['CMD_TLBI_NH_ALL', {}]);
    expect(viommu.invalidate(0, 16, one, 1, flush, lookup)).toMatchObject({ handled: 0, error: { errno: 'EINVAL' } });
    const wide = new Uint8Array(48);
    wide.set(one, 0);
    wide.set(one, 24);
    expect(viommu.invalidate(1, 24, wide, 2, flush, lookup)).toEqual({ handled: 2, error: null });
    wide[40] = 1;
    expect(viommu.invalidate(1, 24, wide, 2, flush, lookup)).toMatchObject({ handled: 0, error: { errno: 'E2BIG' } });
    expect(viommu.invalidate(1, 16, new Uint8Array(8), 1, flush, lookup)).toMatchObject({ handled: 0, error: { errno: 'EINVAL' } });
  });
});
