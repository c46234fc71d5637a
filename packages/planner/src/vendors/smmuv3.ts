/** Arm SMMUv3: the IDR fields QEMU's accel checks compare, and which of them the source could not give. */
import { registerField } from './fields.js';
import type { PlannerVendor } from './types.js';

const OAS_BITS = [32, 36, 40, 42, 44, 48, 52, 56];

export const smmuv3Vendor: PlannerVendor = {
  id: 'smmuv3',
  name: 'Arm SMMUv3',
  arch: 'arm',
  // The SMMU translates unless the firmware leaves it out; Linux's switch is passthrough off.
  kernelParameter: 'iommu.passthrough=0 (and the SMMU described in the IORT or device tree)',
  logSignatures: [/^arm-smmu-v3 \S+: /],
  sysfsName: /^smmu3\.0x[0-9a-f]+$/i,
  // struct iommu_hw_info_arm_smmuv3 { __u32 flags; __u32 __reserved; __u32 idr[6]; __u32 iidr; __u32 aidr; }
  hwInfo: {
    type: 2,
    toRegisters(data) {
      if (data.length < 40) return { ok: false, error: `iommu_hw_info_arm_smmuv3 is 40 bytes, got ${data.length}` };
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const w = (i: number) => `0x${v.getUint32(8 + 4 * i, true).toString(16).padStart(8, '0')}`;
      return { ok: true, value: { idr: [0, 1, 2, 3, 4, 5].map(w), iidr: w(6), aidr: w(7) } };
    },
  },
  facts(decoded) {
    const caps = decoded.caps;
    const f = (reg: string, field: string) => registerField(decoded, reg, field);
    const pageSizes = caps.hostStage?.pageSizes ?? caps.userStage?.pageSizes ?? 0n;
    const oasEnc = f('IDR5', 'OAS');
    const oas = oasEnc !== undefined && OAS_BITS[oasEnc] !== undefined ? OAS_BITS[oasEnc] : (caps.hostStage?.outputBits ?? caps.userStage?.outputBits ?? 48);
    const bit = (l: number) => (pageSizes & (1n << BigInt(l))) !== 0n;
    const g = (name: string, l: number) => {
      const v = f('IDR5', name);
      return v === undefined ? bit(l) : v === 1;
    };
    const raw = decoded.profileRegisters as { unknown?: unknown };
    const unknown = Array.isArray(raw.unknown) ? raw.unknown.filter((x): x is string => typeof x === 'string') : [];
    const ril = f('IDR3', 'RIL');
    const ats = f('IDR0', 'ATS');
    // A field the source could not give (a unit from the boot log) is taken as passing QEMU's check on it,
    // and the check says so (models/arm-smmuv3.ts).
    const known = (name: string) => !unknown.includes(name);
    return {
      smmu: {
        stLevel: known('IDR0.ST_LEVEL') ? f('IDR0', 'ST_LEVEL') : undefined,
        ttEndian: f('IDR0', 'TTENDIAN'),
        ttf: f('IDR0', 'TTF'),
        sidSize: known('IDR1.SIDSIZE') ? f('IDR1', 'SIDSIZE') : undefined,
        ssidSize: known('IDR1.SSIDSIZE') ? (f('IDR1', 'SSIDSIZE') ?? caps.pasidBits) : 20,
        ril: ril === undefined ? caps.rangeInvalidation : ril === 1,
        ats: ats === undefined ? caps.ats : ats === 1,
        oas,
        gran4k: known('IDR5.GRAN4K') ? g('GRAN4K', 12) : true,
        gran16k: known('IDR5.GRAN16K') ? g('GRAN16K', 14) : true,
        gran64k: known('IDR5.GRAN64K') ? g('GRAN64K', 16) : true,
        unknown,
      },
    };
  },
};
