/**
 * The program inline-budget.test.ts runs in a child node with `--print-bytecode`: it calls once each
 * function whose bytecode size the test guards, so that V8 compiles them (bytecode is generated lazily,
 * on the first call) and prints them. Run through tsx with the `@ioasid/source` condition, as the
 * benchmark runs, so that the bytecode is that of the code the benchmark measures. Prints nothing itself.
 */
import { createHost } from '@ioasid/core';
import { IOMMU_READ, IOMMU_WRITE, PERM_READ, WalkResult, type IoPageTable } from '@ioasid/core/driver';
import { BIND_PAGING, Binding, TranslateResult, hostUnits } from '@ioasid/core/internal';
import { vtdSecondStage } from '../pgtable-ss.js';
import { findVtdPreset, vtdPresetProfile } from '../presets.js';
import { plugin } from '../index.js';

const preset = findVtdPreset('granite-rapids-2s');
if (preset === undefined) throw new Error('the granite-rapids-2s preset is missing');
const host = createHost({ plugins: [plugin], profile: vtdPresetProfile(preset) });

function table(levels: number): IoPageTable {
  const pt = vtdSecondStage.alloc({ pgsizeBitmap: 1n << 12n, ias: levels === 5 ? 57 : 48, oas: 46, levels }, host.tableMemory);
  if (typeof pt === 'number') throw new Error(`vtd-ss alloc of ${levels} levels failed: ${pt}`);
  if (pt.map(5, 7, 1, IOMMU_READ | IOMMU_WRITE) !== 0) throw new Error('map failed');
  return pt;
}

// The benchmark's `walk`: a 4-level table without the paging-structure cache, so that walk() takes
// walkCompact, through the unit with the IOTLB off (translate, hit, walkPaging, walk, walkCompact).
const pt4 = table(4);
(pt4 as IoPageTable & { pagingStructureCache: boolean }).pagingStructureCache = false;
const unit = hostUnits(host)[0];
const b = new Binding(BIND_PAGING, 1, pt4, null, null);
const out = new TranslateResult();
unit.iotlb.enabled = false;
if (!unit.translate(b, -1, 5, PERM_READ, out)) throw new Error('translation with the IOTLB off failed');
// The IOTLB on: a miss (miss fills), then a hit (probe).
unit.iotlb.enabled = true;
unit.translate(b, -1, 5, PERM_READ, out);
if (!unit.translate(b, -1, 5, PERM_READ, out)) throw new Error('translation with the IOTLB on failed');
// A 5-level table (the fault round trip's), through the unit with the IOTLB on: a miss that walks
// (walk -> walkFiveCompact) and fills the IOTLB, and one that faults (walkFiveCompact -> walkFive, walkFailed).
const pt5 = table(5);
if (!pt5.walk(5, new WalkResult())) throw new Error('5-level walk failed');
const b5 = new Binding(BIND_PAGING, 2, pt5, null, null);
if (!unit.translate(b5, -1, 5, PERM_READ, out)) throw new Error('5-level translation failed');
if (unit.translate(b5, -1, 6, PERM_READ, out)) throw new Error('the translation of an unmapped page succeeded');
// A device's DMA of a few bytes (the fault round trip's retry): movePages, with the IOTLB hit and the
// frame copy (PhysicalMemory.readInFrame) inlined into its loop.
const fd = host.openIommufd();
const dev = host.device('0000:f2:01.0');
dev.bindIommufd(fd);
const ioas = fd.ioas.alloc();
dev.attachPt(ioas);
const userVa = host.process.mmap(4096);
host.process.poke(userVa, new Uint8Array(8).fill(0xa5));
fd.ioas.map({ ioasId: ioas, userVa, length: 4096n, iova: 1n << 32n });
const word = new Uint8Array(8);
if (dev.dma.readSync(2 ** 32, word) !== 8 || word[0] !== 0xa5) throw new Error('the DMA read failed');
