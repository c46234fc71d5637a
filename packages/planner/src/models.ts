/**
 * Reading and writing QEMU vIOMMU `-device` values against the model tables (models/registry.ts):
 * property names, types and values as QEMU defines them, and the QEMU release each needs.
 */
import { findModel, MODEL_DEFS } from './models/registry.js';
import type { ModelDef, PropDef, PropertyValue, QemuRequirement, ViommuModel, ViommuProperties, ViommuSpec } from './models/types.js';

export type { ViommuModel, PropertyValue, ViommuProperties, ViommuSpec, PropDef, ModelDef, QemuRequirement };

/** A vIOMMU input the planner cannot use (unknown model or property, bad value). */
export class PlanError extends Error {
  /** Always 'PlanError'. */
  override readonly name = 'PlanError';
}

/** Every registered model by id: its -device driver, libvirt model and property table. */
export const MODELS: Readonly<Record<string, ModelDef>> = Object.fromEntries(MODEL_DEFS.map((m) => [m.id, m]));

/** The model of an id, -device driver name or alias; throws PlanError listing the known models when there is none. */
export function modelDef(name: string): ModelDef {

  const m = findModel(name);
  if (!m) {
    const known = MODEL_DEFS.map((d) => (d.qemuDriver === d.id ? d.id : `${d.id} (${d.qemuDriver})`)).join(', ');
    throw new PlanError(`unknown vIOMMU model "${name}"; expected one of ${known}`);
  }
  return m;
}

export function modelOf(name: string): ViommuModel {
  return modelDef(name).id;
}

const TRUE = new Set(['on', 'true', 'yes', 'y']);
const FALSE = new Set(['off', 'false', 'no', 'n']);

function parseValue(model: ModelDef, name: string, def: PropDef, raw: PropertyValue): PropertyValue {
  const where = `${model.qemuDriver}.${name}`;
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
  const model = modelDef(spec.model);
  const properties: ViommuProperties = {};
  for (const [name, raw] of Object.entries(spec.properties ?? {})) {
    const def = model.props[name];
    if (!def) {
      const hint = model.unknownPropertyHint?.(name) ?? '';
      throw new PlanError(`Property '${model.qemuDriver}.${name}' not found${hint}; ${model.id} properties: ${Object.keys(model.props).join(', ')}`);
    }
    properties[name] = parseValue(model, name, def, raw);
  }
  return { model: model.id, properties };
}

/** QEMU's option list: comma-separated, ",," is a literal comma. */
export function splitOptions(s: string): string[] {
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
  return name in spec.properties ? spec.properties[name] : modelDef(spec.model).props[name]?.default;
}

export function qemuValue(v: PropertyValue): string {
  if (v === true) return 'on';
  if (v === false) return 'off';
  return String(v).replace(/,/g, ',,');
}

/** "intel-iommu,aw-bits=48,caching-mode=on", properties in the model's canonical order. */
export function formatDevice(spec: ViommuSpec, extra: Readonly<ViommuProperties> = {}): string {
  const m = modelDef(spec.model);
  const all: ViommuProperties = { ...extra, ...spec.properties };
  const order = Object.keys(m.props);
  const keys = Object.keys(all).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return [m.qemuDriver, ...keys.map((k) => `${k}=${qemuValue(all[k])}`)].join(',');
}

/** Compares QEMU releases "10.2" < "11.0". */
export function compareQemuVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The QEMU releases a configuration needs: the model's, each property set (with the release that
 * introduced it), and what the model adds (its requirements()). Sorted, newest first.
 */
export function qemuRequirements(spec: ViommuSpec, assigned: number): QemuRequirement[] {
  const m = modelDef(spec.model);
  const out: QemuRequirement[] = [{ version: m.since, why: `-device ${m.qemuDriver}` }];
  for (const name of Object.keys(spec.properties)) {
    const def = m.props[name];
    if (!def) continue;
    out.push({ version: def.since, why: `${m.qemuDriver} ${name}`, ...(def.approximate ? { approximate: true } : {}) });
  }
  out.push(...(m.requirements?.(spec, assigned) ?? []));
  if (assigned > 0) out.push({ version: '9.0', why: '-object iommufd and vfio-pci iommufd=' });
  return out.sort((a, b) => compareQemuVersions(b.version, a.version));
}

/** Properties set that a newer QEMU removed, with the release. */
export function removedProperties(spec: ViommuSpec): string[] {
  const m = modelDef(spec.model);
  return Object.keys(spec.properties)
    .filter((n) => m.props[n]?.removed)
    .map((n) => `${m.qemuDriver} ${n} was removed in QEMU ${m.props[n].removed}${m.props[n].approximate ? ' (release approximate)' : ''}: this configuration needs an older QEMU`);
}
