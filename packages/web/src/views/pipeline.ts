/** The page-request view: one page request from the device to its retry, step by step, with the real records. */
import { priPresets, runPageRequest, type PipelineStep } from '../logic/pipeline.js';
import { hexWords } from '../logic/hex.js';
import { copyButton, h, table } from '../dom.js';
import type { ViewContext } from './decode.js';

function stepView(s: PipelineStep): HTMLElement {
  return h(
    'li',
    {},
    h('strong', {}, s.title),
    h('p', {}, s.text),
    s.bytes ? h('pre', { class: 'record', 'aria-label': `${s.bytes.length} bytes as 32-bit words` }, hexWords(s.bytes)) : null,
    s.fields ? table(['Field', 'Value'], Object.entries(s.fields).map(([k, v]) => [h('code', {}, k), v])) : null,
  );
}

export function renderPipeline(root: HTMLElement, ctx: ViewContext): void {
  const presets = priPresets();
  const preset = h('select', { id: 'pipeline-preset' }, ...presets.map((p) => h('option', { value: p.id }, `${p.id.split(':')[0]}: ${p.profile.name}`)));
  preset.value = presets.some((p) => p.id === ctx.state.params.preset) ? ctx.state.params.preset : (presets[0]?.id ?? '');
  const answer = h('select', { id: 'pipeline-answer' }, h('option', { value: 'success' }, 'SUCCESS (map the page)'), h('option', { value: 'invalid' }, 'INVALID'));
  answer.value = ctx.state.params.answer === 'invalid' ? 'invalid' : 'success';
  const out = h('ol', { id: 'pipeline-steps', class: 'steps', 'aria-live': 'polite' });

  const run = async () => {
    ctx.save('', { preset: preset.value, answer: answer.value });
    out.replaceChildren(h('li', {}, 'running…'));
    try {
      const r = await runPageRequest(preset.value, answer.value === 'invalid' ? 'invalid' : 'success');
      out.replaceChildren(...r.steps.map(stepView));
    } catch (e) {
      out.replaceChildren(h('li', { class: 'error' }, e instanceof Error ? e.message : String(e)));
    }
  };
  preset.addEventListener('change', () => void run());
  answer.addEventListener('change', () => void run());

  root.append(
    h('h2', {}, 'A page request, step by step'),
    h('p', {}, 'A device with PRI reads an IOVA nothing maps yet. Its page request goes through the IOMMU\'s queue, the driver and a fault queue to user space, whose answer travels back to the device in the hardware\'s format.'),
    h('div', { class: 'row' }, h('label', {}, 'Host ', preset), h('label', {}, 'Answer ', answer), h('button', { type: 'button', id: 'pipeline-run', onclick: (() => void run()) as EventListener }, 'Run again'), copyButton('Copy link', ctx.link)),
    out,
  );
  void run();
}
