/**
 * The conformance kit run against the mock vendor: once on a fully capable unit (PRI, PASID, nesting,
 * dirty tracking) and once on a bare one, so that both sides of every capability check run.
 */
import { describeConformance } from './conformance.js';
import { mockPlugin } from './mock-vendor.js';
import { bareMockProfile as bare, capableMockProfile as capable, mockNestedOptions } from '../__tests__/mock-profiles.js';

describeConformance({
  plugin: mockPlugin(),
  profile: capable,
  device: '0000:00:02.0',
  priDevice: '0000:00:04.0',
  nested: mockNestedOptions,
});

describeConformance({ plugin: mockPlugin(), profile: bare, device: '0000:00:02.0' });
