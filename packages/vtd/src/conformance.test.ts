/** The core conformance kit on every VT-d preset: what any vendor plugin must do, checked for ours. */
import { uapi } from '@ioasid/core';
import { describeConformance } from '@ioasid/core/conformance';
import { plugin, presets } from './index.js';

/** iommu_hwpt_vtd_s1 for a 4-level guest first-stage table rooted at the guest page `rootGpa`. */
function vtdS1({ rootGpa }: { rootGpa: number }): Uint8Array {
  return uapi.iommu_hwpt_vtd_s1.encode({ flags: 0n, pgtbl_addr: BigInt(rootGpa) << 12n, addr_width: 48, __reserved: 0 });
}

for (const profile of presets) {
  const pri = profile.devices.find((d) => d.pri && (d.pasidBits ?? 0) > 0);
  describeConformance({
    plugin,
    packageJson: new URL('../package.json', import.meta.url),
    profile,
    device: profile.devices[0].bdf,
    ...(pri ? { priDevice: pri.bdf } : {}),
    nested: { dataType: uapi.IOMMU_HWPT_DATA_VTD_S1, data: vtdS1 },
  });
}
