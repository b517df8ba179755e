#!/usr/bin/env bash
# Outbox drain benchmark: mails per second from a full outbox to a local SMTP sink,
# unsigned and DKIM-signed with RSA-2048 and with Ed25519 (see bench/drain.py for how),
# then unsigned to two real mail servers, each beside what it takes from one plain SMTP
# client (Postfix's smtp-source with as many sessions as optin has mail workers):
# Postfix's smtp-sink (fast) and aiosmtpd (slow).
#
#   bench/drain.sh                 # builds the release binary first; honours CARGO_TARGET_DIR
#   OPTIN_BIN=path bench/drain.sh  # an existing binary, no build
#
# Knobs: DRAIN_MAILS (5000), DRAIN_WORKERS (4), DRAIN_KEEP=1 keeps the temp dir.
# Needs python3, Postfix's smtp-sink and smtp-source (package postfix) and Debian's
# python3-aiosmtpd. Goal for unsigned mail: >= 1,000 mails/s; over SMTP, >= 0.5 of what
# the sink takes from the plain client.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME=drain.sh
. "$ROOT/bench/optin_bin.sh"
MAILS="${DRAIN_MAILS:-5000}"
WORKERS="${DRAIN_WORKERS:-4}"

missing=()
{ command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null; } || missing+=(postfix)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for dkim in none rsa ed25519; do
    python3 bench/drain.py --bin "$BIN" --mails "$MAILS" --workers "$WORKERS" --dkim "$dkim"
done

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for sink in smtp-sink aiosmtpd; do
    p="$(port)"
    if [ "$sink" = smtp-sink ]; then
        smtp-sink -u "$(id -un)" "127.0.0.1:$p" 256 >/dev/null 2>&1 &
    else
        /usr/bin/python3 bench/aiosmtpd_sink.py "$p" >/dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.05; done
    start="$(date +%s.%N)"
    smtp-source -s "$WORKERS" -m "$MAILS" -l 1000 -f bench@bench.example -t to@bench.example "127.0.0.1:$p"
    end="$(date +%s.%N)"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    awk -v n="$MAILS" -v a="$start" -v b="$end" -v s="$sink" -v w="$WORKERS" \
        'BEGIN {printf "plain client to %s: %d mails in %.2f s = %.0f mails/s (smtp-source, %d sessions)\n", s, n, b - a, n / (b - a), w}'
    python3 bench/drain.py --bin "$BIN" --mails "$MAILS" --workers "$WORKERS" --sink "$sink"
done
