/**
 * The VT-d boot lines around `dmar%d: reg_base_addr …` that the vtd plugin does not parse
 * (drivers/iommu/intel/dmar.c dmar_table_print_dmar_entry, dmar_acpi_insert_dev_scope; irq_remapping.c):
 *
 *   DMAR: DRHD base: %#016Lx flags: %#x                   one per DRHD; flags bit 0 = INCLUDE_ALL
 *   DMAR: RMRR base: %#016Lx end: %#016Lx                 a reserved memory region (end inclusive)
 *   DMAR: Setting identity map for device %s [0x%Lx - 0x%Lx]   an RMRR's device scope (kernels up to ~5.3)
 *   DMAR: ACPI device "%s" under DMAR at %llx as %02x:%02x.%d   an ANDD device in a DRHD's scope
 *   DMAR-IR: IOAPIC id %d under DRHD base  0x%Lx IOMMU %d        (and HPET id): IR scope
 *
 * A DRHD with no `dmarN` line naming its base means the capture stops early (or the kernel ignored that DRHD).
 */
import type { LogLine, LogScan, LogScanUnit } from './types.js';

const DRHD = /^DMAR: DRHD base: 0x([0-9a-f]+) flags: 0x([0-9a-f]+)$/i;
const RMRR = /^DMAR: RMRR base: 0x([0-9a-f]+) end: 0x([0-9a-f]+)$/i;
const IDENTITY = /^DMAR: Setting identity map for device ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) \[0x([0-9a-f]+) - 0x([0-9a-f]+)\]$/i;
const ANDD = /^DMAR: ACPI device "([^"]*)" under DMAR at ([0-9a-f]+) as ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
const IR_SCOPE = /^DMAR-IR: (?:IOAPIC|HPET) id \d+ under DRHD base\s+0x([0-9a-f]+)(?: IOMMU \d+)?$/i;

const big = (h: string) => BigInt(`0x${h}`);
const hx = (v: bigint) => `0x${v.toString(16)}`;

function unitBase(u: LogScanUnit): bigint | null {
  const r = (u.registers as { regBase?: unknown }).regBase;
  return typeof r === 'string' && /^0x[0-9a-f]+$/i.test(r) ? BigInt(r) : null;
}

export function scanVtdLog(lines: readonly LogLine[], units: readonly LogScanUnit[]): LogScan {
  const recognized: number[] = [];
  const warnings: string[] = [];
  const placements: Array<{ bdf: string; unit: string; why: string }> = [];
  const reserved: Array<{ bdf: string; start: string; last: string; type: 'direct' }> = [];
  const drhds: Array<{ base: bigint; includeAll: boolean; n: number }> = [];
  const rmrrs: Array<{ start: bigint; last: bigint; n: number; claimed: boolean }> = [];
  const byBase = new Map<bigint, LogScanUnit>();
  for (const u of units) {
    const b = unitBase(u);
    if (b !== null) byBase.set(b, u);
  }
  for (const { n, text } of lines) {
    let m = DRHD.exec(text);
    if (m) {
      drhds.push({ base: big(m[1]), includeAll: (Number.parseInt(m[2], 16) & 1) === 1, n });
      recognized.push(n);
      continue;
    }
    m = RMRR.exec(text);
    if (m) {
      rmrrs.push({ start: big(m[1]), last: big(m[2]), n, claimed: false });
      recognized.push(n);
      continue;
    }
    m = IDENTITY.exec(text);
    if (m) {
      const start = big(m[2]);
      const last = big(m[3]);
      reserved.push({ bdf: m[1].toLowerCase(), start: hx(start), last: hx(last), type: 'direct' });
      for (const r of rmrrs) if (r.start === start && r.last === last) r.claimed = true;
      recognized.push(n);
      continue;
    }
    m = ANDD.exec(text);
    if (m) {
      const u = byBase.get(big(m[2]));
      recognized.push(n);
      if (u) warnings.push(`ACPI namespace device "${m[1]}" (${m[3]}:${m[4]}.${m[5]}) is in the scope of ${u.id} (line ${n}); it is not a PCI device to assign`);
      continue;
    }
    if (IR_SCOPE.test(text)) recognized.push(n);
  }
  // Truncation: every DRHD the firmware listed should have its dmarN line.
  const missing = drhds.filter((d) => !byBase.has(d.base));
  if (missing.length && byBase.size > 0) {
    for (const d of missing) {
      warnings.push(
        `DRHD base ${hx(d.base)} (line ${d.n}${d.includeAll ? ', INCLUDE_ALL' : ''}) has no "dmar%d: reg_base_addr ${d.base.toString(16)} …" line: the log is cut short (or the kernel ignored that DRHD); its unit, and the devices behind it, are missing from the profile`,
      );
    }
  } else if (missing.length && units.length === 0) {
    warnings.push(`${missing.length} DRHD(s) listed (line ${missing[0].n}…) but no "dmar%d: reg_base_addr" line: the log is cut short after the DMAR table, or DMA remapping is off (intel_iommu=on)`);
  }
  // INCLUDE_ALL: the catch-all unit owns every device of its segment outside the other DRHDs' scopes, which
  // the kernel does not print; only with a single DRHD is that every device.
  const catchAll = drhds.filter((d) => d.includeAll && byBase.has(d.base));
  if (catchAll.length === 1 && drhds.length === 1) {
    const u = byBase.get(catchAll[0].base)!;
    placements.push({ bdf: '*', unit: u.id, why: `DRHD ${hx(catchAll[0].base)} is INCLUDE_ALL and the only DRHD (line ${catchAll[0].n})` });
  } else if (catchAll.length === 1 && drhds.length > 1) {
    const u = byBase.get(catchAll[0].base)!;
    const others = drhds.filter((d) => d !== catchAll[0]).map((d) => byBase.get(d.base)?.id ?? hx(d.base));
    warnings.push(
      `${u.id} is the INCLUDE_ALL unit (line ${catchAll[0].n}): it owns every device outside the device scopes of ${others.join(', ')}, which the kernel does not print; ioasid probe --sysfs reads the placement from /sys/class/iommu/*/devices`,
    );
  }
  for (const r of rmrrs.filter((x) => !x.claimed)) {
    warnings.push(`RMRR [${hx(r.start)}, ${hx(r.last)}] (line ${r.n}): the log does not say which devices it belongs to; it is a direct-mapped reserved region of those devices (see /sys/kernel/iommu_groups/*/reserved_regions, ioasid probe --sysfs)`);
  }
  return { recognized, warnings, placements, reserved };
}
