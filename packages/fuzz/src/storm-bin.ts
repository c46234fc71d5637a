/**
 * npm run storm -- [--requests N] [--devices N] [--pasids N] [--seed S]
 * A page-request storm on a VT-d host with PRI (Sapphire Rapids registers, a page request queue shared by
 * every device), judged request by request; then a vEVENTQ flood on an SMMUv3 vIOMMU. Prints the outcome
 * mix, the rate and the peak memory; exit status 1 on any violation.
 */
import { parseArgs } from 'node:util';
import { createHost, ObjType, uapi as U } from '@ioasid/core';
import { plugin as vtdPlugin, presets as vtdPresets } from '@ioasid/vtd';
import { plugin as smmuPlugin, presets as smmuPresets } from '@ioasid/smmuv3';
import { pageRequestStorm, veventqStorm } from './storm.js';
import { iommufdCtx } from '@ioasid/core/internal';

function bounded(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    process.stderr.write(`storm: --${name} must be an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({ options: { requests: { type: 'string' }, devices: { type: 'string' }, pasids: { type: 'string' }, seed: { type: 'string' }, events: { type: 'string' } } });
const requests = bounded('requests', values.requests, 1_000_000, 1, 1e8);
const devices = bounded('devices', values.devices, 32, 1, 200);
const pasids = bounded('pasids', values.pasids, 4, 1, 64);
const seed = bounded('seed', values.seed, 1, 0, 0xffff_ffff);
const events = bounded('events', values.events, 1_000_000, 0, 1e8);

/** The first VT-d unit of the presets that has PRI and PASIDs (scalable mode). */
function priUnit() {
  for (const p of vtdPresets)
    for (const u of p.units) {
      const h = createHost({ plugins: [vtdPlugin], profile: { name: 'probe', units: [u], devices: [{ bdf: '0000:10:00.0', unit: u.id, pri: true, pasidBits: 20 }] } });
      const caps = h.device('0000:10:00.0').unitOps.caps;
      if (caps.pri && caps.pasidBits > 0) return { preset: p, unit: u };
    }
  throw new Error('no VT-d preset has a unit with PRI and PASID');
}
const { preset, unit } = priUnit();
process.stdout.write(`storm: ${requests.toLocaleString('en')} page requests from ${devices} devices x ${pasids} PASIDs behind ${preset.name} ${unit.id}\n`);
const rep = await pageRequestStorm({ plugin: vtdPlugin, unit, requests, devices, pasidsPerDevice: pasids, seed });
process.stdout.write(
  `  ${rep.requests.toLocaleString('en')} requests in ${(rep.ms / 1000).toFixed(1)} s (${Math.round(rep.requests / (rep.ms / 1000)).toLocaleString('en')}/s): ` +
    `SUCCESS ${rep.success.toLocaleString('en')}, INVALID ${rep.invalid.toLocaleString('en')}, FAILURE ${rep.failure.toLocaleString('en')}; ` +
    `${rep.delivered.toLocaleString('en')} delivered to user space, ${rep.chaos.toLocaleString('en')} detach/replace/destroy; ` +
    `peak RSS ${rep.peakRssMiB.toFixed(0)} MiB, peak heap ${rep.peakHeapMiB.toFixed(0)} MiB; ${rep.violations.length} violation(s)\n`,
);
for (const v of rep.violations) process.stdout.write(`  violation: ${v}\n`);

// The vEVENTQ flood: an SMMUv3 with nesting, a vIOMMU, a small queue.
const sp = smmuPresets.find((p) => /nested/i.test(p.name)) ?? smmuPresets[0];
const host = createHost({ plugins: [smmuPlugin], profile: sp });
const bdf = [...host.devices.keys()][0];
const fd = host.openIommufd();
const devId = host.device(bdf).bindIommufd(fd);
const parent = fd.hwpt.alloc({ devId, ptId: fd.ioas.alloc(), nestParent: true });
const viommu = fd.viommu.alloc({ devId, type: U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, hwptId: parent });
const vq = fd.veventq.alloc({ viommuId: viommu, type: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 64 });
const q = iommufdCtx(fd).objects.get(vq.id, ObjType.VEVENTQ) as unknown as { report(d: Uint8Array): void };
const started = performance.now();
const ve = veventqStorm(q, (n) => host.process.read(vq.fd, n), 64, events, seed);
process.stdout.write(`vEVENTQ: ${ve.events.toLocaleString('en')} events, ${ve.reads.toLocaleString('en')} reads, ${ve.lostHeaders.toLocaleString('en')} LOST_EVENTS headers in ${((performance.now() - started) / 1000).toFixed(1)} s; ${ve.violations.length} violation(s)\n`);
for (const v of ve.violations) process.stdout.write(`  violation: ${v}\n`);
process.exitCode = rep.violations.length + ve.violations.length > 0 ? 1 : 0;
