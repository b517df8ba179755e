# shellcheck shell=bash
# Sourced by bench/drain.sh and bench/fanout.sh: sets BIN to the optin binary to measure,
# $OPTIN_BIN when given, else the release build (built first; honours CARGO_TARGET_DIR).
# Expects ROOT (the repository) and NAME (the calling script, for messages).
command -v python3 >/dev/null || { echo "$NAME: python3 is missing" >&2; exit 1; }
BIN="${OPTIN_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release --locked >&2
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    BIN="$TARGET_DIR/release/optin"
fi
[ -x "$BIN" ] || { echo "$NAME: no binary at $BIN" >&2; exit 1; }
