/** The core conformance kit on every preset: what any IOMMU plugin must do, checked for this one. */
import { describeConformance } from '@ioasid/core/conformance';
import { plugin, presets } from './index.js';

for (const profile of presets) describeConformance({ plugin, profile, device: profile.devices[0].bdf, packageJson: new URL('../package.json', import.meta.url) });
