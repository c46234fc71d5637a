/**
 * The vIOMMU planner. Three policies, one checker:
 * - strict: the user names the model and properties; every device is checked as QEMU would.
 * - host: like `-cpu host`: candidate configurations copied from the host's units (the most capable
 *   one for what is emulated, the weakest unit behind a device for what the hardware must back) are
 *   evaluated with the strict checker; the plan that refuses fewest devices, then nests most, wins.
 * - baseline: like a CPU baseline: only what every unit behind a device (or every host of a fleet)
 *   supports, every property spelled out, nothing resolved from one host at start-up ('auto', granule=host).
 * A plan is therefore always one that `strict` accepts as it stands.
 */
import { parseBdf, type DeviceProfile, type HostProfile } from '@ioasid/core';
import type { IommuVendor } from '@ioasid/core/driver';
import { evaluate, type DeviceMode, type Evaluation, type FrozenState, type PlannedDevice, type ViommuInstance } from './checks.js';
import { emitLibvirt, emitQemu, joinArgs } from './emit.js';
import { capabilityScore, unitFacts, type DeviceFacts, type UnitFacts } from './facts.js';
import { normalizeSpec, parseViommu, PlanError, qemuRequirements, removedProperties, type PropertyValue, type QemuRequirement, type ViommuSpec } from './models.js';
import { MODEL_DEFS } from './models/registry.js';
import type { Candidate, CandidateContext, Policy } from './models/types.js';
import { validateProfile } from './profile.js';

export type { Policy };
/** Every policy, in the order `ioasid plan --policy` lists them. */
export const POLICIES: readonly Policy[] = ['strict', 'host', 'baseline'];

/** What {@link plan} plans for. */
export interface PlanInput {
  /** One host, or several forming a fleet (baseline). */
  readonly profiles: readonly HostProfile[];
  /** BDFs of the devices to assign; default (undefined): every device of every profile. An empty list is an error. */
  readonly devices?: readonly string[];
  /** How to choose the vIOMMU. */
  readonly policy: Policy;
  /** strict: the vIOMMU, as a QEMU -device value or a spec. */
  readonly viommu?:
    | string
    | {
        /** Model id, -device driver name or alias, e.g. 'intel-iommu'. */
        model: string;
        /** QEMU properties; values are checked and normalized as on the command line. */
        properties?: Readonly<Record<string, PropertyValue>>;
      };
  /** The registered vendors (PluginHost.vendors()). */
  readonly vendors: readonly IommuVendor[];
}

/** The vIOMMU a plan chose: model, properties and, for arm-smmuv3 accel, its vSMMU instances. */
export interface PlanViommu extends ViommuSpec {
  /** arm-smmuv3 accel=on: one vSMMU per host SMMU. */
  readonly instances?: readonly ViommuInstance[];
}

/** A vIOMMU plan: the configuration, each device's verdict, and the QEMU and libvirt text to start the VM with it. */
export interface Plan {
  /** The policy that made it. */
  readonly policy: Policy;
  /** Names of the host profiles planned for (duplicates numbered). */
  readonly hosts: readonly string[];
  /** The chosen vIOMMU. */
  readonly viommu: PlanViommu;
  /** One verdict per assigned device. */
  readonly devices: readonly PlannedDevice[];
  /** The QEMU options as one line, and as an argument list. */
  readonly qemu: string;
  /** The same QEMU options, one argument per element (no shell quoting needed). */
  readonly qemuArgs: readonly string[];
  /** A libvirt domain XML fragment with the `<iommu>` element (and `<qemu:arg>` lines for what libvirt cannot say). */

  readonly libvirt: string;
  /** Notes: why candidates were rejected, slow paths, regions the guest cannot see. */
  readonly warnings: readonly string[];
  /** QEMU would refuse the configuration itself: the VM does not start. */
  readonly errors: readonly string[];
  /** No error and no refused device. */
  readonly ok: boolean;
  /** What hot-plugged devices must fit (checkHotplug). */
  readonly frozen: FrozenState;
  /** The oldest QEMU that takes this configuration, and every reason (newest first). */
  readonly qemuVersion: {
    /** The newest of the requirements' releases, e.g. '10.1'. */
    readonly minimum: string;
    /** That release is inferred, not read from a QEMU tag. */
    readonly approximate: boolean;
    /** Every requirement, newest first. */
    readonly requirements: readonly QemuRequirement[];
  };
}

export type { DeviceMode, PlannedDevice, ViommuInstance, FrozenState };

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

interface Context {
  hosts: HostProfile[];
  names: string[];
  units: UnitFacts[];
  devices: DeviceFacts[];
  /** The user named the devices (--devices): only their units limit the plan. */
  named: boolean;
  warnings: string[];
  arch: 'x86' | 'arm';
}

function hostNames(profiles: readonly HostProfile[]): string[] {
  const seen = new Map<string, number>();
  return profiles.map((p) => {
    const n = (seen.get(p.name) ?? 0) + 1;
    seen.set(p.name, n);
    return n > 1 ? `${p.name}#${n}` : p.name;
  });
}

function buildContext(input: PlanInput): Context {
  if (input.profiles.length === 0) throw new PlanError('no host profile: give at least one');
  const names = hostNames(input.profiles);
  const multi = input.profiles.length > 1;
  const units: UnitFacts[] = [];
  const all: DeviceFacts[] = [];
  input.profiles.forEach((p, i) => {
    const checked = validateProfile(p, { vendors: input.vendors, file: names[i] });
    if (!checked.profile.units.length) {
      throw new PlanError(`"${names[i]}" has no IOMMU unit: there is nothing to back a vIOMMU with (probe the host again with the IOMMU enabled, or drop the profile)`);
    }
    const byId = new Map<string, UnitFacts>();
    const perVendor = new Map<string, number>();
    for (const u of checked.profile.units) {
      const index = perVendor.get(u.vendor) ?? 0;
      perVendor.set(u.vendor, index + 1);
      const f = unitFacts(names[i], u.id, checked.units.get(u.id)!, multi, index);
      byId.set(u.id, f);
      units.push(f);
    }
    for (const d of checked.profile.devices) {
      const bdf = d.bdf.toLowerCase();
      all.push({ host: names[i], bdf, label: multi ? `${names[i]}/${bdf}` : bdf, profile: d, unit: byId.get(d.unit)!, hostProfile: checked.profile });
    }
  });
  const warnings: string[] = [];
  let devices = all;
  if (input.devices && !input.devices.length) {
    throw new PlanError('no device named: --devices needs at least one PCI address (leave it out to assign every device of the profiles)');
  }
  if (input.devices) {
    devices = [];
    for (const raw of input.devices) {
      const bdf = normalizeBdf(raw);
      const found = all.filter((d) => d.bdf === bdf);
      if (!found.length) {
        const known = [...new Set(all.map((d) => d.bdf))];
        throw new PlanError(`device ${raw} is not in ${multi ? 'any of the profiles' : `"${names[0]}"`}; known devices: ${known.join(', ') || '(none)'}`);
      }
      if (multi && found.length < input.profiles.length) {
        const missing = names.filter((n) => !found.some((d) => d.host === n));
        warnings.push(`${bdf} is missing on ${missing.join(', ')}: the VM cannot run (or migrate) there with this device`);
      }
      for (const d of found) if (!devices.includes(d)) devices.push(d);
    }
  }
  // VFIO assigns whole IOMMU groups.
  for (const d of devices) {
    if (d.profile.group === undefined) continue;
    const mates = all.filter((o) => o.host === d.host && o !== d && o.profile.group === d.profile.group && !devices.includes(o));
    if (mates.length) {
      warnings.push(`${d.label}: IOMMU group ${d.profile.group} also holds ${mates.map((m) => m.bdf).join(', ')}; VFIO needs the whole group bound to vfio-pci (and attached to the same HWPT)`);
    }
  }
  const named = input.devices !== undefined;
  const considered = named ? [...new Set(devices.map((d) => d.unit))] : units;
  const arches = new Set(considered.map((u) => u.arch).filter((a) => a === 'x86' || a === 'arm'));
  if (arches.size > 1) {
    throw new PlanError(`the hosts mix x86 and Arm IOMMUs (${considered.map((u) => `${u.label}: ${u.vendor}`).join(', ')}); a VM runs on one architecture: plan them separately`);
  }
  const arch = arches.has('arm') ? 'arm' : 'x86';
  return { hosts: input.profiles.map((p) => p), names, units, devices, named, warnings, arch };
}

function normalizeBdf(raw: string): string {
  const s = raw.trim().toLowerCase();
  const full = /^[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/.test(s) ? `0000:${s}` : s;
  if (!parseBdf(full)) throw new PlanError(`"${raw}" is not a PCI address; expected segment:bus:device.function such as 0000:00:02.0`);
  return full;
}

// ---------------------------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------------------------

/**
 * The units whose capabilities limit the plan. Under the baseline policy that is every unit of every
 * host unless the user named devices: a baseline stands for any device the fleet may assign later.
 * Under the host policy, the units behind the assigned devices (all units when there are none).
 */
function limitingUnits(ctx: Context, policy: Policy): UnitFacts[] {
  if (ctx.named || (policy === 'host' && ctx.devices.length)) return [...new Set(ctx.devices.map((d) => d.unit))];
  return ctx.units;
}

/** Every registered model's candidates: the native model of the units first, then the others (virtio-iommu, native only to virtio-iommu hosts, last). */
function candidates(ctx: Context, policy: Exclude<Policy, 'strict'>): Candidate[] {
  const units = limitingUnits(ctx, policy);
  const best = [...units].sort((a, b) => capabilityScore(b) - capabilityScore(a))[0];
  const cctx: CandidateContext = { policy, arch: ctx.arch, units, best, devices: ctx.devices, hosts: ctx.hosts, hostNames: ctx.names, warnings: ctx.warnings };
  const vendors = new Set(units.map((u) => u.vendor));
  const rank = (m: (typeof MODEL_DEFS)[number]) => (m.nativeVendors.some((v) => vendors.has(v)) ? 0 : m.nativeVendors.length ? 1 : 2);
  const models = [...MODEL_DEFS].filter((m) => m.arch === 'any' || m.arch === ctx.arch).sort((a, b) => rank(a) - rank(b));
  return models.flatMap((m) => (best ? (m.candidates?.(cctx) ?? []) : []));
}

// ---------------------------------------------------------------------------------------------
// Evaluation and choice
// ---------------------------------------------------------------------------------------------

function run(ctx: Context, c: Candidate): Evaluation {
  if (!c.perUnit) return evaluate(c.spec, ctx.devices, { arch: ctx.arch });
  // Host policy, arm-smmuv3: each vSMMU copies its own host SMMU. Evaluate per unit, merge.
  const devices: PlannedDevice[] = [];
  const instances: ViommuInstance[] = [];
  const warnings = new Set<string>();
  const errors: string[] = [];
  for (const [key, props] of c.perUnit) {
    const group = ctx.devices.filter((d) => `${d.unit.host}\u0000${d.unit.id}` === key);
    if (!group.length) continue;
    const ev = evaluate({ model: c.spec.model, properties: { ...c.spec.properties, ...props } }, group, { arch: ctx.arch });
    for (const inst of ev.instances) instances.push({ ...inst, properties: { ...props, ...inst.properties } });
    devices.push(...ev.devices);
    ev.warnings.forEach((w) => warnings.add(w));
    errors.push(...ev.errors);
  }
  const order = new Map(ctx.devices.map((d, i) => [`${d.host}\u0000${d.bdf}`, i]));
  devices.sort((a, b) => order.get(`${a.host}\u0000${a.bdf}`)! - order.get(`${b.host}\u0000${b.bdf}`)!);
  for (const w of [...warnings]) if (/^accel=on: \d+ vSMMUs/.test(w)) warnings.delete(w);
  if (instances.length > 1) warnings.add(`accel=on: ${instances.length} vSMMUs, one per host SMMU, each on its own pxb-pcie root; put every device on the root of its host SMMU`);
  return { devices, errors, warnings: [...warnings], instances, resolved: {}, frozen: { model: c.spec.model, properties: { ...c.spec.properties }, instances } };
}

function count(ev: Evaluation, mode: DeviceMode): number {
  return ev.devices.filter((d) => d.mode === mode).length;
}

/** Fewest refusals, then most nesting; ties keep the candidate order (native model first). */
function better(a: Evaluation, b: Evaluation): boolean {
  if (a.errors.length !== b.errors.length) return a.errors.length < b.errors.length;
  const ra = count(a, 'refused');
  const rb = count(b, 'refused');
  if (ra !== rb) return ra < rb;
  return count(a, 'nested') > count(b, 'nested');
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

const VENDORS = new WeakMap<Plan, readonly IommuVendor[]>();

function finish(policy: Policy, ctx: Context, spec: ViommuSpec, ev: Evaluation, extraWarnings: string[]): Plan {
  const properties = { ...spec.properties, ...ev.resolved };
  const oneHost = ctx.hosts.length === 1;
  const line = emitQemu(spec, properties, ev.devices, ev.instances, oneHost, ctx.arch);
  const qemuArgs = line.args;
  const vsmmuArgs = qemuArgs.slice(2);
  const lv = emitLibvirt(spec, properties, ev.instances, oneHost ? ev.devices : [], vsmmuArgs);
  const warnings = [...ctx.warnings, ...extraWarnings, ...ev.warnings, ...lv.warnings, ...removedProperties({ model: spec.model, properties })];
  const errors = [...ev.errors, ...line.errors];
  const assigned = ev.devices.filter((d) => d.mode !== 'refused').length;
  const requirements = qemuRequirements({ model: spec.model, properties }, assigned);
  if (!oneHost && ev.devices.some((d) => d.mode !== 'refused')) warnings.push('several hosts: the vfio-pci options are per host and left out of the QEMU line');
  const viommu: PlanViommu = ev.instances.length ? { model: spec.model, properties, instances: ev.instances } : { model: spec.model, properties };
  const p: Plan = {
    policy,
    hosts: hostNames(ctx.hosts),
    viommu,
    devices: ev.devices,
    qemu: joinArgs(qemuArgs),
    qemuArgs,
    libvirt: lv.xml,
    warnings: [...new Set(warnings)],
    errors,
    ok: errors.length === 0 && ev.devices.every((d) => d.mode !== 'refused'),
    frozen: { ...ev.frozen, properties: { ...ev.frozen.properties, ...ev.resolved } },
    qemuVersion: { minimum: requirements[0].version, approximate: requirements[0].approximate === true, requirements },
  };
  return p;
}

function firstRefusal(ev: Evaluation): string {
  const d = ev.devices.find((x) => x.mode === 'refused');
  return d ? `${d.bdf}: ${d.reasons[0]}` : (ev.errors[0] ?? '');
}

/** Plans the vIOMMU for a VM; throws PlanError (bad input) or ProfileError (bad profile). */
export function plan(input: PlanInput): Plan {
  if (!POLICIES.includes(input.policy)) throw new PlanError(`unknown policy "${String(input.policy)}"; expected strict, host or baseline`);
  const ctx = buildContext(input);
  let result: Plan;
  if (input.policy === 'strict') {
    if (!input.viommu) throw new PlanError('the strict policy checks a vIOMMU you name: give one, e.g. "intel-iommu,aw-bits=48,caching-mode=on"');
    const spec = typeof input.viommu === 'string' ? parseViommu(input.viommu) : normalizeSpec(input.viommu);
    result = finish('strict', ctx, spec, evaluate(spec, ctx.devices, { arch: ctx.arch }), []);
  } else {
    if (input.viommu) throw new PlanError(`--viommu names the vIOMMU for the strict policy; the ${input.policy} policy chooses one itself`);
    if (input.policy === 'host' && input.profiles.length > 1) {
      throw new PlanError(`the host policy copies one host (${input.profiles.length} profiles given); use --policy baseline to plan a fleet`);
    }
    const cands = candidates(ctx, input.policy);
    if (!cands.length) throw new PlanError(`no vIOMMU model fits these units (${ctx.units.map((u) => `${u.label}: ${u.vendor}`).join(', ')})`);
    const evs = cands.map((c) => run(ctx, c));
    let bestI = 0;
    for (let i = 1; i < evs.length; i++) if (better(evs[i], evs[bestI])) bestI = i;
    const chosen = cands[bestI];
    const notes: string[] = [];
    const units = limitingUnits(ctx, input.policy);
    if (input.policy === 'host' && units.length) {
      const best = [...units].sort((a, b) => capabilityScore(b) - capabilityScore(a))[0];
      notes.push(`host policy: the most capable unit is ${best.label} (${best.hwId}); what hardware must back is limited by the unit behind each device`);
    }
    if (input.policy === 'baseline') {
      notes.push(`baseline policy: only what all ${units.length} unit(s)${ctx.hosts.length > 1 ? ` of ${ctx.hosts.length} hosts` : ''} support, every property explicit (QEMU defaults change between versions)`);
      if (ctx.devices.length) notes.push('migration: the vIOMMU no longer depends on one host, but QEMU may still block live migration of VFIO devices behind a vIOMMU');
    }
    evs.forEach((ev, i) => {
      if (i === bestI) return;
      if (count(ev, 'nested') > count(evs[bestI], 'nested') || (i < bestI && ev.errors.length === 0)) {
        notes.push(`${input.policy} policy: not ${cands[i].label}: it would refuse ${count(ev, 'refused')} device(s) (${firstRefusal(ev)})`);
      }
    });
    const spec = chosen.perUnit ? { model: chosen.spec.model, properties: chosen.spec.properties } : chosen.spec;
    result = finish(input.policy, ctx, spec, evs[bestI], notes);
  }
  VENDORS.set(result, input.vendors);
  return result;
}

/** What {@link checkHotplug} says about one device. */
export interface HotplugResult {
  /** The device fits the running guest's vIOMMU. */
  readonly ok: boolean;
  /** Its verdict, with the reasons. */
  readonly device: PlannedDevice;
}


/**
 * Whether a device hot-plugged after the guest started still fits the frozen vIOMMU: the same checks
 * as at cold plug, plus what QEMU froze at boot (smmuv3 'auto' values and vSMMU instances,
 * virtio-iommu granule and reserved ranges).
 */
export function checkHotplug(frozenPlan: Plan, newDevice: string | DeviceProfile, profile: HostProfile, vendors?: readonly IommuVendor[]): HotplugResult {
  const vs = vendors ?? VENDORS.get(frozenPlan);
  if (!vs) throw new PlanError('checkHotplug needs the vendors (pass PluginHost.vendors()) for a plan that was not made in this process');
  const bdf = typeof newDevice === 'string' ? normalizeBdf(newDevice) : normalizeBdf(newDevice.bdf);
  const withDevice: HostProfile =
    typeof newDevice === 'string' || profile.devices.some((d) => d.bdf.toLowerCase() === bdf) ? profile : { ...profile, devices: [...profile.devices, newDevice] };
  const ctx = buildContext({ profiles: [withDevice], devices: [bdf], policy: 'strict', vendors: vs });
  const frozen = frozenPlan.frozen;
  const spec: ViommuSpec = { model: frozen.model, properties: frozen.properties };
  const dev = ctx.devices[0];
  // The frozen instances belong to the host the plan was made for.
  const host = frozenPlan.hosts.length === 1 ? frozenPlan.hosts[0] : dev.host;
  const instances = frozen.instances.map((i) => ({ ...i, host: i.host === host ? dev.host : i.host }));
  const ev = evaluate(spec, [dev], { arch: ctx.arch, frozen: { ...frozen, instances } });
  const device = ev.devices[0];
  return { ok: device.mode !== 'refused', device };
}
