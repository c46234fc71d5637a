import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every bare module specifier reachable from `entry` through relative imports (type-only imports left out). */
function bareImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else bare.add(spec);
    }
  };
  visit(resolve(SRC, entry));
  return bare;
}

describe('package entry points', () => {
  it('@ioasid/core/testing (the mock vendor) loads without vitest', () => {
    expect([...bareImports('testing/index.ts')].filter((s) => s.startsWith('vitest'))).toEqual([]);
  });

  it('@ioasid/core/conformance is the entry that needs vitest', () => {
    expect(bareImports('testing/conformance.ts').has('vitest')).toBe(true);
  });

  it('the published entries import no test runner', () => {
    for (const entry of ['index.ts', 'driver/index.ts', 'internal.ts']) {
      expect([...bareImports(entry)].filter((s) => s.startsWith('vitest')), entry).toEqual([]);
    }
  });
});
