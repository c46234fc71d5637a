/**
 * @ioasid/core/testing: the mock vendor and helpers for tests of core and of vendor plugins.
 */
export * from './mock-vendor.js';
export { mockFormat, mockWriteGuestTable } from './mock-format.js';
export { describeConformance, conformanceChecks, runConformance, type ConformanceOptions, type ConformanceNestedOptions, type ConformanceCheck, type ConformanceResult } from './conformance.js';
export { testTableMemory, type TestTableMemory } from './table-memory.js';
