/** The walk view: translate an IOVA on a built-in host and see every table entry the hardware reads. */
import type { ExplainedTranslation, StageTrace } from '@ioasid/core';
import type { WalkStep } from '@ioasid/core/driver';
import { hexWords } from '../logic/hex.js';
import { nestable, openWalk, parseIova, walkPresets, type WalkDomain, type WalkSession } from '../logic/walk.js';
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

/** What an entry is, in words. */
function stepBadge(st: WalkStep): string {
  if (st.tablePfn < 0) return 'stage 2 does not translate this table page: the walk stops (a table fault)';
  const next = st.tableGpaPfn === undefined ? 'page' : 'guest page';
  if (st.kind === 'table') return st.context ? `-> ${next} ${hex(st.pfn)}` : `table -> ${next} ${hex(st.pfn)}`;
  if (st.kind === 'leaf') return `leaf -> ${next} ${hex(st.pfn)}`;
  return 'not present: the walk stops';
}

/** Where a stage-1 table page is: its guest-physical page, and the stage-2 walk that found it. */
function stage2Of(st: WalkStep): HTMLElement[] {
  if (st.tableGpaPfn === undefined) return [];
  const where = st.tablePfn < 0 ? 'no host page' : `host page ${hex(st.tablePfn)}`;
  const summary = `Stage 2 translates guest page ${hex(st.tableGpaPfn)} -> ${where}${st.stage2 ? ` (${st.stage2.length} entries)` : ''}`;
  return [h('details', { class: 'stage2-of', 'data-gpa': hex(st.tableGpaPfn) }, h('summary', {}, summary), st.stage2 ? levelsView(st.stage2, 'levels nested') : h('p', {}, 'The stage-2 format does not show its levels.'))];
}

function levelsView(steps: readonly WalkStep[], cls: string): HTMLElement {
  return h(
    'ol',
    { class: cls },
    ...steps.map((st) =>
      h(
        'li',
        { 'data-level': String(st.level), 'data-kind': st.kind, ...(st.context ? { 'data-context': 'true' } : {}) },
        h(
          'p',
          {},
          h('strong', {}, st.context ?? `Level ${st.level}`),
          st.tableGpaPfn === undefined
            ? ` table page ${hex(st.tablePfn)}, entry ${st.index}: `
            : ` table at guest page ${hex(st.tableGpaPfn)} (${st.tablePfn < 0 ? 'no host page' : `host page ${hex(st.tablePfn)}`}), entry ${st.index}: `,
          h('code', { class: 'entry' }, hex(st.entry).padStart(18, ' ')),
          ' ',
          h('span', { class: 'badge' }, stepBadge(st)),
        ),
        ...(st.tablePfn < 0 ? [] : [entryBits(st.entry)]),
        ...stage2Of(st),
      ),
    ),
  );
}

const STAGE_INTRO: Record<StageTrace['stage'], string> = {
  paging: '',
  'stage 1': "The guest's table, in guest-physical memory: the unit translates each table page through stage 2 before it reads the entry (open a level to see that walk).",
  'stage 2': "The host's table, walked with the guest-physical page stage 1 gave.",
};

function stageView(s: StageTrace): HTMLElement {
  const title = `${s.stage === 'paging' ? 'The walk' : s.stage} (${s.format || 'format not named'})`;
  const intro = STAGE_INTRO[s.stage] ? [h('p', {}, STAGE_INTRO[s.stage])] : [];
  if (!s.steps) return h('section', { class: 'stage', 'data-stage': s.stage }, h('h3', {}, title), h('p', {}, 'This format does not show its levels; the result below is the walk\'s.'));
  return h('section', { class: 'stage', 'data-stage': s.stage }, h('h3', {}, title), ...intro, levelsView(s.steps, 'levels'));
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
  const domain = h('select', { id: 'walk-domain' }, h('option', { value: 'paging' }, 'paging (one stage)'), h('option', { value: 'nested' }, 'nested (guest stage 1 over stage 2)'));
  const info = h('p', { id: 'walk-info' });
  const out = h('section', { id: 'walk-results', 'aria-live': 'polite' });
  let session: WalkSession | null = null;
  let refused = '';

  /** Only vendors whose guest stage 1 the page can build offer nesting. */
  const syncDomain = (wanted: string) => {
    const can = nestable(preset.value);
    (domain.options[1] as HTMLOptionElement).disabled = !can;
    domain.value = can && wanted === 'nested' ? 'nested' : 'paging';
  };
  const open = () => {
    const d = domain.value as WalkDomain;
    try {
      session = openWalk(preset.value, d);
      refused = '';
    } catch (e) {
      // The unit refused nesting through the uAPI (no nested translation, no vIOMMU): say so, walk paging.
      refused = `This host cannot build a nested domain: ${e instanceof Error ? e.message : String(e)}. Showing a paging domain instead.`;
      session = openWalk(preset.value, 'paging');
    }
    const s = session;
    const what =
      s.domain === 'nested'
        ? `is attached to a nested domain: ${s.detail}. The guest maps 2 MiB at guest IOVA ${hex(s.base)} (stage 1 format ${s.format}); stage 2 maps its 4 MiB of RAM at GPA 0.`
        : `is attached to an IOAS with 2 MiB of memory mapped at ${hex(s.base)} (format ${s.format || 'unnamed'}).`;
    info.replaceChildren(`${s.profile.name}: device ${s.device} ${what} IOVAs outside it fault.`, ...(refused ? [h('span', { class: 'error', id: 'walk-refused' }, ` ${refused}`)] : []));
  };
  const translate = () => {
    if (!session) open();
    const s = session!;
    const v = parseIova(iova.value === '' ? hex(s.base + 0x1000n) : iova.value);
    if (iova.value === '') iova.value = hex(s.base + 0x1000n);
    ctx.save(iova.value, { preset: preset.value, access: write.checked ? 'write' : '', domain: domain.value === 'nested' ? 'nested' : '' });
    if (v === null) {
      out.replaceChildren(h('p', { class: 'error' }, `"${iova.value}" is not an IOVA: give a number below 2^64, hex with 0x`));
      return;
    }
    const unit = s.profile.units.find((u) => u.id === s.profile.devices[0].unit)?.id ?? 'the unit';
    out.replaceChildren(...resultView(s.explain(v, write.checked), unit));
  };
  iova.value = ctx.state.input;
  syncDomain(ctx.state.params.domain ?? '');
  const reopen = () => {
    session = null;
    iova.value = '';
    translate();
  };
  preset.addEventListener('change', () => {
    syncDomain(domain.value);
    reopen();
  });
  domain.addEventListener('change', reopen);

  root.append(
    h('h2', {}, 'Walk'),
    h('p', {}, 'Translate an IOVA the way the IOMMU does: the IOTLB first, then one entry per level of the page table, each shown as the 64 bits the model keeps in memory. A nested domain walks the guest\'s stage 1 (each of its table pages itself translated by stage 2) and then stage 2.'),
    h(
      'form',
      { class: 'controls', onsubmit: ((e: Event) => (e.preventDefault(), translate())) as EventListener },
      h('div', { class: 'row' }, h('label', {}, 'Host ', preset), h('label', {}, 'Domain ', domain), h('label', { for: 'walk-iova' }, 'IOVA '), iova, h('label', {}, write, ' write'), h('button', { type: 'submit', id: 'walk-go' }, 'Translate'), copyButton('Copy link', ctx.link)),
    ),
    info,
    out,
  );
  translate();
}
