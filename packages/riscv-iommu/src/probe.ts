/**
 * What the Linux driver (drivers/iommu/riscv/iommu.c) derives from `capabilities`: the paging mode it
 * programs (the largest first stage, Sv57 > Sv48 > Sv39), and the normalized capabilities iommufd then
 * offers. Mainline drives the first stage only (DC.fsc = iosatp, PDTV = 0): no second stage, no PDT /
 * PASID, no ATS or PRI (the page-request queue is never enabled), no MSI remapping, no dirty tracking
 * (DC.tc.SADE stays 0 and leaves are written with A and D set), and no `hw_info` op. The hardware's
 * other abilities are listed in `features` for display.
 */
import { err, ok, pageSizesFromLog2, parseProfileNumber, type DecodedUnit, type NormalizedCaps, type RawRegisters, type Result } from '@ioasid/core/driver';
import { VENDOR_ID, VENDOR_NAME } from './ids.js';
import { IGS_MSI, IGS_NAMES, IGS_WSI, capConsistency, decodeCap, decodeFctl, firstStageWidths, secondStageWidths, type CapFields } from './registers.js';

/**
 * The page sizes Linux maps with on a first stage of `vaBits` (the domain's pgsize_bitmap, generic_pt's
 * get_info over the riscv format): 4K and the 64K Svnapot run at level 0 (PT_FEAT_RISCV_SVNAPOT_64K, which
 * riscv_iommu_alloc_paging_domain always sets), then a leaf at every level up to the top: 2M, 1G, 512G from
 * Sv48 on, 256T with Sv57.
 */
export function linuxPageSizes(vaBits: number): bigint {
  return pageSizesFromLog2(12, 16, 21, 30, ...(vaBits >= 48 ? [39] : []), ...(vaBits >= 57 ? [48] : []));
}

/** The first-stage width the driver picks: the largest the unit supports (riscv_iommu_alloc_paging_domain). */
export function linuxPagingWidth(f: CapFields): number {
  const w = firstStageWidths(f);
  return w.length ? w[w.length - 1] : 0;
}

const FEATURE_BITS: readonly [keyof CapFields, string][] = [
  ['Sv32', 'sv32'],
  ['Svrsw60t59b', 'svrsw60t59b'],
  ['Svpbmt', 'svpbmt'],
  ['Sv32x4', 'sv32x4'],
  ['Sv39x4', 'sv39x4'],
  ['Sv48x4', 'sv48x4'],
  ['Sv57x4', 'sv57x4'],
  ['AMO_MRIF', 'amo-mrif'],
  ['MSI_FLAT', 'msi-flat'],
  ['MSI_MRIF', 'msi-mrif'],
  ['AMO_HWAD', 'amo-hwad'],
  ['ATS', 'ats'],
  ['T2GPA', 't2gpa'],
  ['END', 'end'],
  ['HPM', 'hpm'],
  ['DBG', 'dbg'],
  ['PD8', 'pd8'],
  ['PD17', 'pd17'],
  ['PD20', 'pd20'],
  ['QOSID', 'qosid'],
  ['NL', 'nl'],
  ['S', 's'],
];

/** `capabilities` in core's normalized vocabulary, as the mainline driver exposes the unit. */
export function capsFromCap(f: CapFields): NormalizedCaps {
  const width = linuxPagingWidth(f);
  return {
    vendor: VENDOR_ID,
    version: `${f.version >> 4}.${f.version & 0xf}`,
    hostStage: { inputBits: firstStageWidths(f), outputBits: f.PAS, pageSizes: linuxPageSizes(width), accessDirty: false },
    userStage: null,
    pasidBits: 0,
    pri: false,
    stall: false,
    ats: false,
    nesting: false,
    dirtyTracking: false,
    // riscv_iommu_capable: IOMMU_CAP_CACHE_COHERENCY is always true.
    coherent: true,
    cachingMode: false,
    rangeInvalidation: f.S === 1,
    interruptRemapping: false,
    features: [...FEATURE_BITS.filter(([k]) => f[k] === 1).map(([, name]) => name), `igs-${IGS_NAMES[f.IGS].toLowerCase()}`],
  };
}

/** The one-line summary tools print for a unit (Linux prints no capability line of its own). */
export function hwIdOf(f: CapFields): string {
  const s1 = firstStageWidths(f).map((w) => `Sv${w}`);
  const s2 = secondStageWidths(f).map((w) => `Sv${w - 2}x4`);
  const extras = [f.MSI_FLAT ? 'MSI_FLAT' : '', f.ATS ? 'ATS' : '', f.AMO_HWAD ? 'AMO_HWAD' : '', f.HPM ? 'HPM' : '', f.DBG ? 'DBG' : ''].filter((x) => x !== '');
  return `${VENDOR_NAME} ${f.version >> 4}.${f.version & 0xf}, ${[...s1, ...s2].join('/')}, PAS ${f.PAS}, IGS ${IGS_NAMES[f.IGS]}${extras.length ? `, ${extras.join(', ')}` : ''}`;
}

/** Register names a host profile may give for a RISC-V IOMMU unit. */
export const PROFILE_REGISTERS = ['capabilities', 'fctl'] as const;

/**
 * A profile's raw registers (`{ capabilities: '0x...', fctl?: '0x...' }`) decoded into a unit the Linux
 * driver would drive. Errors name the register. A unit without a first-stage mode is refused as Linux
 * refuses it ("cannot find supported page table mode").
 */
export function decodeUnitRegisters(raw: RawRegisters): Result<DecodedUnit> {
  const regs = raw ?? {};
  for (const k of Object.keys(regs)) {
    if (!(PROFILE_REGISTERS as readonly string[]).includes(k)) return err(`unknown register '${k}' (known: ${PROFILE_REGISTERS.join(', ')})`);
  }
  const value = parseProfileNumber(regs.capabilities);
  if (value === null) return err(`capabilities: expected a 64-bit number such as '0x78c2cf4f10', got ${JSON.stringify(regs.capabilities) ?? 'nothing'}`);
  const f = decodeCap(value);
  if (!f.ok) return f;
  const bad = capConsistency(f.value);
  if (bad !== null) return err(bad);
  if (firstStageWidths(f.value).length === 0) return err('capabilities: no Sv39, Sv48 or Sv57 first stage: Linux finds no supported page table mode');
  let fctlValue = 0n;
  if (regs.fctl !== undefined) {
    const v = parseProfileNumber(regs.fctl);
    if (v === null) return err(`fctl: expected a 32-bit number, got ${JSON.stringify(regs.fctl)}`);
    fctlValue = v;
  }
  const fctl = decodeFctl(fctlValue);
  if (!fctl.ok) return fctl;
  if (fctl.value.WSI && f.value.IGS === IGS_MSI) return err('fctl.WSI: set, but capabilities.IGS says MSI only');
  if (!fctl.value.WSI && f.value.IGS === IGS_WSI) return err('fctl.WSI: clear, but capabilities.IGS says WSI only');
  if (fctl.value.BE && !f.value.END) return err('fctl.BE: set, but capabilities.END is clear (one endianness, little)');
  return ok({
    vendor: VENDOR_ID,
    caps: capsFromCap(f.value),
    hwId: hwIdOf(f.value),
    registers: [
      { name: 'capabilities', value, fields: { ...f.value } },
      { name: 'fctl', value: fctlValue, fields: { ...fctl.value } },
    ],
    profileRegisters: { capabilities: `0x${value.toString(16)}`, fctl: `0x${fctlValue.toString(16)}` },
  });
}
