/**
 * The checks QEMU makes when a vIOMMU meets the host IOMMU behind an assigned (vfio-pci, iommufd)
 * device, in QEMU's order and with QEMU's messages (QEMU's realize and plug checks of each vIOMMU model). One configuration is
 * evaluated against every device: each gets a mode and the reasons for it, a refusal names the first
 * failed check the way QEMU would, followed by any further mismatch.
 */
import { parseProfileNumber } from '@ioasid/core';
import type { DeviceFacts, UnitFacts } from './facts.js';
import { hex, pageSizeList, shortBdf } from './facts.js';
import { effective, isOn, MODELS, type PropertyValue, type ViommuProperties, type ViommuSpec } from './models.js';

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
  readonly id: string;
  /** The pxb-pcie root the vSMMU translates for. */
  readonly bus: string;
  readonly host: string;
  readonly hostUnit: string;
  /** Per-instance properties (auto values resolved); the plan's properties apply to all. */
  readonly properties: ViommuProperties;
  readonly devices: string[];
}

/** What a hot-plugged device must fit after the guest started. */
export interface FrozenState {
  readonly model: ViommuSpec['model'];
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

const U64 = (1n << 64n) - 1n;

function ctz(v: bigint): number {
  if (v === 0n) return 64;
  let n = 0;
  while (((v >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

function quoteQemu(msg: string): string {
  return `QEMU: "${msg}"`;
}

/** Accumulates a device's verdict: the first failure decides, later ones are listed after it. */
class Verdict {
  private failures: string[] = [];
  readonly notes: string[] = [];
  fail(reason: string): void {
    this.failures.push(this.failures.length ? `also: ${reason}` : reason);
  }
  note(reason: string): void {
    this.notes.push(reason);
  }
  get failed(): boolean {
    return this.failures.length > 0;
  }
  result(d: DeviceFacts, mode: Exclude<DeviceMode, 'refused'>, why: string, instance?: string): PlannedDevice {
    const base = { bdf: d.bdf, host: d.host, unit: d.unit.id };
    if (this.failed) return { ...base, mode: 'refused', reasons: [...this.failures, ...this.notes] };
    return { ...base, mode, reasons: [why, ...this.notes], ...(instance ? { instance } : {}) };
  }
}

function archMismatch(model: string, u: UnitFacts): string | null {
  const wants = model === 'arm-smmuv3' ? 'arm' : model === 'virtio-iommu' ? null : 'x86';
  if (!wants || u.arch === 'any' || u.arch === 'other' || u.arch === wants) return null;
  const machine = wants === 'x86' ? 'an x86 (q35) guest' : 'an Arm (virt) guest';
  return `${u.label}: ${model} needs ${machine}, but ${u.label} is a ${u.vendor} unit (${u.arch} host; KVM runs guests of the host architecture)`;
}

function deviceNotes(d: DeviceFacts, v: Verdict, model: string): void {
  for (const r of d.profile.reservedRegions ?? []) {
    if (r.type !== 'direct') continue;
    const s = parseProfileNumber(r.start);
    const l = parseProfileNumber(r.last);
    if (s === null || l === null) continue;
    if (model === 'virtio-iommu') continue;
    v.note(`${d.unit.label}: direct-mapped region [${hex(s)}, ${hex(l)}] (RMRR/RMR) stays reserved in the IOAS; ${model} cannot describe it to the guest, so a guest map there fails`);
  }
}

// ---------------------------------------------------------------------------------------------
// intel-iommu (hw/i386/intel_iommu.c, intel_iommu_accel.c)
// ---------------------------------------------------------------------------------------------

function intelConfigErrors(spec: ViommuSpec): string[] {
  const e: string[] = [];
  const on = (n: string) => isOn(effective(spec, n));
  const scalable = on('x-scalable-mode');
  const flts = on('x-flts');
  const aw = Number(effective(spec, 'aw-bits'));
  if (scalable && !on('dma-drain')) e.push(quoteQemu('Need to set dma_drain for scalable mode'));
  if ((on('x-pasid-mode') || on('pasid')) && !scalable) e.push(quoteQemu('Need to set scalable mode for PASID'));
  if (flts && !scalable) e.push(quoteQemu('x-flts is only available in scalable mode'));
  if (flts && aw !== 48) e.push(quoteQemu('Scalable mode(flts=on): supported value for aw-bits is: 48'));
  else if (!flts && aw !== 39 && aw !== 48) e.push(quoteQemu('Supported values for aw-bits are: 39, 48'));
  if (effective(spec, 'eim') === 'on' && effective(spec, 'intremap') === 'off') e.push(quoteQemu('eim=on cannot be selected without intremap=on'));
  return e;
}

function hostAwText(u: UnitFacts): string {
  const vtd = u.vtd;
  if (vtd?.mgaw !== undefined && vtd.mgaw === u.awBits) return `MGAW ${vtd.mgaw}`;
  if (vtd) return `host aw-bits ${u.awBits} (MGAW ${vtd.mgaw ?? '?'}, SAGAW ${vtd.sagaw.join('/') || 'none'})`;
  return `host aw-bits ${u.awBits}`;
}

function evaluateIntel(spec: ViommuSpec, devices: readonly DeviceFacts[]): Evaluation {
  const errors = intelConfigErrors(spec);
  const warnings: string[] = [];
  const aw = Number(effective(spec, 'aw-bits'));
  const flts = isOn(effective(spec, 'x-flts'));
  const cm = isOn(effective(spec, 'caching-mode'));
  const pasid = isOn(effective(spec, 'x-pasid-mode')) || isOn(effective(spec, 'pasid'));
  const fs1gp = isOn(effective(spec, 'fs1gp'));
  if (!flts && !cm && devices.length > 0) {
    errors.push(quoteQemu('We need to set caching-mode=on for intel-iommu to enable device assignment with IOMMU protection'));
  }
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const u = d.unit;
    const v = new Verdict();
    const arch = archMismatch('intel-iommu', u);
    if (arch) v.fail(arch);
    else if (u.awBits === 0) v.fail(`${u.label}: no stage for kernel-managed DMA (hostStage absent), so no IOVA space to back the guest's`);
    else if (aw > u.awBits) v.fail(`${u.label}: ${hostAwText(u)} < aw-bits ${aw} (${quoteQemu(`aw-bits ${aw} > host aw-bits ${u.awBits}`)})`);
    let why = '';
    if (flts) {
      if (u.vendor !== 'vtd') v.fail(`${u.label}: ${u.vendor} unit, x-flts=on needs Intel VT-d nesting (${quoteQemu(`Incompatible host platform IOMMU type ${u.vendor}`)})`);
      else {
        if (!u.caps.nesting) v.fail(`${u.label}: no nesting (ECAP.NEST 0 or legacy mode): x-flts=on needs a nest-parent second stage (${u.hwId})`);
        if (!u.vtd?.firstStage) v.fail(`${u.label}: no first stage (ECAP.FLTS 0 or legacy mode): the guest's x-flts tables cannot be walked in hardware`);
        if (fs1gp && u.vtd?.firstStage && !u.vtd.fs1gp) v.fail(`${u.label}: CAP.FS1GP 0 but fs1gp=on (${quoteQemu('First stage 1GB large page is unsupported by host IOMMU')}); set fs1gp=off`);
      }
      if (pasid && (d.profile.pasidBits ?? 0) > 0 && u.caps.pasidBits === 0) v.note(`${u.label}: no PASID support: the guest cannot use PASIDs of this device`);
      why = `nested: x-flts=on, the guest's first-stage tables are walked by ${u.label} over a nest-parent second stage (${u.hwId})`;
    } else {
      if (!cm) v.fail(`caching-mode=off: without nesting QEMU shadows the guest's tables, which needs caching mode (${quoteQemu('We need to set caching-mode=on for intel-iommu to enable device assignment with IOMMU protection')})`);
      if ((d.profile.pasidBits ?? 0) > 0 || d.profile.pri) v.note(`PASID/PRI of the device are not available to the guest: a shadowed device has no nested first stage (needs x-flts=on nesting)`);
      why = `emulated: caching-mode=on, the guest flushes every map and QEMU replays it as IOMMU_IOAS_MAP on ${u.label} (shadow page tables; every guest map traps)`;
    }
    deviceNotes(d, v, 'intel-iommu');
    out.push(v.result(d, flts ? 'nested' : 'emulated', why));
  }
  if (effective(spec, 'intremap') === 'on') warnings.push('intremap=on needs -machine q35,kernel-irqchip=split (or <ioapic driver="qemu"/> in libvirt)');
  return { devices: out, errors, warnings, instances: [], resolved: {}, frozen: { model: spec.model, properties: { ...spec.properties }, instances: [] } };
}

// ---------------------------------------------------------------------------------------------
// arm-smmuv3 (hw/arm/smmuv3.c, smmuv3-accel.c)
// ---------------------------------------------------------------------------------------------

/** What QEMU's vSMMU advertises regardless of properties. */
const VSMMU = { stLevel: 1, sidSize: 16, granules: ['4K', '16K', '64K'] as const };

function smmuConfigErrors(spec: ViommuSpec, devices: readonly DeviceFacts[], hotplug: boolean): string[] {
  const e: string[] = [];
  const accel = isOn(effective(spec, 'accel'));
  const ssid = effective(spec, 'ssidsize');
  if (typeof ssid === 'number' && ssid > 20) e.push(`ssidsize=${ssid}: SubstreamIDs are at most 20 bits`);
  const autos = ['ats', 'ril', 'ssidsize'].filter((p) => spec.properties[p] === 'auto');
  if (autos.length && !accel) e.push(`${autos.join(', ')}=auto only work with accel=on`);
  if (autos.length && accel && devices.length === 0 && !hotplug) {
    e.push(quoteQemu("arm-smmuv3 accel=on with 'auto' properties requires at least one cold-plugged VFIO device"));
  }
  return e;
}

function resolveSmmu(spec: ViommuSpec, u: UnitFacts): ViommuProperties {
  const p: ViommuProperties = {};
  for (const name of ['ril', 'ats', 'ssidsize', 'oas']) {
    const v = effective(spec, name);
    if (v !== 'auto') p[name] = v as PropertyValue;
    else if (name === 'ril') p[name] = u.smmu?.ril ?? false;
    else if (name === 'ats') p[name] = u.smmu?.ats ?? false;
    else if (name === 'ssidsize') p[name] = u.smmu?.ssidSize ?? 0;
  }
  return p;
}

/** smmuv3_accel_hw_compatible(): the host IDR fields a vSMMU relies on. */
function smmuAccelChecks(u: UnitFacts, p: ViommuProperties, v: Verdict): void {
  const s = u.smmu;
  if (u.vendor !== 'smmuv3' || !s) {
    v.fail(`${u.label}: ${u.vendor} unit, accel=on needs a host SMMUv3 (${quoteQemu(`Incompatible host platform IOMMU type ${u.vendor}`)})`);
    return;
  }
  if (!u.caps.nesting) v.fail(`${u.label}: no nesting (needs IDR0.S1P and S2P, and no nesting erratum): accel=on needs a nest-parent stage 2 (${u.hwId})`);
  if (s.stLevel !== undefined && s.stLevel !== VSMMU.stLevel) {
    v.fail(`${u.label}: IDR0.ST_LEVEL ${s.stLevel} (linear stream table), the vSMMU has a 2-level one (${quoteQemu('Host SMMUv3 Stream Table format mismatch')})`);
  }
  if (s.ttEndian !== undefined && s.ttEndian !== 0 && s.ttEndian !== 2) {
    v.fail(`${u.label}: IDR0.TTENDIAN ${s.ttEndian} (big-endian only), the vSMMU walks little-endian tables (QEMU refuses the TTENDIAN mismatch)`);
  }
  if (s.ttf !== undefined && (s.ttf & 2) === 0) v.fail(`${u.label}: IDR0.TTF ${s.ttf}, no AArch64 table format (QEMU refuses the TTF mismatch)`);
  if (s.sidSize !== undefined && s.sidSize < VSMMU.sidSize) v.fail(`${u.label}: IDR1.SIDSIZE ${s.sidSize} < ${VSMMU.sidSize}, the vSMMU's StreamID width`);
  const ssid = Number(p.ssidsize ?? 0);
  if (s.ssidSize < ssid) v.fail(`${u.label}: IDR1.SSIDSIZE ${s.ssidSize} < ssidsize ${ssid} (QEMU refuses the SSIDSIZE mismatch)`);
  if (isOn(p.ril) && !s.ril) v.fail(`${u.label}: IDR3.RIL 0 but ril=on (QEMU refuses the RIL mismatch); set ril=off`);
  const oas = Number(p.oas ?? 44);
  if (s.oas < oas) v.fail(`${u.label}: OAS ${s.oas} < oas ${oas} (${quoteQemu(`Host SMMUv3 supports only ${s.oas}-bit IPA, but the vSMMU OAS implies ${oas}-bit IPA`)})`);
  if (isOn(p.ats) && !s.ats) v.fail(`${u.label}: IDR0.ATS 0 but ats=on (QEMU refuses the ATS mismatch); set ats=off`);
  const have = { '4K': s.gran4k, '16K': s.gran16k, '64K': s.gran64k };
  for (const g of VSMMU.granules) {
    if (!have[g]) v.fail(`${u.label}: IDR5.GRAN${g} 0, the vSMMU advertises 4K/16K/64K (${quoteQemu(`Host SMMUv3 doesn't support ${g} translation granule`)})`);
  }
}

function evaluateSmmu(spec: ViommuSpec, devices: readonly DeviceFacts[], frozen?: FrozenState): Evaluation {
  const accel = isOn(effective(spec, 'accel'));
  const errors = smmuConfigErrors(spec, devices, frozen !== undefined);
  const warnings: string[] = [];
  const instances: ViommuInstance[] = frozen ? frozen.instances.map((i) => ({ ...i, devices: [...i.devices] })) : [];
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const u = d.unit;
    const v = new Verdict();
    const arch = archMismatch('arm-smmuv3', u);
    if (arch) v.fail(arch);
    if (!accel) {
      v.fail(
        `arm-smmuv3 without accel cannot back an assigned device: QEMU's emulated SMMUv3 has no MAP notifier (${quoteQemu(`device ${shortBdf(d.bdf)} requires iommu MAP notifier which is not currently supported`)}); use accel=on or virtio-iommu`,
      );
      out.push(v.result(d, 'emulated', ''));
      continue;
    }
    let inst = instances.find((i) => i.host === d.host && i.hostUnit === u.id);
    if (!inst && frozen) {
      v.fail(`no vSMMU for ${u.label}: accel=on needs one vSMMU per host SMMU and they are created at boot (a vIOMMU cannot be hot-added)`);
      out.push(v.result(d, 'nested', ''));
      continue;
    }
    if (!inst && !arch) {
      const n = instances.length + 1;
      const props = resolveSmmu(spec, u);
      inst = { id: `smmuv3.${n}`, bus: `pcie.${n}`, host: d.host, hostUnit: u.id, properties: props, devices: [] };
      instances.push(inst);
    }
    const props = inst?.properties ?? resolveSmmu(spec, u);
    if (!arch) smmuAccelChecks(u, props, v);
    const ssid = Number(props.ssidsize ?? 0);
    if ((d.profile.pasidBits ?? 0) > ssid) {
      v.note(ssid === 0 ? `the device has ${d.profile.pasidBits}-bit PASID; ssidsize=0 gives the guest no PASIDs` : `the device has ${d.profile.pasidBits}-bit PASID; ssidsize=${ssid} limits the guest to ${ssid} bits`);
    }
    if (d.profile.ats && !isOn(props.ats)) v.note('the device has ATS; ats=off hides it from the guest');
    if (d.profile.pri) v.note('PRI: page requests reach the guest only through a fault queue on the nested HWPT (IOMMU_FAULT_QUEUE_ALLOC)');
    deviceNotes(d, v, 'arm-smmuv3');
    const res = v.result(d, 'nested', `nested: accel=on, ${inst?.id ?? 'the vSMMU'} is backed by ${u.label} (iommufd vIOMMU, guest stage 1 walked by hardware over a nest-parent stage 2; ${u.hwId})`, inst?.id);
    if (res.mode !== 'refused' && inst && !inst.devices.includes(d.bdf)) inst.devices.push(d.bdf);
    out.push(res);
  }
  if (accel) {
    warnings.push(QEMU_ACCEL_EMULATED);
    if (instances.length > 1) warnings.push(`accel=on: ${instances.length} vSMMUs, one per host SMMU, each on its own pxb-pcie root; put every device on the root of its host SMMU`);
  }
  // Instances whose every device was refused would be vSMMUs for nothing.
  const live = frozen ? instances : instances.filter((i) => i.devices.length > 0);
  return { devices: out, errors, warnings, instances: live, resolved: {}, frozen: { model: spec.model, properties: { ...spec.properties }, instances: live } };
}

const QEMU_ACCEL_EMULATED = 'accel=on: emulated devices cannot sit behind an accelerated vSMMU ("Emulated endpoint devices are not allowed when using arm-smmuv3,accel=on"); keep them on pcie.0';

// ---------------------------------------------------------------------------------------------
// virtio-iommu (hw/virtio/virtio-iommu.c)
// ---------------------------------------------------------------------------------------------

const GRANULE_LOG2: Record<string, number> = { '4k': 12, '8k': 13, '16k': 14, '64k': 16, host: 12 };

interface Range {
  start: bigint;
  last: bigint;
}

function reservedOf(d: DeviceFacts): Range[] {
  const out: Range[] = [];
  for (const r of d.profile.reservedRegions ?? []) {
    const start = parseProfileNumber(r.start);
    const last = parseProfileNumber(r.last);
    if (start !== null && last !== null) out.push({ start, last });
  }
  if (d.unit.awBits > 0 && d.unit.awBits < 64) out.push({ start: 1n << BigInt(d.unit.awBits), last: U64 });
  return out;
}

function covered(r: Range, set: readonly Range[]): boolean {
  return set.some((s) => s.start <= r.start && r.last <= s.last);
}

function evaluateVirtio(spec: ViommuSpec, devices: readonly DeviceFacts[], opts: EvaluateOptions): Evaluation {
  const errors: string[] = [];
  const warnings: string[] = [];
  const frozen = opts.frozen;
  const arch = opts.arch ?? (devices.some((d) => d.unit.arch === 'arm') ? 'arm' : 'x86');
  const awProp = effective(spec, 'aw-bits');
  const aw = awProp === undefined ? (arch === 'arm' ? 48 : 39) : Number(awProp);
  if (aw < 32 || aw > 64) errors.push(`aw-bits=${aw}: virtio-iommu accepts 32 to 64`);
  const granule = String(effective(spec, 'granule'));
  let granuleLog2 = frozen?.granuleLog2 ?? GRANULE_LOG2[granule] ?? 12;
  if (granule === 'host' && !frozen) warnings.push('granule=host follows the page size of whichever host the VM starts on: not migration-safe; 4K assumed here');
  let mask = U64 & ~((1n << BigInt(granuleLog2)) - 1n);
  const reserved: Range[] = frozen ? (frozen.reserved ?? []).map((r) => ({ start: BigInt(r.start), last: BigInt(r.last) })) : [];
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const u = d.unit;
    const v = new Verdict();
    const hostMask = u.pageSizes === 0n ? U64 & ~0xfffn : u.pageSizes;
    const next = mask & hostMask;
    if (next === 0n) {
      v.fail(`${u.label}: page sizes ${pageSizeList(u.pageSizes)} share none with the guest's mask ${hex(mask)} (${quoteQemu(`virtio-iommu ${d.bdf} reports a page size mask ${hex(hostMask)} incompatible with currently supported mask ${hex(mask)}`)})`);
    } else if (ctz(next) > ctz(mask)) {
      if (frozen) {
        v.fail(`${u.label}: smallest page ${pageSizeList(1n << BigInt(ctz(next)))} > the granule the guest already uses (${quoteQemu(`virtio-iommu does not support frozen granule ${hex(1n << BigInt(ctz(mask)))}`)})`);
      } else {
        v.note(`${u.label}: smallest host page ${pageSizeList(1n << BigInt(ctz(next)))} raises the granule from ${pageSizeList(1n << BigInt(ctz(mask)))} at cold plug`);
      }
    }
    const ranges = reservedOf(d);
    if (frozen) {
      const extra = ranges.filter((r) => !covered(r, reserved));
      if (extra.length) {
        v.fail(`${d.bdf}: host reserved ${extra.map((r) => `[${hex(r.start)}, ${hex(r.last)}]`).join(', ')} not among the ranges the guest probed at boot (${quoteQemu('Conflicting host reserved ranges set!')})`);
      }
    } else {
      for (const r of ranges) if (!covered(r, reserved)) reserved.push(r);
      const shown = (d.profile.reservedRegions ?? []).map((r) => `[${r.start}, ${r.last}] (${r.type})`);
      if (shown.length) v.note(`reserved ${shown.join(', ')} reported to the guest as RESV_MEM regions by the PROBE request`);
    }
    if (aw > u.awBits && u.awBits > 0) v.note(`${u.label}: IOVAs above ${u.awBits} bits (its aperture) are reported to the guest as reserved (aw-bits=${aw})`);
    if ((d.profile.pasidBits ?? 0) > 0 || d.profile.pri) v.note('virtio-iommu has no PASID and no page requests: SVA is not available in the guest for this device');
    if (!v.failed && !frozen) mask = next;
    out.push(v.result(d, 'virtio', `virtio-iommu: the guest's MAP/UNMAP requests become IOMMU_IOAS_MAP/UNMAP on ${u.label} (granule ${pageSizeList(1n << BigInt(ctz(mask)))})`));
  }
  const resolved: ViommuProperties = {};
  const finalLog2 = ctz(mask);
  if (!frozen && finalLog2 !== granuleLog2) {
    const name = Object.keys(GRANULE_LOG2).find((k) => k !== 'host' && GRANULE_LOG2[k] === finalLog2);
    if (name) resolved.granule = name;
    granuleLog2 = finalLog2;
  }
  return {
    devices: out,
    errors,
    warnings,
    instances: [],
    resolved,
    frozen: {
      model: spec.model,
      properties: { ...spec.properties, ...resolved },
      instances: [],
      granuleLog2,
      reserved: reserved.map((r) => ({ start: hex(r.start), last: hex(r.last) })),
      awBits: aw,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// amd-iommu (hw/i386/amd_iommu.c)
// ---------------------------------------------------------------------------------------------

function evaluateAmd(spec: ViommuSpec, devices: readonly DeviceFacts[]): Evaluation {
  const remap = isOn(effective(spec, 'dma-remap'));
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const v = new Verdict();
    const arch = archMismatch('amd-iommu', d.unit);
    if (arch) v.fail(arch);
    if (!remap) v.fail(`dma-remap=off: QEMU shadows assigned devices through MAP notifiers only with dma-remap=on (${quoteQemu(`device ${shortBdf(d.bdf)} requires dma-remap=1`)})`);
    if ((d.profile.pasidBits ?? 0) > 0 || d.profile.pri) v.note('PASID/PRI of the device are not available to the guest: amd-iommu shadows only the v1 host table');
    deviceNotes(d, v, 'amd-iommu');
    out.push(v.result(d, 'emulated', `emulated: dma-remap=on, QEMU replays the guest's AMD v1 page-table changes as IOMMU_IOAS_MAP on ${d.unit.label} (shadow page tables)`));
  }
  return { devices: out, errors: [], warnings: [], instances: [], resolved: {}, frozen: { model: spec.model, properties: { ...spec.properties }, instances: [] } };
}

/** Evaluates one vIOMMU configuration against every device (cold plug, or hot plug with `frozen`). */
export function evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[], opts: EvaluateOptions = {}): Evaluation {
  let ev: Evaluation;
  switch (spec.model) {
    case 'intel-iommu':
      ev = evaluateIntel(spec, devices);
      break;
    case 'arm-smmuv3':
      ev = evaluateSmmu(spec, devices, opts.frozen);
      break;
    case 'virtio-iommu':
      ev = evaluateVirtio(spec, devices, opts);
      break;
    case 'amd-iommu':
      ev = evaluateAmd(spec, devices);
      break;
  }
  if (ev.errors.length && !opts.frozen) {
    // QEMU does not start: every device shares the fate of the configuration.
    const devicesOut = ev.devices.map((d) =>
      d.mode === 'refused' ? d : { ...d, mode: 'refused' as const, reasons: [`the VM does not start: ${ev.errors[0]}`, ...d.reasons.slice(1)] },
    );
    return { ...ev, devices: devicesOut };
  }
  return ev;
}

export function modelDefaults(model: ViommuSpec['model']): ViommuProperties {
  const out: ViommuProperties = {};
  for (const [k, d] of Object.entries(MODELS[model].props)) if (d.default !== undefined) out[k] = d.default;
  return out;
}

