/** The page: one view at a time, chosen and filled from the URL fragment. */
import 'reflect-metadata';
import { formatFragment, isView, parseFragment, type PageState, type View } from './logic/fragment.js';
import { renderDecode, type ViewContext } from './views/decode.js';
import { renderPlan } from './views/plan.js';
import { renderWalk } from './views/walk.js';
import { renderPipeline } from './views/pipeline.js';

const RENDER: Record<View, (root: HTMLElement, ctx: ViewContext) => void> = {
  decode: renderDecode,
  plan: renderPlan,
  walk: renderWalk,
  pipeline: renderPipeline,
};

const main = document.getElementById('main') as HTMLElement;
/** The fragment this page wrote last: a hashchange to it is our own and needs no re-render. */
let written = '';

function show(state: PageState): void {
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-view]')) {
    if (a.dataset.view === state.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `ioasid: ${state.view}`;
  main.replaceChildren();
  const ctx: ViewContext = {
    state,
    save(input, params) {
      written = formatFragment({ view: state.view, input, params });
      if (written !== location.hash) history.replaceState(null, '', written);
    },
    link: () => location.href,
  };
  try {
    RENDER[state.view](main, ctx);
  } catch (e) {
    main.append(Object.assign(document.createElement('pre'), { className: 'error', textContent: `This view failed: ${e instanceof Error ? e.message : String(e)}` }));
  }
}

window.addEventListener('hashchange', () => {
  if (location.hash === written) return;
  show(parseFragment(location.hash));
});

for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a[data-view]')) {
  a.addEventListener('click', (e) => {
    const view = a.dataset.view ?? '';
    if (!isView(view)) return;
    e.preventDefault();
    written = `#${view}`;
    history.pushState(null, '', written);
    show({ view, input: '', params: {} });
    main.focus();
  });
}

show(parseFragment(location.hash));
