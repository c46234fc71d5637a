/**
 * AMD-Vi: what the planner knows before (and besides) the amd-vi plugin: x86, amd_iommu=on, and the
 * log lines its driver prints, so that an AMD log is named as one.
 */
import type { PlannerVendor } from './types.js';

export const amdViVendor: PlannerVendor = {
  id: 'amd-vi',
  name: 'AMD-Vi',
  arch: 'x86',
  kernelParameter: 'amd_iommu=on (and iommu=nopt)',
  logSignatures: [/^AMD-Vi: /, /^\S+ [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: AMD-Vi: /i],
};
