/**
 * The AMD-Vi vendor family (the amd_iommu driver's iommu_ops): validates a unit's registers from a
 * host profile, builds units and reads boot lines (`ioasid probe`), with probe.ts. What `ioasid decode amd-vi ...`
 * explains (register values, log entries, commands and kernel lines) is the plugin's decoder (decode.ts).
 */
import { PluginContractError } from '@ioasid/core/driver';
import type { DecodedUnit, IommuVendor, RawRegisters, UnitInit, UnitOps } from '@ioasid/core/driver';
import { ok, type Result } from '@ioasid/core/driver';
import { completeAmdProbedUnits, decodeAmdUnit, parseAmdRegisters, probeAmdLine, type AmdProbedUnit } from './probe.js';
import { AmdUnit, type AmdUnitOptions } from './unit.js';

const VENDOR = 'amd-vi';

/** Options of {@link AmdVendor}, passed to every unit it creates: the kernel eras of the lines. */
export type AmdVendorOptions = AmdUnitOptions;

/** The AMD-Vi family. Plain class: register it with `useValue`. */
export class AmdVendor implements IommuVendor {
  readonly id = VENDOR;
  readonly name = 'AMD-Vi';

  constructor(private readonly options: AmdVendorOptions = {}) {}

  decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
    const r = parseAmdRegisters(raw);
    if (!r.ok) return r;
    return ok(decodeAmdUnit(r.value));
  }

  createUnit(init: UnitInit): UnitOps {
    let r = parseAmdRegisters(init.raw);
    if (!r.ok) r = parseAmdRegisters(init.decoded.profileRegisters);
    if (!r.ok) throw new PluginContractError(VENDOR, `unit ${init.id}: ${r.error}`);
    return new AmdUnit(init, r.value, this.options);
  }

  probeLine(line: string): Result<{
    /** The unit id (see {@link probeAmdLine}). */
    id: string;
    /** The registers the line gives. */
    registers: RawRegisters;
  }> | null {
    return probeAmdLine(line);
  }

  completeProbe(units: readonly AmdProbedUnit[]): AmdProbedUnit[] {
    return completeAmdProbedUnits(units);
  }
}

