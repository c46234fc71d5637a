/**
 * @ioasid/core/driver: the contract between core and IOMMU vendor plugins (the iommu_ops of ioasid).
 */
export * from './caps.js';
export * from './pgtable.js';
export { PERM_PRIV_READ, PERM_PRIV_WRITE, PERM_PRIV_EXEC, PERM_RWX, PERM_GRANT_ALL, grantBoth, permNeeded, permAllowed, permAtLevel, permFailure, permOf, type PermissionFailure, type PermRequestFlags } from './permission.js';
export * from './radix.js';
export * from './table-frames.js';
export { ChunkCache, isPfn } from '../memory/chunk-cache.js';
export * from './fault.js';
export * from './vendor.js';
export * from './decoder.js';
export * from './plugin.js';
export * from './result.js';
export * from './bitfield.js';
export * from './le.js';
export * from './user-copy.js';
export * from './log-prefix.js';
export * from './walk-trace.js';
export * from './inject.js';
export { Errno, fail, PluginContractError, IommufdError, ERRNO, ERRNO_TEXT, errnoName, type ErrnoCode } from '../uapi/errno.js';
export { parseProfileNumber, parseBdf, type HostProfile, type CpuProfile, type UnitProfile, type DeviceProfile, type ReservedRegionProfile } from '../host/profile.js';
export { PhysicalMemory, PAGE_SIZE, PAGE_SHIFT, SLAB_FRAME_BITS } from '../memory/physical.js';
export * as uapi from '../uapi/iommufd.js';
export * from './record-words.js';
export * from './advice.js';
export * from './profile-register.js';
