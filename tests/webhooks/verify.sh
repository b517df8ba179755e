#!/usr/bin/env bash
# Runs tests/webhooks/verify.py in a venv holding the `standardwebhooks` package (the
# Standard Webhooks reference library for Python), created on first use in
# ${WEBHOOKS_VENV:-target/webhooks-venv}. Fails loudly when python3 or its venv module is
# missing: the webhook tests must never pass by skipping the independent check.
#
#   bash tests/webhooks/verify.sh REQUEST_JSON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${WEBHOOKS_VENV:-$here/../../target/webhooks-venv}
if ! command -v python3 >/dev/null; then
  echo "verify.sh: python3 is missing (apt-get install python3 python3-venv)" >&2
  exit 3
fi
# Several tests may call this at once: one creates the venv, the others wait for it.
exec 9>"$venv.lock" 2>/dev/null || { mkdir -p "$(dirname "$venv")"; exec 9>"$venv.lock"; }
flock 9
if ! "$venv/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "verify.sh: cannot create a venv (apt-get install python3-venv)" >&2; exit 3; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check standardwebhooks==1.1.0 >&2
fi
flock -u 9
exec "$venv/bin/python" "$here/verify.py" "$@"
