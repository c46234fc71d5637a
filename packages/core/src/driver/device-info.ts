/**
 * The device as a vendor plugin sees it. Its own module, below both the vendor contract (vendor.ts) and
 * the fault codec (fault.ts), which both take it: neither has to import the other for it.
 */
/** The device facts a vendor needs (a slice of the PCI device). */
export interface DeviceInfo {
  /** PCI address as the profile spells it, e.g. '0000:3b:00.0'. */
  readonly bdf: string;
  /** PCI requester id: bus << 8 | devfn (or the StreamID on Arm). */
  readonly rid: number;
  /** Arm SMMU StreamID of the device (the profile's `streamId`, the requester id when absent). */
  readonly streamId: number;
  /** The function has the PCIe ATS capability (it may cache translations and needs ATC invalidation). */
  readonly ats: boolean;
  /** The function has the PCIe PRI capability (it can send page requests instead of failing). */
  readonly pri: boolean;
  /** Width of the PASIDs it can send, in bits (0: no PASID capability; at most 20). */
  readonly pasidBits: number;
  /** PASID capability's Execute Permission Supported bit. */
  readonly pasidExec: boolean;
  /** PASID capability's Privileged Mode Supported bit. */
  readonly pasidPriv: boolean;
  /** The device does not snoop (it cannot be forced coherent). */
  readonly noSnoop: boolean;
  /** A PCI virtual function (PRI is then a PF-shared resource). */
  readonly isVf: boolean;
  /**
   * The device can wait on a stalled transaction (firmware `dma-can-stall`, SMMUv3 platform devices):
   * behind a unit with `caps.stall` and a HWPT with a fault queue, its faults stall instead of failing.
   */
  readonly stall: boolean;
}
