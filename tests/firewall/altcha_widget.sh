#!/usr/bin/env bash
# Installs the pinned official ALTCHA widget (`altcha` from npm) into
# ${ALTCHA_WIDGET_DIR:-target/altcha-widget} on first use and prints the folder of the
# package, whose dist/main/altcha.js the browser test loads. Fails loudly when npm is
# missing: the widget check must never pass by skipping.
#
#   bash tests/firewall/altcha_widget.sh
set -euo pipefail
version=3.2.2
here=$(cd "$(dirname "$0")" && pwd)
dir=${ALTCHA_WIDGET_DIR:-$here/../../target/altcha-widget}
package=$dir/node_modules/altcha
mkdir -p "$dir"
# Several test binaries may call this at once: one installs, the others wait for it.
exec 9>"$dir.lock"
flock 9
installed=$(sed -n 's/^[[:space:]]*"version": *"\([^"]*\)".*/\1/p' "$package/package.json" 2>/dev/null | head -1 || true)
if [ ! -s "$package/dist/main/altcha.js" ] || [ "$installed" != "$version" ]; then
  if ! command -v npm >/dev/null; then
    echo "$0: npm is missing (apt-get install npm)" >&2
    exit 3
  fi
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "altcha@$version" >&2
fi
flock -u 9
cd "$package" && pwd
