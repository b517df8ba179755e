#!/usr/bin/env bash
# Installs the pinned axe-core from npm into ${AXE_DIR:-target/axe-core} on first use and
# prints the path of axe.min.js, which the browser tests inject into each page. Fails
# loudly when npm is missing: the accessibility checks must never pass by skipping.
#
#   bash tests/axe/install.sh
set -euo pipefail
version=4.14.1
here=$(cd "$(dirname "$0")" && pwd)
dir=${AXE_DIR:-$here/../../target/axe-core}
script=$dir/node_modules/axe-core/axe.min.js
mkdir -p "$dir"
# Several test binaries may call this at once: one installs, the others wait for it.
exec 9>"$dir.lock"
flock 9
installed=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/axe-core/package.json" 2>/dev/null | head -1 || true)
if [ ! -s "$script" ] || [ "$installed" != "$version" ]; then
  if ! command -v npm >/dev/null; then
    echo "$0: npm is missing (apt-get install npm)" >&2
    exit 3
  fi
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "axe-core@$version" >&2
fi
flock -u 9
echo "$script"
