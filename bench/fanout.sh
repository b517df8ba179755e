#!/usr/bin/env bash
# Webhook fan-out benchmark (issue 11): deliveries per second from a full outbox to a
# local HTTP receiver that answers 204 at once, with 1 and with 3 endpoints; and write
# throughput with 3 endpoints configured against none, for admin changes (PUT), imports
# and signups (see bench/fanout.py for how).
#
#   bench/fanout.sh                 # builds the release binary first; honours CARGO_TARGET_DIR
#   OPTIN_BIN=path bench/fanout.sh  # an existing binary, no build
#
# Knobs: FANOUT_CHANGES (3000), FANOUT_REPEAT (2: runs of each write case, best taken),
# FANOUT_WORKERS (4), FANOUT_VIA (put,import,signup), FANOUT_KEEP=1 keeps the temp dirs.
# Needs only python3 (standard library). Goal: writes with 3 endpoints >= 0.8 of none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME=fanout.sh
. "$ROOT/bench/optin_bin.sh"
python3 bench/fanout.py --bin "$BIN" --changes "${FANOUT_CHANGES:-3000}" \
    --repeat "${FANOUT_REPEAT:-2}" --workers "${FANOUT_WORKERS:-4}" \
    --via "${FANOUT_VIA:-put,import,signup}"
