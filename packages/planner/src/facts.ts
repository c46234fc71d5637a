/**
 * What the planner needs to know about one host IOMMU unit, read from what its vendor decoded:
 * core's normalized capabilities first, and, where a QEMU check compares a specific register field
 * (VT-d CAP.MGAW, SMMUv3 IDR0.ST_LEVEL...), that field by the specification's name through the
 * vendor's entry in vendors/registry.ts. The planner never imports a vendor package: a vendor that
 * names its fields differently simply leaves the field unknown, and the check falls back to the
 * normalized capability.
 */
import { parseBdf, type DeviceProfile, type HostProfile } from '@ioasid/core';
import { log2PageSizes, type DecodedUnit, type NormalizedCaps } from '@ioasid/core/driver';
import { plannerVendor } from './vendors/registry.js';
import type { Arch, SmmuFacts, VtdFacts } from './vendors/types.js';

export type { Arch, SmmuFacts, VtdFacts };
export { registerField } from './vendors/fields.js';

/** What the planner knows of one host IOMMU unit: its identity, its decoded capabilities and the facts the QEMU checks read. */
export interface UnitFacts {
  /** The host profile's name. */
  readonly host: string;
  /** The unit's id in the host profile, e.g. 'dmar0'. */
  readonly id: string;
  /** Position among the host's units of the same vendor (0-based): names per-unit vIOMMU instances. */
  readonly index: number;
  /** `dmar0`, or `host/dmar0` when several hosts are planned together. */
  readonly label: string;
  /** The vendor id, e.g. 'vtd'. */
  readonly vendor: string;
  /** The guest architecture the vendor implies. */
  readonly arch: Arch;
  /** The unit's capabilities in core's normalized vocabulary. */
  readonly caps: NormalizedCaps;
  /** The rolled-up hardware id the vendor's decoder gives, e.g. 'Intel VT-d 6.0, scalable mode, ...'. */
  readonly hwId: string;
  /** The unit's registers as the vendor's decoder read them. */
  readonly decoded: DecodedUnit;
  /** IOVA width of a kernel-managed domain: what QEMU reads as the host aw-bits. */
  readonly awBits: number;
  /** Page sizes of the kernel-managed stage (bitmap of log2 sizes). */
  readonly pageSizes: bigint;
  /** log2 of the smallest of those page sizes (12 for 4 KiB). */
  readonly minPageLog2: number;
  /** The VT-d register facts, for a VT-d unit. */
  readonly vtd?: VtdFacts;
  /** The SMMUv3 register facts, for an SMMUv3 unit. */
  readonly smmu?: SmmuFacts;
}

/** A device to plan: where it is, what its profile says, and the unit it sits behind. */
export interface DeviceFacts {
  /** The host profile's name. */
  readonly host: string;
  /** PCI address, e.g. '0000:3b:00.0'. */
  readonly bdf: string;
  /** `0000:3b:00.0`, or `host/0000:3b:00.0` when several hosts are planned together. */
  readonly label: string;
  /** The device as the host profile describes it. */
  readonly profile: DeviceProfile;
  /** The unit the device sits behind. */
  readonly unit: UnitFacts;
  /** The whole host profile the device comes from. */
  readonly hostProfile: HostProfile;
}

export function unitFacts(host: string, id: string, decoded: DecodedUnit, multiHost: boolean, index = 0): UnitFacts {
  const caps = decoded.caps;
  const vendor = decoded.vendor || caps.vendor;
  const inputBits = caps.hostStage?.inputBits ?? [];
  const awBits = inputBits.length ? Math.max(...inputBits) : 0;
  const pageSizes = caps.hostStage?.pageSizes ?? 0n;
  const logs = log2PageSizes(pageSizes);
  const pv = plannerVendor(vendor);
  return {
    host,
    id,
    index,
    label: multiHost ? `${host}/${id}` : id,
    vendor,
    arch: pv?.arch ?? 'other',
    caps,
    hwId: decoded.hwId,
    decoded,
    awBits,
    pageSizes,
    minPageLog2: logs.length ? logs[0] : 12,
    ...(pv?.facts?.(decoded) ?? {}),
  };
}

/** A rough order of capability, for "the most capable unit": nesting, PASID, address width, features. */
export function capabilityScore(u: UnitFacts): number {
  const c = u.caps;
  return (
    (c.nesting ? 1_000_000 : 0) +
    (c.userStage ? 100_000 : 0) +
    c.pasidBits * 1_000 +
    u.awBits * 10 +
    (c.pri ? 5 : 0) +
    (c.ats ? 3 : 0) +
    (c.dirtyTracking ? 2 : 0) +
    (c.interruptRemapping ? 1 : 0)
  );
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** "4K/2M/1G" of a page-size bitmap. */
export function pageSizeList(bitmap: bigint): string {
  return log2PageSizes(bitmap)
    .map((l) => (l >= 30 ? `${2 ** (l - 30)}G` : l >= 20 ? `${2 ** (l - 20)}M` : `${2 ** (l - 10)}K`))
    .join('/');
}

/** 00.02.0 of a BDF, for QEMU messages that print bus.slot.function. */
export function shortBdf(bdf: string): string {
  const p = parseBdf(bdf);
  if (!p) return bdf;
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `${h(p.bus)}.${h(p.dev)}.${p.fn}`;
}
