#!/usr/bin/env bash
# Runs tests/firewall/altcha_check.py in a venv holding the ALTCHA project's Python library
# (`altcha` on PyPI), created on first use in ${ALTCHA_VENV:-target/altcha-venv}. Fails
# loudly when python3 or its venv module is missing: the proof-of-work tests must never
# pass by skipping the independent check.
#
#   bash tests/firewall/altcha_check.sh solve|verify|make ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../support/python_venv.sh"
python_venv "${ALTCHA_VENV:-$here/../../target/altcha-venv}" \
  'from altcha import solve_challenge_v1, verify_solution_v1' altcha==2.3.0
exec "$venv_python" "$here/altcha_check.py" "$@"
