/** The decode view: paste lines, registers or records; see fields, meaning and the Linux line, grouped by device. */
import type { DecodeAdvice, DecodedWord } from '@ioasid/core/driver';
import { bitSegments } from '../logic/bits.js';
import { decodeText, groupByDevice, type DecodedItem } from '../logic/decode.js';
import { decoders, vendors } from '../logic/plugins.js';
import type { PageState } from '../logic/fragment.js';
import { copyButton, h, table } from '../dom.js';

export interface ViewContext {
  readonly state: PageState;
  /** Records the view's input in the URL fragment (without a new history entry per keystroke). */
  save(input: string, params: Record<string, string>): void;
  /** The current page URL, for "copy link". */
  link(): string;
}

const EXAMPLES: ReadonlyArray<readonly [string, string]> = [
  ['VT-d read fault', 'DMAR: [DMA Read NO_PASID] Request device [5c:00.0] fault addr 0x7ff000 [fault reason 0x06] PTE Read access is not set'],
  ['VT-d CAP register', '0xd2008c40660462'],
  [
    'SMMUv3 event',
    [
      'arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000010000000010',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020800000000',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x00000000ffff0000',
      'arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000',
    ].join('\n'),
  ],
];

function fieldValue(v: string | number | boolean): string {
  if (typeof v === 'number') return v > 9 ? `${v} (0x${v.toString(16)})` : String(v);
  return String(v);
}

/** A word as a row of its fields from the top bit down, each as wide as its bits; unnamed runs are reserved. */
function wordView(w: DecodedWord): HTMLElement {
  const segs = bitSegments(w.value, w.width, w.layout);
  return h(
    'figure',
    { class: 'word' },
    h('figcaption', {}, `${w.name} = 0x${w.value.toString(16)}`),
    h(
      'div',
      { class: 'bits', role: 'img', 'aria-label': `${w.name}: ${segs.filter((s) => s.name).map((s) => `${s.name} ${s.hi === s.lo ? s.hi : `${s.hi}:${s.lo}`} = ${s.value}`).join(', ')}` },
      ...segs.map((s) =>
        h(
          'span',
          { class: `field${s.value !== 0n ? ' set' : ''}${s.name ? '' : ' reserved'}`, style: `flex-grow: ${s.hi - s.lo + 1}`, title: `${s.name || 'reserved'} [${s.hi}:${s.lo}] = 0x${s.value.toString(16)}`, 'data-field': s.name },
          h('span', { class: 'name' }, s.name || '—'),
          h('span', { class: 'range' }, s.hi === s.lo ? String(s.hi) : `${s.hi}:${s.lo}`),
          h('span', { class: 'value' }, s.value > 9n ? `0x${s.value.toString(16)}` : String(s.value)),
        ),
      ),
    ),
  );
}

/** For a fault: what to check next, in order, then the usual causes, most likely first. */
function adviceView(a: DecodeAdvice): HTMLElement {
  return h(
    'section',
    { class: 'advice' },
    h('h4', {}, 'What to check next'),
    h('ol', { class: 'checks' }, ...a.checks.map((c) => h('li', {}, c))),
    h('h4', {}, 'Usual causes'),
    h('ul', { class: 'causes' }, ...a.causes.map((c) => h('li', {}, c))),
  );
}

function itemView(item: DecodedItem): HTMLElement {
  if (!item.ok || !item.output) {
    return h(
      'article',
      { class: 'item error' },
      h('pre', { class: 'source' }, item.source),
      h('p', {}, 'No plugin could decode this:'),
      h('ul', {}, ...(item.errors ?? []).map((e) => h('li', {}, h('strong', {}, e.vendor), `: ${e.error}`))),
    );
  }
  const o = item.output;
  const fields = Object.entries(o.fields);
  return h(
    'article',
    { class: 'item', 'data-vendor': o.vendor, 'data-kind': o.kind },
    h('p', { class: 'summary' }, h('span', { class: 'badge' }, `${o.vendor} · ${o.kind}`), ' ', o.summary),
    o.advice ? adviceView(o.advice) : null,
    ...(o.words ?? []).map(wordView),
    fields.length ? table(['Field', 'Value'], fields.map(([k, v]) => [h('code', {}, k), fieldValue(v)]), 'Fields, by the specification\'s names') : null,
    o.linux ? h('div', { class: 'linux' }, h('p', {}, 'What Linux prints for it:'), h('pre', {}, o.linux)) : null,
    h('details', {}, h('summary', {}, 'Input'), h('pre', { class: 'source' }, item.source)),
  );
}

export function renderDecode(root: HTMLElement, ctx: ViewContext): void {
  const all = decoders();
  const names = new Map(vendors().map((v) => [v.id, v.name]));
  const input = h('textarea', { id: 'decode-input', rows: '6', spellcheck: 'false', placeholder: 'Paste a kernel log line, a register value or a raw record; several lines at once are fine.' });
  input.value = ctx.state.input;
  const vendor = h('select', { id: 'decode-vendor' }, h('option', { value: '' }, 'any vendor (detect)'), ...all.map((d) => h('option', { value: d.vendor }, names.get(d.vendor) ?? d.vendor)));
  vendor.value = ctx.state.params.vendor ?? '';
  const kind = h('input', { id: 'decode-kind', type: 'text', size: '10', placeholder: 'e.g. cap, idr0' });
  kind.value = ctx.state.params.kind ?? '';
  const out = h('section', { id: 'decode-results', 'aria-live': 'polite' });

  const run = () => {
    const items = decodeText({ text: input.value, vendor: vendor.value || undefined, kind: kind.value.trim() || undefined }, all);
    ctx.save(input.value, { vendor: vendor.value, kind: kind.value.trim() });
    out.replaceChildren();
    if (items.length === 0) return;
    const groups = groupByDevice(items);
    const decoded = items.filter((i) => i.ok).length;
    out.append(h('p', { class: 'count' }, `${decoded} of ${items.length} decoded${groups.length > 1 ? `, ${groups.length} devices` : ''}.`));
    for (const g of groups) {
      out.append(h('section', { class: 'group', 'data-device': g.device }, h('h3', {}, g.device === '' ? 'No device named' : `Device ${g.device}`), ...g.items.map(itemView)));
    }
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  });
  vendor.addEventListener('change', run);
  kind.addEventListener('change', run);

  root.append(
    h('h2', {}, 'Decode'),
    h('p', {}, 'A DMAR or arm-smmu-v3 line from dmesg, a capability register, or a fault record: each is explained field by field, with the line Linux prints for it.'),
    h(
      'form',
      { class: 'controls', onsubmit: ((e: Event) => (e.preventDefault(), run())) as EventListener },
      h('label', { for: 'decode-input' }, 'Input'),
      input,
      h('div', { class: 'row' }, h('label', {}, 'Vendor ', vendor), h('label', {}, 'Kind ', kind), h('button', { type: 'submit' }, 'Decode'), copyButton('Copy link', ctx.link)),
      h('p', { class: 'examples' }, 'Examples: ', ...EXAMPLES.flatMap(([label, text], i) => [i ? ' · ' : '', h('button', { type: 'button', class: 'link', onclick: (() => ((input.value = text), run())) as EventListener }, label)])),
    ),
    out,
  );
  if (input.value.trim() !== '') run();
}
