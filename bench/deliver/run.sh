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
#   courier:      the release `courier deliver --artifact ZIP --json` binary, the whole
#                 process: load the configuration, validate the zip, fetch into the bare
#                 cache, stream entries into blobs, build the tree, compare the tokens,
#                 push. Its per-phase timings are kept in courier.json.
#   serve:        the same delivery through `courier serve` (serve.py): from the webhook
#                 POST to the branch moved on the server, the artifact downloaded over
#                 HTTP on loopback; the server's start is not timed. SERVE=0 leaves it out.
#
# Shapes: fresh (design/tokens/ holds 30 unrelated files: the whole export is new) and
# held (design/tokens/ already holds an earlier version of the export: 10% of the files
# differ, 2% are new, 2% are gone), the usual case after the first delivery.
# Scenarios: cold (Courier with an empty cache; a new branch each run) and warm (the
# usual case: Courier's cache already holds the repository, whose base moved 3 commits
# on since; the head branch is rebuilt). The CLI pipelines have no cache: every run is
# a fresh clone, after the same 3 commits.
#
# Usage: bench/deliver/run.sh            env: RUNS (default 3), REPOS (default
#        "200 20000 100000"), EXPORTS (default "50:200000 2000:20000000 20000:200000000",
#        files:bytes), SHAPES (default "fresh held"), BENCH_DIR (default: on tmpfs,
#        /dev/shm/courier-bench-deliver). Reports median wall time (to the ms), peak RSS
#        (GNU time, max over the pipeline's processes) and ratios to the hand-written
#        pipeline.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}
repos=${REPOS:-"200 20000 100000"}
exports=${EXPORTS:-"50:200000 2000:20000000 20000:200000000"}
shapes=${SHAPES:-"fresh held"}
gnu_time=/usr/bin/time
for tool in "$gnu_time" git unzip rsync python3; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done

cargo build --release --locked -p courier >&2
cargo build --release --locked -p courier-providers --example deliver_bench_server >&2
bin=$CARGO_TARGET_DIR/release/examples
courier=$CARGO_TARGET_DIR/release/courier
# Everything (served repositories, Courier's caches, the CLI's clones) on tmpfs, as the
# issue that defined these figures measured them: on disk, the git CLI's fsyncs wait for
# the writeback of a 20,000-file checkout, and the same hand-written run took 3 s or 20 s
# depending on the disk's state. BENCH_DIR puts it elsewhere.
if [ -z "${BENCH_DIR:-}" ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    BENCH_DIR=/dev/shm/courier-bench-deliver
fi
work=${BENCH_DIR:-$CARGO_TARGET_DIR/bench-deliver}
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
    case " $shapes " in *" held "*)
        for n in $repos; do
            [ -d "$work/repos/r$n-e$files.git" ] || { echo "creating repository r$n-e$files (r$n holding e$files)" >&2; $fixtures held "$work/repos/r$n.git" "$work/repos/r$n-e$files.git" "$work/zips/e$files.zip"; }
        done
    esac
done

# No automatic gc on the served repositories: every pipeline's push would otherwise make
# receive-pack start `git gc --auto` in the background once packs pile up, a repack of the
# whole repository that lands on whichever run comes next.
for repo in "$work"/repos/*.git; do
    git --git-dir="$repo" config receive.autogc false
    git --git-dir="$repo" config gc.auto 0
done

source "$root/bench/deliver/common.sh"
start_server "$bin/deliver_bench_server" "$work" "$token"
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
    # No automatic gc: with a 20,000-file export it would start in the background and
    # race the removal of the run's directory (it is not part of the pipeline's time).
    git -C "$d/wt" -c gc.auto=0 commit -q -m "Benchmark delivery"
    git -C "$d/wt" push -q origin "+HEAD:refs/heads/$branch"
}
export -f cli

# One `courier deliver` run with CACHE as its data directory (the bare-repository cache),
# pushing ZIP to HEAD of URL; the JSON report goes to $work/last.json.
courier_deliver() { # CACHE URL HEAD ZIP
    courier_config "$1" "$2" "$3"
    "$courier" deliver --config "$1.yaml" --payload "$root/tests/fixtures/payloads/v2-seed.json" \
        --artifact "$4" --json >"$work/last.json"
}
export -f courier_config courier_deliver
export courier root work BENCH_GIT_TOKEN=$token

# Appends "wall_s rss_kb" of CMD to OUTFILE. The wall time is bash's clock in
# microseconds: GNU time's %e prints whole hundredths, cut, which on an 80 ms run is an
# error of up to 12% (0.079 s printed 0.07, 0.080 s 0.08). The RSS is GNU time's.
measure() { # OUTFILE CMD...
    local out=$1; shift
    local started=$EPOCHREALTIME
    "$gnu_time" -f '%M' -o "$work/last.time" "$@" >/dev/null 2>"$work/last.err" \
        || { cat "$work/last.err" >&2; exit 1; }
    local ended=$EPOCHREALTIME
    echo "$(awk "BEGIN {printf \"%.3f\", $ended - $started}") $(cat "$work/last.time")" >>"$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

results=$work/results.txt
printf '%-7s %-6s %-7s %-5s %-8s %9s %9s %7s\n' repo shape export cache tool "median s" "RSS MB" "x hand" | tee "$results"
: >"$work/courier.json"
for n in $repos; do
  for shape in $shapes; do
    for e in $exports; do
        files=${e%:*}
        zip=$work/zips/e$files.zip
        repo=r$n
        [ "$shape" = held ] && repo=r$n-e$files
        for scenario in cold warm; do
            rm -f "$work"/*.runs
            cache=$work/cache-$repo-e$files
            scache=$work/serve-$repo-e$files
            if [ "$scenario" = warm ]; then
                rm -rf "$cache" "$scache"
                courier_deliver "$cache" "$base_url$repo.git" "courier/warm-e$files" "$zip"
                courier_deliver "$scache" "$base_url$repo.git" "courier/warm-serve-e$files" "$zip"
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
                measure "$work/courier.runs" bash -c 'courier_deliver "$@"' _ "$cache" "$base_url$repo.git" "$head" "$zip"
                python3 - "$work/last.json" "$n $shape $files $scenario" >>"$work/courier.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
target = report["targets"][0]
assert target["action"] == "push" and target["pushed"], target
timings = dict(report.get("timings", {}), **target["timings"])
print(json.dumps({"run": sys.argv[2], "timings": timings}))
PY
                if [ "${SERVE:-1}" = 1 ]; then
                    if [ "$scenario" = cold ]; then
                        rm -rf "$scache"
                        shead=courier-serve/$tag
                    else
                        shead=courier/warm-serve-e$files
                    fi
                    python3 "$root/bench/deliver/serve.py" "$courier" "$scache" "$base_url$repo.git" \
                        "$shead" "$zip" "$root/tests/fixtures/payloads/v1-seed.json" "$i$$" \
                        "$work/repos/$repo.git" >>"$work/serve.runs"
                fi
            done
            hand=$(cut -d' ' -f1 "$work/hand.runs" | median)
            tools="hand expert courier"
            [ "${SERVE:-1}" = 1 ] && tools="$tools serve"
            for tool in $tools; do
                wall=$(cut -d' ' -f1 "$work/$tool.runs" | median)
                rss=$(cut -d' ' -f2 "$work/$tool.runs" | sort -n | tail -1)
                printf '%-7s %-6s %-7s %-5s %-8s %9.3f %9.1f %7.3f\n' "$n" "$shape" "$files" "$scenario" "$tool" \
                    "$wall" "$(awk "BEGIN {print $rss / 1024}")" "$(awk "BEGIN {print $wall / $hand}")" | tee -a "$results"
            done
            if [ "${SERVE:-1}" = 1 ]; then
                c=$(cut -d' ' -f1 "$work/courier.runs" | median)
                s=$(cut -d' ' -f1 "$work/serve.runs" | median)
                echo "  serve / courier deliver: $(awk "BEGIN {printf \"%.2f\", $s / $c}")" | tee -a "$results"
            fi
        done
    done
  done
done
# Whether the phases explain the time: per run, the target's phases (plan, tokens, push,
# pull_request) against its total; and the fetch, which runs alongside the download and
# the validation, against the time from the download's start to the plan's end.
python3 - "$work/courier.json" <<'PY' | tee -a "$results"
import json, sys
print("courier phases: run, sum of phases / total, fetch / (download + validate + plan), ms per phase")
for line in open(sys.argv[1]):
    run = json.loads(line)
    t = run["timings"]
    phases = sum(t.get(p, 0) for p in ("plan", "tokens", "push", "pull_request"))
    until_planned = t["download"] + t["validate"] + t["plan"]
    print(f'{run["run"]}: {phases / t["total"]:.3f}, {t["fetch"] / until_planned:.3f}, '
          + " ".join(f"{k}={v}" for k, v in t.items()))
PY
echo "results: $results; courier's phase timings per run: $work/courier.json" >&2
