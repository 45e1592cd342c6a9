#!/bin/sh
# A burst of distinct jobs, each delivered exactly once: `courier serve` (SQLite) takes N
# webhooks as fast as 64 connections send them, then delivers every job to its own
# branch of a local bare repository; bench/intake/burst.py checks the outcome.
# Usage (from the workspace root):
#   CARGO_TARGET_DIR=$PWD/target bench/intake/burst.sh [JOBS] [CONNECTIONS] [WORKERS]
set -eu
jobs=${1:-10000}
connections=${2:-64}
workers=${3:-4}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p courier --bin courier
work=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; rm -rf "$work"' EXIT
token=bench-webhook-token-0123456789

# The repository every job is delivered to, with a first commit on its base branch.
git init -q --bare --initial-branch=main "$work/remote.git"
git -C "$work" init -q --initial-branch=main seed
printf '# web\n' >"$work/seed/README.md"
git -C "$work/seed" add README.md
git -C "$work/seed" -c user.name=Bench -c user.email=bench@example.invalid commit -qm init
git -C "$work/seed" push -q "$work/remote.git" HEAD:main

# The export, served on loopback as the platform's signed URL would be.
mkdir -p "$work/www"
(cd "$root/deploy/examples/sample-export" && zip -qr "$work/www/result.zip" .)
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" 0 >"$work/www.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 50); do
  www=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/www.log" | head -1)
  [ -n "$www" ] && break
  sleep 0.1
done

cat >"$work/courier.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: ./data
workers: $workers
webhook: { tokens: ["$token"] }
platform:
  download_hosts: ["127.0.0.1"]
  insecure_hosts: ["127.0.0.1"]
connections:
  local: { kind: git }
hooks:
  - match: { hook_id: "5" }
    targets:
      - connection: local
        repository: ./remote.git
        branch: main
        relative_path: tokens
        # One branch per job, so that no job supersedes another: each is delivered.
        head_branch: "courier/{{ job.id }}"
YAML

cd "$work"
"$target/release/courier" serve --config courier.yaml >"$work/out" 2>"$work/err" &
courier=$!
pids="$pids $courier"
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$work/out")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/err" >&2; exit 1; }

python3 "$root/bench/intake/burst.py" "$addr" "$token" "http://127.0.0.1:$www/result.zip" \
  "$work/data/courier.db" "$work/remote.git" "$jobs" "$connections"
curl -s "http://$addr/metrics" | grep -E '^courier_(webhooks_total|deliveries_total|delivery_attempts_total)'
echo "courier serve CPU time: $(ps -o cputime= -p "$courier"), peak RSS: $(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$courier/status")"
