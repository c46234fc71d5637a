import { describe, expect, it } from 'vitest';
import { wordField, type DecodeOutput } from '@ioasid/core/driver';
import { decodeVtd } from './decode.js';

const LINE = 'DMAR: [DMA Read NO_PASID] Request device [5c:00.0] fault addr 0x7ff000 [fault reason 0x06] PTE Read access is not set';

function decoded(text: string, kind?: string): DecodeOutput {
  const r = decodeVtd(text, kind);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('VT-d decoder: record words and advice', () => {
  it('a DMAR fault line: the fault recording register it came from, and what reason 0x06 usually means', () => {
    const o = decoded(LINE);
    expect([wordField(o.words!, 'FR'), wordField(o.words!, 'SID'), wordField(o.words!, 'FI')! << 12n, wordField(o.words!, 'T1'), wordField(o.words!, 'F')]).toEqual([6n, 0x5c00n, 0x7ff000n, 1n, 1n]);
    const a = o.advice!;
    expect(a.causes[0]).toMatch(/no present bit/);
    expect(a.causes.join('\n')).toMatch(/already freed or unmapped/);
    expect(a.causes.join('\n')).toMatch(/missing IOAS map/);
    expect(a.checks[0]).toContain('lspci -vvs 5c:00.0');
    expect(a.checks[1]).toBe('Which address: 0x7ff000, a read without a PASID.');
  });

  it('the same fault as a raw record, and a scalable-mode first-stage permission reason with a PASID', () => {
    const line = decoded(LINE);
    const hex = line.words!.map((w) => `0x${w.value.toString(16)}`).join(' ');
    const raw = decoded(hex, 'frcd');
    expect(raw.words).toEqual(line.words);
    expect(raw.advice).toEqual(line.advice);
    const sm = decoded('DMAR: [DMA Write PASID 0x5] Request device [00:02.0] fault addr 0x1000 [fault reason 0x85] SM: No write permission for Write/AtomicOp request');
    expect(sm.advice!.causes.join('\n')).toMatch(/mapped read-only/);
    expect(sm.advice!.checks[1]).toBe('Which address: 0x1000, a write with PASID 5.');
  });

  it('an interrupt-remapping fault names the interrupt index; a reason with no advice has none', () => {
    const intr = decoded('DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x21 [fault reason 0x22] Present field in the IRTE entry is clear');
    expect(intr.advice!.checks[1]).toBe('Which interrupt index: 0x21.');
    expect(intr.advice!.causes[0]).toMatch(/MSI/);
    expect(wordField(intr.words!, 'FR')).toBe(0x22n);
    expect(decoded('DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x1000 [fault reason 0x0c] non-zero reserved fields in PTE').advice).toBeUndefined();
  });

  it('page requests and responses carry their words, and no advice (they are not faults)', () => {
    const req = decoded('0x0000000500030001 0x0000000001234007 0x0 0x0', 'page-request');
    expect(wordField(req.words!, 'prg_index')).toBe(0n);
    expect(req.advice).toBeUndefined();
    expect(req.words).toHaveLength(4);
  });
});
