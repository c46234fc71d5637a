/**
 * `ioasid probe --sysfs [root]`: a host profile from what Linux exposes on the host itself, read through a
 * SysfsReader (a live `/`, a directory or archive captured with `ioasid capture`):
 *
 * - /sys/class/iommu/<unit>/: the units; VT-d `intel-iommu/{version,cap,ecap,address}`, AMD
 *   `amd-iommu/{cap,features}` (each vendor's `sysfs` entry says which files), and `devices/`, the devices
 *   the kernel placed behind the unit. SMMUv3 units (`smmu3.0x…`) have no attributes: their ID registers come
 *   from IOMMU_GET_HW_INFO output (hw-info.txt) or from the boot log (dmesg.txt), which leaves fields unknown.
 * - /sys/kernel/iommu_groups/<n>/{devices/,reserved_regions,type}: groups and reserved regions.
 * - /sys/bus/pci/devices/<bdf>/config: ATS, PRI and PASID (readable past 64 bytes by root only).
 */
import { parseBdf, type DeviceProfile, type HostProfile, type ReservedRegionProfile, type UnitProfile } from '@ioasid/core';
import type { IommuVendor, NormalizedCaps, RawRegisters } from '@ioasid/core/driver';
import { readIommuCaps } from './pci-config.js';
import { probeDmesg } from './probe.js';
import { PLANNER_VENDORS } from './vendors/registry.js';
import type { PlannerVendor } from './vendors/types.js';

/** Read access to a host's files, relative to its root ("sys/class/iommu"); null when absent or unreadable. */
export interface SysfsReader {
  /** The names in directory `path` (readdir, without . and ..). */
  list(path: string): string[] | null;
  /** The file's content as UTF-8 text. */
  readText(path: string): string | null;
  /** The file's raw bytes (PCI config space). */
  readBytes(path: string): Uint8Array | null;
  /** The target of a symbolic link as readlink(2) gives it; null when the path is not a link. */
  readlink(path: string): string | null;
}

/** Options of {@link probeSysfs}. */
export interface SysfsProbeOptions {
  /** The profile's name. */
  readonly name?: string;
  /** A boot log of the same boot (dmesg.txt of a capture is read when this is absent). */
  readonly dmesg?: string;
  /** IOMMU_GET_HW_INFO output lines (hw-info.txt of a capture is read when this is absent). */
  readonly hwInfo?: string;
}

/** One /sys/class/iommu entry as the probe read it. */
export interface SysfsUnit {
  /** The class entry's name, e.g. 'dmar0', 'ivhd0', 'smmu3.0x0000000009050000'. */
  readonly id: string;
  /** Id of the vendor that recognised it. */
  readonly vendor: string;
  /** The registers read, in a host profile's shape; absent when none could be read. */
  readonly registers?: RawRegisters;
  /** Where the registers came from: sysfs, hw-info (IOMMU_GET_HW_INFO), dmesg. */
  readonly source?: 'sysfs' | 'hw-info' | 'dmesg';
  /** The decoded capabilities, when the registers decode. */
  readonly caps?: NormalizedCaps;
  /** The vendor's one-line hardware id, when the registers decode. */
  readonly hwId?: string;
  /** Why the unit is not in the profile (no registers, or they do not decode). */
  readonly error?: string;
  /** BDFs the kernel lists under the unit's devices/ directory. */
  readonly devices: readonly string[];
}

/** What {@link probeSysfs} read. */
export interface SysfsProbeResult {
  /** Units with usable registers and their devices, groups and reserved regions. */
  readonly profile: HostProfile;
  /** Every unit found, the unusable ones included (with `error`). */
  readonly units: readonly SysfsUnit[];
  /** What was missing or could not be read, and what it means for the profile. */
  readonly warnings: readonly string[];
  /** The files read, for `ioasid capture`'s manifest and --verbose. */
  readonly read: readonly string[];
}

const CLASS = 'sys/class/iommu';
const GROUPS = 'sys/kernel/iommu_groups';
const PCI = 'sys/bus/pci/devices';

/** One IOMMU_GET_HW_INFO result: `iommu_hw_info <bdf> type=<n> capabilities=0x… max_pasid_log2=<n> data=<hex>`. */
export interface HwInfoLine {
  /** The device queried, lower case. */
  readonly bdf: string;
  /** `out_data_type`: IOMMU_HW_INFO_TYPE_* of `data`. */
  readonly type: number;
  /** `out_capabilities`: IOMMU_HW_CAP_* bits. */
  readonly capabilities: bigint;
  /** `out_max_pasid_log2`. */
  readonly maxPasidLog2: number;
  /** The vendor's info struct bytes (at most 256). */
  readonly data: Uint8Array;
}

const HW_INFO = /^iommu_hw_info ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) type=(\d+) capabilities=0x([0-9a-f]+) max_pasid_log2=(\d+) data=([0-9a-f]*)$/i;

/** Reads hw-info text: one HwInfoLine per line; blank and `#` lines are skipped, malformed ones reported. */
export function parseHwInfo(text: string): {
  /** The lines that parsed, in order. */
  lines: HwInfoLine[];
  /** One message per malformed line, with its line number. */
  errors: string[];
} {
  const lines: HwInfoLine[] = [];
  const errors: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return;
    const m = HW_INFO.exec(t);
    if (!m || m[5].length % 2 !== 0 || m[5].length > 512) {
      errors.push(`hw-info line ${i + 1}: expected "iommu_hw_info <bdf> type=<n> capabilities=0x<hex> max_pasid_log2=<n> data=<hex bytes>", got ${JSON.stringify(t.slice(0, 80))}`);
      return;
    }
    const data = new Uint8Array(m[5].length / 2);
    for (let j = 0; j < data.length; j++) data[j] = Number.parseInt(m[5].slice(2 * j, 2 * j + 2), 16);
    lines.push({ bdf: m[1].toLowerCase(), type: Number(m[2]), capabilities: BigInt(`0x${m[3]}`), maxPasidLog2: Number(m[4]), data });
  });
  return { lines, errors };
}

/** "0x%016llx 0x%016llx %s" lines of reserved_regions (drivers/iommu/iommu.c iommu_group_show_resv_regions). */
function parseReserved(text: string): ReservedRegionProfile[] {
  const out: ReservedRegionProfile[] = [];
  for (const line of text.split('\n')) {
    const m = /^0x([0-9a-f]{1,16}) 0x([0-9a-f]{1,16}) (direct|direct-relaxable|reserved|msi)$/i.exec(line.trim());
    if (m) out.push({ start: `0x${BigInt(`0x${m[1]}`).toString(16)}`, last: `0x${BigInt(`0x${m[2]}`).toString(16)}`, type: m[3].toLowerCase() as ReservedRegionProfile['type'] });
  }
  return out;
}

interface Pending {
  id: string;
  vendor: PlannerVendor | undefined;
  vendorId: string;
  registers?: Record<string, unknown>;
  source?: SysfsUnit['source'];
  error?: string;
  devices: string[];
  /** The platform device the unit hangs off (its dmesg name), from the class link. */
  parent?: string;
}

/** Builds a host profile from a sysfs tree (see the module comment for the files read); missing or unreadable files become warnings. */

export function probeSysfs(fs: SysfsReader, vendors: readonly IommuVendor[], opts: SysfsProbeOptions = {}): SysfsProbeResult {

  const warnings: string[] = [];
  const read: string[] = [];
  const text = (p: string) => {
    const t = fs.readText(p);
    if (t !== null) read.push(p);
    return t;
  };
  const names = fs.list(CLASS);
  if (names === null) warnings.push(`${CLASS} is missing: not a Linux sysfs root (or sysfs is not mounted there)`);
  const pending: Pending[] = [];
  for (const name of [...(names ?? [])].sort(naturalOrder)) {
    const dir = `${CLASS}/${name}`;
    const link = fs.readlink(dir);
    const parent = link ? /([^/]+)\/iommu\/[^/]+$/.exec(link)?.[1] : undefined;
    const devices = (fs.list(`${dir}/devices`) ?? []).filter((d) => parseBdf(d.toLowerCase())).map((d) => d.toLowerCase());
    let unit: Pending | null = null;
    for (const pv of PLANNER_VENDORS) {
      if (pv.sysfs && fs.list(`${dir}/${pv.sysfs.dir}`) !== null) {
        const files: Record<string, string> = {};
        for (const f of pv.sysfs.files) {
          const t = text(`${dir}/${pv.sysfs.dir}/${f}`);
          if (t !== null) files[f] = t.trim();
        }
        const regs = pv.sysfs.toRegisters(files);
        unit = regs.ok ? { id: name, vendor: pv, vendorId: pv.id, registers: { ...regs.value }, source: 'sysfs', devices, parent } : { id: name, vendor: pv, vendorId: pv.id, error: regs.error, devices, parent };
        break;
      }
      if (pv.sysfsName?.test(name)) {
        unit = { id: name, vendor: pv, vendorId: pv.id, devices, parent };
        break;
      }
    }
    if (!unit && parseBdf(name.toLowerCase())) unit = { id: name, vendor: PLANNER_VENDORS.find((v) => v.id === 'virtio-iommu'), vendorId: 'virtio-iommu', devices, parent };
    if (!unit) {
      warnings.push(`${dir}: an IOMMU of no vendor the planner knows (${link ?? 'not a link'}); left out`);
      continue;
    }
    pending.push(unit);
  }

  // IOMMU_GET_HW_INFO: the registers of the unit behind each device that answered.
  const hw = opts.hwInfo ?? text('hw-info.txt');
  if (hw !== null && hw !== undefined) {
    const parsed = parseHwInfo(hw);
    warnings.push(...parsed.errors);
    for (const l of parsed.lines) {
      const u = pending.find((p) => p.devices.includes(l.bdf));
      const pv = PLANNER_VENDORS.find((v) => v.hwInfo?.type === l.type);
      if (!pv?.hwInfo) {
        warnings.push(`hw-info ${l.bdf}: out_data_type ${l.type} is of no vendor the planner reads (${PLANNER_VENDORS.filter((v) => v.hwInfo).map((v) => `${v.hwInfo!.type} ${v.name}`).join(', ')})`);
        continue;
      }
      if (!u) {
        warnings.push(`hw-info ${l.bdf}: the device is in no unit's devices/ directory; its registers are not placed`);
        continue;
      }
      const regs = pv.hwInfo.toRegisters(l.data);
      if (!regs.ok) warnings.push(`hw-info ${l.bdf}: ${regs.error}`);
      else {
        u.registers = { ...(u.registers ?? {}), ...regs.value };
        u.source = 'hw-info';
        delete u.error;
      }
    }
  }

  // The boot log: units sysfs gives no registers for (SMMUv3), matched by their platform device name.
  const log = opts.dmesg ?? text('dmesg.txt');
  if (log !== null && log !== undefined) {
    const dm = probeDmesg(log, vendors);
    for (const du of dm.units) {
      const u = pending.find((p) => !p.registers && p.vendorId === du.vendor && (p.parent === du.id || p.id === du.id));
      if (u) {
        u.registers = { ...du.registers };
        u.source = 'dmesg';
      }
    }
  }

  // Decode every unit through its plugin.
  const units: SysfsUnit[] = [];
  const profileUnits: UnitProfile[] = [];
  for (const p of pending) {
    const plugin = vendors.find((v) => v.id === p.vendorId);
    if (p.error || !p.registers) {
      const why =
        p.error ??
        (p.vendorId === 'smmuv3'
          ? 'sysfs has no SMMUv3 registers: give IOMMU_GET_HW_INFO output (hw-info.txt, see docs/cli.md) or a boot log with its probe lines'
          : 'no registers for it in sysfs');
      units.push({ id: p.id, vendor: p.vendorId, error: why, devices: p.devices });
      warnings.push(`${p.id}: ${why}; left out of the profile`);
      continue;
    }
    if (!plugin) {
      const why = `no loaded vendor plugin decodes ${p.vendor?.name ?? p.vendorId} registers`;
      units.push({ id: p.id, vendor: p.vendorId, registers: p.registers, source: p.source, error: why, devices: p.devices });
      warnings.push(`${p.id}: ${why}; left out of the profile`);
      continue;
    }
    const d = plugin.decodeRegisters(p.registers);
    if (!d.ok) {
      units.push({ id: p.id, vendor: p.vendorId, registers: p.registers, source: p.source, error: d.error, devices: p.devices });
      warnings.push(`${p.id}: its registers do not decode (${d.error}); left out of the profile`);
      continue;
    }
    units.push({ id: p.id, vendor: p.vendorId, registers: p.registers, source: p.source, caps: d.value.caps, hwId: d.value.hwId, devices: p.devices });
    profileUnits.push({ id: p.id, vendor: p.vendorId, registers: p.registers });
  }

  // Groups, reserved regions, and each device's ATS/PRI/PASID.
  const unitOf = new Map<string, string>();
  for (const u of units) if (profileUnits.some((pu) => pu.id === u.id)) for (const d of u.devices) unitOf.set(d, u.id);
  const devices: DeviceProfile[] = [];
  let unreadableConfig = 0;
  const groups = [...(fs.list(GROUPS) ?? [])].filter((g) => /^\d+$/.test(g)).sort((a, b) => Number(a) - Number(b));
  for (const g of groups) {
    const members = (fs.list(`${GROUPS}/${g}/devices`) ?? []).map((d) => d.toLowerCase()).filter((d) => parseBdf(d));
    const reserved = parseReserved(text(`${GROUPS}/${g}/reserved_regions`) ?? '');
    const type = text(`${GROUPS}/${g}/type`)?.trim();
    for (const bdf of members.sort()) {
      const unit = unitOf.get(bdf);
      if (!unit) continue;
      const dev: DeviceProfile = { bdf, unit, group: Number(g) };
      const config = fs.readBytes(`${PCI}/${bdf}/config`);
      if (config) {
        read.push(`${PCI}/${bdf}/config`);
        const caps = readIommuCaps(config);
        if (caps.ok) {
          if (caps.caps.ats) dev.ats = true;
          if (caps.caps.pri) dev.pri = true;
          if (caps.caps.pasidBits) {
            dev.pasidBits = caps.caps.pasidBits;
            if (caps.caps.pasidExec) dev.pasidExec = true;
            if (caps.caps.pasidPriv) dev.pasidPriv = true;
          }
        } else unreadableConfig++;
      }
      if (reserved.length) dev.reservedRegions = reserved;
      if (type && type !== 'DMA' && type !== 'DMA-FQ') dev.description = `default domain: ${type}`;
      devices.push(dev);
    }
  }
  if (unreadableConfig) {
    warnings.push(`${unreadableConfig} device(s): config space was readable only up to 64 bytes (not root): ATS, PRI and PASID are unknown and left out; run the probe (or ioasid capture) as root for them`);
  }
  if (!profileUnits.length && names !== null) warnings.push('no IOMMU unit in /sys/class/iommu: the IOMMU is off or not probed (see the kernel parameter of your platform)');
  return { profile: { name: opts.name ?? 'probed host', units: profileUnits, devices }, units, warnings, read };
}

/** dmar2 before dmar10. */
function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
