#!/usr/bin/env node
// The `ioasid` launcher. An installed package runs its build; a source checkout that has not been
// built yet (right after `npm ci`) runs the TypeScript sources through tsx instead.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  const require = createRequire(import.meta.url);
  let tsx;
  try {
    tsx = require.resolve('tsx/esm');
  } catch {
    process.stderr.write('ioasid: this checkout is not built; run `npm run build` first\n');
    process.exit(1);
  }
  const source = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--conditions=@ioasid/source', '--import', pathToFileURL(tsx).href, source, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
