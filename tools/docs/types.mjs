#!/usr/bin/env node
// TypeDoc reads each package through its tsconfig.lib.json, whose project references resolve the other
// @ioasid packages to their built declarations: build those (tsc -b is incremental, so after `npm run build`
// this is a no-op) for every package the docs site covers (the entryPoints of typedoc.json).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const { entryPoints } = JSON.parse(readFileSync('typedoc.json', 'utf8'));
const projects = entryPoints.map((p) => `${p}/tsconfig.lib.json`);
const r = spawnSync('npx', ['tsc', '-b', ...projects], { stdio: 'inherit' });
process.exit(r.status ?? 1);
