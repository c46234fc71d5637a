/** The host IOMMU vendors the planner knows; a vendor adds itself here with one line. */
import { amdViVendor } from './amd-vi.js';
import { smmuv3Vendor } from './smmuv3.js';
import type { PlannerVendor } from './types.js';
import { virtioIommuVendor } from './virtio-iommu.js';
import { vtdVendor } from './vtd.js';

/** Every vendor the planner knows, in the order probes try them. */
export const PLANNER_VENDORS: readonly PlannerVendor[] = [vtdVendor, smmuv3Vendor, amdViVendor, virtioIommuVendor];

/** The planner vendor of plugin id `id`, undefined when the planner has none. */
export function plannerVendor(id: string): PlannerVendor | undefined {

  return PLANNER_VENDORS.find((v) => v.id === id);
}
