#!/usr/bin/env bash
# API fuzzing: runs schemathesis against the OpenAPI description that a running release
# binary serves at /openapi.yaml, so the spec and the code are checked against each other.
#
#   cargo build --release && bash .ci/schemathesis.sh
#
# The binary is ${OPTIN_BIN:-target/release/optin}. Schemathesis is installed once into
# target/schemathesis-venv (later runs need no network). The service runs on a free
# 127.0.0.1 port with a throw-away embedded store, the file mail transport, fresh keys and
# an admin API key, all in a temporary directory that is removed afterwards.
#
# Knobs (environment): ST_MAX_EXAMPLES (cases per operation and phase), ST_SEED (replay a
# run), ST_WORKERS, ST_REPORT_DIR (keep the JUnit/NDJSON reports there).
# Exits non-zero when schemathesis finds any failure, or when the service dies.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
VENV=target/schemathesis-venv
BIN=${OPTIN_BIN:-target/release/optin}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-40}
WORKERS=${ST_WORKERS:-2}
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
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# --- a throw-away service ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/optin-schemathesis.XXXXXX")
REPORT_DIR=${ST_REPORT_DIR:-$WORK/report}
SERVICE_PID=""
cleanup() {
  if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
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
format = "text"
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
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection
  --phases examples,coverage,fuzzing,stateful
  --mode all
  --max-examples "$MAX_EXAMPLES"
  --workers "$WORKERS"
  --request-timeout 15
  --report junit,ndjson
  --report-dir "$REPORT_DIR"
  --output-sanitize false
)
[ -n "${ST_SEED:-}" ] && st_args+=(--seed "$ST_SEED")

started=$(date +%s)
st_status=0
"$VENV/bin/st" "${st_args[@]}" || st_status=$?
elapsed=$(( $(date +%s) - started ))

service_status=alive
if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
  service_status=died
fi

# --- summary ---------------------------------------------------------------------------------
python3 - "$REPORT_DIR/junit.xml" "$elapsed" <<'PY' || true
import sys
import xml.etree.ElementTree as ET

path, elapsed = sys.argv[1], sys.argv[2]
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
print(f"schemathesis summary: {cases} operations tested in {elapsed}s; "
      f"{cases - failed - errored - skipped} passed, {failed} failed, {errored} errored, {skipped} skipped")
for name in failing:
    print(f"  FAILED {name}")
PY

server_errors=$(grep -c -E '\b(ERROR|panicked)\b' "$WORK/optin.log" || true)
if [ "$server_errors" != "0" ]; then
  echo "The service logged $server_errors error line(s):"
  grep -E '\b(ERROR|panicked)\b' "$WORK/optin.log" | head -20
fi

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
