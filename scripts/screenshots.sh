#!/usr/bin/env bash
# Refreshes the dashboard's screenshots in docs/screenshots/ (sign-in, deliveries, a
# delivery, a job, the routes; desktop and phone width) by running its browser test with
# COURIER_SCREENSHOTS=1, which alone lets the test write them. Commit what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null COURIER_SCREENSHOTS=1
cargo nextest run --locked -p courier --test browser "$@" every_page_is_accessible
ls -l docs/screenshots/
