/**
 * Emitters: QEMU command-line options and the libvirt <iommu> element. libvirt's <driver> attributes
 * are only those its schema has (intremap, caching_mode, eim, iotlb, aw_bits); every property libvirt
 * cannot express becomes a warning instead of an invented attribute.
 */
import type { PlannedDevice, ViommuInstance } from './checks.js';
import { formatDevice, modelDef, type ViommuProperties, type ViommuSpec } from './models.js';

export interface Emitted {
  readonly qemuArgs: string[];
  readonly libvirt: string;
  readonly warnings: string[];
}

function xmlValue(v: unknown): string {
  if (v === true) return 'on';
  if (v === false) return 'off';
  return String(v).replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}

/** The libvirt element; properties without a libvirt attribute are reported back. */
export function emitLibvirt(spec: ViommuSpec, properties: ViommuProperties, instances: readonly ViommuInstance[]): { xml: string; warnings: string[] } {
  const m = modelDef(spec.model);
  const attrs: string[] = [];
  const unsupported: string[] = [];
  for (const [name, value] of Object.entries(properties)) {
    if (name === 'id' || name === 'bus' || name === 'addr' || name === 'primary-bus') continue;
    const def = m.props[name];
    if (def?.libvirt && value !== 'auto') attrs.push(`${def.libvirt}='${xmlValue(value)}'`);
    else unsupported.push(`${name}=${xmlValue(value)}`);
  }
  const warnings: string[] = [];
  if (unsupported.length) {
    warnings.push(
      `libvirt: <iommu model='${m.libvirtModel}'> has no attribute for ${unsupported.join(', ')}; pass them with <qemu:override> (or <qemu:commandline>)`,
    );
  }
  if (instances.length > 1) {
    warnings.push(`libvirt: one <iommu> element describes one vSMMU; ${instances.length} accelerated vSMMUs (one per host SMMU) need <qemu:commandline> until libvirt routes hostdevs to several SMMUs`);
  }
  const driver = attrs.length ? `\n  <driver ${attrs.join(' ')}/>\n` : '';
  const xml = driver ? `<iommu model='${m.libvirtModel}'>${driver}</iommu>` : `<iommu model='${m.libvirtModel}'/>`;
  return { xml, warnings };
}

/** The QEMU options: the vIOMMU device(s), the iommufd object and the assigned devices. */
export function emitQemu(spec: ViommuSpec, properties: ViommuProperties, devices: readonly PlannedDevice[], instances: readonly ViommuInstance[], oneHost: boolean): string[] {
  const resolved: ViommuSpec = { model: spec.model, properties };
  const assigned = devices.filter((d) => d.mode !== 'refused');
  const args: string[] = [];
  if (assigned.length && oneHost) args.push('-object', 'iommufd,id=iommufd0');
  if (spec.model === 'arm-smmuv3' && instances.length) {
    let port = 0;
    instances.forEach((inst, i) => {
      const n = i + 1;
      args.push('-device', `pxb-pcie,id=${inst.bus},bus_nr=${n * 32},bus=pcie.0`);
      args.push('-device', formatDevice({ model: spec.model, properties: { ...properties, ...inst.properties } }, { 'primary-bus': inst.bus, id: inst.id }));
      if (!oneHost) return;
      for (const bdf of inst.devices) {
        port++;
        args.push('-device', `pcie-root-port,id=rp${port},bus=${inst.bus},chassis=${port}`);
        args.push('-device', `vfio-pci,host=${bdf},bus=rp${port},iommufd=iommufd0`);
      }
    });
    return args;
  }
  args.push('-device', spec.model === 'arm-smmuv3' && !('primary-bus' in properties) ? formatDevice(resolved, { 'primary-bus': 'pcie.0' }) : formatDevice(resolved));
  if (oneHost) for (const d of assigned) args.push('-device', `vfio-pci,host=${d.bdf},iommufd=iommufd0`);
  return args;
}

/** Joins options into one shell-safe line. */
export function joinArgs(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
