#!/usr/bin/env bash
# Backup and restore rates, and their peak memory, on both stores (embedded redb and Redis).
#
#   bench/backup.sh                           # builds the release binary (honours CARGO_TARGET_DIR)
#   OPTIN_BIN=path/to/optin bench/backup.sh   # measures that binary, no build
#   BENCH_CONTACTS=3000 bench/backup.sh       # a quick run (default 100,000 contacts)
#
# Per store: loads the contacts through POST /v1/imports (as bench/run.sh does), then
#   1. GET /v1/backup from the running service (contacts/s);
#   2. `optin backup` with the service stopped (contacts/s, peak RSS, dump size);
#   3. `optin verify` of the store (contacts/s, peak RSS);
#   4. `optin restore` of that dump into an empty store of the same kind (contacts/s,
#      peak RSS), and `optin verify` of the restored store (0 chains broken).
# Peak RSS is the "Maximum resident set size" of GNU time. Only 127.0.0.1 is contacted
# (apart from apt-get when a tool is missing); what it starts is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTACTS="${BENCH_CONTACTS:-100000}"

say() { printf '\n== [%s] %s\n' "$(date -u +%T)" "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/optin-backup-bench.XXXXXX")"
REDIS_PID=""
OPTIN_PID=""
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
    local status=$?
    trap - EXIT INT TERM
    stop_pid "$OPTIN_PID"
    stop_pid "$REDIS_PID"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $TMP"; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/bin/time ] || missing+=(time)
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cd "$ROOT"
if [ -n "${OPTIN_BIN:-}" ]; then
    OPTIN="$(cd "$(dirname "$OPTIN_BIN")" && pwd)/$(basename "$OPTIN_BIN")"
else
    say "building the release binary"
    cargo build --release --locked
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    OPTIN="$TARGET_DIR/release/optin"
fi
[ -x "$OPTIN" ] || die "no binary at $OPTIN"

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
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$TMP" --daemonize no --logfile "$TMP/redis.log" &
REDIS_PID=$!
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
for _ in $(seq 1 100); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server did not start"

ADMIN_OUT="$("$OPTIN" keys new --scope admin --name bench)"
ADMIN_KEY="$(printf '%s\n' "$ADMIN_OUT" | sed -n 's/^API key[^:]*: //p')"
ADMIN_ENTRY="$(printf '%s\n' "$ADMIN_OUT" | sed -n 's/^Add this entry[^:]*: //p')"
BACKUP_OUT="$("$OPTIN" keys new --scope backup --name bench-backup)"
BACKUP_KEY="$(printf '%s\n' "$BACKUP_OUT" | sed -n 's/^API key[^:]*: //p')"
BACKUP_ENTRY="$(printf '%s\n' "$BACKUP_OUT" | sed -n 's/^Add this entry[^:]*: //p')"
SIGNING="bench:$(head -c32 /dev/urandom | base64)"
INDEX="$(head -c32 /dev/urandom | base64)"

awk -v n="$CONTACTS" 'BEGIN {for (i = 0; i < n; i++) printf "{\"email\":\"u%d@bench.example\",\"subscription_type\":\"blog-updates\",\"status\":\"opted_in\",\"lawful_basis\":\"consent\",\"consent_evidence\":\"bench\"}\n", i}' >"$TMP/import.ndjson"
mkdir -p "$TMP/import"
split -l 10000 -d -a 4 "$TMP/import.ndjson" "$TMP/import/part-"

# write_config STORE_URL PORT FILE
write_config() {
    cat >"$3" <<EOF
[log]
format = "text"
filter = "warn"
[server]
bind = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$2"
[store]
url = "$1"
[mail]
url = "file://$TMP/mail"
[security]
signing_keys = ["$SIGNING"]
index_key = "$INDEX"
api_keys = ["$ADMIN_ENTRY", "$BACKUP_ENTRY"]
[signup]
check_mx = false

EOF
    cat "$ROOT/src/example_subscription_types.toml" >>"$3"
}

# run NAME COMMAND...: runs an optin command under GNU time; keeps its seconds and peak
# RSS in $TMP/NAME.time.
run() {
    local name="$1"
    shift
    (
        unset RUST_LOG
        for var in $(compgen -e OPTIN_); do unset "$var"; done
        /usr/bin/time -f '%e %M' -o "$TMP/$name.time" "$@"
    ) >"$TMP/$name.out" 2>"$TMP/$name.err" || { cat "$TMP/$name.out" "$TMP/$name.err" >&2; die "$name failed"; }
    cat "$TMP/$name.out"
}
seconds() { awk '{print $1}' "$TMP/$1.time"; }
peak_mib() { awk '{printf "%.0f", $2 / 1024}' "$TMP/$1.time"; }
rate() { awk -v n="$CONTACTS" -v s="$1" 'BEGIN {printf "%.0f", (s > 0) ? n / s : 0}'; }

declare -A R
measure() {
    local S="$1" url="$2" target="$3" port config t0 t1
    mkdir -p "$TMP/$S" "$TMP/mail"
    port="$(free_port)" || die "no free port"
    config="$TMP/$S/optin.toml"
    write_config "$url" "$port" "$config"
    say "[$S] starting optin on $url and loading $CONTACTS contacts"
    (
        cd "$TMP/$S"
        unset RUST_LOG
        for var in $(compgen -e OPTIN_); do unset "$var"; done
        exec "$OPTIN" serve --config "$config"
    ) >"$TMP/$S/optin.log" 2>&1 &
    OPTIN_PID=$!
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
        sleep 0.1
    done
    find "$TMP/import" -name 'part-*' ! -name '*.out' -print0 | sort -z | xargs -0 -P 4 -I{} \
        curl -sS --fail -X POST -H "Authorization: Bearer $ADMIN_KEY" -H "Content-Type: application/x-ndjson" \
        --data-binary @{} "http://127.0.0.1:$port/v1/imports" -o /dev/null

    say "[$S] 1. GET /v1/backup from the running service"
    t0="$(date +%s.%N)"
    curl -sS --fail -H "Authorization: Bearer $BACKUP_KEY" "http://127.0.0.1:$port/v1/backup" -o "$TMP/$S/online.optin.zst"
    t1="$(date +%s.%N)"
    R[$S.http]="$(rate "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")"
    stop_pid "$OPTIN_PID"
    OPTIN_PID=""

    say "[$S] 2. optin backup (service stopped)"
    run "$S-backup" "$OPTIN" backup --config "$config" --to "$TMP/$S/dump.optin.zst"
    R[$S.backup]="$(rate "$(seconds "$S-backup")") contacts/s, peak $(peak_mib "$S-backup") MiB"
    R[$S.size]="$(stat -c %s "$TMP/$S/dump.optin.zst")"

    say "[$S] 3. optin verify of the store"
    run "$S-verify" "$OPTIN" verify --config "$config"
    R[$S.verify]="$(rate "$(seconds "$S-verify")") contacts/s, peak $(peak_mib "$S-verify") MiB"

    say "[$S] 4. optin restore into an empty store"
    if [ "$S" = redis ]; then rcli flushall >/dev/null; fi
    local restore_config="$TMP/$S/restore.toml"
    write_config "$target" "$port" "$restore_config"
    run "$S-restore" "$OPTIN" restore --config "$restore_config" --from "$TMP/$S/dump.optin.zst"
    R[$S.restore]="$(rate "$(seconds "$S-restore")") contacts/s, peak $(peak_mib "$S-restore") MiB"
    run "$S-verify-restored" "$OPTIN" verify --config "$restore_config"
    grep -q " 0 chains broken" "$TMP/$S-verify-restored.out" || die "the restored store does not verify"
}

measure embedded "$TMP/embedded/optin.redb" "$TMP/embedded/restored.redb"
measure redis "redis://127.0.0.1:$REDIS_PORT" "redis://127.0.0.1:$REDIS_PORT"

say "results ($CONTACTS contacts, one opted-in type and one event each; $(nproc) cores shared by optin, redis-server and curl)"
for S in embedded redis; do
    echo "$S:"
    echo "  GET /v1/backup (service running): ${R[$S.http]} contacts/s"
    echo "  optin backup:                     ${R[$S.backup]}; dump $(awk -v b="${R[$S.size]}" -v n="$CONTACTS" 'BEGIN {printf "%.1f MB, %.0f B per contact", b / 1e6, b / n}')"
    echo "  optin verify:                     ${R[$S.verify]}"
    echo "  optin restore (empty store):      ${R[$S.restore]}"
done
