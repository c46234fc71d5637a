/**
 * Builds SMMUv3 units the way a host would (decodeRegisters, then the unit createUnit returns), for the unit-level tests.
 * Not exported from the package.
 */
import { FrameAllocator, PhysicalMemory } from '@ioasid/core';
import type { DeviceInfo, FormatRegistry, PageTableMemory } from '@ioasid/core/driver';
import { SmmuV3Vendor } from '../vendor.js';
import { SmmuUnit } from '../unit.js';
import { armLpaeS1, armLpaeS2 } from '../pgtable-lpae.js';
import type { SmmuPresetUnit } from '../presets.js';

export const formats: FormatRegistry = {
  get: (id) => (id === armLpaeS1.id ? armLpaeS1 : id === armLpaeS2.id ? armLpaeS2 : undefined),
  ids: () => [armLpaeS1.id, armLpaeS2.id],
};

export interface TestRig {
  unit: SmmuUnit;
  mem: PhysicalMemory;
  memory: PageTableMemory;
}

export function rigFor(u: SmmuPresetUnit, id = 'arm-smmu-v3.0.auto', shared?: { mem: PhysicalMemory; memory: PageTableMemory; tags: { n: number } }): TestRig {
  const vendor = new SmmuV3Vendor();
  const raw = { idr: [...u.idr], iidr: u.iidr, aidr: u.aidr };
  const d = vendor.decodeRegisters(raw);
  if (!d.ok) throw new TypeError(d.error);
  const mem = shared?.mem ?? new PhysicalMemory();
  let memory = shared?.memory;
  if (!memory) {
    const frames = new FrameAllocator(mem, 0x100);
    memory = { mem, allocTable: () => frames.alloc(), releaseTable: (pfn) => frames.release(pfn) };
  }
  const tags = shared?.tags ?? { n: 0 };
  // What SmmuV3Vendor.createUnit() builds, typed as the unit class so that tests reach the model's state.
  const unit = new SmmuUnit({ index: 0, id, decoded: d.value, raw, mem, formats, allocTag: () => ++tags.n });
  return { unit, mem, memory };
}

export function device(over: Partial<DeviceInfo> = {}): DeviceInfo {
  return {
    bdf: '0000:01:00.0',
    rid: 0x100,
    streamId: 0x100,
    ats: true,
    pri: true,
    pasidBits: 20,
    pasidExec: false,
    pasidPriv: false,
    noSnoop: false,
    isVf: false,
    stall: false,
    ...over,
  };
}

export const NO_FLAGS = { nestParent: false, dirtyTracking: false, pasid: false };
