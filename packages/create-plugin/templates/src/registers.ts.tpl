/**
 * The __NAME__ capability register (CAP, 64 bits): what one IOMMU instance can do, as the hardware
 * reports it. Fields are [hi:lo] the way a specification prints them and are read with core's
 * bitfield helpers, so decode and encode are table-driven and bits no field names must be zero.
 *
 * | field | bits | meaning |
 * | --- | --- | --- |
 * | VER_MINOR, VER_MAJOR | 3:0, 7:4 | architecture version |
 * | IAS | 13:8 | input (IOVA) address width: 39 (3 levels) or 48 (4 levels) |
 * | OAS | 19:14 | output address width, 32 to 52 |
 * | PS2M, PS1G | 20, 21 | 2 MiB and 1 GiB blocks |
 * | AD | 22 | hardware access and dirty bits (dirty tracking) |
 * | COH | 23 | DMA can be forced cache-coherent |
 * | IR | 24 | interrupt remapping |
 * | RI | 25 | range invalidation |
 */
import {
  U64_MASK,
  decodeBitFields,
  err,
  fieldPrep,
  ok,
  pageSizesFromLog2,
  uncoveredMask,
  type BitField,
  type NormalizedCaps,
  type Result,
} from '@ioasid/core/driver';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';

export const CAP_FIELDS = [
  { name: 'VER_MINOR', hi: 3, lo: 0 },
  { name: 'VER_MAJOR', hi: 7, lo: 4 },
  { name: 'IAS', hi: 13, lo: 8 },
  { name: 'OAS', hi: 19, lo: 14 },
  { name: 'PS2M', hi: 20, lo: 20 },
  { name: 'PS1G', hi: 21, lo: 21 },
  { name: 'AD', hi: 22, lo: 22 },
  { name: 'COH', hi: 23, lo: 23 },
  { name: 'IR', hi: 24, lo: 24 },
  { name: 'RI', hi: 25, lo: 25 },
] as const satisfies readonly BitField[];

export type CapFieldName = (typeof CAP_FIELDS)[number]['name'];
/** CAP decoded: every field by its name. */
export type CapFields = Readonly<Record<CapFieldName, number>>;

/** Bits of CAP that no field names: reserved, must be zero. */
export const CAP_RESERVED = uncoveredMask(CAP_FIELDS);

/** Decodes and validates CAP. */
export function decodeCap(value: bigint): Result<CapFields> {
  if (value < 0n || value > U64_MASK) return err(`CAP: expected a 64-bit value, got 0x${value.toString(16)}`);
  const reserved = value & CAP_RESERVED;
  if (reserved !== 0n) return err(`CAP: reserved bits set (0x${reserved.toString(16)})`);
  const f = decodeBitFields(CAP_FIELDS, value);
  if (f.VER_MAJOR === 0) return err('CAP.VER_MAJOR: expected 1 or above, got 0');
  if (f.IAS !== 39 && f.IAS !== 48) return err(`CAP.IAS: expected 39 or 48, got ${f.IAS}`);
  if (f.OAS < 32 || f.OAS > 52) return err(`CAP.OAS: expected 32 to 52, got ${f.OAS}`);
  return ok(f);
}

/** Builds a CAP value from its fields (the inverse of decodeCap). */
export function encodeCap(f: CapFields): bigint {
  let v = 0n;
  for (const field of CAP_FIELDS) v |= fieldPrep(BigInt(f[field.name]), field.hi, field.lo);
  return v;
}

/** The page sizes CAP allows: 4 KiB always, 2 MiB and 1 GiB blocks when PS2M / PS1G are set. */
export function capPageSizes(f: CapFields): bigint {
  return pageSizesFromLog2(12, ...(f.PS2M ? [21] : []), ...(f.PS1G ? [30] : []));
}

/** CAP in core's normalized capability vocabulary. */
export function capsFromCap(f: CapFields): NormalizedCaps {
  return {
    vendor: VENDOR_ID,
    version: `${f.VER_MAJOR}.${f.VER_MINOR}`,
    hostStage: { inputBits: [f.IAS], outputBits: f.OAS, pageSizes: capPageSizes(f), accessDirty: f.AD === 1 },
    userStage: null,
    pasidBits: 0,
    pri: false,
    stall: false,
    ats: false,
    nesting: false,
    dirtyTracking: f.AD === 1,
    coherent: f.COH === 1,
    cachingMode: false,
    rangeInvalidation: f.RI === 1,
    interruptRemapping: f.IR === 1,
    features: [...(f.PS1G ? ['1g-blocks'] : [])],
  };
}

/** The one-line summary a boot log and `ioasid` tools print for a unit. */
export function hwIdOf(f: CapFields): string {
  const extras = [f.AD ? 'dirty tracking' : '', f.COH ? 'coherent' : '', f.IR ? 'IR' : ''].filter((s) => s !== '');
  return `${VENDOR_NAME} ${f.VER_MAJOR}.${f.VER_MINOR}, ${f.IAS}-bit IOVA, ${f.OAS}-bit PA${extras.length ? `, ${extras.join(', ')}` : ''}`;
}
