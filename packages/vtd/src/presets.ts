/**
 * Presets: real machines, with the exact VER/CAP/ECAP values each one printed in its
 * `DMAR: dmarN: reg_base_addr ... ver M:m cap ... ecap ...` boot line. Every unit below cites the
 * public log it was copied from. The device lists are illustrative (bus/device numbers come from
 * the same logs where they show them); what each device can do never exceeds what its unit allows:
 * PASID and PRI only behind a unit with scalable mode, ECAP.PASID and ECAP.PRS, ATS only behind
 * ECAP.DT.
 */
import type { HostProfile } from '@ioasid/core';
import { decodeEcap, parseHex64, pasidSupported, smSupported } from './registers.js';

/** One VT-d remapping unit (DRHD) of a preset, with the register values its boot line printed. */
export interface VtdPresetUnit {
  /** "dmar0": the name Linux gives the unit (seq id in DRHD order). */
  readonly id: string;
  /** DRHD register base, hex. */
  readonly regBase: string;
  /** VER_REG, CAP_REG, ECAP_REG as hex strings. */
  readonly ver: string;
  /** CAP_REG, hex. */
  readonly cap: string;
  /** ECAP_REG, hex. */
  readonly ecap: string;
}

/** One PCI device of a preset and the unit that translates its DMA. */
export interface VtdPresetDevice {
  /** PCI address, `domain:bus:device.function`. */
  readonly bdf: string;
  /** `id` of the unit whose DRHD scope holds the device. */
  readonly unit: string;
  /** IOMMU group number (devices that cannot be isolated from each other share one). */
  readonly group: number;
  /** The device has ATS enabled (needs ECAP.DT). */
  readonly ats?: boolean;
  /** The device can issue PCIe page requests (PRI; needs ATS and ECAP.PRS in scalable mode). */
  readonly pri?: boolean;
  /** PASID width in bits the device supports (needs scalable mode with ECAP.PASID; at most PSS + 1). */
  readonly pasidBits?: number;
  /** Reserved IOVA ranges (`start`/`last` inclusive, hex) as /sys/kernel/iommu_groups/N/reserved_regions lists them. */
  readonly reservedRegions?: Array<{
    /** First IOVA of the range, hex. */
    start: string;
    /** Last IOVA of the range (inclusive), hex. */
    last: string;
    /** `msi`: the interrupt window; `direct`: an RMRR identity mapping; `reserved`: never mapped. */
    type: 'msi' | 'direct' | 'reserved';
  }>;
}

/** A real VT-d machine: its units with their exact register values and an illustrative device list. */
export interface VtdPreset {
  /** Short identifier, as `findVtdPreset` takes it. */
  readonly id: string;
  /** Human-readable machine name. */
  readonly name: string;
  /** What is notable about the machine's units. */
  readonly description: string;
  /** The remapping units, in DRHD order. */
  readonly units: VtdPresetUnit[];
  /** The PCI devices and the unit each sits behind. */
  readonly devices: VtdPresetDevice[];
}

/** The x86 interrupt (MSI) window: IOVAs here are claimed by interrupt remapping, never by DMA. */
const MSI_WINDOW = { start: '0xfee00000', last: '0xfeefffff', type: 'msi' } as const;

function msiOnly(): Array<{ start: string; last: string; type: 'msi' | 'direct' | 'reserved' }> {
  return [{ ...MSI_WINDOW }];
}

/** A device behind an RMRR keeps an identity-mapped (direct) window, as the BIOS reported it. */
function withRmrr(start: string, last: string): Array<{ start: string; last: string; type: 'msi' | 'direct' | 'reserved' }> {
  return [{ start, last, type: 'direct' }, { ...MSI_WINDOW }];
}

/** Every VT-d preset, each unit's values copied from a public boot log. */
export const vtdPresets: readonly VtdPreset[] = [
  {
    id: 'skylake-h-client',
    name: 'Skylake-H laptop (Core i7-6700HQ)',
    description:
      'VT-d 1.0 client, legacy mode: an integrated-graphics unit with extended-context-era bits (ECS, PRS, ' +
      'PASID bit 28) that Linux no longer uses, and the main unit with snoop control and pass-through.',
    // Source: "nvidia-prime causing system shutdown" forum thread (2016-02), dmesg of a PC Specialist
    // Cosmos IV (DMAR table OEM id "SKL"), Linux 4.2.0-16-generic:
    //   DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap 1c0000c40660462 ecap 7e3ff0501e
    //   DMAR: dmar1: reg_base_addr fed91000 ver 1:0 cap d2008c40660462 ecap f050da
    units: [
      { id: 'dmar0', regBase: '0xfed90000', ver: '0x10', cap: '0x1c0000c40660462', ecap: '0x7e3ff0501e' },
      { id: 'dmar1', regBase: '0xfed91000', ver: '0x10', cap: '0xd2008c40660462', ecap: '0xf050da' },
    ],
    devices: [
      { bdf: '0000:00:02.0', unit: 'dmar0', group: 1, ats: true, reservedRegions: msiOnly() },
      { bdf: '0000:00:14.0', unit: 'dmar1', group: 2, reservedRegions: withRmrr('0x774ae000', '0x774cdfff') },
      { bdf: '0000:01:00.0', unit: 'dmar1', group: 3, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'broadwell-client',
    name: 'Broadwell client desktop',
    description:
      'VT-d 1.0 client from before 4.x kernels renamed the units: the boot lines use the old ' +
      '"dmar: IOMMU N:" form. No device-TLB, no large pages on the graphics unit.',
    // Source: an older revision of the ArchWiki page "PCI passthrough via OVMF", `dmesg|grep -e DMAR -e
    // IOMMU` of a machine whose DMAR table OEM id is "INTEL BDW" (RMRRs from the same capture):
    //   dmar: IOMMU 0: reg_base_addr fed90000 ver 1:0 cap c0000020660462 ecap f0101a
    //   dmar: IOMMU 1: reg_base_addr fed91000 ver 1:0 cap d2008c20660462 ecap f010da
    units: [
      { id: 'dmar0', regBase: '0xfed90000', ver: '0x10', cap: '0xc0000020660462', ecap: '0xf0101a' },
      { id: 'dmar1', regBase: '0xfed91000', ver: '0x10', cap: '0xd2008c20660462', ecap: '0xf010da' },
    ],
    devices: [
      { bdf: '0000:00:02.0', unit: 'dmar0', group: 1, reservedRegions: withRmrr('0xbf000000', '0xcf1fffff') },
      { bdf: '0000:00:14.0', unit: 'dmar1', group: 2, reservedRegions: withRmrr('0xbdea8000', '0xbdeb6fff') },
      { bdf: '0000:06:00.0', unit: 'dmar1', group: 3, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'haswell-broadwell-ep-2s',
    name: 'Dell PowerEdge T630, two-socket Xeon E5 v3/v4 (Haswell/Broadwell-EP)',
    description:
      'VT-d 1.0 server, legacy mode, one unit per socket: 48-bit MGAW, ATS, 8 fault recording registers, ' +
      'page-walk coherent. The same CAP/ECAP is reported by Skylake-SP (Xeon Gold 6146) in a linux-mm report.',
    // Source: "Bootstrap Proxmox" notes for a Dell T630 (DMAR table "DELL PE_SC3"):
    //   DMAR: dmar0: reg_base_addr fbffc000 ver 1:0 cap 8d2078c106f0466 ecap f020df
    //   DMAR: dmar1: reg_base_addr c7ffc000 ver 1:0 cap 8d2078c106f0466 ecap f020df
    units: [
      { id: 'dmar0', regBase: '0xfbffc000', ver: '0x10', cap: '0x8d2078c106f0466', ecap: '0xf020df' },
      { id: 'dmar1', regBase: '0xc7ffc000', ver: '0x10', cap: '0x8d2078c106f0466', ecap: '0xf020df' },
    ],
    devices: [
      { bdf: '0000:03:00.0', unit: 'dmar1', group: 1, ats: true, reservedRegions: msiOnly() },
      { bdf: '0000:81:00.0', unit: 'dmar0', group: 2, ats: true, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'icelake-sp-1s',
    name: 'Dell one-socket Ice Lake-SP (Xeon Silver 4314)',
    description:
      'VT-d 4.0 server with five units (one per PCIe stack), 57-bit MGAW but 4-level SAGAW, posted ' +
      'interrupts, PRQ drain; scalable mode is not advertised, so no PASID.',
    // Source: full dmesg of a Dell server, "smpboot: CPU0: Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz
    // (family: 0x6, model: 0x6a, stepping: 0x6)", RTC date 2025-05-17:
    //   DMAR: dmar0: reg_base_addr bb7fc000 ver 4:0 cap 8ed008c40780466 ecap 60000f050df
    //   ... dmar1 d0ffc000, dmar2 e67fc000, dmar3 fb7fc000, dmar4 a5ffc000 (same cap/ecap)
    units: [
      { id: 'dmar0', regBase: '0xbb7fc000', ver: '0x40', cap: '0x8ed008c40780466', ecap: '0x60000f050df' },
      { id: 'dmar1', regBase: '0xd0ffc000', ver: '0x40', cap: '0x8ed008c40780466', ecap: '0x60000f050df' },
      { id: 'dmar2', regBase: '0xe67fc000', ver: '0x40', cap: '0x8ed008c40780466', ecap: '0x60000f050df' },
      { id: 'dmar3', regBase: '0xfb7fc000', ver: '0x40', cap: '0x8ed008c40780466', ecap: '0x60000f050df' },
      { id: 'dmar4', regBase: '0xa5ffc000', ver: '0x40', cap: '0x8ed008c40780466', ecap: '0x60000f050df' },
    ],
    devices: [
      { bdf: '0000:04:00.0', unit: 'dmar4', group: 1, reservedRegions: msiOnly() },
      { bdf: '0000:18:00.0', unit: 'dmar0', group: 2, ats: true, reservedRegions: msiOnly() },
      { bdf: '0000:18:00.1', unit: 'dmar0', group: 3, ats: true, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'sapphire-rapids-class',
    name: 'VT-d 6.0 Xeon (Sapphire Rapids generation)',
    description:
      'VT-d 6.0 server unit in scalable mode: first and second stage, nesting, second-stage A/D (dirty ' +
      'tracking), 20-bit PSS, but PASID and PRS are not advertised, so no SVA or page requests.',
    // Source: README of the "x86_ir_table" kernel module (`dmesg | grep DMAR`); the CPU model is not named:
    //   DMAR: dmar0: reg_base_addr aa3fc000 ver 6:0 cap 9ed008c40780466 ecap 3ee9e86f050df
    units: [{ id: 'dmar0', regBase: '0xaa3fc000', ver: '0x60', cap: '0x9ed008c40780466', ecap: '0x3ee9e86f050df' }],
    devices: [
      { bdf: '0000:00:1f.7', unit: 'dmar0', group: 1, reservedRegions: msiOnly() },
      { bdf: '0000:03:00.0', unit: 'dmar0', group: 2, ats: true, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'raptorlake-hx-client',
    name: 'Raptor Lake-HX laptop (Core i9-14900HX)',
    description:
      'Hybrid-core client: a VT-d 4.0 graphics unit with device-TLB and 20-bit PSS, and a VT-d 5.0 main ' +
      'unit; legacy mode on both (no SMTS).',
    // Source: linux-usb thread "USB-C DisplayPort display failing to stay active with Intel Barlow Ridge
    // USB4 controller" (2024-10-11), Linux 6.8.0-45-kfocus, "Intel(R) Core(TM) i9-14900HX":
    //   DMAR: dmar0: reg_base_addr fed90000 ver 4:0 cap 1c0000c40660462 ecap 29a00f0505e
    //   DMAR: dmar1: reg_base_addr fed91000 ver 5:0 cap d2008c40660462 ecap f050da
    //   DMAR: RMRR base: 0x0000003c000000 end: 0x000000407fffff
    units: [
      { id: 'dmar0', regBase: '0xfed90000', ver: '0x40', cap: '0x1c0000c40660462', ecap: '0x29a00f0505e' },
      { id: 'dmar1', regBase: '0xfed91000', ver: '0x50', cap: '0xd2008c40660462', ecap: '0xf050da' },
    ],
    devices: [
      { bdf: '0000:00:02.0', unit: 'dmar0', group: 1, ats: true, reservedRegions: withRmrr('0x3c000000', '0x407fffff') },
      { bdf: '0000:06:00.0', unit: 'dmar1', group: 2, reservedRegions: msiOnly() },
      { bdf: '0000:01:00.0', unit: 'dmar1', group: 3, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'arrowlake-u-client',
    name: 'Arrow Lake-U laptop (Core Ultra 5 235U)',
    description:
      'VT-d 7.0 client in scalable mode (first and second stage, RID_PASID, abort-DMA mode) with a 42-bit ' +
      'MGAW; PASID, PRS and nesting are not advertised.',
    // Source: full dmesg, "smpboot: CPU0: Intel(R) Core(TM) Ultra 5 235U (family: 0x6, model: 0xb5)":
    //   DMAR: dmar0: reg_base_addr fc800000 ver 7:0 cap c9de008cee690462 ecap 12ca9a00f0ef5e
    //   DMAR: dmar1: reg_base_addr fc801000 ver 7:0 cap c9de008cee690462 ecap 12ca9a00f0efde
    units: [
      { id: 'dmar0', regBase: '0xfc800000', ver: '0x70', cap: '0xc9de008cee690462', ecap: '0x12ca9a00f0ef5e' },
      { id: 'dmar1', regBase: '0xfc801000', ver: '0x70', cap: '0xc9de008cee690462', ecap: '0x12ca9a00f0efde' },
    ],
    devices: [
      { bdf: '0000:00:02.0', unit: 'dmar0', group: 1, ats: true, reservedRegions: msiOnly() },
      { bdf: '0000:00:0b.0', unit: 'dmar1', group: 2, reservedRegions: msiOnly() },
      { bdf: '0000:00:1f.6', unit: 'dmar1', group: 3, reservedRegions: msiOnly() },
    ],
  },
  {
    id: 'granite-rapids-2s',
    name: 'Dell PowerEdge R770, two-socket Xeon 6515P (Granite Rapids)',
    description:
      'VT-d 7.0 server with everything: scalable mode, 5-level first and second stage, 20-bit PASID, page ' +
      'requests, nesting, dirty tracking, ECMD/perfmon. The accelerator below does SVA with page faults.',
    // Source: server bring-up notes for a Dell PowerEdge R770 ("Model name: Intel(R) Xeon(R) 6515P",
    // `dmesg | grep -iE "iommu|dmar"`, DMAR table "DELL PE_SC3", "DMAR: Host address width 52"):
    //   DMAR: dmar0: reg_base_addr cbfe0000 ver 7:0 cap f9ed008cee780c66 ecap 3fef9ea6f0efdf
    //   DMAR: dmar1: reg_base_addr cc7e0000 ver 7:0 cap f9ed008cee780c66 ecap 3fef9ea6f0efdf
    units: [
      { id: 'dmar0', regBase: '0xcbfe0000', ver: '0x70', cap: '0xf9ed008cee780c66', ecap: '0x3fef9ea6f0efdf' },
      { id: 'dmar1', regBase: '0xcc7e0000', ver: '0x70', cap: '0xf9ed008cee780c66', ecap: '0x3fef9ea6f0efdf' },
    ],
    devices: [
      { bdf: '0000:5c:00.0', unit: 'dmar0', group: 1, ats: true, reservedRegions: msiOnly() },
      { bdf: '0000:ae:00.0', unit: 'dmar1', group: 2, reservedRegions: msiOnly() },
      {
        bdf: '0000:f2:01.0',
        unit: 'dmar1',
        group: 3,
        ats: true,
        pri: true,
        pasidBits: 20,
        reservedRegions: msiOnly(),
      },
    ],
  },
  {
    id: 'qemu-intel-iommu-cm',
    name: 'QEMU intel-iommu (intremap=on,caching-mode=on)',
    description:
      "QEMU's emulated VT-d as a guest sees it: caching mode set (the guest flushes on every map, which is " +
      'what lets VFIO shadow its tables), 39-bit 3-level, interrupt remapping with x2APIC, no device-TLB.',
    // Source: qemu-discuss thread (2020-10, QEMU 4.2.1) with
    // `-device intel-iommu,intremap=on,caching-mode=on`, guest dmesg (DMAR table "BOCHS BXPCDMAR"):
    //   DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c22260286 ecap f00f5a
    units: [{ id: 'dmar0', regBase: '0xfed90000', ver: '0x10', cap: '0xd2008c22260286', ecap: '0xf00f5a' }],
    devices: [
      { bdf: '0000:00:03.0', unit: 'dmar0', group: 1, reservedRegions: msiOnly() },
      { bdf: '0000:00:1f.2', unit: 'dmar0', group: 2, reservedRegions: msiOnly() },
    ],
  },
];

/** The preset with this `id`, or undefined. */
export function findVtdPreset(id: string): VtdPreset | undefined {
  return vtdPresets.find((p) => p.id === id);
}

/**
 * A preset as a host profile: the one path from a preset to what `createHost` and the CLI load. The unit's
 * `registers` carry `regBase` too, so that the unit's boot line reproduces the one the machine printed.
 */
export function vtdPresetProfile(p: VtdPreset): HostProfile {
  return {
    name: p.name,
    description: p.description,
    units: p.units.map((u) => ({ id: u.id, vendor: 'vtd', registers: { ver: u.ver, cap: u.cap, ecap: u.ecap, regBase: u.regBase } })),
    devices: p.devices.map((d) => ({
      ...d,
      ...(d.reservedRegions ? { reservedRegions: d.reservedRegions.map((r) => ({ ...r })) } : {}),
    })),
  };
}

/**
 * Problems in a preset: a device asking for more than its unit can do (PASID/PRI without scalable-mode
 * PASID and PRS, ATS without ECAP.DT), unknown units, duplicate BDFs, unparsable registers.
 */
export function checkVtdPreset(preset: VtdPreset): string[] {
  const problems: string[] = [];
  const units = new Map<string, ReturnType<typeof decodeEcap>>();
  for (const u of preset.units) {
    const regs = [u.ver, u.cap, u.ecap, u.regBase].map(parseHex64);
    const bad = regs.find((r) => !r.ok);
    if (bad && !bad.ok) {
      problems.push(`${preset.id}/${u.id}: ${bad.error}`);
      continue;
    }
    const ecap = parseHex64(u.ecap);
    if (ecap.ok) units.set(u.id, decodeEcap(ecap.value));
  }
  const seen = new Set<string>();
  for (const d of preset.devices) {
    const where = `${preset.id}/${d.bdf}`;
    if (seen.has(d.bdf)) problems.push(`${where}: duplicate BDF`);
    seen.add(d.bdf);
    const ecap = units.get(d.unit);
    if (!ecap) {
      problems.push(`${where}: unknown unit ${d.unit}`);
      continue;
    }
    if (d.ats && !ecap.DT) problems.push(`${where}: ATS behind ${d.unit} without ECAP.DT`);
    if (d.pasidBits && !pasidSupported(ecap)) problems.push(`${where}: PASID behind ${d.unit} without scalable-mode PASID`);
    if (d.pasidBits && d.pasidBits > ecap.PSS + 1) problems.push(`${where}: ${d.pasidBits}-bit PASID above PSS`);
    if (d.pri && !(smSupported(ecap) && ecap.PRS)) problems.push(`${where}: PRI behind ${d.unit} without ECAP.PRS`);
    if (d.pri && !d.ats) problems.push(`${where}: PRI needs ATS`);
  }
  return problems;
}
