/**
 * A virtio-iommu unit in a host profile: what the device offers and presents (features and the
 * configuration fields), and what Linux's driver makes of it (virtio-iommu.c viommu_probe): the
 * negotiated features, the aperture, the domain ID range, the capabilities in core's vocabulary.
 */
import type { DecodedRegister, DecodedUnit, NormalizedCaps, RawRegisters, Result } from '@ioasid/core/driver';
import { ok, err } from '@ioasid/core/driver';
import { LINUX_DRIVER_FEATURES, resolveConfig, BASE_CONFIG, VirtioIommuConfigError, type VirtioIommuConfig } from './config.js';
import {
  U32_MAX,
  U64_MAX,
  VIRTIO_F_VERSION_1,
  VIRTIO_IOMMU_F_BYPASS_CONFIG,
  VIRTIO_IOMMU_F_DOMAIN_RANGE,
  VIRTIO_IOMMU_F_INPUT_RANGE,
  VIRTIO_IOMMU_F_MAP_UNMAP,
  VIRTIO_IOMMU_F_MMIO,
  VIRTIO_IOMMU_F_PROBE,
  VIRTIO_IOMMU_MAP_F_MMIO,
  VIRTIO_IOMMU_MAP_F_READ,
  VIRTIO_IOMMU_MAP_F_WRITE,
  featureNames,
  hasFeature,
} from './spec.js';

/** The vendor id of virtio-iommu units in host profiles and decoders (`vendor: 'virtio-iommu'`). */
export const VENDOR_ID = 'virtio-iommu';

/** The profile keys: the offered features and the configuration fields under the specification's names. */
export const REGISTER_KEYS = ['features', 'page_size_mask', 'input_start', 'input_end', 'domain_start', 'domain_end', 'probe_size', 'bypass'] as const;

/** What the device offers and presents. */
export interface VirtioIommuRegisters {
  /** The 64-bit feature word the device offers. */
  features: bigint;
  /** The configuration fields the device presents. */
  config: VirtioIommuConfig;
}

/** What Linux's driver derives at probe. */
export interface LinuxProbe {
  /** The features the driver accepts: the offered ones in its feature table. */
  negotiated: bigint;
  /** The domain's page sizes: `page_size_mask` as the driver copies it into `pgsize_bitmap`. */
  pgsizeBitmap: bigint;
  /** First IOVA of the domain aperture: `input_range.start`, or 0 without `VIRTIO_IOMMU_F_INPUT_RANGE`. */
  apertureStart: bigint;
  /** Last IOVA of the aperture (inclusive): `input_range.end`, or 2^64 - 1 without `VIRTIO_IOMMU_F_INPUT_RANGE`. */
  apertureEnd: bigint;
  /** First domain ID the driver allocates (`domain_range.start`, plus one when it keeps that ID for its identity domain). */
  firstDomain: number;
  /** Last domain ID the driver allocates: `domain_range.end`, or 2^32 - 1 without `VIRTIO_IOMMU_F_DOMAIN_RANGE`. */
  lastDomain: number;
  /** 0 without F_PROBE. */
  probeSize: number;
  /** VIRTIO_IOMMU_MAP_F_* the driver may use. */
  mapFlags: number;
  /** With BYPASS_CONFIG the driver keeps the first domain ID for its identity (bypass) domain. */
  identityDomain: number | null;
  /** The boot lines. */
  inputBits: number;
}

function parseU64(v: unknown, field: string): Result<bigint> {
  const expected = `${field}: expected a 64-bit value as a hex string such as '0x1000'`;
  if (typeof v === 'bigint') return v >= 0n && v <= U64_MAX ? ok(v) : err(`${expected}, got ${v}n`);
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? ok(BigInt(v)) : err(`${expected}, got ${v}`);
  if (typeof v !== 'string' || !/^(0x)?[0-9a-f]{1,16}$/i.test(v.trim())) return err(`${expected}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
  const s = v.trim();
  return ok(BigInt(s.toLowerCase().startsWith('0x') ? s : `0x${s}`));
}

function parseU32(v: unknown, field: string): Result<number> {
  const r = parseU64(v, field);
  if (!r.ok) return r;
  return r.value <= BigInt(U32_MAX) ? ok(Number(r.value)) : err(`${field}: expected a 32-bit value, got 0x${r.value.toString(16)}`);
}

/** Validates a profile's `registers`; absent configuration fields take the device defaults. */
export function parseRegisters(raw: RawRegisters): Result<VirtioIommuRegisters> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return err('virtio-iommu registers: expected an object');
  for (const k of Object.keys(raw)) {
    if (!(REGISTER_KEYS as readonly string[]).includes(k)) return err(`virtio-iommu registers: unknown key '${k}' (known: ${REGISTER_KEYS.join(', ')})`);
  }
  const features = parseU64(raw['features'], 'features');
  if (!features.ok) return features;
  const mask = parseU64(raw['page_size_mask'], 'page_size_mask');
  if (!mask.ok) return mask;
  const get64 = (k: string, d: bigint): Result<bigint> => (raw[k] === undefined ? ok(d) : parseU64(raw[k], k));
  const get32 = (k: string, d: number): Result<number> => (raw[k] === undefined ? ok(d) : parseU32(raw[k], k));
  const inStart = get64('input_start', BASE_CONFIG.input_range.start);
  const inEnd = get64('input_end', BASE_CONFIG.input_range.end);
  const domStart = get32('domain_start', BASE_CONFIG.domain_range.start);
  const domEnd = get32('domain_end', BASE_CONFIG.domain_range.end);
  const probeSize = get32('probe_size', BASE_CONFIG.probe_size);
  const bypass = get32('bypass', 0);
  for (const r of [inStart, inEnd, domStart, domEnd, probeSize, bypass]) if (!r.ok) return r;
  try {
    const config = resolveConfig(BASE_CONFIG, {
      page_size_mask: mask.value,
      input_range: { start: (inStart as { value: bigint }).value, end: (inEnd as { value: bigint }).value },
      domain_range: { start: (domStart as { value: number }).value, end: (domEnd as { value: number }).value },
      probe_size: (probeSize as { value: number }).value,
      bypass: (bypass as { value: number }).value,
    });
    return ok({ features: features.value, config });
  } catch (e) {
    if (e instanceof VirtioIommuConfigError) return err(`virtio-iommu registers: ${e.message}`);
    throw e;
  }
}

/** The profile form of the registers: every key, hex strings for the 64-bit values. */
export function profileRegistersOf(r: VirtioIommuRegisters): RawRegisters {
  const c = r.config;
  return {
    features: `0x${r.features.toString(16)}`,
    page_size_mask: `0x${c.page_size_mask.toString(16)}`,
    input_start: `0x${c.input_range.start.toString(16)}`,
    input_end: `0x${c.input_range.end.toString(16)}`,
    domain_start: c.domain_range.start,
    domain_end: c.domain_range.end,
    probe_size: c.probe_size,
    bypass: c.bypass,
  };
}

/** order_base_2(n): the bits needed to hold values up to n. */
export function orderBase2(n: bigint): number {
  if (n <= 1n) return 0;
  return (n - 1n).toString(2).length;
}

/** viommu_probe: refuses a device without VERSION_1 and MAP_UNMAP (-ENODEV) or with an empty page mask (-EINVAL). */
export function linuxProbe(r: VirtioIommuRegisters): Result<LinuxProbe> {
  if (!hasFeature(r.features, VIRTIO_F_VERSION_1) || !hasFeature(r.features, VIRTIO_IOMMU_F_MAP_UNMAP)) {
    return err('virtio-iommu registers: the device offers no VIRTIO_F_VERSION_1 or no VIRTIO_IOMMU_F_MAP_UNMAP: viommu_probe fails with -ENODEV');
  }
  const n = r.features & LINUX_DRIVER_FEATURES;
  const c = r.config;
  const input = hasFeature(n, VIRTIO_IOMMU_F_INPUT_RANGE);
  const domains = hasFeature(n, VIRTIO_IOMMU_F_DOMAIN_RANGE);
  const apertureEnd = input ? c.input_range.end : U64_MAX;
  let firstDomain = domains ? c.domain_range.start : 0;
  const lastDomain = domains ? c.domain_range.end : U32_MAX;
  let identityDomain: number | null = null;
  if (hasFeature(n, VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
    identityDomain = firstDomain;
    firstDomain++;
  }
  return {
    ok: true,
    value: {
      negotiated: n,
      pgsizeBitmap: c.page_size_mask,
      apertureStart: input ? c.input_range.start : 0n,
      apertureEnd,
      firstDomain,
      lastDomain,
      probeSize: hasFeature(n, VIRTIO_IOMMU_F_PROBE) ? c.probe_size : 0,
      mapFlags: VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE | (hasFeature(n, VIRTIO_IOMMU_F_MMIO) ? VIRTIO_IOMMU_MAP_F_MMIO : 0),
      identityDomain,
      inputBits: orderBase2(apertureEnd),
    },
  };
}

/** Page sizes in core's vocabulary stop at 4 TiB: no IOMMU uses a larger leaf. */
const NORMALIZED_PAGE_SIZES = (1n << 43n) - 1n;

export function normalizedCaps(r: VirtioIommuRegisters, p: LinuxProbe): NormalizedCaps {
  return {
    vendor: VENDOR_ID,
    version: '1.0',
    hostStage: { inputBits: [Math.max(p.inputBits, 1)], outputBits: 64, pageSizes: p.pgsizeBitmap & NORMALIZED_PAGE_SIZES, accessDirty: false },
    // MAP/UNMAP only: no table format a guest could own, so no user stage and no nesting.
    userStage: null,
    pasidBits: 0,
    pri: false,
    stall: false,
    ats: false,
    nesting: false,
    dirtyTracking: false,
    // viommu_capable: IOMMU_CAP_CACHE_COHERENCY.
    coherent: true,
    cachingMode: false,
    rangeInvalidation: false,
    interruptRemapping: false,
    features: featureNames(r.features).map((f) => f.toLowerCase().replace(/_/g, '-')),
  };
}

export function hwId(r: VirtioIommuRegisters, p: LinuxProbe): string {
  const parts = [`page mask 0x${p.pgsizeBitmap.toString(16)}`, `${p.inputBits}-bit input`, `domains ${p.firstDomain}-${p.lastDomain}`];
  if (p.probeSize) parts.push(`PROBE ${p.probeSize} bytes`);
  if (hasFeature(r.features, VIRTIO_IOMMU_F_BYPASS_CONFIG)) parts.push(r.config.bypass ? 'boot bypass' : 'boot blocked');
  return `virtio-iommu (${featureNames(r.features).join(' ')}): ${parts.join(', ')}`;
}

export function decodedRegisters(r: VirtioIommuRegisters): DecodedRegister[] {
  const c = r.config;
  const featureFields: Record<string, boolean> = {};
  for (const name of featureNames(r.features)) featureFields[name] = true;
  return [
    { name: 'features', value: r.features, fields: featureFields },
    { name: 'page_size_mask', value: c.page_size_mask, fields: { granule: c.page_size_mask & -c.page_size_mask } },
    { name: 'input_range', value: c.input_range.end, fields: { start: c.input_range.start, end: c.input_range.end } },
    { name: 'domain_range', value: BigInt(c.domain_range.end), fields: { start: c.domain_range.start, end: c.domain_range.end } },
    { name: 'probe_size', value: BigInt(c.probe_size), fields: {} },
    { name: 'bypass', value: BigInt(c.bypass), fields: {} },
  ];
}

/** Reads a virtio-iommu unit of a host profile and runs Linux's probe on it; fails with the reason viommu_probe would (or a malformed field). */
export function decodeUnit(raw: RawRegisters): Result<DecodedUnit & {
  /** The features and configuration as the profile gives them. */
  regs: VirtioIommuRegisters;
  /** What viommu_probe derives from them. */
  probe: LinuxProbe;
}> {
  const r = parseRegisters(raw);
  if (!r.ok) return r;
  const p = linuxProbe(r.value);
  if (!p.ok) return p;
  return {
    ok: true,
    value: {
      vendor: VENDOR_ID,
      caps: normalizedCaps(r.value, p.value),
      hwId: hwId(r.value, p.value),
      registers: decodedRegisters(r.value),
      profileRegisters: profileRegistersOf(r.value),
      regs: r.value,
      probe: p.value,
    },
  };
}

/** The two lines viommu_probe prints (dev_info "input address: %u bits", "page mask: 0x%llx"). */
export const BOOT_LINE = /^(?:virtio_iommu (\S+): )?(?:input address: (\d+) bits|page mask: (0x[0-9a-f]{1,16}))$/;
