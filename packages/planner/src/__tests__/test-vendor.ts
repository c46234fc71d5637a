/**
 * A small vendor for the planner's tests: its "registers" are the capabilities themselves, so a
 * test states what a unit can do without any real vendor package. It still claims the real vendor
 * ids ('vtd', 'smmuv3', 'amd-vi') because QEMU's checks depend on the host IOMMU type.
 *
 * registers: { aw, pages?: log2[], fs?: log2[] | null, pasid?, nesting?, ats?, pri?, ir?, ril?,
 *              features?: string[], fields?: { REG: { FIELD: n } } }
 * probe line: "TESTIOMMU <vendor> <id>: <registers JSON>"
 */
import { pageSizesFromLog2, type DecodedUnit, type IommuVendor, type NormalizedCaps, type RawRegisters, type Result } from '@ioasid/core/driver';
import type { HostProfile } from '@ioasid/core';

interface TestRegs {
  aw: number;
  pages?: number[];
  fs?: number[] | null;
  pasid?: number;
  nesting?: boolean;
  ats?: boolean;
  pri?: boolean;
  ir?: boolean;
  ril?: boolean;
  features?: string[];
  fields?: Record<string, Record<string, number>>;
}

export function testVendor(id: string): IommuVendor {
  return {
    id,
    name: `test ${id}`,
    decodeRegisters(raw: RawRegisters): Result<DecodedUnit> {
      const r = raw as unknown as TestRegs;
      if (typeof r.aw !== 'number') return { ok: false, error: 'expected "aw" (the address width in bits, a number)' };
      const pages = pageSizesFromLog2(...(r.pages ?? [12, 21, 30]));
      const caps: NormalizedCaps = {
        vendor: id,
        version: '1.0',
        hostStage: { inputBits: [r.aw], outputBits: r.aw, pageSizes: pages, accessDirty: false },
        userStage: r.fs ? { inputBits: [48], outputBits: r.aw, pageSizes: pageSizesFromLog2(...r.fs), accessDirty: true } : null,
        pasidBits: r.pasid ?? 0,
        pri: r.pri ?? false,
        stall: false,
        ats: r.ats ?? false,
        nesting: r.nesting ?? false,
        dirtyTracking: false,
        coherent: true,
        cachingMode: false,
        rangeInvalidation: r.ril ?? false,
        interruptRemapping: r.ir ?? false,
        features: r.features ?? [],
      };
      const registers = Object.entries(r.fields ?? {}).map(([name, fields]) => ({ name, value: 0n, fields }));
      return { ok: true, value: { vendor: id, caps, hwId: `test ${id} ${r.aw}-bit${r.nesting ? ' nesting' : ''}`, registers, profileRegisters: raw } };
    },
    createUnit() {
      throw new Error('not used by the planner');
    },
    probeLine(line: string) {
      const m = /^TESTIOMMU (\S+) (\S+): (.*)$/.exec(line);
      if (!m || m[1] !== id) return null;
      try {
        return { ok: true, value: { id: m[2], registers: JSON.parse(m[3]) as RawRegisters } };
      } catch {
        return { ok: false, error: `line truncated: registers are not complete JSON: ${m[3]}` };
      }
    },
  };
}

export const vendors = [testVendor('vtd'), testVendor('smmuv3'), testVendor('amd-vi')];

const MSI = [{ start: '0xfee00000', last: '0xfeefffff', type: 'msi' as const }];

/** A VT-d unit: 48-bit, scalable with nesting and 1G first stage unless told otherwise. */
export function vtdUnit(id: string, o: Partial<TestRegs> & { mgaw?: number } = {}) {
  const aw = o.aw ?? 48;
  const { mgaw, ...rest } = o;
  const regs: TestRegs = {
    pages: [12, 21, 30],
    fs: [12, 21, 30],
    nesting: true,
    pasid: 20,
    ats: true,
    pri: true,
    ir: true,
    features: ['x2apic-eim', 'scalable-mode'],
    fields: { CAP: { MGAW: (mgaw ?? aw) - 1, SAGAW: aw >= 48 ? 0b0110 : 0b0010 } },
    ...rest,
    aw,
  };
  return { id, vendor: 'vtd', registers: regs as unknown as RawRegisters };
}

/** A legacy-mode client VT-d unit: 39-bit, no first stage, no nesting. */
export function weakVtdUnit(id: string) {
  return vtdUnit(id, { aw: 39, fs: null, nesting: false, pasid: 0, pri: false, ats: false, features: [] });
}

/** An SMMUv3 unit with the IDR fields QEMU's accel checks read; MMU-700-like by default. */
export function smmuUnit(id: string, o: { idr?: Record<string, Record<string, number>>; nesting?: boolean; aw?: number; pasid?: number; ats?: boolean; ril?: boolean } = {}) {
  const idr: Record<string, Record<string, number>> = {
    IDR0: { ST_LEVEL: 1, TTENDIAN: 0, TTF: 2, ATS: o.ats === false ? 0 : 1 },
    IDR1: { SIDSIZE: 16, SSIDSIZE: o.pasid ?? 20 },
    IDR3: { RIL: o.ril === false ? 0 : 1 },
    IDR5: { OAS: 5, GRAN4K: 1, GRAN16K: 1, GRAN64K: 1 },
  };
  for (const [reg, fields] of Object.entries(o.idr ?? {})) idr[reg] = { ...idr[reg], ...fields };
  const regs: TestRegs = {
    aw: o.aw ?? 48,
    pages: [12, 14, 16, 21, 25, 29, 30],
    fs: [12, 21, 30],
    nesting: o.nesting ?? true,
    pasid: o.pasid ?? 20,
    ats: o.ats ?? true,
    ril: o.ril ?? true,
    fields: idr,
  };
  return { id, vendor: 'smmuv3', registers: regs as unknown as RawRegisters };
}

/** Two VT-d units of different capability on one host. */
export function mixedVtdHost(): HostProfile {
  return {
    name: 'mixed',
    units: [vtdUnit('dmar0'), weakVtdUnit('dmar1')],
    devices: [
      { bdf: '0000:00:02.0', unit: 'dmar0', group: 1, ats: true, pri: true, pasidBits: 20, reservedRegions: MSI },
      { bdf: '0000:00:14.0', unit: 'dmar1', group: 2, reservedRegions: MSI },
    ],
  };
}

export function nestingVtdHost(name = 'spr'): HostProfile {
  return {
    name,
    units: [vtdUnit('dmar0'), vtdUnit('dmar1', { fs: [12, 21] })],
    devices: [
      { bdf: '0000:5c:00.0', unit: 'dmar0', group: 1, ats: true },
      { bdf: '0000:ae:00.0', unit: 'dmar1', group: 2 },
    ],
  };
}

export function armHost(): HostProfile {
  return {
    name: 'arm',
    units: [smmuUnit('smmu0'), smmuUnit('smmu1', { ril: false, pasid: 16 })],
    devices: [
      { bdf: '0000:01:00.0', unit: 'smmu0', group: 1, ats: true, pri: true, pasidBits: 20, reservedRegions: [{ start: '0x8000000', last: '0x80fffff', type: 'msi' }] },
      { bdf: '0004:01:00.0', unit: 'smmu1', group: 2, reservedRegions: [{ start: '0x8000000', last: '0x80fffff', type: 'msi' }] },
    ],
  };
}
