/**
 * The walk view's logic: on a built-in host, a device attached to an IOAS with a mapped buffer, one
 * IOVA explained by core (`PciDevice.explain`): IOTLB hit or miss, each entry of the walk as the model
 * stores it, the physical address, or the record and Linux lines of the fault.
 */
import { createHost, type ExplainedTranslation, type HostProfile, type PciDevice } from '@ioasid/core';
import { presetList, VENDOR_SETS } from './plugins.js';

/** How much the view maps (the IOVA is the IOAS allocator's choice, clear of reserved regions). */
export const MAP_LENGTH = 2n << 20n;

export interface WalkSession {
  readonly presetId: string;
  readonly profile: HostProfile;
  readonly device: string;
  readonly format: string;
  /** Where the buffer is mapped. */
  readonly base: bigint;
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

/** Builds the host, attaches the preset's first device to an IOAS and maps MAP_LENGTH bytes. */
export function openWalk(presetId: string | undefined): WalkSession {
  const all = walkPresets();
  const chosen = all.find((p) => p.id === presetId) ?? all[0];
  const host = createHost({ plugins: VENDOR_SETS.map((s) => s.plugin), profile: chosen.profile });
  const fd = host.openIommufd();
  const dev: PciDevice = host.device(chosen.profile.devices[0].bdf);
  dev.bindIommufd(fd);
  const ioas = fd.ioas.alloc();
  const va = host.process.mmap(Number(MAP_LENGTH));
  // A recognisable pattern: the first bytes of each page say which page it is.
  for (let p = 0n; p < MAP_LENGTH; p += 4096n) host.process.poke(va + p, new TextEncoder().encode(`page ${p / 4096n}`));
  dev.attachPt(ioas);
  const base = fd.ioas.map({ ioasId: ioas, userVa: va, length: MAP_LENGTH });
  const first = dev.explain(base);
  return {
    presetId: chosen.id,
    profile: chosen.profile,
    device: dev.bdf,
    format: first.stages[0]?.format ?? '',
    base,
    explain: (iova, write) => dev.explain(iova, { write }),
  };
}
