/**
 * What the planner needs to know about one host IOMMU unit, read from what its vendor decoded:
 * core's normalized capabilities first, and, where a QEMU check compares a specific register field
 * (VT-d CAP.MGAW, SMMUv3 IDR0.ST_LEVEL...), that field by the specification's name. The planner never
 * imports a vendor package: a vendor that names its fields differently simply leaves the field
 * unknown, and the check falls back to the normalized capability.
 */
import { parseBdf, type DeviceProfile, type HostProfile } from '@ioasid/core';
import { log2PageSizes, type DecodedUnit, type NormalizedCaps } from '@ioasid/core/driver';

export type Arch = 'x86' | 'arm' | 'any' | 'other';

export interface VtdFacts {
  /** CAP.MGAW + 1, when the vendor decoded CAP. */
  readonly mgaw?: number;
  /** Widths of the SAGAW bitmap (39/48/57). */
  readonly sagaw: readonly number[];
  readonly firstStage: boolean;
  readonly fs1gp: boolean;
}

export interface SmmuFacts {
  readonly stLevel?: number;
  readonly ttEndian?: number;
  readonly ttf?: number;
  readonly sidSize?: number;
  readonly ssidSize: number;
  readonly ril: boolean;
  readonly ats: boolean;
  readonly oas: number;
  readonly gran4k: boolean;
  readonly gran16k: boolean;
  readonly gran64k: boolean;
}

export interface UnitFacts {
  readonly host: string;
  readonly id: string;
  /** `dmar0`, or `host/dmar0` when several hosts are planned together. */
  readonly label: string;
  readonly vendor: string;
  readonly arch: Arch;
  readonly caps: NormalizedCaps;
  readonly hwId: string;
  readonly decoded: DecodedUnit;
  /** IOVA width of a kernel-managed domain: what QEMU reads as the host aw-bits. */
  readonly awBits: number;
  /** Page sizes of the kernel-managed stage (bitmap of log2 sizes). */
  readonly pageSizes: bigint;
  readonly minPageLog2: number;
  readonly vtd?: VtdFacts;
  readonly smmu?: SmmuFacts;
}

export interface DeviceFacts {
  readonly host: string;
  readonly bdf: string;
  readonly label: string;
  readonly profile: DeviceProfile;
  readonly unit: UnitFacts;
  readonly hostProfile: HostProfile;
}

const ARCH: Record<string, Arch> = { vtd: 'x86', 'amd-vi': 'x86', smmuv3: 'arm', 'virtio-iommu': 'any' };

function norm(name: string): string {
  return name
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .replace(/^SMMU/, '')
    .replace(/REG$/, '');
}

/** A decoded field by the specification's register and field names, as a number. */
export function registerField(d: DecodedUnit, register: string, field: string): number | undefined {
  const want = norm(register);
  const reg = d.registers.find((r) => norm(r.name) === want);
  if (!reg) return undefined;
  let v: number | bigint | boolean | undefined = reg.fields[field];
  if (v === undefined) {
    const key = Object.keys(reg.fields).find((k) => k.toUpperCase() === field.toUpperCase());
    v = key === undefined ? undefined : reg.fields[key];
  }
  if (v === undefined) return undefined;
  return Number(v);
}

const SAGAW_BITS: ReadonlyArray<[number, number]> = [
  [1, 39],
  [2, 48],
  [3, 57],
];
const OAS_BITS = [32, 36, 40, 42, 44, 48, 52, 56];

export function unitFacts(host: string, id: string, decoded: DecodedUnit, multiHost: boolean): UnitFacts {
  const caps = decoded.caps;
  const vendor = decoded.vendor || caps.vendor;
  const inputBits = caps.hostStage?.inputBits ?? [];
  const awBits = inputBits.length ? Math.max(...inputBits) : 0;
  const pageSizes = caps.hostStage?.pageSizes ?? caps.userStage?.pageSizes ?? 0n;
  const logs = log2PageSizes(pageSizes);
  const base = {
    host,
    id,
    label: multiHost ? `${host}/${id}` : id,
    vendor,
    arch: ARCH[vendor] ?? 'other',
    caps,
    hwId: decoded.hwId,
    decoded,
    awBits,
    pageSizes,
    minPageLog2: logs.length ? logs[0] : 12,
  };
  if (vendor === 'vtd') {
    const mgaw = registerField(decoded, 'CAP', 'MGAW');
    const sagawField = registerField(decoded, 'CAP', 'SAGAW');
    const sagaw = sagawField === undefined ? [...inputBits] : SAGAW_BITS.filter(([bit]) => (sagawField >> bit) & 1).map(([, w]) => w);
    const fl1gp = caps.userStage ? (caps.userStage.pageSizes & (1n << 30n)) !== 0n : false;
    return { ...base, vtd: { mgaw: mgaw === undefined ? undefined : mgaw + 1, sagaw, firstStage: caps.userStage !== null, fs1gp: fl1gp } };
  }
  if (vendor === 'smmuv3') {
    const f = (reg: string, field: string) => registerField(decoded, reg, field);
    const oasEnc = f('IDR5', 'OAS');
    const oas = oasEnc !== undefined && OAS_BITS[oasEnc] !== undefined ? OAS_BITS[oasEnc] : (caps.hostStage?.outputBits ?? caps.userStage?.outputBits ?? 48);
    const bit = (l: number) => (pageSizes & (1n << BigInt(l))) !== 0n;
    const g = (name: string, l: number) => {
      const v = f('IDR5', name);
      return v === undefined ? bit(l) : v === 1;
    };
    const ril = f('IDR3', 'RIL');
    const ats = f('IDR0', 'ATS');
    return {
      ...base,
      smmu: {
        stLevel: f('IDR0', 'ST_LEVEL'),
        ttEndian: f('IDR0', 'TTENDIAN'),
        ttf: f('IDR0', 'TTF'),
        sidSize: f('IDR1', 'SIDSIZE'),
        ssidSize: f('IDR1', 'SSIDSIZE') ?? caps.pasidBits,
        ril: ril === undefined ? caps.rangeInvalidation : ril === 1,
        ats: ats === undefined ? caps.ats : ats === 1,
        oas,
        gran4k: g('GRAN4K', 12),
        gran16k: g('GRAN16K', 14),
        gran64k: g('GRAN64K', 16),
      },
    };
  }
  return base;
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

/** 00:02.0 of a BDF, for QEMU messages that print bus:slot.function. */
export function shortBdf(bdf: string): string {
  const p = parseBdf(bdf);
  if (!p) return bdf;
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `${h(p.bus)}.${h(p.dev)}.${p.fn}`;
}
