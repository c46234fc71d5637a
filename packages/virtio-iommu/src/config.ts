/**
 * `struct virtio_iommu_config` and feature negotiation.
 */
import { virtio_iommu_config } from './layouts.js';
import {
  CONFIG_SIZE,
  U32_MAX,
  U64_MAX,
  VIRTIO_F_VERSION_1,
  VIRTIO_IOMMU_F_BYPASS,
  VIRTIO_IOMMU_F_BYPASS_CONFIG,
  VIRTIO_IOMMU_F_DOMAIN_RANGE,
  VIRTIO_IOMMU_F_INPUT_RANGE,
  VIRTIO_IOMMU_F_MAP_UNMAP,
  VIRTIO_IOMMU_F_MMIO,
  VIRTIO_IOMMU_F_PROBE,
  bit,
  featureNames,
  hasFeature,
} from './spec.js';

/** The configuration fields, under the specification's names. */
export interface VirtioIommuConfig {
  /** Page sizes the device can map, one bit per size; the lowest set bit is the granule every MAP must be aligned to. */
  page_size_mask: bigint;
  /** The IOVA window MAP and UNMAP may use (valid with `VIRTIO_IOMMU_F_INPUT_RANGE`); Linux makes it the domain aperture. */
  input_range: {
    /** First usable IOVA. */
    start: bigint;
    /** Last usable IOVA (inclusive). */
    end: bigint;
  };
  /** The domain IDs the driver may use (valid with `VIRTIO_IOMMU_F_DOMAIN_RANGE`); Linux allocates its IDs from it. */
  domain_range: {
    /** First usable domain ID. */
    start: number;
    /** Last usable domain ID (inclusive). */
    end: number;
  };
  /** Bytes of the `properties` buffer in a PROBE request (valid with `VIRTIO_IOMMU_F_PROBE`). */
  probe_size: number;
  /** 0 or 1. */
  bypass: number;
}

/** What `options.config` may override. */
export type VirtioIommuConfigInput = Partial<Omit<VirtioIommuConfig, 'bypass'>> & {
  /** The initial `bypass` byte: 1 or true lets unattached endpoints through, 0 or false blocks them. */
  bypass?: number | boolean;
};

/** QEMU's PROBE buffer size (VIOMMU_PROBE_SIZE). */
export const DEFAULT_PROBE_SIZE = 512;
/** A PROBE buffer larger than this is refused when the device is built: bad input never allocates without bound. */
export const MAX_PROBE_SIZE = 1 << 16;

/** The features QEMU's device offers (hw/virtio/virtio-iommu.c), which this model offers by default. */
export const DEFAULT_FEATURES: bigint =
  bit(VIRTIO_F_VERSION_1) |
  bit(VIRTIO_IOMMU_F_INPUT_RANGE) |
  bit(VIRTIO_IOMMU_F_DOMAIN_RANGE) |
  bit(VIRTIO_IOMMU_F_MAP_UNMAP) |
  bit(VIRTIO_IOMMU_F_PROBE) |
  bit(VIRTIO_IOMMU_F_MMIO) |
  bit(VIRTIO_IOMMU_F_BYPASS_CONFIG);

/** The features the Linux driver knows (its feature table) plus VERSION_1, which it requires. */
export const LINUX_DRIVER_FEATURES: bigint =
  bit(VIRTIO_F_VERSION_1) |
  bit(VIRTIO_IOMMU_F_MAP_UNMAP) |
  bit(VIRTIO_IOMMU_F_INPUT_RANGE) |
  bit(VIRTIO_IOMMU_F_DOMAIN_RANGE) |
  bit(VIRTIO_IOMMU_F_PROBE) |
  bit(VIRTIO_IOMMU_F_MMIO) |
  bit(VIRTIO_IOMMU_F_BYPASS_CONFIG);

/** A configuration the device cannot present, or a feature set it must refuse. */
export class VirtioIommuConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VirtioIommuConfigError';
  }
}

function isU64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v <= U64_MAX;
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

/** Fills and checks a configuration: the device must set at least one page size bit, ranges are start <= end. */
export function resolveConfig(base: VirtioIommuConfig, input: VirtioIommuConfigInput = {}): VirtioIommuConfig {
  const c: VirtioIommuConfig = {
    page_size_mask: input.page_size_mask ?? base.page_size_mask,
    input_range: { ...(input.input_range ?? base.input_range) },
    domain_range: { ...(input.domain_range ?? base.domain_range) },
    probe_size: input.probe_size ?? base.probe_size,
    bypass: input.bypass === undefined ? base.bypass : Number(input.bypass),
  };
  if (!isU64(c.page_size_mask) || c.page_size_mask === 0n) throw new VirtioIommuConfigError('page_size_mask: the device must set at least one bit (a u64)');
  if (!isU64(c.input_range.start) || !isU64(c.input_range.end) || c.input_range.start > c.input_range.end) {
    throw new VirtioIommuConfigError('input_range: expected u64 start <= end');
  }
  if (!isU32(c.domain_range.start) || !isU32(c.domain_range.end) || c.domain_range.start > c.domain_range.end) {
    throw new VirtioIommuConfigError('domain_range: expected u32 start <= end');
  }
  if (!isU32(c.probe_size) || c.probe_size > MAX_PROBE_SIZE) throw new VirtioIommuConfigError(`probe_size: expected an integer from 0 to ${MAX_PROBE_SIZE}`);
  if (c.bypass !== 0 && c.bypass !== 1) throw new VirtioIommuConfigError('bypass: the device presents only 0 or 1');
  return c;
}

/** The configuration a device presents unless overridden: QEMU's 4 KiB granule, the full 64-bit input range, every 32-bit domain ID, a 512-byte PROBE buffer and boot bypass on. */
export const BASE_CONFIG: VirtioIommuConfig = {
  // QEMU's 4 KiB granule: every power of two from 4 KiB up.
  page_size_mask: U64_MAX & ~0xfffn,
  input_range: { start: 0n, end: U64_MAX },
  domain_range: { start: 0, end: U32_MAX },
  probe_size: DEFAULT_PROBE_SIZE,
  bypass: 1,
};

/** The 40 configuration bytes as the driver reads them. */
export function encodeConfig(c: VirtioIommuConfig): Uint8Array {
  const L = virtio_iommu_config;
  return L.encode(
    L.make({
      page_size_mask: c.page_size_mask,
      input_range_start: c.input_range.start,
      input_range_end: c.input_range.end,
      domain_range_start: c.domain_range.start,
      domain_range_end: c.domain_range.end,
      probe_size: c.probe_size,
      bypass: c.bypass,
    }),
  );
}

/** Reads `struct virtio_iommu_config` from the 40 configuration bytes; null when fewer are given. */
export function decodeConfig(b: Uint8Array): VirtioIommuConfig | null {
  if (b.length < CONFIG_SIZE) return null;
  const v = virtio_iommu_config.decode(b);
  return {
    page_size_mask: v.page_size_mask,
    input_range: { start: v.input_range_start, end: v.input_range_end },
    domain_range: { start: v.domain_range_start, end: v.domain_range_end },
    probe_size: v.probe_size,
    bypass: v.bypass,
  };
}

/** Checks an offered feature set: the rules a device must follow in what it offers. */
export function checkOffered(features: bigint): void {
  if (!isU64(features)) throw new VirtioIommuConfigError('features: expected a u64 bit set');
  // Spec: devices SHOULD NOT offer both the legacy BYPASS and BYPASS_CONFIG.
  if (hasFeature(features, VIRTIO_IOMMU_F_BYPASS) && hasFeature(features, VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
    throw new VirtioIommuConfigError('features: a device should not offer both BYPASS and BYPASS_CONFIG');
  }
}

/**
 * Feature negotiation from the device's side (virtio "Feature bits" and "Device Initialization"):
 * the driver may accept only offered bits; a modern device refuses a driver that does not accept
 * VERSION_1 when it offered it (it clears FEATURES_OK). Returns the accepted set.
 */
export function negotiateFeatures(offered: bigint, driver: bigint): bigint {
  if (!isU64(driver)) throw new VirtioIommuConfigError('driver features: expected a u64 bit set');
  const extra = driver & ~offered;
  if (extra !== 0n) throw new VirtioIommuConfigError(`FEATURES_OK refused: the driver accepted features the device did not offer (${featureNames(extra).join(' ')})`);
  if (hasFeature(offered, VIRTIO_F_VERSION_1) && !hasFeature(driver, VIRTIO_F_VERSION_1)) {
    throw new VirtioIommuConfigError('FEATURES_OK refused: this device has no legacy interface and needs VERSION_1');
  }
  return driver;
}
