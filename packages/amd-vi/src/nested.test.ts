import { describe, expect, it } from 'vitest';
import { createHost, uapi, type Host } from '@ioasid/core';
import { describeConformance } from '@ioasid/core/conformance';
import { DmaFault } from '@ioasid/core';
import { errCode } from '@ioasid/core/testing';
import { createAmdViPlugin, plugin } from './index.js';
import { validateGuestDte, GuestDomainIds, AmdViommu } from './nested.js';
import { decodeDte } from './dte.js';
import { ANY_VIOMMU_TYPE, guestDteBytes, nestProfile, viommuAmdData } from './__tests__/nest-profile.js';
import { AmdUnit } from './unit.js';
import { iommufdCtx } from '@ioasid/core/internal';

/** The posted series' vIOMMU, which allocates nested domains (mainline's does not). */
const seriesPlugin = createAmdViPlugin({ nestedOnViommu: true });

const PAGE = 4096n;


/** A host with a nest parent mapping 64 guest pages at GPA 0, a vIOMMU and a vDEVICE. */
function nestedEnv(p = seriesPlugin, vdata: Uint8Array = viommuAmdData(), type = ANY_VIOMMU_TYPE) {
  const host: Host = createHost({ plugins: [p], profile: nestProfile });
  const fd = host.openIommufd();
  const dev = host.device('0000:0a:00.0');
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const parent = fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: uapi.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id;
  const gmem = host.process.mmap(64 * 4096);
  host.process.poke(gmem, new Uint8Array(64 * 4096));
  fd.ioas.map({ ioasId: ioas, userVa: gmem, length: 64n * PAGE, iova: 0n });
  const vptr = host.process.mmap(Math.max(vdata.length, 1));
  host.process.poke(vptr, vdata);
  const viommu = fd.run(uapi.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: devId, type, hwpt_id: parent, data_len: vdata.length, data_uptr: vptr }).out_viommu_id;
  const vdev = fd.run(uapi.iommu_vdevice_alloc, 'VDEVICE_ALLOC', { viommu_id: viommu, dev_id: devId, virt_id: 0x10n }).out_vdevice_id;
  /** Writes a guest u64 at guest page `gpa`, entry `idx`. */
  const gwrite = (gpa: number, idx: number, v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    host.process.poke(gmem + BigInt(gpa) * PAGE + BigInt(idx * 8), b);
  };
  const nested = (bytes: Uint8Array, dataType: number = uapi.IOMMU_HWPT_DATA_AMD_GUEST) => {
    const p = host.process.mmap(Math.max(bytes.length, 1));
    host.process.poke(p, bytes);
    return fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: viommu, data_type: dataType, data_len: bytes.length, data_uptr: p }).out_hwpt_id;
  };
  return { host, fd, dev, devId, ioas, parent, viommu, vdev, gmem, gwrite, nested };
}

describe('IOMMU_HWPT_DATA_AMD_GUEST as mainline validates it', () => {
  it('refuses what validate_gdte_nested() refuses, with its errno', () => {
    const e = nestedEnv();
    const base = { V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 1 };
    expect(errCode(() => e.nested(guestDteBytes({ ...base, Mode: 3 })))).toBe('EINVAL');
    expect(errCode(() => e.nested(guestDteBytes({ ...base, hostRoot: 0x5000n })))).toBe('EINVAL');
    expect(errCode(() => e.nested(guestDteBytes({ V: 1, GV: 1, DomainID: 1 })))).toBe('EINVAL');
    expect(errCode(() => e.nested(guestDteBytes({ ...base, GuestPagingMode: 2 })))).toBe('EINVAL');
    expect(errCode(() => e.nested(guestDteBytes({ ...base, GLX: 3 })))).toBe('EINVAL');
    // A 5-level guest table on a host whose v2 is 4-level (GATS 0).
    expect(errCode(() => e.nested(guestDteBytes({ ...base, GuestPagingMode: 1 })))).toBe('EOPNOTSUPP');
    // Size rules of iommu_copy_struct_from_user(): short or longer than the struct is EINVAL.
    expect(errCode(() => e.nested(guestDteBytes(base).subarray(0, 24)))).toBe('EINVAL');
    expect(errCode(() => e.nested(new Uint8Array(40)))).toBe('EINVAL');
    expect(errCode(() => e.nested(guestDteBytes(base), uapi.IOMMU_HWPT_DATA_VTD_S1))).toBe('EOPNOTSUPP');
    // V clear with no GCR3 root, and fields a VMM cannot set (IR/IW, interrupt bits) are accepted and ignored.
    expect(errCode(() => e.nested(guestDteBytes({ GV: 1, DomainID: 2 })))).toBe('ok');
    expect(errCode(() => e.nested(guestDteBytes({ ...base, IR: 1, IW: 1, IV: 1, IntCtl: 2 })))).toBe('ok');
  });

  it('validateGuestDte() alone', () => {
    expect(validateGuestDte(decodeDte([1n | (1n << 55n) | (1n << 58n), 0n, 0n, 0n]), 4)).toBeNull();
    expect(validateGuestDte(decodeDte([1n | (1n << 55n), 0n, 0n, 0n]), 4)?.errno).toBe('EINVAL');
  });

  it('needs a vIOMMU: no nested HWPT on the parent HWPT (amd_iommu_ops has no domain_alloc_nested)', () => {
    const e = nestedEnv();
    const p = e.host.process.mmap(32);
    e.host.process.poke(p, guestDteBytes({ GV: 1, DomainID: 1 }));
    expect(errCode(() => e.fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: e.devId, pt_id: e.parent, data_type: uapi.IOMMU_HWPT_DATA_AMD_GUEST, data_len: 32, data_uptr: p }))).toBe('EOPNOTSUPP');
  });
});

describe('the AMD vIOMMU as mainline has it (iommufd.c)', () => {
  it('amd_iommufd_get_viommu_size() answers for every type: any type but DEFAULT, with or without data, gets a vIOMMU', () => {
    for (const type of [uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, 2, ANY_VIOMMU_TYPE, 0x7fff_ffff]) {
      const e = nestedEnv(plugin, new Uint8Array(0), type);
      const v = iommufdCtx(e.fd).objects.peek(e.viommu) as unknown as { ops: AmdViommu };
      expect(v.ops).toBeInstanceOf(AmdViommu);
      expect(v.ops.type).toBe(type);
    }
    // amd_iommufd_viommu_init() never reads the user data: any length and content is accepted.
    expect(() => nestedEnv(plugin, new Uint8Array(7).fill(0xff))).not.toThrow();
    const e = nestedEnv(plugin);
    // Core's own checks (iommufd_viommu_alloc_ioctl): DEFAULT and flags are EOPNOTSUPP, a parent that is not NEST_PARENT is EINVAL.
    expect(errCode(() => e.fd.run(uapi.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: e.devId, type: 0, hwpt_id: e.parent }))).toBe('EOPNOTSUPP');
    expect(errCode(() => e.fd.run(uapi.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: e.devId, flags: 1, type: ANY_VIOMMU_TYPE, hwpt_id: e.parent }))).toBe('EOPNOTSUPP');
    const plain = e.fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: e.devId, pt_id: e.ioas, flags: 0 }).out_hwpt_id;
    expect(errCode(() => e.fd.run(uapi.iommu_viommu_alloc, 'VIOMMU_ALLOC', { dev_id: e.devId, type: ANY_VIOMMU_TYPE, hwpt_id: plain }))).toBe('EINVAL');
  });

  it('amd_viommu_ops has no alloc_domain_nested: IOMMU_HWPT_ALLOC on the vIOMMU is EOPNOTSUPP, valid guest DTE or not', () => {
    const e = nestedEnv(plugin);
    expect(errCode(() => e.nested(guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 5 })))).toBe('EOPNOTSUPP');
    expect(errCode(() => e.nested(guestDteBytes({ V: 1, GV: 1, Mode: 3, DomainID: 5 })))).toBe('EOPNOTSUPP');
    // A vDEVICE is the core's (iommufd_vdevice_alloc_ioctl) and works.
    expect(iommufdCtx(e.fd).objects.peek(e.viommu)).toBeDefined();
    // HWPT_INVALIDATE on the vIOMMU: no cache_invalidate.
    expect(errCode(() => e.fd.run(uapi.iommu_hwpt_invalidate, 'HWPT_INVALIDATE', { hwpt_id: e.viommu, data_type: 0, entry_len: 16, entry_num: 0 }))).toBe('EOPNOTSUPP');
  });

  it('links the vIOMMU to its parent: a flush of the parent flushes each host domain ID (iommu_flush_pages_v1_hdom_ids)', () => {
    const e = nestedEnv();
    const a = e.nested(guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 5 }));
    const hdom = (iommufdCtx(e.fd).objects.peek(a) as unknown as { ops: { tag: number } }).ops.tag;
    const unit = e.host.units[0].ops as AmdUnit;
    const parentTag = (iommufdCtx(e.fd).objects.peek(e.parent) as unknown as { ops: { tag: number } }).ops.tag;
    // Detaching the device from the parent flushes the parent's domain ID, then every hDomID of its vIOMMUs.
    e.dev.attachPt(e.parent);
    const before = unit.commandBuffer.length;
    e.dev.detachPt();
    const flushed = unit.commandBuffer.slice(before).flatMap((c) => (c.op === 'INVALIDATE_IOMMU_PAGES' ? [c.domainId] : []));
    expect(flushed).toEqual([parentTag, hdom]);
    // Destroying the vIOMMU unlinks it (amd_iommufd_viommu_destroy).
    e.fd.destroy(a);
    e.fd.destroy(e.vdev);
    e.fd.destroy(e.viommu);
    e.dev.attachPt(e.parent);
    const b2 = unit.commandBuffer.length;
    e.dev.detachPt();
    expect(unit.commandBuffer.slice(b2).flatMap((c) => (c.op === 'INVALIDATE_IOMMU_PAGES' ? [c.domainId] : []))).toEqual([parentTag]);
  });
});

describe('guest v2 over host v1', () => {
  /** GCR3 table at GPA 1 (GLX 0); v2 root at GPA 2, PDPT 3, PD 4, PT 5; IOVA page 5 → GPA 10. */
  function guestTables(e: ReturnType<typeof nestedEnv>) {
    const tbl = 1n | 2n | 4n;
    e.gwrite(1, 0, (2n << 12n) | 1n);
    e.gwrite(2, 0, (3n << 12n) | tbl);
    e.gwrite(3, 0, (4n << 12n) | tbl);
    e.gwrite(4, 0, (5n << 12n) | tbl);
    e.gwrite(5, 5, (10n << 12n) | tbl);
    e.host.process.poke(e.gmem + 10n * PAGE, new TextEncoder().encode('guest page ten'));
  }

  it('walks the GCR3 table and the guest table, every pointer through the parent', async () => {
    const e = nestedEnv();
    guestTables(e);
    const h = e.nested(guestDteBytes({ V: 1, GV: 1, GIoV: 1, GLX: 0, gcr3Root: 0x1000n, DomainID: 7 }));
    expect(e.dev.attachPt(h)).toBe(h);
    expect(new TextDecoder().decode(await e.dev.dma.read(0x5000n, 14))).toBe('guest page ten');
    // An IOVA the guest did not map faults with the guest's format.
    await expect(e.dev.dma.read(0x6000n, 1)).rejects.toBeInstanceOf(DmaFault);
    // The host unmapping guest memory (the tables with it) is a table fault in the parent.
    e.fd.ioas.unmap(e.ioas, 0n, 64n * PAGE);
    await expect(e.dev.dma.read(0x5000n, 1)).rejects.toBeInstanceOf(DmaFault);
  });

  it('PciDevice.explain shows both stages: the GCR3 entry and the guest levels, each page through the v1 parent', () => {
    const e = nestedEnv();
    guestTables(e);
    const h = e.nested(guestDteBytes({ V: 1, GV: 1, GIoV: 1, GLX: 0, gcr3Root: 0x1000n, DomainID: 7 }));
    e.dev.attachPt(h);
    const x = e.dev.explain(0x5000n);
    expect(x).toMatchObject({ binding: 'nested', ok: true });
    expect(x.stages.map((s) => [s.stage, s.format])).toEqual([['stage 1', 'amd-v2'], ['stage 2', 'amd-v1']]);
    const s1 = x.stages[0].steps!;
    expect(s1.map((st) => [st.tableGpaPfn, st.kind])).toEqual([[1, 'table'], [2, 'table'], [3, 'table'], [4, 'table'], [5, 'leaf']]);
    expect(s1[0].context).toBe('GCR3 entry of PASID 0 (guest CR3)');
    expect(s1.slice(1).every((st) => st.context === undefined)).toBe(true);
    // Each table page is where the parent's own walk of its GPA ends.
    for (const st of s1) expect(st.stage2!.at(-1)).toMatchObject({ kind: 'leaf', pfn: st.tablePfn });
    expect(s1[4].pfn).toBe(10);
    expect(x.stages[1].inputPfn).toBe(10);
    // An IOVA the guest did not map: a stage-1 fault, the trace ends on the empty entry, no stage 2.
    const miss = e.dev.explain(0x6000n);
    expect(miss).toMatchObject({ ok: false, stage2: false });
    expect(miss.stages.map((s) => s.stage)).toEqual(['stage 1']);
    expect(miss.stages[0].steps!.at(-1)).toMatchObject({ level: 0, index: 6, kind: 'invalid' });
  });

  it('without GIoV a request without a PASID is translated by the parent only; GV clear bypasses', async () => {
    const e = nestedEnv();
    guestTables(e);
    const h = e.nested(guestDteBytes({ V: 1, GV: 1, GLX: 0, gcr3Root: 0x1000n, DomainID: 7 }));
    e.dev.attachPt(h);
    expect(new TextDecoder().decode(await e.dev.dma.read(10n * PAGE, 14))).toBe('guest page ten');
    e.dev.detachPt();
    const b = e.nested(guestDteBytes({ V: 1, DomainID: 8 }));
    e.dev.attachPt(b);
    expect(new TextDecoder().decode(await e.dev.dma.read(10n * PAGE, 14))).toBe('guest page ten');
  });

  it('maps each gDomID to one hDomID per vIOMMU, shared and released with its last domain', () => {
    const e = nestedEnv();
    const a = e.nested(guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 5 }));
    const b = e.nested(guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x2000n, DomainID: 5 }));
    const c = e.nested(guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 6 }));
    const tag = (id: number) => (iommufdCtx(e.fd).objects.peek(id) as unknown as { ops: { tag: number } }).ops.tag;
    expect(tag(a)).toBe(tag(b));
    expect(tag(a)).not.toBe(tag(c));
    const ids = new GuestDomainIds((() => { let n = 100; return () => n++; })());
    expect([ids.get(5), ids.get(5), ids.get(6)]).toEqual([100, 100, 101]);
    ids.put(5);
    expect(ids.peek(5)).toBe(100);
    ids.put(5);
    expect(ids.peek(5)).toBeUndefined();
    expect(ids.size).toBe(1);
  });

  it('has no user cache invalidation, as mainline', () => {
    const e = nestedEnv();
    const h = e.nested(guestDteBytes({ V: 1, GV: 1, gcr3Root: 0x1000n, DomainID: 5 }));
    expect(errCode(() => e.fd.run(uapi.iommu_hwpt_invalidate, 'HWPT_INVALIDATE', { hwpt_id: h, data_type: 0, entry_len: 16, entry_num: 0 }))).toBe('EOPNOTSUPP');
    expect((e.host.units[0].ops as AmdUnit).viommuTypeSupported(ANY_VIOMMU_TYPE)).toBe(true);
  });
});

describeConformance({
  plugin: seriesPlugin,
  profile: nestProfile,
  device: '0000:0a:00.0',
  priDevice: '0000:0a:00.0',
  // AMD IOPF needs a PASID: the driver answers a request without one FAILURE itself (ppr.c).
  priPasid: 1,
  nested: {
    dataType: uapi.IOMMU_HWPT_DATA_AMD_GUEST,
    data: ({ rootGpa }) => guestDteBytes({ V: 1, GV: 1, GIoV: 1, GLX: 0, gcr3Root: BigInt(rootGpa) << 12n, DomainID: 1 }),
    viommuType: ANY_VIOMMU_TYPE,
    viommuData: viommuAmdData,
  },
});
