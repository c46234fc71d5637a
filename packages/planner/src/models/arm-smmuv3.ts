/**
 * arm-smmuv3 (hw/arm/smmuv3.c, smmu-common.c, smmuv3-accel.c): its properties as QEMU defines them, the
 * accel=on checks against each host SMMU (smmuv3_accel_hw_compatible) and the host/baseline candidates.
 * With accel=on there is one vSMMU per host SMMU; each is named after the host SMMU's position on its
 * host (`smmuv3.<n>` on `pcie.<n>`), so that the name never depends on which devices were chosen.
 */
import type { DeviceFacts, UnitFacts } from '../facts.js';
import { shortBdf } from '../facts.js';
import { archMismatch, deviceNotes, effectiveIn, isOn, quoteQemu, unusableUnit, Verdict } from './common.js';
import { DEVICE_OPTIONS } from './intel-iommu.js';
import type { Candidate, CandidateContext, Evaluation, FrozenState, ModelDef, PlannedDevice, PropDef, PropertyValue, QemuRequirement, ViommuInstance, ViommuProperties, ViommuSpec } from './types.js';

const PROPS: Readonly<Record<string, PropDef>> = {
  'primary-bus': { type: 'string', since: '3.0', help: 'the PCIe root (pcie.0 or a pxb-pcie) the vSMMU translates for' },
  bus_num: { type: 'uint', default: 0, since: '3.0', help: 'legacy bus number of the primary bus' },
  stage: { type: 'string', default: '1', values: ['1', '2', 'nested'], since: '8.1', help: 'translation stages the vSMMU implements' },
  accel: { type: 'bool', default: false, since: '11.0', approximate: true, help: 'back the vSMMU with the host SMMUv3 (iommufd nesting, one vSMMU per host SMMU)' },
  'msi-gpa': { type: 'uint', default: 0, since: '11.0', approximate: true, help: 'guest physical address of the MSI doorbell (accel)' },
  ril: { type: 'bool', default: true, auto: true, since: '11.0', approximate: true, help: 'IDR3.RIL range invalidation (off only with accel)' },
  ats: { type: 'bool', default: false, auto: true, since: '11.0', approximate: true, help: 'IDR0.ATS address translation services (on only with accel)' },
  oas: { type: 'uint', default: 44, values: [44, 48], auto: true, since: '11.0', approximate: true, help: 'IDR5.OAS output address size, 44 or 48 bits (48 only with accel)' },
  ssidsize: { type: 'uint', default: 0, auto: true, since: '11.0', approximate: true, help: 'IDR1.SSIDSIZE SubstreamID (PASID) bits, 0 to 20 (above 0 only with accel)' },
  ...DEVICE_OPTIONS,
};

const eff = (spec: ViommuSpec, n: string) => effectiveIn(PROPS, spec, n);

/** What QEMU's vSMMU advertises regardless of properties. */
const VSMMU = { stLevel: 1, sidSize: 16, granules: ['4K', '16K', '64K'] as const };

function configErrors(spec: ViommuSpec, devices: readonly DeviceFacts[], hotplug: boolean): string[] {
  const e: string[] = [];
  const accel = isOn(eff(spec, 'accel'));
  const ssid = eff(spec, 'ssidsize');
  if (typeof ssid === 'number' && ssid > 20) e.push(`ssidsize=${ssid}: SubstreamIDs are at most 20 bits`);
  if (!accel) {
    if (spec.properties.ril === false) e.push(quoteQemu('ril can only be disabled if accel=on'));
    if (isOn(spec.properties.ats)) e.push(quoteQemu('ats can only be enabled if accel=on'));
    if (typeof spec.properties.oas === 'number' && spec.properties.oas !== 44) e.push(quoteQemu('OAS must be 44 bits when accel=off'));
    if (typeof ssid === 'number' && ssid > 0) e.push(quoteQemu('ssidsize can only be greater than 0 bits if accel=on'));
  } else if (spec.properties.stage !== undefined && spec.properties.stage !== '1') e.push(quoteQemu('Only stage1 is supported for SMMUv3 with accel=on'));
  const autos = ['ats', 'ril', 'ssidsize', 'oas'].filter((p) => spec.properties[p] === 'auto');
  if (autos.length && !accel) e.push(`${autos.join(', ')}=auto only work with accel=on`);
  if (autos.length && accel && devices.length === 0 && !hotplug) {
    e.push(quoteQemu("arm-smmuv3 accel=on with 'auto' properties requires at least one cold-plugged VFIO device"));
  }
  return e;
}

function resolve(spec: ViommuSpec, u: UnitFacts): ViommuProperties {
  const p: ViommuProperties = {};
  for (const name of ['ril', 'ats', 'ssidsize', 'oas']) {
    const v = eff(spec, name);
    if (v !== 'auto') p[name] = v as PropertyValue;
    else if (name === 'ril') p[name] = u.smmu?.ril ?? false;
    else if (name === 'ats') p[name] = u.smmu?.ats ?? false;
    else if (name === 'ssidsize') p[name] = u.smmu?.ssidSize ?? 0;
    else p[name] = (u.smmu?.oas ?? 44) >= 48 ? 48 : 44;
  }
  return p;
}

/** smmuv3_accel_hw_compatible(): the host IDR fields a vSMMU relies on. */
function accelChecks(u: UnitFacts, p: ViommuProperties, v: Verdict): void {
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
  const checked: Record<string, string> = {
    'IDR0.ST_LEVEL': 'stream table format',
    'IDR1.SIDSIZE': 'StreamID width',
    'IDR1.SSIDSIZE': `ssidsize=${ssid}`,
    'IDR5.GRAN4K': '4K granule',
    'IDR5.GRAN16K': '16K granule',
    'IDR5.GRAN64K': '64K granule',
  };
  for (const f of s.unknown.filter((x) => x in checked)) {
    v.note(`${u.label}: ${f} is unknown (Linux does not print it): the ${checked[f]} check is assumed to pass; IOMMU_GET_HW_INFO output (ioasid probe --sysfs --hw-info) settles it`);
  }
}

export const QEMU_ACCEL_EMULATED = 'accel=on: emulated devices cannot sit behind an accelerated vSMMU ("Emulated endpoint devices are not allowed when using arm-smmuv3,accel=on"); keep them on pcie.0';

/** The vSMMU id and root of a host SMMU: its 1-based position among its host's SMMUs. */
export function vsmmuName(u: UnitFacts): { id: string; bus: string } {
  const n = u.index + 1;
  return { id: `smmuv3.${n}`, bus: `pcie.${n}` };
}

function evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[], frozen?: FrozenState): Evaluation {
  const accel = isOn(eff(spec, 'accel'));
  const errors = configErrors(spec, devices, frozen !== undefined);
  const warnings: string[] = [];
  const instances: ViommuInstance[] = frozen ? frozen.instances.map((i) => ({ ...i, devices: [...i.devices] })) : [];
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const u = d.unit;
    const v = new Verdict();
    const arch = archMismatch('arm-smmuv3', 'arm', u);
    const unusable = unusableUnit(u);
    if (arch) v.fail(arch);
    else if (unusable) v.fail(unusable);
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
      inst = { ...vsmmuName(u), host: d.host, hostUnit: u.id, properties: resolve(spec, u), devices: [] };
      instances.push(inst);
    }
    const props = inst?.properties ?? resolve(spec, u);
    if (!arch) accelChecks(u, props, v);
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
    warnings.push('accel=on: QEMU blocks live migration ("Migration not supported with SMMUv3 accelerator mode enabled")');
  }
  // Instances whose every device was refused would be vSMMUs for nothing.
  const live = frozen ? instances : instances.filter((i) => i.devices.length > 0);
  if (live.length > 1 && !frozen) warnings.push(`accel=on: ${live.length} vSMMUs, one per host SMMU, each on its own pxb-pcie root; put every device on the root of its host SMMU`);
  return { devices: out, errors, warnings, instances: live, resolved: {}, frozen: { model: spec.model, properties: { ...spec.properties }, instances: live } };
}

export function smmuProps(units: readonly UnitFacts[], devices: readonly DeviceFacts[], anyDevice: boolean): ViommuProperties {
  const s = units.map((u) => u.smmu!);
  const wantPasid = anyDevice ? 20 : Math.max(0, ...devices.map((d) => d.profile.pasidBits ?? 0));
  return {
    accel: true,
    ril: s.every((x) => x.ril),
    ats: s.every((x) => x.ats) && (anyDevice || devices.some((d) => d.profile.ats === true)),
    oas: s.every((x) => x.oas >= 48) ? 48 : 44,
    ssidsize: Math.min(wantPasid, ...s.map((x) => x.ssidSize)),
  };
}

function candidates(ctx: CandidateContext): Candidate[] {
  const { units, devices, policy } = ctx;
  if (ctx.arch !== 'arm') return [];
  const accelOk = policy === 'baseline' ? units.every((u) => u.vendor === 'smmuv3' && u.smmu && u.caps.nesting) : units.every((u) => u.vendor === 'smmuv3' && u.smmu) && units.some((u) => u.caps.nesting);
  if (!units.length || !accelOk) return [];
  if (policy === 'baseline') {
    const counts = new Set(ctx.hostNames.map((h) => new Set(devices.filter((d) => d.host === h).map((d) => d.unit.id)).size));
    if (counts.size > 1) {
      ctx.warnings.push('baseline: the hosts put the devices behind different numbers of SMMUs, so accel=on (one vSMMU per host SMMU) would give each host a different guest topology');
      return [];
    }
    return [{ spec: { model: 'arm-smmuv3', properties: smmuProps(units, devices, devices.length === 0) }, label: 'arm-smmuv3 accel=on nesting' }];
  }
  const perUnit = new Map<string, ViommuProperties>();
  for (const u of units) perUnit.set(`${u.host}\u0000${u.id}`, smmuProps([u], devices.filter((d) => d.unit === u), false));
  return [{ spec: { model: 'arm-smmuv3', properties: { accel: true } }, perUnit, label: 'arm-smmuv3 accel=on nesting (one vSMMU per host SMMU)' }];
}

function requirements(): QemuRequirement[] {
  return [{ version: '10.2', why: '-device arm-smmuv3 on a chosen PCIe root (before 10.2 only -machine virt,iommu=smmuv3)' }];
}

export const armSmmuv3: ModelDef = {
  id: 'arm-smmuv3',
  qemuDriver: 'arm-smmuv3',
  aliases: ['smmuv3'],
  libvirtModel: 'smmuv3',
  since: '3.0',
  arch: 'arm',
  nativeVendors: ['smmuv3'],
  props: PROPS,
  // The vSMMUs are -device arm-smmuv3 (one per pxb-pcie root with accel=on, on pcie.0 without), which excludes
  // the machine's own iommu=smmuv3 ("virt machine already has … set").
  machine: () => 'virt,accel=kvm,gic-version=3',
  unknownPropertyHint: (name) => (name === 'pasid' ? ' (the vSMMU PASID width is ssidsize=N)' : undefined),
  evaluate: (spec, devices, opts) => evaluate(spec, devices, opts.frozen),
  candidates,
  requirements,
};

