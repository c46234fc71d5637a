/**
 * What a failed translation tells the fault path: which failure, which stage, the format id of the
 * table whose walk failed and the binding's IOTLB tag; a context-invalid walk becomes 'no-context'.
 */
import { describe, expect, it } from 'vitest';
import { PERM_READ, PERM_WRITE, WALK_CONTEXT_INVALID, WALK_TABLE_FAULT, type WalkResult } from '../driver/pgtable.js';
import type { NestedDomainOps, PagingDomainOps } from '../driver/vendor.js';
import { BIND_NESTED, BIND_PAGING, Binding, TranslateResult } from './unit.js';
import { mockFixture } from '../__tests__/mock-host.js';
import type { HwptPaging } from '../iommufd/hwpt.js';

function pagingEnv() {
  const f = mockFixture();
  const dev = f.host.device('0000:00:02.0');
  dev.bindIommufd(f.fd);
  const ioas = f.fd.ioas.alloc();
  const hwptId = dev.attachPt(ioas);
  const hwpt = f.fd.ctx.objects.peek(hwptId) as HwptPaging;
  return { f, dev, hwpt, unit: dev.unit };
}

/** A nested domain whose stage-1 walk ends the way `fault` says. */
function fakeNested(parent: PagingDomainOps, fault: number, contextFault = 0, format?: string): NestedDomainOps {
  return {
    parent,
    tag: 99,
    guestPasidTable: true,
    mode: 'translate',
    ...(format !== undefined ? { format } : {}),
    walkStage1(_iovaPfn: number, _pasid: number, _mem, out: WalkResult): boolean {
      out.fault = fault;
      if (fault === WALK_CONTEXT_INVALID) out.contextFault = contextFault;
      if (fault === WALK_TABLE_FAULT) out.tablePfn = 0x1234;
      return false;
    },
    free() {},
  };
}

describe('translation failures', () => {
  it('name the paging domain format and tag for an unmapped IOVA', () => {
    const { dev, hwpt, unit } = pagingEnv();
    const tr = new TranslateResult();
    expect(unit.translate(dev.binding(), -1, 0x1234, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'not-present', stage2: false, format: 'mock-pt', tag: hwpt.tag, contextFault: 0 });
  });

  it('a blocked binding names no table and tag 0', () => {
    const { unit } = pagingEnv();
    const tr = new TranslateResult();
    expect(unit.translate(Binding.blocked, -1, 0x10, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'blocked', format: '', tag: 0 });
  });

  it('a permission fault of a paging domain names its format', () => {
    const { f, dev, hwpt, unit } = pagingEnv();
    const ioas = hwpt.ioas.id;
    const va = f.host.process.mmap(4096);
    f.fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0x100000n, readable: true, writeable: false });
    const tr = new TranslateResult();
    expect(unit.translate(dev.binding(), -1, 0x100, PERM_WRITE, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'permission-write', stage2: false, format: 'mock-pt', tag: hwpt.tag });
  });

  it('WALK_CONTEXT_INVALID in a nested stage-1 walk is no-context with the vendor code and the stage-1 format', () => {
    const { hwpt, unit } = pagingEnv();
    const parent = hwpt.ops;
    const b = new Binding(BIND_NESTED, 99, parent.pt, fakeNested(parent, WALK_CONTEXT_INVALID, 0x0a, 'guest-s1'), null);
    const tr = new TranslateResult();
    expect(unit.translate(b, 3, 0x10, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'no-context', stage2: false, format: 'guest-s1', tag: 99, contextFault: 0x0a });
    // Without a vendor format the stage-1 table is unnamed.
    const anon = new Binding(BIND_NESTED, 98, parent.pt, fakeNested(parent, WALK_CONTEXT_INVALID), null);
    expect(unit.translate(anon, 3, 0x10, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'no-context', format: '', tag: 98, contextFault: 0 });
  });

  it('a nested table fault and a parent miss name the parent format', () => {
    const { hwpt, unit } = pagingEnv();
    const parent = hwpt.ops;
    const tr = new TranslateResult();
    const tf = new Binding(BIND_NESTED, 97, parent.pt, fakeNested(parent, WALK_TABLE_FAULT, 0, 'guest-s1'), null);
    expect(unit.translate(tf, -1, 0x10, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'table-fault', stage2: true, format: 'mock-pt', tag: 97 });
    const bypass: NestedDomainOps = { ...fakeNested(parent, 0), mode: 'bypass' };
    const b = new Binding(BIND_NESTED, 96, parent.pt, bypass, null);
    expect(unit.translate(b, -1, 0x10, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'not-present', stage2: true, format: 'mock-pt', tag: 96 });
    expect(new Binding(BIND_PAGING, 1, parent.pt, null, null).kind).toBe(BIND_PAGING);
  });
});

describe('paging walks', () => {
  it('count one walk per IOTLB miss, fill the IOTLB only while it is on, and report failures as before', () => {
    const { f, dev, hwpt, unit } = pagingEnv();
    const va = f.host.process.mmap(2 * 4096);
    f.fd.ioas.map({ ioasId: hwpt.ioas.id, userVa: va, length: 4096n, iova: 0x200000n, readable: true, writeable: true });
    f.fd.ioas.map({ ioasId: hwpt.ioas.id, userVa: va + 4096n, length: 4096n, iova: 0x201000n, readable: true, writeable: false });
    const b = dev.binding();
    const tr = new TranslateResult();
    unit.iotlb.flushAll();
    const walks = unit.walks;
    expect(unit.translate(b, -1, 0x200, PERM_WRITE, tr)).toBe(true);
    const pfn = tr.pfn;
    expect(tr.perm & PERM_WRITE).toBe(PERM_WRITE);
    expect(unit.walks).toBe(walks + 1);
    expect(unit.iotlb.occupancy).toBe(1);
    // The second access hits.
    tr.pfn = 0;
    expect(unit.translate(b, -1, 0x200, PERM_READ, tr)).toBe(true);
    expect([tr.pfn, unit.walks]).toEqual([pfn, walks + 1]);
    // A write to the read-only page: one walk, a permission failure, nothing cached.
    expect(unit.translate(b, -1, 0x201, PERM_WRITE, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'permission-write', stage2: false, format: 'mock-pt', tag: hwpt.tag });
    expect([unit.walks, unit.iotlb.occupancy]).toEqual([walks + 2, 1]);
    // With the IOTLB off every translation walks once and nothing is cached.
    unit.iotlb.enabled = false;
    unit.iotlb.flushAll();
    for (let i = 0; i < 3; i++) {
      expect(unit.translate(b, -1, 0x200, PERM_READ, tr)).toBe(true);
      expect(tr.pfn).toBe(pfn);
    }
    expect(unit.translate(b, -1, 0x202, PERM_READ, tr)).toBe(false);
    expect(tr).toMatchObject({ failure: 'not-present', format: 'mock-pt', tag: hwpt.tag, contextFault: 0 });
    expect([unit.walks, unit.iotlb.occupancy]).toEqual([walks + 6, 0]);
    unit.iotlb.enabled = true;
  });
});
