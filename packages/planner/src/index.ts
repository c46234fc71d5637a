/**
 * @ioasid/planner: host profiles (load, validate, serialize), probing a real host's dmesg, and
 * planning the vIOMMU of a VM (QEMU -device options and the libvirt <iommu> element). Vendors reach
 * the planner only through what a PluginHost registered: pass `host.vendors()`.
 */
export {
  hostProfileSchema,
  loadProfile,
  parseProfile,
  validateProfile,
  serializeProfile,
  formatIssue,
  formatPath,
  ProfileError,
  type Segment,
  type ProfileIssue,
  type ProfileOptions,
  type CheckedProfile,
} from './profile.js';
export { probeDmesg, type ProbeResult, type ProbedUnit, type ProbeLineIssue, type ProbeOptions } from './probe.js';
export { probeSysfs, parseHwInfo, type SysfsReader, type SysfsProbeOptions, type SysfsProbeResult, type SysfsUnit, type HwInfoLine } from './sysfs.js';
export { readIommuCaps, type PciIommuCaps, type ConfigRead } from './pci-config.js';
export { plan, checkHotplug, POLICIES, type Plan, type PlanInput, type PlanViommu, type Policy, type HotplugResult } from './plan.js';
export type { DeviceMode, PlannedDevice, ViommuInstance, FrozenState } from './checks.js';
export {
  MODELS,
  modelDef,
  parseViommu,
  normalizeSpec,
  formatDevice,
  qemuRequirements,
  compareQemuVersions,
  PlanError,
  type ViommuModel,
  type ViommuSpec,
  type ViommuProperties,
  type PropertyValue,
  type PropDef,
  type ModelDef,
  type QemuRequirement,
} from './models.js';
export { MODEL_DEFS } from './models/registry.js';
export type { Candidate, CandidateContext, Evaluation, EvaluateOptions, PropType } from './models/types.js';
export { PLANNER_VENDORS, plannerVendor } from './vendors/registry.js';
export type { PlannerVendor, SysfsSource, VendorFacts, VtdFacts, SmmuFacts, Arch, HwInfoSource, LogLine, LogScan, LogScanUnit } from './vendors/types.js';
export type { UnitFacts, DeviceFacts } from './facts.js';
