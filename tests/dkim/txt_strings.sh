#!/usr/bin/env bash
# Runs tests/dkim/txt_strings.py in a venv holding dnslib, created on first use in
# ${DNSLIB_VENV:-target/dnslib-venv}. Fails loudly when python3 or its venv module is
# missing: the check of the printed DKIM record must never pass by skipping.
#
#   bash tests/dkim/txt_strings.sh 'NAME TTL IN TXT "…" "…"'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${DNSLIB_VENV:-$here/../../target/dnslib-venv}" 'import dnslib' dnslib==0.9.26
exec "$venv_python" "$here/txt_strings.py" "$@"
