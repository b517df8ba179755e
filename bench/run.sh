#!/usr/bin/env bash
# optin benchmark: every measure on both stores (embedded redb and Redis), one table.
#
#   bench/run.sh                          # builds the release binary (honours CARGO_TARGET_DIR)
#   OPTIN_BIN=path/to/optin bench/run.sh  # measures that binary, no build
#   BENCH_QUICK=1 bench/run.sh            # about a minute, proves the script works
#
# What each figure means, the knobs and the latest results: bench/README.md.
# Only 127.0.0.1 is contacted (apart from apt-get when a tool is missing); every process
# started here is stopped on exit, Ctrl-C and failure included.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"

QUICK="${BENCH_QUICK:-0}"
# quick A B: A in a quick run, B otherwise (a knob set in the environment wins over both).
quick() { if [ "$QUICK" = 1 ]; then echo "$1"; else echo "$2"; fi; }
CONTACTS="${BENCH_CONTACTS:-$(quick 3000 100000)}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
DURATION="${BENCH_DURATION:-$(quick 2s 10s)}"
SIGNUP_DURATION="${BENCH_SIGNUP_DURATION:-$(quick 2s 20s)}"
MAIL_WAIT="${BENCH_MAIL_WAIT:-$(quick 10 60)}"
LAT_CONNECTIONS_WANTED="${BENCH_LATENCY_CONNECTIONS:-16}"
CONCURRENT="${BENCH_CONCURRENT_BATCHES:-32}"
SHORT="$(quick 1s 3s)"             # warm-up and latency calibration runs
REDIS_BENCH_N="$(quick 200000 1000000)"
# The sub-benchmarks' own knobs, shortened in a quick run unless set.
export DRAIN_MAILS="${DRAIN_MAILS:-$(quick 300 5000)}"
export FANOUT_CHANGES="${FANOUT_CHANGES:-$(quick 200 3000)}"
export FANOUT_REPEAT="${FANOUT_REPEAT:-$(quick 1 2)}"
BATCH=10000
FEEDBACK_BATCH=1000
# The same load shape for every throughput run; a long timeout because a batch of
# 10,000 addresses takes far longer than wrk's default 2 s limit allows under load.
WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s)

say() { printf '\n== [%s] %s\n' "$(date -u +%T)" "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- processes
# Set up first, so that a failure anywhere below still stops what was started.
TMP="$(mktemp -d "${TMPDIR:-/tmp}/optin-bench.XXXXXX")"
REDIS_PID=""
OPTIN_PID=""
SINK_PID=""
# A process and all its descendants, children listed before they can be re-parented.
descendants() {
    local child
    for child in $(pgrep -P "$1" || true); do
        descendants "$child"
    done
    echo "$1"
}
stop_pid() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$? pids child
    trap - EXIT INT TERM
    stop_pid "$OPTIN_PID"
    stop_pid "$REDIS_PID"
    stop_pid "$SINK_PID"
    # Anything else still running below this shell (drain.py, fanout.py and their optin
    # processes, wrk, curl), by process id.
    pids=""
    for child in $(pgrep -P $$ || true); do
        pids="$pids $(descendants "$child")"
    done
    if [ -n "${pids// /}" ]; then
        # shellcheck disable=SC2086 # a list of ids
        kill $pids 2>/dev/null || true
        sleep 1
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# drain.py and fanout.py make their temp dirs here, so they go with it.
export TMPDIR="$TMP"

# ---------------------------------------------------------------------------- tools
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; } || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v pgrep >/dev/null || missing+=(procps)
# Postfix's smtp-sink takes the confirmation mails as a real mail server would, fast.
command -v smtp-sink >/dev/null || missing+=(postfix)
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
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk2 >/dev/null; then WRK2="wrk2"; fi
fi

# ---------------------------------------------------------------------------- binary
cd "$ROOT"
if [ -n "${OPTIN_BIN:-}" ]; then
    OPTIN="$(cd "$(dirname "$OPTIN_BIN")" && pwd)/$(basename "$OPTIN_BIN")"
    say "measuring $OPTIN (OPTIN_BIN; no build)"
else
    say "building the release binary"
    cargo build --release --locked
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    OPTIN="$TARGET_DIR/release/optin"
fi
[ -x "$OPTIN" ] || die "no binary at $OPTIN"

# ---------------------------------------------------------------------------- redis
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

SINK_PORT="$(free_port)" || die "no free port"
say "starting smtp-sink on 127.0.0.1:$SINK_PORT"
# -u: the user it runs as when started by root; 256: its connection backlog.
smtp-sink -u "$(id -un)" "127.0.0.1:$SINK_PORT" 256 >"$TMP/smtp-sink.log" 2>&1 &
SINK_PID=$!

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

# The ceiling of measure 3 for both stores, taken while no optin runs.
say "3. ceiling: redis-benchmark GET, 16 pipelined"
echo "\$ redis-benchmark -p $REDIS_PORT -P 16 -t get -n $REDIS_BENCH_N -q"
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -P 16 -t get -n "$REDIS_BENCH_N" -q | tr '\r' '\n' | grep -v '^ *$' | tail -n 1 | tee "$TMP/redis-benchmark.txt"
REDIS_GET="$(awk '/^GET:/ {printf "%.0f", $2}' "$TMP/redis-benchmark.txt")"

# One admin key (admin may also do what a send key may), the same for both stores.
KEY_OUT="$("$OPTIN" keys new --scope admin --name bench)"
API_KEY="$(printf '%s\n' "$KEY_OUT" | sed -n 's/^API key[^:]*: //p')"
API_ENTRY="$(printf '%s\n' "$KEY_OUT" | sed -n 's/^Add this entry[^:]*: //p')"
if [ -z "$API_KEY" ] || [ -z "$API_ENTRY" ]; then die "could not parse the output of 'optin keys new'"; fi
export API_KEY

# ---------------------------------------------------------------------------- helpers
declare -A R # results: R[<store>.<name>], store e (embedded) or r (Redis)
S=""         # the store being measured
BASE=""

# wrk's output is printed and kept in $TMP/wrk-<store>-<name>.txt; these read figures
# back. Each run also notes the CPU time optin and redis-server used meanwhile.
CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
WRK_BIN=wrk
TIMEFORMAT='%U %S'
run_wrk() {
    local name="$S-$1"
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
        if (total == 0 || n == 0) exit
        for (k = 0; k < 4; k++) {
            best = ""
            for (c in usec) if (c != "evalsha" && c != "eval" && (best == "" || usec[c] > usec[best])) best = c
            if (best == "") break
            printf "%s%s %.1f/req %.0f%%", (k ? ", " : ""), best, calls[best] / n, 100 * usec[best] / total
            delete usec[best]
        }
    }' "$TMP/redis-$S-$1.txt"
}
wrk_file() { echo "$TMP/wrk-$S-$1.txt"; }
wrk_rps() { awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$(wrk_file "$1")"; }
wrk_requests() { awk '/ requests in / {print $1}' "$(wrk_file "$1")"; }
wrk_seconds() { awk '/ requests in / {d=$4; sub(/,$/, "", d); if (d ~ /ms$/) {sub(/ms$/, "", d); d/=1000} else if (d ~ /m$/) {sub(/m$/, "", d); d*=60} else {sub(/s$/, "", d)} print d}' "$(wrk_file "$1")"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ {n=$NF} END {print n+0}' "$(wrk_file "$1")"; }
wrk_errors() { awk '/Socket errors:/ {gsub(/,/, ""); n=$4+$6+$8+$10} END {print n+0}' "$(wrk_file "$1")"; }
# "status 503: 12" lines printed by the Lua scripts, as "202×1234 503×12".
wrk_statuses() { awk '/^status [0-9]+:/ {sub(/:$/, "", $2); printf "%s%s×%s", sep, $2, $3; sep = " "} END {if (sep == "") printf "none (no answer within the run)"}' "$(wrk_file "$1")"; }
wrk_status() { awk -v s="$2" '$1 == "status" && $2 == s ":" {n = $3} END {print n + 0}' "$(wrk_file "$1")"; }
# A percentile line of --latency ("  99%  1.23ms"), in milliseconds.
wrk_pct() {
    awk -v p="$2%" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us$/, "", v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v*=1000} printf "%.3g", v; exit}' "$(wrk_file "$1")"
}
# CPU microseconds that optin, redis-server and wrk spent per unit of work ($2 units).
cpu_per() {
    awk -v hz="$CLK_TCK" -v n="$2" '{if (n == 0) {print "n/a (nothing done)"; exit} printf "optin %.1f, redis %.1f, wrk %.1f", $1 / hz * 1e6 / n, $2 / hz * 1e6 / n, ($3 + $4) * 1e6 / n}' "$TMP/cpu-$S-$1.txt"
}
# $1 / $2 with $3 decimals (2), or nothing when either is missing or $2 is 0.
div() {
    [ -n "$1" ] && [ -n "$2" ] || return 0
    awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {if (b + 0 != 0) printf "%.*f", d, a / b}'
}
calc() { awk "BEGIN {printf \"%.${2:-2}f\", $1}"; }
now() { date +%s.%N; }
verdict() { [ -n "$1" ] || return 0; awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "pass" : "MISS"}'; }
used_memory() { rcli info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
# Confirmation mails the relay took, from optin's own count (the admin key may read it).
mails() {
    curl -fsS -H "Authorization: Bearer $API_KEY" "$BASE/metrics" |
        awk '$1 == "optin_outbox_sent_total" {n += $2} END {printf "%d\n", n}'
}
# A field of /proc/PID/status in kB: kib PID VmHWM.
kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------------------- one store
# Starts optin on store $S (e: a redb file in the temp dir; r: the private redis-server),
# loads the contacts, runs measures 1-5, 8 and 9 (and 10 on Redis), and stops it.
start_optin() {
    local url="$1" port config
    mkdir -p "$TMP/$S"
    port="$(free_port)" || die "no free port"
    BASE="http://127.0.0.1:$port"
    config="$TMP/$S/optin.bench.toml"
    {
        cat <<EOF
# Written by bench/run.sh for one run; the keys are fresh and thrown away afterwards.
# The configuration as a user runs it: JSON logs at info (one access-log line per
# request) into a file, and mail over SMTP to a real (if fast) mail server.
[log]
format = "json"
filter = "info"

[server]
bind = "127.0.0.1:$port"
public_url = "$BASE"
# wrk plays the proxy in front of many clients (see bench/signups.lua).
trusted_proxies = ["127.0.0.1"]

[store]
url = "$url"

[mail]
url = "smtp://127.0.0.1:$SINK_PORT?tls=none"

[security]
signing_keys = ["bench:$(head -c32 /dev/urandom | base64)"]
index_key = "$(head -c32 /dev/urandom | base64)"
api_keys = ["$API_ENTRY"]

[signup]
# The benchmark may run without a network, and its addresses are at a domain no DNS
# knows: the MX check (on by default in a production setup) stays off. The signups come
# from many client addresses (bench/signups.lua), so ip_burst holds none of them.
check_mx = false

[feedback]
# Measure 8 posts soft bounces of the same contacts again and again; a high limit keeps
# every one a counted write instead of a no-op on an address already unreachable.
soft_bounce_limit = 1000

EOF
        cat "$ROOT/src/example_subscription_types.toml"
    } >"$config"
    say "starting optin on $BASE, store $url"
    # optin reads OPTIN_* variables as settings (OPTIN_BIN would be an unknown one): the
    # written file alone configures it.
    (
        cd "$TMP/$S"
        unset RUST_LOG
        for var in $(compgen -e OPTIN_); do unset "$var"; done
        exec "$OPTIN" serve --config "$config"
    ) >"$TMP/$S/optin.log" 2>&1 &
    OPTIN_PID=$!
    local ready=""
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
        kill -0 "$OPTIN_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$ready" ] || { cat "$TMP/$S/optin.log" >&2; die "optin did not become ready"; }
}

load_contacts() {
    say "[$S] loading $CONTACTS contacts through POST /v1/imports"
    local mem0="" mem1 t0 t1 imported
    [ "$S" = r ] && mem0="$(used_memory)"
    t0="$(now)"
    # Four streams of 10,000-line parts at once, so that the load uses both cores and no
    # single request runs long.
    export BASE
    # shellcheck disable=SC2016 # expanded by sh, from its arguments and environment
    find "$TMP/import" -name 'part-*' ! -name '*.out' -print0 | sort -z | xargs -0 -P 4 -I{} \
        sh -c 'curl -sS --fail -X POST -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/x-ndjson" --data-binary @"$1" "$BASE/v1/imports" -o "$1.$2.out"' _ {} "$S"
    t1="$(now)"
    imported="$(cat "$TMP"/import/part-*."$S".out | awk '/"done":true/ {match($0, /"succeeded":[0-9]+/); s += substr($0, RSTART + 12, RLENGTH - 12)} END {print s + 0}')"
    [ "$imported" -eq "$CONTACTS" ] || { tail -n 3 "$TMP"/import/part-*."$S".out >&2; die "imported $imported of $CONTACTS contacts"; }
    R[$S.import]="$CONTACTS in $(calc "$t1 - $t0" 1) s ($(calc "$CONTACTS / ($t1 - $t0)" 0)/s)"
    echo "imported ${R[$S.import]}"
    if [ "$S" = r ]; then
        mem1="$(used_memory)"
        R[r.mem]="$(calc "($mem1 - $mem0) / $CONTACTS" 0)"
        echo "used_memory $mem0 -> $mem1 bytes: ${R[r.mem]} B per contact"
        sample_contact
    fi
    # The service must answer what we loaded before we time it.
    local check
    check="$(curl -fsS -H "Authorization: Bearer $API_KEY" "$BASE/v1/eligibility?email=u42%40bench.example&subscription_type=blog-updates")"
    case "$check" in *'"eligible":true'*) ;; *) die "unexpected eligibility answer: $check" ;; esac
}

# One contact's keys, to see where the bytes go: the contact is a string (compact form)
# or, before the compact form, a hash with its JSON in field d; its events are one string
# of length-framed events or, before that, a list.
sample_contact() {
    local key ev c_mem ev_mem c_len ev_len c_type ev_type
    key="$( (rcli --scan --pattern 'optin:*:c:*' || true) | head -n 1)"
    [ -n "$key" ] || { R[r.sample]="no contact key found"; return 0; }
    ev="${key/:c:/:ev:}"
    c_type="$(rcli type "$key" | tr -d '\r')"
    c_mem="$(rcli memory usage "$key" | tr -d '\r')"
    ev_mem="$(rcli memory usage "$ev" | tr -d '\r')"
    if [ "$c_type" = hash ]; then
        c_len="$(rcli hstrlen "$key" d | tr -d '\r')"
    else
        c_len="$(rcli strlen "$key" | tr -d '\r')"
    fi
    ev_type="$(rcli type "$ev" | tr -d '\r')"
    if [ "$ev_type" = list ]; then
        ev_len="$(rcli --raw lindex "$ev" 0 | head -c -1 | wc -c)"
    else
        ev_len="$(rcli strlen "$ev" | tr -d '\r')"
    fi
    R[r.sample]="contact $c_type $c_mem B (value $c_len B), events $ev_type $ev_mem B (one event, $ev_len B); $(div "$(rcli dbsize | tr -d '\r')" "$CONTACTS") keys per contact"
    echo "sample: ${R[r.sample]}"
}

measure_store() {
    S="$1"
    start_optin "$2"
    load_contacts

    # Run order: 1, 2, 5, 3, 9, 4, 8. The latency run follows (2) directly; the signups
    # run late, because the mail it queues keeps the outbox busy after it (the run waits
    # for it); the feedback run changes the loaded contacts, so it comes after every read.
    say "[$S] 1. GET /healthz"
    run_wrk warmup -t"$THREADS" -c"$CONNECTIONS" -d"$SHORT" "$BASE/healthz" >/dev/null
    run_wrk healthz "${WRK_ARGS[@]}" "$BASE/healthz"
    R[$S.healthz]="$(wrk_rps healthz)"

    say "[$S] 2. GET /v1/eligibility (a random one of the $CONTACTS addresses per request)"
    run_wrk elig "${WRK_ARGS[@]}" -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS"
    R[$S.elig]="$(wrk_rps elig)"

    say "[$S] 5. GET /v1/eligibility latency at about half of the rate of (2)"
    local half lat_conn="$LAT_CONNECTIONS_WANTED" pause
    half="$(calc "${R[$S.elig]} / 2" 0)"
    if [ -n "$WRK2" ]; then
        R[$S.lat_method]="wrk2 -R $half (constant rate), -t$THREADS -c$lat_conn"
        WRK_BIN="$WRK2"
        run_wrk latency -t"$THREADS" -c"$lat_conn" -d"$DURATION" -R"$half" --latency \
            -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS"
        WRK_BIN=wrk
    else
        # No wrk2: each connection waits PAUSE ms after every answer (wrk's delay() hook).
        # A short calibration run gives the rate the connections offer that way, and their
        # number is then set so that together they offer about half the saturated rate.
        # Closed loop: a stall delays later requests instead of queueing them (coordinated
        # omission), so the tail is, if anything, understated.
        pause="$(awk -v c="$lat_conn" -v r="$half" 'BEGIN {p = (r > 0) ? int(c * 1000 / r + 0.5) : 1; print (p < 1 ? 1 : p)}')"
        run_wrk calibrate -t"$THREADS" -c"$lat_conn" -d"$SHORT" --timeout 30s \
            -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS" "$pause" >/dev/null
        lat_conn="$(awk -v c="$lat_conn" -v r="$half" -v a="$(wrk_rps calibrate)" -v t="$THREADS" \
            'BEGIN {n = (a > 0) ? int(c * r / a + 0.5) : c; if (n < t) n = t; if (n > 512) n = 512; print n}')"
        R[$S.lat_method]="wrk --latency -t$THREADS -c$lat_conn, $pause ms pause per connection after each answer (no wrk2)"
        run_wrk latency -t"$THREADS" -c"$lat_conn" -d"$DURATION" --latency --timeout 30s \
            -s "$BENCH/eligibility_get.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$CONTACTS" "$pause"
    fi
    R[$S.lat_rate]="$(wrk_rps latency)"
    R[$S.lat_method]="${R[$S.lat_method]}; aimed at $half/s, got ${R[$S.lat_rate]}/s"
    R[$S.p50]="$(wrk_pct latency 50)"
    R[$S.p99]="$(wrk_pct latency 99)"

    say "[$S] 3. POST /v1/eligibility with $BATCH addresses per request"
    local answer
    answer="$(curl -fsS -X POST -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' --data-binary @"$TMP/batch.json" "$BASE/v1/eligibility" | grep -o '"eligible":true' | wc -l)"
    [ "$answer" -eq "$BATCH" ] || die "a batch answered $answer of $BATCH addresses eligible"
    run_wrk batch "${WRK_ARGS[@]}" -s "$BENCH/eligibility_batch.lua" "$BASE/v1/eligibility" -- "$API_KEY" "$TMP/batch.json"
    R[$S.batch_ok]="$(wrk_status batch 200)"
    R[$S.batch]="$(div "$((${R[$S.batch_ok]} * BATCH))" "$(wrk_seconds batch)" 0)"

    say "[$S] 9. $CONCURRENT concurrent batches of $BATCH addresses"
    local rss0 t0 t1 codes
    rss0="$(kib "$OPTIN_PID" VmRSS)"
    # Start the peak (VmHWM) afresh, so that it is this measure's (Linux >= 4.0).
    if echo 5 >"/proc/$OPTIN_PID/clear_refs" 2>/dev/null; then
        R[$S.hwm_from]="reset before this measure"
    else
        R[$S.hwm_from]="since optin started (clear_refs refused)"
    fi
    t0="$(now)"
    seq 1 "$CONCURRENT" | xargs -P "$CONCURRENT" -I{} \
        curl -sS -o /dev/null -w '%{http_code}\n' --max-time 300 -X POST \
        -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
        --data-binary @"$TMP/batch.json" "$BASE/v1/eligibility" >"$TMP/$S/concurrent.txt" 2>"$TMP/$S/concurrent.err" &
    # In the background, so that Ctrl-C or a TERM stops it at once (see cleanup).
    wait $! || true
    t1="$(now)"
    codes="$(sort "$TMP/$S/concurrent.txt" | uniq -c | awk '{printf "%s%s×%s", sep, $2, $1; sep = " "}')"
    R[$S.conc_err]="$((CONCURRENT - $(grep -c '^200$' "$TMP/$S/concurrent.txt" || true)))"
    R[$S.conc_mb]="$(awk -v k="$(kib "$OPTIN_PID" VmHWM)" 'BEGIN {printf "%.0f", k / 1024}')"
    R[$S.conc_info]="statuses ${codes:-none} in $(calc "$t1 - $t0" 1) s; VmRSS before $(awk -v k="$rss0" 'BEGIN {printf "%.0f", k / 1024}') MB, peak ${R[$S.conc_mb]} MB ${R[$S.hwm_from]}"
    echo "${R[$S.conc_err]} errors; ${R[$S.conc_info]}"

    say "[$S] 4. POST /v1/signups (a new address per request), then mail delivery"
    local mail0 accepted delivered waited=""
    mail0="$(mails)"
    run_wrk signups -t"$THREADS" -c"$CONNECTIONS" -d"$SIGNUP_DURATION" --timeout 30s \
        -s "$BENCH/signups.lua" "$BASE/v1/signups" -- "$S$(date +%s)"
    t0="$(now)"
    accepted="$(wrk_status signups 202)"
    R[$S.signups]="$(div "$accepted" "$(wrk_seconds signups)" 0)"
    R[$S.mail_during]="$(($(mails) - mail0))"
    # Confirmation mails the relay took (smtp-sink, by optin's count) within MAIL_WAIT s of
    # the end of the signup load.
    while :; do
        delivered="$(($(mails) - mail0))"
        if [ "$delivered" -ge "$accepted" ]; then waited="$(calc "$(now) - $t0" 1)"; break; fi
        awk -v a="$(now)" -v b="$t0" -v w="$MAIL_WAIT" 'BEGIN {exit !(a - b >= w)}' && break
        sleep 0.5
    done
    R[$S.mail_ok]="$delivered"
    R[$S.mail_acc]="$accepted"
    # wrk does not count the answers to the requests in flight when it stops (at most one
    # per connection), so a few more mails than counted signups may arrive: capped at 100%.
    R[$S.mail_pct]="$(div "$((100 * (delivered < accepted ? delivered : accepted)))" "$accepted" 0)"
    if [ -n "$waited" ]; then
        R[$S.mail_info]="all $accepted mails $waited s after the load (${R[$S.mail_during]} during it)"
    else
        R[$S.mail_info]="$delivered of $accepted mails after ${MAIL_WAIT} s (${R[$S.mail_during]} during the load)"
    fi
    echo "${R[$S.mail_info]}"

    say "[$S] 8. POST /v1/feedback with $FEEDBACK_BATCH soft bounces per request"
    local check
    check="$(curl -fsS -X POST -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' --data '[{"email":"u7@bench.example","kind":"soft_bounce"}]' "$BASE/v1/feedback")"
    case "$check" in *'"accepted":1'*) ;; *) die "unexpected feedback answer: $check" ;; esac
    run_wrk feedback "${WRK_ARGS[@]}" -s "$BENCH/feedback.lua" "$BASE/v1/feedback" -- "$API_KEY" "$CONTACTS" "$FEEDBACK_BATCH"
    R[$S.feedback_ok]="$(wrk_status feedback 200)"
    R[$S.feedback]="$(div "$((${R[$S.feedback_ok]} * FEEDBACK_BATCH))" "$(wrk_seconds feedback)" 0)"

    stop_pid "$OPTIN_PID"
    OPTIN_PID=""
    # After the stop, so that optin's log is complete.
    diagnostics >"$TMP/diag-$S.txt"
}

# The lines under the table for store $S, written while its files are at hand.
diagnostics() {
    local name
    name="$([ "$S" = e ] && echo embedded || echo Redis)"
    echo "-- $name"
    echo "import:           ${R[$S.import]}"
    # JSON lines: each warning or error, and the three most frequent messages.
    warn_lines() { grep -E '"level":"(WARN|ERROR)"' "$TMP/$S/optin.log" || true; }
    echo "optin log:        $(wc -l <"$TMP/$S/optin.log") lines, $(warn_lines | wc -l) warnings and errors$(warn_lines | grep -o '"message":"[^"]*"' | cut -c12- | sort | uniq -c | sort -rn | head -n 3 | awk '{$1 = $1 "×"; printf "%s %s", (NR == 1 ? ":" : ";"), $0}')"
    echo "latency (5):      ${R[$S.lat_method]}"
    echo "batch (3):        $(wrk_rps batch) requests/s; statuses $(wrk_statuses batch)"
    echo "concurrent (9):   ${R[$S.conc_info]}"
    echo "signups (4):      statuses $(wrk_statuses signups); ${R[$S.mail_info]}"
    echo "feedback (8):     statuses $(wrk_statuses feedback)"
    echo "non-2xx (wrk):    healthz $(wrk_non2xx healthz), eligibility $(wrk_non2xx elig), latency $(wrk_non2xx latency), batch $(wrk_non2xx batch), signups $(wrk_non2xx signups), feedback $(wrk_non2xx feedback)"
    echo "socket errors:    healthz $(wrk_errors healthz), eligibility $(wrk_errors elig), latency $(wrk_errors latency), batch $(wrk_errors batch), signups $(wrk_errors signups), feedback $(wrk_errors feedback)"
    echo "CPU µs/request:   healthz: $(cpu_per healthz "$(wrk_requests healthz)")"
    echo "                  eligibility: $(cpu_per elig "$(wrk_requests elig)")"
    echo "                  batch, per address: $(cpu_per batch "$((${R[$S.batch_ok]} * BATCH))")"
    echo "                  signup: $(cpu_per signups "$(wrk_requests signups)") (optin's includes the outbox worker)"
    echo "                  feedback, per item: $(cpu_per feedback "$((${R[$S.feedback_ok]} * FEEDBACK_BATCH))")"
    if [ "$S" = r ]; then
        echo "Redis commands:   eligibility: $(redis_top elig "$(wrk_requests elig)")"
        echo "                  signups: $(redis_top signups "$(wrk_requests signups)")"
        echo "                  feedback, per item: $(redis_top feedback "$((${R[$S.feedback_ok]} * FEEDBACK_BATCH))")"
        echo "sample contact:   ${R[r.sample]}"
    fi
}

# ---------------------------------------------------------------------------- inputs
awk -v n="$CONTACTS" 'BEGIN {for (i = 0; i < n; i++) printf "{\"email\":\"u%d@bench.example\",\"subscription_type\":\"blog-updates\",\"status\":\"opted_in\",\"lawful_basis\":\"consent\",\"consent_evidence\":\"bench\"}\n", i}' >"$TMP/import.ndjson"
mkdir -p "$TMP/import"
split -l 10000 -d -a 4 "$TMP/import.ndjson" "$TMP/import/part-"
# 10,000 of the loaded addresses, spread over them (repeated when fewer are loaded).
awk -v n="$BATCH" -v c="$CONTACTS" 'BEGIN {
    step = int(c / n); if (step < 1) step = 1
    printf "{\"subscription_type\":\"blog-updates\",\"emails\":["
    for (i = 0; i < n; i++) printf "%s\"u%d@bench.example\"", (i ? "," : ""), (i * step) % c
    printf "]}"
}' >"$TMP/batch.json"

# ---------------------------------------------------------------------------- measure
# One store after the other, never both at once.
measure_store e "$TMP/e/optin.redb"
measure_store r "redis://127.0.0.1:$REDIS_PORT"

# drain.sh and fanout.sh start their own optin processes on their own embedded stores.
say "6. Outbox drain (bench/drain.sh, $DRAIN_MAILS mails): mails/s to a local SMTP sink"
# In the background so that Ctrl-C or a TERM stops it at once (see cleanup).
OPTIN_BIN="$OPTIN" bash "$BENCH/drain.sh" >"$TMP/drain.txt" &
wait $!
cat "$TMP/drain.txt"
# "drain unsigned: 5000 mails in 3.57 s = 1,399 mails/s from …" → 1399
drain_rate() { sed -n "s/^drain $1: .* = \([0-9,]*\) mails\/s.*/\1/p" "$TMP/drain.txt" | tr -d ,; }
# "plain client to smtp-sink: 5000 mails in 0.68 s = 7,353 mails/s (…" → 7353
plain_rate() { sed -n "s/^plain client to $1: .* = \([0-9,]*\) mails\/s.*/\1/p" "$TMP/drain.txt" | tr -d ,; }

say "7. Webhook fan-out (bench/fanout.sh, $FANOUT_CHANGES changes): deliveries/s; writes with 3 endpoints / none; opt-ins with receipts / none"
OPTIN_BIN="$OPTIN" bash "$BENCH/fanout.sh" >"$TMP/fanout.txt" &
wait $!
cat "$TMP/fanout.txt"
# "fanout 3 endpoints: 9000 deliveries in 13.45 s = 669 deliveries/s from …" → 669
fanout_rate() { sed -n "s/^fanout $1 endpoints\{0,1\}: .* = \([0-9,]*\) deliveries\/s.*/\1/p" "$TMP/fanout.txt" | tr -d ,; }
# "write ratio put: 3 endpoints / none = 0.73 (546 / 749 changes/s, …" → 0.73, "546 / 749"
write_ratio() { sed -n "s/^write ratio $1: 3 endpoints \/ none = \([0-9.]*\) .*/\1/p" "$TMP/fanout.txt"; }
write_rates() { sed -n "s/^write ratio $1: .* (\([0-9,]*\) \/ \([0-9,]*\) .*/\1 \/ \2/p" "$TMP/fanout.txt" | tr -d ,; }

# ---------------------------------------------------------------------------- table
# "e A / r B" from two per-store cells; one side alone when the other is empty.
pair() {
    if [ -n "$1" ] && [ -n "$2" ]; then echo "e $1 / r $2"
    elif [ -n "$1" ]; then echo "e $1"
    elif [ -n "$2" ]; then echo "r $2"
    else echo "—"
    fi
}
# Padded to a width in characters (printf pads bytes, and "—", "≥" are several).
pad() {
    local LC_ALL=C.UTF-8
    local s="$1"
    printf '%s%*s' "$s" $(($2 - ${#s} > 0 ? $2 - ${#s} : 0)) ''
}
WIDTHS=(44 19 19 22 15 24 15)
row() {
    local i=0 line="|" c
    for c in "$@"; do
        line="$line $(pad "$c" "${WIDTHS[$i]}") |"
        i=$((i + 1))
    done
    echo "$line"
}
# 1315790 -> 1,315,790 (integers only; anything else as it is).
grp() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
# A figure with its unit, or "—" when there is none.
fig() { if [ -n "$1" ]; then echo "$(grp "$1")${2:-}"; else echo "—"; fi; }
# row for a measure whose ratio is value / ceiling on both stores, goal "op threshold"
ratio_row() {
    local label="$1" unit="$2" key="$3" ce="$4" cr="$5" op="$6" te="$7" tr="$8" goal="$9" re rr
    re="$(div "${R[e.$key]:-}" "$ce")"
    rr="$(div "${R[r.$key]:-}" "$cr")"
    local ceiling
    if [ "$ce" = "$cr" ]; then ceiling="$(fig "$ce" /s)"; else ceiling="$(pair "$(grp "$ce")" "$(grp "$cr")")"; fi
    row "$label" "$(fig "${R[e.$key]:-}" "$unit")" "$(fig "${R[r.$key]:-}" "$unit")" \
        "$ceiling" "$(pair "$re" "$rr")" "$goal" "$(pair "$(verdict "$re" "$op" "$te")" "$(verdict "$rr" "$op" "$tr")")"
}
version_of() { "$@" 2>/dev/null | head -n 1 || true; }
{
    echo
    echo "== Summary$([ "$QUICK" = 1 ] && echo " (BENCH_QUICK=1: proves the script works; do not read the figures)")"
    echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine:     nproc $(nproc), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); kernel $(uname -r)"
    echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at the end; includes this run)"
    echo "optin:       $OPTIN: $(version_of "$OPTIN" --version); script at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -n "${OPTIN_BIN:-}" ] && echo " (OPTIN_BIN: the binary may be of another commit)")"
    echo "tools:       $(version_of redis-server --version | awk '{print $1, $2, $3}'); $(version_of wrk -v | awk '{print $1, $2}'); $(version_of rustc --version)"
    echo "load shape:  wrk -t$THREADS -c$CONNECTIONS -d$DURATION (signups -d$SIGNUP_DURATION); $CONTACTS contacts per store; optin, redis-server and wrk share the same cores; one store at a time"
    echo
    row "measure" "embedded" "Redis" "ceiling" "ratio" "goal" "met"
    row "---" "---" "---" "---" "---" "---" "---" | tr ' ' -
    row "1 GET /healthz (the ceiling of 2, 4)" "$(fig "${R[e.healthz]:-}" /s)" "$(fig "${R[r.healthz]:-}" /s)" "—" "—" "—" "—"
    ratio_row "2 GET /v1/eligibility" /s elig "${R[e.healthz]:-}" "${R[r.healthz]:-}" '>=' 0.7 0.7 "≥ 0.7 of (1)"
    ratio_row "3 POST /v1/eligibility, $BATCH per call" " addr/s" batch "$REDIS_GET" "$REDIS_GET" '>=' 0.5 0.5 "≥ 0.5 of redis GET"
    ratio_row "4 POST /v1/signups, accepted" /s signups "${R[e.healthz]:-}" "${R[r.healthz]:-}" '>=' 0.2 0.3 "e ≥ 0.2 / r ≥ 0.3 of (1)"
    row "4 mails delivered / accepted within ${MAIL_WAIT} s" \
        "$(fig "${R[e.mail_ok]:-}" " of $(grp "${R[e.mail_acc]:-}")")" "$(fig "${R[r.mail_ok]:-}" " of $(grp "${R[r.mail_acc]:-}")")" "—" \
        "$(pair "${R[e.mail_pct]:+${R[e.mail_pct]}%}" "${R[r.mail_pct]:+${R[r.mail_pct]}%}")" "100% in 60 s" \
        "$(pair "$(verdict "${R[e.mail_pct]:-}" '>=' 100)" "$(verdict "${R[r.mail_pct]:-}" '>=' 100)")"
    row "5 GET /v1/eligibility at half of (2): p50" "$(fig "${R[e.p50]:-}" " ms")" "$(fig "${R[r.p50]:-}" " ms")" "—" "—" "—" "—"
    row "5   p99" "$(fig "${R[e.p99]:-}" " ms")" "$(fig "${R[r.p99]:-}" " ms")" "—" "—" "≤ 1 ms" \
        "$(pair "$(verdict "${R[e.p99]:-}" '<=' 1)" "$(verdict "${R[r.p99]:-}" '<=' 1)")"
    DRAIN_NONE="$(drain_rate unsigned)"
    row "6 outbox drain, unsigned (own store)" "$(fig "$DRAIN_NONE" " mails/s")" "—" "—" "—" "≥ 1,000 mails/s" "$(pair "$(verdict "$DRAIN_NONE" '>=' 1000)" "")"
    for label in RSA-2048 Ed25519; do
        d="$(drain_rate "$label")"
        row "6   DKIM $label" "$(fig "$d" " mails/s")" "—" "—" "—" "—" "—"
    done
    for sink in smtp-sink aiosmtpd; do
        d="$(drain_rate "unsigned to $sink")"
        c="$(plain_rate "$sink")"
        r="$(div "$d" "$c")"
        row "6 drain over SMTP to $sink (own store)" "$(fig "$d" " mails/s")" "—" "$(fig "$c" /s)" "$(pair "$r" "")" "≥ 0.5 of a plain client" "$(pair "$(verdict "$r" '>=' 0.5)" "")"
    done
    for n in 1 3; do
        f="$(fanout_rate "$n")"
        row "7 webhook fan-out, $n endpoint$([ "$n" = 1 ] || echo s) (own store)" "$(fig "$f" " deliv/s")" "—" "—" "—" "—" "—"
    done
    for via in put import signup; do
        w="$(write_ratio "$via")"
        rates="$(write_rates "$via")"
        row "7 $via writes, 3 endpoints / none" "$(fig "$rates" /s)" "—" "—" "$(pair "$w" "")" "≥ 0.8" "$(pair "$(verdict "$w" '>=' 0.8)" "")"
    done
    w="$(sed -n 's/^write ratio receipts: signed \/ none = \([0-9.]*\) .*/\1/p' "$TMP/fanout.txt")"
    row "7 put writes, receipts signed / none" "$(fig "$(write_rates receipts)" /s)" "—" "—" "$(pair "$w" "")" "—" "—"
    ratio_row "8 POST /v1/feedback, $FEEDBACK_BATCH per call" " items/s" feedback "${R[e.batch]:-}" "${R[r.batch]:-}" '>=' 0.3 0.3 "≥ 0.3 of (3)"
    row "9 $CONCURRENT concurrent batches: errors" "$(fig "${R[e.conc_err]:-}")" "$(fig "${R[r.conc_err]:-}")" "—" "—" "0 errors" \
        "$(pair "$(verdict "${R[e.conc_err]:-}" '<=' 0)" "$(verdict "${R[r.conc_err]:-}" '<=' 0)")"
    row "9   optin peak RSS (VmHWM)" "$(fig "${R[e.conc_mb]:-}" " MB")" "$(fig "${R[r.conc_mb]:-}" " MB")" "—" "—" "bounded" "—"
    row "10 Redis used_memory per contact" "—" "$(fig "${R[r.mem]:-}" " B")" "—" "—" "≤ 700 B" "$(pair "" "$(verdict "${R[r.mem]:-}" '<=' 700)")"
    echo
    echo "6, 7: bench/drain.sh and bench/fanout.sh, each on throw-away embedded stores of their own."
    echo "3: redis-benchmark -P 16 -t get -n $REDIS_BENCH_N on the private redis-server, while no optin ran."
    echo
    cat "$TMP/diag-e.txt" "$TMP/diag-r.txt"
    echo "-- 7 (embedded)"
    echo "writes:           3 endpoints / none: $(sed -n 's/^write ratio \([a-z]*\): .* (\(.*\), best of .*/\1 \2/p' "$TMP/fanout.txt" | paste -sd '|' | sed 's/|/; /g')"
} | tee "$TMP/summary.txt"
