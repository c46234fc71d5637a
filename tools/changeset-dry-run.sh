#!/usr/bin/env bash
# Runs `changeset version` on a throwaway clone of HEAD and shows the versions and changelogs it would write,
# so a broken changeset (an unknown package, a bad bump type) fails CI instead of the release.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git clone -q "$root" "$tmp/repo"
ln -s "$root/node_modules" "$tmp/repo/node_modules"
cd "$tmp/repo"
npx changeset version > "$tmp/version.log" 2>&1 || { cat "$tmp/version.log"; exit 1; }
git diff --stat -- 'packages/*/package.json' 'packages/*/CHANGELOG.md' | tail -n 20
for f in packages/*/package.json; do
  printf '%s %s\n' "$(node -p "require('./$f').name")" "$(node -p "require('./$f').version")"
done
