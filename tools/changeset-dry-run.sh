#!/usr/bin/env bash
# Runs the release's versioning step (`npm run version-packages`: the 0.x core peer-range policy, then
# `changeset version`) on throwaway clones of HEAD and shows the versions and changelogs it would write, so that
# a broken changeset (an unknown package, a bad bump type) fails CI instead of the release. Two passes:
#   1. the pending changesets;
#   2. a sample core minor changeset alone, so that the policy of docs/versioning.md ("Releases") is checked
#      whatever is pending: core takes a minor, every in-repo plugin a minor with its core range moved up.
# Either pass fails when a package would leave 0.x without a changeset that asks for its major.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

versions() {
  for f in packages/*/package.json; do
    node -e 'const p = require(process.argv[1]); console.log(p.name, p.version, (p.peerDependencies || {})["@ioasid/core"] || "-")' "$PWD/$f"
  done
}

# Packages that leave 0.x although no changeset of this run names them with a major bump.
check_no_accidental_major() {
  local before="$1" after="$2" requested="$3"
  node -e '
    const [before, after, requested] = process.argv.slice(1).map((f) => require("fs").readFileSync(f, "utf8"));
    const old = new Map(before.trim().split("\n").map((l) => l.split(" ")));
    const majors = new Set(requested.split("\n").filter(Boolean));
    let bad = 0;
    for (const line of after.trim().split("\n")) {
      const [name, version] = line.split(" ");
      const was = old.get(name);
      if (was && was.startsWith("0.") && !version.startsWith("0.") && !majors.has(name)) {
        console.error(`changeset-dry-run: ${name} ${was} -> ${version} leaves 0.x although no changeset asks for its major`);
        bad++;
      }
    }
    process.exit(bad ? 1 : 0);
  ' "$before" "$after" "$requested"
}

# Runs the versioning step in clone $1 and prints what it wrote.
version_in() {
  local repo="$1" label="$2"
  cd "$repo"
  ln -s "$root/node_modules" node_modules
  versions > "$tmp/$label.before"
  # The packages a changeset of this run names with "major", before the policy adds its own.
  cat .changeset/*.md 2>/dev/null | sed -n 's/^"\(@ioasid\/[a-z0-9-]*\)": major$/\1/p' | sort -u > "$tmp/$label.majors"
  node tools/release/core-peer-ranges.mjs > "$tmp/$label.log" 2>&1 || { cat "$tmp/$label.log"; exit 1; }
  npx changeset version >> "$tmp/$label.log" 2>&1 || { cat "$tmp/$label.log"; exit 1; }
  versions > "$tmp/$label.after"
  echo "== $label"
  grep '^core-peer-ranges' "$tmp/$label.log" || true
  git diff --stat -- 'packages/*/package.json' 'packages/*/CHANGELOG.md' | tail -n 20
  echo "package version (core peer range):"
  sed 's/^/  /' "$tmp/$label.after"
  check_no_accidental_major "$tmp/$label.before" "$tmp/$label.after" "$tmp/$label.majors"
}

git clone -q "$root" "$tmp/pending"
(version_in "$tmp/pending" pending)

git clone -q "$root" "$tmp/sample"
rm -f "$tmp"/sample/.changeset/*.md
cp "$root/.changeset/README.md" "$tmp/sample/.changeset/README.md" 2>/dev/null || true
printf -- '---\n"@ioasid/core": minor\n---\n\nA sample core minor release (changeset-dry-run).\n' > "$tmp/sample/.changeset/sample-core-minor.md"
(cd "$tmp/sample" && git add -A .changeset && git -c user.name=dry-run -c user.email=dry-run@localhost commit -qm 'sample core minor')
(version_in "$tmp/sample" sample)
# The sample must show the policy: core a minor, every in-repo plugin a minor with its range at the new core.
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
  const before = new Map(require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => { const [n, v] = l.split(" "); return [n, v]; }));
  const semver = require(process.argv[3]);
  const core = lines.find(([n]) => n === "@ioasid/core");
  const want = semver.inc(before.get("@ioasid/core"), "minor");
  const bad = [];
  if (core[1] !== want) bad.push(`@ioasid/core ${core[1]}, expected ${want}`);
  for (const [name, version, range] of lines) {
    if (range === "-" || name === "@ioasid/core") continue;
    const old = before.get(name);
    const expected = old.startsWith("0.") ? semver.inc(old, "minor") : semver.inc(old, "major");
    if (version !== expected || range !== `^${want}`) bad.push(`${name} ${version} (core ${range}), expected ${expected} (core ^${want})`);
  }
  if (bad.length) { console.error("changeset-dry-run: the sample core minor does not follow docs/versioning.md:\n  " + bad.join("\n  ")); process.exit(1); }
  console.log("sample core minor: core and every in-repo plugin take a minor, plugin ranges follow the new core");
' "$tmp/sample.after" "$tmp/sample.before" "$root/node_modules/semver"
