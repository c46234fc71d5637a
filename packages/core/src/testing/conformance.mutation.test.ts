/**
 * The kit catches wrong plugins: each mutant below is the mock vendor with one bug a plugin author
 * could make, and the kit must fail it, in the check that covers that rule. The unmutated wrapper
 * passes, so a failure is the mutation's doing and not the wrapping's.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_NOEXEC, IOMMU_PRIV, WalkResult, type IoPageTable, type PageTableFormat, type PageTableMemory } from '../driver/pgtable.js';
import { IOMMU_VENDOR, PAGE_TABLE_FORMAT, type IommuPlugin, type PluginRegistrar } from '../driver/plugin.js';
import type { FailedAccess, FaultCodec } from '../driver/fault.js';
import type { IommuVendor, PagingDomainOps, UnitOps } from '../driver/vendor.js';
import { runConformance, type ConformanceResult } from './conformance.js';
import { mockFormat } from './mock-format.js';
import { MockVendor } from './mock-vendor.js';
import { capableMockProfile, mockNestedOptions } from '../__tests__/mock-profiles.js';

type Mutation = 'none' | 'accessed-ignored' | 'user-inverted' | 'no-execute' | 'unmap-whole-superpage' | 'enomem-leak' | 'blocked-cause';

/**
 * Table memory that, for the enomem-leak mutant, forgets to give back the tables a failing map
 * allocated (releases during a map that ends in ENOMEM are dropped).
 */
class LeakyMemory implements PageTableMemory {
  inMap = false;
  private held: number[] = [];
  constructor(private readonly inner: PageTableMemory) {}
  get mem() {
    return this.inner.mem;
  }
  allocTable(): number {
    return this.inner.allocTable();
  }
  releaseTable(pfn: number): void {
    if (this.inMap) this.held.push(pfn);
    else this.inner.releaseTable(pfn);
  }
  endMap(failed: boolean): void {
    this.inMap = false;
    if (!failed) for (const p of this.held) this.inner.releaseTable(p);
    this.held = [];
  }
}

/** The mock table with one bug. */
function mutateTable(pt: IoPageTable, m: Mutation, leaky: LeakyMemory | null): IoPageTable {
  const wr = new WalkResult();
  return {
    format: pt.format,
    cfg: pt.cfg,
    rootPfn: pt.rootPfn,
    levels: pt.levels,
    get tablePages() {
      return pt.tablePages;
    },
    map(iova, pa, n, prot) {
      if (m === 'user-inverted') prot ^= IOMMU_PRIV;
      if (m === 'no-execute') prot |= IOMMU_NOEXEC;
      if (leaky) leaky.inMap = true;
      const r = pt.map(iova, pa, n, prot);
      leaky?.endMap(r === -12);
      return r;
    },
    unmap(iova, n) {
      if (m === 'unmap-whole-superpage' && pt.walk(iova, wr)) {
        // Widen the range to the whole leaf it starts in.
        const span = 2 ** (wr.pageShift - 12);
        const start = iova - (iova % span);
        return pt.unmap(start, Math.max(n + (iova - start), span));
      }
      return pt.unmap(iova, n);
    },
    walk: (iova, out) => pt.walk(iova, out),
    readAndClearDirty: (iova, n, noClear, onDirty) => pt.readAndClearDirty!(iova, n, noClear, onDirty),
    setDirtyTracking: (enable) => pt.setDirtyTracking!(enable),
    markAccess(iova, write) {
      if (m !== 'accessed-ignored') pt.markAccess!(iova, write);
    },
    free: () => pt.free(),
  };
}

function mutantFormat(m: Mutation): PageTableFormat {
  return {
    id: mockFormat.id,
    describe: mockFormat.describe,
    alloc(cfg, memory) {
      const leaky = m === 'enomem-leak' ? new LeakyMemory(memory) : null;
      const pt = mockFormat.alloc(cfg, leaky ?? memory);
      return typeof pt === 'number' ? pt : mutateTable(pt, m, leaky);
    },
    walkForeign: mockFormat.walkForeign,
  };
}

/** The unit with its paging domains on the mutant table and, for blocked-cause, a codec that records a blocked DMA as an unmapped page. */
function mutateUnit(unit: UnitOps, m: Mutation, format: PageTableFormat): UnitOps {
  const mutated: UnitOps = Object.create(unit);
  const faults: FaultCodec = unit.faults!;
  Object.defineProperty(mutated, 'faults', {
    value: m === 'blocked-cause' ? { ...faults, encodeFault: (a: FailedAccess) => faults.encodeFault(a.failure === 'blocked' ? { ...a, failure: 'not-present' } : a) } : faults,
  });
  Object.defineProperty(mutated, 'domainAllocPaging', {
    value: (dev: Parameters<NonNullable<UnitOps['domainAllocPaging']>>[0], flags: Parameters<NonNullable<UnitOps['domainAllocPaging']>>[1], memory: PageTableMemory) => {
      const d = unit.domainAllocPaging!(dev, flags, memory);
      if ('errno' in d) return d;
      // The same configuration again, on the mutant format; the original table goes back.
      const pt = format.alloc({ ...d.pt.cfg }, memory);
      d.pt.free();
      if (typeof pt === 'number') return { errno: 'ENOMEM', reason: 'page table allocation failed' };
      const domain: PagingDomainOps = Object.create(d);
      Object.defineProperty(domain, 'pt', { value: pt });
      return domain;
    },
  });
  return mutated;
}

function mutantPlugin(m: Mutation): IommuPlugin {
  const base = new MockVendor();
  const format = mutantFormat(m);
  const vendor: IommuVendor = {
    id: base.id,
    name: base.name,
    decodeRegisters: (raw) => base.decodeRegisters(raw),
    createUnit: (init) => mutateUnit(base.createUnit(init), m, format),
  };
  return {
    id: 'mock',
    register(c: PluginRegistrar) {
      c.register(IOMMU_VENDOR, { useValue: vendor });
      c.register(PAGE_TABLE_FORMAT, { useValue: format });
    },
  };
}

/** The package.json of a plugin package whose @ioasid/core peer range includes every core from 0.1.0 on. */
const PACKAGE_JSON = new URL('../__tests__/plugin-package/package.json', import.meta.url);

function run(m: Mutation): Promise<ConformanceResult[]> {
  return runConformance({ plugin: mutantPlugin(m), packageJson: PACKAGE_JSON, profile: capableMockProfile, device: '0000:00:02.0', priDevice: '0000:00:04.0', nested: mockNestedOptions });
}

const failed = (rs: ConformanceResult[]): string[] => rs.filter((r) => r.status === 'failed').map((r) => r.name);

/** Each mutant and (a part of) the name of the check that must catch it. */
const MUTANTS: [Mutation, string][] = [
  ['accessed-ignored', 'dirty tracking: reports exactly the pages a DMA wrote'],
  ['user-inverted', 'has page-table formats that round-trip'],
  ['no-execute', 'has page-table formats that round-trip'],
  ['unmap-whole-superpage', 'has page-table formats that round-trip'],
  ['enomem-leak', 'has page-table formats that round-trip'],
  ['blocked-cause', 'fault codec: has a fault codec whose records round-trip and tell a blocked DMA from an unmapped page'],
];

describe('conformance kit mutation test', () => {
  it('passes the unmutated mock vendor (through the same wrapping)', async () => {
    const rs = await run('none');
    expect(failed(rs)).toEqual([]);
    expect(rs.filter((r) => r.status === 'passed').length).toBe(rs.length);
  });

  for (const [m, check] of MUTANTS) {
    it(`catches the ${m} mutant`, async () => {
      const rs = await run(m);
      const names = failed(rs);
      expect(names.some((n) => n.startsWith(check)), `${m}: failed checks ${JSON.stringify(names)}`).toBe(true);
    });
  }

  it("fails a plugin package whose @ioasid/core peer range excludes the running core, and skips the check without a package.json", async () => {
    const old = await runConformance({ plugin: mutantPlugin('none'), packageJson: new URL('../__tests__/plugin-package/for-old-core.json', import.meta.url), profile: capableMockProfile, device: '0000:00:02.0' });
    expect(old.find((r) => r.name.startsWith('package.json:'))).toMatchObject({ status: 'failed', error: expect.stringMatching(/ioasid-mock-plugin-for-old-core needs @ioasid\/core \^0\.0\.1, this core is \d/) });
    const none = await runConformance({ plugin: mutantPlugin('none'), profile: capableMockProfile, device: '0000:00:02.0' });
    expect(none.find((r) => r.name.startsWith('package.json:'))?.status).toBe('skipped');
  });

  it('reports absent optional parts as skipped, by name', async () => {
    const rs = await runConformance({
      plugin: mutantPlugin('none'),
      packageJson: PACKAGE_JSON,
      profile: { ...capableMockProfile, units: [{ id: 'mock0', vendor: 'mock', registers: { pri: false, dirty: false, nesting: false } }], devices: capableMockProfile.devices.filter((d) => d.unit === 'mock0') },
      device: '0000:00:02.0',
      priDevice: '0000:00:04.0',
    });
    const skipped = rs.filter((r) => r.status === 'skipped').map((r) => r.name.split(':')[0]);
    expect(skipped.sort()).toEqual(['PRI', 'dirty tracking', 'nesting']);
    expect(failed(rs)).toEqual([]);
  });
});
