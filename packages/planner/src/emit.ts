/**
 * Emitters: the whole QEMU command line of a plan (machine, iommufd object, vIOMMU devices, a PCIe root port
 * per assigned device within the slot and bus-number limits, vfio-pci devices) and the libvirt domain
 * fragment (<iommu> with only the <driver> attributes libvirt's schema has, <hostdev>s, and <qemu:override> /
 * <qemu:commandline> for what libvirt cannot express).
 */
import type { PlannedDevice, ViommuInstance } from './checks.js';
import { parseBdf } from '@ioasid/core';
import { formatDevice, modelDef, qemuValue, type ViommuProperties, type ViommuSpec } from './models.js';

function xmlValue(v: unknown): string {
  if (v === true) return 'on';
  if (v === false) return 'off';
  return String(v).replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}

// ---------------------------------------------------------------------------------------------
// PCIe topology
// ---------------------------------------------------------------------------------------------

/** One PCI domain has 256 bus numbers; bus 0 is pcie.0 and every root port takes one more. */
const BUS_NUMBERS = 256;
const PCIE0_BUSES = 32;
/** Slots a root bus offers to root ports: q35 keeps 00.0 (host bridge), 01.0 (VGA) and 1f.x (ICH9); virt 00.0. */
const FREE_SLOTS: Record<'x86' | 'arm', { first: number; last: number }> = { x86: { first: 2, last: 0x1e }, arm: { first: 1, last: 0x1f } };
const PXB_SLOTS = { first: 0, last: 0x1f };

export interface RootPort {
  readonly id: string;
  readonly bus: string;
  readonly addr: string;
  readonly chassis: number;
  readonly multifunction: boolean;
  readonly device: string;
}

export interface Topology {
  readonly args: string[];
  readonly ports: RootPort[];
  readonly errors: string[];
}

/**
 * A root port per device, eight functions per slot (multifunction on function 0, as libvirt lays them out),
 * on pcie.0 or on the pxb-pcie root of each vSMMU; bus numbers are handed out in order and must fit one domain.
 */
function topology(arch: 'x86' | 'arm', roots: ReadonlyArray<{ bus: string; devices: readonly string[]; pxb: boolean }>): Topology {
  const args: string[] = [];
  const ports: RootPort[] = [];
  const errors: string[] = [];
  let nextBus = 1;
  let chassis = 0;
  for (const root of roots) {
    const slots = root.pxb ? PXB_SLOTS : FREE_SLOTS[arch];
    const capacity = (slots.last - slots.first + 1) * 8;
    if (root.devices.length > capacity) {
      errors.push(`${root.bus} has ${slots.last - slots.first + 1} free slots of 8 functions (${capacity} root ports); ${root.devices.length} devices need one root port each`);
    }
    if (root.pxb) {
      // pxb-pcie bus_nr: its own bus, then one per root port below it. Buses 1-31 stay with pcie.0 for the
      // emulated devices' root ports the VM will have besides the assigned ones.
      nextBus = Math.max(nextBus, PCIE0_BUSES);
      args.push('-device', `pxb-pcie,id=${root.bus},bus_nr=${nextBus},bus=pcie.0`);
      nextBus++;
    }
    const fit = root.devices.slice(0, capacity);
    fit.forEach((bdf, i) => {
      const slot = slots.first + Math.floor(i / 8);
      const fn = i % 8;
      chassis++;
      const multifunction = fn === 0 && i + 1 < fit.length && Math.floor((i + 1) / 8) === Math.floor(i / 8);
      const port: RootPort = { id: `rp${chassis}`, bus: root.bus, addr: `0x${slot.toString(16)}.0x${fn}`, chassis, multifunction, device: bdf };
      ports.push(port);
      args.push('-device', `pcie-root-port,id=${port.id},bus=${root.bus},addr=${port.addr},chassis=${chassis}${multifunction ? ',multifunction=on' : ''}`);
      args.push('-device', `vfio-pci,host=${bdf},bus=${port.id},iommufd=iommufd0`);
    });
    nextBus += fit.length;
  }
  if (nextBus > BUS_NUMBERS) {
    errors.push(`${ports.length} root ports${roots.some((r) => r.pxb) ? ' and their pxb-pcie roots' : ''} need ${nextBus} bus numbers; one PCI domain has ${BUS_NUMBERS}: assign at most ${BUS_NUMBERS - 1 - roots.filter((r) => r.pxb).length} devices to one VM (or several devices per root port behind switches, which the planner does not lay out)`);
  }
  return { args, ports, errors };
}

export interface QemuLine {
  readonly args: string[];
  readonly ports: RootPort[];
  readonly errors: string[];
}

/** The whole QEMU command line: machine, iommufd, vIOMMU(s), root ports and vfio-pci devices (one host). */
export function emitQemu(spec: ViommuSpec, properties: ViommuProperties, devices: readonly PlannedDevice[], instances: readonly ViommuInstance[], oneHost: boolean, arch: 'x86' | 'arm'): QemuLine {
  const m = modelDef(spec.model);
  const resolved: ViommuSpec = { model: spec.model, properties };
  const assigned = devices.filter((d) => d.mode !== 'refused');
  const args: string[] = ['-machine', m.machine(resolved, arch)];
  if (assigned.length && oneHost) args.push('-object', 'iommufd,id=iommufd0');
  const roots: Array<{ bus: string; devices: string[]; pxb: boolean; viommu?: string }> = [];
  if (spec.model === 'arm-smmuv3' && instances.length) {
    for (const inst of instances) {
      roots.push({
        bus: inst.bus,
        devices: oneHost ? [...inst.devices] : [],
        pxb: true,
        viommu: formatDevice({ model: spec.model, properties: { ...properties, ...inst.properties } }, { 'primary-bus': inst.bus, id: inst.id }),
      });
    }
  } else {
    // The vIOMMU comes before the devices it translates (libvirt's order).
    const extra: ViommuProperties = spec.model === 'arm-smmuv3' && !('primary-bus' in properties) ? { 'primary-bus': 'pcie.0' } : {};
    args.push('-device', formatDevice(resolved, { ...extra, ...(properties.id === undefined ? { id: 'iommu0' } : {}) }));
    roots.push({ bus: 'pcie.0', devices: oneHost ? assigned.map((d) => d.bdf) : [], pxb: false });
  }
  const topo = topology(arch, roots);
  // pxb-pcie lines come out of topology() with their bus numbers; each vSMMU follows its root.
  const out: string[] = [...args];
  for (let i = 0; i < topo.args.length; i += 2) {
    out.push(topo.args[i], topo.args[i + 1]);
    const pxb = /^pxb-pcie,id=([^,]+),/.exec(topo.args[i + 1]);
    const root = pxb ? roots.find((r) => r.bus === pxb[1]) : undefined;
    if (root?.viommu) out.push('-device', root.viommu);
  }
  return { args: out, ports: topo.ports, errors: topo.errors };
}

// ---------------------------------------------------------------------------------------------
// libvirt
// ---------------------------------------------------------------------------------------------

function hostdevXml(bdf: string, indent: string): string {
  const p = parseBdf(bdf);
  if (!p) return '';
  const h = (n: number, w: number) => `0x${n.toString(16).padStart(w, '0')}`;
  return [
    `${indent}<hostdev mode='subsystem' type='pci' managed='yes'>`,
    `${indent}  <driver name='vfio' iommufd='yes'/>`,
    `${indent}  <source><address domain='${h(p.segment, 4)}' bus='${h(p.bus, 2)}' slot='${h(p.dev, 2)}' function='${h(p.fn, 1)}'/></source>`,
    `${indent}</hostdev>`,
  ].join('\n');
}

/** QEMU property types as <qemu:property type='…'> names them. */
function overrideType(v: unknown): { type: string; value: string } {
  if (typeof v === 'boolean') return { type: 'bool', value: v ? 'true' : 'false' };
  if (typeof v === 'number') return { type: 'unsigned', value: String(v) };
  return { type: 'string', value: String(v) };
}

/**
 * The libvirt domain fragment: <features> (split I/O APIC for interrupt remapping), the <iommu> element with
 * the attributes libvirt's schema has, each <hostdev> (iommufd backend), and every property libvirt cannot
 * express as a <qemu:override> of the vIOMMU device (alias iommu0), or, for several accelerated vSMMUs,
 * the whole vIOMMU part as <qemu:commandline>.
 */
export function emitLibvirt(spec: ViommuSpec, properties: ViommuProperties, instances: readonly ViommuInstance[], devices: readonly PlannedDevice[], qemuVsmmuArgs: readonly string[]): { xml: string; warnings: string[] } {
  const m = modelDef(spec.model);
  const attrs: string[] = [];
  const unsupported: Array<[string, unknown]> = [];
  for (const [name, value] of Object.entries(properties)) {
    if (name === 'id' || name === 'bus' || name === 'addr' || name === 'primary-bus') continue;
    const def = m.props[name];
    if (def?.libvirt && value !== 'auto') attrs.push(`${def.libvirt}='${xmlValue(value)}'`);
    else unsupported.push([name, value]);
  }
  const warnings: string[] = [];
  const lines: string[] = [`<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>`];
  if (properties.intremap === 'on') lines.push(`  <features><acpi/><ioapic driver='qemu'/></features>`);
  lines.push('  <devices>');
  const several = instances.length > 1;
  if (!several) {
    const driver = attrs.length ? `\n      <driver ${attrs.join(' ')}/>\n    ` : '';
    lines.push(driver ? `    <iommu model='${m.libvirtModel}'>${driver}</iommu>` : `    <iommu model='${m.libvirtModel}'/>`);
  }
  if (!several) for (const d of devices.filter((x) => x.mode !== 'refused')) lines.push(hostdevXml(d.bdf, '    '));
  lines.push('  </devices>');
  if (several) {
    lines.push('  <qemu:commandline>');
    for (const a of qemuVsmmuArgs) lines.push(`    <qemu:arg value='${xmlValue(a)}'/>`);
    lines.push('  </qemu:commandline>');
    warnings.push(
      `libvirt: one <iommu> element describes one vSMMU; the ${instances.length} accelerated vSMMUs (one per host SMMU), their pxb-pcie roots, root ports and vfio-pci devices are passed with <qemu:commandline>, so libvirt does not bind the devices: bind them to vfio-pci first (virsh nodedev-detach)`,
    );
  } else if (unsupported.length) {
    lines.push('  <qemu:override>', `    <qemu:device alias='iommu0'>`, '      <qemu:frontend>');
    for (const [name, value] of unsupported) {
      const t = overrideType(value);
      lines.push(`        <qemu:property name='${name}' type='${t.type}' value='${xmlValue(t.value)}'/>`);
    }
    lines.push('      </qemu:frontend>', '    </qemu:device>', '  </qemu:override>');
    warnings.push(
      `libvirt: <iommu model='${m.libvirtModel}'> has no attribute for ${unsupported.map(([n, v]) => `${n}=${qemuValue(v as never)}`).join(', ')}; they are set with <qemu:override> (libvirt 8.2.0 or newer; it taints the domain)`,
    );
  }
  lines.push('</domain>');
  return { xml: lines.join('\n'), warnings };
}

/** Joins options into one shell-safe line. */
export function joinArgs(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
