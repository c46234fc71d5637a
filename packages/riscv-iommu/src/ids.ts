/** The names this plugin registers under: the vendor id (a host profile's `vendor`). */
export const VENDOR_ID = 'riscv-iommu';
/** The human name of the vendor. */
export const VENDOR_NAME = 'RISC-V IOMMU';
