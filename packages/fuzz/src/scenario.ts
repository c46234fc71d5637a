/**
 * A creation scenario that any vendor preset can run: every object kind the uAPI creates, through the
 * typed API, on the preset's most capable device. A step the preset cannot do (no nesting, no PRI, no
 * dirty tracking...) fails without any injected fault and is recorded as unsupported.
 */
import { uapi as U, type Host, type Iommufd, type PciDevice } from '@ioasid/core';
import { IOMMU_HWPT_DATA_MOCK, IOMMU_HWPT_INVALIDATE_DATA_MOCK, IOMMU_VEVENTQ_TYPE_MOCK, IOMMU_VIOMMU_TYPE_MOCK, MOCK_HWPT_DATA_SIZE, MOCK_INVALIDATE_SIZE } from '@ioasid/core/testing';
import { mainDevice, type VendorHost } from './hosts.js';
import { openMeasured, type Baseline } from './snapshot.js';

const PAGE = 4096n;
const MiB = 1n << 20n;

export interface Scn {
  readonly vh: VendorHost;
  readonly host: Host;
  readonly fd: Iommufd;
  readonly dev: PciDevice;
  /** 1 MiB + 2 MiB of user memory, faulted in. */
  readonly va: bigint;
  readonly memfd: number;
  ids: Record<string, number>;
  /** Queue fds, closed by the leak check. */
  queueFds: number[];
  /** What every close order must give back to. */
  readonly base: Baseline;
}

export interface Step {
  readonly name: string;
  readonly run: (s: Scn) => void;
}

/** The vendor's vIOMMU, vEVENTQ, nested data and invalidation entry types. */
function vendorTypes(vendor: string) {
  if (vendor === 'mock')
    return { viommu: IOMMU_VIOMMU_TYPE_MOCK, veventq: IOMMU_VEVENTQ_TYPE_MOCK, nested: { type: IOMMU_HWPT_DATA_MOCK, bytes: new Uint8Array(MOCK_HWPT_DATA_SIZE) }, inv: { type: IOMMU_HWPT_INVALIDATE_DATA_MOCK, len: MOCK_INVALIDATE_SIZE } };
  if (vendor === 'smmuv3')
    return { viommu: U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, veventq: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, nested: { type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: new Uint8Array(16) }, inv: { type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, len: 16 } };
  if (vendor === 'vtd') {
    const s1 = new Uint8Array(24);
    new DataView(s1.buffer).setBigUint64(8, 0x1000n, true);
    new DataView(s1.buffer).setUint32(16, 48, true);
    return { viommu: U.IOMMU_VIOMMU_TYPE_DEFAULT, veventq: 0, nested: { type: U.IOMMU_HWPT_DATA_VTD_S1, bytes: s1 }, inv: { type: U.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, len: 24 } };
  }
  return { viommu: U.IOMMU_VIOMMU_TYPE_DEFAULT, veventq: 0, nested: { type: U.IOMMU_HWPT_DATA_AMD_GUEST, bytes: new Uint8Array(32) }, inv: { type: 0, len: 16 } };
}

export function newScenario(vh: VendorHost): Scn {
  const host = vh.make();
  const va = host.process.mmap(Number(3n * MiB));
  host.process.poke(va, new Uint8Array(Number(3n * MiB)).fill(0x11));
  const memfd = host.process.memfd(Number(16n * PAGE));
  host.process.write(memfd, new Uint8Array(Number(16n * PAGE)).fill(0x22));
  const { fd, base } = openMeasured(host);
  return { vh, host, fd, dev: host.device(mainDevice(host)), va, memfd, ids: {}, queueFds: [], base };
}

/** A step whose input an earlier, unsupported step did not create: skipped, not a failure. */
export class StepSkipped extends Error {
  constructor(readonly missing: string) {
    super(`needs ${missing}, which this preset could not create`);
    this.name = 'StepSkipped';
  }
}

const need = (s: Scn, k: string): number => {
  const v = s.ids[k];
  if (v === undefined) throw new StepSkipped(k);
  return v;
};

export const STEPS: readonly Step[] = [
  { name: 'IOAS_ALLOC', run: (s) => (s.ids.ioas = s.fd.ioas.alloc()) },
  { name: 'IOAS_ALLOC second', run: (s) => (s.ids.ioas2 = s.fd.ioas.alloc()) },
  { name: 'IOAS_MAP 16 pages', run: (s) => s.fd.ioas.map({ ioasId: need(s, 'ioas'), userVa: s.va, length: 16n * PAGE, iova: MiB }) },
  { name: 'IOAS_MAP_FILE', run: (s) => s.fd.ioas.mapFile({ ioasId: need(s, 'ioas'), fd: s.memfd, start: 0n, length: 16n * PAGE, iova: 1n << 32n }) },
  { name: 'bind', run: (s) => (s.ids.dev = s.dev.bindIommufd(s.fd)) },
  { name: 'GET_HW_INFO', run: (s) => s.fd.getHwInfo(need(s, 'dev')) },
  { name: 'attach IOAS (automatic domain)', run: (s) => (s.ids.auto = s.dev.attachPt(need(s, 'ioas'))) },
  { name: 'IOAS_MAP 2 MiB into the domain', run: (s) => s.fd.ioas.map({ ioasId: need(s, 'ioas'), userVa: s.va + MiB, length: 2n * MiB, iova: 1n << 34n }) },
  { name: 'IOAS_COPY', run: (s) => s.fd.ioas.copy({ srcIoasId: need(s, 'ioas'), dstIoasId: need(s, 'ioas2'), srcIova: MiB, length: 16n * PAGE, dstIova: 1n << 36n }) },
  { name: 'HWPT_ALLOC paging', run: (s) => (s.ids.paging = s.fd.hwpt.alloc({ devId: need(s, 'dev'), ptId: need(s, 'ioas') })) },
  { name: 'replace with the paging HWPT', run: (s) => s.dev.attachPt(need(s, 'paging')) },
  { name: 'HWPT_ALLOC dirty tracking', run: (s) => (s.ids.dirty = s.fd.hwpt.alloc({ devId: need(s, 'dev'), ptId: need(s, 'ioas'), dirtyTracking: true })) },
  { name: 'SET_DIRTY_TRACKING', run: (s) => s.fd.hwpt.setDirtyTracking(need(s, 'dirty'), true) },
  { name: 'GET_DIRTY_BITMAP', run: (s) => s.fd.hwpt.getDirtyBitmap(need(s, 'dirty'), { iova: MiB, length: 16n * PAGE }) },
  {
    name: 'FAULT_QUEUE_ALLOC',
    run: (s) => {
      const q = s.fd.fault.alloc();
      s.ids.fault = q.id;
      s.queueFds.push(q.fd);
    },
  },
  { name: 'HWPT_ALLOC with a fault queue', run: (s) => (s.ids.faulting = s.fd.hwpt.alloc({ devId: need(s, 'dev'), ptId: need(s, 'ioas'), faultId: need(s, 'fault') })) },
  { name: 'replace with the fault-capable HWPT', run: (s) => s.dev.attachPt(need(s, 'faulting')) },
  { name: 'HWPT_ALLOC nest parent', run: (s) => (s.ids.parent = s.fd.hwpt.alloc({ devId: need(s, 'dev'), ptId: need(s, 'ioas'), nestParent: true })) },
  { name: 'VIOMMU_ALLOC', run: (s) => (s.ids.viommu = s.fd.viommu.alloc({ devId: need(s, 'dev'), type: vendorTypes(s.vh.vendor).viommu, hwptId: need(s, 'parent') })) },
  { name: 'VDEVICE_ALLOC', run: (s) => (s.ids.vdevice = s.fd.vdevice.alloc({ viommuId: need(s, 'viommu'), devId: need(s, 'dev'), virtId: 0x42n })) },
  {
    name: 'VEVENTQ_ALLOC',
    run: (s) => {
      const q = s.fd.veventq.alloc({ viommuId: need(s, 'viommu'), type: vendorTypes(s.vh.vendor).veventq, depth: 8 });
      s.ids.veventq = q.id;
      s.queueFds.push(q.fd);
    },
  },
  {
    name: 'HWPT_ALLOC nested',
    run: (s) => (s.ids.nested = s.fd.hwpt.alloc({ devId: need(s, 'dev'), ptId: s.ids.viommu ?? need(s, 'parent'), data: vendorTypes(s.vh.vendor).nested })),
  },
  {
    name: 'HWPT_INVALIDATE',
    run: (s) => {
      const inv = vendorTypes(s.vh.vendor).inv;
      const target = s.ids.viommu !== undefined && s.vh.vendor === 'smmuv3' ? s.ids.viommu : need(s, 'nested');
      const entries = new Uint8Array(inv.len);
      if (s.vh.vendor === 'mock') new DataView(entries.buffer).setBigUint64(8, 1n, true);
      // CMD_TLBI_NH_ASID, ASID 0: a command a vSMMU may issue.
      if (s.vh.vendor === 'smmuv3') entries[0] = 0x11;
      s.fd.hwpt.invalidate(target, { dataType: inv.type, entryLen: inv.len, entryNum: 1, entries });
    },
  },
  { name: 'IOAS_UNMAP', run: (s) => s.fd.ioas.unmap(need(s, 'ioas'), 1n << 34n, 2n * MiB) },
];

/** Closes every file of the scenario's iommufd, in the given order of [iommufd, ...queues]. */
export function closeAll(s: Scn, order: readonly number[] = [s.fd.fd, ...s.queueFds]): void {
  for (const f of order) s.host.process.close(f);
}
