/** The core conformance kit on every SMMUv3 preset, with nesting through the vIOMMU. */
import { describeConformance } from '@ioasid/core/conformance';
import { uapi } from '@ioasid/core';
import { plugin, presets, encodeSteWords, STE_CFG } from './index.js';

/** A guest STE that bypasses stage 1 (translates like the parent): valid without guest tables. */
function bypassSte(): Uint8Array {
  const w = encodeSteWords({ V: 1, Config: STE_CFG.BYPASS });
  const b = new Uint8Array(16);
  new DataView(b.buffer).setBigUint64(0, w[0], true);
  new DataView(b.buffer).setBigUint64(8, w[1], true);
  return b;
}

for (const profile of presets) {
  const pri = profile.devices.find((d) => d.pri && (d.pasidBits ?? 0) > 0);
  describeConformance({
    plugin,
    packageJson: new URL('../package.json', import.meta.url),
    profile,
    device: profile.devices[0].bdf,
    ...(pri ? { priDevice: pri.bdf } : {}),
    nested: { dataType: uapi.IOMMU_HWPT_DATA_ARM_SMMUV3, data: bypassSte, viommuType: uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3 },
  });
}
