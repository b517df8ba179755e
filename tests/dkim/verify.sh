#!/usr/bin/env bash
# Runs tests/dkim/verify.py in a venv holding dkimpy (and PyNaCl for Ed25519), created on
# first use in ${DKIM_VENV:-target/dkim-venv}. Fails loudly when python3 or its venv module
# is missing: the DKIM tests must never pass by skipping the independent check.
#
#   bash tests/dkim/verify.sh MESSAGE_FILE TXT_RECORD
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${DKIM_VENV:-$here/../../target/dkim-venv}
if ! command -v python3 >/dev/null; then
  echo "verify.sh: python3 is missing (apt-get install python3 python3-venv)" >&2
  exit 3
fi
# Several tests may call this at once: one creates the venv, the others wait for it.
exec 9>"$venv.lock" 2>/dev/null || { mkdir -p "$(dirname "$venv")"; exec 9>"$venv.lock"; }
flock 9
if ! "$venv/bin/python" -c 'import dkim, nacl' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "verify.sh: cannot create a venv (apt-get install python3-venv)" >&2; exit 3; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    dkimpy==1.1.8 pynacl==1.6.2 dnspython==2.9.2 >&2
fi
flock -u 9
exec "$venv/bin/python" "$here/verify.py" "$@"
