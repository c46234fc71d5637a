import { describe, expect, it } from 'vitest';
import { createHost, uapi } from '@ioasid/core';
import { FailNth, NO_FAULT_INJECTION, WalkResult } from '@ioasid/core/driver';
import { decodeDte } from './dte.js';
import { AmdPagingDomain, AmdUnit, V1_START_LEVELS } from './unit.js';
import { amdPresetById, plugin } from './index.js';

const PAGE = 4096n;
/** 0000:01:00.0 on the Raphael preset (one IOMMU, HATS 2: 6 host levels). */
const DEVID = 0x100;
const HIGH = 1n << 50n;
const INV_DTE = { op: 'INVALIDATE_DEVTAB_ENTRY', devid: DEVID } as const;
const wait = (n: bigint) => ({ op: 'COMPLETION_WAIT', store: true, interrupt: false, flush: false, storeAddress: 0n, storeData: n }) as const;

function env() {
  const host = createHost({ plugins: [plugin], profile: amdPresetById('amd-zen4-raphael') });
  const unit = host.units[0].ops as AmdUnit;
  const fd = host.openIommufd();
  const dev = host.device('0000:01:00.0');
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const hwpt = fd.run(uapi.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: devId, pt_id: ioas, flags: 0 }).out_hwpt_id;
  dev.attachPt(hwpt);
  const buf = host.process.mmap(2 * 4096);
  host.process.poke(buf, new Uint8Array(2 * 4096));
  const domain = unit.deviceTable.domainOf(DEVID);
  if (!(domain instanceof AmdPagingDomain)) throw new Error('the device is not on a v1 paging domain');
  const dte = () => {
    const e = unit.deviceTableEntry(DEVID);
    if (e === null) throw new Error('no DTE');
    return decodeDte(e);
  };
  const pa = (iovaPfn: number) => {
    const out = new WalkResult();
    return domain.pt.walk(iovaPfn, out) ? out.pfn : -1;
  };
  return { host, unit, fd, ioas, buf, domain, dte, pa };
}

describe('v1 dynamic top (generic_pt amdv1 PT_FEAT_DYNAMIC_TOP)', () => {
  it('starts at 3 levels with DTE Mode 3 and the full aperture HATS allows', () => {
    const e = env();
    expect(V1_START_LEVELS).toBe(3);
    expect(e.domain.pt.levels).toBe(3);
    expect(e.domain.maxLevels).toBe(6);
    expect(e.domain.apertureLast).toBe((1n << 64n) - 1n);
    const d = e.dte();
    expect([d.V, d.TV, d.Mode, d.IR, d.IW]).toEqual([1, 1, 3, 1, 1]);
    expect(d.hostRoot).toBe(BigInt(e.domain.pt.rootPfn) * PAGE);
    // amd_iommu_update_dte() twice: the blocked domain's cleared DTE at bind, then the v1 DTE at attach;
    // each is update_dte256()'s flush and wait, device_flush_dte(), the final wait.
    expect(e.unit.commandBuffer).toEqual([INV_DTE, wait(1n), INV_DTE, wait(2n), INV_DTE, wait(3n), INV_DTE, wait(4n)]);
  });

  it('grows for a high IOVA: new root whose entry 0 is the old root, DTE Mode and root rewritten and flushed', () => {
    const e = env();
    e.fd.ioas.map({ ioasId: e.ioas, userVa: e.buf, length: PAGE, iova: PAGE });
    const low = e.pa(1);
    expect(low).toBeGreaterThan(0);
    const oldRoot = e.domain.pt.rootPfn;
    const before = e.unit.commandBuffer.length;
    e.fd.ioas.map({ ioasId: e.ioas, userVa: e.buf + PAGE, length: PAGE, iova: HIGH });
    // IOVA bit 50 needs 5 levels (57 bits); both added levels are made at once.
    expect(e.domain.pt.levels).toBe(5);
    expect(e.domain.pt.rootPfn).not.toBe(oldRoot);
    expect(e.pa(1)).toBe(low);
    expect(e.pa(Number(HIGH / PAGE))).toBeGreaterThan(0);
    const d = e.dte();
    expect(d.Mode).toBe(5);
    expect(d.hostRoot).toBe(BigInt(e.domain.pt.rootPfn) * PAGE);
    // set_dte_entry() (amd_iommu_update_dte(), then the flush of the DomainID the old DTE held, here the
    // domain's own), then device_flush_dte() and domain_flush_complete().
    const tag = e.domain.tag;
    expect(e.unit.commandBuffer.slice(before)).toEqual([
      INV_DTE,
      wait(5n),
      INV_DTE,
      wait(6n),
      { op: 'INVALIDATE_IOMMU_PAGES', domainId: tag, pasid: 0, gn: false, pde: true, size: true, address: 0x7ffffffffffff000n },
      wait(7n),
      INV_DTE,
      wait(8n),
    ]);
    // The walk reads the new root, then entry 0 of the level below points to the old root.
    const steps = e.domain.pt.trace?.(1) ?? [];
    expect(steps.length).toBe(5);
    expect(steps.map((s) => s.tablePfn).slice(0, 3)).toEqual([e.domain.pt.rootPfn, steps[1].tablePfn, oldRoot]);
    // Unmapping everything keeps the depth (Linux never shrinks the top).
    e.fd.ioas.unmap(e.ioas, HIGH, PAGE);
    expect(e.domain.pt.levels).toBe(5);
    expect(e.pa(1)).toBe(low);
  });

  it('leaves the table, the DTE and the command buffer as they were when a new top cannot be allocated', () => {
    const e = env();
    e.fd.ioas.map({ ioasId: e.ioas, userVa: e.buf, length: PAGE, iova: PAGE });
    const low = e.pa(1);
    const root = e.domain.pt.rootPfn;
    const tables = e.domain.pt.tablePages;
    const dte = e.unit.deviceTableEntry(DEVID);
    const cmds = e.unit.commandBuffer.length;
    // The second of the two new top tables fails: the first goes back.
    const inj = new FailNth(2, ['table-alloc']);
    e.host.injector = inj;
    expect(() => e.fd.ioas.map({ ioasId: e.ioas, userVa: e.buf + PAGE, length: PAGE, iova: HIGH })).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(inj.hit).toBe(true);
    e.host.injector = NO_FAULT_INJECTION;
    expect(e.domain.pt.levels).toBe(3);
    expect(e.domain.pt.rootPfn).toBe(root);
    expect(e.domain.pt.tablePages).toBe(tables);
    expect(e.unit.deviceTableEntry(DEVID)).toEqual(dte);
    expect(e.unit.commandBuffer.length).toBe(cmds);
    expect(e.pa(1)).toBe(low);
    e.fd.ioas.map({ ioasId: e.ioas, userVa: e.buf + PAGE, length: PAGE, iova: HIGH });
    expect(e.domain.pt.levels).toBe(5);
  });
});
