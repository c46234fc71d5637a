/**
 * The virtio-iommu vendor family (the virtio_iommu driver): profile validation, units and the boot lines
 * `ioasid probe` reads. What `ioasid decode virtio-iommu` explains is the plugin's decoder (decode.ts).
 */
import { ok, err, stripKernelLogPrefix, type DecodedUnit, type IommuVendor, type RawRegisters, type Result, type UnitInit } from '@ioasid/core/driver';
import { BOOT_LINE, VENDOR_ID, decodeUnit } from './registers.js';
import { VIRTIO_F_VERSION_1, VIRTIO_IOMMU_F_INPUT_RANGE, VIRTIO_IOMMU_F_MAP_UNMAP, bit } from './spec.js';
import { VirtioIommuUnit } from './unit.js';

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** The virtio-iommu vendor (`IommuVendor`): reads units from host profiles, creates units and recognises viommu_probe's boot lines. */
export class VirtioIommuVendor implements IommuVendor {
  readonly id = VENDOR_ID;
  readonly name = 'virtio-iommu';

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    const d = decodeUnit(raw);
    if (!d.ok) return d;
    const { regs: _regs, probe: _probe, ...unit } = d.value;
    return ok(unit);
  }

  createUnit(init: UnitInit): VirtioIommuUnit {
    return new VirtioIommuUnit(init);
  }

  /**
   * The two lines viommu_probe prints. "input address: N bits" says the probe succeeded (VERSION_1 and
   * MAP_UNMAP were offered) and, below 64 bits, that INPUT_RANGE was: input_end is taken as 2^N - 1, the
   * largest end order_base_2 maps to N. "page mask" gives page_size_mask. Other features do not show.
   */
  probeLine(line: string): Result<{
    /** The virtio device name in the line's `virtio_iommu <device>: ` prefix, used as the unit id. */
    id: string;
    /** The profile registers the line implies. */
    registers: RawRegisters;
  }> | null {
    const m = BOOT_LINE.exec(stripKernelLogPrefix(line.trim()).trim());
    if (!m || m[1] === undefined) return null;
    if (m[2] !== undefined) {
      const bits = Number(m[2]);
      if (bits < 1 || bits > 64) return err(`input address: ${bits} bits is outside 1..64`);
      const features = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_IOMMU_F_MAP_UNMAP) | (bits < 64 ? bit(VIRTIO_IOMMU_F_INPUT_RANGE) : 0n);
      const registers: RawRegisters = bits < 64 ? { features: hex(features), input_start: '0x0', input_end: hex((1n << BigInt(bits)) - 1n) } : { features: hex(features) };
      return ok({ id: m[1], registers });
    }
    const mask = BigInt(m[3]);
    if (mask === 0n || mask > 0xffff_ffff_ffff_ffffn) return err(`page mask ${m[3]} is not a non-zero u64`);
    return ok({ id: m[1], registers: { page_size_mask: hex(mask) } });
  }
}

