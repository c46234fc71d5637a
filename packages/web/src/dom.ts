/** A small element builder: the page needs no framework. Text is always set as text, never parsed as HTML. */
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | EventListener | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** A button that copies `text()` to the clipboard and says so. */
export function copyButton(label: string, text: () => string): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'copy' }, label);
  b.addEventListener('click', () => {
    void navigator.clipboard?.writeText(text()).then(
      () => flash(b, 'Copied'),
      () => flash(b, 'Copy failed: select the text instead'),
    );
  });
  return b;
}

function flash(b: HTMLButtonElement, msg: string): void {
  const old = b.textContent;
  b.textContent = msg;
  setTimeout(() => (b.textContent = old), 1500);
}

/** A table from a header row and rows of cells. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly Child[]>, caption?: string): HTMLTableElement {
  return h(
    'table',
    {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}
