/**
 * @ioasid/core/driver: the contract between core and IOMMU vendor plugins (the iommu_ops of ioasid).
 */
export * from './caps.js';
export * from './pgtable.js';
