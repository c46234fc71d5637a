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

// The benchmark's `walk`: a 4-level table without the paging-structure cache, so that walk() takes its
// compact path, through the unit with the IOTLB off (translate, hit, walkPaging, walk).
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
// A 5-level table (the fault round trip's): walk -> walkStraight, which holds the 5-level walk.
if (!table(5).walk(5, new WalkResult())) throw new Error('5-level walk failed');
