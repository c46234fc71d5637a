/** Intel VT-d: CAP.MGAW/SAGAW/FS1GP for QEMU's checks, intel_iommu=on, and /sys/class/iommu/dmarN/intel-iommu/. */
import type { RawRegisters, Result } from '@ioasid/core/driver';
import { registerField, sysfsHex } from './fields.js';
import { scanVtdLog } from './vtd-log.js';
import type { PlannerVendor } from './types.js';

const SAGAW_BITS: ReadonlyArray<[number, number]> = [
  [1, 39],
  [2, 48],
  [3, 57],
];

/** intel-iommu/{version,cap,ecap,address}: "%d:%d", then %llx without 0x (drivers/iommu/intel/iommu.c). */
function toRegisters(files: Readonly<Record<string, string>>): Result<RawRegisters> {
  const cap = sysfsHex(files.cap);
  const ecap = sysfsHex(files.ecap);
  if (cap === null) return { ok: false, error: `intel-iommu/cap: expected a hexadecimal register ("%llx"), got ${JSON.stringify(files.cap ?? '(missing)')}` };
  if (ecap === null) return { ok: false, error: `intel-iommu/ecap: expected a hexadecimal register ("%llx"), got ${JSON.stringify(files.ecap ?? '(missing)')}` };
  const m = /^(\d+):(\d+)$/.exec((files.version ?? '').trim());
  if (!m || Number(m[1]) > 15 || Number(m[2]) > 15) return { ok: false, error: `intel-iommu/version: expected "major:minor" ("%d:%d"), got ${JSON.stringify(files.version ?? '(missing)')}` };
  const regs: Record<string, string> = { ver: `0x${((Number(m[1]) << 4) | Number(m[2])).toString(16)}`, cap, ecap };
  const address = sysfsHex(files.address);
  if (address !== null) regs.regBase = address;
  return { ok: true, value: regs };
}

export const vtdVendor: PlannerVendor = {
  id: 'vtd',
  name: 'Intel VT-d',
  arch: 'x86',
  kernelParameter: 'intel_iommu=on',
  logSignatures: [/^DMAR: /, /^DMAR-IR: /],
  sysfs: { dir: 'intel-iommu', files: ['version', 'cap', 'ecap', 'address'], toRegisters },
  scanLog: scanVtdLog,
  // struct iommu_hw_info_vtd { __u32 flags; __u32 __reserved; __aligned_u64 cap_reg; __aligned_u64 ecap_reg; }
  hwInfo: {
    type: 1,
    toRegisters(data) {
      if (data.length < 24) return { ok: false, error: `iommu_hw_info_vtd is 24 bytes, got ${data.length}` };
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
      return { ok: true, value: { cap: `0x${v.getBigUint64(8, true).toString(16)}`, ecap: `0x${v.getBigUint64(16, true).toString(16)}` } };
    },
  },
  facts(decoded) {
    const caps = decoded.caps;
    const inputBits = caps.hostStage?.inputBits ?? [];
    const mgaw = registerField(decoded, 'CAP', 'MGAW');
    const sagawField = registerField(decoded, 'CAP', 'SAGAW');
    const sagaw = sagawField === undefined ? [...inputBits] : SAGAW_BITS.filter(([bit]) => (sagawField >> bit) & 1).map(([, w]) => w);
    const fs1gp = caps.userStage ? (caps.userStage.pageSizes & (1n << 30n)) !== 0n : false;
    return { vtd: { mgaw: mgaw === undefined ? undefined : mgaw + 1, sagaw, firstStage: caps.userStage !== null, fs1gp } };
  },
};
