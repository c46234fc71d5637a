/**
 * intel-iommu (hw/i386/intel_iommu.c, hw/i386/x86-iommu.c, intel_iommu_accel.c): its properties as
 * QEMU defines them, vtd_decide_config() and the per-device checks QEMU makes when an assigned device
 * sits behind it, and the configurations the host and baseline policies try.
 */
import type { DeviceFacts, UnitFacts } from '../facts.js';
import { archMismatch, capabilityNote, deviceNotes, effectiveIn, isOn, quoteQemu, unusableUnit, Verdict } from './common.js';
import type { Candidate, CandidateContext, Evaluation, ModelDef, PlannedDevice, PropDef, QemuRequirement, ViommuProperties, ViommuSpec } from './types.js';

/**
 * x86-iommu's properties (shared with amd-iommu): intremap, device-iotlb, pt, and dma-translation,
 * which moved there from intel-iommu.
 */
export const X86_IOMMU_PROPS: Readonly<Record<string, PropDef>> = {
  intremap: { type: 'onoffauto', default: 'auto', since: '2.7', libvirt: 'intremap', help: 'interrupt remapping (needs kernel-irqchip=split)' },
  'device-iotlb': { type: 'bool', default: false, since: '2.9', libvirt: 'iotlb', help: 'device-TLB (ATS) for the guest' },
  pt: { type: 'bool', default: true, since: '2.10', help: 'pass-through translation type for the guest' },
};

/** Generic -device options every model takes. */
export const DEVICE_OPTIONS: Readonly<Record<string, PropDef>> = {
  id: { type: 'string', since: '0.12', help: 'the device id' },
  bus: { type: 'string', since: '0.12', help: 'the bus the device sits on' },
  addr: { type: 'string', since: '0.12', help: 'the PCI slot of the device' },
};

const PROPS: Readonly<Record<string, PropDef>> = {
  version: { type: 'uint', default: 0, since: '2.2', help: 'informational VER_REG value' },
  eim: { type: 'onoffauto', default: 'auto', since: '2.8', libvirt: 'eim', help: 'extended interrupt mode (x2APIC); needs intremap' },
  'x-buggy-eim': { type: 'bool', default: false, since: '2.8', removed: '10.1', approximate: true, help: 'the EIM behaviour of machine types up to pc-2.7 (removed with those machines)' },
  'aw-bits': { type: 'uint', default: 48, since: '4.0', libvirt: 'aw_bits', help: 'guest IOVA width: 39 or 48 (48 only with x-flts); the default was 39 before QEMU 9.2' },
  'caching-mode': { type: 'bool', default: false, since: '2.9', libvirt: 'caching_mode', help: 'CAP.CM: the guest flushes on map, which lets QEMU shadow its tables for assigned devices' },
  'x-scalable-mode': { type: 'bool', default: false, since: '4.0', help: 'scalable-mode translation (ECAP.SMTS)' },
  'x-flts': { type: 'bool', default: false, since: '10.0', approximate: true, help: 'first-stage translation for the guest; assigned devices then need hardware nesting' },
  'snoop-control': { type: 'bool', default: false, since: '7.0', help: 'ECAP.SC: snoop control' },
  'x-pasid-mode': { type: 'bool', default: false, since: '7.2', help: 'PASID support for the guest (needs scalable mode)' },
  'dma-drain': { type: 'bool', default: true, since: '4.0', help: 'DMA read/write draining; scalable mode needs it' },
  'dma-translation': { type: 'bool', default: true, since: '7.1', libvirt: 'dma_translation', help: 'DMA translation; off leaves only interrupt remapping' },
  'stale-tm': { type: 'bool', default: false, since: '9.2', help: 'keep the stale TM bit of legacy-mode context entries (on for machine types up to 9.1)' },
  fs1gp: { type: 'bool', default: true, since: '10.0', approximate: true, help: 'first-stage 1 GiB pages (CAP.FS1GP) with x-flts' },
  ...X86_IOMMU_PROPS,
  ...DEVICE_OPTIONS,
};

const eff = (spec: ViommuSpec, n: string) => effectiveIn(PROPS, spec, n);

function configErrors(spec: ViommuSpec): string[] {
  const e: string[] = [];
  const on = (n: string) => isOn(eff(spec, n));
  const scalable = on('x-scalable-mode');
  const flts = on('x-flts');
  const aw = Number(eff(spec, 'aw-bits'));
  if (scalable && !on('dma-drain')) e.push(quoteQemu('Need to set dma_drain for scalable mode'));
  if (on('x-pasid-mode') && !scalable) e.push(quoteQemu('Need to set scalable mode for PASID'));
  if (on('x-pasid-mode') && on('device-iotlb')) e.push(quoteQemu('PASID based device IOTLB is not supported'));
  if (flts && !scalable) e.push(quoteQemu('x-flts is only available in scalable mode'));
  if (flts && aw !== 48) e.push(quoteQemu('Scalable mode(flts=on): supported value for aw-bits is: 48'));
  else if (!flts && aw !== 39 && aw !== 48) e.push(quoteQemu('Supported values for aw-bits are: 39, 48'));
  if (eff(spec, 'eim') === 'on' && eff(spec, 'intremap') === 'off') e.push(quoteQemu('eim=on cannot be selected without intremap=on'));
  return e;
}

function hostAwText(u: UnitFacts): string {
  const vtd = u.vtd;
  if (vtd?.mgaw !== undefined && vtd.mgaw === u.awBits) return `MGAW ${vtd.mgaw}`;
  if (vtd) return `host aw-bits ${u.awBits} (MGAW ${vtd.mgaw ?? '?'}, SAGAW ${vtd.sagaw.join('/') || 'none'})`;
  return `host aw-bits ${u.awBits}`;
}

const CM_MESSAGE = 'We need to set caching-mode=on for intel-iommu to enable device assignment with IOMMU protection';

function evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[]): Evaluation {
  const errors = configErrors(spec);
  const warnings: string[] = [];
  const aw = Number(eff(spec, 'aw-bits'));
  const flts = isOn(eff(spec, 'x-flts'));
  const cm = isOn(eff(spec, 'caching-mode'));
  const pasid = isOn(eff(spec, 'x-pasid-mode'));
  const fs1gp = isOn(eff(spec, 'fs1gp'));
  const iotlb = isOn(eff(spec, 'device-iotlb'));
  if (!flts && !cm && devices.length > 0) errors.push(quoteQemu(CM_MESSAGE));
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const u = d.unit;
    const v = new Verdict();
    const arch = archMismatch('intel-iommu', 'x86', u);
    const unusable = unusableUnit(u);
    if (arch) v.fail(arch);
    else if (unusable) v.fail(unusable);
    else if (aw > u.awBits) v.fail(`${u.label}: ${hostAwText(u)} < aw-bits ${aw} (${quoteQemu(`aw-bits ${aw} > host aw-bits ${u.awBits}`)})`);
    let why: string;
    if (flts) {
      if (u.vendor !== 'vtd') v.fail(`${u.label}: ${u.vendor} unit, x-flts=on needs Intel VT-d nesting (${quoteQemu(`Incompatible host platform IOMMU type ${u.vendor}`)})`);
      else {
        if (!u.caps.nesting) v.fail(`${u.label}: no nesting (ECAP.NEST 0 or legacy mode): x-flts=on needs a nest-parent second stage (${u.hwId})`);
        if (!u.vtd?.firstStage) v.fail(`${u.label}: no first stage (ECAP.FLTS 0 or legacy mode): the guest's x-flts tables cannot be walked in hardware`);
        if (fs1gp && u.vtd?.firstStage && !u.vtd.fs1gp) v.fail(`${u.label}: CAP.FS1GP 0 but fs1gp=on (${quoteQemu('First stage 1GB large page is unsupported by host IOMMU')}); set fs1gp=off`);
      }
      if (pasid && (d.profile.pasidBits ?? 0) > 0 && u.caps.pasidBits === 0) v.note(`${u.label}: no PASID support: the guest cannot use PASIDs of this device`);
      const note = capabilityNote(
        d,
        { ats: iotlb && u.caps.ats, pasid: pasid && u.caps.pasidBits > 0, pri: false },
        `${!iotlb ? 'device-iotlb=off hides ATS; ' : ''}${!pasid ? 'x-pasid-mode=off; ' : ''}intel-iommu has no page-request (PRS) emulation for assigned devices`,
      );
      if (note) v.note(note);
      why = `nested: x-flts=on, the guest's first-stage tables are walked by ${u.label} over a nest-parent second stage (${u.hwId})`;
    } else {
      if (!cm) v.fail(`caching-mode=off: without nesting QEMU shadows the guest's tables, which needs caching mode (${quoteQemu(CM_MESSAGE)})`);
      const note = capabilityNote(d, { ats: iotlb && u.caps.ats, pasid: false, pri: false }, 'a shadowed device has no nested first stage, which PASID and PRI need (x-flts=on nesting)');
      if (note) v.note(note);
      why = `emulated: caching-mode=on, the guest flushes every map and QEMU replays it as IOMMU_IOAS_MAP on ${u.label} (shadow page tables; every guest map traps)`;
    }
    deviceNotes(d, v, 'intel-iommu');
    out.push(v.result(d, flts ? 'nested' : 'emulated', why));
  }
  if (eff(spec, 'intremap') === 'on') warnings.push('intremap=on needs -machine q35,kernel-irqchip=split (or <ioapic driver="qemu"/> in libvirt)');
  return { devices: out, errors, warnings, instances: [], resolved: {}, frozen: { model: spec.model, properties: { ...spec.properties }, instances: [] } };
}

const every = <T>(xs: readonly T[], f: (x: T) => boolean) => xs.length > 0 && xs.every(f);

function candidates(ctx: CandidateContext): Candidate[] {
  const { units, best, devices, policy } = ctx;
  if (ctx.arch !== 'x86' || !units.length) return [];
  const out: Candidate[] = [];
  const minAw = Math.min(...units.map((u) => u.awBits));
  const anyAts = devices.some((d) => d.profile.ats);
  // Emulated features: host copies the most capable unit, baseline wants every unit to have them.
  const feature = (f: (u: UnitFacts) => boolean) => (policy === 'baseline' ? every(units, f) : f(best));
  const ir = feature((u) => u.caps.interruptRemapping);
  const eim = ir && feature((u) => u.caps.features.includes('x2apic-eim'));
  const common: ViommuProperties = {};
  if (ir) common.intremap = 'on';
  if (eim) common.eim = 'on';
  // A baseline with no device chosen stands for any device of any unit: ATS only when every unit has it.
  if ((anyAts || (policy === 'baseline' && !devices.length)) && feature((u) => u.caps.ats)) common['device-iotlb'] = true;
  // Nesting is hardware: the baseline offers it only when every unit nests with 48 bits (x-flts needs aw-bits=48).
  const nests = policy === 'baseline' ? every(units, (u) => u.vendor === 'vtd' && u.caps.nesting && u.awBits >= 48) : units.every((u) => u.vendor === 'vtd') && units.some((u) => u.caps.nesting);
  if (nests) {
    const props: ViommuProperties = { 'x-scalable-mode': true, 'x-flts': true, 'aw-bits': 48, ...common };
    // device-iotlb and x-pasid-mode cannot be combined ("PASID based device IOTLB is not supported").
    props.fs1gp = every(units, (u) => u.vtd?.fs1gp === true);
    const wantPasid = devices.some((d) => (d.profile.pasidBits ?? 0) > 0);
    if (wantPasid && every(units, (u) => u.caps.pasidBits > 0) && !props['device-iotlb']) props['x-pasid-mode'] = true;
    out.push({ spec: { model: 'intel-iommu', properties: props }, label: 'intel-iommu with x-flts nesting' });
  }
  out.push({
    spec: { model: 'intel-iommu', properties: { 'caching-mode': true, 'aw-bits': minAw >= 48 ? 48 : 39, ...common } },
    label: 'intel-iommu with caching-mode shadowing',
  });
  return out;
}

function requirements(spec: ViommuSpec, assigned: number): QemuRequirement[] {
  const out: QemuRequirement[] = [];
  if (isOn(eff(spec, 'x-flts')) && assigned > 0) {
    out.push({ version: '10.2', approximate: true, why: 'x-flts=on with assigned (iommufd) devices nested on the host VT-d' });
  }
  if (!('aw-bits' in spec.properties)) out.push({ version: '9.2', why: 'aw-bits defaults to 48 only since 9.2 (39 before); spell it out for older QEMUs' });
  return out;
}

export const intelIommu: ModelDef = {
  id: 'intel-iommu',
  qemuDriver: 'intel-iommu',
  aliases: ['intel'],
  libvirtModel: 'intel',
  since: '2.2',
  arch: 'x86',
  nativeVendors: ['vtd'],
  props: PROPS,
  machine: (spec) => (eff(spec, 'intremap') === 'on' ? 'q35,accel=kvm,kernel-irqchip=split' : 'q35,accel=kvm'),
  evaluate: (spec, devices) => evaluate(spec, devices),
  candidates,
  requirements,
};
