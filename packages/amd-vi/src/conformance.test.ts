/** The core conformance kit on every AMD-Vi preset. */
import { describeConformance } from '@ioasid/core/conformance';
import { plugin, presets } from './index.js';

for (const profile of presets) {
  const pri = profile.devices.find((d) => d.pri && (d.pasidBits ?? 0) > 0);
  describeConformance({ plugin, profile, device: profile.devices[0].bdf, ...(pri ? { priDevice: pri.bdf } : {}) });
}
