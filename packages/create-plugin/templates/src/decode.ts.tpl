/**
 * The __NAME__ decoder: the plugin's optional presentation part (`IommuPlugin.decoder`). It explains a
 * CAP value or a fault record for people (`ioasid decode __ID__ ...`, the web page); no unit needs it,
 * and a plugin without it works for everything but decode.
 *
 * Inputs: a CAP value with kind `cap` (`0x3fd3010`), or a fault record as its two 64-bit words
 * (`0x... 0x...`, kind `fault` or none).
 */
import { decodeBitFields, err, ok, type DecodeAdvice, type DecodeOutput, type IommuDecoder, type Result } from '@ioasid/core/driver';
import { VENDOR_ID } from './ids.js';
import { CAP_FIELDS, decodeCap, hwIdOf } from './registers.js';
import { faultCodec } from './fault-codec.js';
import { FAULT_FIELDS, FAULT_REASONS, RECORD_SIZE, decodeFaultRecord } from './records.js';

/** What to tell a reader about each REASON: the usual causes and what to check next. Replace with the hardware's. */
const ADVICE: Partial<Record<string, DecodeAdvice>> = {
  'not-present': {
    causes: ['the device used an IOVA that is not mapped (never mapped, or unmapped while DMA was in flight)'],
    checks: ['the IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP calls for this address', 'which domain the device is attached to'],
  },
  'permission-write': {
    causes: ['the page is mapped read-only (IOMMU_READ without IOMMU_WRITE)'],
    checks: ['the flags of the IOMMU_IOAS_MAP that mapped this address'],
  },
};

function word(text: string): bigint | null {
  return /^(0x)?[0-9a-f]{1,16}$/i.test(text) ? BigInt(text.toLowerCase().startsWith('0x') ? text : `0x${text}`) : null;
}

function decodeCapValue(value: bigint): Result<DecodeOutput> {
  const f = decodeCap(value);
  if (!f.ok) return f;
  return ok({
    vendor: VENDOR_ID,
    kind: 'cap',
    fields: { ...f.value },
    summary: hwIdOf(f.value),
    linux: '',
    words: [{ name: 'CAP', value, width: 64, layout: CAP_FIELDS }],
  });
}

function decodeFaultWords(w0: bigint, w1: bigint): Result<DecodeOutput> {
  const rec = new Uint8Array(RECORD_SIZE);
  const dv = new DataView(rec.buffer);
  dv.setBigUint64(0, w0, true);
  dv.setBigUint64(8, w1, true);
  // The record is refused here, with what is wrong, before the codec (which trusts its records) reads it.
  const checked = decodeFaultRecord(rec);
  if (!checked.ok) return checked;
  const fields = decodeBitFields(FAULT_FIELDS, w0);
  const f = faultCodec.decodeFault(rec, 0);
  const rid = `${(f.rid >> 8).toString(16).padStart(2, '0')}:${((f.rid >> 3) & 0x1f).toString(16).padStart(2, '0')}.${f.rid & 7}`;
  const advice = ADVICE[FAULT_REASONS[fields.REASON - 1] ?? ''];
  return ok({
    vendor: VENDOR_ID,
    kind: 'fault',
    fields: { ...fields, ADDR: `0x${w1.toString(16)}` },
    summary: `${f.reasonText} at 0x${w1.toString(16)} from ${rid}`,
    linux: faultCodec.renderLog(f, rid, `${VENDOR_ID}0`).join('\n'),
    words: [
      { name: 'word 0', value: w0, width: 64, layout: FAULT_FIELDS },
      { name: 'word 1', value: w1, width: 64, layout: [{ name: 'ADDR', hi: 63, lo: 0 }] },
    ],
    ...(advice ? { advice } : {}),
  });
}

export function decode(what: string, kind?: string): Result<DecodeOutput> {
  const tokens = what.trim().split(/[\s,]+/).filter((t) => t !== '');
  const values = tokens.map(word);
  if (tokens.length === 0 || values.some((v) => v === null)) return err('expected hex values: a CAP value (kind cap) or the two words of a fault record');
  const [a, b] = values as bigint[];
  if (kind === 'cap') return values.length === 1 ? decodeCapValue(a) : err(`CAP is one value, got ${values.length}`);
  if (kind !== undefined && kind !== 'fault') return err(`unknown kind '${kind}' (known: cap, fault)`);
  if (values.length !== 2) return err(`a fault record is 2 words, got ${values.length} (a CAP value needs --kind cap)`);
  return decodeFaultWords(a, b);
}

export const decoder: IommuDecoder = { vendor: VENDOR_ID, decode };
