/**
 * The Arm SMMUv3 vendor family (the arm-smmu-v3 driver's iommu_ops): profile validation and the boot lines
 * `ioasid probe` reads (probe.ts), unit creation. The explanations of `ioasid decode smmuv3 …` are decode.ts.
 */
import type { DecodedUnit, IommuVendor, RawRegisters, Result, UnitInit, UnitOps } from '@ioasid/core/driver';
import { decodeSmmuUnit, probeSmmuLine } from './probe.js';
import { SmmuUnit } from './unit.js';

/**
 * The Arm SMMUv3 vendor: decodes a unit's IDR0..5/IIDR/AIDR (refusing an SMMU that arm_smmu_device_hw_probe would
 * refuse), derives its capabilities, creates units and reads units back from boot log lines.
 */
export class SmmuV3Vendor implements IommuVendor {
  readonly id = 'smmuv3';
  readonly name = 'Arm SMMUv3';

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    return decodeSmmuUnit(raw);
  }

  createUnit(init: UnitInit): UnitOps {
    return new SmmuUnit(init);
  }

  /**
   * Rebuilds a unit from a boot line when the line carries its registers. Linux's arm-smmu-v3 probe prints only
   * derived values ("ias …, oas … (features 0x…)" and the queue sizes), never IDR0..IDR5, IIDR or AIDR, so that
   * line yields an error naming what is missing. A line of the form
   * `arm-smmu-v3 <dev>: idr=0x…,0x…,0x…,0x…,0x…,0x… iidr=0x… aidr=0x…` (a register dump appended to a log, e.g.
   * from IOMMU_GET_HW_INFO) is read into a unit.
   */
  probeLine(line: string): Result<{
    /** The unit's name: the device the log line names, or `arm-smmu-v3`. */
    id: string;
    /** The register values (or the probe's derived values) the line carries, in host profile form. */
    registers: RawRegisters;
  }> | null {
    return probeSmmuLine(line);
  }
}
