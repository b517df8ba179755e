# Sourced by the scripts that check our output with an independent Python implementation
# (tests/dkim/verify.sh, tests/webhooks/verify.sh).
#
#   python_venv VENV IMPORT_CHECK PACKAGE==VERSION...
#
# Makes sure VENV exists and `python -c IMPORT_CHECK` works in it, installing the pinned
# packages if not; then sets $venv_python. Exits 3 when python3 or its venv module is
# missing: a check must never pass by being skipped.
python_venv() {
  local venv=$1 check=$2
  shift 2
  if ! command -v python3 >/dev/null; then
    echo "$0: python3 is missing (apt-get install python3 python3-venv)" >&2
    exit 3
  fi
  # Several tests may call this at once: one creates the venv, the others wait for it.
  exec 9>"$venv.lock" 2>/dev/null || { mkdir -p "$(dirname "$venv")"; exec 9>"$venv.lock"; }
  flock 9
  if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "$0: cannot create a venv (apt-get install python3-venv)" >&2; exit 3; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  fi
  flock -u 9
  venv_python=$venv/bin/python
}
