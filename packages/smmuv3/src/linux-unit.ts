/**
 * An SMMU unit from what Linux prints at probe (arm_smmu_device_hw_probe): `ias %lu-bit, oas %lu-bit (features
 * 0x%08x)`, `allocated %u entries for cmdq|evtq|priq` and `option mask 0x%x`. The ID registers are rebuilt from the
 * ARM_SMMU_FEAT_* bits they were derived from; the fields Linux does not print (SIDSIZE, SSIDSIZE, the granules,
 * STALL_MAX, ASID16/VMID16, IIDR, AIDR, and a queue size whose line is missing) are listed in `unknown` with the
 * architectural default in their place, so that a plan can say which conclusions depend on them.
 */
import type { Result } from '@ioasid/core/driver';
import {
  IDR0_HTTU,
  IDR0_ST_LEVEL,
  IDR0_STALL_MODEL,
  IDR0_TTENDIAN,
  IDR0_TTF,
  encodeIdr0,
  encodeIdr1,
  encodeIdr3,
  encodeIdr5,
  oasEncoding,
  type SmmuRawRegisters,
} from './registers.js';
import { ARM_SMMU_FEAT } from './probe.js';
import { parseU32 } from './raw.js';

/** The keys of a unit read from the boot log, as a host profile holds them. */
export const LINUX_FORM_KEYS = ['ias', 'oas', 'features', 'options', 'cmdqEntries', 'evtqEntries', 'priqEntries', 'unknown'] as const;

export interface LinuxFormUnit {
  readonly raw: SmmuRawRegisters;
  readonly unknown: readonly string[];
  /** The profile form, written back as read. */
  readonly form: Readonly<Record<string, unknown>>;
}

function log2Entries(v: unknown, what: string): Result<number | undefined> {
  if (v === undefined) return { ok: true, value: undefined };
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1 << 30 || (v & (v - 1)) !== 0) {
    return { ok: false, error: `smmuv3 registers: ${what}: expected the power-of-two entry count of "allocated %u entries", got ${JSON.stringify(v)}` };
  }
  return { ok: true, value: Math.log2(v) };
}

/** Rebuilds IDR0-5 from the probe line's values; fails when the ias/oas/features line is missing. */
export function unitFromLinux(raw: Readonly<Record<string, unknown>>): Result<LinuxFormUnit> {
  if (raw['features'] === undefined || raw['ias'] === undefined || raw['oas'] === undefined) {
    return { ok: false, error: 'smmuv3 registers: the boot log gives this unit no "ias %lu-bit, oas %lu-bit (features 0x%08x)" line (and no idr= dump): nothing to build it from' };
  }
  const features = parseU32(raw['features'], 'smmuv3 registers: features (ARM_SMMU_FEAT_* mask)');
  if (!features.ok) return features;
  const ias = raw['ias'];
  const oas = raw['oas'];
  const oasEnc = typeof oas === 'number' ? oasEncoding(oas) : undefined;
  if (typeof ias !== 'number' || typeof oas !== 'number' || oasEnc === undefined) {
    return { ok: false, error: `smmuv3 registers: ias/oas: expected the bit widths Linux prints (oas one of 32, 36, 40, 42, 44, 48, 52), got ${JSON.stringify(ias)}/${JSON.stringify(oas)}` };
  }
  const queues: Record<string, number | undefined> = {};
  for (const [key, what] of [
    ['cmdqEntries', 'cmdqEntries'],
    ['evtqEntries', 'evtqEntries'],
    ['priqEntries', 'priqEntries'],
  ] as const) {
    const q = log2Entries(raw[key], what);
    if (!q.ok) return q;
    queues[key] = q.value;
  }
  const f = features.value;
  const has = (name: keyof typeof ARM_SMMU_FEAT) => ((f >>> ARM_SMMU_FEAT[name]) & 1) === 1;
  const unknown = ['IDR0.ASID16', 'IDR0.VMID16', 'IDR1.SIDSIZE', 'IDR1.SSIDSIZE', 'IDR5.GRAN4K', 'IDR5.GRAN16K', 'IDR5.GRAN64K', 'IDR5.STALL_MAX', 'IIDR', 'AIDR'];
  // A linear stream table is either the hardware's or the driver's choice for small SIDSIZE.
  if (!has('2_LVL_STRTAB')) unknown.push('IDR0.ST_LEVEL');
  if (!has('BBML2')) unknown.push('IDR3.BBML');
  if (queues.cmdqEntries === undefined) unknown.push('IDR1.CMDQS');
  if (queues.evtqEntries === undefined) unknown.push('IDR1.EVENTQS');
  if (queues.priqEntries === undefined && has('PRI')) unknown.push('IDR1.PRIQS');
  const endian = has('TT_LE') && has('TT_BE') ? IDR0_TTENDIAN.MIXED : has('TT_BE') ? IDR0_TTENDIAN.BE : IDR0_TTENDIAN.LE;
  const idr0 = encodeIdr0({
    S2P: has('TRANS_S2') ? 1 : 0,
    S1P: has('TRANS_S1') ? 1 : 0,
    // The driver refuses an SMMU without AArch64 tables; an ias above the oas means AArch32 tables too (40-bit ias).
    TTF: ias > oas ? IDR0_TTF.AARCH32_64 : IDR0_TTF.AARCH64,
    COHACC: has('COHERENCY') ? 1 : 0,
    BTM: has('BTM') ? 1 : 0,
    HTTU: has('HD') ? IDR0_HTTU.ACCESS_DIRTY : has('HA') ? IDR0_HTTU.ACCESS : IDR0_HTTU.NONE,
    DORMHINT: 0,
    HYP: has('HYP') ? 1 : 0,
    ATS: has('ATS') ? 1 : 0,
    NS1ATS: 0,
    ASID16: 1,
    MSI: has('MSI') ? 1 : 0,
    SEV: has('SEV') ? 1 : 0,
    ATOS: 0,
    PRI: has('PRI') ? 1 : 0,
    VMW: 0,
    VMID16: 1,
    CD2L: has('2_LVL_CDTAB') ? 1 : 0,
    VATOS: 0,
    TTENDIAN: endian,
    ATSRECERR: 0,
    STALL_MODEL: has('STALL_FORCE') ? IDR0_STALL_MODEL.FORCE : has('STALLS') ? IDR0_STALL_MODEL.STALL : IDR0_STALL_MODEL.NO_STALL,
    TERM_MODEL: 0,
    ST_LEVEL: has('2_LVL_STRTAB') ? IDR0_ST_LEVEL.TWO_LEVEL : IDR0_ST_LEVEL.LINEAR,
    RME_IMPL: 0,
  });
  const idr1 = encodeIdr1({
    SIDSIZE: has('2_LVL_STRTAB') ? 16 : 8,
    SSIDSIZE: 0,
    PRIQS: queues.priqEntries ?? (has('PRI') ? 8 : 0),
    EVENTQS: queues.evtqEntries ?? 8,
    CMDQS: queues.cmdqEntries ?? 8,
    ATTR_PERMS_OVR: 0,
    ATTR_TYPES_OVR: has('ATTR_TYPES_OVR') ? 1 : 0,
    REL: 0,
    QUEUES_PRESET: 0,
    TABLES_PRESET: 0,
    ECMDQ: 0,
  });
  const idr3 = encodeIdr3({
    HAD: 0, PBHA: 0, XNX: 0, PPS: 0, MPAM: 0, FWB: has('S2FWB') ? 1 : 0, STT: 0, RIL: has('RANGE_INV') ? 1 : 0, BBML: has('BBML2') ? 2 : 0,
    E0PD: 0, PTWNNC: 0, DPT: 0, PASIDTT: 0, EPAN: 0, S1PI: 0, S2PI: 0, S2PO: 0, THE: 0, MTEPERM: 0, AIE: 0,
  });
  const idr5 = encodeIdr5({ OAS: oasEnc, GRAN4K: 1, GRAN16K: 1, GRAN64K: 1, DS: 0, D128: 0, VAX: has('VAX') ? 1 : 0, STALL_MAX: 0 });
  const form: Record<string, unknown> = {};
  for (const k of LINUX_FORM_KEYS) if (k !== 'unknown' && raw[k] !== undefined) form[k] = raw[k];
  form.unknown = unknown;
  return { ok: true, value: { raw: { idr: [idr0, idr1, 0, idr3, 0, idr5], iidr: 0, aidr: 0 }, unknown, form } };
}
