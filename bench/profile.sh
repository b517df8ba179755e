#!/usr/bin/env bash
# Where optin's CPU goes on one path, in the default configuration: a flat `perf` profile
# of the optin process while wrk (or a batch of signups, or a full outbox) loads it.
#
#   bench/profile.sh embedded eligibility     # store: embedded | redis
#   OPTIN_BIN=path/to/optin bench/profile.sh redis signup
#
# Paths: eligibility (GET, one loaded address per request), batch (POST, 10,000
# addresses), signup (POST /v1/signups, a new address each, with the outbox sending the
# confirmations over SMTP to Postfix's smtp-sink), feedback (1,000 soft bounces a call).
# The configuration is the default one (info-level JSON logs, written to a file), with
# fresh keys, an admin key, SMTP to the sink and the per-IP limits raised for one client.
# Prints perf's top entries (self time) and the requests per second reached meanwhile.
# Knobs: PROFILE_CONTACTS (20000), PROFILE_SECONDS (10), PROFILE_TOP (25).
set -euo pipefail

STORE="${1:?store: embedded or redis}"
WHAT="${2:?path: eligibility, batch, signup or feedback}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
CONTACTS="${PROFILE_CONTACTS:-20000}"
SECONDS_="${PROFILE_SECONDS:-10}"
TOP="${PROFILE_TOP:-25}"
NAME=profile.sh

missing=()
command -v perf >/dev/null || missing+=(linux-perf)
command -v wrk >/dev/null || missing+=(wrk)
command -v smtp-sink >/dev/null || missing+=(postfix)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
. "$BENCH/optin_bin.sh"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/optin-profile.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${PROFILE_KEEP:-0}" = 1 ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SINK_PORT="$(free_port)"
smtp-sink -u "$(id -un)" -c "127.0.0.1:$SINK_PORT" 256 >"$TMP/sink.out" 2>&1 &
PIDS+=($!)

case "$STORE" in
    embedded) STORE_URL="$TMP/optin.redb" ;;
    redis)
        REDIS_PORT="$(free_port)"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
            --dir "$TMP" --logfile "$TMP/redis.log" &
        PIDS+=($!)
        STORE_URL="redis://127.0.0.1:$REDIS_PORT"
        for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
        ;;
    *) echo "$NAME: store is embedded or redis" >&2; exit 2 ;;
esac

KEY_OUT="$("$BIN" keys new --scope admin --name profile)"
API_KEY="$(printf '%s\n' "$KEY_OUT" | sed -n 's/^API key[^:]*: //p')"
API_ENTRY="$(printf '%s\n' "$KEY_OUT" | sed -n 's/^Add this entry[^:]*: //p')"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
{
    cat <<EOF
[server]
bind = "127.0.0.1:$PORT"
public_url = "$BASE"
trusted_proxies = ["127.0.0.1"]

[store]
url = "$STORE_URL"

[mail]
url = "smtp://127.0.0.1:$SINK_PORT?tls=none"
from = "optin <no-reply@bench.example>"

[signup]
check_mx = false

[security]
signing_keys = ["bench:$(head -c32 /dev/urandom | base64)"]
index_key = "$(head -c32 /dev/urandom | base64)"
api_keys = ["$API_ENTRY"]

[feedback]
soft_bounce_limit = 1000

EOF
    cat "$ROOT/src/example_subscription_types.toml"
} >"$TMP/optin.toml"
(
    cd "$TMP"
    unset RUST_LOG
    for var in $(compgen -e OPTIN_); do unset "$var"; done
    exec "$BIN" serve --config "$TMP/optin.toml"
) >"$TMP/optin.log" 2>&1 &
OPTIN_PID=$!
PIDS+=("$OPTIN_PID")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$BASE/readyz" || { cat "$TMP/optin.log" >&2; exit 1; }

awk -v n="$CONTACTS" 'BEGIN {for (i = 0; i < n; i++) printf "{\"email\":\"u%d@bench.example\",\"subscription_type\":\"blog-updates\",\"status\":\"opted_in\",\"lawful_basis\":\"consent\",\"consent_evidence\":\"bench\"}\n", i}' >"$TMP/import.ndjson"
curl -fsS -X POST -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/x-ndjson" \
    --data-binary @"$TMP/import.ndjson" "$BASE/v1/imports" -o /dev/null
awk -v n=10000 -v c="$CONTACTS" 'BEGIN {
    step = int(c / n); if (step < 1) step = 1
    printf "{\"subscription_type\":\"blog-updates\",\"emails\":["
    for (i = 0; i < n; i++) printf "%s\"u%d@bench.example\"", (i ? "," : ""), (i * step) % c
    printf "]}"
}' >"$TMP/batch.json"

WRK=(wrk -t2 -c32 -d"${SECONDS_}s" --timeout 30s)
case "$WHAT" in
    eligibility) LOAD=("${WRK[@]}" -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS") ;;
    batch) LOAD=("${WRK[@]}" -s "$BENCH/eligibility_batch.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$TMP/batch.json") ;;
    signup) LOAD=("${WRK[@]}" -s "$BENCH/signups.lua" "$BASE/v1/signups" -- "p$(date +%s)") ;;
    feedback) LOAD=("${WRK[@]}" -s "$BENCH/feedback.lua" "$BASE/v1/feedback" -- "$API_KEY" "$CONTACTS" 1000) ;;
    *) echo "$NAME: path is eligibility, batch, signup or feedback" >&2; exit 2 ;;
esac

"${LOAD[@]}" >"$TMP/wrk.txt" &
LOAD_PID=$!
sleep 1
perf record -F 1999 -p "$OPTIN_PID" -o "$TMP/perf.data" -- sleep "$((SECONDS_ - 2))" 2>"$TMP/perf.err" >/dev/null
wait "$LOAD_PID"
echo "== $STORE $WHAT: $(awk '/^Requests\/sec:/ {print $2 " requests/s"}' "$TMP/wrk.txt"); $(grep -o '^status [0-9]*: [0-9]*' "$TMP/wrk.txt" | paste -sd ' ')"
perf report -i "$TMP/perf.data" --no-children --sort symbol --stdio --percent-limit 0.8 2>/dev/null \
    | grep -E '^ +[0-9]' | head -n "$TOP" | sed -E 's/ +\[[.k]\] / /; s/ {2,}-.*$//; s/ +$//'
