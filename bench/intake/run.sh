#!/bin/sh
# Webhook intake throughput: `courier serve` (token check, parse, route, durable SQLite
# commit through the group-commit writer) against a bare axum handler answering 202.
# Every request is a distinct job. Usage (from the workspace root):
#   CARGO_TARGET_DIR=$PWD/target bench/intake/run.sh [SECONDS] [CONNECTIONS]
set -eu
seconds=${1:-20}
connections=${2:-64}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
"$root/scripts/install-deps.sh" wrk
cargo build --quiet --release -p courier --bin courier --example bare_intake
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
export BENCH_TOKEN=bench-webhook-token-0123456789

# Routed: every job gets a delivery, and the worker fails it at once (the artifact host
# is not allowed), so claims and finishes compete with intake for the write lock.
cat >"$work/courier.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: ./data
workers: 1
webhook: { tokens: ["$BENCH_TOKEN"] }
connections:
  git: { kind: git }
hooks:
  - match: { hook_id: "5" }
    targets:
      - connection: git
        repository: https://git.example.invalid/web.git
        branch: main
YAML
# Recorded only: the same durable insert of each job, no delivery, an idle worker.
sed 's/hook_id: "5"/hook_id: "no-such-hook"/' "$work/courier.yaml" >"$work/record-only.yaml"

# Starts "$@" with stdout to $work/out and sets $addr from its `listening on` line.
start() {
  : >"$work/out"
  "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$work/out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "no address from $*" >&2; cat "$work/err" >&2; exit 1
}

bench() {
  # A short warm-up (connections, SQLite pages), then the measured run.
  wrk -t2 -c"$connections" -d3s -s "$root/bench/intake/post.lua" "http://$addr/webhooks/supernova" >/dev/null
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$root/bench/intake/post.lua" \
    "http://$addr/webhooks/supernova"
}

echo "== bare axum handler (202, nothing else)"
start "$target/release/examples/bare_intake"
bench
kill $pid; wait $pid 2>/dev/null || true

for config in courier record-only; do
  echo "== courier serve, $config (SQLite, synchronous=FULL, group commit)"
  rm -rf "$work/data"
  start "$target/release/courier" serve --config "$work/$config.yaml"
  bench
  curl -s "http://$addr/metrics" | grep '^courier_webhooks_total'
  kill -TERM $pid; wait $pid 2>/dev/null || true
  ls -l "$work/data/courier.db"
done
