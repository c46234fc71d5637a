/**
 * AMD IOMMUs of real machines: the EFR / EFR2 values their kernels printed in "AMD-Vi: Extended
 * features (...)" (public boot logs of the parts named), with the era of the kernel that printed them.
 * EFR is fixed by the die, so one value stands for every SKU of a generation. Devices are typical of
 * each platform; their BDFs and PCIe capabilities are illustrative, not from the same logs.
 */
import type { DeviceProfile, HostProfile } from '@ioasid/core';
import { hex } from './bits.js';
import { DEFAULT_CAP_PTR, type AmdBootEra } from './logs.js';

/** One IOMMU of a preset machine. */
export interface AmdPresetUnit {
  /** The kernel's name of the instance: ivhd0, ivhd1, ... */
  readonly id: string;
  /** The Extended Feature Register value the machine's boot log printed. */
  readonly efr: bigint;
  /** The EFR2 value the log printed (0 when its kernel printed only EFR). */
  readonly efr2: bigint;
  /** The IOMMU's PCI function (the "Found IOMMU" line). */
  readonly pciAddress: string;
}

/** A real AMD machine: its IOMMUs' registers from a public boot log, and some devices behind them. */
export interface AmdPreset {
  /** A stable id, e.g. 'amd-zen3-milan-epyc'. */
  readonly id: string;
  /** A short human name (the host profile's `name`). */
  readonly name: string;
  /** What the machine is and what its log shows (the host profile's `description`). */
  readonly description: string;
  /** The microarchitecture and platform, e.g. 'Zen 3 EPYC (Milan)'. */
  readonly generation: string;
  /** The form of the boot lines the source log shows. */
  readonly bootEra: AmdBootEra;
  /** What the source log printed, for the tests that reproduce it. */
  readonly printed: readonly string[];
  /** The machine's IOMMUs (one per ivhd). */
  readonly units: readonly AmdPresetUnit[];
  /** Devices placed behind the IOMMUs for the profile. */
  readonly devices: readonly DeviceProfile[];
}

const clientDevices = (unit: string): DeviceProfile[] => [
  { bdf: '0000:01:00.0', unit, group: 14, description: 'NVMe SSD' },
  { bdf: '0000:0a:00.0', unit, group: 17, ats: true, pri: true, pasidBits: 16, pasidExec: false, pasidPriv: false, description: 'Radeon GPU (ATS, PRI, PASID)' },
  { bdf: '0000:0b:00.0', unit, group: 19, description: 'Ethernet controller' },
];

/** Every AMD-Vi preset (Zen 1 to Zen 5, client and EPYC), each with the kernel era of its source log. */
export const amdPresets: readonly AmdPreset[] = [
  {
    id: 'amd-zen1-ryzen',
    name: 'Ryzen desktop (Zen 1, AM4) on a 4.x kernel',
    description: 'AMD Zen 1 client (first-generation AM4 Ryzen; the CPU model is not in the source log) on a 4.x kernel: "Found IOMMU at ... cap 0x40" and the one-register features line',
    generation: 'Zen 1 client (Summit Ridge)',
    bootEra: 'v4',
    printed: ['AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40', 'AMD-Vi: Extended features (0xf77ef22294ada):'],
    units: [{ id: 'ivhd0', efr: 0xf77ef22294adan, efr2: 0n, pciAddress: '0000:00:00.2' }],
    devices: clientDevices('ivhd0'),
  },
  {
    // Source: iommu mailing list, 2020-12-03, "AMD-Vi: Event logged [IO_PAGE_FAULT device=42:00.0 ...]",
    // https://lore.kernel.org/all/CAH6h+heGo0bV20LRV5dP2VvH1j-kD_DMSK=aHr4ZpbBuuHT1DA@mail.gmail.com/
    // (amd_iommu_dump=1 boot lines of a Supermicro H12SSW-NT, RHEL 7.8 3.10 kernel). The board is
    // single-socket SP3 for EPYC 7002/7003; the post predates the EPYC 7003 (Milan) launch of March 2021,
    // and its EFR differs from the Milan preset's, so the CPU is an EPYC 7002 (the model is not in the log).
    id: 'amd-zen2-rome-epyc',
    name: 'Supermicro H12SSW-NT, EPYC 7002 (Zen 2 Rome)',
    description: 'AMD EPYC 7002 (Zen 2 "Rome", single socket, Supermicro H12SSW-NT) on a RHEL 7 3.10 kernel: four IOMMUs, one per root complex, "Found IOMMU at ... cap 0x40" and the pr_cont feature names; GT and x2APIC, no HDSup',
    generation: 'Zen 2 EPYC (Rome)',
    bootEra: 'v4',
    printed: ['AMD-Vi: Found IOMMU at 0000:c0:00.2 cap 0x40', 'AMD-Vi: Extended features (0x58f77ef22294ade):', ' PPR X2APIC NX GT IA GA PC GA_vAPIC', 'AMD-Vi: Found IOMMU at 0000:00:00.2 cap 0x40'],
    units: [
      { id: 'ivhd0', efr: 0x58f77ef22294aden, efr2: 0n, pciAddress: '0000:c0:00.2' },
      { id: 'ivhd1', efr: 0x58f77ef22294aden, efr2: 0n, pciAddress: '0000:80:00.2' },
      { id: 'ivhd2', efr: 0x58f77ef22294aden, efr2: 0n, pciAddress: '0000:40:00.2' },
      { id: 'ivhd3', efr: 0x58f77ef22294aden, efr2: 0n, pciAddress: '0000:00:00.2' },
    ],
    // The three devices the log's IO_PAGE_FAULT lines name, behind the IOMMU of their root complex.
    devices: [
      { bdf: '0000:c8:02.0', unit: 'ivhd0', group: 60, ats: true, description: 'Ethernet function passed to a VM (SR-IOV)' },
      { bdf: '0000:42:00.0', unit: 'ivhd2', group: 30, description: 'PCIe device passed to a VM' },
      { bdf: '0000:01:00.0', unit: 'ivhd3', group: 12, description: 'PCIe device passed to a VM' },
    ],
  },
  {
    id: 'amd-zen3-vermeer',
    name: 'Ryzen 5000 desktop (Zen 3 Vermeer)',
    description: 'AMD Zen 3 desktop (Ryzen 5000 "Vermeer", B550): PPR NX GT IA PC GA_vAPIC, no x2APIC',
    generation: 'Zen 3 client (Vermeer)',
    bootEra: 'v5',
    printed: ['pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40', 'AMD-Vi: Extended features (0x58f77ef22294a5a): PPR NX GT IA PC GA_vAPIC'],
    units: [{ id: 'ivhd0', efr: 0x58f77ef22294a5an, efr2: 0n, pciAddress: '0000:00:00.2' }],
    devices: clientDevices('ivhd0'),
  },
  {
    id: 'amd-zen3-cezanne',
    name: 'Ryzen 5000G APU (Zen 3 Cezanne)',
    description: 'AMD Zen 3 APU (Ryzen 5000G/U "Cezanne") on a 5.x kernel printing the split pr_cont form',
    generation: 'Zen 3 client APU (Cezanne)',
    bootEra: 'v5-split',
    printed: ['pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40', 'pci 0000:00:00.2: AMD-Vi: Extended features (0x206d73ef22254ade):', ' PPR X2APIC NX GT IA GA PC GA_vAPIC'],
    units: [{ id: 'ivhd0', efr: 0x206d73ef22254aden, efr2: 0n, pciAddress: '0000:00:00.2' }],
    devices: clientDevices('ivhd0'),
  },
  {
    id: 'amd-zen4-raphael',
    name: 'Ryzen 7000 desktop (Zen 4 Raphael)',
    description: 'AMD Zen 4 desktop (Ryzen 7000 "Raphael") on a 6.x kernel: the global EFR line with EFR2',
    generation: 'Zen 4 client (Raphael)',
    bootEra: 'v6',
    printed: ['AMD-Vi: Extended features (0x246577efa2254afa, 0x0): PPR NX GT [5] IA GA PC GA_vAPIC'],
    units: [{ id: 'ivhd0', efr: 0x246577efa2254afan, efr2: 0n, pciAddress: '0000:00:00.2' }],
    devices: clientDevices('ivhd0'),
  },
  {
    // Source: https://github.com/elatov/elatov.github.io (the post "Migrating To Proxmox Server and Using AMD GPUs
    // with ollama", _posts/): an HP Z2 Mini G1a with a Strix Halo APU (Radeon 8060S at c4:00.0), Proxmox 6.x
    // kernel, "Using global IVHD EFR:0x246577efa2254afa, EFR2:0x10". The SKU (Ryzen AI Max / Max PRO) is not in
    // the log. The EFR is Raphael's; EFR2 sets GAPPIDisSup.
    id: 'amd-zen5-strix-halo',
    name: 'HP Z2 Mini G1a, Ryzen AI Max (Zen 5 Strix Halo)',
    description: 'AMD Zen 5 APU ("Strix Halo", HP Z2 Mini G1a) on a 6.x kernel: the global IVHD EFR with EFR2 0x10 (GAPPIDisSup)',
    generation: 'Zen 5 client APU (Strix Halo)',
    bootEra: 'v6',
    printed: ['AMD-Vi: Extended features (0x246577efa2254afa, 0x10): PPR NX GT [5] IA GA PC GA_vAPIC'],
    units: [{ id: 'ivhd0', efr: 0x246577efa2254afan, efr2: 0x10n, pciAddress: '0000:00:00.2' }],
    devices: [
      { bdf: '0000:c4:00.0', unit: 'ivhd0', group: 22, ats: true, pri: true, pasidBits: 16, pasidExec: false, pasidPriv: false, description: 'Radeon 8060S iGPU (ATS, PRI, PASID)' },
      { bdf: '0000:c4:00.1', unit: 'ivhd0', group: 23, description: 'HD Audio controller' },
      { bdf: '0000:c1:00.0', unit: 'ivhd0', group: 15, description: 'NVMe SSD' },
    ],
  },
  {
    id: 'amd-zen3-milan-epyc',
    name: 'Dell PowerEdge R6515, EPYC 7513 (Zen 3 Milan)',
    description: 'AMD EPYC 7003 (Zen 3 "Milan", Dell R6515 with an EPYC 7513, SEV-SNP BIOS): four IOMMUs, one per root complex, HDSup, no GT',
    generation: 'Zen 3 EPYC (Milan)',
    bootEra: 'v5',
    printed: [
      'pci 0000:c0:00.2: AMD-Vi: Found IOMMU cap 0x40',
      'AMD-Vi: Extended features (0x841f77e022094ace): PPR X2APIC NX IA GA PC',
    ],
    units: [
      { id: 'ivhd0', efr: 0x841f77e022094acen, efr2: 0n, pciAddress: '0000:c0:00.2' },
      { id: 'ivhd1', efr: 0x841f77e022094acen, efr2: 0n, pciAddress: '0000:80:00.2' },
      { id: 'ivhd2', efr: 0x841f77e022094acen, efr2: 0n, pciAddress: '0000:40:00.2' },
      { id: 'ivhd3', efr: 0x841f77e022094acen, efr2: 0n, pciAddress: '0000:00:00.2' },
    ],
    devices: [
      { bdf: '0000:c1:00.0', unit: 'ivhd0', group: 56, ats: true, description: 'Mellanox ConnectX-6 Dx' },
      { bdf: '0000:81:00.0', unit: 'ivhd1', group: 40, description: 'NVMe SSD' },
      { bdf: '0000:41:00.0', unit: 'ivhd2', group: 30, description: 'NVMe SSD' },
      { bdf: '0000:01:00.0', unit: 'ivhd3', group: 12, description: 'BMC VGA' },
    ],
  },
  {
    id: 'amd-zen4-epyc-snp',
    name: 'EPYC SEV-SNP host (Zen 4 class)',
    description: 'AMD EPYC SEV-SNP host (Zen 4 class, 6.9 snp-host kernel): SNP, HDSup, EFR2 0x1d with GCR3 TRP mode, no GT',
    generation: 'Zen 4 EPYC (SNP host)',
    bootEra: 'v6',
    printed: ['AMD-Vi: Extended features (0xa5bf7320a2294aee, 0x1d): PPR X2APIC NX [5] IA GA PC GA_vAPIC SNP'],
    units: [{ id: 'ivhd0', efr: 0xa5bf7320a2294aeen, efr2: 0x1dn, pciAddress: '0000:00:00.2' }],
    devices: [
      { bdf: '0000:01:00.0', unit: 'ivhd0', group: 20, ats: true, description: 'Broadcom NetXtreme-E' },
      { bdf: '0000:02:00.0', unit: 'ivhd0', group: 21, description: 'NVMe SSD' },
    ],
  },
];

/** A preset as a host profile: each unit's registers as a profile holds them. */
export function amdPresetProfile(p: AmdPreset): HostProfile {
  return {
    name: p.name,
    description: p.description,
    units: p.units.map((u) => ({ id: u.id, vendor: 'amd-vi', registers: { efr: hex(u.efr), efr2: hex(u.efr2), pciAddress: u.pciAddress, capPtr: hex(DEFAULT_CAP_PTR) } })),
    devices: p.devices.map((d) => ({ ...d })),
  };
}

/** A preset by id ('amd-zen3-milan-epyc') or exact name. */
export function findAmdPreset(idOrName: string): AmdPreset | undefined {
  return amdPresets.find((p) => p.id === idOrName || p.name === idOrName);
}

/** The host profile of a preset, by id or name; throws for an unknown one (a programming error). */
export function amdPresetById(idOrName: string): HostProfile {
  const p = findAmdPreset(idOrName);
  if (!p) throw new RangeError(`no AMD-Vi preset ${idOrName} (${amdPresets.map((x) => x.id).join(', ')})`);
  return amdPresetProfile(p);
}
