/**
 * The QEMU vIOMMU device models the planner knows, in the order the host and baseline policies try
 * them after the host's native model. A model registers itself here with one line.
 */
import { amdIommu } from './amd-iommu.js';
import { armSmmuv3 } from './arm-smmuv3.js';
import { intelIommu } from './intel-iommu.js';
import type { ModelDef } from './types.js';
import { virtioIommu } from './virtio-iommu.js';

/** Every vIOMMU model the planner knows, in the order the policies prefer them (virtio-iommu last). */
export const MODEL_DEFS: readonly ModelDef[] = [intelIommu, amdIommu, armSmmuv3, virtioIommu];


const BY_NAME = new Map<string, ModelDef>();
for (const m of MODEL_DEFS) for (const n of [m.id, m.qemuDriver, ...m.aliases]) BY_NAME.set(n, m);

/** The model of an id, -device driver name or alias; undefined when none is registered. */
export function findModel(name: string): ModelDef | undefined {
  return BY_NAME.get(name.trim().toLowerCase());
}
