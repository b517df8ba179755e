#!/usr/bin/env bash
# Runs tests/firewall/dns_server.py in a venv holding `dnslib` (PyPI), created on first
# use in ${DNSLIB_VENV:-target/dnslib-venv}. Fails loudly when python3 or its venv module
# is missing: the MX check's tests must never pass by skipping their DNS server.
#
#   bash tests/firewall/dns_server.sh     (prints the UDP port; serves until stdin closes)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${DNSLIB_VENV:-$here/../../target/dnslib-venv}" 'import dnslib.server' dnslib==0.9.26
exec "$venv_python" "$here/dns_server.py"
