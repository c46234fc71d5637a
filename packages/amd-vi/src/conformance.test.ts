/** The core conformance kit on every AMD-Vi preset. */
import { describeConformance } from '@ioasid/core/conformance';
import { plugin, presets } from './index.js';

for (const profile of presets) {
  const pri = profile.devices.find((d) => d.pri && (d.pasidBits ?? 0) > 0);
  // The round trip with a PASID: the AMD driver answers a page request without one FAILURE itself (ppr.c).
  describeConformance({ plugin, profile, device: profile.devices[0].bdf, packageJson: new URL('../package.json', import.meta.url), ...(pri ? { priDevice: pri.bdf, priPasid: 1 } : {}) });
}
