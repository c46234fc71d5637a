/**
 * @ioasid/core/testing: the mock vendor and helpers for tests of core and of vendor plugins. It imports no
 * test runner: the conformance kit, which runs under vitest, is its own entry, `@ioasid/core/conformance`.
 */
export * from './mock-vendor.js';
export { mockDecoder, MOCK_RECORD_WORDS } from './mock-decoder.js';
export { mockFormat, mockWriteGuestTable } from './mock-format.js';
export { testTableMemory, type TestTableMemory } from './table-memory.js';
export { errCode } from './err-code.js';
export { kernelPrintf, type PrintkArg } from './printk.js';
export { mappedDevice, type MappedDevice } from './mapped-device.js';
export {
  IsolationWorld,
  isolationOp,
  ISOLATION_OP_WORDS,
  WINDOW_START,
  WINDOW_PAGES,
  HUGE_SLOTS,
  type IsolationOp,
  type IsolationOptions,
  type IsolationNested,
  type RefArea,
  type RefPage,
} from './isolation.js';
