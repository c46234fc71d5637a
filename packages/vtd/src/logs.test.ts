import { describe, expect, it } from 'vitest';
import { stripKernelLogPrefix } from '@ioasid/core/driver';
import { frcdForDmaFault, frcdForInterruptFault } from './records.js';
import {
  formatSourceId,
  parseVtdLog,
  parseVtdLogLine,
  renderDmaFaultLine,
  renderFaultStatusLine,
  renderFrcdLine,
  renderIntrFaultLine,
  renderVtdBootLine,
} from './logs.js';

const BOOT = 'DMAR: dmar0: reg_base_addr fed90000 ver 4:0 cap 1c0000c40660462 ecap 29a00f0505e';

describe('boot line', () => {
  it('renders the alloc_iommu() format', () => {
    expect(renderVtdBootLine({ seq: 0, regBase: 0xfed90000n, ver: 0x40n, cap: 0x1c0000c40660462n, ecap: 0x29a00f0505en })).toBe(BOOT);
  });

  it('parses it back', () => {
    expect(parseVtdLogLine(BOOT)).toEqual({
      ok: true,
      value: { kind: 'boot', seq: 0, regBase: 0xfed90000n, ver: 0x40n, cap: 0x1c0000c40660462n, ecap: 0x29a00f0505en, format: 'current' },
    });
  });

  it('parses the pre-4.x "dmar: IOMMU N:" form', () => {
    const r = parseVtdLogLine('[    0.028879] dmar: IOMMU 0: reg_base_addr fed90000 ver 1:0 cap c0000020660462 ecap f0101a');
    expect(r).toMatchObject({ ok: true, value: { seq: 0, format: 'legacy', cap: 0xc0000020660462n, ecap: 0xf0101an, ver: 0x10n } });
  });

  it('says which token is wrong', () => {
    const r = parseVtdLogLine('DMAR: dmar0: reg_base_addr fed90000 ver 4:0 cap 1c0000c40660462 ecap');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('"ecap"');
    const v = parseVtdLogLine('DMAR: dmar0: reg_base_addr fed90000 ver 4.0 cap 1 ecap 2');
    if (!v.ok) expect(v.error).toContain('ver %d:%d');
    else throw new Error('accepted a bad version');
  });
});

describe('prefixes', () => {
  it('strips dmesg, dmesg -T, journalctl, syslog and caller-id prefixes', () => {
    for (const line of [
      `[    0.350799] ${BOOT}`,
      `[Tue Nov 25 12:00:00 2026] ${BOOT}`,
      `Nov 25 12:00:00 host kernel: ${BOOT}`,
      `Nov  5 12:00:00 host kernel: [    0.350799] ${BOOT}`,
      `2025-05-21T10:59:23.313084+00:00 mc-misc2002 kernel: [    1.812241] ${BOOT}`,
      `[    9.134709][    T0] ${BOOT}`,
      `<3>${BOOT}`,
    ]) {
      expect(stripKernelLogPrefix(line)).toBe(BOOT);
      expect(parseVtdLogLine(line).ok).toBe(true);
    }
  });
});

describe('DMA fault lines', () => {
  const fault = { read: true, pasid: null, sid: 0x0010, addr: 0xfffe0000n, reason: 6 };

  it('renders the mainline NO_PASID form', () => {
    expect(renderDmaFaultLine(fault)).toBe(
      'DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfffe0000 [fault reason 0x06] PTE Read access is not set',
    );
  });

  it('renders the mainline PASID form', () => {
    expect(renderDmaFaultLine({ ...fault, read: false, pasid: 0x2a, reason: 0x85, sid: 0x6a08 })).toBe(
      'DMAR: [DMA Write PASID 0x2a] Request device [6a:01.0] fault addr 0xfffe0000 [fault reason 0x85] SM: No write permission for Write/AtomicOp request',
    );
  });

  it('renders the older decimal forms', () => {
    expect(renderDmaFaultLine({ ...fault, reason: 0x0c }, 'decimal')).toBe(
      'DMAR: [DMA Read] Request device [00:02.0] fault addr fffe0000 [fault reason 12] non-zero reserved fields in PTE',
    );
    expect(renderDmaFaultLine(fault, 'pasid-decimal')).toBe(
      'DMAR: [DMA Read] Request device [00:02.0] PASID ffffffff fault addr fffe0000 [fault reason 06] PTE Read access is not set',
    );
  });

  it('round-trips every format', () => {
    for (const format of ['mainline', 'pasid-decimal', 'decimal'] as const) {
      for (const f of [fault, { ...fault, read: false, pasid: 0xfffff, addr: 0x7fff_ffff_f000n, reason: 0x59 }]) {
        const pasid = format === 'decimal' ? null : f.pasid;
        const r = parseVtdLogLine(`[  123.456789] ${renderDmaFaultLine(f, format)}`);
        expect(r).toMatchObject({ ok: true, value: { kind: 'dma-fault', ...f, pasid, format } });
      }
    }
  });

  it('parses a real older-kernel line', () => {
    const r = parseVtdLogLine('[ 1.860451] DMAR: [DMA Read] Request device [00:02.0] fault addr 6c7c5000 [fault reason 06] PTE Read access is not set');
    expect(r).toMatchObject({ ok: true, value: { read: true, sid: 0x10, addr: 0x6c7c5000n, reason: 6, format: 'decimal' } });
  });

  it('accepts the transient 0x%02x:0x%02x.%d device form', () => {
    const r = parseVtdLogLine('DMAR: [DMA Write NO_PASID] Request device [0x00:0x1f.6] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set');
    expect(r).toMatchObject({ ok: true, value: { sid: 0xfe, read: false } });
  });

  it('locates the broken part of a line', () => {
    const bad = parseVtdLogLine('DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault adr 0xfffe0000 [fault reason 0x06] x');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/expected "fault addr " .* at column 52/);
    const dev = parseVtdLogLine('DMAR: [DMA Read NO_PASID] Request device [00:22.0] fault addr 0x0 [fault reason 0x06] x');
    if (!dev.ok) expect(dev.error).toContain('device number 0x22');
    else throw new Error('accepted device 0x22');
    const reason = parseVtdLogLine('DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x0 [fault reason 06] x');
    if (!reason.ok) expect(reason.error).toContain('hexadecimal reason');
    else throw new Error('accepted a decimal reason in the mainline form');
  });
});

describe('interrupt-remapping fault lines', () => {
  it('renders and parses the mainline form', () => {
    const line = renderIntrFaultLine({ sid: 0xf0f8, index: 0x1f, reason: 0x22 });
    expect(line).toBe(
      'DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x1f [fault reason 0x22] Present field in the IRTE entry is clear',
    );
    expect(parseVtdLogLine(line)).toEqual({
      ok: true,
      value: {
        kind: 'intr-fault',
        sid: 0xf0f8,
        index: 0x1fn,
        reason: 0x22,
        reasonText: 'Present field in the IRTE entry is clear',
        format: 'mainline',
      },
    });
  });

  it('renders and parses the decimal form', () => {
    const line = renderIntrFaultLine({ sid: 0x0300, index: 0x5, reason: 0x25 }, 'decimal');
    expect(line).toBe(
      'DMAR: [INTR-REMAP] Request device [03:00.0] fault index 5 [fault reason 37] Blocked a compatibility format interrupt request',
    );
    expect(parseVtdLogLine(line)).toMatchObject({ ok: true, value: { index: 5n, reason: 0x25, format: 'decimal' } });
  });
});

describe('fault status and FRCD lines', () => {
  it('renders and parses the FSTS line', () => {
    expect(renderFaultStatusLine(0x2)).toBe('DMAR: DRHD: handling fault status reg 2');
    expect(parseVtdLogLine('DMAR: DRHD: handling fault status reg 402')).toEqual({
      ok: true,
      value: { kind: 'fault-status', status: 0x402 },
    });
  });

  it('prints a fault record as dmar_fault() does', () => {
    expect(renderFrcdLine(frcdForDmaFault({ addr: 0xfffe0abcn, sid: 0x10, read: true, reason: 6 }))).toBe(
      'DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfffe0000 [fault reason 0x06] PTE Read access is not set',
    );
    expect(renderFrcdLine(frcdForInterruptFault({ index: 0x12, sid: 0xf0f8, reason: 0x21 }))).toBe(
      'DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x12 [fault reason 0x21] Interrupt index exceeded the interrupt-remapping table size',
    );
    expect(renderFrcdLine(frcdForDmaFault({ addr: 0x1000n, sid: 0x10, read: false, reason: 0x99 }))).toBe(
      'DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x1000 [fault reason 0x99] Unknown',
    );
  });

  it('formats source ids', () => {
    expect(formatSourceId(0xffff)).toBe('ff:1f.7');
  });
});

describe('parseVtdLog', () => {
  it('collects records, reports malformed VT-d lines by number and skips the rest', () => {
    const log = [
      '[    0.350789] DMAR: Host address width 39',
      `[    0.350799] ${BOOT}`,
      '[    0.350807] DMAR: dmar1: reg_base_addr fed91000 ver 5:0 cap d2008c40660462 ecap f050da',
      '[   12.000000] DMAR: DRHD: handling fault status reg 2',
      '[   12.000001] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfffe0000 [fault reason 0x06] PTE Read access is not set',
      '[   12.000002] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xzz [fault reason 0x06] PTE Read access is not set',
      '[   12.000003] usb 1-1: new high-speed USB device',
    ].join('\n');
    const r = parseVtdLog(log);
    expect(r.records.map((x) => [x.line, x.record.kind])).toEqual([
      [2, 'boot'],
      [3, 'boot'],
      [4, 'fault-status'],
      [5, 'dma-fault'],
    ]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0].line).toBe(6);
    expect(r.errors[0].error).toContain('hexadecimal fault address');
    expect(r.ignored).toBe(2);
  });

  it('never throws on junk', () => {
    for (const junk of ['', 'DMAR:', 'DMAR: [DMA', 'DMAR: [INTR-REMAP] Request device [', '\u0000\u0001', 'dmar: IOMMU x: reg_base_addr']) {
      expect(() => parseVtdLogLine(junk)).not.toThrow();
      expect(parseVtdLogLine(junk).ok).toBe(false);
    }
  });
});
