/**
 * The walk view's nested domains: a guest owns stage 1, the host's nest-parent HWPT is stage 2. What a
 * VMM does, through the uAPI only: guest RAM is one user mapping in the IOAS at GPA 0, the guest writes
 * its own stage-1 table (the vendor's guest format, built in a guest-physical copy and copied into its
 * RAM) and IOMMU_HWPT_ALLOC gets the vendor's nested data (VT-d `iommu_hwpt_vtd_s1`, SMMUv3 a vSTE
 * through a vIOMMU with the CD in guest memory).
 */
import { FrameAllocator, PhysicalMemory, uapi, type Host, type Iommufd, type PciDevice } from '@ioasid/core';
import { IOMMU_READ, IOMMU_WRITE, pageSizesFromLog2, type IoPageTable, type PageTableFormat } from '@ioasid/core/driver';
import { encodeHwptVtdS1, vtdFirstStage } from '@ioasid/vtd';
import { STE_CFG, armLpaeS1, encodeCd, encodeSteWords } from '@ioasid/smmuv3';

/** Guest RAM: 4 MiB at GPA 0. Its tables come from the first half, the mapped buffer is the second. */
export const GUEST_PAGES = 1024;
/** Where the guest maps its buffer: guest IOVA 1 GiB, stage 1 -> GPA 2 MiB, stage 2 -> host memory. */
export const GUEST_IOVA = 0x4000_0000n;
const DATA_GPA_PFN = 512;
const TABLE_FIRST_PFN = 0x10;

export interface NestedSetup {
  /** Guest IOVA of the mapped buffer. */
  readonly base: bigint;
  /** The guest stage-1 format's id. */
  readonly format: string;
  /** What was allocated, in words. */
  readonly detail: string;
}

interface Env {
  readonly host: Host;
  readonly fd: Iommufd;
  readonly dev: PciDevice;
  readonly devId: number;
  readonly parent: number;
  /** Writes guest-physical page contents into guest RAM. */
  readonly install: (guest: PhysicalMemory) => void;
}

/** The guest's stage-1 table of `format`, `length` bytes at GUEST_IOVA -> DATA_GPA_PFN, in its own memory. */
function guestTable(format: PageTableFormat, cfg: Parameters<PageTableFormat['alloc']>[0], length: bigint): { guest: PhysicalMemory; pt: IoPageTable } {
  const guest = new PhysicalMemory();
  const frames = new FrameAllocator(guest, TABLE_FIRST_PFN, DATA_GPA_PFN);
  const pt = format.alloc(cfg, { mem: guest, allocTable: () => frames.alloc(), releaseTable: (p) => frames.release(p) });
  if (typeof pt === 'number') throw new Error(`the guest's ${format.id} table: errno ${-pt}`);
  const rc = pt.map(Number(GUEST_IOVA >> 12n), DATA_GPA_PFN, Number(length >> 12n), IOMMU_READ | IOMMU_WRITE);
  if (rc !== 0) throw new Error(`the guest's ${format.id} map: errno ${-rc}`);
  return { guest, pt };
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function vtdNested(e: Env, length: bigint): NestedSetup {
  const { guest, pt } = guestTable(vtdFirstStage, { pgsizeBitmap: pageSizesFromLog2(12), ias: 48, oas: 48, levels: 4 }, length);
  e.install(guest);
  const data = encodeHwptVtdS1({ flags: 0n, pgtbl_addr: BigInt(pt.rootPfn) << 12n, addr_width: 48, __reserved: 0 });
  const nested = e.fd.hwpt.alloc({ devId: e.devId, ptId: e.parent, data: { type: uapi.IOMMU_HWPT_DATA_VTD_S1, bytes: data } });
  e.dev.attachPt(nested);
  return {
    base: GUEST_IOVA,
    format: vtdFirstStage.id,
    detail: `nest-parent HWPT ${e.parent} (second stage); nested HWPT ${nested} from iommu_hwpt_vtd_s1 with the guest's first-stage root at GPA ${hex(pt.rootPfn * 4096)}`,
  };
}

function smmuNested(e: Env, length: bigint): NestedSetup {
  const viommu = e.fd.viommu.alloc({ devId: e.devId, type: uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwptId: e.parent });
  e.fd.vdevice.alloc({ viommuId: viommu, devId: e.devId, virtId: 0x8n });
  const { guest, pt } = guestTable(armLpaeS1, { pgsizeBitmap: pageSizesFromLog2(12), ias: 39, oas: 48, granule: 4096 }, length);
  // CD 0 at GPA page 1: 4K granule, 39-bit input (T0SZ 25), TTB0 the guest table; the STE points at it.
  const cdGpa = 1;
  guest.write(cdGpa * 4096, encodeCd({ V: 1, AA64: 1, T0SZ: 25, TG0: 0, IPS: 5, EPD1: 1, R: 1, A: 1, ASET: 1, ASID: 7, TTB0: BigInt(pt.rootPfn) << 12n }));
  e.install(guest);
  const ste = encodeSteWords({ V: 1, Config: STE_CFG.S1_TRANS, S1ContextPtr: BigInt(cdGpa) << 12n });
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setBigUint64(0, ste[0], true);
  new DataView(bytes.buffer).setBigUint64(8, ste[1], true);
  const nested = e.fd.hwpt.alloc({ devId: e.devId, ptId: viommu, data: { type: uapi.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes } });
  e.dev.attachPt(nested);
  return {
    base: GUEST_IOVA,
    format: armLpaeS1.id,
    detail: `nest-parent HWPT ${e.parent} (stage 2), vIOMMU ${viommu}, vDEVICE with virtual SID 0x8; nested HWPT ${nested} from the guest's STE (CD table at GPA ${hex(cdGpa * 4096)}, ASID 7, TTB0 at GPA ${hex(pt.rootPfn * 4096)})`,
  };
}

/** The vendors whose guest stage 1 the page can build. */
const RECIPES: Readonly<Record<string, (e: Env, length: bigint) => NestedSetup>> = { vtd: vtdNested, smmuv3: smmuNested };

export function canNest(vendor: string): boolean {
  return vendor in RECIPES;
}

/**
 * Gives `dev` (bound to `fd`) a nested domain: guest RAM in `ioas` at GPA 0, a nest-parent HWPT, the
 * guest's stage 1 mapping `length` bytes at GUEST_IOVA. Throws the uAPI's error when the unit cannot nest.
 */
export function attachNested(host: Host, fd: Iommufd, dev: PciDevice, devId: number, ioas: number, vendor: string, length: bigint): NestedSetup {
  const recipe = RECIPES[vendor];
  if (!recipe) throw new Error(`the page cannot build a ${vendor} guest stage 1`);
  const ram = host.process.mmap(GUEST_PAGES * 4096);
  fd.ioas.map({ ioasId: ioas, userVa: ram, length: BigInt(GUEST_PAGES * 4096), iova: 0n });
  const parent = fd.hwpt.alloc({ devId, ptId: ioas, nestParent: true });
  dev.attachPt(parent);
  const page = new Uint8Array(4096);
  const install = (guest: PhysicalMemory) => {
    for (let p = 0; p < DATA_GPA_PFN; p++) {
      if (!guest.chunkIfBacked(p)) continue;
      guest.read(p * 4096, page);
      if (page.some((b) => b !== 0)) host.process.poke(ram + BigInt(p * 4096), page);
    }
  };
  for (let p = 0n; p < length; p += 4096n) host.process.poke(ram + BigInt(DATA_GPA_PFN * 4096) + p, new TextEncoder().encode(`guest page ${p / 4096n}`));
  return recipe({ host, fd, dev, devId, parent, install }, length);
}
