#!/bin/sh
# A burst of distinct jobs, each delivered exactly once: `courier serve` (SQLite) takes N
# webhooks as fast as 64 connections send them, then delivers every job to its own
# branch of one of REPOS local bare repositories (job i goes to hook i mod REPOS, whose
# target is repository i mod REPOS); bench/intake/burst.py checks the outcome.
# Usage (from the workspace root):
#   CARGO_TARGET_DIR=$PWD/target bench/intake/burst.sh [JOBS] [CONNECTIONS] [WORKERS] [REPOS]
set -eu
jobs=${1:-10000}
connections=${2:-64}
workers=${3:-4}
repos=${4:-100}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p courier --bin courier
work=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; rm -rf "$work"' EXIT
token=bench-webhook-token-0123456789

# The repositories the jobs are delivered to, each with a first commit on its base
# branch: jobs are spread over them as a platform's hooks spread over projects (ten
# thousand branches in one repository would measure ref listing, not Courier).
git -C "$work" init -q --initial-branch=main seed
printf '# web\n' >"$work/seed/README.md"
git -C "$work/seed" add README.md
git -C "$work/seed" -c user.name=Bench -c user.email=bench@example.invalid commit -qm init
mkdir -p "$work/repos"
for r in $(seq 0 $((repos - 1))); do
  git init -q --bare --initial-branch=main "$work/repos/r$r.git"
  git -C "$work/seed" push -q "$work/repos/r$r.git" HEAD:main
done

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
YAML
for r in $(seq 0 $((repos - 1))); do
  cat >>"$work/courier.yaml" <<YAML
  - match: { hook_id: "h$r" }
    targets:
      - connection: local
        repository: ./repos/r$r.git
        branch: main
        relative_path: tokens
        # One branch per job, so that no job supersedes another: each is delivered.
        head_branch: "courier/{{ job.id }}"
YAML
done

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
  "$work/data/courier.db" "$work/repos" "$jobs" "$connections" "$repos"
curl -s "http://$addr/metrics" | grep -E '^courier_(webhooks_total|deliveries_total|delivery_attempts_total)'
echo "courier serve CPU time: $(ps -o cputime= -p "$courier"), peak RSS: $(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$courier/status")"
