/**
 * amd-iommu (hw/i386/amd_iommu.c): assigned devices are shadowed through MAP notifiers, which needs
 * dma-remap=on ("device … requires dma-remap=1").
 */
import type { DeviceFacts, UnitFacts } from '../facts.js';
import { shortBdf } from '../facts.js';
import { archMismatch, capabilityNote, deviceNotes, effectiveIn, isOn, quoteQemu, unusableUnit, Verdict } from './common.js';
import { DEVICE_OPTIONS, X86_IOMMU_PROPS } from './intel-iommu.js';
import type { Candidate, CandidateContext, Evaluation, ModelDef, PlannedDevice, PropDef, ViommuProperties, ViommuSpec } from './types.js';

const PROPS: Readonly<Record<string, PropDef>> = {
  xtsup: { type: 'bool', default: false, since: '9.0', libvirt: 'xtsup', help: 'x2APIC (XT) support for more than 255 vCPUs' },
  'pci-id': { type: 'string', since: '10.1', approximate: true, help: 'id of a user-created AMDVI-PCI device (needed for migration)' },
  'dma-remap': { type: 'bool', default: false, since: '10.1', approximate: true, help: 'DMA remapping for assigned devices through MAP notifiers' },
  numint2k: { type: 'bool', default: false, since: '10.2', approximate: true, help: '2048-entry interrupt remapping tables' },
  'dma-translation': { type: 'bool', default: true, since: '10.1', approximate: true, help: 'DMA translation (x86-iommu); off leaves only interrupt remapping' },
  ...X86_IOMMU_PROPS,
  ...DEVICE_OPTIONS,
};

const eff = (spec: ViommuSpec, n: string) => effectiveIn(PROPS, spec, n);

function evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[]): Evaluation {
  const remap = isOn(eff(spec, 'dma-remap'));
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const v = new Verdict();
    const arch = archMismatch('amd-iommu', 'x86', d.unit);
    const unusable = unusableUnit(d.unit);
    if (arch) v.fail(arch);
    else if (unusable) v.fail(unusable);
    if (!remap) v.fail(`dma-remap=off: QEMU shadows assigned devices through MAP notifiers only with dma-remap=on (${quoteQemu(`device ${shortBdf(d.bdf)} requires dma-remap=1`)})`);
    const note = capabilityNote(d, { ats: isOn(eff(spec, 'device-iotlb')) && d.unit.caps.ats, pasid: false, pri: false }, 'amd-iommu shadows only the v1 host table');
    if (note) v.note(note);
    deviceNotes(d, v, 'amd-iommu');
    out.push(v.result(d, 'emulated', `emulated: dma-remap=on, QEMU replays the guest's AMD v1 page-table changes as IOMMU_IOAS_MAP on ${d.unit.label} (shadow page tables)`));
  }
  const warnings = eff(spec, 'intremap') === 'on' ? ['intremap=on needs -machine q35,kernel-irqchip=split (or <ioapic driver="qemu"/> in libvirt)'] : [];
  return { devices: out, errors: [], warnings, instances: [], resolved: {}, frozen: { model: spec.model, properties: { ...spec.properties }, instances: [] } };
}

function candidates(ctx: CandidateContext): Candidate[] {
  if (ctx.arch !== 'x86' || !ctx.units.some((u) => u.vendor === 'amd-vi')) return [];
  const every = (f: (u: UnitFacts) => boolean) => ctx.units.length > 0 && ctx.units.every(f);
  const feature = (f: (u: UnitFacts) => boolean) => (ctx.policy === 'baseline' ? every(f) : f(ctx.best));
  const props: ViommuProperties = { 'dma-remap': true };
  if (feature((u) => u.caps.interruptRemapping)) props.intremap = 'on';
  // XTSup: the host IOMMU remaps x2APIC interrupts, so the guest may have more than 255 vCPUs
  // ("AMD IOMMU with x2APIC configuration requires xtsup=on"); it needs interrupt remapping.
  if (props.intremap === 'on' && feature((u) => u.caps.features.includes('x2apic'))) props.xtsup = true;
  if ((ctx.devices.some((d) => d.profile.ats) || (ctx.policy === 'baseline' && !ctx.devices.length)) && feature((u) => u.caps.ats)) props['device-iotlb'] = true;
  return [{ spec: { model: 'amd-iommu', properties: props }, label: 'amd-iommu with dma-remap shadowing' }];
}

export const amdIommu: ModelDef = {
  id: 'amd-iommu',
  qemuDriver: 'amd-iommu',
  aliases: ['amd'],
  libvirtModel: 'amd',
  since: '2.8',
  arch: 'x86',
  nativeVendors: ['amd-vi'],
  props: PROPS,
  machine: (spec) => (eff(spec, 'intremap') === 'on' ? 'q35,accel=kvm,kernel-irqchip=split' : 'q35,accel=kvm'),
  evaluate: (spec, devices) => evaluate(spec, devices),
  candidates,
  requirements: () => [],
};
