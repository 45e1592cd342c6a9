#!/bin/sh
# Throughput of 1, 2 and 3 `courier serve` replicas on one PostgreSQL: webhook intake
# (requests answered per second) and deliveries finished per second. See driver.py for
# what each phase does, and docs/benchmarks.md for figures.
#
# Installs wrk for the intake phase if missing. Usage (from the workspace root):
#   CARGO_TARGET_DIR=$PWD/target bench/replicas/run.sh [driver options]
#   COURIER_BIN=target/debug/courier bench/replicas/run.sh --replicas 1,2,3
# Without COURIER_BIN the release binary is built first. Needs PostgreSQL's server
# binaries (/usr/lib/postgresql/*/bin or COURIER_PG_BIN), git and python3; as root, the
# `postgres` system user (PostgreSQL refuses to run as root).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${COURIER_BIN:-}
"$root/scripts/install-deps.sh" wrk
if [ -z "$bin" ]; then
  cargo build --quiet --release -p courier --bin courier
  bin=$target/release/courier
fi
exec python3 "$root/bench/replicas/driver.py" --courier "$bin" \
  --seed "$root/tests/fixtures/payloads/v1-seed.json" "$@"
