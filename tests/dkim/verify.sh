#!/usr/bin/env bash
# Runs tests/dkim/verify.py in a venv holding dkimpy (and PyNaCl for Ed25519), created on
# first use in ${DKIM_VENV:-target/dkim-venv}. Fails loudly when python3 or its venv module
# is missing: the DKIM tests must never pass by skipping the independent check.
#
#   bash tests/dkim/verify.sh MESSAGE_FILE TXT_RECORD
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${DKIM_VENV:-$here/../../target/dkim-venv}" 'import dkim, nacl' \
  dkimpy==1.1.8 pynacl==1.6.2 dnspython==2.9.2
exec "$venv_python" "$here/verify.py" "$@"
