/**
 * What a QEMU vIOMMU device model is to the planner: its properties as QEMU defines them (with the QEMU
 * release that introduced each), the machine it needs, how it meets the host IOMMU behind an assigned
 * device, and which configurations the host and baseline policies should try. One ModelDef per QEMU
 * device model, registered in models/registry.ts; a new model is a new file and one registry entry.
 */
import type { DeviceProfile, HostProfile } from '@ioasid/core';
import type { DeviceFacts, UnitFacts } from '../facts.js';

export type PropertyValue = string | number | boolean;
export type ViommuProperties = Record<string, PropertyValue>;

/** A QEMU device model id: 'intel-iommu', 'arm-smmuv3', 'virtio-iommu', 'amd-iommu', or a registered one. */
export type ViommuModel = string;

export interface ViommuSpec {
  readonly model: ViommuModel;
  /** QEMU property names; booleans print as on/off, 'auto' stays a string. */
  readonly properties: Readonly<ViommuProperties>;
}

export type PropType = 'bool' | 'uint' | 'onoffauto' | 'string';

/** A QEMU release, "9.2". */
export type QemuVersion = string;

export interface PropDef {
  readonly type: PropType;
  /** QEMU's default in the newest release the table covers. */
  readonly default?: PropertyValue;
  /** Accepted values for strings / numbers with a fixed set. */
  readonly values?: readonly PropertyValue[];
  /** 'auto' is accepted besides the type. */
  readonly auto?: boolean;
  /** The QEMU release that introduced the property. */
  readonly since: QemuVersion;
  /** The release that removed it (it is still accepted, with a note, since older QEMUs take it). */
  readonly removed?: QemuVersion;
  /** The release is inferred (from the patch series and the releases around it), not read from a tag. */
  readonly approximate?: boolean;
  /** The libvirt <driver> attribute, when libvirt's schema has one, and the libvirt release that added it. */
  readonly libvirt?: string;
  readonly help: string;
}

export type DeviceMode = 'nested' | 'emulated' | 'virtio' | 'refused';

export interface PlannedDevice {
  readonly bdf: string;
  /** The host profile's name (several hosts are planned together in a baseline). */
  readonly host: string;
  /** The unit the device sits behind. */
  readonly unit: string;
  readonly mode: DeviceMode;
  readonly reasons: string[];
  /** arm-smmuv3 accel: the vSMMU instance (its id) the device sits behind. */
  readonly instance?: string;
}

/** arm-smmuv3 with accel=on: QEMU needs one vSMMU per host SMMU, each on its own PCIe root. */
export interface ViommuInstance {
  /** `smmuv3.<n>`: n is the position of the host SMMU among the host's SMMUs (1-based), so it never depends on which devices are chosen. */
  readonly id: string;
  /** The pxb-pcie root the vSMMU translates for: `pcie.<n>`. */
  readonly bus: string;
  readonly host: string;
  readonly hostUnit: string;
  /** Per-instance properties (auto values resolved); the plan's properties apply to all. */
  readonly properties: ViommuProperties;
  readonly devices: string[];
}

/** What a hot-plugged device must fit after the guest started. */
export interface FrozenState {
  readonly model: ViommuModel;
  readonly properties: ViommuProperties;
  readonly instances: readonly ViommuInstance[];
  /** virtio-iommu: log2 of the granule the guest saw, and the reserved ranges it probed. */
  readonly granuleLog2?: number;
  readonly reserved?: ReadonlyArray<{ start: string; last: string }>;
  readonly awBits?: number;
}

export interface Evaluation {
  readonly devices: PlannedDevice[];
  /** The VM would not start (QEMU refuses the configuration). */
  readonly errors: string[];
  readonly warnings: string[];
  readonly instances: ViommuInstance[];
  readonly frozen: FrozenState;
  /** Resolved values (virtio granule after cold plug...), to print in the plan. */
  readonly resolved: ViommuProperties;
}

export interface EvaluateOptions {
  /** Hot plug after the guest started, against this frozen state. */
  readonly frozen?: FrozenState;
  /** Target architecture when no unit says it (no devices). */
  readonly arch?: 'x86' | 'arm';
}

export type Policy = 'strict' | 'host' | 'baseline';

/** What a model's candidate builder sees. */
export interface CandidateContext {
  readonly policy: Exclude<Policy, 'strict'>;
  readonly arch: 'x86' | 'arm';
  /** The units whose capabilities limit the plan: behind the named devices, else every unit of every host. */
  readonly units: readonly UnitFacts[];
  /** The most capable of them (what only needs emulating is copied from it under the host policy). */
  readonly best: UnitFacts;
  readonly devices: readonly DeviceFacts[];
  readonly hosts: readonly HostProfile[];
  /** Host names in profile order (duplicates numbered). */
  readonly hostNames: readonly string[];
  /** Notes for the plan (why a candidate was not offered). */
  readonly warnings: string[];
}

export interface Candidate {
  readonly spec: ViommuSpec;
  /** Per host unit (host/unit key) properties for arm-smmuv3 accel (host policy copies each SMMU). */
  readonly perUnit?: Map<string, ViommuProperties>;
  readonly label: string;
}

/** A minimum QEMU release the plan needs, and why. */
export interface QemuRequirement {
  readonly version: QemuVersion;
  readonly why: string;
  readonly approximate?: boolean;
}

export interface ModelDef {
  readonly id: ViommuModel;
  /** The -device driver name. */
  readonly qemuDriver: string;
  /** Names accepted for the model on the command line besides id and qemuDriver. */
  readonly aliases: readonly string[];
  /** <iommu model='…'> in libvirt. */
  readonly libvirtModel: string;
  /** The QEMU release that introduced the device model (or its user-creatable form). */
  readonly since: QemuVersion;
  /** Guest architecture: 'any' runs on q35 and virt. */
  readonly arch: 'x86' | 'arm' | 'any';
  /** Host IOMMU vendors this model is native to (tried first under the host policy). */
  readonly nativeVendors: readonly string[];
  readonly props: Readonly<Record<string, PropDef>>;
  /** A hint for an unknown property name (e.g. smmuv3 pasid → ssidsize). */
  unknownPropertyHint?(name: string): string | undefined;
  /** Evaluates one configuration against every device, as QEMU checks it. */
  evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[], opts: EvaluateOptions): Evaluation;
  /** Configurations the host and baseline policies try for these units; none when the model does not fit. */
  candidates?(ctx: CandidateContext): Candidate[];
  /** The -machine value this model needs on the guest architecture (q35 with split irqchip for intremap…). */
  machine(spec: ViommuSpec, arch: 'x86' | 'arm'): string;
  /** What else than the properties' own releases the configuration needs. */
  requirements?(spec: ViommuSpec, assigned: number): QemuRequirement[];
}

export type { DeviceProfile };
