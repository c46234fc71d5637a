/** The names this plugin registers under: the vendor id (a host profile's `vendor`) and its page-table format. */
export const VENDOR_ID = 'riscv-iommu';
export const VENDOR_NAME = 'RISC-V IOMMU';
export const FORMAT_ID = 'riscv-iommu-pt';
