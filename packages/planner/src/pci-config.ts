/**
 * The PCIe extended capabilities of a device that matter to a vIOMMU (ATS, PRI, PASID), read from its
 * config space as /sys/bus/pci/devices/<bdf>/config gives it (little-endian; 64 bytes without
 * CAP_SYS_ADMIN, 256 or 4096 with it). The walk follows drivers/pci/pci.c pci_find_next_ext_capability:
 * start at 0x100, stop at a zero or all-ones header, a next pointer below 0x100, or after 480 steps.
 */
export const PCI_EXT_CAP_ID_ATS = 0x0f;
export const PCI_EXT_CAP_ID_PRI = 0x13;
export const PCI_EXT_CAP_ID_PASID = 0x1b;
const PCI_CFG_SPACE_SIZE = 0x100;
const PCI_CFG_SPACE_EXP_SIZE = 0x1000;
const MAX_STEPS = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8;

/** What a device's config space says about ATS, PRI and PASID (see readIommuCaps). */
export interface PciIommuCaps {
  /** An ATS extended capability (PCI_EXT_CAP_ID_ATS) is present. */
  readonly ats: boolean;
  /** A PRI extended capability (PCI_EXT_CAP_ID_PRI) is present. */
  readonly pri: boolean;
  /** Max PASID Width (PCI_PASID_CAP bits 12:8); 0 without the capability. */
  readonly pasidBits: number;
  /** PASID capability bit 1, Execute Permission Supported (PCI_PASID_CAP_EXEC). */
  readonly pasidExec: boolean;
  /** PASID capability bit 2, Privileged Mode Supported (PCI_PASID_CAP_PRIV). */
  readonly pasidPriv: boolean;
}

/** `readIommuCaps`'s answer: the capabilities read, or why the configuration space could not be read. */
export type ConfigRead =
  | {
      /** The extended capabilities were read. */
      readonly ok: true;
      /** What they say. */
      readonly caps: PciIommuCaps;
    }
  | {
      /** The bytes stop before the extended configuration space. */
      readonly ok: false;
      /** Why, for the user. */
      readonly reason: string;
    };

/**
 * Walks the extended capability list of `config` (a sysfs config file's bytes); not ok, with the reason, when the
 * bytes stop before 0x100 (unprivileged read or conventional PCI). Capabilities it does not find read as absent.
 */
export function readIommuCaps(config: Uint8Array): ConfigRead {

  if (config.length <= PCI_CFG_SPACE_SIZE) {
    return {
      ok: false,
      reason: `config space is ${config.length} bytes: the extended capabilities (ATS, PRI, PASID) start at 0x100 and need root to read (CAP_SYS_ADMIN), or the device is conventional PCI`,
    };
  }
  const dv = new DataView(config.buffer, config.byteOffset, config.byteLength);
  const u32 = (o: number) => (o + 4 <= config.length ? dv.getUint32(o, true) : 0);
  const u16 = (o: number) => (o + 2 <= config.length ? dv.getUint16(o, true) : 0);
  let ats = false;
  let pri = false;
  let pasidBits = 0;
  let pasidExec = false;
  let pasidPriv = false;
  let pos = PCI_CFG_SPACE_SIZE;
  for (let steps = 0; steps < MAX_STEPS && pos >= PCI_CFG_SPACE_SIZE; steps++) {
    const hdr = u32(pos);
    if (hdr === 0 || hdr === 0xffffffff) break;
    const id = hdr & 0xffff;
    if (id === PCI_EXT_CAP_ID_ATS) ats = true;
    else if (id === PCI_EXT_CAP_ID_PRI) pri = true;
    else if (id === PCI_EXT_CAP_ID_PASID) {
      const cap = u16(pos + 4);
      pasidExec = (cap & 0x0002) !== 0;
      pasidPriv = (cap & 0x0004) !== 0;
      pasidBits = (cap >> 8) & 0x1f;
    }
    pos = (hdr >>> 20) & 0xffc;
  }
  return { ok: true, caps: { ats, pri, pasidBits, pasidExec, pasidPriv } };
}
