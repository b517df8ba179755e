#!/usr/bin/env bash
# Runs tests/compat/sdk_check.py against a running optin, in a venv holding the vendors'
# official Python SDKs (PyPI hubspot-api-client and mailchimp-marketing, pinned), created
# on first use in ${COMPAT_SDK_VENV:-target/compat-sdk-venv}. Fails loudly when python3 or
# its venv module is missing: the SDK proof must never pass by being skipped.
#
#   bash tests/compat/sdk.sh BASE_URL ADMIN_KEY SEND_KEY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${COMPAT_SDK_VENV:-$here/../../target/compat-sdk-venv}" \
  'import hubspot, mailchimp_marketing, requests; from importlib.metadata import version; assert version("hubspot-api-client") == "12.0.0" and version("mailchimp-marketing") == "3.0.80"' \
  hubspot-api-client==12.0.0 mailchimp-marketing==3.0.80
exec "$venv_python" "$here/sdk_check.py" "$@"
