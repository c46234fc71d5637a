/** The __NAME__ vendor (the kernel's struct iommu_ops): decodes a unit's registers and builds its units. */
import type { DecodedUnit, IommuVendor, RawRegisters, Result, UnitInit, UnitOps } from '@ioasid/core/driver';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';
import { decodeUnitRegisters, probeLine } from './probe.js';
import { decodeCap } from './registers.js';
import { Unit } from './unit.js';

export class Vendor implements IommuVendor {
  readonly id = VENDOR_ID;
  readonly name = VENDOR_NAME;

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    return decodeUnitRegisters(raw);
  }

  probeLine(line: string): Result<{ id: string; registers: RawRegisters }> | null {
    return probeLine(line);
  }

  createUnit(init: UnitInit): UnitOps {
    // Core decodes the registers before it builds a unit, so CAP is valid here.
    const cap = decodeCap(init.decoded.registers[0].value);
    if (!cap.ok) throw new Error(`${init.id}: ${cap.error}`);
    return new Unit(init, cap.value);
  }
}
