/**
 * The driver's attach hooks (DomainAttachHooks): core calls attachDev only after every check, for each
 * device of the group, and puts the group back on its previous domain when one fails, in the order of
 * iommu.c __iommu_group_set_domain_internal; detachDev runs when the group goes to blocked DMA.
 */
import { describe, expect, it } from 'vitest';
import { createHost } from '../host/host.js';
import { MockVendor } from '../testing/mock-vendor.js';
import { mockFormat } from '../testing/mock-format.js';
import { mockProfile } from '../__tests__/mock-host.js';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '../driver/plugin.js';
import type { DeviceInfo, IommuVendor, PagingDomainOps, UnitOps } from '../driver/vendor.js';
import { FailNth, NO_FAULT_INJECTION } from '../driver/inject.js';
import { errCode } from '../testing/err-code.js';

const A = '0000:00:03.0';
const B = '0000:00:03.1';

interface Driver {
  /** What the driver was asked to do, in order: `attach <tag> <bdf>` / `detach <tag> <bdf>`. */
  readonly calls: string[];
  /** The domain tag each device's context points at, as the driver sees it (absent: blocked). */
  readonly context: Map<string, number>;
  /** attachDev of `bdf` onto `tag` fails when this says so. */
  refuse: (bdf: string, tag: number) => boolean;
  /** The blocking domain's attachDev of `bdf` fails when this says so (`block <bdf>` in `calls`). */
  refuseBlock?: (bdf: string) => boolean;
}

/** The mock vendor whose paging domains program a context per device in attachDev / detachDev. */
function hookedMock(driver: Driver): IommuPlugin {
  const inner = new MockVendor();
  const hook = (d: PagingDomainOps): PagingDomainOps =>
    Object.assign(Object.create(d) as PagingDomainOps, {
      attachDev(dev: DeviceInfo) {
        driver.calls.push(`attach ${d.tag} ${dev.bdf}`);
        // Like a driver that wrote half of its context before it failed: the device points here already.
        driver.context.set(dev.bdf, d.tag);
        return driver.refuse(dev.bdf, d.tag) ? { errno: 'ENOSPC' as const, reason: 'no room in the context table' } : null;
      },
      detachDev(dev: DeviceInfo) {
        driver.calls.push(`detach ${d.tag} ${dev.bdf}`);
        driver.context.delete(dev.bdf);
      },
    });
  const vendor: IommuVendor = {
    id: 'mock',
    name: inner.name,
    decodeRegisters: (raw) => inner.decodeRegisters(raw),
    createUnit(init) {
      const unit = inner.createUnit(init);
      const alloc = unit.domainAllocPaging!.bind(unit);
      // The driver's blocked domain: the context of a bound device is cleared (tag 0 here).
      const blocked = {
        attachDev(dev: DeviceInfo) {
          driver.calls.push(`block ${dev.bdf}`);
          driver.context.set(dev.bdf, 0);
          return driver.refuseBlock?.(dev.bdf) ? { errno: 'EIO' as const, reason: 'the blocked context could not be written' } : null;
        },
      };
      return Object.assign(Object.create(unit) as UnitOps, {
        domainAllocPaging: (...args: Parameters<NonNullable<UnitOps['domainAllocPaging']>>) => {
          const d = alloc(...args);
          return 'errno' in d ? d : hook(d);
        },
        ...(driver.refuseBlock ? { blockingDomain: () => blocked } : {}),
      });
    },
  };
  return {
    id: 'mock',
    register(c: PluginRegistrar) {
      c.register(IOMMU_VENDOR, { useValue: vendor });
      c.register(PAGE_TABLE_FORMAT, { useValue: mockFormat });
    },
  };
}

function rig() {
  const driver: Driver = { calls: [], context: new Map(), refuse: () => false };
  const host = createHost({ plugins: [hookedMock(driver)], profile: mockProfile() });
  const fd = host.openIommufd();
  const a = host.device(A);
  const b = host.device(B);
  const devId = a.bindIommufd(fd);
  b.bindIommufd(fd);
  const tagOf = (hwptId: number) => (fd.ctx.objects.peek(hwptId) as unknown as { ops: PagingDomainOps }).ops.tag;
  return { driver, host, fd, a, b, devId, tagOf };
}

describe('attach hooks: attach_dev after the checks, rollback on failure', () => {
  it('attaches every device of the group once, when its first device attaches, and blocks them all when the last leaves', () => {
    const { driver, fd, a, b, tagOf } = rig();
    const ioas = fd.ioas.alloc();
    const h = a.attachPt(ioas);
    const t = tagOf(h);
    expect(driver.calls).toEqual([`attach ${t} ${A}`, `attach ${t} ${B}`]);
    // The second device follows the group's attachment: the driver is not asked again.
    b.attachPt(ioas);
    expect(driver.calls).toHaveLength(2);
    a.detachPt();
    expect(driver.calls).toHaveLength(2);
    b.detachPt();
    expect(driver.calls.slice(2)).toEqual([`detach ${t} ${A}`, `detach ${t} ${B}`]);
    expect(driver.context.size).toBe(0);
  });

  it('keeps checkAttach side-effect free: a group conflict found by core never reaches the driver', () => {
    const { driver, fd, a, b, devId } = rig();
    const ioas = fd.ioas.alloc();
    a.attachPt(ioas);
    const other = fd.hwpt.alloc({ devId, ptId: fd.ioas.alloc() });
    driver.calls.length = 0;
    expect(errCode(() => b.attachPt(other))).toBe('EINVAL');
    expect(driver.calls).toEqual([]);
  });

  it('a fresh attach that fails on the second device of the group blocks both again and gives the reserved regions back', () => {
    const { driver, fd, a, devId, tagOf } = rig();
    const ioas = fd.ioas.alloc();
    const h = fd.hwpt.alloc({ devId, ptId: ioas });
    const t = tagOf(h);
    driver.refuse = (bdf) => bdf === B;
    expect(errCode(() => a.attachPt(h))).toBe('ENOSPC');
    expect(driver.calls).toEqual([`attach ${t} ${A}`, `attach ${t} ${B}`, `detach ${t} ${A}`, `detach ${t} ${B}`]);
    expect(driver.context.size).toBe(0);
    expect(fd.ctx.objects.peek(h)?.users).toBe(1);
    // The MSI window of 00:03.0 is no longer reserved: the IOAS maps it.
    const va = fd.ctx.process.mmap(4096);
    expect(() => fd.ioas.map({ ioasId: ioas, userVa: va, length: 4096n, iova: 0xfee00000n })).not.toThrow();
  });

  it('a replace that fails on the second device puts both back on the old domain, and core still has the old one', () => {
    const { driver, host, fd, a, b, devId, tagOf } = rig();
    const ioas = fd.ioas.alloc();
    const old = a.attachPt(ioas);
    b.attachPt(ioas);
    const h = fd.hwpt.alloc({ devId, ptId: fd.ioas.alloc() });
    const [to, tn] = [tagOf(old), tagOf(h)];
    driver.calls.length = 0;
    driver.refuse = (bdf, tag) => bdf === B && tag === tn;
    expect(errCode(() => a.attachPt(h))).toBe('ENOSPC');
    expect(driver.calls).toEqual([`attach ${tn} ${A}`, `attach ${tn} ${B}`, `attach ${to} ${A}`, `attach ${to} ${B}`]);
    expect([...driver.context.values()]).toEqual([to, to]);
    expect(host.devices.get(A)!.idev!.attachments.get(-1)?.id).toBe(old);
    // Nothing of the new IOAS was reserved for the group: the failed replace took its reservations back.
    const va = fd.ctx.process.mmap(4096);
    const newIoas = (fd.ctx.objects.peek(h) as unknown as { ioas: { id: number } }).ioas.id;
    expect(() => fd.ioas.map({ ioasId: newIoas, userVa: va, length: 4096n, iova: 0xfee00000n })).not.toThrow();
    fd.ioas.unmap(newIoas, 0xfee00000n, 4096n);
    // With nothing refused the same replace moves both devices.
    driver.refuse = () => false;
    a.attachPt(h);
    expect([...driver.context.values()]).toEqual([tn, tn]);
  });

  it('an injected attach_dev failure is asked once per device of the group, before the driver, and changes nothing', () => {
    const { driver, host, fd, a } = rig();
    const ioas = fd.ioas.alloc();
    for (const nth of [1, 2]) {
      host.injector = new FailNth(nth, ['attach']);
      expect(errCode(() => a.attachPt(ioas))).toBe('ENOMEM');
      host.injector = NO_FAULT_INJECTION;
      expect(driver.context.size).toBe(0);
    }
    // The 1st failure hit 00:03.0 before the driver saw it; the 2nd hit 00:03.1 after 00:03.0 moved, which went back.
    expect(driver.calls.map((c) => c.replace(/ \d+ /, ' '))).toEqual([`attach ${A}`, `detach ${A}`]);
    expect(driver.calls[0].split(' ')[1]).toBe(driver.calls[1].split(' ')[1]);
    const inj = new FailNth(3, ['attach']);
    host.injector = inj;
    a.attachPt(ioas);
    host.injector = NO_FAULT_INJECTION;
    expect(inj.hit).toBe(false);
  });
});

/** A rig whose driver has a blocked domain, nothing bound yet. */
function blockingRig() {
  const driver: Driver = { calls: [], context: new Map(), refuse: () => false, refuseBlock: () => false };
  const host = createHost({ plugins: [hookedMock(driver)], profile: mockProfile() });
  return { driver, host, fd: host.openIommufd(), a: host.device(A), b: host.device(B) };
}

describe('bind claims the DMA ownership: iommu_device_claim_dma_owner', () => {
  it('the first bound device moves its whole group to the blocking domain; the second only counts', () => {
    const { driver, fd, a, b } = blockingRig();
    a.bindIommufd(fd);
    expect(driver.calls).toEqual([`block ${A}`, `block ${B}`]);
    b.bindIommufd(fd);
    expect(driver.calls).toHaveLength(2);
    // A detach puts the group back on the blocking domain (the domain's detachDev).
    const h = a.attachPt(fd.ioas.alloc());
    a.detachPt();
    expect(driver.calls.slice(2).map((c) => c.split(' ')[0])).toEqual(['attach', 'attach', 'detach', 'detach']);
    expect(fd.ctx.objects.peek(h)).toBeUndefined();
  });

  it('a group owned by another iommufd is EPERM until its last device is unbound', () => {
    const { host, fd, a, b } = blockingRig();
    const other = host.openIommufd();
    a.bindIommufd(fd);
    expect(errCode(() => b.bindIommufd(other))).toBe('EPERM');
    expect(b.idev).toBeNull();
    b.bindIommufd(fd);
    a.unbind();
    // 00:03.1 still holds the group for `fd`.
    expect(errCode(() => a.bindIommufd(other))).toBe('EPERM');
    b.unbind();
    expect(() => a.bindIommufd(other)).not.toThrow();
  });

  it('a blocking domain the driver cannot attach fails the bind with its errno and claims nothing', () => {
    const { driver, host, fd, a } = blockingRig();
    driver.refuseBlock = (bdf) => bdf === B;
    expect(errCode(() => a.bindIommufd(fd))).toBe('EIO');
    expect(a.idev).toBeNull();
    expect(fd.ctx.objects.empty).toBe(true);
    driver.refuseBlock = () => false;
    // Not owned: another iommufd binds the group.
    expect(() => a.bindIommufd(host.openIommufd())).not.toThrow();
  });

  it('an injected failure at the blocking attach or at the object allocation leaves the group unowned', () => {
    const { host, fd, a } = blockingRig();
    for (const site of ['attach', 'object-alloc'] as const) {
      host.injector = new FailNth(1, [site]);
      expect(errCode(() => a.bindIommufd(fd))).toBe('ENOMEM');
      host.injector = NO_FAULT_INJECTION;
      expect(a.idev).toBeNull();
      expect(a.group.owner).toBeNull();
    }
    a.bindIommufd(fd);
    expect(a.group.ownerCount).toBe(1);
  });
});
