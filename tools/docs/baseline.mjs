#!/usr/bin/env node
// Rewrites the `intentionallyNotDocumented` lists in typedoc.json (root: names of the merged project) and in each
// packages/*/typedoc.json (names as that package's conversion reports them) to exactly the symbols TypeDoc finds
// undocumented today. The lists only ever shrink: CI runs TypeDoc with warnings as errors, so a new public symbol
// without TSDoc fails, and so does a listed symbol that has been documented since (TypeDoc reports unused names).
// Run it after documenting symbols: `node tools/docs/baseline.mjs`, then commit the shorter lists.
// It writes nothing when TypeDoc reports an error (a comment that does not parse would otherwise hide every warning
// and empty every list) or when a list would gain a name (a new public symbol needs its comment, not a list entry).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const root = JSON.parse(readFileSync('typedoc.json', 'utf8'));
const pkgs = root.entryPoints.map((p) => p.replace(/^packages\//, ''));
const files = ['typedoc.json', ...pkgs.map((p) => `packages/${p}/typedoc.json`)];
const before = new Map(
  files.map((f) => {
    const j = JSON.parse(readFileSync(f, 'utf8'));
    return [f, { names: new Set(j.intentionallyNotDocumented ?? []), hidden: new Set(j.intentionallyNotExported ?? []) }];
  }),
);
const originals = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));
const restore = () => {
  for (const [f, text] of originals) writeFileSync(f, text);
};
const write = (f, names, hidden) => {
  const j = JSON.parse(readFileSync(f, 'utf8'));
  if (names.length) j.intentionallyNotDocumented = names;
  else delete j.intentionallyNotDocumented;
  if (hidden.length) j.intentionallyNotExported = hidden;
  else delete j.intentionallyNotExported;
  writeFileSync(f, JSON.stringify(j, null, 2) + '\n');
};
for (const f of files) write(f, [], []);

const run = spawnSync('npx', ['typedoc', '--emit', 'none', '--treatWarningsAsErrors', 'false'], { encoding: 'utf8', maxBuffer: 1 << 28 });
const log = `${run.stdout}\n${run.stderr}`;
// eslint-disable-next-line no-control-regex
const lines = log.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
const errors = lines.filter((l) => l.startsWith('[error]'));
if (run.status !== 0 || errors.length > 0) {
  restore();
  console.error(errors.join('\n') || `typedoc exited with status ${run.status}`);
  console.error('docs:baseline: TypeDoc failed; no list was rewritten');
  process.exit(1);
}
const by = new Map(files.map((f) => [f, new Set()]));
const notExported = new Map(files.map((f) => [f, new Set()]));
// Warnings, not names: one name (a layout's `X.__type.name`) can stand for many undocumented symbols.
const warnings = new Map(files.map((f) => [f, 0]));
for (const line of lines) {
  // A type a public signature uses but no entry point exports (the API has a hole there: export it or stop using it).
  const r = /^\[warning\] (\S+), defined in @ioasid\/([^/]+)\/\S+, is referenced by .* but not included in the documentation$/.exec(line);
  if (r) notExported.get(`packages/${r[2]}/typedoc.json`)?.add(r[1]);
  // A package's own conversion names the file as `@ioasid/<dir>/src/...`; the merged project (root options) does not.
  const m = /^\[warning\] (\S+) \([^)]*\), defined in (\S+?), does not have any documentation$/.exec(line);
  if (!m) continue;
  const pkg = /^@ioasid\/([^/]+)\//.exec(m[2]);
  const file = pkg ? `packages/${pkg[1]}/typedoc.json` : 'typedoc.json';
  if (!by.has(file)) throw new Error(`undocumented symbol in a package typedoc.json does not list: ${line}`);
  by.get(file).add(m[1]);
  warnings.set(file, warnings.get(file) + 1);
}
const grown = [];
for (const [f, names] of by) {
  const was = before.get(f);
  for (const n of names) if (!was.names.has(n)) grown.push(`${f}: ${n} has no documentation`);
  for (const n of notExported.get(f)) if (!was.hidden.has(n)) grown.push(`${f}: ${n} is used by a public signature but not exported`);
}
if (grown.length > 0) {
  restore();
  console.error(grown.join('\n'));
  console.error('docs:baseline: the lists only shrink; document or export the names above. No list was rewritten');
  process.exit(1);
}
let total = 0;
for (const [f, names] of by) {
  const hidden = [...notExported.get(f)].sort();
  write(f, [...names].sort(), hidden);
  total += warnings.get(f);
  console.log(`${f}: ${warnings.get(f)} undocumented symbols under ${names.size} names, ${hidden.length} used but not exported`);
}
console.log(`total: ${total} undocumented symbols`);
