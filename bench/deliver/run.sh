#!/usr/bin/env bash
# Delivery benchmark: Courier's git engine side by side with two git CLI pipelines doing
# the same job (deliver an export zip into design/tokens/ of a repository, purging it,
# one commit, push a branch) against the same repositories over smart HTTP on loopback
# (the test kit's server: git http-backend behind token auth).
#
#   hand-written: git clone --depth 1, unzip, rsync -a --delete into the path,
#                 git add -A, commit, push
#   expert:       git clone --depth 1 --filter=blob:none --sparse,
#                 sparse-checkout set the path, then the same
#   courier:      validate the zip (Export::open), plan (fetch into the bare cache,
#                 stream entries into blobs, build the tree), push
#
# Scenarios: cold (Courier with an empty cache; a new branch each run) and warm (the
# usual case: Courier's cache already holds the repository, whose base moved 3 commits
# on since; the head branch is rebuilt). The CLI pipelines have no cache: every run is
# a fresh clone, after the same 3 commits.
#
# Usage: bench/deliver/run.sh            env: RUNS (default 3), REPOS (default
#        "200 20000 100000"), EXPORTS (default "50:200000 2000:20000000 20000:200000000",
#        files:bytes). Reports median wall time, peak RSS (GNU time, max over the
#        pipeline's processes) and ratios to the hand-written pipeline.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}
repos=${REPOS:-"200 20000 100000"}
exports=${EXPORTS:-"50:200000 2000:20000000 20000:200000000"}
gnu_time=/usr/bin/time
for tool in "$gnu_time" git unzip rsync python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done

cargo build --release --locked -p courier-providers \
    --example deliver_bench_courier --example deliver_bench_server >&2
bin=$CARGO_TARGET_DIR/release/examples
work=$CARGO_TARGET_DIR/bench-deliver
fixtures="python3 $root/bench/deliver/fixtures.py"
mkdir -p "$work/repos" "$work/zips" "$work/home" "$work/tmp"
export HOME=$work/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.invalid
token=bench-token-$$

for n in $repos; do
    [ -d "$work/repos/r$n.git" ] || { echo "creating repository r$n ($n files)" >&2; $fixtures repo "$work/repos/r$n.git" "$n"; }
done
for e in $exports; do
    files=${e%:*} bytes=${e#*:}
    [ -f "$work/zips/e$files.zip" ] || { echo "creating export e$files" >&2; $fixtures zip "$work/zips/e$files.zip" "$files" "$bytes"; }
done

# The server runs until its stdin closes: a fifo this script holds open.
rm -f "$work/server.in" && mkfifo "$work/server.in"
"$bin/deliver_bench_server" "$work/repos" "$token" <"$work/server.in" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
exec 3>"$work/server.in"
trap 'exec 3>&-; kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q READY "$work/server.out" 2>/dev/null && break; sleep 0.1; done
base_url=$(awk '/READY/ {print $2}' "$work/server.out")
auth_url=${base_url/http:\/\//http://bot:$token@}

# One pipeline run in a fresh directory; prints "wall_s rss_kb".
cli() { # MODE URL ZIP BRANCH DIR
    local mode=$1 url=$2 zip=$3 branch=$4 d=$5
    if [ "$mode" = hand ]; then
        git clone -q --depth 1 --branch main "$url" "$d/wt"
    else
        git clone -q --depth 1 --filter=blob:none --sparse --branch main "$url" "$d/wt"
        git -C "$d/wt" sparse-checkout set design/tokens
    fi
    mkdir -p "$d/x" "$d/wt/design/tokens"
    unzip -q "$zip" -d "$d/x"
    rsync -a --delete "$d/x/" "$d/wt/design/tokens/"
    git -C "$d/wt" add -A
    git -C "$d/wt" commit -q -m "Benchmark delivery"
    git -C "$d/wt" push -q origin "+HEAD:refs/heads/$branch"
}
export -f cli

measure() { # OUTFILE CMD...
    local out=$1; shift
    "$gnu_time" -f '%e %M' -o "$work/last.time" "$@" >/dev/null 2>"$work/last.err" \
        || { cat "$work/last.err" >&2; exit 1; }
    cat "$work/last.time" >>"$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

results=$work/results.txt
printf '%-7s %-7s %-5s %-8s %9s %9s %7s\n' repo export cache tool "median s" "RSS MB" "x hand" | tee "$results"
for n in $repos; do
    repo=r$n
    for e in $exports; do
        files=${e%:*}
        zip=$work/zips/e$files.zip
        for scenario in cold warm; do
            rm -f "$work"/*.runs
            cache=$work/cache-$repo-e$files
            if [ "$scenario" = warm ]; then
                rm -rf "$cache"
                "$bin/deliver_bench_courier" "$cache" "$base_url$repo.git" "$token" main "courier/warm-e$files" design/tokens "$zip" >/dev/null
            fi
            for i in $(seq "$runs"); do
                tag=$scenario-e$files-$i-$$
                if [ "$scenario" = warm ]; then $fixtures advance "$work/repos/$repo.git" 3; fi
                for mode in hand expert; do
                    d=$(mktemp -d "$work/tmp/XXXX")
                    measure "$work/$mode.runs" bash -c 'cli "$@"' _ "$mode" "$auth_url$repo.git" "$zip" "$mode/$tag" "$d"
                    rm -rf "$d"
                done
                if [ "$scenario" = cold ]; then
                    rm -rf "$cache"
                    head=courier/$tag
                else
                    head=courier/warm-e$files
                fi
                measure "$work/courier.runs" "$bin/deliver_bench_courier" "$cache" "$base_url$repo.git" "$token" main "$head" design/tokens "$zip"
            done
            hand=$(cut -d' ' -f1 "$work/hand.runs" | median)
            for tool in hand expert courier; do
                wall=$(cut -d' ' -f1 "$work/$tool.runs" | median)
                rss=$(cut -d' ' -f2 "$work/$tool.runs" | sort -n | tail -1)
                printf '%-7s %-7s %-5s %-8s %9.2f %9.1f %7.2f\n' "$n" "$files" "$scenario" "$tool" \
                    "$wall" "$(awk "BEGIN {print $rss / 1024}")" "$(awk "BEGIN {print $wall / $hand}")" | tee -a "$results"
            done
        done
    done
done
echo "results: $results" >&2
