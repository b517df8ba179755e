#!/usr/bin/env bash
# Runs tests/webhooks/verify.py in a venv holding the `standardwebhooks` package (the
# Standard Webhooks reference library for Python), created on first use in
# ${WEBHOOKS_VENV:-target/webhooks-venv}. Fails loudly when python3 or its venv module is
# missing: the webhook tests must never pass by skipping the independent check.
#
#   bash tests/webhooks/verify.sh REQUEST_JSON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${WEBHOOKS_VENV:-$here/../../target/webhooks-venv}" 'import standardwebhooks' \
  standardwebhooks==1.1.0
exec "$venv_python" "$here/verify.py" "$@"
