/**
 * The DMAR fault lines checked against independent sources: the format strings of dmar.c
 * dmar_fault_do_one() applied by a printf of their own (kernelPrintf), and lines copied from real
 * boot logs. Neither expected value comes from this package's renderers.
 */
import { describe, expect, it } from 'vitest';
import { PERM_READ, PERM_WRITE, type FailedAccess } from '@ioasid/core/driver';
import { kernelPrintf } from '@ioasid/core/testing';
import { VtdFaultCodec } from './fault-codec.js';
import { renderDmaFaultLine, renderIntrFaultLine } from './logs.js';

// dmar.c: pr_fmt "DMAR: " and the three pr_err formats of dmar_fault_do_one().
const NO_PASID = 'DMAR: [%s NO_PASID] Request device [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s';
const WITH_PASID = 'DMAR: [%s PASID 0x%x] Request device [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s';
const INTR = 'DMAR: [INTR-REMAP] Request device [%02x:%02x.%d] fault index 0x%llx [fault reason 0x%02x] %s';

/** source_id >> 8, PCI_SLOT(source_id & 0xff), PCI_FUNC(source_id & 0xff). */
function bdf(sid: number): [number, number, number] {
  return [sid >> 8, (sid >> 3) & 0x1f, sid & 7];
}

function access(over: Partial<FailedAccess>): FailedAccess {
  return { unit: 0, rid: 0, pasid: -1, addr: 0n, perm: PERM_READ, failure: 'not-present', stage2: false, recoverable: false, grpid: 0, last: true, ...over };
}

describe('DMAR fault lines against dmar_fault_do_one() formats', () => {
  const legacy = new VtdFaultCodec({ scalableMode: false });

  it.each([
    // rid, address, perm, dma_frcd_type() text, legacy reason and dma_remap_fault_reasons[] text
    [0x00f3, 0xffffa123n, PERM_READ, 'DMA Read', 0x06, 'PTE Read access is not set'],
    [0x0301, 0xfffc0000n, PERM_WRITE, 'DMA Write', 0x05, 'PTE Write access is not set'],
    [0xff07, 0xe81759000n, PERM_WRITE | PERM_READ, 'DMA Write', 0x05, 'PTE Write access is not set'],
  ] as const)('rid %#x addr %#x: the line a legacy-mode unit makes Linux print', (rid, addr, perm, type, reason, text) => {
    const f = legacy.decodeFault(legacy.encodeFault(access({ rid, addr, perm })), 0);
    // FRCD.FI holds the page address: Linux prints the fault address without the page offset.
    const expected = kernelPrintf(NO_PASID, type, ...bdf(rid), addr & ~0xfffn, reason, text);
    expect(legacy.renderLog(f, '', 'dmar0')).toEqual([expected]);
  });

  it('with a PASID, and the interrupt-remapping form', () => {
    expect(renderDmaFaultLine({ read: true, pasid: 0x2a, sid: 0x1a0, addr: 0x7f0000n, reason: 0x06 })).toBe(
      kernelPrintf(WITH_PASID, 'DMA Read', 0x2a, ...bdf(0x1a0), 0x7f0000n, 0x06, 'PTE Read access is not set'),
    );
    // irq_remap_fault_reasons[0x22 - 0x20]; the index is FRCD.FI >> 48.
    expect(renderIntrFaultLine({ sid: 0xf0f8, index: 0x1fn, reason: 0x22 })).toBe(
      kernelPrintf(INTR, ...bdf(0xf0f8), 0x1fn, 0x22, 'Present field in the IRTE entry is clear'),
    );
  });

  it('reproduces lines from real logs', () => {
    // Public bug reports: an SPI controller, a storage controller function, i915, and a scalable-mode unit.
    const real = [
      [{ read: true, pasid: null, sid: 0x00f3, addr: 0xffffa000n, reason: 0x06 }, 'DMAR: [DMA Read NO_PASID] Request device [00:1e.3] fault addr 0xffffa000 [fault reason 0x06] PTE Read access is not set'],
      [{ read: true, pasid: null, sid: 0x0301, addr: 0xfffc0000n, reason: 0x02 }, 'DMAR: [DMA Read NO_PASID] Request device [03:00.1] fault addr 0xfffc0000 [fault reason 0x02] Present bit in context entry is clear'],
      [{ read: true, pasid: null, sid: 0x0010, addr: 0n, reason: 0x06 }, 'DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x0 [fault reason 0x06] PTE Read access is not set'],
      [{ read: true, pasid: null, sid: 0x80a0, addr: 0xe81759000n, reason: 0x39 }, 'DMAR: [DMA Read NO_PASID] Request device [80:14.0] fault addr 0xe81759000 [fault reason 0x39] SM: Present bit in Root Entry is clear'],
    ] as const;
    for (const [fault, line] of real) expect(renderDmaFaultLine(fault)).toBe(line);
  });
});
