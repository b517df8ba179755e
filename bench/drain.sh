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
NAME=drain.sh
. "$ROOT/bench/optin_bin.sh"
for dkim in none rsa ed25519; do
    python3 bench/drain.py --bin "$BIN" --mails "${DRAIN_MAILS:-5000}" \
        --workers "${DRAIN_WORKERS:-4}" --dkim "$dkim"
done
