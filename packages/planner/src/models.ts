/**
 * The QEMU vIOMMU models the planner knows: their properties (QEMU's names and defaults), how to read
 * a `-device` value, and how to write one back.
 */

export type ViommuModel = 'intel-iommu' | 'arm-smmuv3' | 'virtio-iommu' | 'amd-iommu';
export type PropertyValue = string | number | boolean;
export type ViommuProperties = Record<string, PropertyValue>;

export interface ViommuSpec {
  readonly model: ViommuModel;
  /** QEMU property names; booleans print as on/off, 'auto' stays a string. */
  readonly properties: Readonly<ViommuProperties>;
}

/** A vIOMMU input the planner cannot use (unknown model or property, bad value). */
export class PlanError extends Error {
  override readonly name = 'PlanError';
}

type PropType = 'bool' | 'uint' | 'onoffauto' | 'string';

export interface PropDef {
  readonly type: PropType;
  /** QEMU's default (for the newest QEMU the fact sheet covers). */
  readonly default?: PropertyValue;
  /** Accepted values for strings / numbers with a fixed set. */
  readonly values?: readonly PropertyValue[];
  /** 'auto' is accepted besides the type (smmuv3 accel properties). */
  readonly auto?: boolean;
  /** The libvirt <driver> attribute, when libvirt's schema has one. */
  readonly libvirt?: string;
  readonly help: string;
}

/** Generic -device options every model takes. */
const DEVICE_OPTIONS: Record<string, PropDef> = {
  id: { type: 'string', help: 'the device id' },
  bus: { type: 'string', help: 'the bus the device sits on' },
  addr: { type: 'string', help: 'the PCI slot of the device' },
};

export const MODELS: Readonly<Record<ViommuModel, { qemuDriver: string; libvirtModel: string; props: Record<string, PropDef> }>> = {
  'intel-iommu': {
    qemuDriver: 'intel-iommu',
    libvirtModel: 'intel',
    props: {
      'aw-bits': { type: 'uint', default: 48, libvirt: 'aw_bits', help: 'guest IOVA width: 39 or 48 (48 only with x-flts); the default was 39 before QEMU 9.2' },
      'caching-mode': { type: 'bool', default: false, libvirt: 'caching_mode', help: 'CAP.CM: the guest flushes on map, which lets QEMU shadow its tables for assigned devices' },
      'x-scalable-mode': { type: 'bool', default: false, help: 'scalable-mode translation (ECAP.SMTS)' },
      'x-flts': { type: 'bool', default: false, help: 'first-stage translation for the guest; assigned devices then need hardware nesting' },
      'x-pasid-mode': { type: 'bool', default: false, help: 'PASID support for the guest (needs scalable mode)' },
      pasid: { type: 'bool', default: false, help: 'PASID support (newer name of x-pasid-mode)' },
      'dma-drain': { type: 'bool', default: true, help: 'DMA read/write draining; scalable mode needs it' },
      'device-iotlb': { type: 'bool', default: false, libvirt: 'iotlb', help: 'ECAP.DT: device-TLB (ATS) for the guest' },
      intremap: { type: 'onoffauto', default: 'auto', libvirt: 'intremap', help: 'interrupt remapping (needs kernel-irqchip=split)' },
      eim: { type: 'onoffauto', default: 'auto', libvirt: 'eim', help: 'extended interrupt mode (x2APIC); needs intremap' },
      'dma-translation': { type: 'bool', default: true, help: 'DMA translation; off leaves only interrupt remapping' },
      'snoop-control': { type: 'bool', default: false, help: 'ECAP.SC: snoop control' },
      fs1gp: { type: 'bool', default: true, help: 'first-stage 1 GiB pages (CAP.FS1GP) with x-flts' },
      ...DEVICE_OPTIONS,
    },
  },
  'arm-smmuv3': {
    qemuDriver: 'arm-smmuv3',
    libvirtModel: 'smmuv3',
    props: {
      accel: { type: 'bool', default: false, help: 'back the vSMMU with the host SMMUv3 (iommufd nesting, one vSMMU per host SMMU)' },
      stage: { type: 'string', default: '1', values: ['1', '2', 'nested'], help: 'translation stages the vSMMU implements' },
      ril: { type: 'bool', default: true, auto: true, help: 'IDR3.RIL range invalidation' },
      ats: { type: 'bool', default: false, auto: true, help: 'IDR0.ATS address translation services' },
      oas: { type: 'uint', default: 44, values: [44, 48], help: 'IDR5.OAS output address size, 44 or 48 bits' },
      ssidsize: { type: 'uint', default: 0, auto: true, help: 'IDR1.SSIDSIZE SubstreamID (PASID) bits, 0 to 20' },
      'primary-bus': { type: 'string', help: 'the PCIe root (pcie.0 or a pxb-pcie) the vSMMU translates for' },
      ...DEVICE_OPTIONS,
    },
  },
  'virtio-iommu': {
    qemuDriver: 'virtio-iommu-pci',
    libvirtModel: 'virtio',
    props: {
      granule: { type: 'string', default: '4k', values: ['4k', '8k', '16k', '64k', 'host'], help: 'the page_size_mask granule' },
      'aw-bits': { type: 'uint', help: 'input range width, 32 to 64; machine default 39 on q35, 48 on virt' },
      'boot-bypass': { type: 'bool', default: true, help: 'DMA bypasses translation until the guest driver attaches' },
      ...DEVICE_OPTIONS,
    },
  },
  'amd-iommu': {
    qemuDriver: 'amd-iommu',
    libvirtModel: 'amd',
    props: {
      'dma-remap': { type: 'bool', default: false, help: 'DMA remapping for assigned devices through MAP notifiers' },
      intremap: { type: 'onoffauto', default: 'auto', libvirt: 'intremap', help: 'interrupt remapping' },
      xtsup: { type: 'bool', default: false, help: 'x2APIC (XT) support' },
      'device-iotlb': { type: 'bool', default: false, libvirt: 'iotlb', help: 'device-TLB (ATS) for the guest' },
      pt: { type: 'bool', default: true, help: 'pass-through mode' },
      ...DEVICE_OPTIONS,
    },
  },
};

const MODEL_ALIASES: Record<string, ViommuModel> = {
  'intel-iommu': 'intel-iommu',
  intel: 'intel-iommu',
  'arm-smmuv3': 'arm-smmuv3',
  smmuv3: 'arm-smmuv3',
  'virtio-iommu': 'virtio-iommu',
  'virtio-iommu-pci': 'virtio-iommu',
  virtio: 'virtio-iommu',
  'amd-iommu': 'amd-iommu',
  amd: 'amd-iommu',
};

export function modelOf(name: string): ViommuModel {
  const m = MODEL_ALIASES[name.trim().toLowerCase()];
  if (!m) throw new PlanError(`unknown vIOMMU model "${name}"; expected one of intel-iommu, arm-smmuv3, virtio-iommu (virtio-iommu-pci), amd-iommu`);
  return m;
}

const TRUE = new Set(['on', 'true', 'yes', 'y']);
const FALSE = new Set(['off', 'false', 'no', 'n']);

function parseValue(model: ViommuModel, name: string, def: PropDef, raw: PropertyValue): PropertyValue {
  const where = `${MODELS[model].qemuDriver}.${name}`;
  const s = String(raw).trim().toLowerCase();
  if (def.auto && s === 'auto') return 'auto';
  switch (def.type) {
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (TRUE.has(s)) return true;
      if (FALSE.has(s)) return false;
      throw new PlanError(`Parameter '${where}' expects 'on' or 'off'${def.auto ? " or 'auto'" : ''}, got "${raw}"`);
    case 'onoffauto':
      if (raw === true || TRUE.has(s)) return 'on';
      if (raw === false || FALSE.has(s)) return 'off';
      if (s === 'auto') return 'auto';
      throw new PlanError(`Parameter '${where}' expects 'on', 'off' or 'auto', got "${raw}"`);
    case 'uint': {
      const n = typeof raw === 'number' ? raw : /^0x[0-9a-f]+$/.test(s) ? parseInt(s, 16) : /^\d+$/.test(s) ? Number(s) : NaN;
      if (!Number.isSafeInteger(n) || n < 0) throw new PlanError(`Parameter '${where}' expects a non-negative number, got "${raw}"`);
      if (def.values && !def.values.includes(n)) throw new PlanError(`Parameter '${where}' expects one of ${def.values.join(', ')}, got ${n}`);
      return n;
    }
    case 'string': {
      const v = String(raw).trim();
      if (def.values && !def.values.includes(v.toLowerCase())) {
        throw new PlanError(`Parameter '${where}' expects one of ${def.values.join(', ')}, got "${raw}"`);
      }
      return def.values ? v.toLowerCase() : v;
    }
  }
}

/** Checks names and values against the model; returns normalized values (booleans, numbers, 'auto'). */
export function normalizeSpec(spec: { model: string; properties?: Readonly<Record<string, PropertyValue>> }): ViommuSpec {
  const model = modelOf(spec.model);
  const defs = MODELS[model].props;
  const properties: ViommuProperties = {};
  for (const [name, raw] of Object.entries(spec.properties ?? {})) {
    const def = defs[name];
    if (!def) {
      const hint = model === 'arm-smmuv3' && name === 'pasid' ? ' (the vSMMU PASID width is ssidsize=N)' : '';
      throw new PlanError(`Property '${MODELS[model].qemuDriver}.${name}' not found${hint}; ${model} properties: ${Object.keys(defs).join(', ')}`);
    }
    properties[name] = parseValue(model, name, def, raw);
  }
  return { model, properties };
}

/** QEMU's option list: comma-separated, ",," is a literal comma. */
function splitOptions(s: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== ',') cur += s[i];
    else if (s[i + 1] === ',') {
      cur += ',';
      i++;
    } else {
      parts.push(cur);
      cur = '';
    }
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * Reads a QEMU `-device` value: "intel-iommu,aw-bits=48,caching-mode=on", with or without a leading
 * "-device", "driver=" or "--device", and QEMU's ",," for a literal comma.
 */
export function parseViommu(text: string): ViommuSpec {
  const s = text.trim().replace(/^--?device[\s=]+/, '');
  if (!s) throw new PlanError('empty --viommu; expected a QEMU -device value such as "intel-iommu,aw-bits=48,caching-mode=on"');
  const parts = splitOptions(s);
  let model: string | undefined;
  const properties: ViommuProperties = {};
  for (const [i, part] of parts.entries()) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (i === 0) {
        model = part;
        continue;
      }
      // QEMU reads a bare "name" as name=on.
      properties[part] = true;
      continue;
    }
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'driver') model = value;
    else properties[key] = value;
  }
  if (!model) throw new PlanError(`no model in "${text}"; start with the device name, e.g. "virtio-iommu-pci,granule=4k"`);
  return normalizeSpec({ model, properties });
}

/** The value QEMU would use: given or default. */
export function effective(spec: ViommuSpec, name: string): PropertyValue | undefined {
  return name in spec.properties ? spec.properties[name] : MODELS[spec.model].props[name]?.default;
}

export function isOn(v: PropertyValue | undefined): boolean {
  return v === true || v === 'on';
}

export function qemuValue(v: PropertyValue): string {
  if (v === true) return 'on';
  if (v === false) return 'off';
  return String(v).replace(/,/g, ',,');
}

/** "intel-iommu,aw-bits=48,caching-mode=on", properties in the model's canonical order. */
export function formatDevice(spec: ViommuSpec, extra: Readonly<ViommuProperties> = {}): string {
  const all: ViommuProperties = { ...extra, ...spec.properties };
  const order = Object.keys(MODELS[spec.model].props);
  const keys = Object.keys(all).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return [MODELS[spec.model].qemuDriver, ...keys.map((k) => `${k}=${qemuValue(all[k])}`)].join(',');
}
