/**
 * The RISC-V IOMMU vendor (the kernel's riscv_iommu_ops): validates a unit's registers, builds its units,
 * and hands `ioasid probe` to logs.ts. `ioasid decode` is the plugin's decoder (decode.ts).
 */
import { err, ok, type DecodedUnit, type IommuVendor, type RawRegisters, type Result, type UnitInit, type UnitOps } from '@ioasid/core/driver';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';
import { parseBootLine } from './logs.js';
import { decodeUnitRegisters } from './probe.js';
import { decodeCap, encodeFctl } from './registers.js';
import { Unit } from './unit.js';

/** The vendor: decodes profile registers, builds units and reads probe lines (`ioasid decode` goes to the plugin's decoder). */
export class Vendor implements IommuVendor {
  readonly id = VENDOR_ID;
  readonly name = VENDOR_NAME;

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    return decodeUnitRegisters(raw);
  }

  createUnit(init: UnitInit): UnitOps {
    // Core decodes the registers before it builds a unit, so capabilities is valid here.
    const cap = decodeCap(init.decoded.registers[0].value);
    if (!cap.ok) throw new Error(`${init.id}: ${cap.error}`);
    return new Unit(init, cap.value);
  }

  /**
   * The platform probe's interrupt line names a unit and its fctl.WSI; no line carries `capabilities`,
   * so a unit read from a log alone does not decode (its profile needs the register from elsewhere).
   */
  probeLine(line: string): Result<{
    /** The unit's name, `riscv-iommu@<device>`. */
    id: string;
    /** The registers the line tells: `fctl` with only WSI set as the line says. */
    registers: RawRegisters;
  }> | null {
    const b = parseBootLine(line);
    if (b === null) return null;
    if (b.unit.length > 200) return err('device name too long');
    return ok({ id: b.unit, registers: { fctl: `0x${encodeFctl({ WSI: b.wsi ? 1 : 0 }).toString(16)}` } });
  }
}
