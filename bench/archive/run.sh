#!/usr/bin/env bash
# Archive validation benchmark: Courier's `Export::open` (full pass: structure, names,
# limits, inflate + CRC of every entry) side by side with `unzip -t` on the same files.
#
# Usage: bench/archive/run.sh [RUNS]       (default 7 runs per tool and archive)
#
# Generates three deterministic archives under
# $CARGO_TARGET_DIR/bench-archive (never in git): 2,000 files (~20 MB), 20,000 files
# (~200 MB) and 2,000 files ten times larger (~200 MB), so memory that grows with the
# entry count can be told apart from memory that grows with the bytes. It warms the page cache, then runs the
# tools alternately so background load hits both alike. Reports the median wall time,
# the median CPU time (user+sys) and the peak RSS (GNU time's "Maximum resident set size").
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
runs=${1:-7}
gnu_time=/usr/bin/time
[ -x "$gnu_time" ] || { echo "GNU time is needed: apt-get install -y time" >&2; exit 1; }
command -v unzip >/dev/null || { echo "unzip is needed" >&2; exit 1; }

cargo build --release --locked -p courier-core \
    --example archive_bench_generate --example archive_bench_validate >&2
bin=$CARGO_TARGET_DIR/release/examples
work=$CARGO_TARGET_DIR/bench-archive
mkdir -p "$work"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure NAME CMD... : one run; appends "wall cpu rss_kb" to $work/NAME.runs
measure() {
    local name=$1; shift
    local start end
    start=$(date +%s%N)
    "$gnu_time" -f '%U %S %M' -o "$work/last.time" "$@" >/dev/null
    end=$(date +%s%N)
    read -r user sys rss <"$work/last.time"
    echo "$(( (end - start) / 1000000 )) $(awk "BEGIN {printf \"%d\", ($user + $sys) * 1000}") $rss" \
        >>"$work/$name.runs"
}

printf '%-9s %-10s %-26s %8s %8s %12s\n' files "archive" tool "wall ms" "cpu ms" "peak RSS MB"
for spec in 2000:1 20000:1 2000:10; do
    files=${spec%:*} scale=${spec#*:}
    zip=$work/export-$files-x$scale.zip
    [ -f "$zip" ] || "$bin/archive_bench_generate" "$zip" "$files" "$scale" >&2
    echo "$(basename "$zip"): $(stat -c %s "$zip") bytes; $("$bin/archive_bench_validate" "$zip")" >&2
    cat "$zip" >/dev/null
    rm -f "$work"/*.runs
    for _ in $(seq "$runs"); do
        measure courier "$bin/archive_bench_validate" "$zip"
        measure unzip unzip -tqq "$zip"
        measure courier-stream "$bin/archive_bench_validate" "$zip" --stream
    done
    for tool in courier unzip courier-stream; do
        wall=$(cut -d' ' -f1 "$work/$tool.runs" | median)
        cpu=$(cut -d' ' -f2 "$work/$tool.runs" | median)
        rss=$(cut -d' ' -f3 "$work/$tool.runs" | sort -n | tail -1)
        case $tool in
            courier) label="Export::open" ;;
            unzip) label="unzip -tqq" ;;
            courier-stream) label="Export::open + stream all" ;;
        esac
        printf '%-9s %-10s %-26s %8s %8s %12.1f\n' "$files" "$(( $(stat -c %s "$zip") / 1000000 )) MB" \
            "$label" "$wall" "$cpu" "$(awk "BEGIN {print $rss / 1024}")"
    done
done
