/**
 * A nest-capable AMD unit for tests. No preset has one: no public boot log at hand shows GTSup,
 * GIoSup and EFR2 GCR3TRPModeSup together, so this is the Zen 3 "Vermeer" EFR with EFR2 bit 3 set and
 * HDSup added, labelled as synthetic.
 */
import { writeLe64 } from '@ioasid/core/driver';
import type { HostProfile } from '@ioasid/core';
import { encodeDte } from '../dte.js';

export const NEST_EFR = 0x58f77ef22294a5an | (1n << 52n);
export const NEST_EFR2 = 0x8n;

export const nestProfile: HostProfile = {
  name: 'synthetic nest-capable AMD unit (Vermeer EFR + HDSup, EFR2 GCR3TRPModeSup)',
  units: [{ id: 'ivhd0', vendor: 'amd-vi', registers: { efr: `0x${NEST_EFR.toString(16)}`, efr2: '0x8' } }],
  devices: [
    { bdf: '0000:0a:00.0', unit: 'ivhd0', group: 1, ats: true, pri: true, pasidBits: 16 },
    { bdf: '0000:0b:00.0', unit: 'ivhd0', group: 2 },
  ],
};

/** struct iommu_hwpt_amd_guest for a guest DTE (little-endian dte[4]). */
export function guestDteBytes(fields: Parameters<typeof encodeDte>[0]): Uint8Array {
  const r = encodeDte(fields);
  if (!r.ok) throw new Error(r.error);
  const b = new Uint8Array(32);
  r.value.forEach((q, i) => writeLe64(b, i * 8, q));
  return b;
}

/**
 * What a VMM might pass as vIOMMU data: mainline's amd_iommufd_viommu_init() never reads it (these 32
 * bytes are the out-of-tree AMD HW-vIOMMU series' struct iommu_viommu_amd naming the IOMMU 00:00.2).
 */
export function viommuAmdData(): Uint8Array {
  const b = new Uint8Array(32);
  b[0] = 0x02;
  return b;
}

/** A vIOMMU type for tests: mainline has no AMD one and accepts any but IOMMU_VIOMMU_TYPE_DEFAULT. */
export const ANY_VIOMMU_TYPE = 3;
