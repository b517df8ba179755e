#!/usr/bin/env bash
# optin benchmark: one command, `bench/run.sh`.
#
# Installs wrk, redis-server and redis-tools when missing (apt-get, with sudo when not
# root), builds the release binary, starts a private redis-server and `optin serve` on
# free ports of 127.0.0.1, loads BENCH_CONTACTS contacts through POST /v1/imports, runs
# the measurements below with wrk and redis-benchmark, prints a summary table, and stops
# everything it started on exit. Nothing but 127.0.0.1 is ever contacted (apart from
# apt-get, and only when a tool is missing).
#
#   1. GET /healthz                         requests/s (baseline)
#   2. GET /v1/eligibility (random address)  requests/s        ratio to (1)  >= 0.6
#   3. POST /v1/eligibility, 10,000 per call addresses/s       ratio to redis-benchmark GET -P 16  >= 0.3
#   4. POST /v1/signups (new address each)   202s/s            ratio to (1)  >= 0.3
#   5. GET /v1/eligibility at ~half of (2)   p50 / p99                       p99 <= 2 ms
#   6. outbox drain to a local SMTP sink     mails/s, unsigned / RSA-2048 / Ed25519  unsigned >= 1,000
#      (bench/drain.sh, on its own embedded store)
#   7. webhook fan-out to a local receiver   deliveries/s, 1 and 3 endpoints
#      writes with 3 endpoints / none        ratio for PUT changes, imports, signups  each >= 0.8
#      (bench/fanout.sh, on its own embedded stores)
#   8. POST /v1/feedback, 1,000 per call      items/s           ratio to (3)  >= 0.3
#      (soft bounces of loaded contacts: every item is a read and a write)
#
# Knobs (environment): BENCH_CONTACTS (100000), BENCH_THREADS (2), BENCH_CONNECTIONS (32),
# BENCH_DURATION (10s), BENCH_LATENCY_CONNECTIONS (16), BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"

CONTACTS="${BENCH_CONTACTS:-100000}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
DURATION="${BENCH_DURATION:-10s}"
LAT_CONNECTIONS="${BENCH_LATENCY_CONNECTIONS:-16}"
BATCH=10000
FEEDBACK_BATCH=1000
# The same load shape for every throughput run; a long timeout because a batch of
# 10,000 addresses takes far longer than wrk's default 2 s limit allows under load.
WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s)

say() { printf '\n== %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- tools
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; } || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# wrk2 (a constant-rate wrk) gives honest latencies under a fixed load; use it when
# the distribution has it (Debian 12 does not).
WRK2=""
if command -v wrk2 >/dev/null; then
    WRK2="wrk2"
elif apt-cache policy wrk2 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk2 >/dev/null && WRK2="wrk2" || true
fi

# ---------------------------------------------------------------------------- build
say "building the release binary"
cd "$ROOT"
cargo build --release --locked
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
OPTIN="$TARGET_DIR/release/optin"
[ -x "$OPTIN" ] || die "no binary at $OPTIN"

# ---------------------------------------------------------------------------- processes
TMP="$(mktemp -d "${TMPDIR:-/tmp}/optin-bench.XXXXXX")"
REDIS_PID=""
OPTIN_PID=""
cleanup() {
    local status=$?
    [ -n "$OPTIN_PID" ] && kill "$OPTIN_PID" 2>/dev/null && wait "$OPTIN_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on (bash's /dev/tcp: a refused connection means free).
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

REDIS_PORT="$(free_port)" || die "no free port"
say "starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$TMP" --daemonize no --logfile "$TMP/redis.log" &
REDIS_PID=$!
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
for _ in $(seq 1 100); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server did not start (see $TMP/redis.log)"

# One admin key (admin may also do what a send key may).
KEY_OUT="$("$OPTIN" keys new --scope admin --name bench)"
API_KEY="$(printf '%s\n' "$KEY_OUT" | sed -n 's/^API key[^:]*: //p')"
API_ENTRY="$(printf '%s\n' "$KEY_OUT" | sed -n 's/^Add this entry[^:]*: //p')"
[ -n "$API_KEY" ] && [ -n "$API_ENTRY" ] || die "could not parse the output of 'optin keys new'"

OPTIN_PORT="$(free_port)" || die "no free port"
BASE="http://127.0.0.1:$OPTIN_PORT"
CONFIG="$TMP/optin.bench.toml"
mkdir -p "$TMP/mail"
{
    cat <<EOF
# Written by bench/run.sh for one run; the keys are fresh and thrown away afterwards.
[log]
format = "text"
filter = "warn"

[server]
bind = "127.0.0.1:$OPTIN_PORT"
public_url = "$BASE"
# wrk plays the proxy in front of many clients (see bench/signups.lua).
trusted_proxies = ["127.0.0.1"]

[store]
url = "redis://127.0.0.1:$REDIS_PORT"

[mail]
url = "file://$TMP/mail"

[security]
signing_keys = ["bench:$(head -c32 /dev/urandom | base64)"]
index_key = "$(head -c32 /dev/urandom | base64)"
api_keys = ["$API_ENTRY"]

[feedback]
# Measure 7 posts soft bounces of the same contacts again and again; a high limit keeps
# every one a counted write instead of a no-op on an address already unreachable.
soft_bounce_limit = 1000

EOF
    cat "$ROOT/src/example_subscription_types.toml"
} >"$CONFIG"

say "starting optin on $BASE"
(cd "$TMP" && unset RUST_LOG && exec "$OPTIN" serve --config "$CONFIG") >"$TMP/optin.log" 2>&1 &
OPTIN_PID=$!
ready=""
for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
    kill -0 "$OPTIN_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$ready" ] || { cat "$TMP/optin.log" >&2; die "optin did not become ready"; }

# ---------------------------------------------------------------------------- helpers
# wrk's output is printed and kept in $TMP/wrk-<name>.txt; these read figures back.
# Each run also notes the CPU time optin and redis-server used meanwhile.
CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
WRK_BIN=wrk
TIMEFORMAT='%U %S'
run_wrk() {
    local name="$1"
    shift
    local shown="$*" optin0 redis0
    echo "\$ $WRK_BIN ${shown//$API_KEY/<key>}"
    rcli config resetstat >/dev/null
    optin0="$(cpu_ticks "$OPTIN_PID")"
    redis0="$(cpu_ticks "$REDIS_PID")"
    # bash's `time` gives wrk's own CPU time (user + system) on its last stderr line.
    { time "$WRK_BIN" "$@" >"$TMP/wrk-$name.txt"; } 2>"$TMP/wrk-$name.err"
    cat "$TMP/wrk-$name.txt"
    echo "$(($(cpu_ticks "$OPTIN_PID") - optin0)) $(($(cpu_ticks "$REDIS_PID") - redis0)) $(tail -n 1 "$TMP/wrk-$name.err")" >"$TMP/cpu-$name.txt"
    rcli info commandstats | tr -d '\r' >"$TMP/redis-$name.txt"
}
# The Redis commands that took most of Redis's time during run $1, with calls per
# unit of work ($2 units): "zcount 256.0/req 61%, …". Commands run by scripts are
# counted both on their own and inside evalsha.
redis_top() {
    awk -F'[:,=]' -v n="$2" '/^cmdstat_/ {
        name = substr($1, 9)
        if (name ~ /^(config|info)/) next
        calls[name] = $3; usec[name] = $5
        if (name != "evalsha" && name != "eval") total += $5
    } END {
        if (total == 0) exit
        for (k = 0; k < 4; k++) {
            best = ""
            for (c in usec) if (c != "evalsha" && c != "eval" && (best == "" || usec[c] > usec[best])) best = c
            if (best == "") break
            printf "%s%s %.1f/req %.0f%%", (k ? ", " : ""), best, calls[best] / n, 100 * usec[best] / total
            delete usec[best]
        }
    }' "$TMP/redis-$1.txt"
}
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk-$1.txt"; }
wrk_requests() { awk '/ requests in / {print $1}' "$TMP/wrk-$1.txt"; }
wrk_seconds() { awk '/ requests in / {d=$4; sub(/,$/, "", d); if (d ~ /ms$/) {sub(/ms$/, "", d); d/=1000} else if (d ~ /m$/) {sub(/m$/, "", d); d*=60} else {sub(/s$/, "", d)} print d}' "$TMP/wrk-$1.txt"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ {n=$NF} END {print n+0}' "$TMP/wrk-$1.txt"; }
wrk_errors() { awk '/Socket errors:/ {gsub(/,/, ""); n=$4+$6+$8+$10} END {print n+0}' "$TMP/wrk-$1.txt"; }
# "status 503: 12" lines printed by the Lua scripts, as "202×1234 503×12".
wrk_statuses() { awk '/^status [0-9]+:/ {sub(/:$/, "", $2); printf "%s%s×%s", sep, $2, $3; sep = " "}' "$TMP/wrk-$1.txt"; }
wrk_status() { awk -v s="$2" '$1 == "status" && $2 == s ":" {n = $3} END {print n + 0}' "$TMP/wrk-$1.txt"; }
# A percentile line of --latency ("  99%  1.23ms"), in milliseconds.
wrk_pct() {
    awk -v p="$2%" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us$/, "", v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v*=1000} print v; exit}' "$TMP/wrk-$1.txt"
}
# CPU microseconds that optin, redis-server and wrk spent per unit of work ($2 units).
cpu_per() {
    awk -v hz="$CLK_TCK" -v n="$2" '{printf "optin %.1f, redis %.1f, wrk %.1f", $1 / hz * 1e6 / n, $2 / hz * 1e6 / n, ($3 + $4) * 1e6 / n}' "$TMP/cpu-$1.txt"
}
calc() { awk "BEGIN {printf \"%.${2:-2}f\", $1}"; }
verdict() { [ -n "$1" ] || { echo "n/a"; return; }; awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "pass" : "MISS"}'; }
used_memory() { rcli info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }

# ---------------------------------------------------------------------------- load
say "loading $CONTACTS contacts through POST /v1/imports"
awk -v n="$CONTACTS" 'BEGIN {for (i = 0; i < n; i++) printf "{\"email\":\"u%d@bench.example\",\"subscription_type\":\"blog-updates\",\"status\":\"opted_in\",\"lawful_basis\":\"consent\",\"consent_evidence\":\"bench\"}\n", i}' >"$TMP/import.ndjson"
mkdir -p "$TMP/import"
# Four streams of 10,000-line parts at once, so that the load uses both cores and no
# single request runs long.
split -l 10000 -d -a 4 "$TMP/import.ndjson" "$TMP/import/part-"
MEM_BEFORE="$(used_memory)"
import_start="$(date +%s.%N)"
export API_KEY BASE
find "$TMP/import" -name 'part-*' -print0 | sort -z | xargs -0 -P 4 -I{} \
    sh -c 'curl -sS --fail -X POST -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/x-ndjson" --data-binary @"$1" "$BASE/v1/imports" -o "$1.out"' _ {}
import_end="$(date +%s.%N)"
MEM_AFTER="$(used_memory)"
IMPORTED="$(cat "$TMP"/import/part-*.out | awk '/"done":true/ {match($0, /"succeeded":[0-9]+/); s += substr($0, RSTART + 12, RLENGTH - 12)} END {print s + 0}')"
[ "$IMPORTED" -eq "$CONTACTS" ] || { tail -n 3 "$TMP"/import/part-*.out >&2; die "imported $IMPORTED of $CONTACTS contacts"; }
IMPORT_SECS="$(calc "$import_end - $import_start" 1)"
IMPORT_RATE="$(calc "$CONTACTS / ($import_end - $import_start)" 0)"
BYTES_PER_CONTACT="$(calc "($MEM_AFTER - $MEM_BEFORE) / $CONTACTS" 0)"
echo "imported $IMPORTED contacts in ${IMPORT_SECS}s ($IMPORT_RATE/s); used_memory $MEM_BEFORE -> $MEM_AFTER bytes"

# One contact's keys, to see where the bytes go (kept as sample-*.json in $TMP).
SAMPLE_KEY="$( (rcli --scan --pattern 'optin:*:c:*' || true) | head -n 1)"
SAMPLE_EV="${SAMPLE_KEY/:c:/:ev:}"
SAMPLE_C_MEM="$(rcli memory usage "$SAMPLE_KEY" | tr -d '\r')"
SAMPLE_EV_MEM="$(rcli memory usage "$SAMPLE_EV" | tr -d '\r')"
rcli --raw hget "$SAMPLE_KEY" d >"$TMP/sample-contact.json"
rcli --raw lindex "$SAMPLE_EV" 0 >"$TMP/sample-event.json"
SAMPLE_C_JSON="$(tr -d '\n' <"$TMP/sample-contact.json" | wc -c)"
SAMPLE_EV_JSON="$(tr -d '\n' <"$TMP/sample-event.json" | wc -c)"
KEYS_PER_CONTACT="$(calc "$(rcli dbsize | tr -d '\r') / $CONTACTS")"
echo "sample contact: MEMORY USAGE contact hash $SAMPLE_C_MEM B (contact JSON $SAMPLE_C_JSON B), event list $SAMPLE_EV_MEM B (event JSON $SAMPLE_EV_JSON B); $KEYS_PER_CONTACT keys per contact"

# The service must answer what we loaded before we time it.
check="$(curl -fsS -H "Authorization: Bearer $API_KEY" "$BASE/v1/eligibility?email=u42%40bench.example&subscription_type=blog-updates")"
case "$check" in *'"eligible":true'*) ;; *) die "unexpected eligibility answer: $check" ;; esac

# ---------------------------------------------------------------------------- measure
# Run order: 1, 2, 5, 3, 4, 8. The latency run follows (2) directly, and the signups run
# late, because the mail it queues keeps the outbox worker busy for a while after it.
# The feedback run (8) changes the loaded contacts, so it comes after every read.
say "1. GET /healthz"
run_wrk warmup -t"$THREADS" -c"$CONNECTIONS" -d3s "$BASE/healthz" >/dev/null
run_wrk healthz "${WRK_ARGS[@]}" "$BASE/healthz"
HEALTHZ_RPS="$(wrk_rps healthz)"

say "2. GET /v1/eligibility (a random one of the $CONTACTS addresses per request)"
run_wrk elig "${WRK_ARGS[@]}" -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS"
ELIG_RPS="$(wrk_rps elig)"
ELIG_RATIO="$(calc "$ELIG_RPS / $HEALTHZ_RPS")"

say "5. GET /v1/eligibility latency at about half of the rate of (2)"
HALF_RATE="$(calc "$ELIG_RPS / 2" 0)"
if [ -n "$WRK2" ]; then
    LAT_METHOD="wrk2 -R $HALF_RATE (constant rate), -t$THREADS -c$LAT_CONNECTIONS"
    WRK_BIN="$WRK2"
    run_wrk latency -t"$THREADS" -c"$LAT_CONNECTIONS" -d"$DURATION" -R"$HALF_RATE" --latency \
        -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS"
    WRK_BIN=wrk
else
    # No wrk2: each connection waits PAUSE ms after every answer (wrk's delay() hook).
    # A short calibration run gives the rate the connections offer that way, and their
    # number is then set so that together they offer about half the saturated rate.
    # Closed loop: a stall delays later requests instead of queueing them (coordinated
    # omission), so the tail is, if anything, understated.
    PAUSE="$(awk -v c="$LAT_CONNECTIONS" -v r="$HALF_RATE" 'BEGIN {p = int(c * 1000 / r + 0.5); print (p < 1 ? 1 : p)}')"
    run_wrk calibrate -t"$THREADS" -c"$LAT_CONNECTIONS" -d3s --timeout 30s \
        -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS" "$PAUSE" >/dev/null
    LAT_CONNECTIONS="$(awk -v c="$LAT_CONNECTIONS" -v r="$HALF_RATE" -v a="$(wrk_rps calibrate)" -v t="$THREADS" \
        'BEGIN {n = int(c * r / a + 0.5); if (n < t) n = t; if (n > 512) n = 512; print n}')"
    LAT_METHOD="wrk --latency -t$THREADS -c$LAT_CONNECTIONS, ${PAUSE} ms pause per connection after each answer (no wrk2 in Debian)"
    run_wrk latency -t"$THREADS" -c"$LAT_CONNECTIONS" -d"$DURATION" --latency --timeout 30s \
        -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS" "$PAUSE"
fi
LAT_RATE="$(wrk_rps latency)"
LAT_P50="$(wrk_pct latency 50)"
LAT_P99="$(wrk_pct latency 99)"

say "3. POST /v1/eligibility with $BATCH addresses per request"
awk -v n="$BATCH" -v c="$CONTACTS" 'BEGIN {
    step = int(c / n); if (step < 1) step = 1
    printf "{\"subscription_type\":\"blog-updates\",\"emails\":["
    for (i = 0; i < n; i++) printf "%s\"u%d@bench.example\"", (i ? "," : ""), (i * step) % c
    printf "]}"
}' >"$TMP/batch.json"
answer="$(curl -fsS -X POST -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' --data-binary @"$TMP/batch.json" "$BASE/v1/eligibility" | grep -o '"eligible":true' | wc -l)"
[ "$answer" -eq "$BATCH" ] || die "a batch answered $answer of $BATCH addresses eligible"
run_wrk batch "${WRK_ARGS[@]}" -s "$BENCH/eligibility_batch.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$TMP/batch.json"
BATCH_RPS="$(wrk_rps batch)"
BATCH_OK="$(wrk_status batch 200)"
BATCH_ADDR="$(calc "$BATCH_OK * $BATCH / $(wrk_seconds batch)" 0)"
echo "\$ redis-benchmark -p $REDIS_PORT -P 16 -t get -n 1000000 -q"
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -P 16 -t get -n 1000000 -q | tr '\r' '\n' | grep -v '^ *$' | tail -n 1 | tee "$TMP/redis-benchmark.txt"
REDIS_GET="$(awk '/^GET:/ {print $2}' "$TMP/redis-benchmark.txt")"
BATCH_RATIO="$(calc "$BATCH_ADDR / $REDIS_GET")"

say "4. POST /v1/signups (a new address per request)"
MAIL_BEFORE="$(find "$TMP/mail" -type f | wc -l)"
run_wrk signups "${WRK_ARGS[@]}" -s "$BENCH/signups.lua" "$BASE/v1/signups" -- "$(date +%s)"
MAIL_AFTER="$(find "$TMP/mail" -type f | wc -l)"
SIGNUP_NON2XX="$(wrk_non2xx signups)"
SIGNUP_202="$(calc "$(wrk_status signups 202) / $(wrk_seconds signups)")"
SIGNUP_RATIO="$(calc "$SIGNUP_202 / $HEALTHZ_RPS")"

say "8. POST /v1/feedback with $FEEDBACK_BATCH soft bounces per request"
check="$(curl -fsS -X POST -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' --data '[{"email":"u7@bench.example","kind":"soft_bounce"}]' "$BASE/v1/feedback")"
case "$check" in *'"accepted":1'*) ;; *) die "unexpected feedback answer: $check" ;; esac
run_wrk feedback "${WRK_ARGS[@]}" -s "$BENCH/feedback.lua" "$BASE/v1/feedback" -- "$API_KEY" "$CONTACTS" "$FEEDBACK_BATCH"
FEEDBACK_OK="$(wrk_status feedback 200)"
FEEDBACK_ITEMS="$(calc "$FEEDBACK_OK * $FEEDBACK_BATCH / $(wrk_seconds feedback)" 0)"
FEEDBACK_RATIO="$(calc "$FEEDBACK_ITEMS / $BATCH_ADDR")"

say "6. Outbox drain (bench/drain.sh): mails/s to a local SMTP sink"
OPTIN_BIN="$OPTIN" bash "$BENCH/drain.sh" | tee "$TMP/drain.txt"
# "drain unsigned: 5000 mails in 3.57 s = 1,399 mails/s from …" → 1399
drain_rate() { sed -n "s/^drain $1: .* = \([0-9,]*\) mails\/s.*/\1/p" "$TMP/drain.txt" | tr -d ,; }
DRAIN_NONE="$(drain_rate unsigned)"
DRAIN_RSA="$(drain_rate RSA-2048)"
DRAIN_ED="$(drain_rate Ed25519)"

say "7. Webhook fan-out (bench/fanout.sh): deliveries/s to a local receiver; writes with 3 endpoints / none"
OPTIN_BIN="$OPTIN" bash "$BENCH/fanout.sh" | tee "$TMP/fanout.txt"
# "fanout 3 endpoints: 9000 deliveries in 13.45 s = 669 deliveries/s from …" → 669
fanout_rate() { sed -n "s/^fanout $1 endpoints\{0,1\}: .* = \([0-9,]*\) deliveries\/s.*/\1/p" "$TMP/fanout.txt" | tr -d ,; }
# "write ratio put: 3 endpoints / none = 0.73 (546 / 749 changes/s, …" → 0.73
write_ratio() { sed -n "s/^write ratio $1: 3 endpoints \/ none = \([0-9.]*\) .*/\1/p" "$TMP/fanout.txt"; }
FANOUT_1="$(fanout_rate 1)"
FANOUT_3="$(fanout_rate 3)"
WRITE_PUT="$(write_ratio put)"
WRITE_IMPORT="$(write_ratio import)"
WRITE_SIGNUP="$(write_ratio signup)"

# ---------------------------------------------------------------------------- summary
{
    echo
    echo "== Summary"
    echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu:         nproc $(nproc), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at the end; includes this run)"
    echo "wrk:         -t$THREADS -c$CONNECTIONS -d$DURATION for 1-4; optin, redis-server and wrk share the same cores"
    echo "contacts:    $CONTACTS imported in ${IMPORT_SECS}s ($IMPORT_RATE/s)"
    echo
    printf '%-44s %16s %8s %8s %6s\n' "measure" "raw" "ratio" "target" "result"
    printf '%-44s %16s %8s %8s %6s\n' "--------------------------------------------" "----------------" "--------" "--------" "------"
    printf '%-44s %16s %8s %8s %6s\n' "Redis used_memory per contact" "$BYTES_PER_CONTACT B" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "1 GET /healthz" "$HEALTHZ_RPS/s" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "2 GET /v1/eligibility" "$ELIG_RPS/s" "$ELIG_RATIO" ">= 0.6" "$(verdict "$ELIG_RATIO" '>=' 0.6)"
    printf '%-44s %16s %8s %8s %6s\n' "3 POST /v1/eligibility, $BATCH per request" "$BATCH_ADDR addr/s" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "  redis-benchmark GET -P 16" "$REDIS_GET/s" "$BATCH_RATIO" ">= 0.3" "$(verdict "$BATCH_RATIO" '>=' 0.3)"
    printf '%-44s %16s %8s %8s %6s\n' "4 POST /v1/signups (202s)" "$SIGNUP_202/s" "$SIGNUP_RATIO" ">= 0.3" "$(verdict "$SIGNUP_RATIO" '>=' 0.3)"
    printf '%-44s %16s %8s %8s %6s\n' "5 GET /v1/eligibility at $LAT_RATE/s: p50" "$LAT_P50 ms" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "  p99" "$LAT_P99 ms" "" "<= 2 ms" "$(verdict "$LAT_P99" '<=' 2)"
    printf '%-44s %16s %8s %8s %6s\n' "8 POST /v1/feedback, $FEEDBACK_BATCH per request" "$FEEDBACK_ITEMS items/s" "$FEEDBACK_RATIO" ">= 0.3" "$(verdict "$FEEDBACK_RATIO" '>=' 0.3)"
    printf '%-44s %16s %8s %8s %6s\n' "6 outbox drain, unsigned" "$DRAIN_NONE mails/s" "" ">= 1000" "$(verdict "$DRAIN_NONE" '>=' 1000)"
    printf '%-44s %16s %8s %8s %6s\n' "  DKIM RSA-2048" "$DRAIN_RSA mails/s" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "  DKIM Ed25519" "$DRAIN_ED mails/s" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "7 webhook fan-out, 1 endpoint" "$FANOUT_1 deliv/s" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "  3 endpoints" "$FANOUT_3 deliv/s" "" "" ""
    printf '%-44s %16s %8s %8s %6s\n' "  PUT opt-ins, 3 endpoints / none" "" "$WRITE_PUT" ">= 0.8" "$(verdict "$WRITE_PUT" '>=' 0.8)"
    printf '%-44s %16s %8s %8s %6s\n' "  imports, 3 endpoints / none" "" "$WRITE_IMPORT" ">= 0.8" "$(verdict "$WRITE_IMPORT" '>=' 0.8)"
    printf '%-44s %16s %8s %8s %6s\n' "  signups, 3 endpoints / none" "" "$WRITE_SIGNUP" ">= 0.8" "$(verdict "$WRITE_SIGNUP" '>=' 0.8)"
    echo
    echo "latency method:   $LAT_METHOD; aimed at $HALF_RATE/s"
    echo "batch:            $BATCH_RPS requests/s; statuses $(wrk_statuses batch)"
    echo "signups:          statuses $(wrk_statuses signups); $((MAIL_AFTER - MAIL_BEFORE)) mails written meanwhile"
    echo "writes (7):       3 endpoints / none: $(sed -n 's/^write ratio \([a-z]*\): .* (\(.*\), best of .*/\1 \2/p' "$TMP/fanout.txt" | paste -sd '|' | sed 's/|/; /g')"
    echo "non-2xx (wrk):    healthz $(wrk_non2xx healthz), eligibility $(wrk_non2xx elig), latency $(wrk_non2xx latency), batch $(wrk_non2xx batch), signups $SIGNUP_NON2XX"
    echo "socket errors:    healthz $(wrk_errors healthz), eligibility $(wrk_errors elig), latency $(wrk_errors latency), batch $(wrk_errors batch), signups $(wrk_errors signups)"
    echo "CPU µs/request:   healthz: $(cpu_per healthz "$(wrk_requests healthz)")"
    echo "                  eligibility: $(cpu_per elig "$(wrk_requests elig)")"
    echo "                  batch, per address: $(cpu_per batch "$((BATCH_OK > 0 ? BATCH_OK * BATCH : 1))")"
    echo "                  signup: $(cpu_per signups "$(wrk_requests signups)") (optin's includes the outbox worker)"
    echo "                  feedback, per item: $(cpu_per feedback "$((FEEDBACK_OK > 0 ? FEEDBACK_OK * FEEDBACK_BATCH : 1))")"
    echo "feedback:         statuses $(wrk_statuses feedback)"
    echo "Redis commands:   eligibility: $(redis_top elig "$(wrk_requests elig)")"
    echo "                  signups: $(redis_top signups "$(wrk_requests signups)")"
    echo "sample contact:   contact hash $SAMPLE_C_MEM B (JSON $SAMPLE_C_JSON B), event list $SAMPLE_EV_MEM B (one event, JSON $SAMPLE_EV_JSON B); $KEYS_PER_CONTACT keys per contact"
} | tee "$TMP/summary.txt"
