/**
 * What a QEMU vIOMMU device model is to the planner: its properties as QEMU defines them (with the QEMU
 * release that introduced each), the machine it needs, how it meets the host IOMMU behind an assigned
 * device, and which configurations the host and baseline policies should try. One ModelDef per QEMU
 * device model, registered in models/registry.ts; a new model is a new file and one registry entry.
 */
import type { DeviceProfile, HostProfile } from '@ioasid/core';
import type { DeviceFacts, UnitFacts } from '../facts.js';

/** A QEMU property value: booleans print as on/off, numbers in decimal, strings as they are. */
export type PropertyValue = string | number | boolean;
/** QEMU properties of a vIOMMU device by name, e.g. `{ 'aw-bits': 48, 'caching-mode': true }`. */
export type ViommuProperties = Record<string, PropertyValue>;

/** A QEMU device model id: 'intel-iommu', 'arm-smmuv3', 'virtio-iommu', 'amd-iommu', or a registered one. */
export type ViommuModel = string;

/** A vIOMMU configuration: a QEMU device model and its properties (what `-device <model>,<props>` says). */
export interface ViommuSpec {
  /** The model id, e.g. 'intel-iommu'. */
  readonly model: ViommuModel;
  /** QEMU property names; booleans print as on/off, 'auto' stays a string. */
  readonly properties: Readonly<ViommuProperties>;
}

/** How a QEMU property's value is written: on/off, an unsigned number, on/off/auto, or a string. */
export type PropType = 'bool' | 'uint' | 'onoffauto' | 'string';

/** A QEMU release, "9.2". */
export type QemuVersion = string;

/** One QEMU property of a vIOMMU model, as the planner checks and prints it. */
export interface PropDef {
  /** Its QEMU type: bool, unsigned integer, OnOffAuto or string. */
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
  /** One line on what the property does, for `ioasid plan` output. */
  readonly help: string;
}

/**
 * How an assigned device's DMA is translated for the guest: 'nested' (the host IOMMU walks the guest's stage 1
 * over a nest-parent stage 2), 'emulated' (QEMU shadows the guest's tables into the IOAS), 'virtio'
 * (virtio-iommu MAP/UNMAP become IOMMU_IOAS_MAP/UNMAP) or 'refused' (QEMU would not accept it).
 */
export type DeviceMode = 'nested' | 'emulated' | 'virtio' | 'refused';

/** The plan's verdict for one assigned device. */
export interface PlannedDevice {
  /** PCI address on its host, e.g. '0000:3b:00.0'. */
  readonly bdf: string;
  /** The host profile's name (several hosts are planned together in a baseline). */
  readonly host: string;
  /** The unit the device sits behind. */
  readonly unit: string;
  /** How its DMA is translated, or 'refused'. */
  readonly mode: DeviceMode;
  /** Why, in order: for 'refused' the first check QEMU fails first, then further mismatches. */
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
  /** Name of the host profile of the SMMU it copies. */
  readonly host: string;
  /** Id of that host SMMU unit in the profile. */
  readonly hostUnit: string;
  /** Per-instance properties (auto values resolved); the plan's properties apply to all. */
  readonly properties: ViommuProperties;
  /** BDFs of the assigned devices behind this vSMMU. */
  readonly devices: string[];
}

/** What a hot-plugged device must fit after the guest started. */
export interface FrozenState {
  /** The vIOMMU model the guest runs with. */
  readonly model: ViommuModel;
  /** Its properties as the guest started with them. */
  readonly properties: ViommuProperties;
  /** arm-smmuv3 accel: the vSMMU instances created at start (a hot-plugged device needs one for its host SMMU). */
  readonly instances: readonly ViommuInstance[];
  /** virtio-iommu: log2 of the granule the guest saw, and the reserved ranges it probed. */
  readonly granuleLog2?: number;
  /** virtio-iommu: the reserved ranges the guest probed, `last` inclusive, as hex strings. */
  readonly reserved?: ReadonlyArray<{
    /** First address, hex. */
    start: string;
    /** Last address, inclusive, hex. */
    last: string;
  }>;
  /** virtio-iommu: the input address width in bits the guest saw. */
  readonly awBits?: number;
}

/** What ModelDef.evaluate says about one configuration. */
export interface Evaluation {
  /** One verdict per device, in input order. */
  readonly devices: PlannedDevice[];
  /** The VM would not start (QEMU refuses the configuration). */
  readonly errors: string[];
  /** Things that work but deserve a note (slow paths, regions the guest cannot see). */
  readonly warnings: string[];
  /** arm-smmuv3 accel: the vSMMUs to create; empty for other models. */
  readonly instances: ViommuInstance[];
  /** The state a later hot plug must fit. */
  readonly frozen: FrozenState;
  /** Resolved values (virtio granule after cold plug...), to print in the plan. */
  readonly resolved: ViommuProperties;
}

/** Options of ModelDef.evaluate. */
export interface EvaluateOptions {
  /** Hot plug after the guest started, against this frozen state. */
  readonly frozen?: FrozenState;
  /** Target architecture when no unit says it (no devices). */
  readonly arch?: 'x86' | 'arm';
}

/**
 * How the planner picks the vIOMMU: 'strict' checks the one the user names; 'host' copies one host's IOMMU as
 * closely as possible; 'baseline' keeps what every unit of every host supports (a fleet).
 */
export type Policy = 'strict' | 'host' | 'baseline';

/** What a model's candidate builder sees. */
export interface CandidateContext {
  /** The policy asking for candidates. */
  readonly policy: Exclude<Policy, 'strict'>;
  /** Guest architecture (the hosts' architecture). */
  readonly arch: 'x86' | 'arm';
  /** The units whose capabilities limit the plan: behind the named devices, else every unit of every host. */
  readonly units: readonly UnitFacts[];
  /** The most capable of them (what only needs emulating is copied from it under the host policy). */
  readonly best: UnitFacts;
  /** The devices to assign, with their units. */
  readonly devices: readonly DeviceFacts[];
  /** The host profiles planned for. */
  readonly hosts: readonly HostProfile[];
  /** Host names in profile order (duplicates numbered). */
  readonly hostNames: readonly string[];
  /** Notes for the plan (why a candidate was not offered). */
  readonly warnings: string[];
}

/** A configuration a model proposes for the host or baseline policy. */
export interface Candidate {
  /** The configuration to evaluate. */
  readonly spec: ViommuSpec;
  /** Per host unit (host/unit key) properties for arm-smmuv3 accel (host policy copies each SMMU). */
  readonly perUnit?: Map<string, ViommuProperties>;
  /** Short name for notes, e.g. 'intel-iommu with x-flts nesting'. */
  readonly label: string;
}

/** A minimum QEMU release the plan needs, and why. */
export interface QemuRequirement {
  /** The release, e.g. '9.2'. */
  readonly version: QemuVersion;
  /** What needs it (a property, the device model, accel mode). */
  readonly why: string;
  /** The release is inferred rather than read from a tag (PropDef.approximate). */
  readonly approximate?: boolean;
}

/** A QEMU vIOMMU device model as the planner knows it (see the module comment); one per file in models/. */
export interface ModelDef {
  /** Model id, e.g. 'intel-iommu'. */
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
  /** Every QEMU property of the model by name. */
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
