/**
 * The mock vendor's decoder (the optional presentation part of a plugin): explains a mock fault /
 * page-request record given as its four little-endian 64-bit words, the way `ioasid decode` explains a
 * real vendor's records. The layouts below are the mock record of mock-vendor.ts word by word.
 */
import { decodeBitFields, type BitField } from '../driver/bitfield.js';
import type { DecodeAdvice, DecodeOutput, IommuDecoder } from '../driver/decoder.js';
import { err, ok, type Result } from '../driver/result.js';
import { MOCK_RECORD_SIZE, mockCodec } from './mock-codec.js';

/** The mock record (MOCK_RECORD_SIZE bytes) as four 64-bit words. */
export const MOCK_RECORD_WORDS: readonly (readonly BitField[])[] = [
  [
    { name: 'KIND', hi: 31, lo: 0 },
    { name: 'RID', hi: 63, lo: 32 },
  ],
  [
    { name: 'PASID', hi: 31, lo: 0 },
    { name: 'PERM', hi: 63, lo: 32 },
  ],
  [{ name: 'ADDR', hi: 63, lo: 0 }],
  [
    { name: 'GRPID', hi: 15, lo: 0 },
    { name: 'LAST', hi: 23, lo: 16 },
    { name: 'FAILURE', hi: 31, lo: 24 },
    { name: 'STAGE2', hi: 39, lo: 32 },
  ],
];

const KINDS = ['fault', 'page-request', 'stall'] as const;

const ADVICE: DecodeAdvice = {
  causes: ['the device used an IOVA the process never mapped, or unmapped it while DMA was in flight'],
  checks: ['IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP calls for this IOVA', 'which HWPT the device (and PASID) is attached to'],
};

function parseWords(text: string): Result<bigint[]> {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length !== MOCK_RECORD_SIZE / 8) return err(`a mock record is ${MOCK_RECORD_SIZE / 8} 64-bit words, got ${parts.length}`);
  const words: bigint[] = [];
  for (const p of parts) {
    if (!/^(0x)?[0-9a-f]{1,16}$/i.test(p)) return err(`not a 64-bit hex word: ${p}`);
    words.push(BigInt(p.startsWith('0x') || p.startsWith('0X') ? p : `0x${p}`));
  }
  return ok(words);
}

/** Explains a mock record (`kind` 'record' or absent). */
export const mockDecoder: IommuDecoder = {
  vendor: 'mock',
  decode(what: string, kind?: string): Result<DecodeOutput> {
    if (kind !== undefined && kind !== 'record') return err(`unknown kind '${kind}': the mock decodes 'record'`);
    const w = parseWords(what.trim());
    if (!w.ok) return w;
    const bytes = new Uint8Array(MOCK_RECORD_SIZE);
    const dv = new DataView(bytes.buffer);
    w.value.forEach((v, i) => dv.setBigUint64(i * 8, v, true));
    const f = mockCodec.decodeFault(bytes, 0);
    const fields: Record<string, number | string> = {};
    MOCK_RECORD_WORDS.forEach((layout, i) => Object.assign(fields, decodeBitFields(layout, w.value[i])));
    fields.ADDR = `0x${f.addr.toString(16)}`;
    const recordKind = KINDS[Number(fields.KIND)] ?? 'fault';
    return ok({
      vendor: 'mock',
      kind: recordKind,
      fields,
      summary: `${recordKind}: ${f.perm & 2 ? 'write' : 'read'} at 0x${f.addr.toString(16)} by RID 0x${f.rid.toString(16)}: ${f.reasonText}`,
      linux: mockCodec.renderLog(f, `rid 0x${f.rid.toString(16)}`, 'unit0').join('\n'),
      words: MOCK_RECORD_WORDS.map((layout, i) => ({ name: `word ${i}`, value: w.value[i], width: 64, layout })),
      ...(recordKind === 'fault' ? { advice: ADVICE } : {}),
    });
  },
};
