/**
 * What every model's checks share: the verdict of one device, the architecture rule, the notes on
 * direct-mapped regions, and the one rule for a unit that cannot back any device.
 */
import { parseProfileNumber } from '@ioasid/core';
import type { DeviceFacts, UnitFacts } from '../facts.js';
import { hex } from '../facts.js';
import type { DeviceMode, PlannedDevice, PropDef, PropertyValue, ViommuSpec } from './types.js';

export const U64 = (1n << 64n) - 1n;

export function ctz(v: bigint): number {
  if (v === 0n) return 64;
  let n = 0;
  while (((v >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

export function quoteQemu(msg: string): string {
  return `QEMU: "${msg}"`;
}

/** The value QEMU would use: given, or the model's default. */
export function effectiveIn(props: Readonly<Record<string, PropDef>>, spec: ViommuSpec, name: string): PropertyValue | undefined {
  return name in spec.properties ? spec.properties[name] : props[name]?.default;
}

export function isOn(v: PropertyValue | undefined): boolean {
  return v === true || v === 'on';
}

/** Accumulates a device's verdict: the first failure decides, later ones are listed after it. */
export class Verdict {
  private failures: string[] = [];
  readonly notes: string[] = [];
  fail(reason: string): void {
    this.failures.push(this.failures.length ? `also: ${reason}` : reason);
  }
  note(reason: string): void {
    this.notes.push(reason);
  }
  get failed(): boolean {
    return this.failures.length > 0;
  }
  result(d: DeviceFacts, mode: Exclude<DeviceMode, 'refused'>, why: string, instance?: string): PlannedDevice {
    const base = { bdf: d.bdf, host: d.host, unit: d.unit.id };
    if (this.failed) return { ...base, mode: 'refused', reasons: [...this.failures, ...this.notes] };
    return { ...base, mode, reasons: [why, ...this.notes], ...(instance ? { instance } : {}) };
  }
}

export function archMismatch(model: string, wants: 'x86' | 'arm' | 'any', u: UnitFacts): string | null {
  if (wants === 'any' || u.arch === 'any' || u.arch === 'other' || u.arch === wants) return null;
  const machine = wants === 'x86' ? 'an x86 (q35) guest' : 'an Arm (virt) guest';
  return `${u.label}: ${model} needs ${machine}, but ${u.label} is a ${u.vendor} unit (${u.arch} host; KVM runs guests of the host architecture)`;
}

/**
 * One rule for every model: a unit whose registers give no stage for kernel-managed DMA (VT-d CAP = 0:
 * no SAGAW, no page sizes) has no IOVA space in which QEMU could map anything for the guest, whatever
 * the vIOMMU (shadowed, nested or virtio).
 */
export function unusableUnit(u: UnitFacts): string | null {
  if (u.awBits === 0 || u.pageSizes === 0n) {
    return `${u.label}: no stage for kernel-managed DMA (${u.awBits === 0 ? 'no IOVA width' : 'no page sizes'} in its registers), so no IOVA space to back the guest's`;
  }
  return null;
}

export function deviceNotes(d: DeviceFacts, v: Verdict, model: string): void {
  if (model === 'virtio-iommu') return;
  for (const r of d.profile.reservedRegions ?? []) {
    if (r.type !== 'direct') continue;
    const s = parseProfileNumber(r.start);
    const l = parseProfileNumber(r.last);
    if (s === null || l === null) continue;
    v.note(`${d.unit.label}: direct-mapped region [${hex(s)}, ${hex(l)}] (RMRR/RMR) stays reserved in the IOAS; ${model} cannot describe it to the guest, so a guest map there fails`);
  }
}

/** ATS/PRI/PASID of a device, as the guest will see them with this model. */
export function capabilityNote(d: DeviceFacts, visible: { ats: boolean; pasid: boolean; pri: boolean }, why: string): string | null {
  const has: string[] = [];
  if (d.profile.ats) has.push('ATS');
  if ((d.profile.pasidBits ?? 0) > 0) has.push(`PASID (${d.profile.pasidBits} bits)`);
  if (d.profile.pri) has.push('PRI');
  if (!has.length) return null;
  const lost = [d.profile.ats && !visible.ats ? 'ATS' : '', (d.profile.pasidBits ?? 0) > 0 && !visible.pasid ? 'PASID' : '', d.profile.pri && !visible.pri ? 'PRI' : ''].filter(Boolean);
  const kept = has.filter((h) => !lost.some((l) => h.startsWith(l)));
  return `device has ${has.join(', ')}: ${kept.length ? `the guest sees ${kept.map((k) => k.split(' ')[0]).join(', ')}` : 'the guest sees none of them'}${lost.length ? `; not ${lost.join(', ')} (${why})` : ''}`;
}
