#!/usr/bin/env bash
# Rewrites src/firewall/disposable_domains.txt, the built-in list of throw-away address
# domains, from the current list of the disposable-email-domains project (CC0 1.0:
# https://github.com/disposable-email-domains/disposable-email-domains, file
# disposable_email_blocklist.conf). Each release runs it, reviews the diff and commits it.
#
#   scripts/refresh-disposable-domains.sh               fetch the list from the project
#   scripts/refresh-disposable-domains.sh --from FILE   use a copy already downloaded
#
# Refuses a list that looks wrong (too short, or a line that is no lower-case domain),
# so a failed download never empties the built-in list.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=disposable-email-domains/disposable-email-domains
file=disposable_email_blocklist.conf
target=src/firewall/disposable_domains.txt
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

if [ "${1:-}" = "--from" ]; then
  cp "$2" "$tmp"
  origin="a copy given with --from ($(basename "$2"))"
else
  commit=$(git ls-remote "https://github.com/$repo" refs/heads/main | cut -f1)
  [ -n "$commit" ] || { echo "$0: cannot read the project's main branch" >&2; exit 1; }
  curl -fsSL "https://raw.githubusercontent.com/$repo/$commit/$file" -o "$tmp"
  origin="commit $commit ($(date -u +%Y-%m-%d))"
fi

if grep -qvE '^[a-z0-9.-]+$' "$tmp"; then
  echo "$0: the list holds a line that is not a lower-case domain:" >&2
  grep -nvE '^[a-z0-9.-]+$' "$tmp" | head -5 >&2
  exit 1
fi
count=$(wc -l < "$tmp")
if [ "$count" -lt 1000 ]; then
  echo "$0: only $count domains; refusing to replace the list" >&2
  exit 1
fi

before=$(grep -vc '^#' "$target" || true)
{
  echo "# Disposable (throw-away) address domains, one per line; a domain also covers its subdomains."
  echo "# Source: https://github.com/$repo,"
  echo "# file $file, $origin."
  echo "# License: CC0 1.0 Universal (public domain). Rewritten by scripts/refresh-disposable-domains.sh;"
  echo "# every release refreshes it. Lines starting with # are comments."
  LC_ALL=C sort -u "$tmp"
} > "$target"
after=$(grep -vc '^#' "$target")
echo "$target: $before domains before, $after now ($origin)"
