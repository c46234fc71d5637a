/**
 * The walk view's logic: on a built-in host, a device attached to an IOAS with a mapped buffer (or to a
 * nested domain whose guest stage 1 maps it, see nested.ts), one IOVA explained by core
 * (`PciDevice.explain`): IOTLB hit or miss, each entry of each stage's walk as the model stores it, the
 * physical address, or the record and Linux lines of the fault.
 */
import { createHost, type ExplainedTranslation, type HostProfile, type PciDevice } from '@ioasid/core';
import { presetList, VENDOR_SETS } from './plugins.js';
import { attachNested, canNest } from './nested.js';

export type WalkDomain = 'paging' | 'nested';

/** How much the view maps (the IOVA is the IOAS allocator's choice, clear of reserved regions). */
export const MAP_LENGTH = 2n << 20n;

export interface WalkSession {
  readonly presetId: string;
  readonly profile: HostProfile;
  readonly device: string;
  readonly domain: WalkDomain;
  /** The format of the table the IOVA is looked up in (the guest's stage 1 for a nested domain). */
  readonly format: string;
  /** Where the buffer is mapped (a guest IOVA for a nested domain). */
  readonly base: bigint;
  /** For a nested domain: what was allocated. */
  readonly detail: string;
  explain(iova: bigint, write: boolean): ExplainedTranslation;
}

/** Presets whose first device can be attached to an IOAS (a unit with paging domains). */
export function walkPresets(): Array<{ id: string; profile: HostProfile }> {
  return presetList().filter((p) => p.profile.devices.length > 0);
}

export function parseIova(text: string): bigint | null {
  const t = text.trim().replace(/_/g, '');
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(t)) return null;
  const v = BigInt(t);
  return v < 1n << 64n ? v : null;
}

/** Whether the view can build a nested domain on this preset's vendor (the unit may still refuse). */
export function nestable(presetId: string): boolean {
  return canNest(presetId.split(':')[0]);
}

/**
 * Builds the host and gives the preset's first device MAP_LENGTH mapped bytes: in an IOAS it is attached
 * to, or (`domain` 'nested') in the guest stage 1 of a nested domain. Throws the uAPI's IommufdError
 * when the unit cannot nest.
 */
export function openWalk(presetId: string | undefined, domain: WalkDomain = 'paging'): WalkSession {
  const all = walkPresets();
  const chosen = all.find((p) => p.id === presetId) ?? all[0];
  // Every preset binds, virtio-iommu and RISC-V too: as a VMM with iommufd.allow_unsafe_interrupts=1.
  const host = createHost({ plugins: VENDOR_SETS.map((s) => s.plugin), profile: chosen.profile, allowUnsafeInterrupts: true });
  const fd = host.openIommufd();
  const dev: PciDevice = host.device(chosen.profile.devices[0].bdf);
  const devId = dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const explain = (iova: bigint, write: boolean) => dev.explain(iova, { write });
  const common = { presetId: chosen.id, profile: chosen.profile, device: dev.bdf, explain };
  if (domain === 'nested') {
    const n = attachNested(host, fd, dev, devId, ioas, chosen.id.split(':')[0], MAP_LENGTH);
    return { ...common, domain, format: n.format, base: n.base, detail: n.detail };
  }
  const va = host.process.mmap(Number(MAP_LENGTH));
  // A recognisable pattern: the first bytes of each page say which page it is.
  for (let p = 0n; p < MAP_LENGTH; p += 4096n) host.process.poke(va + p, new TextEncoder().encode(`page ${p / 4096n}`));
  dev.attachPt(ioas);
  const base = fd.ioas.map({ ioasId: ioas, userVa: va, length: MAP_LENGTH });
  const first = dev.explain(base);
  return { ...common, domain, format: first.stages[0]?.format ?? '', base, detail: '' };
}
