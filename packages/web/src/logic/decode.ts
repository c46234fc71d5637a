/**
 * The decode view's logic: which vendor and kind a pasted text is, each line's decoding, and lines
 * grouped by the device they name. Everything comes from the plugins' decoders (`IommuPlugin.decoder`).
 */
import type { DecodeOutput, IommuDecoder } from '@ioasid/core/driver';

export interface DecodeRequest {
  readonly text: string;
  /** A vendor id, or undefined to try every vendor. */
  readonly vendor?: string;
  readonly kind?: string;
}

export interface DecodedItem {
  /** The input lines this item covers (a multi-line record, or one line). */
  readonly source: string;
  readonly ok: boolean;
  readonly output?: DecodeOutput;
  /** Why no vendor could decode it: one reason per vendor tried. */
  readonly errors?: ReadonlyArray<{ vendor: string; error: string }>;
}

function tryVendors(text: string, list: readonly IommuDecoder[], kind: string | undefined): DecodedItem {
  const errors: Array<{ vendor: string; error: string }> = [];
  for (const d of list) {
    const r = d.decode(text, kind);
    if (r.ok) return { source: text, ok: true, output: r.value };
    errors.push({ vendor: d.vendor, error: r.error });
  }
  return { source: text, ok: false, errors };
}

/** The most lines one record spans in a kernel log (an SMMUv3 event: a header and four dwords, then two detail lines). */
const MAX_RECORD_LINES = 8;

/**
 * Decodes each line, except where a decoder reads a line together with the ones after it as one
 * record of a different kind (an SMMUv3 "event 0x10 received:" header and its dwords): then the
 * smallest such run of lines is one item. Decoders are lenient about trailing text, so the smallest
 * run that changes the kind is the record, not the largest that still decodes.
 */
export function decodeText(req: DecodeRequest, all: readonly IommuDecoder[]): DecodedItem[] {
  const text = req.text.replace(/\r\n?/g, '\n').trim();
  if (text === '') return [];
  const list = req.vendor ? all.filter((d) => d.vendor === req.vendor) : all;
  if (list.length === 0) return [{ source: text, ok: false, errors: [{ vendor: req.vendor ?? '', error: 'no such vendor plugin' }] }];
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out: DecodedItem[] = [];
  for (let i = 0; i < lines.length; ) {
    const single = tryVendors(lines[i].trim(), list, req.kind);
    let taken: DecodedItem = single;
    let used = 1;
    for (let k = 2; k <= MAX_RECORD_LINES && i + k <= lines.length; k++) {
      const run = tryVendors(lines.slice(i, i + k).join('\n'), list, req.kind);
      if (run.ok && (!single.ok || run.output?.kind !== single.output?.kind || run.output?.vendor !== single.output?.vendor)) {
        taken = run;
        used = k;
        break;
      }
    }
    out.push(taken);
    i += used;
  }
  return out;
}

const BDF = /\b(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])\b/i;

/**
 * The device an item names, for grouping: the PCI address in its Linux line or summary, else a
 * StreamID / source-id field. Items naming none are grouped under ''.
 */
export function deviceOf(item: DecodedItem): string {
  const out = item.output;
  if (!out) return '';
  const m = BDF.exec(out.linux) ?? BDF.exec(out.summary);
  if (m) return `${(m[1] ?? '0000').toLowerCase()}:${m[2].toLowerCase()}:${m[3].toLowerCase()}.${m[4]}`;
  for (const key of ['SID', 'StreamID', 'sid']) {
    const v = out.fields[key];
    if (typeof v === 'number' || typeof v === 'string') return `${key} ${typeof v === 'number' ? `0x${v.toString(16)}` : v}`;
  }
  return '';
}

export interface DeviceGroup {
  readonly device: string;
  readonly items: readonly DecodedItem[];
}

/** Items grouped by device, in the order each device first appears. */
export function groupByDevice(items: readonly DecodedItem[]): DeviceGroup[] {
  const groups = new Map<string, DecodedItem[]>();
  for (const it of items) {
    const d = deviceOf(it);
    const g = groups.get(d);
    if (g) g.push(it);
    else groups.set(d, [it]);
  }
  return [...groups].map(([device, list]) => ({ device, items: list }));
}
