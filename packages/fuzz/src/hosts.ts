/**
 * Every vendor preset as a host to drive: the mock vendor, every VT-d, SMMUv3, AMD-Vi and virtio-iommu
 * preset, each with the device the campaigns use (the most capable one: PRI, then PASID, then ATS).
 */
import { createHost, type Host, type HostProfile } from '@ioasid/core';
import type { IommuPlugin } from '@ioasid/core/driver';
import { plugin as vtdPlugin, presets as vtdPresets } from '@ioasid/vtd';
import { plugin as smmuPlugin, presets as smmuPresets } from '@ioasid/smmuv3';
import { plugin as amdPlugin, presets as amdPresets } from '@ioasid/amd-vi';
import { plugin as virtioPlugin, presets as virtioPresets } from '@ioasid/virtio-iommu';

export interface VendorHost {
  readonly vendor: string;
  /** A stable name: vendor/preset. */
  readonly name: string;
  readonly profile: HostProfile;
  readonly plugin: IommuPlugin;
  make(): Host;
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

// Every preset binds, as a VMM does on a platform without interrupt remapping: iommufd.allow_unsafe_interrupts=1.
export function vendorHost(vendor: string, plugin: IommuPlugin, profile: HostProfile): VendorHost {
  return { vendor, name: `${vendor}/${slug(profile.name)}`, profile, plugin, make: () => createHost({ plugins: [plugin], profile, allowUnsafeInterrupts: true }) };
}

/** Every preset of every real vendor (tests add the mock vendor: see mock-host.ts). */
export function vendorHosts(): VendorHost[] {
  return [
    ...vtdPresets.map((p) => vendorHost('vtd', vtdPlugin, p)),
    ...smmuPresets.map((p) => vendorHost('smmuv3', smmuPlugin, p)),
    ...amdPresets.map((p) => vendorHost('amd-vi', amdPlugin, p)),
    ...virtioPresets.map((p) => vendorHost('virtio-iommu', virtioPlugin, p)),
  ];
}

/** One preset per vendor: the first of each (for short runs in tests). */
export function firstPerVendor(hosts: readonly VendorHost[] = vendorHosts()): VendorHost[] {
  const seen = new Set<string>();
  return hosts.filter((h) => !seen.has(h.vendor) && (seen.add(h.vendor), true));
}

/** The device a campaign drives: the most capable one behind an IOMMU (PRI, then PASID, then ATS). */
export function mainDevice(host: Host): string {
  let best = '';
  let score = -1;
  for (const [bdf, d] of host.devices) {
    const s = (d.info.pri ? 4 : 0) + (d.info.pasidBits > 0 ? 2 : 0) + (d.info.ats ? 1 : 0);
    if (s > score) {
      best = bdf;
      score = s;
    }
  }
  if (best === '') throw new Error(`${host.name} has no device`);
  return best;
}
