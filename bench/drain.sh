#!/usr/bin/env bash
# Outbox drain benchmark: mails per second from a full outbox to a local SMTP sink,
# unsigned and DKIM-signed with RSA-2048 and with Ed25519 (see bench/drain.py for how).
#
#   bench/drain.sh                 # builds the release binary first; honours CARGO_TARGET_DIR
#   OPTIN_BIN=path bench/drain.sh  # an existing binary, no build
#
# Knobs: DRAIN_MAILS (5000), DRAIN_WORKERS (4), DRAIN_KEEP=1 keeps the temp dir.
# Needs only python3 (standard library). Goal for unsigned mail: >= 1,000 mails/s.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v python3 >/dev/null || { echo "drain.sh: python3 is missing" >&2; exit 1; }
BIN="${OPTIN_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release --locked >&2
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    BIN="$TARGET_DIR/release/optin"
fi
[ -x "$BIN" ] || { echo "drain.sh: no binary at $BIN" >&2; exit 1; }
for dkim in none rsa ed25519; do
    python3 bench/drain.py --bin "$BIN" --mails "${DRAIN_MAILS:-5000}" \
        --workers "${DRAIN_WORKERS:-4}" --dkim "$dkim"
done
