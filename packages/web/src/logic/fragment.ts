/**
 * What a view shows is carried in the URL fragment, so a decoded fault or a plan can be sent as a link.
 * The fragment never leaves the browser (it is not part of the HTTP request). Form:
 * `#<view>=<text>[&<key>=<value>...]`, every part percent-encoded.
 */
export const VIEWS = ['decode', 'plan', 'walk', 'pipeline'] as const;
export type View = (typeof VIEWS)[number];

export interface PageState {
  readonly view: View;
  /** The view's main input (pasted lines, profiles, an IOVA...). */
  readonly input: string;
  readonly params: Readonly<Record<string, string>>;
}

export function isView(v: string): v is View {
  return (VIEWS as readonly string[]).includes(v);
}

export function parseFragment(hash: string): PageState {
  const body = hash.startsWith('#') ? hash.slice(1) : hash;
  const parts = body.split('&').filter((p) => p !== '');
  let view: View = 'decode';
  let input = '';
  const params: Record<string, string> = {};
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    const key = safeDecode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : safeDecode(part.slice(eq + 1));
    if (i === 0 && isView(key)) {
      view = key;
      input = value;
    } else if (key !== '' && !Object.prototype.hasOwnProperty.call(params, key)) {
      // defineProperty: a key named __proto__ stays a plain own entry instead of replacing the prototype.
      Object.defineProperty(params, key, { value, enumerable: true, writable: true, configurable: true });
    }
  });
  return { view, input, params };
}

export function formatFragment(state: PageState): string {
  const head = state.input === '' ? state.view : `${state.view}=${encodeURIComponent(state.input)}`;
  const rest = Object.entries(state.params)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return `#${[head, ...rest].join('&')}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    // A hand-edited link with a stray '%': keep the text as written rather than lose it.
    return s;
  }
}
