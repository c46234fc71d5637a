/**
 * The VT-d vendor family (the intel-iommu driver's iommu_ops): validates a unit's registers from a host
 * profile (probe.ts) and builds units; `probeLine` hands over to probe.ts. `ioasid decode` is the plugin's
 * decoder (decode.ts), not a vendor op.
 */
import { PluginContractError, ok } from '@ioasid/core/driver';
import type { DecodedUnit, IommuVendor, RawRegisters, Result, UnitInit, UnitOps } from '@ioasid/core/driver';
import { VtdUnit, type VtdUnitOptions } from './unit.js';
import { decodeVtdUnit, parseVtdRegisters, probeVtdLine } from './probe.js';

const VENDOR = 'vtd';

/** Options of `VtdVendor`, handed to every unit it creates. */
export type VtdVendorOptions = VtdUnitOptions;

/** The Intel VT-d family. Plain class: register it with `useValue`. */
export class VtdVendor implements IommuVendor {
  readonly id = VENDOR;
  readonly name = 'Intel VT-d';

  constructor(private readonly options: VtdVendorOptions = {}) {}

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    const r = parseVtdRegisters(raw);
    if (!r.ok) return r;
    return ok(decodeVtdUnit(r.value));
  }

  createUnit(init: UnitInit): UnitOps {
    // Core hands back the registers it validated; re-parse them (from the normalized copy if needed).
    let r = parseVtdRegisters(init.raw);
    if (!r.ok) r = parseVtdRegisters(init.decoded.profileRegisters);
    if (!r.ok) throw new PluginContractError(VENDOR, `unit ${init.id}: ${r.error}`);
    return new VtdUnit(init, r.value, this.options);
  }

  probeLine(line: string): Result<{
    /** The unit's name from the line (`dmarN`). */
    id: string;
    /** VER/CAP/ECAP and the register base the line prints, in host profile form. */
    registers: RawRegisters;
  }> | null {
    return probeVtdLine(line);
  }
}
