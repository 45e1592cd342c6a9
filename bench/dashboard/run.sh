#!/bin/sh
# The dashboard's pages with 100,000 deliveries in the store, on SQLite and PostgreSQL:
# the server's own time per page (Server-Timing), median and p95. See bench.py for what is
# stored and asked; docs/benchmarks.md keeps the figures.
#
# Usage (from the workspace root):
#   CARGO_TARGET_DIR=$PWD/target bench/dashboard/run.sh [--deliveries N] [--runs N]
#   COURIER_BIN=target/debug/courier bench/dashboard/run.sh --backends sqlite
# Without COURIER_BIN the release binary is built first. Needs PostgreSQL's server
# binaries (/usr/lib/postgresql/*/bin or COURIER_PG_BIN) and python3; as root, the
# `postgres` system user (PostgreSQL refuses to run as root).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${COURIER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --release -p courier --bin courier
  bin=$target/release/courier
fi
exec python3 "$root/bench/dashboard/bench.py" --courier "$bin" "$@"
