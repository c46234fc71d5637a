/** Test fixtures: a VT-d unit built the way core builds one, over simulated memory. */
import { FrameAllocator, PhysicalMemory } from '@ioasid/core';
import type { DeviceInfo, PageTableMemory, RawRegisters, UnitInit } from '@ioasid/core/driver';
import { VtdVendor, type VtdVendorOptions } from '../vendor.js';
import type { VtdUnit } from '../unit.js';
import { vtdFirstStage } from '../pgtable-fs.js';
import { vtdSecondStage } from '../pgtable-ss.js';

/** Granite Rapids (everything), Sapphire Rapids class (no PASID/PRS), Skylake client (legacy), QEMU (3-level, CM). */
export const GNR = { ver: '0x70', cap: '0xf9ed008cee780c66', ecap: '0x3fef9ea6f0efdf' };
export const SPR = { ver: '0x60', cap: '0x9ed008c40780466', ecap: '0x3ee9e86f050df' };
export const SKL = { ver: '0x10', cap: '0x1c0000c40660462', ecap: '0x7e3ff0501e' };
export const QEMU = { ver: '0x10', cap: '0xd2008c22260286', ecap: '0xf00f5a' };

export interface Fixture {
  unit: VtdUnit;
  mem: PhysicalMemory;
  frames: FrameAllocator;
  tables: PageTableMemory;
  tags: number[];
}

export function makeUnit(raw: RawRegisters, opts: { id?: string; mem?: PhysicalMemory; frames?: FrameAllocator; vendor?: VtdVendorOptions } = {}): Fixture {
  const vendor = new VtdVendor(opts.vendor);
  const decoded = vendor.decodeRegisters(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  const mem = opts.mem ?? new PhysicalMemory();
  const frames = opts.frames ?? new FrameAllocator(mem);
  const tags: number[] = [];
  let next = 0;
  const formats = new Map([vtdSecondStage, vtdFirstStage].map((f) => [f.id, f]));
  const init: UnitInit = {
    index: 0,
    id: opts.id ?? 'dmar0',
    decoded: decoded.value,
    raw,
    mem,
    formats: { get: (id) => formats.get(id), ids: () => [...formats.keys()] },
    allocTag: () => {
      tags.push(++next);
      return next;
    },
  };
  const unit = vendor.createUnit(init) as VtdUnit;
  const tables: PageTableMemory = { mem, allocTable: () => frames.alloc(), releaseTable: (pfn) => frames.release(pfn) };
  return { unit, mem, frames, tables, tags };
}

export function device(over: Partial<DeviceInfo> = {}): DeviceInfo {
  return {
    bdf: '0000:00:02.0',
    rid: 0x10,
    streamId: 0x10,
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

/** Page-size bits of a pgsize bitmap, and the address field of an x86-style 64-bit PTE (bits 51:12). */
export const SZ_4K = 1n << 12n;
export const SZ_2M = 1n << 21n;
export const SZ_1G = 1n << 30n;
export const PTE_ADDR = 0x000ffffffffff000n;

/** The raw PTE at `level` for `iovaPfn`, following table pointers from the root (both VT-d stages). */
export function rawPte(mem: PhysicalMemory, pt: { rootPfn: number; levels: number }, iovaPfn: number, level: number): bigint {
  let table = pt.rootPfn;
  for (let l = pt.levels - 1; ; l--) {
    const idx = Number(BigInt(Math.floor(iovaPfn / 512 ** l)) & 511n);
    const pte = mem.readU64(table, idx);
    if (l === level) return pte;
    table = Number((pte & PTE_ADDR) >> 12n);
  }
}
