/**
 * AMD-Vi: what the planner knows before (and besides) the amd-vi plugin: x86, amd_iommu=on, and the
 * log lines its driver prints, so that an AMD log is named as one. Its scanLog reads the lines around
 * the units the plugin probed: the pr_cont continuation of a split "Extended features" line, the
 * driver's status lines, and where devices sit when there are several IOMMUs.
 */
import type { RawRegisters, Result } from '@ioasid/core/driver';
import { sysfsHex } from './fields.js';
import type { LogLine, LogScan, LogScanUnit, PlannerVendor } from './types.js';

/** The continuation of a split features line: only Linux's feature names (kernelText drops its leading space). */
const CONTINUATION = /^(?:(?:PreF|PPR|X2APIC|NX|GT|\[5\]|IA|GA|HE|PC|GA_vAPIC|SNP|SEV-TIO)(?: |$))+$/;
/** Status lines of amd_iommu_init / iommu.c that carry nothing the profile holds. */
const STATUS = [
  /^AMD-Vi: (?:Interrupt remapping enabled|X2APIC enabled|Virtual APIC enabled|Lazy IO\/TLB flushing enabled|AMD IOMMUv2 (?:driver by .*|loaded and initialized)|IOMMU SNP support enabled\.?|Using global IVHD EFR:.*|V2 page table enabled .*)$/,
  /^pci [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: AMD-Vi: IOMMU performance counters supported$/i,
  /^perf\/amd_iommu: Detected AMD IOMMU #\d+ .*$/,
];
const GROUP = /^\S+ ([0-9a-f]{4}):([0-9a-f]{2}):[0-9a-f]{2}\.[0-7]: Adding to iommu group \d+$/i;

function pciOf(u: LogScanUnit): { segment: number; bus: number } | null {
  const a = u.registers['pciAddress'];
  if (typeof a !== 'string') return null;
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):/i.exec(a);
  return m ? { segment: parseInt(m[1], 16), bus: parseInt(m[2], 16) } : null;
}

/**
 * With several IOMMUs (one per EPYC root complex), a device sits behind the IOMMU of its root complex:
 * the IOMMU's own function is on the first bus of its complex, so it is the one of the device's segment
 * with the highest bus not above the device's. The IVRS table says it exactly; the boot log does not.
 */
function scanAmdLog(lines: readonly LogLine[], units: readonly LogScanUnit[]): LogScan {
  const recognized: number[] = [];
  const placements: Array<{ bdf: string; unit: string; why: string }> = [];
  const roots = units.map((u) => ({ id: u.id, pci: pciOf(u) })).filter((r): r is { id: string; pci: { segment: number; bus: number } } => r.pci !== null);
  for (const l of lines) {
    const text = l.text.trim();
    if (CONTINUATION.test(text) || STATUS.some((re) => re.test(text))) {
      recognized.push(l.n);
      continue;
    }
    if (roots.length < 2) continue;
    const m = GROUP.exec(text);
    if (!m) continue;
    const segment = parseInt(m[1], 16);
    const bus = parseInt(m[2], 16);
    let best: { id: string; pci: { segment: number; bus: number } } | null = null;
    for (const r of roots) if (r.pci.segment === segment && r.pci.bus <= bus && (!best || r.pci.bus > best.pci.bus)) best = r;
    const bdf = text.split(' ')[1].replace(/:$/, '').toLowerCase();
    if (best) placements.push({ bdf, unit: best.id, why: `the IOMMU of its root complex (bus ${best.pci.bus.toString(16).padStart(2, '0')} and up)` });
  }
  return { recognized, warnings: [], placements, reserved: [] };
}

/**
 * amd-iommu/features: "%llx:%llx" (EFR:EFR2, current kernels) or "%llx" (EFR, older ones), no 0x
 * (drivers/iommu/amd/init.c amd_iommu_show_features()).
 */
function toRegisters(files: Readonly<Record<string, string>>): Result<RawRegisters> {
  const text = (files.features ?? '').trim();
  const [a, b, ...rest] = text.split(':');
  const efr = sysfsHex(a);
  const efr2 = b === undefined ? '0x0' : sysfsHex(b);
  if (efr === null || efr2 === null || rest.length) return { ok: false, error: `amd-iommu/features: expected "EFR:EFR2" ("%llx:%llx") or "EFR", got ${JSON.stringify(files.features ?? '(missing)')}` };
  return { ok: true, value: { efr, efr2 } };
}

export const amdViVendor: PlannerVendor = {
  id: 'amd-vi',
  name: 'AMD-Vi',
  arch: 'x86',
  kernelParameter: 'amd_iommu=on (and iommu=nopt)',
  logSignatures: [/^AMD-Vi: /, /^\S+ [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: AMD-Vi: /i],
  sysfs: { dir: 'amd-iommu', files: ['features'], toRegisters },
  scanLog: scanAmdLog,
};
