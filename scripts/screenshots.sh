#!/usr/bin/env bash
# Takes the pictures in docs/images/ (signup.png, preferences.png, console-contact.png),
# 1280 px wide, in English, from the real service in headless Chromium: the ignored test
# `docs_screenshots` in tests/browser_console.rs, which uses tests/support/browser.rs like
# the browser tests. Needs chromium and chromium-driver (Debian packages). Not part of CI.
#
#   bash scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test browser_console -- --ignored --exact docs_screenshots
ls -l docs/images/signup.png docs/images/preferences.png docs/images/console-contact.png
