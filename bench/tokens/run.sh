#!/usr/bin/env bash
# Token-diff benchmark: how long comparing the tokens of a delivery takes, and its share
# of the whole delivery, measured through the release `courier deliver --json` (its
# per-phase timings: `tokens` against `total`), on a repository whose design/tokens/
# already holds the previous version of a 2,000-file export.
#
#   usual: 10% of the files change 6 tokens each, 2% are new, 2% are gone
#   all:   every file changes every token (the worst case: 4,000 files read)
#
# Each shape runs cold (empty cache: the repository is fetched whole) and warm (the
# cache holds it: the usual case of a server), RUNS times, alternated. The remote is a
# file:// bare repository, so the delivery itself is as fast as it can be and the token
# share is an upper bound of what a network remote would show.
#
# Usage: bench/tokens/run.sh     env: RUNS (default 3), FILES (default 2000)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}
files=${FILES:-2000}
gnu_time=/usr/bin/time
for tool in "$gnu_time" git python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done

cargo build --release --locked -p courier >&2
courier=$CARGO_TARGET_DIR/release/courier
work=$CARGO_TARGET_DIR/bench-tokens
fixtures="python3 $root/bench/tokens/fixtures.py"
mkdir -p "$work"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
[ -d "$work/r$files.git" ] || { echo "creating repository ($files token files)" >&2; $fixtures repo "$work/r$files.git" "$files"; }
for shape in usual all; do
    [ -f "$work/e$files-$shape.zip" ] || { echo "creating export ($shape)" >&2; $fixtures zip "$work/e$files-$shape.zip" "$files" "$shape"; }
done

cat >"$work/courier.yaml" <<YAML
data_dir: ./data
connections:
  local: { kind: git }
hooks:
  - match: any
    targets:
      - connection: local
        repository: file://$work/r$files.git
        branch: main
        relative_path: design/tokens
        purge_directory: true
        head_branch: "bench/{{ job.id }}"
YAML

# One delivery of job ID; prints "wall_s rss_kb tokens_ms total_ms changes".
deliver() { # SHAPE ID
    sed "s/\"id\": \"6\"/\"id\": \"$2\"/" "$root/tests/fixtures/payloads/v2-seed.json" >"$work/event.json"
    "$gnu_time" -f '%e %M' -o "$work/last.time" "$courier" deliver --json \
        --config "$work/courier.yaml" --payload "$work/event.json" \
        --artifact "$work/e$files-$1.zip" >"$work/last.json" 2>"$work/last.err" \
        || { cat "$work/last.err" "$work/last.json" >&2; exit 1; }
    python3 - "$work/last.json" "$(cat "$work/last.time")" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
target = report["targets"][0]
assert target["action"] == "push", target["action"]
t = target["timings"]
tokens = target.get("tokens", {})
n = sum(tokens.get(k, 0) for k in ("changed", "added", "removed", "renamed"))
print(sys.argv[2], t.get("tokens", 0), report.get("timings", {}).get("total", t["total"]), n)
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-6s %-5s %9s %9s %10s %7s %8s %8s\n' shape cache "wall s" "total ms" "tokens ms" share changes "RSS MB"
id=$(( $$ * 1000 ))
for shape in usual all; do
    for cache in cold warm; do
        rm -f "$work"/*.runs
        [ "$cache" = warm ] && { rm -rf "$work/data"; id=$((id + 1)); deliver "$shape" "$id" >/dev/null; }
        for _ in $(seq "$runs"); do
            [ "$cache" = cold ] && rm -rf "$work/data"
            id=$((id + 1))
            deliver "$shape" "$id" >>"$work/$shape-$cache.runs"
        done
        f=$work/$shape-$cache.runs
        wall=$(cut -d' ' -f1 "$f" | median)
        rss=$(cut -d' ' -f2 "$f" | sort -n | tail -1)
        tok=$(cut -d' ' -f3 "$f" | median)
        total=$(cut -d' ' -f4 "$f" | median)
        changes=$(cut -d' ' -f5 "$f" | head -1)
        share=$(awk -v a="$tok" -v b="$total" 'BEGIN { printf "%.1f%%", b ? 100 * a / b : 0 }')
        printf '%-6s %-5s %9s %9s %10s %7s %8s %8d\n' "$shape" "$cache" "$wall" "$total" "$tok" "$share" "$changes" $((rss / 1024))
    done
done
