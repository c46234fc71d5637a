/**
 * Every vendor plugin the CLI ships. The planner never imports a vendor: the CLI loads these into a
 * PluginHost and hands the planner `host.vendors()`.
 */
import { PluginHost, type IommuPlugin } from '@ioasid/core/driver';
import { plugin as vtd } from '@ioasid/vtd';
import { plugin as smmuv3 } from '@ioasid/smmuv3';
import { plugin as virtioIommu } from '@ioasid/virtio-iommu';
import { plugin as amdVi } from '@ioasid/amd-vi';
import { plugin as riscvIommu } from '@ioasid/riscv-iommu';

/** The vendor plugins the CLI ships with: VT-d, SMMUv3, AMD-Vi, virtio-iommu and RISC-V IOMMU. */
export function allPlugins(): IommuPlugin[] {

  return [vtd, smmuv3, amdVi, virtioIommu, riscvIommu];
}

/** A PluginHost with the given plugins loaded (all of them by default). */
export function createPluginHost(plugins: readonly IommuPlugin[] = allPlugins()): PluginHost {
  const host = new PluginHost();
  for (const p of plugins) host.load(p);
  return host;
}
