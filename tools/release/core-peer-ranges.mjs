#!/usr/bin/env node
// The release policy for the @ioasid/core peer range of this repository's packages while they are 0.x
// (docs/versioning.md, "Releases"). Runs before `changeset version` (`npm run version-packages`).
//
// changesets gives a peer dependent a MAJOR bump whenever the peer's new version leaves the dependent's
// range (config: onlyUpdatePeerDependentsWhenOutOfRange). Before 1.0.0 every core minor leaves `^0.x.0`,
// and a major of a 0.x plugin is 1.0.0: a plugin would leave 0.x as a side effect of a core release. So, when
// the pending changesets release a core that leaves the range of an in-repo package still at 0.x, this
// script, before versioning:
//   - rewrites that package's range to `^<new core version>` (its tests ran against that core in CI: the
//     repository only ever tests its packages against the core beside them);
//   - writes one changeset giving each such package a minor bump: requiring a newer core is breaking for
//     its users, and before 1.0.0 a breaking change is a minor.
// From 1.0.0 on (of the dependent) changesets' own major is the right bump and this script does nothing.
//
//   node tools/release/core-peer-ranges.mjs [--dry-run]
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import semver from 'semver';

const root = resolve(import.meta.dirname, '../..');
const CORE = '@ioasid/core';
const dryRun = process.argv.includes('--dry-run');

/** The release plan of the pending changesets, as `changeset version` computes it (no git needed). */
async function releasePlan() {
  const { default: getReleasePlan } = await import('@changesets/get-release-plan');
  return (getReleasePlan.default ?? getReleasePlan)(root);
}

/** Published workspace packages that state a core peer range: [package.json path, manifest]. */
function corePeerDependents() {
  const out = [];
  for (const dir of readdirSync(join(root, 'packages'))) {
    const file = join(root, 'packages', dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    if (!manifest.private && manifest.peerDependencies?.[CORE]) out.push([file, manifest]);
  }
  return out;
}

const plan = await releasePlan();
const core = plan.releases.find((r) => r.name === CORE && r.type !== 'none');
if (!core) {
  console.log('core-peer-ranges: no @ioasid/core release pending; nothing to do');
  process.exit(0);
}

const moved = [];
for (const [file, manifest] of corePeerDependents()) {
  const range = manifest.peerDependencies[CORE];
  if (semver.satisfies(core.newVersion, range)) continue;
  if (semver.major(manifest.version) >= 1) continue;
  const next = `^${core.newVersion}`;
  moved.push({ name: manifest.name, from: range, to: next });
  if (dryRun) continue;
  manifest.peerDependencies[CORE] = next;
  // package.json files of this repository are 2-space JSON with a final newline.
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

if (moved.length === 0) {
  console.log(`core-peer-ranges: @ioasid/core ${core.oldVersion} -> ${core.newVersion} stays inside every in-repo range`);
  process.exit(0);
}
const body = [
  '---',
  ...moved.map((m) => `"${m.name}": minor`),
  '---',
  '',
  `Requires \`@ioasid/core\` ^${core.newVersion}: the core peer range moves up to the new core, a breaking release before`,
  '1.0.0, so users of this package must install it. The package was tested against that core and changes nothing',
  'else in this bump (docs/versioning.md, "Releases").',
  '',
].join('\n');
const changeset = join(root, '.changeset', `core-${core.newVersion.replace(/\W/g, '-')}-peer-ranges.md`);
if (!dryRun) writeFileSync(changeset, body);
for (const m of moved) console.log(`core-peer-ranges: ${m.name}: @ioasid/core ${m.from} -> ${m.to}, minor bump${dryRun ? ' (dry run: nothing written)' : ''}`);
