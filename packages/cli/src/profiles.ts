/**
 * Built-in host profiles for `ioasid plan <name>`: every vendor preset (real machines), plus two
 * hosts assembled from those presets' registers to show what the planner is for: one x86 host with
 * two VT-d units of different capability, and one Arm host with several different SMMUs. Which preset
 * is "strong" or "weak" is decided by decoding the registers with the vendor plugin, never by name.
 */
import type { DeviceProfile, HostProfile, UnitProfile } from '@ioasid/core';
import type { IommuVendor, NormalizedCaps } from '@ioasid/core/driver';

/** A host profile `ioasid plan` knows by name. */
export interface BuiltinProfile {

  /** What `ioasid plan <id>` accepts. */
  readonly id: string;
  /** The host profile itself. */
  readonly profile: HostProfile;
  /** Where it comes from: the vendor package, or "built from presets". */
  readonly source: string;
}

/** The preset host profiles one vendor package ships. */
export interface VendorPresets {
  /** The vendor id, e.g. 'vtd'. */
  readonly vendor: string;
  /** Its presets, as the package exports them. */
  readonly presets: readonly HostProfile[];
}


export function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/\([^)]*\)/g, ' ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/, '');
}

interface DecodedPresetUnit {
  unit: UnitProfile;
  caps: NormalizedCaps;
  from: string;
}

function decodeAll(vendor: IommuVendor | undefined, presets: readonly HostProfile[], skip: (p: HostProfile) => boolean = () => false): DecodedPresetUnit[] {
  if (!vendor) return [];
  const out: DecodedPresetUnit[] = [];
  const seen = new Set<string>();
  for (const p of presets) {
    if (skip(p)) continue;
    for (const u of p.units) {
      const key = JSON.stringify(u.registers);
      if (seen.has(key)) continue;
      const r = vendor.decodeRegisters(u.registers);
      if (!r.ok) continue;
      seen.add(key);
      out.push({ unit: u, caps: r.value.caps, from: p.name });
    }
  }
  return out;
}

function score(c: NormalizedCaps): number {
  const aw = c.hostStage ? Math.max(...c.hostStage.inputBits) : 0;
  return (c.nesting ? 1e6 : 0) + (c.userStage ? 1e5 : 0) + c.pasidBits * 1e3 + aw * 10 + (c.pri ? 5 : 0) + (c.ats ? 3 : 0);
}

const X86_MSI = [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }];
const ARM_MSI = [{ start: '0x8000000', last: '0x80fffff', type: 'msi' as const }];

/** A device that asks no more than its unit allows. */
function device(bdf: string, unit: string, group: number, caps: NormalizedCaps, want: { ats?: boolean; pri?: boolean; pasidBits?: number }, msi: DeviceProfile['reservedRegions']): DeviceProfile {
  const d: DeviceProfile = { bdf, unit, group, reservedRegions: msi };
  if (want.ats && caps.ats) d.ats = true;
  if (want.pri && caps.pri && caps.ats) d.pri = true;
  if (want.pasidBits && caps.pasidBits) d.pasidBits = Math.min(want.pasidBits, caps.pasidBits);
  return d;
}

function mixedVtd(vendor: IommuVendor | undefined, presets: readonly HostProfile[]): HostProfile | null {
  const units = decodeAll(vendor, presets, (p) => /qemu/i.test(p.name)).sort((a, b) => score(b.caps) - score(a.caps));
  if (units.length < 2) return null;
  const strong = units[0];
  const weak = units[units.length - 1];
  return {
    name: 'mixed VT-d host (two units of different capability)',
    description: `dmar0 has the registers of ${strong.from}, dmar1 those of ${weak.from}: one host, two kinds of DMAR unit`,
    units: [
      { id: 'dmar0', vendor: 'vtd', registers: strong.unit.registers },
      { id: 'dmar1', vendor: 'vtd', registers: weak.unit.registers },
    ],
    devices: [
      device('0000:6a:01.0', 'dmar0', 1, strong.caps, { ats: true, pri: true, pasidBits: 20 }, X86_MSI),
      device('0000:17:00.0', 'dmar0', 2, strong.caps, { ats: true }, X86_MSI),
      device('0000:00:02.0', 'dmar1', 3, weak.caps, { ats: true }, X86_MSI),
    ],
  };
}

function armMulti(vendor: IommuVendor | undefined, presets: readonly HostProfile[]): HostProfile | null {
  const units = decodeAll(vendor, presets, (p) => /qemu/i.test(p.name))
    .sort((a, b) => score(b.caps) - score(a.caps))
    .slice(0, 3);
  if (units.length < 2) return null;
  return {
    name: 'Arm host with several SMMUv3 (different implementations)',
    description: `one SMMU per PCIe root complex, registers of ${units.map((u) => u.from).join('; ')}`,
    units: units.map((u, i) => ({ id: `smmu${i}`, vendor: 'smmuv3', registers: u.unit.registers })),
    devices: units.map((u, i) =>
      device(`000${i}:01:00.0`, `smmu${i}`, i + 1, u.caps, i === 0 ? { ats: true, pri: true, pasidBits: 20 } : { ats: true }, ARM_MSI),
    ),
  };
}

/** The built-in profiles, from the presets each vendor package exports and the vendors to decode them. */
export function builtinProfiles(vendors: readonly IommuVendor[], sets: readonly VendorPresets[]): BuiltinProfile[] {
  const out: BuiltinProfile[] = [];
  const ids = new Set<string>();
  const add = (id: string, profile: HostProfile, source: string) => {
    let unique = id;
    for (let n = 2; ids.has(unique); n++) unique = `${id}-${n}`;
    ids.add(unique);
    out.push({ id: unique, profile, source });
  };
  const vendorOf = (id: string) => vendors.find((v) => v.id === id);
  for (const s of sets) for (const p of s.presets ?? []) add(`${s.vendor}-${slug(p.name)}`, p, `@ioasid/${s.vendor} presets`);
  const vtd = sets.find((s) => s.vendor === 'vtd');
  const mixed = vtd ? mixedVtd(vendorOf('vtd'), vtd.presets ?? []) : null;
  if (mixed) add('mixed-vtd', mixed, 'built from the VT-d presets');
  const arm = sets.find((s) => s.vendor === 'smmuv3');
  const multi = arm ? armMulti(vendorOf('smmuv3'), arm.presets ?? []) : null;
  if (multi) add('arm-multi-smmu', multi, 'built from the SMMUv3 presets');
  return out;
}

/** The presets of the vendor packages the CLI ships. */
export async function shippedPresets(): Promise<VendorPresets[]> {
  const [vtd, smmuv3, amd, virtio, riscv] = await Promise.all([import('@ioasid/vtd'), import('@ioasid/smmuv3'), import('@ioasid/amd-vi'), import('@ioasid/virtio-iommu'), import('@ioasid/riscv-iommu')]);
  return [
    { vendor: 'vtd', presets: vtd.presets ?? [] },
    { vendor: 'smmuv3', presets: smmuv3.presets ?? [] },
    { vendor: 'amd-vi', presets: amd.presets ?? [] },
    { vendor: 'virtio-iommu', presets: virtio.presets ?? [] },
    { vendor: 'riscv-iommu', presets: riscv.presets ?? [] },
  ];
}

/** Finds a built-in by id, or by a case-insensitive part of its id or name that only it has. */
export function findBuiltin(all: readonly BuiltinProfile[], name: string): BuiltinProfile | BuiltinProfile[] | undefined {
  const q = name.toLowerCase();
  const exact = all.find((b) => b.id === q);
  if (exact) return exact;
  const hits = all.filter((b) => b.id.includes(q) || b.profile.name.toLowerCase().includes(q));
  if (hits.length === 1) return hits[0];
  return hits.length ? hits : undefined;
}
