/**
 * SMMUv3 register sets of real systems. Where a register dump was not available the values are derived from
 * the implementation's documented features and from the "ias … oas … (features 0x…)" and "allocated … entries"
 * lines of real kernel logs; each preset says which fields are derived.
 */

/** One SMMUv3 instance of a preset with its identification register values. */
export interface SmmuPresetUnit {
  /** Unit name, as devices refer to it. */
  readonly id: string;
  /**
   * MMIO base address of the SMMU's register page 0, hex (Linux prints the SMMU as `arm-smmu-v3.N.auto` or by this
   * address).
   */
  readonly base: string;
  /** IDR0..IDR5 as hex u32. */
  readonly idr: readonly string[];
  /** SMMU_IIDR, hex u32. */
  readonly iidr: string;
  /** SMMU_AIDR, hex u32. */
  readonly aidr: string;
}

/** One device of a preset, the SMMU it is behind and the StreamID it issues. */
export interface SmmuPresetDevice {
  /** PCI address `domain:bus:device.function`. */
  readonly bdf: string;
  /** `id` of the SMMU the device's StreamID reaches. */
  readonly unit: string;
  /** IOMMU group number (devices that cannot be isolated from each other share one). */
  readonly group: number;
  /** StreamID: for PCI the requester ID (bus << 8 | devfn) through a 1:1 IORT/DT mapping. */
  readonly streamId: number;
  /** The device has ATS enabled (needs SMMU_IDR0.ATS; Linux sets STE.EATS = TRANS). */
  readonly ats?: boolean;
  /** The device can issue PCIe page requests (PRI; needs ATS and SMMU_IDR0.PRI). */
  readonly pri?: boolean;
  /** SubstreamID (PASID) width in bits the device supports, at most SMMU_IDR1.SSIDSIZE. */
  readonly pasidBits?: number;
  /** The device tolerates stalled transactions (firmware `dma-can-stall`): faults stall instead of terminating. */
  readonly stall?: boolean;
  /** Reserved IOVA ranges (`start`/`last` inclusive, hex) as /sys/kernel/iommu_groups/N/reserved_regions lists them. */
  readonly reservedRegions?: ReadonlyArray<{
    /** First IOVA of the range, hex. */
    readonly start: string;
    /** Last IOVA of the range (inclusive), hex. */
    readonly last: string;
    /** `msi`: the software MSI window (IOMMU_RESV_SW_MSI); `direct`: an identity mapping (IORT RMR); `reserved`: never mapped. */
    readonly type: 'msi' | 'direct' | 'reserved';
  }>;
}

/** A real SMMUv3 system: its SMMUs with their register values and an illustrative device list. */
export interface SmmuPreset {
  /** Short identifier of the preset. */
  readonly id: string;
  /** Human-readable system name. */
  readonly name: string;
  /** What the SMMUs implement, in one sentence. */
  readonly description: string;
  /** The SMMU instances. */
  readonly units: readonly SmmuPresetUnit[];
  /** The devices and the SMMU each sits behind. */
  readonly devices: readonly SmmuPresetDevice[];
}

/** Linux reserves this IOVA window (MSI_IOVA_BASE, MSI_IOVA_LENGTH) as IOMMU_RESV_SW_MSI for every master. */
const ARM_SW_MSI = { start: '0x8000000', last: '0x80fffff', type: 'msi' } as const;

function pciDevice(bdf: string, unit: string, group: number, extra: Partial<SmmuPresetDevice> = {}): SmmuPresetDevice {
  // For PCI, the StreamID is the requester ID (bus << 8 | devfn) behind a 1:1 IORT/DT id mapping.
  const [, bus, dev, fn] = /^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(bdf) ?? [];
  const streamId = (Number.parseInt(bus ?? '0', 16) << 8) | (Number.parseInt(dev ?? '0', 16) << 3) | Number(fn ?? 0);
  return { bdf, unit, group, streamId, reservedRegions: [ARM_SW_MSI], ...extra };
}

/**
 * QEMU `-device arm-smmuv3` / `-machine virt,iommu=smmuv3` (hw/arm/smmuv3.c smmuv3_init_regs): values straight
 * from the model. No PASID (SSIDSIZE = 0), so no PRI/PASID device is possible behind it.
 */
export const qemuVirtSmmuv3: SmmuPreset = {
  id: 'qemu-virt-smmuv3',
  name: 'QEMU virt, arm-smmuv3 (stage=1)',
  description:
    'QEMU emulated SMMUv3.1: S1 only (default stage property), AArch64 tables, LE, no stall, TERM_MODEL=1, 2-level ' +
    'stream table, 16-bit SIDs, no substreams, RIL, BBML2, 44-bit OAS, 4K/16K/64K granules, IIDR 0.',
  units: [
    {
      id: 'smmuv3.0',
      base: '0x9050000',
      idr: ['0x0d44101a', '0x02730010', '0x00000000', '0x00001404', '0x00000000', '0x00000074'],
      iidr: '0x00000000',
      aidr: '0x00000001',
    },
  ],
  devices: [pciDevice('0000:00:02.0', 'smmuv3.0', 1), pciDevice('0000:00:03.0', 'smmuv3.0', 2)],
};

/** QEMU with `stage=nested` (newer QEMU): S1P and S2P, plus IDR3.XNX which the model sets with stage 2. */
export const qemuVirtSmmuv3Nested: SmmuPreset = {
  id: 'qemu-virt-smmuv3-nested',
  name: 'QEMU virt, arm-smmuv3 (stage=nested)',
  description: 'QEMU emulated SMMUv3.1 with both stages (nested), otherwise identical to the stage=1 model.',
  units: [
    {
      id: 'smmuv3.0',
      base: '0x9050000',
      idr: ['0x0d44101b', '0x02730010', '0x00000000', '0x00001414', '0x00000000', '0x00000074'],
      iidr: '0x00000000',
      aidr: '0x00000001',
    },
  ],
  devices: [pciDevice('0000:00:02.0', 'smmuv3.0', 1)],
};

/**
 * Arm MMU-600 (SMMUv3.1), as in the Neoverse N1 SDP and Ampere Altra / Graviton2-class servers.
 * Real: an Altra 5.4 log prints "ias 48-bit, oas 48-bit (features 0x00001fff)" and allocates 2^18 cmdq, 2^17
 * evtq and 2^18 priq entries, i.e. 2-level STRTAB/CDTAB, mixed endian, PRI, ATS, SEV, MSI, coherent, S1, S2,
 * stall, HYP, no VAX, 48-bit OAS; queue sizes were capped by the kernel, so IDR1 carries the architectural 19.
 * Derived: HTTU = 2 and BTM from the MMU-600 TRM (5.4 had no HA/HD flags), SSIDSIZE 20, SIDSIZE 16, all three
 * granules, STALL_MAX 0 (unknown), IIDR r2p0 (the revision is not in the log).
 */
const MMU600_UNIT_IDR = ['0x080d76bb', '0x02739d10', '0x00000000', '0x00000000', '0x00000000', '0x00000075'];

/** Ampere Altra: two MMU-600 (SMMUv3.1) instances in front of PCIe root complexes, register values as derived above. */
export const ampereAltraMmu600: SmmuPreset = {
  id: 'ampere-altra-mmu600',
  name: 'Ampere Altra (Arm MMU-600)',
  description:
    'Arm MMU-600 SMMUv3.1 per PCIe root complex: S1+S2, 48-bit OAS, 4K/16K/64K, SSID 20, PRI, ATS, stall, HTTU.',
  units: [
    { id: 'smmu0', base: '0x100000000000', idr: MMU600_UNIT_IDR, iidr: '0x4832043b', aidr: '0x00000001' },
    { id: 'smmu1', base: '0x140000000000', idr: MMU600_UNIT_IDR, iidr: '0x4832043b', aidr: '0x00000001' },
  ],
  devices: [
    pciDevice('0000:01:00.0', 'smmu0', 1, { ats: true, pri: true, pasidBits: 20 }),
    pciDevice('0004:01:00.0', 'smmu1', 2, { ats: true }),
  ],
};

/**
 * Arm Neoverse N1 SDP: MMU-600 in front of the PCIe and CCIX root complexes (same register values as the Altra preset).
 */
export const neoverseN1Sdp: SmmuPreset = {
  id: 'neoverse-n1sdp',
  name: 'Arm Neoverse N1 SDP (MMU-600)',
  description:
    'Neoverse N1 System Development Platform: MMU-600 in front of the PCIe and CCIX root complexes. Register ' +
    'values derived as for the Altra preset (same IP).',
  units: [
    { id: 'smmu-pcie', base: '0x4f000000', idr: MMU600_UNIT_IDR, iidr: '0x4832043b', aidr: '0x00000001' },
    { id: 'smmu-ccix', base: '0x4f400000', idr: MMU600_UNIT_IDR, iidr: '0x4832043b', aidr: '0x00000001' },
  ],
  devices: [
    pciDevice('0000:01:00.0', 'smmu-pcie', 1, { ats: true, pri: true, pasidBits: 20 }),
    pciDevice('0001:01:00.0', 'smmu-ccix', 2),
  ],
};

/**
 * Arm MMU-700 (SMMUv3.2) platform, Neoverse N2/V2 / Graviton3-class. Derived from the MMU-700 documented feature
 * set: everything of MMU-600 plus RIL (mandatory in v3.2), BBML1, ATTR_TYPES_OVR. IIDR r1p1 assumed (below r1p1
 * Linux drops nesting, errata 2268618/2812531); Linux always clears BTM and forces an extra CMD_SYNC on MMU-700.
 */
export const mmu700Platform: SmmuPreset = {
  id: 'neoverse-v2-mmu700',
  name: 'Neoverse V2 class server (Arm MMU-700)',
  description: 'Arm MMU-700 SMMUv3.2: S1+S2 nesting, 48-bit OAS, 4K/16K/64K, SSID 20, PRI, ATS, HTTU, RIL.',
  units: [
    { id: 'smmu0', base: '0x10000000', idr: ['0x080d76bb', '0x0a739d10', '0x00000000', '0x00000c00', '0x00000000', '0x00000075'], iidr: '0x4871143b', aidr: '0x00000002' },
  ],
  devices: [
    pciDevice('0000:01:00.0', 'smmu0', 1, { ats: true, pri: true, pasidBits: 20 }),
    pciDevice('0000:02:00.0', 'smmu0', 2),
  ],
};

/**
 * NVIDIA Grace (Tegra241 CMDQV companion). Real: "ias 48-bit, oas 48-bit (features 0x001e1fbf)" with 2^19 entries
 * for cmdq, evtq and priq: 2-level tables, mixed endian, PRI, ATS, no SEV, MSI, coherent, S1+S2, stall, HYP, SVA,
 * E2H, nesting, ATTR_TYPES_OVR, and neither RIL, VAX nor HTTU. Derived: SSIDSIZE 20, SIDSIZE 16, 4K+64K granules,
 * AIDR v3.1 (no RIL), IIDR implementer NVIDIA (JEP106 0x36b) with product 0: the real IIDR was not found.
 */
export const nvidiaGrace: SmmuPreset = {
  id: 'nvidia-grace',
  name: 'NVIDIA Grace (SMMUv3 + CMDQV)',
  description: 'NVIDIA Grace CPU SMMUv3 units: S1+S2, 48-bit OAS, SSID 20, PRI, ATS, stall, 2^19-entry queues.',
  units: [
    { id: 'smmu9', base: '0x16000000', idr: ['0x080d361b', '0x0a739d10', '0x00000000', '0x00000000', '0x00000000', '0x00000055'], iidr: '0x0000036b', aidr: '0x00000001' },
    { id: 'smmu10', base: '0x17000000', idr: ['0x080d361b', '0x0a739d10', '0x00000000', '0x00000000', '0x00000000', '0x00000055'], iidr: '0x0000036b', aidr: '0x00000001' },
  ],
  devices: [
    pciDevice('0009:01:00.0', 'smmu9', 1, { ats: true, pri: true, pasidBits: 20 }),
    pciDevice('0008:01:00.0', 'smmu10', 2, { ats: true }),
  ],
};

/**
 * HiSilicon Kunpeng 920 (Hi1620). Derived: its on-die accelerators (ZIP, SEC, HPRE) reach SVA through stall
 * faults rather than PCIe PRI, so STALL_MODEL = 0 with PRI and ATS off; SSIDSIZE 16, S1+S2, 48-bit OAS.
 * IIDR and AIDR were not found: IIDR 0 and v3.1 are placeholders.
 */
export const kunpeng920: SmmuPreset = {
  id: 'hisilicon-kunpeng920',
  name: 'HiSilicon Kunpeng 920',
  description: 'Kunpeng 920 SMMUv3: S1+S2, 48-bit OAS, SSID 16, stall model faults for the on-die accelerators.',
  units: [
    { id: 'smmu-acc', base: '0x140000000', idr: ['0x080c721b', '0x02730410', '0x00000000', '0x00000000', '0x00000000', '0x00000075'], iidr: '0x00000000', aidr: '0x00000001' },
    { id: 'smmu-pcie', base: '0x148000000', idr: ['0x080c721b', '0x02730410', '0x00000000', '0x00000000', '0x00000000', '0x00000075'], iidr: '0x00000000', aidr: '0x00000001' },
  ],
  devices: [
    // hisi_zip: an integrated endpoint that stalls on faults and uses PASIDs for SVA.
    pciDevice('0000:75:00.0', 'smmu-acc', 1, { stall: true, pasidBits: 16 }),
    pciDevice('0000:7d:00.0', 'smmu-pcie', 2),
  ],
};

export const presets: readonly SmmuPreset[] = [
  qemuVirtSmmuv3,
  qemuVirtSmmuv3Nested,
  ampereAltraMmu600,
  neoverseN1Sdp,
  mmu700Platform,
  nvidiaGrace,
  kunpeng920,
];
