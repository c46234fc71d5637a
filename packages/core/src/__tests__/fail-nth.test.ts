/**
 * Fail-nth (the kernel selftest's fail_nth idea): a successful scenario is replayed with the Nth
 * table-page allocation failing, for N = 1, 2, ... until the scenario no longer hits a failure. Each
 * failing command must fail with ENOMEM and leave the object table, the IOAS mappings and every
 * domain's page table exactly as they were before it; the same command then succeeds on retry, and
 * tearing everything down gives every table page back.
 */
import { describe, expect, it } from 'vitest';
import * as U from '../uapi/iommufd.js';
import { IommufdError } from '../uapi/errno.js';
import { WalkResult } from '../driver/pgtable.js';
import { FailNth } from '../driver/inject.js';
import { ObjType } from '../iommufd/objects.js';
import type { HwptPaging } from '../iommufd/hwpt.js';
import type { Ioas } from '../iommufd/ioas.js';
import { IOMMU_HWPT_DATA_MOCK, MOCK_HWPT_DATA_SIZE } from '../testing/mock-vendor.js';
import { mockFixture, type MockFixture } from './mock-host.js';

const PAGE = 4096n;
const MiB = 1n << 20n;

interface Scenario {
  f: MockFixture;
  ids: Record<string, number>;
  va: bigint;
}

type Step = [name: string, run: (s: Scenario) => void];

const STEPS: Step[] = [
  ['IOAS_ALLOC', (s) => (s.ids.ioas = s.f.fd.ioas.alloc())],
  ['IOAS_ALLOC second', (s) => (s.ids.ioas2 = s.f.fd.ioas.alloc())],
  ['IOAS_MAP 16 pages', (s) => s.f.fd.ioas.map({ ioasId: s.ids.ioas, userVa: s.va, length: 16n * PAGE, iova: MiB })],
  ['bind', (s) => ((s.ids.devA = s.f.host.device('0000:00:02.0').bindIommufd(s.f.fd)), (s.ids.devB = s.f.host.device('0000:80:00.0').bindIommufd(s.f.fd)))],
  ['attach A (automatic domain)', (s) => (s.ids.auto = s.f.host.device('0000:00:02.0').attachPt(s.ids.ioas))],
  ['attach B (reuses it)', (s) => s.f.host.device('0000:80:00.0').attachPt(s.ids.ioas)],
  ['HWPT_ALLOC paging', (s) => (s.ids.paging = s.f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.ids.devA, pt_id: s.ids.ioas }).out_hwpt_id)],
  [
    'HWPT_ALLOC nest parent',
    (s) => (s.ids.parent = s.f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.ids.devA, pt_id: s.ids.ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id),
  ],
  [
    'HWPT_ALLOC nested',
    (s) => {
      const data = s.va + 200n * PAGE;
      s.f.host.process.poke(data, new Uint8Array(MOCK_HWPT_DATA_SIZE));
      s.ids.nested = s.f.fd.run(U.iommu_hwpt_alloc, 'HWPT_ALLOC', { dev_id: s.ids.devA, pt_id: s.ids.parent, data_type: IOMMU_HWPT_DATA_MOCK, data_len: MOCK_HWPT_DATA_SIZE, data_uptr: data }).out_hwpt_id;
    },
  ],
  ['attach A to the nested HWPT (replace)', (s) => s.f.host.device('0000:00:02.0').attachPt(s.ids.nested)],
  ['IOAS_MAP 2 MiB', (s) => s.f.fd.ioas.map({ ioasId: s.ids.ioas, userVa: s.va + 16n * PAGE, length: 2n * MiB, iova: 1n << 30n })],
  ['IOAS_MAP far away', (s) => s.f.fd.ioas.map({ ioasId: s.ids.ioas, userVa: s.va + 600n * PAGE, length: 8n * PAGE, iova: 1n << 38n })],
  ['IOAS_COPY', (s) => s.f.fd.ioas.copy({ srcIoasId: s.ids.ioas, dstIoasId: s.ids.ioas, srcIova: MiB, length: 16n * PAGE, dstIova: 1n << 36n })],
  ['attach B to the second IOAS', (s) => s.f.host.device('0000:80:00.0').attachPt(s.ids.ioas2)],
  ['IOAS_COPY into the second IOAS', (s) => s.f.fd.ioas.copy({ srcIoasId: s.ids.ioas, dstIoasId: s.ids.ioas2, srcIova: 1n << 30n, length: 2n * MiB, dstIova: 1n << 31n })],
  // A raw IOAS_MAP of one page (the fast path: a compact area, pinned and mapped into the IOAS's three domains).
  ['raw IOAS_MAP of one page', (s) => rawMap(s, s.va + 700n * PAGE, PAGE, 1n << 34n)],
];

function rawMap(s: Scenario, userVa: bigint, length: bigint, iova: bigint): void {
  const flags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
  const buf = U.iommu_ioas_map.encode(U.iommu_ioas_map.make({ size: U.iommu_ioas_map.size, flags, ioas_id: s.ids.ioas, user_va: userVa, length, iova }));
  if (s.f.fd.ioctl(U.IOMMU_IOAS_MAP, buf) !== 0) throw s.f.fd.lastError;
}

function newScenario(): Scenario {
  const f = mockFixture();
  const va = f.host.process.mmap(1024 * 4096);
  // Fault the user memory in up front so that every run uses the same frames.
  f.host.process.poke(va, new Uint8Array(1024 * 4096).fill(0x11));
  return { f, ids: {}, va };
}

/** Pages sampled to compare domains with their IOAS: around every area edge and in between. */
function samplePfns(s: Scenario): number[] {
  const out = new Set<number>();
  for (const o of s.f.fd.ctx.objects.objects()) {
    if (o.type !== ObjType.IOAS) continue;
    for (const a of (o as Ioas).iopt.iterAreas()) {
      const first = Number(a.iova / PAGE);
      const last = Number(a.last / PAGE);
      for (const p of [first - 1, first, first + 1, (first + last) >> 1, last - 1, last, last + 1]) if (p >= 0) out.add(p);
    }
  }
  for (const p of [0x100, 0x10f, 0x110, 0x40000, 0x401ff, 0x4000000, 0x4000007, 0x1000000, 0x80000]) out.add(p);
  return [...out].sort((a, b) => a - b);
}

interface Snapshot {
  objects: [number, string, number][];
  areas: Record<number, string[]>;
  domains: Record<number, string[]>;
  translations: number[][];
  locked: number;
}

function snapshot(s: Scenario): Snapshot {
  const objs = [...s.f.fd.ctx.objects.objects()];
  const wr = new WalkResult();
  const pfns = samplePfns(s);
  const snap: Snapshot = { objects: objs.map((o) => [o.id, ObjType[o.type], o.users]), areas: {}, domains: {}, translations: [], locked: s.f.host.process.lockedPages };
  for (const o of objs) {
    if (o.type === ObjType.IOAS) snap.areas[o.id] = [...(o as Ioas).iopt.iterAreas()].map((a) => `${a.iova.toString(16)}-${a.last.toString(16)} prot ${a.prot} frame ${a.pages.frame(a.pageIndex)}`);
    if (o.type === ObjType.HWPT_PAGING) snap.domains[o.id] = pfns.map((p) => ((o as HwptPaging).ops.pt.walk(p, wr) ? `${p}:${wr.pfn}:${wr.perm}` : `${p}:-`));
  }
  for (const b of ['0000:00:02.0', '0000:80:00.0']) snap.translations.push(pfns.map((p) => s.f.host.device(b).translatePage(p, 1)));
  return snap;
}

/** Every paging domain of an IOAS mirrors exactly its areas. */
function expectDomainsMirrorIoas(s: Scenario): void {
  const wr = new WalkResult();
  const pfns = samplePfns(s);
  for (const o of s.f.fd.ctx.objects.objects()) {
    if (o.type !== ObjType.HWPT_PAGING) continue;
    const h = o as HwptPaging;
    for (const p of pfns) {
      const a = h.ioas.iopt.areaAt(BigInt(p) * PAGE);
      const mapped = h.ops.pt.walk(p, wr);
      expect(mapped, `HWPT ${h.id} page 0x${p.toString(16)}`).toBe(a !== undefined);
      if (a) expect(wr.pfn).toBe(a.pages.frame(a.pageIndex + Number((BigInt(p) * PAGE - a.iova) / PAGE)));
    }
  }
}

/** Closes the iommufd and returns the frames still in use (user memory only, if nothing leaked). */
function teardown(s: Scenario): number {
  s.f.host.process.close(s.f.fd.fd);
  expect(s.f.fd.ctx.objects.count).toBe(0);
  expect(s.f.host.process.lockedPages).toBe(0);
  return s.f.host.frames.framesInUse;
}

describe('fail-nth: every table allocation of a scenario failing in turn', () => {
  it('fails with ENOMEM, changes nothing, succeeds on retry and leaks nothing', () => {
    const clean = newScenario();
    for (const [, run] of STEPS) run(clean);
    expectDomainsMirrorIoas(clean);
    const framesAfterClean = teardown(clean);

    const failedAt: string[] = [];
    for (let n = 1; ; n++) {
      expect(n, 'the scenario never completes').toBeLessThan(500);
      const s = newScenario();
      const inj = new FailNth(n, ['table-alloc']);
      s.f.host.injector = inj;
      let failed = false;
      for (const [name, run] of STEPS) {
        const before = snapshot(s);
        let err: unknown = null;
        try {
          run(s);
        } catch (e) {
          err = e;
        }
        if (err === null) continue;
        expect(failed, `a second failure in run ${n} at ${name}`).toBe(false);
        failed = true;
        failedAt.push(name);
        expect(err, `run ${n}, ${name}: ${String(err)}`).toBeInstanceOf(IommufdError);
        expect((err as IommufdError).code, `run ${n}, ${name}`).toBe('ENOMEM');
        expect(inj.hitSite).toBe('table-alloc');
        expect(snapshot(s), `run ${n}: ${name} changed state although it failed`).toEqual(before);
        expectDomainsMirrorIoas(s);
        // The state is clean: the same command succeeds now.
        run(s);
      }
      expectDomainsMirrorIoas(s);
      expect(teardown(s), `run ${n} leaked table pages`).toBe(framesAfterClean);
      if (!failed) {
        // N is past the last allocation: the injector never fired.
        expect(inj.hit).toBe(false);
        break;
      }
    }
    // Every step that allocates table pages was hit at least once.
    for (const name of ['attach A (automatic domain)', 'HWPT_ALLOC paging', 'HWPT_ALLOC nest parent', 'IOAS_MAP 2 MiB', 'IOAS_MAP far away', 'IOAS_COPY', 'attach B to the second IOAS', 'IOAS_COPY into the second IOAS', 'raw IOAS_MAP of one page']) {
      expect(failedAt, name).toContain(name);
    }
  });
});
