/**
 * The vendor plugins the page ships, loaded into one PluginHost exactly as a VMM or the CLI would.
 * Built on first use: importing this module registers nothing.
 */
import { PluginHost, type IommuDecoder, type IommuPlugin, type IommuVendor } from '@ioasid/core/driver';
import type { HostProfile } from '@ioasid/core';
import { plugin as vtd, presets as vtdPresets } from '@ioasid/vtd';
import { plugin as smmuv3, presets as smmuPresets } from '@ioasid/smmuv3';
import { plugin as amdVi, presets as amdPresets } from '@ioasid/amd-vi';
import { plugin as virtioIommu, presets as virtioPresets } from '@ioasid/virtio-iommu';

export interface VendorSet {
  readonly plugin: IommuPlugin;
  readonly presets: readonly HostProfile[];
}

export const VENDOR_SETS: readonly VendorSet[] = [
  { plugin: vtd, presets: vtdPresets },
  { plugin: smmuv3, presets: smmuPresets },
  { plugin: amdVi, presets: amdPresets },
  { plugin: virtioIommu, presets: virtioPresets },
];

let host: PluginHost | null = null;

export function pluginHost(): PluginHost {
  if (!host) {
    host = new PluginHost();
    for (const s of VENDOR_SETS) host.load(s.plugin);
  }
  return host;
}

export function vendors(): IommuVendor[] {
  return pluginHost().vendors();
}

/** The plugins' decoders (their optional presentation part), one per vendor that has one. */
export function decoders(): IommuDecoder[] {
  return pluginHost().decoders();
}

/** Every preset of every shipped vendor, with a stable id for links (`vtd:0`). */
export function presetList(): Array<{ id: string; vendor: string; profile: HostProfile }> {
  return VENDOR_SETS.flatMap((s) => s.presets.map((profile, i) => ({ id: `${s.plugin.id}:${i}`, vendor: s.plugin.id, profile })));
}
