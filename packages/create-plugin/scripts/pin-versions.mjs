#!/usr/bin/env node
// prepack: writes versions.json, the ranges a generated plugin states, from the repository being packed
// (core's package.json version, the root devDependencies), so that the packed generator carries them.
// postpack (`--remove`): deletes it again, so that the working tree reads the repository's live versions.
//
//   node scripts/pin-versions.mjs [--remove]
import { rmSync, writeFileSync } from 'node:fs';

const file = new URL('../versions.json', import.meta.url);
if (process.argv.includes('--remove')) {
  rmSync(file, { force: true });
} else {
  // The built module reads the repository (the package is packed from its place in the workspace).
  const { loadPluginVersions } = await import('../dist/versions.js');
  rmSync(file, { force: true });
  writeFileSync(file, `${JSON.stringify(loadPluginVersions(), null, 2)}\n`);
}
