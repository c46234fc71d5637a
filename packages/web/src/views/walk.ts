/** The walk view: translate an IOVA on a built-in host and see every table entry the hardware reads. */
import type { ExplainedTranslation, StageTrace } from '@ioasid/core';
import { hexWords } from '../logic/hex.js';
import { openWalk, parseIova, walkPresets, type WalkSession } from '../logic/walk.js';
import { copyButton, h } from '../dom.js';
import type { ViewContext } from './decode.js';

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/** The 64 bits of an entry, most significant first, set bits marked, in nibbles. */
function entryBits(entry: bigint): HTMLElement {
  const cells: HTMLElement[] = [];
  for (let b = 63; b >= 0; b--) {
    const on = ((entry >> BigInt(b)) & 1n) === 1n;
    cells.push(h('span', { class: on ? 'bit on' : 'bit', title: `bit ${b}` }, on ? '1' : '0'));
    if (b % 4 === 0 && b !== 0) cells.push(h('span', { class: 'gap' }, ' '));
  }
  return h('div', { class: 'entry-bits', 'aria-label': `entry bits, 63 to 0: ${entry.toString(2).padStart(64, '0')}` }, ...cells);
}

function stageView(s: StageTrace): HTMLElement {
  const title = `${s.stage === 'paging' ? 'The walk' : s.stage} (${s.format || 'format not named'})`;
  if (!s.steps) return h('section', { class: 'stage' }, h('h3', {}, title), h('p', {}, 'This format does not show its levels; the result below is the walk\'s.'));
  return h(
    'section',
    { class: 'stage', 'data-stage': s.stage },
    h('h3', {}, title),
    h(
      'ol',
      { class: 'levels' },
      ...s.steps.map((st) =>
        h(
          'li',
          { 'data-level': String(st.level), 'data-kind': st.kind },
          h('p', {}, h('strong', {}, `Level ${st.level}`), ` table page ${hex(st.tablePfn)}, entry ${st.index}: `, h('code', { class: 'entry' }, hex(st.entry).padStart(18, ' ')), ' ', h('span', { class: 'badge' }, st.kind === 'table' ? `table -> page ${hex(st.pfn)}` : st.kind === 'leaf' ? `leaf -> page ${hex(st.pfn)}` : 'not present: the walk stops')),
          entryBits(st.entry),
        ),
      ),
    ),
  );
}

function resultView(e: ExplainedTranslation, unitName: string): HTMLElement[] {
  const out: HTMLElement[] = [h('p', { class: 'iotlb', 'data-iotlb': e.iotlb }, `IOTLB: ${e.iotlb === 'hit' ? 'hit (the walk below is what the hardware did when it filled it)' : 'miss, so the unit walks the tables'}. Context: ${e.binding}.`)];
  out.push(...e.stages.map(stageView));
  if (e.ok) {
    out.push(h('p', { class: 'result ok' }, `${hex(e.iova)} -> physical ${hex(e.pa!)} (${e.perm! & 1 ? 'R' : ''}${e.perm! & 2 ? 'W' : ''}${e.perm! & 4 ? 'X' : ''})`));
    return out;
  }
  out.push(h('p', { class: 'result error' }, `${hex(e.iova)} does not translate: ${e.failure}${e.stage2 ? ' (stage 2)' : ''}.`));
  if (e.record) {
    out.push(
      h('p', {}, e.recoverable ? `The device would send a page request; ${unitName} queues this record:` : `${unitName} records the fault:`),
      h('pre', { class: 'record' }, hexWords(e.record)),
    );
  }
  if (e.linux?.length) out.push(h('p', {}, 'Linux prints:'), h('pre', { class: 'linux' }, e.linux.join('\n')));
  return out;
}

export function renderWalk(root: HTMLElement, ctx: ViewContext): void {
  const presets = walkPresets();
  const preset = h('select', { id: 'walk-preset' }, ...presets.map((p) => h('option', { value: p.id }, `${p.id.split(':')[0]}: ${p.profile.name}`)));
  preset.value = presets.some((p) => p.id === ctx.state.params.preset) ? ctx.state.params.preset : (presets[0]?.id ?? '');
  const iova = h('input', { id: 'walk-iova', type: 'text', size: '22', spellcheck: 'false' });
  const write = h('input', { id: 'walk-write', type: 'checkbox' });
  write.checked = ctx.state.params.access === 'write';
  const info = h('p', { id: 'walk-info' });
  const out = h('section', { id: 'walk-results', 'aria-live': 'polite' });
  let session: WalkSession | null = null;

  const open = () => {
    session = openWalk(preset.value);
    info.replaceChildren(`${session.profile.name}: device ${session.device} is attached to an IOAS with 2 MiB of memory mapped at ${hex(session.base)} (format ${session.format || 'unnamed'}). IOVAs outside it fault.`);
  };
  const translate = () => {
    if (!session) open();
    const s = session!;
    const v = parseIova(iova.value === '' ? hex(s.base + 0x1000n) : iova.value);
    if (iova.value === '') iova.value = hex(s.base + 0x1000n);
    ctx.save(iova.value, { preset: preset.value, access: write.checked ? 'write' : '' });
    if (v === null) {
      out.replaceChildren(h('p', { class: 'error' }, `"${iova.value}" is not an IOVA: give a number below 2^64, hex with 0x`));
      return;
    }
    const unit = s.profile.units.find((u) => u.id === s.profile.devices[0].unit)?.id ?? 'the unit';
    out.replaceChildren(...resultView(s.explain(v, write.checked), unit));
  };
  iova.value = ctx.state.input;
  preset.addEventListener('change', () => {
    session = null;
    iova.value = '';
    translate();
  });

  root.append(
    h('h2', {}, 'Walk'),
    h('p', {}, 'Translate an IOVA the way the IOMMU does: the IOTLB first, then one entry per level of the page table, each shown as the 64 bits the model keeps in memory.'),
    h(
      'form',
      { class: 'controls', onsubmit: ((e: Event) => (e.preventDefault(), translate())) as EventListener },
      h('div', { class: 'row' }, h('label', {}, 'Host ', preset), h('label', { for: 'walk-iova' }, 'IOVA '), iova, h('label', {}, write, ' write'), h('button', { type: 'submit', id: 'walk-go' }, 'Translate'), copyButton('Copy link', ctx.link)),
    ),
    info,
    out,
  );
  translate();
}
