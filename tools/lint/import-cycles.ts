/**
 * `npm run lint` runs this after ESLint: no import cycles among the source modules of any package.
 * Every kind of import counts: value imports, type-only ones (`import type`, `export type`, inline
 * `type` specifiers), re-exports, `import('...')` (dynamic, or as a type). Type-only imports are erased
 * at build time, but a type cycle still means two modules each know the other, so the layers no longer
 * read one way. Only relative imports are followed (packages depend on each other one way, through
 * their entry points). A cycle is reported as the files of one strongly connected component; the exit
 * code is 1 when there is one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
/** Static imports and re-exports, type-only or not, with or without bindings. */
const STATIC = /^\s*(?:import|export)\s+(?:[^'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;
/** `import('./x.js')`: a dynamic import, or a type query such as `import('./x.js').T`. */
const DYNAMIC = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && name !== '__tests__' && name !== 'dist') sources(p, out);
    } else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function edges(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of [...text.matchAll(STATIC), ...text.matchAll(DYNAMIC)]) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
    out.push(target);
  }
  return out;
}

/** Tarjan's strongly connected components; every component of more than one file is a cycle. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.reverse());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

const graph = new Map<string, string[]>();
for (const pkg of readdirSync(join(root, 'packages'))) {
  const src = join(root, 'packages', pkg, 'src');
  try {
    statSync(src);
  } catch {
    continue;
  }
  for (const f of sources(src)) graph.set(f, edges(f));
}
const found = cycles(graph);
for (const c of found) console.error(`import cycle: ${c.map((f) => relative(root, f)).join(' -> ')} -> ${relative(root, c[0])}`);
if (found.length > 0) {
  console.error(`${found.length} import cycle(s): make the layers import one way: move the shared part down, or let the lower module declare the interface it needs.`);
  process.exitCode = 1;
} else console.log(`import cycles: none in ${graph.size} modules`);
