/**
 * virtio-iommu-pci (hw/virtio/virtio-iommu.c): the page-size mask the guest sees, intersected with each
 * device's host page sizes, the reserved ranges reported by PROBE, and the frozen granule.
 */
import { parseProfileNumber } from '@ioasid/core';
import type { DeviceFacts } from '../facts.js';
import { hex, pageSizeList } from '../facts.js';
import { archMismatch, ctz, deviceNotes, effectiveIn, quoteQemu, U64, unusableUnit, Verdict } from './common.js';
import { DEVICE_OPTIONS } from './intel-iommu.js';
import type { Candidate, CandidateContext, EvaluateOptions, Evaluation, ModelDef, PlannedDevice, PropDef, ViommuProperties, ViommuSpec } from './types.js';

const PROPS: Readonly<Record<string, PropDef>> = {
  granule: { type: 'string', default: 'host', values: ['4k', '8k', '16k', '64k', 'host'], since: '9.0', help: 'the page_size_mask granule (machine types up to 8.2: 4k)' },
  'aw-bits': { type: 'uint', since: '9.0', help: 'input range width, 32 to 64; machine default 39 on q35, 48 on virt (64 on machine types up to 8.2)' },
  'boot-bypass': { type: 'bool', default: true, since: '7.0', help: 'DMA bypasses translation until the guest driver attaches' },
  'reserved-regions': { type: 'string', since: '5.1', help: 'extra reserved regions, "<start>:<end>:<type>"' },
  ...DEVICE_OPTIONS,
};

const eff = (spec: ViommuSpec, n: string) => effectiveIn(PROPS, spec, n);

const GRANULE_LOG2: Record<string, number> = { '4k': 12, '8k': 13, '16k': 14, '64k': 16, host: 12 };

interface Range {
  start: bigint;
  last: bigint;
}

function reservedOf(d: DeviceFacts): Range[] {
  const out: Range[] = [];
  for (const r of d.profile.reservedRegions ?? []) {
    const start = parseProfileNumber(r.start);
    const last = parseProfileNumber(r.last);
    if (start !== null && last !== null) out.push({ start, last });
  }
  if (d.unit.awBits > 0 && d.unit.awBits < 64) out.push({ start: 1n << BigInt(d.unit.awBits), last: U64 });
  return out;
}

function covered(r: Range, set: readonly Range[]): boolean {
  return set.some((s) => s.start <= r.start && r.last <= s.last);
}

function evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[], opts: EvaluateOptions): Evaluation {
  const errors: string[] = [];
  const warnings: string[] = [];
  const frozen = opts.frozen;
  const arch = opts.arch ?? (devices.some((d) => d.unit.arch === 'arm') ? 'arm' : 'x86');
  const awProp = eff(spec, 'aw-bits');
  const aw = awProp === undefined ? (arch === 'arm' ? 48 : 39) : Number(awProp);
  if (aw < 32 || aw > 64) errors.push(quoteQemu('aw-bits must be within [32,64]'));
  const granule = String(eff(spec, 'granule'));
  let granuleLog2 = frozen?.granuleLog2 ?? GRANULE_LOG2[granule] ?? 12;
  if (granule === 'host' && !frozen) warnings.push('granule=host follows the page size of whichever host the VM starts on: not migration-safe; 4K assumed here');
  let mask = U64 & ~((1n << BigInt(granuleLog2)) - 1n);
  const reserved: Range[] = frozen ? (frozen.reserved ?? []).map((r) => ({ start: BigInt(r.start), last: BigInt(r.last) })) : [];
  const out: PlannedDevice[] = [];
  for (const d of devices) {
    const u = d.unit;
    const v = new Verdict();
    const arch2 = archMismatch('virtio-iommu', 'any', u);
    const unusable = unusableUnit(u);
    if (arch2) v.fail(arch2);
    if (unusable) {
      v.fail(unusable);
      out.push(v.result(d, 'virtio', ''));
      continue;
    }
    const hostMask = u.pageSizes;
    const next = mask & hostMask;
    if (next === 0n) {
      v.fail(`${u.label}: page sizes ${pageSizeList(u.pageSizes)} share none with the guest's mask ${hex(mask)} (${quoteQemu(`virtio-iommu ${d.bdf} reports a page size mask ${hex(hostMask)} incompatible with currently supported mask ${hex(mask)}`)})`);
    } else if (ctz(next) > ctz(mask)) {
      if (frozen) {
        v.fail(`${u.label}: smallest page ${pageSizeList(1n << BigInt(ctz(next)))} > the granule the guest already uses (${quoteQemu(`virtio-iommu does not support frozen granule ${hex(1n << BigInt(ctz(mask)))}`)})`);
      } else {
        v.note(`${u.label}: smallest host page ${pageSizeList(1n << BigInt(ctz(next)))} raises the granule from ${pageSizeList(1n << BigInt(ctz(mask)))} at cold plug`);
      }
    }
    const ranges = reservedOf(d);
    if (frozen) {
      const extra = ranges.filter((r) => !covered(r, reserved));
      if (extra.length) {
        v.fail(`${d.bdf}: host reserved ${extra.map((r) => `[${hex(r.start)}, ${hex(r.last)}]`).join(', ')} not among the ranges the guest probed at boot (${quoteQemu('Conflicting host reserved ranges set!')})`);
      }
    } else {
      for (const r of ranges) if (!covered(r, reserved)) reserved.push(r);
      const shown = (d.profile.reservedRegions ?? []).map((r) => `[${r.start}, ${r.last}] (${r.type})`);
      if (shown.length) v.note(`reserved ${shown.join(', ')} reported to the guest as RESV_MEM regions by the PROBE request`);
    }
    if (aw > u.awBits) v.note(`${u.label}: IOVAs above ${u.awBits} bits (its aperture) are reported to the guest as reserved (aw-bits=${aw})`);
    if ((d.profile.pasidBits ?? 0) > 0 || d.profile.pri || d.profile.ats) v.note('virtio-iommu has no ATS, no PASID and no page requests: none of them reach the guest for this device');
    deviceNotes(d, v, 'virtio-iommu');
    if (!v.failed && !frozen) mask = next;
    out.push(v.result(d, 'virtio', `virtio-iommu: the guest's MAP/UNMAP requests become IOMMU_IOAS_MAP/UNMAP on ${u.label} (granule ${pageSizeList(1n << BigInt(ctz(mask)))})`));
  }
  const resolved: ViommuProperties = {};
  const finalLog2 = ctz(mask);
  if (!frozen && finalLog2 !== granuleLog2) {
    const name = Object.keys(GRANULE_LOG2).find((k) => k !== 'host' && GRANULE_LOG2[k] === finalLog2);
    if (name) resolved.granule = name;
    granuleLog2 = finalLog2;
  }
  return {
    devices: out,
    errors,
    warnings,
    instances: [],
    resolved,
    frozen: {
      model: spec.model,
      properties: { ...spec.properties, ...resolved },
      instances: [],
      granuleLog2,
      reserved: reserved.map((r) => ({ start: hex(r.start), last: hex(r.last) })),
      awBits: aw,
    },
  };
}

function candidates(ctx: CandidateContext): Candidate[] {
  const aws = ctx.units.map((u) => u.awBits).filter((a) => a > 0);
  const dflt = ctx.arch === 'arm' ? 48 : 39;
  const aw = Math.max(32, Math.min(64, aws.length ? Math.min(...aws) : dflt));
  return [{ spec: { model: 'virtio-iommu', properties: { granule: '4k', 'aw-bits': aw } }, label: 'virtio-iommu' }];
}

export const virtioIommu: ModelDef = {
  id: 'virtio-iommu',
  qemuDriver: 'virtio-iommu-pci',
  aliases: ['virtio', 'virtio-iommu-pci'],
  libvirtModel: 'virtio',
  since: '5.0',
  arch: 'any',
  // A guest whose own IOMMU is virtio-iommu (a nested setup) copies it: nothing else can nest on it.
  nativeVendors: ['virtio-iommu'],
  props: PROPS,
  machine: (_spec, arch) => (arch === 'arm' ? 'virt,accel=kvm,gic-version=3' : 'q35,accel=kvm'),
  evaluate,
  candidates,
  requirements: () => [],
};
