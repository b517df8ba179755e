#!/usr/bin/env bash
# Runs tests/receipts/verify.py in a venv holding jwcrypto (a JOSE implementation, on
# pyca/cryptography) and PyLD (the JSON-LD processor), created on first use in
# ${RECEIPTS_VENV:-target/receipts-venv}. Fails loudly when python3 or its venv module is
# missing: the receipt tests must never pass by skipping the independent check.
#
#   bash tests/receipts/verify.sh JWKS_FILE RECEIPT_FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${RECEIPTS_VENV:-$here/../../target/receipts-venv}" 'import jwcrypto, pyld' \
  jwcrypto==1.6.1 cryptography==51.0.1 pyld==3.3.0
exec "$venv_python" "$here/verify.py" "$@"
