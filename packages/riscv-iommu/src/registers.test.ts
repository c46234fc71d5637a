/**
 * capabilities / fctl / ddtp against values written out from the specification's register chapter and
 * QEMU's defaults (literals here, never computed by the code under test).
 */
import { describe, expect, it } from 'vitest';
import { CAP_RESERVED, QEMU_PCI_CAP, QEMU_SYS_CAP, ZDL_RTL_DEFAULT_CAP, capsFromCap, decodeCap, decodeDdtp, decodeFctl, decodeUnitRegisters, encodeCap, encodeDdtp } from './index.js';

/** QEMU riscv-iommu-pci, default properties: version 0x10, Sv32..Sv57, Svrsw60t59b, Sv32x4..Sv57x4, MSI_FLAT, MSI_MRIF, ATS, HPM, DBG, PAS 56, PD8, IGS MSI. */
const QEMU_PCI = 0x0000_0078_c2cf_4f10n;
/** The same with IGS = BOTH (riscv-iommu-sys). */
const QEMU_SYS = 0x0000_0078_e2cf_4f10n;
/** zero-day-labs RTL top-level defaults: version 0x10, Sv39, Sv39x4, IGS WSI, PAS 56, PD8/PD17/PD20. */
const ZDL = 0x0000_01f8_1002_0210n;

describe('capabilities', () => {
  it('decodes every field of the QEMU default', () => {
    const r = decodeCap(QEMU_PCI);
    if (!r.ok) throw new Error(r.error);
    expect(r.value).toEqual({
      version: 0x10, Sv32: 1, Sv39: 1, Sv48: 1, Sv57: 1, Svrsw60t59b: 1, Svpbmt: 0, Sv32x4: 1, Sv39x4: 1, Sv48x4: 1, Sv57x4: 1,
      AMO_MRIF: 0, MSI_FLAT: 1, MSI_MRIF: 1, AMO_HWAD: 0, ATS: 1, T2GPA: 0, END: 0, IGS: 0, HPM: 1, DBG: 1, PAS: 56,
      PD8: 1, PD17: 0, PD20: 0, QOSID: 0, NL: 0, S: 0, custom: 0,
    });
  });

  it('places every field at its bits', () => {
    expect(QEMU_PCI_CAP).toBe(QEMU_PCI);
    expect(QEMU_SYS_CAP).toBe(QEMU_SYS);
    expect(ZDL_RTL_DEFAULT_CAP).toBe(ZDL);
    // One field at a time, each at the bit the register table gives it.
    const single: [string, number, bigint][] = [
      ['Sv32', 1, 1n << 8n], ['Sv57', 1, 1n << 11n], ['Svrsw60t59b', 1, 1n << 14n], ['Svpbmt', 1, 1n << 15n], ['Sv32x4', 1, 1n << 16n], ['Sv57x4', 1, 1n << 19n],
      ['AMO_MRIF', 1, 1n << 21n], ['MSI_FLAT', 1, 1n << 22n], ['MSI_MRIF', 1, 1n << 23n], ['AMO_HWAD', 1, 1n << 24n], ['ATS', 1, 1n << 25n], ['T2GPA', 1, 1n << 26n],
      ['END', 1, 1n << 27n], ['IGS', 2, 2n << 28n], ['HPM', 1, 1n << 30n], ['DBG', 1, 1n << 31n], ['PAS', 0x3f, 0x3fn << 32n], ['PD8', 1, 1n << 38n], ['PD17', 1, 1n << 39n],
      ['PD20', 1, 1n << 40n], ['QOSID', 1, 1n << 41n], ['NL', 1, 1n << 42n], ['S', 1, 1n << 43n], ['custom', 0xff, 0xffn << 56n],
    ];
    for (const [name, v, bits] of single) expect(encodeCap({ [name]: v }), name).toBe(bits);
  });

  it('refuses reserved bits and the reserved IGS encoding', () => {
    expect(CAP_RESERVED).toBe(0x00ff_f000_0010_3000n);
    for (const bit of [12n, 13n, 20n, 44n, 55n]) expect(decodeCap(QEMU_PCI | (1n << bit)).ok, `bit ${bit}`).toBe(false);
    expect(decodeCap(QEMU_PCI | (3n << 28n))).toEqual({ ok: false, error: 'capabilities.IGS: 3 is reserved (0 MSI, 1 WSI, 2 BOTH)' });
    expect(decodeCap(1n << 64n).ok).toBe(false);
    // Custom bits are the implementation's: kept.
    expect(decodeCap(QEMU_PCI | (0xa5n << 56n)).ok).toBe(true);
  });

  it('gives the normalized capabilities mainline Linux offers', () => {
    const r = decodeCap(QEMU_PCI);
    if (!r.ok) throw new Error(r.error);
    const caps = capsFromCap(r.value);
    expect(caps.version).toBe('1.0');
    // First stage only, all three widths; for the Sv57 domain Linux picks, generic_pt's sizes: 4K, the 64K
    // Svnapot run, and a leaf at every level (2M/1G/512G/256T).
    expect(caps.hostStage).toEqual({ inputBits: [39, 48, 57], outputBits: 56, pageSizes: (1n << 12n) | (1n << 16n) | (1n << 21n) | (1n << 30n) | (1n << 39n) | (1n << 48n), accessDirty: false });
    expect([caps.userStage, caps.pasidBits, caps.pri, caps.ats, caps.nesting, caps.dirtyTracking, caps.interruptRemapping, caps.coherent]).toEqual([null, 0, false, false, false, false, false, true]);
    expect(caps.features).toEqual(expect.arrayContaining(['sv39x4', 'sv57x4', 'msi-flat', 'ats', 'hpm', 'dbg', 'pd8', 'igs-msi']));
  });
});

describe('fctl and ddtp', () => {
  it('decodes fctl BE / WSI / GXL and refuses reserved bits', () => {
    expect(decodeFctl(0x2n)).toEqual({ ok: true, value: { BE: 0, WSI: 1, GXL: 0, custom: 0 } });
    expect(decodeFctl(0x5n)).toEqual({ ok: true, value: { BE: 1, WSI: 0, GXL: 1, custom: 0 } });
    expect(decodeFctl(0x8n).ok).toBe(false);
    expect(decodeFctl(0x1_0000_0000n).ok).toBe(false);
  });

  it('decodes ddtp mode and root PPN', () => {
    // 3LVL (4) with the root table at 0x123400 >> 10 = PPN 0x48d.
    expect(decodeDdtp(0x12_3404n)).toEqual({ ok: true, value: { iommu_mode: 4, busy: 0, PPN: 0x48d } });
    expect(encodeDdtp({ iommu_mode: 3, PPN: 0x80000 })).toBe(0x2000_0003n);
    expect(decodeDdtp(0x5n).ok).toBe(false);
    expect(decodeDdtp(1n << 5n).ok).toBe(false);
    expect(decodeDdtp(1n << 54n).ok).toBe(false);
  });
});

describe('profile registers', () => {
  it('decodes a unit and writes its registers back normalized', () => {
    const r = decodeUnitRegisters({ capabilities: '0x78C2CF4F10' });
    if (!r.ok) throw new Error(r.error);
    expect(r.value.profileRegisters).toEqual({ capabilities: '0x78c2cf4f10', fctl: '0x0' });
    expect(r.value.registers.map((x) => x.name)).toEqual(['capabilities', 'fctl']);
    expect(r.value.hwId).toBe('RISC-V IOMMU 1.0, Sv39/Sv48/Sv57/Sv39x4/Sv48x4/Sv57x4, PAS 56, IGS MSI, MSI_FLAT, ATS, HPM, DBG');
  });

  it('names the register in every refusal', () => {
    expect(decodeUnitRegisters({ capabilities: '0x78c2cf4f10', ecap: 1 })).toEqual({ ok: false, error: "unknown register 'ecap' (known: capabilities, fctl)" });
    expect(decodeUnitRegisters({}).ok).toBe(false);
    expect(decodeUnitRegisters({ capabilities: 'zz' }).ok).toBe(false);
    // WSI set on an MSI-only unit; BE without END; version 2.0; Sv48 without Sv39; no first stage at all.
    expect(decodeUnitRegisters({ capabilities: '0x78c2cf4f10', fctl: '0x2' })).toEqual({ ok: false, error: 'fctl.WSI: set, but capabilities.IGS says MSI only' });
    expect(decodeUnitRegisters({ capabilities: '0x78c2cf4f10', fctl: '0x1' }).ok).toBe(false);
    expect(decodeUnitRegisters({ capabilities: '0x78c2cf4f20' }).ok).toBe(false);
    expect(decodeUnitRegisters({ capabilities: '0x3800000410' }).ok).toBe(false);
    expect(decodeUnitRegisters({ capabilities: '0x3800020010' })).toEqual({ ok: false, error: 'capabilities: no Sv39, Sv48 or Sv57 first stage: Linux finds no supported page table mode' });
  });
});
