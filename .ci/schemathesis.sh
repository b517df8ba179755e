#!/usr/bin/env bash
# API fuzzing: runs schemathesis against the OpenAPI description that a running release
# binary serves at /openapi.yaml, so the spec and the code are checked against each other.
#
#   cargo build --release && bash .ci/schemathesis.sh
#
# The binary is ${OPTIN_BIN:-target/release/optin}. Schemathesis is installed once into
# target/schemathesis-venv, its dependencies pinned by .ci/schemathesis-constraints.txt
# (later runs need no network). Its settings are in .ci/optin.schemathesis.toml, its hooks
# in .ci/schemathesis_hooks.py. The service runs on a free 127.0.0.1 port with a throw-away
# embedded store, the file mail transport, fresh keys and an admin API key, all in a
# temporary directory that is removed afterwards. The whole run takes about a minute.
#
# Knobs (environment): ST_MAX_EXAMPLES (cases per operation and phase), ST_SEED (replay a
# run), ST_WORKERS, ST_REPORT_DIR (keep the JUnit report there).
# Exits non-zero when schemathesis finds any failure, or when the service dies.
set -euo pipefail
# OPTIN_BIN is taken relative to the caller's directory; the rest runs from the repository.
BIN=${OPTIN_BIN:-}
if [ -n "$BIN" ] && [ -x "$BIN" ]; then BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN"); fi
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/optin}

ST_VERSION=4.32.5
VENV=target/schemathesis-venv
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-200}
# One worker: on CPython 3.11 two hypothesis threads can hit a race in `ast.parse`
# ("AST constructor recursion depth mismatch"), and one worker is fast enough here.
WORKERS=${ST_WORKERS:-1}
ST_CONFIG=.ci/optin.schemathesis.toml

if [ ! -x "$BIN" ]; then
  echo "schemathesis.sh: no binary at $BIN; run 'cargo build --release' first (or set OPTIN_BIN)" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- schemathesis, pinned, in its own venv -------------------------------------------------
if ! "$VENV/bin/st" --version 2>/dev/null | grep -qx "st, version $ST_VERSION"; then
  echo "Installing schemathesis $ST_VERSION into $VENV"
  rm -rf "$VENV"
  if ! { python3 -m venv "$VENV" &&
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      -c .ci/schemathesis-constraints.txt "schemathesis==$ST_VERSION"; }; then
    rm -rf "$VENV"
    echo "schemathesis.sh: could not install schemathesis $ST_VERSION" >&2
    exit 2
  fi
fi

# --- a throw-away service ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/optin-schemathesis.XXXXXX")
REPORT_DIR=${ST_REPORT_DIR:-$WORK/report}
SERVICE_PID=""
ST_PID=""
TAIL_PID=""
cleanup() {
  for pid in $ST_PID $TAIL_PID $SERVICE_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

random_key() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }

# `optin keys new` prints the plain key and the config entry, each after ": ".
key_output=$("$BIN" keys new --scope admin --name schemathesis)
ADMIN_KEY=$(printf '%s\n' "$key_output" | sed -n 's/^API key[^:]*: //p')
ADMIN_ENTRY=$(printf '%s\n' "$key_output" | sed -n 's/^Add this entry[^:]*: //p')
if [ -z "$ADMIN_KEY" ] || [ -z "$ADMIN_ENTRY" ]; then
  echo "schemathesis.sh: could not read the output of 'optin keys new':" >&2
  printf '%s\n' "$key_output" >&2
  exit 2
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL="http://127.0.0.1:$PORT"

mkdir -p "$WORK/mail"
{
  cat <<EOF
[log]
format = "json"
filter = "warn"

[server]
bind = "127.0.0.1:$PORT"
public_url = "$BASE_URL"

[store]
url = "$WORK/optin.redb"

[mail]
url = "file://$WORK/mail"

[security]
signing_keys = ["st:$(random_key)"]
index_key = "$(random_key)"
api_keys = ["$ADMIN_ENTRY"]

[signup]
# Every request comes from 127.0.0.1: with the default per-IP limit nearly every signup
# would be answered 429 and the logic behind it would go untested.
max_signups_per_ip = 1000000
# Generated addresses are at domains no DNS answers for, and the run has no network.
check_mx = false

[feedback]
# With checking on, a well-formed SNS example would make the service fetch a certificate
# from AWS; the run stays on 127.0.0.1. tests/feedback.rs checks signatures.
ses_verify_signature = false

EOF
  cat src/example_subscription_types.toml
} > "$WORK/optin.toml"

# Only the settings in the file: no OPTIN_* variable of the caller's environment leaks in.
for name in $(env | sed -n 's/^\(OPTIN_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$name"; done

"$BIN" check-config --config "$WORK/optin.toml" >/dev/null
(cd "$WORK" && exec "$BIN" serve --config "$WORK/optin.toml") > "$WORK/optin.log" 2>&1 &
SERVICE_PID=$!

ready=""
for _ in $(seq 1 100); do
  if curl -fsS --max-time 2 "$BASE_URL/readyz" >/dev/null 2>&1; then ready=yes; break; fi
  kill -0 "$SERVICE_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "schemathesis.sh: the service did not become ready on $BASE_URL; its log:" >&2
  cat "$WORK/optin.log" >&2
  exit 1
fi
echo "optin is ready on $BASE_URL (pid $SERVICE_PID)"

# --- schemathesis ----------------------------------------------------------------------------
mkdir -p "$REPORT_DIR"
st_args=(
  --config-file "$ST_CONFIG"
  --no-color
  run "$BASE_URL/openapi.yaml"
  --header "Authorization: Bearer $ADMIN_KEY"
  --phases examples,coverage,fuzzing,stateful
  --mode all
  --max-examples "$MAX_EXAMPLES"
  --workers "$WORKERS"
  --request-timeout 15
  --report junit
  --report-junit-path "$REPORT_DIR/junit.xml"
  --output-sanitize false
)
[ -n "${ST_SEED:-}" ] && st_args+=(--seed "$ST_SEED")

started=$(date +%s)
st_status=0
# In the background with `wait`, so that an interrupt stops it at once; bounded, so that a
# hang cannot eat CI's time.
timeout --kill-after=30 900 "$VENV/bin/st" "${st_args[@]}" > "$WORK/st.log" 2>&1 &
ST_PID=$!
tail -n +1 -f --pid="$ST_PID" "$WORK/st.log" &
TAIL_PID=$!
wait "$ST_PID" || st_status=$?
wait "$TAIL_PID" || true
ST_PID=""
elapsed=$(( $(date +%s) - started ))

service_status=alive
if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
  service_status=died
fi

# --- summary ---------------------------------------------------------------------------------
python3 - "$REPORT_DIR/junit.xml" "$elapsed" "$WORK/st.log" <<'PY' || true
import re
import sys
import xml.etree.ElementTree as ET

path, elapsed, log = sys.argv[1], sys.argv[2], sys.argv[3]
generated = "?"
try:
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"\s*(\d+) generated", line)
            if m:
                generated = m.group(1)
except OSError:
    pass
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as error:
    print(f"schemathesis summary: no JUnit report ({error})")
    sys.exit(0)
cases = failed = errored = skipped = 0
failing = []
for case in root.iter("testcase"):
    cases += 1
    if case.find("failure") is not None:
        failed += 1
        failing.append(case.get("name"))
    elif case.find("error") is not None:
        errored += 1
        failing.append(case.get("name") + " (error)")
    elif case.find("skipped") is not None:
        skipped += 1
print(f"schemathesis summary: {generated} test cases on {cases} operations in {elapsed}s: "
      f"{cases - failed - errored - skipped} operations passed, {failed} failed, {errored} errored, {skipped} skipped")
for name in failing:
    print(f"  FAILED {name}")
PY

# What the service logged as errors, less the HTTP parser's notes on the malformed requests
# schemathesis sends on purpose (answered 400 by the framework).
python3 - "$WORK/optin.log" <<'PY' || true
import json
import sys

errors = []
with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
    for line in log:
        try:
            event = json.loads(line)
        except ValueError:
            if "panicked" in line:
                errors.append(line.rstrip())
            continue
        if event.get("level") == "ERROR" and not str(event.get("target", "")).startswith("actix_http::h1"):
            errors.append(line.rstrip())
if errors:
    print(f"The service logged {len(errors)} error(s):")
    for line in errors[:20]:
        print("  " + line[:500])
PY

if [ "$service_status" = died ]; then
  echo "schemathesis.sh: the service died during the run; its log:" >&2
  tail -50 "$WORK/optin.log" >&2
  exit 1
fi
if [ "$st_status" -ne 0 ]; then
  echo "schemathesis.sh: schemathesis found failures (exit $st_status)" >&2
  exit "$st_status"
fi
echo "schemathesis.sh: no failures"
